/**
 * Where the ScoreNet training step spends its time, per kernel and per phase (issue 6), on one backend:
 *
 *   npx tsx tools/bench/scorenet/profile.ts [--backend wasm] [--batch 64] [--steps 3] [--profiles 3] [--shapes] [--top 60]
 *
 * Prints the phases of `trainStep` (∇θ of the loss, gradient norm, Adam, EMA) as wall medians, then
 * `tf.profile`'s kernel times of one step (each call's minimum over `--profiles` steps) summed by kernel name
 * (count, ms), largest first; `--shapes` adds the sums by kernel and input shapes (`--top` rows).
 *
 * @module bench/scorenet/profile
 */
import { tf, random, initBackend, describeBackend } from '@score-sde/tensor-fp';
import { tutorial } from '@score-sde/sde-math';
import * as E from 'fp-ts/Either';
import {
  tutorialScoreNetConfig,
  defaultLossConfig,
  adamConfig,
  initTrainState,
  trainStep,
  scoreNet,
  scoreNetSpec,
  lossFn,
  stepKey,
  adamStep,
  emaUpdate,
  globalNorm,
  disposeRecord,
  disposeAdam,
  type TrainConfig,
  type TrainState,
  type TensorRecord,
} from '@score-sde/models';
import { arg } from '../args';
import { kernelCalls } from '../kernel-profile';


const main = async (): Promise<void> => {
  const info = await initBackend({ prefer: arg('backend', 'wasm') as 'wasm', quiet: true });
  const batch = Number(arg('batch', '64'));
  const steps = Number(arg('steps', '3'));
  const config: TrainConfig = { model: tutorialScoreNetConfig, sde: tutorial(), loss: defaultLossConfig, optim: adamConfig(), emaDecay: 0.999, batchSize: batch };
  let state: TrainState = initTrainState(config, random.key(0));
  const x0 = random.uniform(random.key(1), [batch, 28, 28, 1]);
  const step = trainStep(config);
  const run = (): void => {
    const r = step(state, x0);
    if (E.isLeft(r)) throw new Error('step failed');
    state = r.right.state;
  };
  run();
  run();
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    run();
    walls.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  process.stdout.write(`${describeBackend(info)} batch ${batch}: step wall ${med(walls).toFixed(1)} ms, CPU ${med(cpus).toFixed(1)} ms (${walls.map((w) => w.toFixed(0)).join(' ')})\n`);
  // Phases, on a copy of the state's pieces (nothing is assigned).
  const names = scoreNetSpec(config.model).filter((sp) => sp.trainable).map((sp) => sp.name);
  const loss = E.getOrElseW(() => { throw new Error('loss'); })(lossFn(config.sde, config.loss));
  const phase = { grads: [] as number[], norm: [] as number[], adam: [] as number[], ema: [] as number[] };
  const clock = (f: () => void): number => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  for (let i = 0; i < steps; i++) {
    let grads: TensorRecord = {};
    phase.grads.push(clock(() => {
      const vars = names.map((n) => state.params[n]!);
      const { value, grads: byVar } = tf.variableGrads(() => loss(scoreNet(config.model, state.params), x0, stepKey(state.key, state.step)), vars);
      grads = Object.fromEntries(names.map((n, j) => [n, byVar[vars[j]!.name]!]));
      value.dataSync();
      value.dispose();
    }));
    phase.norm.push(clock(() => void tf.tidy(() => globalNorm(grads).dataSync())));
    let upd: ReturnType<ReturnType<typeof adamStep>> | undefined;
    phase.adam.push(clock(() => {
      upd = adamStep(config.optim)(state.params, grads, state.adam);
      upd.params[names[names.length - 1]!]!.dataSync();
    }));
    phase.ema.push(clock(() => {
      const e = emaUpdate(config.emaDecay)(state.ema, upd!.params, upd!.state.step);
      e[names[names.length - 1]!]!.dataSync();
      disposeRecord(e);
    }));
    disposeRecord(grads);
    disposeRecord(upd!.params);
    disposeAdam(upd!.state);
  }
  process.stdout.write(`phases (wall medians, ms): ${Object.entries(phase).map(([k, v]) => `${k} ${med(v).toFixed(1)}`).join(', ')}\n`);
  // Kernel times: the minimum over `--profiles` profiled steps of each kernel call (the sequence of calls is the
  // same every step), which filters out preemption by other processes on a shared machine.
  const profiles = Number(arg('profiles', '3'));
  const { calls } = await kernelCalls(run, profiles);
  const group = (key: (k: { name: string; shapes: string }) => string): Array<[string, { n: number; ms: number }]> => {
    const m = new Map<string, { n: number; ms: number }>();
    for (const k of calls) {
      const e = m.get(key(k)) ?? { n: 0, ms: 0 };
      m.set(key(k), { n: e.n + 1, ms: e.ms + k.ms });
    }
    return [...m.entries()].sort((a, b) => b[1].ms - a[1].ms);
  };
  const total = calls.reduce((a, k) => a + k.ms, 0);
  process.stdout.write(`kernels: ${calls.length}, summed min kernel ms ${total.toFixed(1)}\n`);
  const show = ([name, e]: [string, { n: number; ms: number }]): void => void process.stdout.write(`  ${name.padEnd(64)} ${String(e.n).padStart(5)} ${e.ms.toFixed(1).padStart(8)}\n`);
  group((k) => k.name).forEach(show);
  if (process.argv.includes('--shapes')) group((k) => `${k.name} ${k.shapes}`).slice(0, Number(arg('top', '60'))).forEach(show);
};

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
