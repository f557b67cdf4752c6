/**
 * Where the default recipe's time goes, op by op (issue 11): the training step of `nx run experiments:mnist`'s
 * default recipe and the step of its `em` sampler, on one backend, in one process.
 *
 *   npx tsx tools/bench/e2e/profile.ts [--steps 10] [--profiles 3] [--top 40] [--out FILE.md] [--peer] [--kernel-threads | --overrides]
 *
 * Training, phase by phase (wall medians over `--steps` steps, each phase read back so its kernels have run):
 * the batch (`batchForStep`), the loss's draws (per-sample times and N(0, I) noise), forward + backward
 * (`tf.variableGrads` of the loss), the gradient norm, Adam and the EMA (on wasm: trainStep's fused Adam + EMA pass,
 * reported under "adam"); then the whole `trainStep` as the experiment calls it. Sampling: the score evaluation alone, the noise of one step, and one whole `em` step.
 * Then `tf.profile`'s kernel times (each call's minimum over `--profiles` runs, which filters out preemption on a
 * shared machine) summed by kernel, for one training step and one sampler step: the kernel count and the summed kernel
 * time; and, from unprofiled runs whose kernel calls are timed in the same run (`splitRuns`), the time outside kernels
 * (JavaScript: tfjs' bookkeeping per kernel, the tape, our own code) per run and per call.
 *
 * `--peer` adds the same breakdown for the PyTorch peer (`e2e_torch.py --profile-ops`, Debian's python3-torch, as many
 * threads as this process's backend, `OPENBLAS_CORETYPE`/`OPENBLAS_L2_SIZE` unset in its process): one training step and
 * one score evaluation of the same recipe, batch 64, by category (`op-categories.ts`), side by side with ours — where the
 * ratio of the end-to-end benchmark comes from.
 *
 * `--overrides` instead compares the wasm kernels the fused module serves in place of tfjs' (broadcasting binary ops, small
 * matrix products, concat / split: `fused.FUSED_OVERRIDES`) and the reuse of derived filters (`derived.ts`) on and off,
 * alternating step by step like `--kernel-threads`; the bits are the same either way (checked here on one evaluation).
 *
 * `--kernel-threads` instead compares the fused kernels on 1 and 2 threads (`fused-thread.ts`; needs the threaded build):
 * `--steps` whole training steps and score evaluations with the kernel thread off and on, alternating step by step so
 * that load from other processes hits both alike; minimum and median wall per setting.
 *
 * @module bench/e2e/profile
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, random, initBackend, describeBackend, fused, configureDerived } from '@score-sde/tensor-fp';
import { type Sampler, run } from '@score-sde/solvers';
import {
  initTrainState,
  trainStep,
  batchForStep,
  scoreNet,
  scoreNetSpec,
  scoreOfRun,
  parameterisationOf,
  lossFn,
  stepKey,
  adamStep,
  adamEmaStep,
  emaDecayAt,
  emaUpdate,
  globalNorm,
  dsmDraws,
  disposeRecord,
  disposeAdam,
  emaParams,
  loadMnist,
  renderIdxError,
  type TrainState,
  type TensorRecord,
} from '@score-sde/models';
import { pipeline } from '@score-sde/experiments';
import { defaultRecipe } from './recipe';
import { arg, median as med } from '../args';
import { kernelCalls, splitRuns, type KernelCall, type SplitRun } from '../kernel-profile';
import { OP_CATEGORIES, categorySums } from './op-categories';
import { findTorch, runJson, writeInputs, type OpProfile } from './peer';
import { torchEnv } from './torch-env';



const clock = (f: () => void): number => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};


const kernelTable = (title: string, calls: ReadonlyArray<KernelCall>, wall: number, plainWall: number, top: number, split: ReadonlyArray<SplitRun>): string[] => {
  const by = new Map<string, { n: number; ms: number }>();
  for (const k of calls) {
    const e = by.get(k.name) ?? { n: 0, ms: 0 };
    by.set(k.name, { n: e.n + 1, ms: e.ms + k.ms });
  }
  const total = calls.reduce((a, k) => a + k.ms, 0);
  const byShape = new Map<string, { n: number; ms: number }>();
  for (const k of calls) {
    const key = `${k.name} ${k.shapes}`;
    const e = byShape.get(key) ?? { n: 0, ms: 0 };
    byShape.set(key, { n: e.n + 1, ms: e.ms + k.ms });
  }
  const rows = (m: Map<string, { n: number; ms: number }>, limit: number): string[] =>
    [...m.entries()]
      .sort((a, b) => b[1].ms - a[1].ms)
      .slice(0, limit)
      .map(([k, e]) => `| ${k} | ${e.n} | ${e.ms.toFixed(2)} | ${((100 * e.ms) / total).toFixed(1)}% |`);
  return [
    `### ${title}`,
    '',
    `${calls.length} kernel calls; summed kernel time ${total.toFixed(1)} ms (each call's minimum over the profiled runs); wall ${plainWall.toFixed(1)} ms unprofiled (${wall.toFixed(1)} ms profiled).`,
    `Outside kernels, run by run (${split.length} unprofiled runs, each kernel call timed in the same run; median): ${med(split.map((r) => r.wall - r.inKernels)).toFixed(2)} ms ` +
      `of ${med(split.map((r) => r.wall)).toFixed(1)} ms, ${med(split.map((r) => r.kernels))} outermost kernel calls ` +
      `(${((1000 * med(split.map((r) => r.wall - r.inKernels))) / Math.max(1, med(split.map((r) => r.kernels)))).toFixed(0)} µs a call). ` +
      `The summed minima against the median wall would say ${Math.max(0, plainWall - total).toFixed(1)} ms: that counts every kernel's spread between runs as time outside kernels.`,
    '',
    '| kernel | calls | ms | share |',
    '|---|---:|---:|---:|',
    ...rows(by, 100),
    '',
    '<details><summary>by kernel and input shapes</summary>',
    '',
    '| kernel, input shapes | calls | ms | share |',
    '|---|---:|---:|---:|',
    ...rows(byShape, top),
    '',
    '</details>',
    '',
  ];
};

/** Walls of `steps` training steps and score evaluations per setting, settings off and on alternating (2 warm-up rounds dropped). */
const alternate = (steps: number, set: (on: boolean) => void, advance: () => void, evalScore: () => void): { readonly train: number[][]; readonly score: number[][] } => {
  const walls = { train: [[], []] as number[][], score: [[], []] as number[][] };
  for (let i = 0; i < steps + 2; i++) {
    for (const [j, on] of [false, true].entries()) {
      set(on);
      const [tTrain, tScore] = [clock(advance), clock(evalScore)];
      if (i >= 2) {
        walls.train[j]!.push(tTrain);
        walls.score[j]!.push(tScore);
      }
    }
  }
  set(true);
  return walls;
};

