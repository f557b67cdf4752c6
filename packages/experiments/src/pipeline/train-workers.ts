/**
 * Data-parallel training steps (issue 11): the K parts of every batch computed at once in K `worker_threads` Workers.
 *
 * A run whose config has K = `microBatches` > 1 parts defines its gradient as the ordered sum of its parts' gradients
 * (models' `microBatchesOf`):
 *
 *   ∇L = Σ_{k<K} ∇L_k,   L_k = (1/B) Σ_{b∈part k} ℓ_b,
 *
 * and each part is a pure function of the weights, the batch, the step's key and the part's rows (`partGradient`).
 * So worker k can compute part k with the same code and its own backend, and this process sums the parts in order:
 * the same bits as computing the parts one after another here, whatever the workers' thread counts (XNNPACK splits
 * work by output tiles, never inside a sum; our fused kernels split by samples or output blocks). That lets a 2-core
 * machine run two single-threaded halves of a batch side by side, with no thread hand-offs inside an op and the
 * per-op JavaScript of each half on its own core.
 *
 * Each step this process reads the weights once and posts them, the batch, its labels, the step's key and a part's
 * rows to each worker; a worker posts back its part's gradient and loss. Messages are decoded with io-ts on both sides.
 * A worker that fails, exits or answers wrongly turns the step's request into a Left naming the worker; models'
 * `trainLoop` then computes that step and the rest here (the same bits) and says so.
 *
 * @module pipeline/train-workers
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec, random, BACKEND_CHOICES, type BackendChoice } from '@score-sde/tensor-fp';
import {
  TrainConfig,
  scoreNetSpec,
  sizeOfShape,
  recordFromValues,
  microBatchesOf,
  microBatchRanges,
  stepKey,
  type PartGradient,
  type PartGradientSource,
} from '@score-sde/models';
import { Float32ArrayC, Int32ArrayC } from './workers';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** What a train worker is started with (its `workerData`): the run's config and the backend to compute on. @category model */
export const TrainWorkerJob = codec.strict({ worker: codec.NonNegativeInt, config: TrainConfig, backend: codec.oneOf(BACKEND_CHOICES, 'BackendChoice') }, 'TrainWorkerJob');
export type TrainWorkerJob = t.TypeOf<typeof TrainWorkerJob>;

/**
 * One part of one step: every parameter's values by name, the batch x₀ (row-major, `shape`) in [0, 1], its labels
 * (class-conditional runs), the step's loss key and the part's rows [start, end).
 * @category model
 */
export const PartRequest = codec.strictWithOptional(
  {
    kind: t.literal('part'),
    id: codec.NonNegativeInt,
    params: t.record(t.string, Float32ArrayC),
    x0: Float32ArrayC,
    shape: t.array(codec.PositiveInt),
    key: random.KeyCodec,
    start: codec.NonNegativeInt,
    end: codec.PositiveInt,
  },
  { labels: Int32ArrayC },
  'PartRequest',
);
export type PartRequest = t.TypeOf<typeof PartRequest>;

/** A worker's messages: `ready` (its backend is up), a part's gradient by trainable name and its loss, or `failed`. @category model */
export const TrainWorkerMessage = t.union(
  [
    codec.strict({ kind: t.literal('ready'), backend: t.string }, 'TrainWorkerReady'),
    codec.strict({ kind: t.literal('gradient'), id: codec.NonNegativeInt, grads: t.record(t.string, Float32ArrayC), loss: t.number }, 'TrainWorkerGradient'),
    codec.strict({ kind: t.literal('failed'), message: t.string }, 'TrainWorkerFailed'),
  ],
  'TrainWorkerMessage',
);
export type TrainWorkerMessage = t.TypeOf<typeof TrainWorkerMessage>;

/** Running train workers: the source of part gradients for models' `trainLoop`, their backends, and how to stop them. @category model */
export interface TrainWorkers {
  readonly parts: PartGradientSource;
  /** Each worker's backend, as it described itself. */
  readonly backends: ReadonlyArray<string>;
  /** Terminates every worker (idempotent). */
  readonly close: () => Promise<void>;
}

/** What {@link startTrainWorkers} needs. @category model */
export interface TrainWorkerOptions {
  /** The run's config: K = its `microBatches` (> 1) workers are started, one per part. */
  readonly config: TrainConfig;
  /** Backend of every worker (default 'wasm'). */
  readonly backend?: BackendChoice;
  /** wasm threads of every worker (`SCORE_SDE_WASM_THREADS` there; default 1: K workers on K cores). */
  readonly wasmThreads?: number;
}

// -------------------------------------------------------------------------------------
// workers
// -------------------------------------------------------------------------------------

/** The worker entry (TypeScript, run through tsx's loader in the worker). @category workers */
export const TRAIN_WORKER_FILE = path.join(__dirname, 'train-worker.ts');

/** tsx's CommonJS hooks, then the TypeScript entry (as `workers.ts` does, for the same reason). */
const bootstrap = (): string =>
  `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register();\nrequire(${JSON.stringify(TRAIN_WORKER_FILE)});\n`;

interface Pending {
  readonly id: number;
  readonly resolve: (r: E.Either<string, { readonly grads: Record<string, Float32Array>; readonly loss: number }>) => void;
}

/** One long-lived worker: requests answered in order, a failure answering every pending and later request with its reason. */
interface Handle {
  readonly request: (r: PartRequest) => Promise<E.Either<string, { readonly grads: Record<string, Float32Array>; readonly loss: number }>>;
  readonly ready: Promise<E.Either<string, string>>;
  readonly close: () => Promise<void>;
}

