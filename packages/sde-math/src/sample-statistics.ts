/**
 * Statistics of samples, as plain float64 arithmetic on row-major [n, D] arrays (no tensors): the checks that
 * compare a sampler's output with a known law (the toy command, the sampler benchmark, the property tests)
 * and the error bars of the evaluation.
 *
 * - moments: the sample mean x̄ = (1/n) Σ_i x_i and the unbiased covariance S = (1/(n−1)) Σ_i (x_i − x̄)(x_i − x̄)ᵀ;
 * - mean ± standard error of scalars: x̄ ± s/√n;
 * - the energy distance (Székely & Rizzo 2013) between two samples, with its jackknife standard error;
 * - the component fractions of a Gaussian mixture: mean responsibilities, an unbiased estimate of the weights;
 * - the standard normal law's distribution function Φ.
 *
 * @module sample-statistics
 */
import { type GaussianMixture, componentPosteriorAt, mixtureDim } from './mixture';

// -------------------------------------------------------------------------------------
// moments
// -------------------------------------------------------------------------------------

/** Per-coordinate sample mean x̄_j = (1/n) Σ_i x_ij of row-major [n, D] data. @category moments */
export const sampleMean = (x: ArrayLike<number>, D: number): Float64Array => {
  const n = x.length / D;
  const m = new Float64Array(D);
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) m[j] = m[j]! + x[i * D + j]! / n;
  return m;
};

/** Unbiased sample covariance S_jk = (1/(n−1)) Σ_i (x_ij − x̄_j)(x_ik − x̄_k) (D × D) of row-major [n, D] data. @category moments */
export const sampleCovariance = (x: ArrayLike<number>, D: number): ReadonlyArray<Float64Array> => {
  const n = x.length / D;
  const mu = sampleMean(x, D);
  const c = Array.from({ length: D }, () => new Float64Array(D));
  for (let i = 0; i < n; i++)
    for (let j = 0; j < D; j++) {
      const dj = x[i * D + j]! - mu[j]!;
      for (let k = j; k < D; k++) c[j]![k] = c[j]![k]! + (dj * (x[i * D + k]! - mu[k]!)) / (n - 1);
    }
  for (let j = 0; j < D; j++) for (let k = 0; k < j; k++) c[j]![k] = c[k]![j]!;
  return c;
};

/**
 * Sample mean and its standard error: x̄ = Σx/n, SE = s/√n with s² = Σ(x − x̄)²/(n − 1) (NaN for n < 2; both NaN
 * for n = 0).
 * @category moments
 */
export const meanAndStandardError = (xs: ArrayLike<number>): { readonly mean: number; readonly standardError: number } => {
  const n = xs.length;
  if (n === 0) return { mean: NaN, standardError: NaN };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += xs[i]!;
  const mean = sum / n;
  if (n < 2) return { mean, standardError: NaN };
  let v = 0;
  for (let i = 0; i < n; i++) v += (xs[i]! - mean) ** 2;
  return { mean, standardError: Math.sqrt(v / (n - 1) / n) };
};

/**
 * Sample quantile q ∈ [0, 1] by linear interpolation between order statistics (Hyndman & Fan's type 7, R's default):
 * with x₍₀₎ ≤ … ≤ x₍ₙ₋₁₎ and h = (n − 1) q, Q(q) = x₍⌊h⌋₎ + (h − ⌊h⌋)(x₍⌊h⌋₊₁₎ − x₍⌊h⌋₎); Q(½) is the median.
 * Throws a RangeError for an empty sample, a NaN in it or q outside [0, 1].
 * @category moments
 */
export const quantile = (xs: ArrayLike<number>, q: number): number => {
  const n = xs.length;
  if (n === 0 || !(q >= 0 && q <= 1)) throw new RangeError(`quantile: need a non-empty sample and q in [0, 1] (n = ${n}, q = ${q})`);
  const sorted = Float64Array.from(xs).sort();
  if (sorted.some(Number.isNaN)) throw new RangeError('quantile: the sample holds NaN');
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  return lo + 1 < n ? sorted[lo]! + (h - lo) * (sorted[lo + 1]! - sorted[lo]!) : sorted[lo]!;
};

// -------------------------------------------------------------------------------------
// distances
// -------------------------------------------------------------------------------------

const dist = (a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number, D: number): number => {
  let s = 0;
  for (let d = 0; d < D; d++) {
    const v = a[i * D + d]! - b[j * D + d]!;
    s += v * v;
  }
  return Math.sqrt(s);
};

