/**
 * The one draw routine of the experiments: n samples in chunks of at most `batch`, each chunk a run of a sampler
 * from the prior (solvers' `sample`: the denoised x̂₀ at t = 0 by default), mapped from the model's data range to images in
 * [0, 1] and clipped, collected
 * into one float32 array, with progress reported through a callback and a memory reading at the end. Every
 * command draws through it: `experiments:mnist` (in process and in each worker thread of `--workers`),
 * `experiments:mnist-eval` (sampler comparison, class-conditional samples, inpainting), and each `--shard`.
 *
 * Sample b uses keys[b] whatever the chunking. A batch-separable sampler (no `batchCoupling` on its step) gives
 * sample b as a function of keys[b] alone; a batch-coupled one (the adaptive ODE's shared step size) gives the
 * same samples for the same chunks, so a key range that starts and ends on chunk boundaries
 * ({@link chunkAlignedRange}) is computed exactly as in the whole run.
 *
 * @module pipeline/draw
 */
import * as E from 'fp-ts/Either';
import { tf, type Key } from '@score-sde/tensor-fp';
import type { ScoreFn } from '@score-sde/sde-math';
import { type Sampler, type SamplerError, countingScore, sample, stepCount } from '@score-sde/solvers';
import { rangeToImages, faults } from '@score-sde/models';
import { memory, progress } from '../lib';
import { type ExperimentError, fail, interrupted } from './messages';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** What chunk [start, start + size) of the keys is drawn with; `release` frees what the setup made. @category model */
export interface ChunkSetup {
  readonly sampler: Sampler;
  readonly score: ScoreFn;
  /**
   * Network evaluations of one score evaluation at t (a guided score evaluates two or three networks, perhaps only on
   * an interval of noise levels): the draw's NFE then counts networks, Σ over its score evaluations. Absent: 1.
   */
  readonly networks?: (t: number) => number;
  readonly release?: () => void;
}

/** Where a draw stands: `done` of `total` grid intervals over all chunks, and the running chunk's score evaluations. @category model */
export interface DrawProgress {
  readonly done: number;
  readonly total: number;
  readonly nfe: number;
}

/** Options of {@link draw}. @category model */
export interface DrawOptions {
  /** Samples per sampler run (memory; and the coupling unit of a batch-coupled sampler). */
  readonly batch: number;
  readonly sampleShape: ReadonlyArray<number>;
  /**
   * The model's data range [lo, hi]: every value is mapped to an image value (x − lo)/(hi − lo) and clipped to
   * [0, 1] (models' `rangeToImages`); absent: kept as drawn.
   */
  readonly dataRange?: readonly [number, number];
  readonly onProgress?: (p: DrawProgress) => void;
  /** Aborting it stops the draw at the next step: a Left with `interrupted`. */
  readonly signal?: AbortSignal;
  /**
   * The fault point of the draw's steps (models/faults, test-only): `<faultPoint>:<i>` is passed before step i,
   * counted from 1 over all chunks (e.g. `sample:em:3`).
   */
  readonly faultPoint?: string;
}

/**
 * Drawn samples: row-major [n, ...sampleShape] float32 values, the score (or, weighed by the setup, network) evaluations per sample path (mean over
 * chunks weighted by their size: nfeTotal / n, with nfeTotal = Σ_chunks nfe · size an integer, so shards add up
 * exactly), wall seconds, and memory after the draw.
 * @category model
 */
export interface Drawn {
  readonly samples: Float32Array;
  readonly shape: ReadonlyArray<number>;
  readonly nfe: number;
  readonly nfeTotal: number;
  readonly seconds: number;
  readonly memory: memory.MemoryReading;
}

/** A one-line account of a sampler's failure. @category errors */
export const renderSamplerError = (e: SamplerError): string => {
  switch (e._tag) {
    case 'Cancelled':
      return `cancelled at t = ${e.t}`;
    case 'InvalidGrid':
    case 'InvalidStart':
      return e.message;
    case 'NonFinite':
      return `the samples hold NaN or ±Infinity after ${e.nfe} score evaluations`;
    case 'SolverFailed':
      return `the adaptive solver failed (${e.failure._tag} at t = ${e.failure.t})`;
  }
};

// -------------------------------------------------------------------------------------
// ranges
// -------------------------------------------------------------------------------------

/** A contiguous range [start, end) of item indices. @category ranges */
export interface ItemRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The items of shard `index` of `count` when n items are drawn in chunks of `batch`: whole chunks only, shard i
 * getting chunks [⌊i·C/count⌋, ⌊(i+1)·C/count⌋) of the C = ⌈n/batch⌉ chunks. The shards cover [0, n) in order,
 * and each chunk is drawn exactly as in the whole run (so even a batch-coupled sampler gives the same samples).
 * A shard may be empty when count > C.
 * @category ranges
 */
