/**
 * Tensor-level dynamics of an SDE record: drift, marginals, prior, discretisation, the reverse-time SDE and
 * the probability-flow ODE. Every function is pure and scoped (a `tidy` per call).
 *
 * Time is a plain number shared by the whole batch (samplers step the batch together); training, which draws
 * one t per sample, uses {@link perturb} with a `Float32Array` of times.
 *
 * @module dynamics
 */
import { tf, random, scoped, type Key } from '@score-sde/tensor-fp';
import { type SDE, driftCoef, diffusionCoef, marginalMeanCoef, marginalStd, marginalVariance, priorStd, isVPLike, betaOf, veSigmaOf } from './sde';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/**
 * A score function s(x, t) ≈ ∇ₓ log p_t(x): a trained network, an exact closed form, or a transform of
 * another score. `x` has shape [B, ...]; the result has the same shape.
 * @category model
 */
export type ScoreFn = (x: tf.Tensor, t: number) => tf.Tensor;

/** A (possibly reverse-time) SDE given as functions: dx = drift(x, t) dt + diffusion(t) dw. @category model */
export interface Dynamics {
  readonly drift: (x: tf.Tensor, t: number) => tf.Tensor;
  readonly diffusion: (t: number) => number;
}

/** One step of a discretised SDE: x_{i+1} = x_i + f_i(x_i) + G_i z_i. @category model */
export interface DiscreteStep {
  readonly f: tf.Tensor;
  readonly G: number;
}

// -------------------------------------------------------------------------------------
// forward SDE
// -------------------------------------------------------------------------------------

/** Forward drift f(x, t) = f(t)·x. @category forward */
export const drift =
  (sde: SDE) =>
  (x: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => tf.mul(x, driftCoef(sde, t)));

/** The forward SDE as {@link Dynamics}. @category forward */
export const forward = (sde: SDE): Dynamics => ({ drift: drift(sde), diffusion: (t) => diffusionCoef(sde, t) });

/** Mean of p_0t(x_t | x_0): m(t)·x_0. @category marginals */
export const marginalMean =
  (sde: SDE) =>
  (x0: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => tf.mul(x0, marginalMeanCoef(sde, t)));

/** A [B] vector of per-sample coefficients reshaped to broadcast over a batch of rank `rank`: [B, 1, …, 1]. */
export const perSampleColumn = (values: ArrayLike<number>, rank: number): tf.Tensor =>
  tf.tensor(Float32Array.from(values as ArrayLike<number>), [values.length, ...new Array<number>(rank - 1).fill(1)]);

/**
 * Samples p_0t(x_t | x_0) with one time per sample: x_t = m(t_b)·x_0 + s(t_b)·z, z ~ N(0, I).
 * Returns x_t together with m(t) and s(t) as [B, 1, …, 1] columns (for losses).
 * @category marginals
 */
export const perturb =
  (sde: SDE) =>
  (x0: tf.Tensor, ts: ArrayLike<number>, noise: tf.Tensor): { readonly xt: tf.Tensor; readonly mean: tf.Tensor; readonly std: tf.Tensor } =>
    scoped(() => {
      const m = perSampleColumn(Array.from(ts as ArrayLike<number>, (t) => marginalMeanCoef(sde, t)), x0.rank);
      const s = perSampleColumn(Array.from(ts as ArrayLike<number>, (t) => marginalStd(sde, t)), x0.rank);
      return { xt: tf.add(tf.mul(x0, m), tf.mul(noise, s)), mean: m, std: s };
    });

/**
 * Score of the transition kernel: ∇ log p_0t(x_t | x_0) = −(x_t − m(t) x_0) / s(t)².
 * @category marginals
 */
export const kernelScore =
  (sde: SDE) =>
  (xt: tf.Tensor, x0: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => tf.div(tf.sub(tf.mul(x0, marginalMeanCoef(sde, t)), xt), marginalStd(sde, t) ** 2));

/**
 * Tweedie's formula (Efron 2011; Robbins 1956): the posterior mean of the clean data given x_t under the kernel
 * x_t = m(t) x₀ + s(t) n,
 *   E[x₀ | x_t = x] = (x + s(t)² ∇log p_t(x)) / m(t),
 * with any score in place of ∇log p_t (one evaluation).
 * @category marginals
 */
