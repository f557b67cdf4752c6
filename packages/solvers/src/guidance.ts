/**
 * Controllable generation as score transforms (Song et al., ICLR 2021, §5 and App. I): a transformed score is a
 * score, so it works with every sampler, ODE ones included.
 *
 * @module guidance
 */
import { tf } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, type GaussianMixture, componentLogProbs, marginalMixture, noiseLevel } from '@score-sde/sde-math';

/** A noise-conditional log-likelihood log p_t(y | x) of a fixed label y, per sample: [B]. @category model */
export type LogLikelihoodFn = (x: tf.Tensor, t: number) => tf.Tensor;

/** The score scaled by a constant: c · s(x, t) (a temperature: c = 1/τ² sharpens p_t). @category transforms */
export const scaleScore =
  (score: ScoreFn, c: number): ScoreFn =>
  (x, t) =>
    tf.tidy(() => tf.mul(score(x, t), c));

/** ∇ₓ log p_t(y | x) of a log-likelihood by autodiff (samples are independent, so ∇ of the batch sum). @category transforms */
export const logLikelihoodGradient =
  (logLik: LogLikelihoodFn): ScoreFn =>
  (x, t) =>
    tf.tidy(() => tf.grad((xx: tf.Tensor) => tf.sum(logLik(xx, t)))(x));

/**
 * Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"): a model's score
 * extrapolated away from a weaker model of the same data (the same network earlier in its training, say),
 *   s_w(x, t) = s_weak(x, t) + w (s(x, t) − s_weak(x, t)),
 * w = 1 the model itself, w > 1 away from what the weaker model gets wrong more. Linear in the scores, so the same
 * in denoiser form, D_w = D_weak + w (D − D_weak). Two network evaluations per call. For Gaussian models N(μ, v)
 * and N(μ, v_weak) under a VE SDE it is the score of a Gaussian of precision w/(v + σ²) + (1 − w)/(v_weak + σ²), and
 * the probability flow from σ_max² ≫ v, v_weak ends at variance v^w v_weak^(1 − w): a geometric extrapolation.
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import { tf } from '@score-sde/tensor-fp';
 * import { ve, exactScore, gaussian } from '@score-sde/sde-math';
 * import { autoguidance } from '@score-sde/solvers';
 *
 * const sde = ve();
 * const guided = autoguidance(exactScore(sde, gaussian([0], [0.5])), exactScore(sde, gaussian([0], [1])), 2);
 * const x = tf.tensor2d([[1]]);
 * // at t with σ_t² = 1 − σ_min² ≈ 1: 2 · (−1/1.25) − (−1/2) = −1.1
 * const t = Math.log(1 / 0.01) / Math.log(50 / 0.01);
 * const s = guided(x, t);
 * assert.ok(Math.abs(s.dataSync()[0]! + 1.1) < 1e-3);
 * tf.dispose([x, s]);
 * ```
 * @category transforms
 */
export const autoguidance =
  (score: ScoreFn, weaker: ScoreFn, w: number): ScoreFn =>
  (x, t) =>
    tf.tidy(() => {
      const weak = weaker(x, t);
      return tf.add(weak, tf.mul(tf.sub(score(x, t), weak), w));
    });

/**
 * Classifier-free guidance (Ho & Salimans 2022): one network trained with and without labels gives the conditional
 * score s(x | y) and the unconditional s(x | ∅), and
 *   s_w(x, t) = s(x | ∅) + w (s(x | y) − s(x | ∅)),
 * autoguidance with the unconditional score as the weaker model: w = 1 is the conditional score, w > 1 extrapolates
 * away from the unconditional one (sharper class identity, less diversity). Two score evaluations per call.
 * @category transforms
 */
export const classifierFreeGuidance = (conditional: ScoreFn, unconditional: ScoreFn, w: number): ScoreFn => autoguidance(conditional, unconditional, w);

/** An interval (σ_lo, σ_hi] of noise levels σ = s(t)/m(t). @category model */
export type NoiseInterval = readonly [number, number];

/** Whether the noise level σ(t) = s(t)/m(t) of an SDE at t lies in (σ_lo, σ_hi]. @category transforms */
export const inNoiseInterval = (sde: SDE, [lo, hi]: NoiseInterval, t: number): boolean => {
  const sigma = noiseLevel(sde, t);
  return sigma > lo && sigma <= hi;
};

