/**
 * Drawing a batch over worker threads (`experiments:mnist --workers N`), with results unchanged (issue 6).
 *
 * A sampler draws all its randomness from per-sample Threefry keys, and every op the ScoreNet and the
 * fixed-step samplers use is batch-invariant (sample b's result is bit-identical whatever the batch), so with a
 * batch-separable sampler (its step declares no `batchCoupling`) sample b is a function of its key and the network
 * alone:
 *
 *   x_b = Φ(key_b; θ, spec)   ⇒   draw(keys[0..n)) = concat_w draw(keys[s_w..e_w))
 *
 * for contiguous shards [s_w, e_w) covering [0, n). {@link drawInWorkers} splits the keys into W such shards,
 * starts W `worker_threads` Workers (each its own backend and its own copy of the checkpoint; the TypeScript
 * entry `worker.ts` is loaded through tsx's CommonJS hooks, so this works under tsx and Jest alike), each of which
 * runs the one draw routine (`pipeline/draw`) on its keys, and concatenates their Float32Arrays in shard order.
 *
 * The thread count of the wasm backend does not change results: XNNPACK splits the work by output tiles, never
 * inside a sum, so the in-process run (e.g. 2 threads) and W single-threaded workers agree bit for bit (checked on
 * the default MNIST checkpoint with 1, 2 and 3 workers of 1 or 2 threads each).
 *
 * A sampler whose step couples its batch (the Langevin corrector with the 'batch-mean' norm, the adaptive solvers'
 * shared step size) would give other samples when split, so {@link drawInWorkers} refuses it, quoting the step's
 * declared reasons.
 *
 * Messages crossing the thread boundary are decoded with io-ts on both sides; a failing worker (bad checkpoint,
 * backend failure, a throw, an exit) becomes a Left naming its shard, and every worker is terminated when the
 * run ends, whichever way it ends.
 *
 * @module pipeline/workers
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { codec, random, BACKEND_CHOICES, type BackendChoice, type Key } from '@score-sde/tensor-fp';
import type { SDE } from '@score-sde/sde-math';
import { SamplerSpec, samplerFromSpec } from '@score-sde/solvers';
import { microBatchRanges } from '@score-sde/models';
import { Weights } from './model';
import { SamplerName, GuidanceWeights } from './samplers';
import type { DrawProgress, Drawn, ItemRange } from './draw';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/**
 * What one worker is asked to do (its `workerData`, decoded with io-ts in the worker): load `checkpoint`, build
 * the sampler of `spec` for the checkpoint's SDE, and draw its `keys` (in one chunk) with sample shape
 * `sampleShape`, mapped from the model's `dataRange` to images in [0, 1] when given, on `backend` with the `weights` of
 * the checkpoint. The score is the model's own, or with `named` the score of that named sampler as this process builds
 * it (pipeline's `scoreOfNamed`): given each sample's label when the sampler is labelled (a class-conditional
 * checkpoint's s(x | y_b), y_b from key b: models' `sampleLabels`), guided by the model without the label and/or by the
 * guide checkpoint at `named.guide`, with `named.guidance` in place of its own weights when given; its NFE then counts
 * network evaluations (`networksAt`), as here.
 * @category model
 */
export const ShardJob = codec.strictWithOptional(
  {
    shard: codec.NonNegativeInt,
    checkpoint: t.string,
    spec: SamplerSpec,
    keys: t.array(random.KeyCodec),
    sampleShape: t.array(codec.PositiveInt),
    backend: codec.oneOf(BACKEND_CHOICES, 'BackendChoice'),
    weights: Weights,
  },
  {
    dataRange: t.tuple([codec.Finite, codec.Finite]),
    named: codec.strictWithOptional({ name: SamplerName }, { guide: t.string, guidance: GuidanceWeights }, 'NamedScore'),
  },
  'ShardJob',
);
export type ShardJob = t.TypeOf<typeof ShardJob>;

/**
 * A typed array of the given kind from any realm (a worker's message arrives in the main realm, Jest's tests run in
 * another, so `instanceof` would fail): recognised by its tag. @category model
 */
const typedArrayC = <A extends Float32Array | Int32Array>(name: 'Float32Array' | 'Int32Array'): t.Type<A, A, unknown> => {
  const is = (u: unknown): u is A => Object.prototype.toString.call(u) === `[object ${name}]`;
  return new t.Type<A, A, unknown>(name, is, (u, c) => (is(u) ? t.success(u) : t.failure(u, c)), t.identity);
};