/** The markdown table of an {@link alternate} run: ms, min / median, for the off and on columns. */
const abTable = (title: string, note: string, columns: readonly [string, string], walls: { readonly train: number[][]; readonly score: number[][] }): string => {
  const cell = (v: number[]): string => `${Math.min(...v).toFixed(2)} / ${med(v).toFixed(2)}`;
  return [
    `# ${title}`,
    '',
    note,
    '',
    `| | ${columns[0]} | ${columns[1]} |`,
    '|---|---:|---:|',
    `| training step (batch 64) | ${cell(walls.train[0]!)} | ${cell(walls.train[1]!)} |`,
    `| score evaluation (batch 64) | ${cell(walls.score[0]!)} | ${cell(walls.score[1]!)} |`,
    '',
  ].join('\n');
};

/** Training steps and score evaluations with the kernel thread off and on, alternating; min and median wall per setting. */
const kernelThreadsAB = async (steps: number, advance: () => void, config: Parameters<typeof scoreOfRun>[0], current: () => TrainState, info: Parameters<typeof describeBackend>[0]): Promise<void> => {
  if (!(await fused.startKernelThread())) throw new Error(`--kernel-threads: no kernel thread (${fused.kernelThreadStatus().reason ?? 'the wasm backend is single-threaded'})`);
  const x = tf.tidy(() => tf.mul(random.normal(random.key(1), [64, 28, 28, 1]), 10));
  // The EMA weights of the current state (a training step replaces them).
  const evalScore = (): void => tf.tidy(() => void scoreOfRun(config, emaParams(current()))(x, 0.5).dataSync());
  const walls = alternate(steps, (enabled) => fused.configureKernelThread({ enabled }), advance, evalScore);
  process.stdout.write(
    abTable(
      `Training step and score evaluation with the fused kernels on 1 and 2 threads (${describeBackend(info)})`,
      `${steps} of each, alternating; ms, min / median. Kernel thread: ${JSON.stringify(fused.kernelThreadStatus())}.`,
      ['1 kernel thread', '2 kernel threads'],
      walls,
    ),
  );
  tf.dispose(x);
};