const startOne = (job: TrainWorkerJob, wasmThreads: number): Handle => {
  let failure: string | undefined;
  let pending: Pending | undefined;
  let markReady: (r: E.Either<string, string>) => void = () => undefined;
  const ready = new Promise<E.Either<string, string>>((resolve) => (markReady = resolve));
  const worker = new Worker(bootstrap(), {
    eval: true,
    workerData: TrainWorkerJob.encode(job),
    execArgv: [],
    env: { ...process.env, SCORE_SDE_WASM_THREADS: String(wasmThreads) },
  });
  const fail = (why: string): void => {
    if (failure !== undefined) return;
    failure = `train worker ${job.worker}: ${why}`;
    markReady(E.left(failure));
    pending?.resolve(E.left(failure));
    pending = undefined;
    worker.removeAllListeners();
    worker.on('error', () => undefined);
    void worker.terminate();
  };
  worker.on('message', (m: unknown) => {
    const decoded = codec.decodeWith(TrainWorkerMessage, 'train worker message')(m);
    if (E.isLeft(decoded)) return fail(codec.renderDecodeError(decoded.left));
    const msg = decoded.right;
    if (msg.kind === 'ready') return markReady(E.right(msg.backend));
    if (msg.kind === 'failed') return fail(msg.message);
    if (pending === undefined || pending.id !== msg.id) return fail(`answered request ${msg.id}, which is not the one pending`);
    const p = pending;
    pending = undefined;
    // Copies in this realm (the message's arrays may belong to another one, e.g. under Jest).
    p.resolve(E.right({ grads: Object.fromEntries(Object.entries(msg.grads).map(([n, g]) => [n, new Float32Array(g)])), loss: msg.loss }));
  });
  worker.on('messageerror', (e) => fail(`a message could not be deserialised: ${e.message}`));
  worker.on('error', (e) => fail(`uncaught error: ${e.message}`));
  worker.on('exit', (code) => fail(`exited with code ${code}`));
  return {
    ready,
    request: (r) =>
      new Promise((resolve) => {
        if (failure !== undefined) return resolve(E.left(failure));
        if (pending !== undefined) return resolve(E.left(`train worker ${job.worker}: a request is already pending`));
        pending = { id: r.id, resolve };
        worker.postMessage(r);
      }),
    close: async () => {
      if (failure === undefined) failure = `train worker ${job.worker}: closed`;
      pending?.resolve(E.left(failure));
      pending = undefined;
      worker.removeAllListeners();
      worker.on('error', () => undefined);
      await worker.terminate().catch(() => undefined);
    },
  };
};

/**
 * Starts K = `microBatches` workers for a run and waits until each has its backend; Right with the part-gradient
 * source for models' `trainLoop`, or Left (every worker stopped) with the reason, e.g. a config of one part.
 * @category workers
 */
export const startTrainWorkers = async (o: TrainWorkerOptions): Promise<E.Either<string, TrainWorkers>> => {
  const K = microBatchesOf(o.config);
  if (K < 2) return E.left(`train workers: the config has ${K} part per batch (microBatches); data-parallel steps need at least 2`);
  const backend = o.backend ?? 'wasm';
  let handles: ReadonlyArray<Handle>;
  try {
    handles = Array.from({ length: K }, (_, w) => startOne({ worker: w, config: o.config, backend }, o.wasmThreads ?? 1));
  } catch (e) {
    return E.left(`train workers: could not start a worker: ${(e as Error).message}`);
  }
  const close = async (): Promise<void> => {
    await Promise.all(handles.map((h) => h.close()));
  };
  const readies = await Promise.all(handles.map((h) => h.ready));
  const notReady = readies.find(E.isLeft);
  if (notReady !== undefined) {
    await close();
    return E.left(notReady.left);
  }
  const specs = scoreNetSpec(o.config.model);
  const trained = specs.filter((s) => s.trainable);
  let next = 0;
  const parts: PartGradientSource = async (state, x0, labels) => {
    const id = next++;
    const values = Object.fromEntries(specs.map((s) => [s.name, state.params[s.name]!.dataSync() as Float32Array]));
    const x = x0.dataSync() as Float32Array;
    const shape = [...x0.shape];
    const key = stepKey(state.key, state.step);
    const lab = labels === undefined ? undefined : Int32Array.from(labels);
    const ranges = microBatchRanges(shape[0]!, K);
    const answers = await Promise.all(
      ranges.map((rows, k) => handles[k]!.request({ kind: 'part', id, params: values, x0: x, shape, key: [key[0], key[1]], start: rows.start, end: rows.end, ...(lab !== undefined ? { labels: lab } : {}) })),
    );
    const failed = answers.find(E.isLeft);
    if (failed !== undefined) return E.left(failed.left);
    const out: PartGradient[] = [];
    for (const a of answers) {
      if (E.isLeft(a)) return a;
      const missing = trained.find((s) => a.right.grads[s.name]?.length !== sizeOfShape(s.shape));
      if (missing !== undefined) {
        out.forEach((p) => Object.values(p.grads).forEach((g) => g.dispose()));
        return E.left(`train workers: a gradient for ${missing.name} is missing or of the wrong size`);
      }
      out.push({ grads: recordFromValues(trained, a.right.grads), loss: a.right.loss });
    }
    return E.right(out);
  };
  return E.right({ parts, backends: readies.map((r) => (E.isRight(r) ? r.right : '')), close });
};