/** A Float32Array from any realm. @category model */
export const Float32ArrayC = typedArrayC<Float32Array>('Float32Array');

/** An Int32Array from any realm. @category model */
export const Int32ArrayC = typedArrayC<Int32Array>('Int32Array');

/**
 * What a worker posts: `progress` reports of its draw (grid intervals done of total, the running NFE), then either
 * `done` (the drawn batch, row-major [keys, ...sampleShape], and its work) or `failed` with a readable message.
 * @category model
 */
export const ShardMessage = t.union(
  [
    codec.strict({ kind: t.literal('progress'), done: codec.NonNegativeInt, total: codec.PositiveInt, nfe: codec.NonNegativeInt }, 'ShardProgress'),
    codec.strict(
      {
        kind: t.literal('done'),
        samples: Float32ArrayC,
        shape: t.array(codec.PositiveInt),
        nfe: codec.NonNegativeFinite,
        nfeTotal: codec.NonNegativeInt,
        seconds: codec.NonNegativeFinite,
        backend: t.string,
      },
      'ShardDone',
    ),
    codec.strict({ kind: t.literal('failed'), message: t.string }, 'ShardFailed'),
  ],
  'ShardMessage',
);
export type ShardMessage = t.TypeOf<typeof ShardMessage>;

/** A worker's progress report, for progress displays. @category model */
export interface WorkerProgress extends DrawProgress {
  readonly shard: number;
}

/** What {@link drawInWorkers} needs. @category model */
export interface WorkerOptions {
  /** Checkpoint directory (see `loadCheckpoint`); every worker loads it. */
  readonly checkpoint: string;
  /** The checkpoint's SDE, for which the spec's sampler is built (to read its batch coupling before any worker starts). */
  readonly sde: SDE;
  /** The sampler as JSON; must be batch-separable. */
  readonly spec: SamplerSpec;
  /** One key per sample, in output order. */
  readonly keys: ReadonlyArray<Key>;
  readonly sampleShape: ReadonlyArray<number>;
  /** Clip every value to [lo, hi] (the data range). */
  readonly dataRange?: readonly [number, number];
  /** Number of worker threads W ≥ 1 (at most one per sample is started). */
  readonly workers: number;
  /** Backend of every worker (default 'wasm'). */
  readonly backend?: BackendChoice;
  /** wasm threads of every worker (`SCORE_SDE_WASM_THREADS` in the worker; default 1: W workers on W cores). */
  readonly wasmThreads?: number;
  /** Weights that sample (default 'ema'). */
  readonly weights?: Weights;
  /**
   * Draw with the score of this named sampler (labelled and guided ones included; its `guide` checkpoint directory for an
   * autoguided one) rather than the model's own score.
   */
  readonly named?: { readonly name: SamplerName; readonly guide?: string; readonly guidance?: GuidanceWeights };
  /** Called on every progress message of a worker. */
  readonly onProgress?: (p: WorkerProgress) => void;
  /** Aborting terminates the workers; the result is then a Left `Cancelled`. */
  readonly signal?: AbortSignal;
}

/**
 * The concatenated batch, its shape [n, ...sampleShape], the NFE per sample path (nfeTotal / n, nfeTotal the sum of
 * the shards'), wall seconds, and each shard's work.
 * @category model
 */
export interface WorkerSamples extends Omit<Drawn, 'memory'> {
  readonly shards: ReadonlyArray<ItemRange & { readonly nfe: number; readonly seconds: number; readonly backend: string }>;
}

/** Why a run over workers produced no batch. Each case says which option or worker. @category errors */
export type WorkerError =
  | { readonly _tag: 'InvalidOptions'; readonly message: string }
  | { readonly _tag: 'BatchCoupled'; readonly message: string }
  | { readonly _tag: 'WorkerFailed'; readonly shard: number; readonly range: ItemRange; readonly message: string }
  | { readonly _tag: 'Cancelled' };

/** A readable message. @category errors */
export const renderWorkerError = (e: WorkerError): string => {
  switch (e._tag) {
    case 'InvalidOptions':
    case 'BatchCoupled':
      return `sampling in workers: ${e.message}`;
    case 'WorkerFailed':
      return `sampling in workers: worker ${e.shard} (samples ${e.range.start}..${e.range.end - 1}): ${e.message}`;
    case 'Cancelled':
      return 'sampling in workers: cancelled';
  }
};

// -------------------------------------------------------------------------------------
// pure parts
// -------------------------------------------------------------------------------------

