/**
 * Evaluating a classifier on many images: features and probabilities in batches, predictions, class summaries
 * (histogram, mean max-probability, histogram entropy) and accuracies, clean and on perturbed images.
 *
 * @module classifier/evaluation
 */
import { tf, random, type Key } from '@score-sde/tensor-fp';
import { type SDE, perturb } from '@score-sde/sde-math';
import type { TensorRecord } from '../params';
import { type MnistData, imageBatch } from '../mnist';
import { type DataRange, UNIT_RANGE, imagesToRange } from '../data-range';
import { type ClassifierConfig, classifierFeatures, classifierLogits } from './architecture';

// -------------------------------------------------------------------------------------
// evaluation in batches
// -------------------------------------------------------------------------------------

/** Runs `f` on consecutive slices of at most `batchSize` rows of x and concatenates the float32 results row-wise. */
const inBatches = (x: tf.Tensor, batchSize: number, f: (xb: tf.Tensor) => tf.Tensor): { readonly data: Float32Array; readonly cols: number } => {
  const n = x.shape[0]!;
  const parts: Float32Array[] = [];
  let cols = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const out = tf.tidy(() => f(tf.slice(x, start, size)));
    cols = out.shape[1]!;
    parts.push(out.dataSync() as Float32Array);
    out.dispose();
  }
  const data = new Float32Array(n * cols);
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  return { data, cols };
};

/** Penultimate features of every image of x [N, H, W, 1], in batches, as float64 [N·featureDim] (for gaussianStats). @category evaluation */
export const featuresInBatches = (config: ClassifierConfig, params: TensorRecord, x: tf.Tensor, batchSize = 256): Float64Array =>
  Float64Array.from(inBatches(x, batchSize, (xb) => classifierFeatures(config, params)(xb)).data);

/** Class probabilities softmax(logits) of every image of x [N, H, W, 1], in batches: [N·numClasses]. @category evaluation */
export const probabilitiesInBatches = (config: ClassifierConfig, params: TensorRecord, x: tf.Tensor, batchSize = 256): Float32Array =>
  inBatches(x, batchSize, (xb) => tf.softmax(classifierLogits(config, params)(xb))).data;

/** What a clean classifier says about a set of images. @category evaluation */
export interface ClassSummary {
  /** argmax class of each image. */
  readonly predictions: Int32Array;
  /** Number of images per predicted class. */
  readonly histogram: ReadonlyArray<number>;
  /** Mean over images of max_y p(y | x) (confidence). */
  readonly meanMaxProb: number;
  /** Fraction of images the classifier calls confidently a digit: max_y p(y | x) ≥ {@link CONFIDENT}. */
  readonly confidentRate: number;
  /** Entropy of the normalised histogram, in bits (log₂ K for perfectly balanced classes). */
  readonly histogramEntropyBits: number;
}

/** H(h/Σh) = −Σ_k p_k log₂ p_k of a histogram (0 log 0 = 0). @category evaluation */
export const histogramEntropyBits = (histogram: ReadonlyArray<number>): number => {
  const total = histogram.reduce((a, b) => a + b, 0);
  return total === 0 ? 0 : histogram.reduce((s, h) => (h === 0 ? s : s + (h / total) * Math.log2(total / h)), 0);
};

/** The confidence threshold of the confident-class rate: max_y p(y | x) ≥ 0.9. @category evaluation */
export const CONFIDENT = 0.9;

/** Predictions, class histogram, mean max-probability, confident-class rate and histogram entropy from probabilities [N·K]. @category evaluation */
export const summariseProbabilities = (probs: ArrayLike<number>, numClasses: number): ClassSummary => {
  const n = Math.floor(probs.length / numClasses);
  const predictions = new Int32Array(n);
  const histogram = new Array<number>(numClasses).fill(0);
  let sumMax = 0;
  let confident = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < numClasses; k++) if (probs[i * numClasses + k]! > probs[i * numClasses + best]!) best = k;
    predictions[i] = best;
    histogram[best]!++;
    sumMax += probs[i * numClasses + best]!;
    if (probs[i * numClasses + best]! >= CONFIDENT) confident++;
  }
  return {
    predictions,
    histogram,
    meanMaxProb: n === 0 ? NaN : sumMax / n,
    confidentRate: n === 0 ? NaN : confident / n,
    histogramEntropyBits: histogramEntropyBits(histogram),
  };
};