/**
 * Guidance on an interval of noise levels only (Kynkäänniemi et al. 2024, "Applying guidance in a limited interval
 * improves sample and distribution quality in diffusion models"):
 *   s_I(x, t) = s_guided(x, t) when σ(t) ∈ (σ_lo, σ_hi], s(x, t) otherwise,
 * σ(t) = s(t)/m(t). Guidance at the highest noise levels costs diversity and at the lowest only sharpens detail; outside
 * the interval the plain score needs one network evaluation instead of two or three. For Gaussian models under a VE
 * SDE the probability flow of {@link autoguidance} on an interval contracts x − μ by the product of the guided factor
 * over the interval's σ² segment and the model's own factors outside it (see the tests' closed form).
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import { tf } from '@score-sde/tensor-fp';
 * import { ve, exactScore, gaussian, noiseLevel } from '@score-sde/sde-math';
 * import { autoguidance, guidanceInterval } from '@score-sde/solvers';
 *
 * const sde = ve();
 * const plain = exactScore(sde, gaussian([0], [0.5]));
 * const guided = guidanceInterval(sde, autoguidance(plain, exactScore(sde, gaussian([0], [1])), 2), plain, [0.5, 5]);
 * const x = tf.tensor2d([[1]]);
 * for (const t of [0.05, 0.5, 0.95]) {
 *   const [a, b] = [guided(x, t), plain(x, t)];
 *   const inside = noiseLevel(sde, t) > 0.5 && noiseLevel(sde, t) <= 5;
 *   assert.equal(a.dataSync()[0] === b.dataSync()[0], !inside);
 *   tf.dispose([a, b]);
 * }
 * x.dispose();
 * ```
 * @category transforms
 */
export const guidanceInterval =
  (sde: SDE, guided: ScoreFn, plain: ScoreFn, interval: NoiseInterval): ScoreFn =>
  (x, t) =>
    inNoiseInterval(sde, interval, t) ? guided(x, t) : plain(x, t);

/**
 * Classifier guidance (Song et al. 2021, eq. 14; Dhariwal & Nichol 2021 with a scale w):
 *   s_y(x, t) = s(x, t) + w ∇ₓ log p_t(y | x).
 * With w = 1 and the exact p_t(y | x) this is the exact score of p_t(x | y).
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import { tf } from '@score-sde/tensor-fp';
 * import { vp, exactScore, type GaussianMixture } from '@score-sde/sde-math';
 * import { classifierGuidance, mixtureClassLogLikelihood } from '@score-sde/solvers';
 *
 * const sde = vp();
 * const m: GaussianMixture = { weights: [0.5, 0.5], means: [[-2], [2]], stds: [[0.5], [0.5]] };
 * // s + ∇ log p_t(y = 1 | x) with the exact classifier and scale 1 is the score of component 1 alone
 * const guided = classifierGuidance(exactScore(sde, m), mixtureClassLogLikelihood(sde, m, 1), 1);
 * const componentOne = exactScore(sde, { weights: [1], means: [[2]], stds: [[0.5]] });
 * const x = tf.tensor2d([[-1], [0.5], [3]]);
 * const gap = tf.tidy(() => tf.max(tf.abs(tf.sub(guided(x, 0.3), componentOne(x, 0.3)))).dataSync()[0]!);
 * assert.ok(gap < 1e-4);
 * x.dispose();
 * ```
 * @category transforms
 */
export const classifierGuidance =
  (score: ScoreFn, logLik: LogLikelihoodFn, scale = 1): ScoreFn =>
  (x, t) =>
    tf.tidy(() => tf.add(score(x, t), tf.mul(logLikelihoodGradient(logLik)(x, t), scale)));

/**
 * The exact noise-conditional classifier of a Gaussian mixture whose components are the classes:
 *   log p_t(k | x) = log w_k + log N_k,t(x) − log Σ_j w_j N_j,t(x),  with p_t = marginalMixture(sde, m, t).
 * @category transforms
 */
export const mixtureClassLogLikelihood =
  (sde: SDE, m: GaussianMixture, k: number): LogLikelihoodFn =>
  (x, t) =>
    tf.tidy(() => {
      const l = componentLogProbs(marginalMixture(sde, m, t))(x);
      return tf.reshape(tf.slice(tf.logSoftmax(l, 1), [0, k], [-1, 1]), [-1]);
    });
