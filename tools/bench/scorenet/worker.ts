/**
 * One measurement of the ScoreNet benchmark, in its own process (a backend, its threads and the wasm heap
 * are per process; the heap never shrinks, so peak RSS is per (backend, batch)).
 *
 *   npx tsx tools/bench/scorenet/worker.ts --variant wasm --batch 64 --iterations 10
 *
 * Prints one JSON line: {variant, backend, batch, forward: ms[], train: ms[] | null, forwardCpu, trainCpu (CPU ms of
 * the process, all threads), trainError?, peakRssMb, params}.
 * forward = the network's forward pass (no tape) read back with dataSync; train = one `trainStep` of the models
 * package (DSM loss under the tutorial SDE, ∇θ, Adam, EMA, the loss and gradient norm read back).
 *
 * @module bench/scorenet/worker
 */
import * as E from 'fp-ts/Either';
import { tf, random, initBackend, describeBackend, conv } from '@score-sde/tensor-fp';
import { tutorial } from '@score-sde/sde-math';
import {
  tutorialScoreNetConfig,
  scoreNet,
  parameterCount,
  defaultLossConfig,
  adamConfig,
  initTrainState,
  disposeTrainState,
  trainStep,
  renderTrainError,
  type TrainConfig,
  type TrainState,
} from '@score-sde/models';
import { VARIANTS, type Variant } from './variants';
import { arg } from '../args';


/** Wall and CPU milliseconds of one call (CPU = user + system of the whole process, all threads). */
const timeIt = (f: () => void): { wall: number; cpu: number } => {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
};

const main = async (): Promise<void> => {
  const variant = arg('variant', 'wasm') as Variant;
  const spec = VARIANTS[variant];
  if (spec === undefined) throw new Error(`unknown variant ${variant}`);
  const batch = Number(arg('batch', '32'));
  const iterations = Number(arg('iterations', '5'));
  const warmup = Number(arg('warmup', '2'));
  const info = await initBackend({ prefer: spec.backend, quiet: true });

  const config: TrainConfig = {
    model: tutorialScoreNetConfig,
    sde: tutorial(),
    loss: defaultLossConfig,
    optim: adamConfig(),
    emaDecay: 0.999,
    batchSize: batch,
  };
  let state: TrainState = initTrainState(config, random.key(0));
  const x0 = random.uniform(random.key(1), [batch, 28, 28, 1]);
  const t = random.uniform(random.key(2), [batch], 1e-5, 1);
  const net = scoreNet(config.model, state.params);
  const forward = (): void => tf.tidy(() => void net(x0, t).dataSync());
  const step = trainStep(config);
  let trainError: string | undefined;
  const train = (): void => {
    const r = step(state, x0);
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    state = r.right.state;
  };

  for (let i = 0; i < warmup; i++) forward();
  const forwardT = Array.from({ length: iterations }, () => timeIt(forward));
  let trainT: Array<{ wall: number; cpu: number }> | null = null;
  try {
    for (let i = 0; i < warmup; i++) train();
    trainT = Array.from({ length: iterations }, () => timeIt(train));
  } catch (e) {
    trainError = (e as Error).message.split('\n')[0];
  }
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(
    JSON.stringify({
      variant,
      backend: `${describeBackend(info)}, ${conv.convKernels()} conv kernels`,
      batch,
      forward: forwardT.map((t) => t.wall),
      train: trainT?.map((t) => t.wall) ?? null,
      forwardCpu: forwardT.map((t) => t.cpu),
      trainCpu: trainT?.map((t) => t.cpu) ?? null,
      ...(trainError !== undefined ? { trainError } : {}),
      peakRssMb,
      params: parameterCount(config.model),
    }) + '\n',
  );
  disposeTrainState(state);
  tf.dispose([x0, t]);
};

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
