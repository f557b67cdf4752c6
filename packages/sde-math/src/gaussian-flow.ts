/**
 * The probability-flow ODE of Gaussian data in closed form: the exact reference for ODE integrators.
 *
 * Data N(μ, diag(s²)) under dx = f(t)·x dt + g(t) dw has marginals p_t = N(m(t) μ, diag(σ_t²)) with
 *   σ_t² = m(t)² s² + s(t)²,
 * so its score is −(x − m(t) μ)/σ_t² and the probability-flow ODE (Song et al., ICLR 2021, eq. 13),
 *   dx/dt = f(t) x − ½ g(t)² ∇ log p_t(x) = f(t) x + ½ g(t)² (x − m(t) μ)/σ_t²,
 * acts on each coordinate separately. With y = x − m(t) μ and m' = f m:
 *   dy/dt = f x − f m μ + ½ g² y/σ_t² = (f + ½ g²/σ_t²) y.
 * The variance obeys the moment ODE dσ_t²/dt = 2 f m² s² + (s(t)²)' = 2 f σ_t² + g² (since (s(t)²)' = 2 f s(t)² + g²),
 * hence d log σ_t / dt = f + ½ g²/σ_t², the same rate as y's. Therefore y/σ_t is constant along the flow, and
 *   x(t1) = m(t1) μ + (σ_{t1}/σ_{t0}) (x(t0) − m(t0) μ),
 * for any t0, t1 (forward or backward). The map sends N(m(t0)μ, σ_{t0}²) to N(m(t1)μ, σ_{t1}²), as it must.
 *
 * @module gaussian-flow
 */
import { tf, scoped } from '@score-sde/tensor-fp';
import { type SDE, marginalMeanCoef, marginalVariance } from './sde';

/** σ_t = √(m(t)² s² + s(t)²): the marginal std at time t of a coordinate whose data std is `std`. @category gaussian flow */
export const gaussianMarginalStd = (sde: SDE, std: number, t: number): number => {
  const m = marginalMeanCoef(sde, t);
  return Math.sqrt(m * m * std * std + marginalVariance(sde, t));
};

/**
 * Exact probability-flow map of data N(mean, diag(std²)) from time t0 to time t1, in float64:
 *   x(t1)_j = m(t1) μ_j + (σ_{t1,j}/σ_{t0,j}) (x(t0)_j − m(t0) μ_j),   σ_{t,j}² = m(t)² s_j² + s(t)².
 * `x` is a row-major batch [B, D] flattened (length a multiple of D = mean.length); coordinate j of every row
 * uses mean[j], std[j].
 * @category gaussian flow
 */
export const gaussianFlowMap =
  (sde: SDE, mean: ReadonlyArray<number>, std: ReadonlyArray<number>) =>
  (x: ArrayLike<number>, t0: number, t1: number): Float64Array => {
    const D = mean.length;
    if (std.length !== D || x.length % D !== 0)
      throw new RangeError(`gaussianFlowMap: mean (${D}), std (${std.length}) and x (${x.length}) lengths do not match`);
    const m0 = marginalMeanCoef(sde, t0);
    const m1 = marginalMeanCoef(sde, t1);
    const ratio = std.map((s) => gaussianMarginalStd(sde, s, t1) / gaussianMarginalStd(sde, s, t0));
    return Float64Array.from(x, (v, i) => {
      const j = i % D;
      return m1 * mean[j]! + ratio[j]! * (v - m0 * mean[j]!);
    });
  };

/**
 * Tensor form of {@link gaussianFlowMap}: x of shape [B, D] (or [B, …] with per-sample size D) in float32;
 * returns x(t1) with x's shape. Coefficients are computed in float64, then rounded once.
 * @category gaussian flow
 */
export const gaussianFlowMapTensor =
  (sde: SDE, mean: ReadonlyArray<number>, std: ReadonlyArray<number>) =>
  (x: tf.Tensor, t0: number, t1: number): tf.Tensor =>
    scoped(() => {
      const D = mean.length;
      const B = x.shape[0] ?? 1;
      if (std.length !== D || x.size !== B * D)
        throw new RangeError(`gaussianFlowMapTensor: mean (${D}), std (${std.length}) and x [${x.shape.join(', ')}] do not match`);
      const m0 = marginalMeanCoef(sde, t0);
      const m1 = marginalMeanCoef(sde, t1);
      const ratio = std.map((s) => gaussianMarginalStd(sde, s, t1) / gaussianMarginalStd(sde, s, t0));
      // x(t1) = ratio ⊙ x + (m1 − ratio m0) μ
      const scale = tf.tensor2d(Float32Array.from(ratio), [1, D]);
      const shift = tf.tensor2d(Float32Array.from(mean, (mu, j) => (m1 - ratio[j]! * m0) * mu), [1, D]);
      return tf.reshape(tf.add(tf.mul(tf.reshape(x, [B, D]), scale), shift), x.shape);
    });
