/**
 * Training objectives for the network of `scorenet.ts` (score = net / s(t), see `score.ts`).
 *
 * Continuous denoising score matching (Song et al., ICLR 2021, eq. 7; Vincent 2011): with t ~ U(ε, T),
 * z ~ N(0, I), x_t = m(t)·x₀ + s(t)·z (so ∇ log p_0t(x_t | x₀) = −z / s(t)),
 *   L(θ) = mean_b λ(t_b) Σ_pixels ‖s_θ(x_t, t_b) + z_b / s(t_b)‖²
 * with λ(t) = s(t)² (default; then L = mean_b Σ ‖net + z‖²) or the likelihood weighting λ(t) = g(t)²
 * (Song et al. 2021, "Maximum likelihood training of score-based diffusion models"; then
 * L = mean_b g(t_b)²/s(t_b)² Σ ‖net + z‖²).
 *
 * Discrete objectives (the reference code's `get_ddpm_loss_fn`, `get_smld_loss_fn`), label i ~ U{0..N−1}:
 * - DDPM (Ho et al. 2020, ε-prediction with ε̂ = −net): x_i = √ᾱ_i x₀ + √(1−ᾱ_i) z,  L = mean_b Σ ‖ε̂ − z‖²;
 * - SMLD (Song & Ermon 2019): x_i = x₀ + σ_i z,  L = mean_b Σ ‖σ_i s_θ(x_i) + z‖².
 * The network sees the continuous time t_i whose marginal std equals the discrete noise level, s(t_i) = σ_i,
 * so the same score wrapper (net / s(t)) is exact for discretely trained models too.
 *
 * All draws are per sample from keys: sample b's time and noise come from `split(key, B)[b]` alone.
 *
 * @module loss
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { tf, random, codec, scoped, type Key } from '@score-sde/tensor-fp';
import {
  type SDE,
  type VPSDE,
  type VESDE,
  perturb,
  perSampleColumn,
  diffusionCoef,
  marginalStd,
  ddpmBetas,
  smldSigmas,
} from '@score-sde/sde-math';
import type { Net } from './scorenet';

// -------------------------------------------------------------------------------------
// config
// -------------------------------------------------------------------------------------

/** λ(t) of the continuous objective: `sigma2` = s(t)², `likelihood` = g(t)². @category config */
export const Weighting = t.keyof({ sigma2: null, likelihood: null }, 'Weighting');
export type Weighting = t.TypeOf<typeof Weighting>;

/** Continuous DSM: t ~ U(eps, T). @category config */
export const DSMLossConfig = codec.strict({ kind: t.literal('dsm'), weighting: Weighting, eps: codec.PositiveFinite }, 'DSMLossConfig');
/** DDPM ε-prediction on N discrete steps (VP SDE only). @category config */
export const DDPMLossConfig = codec.strict({ kind: t.literal('ddpm'), N: codec.PositiveInt }, 'DDPMLossConfig');
/** SMLD noise-conditional score matching on N noise levels (VE SDE only). @category config */
export const SMLDLossConfig = codec.strict({ kind: t.literal('smld'), N: codec.PositiveInt }, 'SMLDLossConfig');

const LossUnion = t.union([DSMLossConfig, DDPMLossConfig, SMLDLossConfig]);

/** Any loss config; decoding reports against the alternative its `kind` names. @category config */
export const LossConfig = new t.Type<t.TypeOf<typeof LossUnion>, t.OutputOf<typeof LossUnion>, unknown>(
  'LossConfig',
  LossUnion.is,
  (u, c) => {
    const kind = (u as { kind?: unknown } | null)?.kind;
    const byKind: Record<string, t.Decoder<unknown, t.TypeOf<typeof LossUnion>>> = { dsm: DSMLossConfig, ddpm: DDPMLossConfig, smld: SMLDLossConfig };
    const alt = typeof kind === 'string' ? byKind[kind] : undefined;
    return alt !== undefined
      ? alt.validate(u, c)
      : t.failure(kind, [...c, { key: 'kind', type: t.keyof({ dsm: null, ddpm: null, smld: null }), actual: kind }]);
  },
  t.identity,
);
export type LossConfig = t.TypeOf<typeof LossUnion>;

/** The default objective: continuous DSM, λ = s², ε = 1e-5. @category config */
export const defaultLossConfig: LossConfig = { kind: 'dsm', weighting: 'sigma2', eps: 1e-5 };

/** A loss as a function of the network, a batch x₀ [B, ...] and a key: a scalar tensor. @category model */
export type LossFn = (net: Net, x0: tf.Tensor, key: Key) => tf.Scalar;

/** A loss config that does not fit the SDE (DDPM needs VP, SMLD needs VE). @category errors */
export interface LossConfigError {
  readonly _tag: 'LossConfigError';
  readonly message: string;
}