/**
 * Energy distance (Székely & Rizzo 2013) between samples X and Y of equal size n (row-major [n, D]), as the
 * unbiased U-statistic
 *   E = 2·mean_{i,j}‖x_i − y_j‖ − mean_{i≠j}‖x_i − x_j‖ − mean_{i≠j}‖y_i − y_j‖
 * (zero in expectation when X and Y have the same law, positive otherwise), with its jackknife standard error
 * (leaving out the pair (x_i, y_i), computed from row sums in O(n²D)). Throws a RangeError unless n ≥ 3 for both.
 * @category distances
 */
export const energyDistance = (x: ArrayLike<number>, y: ArrayLike<number>, D: number): { readonly estimate: number; readonly standardError: number } => {
  const n = x.length / D;
  if (y.length / D !== n || n < 3) throw new RangeError(`energyDistance: needs two samples of the same size ≥ 3 (got ${n} and ${y.length / D})`);
  const rowXY = new Float64Array(n); // Σ_j ‖x_i − y_j‖
  const colXY = new Float64Array(n); // Σ_i ‖x_i − y_j‖
  const rowXX = new Float64Array(n);
  const rowYY = new Float64Array(n);
  const diag = new Float64Array(n); // ‖x_i − y_i‖
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const d = dist(x, i, y, j, D);
      rowXY[i] = rowXY[i]! + d;
      colXY[j] = colXY[j]! + d;
      if (i === j) diag[i] = d;
      if (j > i) {
        const dx = dist(x, i, x, j, D);
        const dy = dist(y, i, y, j, D);
        rowXX[i] = rowXX[i]! + dx;
        rowXX[j] = rowXX[j]! + dx;
        rowYY[i] = rowYY[i]! + dy;
        rowYY[j] = rowYY[j]! + dy;
      }
    }
  const sum = (a: Float64Array): number => a.reduce((s, v) => s + v, 0);
  const SA = sum(rowXY);
  const SX = sum(rowXX); // = 2 Σ_{i<j}
  const SY = sum(rowYY);
  const ed = (a: number, sx: number, sy: number, m: number): number => (2 * a) / (m * m) - sx / (m * (m - 1)) - sy / (m * (m - 1));
  const estimate = ed(SA, SX, SY, n);
  const loo = Float64Array.from({ length: n }, (_, i) => ed(SA - rowXY[i]! - colXY[i]! + diag[i]!, SX - 2 * rowXX[i]!, SY - 2 * rowYY[i]!, n - 1));
  const mean = sum(loo) / n;
  const standardError = Math.sqrt(((n - 1) / n) * loo.reduce((s, v) => s + (v - mean) ** 2, 0));
  return { estimate, standardError };
};

// -------------------------------------------------------------------------------------
// mixtures
// -------------------------------------------------------------------------------------

/**
 * Mean responsibilities f_k = (1/n) Σ_i p(k | x_i) under the mixture m, for row-major [n, D] samples x: an unbiased
 * estimate of the weight w_k when x ~ m (E p(k | x) = w_k).
 * @category mixtures
 */
export const componentFractions = (m: GaussianMixture, x: ArrayLike<number>): Float64Array => {
  const D = mixtureDim(m);
  const n = x.length / D;
  const f = new Float64Array(m.weights.length);
  const post = componentPosteriorAt(m);
  for (let i = 0; i < n; i++) post(Array.prototype.slice.call(x, i * D, (i + 1) * D) as number[]).forEach((r, k) => (f[k] = f[k]! + r / n));
  return f;
};

// -------------------------------------------------------------------------------------
// normal law
// -------------------------------------------------------------------------------------

/** erf(x) = (2/√π) Σ_n (−1)ⁿ x^{2n+1} / (n! (2n + 1)), summed until the terms stop changing it (|x| ≤ 3: terms ≤ 9ⁿ/n!). */
const erfSeries = (x: number): number => {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const next = sum + term / (2 * n + 1);
    if (next === sum) break;
    sum = next;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
};

/**
 * erfc(x) for x > 3 by its continued fraction, erfc(x) = (e^{−x²}/√π) · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))),
 * evaluated from the 80th level up (for x > 3 the tail beyond it changes nothing in float64).
 */
const erfcFraction = (x: number): number => {
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
};

/**
 * The standard normal distribution function Φ(z) = P(N(0, 1) ≤ z) = ½ erfc(−z/√2): erf's power series for |z|/√2 ≤ 3,
 * erfc's continued fraction beyond (so the far tails keep their relative precision).
 * @category normal law
 */
export const standardNormalCdf = (z: number): number => {
  if (Number.isNaN(z)) return Number.NaN;
  const x = z / Math.SQRT2;
  if (Math.abs(x) <= 3) return 0.5 * (1 + erfSeries(x));
  return x > 0 ? 1 - 0.5 * erfcFraction(x) : 0.5 * erfcFraction(-x);
};