/**
 * Splits n samples into min(W, n) contiguous shards whose sizes differ by at most one (the first n mod W' get
 * ⌈n/W'⌉): shard w = [Σ_{v<w} size_v, Σ_{v≤w} size_v) — models' `microBatchRanges`, the split of a batch into parts.
 * @category sharding
 */
export const shardRanges = (n: number, workers: number): ReadonlyArray<ItemRange> => (n === 0 ? [] : microBatchRanges(n, workers));

/** Concatenates the shards' rows in order. */
const concatenate = (parts: ReadonlyArray<Float32Array>): Float32Array => {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

const checkOptions = (o: WorkerOptions): string | undefined => {
  if (!Number.isSafeInteger(o.workers) || o.workers < 1) return `workers: expected a positive integer, got ${o.workers}`;
  if (o.keys.length === 0) return 'keys: need one key per sample (got none)';
  if (o.wasmThreads !== undefined && (!Number.isSafeInteger(o.wasmThreads) || o.wasmThreads < 1)) return `wasmThreads: expected a positive integer, got ${o.wasmThreads}`;
  return undefined;
};

// -------------------------------------------------------------------------------------
// workers
// -------------------------------------------------------------------------------------

/** The worker entry (TypeScript, run through tsx's loader in the worker). @category workers */
export const WORKER_FILE = path.join(__dirname, 'worker.ts');

/**
 * The worker's bootstrap: tsx's CommonJS hooks, then the TypeScript entry. (Not `execArgv: ['--import', 'tsx']`:
 * in Node 20 the ESM hooks that registers do not apply to a worker's own entry, which then fails with
 * ERR_UNKNOWN_FILE_EXTENSION — tsx issue 354.) Absolute paths, so it works whatever the working directory, under
 * tsx and under Jest alike.
 */
const bootstrap = (): string =>
  `require(${JSON.stringify(require.resolve('tsx/cjs/api'))}).register();\nrequire(${JSON.stringify(WORKER_FILE)});\n`;

type ShardOutcome = E.Either<string, { readonly samples: Float32Array; readonly nfe: number; readonly nfeTotal: number; readonly seconds: number; readonly backend: string }>;

/**
 * Runs one worker to its outcome: the `done` batch, or a message for `failed`, an uncaught error, an
 * undecodable message, or an exit before `done`. The worker is terminated before the promise settles.
 */
const runWorker = (job: ShardJob, wasmThreads: number, onProgress: ((p: WorkerProgress) => void) | undefined, signal: AbortSignal): Promise<ShardOutcome> =>
  new Promise<ShardOutcome>((resolve) => {
    let settled = false;
    let worker: Worker | undefined;
    const finish = (r: ShardOutcome): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      const w = worker;
      if (w === undefined) return resolve(r);
      w.removeAllListeners();
      // Swallow late errors (e.g. an 'error' racing terminate) once the outcome is known.
      w.on('error', () => undefined);
      w.terminate().then(
        () => resolve(r),
        () => resolve(r),
      );
    };
    const onAbort = (): void => finish(E.left('cancelled'));
    if (signal.aborted) return resolve(E.left('cancelled'));
    signal.addEventListener('abort', onAbort);
    try {
      worker = new Worker(bootstrap(), {
        eval: true,
        workerData: job,
        // The process's flags (e.g. tsx's loader under the tsx CLI) are not needed: the bootstrap registers tsx.
        execArgv: [],
        env: { ...process.env, SCORE_SDE_WASM_THREADS: String(wasmThreads) },
      });
    } catch (e) {
      return finish(E.left(`could not start the worker: ${(e as Error).message}`));
    }
    worker.on('message', (m: unknown) => {
      const decoded = codec.decodeWith(ShardMessage, 'worker message')(m);
      if (E.isLeft(decoded)) return finish(E.left(codec.renderDecodeError(decoded.left)));
      const msg = decoded.right;
      if (msg.kind === 'progress') onProgress?.({ shard: job.shard, done: msg.done, total: msg.total, nfe: msg.nfe });
      else if (msg.kind === 'failed') finish(E.left(msg.message));
      else {
        const expected = job.keys.length * job.sampleShape.reduce((a, b) => a * b, 1);
        if (msg.samples.length !== expected) finish(E.left(`posted ${msg.samples.length} values, expected ${expected} (${job.keys.length} samples of [${job.sampleShape.join(', ')}])`));
        // A copy in this realm (the message's array may belong to another one, e.g. under Jest).
        else finish(E.right({ samples: new Float32Array(msg.samples), nfe: msg.nfe, nfeTotal: msg.nfeTotal, seconds: msg.seconds, backend: msg.backend }));
      }
    });
    worker.on('messageerror', (e) => finish(E.left(`a message could not be deserialised: ${e.message}`)));
    worker.on('error', (e) => finish(E.left(`uncaught error: ${e.message}`)));
    worker.on('exit', (code) => finish(E.left(`exited with code ${code} before posting its samples`)));
  });