/** {@link summariseProbabilities} of a clean classifier on x [N, H, W, 1]. @category evaluation */
export const classSummary = (config: ClassifierConfig, params: TensorRecord, x: tf.Tensor, batchSize = 256): ClassSummary =>
  summariseProbabilities(probabilitiesInBatches(config, params, x, batchSize), config.numClasses);

/** Fraction of predictions equal to their labels. @category evaluation */
export const accuracy = (predictions: ArrayLike<number>, labels: ArrayLike<number>): number => {
  const n = Math.min(predictions.length, labels.length);
  let hits = 0;
  for (let i = 0; i < n; i++) if (predictions[i] === labels[i]) hits++;
  return n === 0 ? NaN : hits / n;
};

/** 0, 1, …, n − 1. */
const firstIndices = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => i);

/** argmax_y logits(x, t) of every image of x [N, H, W, 1], in batches (t only for a noise-conditional classifier). @category evaluation */
export const predictInBatches = (config: ClassifierConfig, params: TensorRecord, x: tf.Tensor, time?: number, batchSize = 256): Int32Array => {
  const n = x.shape[0]!;
  const out = new Int32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const p = tf.tidy(() => tf.argMax(classifierLogits(config, params)(tf.slice(x, start, size), time), 1));
    out.set(p.dataSync() as Int32Array, start);
    p.dispose();
  }
  return out;
};

/**
 * Accuracy of a classifier on the first n images of a split (at time t for a noise-conditional one, unperturbed, the
 * images in its data range).
 * @category evaluation
 */
export const accuracyOn = (config: ClassifierConfig, params: TensorRecord, data: MnistData, n = data.count, time?: number, range: DataRange = UNIT_RANGE): number => {
  const x = tf.tidy(() => imagesToRange(range, imageBatch(data, firstIndices(Math.min(n, data.count)))));
  const pred = predictInBatches(config, params, x, time);
  x.dispose();
  return accuracy(pred, data.labels.subarray(0, pred.length));
};

/** Times at which a noise-conditional classifier's accuracy is reported, as fractions of T. @category evaluation */
export const NOISY_ACCURACY_TIMES = [0.01, 0.1, 0.25, 0.5, 1] as const;

/**
 * Accuracy of a noise-conditional classifier on the first n test images perturbed to each time t:
 * x_t = m(t) y₀ + s(t) z (y₀ the images in the data range), image i's noise from foldIn(key, i).
 * @category evaluation
 */
export const noisyAccuracies = (
  config: ClassifierConfig,
  params: TensorRecord,
  sde: SDE,
  data: MnistData,
  n: number,
  key: Key,
  range: DataRange = UNIT_RANGE,
): ReadonlyArray<{ readonly t: number; readonly accuracy: number }> => {
  const count = Math.min(n, data.count);
  const x0 = tf.tidy(() => imagesToRange(range, imageBatch(data, firstIndices(count))));
  const out = NOISY_ACCURACY_TIMES.map((fraction, j) => {
    const time = fraction * sde.T;
    const xt = tf.tidy(() => perturb(sde)(x0, new Float32Array(count).fill(time), random.normalPerSample(Array.from({ length: count }, (_, i) => random.foldIn(random.foldIn(key, j), i)), [data.rows, data.cols, 1])).xt);
    const pred = predictInBatches(config, params, xt, time);
    xt.dispose();
    return { t: time, accuracy: accuracy(pred, data.labels.subarray(0, count)) };
  });
  x0.dispose();
  return out;
};