// -------------------------------------------------------------------------------------
// draws
// -------------------------------------------------------------------------------------

/** Per-sample draws of the continuous loss: times t_b ∈ (ε, T) and noise z [B, ...sampleShape]. @category draws */
export interface DSMDraws {
  readonly ts: Float64Array;
  readonly noise: tf.Tensor;
}

/**
 * t_b = ε + (T − ε)·u_b, u_b ~ U(0,1), and z_b ~ N(0, I), both from sample b's key `split(key, B)[b]`
 * (split in two: time, noise). Sample b's draws do not depend on B.
 * @category draws
 */
export const dsmDraws = (sde: SDE, eps: number, key: Key, batch: number, sampleShape: ReadonlyArray<number>): DSMDraws => {
  const pairs = random.split(key, batch).map(random.split2);
  const ts = Float64Array.from(pairs, ([tk]) => eps + (sde.T - eps) * random.uniformArray(tk, 1)[0]!);
  return { ts, noise: random.normalPerSample(pairs.map(([, zk]) => zk), sampleShape) };
};

/** Per-sample discrete labels i_b ∈ {0..N−1} and noise z [B, ...], from `split(key, B)[b]` (split in two). @category draws */
export const discreteDraws = (N: number, key: Key, batch: number, sampleShape: ReadonlyArray<number>): { readonly labels: Int32Array; readonly noise: tf.Tensor } => {
  const pairs = random.split(key, batch).map(random.split2);
  return {
    labels: Int32Array.from(pairs, ([ik]) => random.randomInt(ik, N)),
    noise: random.normalPerSample(pairs.map(([, zk]) => zk), sampleShape),
  };
};

// -------------------------------------------------------------------------------------
// discrete noise levels
// -------------------------------------------------------------------------------------

/** The discrete noise scales: x_i = mean_i·x₀ + std_i·z, and the time t_i with s(t_i) = std_i. @category discrete */
export interface NoiseLevels {
  readonly mean: Float64Array;
  readonly std: Float64Array;
  readonly time: Float64Array;
}

/**
 * DDPM levels: ᾱ_i = ∏_{j≤i} (1 − β_j) (β_j = `ddpmBetas`), mean √ᾱ_i, std √(1 − ᾱ_i); the time solves
 * ∫₀ᵗ β = −log ᾱ_i, i.e. β_min t + ½(β_max − β_min) t² = −log ᾱ_i.
 * @category discrete
 */
export const ddpmLevels = (sde: VPSDE, N: number): NoiseLevels => {
  const betas = ddpmBetas(sde, N);
  const logAlphaBar = new Float64Array(N);
  let acc = 0;
  betas.forEach((b, i) => {
    acc += Math.log1p(-b);
    logAlphaBar[i] = acc;
  });
  const d = sde.betaMax - sde.betaMin;
  return {
    mean: logAlphaBar.map((l) => Math.exp(0.5 * l)),
    std: logAlphaBar.map((l) => Math.sqrt(-Math.expm1(l))),
    // t = (−β_min + √(β_min² + 2Δ·L))/Δ with L = −log ᾱ_i, in the cancellation-free form 2L / (β_min + √(β_min² + 2Δ·L)).
    time: logAlphaBar.map((l) => (-2 * l) / (sde.betaMin + Math.sqrt(sde.betaMin * sde.betaMin - 2 * d * l))),
  };
};

/**
 * SMLD levels: σ_i = σ_min (σ_max/σ_min)^{i/(N−1)}, mean 1, std σ_i; the time solves
 * s(t)² = σ_min² ((σ_max/σ_min)^{2t} − 1) = σ_i², i.e. t = log(1 + σ_i²/σ_min²) / (2 log(σ_max/σ_min)).
 * @category discrete
 */
export const smldLevels = (sde: VESDE, N: number): NoiseLevels => {
  const sig = smldSigmas(sde, N);
  const logR = Math.log(sde.sigmaMax / sde.sigmaMin);
  return {
    mean: new Float64Array(N).fill(1),
    std: Float64Array.from(sig),
    time: sig.map((s) => Math.log1p((s * s) / (sde.sigmaMin * sde.sigmaMin)) / (2 * logR)),
  };
};

// -------------------------------------------------------------------------------------
// losses
// -------------------------------------------------------------------------------------

const sampleShapeOf = (x: tf.Tensor): ReadonlyArray<number> => x.shape.slice(1);