export const posteriorMean =
  (sde: SDE, score: ScoreFn) =>
  (x: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => {
      const m = marginalMeanCoef(sde, t);
      const y = tf.add(x, tf.mul(score(x, t), marginalVariance(sde, t)));
      return m === 1 ? y : tf.div(y, m);
    });

/**
 * The score whose denoiser is clipped to a box (static thresholding, Saharia et al. 2022): with
 * D(x, t) = (x + s(t)² s_θ(x, t)) / m(t) ({@link posteriorMean}),
 *   s'(x, t) = s_θ(x, t) + m(t) (clip(D, lo, hi) − D) / s(t)²,
 * the score of the denoiser clip(D, lo, hi): equal to s_θ wherever D lies in [lo, hi] (the correction is exactly 0
 * there), and never asking for a clean image outside the box elsewhere. A model's learned denoiser can grow without
 * bound off the data (the probability-flow ODE of a likelihood solve feeds it states far less noisy than their t), and
 * the clip keeps that from running the flow away; a model with the clip is another model, so every sampler and the
 * likelihood must use the same s'.
 * @category marginals
 */
export const clampedDenoiserScore =
  (sde: SDE, score: ScoreFn, range: readonly [number, number]): ScoreFn =>
  (x: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => {
      const s = score(x, t);
      const d = posteriorMean(sde, () => s)(x, t);
      return tf.add(s, tf.mul(tf.sub(tf.clipByValue(d, range[0], range[1]), d), marginalMeanCoef(sde, t) / marginalVariance(sde, t)));
    });

// -------------------------------------------------------------------------------------
// prior
// -------------------------------------------------------------------------------------

/** Samples the prior N(0, σ_p² I) the samplers start from, one key per sample. @category prior */
export const priorSample =
  (sde: SDE) =>
  (keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>): tf.Tensor =>
    scoped(() => tf.mul(random.normalPerSample(keys, sampleShape), priorStd(sde)));

/**
 * log N(x; 0, σ_p² I) per sample: −D/2 · log(2πσ_p²) − ‖x‖² / (2σ_p²). Returns shape [B].
 * @category prior
 */
export const priorLogProb =
  (sde: SDE) =>
  (x: tf.Tensor): tf.Tensor =>
    scoped(() => {
      const sp = priorStd(sde);
      const d = x.size / x.shape[0]!;
      const sq = tf.sum(tf.square(tf.reshape(x, [x.shape[0]!, d])), 1);
      return tf.sub(-0.5 * d * Math.log(2 * Math.PI * sp * sp), tf.div(sq, 2 * sp * sp));
    });

// -------------------------------------------------------------------------------------
// discretisation
// -------------------------------------------------------------------------------------

/** Index of the discrete step for time t on an N-step grid over [0, T]: i = ⌊t (N−1) / T⌉ (reference code, `long()` truncation). */
export const discreteIndex = (sde: SDE, N: number, t: number): number =>
  Math.min(N - 1, Math.max(0, Math.floor((t * (N - 1)) / sde.T + 1e-9)));

/** DDPM betas β_i = β_min/N + i/(N−1)·(β_max − β_min)/N, i = 0…N−1. @category discretisation */
export const ddpmBetas = (sde: SDE & { kind: 'vp' | 'subvp' }, N: number): Float64Array =>
  Float64Array.from({ length: N }, (_, i) => sde.betaMin / N + (N === 1 ? 0 : i / (N - 1)) * ((sde.betaMax - sde.betaMin) / N));

/** SMLD noise levels σ_i = σ_min (σ_max/σ_min)^{i/(N−1)}, i = 0…N−1. @category discretisation */
export const smldSigmas = (sde: SDE & { kind: 've' }, N: number): Float64Array =>
  Float64Array.from({ length: N }, (_, i) => veSigmaOf(sde, N === 1 ? 1 : i / (N - 1)));

/**
 * Discretisation x_{i+1} = x_i + f_i(x_i) + G_i z_i of the forward SDE on N steps:
 * - VP (DDPM): f_i = (√(1 − β_i) − 1)·x, G_i = √β_i;
 * - VE (SMLD): f_i = 0, G_i = √(σ_i² − σ_{i−1}²) (σ_{−1} = 0);
 * - otherwise Euler–Maruyama: f_i = f(x, t)·Δt, G_i = g(t)·√Δt with Δt = T/N.
 * @category discretisation
 */