/**
 * Why a specification's sampler may not be split over workers: the reasons its step declares (`batchCoupling`), or
 * why it cannot be built for the SDE; undefined when it is batch-separable.
 * @category sharding
 */
export const couplingOf = (sde: SDE, spec: SamplerSpec): string | undefined => {
  const sampler = samplerFromSpec(sde, spec);
  if (E.isLeft(sampler)) return sampler.left.problems.join('; ');
  const reasons = sampler.right.step.batchCoupling;
  return reasons.length > 0 ? `its step ${sampler.right.step.name} couples the samples of a batch: ${reasons.join('; ')}` : undefined;
};

/**
 * Draws n = keys.length samples of a batch-separable sampler in W worker threads, each drawing a contiguous
 * shard of the keys (see {@link shardRanges}), and concatenates the shards in order: bit-identical to drawing
 * all n in one process with the same keys, backend and weights. Left when the options are invalid, the
 * sampler couples its batch ({@link couplingOf}), a worker fails (the first failure, naming its shard; the
 * others are then stopped), or the signal aborts. Every worker is terminated before the task resolves.
 * @category sampling
 */
export const drawInWorkers =
  (o: WorkerOptions): TE.TaskEither<WorkerError, WorkerSamples> =>
  async () => {
    const invalid = checkOptions(o);
    if (invalid !== undefined) return E.left({ _tag: 'InvalidOptions', message: invalid });
    const coupled = couplingOf(o.sde, o.spec);
    if (coupled !== undefined) return E.left({ _tag: 'BatchCoupled', message: `sampler ${JSON.stringify(o.spec)} cannot be split over workers without changing its samples: ${coupled}` });
    const started = Date.now();
    const ranges = shardRanges(o.keys.length, o.workers);
    // One controller stops every worker: on the caller's abort and on the first failure.
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    const cancelled = (): boolean => o.signal?.aborted === true;
    if (cancelled()) return E.left({ _tag: 'Cancelled' });
    o.signal?.addEventListener('abort', onAbort);
    let firstFailure: WorkerError | undefined;
    try {
      const outcomes = await Promise.all(
        ranges.map(async (range, shard) => {
          const job: ShardJob = {
            shard,
            checkpoint: o.checkpoint,
            spec: o.spec,
            keys: o.keys.slice(range.start, range.end).map((k) => [k[0], k[1]] as const),
            sampleShape: [...o.sampleShape],
            backend: o.backend ?? 'wasm',
            weights: o.weights ?? 'ema',
            ...(o.dataRange !== undefined ? { dataRange: [o.dataRange[0], o.dataRange[1]] as [number, number] } : {}),
            ...(o.named !== undefined ? { named: o.named } : {}),
          };
          const r = await runWorker(job, o.wasmThreads ?? 1, o.onProgress, stop.signal);
          if (E.isLeft(r) && firstFailure === undefined && !(r.left === 'cancelled' && stop.signal.aborted)) {
            firstFailure = { _tag: 'WorkerFailed', shard, range, message: r.left };
            stop.abort();
          }
          return r;
        }),
      );
      if (firstFailure !== undefined) return E.left(firstFailure);
      if (cancelled()) return E.left({ _tag: 'Cancelled' });
      const done = outcomes.map((r) => (E.isRight(r) ? r.right : undefined));
      if (done.some((d) => d === undefined)) return E.left({ _tag: 'Cancelled' });
      const shards = done.map((d, i) => ({ ...ranges[i]!, nfe: d!.nfe, seconds: d!.seconds, backend: d!.backend }));
      const nfeTotal = done.reduce((a, d) => a + d!.nfeTotal, 0);
      return E.right({
        samples: concatenate(done.map((d) => d!.samples)),
        shape: [o.keys.length, ...o.sampleShape],
        nfe: nfeTotal / o.keys.length,
        nfeTotal,
        seconds: (Date.now() - started) / 1000,
        shards,
      });
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  };