/** Training steps and score evaluations with the fused overrides and derived reuse off and on, alternating; min and median wall. */
const overridesAB = (steps: number, advance: () => void, config: Parameters<typeof scoreOfRun>[0], current: () => TrainState, info: Parameters<typeof describeBackend>[0]): void => {
  const set = (enabled: boolean): void => {
    fused.configureFusedOverrides({ enabled });
    configureDerived({ enabled });
  };
  const x = tf.tidy(() => tf.mul(random.normal(random.key(1), [64, 28, 28, 1]), 10));
  const score = (): Float32Array => tf.tidy(() => scoreOfRun(config, emaParams(current()))(x, 0.5).dataSync() as Float32Array);
  set(false);
  const off = score();
  set(true);
  const same = Buffer.from(off.buffer).equals(Buffer.from(score().buffer));
  const walls = alternate(steps, set, advance, () => void score());
  process.stdout.write(
    abTable(
      `Training step and score evaluation with the fused overrides and derived reuse off and on (${describeBackend(info)})`,
      `${steps} of each, alternating; ms, min / median. Overrides: ${fused.FUSED_OVERRIDES.join(', ')}; the score evaluation's bits ${same ? 'are the same' : 'DIFFER'} with and without.`,
      ['off', 'on'],
      walls,
    ),
  );
  tf.dispose(x);
};

/** One side's profile of one call: kernel calls (minima), the median wall, the median time outside kernels. */
interface Profiled {
  readonly calls: ReadonlyArray<KernelCall>;
  readonly wall: number;
  readonly outside: number;
}

/**
 * The PyTorch peer's op profile of the same recipe (`e2e_torch.py --profile-ops steps`), and the markdown table of both
 * sides by category: ms per training step and per score evaluation, and the ratios.
 */
const sideBySide = async (steps: number, threads: number, train: Profiled, score: Profiled): Promise<string> => {
  const torch = findTorch();
  if (!('python' in torch)) return `## Side by side with PyTorch\n\nSkipped: ${torch.missing}.\n`;
  const files = await writeInputs(4, path.join(os.tmpdir(), `score-sde-profile-${process.pid}`));
  const peer = runJson('the PyTorch peer (tools/bench/e2e/e2e_torch.py --profile-ops)', torch.python, [
    path.join(__dirname, 'e2e_torch.py'),
    '--recipe', files.recipe,
    '--images', files.images,
    '--order', files.order,
    '--params', String(files.params),
    '--steps', '2',
    '--warmup', '2',
    '--sample-steps', '2',
    '--samples', '64',
    '--threads', String(threads),
    '--profile-ops', String(steps),
  ], torchEnv());
  fs.rmSync(path.dirname(files.recipe), { recursive: true, force: true });
  const ops: OpProfile | undefined = peer.ops;
  if (ops === undefined) throw new Error('the PyTorch peer printed no op profile');
  const ours = { train: categorySums(train.calls), score: categorySums(score.calls) };
  const theirs = (part: Readonly<Record<string, number>>, c: string): number => part[c] ?? 0;
  const sum = (r: Readonly<Record<string, number>>): number => Object.values(r).reduce((a, b) => a + b, 0);
  const ratio = (a: number, b: number): string => (b >= 0.01 ? `${(a / b).toFixed(2)}×` : '—');
  const row = (label: string, a: number, b: number, c: number, d: number): string =>
    `| ${label} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${ratio(a, b)} | ${c.toFixed(2)} | ${d.toFixed(2)} | ${ratio(c, d)} |`;
  const torchOutside = { train: Math.max(0, ops.trainWallMs - sum(ops.train)), score: Math.max(0, ops.scoreWallMs - sum(ops.score)) };
  return [
    '## Side by side with PyTorch',
    '',
    `The same recipe, batch 64, ${threads} thread(s) each; PyTorch ${peer.version ?? ''} (${torch.python}, \`e2e_torch.py --profile-ops ${steps}\`: each op's self time under torch.profiler, ` +
      `averaged over ${steps} steps / evaluations; its wall the median of ${steps} unprofiled ones). Ours: each kernel call's minimum over the profiled runs above; ` +
      `"outside kernels" is the median over unprofiled runs of wall − time in kernels (for PyTorch, wall − Σ op self times). ` +
      'Categories: tools/bench/e2e/op-categories.ts (PyTorch counts its swish product x·σ(x) with the element-wise ops). ms.',
    '',
    '| category | ours, training step | PyTorch | ratio | ours, score evaluation | PyTorch | ratio |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...OP_CATEGORIES.map((c) => row(c, ours.train[c], theirs(ops.train, c), ours.score[c], theirs(ops.score, c))),
    row('outside kernels (framework, host language)', train.outside, torchOutside.train, score.outside, torchOutside.score),
    row('**wall**', train.wall, ops.trainWallMs, score.wall, ops.scoreWallMs),
    '',
  ].join('\n');
};