/** mean_b w_b Σ_pixels r_b² for a residual r [B, ...] and per-sample weights w (or 1). */
const weightedSumOfSquares = (r: tf.Tensor, w?: ArrayLike<number>): tf.Scalar => {
  const perSample = tf.sum(tf.reshape(tf.square(r), [r.shape[0]!, -1]), 1);
  return tf.mean(w === undefined ? perSample : tf.mul(perSample, tf.tensor1d(Float32Array.from(w as ArrayLike<number>)))) as tf.Scalar;
};

/**
 * Continuous DSM: L = mean_b λ(t_b) Σ ‖net(x_t, t)/s(t_b) + z_b/s(t_b)‖², t ~ U(ε, T);
 * λ = s² gives mean_b Σ ‖net + z‖², λ = g² gives mean_b (g²/s²)(t_b) Σ ‖net + z‖².
 * @category losses
 */
export const dsmLoss =
  (sde: SDE, opts: { readonly weighting?: Weighting; readonly eps?: number } = {}): LossFn =>
  (net, x0, key) =>
    scoped(() => {
      const { ts, noise } = dsmDraws(sde, opts.eps ?? 1e-5, key, x0.shape[0]!, sampleShapeOf(x0));
      const { xt } = perturb(sde)(x0, ts, noise);
      const residual = tf.add(net(xt, tf.tensor1d(Float32Array.from(ts))), noise);
      const w = opts.weighting === 'likelihood' ? Array.from(ts, (t) => (diffusionCoef(sde, t) / marginalStd(sde, t)) ** 2) : undefined;
      return weightedSumOfSquares(residual, w);
    });

/** x_i = mean_i x₀ + std_i z for per-sample labels, and the network's input times t_i. */
const perturbDiscrete = (levels: NoiseLevels, x0: tf.Tensor, labels: Int32Array, noise: tf.Tensor) => {
  const pick = (a: Float64Array) => Array.from(labels, (i) => a[i]!);
  const std = perSampleColumn(pick(levels.std), x0.rank);
  return {
    xt: tf.add(tf.mul(x0, perSampleColumn(pick(levels.mean), x0.rank)), tf.mul(noise, std)),
    std,
    time: tf.tensor1d(Float32Array.from(pick(levels.time))),
  };
};

/**
 * DDPM ε-prediction loss (Ho et al. 2020; reference `get_ddpm_loss_fn`, sum over pixels): with ε̂ = −net(x_i, t_i),
 * L = mean_b Σ ‖ε̂ − z‖² = mean_b Σ ‖net + z‖².
 * @category losses
 */
export const ddpmLoss =
  (sde: VPSDE, N: number): LossFn =>
  (net, x0, key) => {
    const levels = ddpmLevels(sde, N);
    return scoped(() => {
      const { labels, noise } = discreteDraws(N, key, x0.shape[0]!, sampleShapeOf(x0));
      const { xt, time } = perturbDiscrete(levels, x0, labels, noise);
      const epsHat = tf.neg(net(xt, time));
      return weightedSumOfSquares(tf.sub(epsHat, noise));
    });
  };

/**
 * SMLD loss (Song & Ermon 2019; reference `get_smld_loss_fn`, λ_i = σ_i²): with s_θ = net / s(t_i) and s(t_i) = σ_i,
 * L = mean_b Σ ‖σ_i s_θ(x_i) + z‖².
 * @category losses
 */
export const smldLoss =
  (sde: VESDE, N: number): LossFn =>
  (net, x0, key) => {
    const levels = smldLevels(sde, N);
    return scoped(() => {
      const { labels, noise } = discreteDraws(N, key, x0.shape[0]!, sampleShapeOf(x0));
      const { xt, std, time } = perturbDiscrete(levels, x0, labels, noise);
      const sCont = perSampleColumn(Array.from(labels, (i) => marginalStd(sde, levels.time[i]!)), x0.rank);
      const score = tf.div(net(xt, time), sCont);
      return weightedSumOfSquares(tf.add(tf.mul(score, std), noise));
    });
  };

/**
 * The loss a config names, checked against the SDE: DDPM requires a VP SDE, SMLD a VE SDE.
 * @category constructors
 */
export const lossFn = (sde: SDE, config: LossConfig): E.Either<LossConfigError, LossFn> => {
  switch (config.kind) {
    case 'dsm':
      return E.right(dsmLoss(sde, { weighting: config.weighting, eps: config.eps }));
    case 'ddpm':
      return sde.kind === 'vp'
        ? E.right(ddpmLoss(sde, config.N))
        : E.left({ _tag: 'LossConfigError', message: `loss.kind: 'ddpm' needs a VP SDE, got sde.kind '${sde.kind}'` });
    case 'smld':
      return sde.kind === 've'
        ? E.right(smldLoss(sde, config.N))
        : E.left({ _tag: 'LossConfigError', message: `loss.kind: 'smld' needs a VE SDE, got sde.kind '${sde.kind}'` });
  }
};
