/**
 * Latent codes through the probability-flow ODE (Song et al., ICLR 2021, §4.3): the flow is a bijection between
 * data x(ε) and latents x(T), so encoding integrates it forward and decoding backward (adaptive Dormand–Prince
 * 5(4), rtol = atol = 1e-5 by default). Latents are approximately N(0, σ_p² I); interpolate them spherically.
 *
 * @module latent
 */
import * as E from 'fp-ts/Either';
import { tf } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, probabilityFlowDrift } from '@score-sde/sde-math';
import { type AdaptiveOptions, type IntegrationError, integrateAdaptive } from './adaptive';

/** Options of encoding/decoding: the data-side time ε (default 1e-5) and the solver's. @category model */
export interface LatentOptions extends AdaptiveOptions {
  readonly eps?: number;
}

/** A batch mapped through the flow, and the score evaluations it took. @category model */
export interface Mapped {
  readonly x: tf.Tensor;
  readonly nfe: number;
}

/** Encodes data x(ε) to the latent x(T) by the probability-flow ODE. The result is owned by the caller. @category latent */
export const encode = (sde: SDE, score: ScoreFn, x: tf.Tensor, opts: LatentOptions = {}): E.Either<IntegrationError, Mapped> =>
  flowBetween(sde, score, x, opts.eps ?? 1e-5, sde.T, opts);

/** Decodes a latent x(T) back to data x(ε) by the probability-flow ODE. The result is owned by the caller. @category latent */
export const decode = (sde: SDE, score: ScoreFn, z: tf.Tensor, opts: LatentOptions = {}): E.Either<IntegrationError, Mapped> =>
  flowBetween(sde, score, z, sde.T, opts.eps ?? 1e-5, opts);

/** The probability-flow map x(t0) ↦ x(t1). @category latent */
export const flowBetween = (
  sde: SDE,
  score: ScoreFn,
  x: tf.Tensor,
  t0: number,
  t1: number,
  opts: AdaptiveOptions = {},
): E.Either<IntegrationError, Mapped> => {
  let nfe = 0;
  const counted: ScoreFn = (xx, t) => {
    nfe += 1;
    return score(xx, t);
  };
  const r = integrateAdaptive(probabilityFlowDrift(sde, counted), x, t0, t1, opts);
  return E.isLeft(r) ? r : E.right({ x: r.right.y, nfe });
};

/**
 * Spherical interpolation per sample (Shoemake 1985), for Gaussian latents whose norms concentrate:
 *   slerp(z₀, z₁; α) = sin((1−α)θ)/sin θ · z₀ + sin(αθ)/sin θ · z₁,   cos θ = ⟨z₀, z₁⟩ / (‖z₀‖‖z₁‖),
 * falling back to linear interpolation when θ ≈ 0.
 * @category latent
 */
export const slerp = (z0: tf.Tensor, z1: tf.Tensor, alpha: number): tf.Tensor =>
  tf.tidy(() => {
    const B = z0.shape[0]!;
    const a = tf.reshape(z0, [B, -1]);
    const b = tf.reshape(z1, [B, -1]);
    const cos = tf.clipByValue(tf.div(tf.sum(tf.mul(a, b), 1, true), tf.mul(tf.norm(a, 'euclidean', 1, true), tf.norm(b, 'euclidean', 1, true))), -1, 1);
    const theta = tf.acos(cos);
    const sin = tf.sin(theta);
    const small = tf.less(sin, 1e-6);
    const safeSin = tf.where(small, tf.onesLike(sin), sin);
    const w0 = tf.where(small, tf.fill(sin.shape, 1 - alpha), tf.div(tf.sin(tf.mul(theta, 1 - alpha)), safeSin));
    const w1 = tf.where(small, tf.fill(sin.shape, alpha), tf.div(tf.sin(tf.mul(theta, alpha)), safeSin));
    return tf.reshape(tf.add(tf.mul(a, w0), tf.mul(b, w1)), z0.shape);
  });

/** n + 1 latents from z₀ to z₁ by {@link slerp} at α = i/n. @category latent */
export const interpolateLatents = (z0: tf.Tensor, z1: tf.Tensor, n: number): ReadonlyArray<tf.Tensor> =>
  Array.from({ length: n + 1 }, (_, i) => slerp(z0, z1, i / n));