const main = async (): Promise<void> => {
  const steps = Number(arg('steps', '10'));
  const profiles = Number(arg('profiles', '3'));
  const top = Number(arg('top', '40'));
  const { flags, recipe, train: config } = await defaultRecipe();
  const info = await initBackend({ prefer: flags.backend, quiet: true });
  // The fused kernels' second thread, as a training run has it from its second step on (started lazily at the first
  // call that could use it, it becomes ready only once the event loop turns, which these synchronous loops never let it).
  const kernelThread = await fused.startKernelThread();
  const loaded = await loadMnist({ split: 'train', subset: flags.subset })();
  if (E.isLeft(loaded)) throw new Error(renderIdxError(loaded.left));
  const data = loaded.right;
  let state: TrainState = initTrainState(config, random.key(flags.seed));
  const step = trainStep(config);
  const advance = (): void => {
    const x0 = batchForStep(config, state, data);
    const r = step(state, x0);
    x0.dispose();
    if (E.isLeft(r)) throw new Error('step failed');
    state = r.right.state;
  };
  for (let i = 0; i < 3; i++) advance();
  if (process.argv.includes('--overrides')) {
    overridesAB(steps, advance, config, () => state, info);
    return;
  }
  if (process.argv.includes('--kernel-threads')) {
    await kernelThreadsAB(steps, advance, config, () => state, info);
    return;
  }
  const names = scoreNetSpec(config.model).filter((sp) => sp.trainable).map((sp) => sp.name);
  const loss = E.getOrElseW(() => {
    throw new Error('loss');
  })(lossFn(config.sde, config.loss, parameterisationOf(config)));
  const phase = { batch: [] as number[], draws: [] as number[], 'forward + backward': [] as number[], 'gradient norm': [] as number[], adam: [] as number[], ema: [] as number[], 'trainStep (whole, with its batch)': [] as number[] };
  const epsOf = (config.loss as { eps?: number }).eps ?? 1e-5;
  for (let i = 0; i < steps; i++) {
    let x0: tf.Tensor4D | undefined;
    phase.batch.push(clock(() => void (x0 = batchForStep(config, state, data))));
    phase.draws.push(clock(() => tf.dispose(dsmDraws(config.sde, epsOf, stepKey(state.key, state.step), config.batchSize, [28, 28, 1]).noise)));
    let grads: TensorRecord = {};
    phase['forward + backward'].push(
      clock(() => {
        const vars = names.map((n) => state.params[n]!);
        const { value, grads: byVar } = tf.variableGrads(() => loss(scoreNet(config.model, state.params), x0!, stepKey(state.key, state.step)), vars);
        grads = Object.fromEntries(names.map((n, j) => [n, byVar[vars[j]!.name]!]));
        value.dataSync();
        value.dispose();
      }),
    );
    let norm = 0;
    phase['gradient norm'].push(
      clock(() => {
        norm = fused.fusedKernelsReady() ? Math.sqrt(fused.sumOfSquares(names.map((n) => grads[n]!))) : tf.tidy(() => globalNorm(grads).dataSync()[0]!);
      }),
    );
    if (fused.fusedKernelsReady()) {
      // trainStep's path on wasm: Adam + clipping + EMA in one fused pass per parameter ("adam" below; "ema" 0).
      phase.adam.push(
        clock(() => {
          const u = adamEmaStep(config.optim)(state.params, grads, state.adam, state.ema, norm, emaDecayAt(config.emaDecay, state.adam.step + 1));
          u.ema[names[names.length - 1]!]!.dataSync();
          [u.params, u.ema].forEach(disposeRecord);
          disposeAdam(u.state);
        }),
      );
      phase.ema.push(0);
      disposeRecord(grads);
      x0!.dispose();
      phase['trainStep (whole, with its batch)'].push(clock(advance));
      continue;
    }
    let upd: ReturnType<ReturnType<typeof adamStep>> | undefined;
    phase.adam.push(
      clock(() => {
        upd = adamStep(config.optim)(state.params, grads, state.adam);
        upd.params[names[names.length - 1]!]!.dataSync();
      }),
    );
    phase.ema.push(
      clock(() => {
        const e = emaUpdate(config.emaDecay)(state.ema, upd!.params, upd!.state.step);
        e[names[names.length - 1]!]!.dataSync();
        disposeRecord(e);
      }),
    );
    disposeRecord(grads);
    disposeRecord(upd!.params);
    disposeAdam(upd!.state);
    x0!.dispose();
    phase['trainStep (whole, with its batch)'].push(clock(advance));
  }
  const trainWall = med(phase['trainStep (whole, with its batch)']);
  const trainKernels = await kernelCalls(advance, profiles);
  const trainSplit = splitRuns(advance, steps);

  // Sampling: the experiment's em sampler on the EMA weights, batch 64.
  const sampler: Sampler = E.getOrElseW(() => {
    throw new Error('sampler');
  })(pipeline.namedSampler(config.sde, 'em', { ...recipe.sampling, steps: 1000 }));
  const score = scoreOfRun(config, emaParams(state));
  const keys = Array.from({ length: 64 }, (_, b) => random.foldIn(random.key(1), b));
  const x = tf.tidy(() => tf.mul(random.normalPerSample(keys, [28, 28, 1]), 10));
  const evalScore = (): void => tf.tidy(() => void score(x, 0.5).dataSync());
  for (let i = 0; i < 3; i++) evalScore();
  const samplePhase = { 'score evaluation': [] as number[], 'noise (64 × 784 normals)': [] as number[], 'em step (whole)': [] as number[] };
  // Whole steps: the runner's state after each interval (the yielded x read back as the runner would not).
  const it = run(sampler, score, { keys, sampleShape: [28, 28, 1] });
  await it.next();
  const stepOnce = async (): Promise<void> => {
    const r = await it.next();
    if (r.done !== true) r.value.x.dataSync();
  };
  for (let i = 0; i < 3; i++) await stepOnce();
  // Interleaved, so that load from other processes hits the three phases alike (the sampler's own cost is a difference of them).
  const ownCost: number[] = [];
  for (let i = 0; i < steps; i++) {
    const e = clock(evalScore);
    samplePhase['score evaluation'].push(e);
    samplePhase['noise (64 × 784 normals)'].push(clock(() => random.normalPerSample(keys, [28, 28, 1]).dispose()));
    const t0 = performance.now();
    await stepOnce();
    const s = performance.now() - t0;
    samplePhase['em step (whole)'].push(s);
    ownCost.push(s - e);
  }
  const sampleKernels = await kernelCalls(evalScore, profiles);
  const sampleSplit = splitRuns(evalScore, steps);
  await it.return(undefined);

  const md = [
    `# Profile of the default recipe (${describeBackend(info)})`,
    '',
    `Recipe: \`${JSON.stringify(config)}\`. Wall medians of ${steps} repetitions, ms. A shared machine inflates walls; kernel minima are steadier. ` +
      `The fused kernels' second thread: ${kernelThread ? 'running' : `not running (${fused.kernelThreadStatus().reason ?? 'single-threaded backend'})`}.`,
    '',
    '## Training step',
    '',
    '| phase | ms |',
    '|---|---:|',
    ...Object.entries(phase).map(([k, v]) => `| ${k} | ${med(v).toFixed(2)} |`),
    '',
    '## Sampler step (em, batch 64)',
    '',
    '| phase | ms |',
    '|---|---:|',
    ...Object.entries(samplePhase).map(([k, v]) => `| ${k} | ${med(v).toFixed(2)} |`),
    `| step − score evaluation (the sampler's own cost: median of the paired differences) | ${med(ownCost).toFixed(2)} |`,
    '',
    '## Kernels',
    '',
    ...kernelTable('one training step (trainStep with its batch)', trainKernels.calls, med(trainKernels.walls), trainWall, top, trainSplit),
    ...kernelTable('one score evaluation (batch 64)', sampleKernels.calls, med(sampleKernels.walls), med(samplePhase['score evaluation']), top, sampleSplit),
  ].join('\n');
  const side = process.argv.includes('--peer')
    ? await sideBySide(
        steps,
        info.threads ?? 1,
        { calls: trainKernels.calls, wall: trainWall, outside: med(trainSplit.map((r) => r.wall - r.inKernels)) },
        { calls: sampleKernels.calls, wall: med(samplePhase['score evaluation']), outside: med(sampleSplit.map((r) => r.wall - r.inKernels)) },
      )
    : '';
  const out = arg('out', '');
  if (out !== '') fs.writeFileSync(out, md + '\n' + side);
  process.stdout.write(md + '\n' + side);
  tf.dispose(x);
};

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