export const chunkAlignedRange = (n: number, batch: number, index: number, count: number): ItemRange => {
  const chunks = Math.ceil(n / batch);
  const from = Math.floor((index * chunks) / count);
  const to = Math.floor(((index + 1) * chunks) / count);
  return { start: Math.min(n, from * batch), end: Math.min(n, to * batch) };
};

// -------------------------------------------------------------------------------------
// drawing
// -------------------------------------------------------------------------------------

/**
 * Draws keys.length samples, chunk by chunk: chunk [s, s + m) runs `setup(s, m)`'s sampler on its score from the
 * prior with keys[s … s + m). Left (naming `label`) when a run fails or the signal aborts it (then `interrupted`);
 * nothing is left allocated either way.
 * @category drawing
 */
export const draw = async (
  keys: ReadonlyArray<Key>,
  setup: (start: number, size: number) => ChunkSetup,
  o: DrawOptions,
  label: string,
): Promise<E.Either<ExperimentError, Drawn>> => {
  const n = keys.length;
  const per = o.sampleShape.reduce((a, b) => a * b, 1);
  const samples = new Float32Array(n * per);
  const started = Date.now();
  const chunks = Math.ceil(n / o.batch);
  let nfeTotal = 0;
  for (let c = 0, start = 0; start < n; c++, start += o.batch) {
    const size = Math.min(o.batch, n - start);
    const s = setup(start, size);
    const steps = stepCount(s.sampler);
    const total = chunks * steps;
    let done = c * steps;
    // Adaptive solvers take many evaluations per grid interval: report the running count between intervals.
    let networks = 0;
    const weigh = s.networks;
    const counted = countingScore(
      weigh === undefined
        ? s.score
        : (x, t) => {
            networks += weigh(t);
            return s.score(x, t);
          },
      (calls) => o.onProgress?.({ done, total, nfe: calls }),
    );
    const point = (i: number): void => {
      if (o.faultPoint !== undefined) faults.pointSync(`${o.faultPoint}:${c * steps + i}`);
    };
    try {
      point(1);
      const r = await sample(s.sampler, counted.score, {
        keys: keys.slice(start, start + size),
        sampleShape: o.sampleShape,
        ...(o.signal !== undefined ? { signal: o.signal } : {}),
        onStep: (p) => {
          done = c * steps + p.step;
          o.onProgress?.({ done, total, nfe: p.nfe });
          if (p.step < steps) point(p.step + 1);
        },
      })();
      if (E.isLeft(r)) return (r.left._tag === 'Cancelled' ? interrupted : fail)(`${label}: ${renderSamplerError(r.left)}`);
      const x = o.dataRange === undefined ? r.right.x : rangeToImages(o.dataRange, r.right.x);
      samples.set(x.dataSync() as Float32Array, start * per);
      tf.dispose([r.right.x, x]);
      nfeTotal += (weigh === undefined ? r.right.nfe : networks) * size;
    } catch (e) {
      return fail(`${label}: ${(e as Error).message}`);
    } finally {
      s.release?.();
    }
  }
  return E.right({ samples, shape: [n, ...o.sampleShape], nfe: n === 0 ? 0 : nfeTotal / n, nfeTotal, seconds: (Date.now() - started) / 1000, memory: memory.readMemory() });
};

/**
 * A progress bar fed by {@link DrawProgress} reports: created at the first report (when the total is known),
 * advanced to `done`, its extra field the running NFE (redrawn every 5 evaluations between intervals).
 * @category drawing
 */
export const drawProgressBar = (label: string, quiet: boolean): { readonly onProgress: (p: DrawProgress) => void; readonly stop: () => void } => {
  let bar: progress.Progress | undefined;
  let shown = 0;
  return {
    onProgress: (p) => {
      bar ??= progress.withProgress(label, p.total, { quiet });
      if (p.done > shown) {
        bar.tick(p.done - shown, { nfe: p.nfe });
        shown = p.done;
      } else if (p.nfe % 5 === 0) bar.tick(0, { nfe: p.nfe });
    },
    stop: () => bar?.stop(),
  };
};

/** {@link draw} with a {@link drawProgressBar} labelled `label`. @category drawing */
export const drawWithBar = async (
  keys: ReadonlyArray<Key>,
  setup: (start: number, size: number) => ChunkSetup,
  o: Omit<DrawOptions, 'onProgress'> & { readonly quiet: boolean },
  label: string,
): Promise<E.Either<ExperimentError, Drawn>> => {
  const bar = drawProgressBar(label, o.quiet);
  try {
    return await draw(keys, setup, { ...o, onProgress: bar.onProgress }, label);
  } finally {
    bar.stop();
  }
};