export const discretize =
  (sde: SDE, N: number) =>
  (x: tf.Tensor, t: number): DiscreteStep =>
    scoped(() => {
      if (sde.kind === 'vp') {
        const b = ddpmBetas(sde, N)[discreteIndex(sde, N, t)]!;
        return { f: tf.mul(x, Math.sqrt(1 - b) - 1), G: Math.sqrt(b) };
      }
      if (sde.kind === 've') {
        const sig = smldSigmas(sde, N);
        const i = discreteIndex(sde, N, t);
        const prev = i === 0 ? 0 : sig[i - 1]!;
        return { f: tf.zerosLike(x), G: Math.sqrt(sig[i]! ** 2 - prev ** 2) };
      }
      const dt = sde.T / N;
      return { f: tf.mul(x, driftCoef(sde, t) * dt), G: diffusionCoef(sde, t) * Math.sqrt(dt) };
    });

// -------------------------------------------------------------------------------------
// reverse time
// -------------------------------------------------------------------------------------

/**
 * The coefficients of the reverse drift, linear in the state and the score: f̄(x, t) = a(t)·x − b(t)·s(x, t) with
 * a = f(t), b = g(t)² for the reverse SDE and b = ½ g(t)² for the probability-flow ODE (what a fused step needs).
 * @category reverse
 */
export const reverseDriftCoefs = (sde: SDE, t: number, probabilityFlowOde = false): { readonly a: number; readonly b: number } => ({
  a: driftCoef(sde, t),
  b: (probabilityFlowOde ? 0.5 : 1) * diffusionCoef(sde, t) ** 2,
});

/** a(t)·x − b(t)·s(x, t) with {@link reverseDriftCoefs}. */
const linearReverseDrift =
  (sde: SDE, score: ScoreFn, probabilityFlowOde: boolean) =>
  (x: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => {
      const { a, b } = reverseDriftCoefs(sde, t, probabilityFlowOde);
      return tf.sub(tf.mul(x, a), tf.mul(score(x, t), b));
    });

/**
 * Drift of the reverse-time SDE (Anderson 1982; Song et al. eq. 6), run with dt < 0:
 *   f̄(x, t) = f(x, t) − g(t)² ∇ log p_t(x).
 * @category reverse
 */
export const reverseDrift = (sde: SDE, score: ScoreFn): ((x: tf.Tensor, t: number) => tf.Tensor) => linearReverseDrift(sde, score, false);

/**
 * Drift of the probability-flow ODE (Song et al. eq. 13): dx/dt = f(x, t) − ½ g(t)² ∇ log p_t(x).
 * @category reverse
 */
export const probabilityFlowDrift = (sde: SDE, score: ScoreFn): ((x: tf.Tensor, t: number) => tf.Tensor) => linearReverseDrift(sde, score, true);

/** The reverse-time SDE as {@link Dynamics}: drift f − g² s, diffusion g. @category reverse */
export const reverse = (sde: SDE, score: ScoreFn): Dynamics => ({ drift: reverseDrift(sde, score), diffusion: (t) => diffusionCoef(sde, t) });

/** The probability-flow ODE as {@link Dynamics}: drift f − ½ g² s, diffusion 0. @category reverse */
export const probabilityFlow = (sde: SDE, score: ScoreFn): Dynamics => ({ drift: probabilityFlowDrift(sde, score), diffusion: () => 0 });

/**
 * Discretised reverse step (reverse diffusion predictor): f̄_i = f_i − G_i² s(x, t) (·½ for the flow),
 * Ḡ_i = G_i (0 for the flow).
 * @category reverse
 */
export const reverseDiscretize =
  (sde: SDE, score: ScoreFn, N: number, probabilityFlowOde = false) =>
  (x: tf.Tensor, t: number): DiscreteStep =>
    scoped(() => {
      const { f, G } = discretize(sde, N)(x, t);
      const w = probabilityFlowOde ? 0.5 : 1;
      return { f: tf.sub(f, tf.mul(score(x, t), w * G * G)), G: probabilityFlowOde ? 0 : G };
    });

export { isVPLike, betaOf };
