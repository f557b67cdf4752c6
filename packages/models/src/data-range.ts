/**
 * The data range of a model: the interval [lo, hi] its data space maps images in [0, 1] to (the identity for
 * [0, 1]; [−1, 1] is the usual choice of image diffusion models). Training maps each batch into it, sampling maps
 * the samples back, and the likelihood adds the map's log-determinant (solvers' `imageBitsPerDim`).
 *
 * @module data-range
 */
import * as t from 'io-ts';
import { tf } from '@score-sde/tensor-fp';

/** A data range [lo, hi] with finite lo < hi. @category model */
export type DataRange = readonly [number, number];

const isRange = (u: unknown): u is DataRange =>
  Array.isArray(u) && u.length === 2 && u.every((v) => typeof v === 'number' && Number.isFinite(v)) && (u[0] as number) < (u[1] as number);

/** io-ts codec of a data range: `[lo, hi]`, finite, lo < hi. @category model */
export const DataRange = new t.Type<DataRange, DataRange, unknown>(
  'DataRange',
  isRange,
  (u, c) => (isRange(u) ? t.success([u[0], u[1]] as const) : t.failure(u, c, 'must be [lo, hi] with finite lo < hi')),
  t.identity,
);

/** The range of images as they are: [0, 1]. @category model */
export const UNIT_RANGE: DataRange = [0, 1];

/** Images in [0, 1] to a data range: lo + (hi − lo)·x (the same tensor for [0, 1]). @category maps */
export const imagesToRange = (range: DataRange, images: tf.Tensor): tf.Tensor => {
  const [lo, hi] = range;
  return lo === 0 && hi === 1 ? images : tf.tidy(() => tf.add(tf.mul(images, hi - lo), lo));
};

/** Values in a data range back to images in [0, 1]: clip((x − lo)/(hi − lo), 0, 1) (a new tensor). @category maps */
export const rangeToImages = (range: DataRange, x: tf.Tensor): tf.Tensor => {
  const [lo, hi] = range;
  return tf.tidy(() => tf.clipByValue(lo === 0 && hi === 1 ? x : tf.div(tf.sub(x, lo), hi - lo), 0, 1));
};

/** Whether two ranges are the same (absent = [0, 1]). @category maps */
export const sameRange = (a: DataRange | undefined, b: DataRange | undefined): boolean => {
  const [x, y] = [a ?? UNIT_RANGE, b ?? UNIT_RANGE];
  return x[0] === y[0] && x[1] === y[1];
};

/**
 * The smallest box holding every dequantised image of `levels` grey levels, in a data range. The cells centred on the
 * levels, x + (u − ½)/(levels − 1) with u ∈ [0, 1], reach half a cell past each end:
 *   [lo − w/2, hi + w/2],   w = (hi − lo)/(levels − 1)
 * (score_sde's cells (255x + u)/256 lie inside it too). A posterior mean E[x₀ | x_t] of data in a box lies in that box,
 * so a denoiser clipped to it (models' `denoiserRange`) gives up nothing the dequantised data allow.
 * @category maps
 */
export const dequantisedHull = (range: DataRange, levels = 256): DataRange => {
  const [lo, hi] = range;
  const half = (hi - lo) / (2 * (levels - 1));
  return [lo - half, hi + half];
};
