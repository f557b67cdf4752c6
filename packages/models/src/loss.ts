/**
 * Training objectives for the network of `scorenet.ts`, through a parameterisation (sde-math `parameterisation`).
 *
 * Continuous denoising score matching (Song et al., ICLR 2021, eq. 7; Vincent 2011), written in the space of the
 * network output F: with x_t = m(t)·x₀ + s(t)·z (z ~ N(0, I)) and the parameterisation's target
 * F* = a(t) x₀ − b(t) z (`trainingTarget`; tutorial: F* = −z),
 *   L(θ) = mean_b w(t_b) Σ_pixels ‖F(c_in x_t/m, c_noise) − F*‖²,
 * which is λ(t)‖s_θ − ∇log p_0t(x_t | x₀)‖² with w = λ c_out²/(m² σ⁴) (σ = s/m) for the weightings
 * - `sigma2`: λ = s(t)² (the tutorial's; tutorial parameterisation: w = 1, L = mean_b Σ ‖net + z‖²);
 * - `likelihood`: λ = g(t)² (Song et al. 2021, "Maximum likelihood training of score-based diffusion models");
 * - `edm`: λ = 1/c_out² in D-space (Karras et al. 2022, eq. 8), i.e. w = 1: unit weight on F at every σ.
 * Noise levels: t ~ U(ε, T) (`uniform-t`, the default), EDM's log-normal ln σ ~ N(P_mean, P_std²) (`log-normal`),
 * ln σ ~ U(ln σ_lo, ln σ_hi) (`log-uniform`), each mapped to t = max(ε, σ⁻¹(σ)), or a weighted mixture of them
 * (`mixture`).
 *
 * Discrete objectives (the reference code's `get_ddpm_loss_fn`, `get_smld_loss_fn`), label i ~ U{0..N−1}, tutorial
 * parameterisation only:
 * - DDPM (Ho et al. 2020, ε-prediction with ε̂ = −net): x_i = √ᾱ_i x₀ + √(1−ᾱ_i) z,  L = mean_b Σ ‖ε̂ − z‖²;
 * - SMLD (Song & Ermon 2019): x_i = x₀ + σ_i z,  L = mean_b Σ ‖σ_i s_θ(x_i) + z‖².
 * The network sees the continuous time t_i whose marginal std equals the discrete noise level, s(t_i) = σ_i,
 * so the same score wrapper (net / s(t)) is exact for discretely trained models too.
 *
 * All draws are per sample from keys: sample b's time and noise come from `split(key, B)[b]` alone. So a loss can
 * be taken over a part of a batch ({@link BatchPart}: rows [o, o + B') of a batch of B, as a data-parallel step
 * does): its terms are those samples' terms of the whole batch's loss, L_part = (1/B) Σ_{b∈part} w_b ‖…‖², and the
 * parts of a batch sum to its loss.
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
  type Parameterisation,
  tutorialParameterisation,
  perturb,
  perSampleColumn,
  diffusionCoef,
  marginalStd,
  marginalMeanCoef,
  noiseLevel,
  timeOfNoiseLevel,
  scalings,
  scoreCoefficients,
  trainingTarget,
  ddpmBetas,
  smldSigmas,
  standardNormalCdf,
} from '@score-sde/sde-math';
import type { Net } from './scorenet';

// -------------------------------------------------------------------------------------
// config
// -------------------------------------------------------------------------------------

/** λ(t) of the continuous objective: `sigma2` = s(t)², `likelihood` = g(t)², `edm` = unit weight on F. @category config */
export const Weighting = t.keyof({ sigma2: null, likelihood: null, edm: null }, 'Weighting');
export type Weighting = t.TypeOf<typeof Weighting>;

/** t ~ U(ε, T). @category config */
export const UniformTime = codec.strict({ kind: t.literal('uniform-t') }, 'UniformTime');
/** ln σ ~ N(mean, std²) (EDM: mean −1.2, std 1.2), t = max(ε, σ⁻¹(σ)). @category config */
export const LogNormalNoise = codec.strict({ kind: t.literal('log-normal'), mean: codec.Finite, std: codec.PositiveFinite }, 'LogNormalNoise');

const LogUniformFields = codec.strict({ kind: t.literal('log-uniform'), min: codec.PositiveFinite, max: codec.PositiveFinite }, 'LogUniformNoise');
/**
 * ln σ ~ U(ln min, ln max), t = max(ε, σ⁻¹(σ)), min < max: every decade of noise levels drawn alike. Under EDM's
 * weighting (λ_D ≈ 1/σ² for σ ≪ σ_d) this is the likelihood weighting of the small levels, where the bits/dim of a
 * model are decided: ½∫ g² ‖s_θ − ∇log p‖² dt = ∫ ‖D_θ − D‖²/σ² d ln σ for the VE SDE (Song et al. 2021, "Maximum
 * likelihood training of score-based diffusion models", rewritten in σ).
 * @category config
 */
export const LogUniformNoise = new t.Type<t.TypeOf<typeof LogUniformFields>, t.OutputOf<typeof LogUniformFields>, unknown>(
  'LogUniformNoise',
  LogUniformFields.is,
  (u, c) => {
    const v = LogUniformFields.validate(u, c);
    if (v._tag === 'Left' || v.right.min < v.right.max) return v;
    return t.failure(v.right.max, [...c, { key: 'max', type: LogUniformFields, actual: v.right.max }], `must exceed min (${v.right.min}), got ${v.right.max}`);
  },
  LogUniformFields.encode,
);

/** One law of noise levels (not a mixture). @category config */
export const SimpleNoiseLevels = codec.byKind('SimpleNoiseLevels', { 'uniform-t': UniformTime, 'log-normal': LogNormalNoise, 'log-uniform': LogUniformNoise });
export type SimpleNoiseLevels = t.TypeOf<typeof SimpleNoiseLevels>;

/** A part of a {@link NoiseMixture}: its law and its (unnormalised) weight. @category config */
export const NoiseMixturePart = codec.strict({ weight: codec.PositiveFinite, noise: SimpleNoiseLevels }, 'NoiseMixturePart');

/**
 * A mixture of laws of noise levels, p(σ) = Σ_i w_i p_i(σ) / Σ_i w_i: each sample picks its part with probability
 * w_i / Σ w and then draws from it (e.g. EDM's log-normal for sample quality, with a log-uniform share for the small
 * levels the likelihood integrates over).
 * @category config
 */
export const NoiseMixture = codec.strict(
  { kind: t.literal('mixture'), parts: t.refinement(t.array(NoiseMixturePart), (ps) => ps.length > 0, 'NonEmptyArray<NoiseMixturePart>') },
  'NoiseMixture',
);

/** The distribution of training noise levels. @category config */
export const NoiseLevelDistribution = codec.byKind('NoiseLevelDistribution', {
  'uniform-t': UniformTime,
  'log-normal': LogNormalNoise,
  'log-uniform': LogUniformNoise,
  mixture: NoiseMixture,
});
export type NoiseLevelDistribution = t.TypeOf<typeof NoiseLevelDistribution>;

/** Continuous DSM: noise levels from `noise` (default uniform in t over (eps, T)), weighting λ. @category config */
export const DSMLossConfig = codec.strictWithOptional(
  { kind: t.literal('dsm'), weighting: Weighting, eps: codec.PositiveFinite },
  { noise: NoiseLevelDistribution },
  'DSMLossConfig',
);
/** DDPM ε-prediction on N discrete steps (VP SDE only). @category config */
export const DDPMLossConfig = codec.strict({ kind: t.literal('ddpm'), N: codec.PositiveInt }, 'DDPMLossConfig');
/** SMLD noise-conditional score matching on N noise levels (VE SDE only). @category config */
export const SMLDLossConfig = codec.strict({ kind: t.literal('smld'), N: codec.PositiveInt }, 'SMLDLossConfig');

/** Any loss config; decoding reports against the alternative its `kind` names. @category config */
export const LossConfig = codec.byKind('LossConfig', { dsm: DSMLossConfig, ddpm: DDPMLossConfig, smld: SMLDLossConfig });
export type LossConfig = t.TypeOf<typeof LossConfig>;

/** The tutorial's objective: continuous DSM, t ~ U(ε, T), λ = s², ε = 1e-5. @category config */
export const defaultLossConfig: LossConfig = { kind: 'dsm', weighting: 'sigma2', eps: 1e-5 };

/**
 * Rows [offset, offset + B') of a batch of `of` samples: the part of a batch one data-parallel worker (or one
 * micro-batch) takes. Sample b's draws are those of sample offset + b of the whole batch, and the part's loss is
 * divided by `of`, not B'. @category model
 */
export interface BatchPart {
  readonly offset: number;
  readonly of: number;
}

/**
 * A loss as a function of the network, a batch x₀ [B, ...] and a key: a scalar tensor; given a {@link BatchPart},
 * x₀ holds only that part's rows and the result is the part's share of the whole batch's loss.
 * @category model
 */
export type LossFn = (net: Net, x0: tf.Tensor, key: Key, part?: BatchPart) => tf.Scalar;

/** Sample keys of rows [offset, offset + n): split(key, offset + n)[offset..], the keys those samples have in the whole batch. */
const sampleKeys = (key: Key, n: number, offset = 0): ReadonlyArray<Key> => random.split(key, offset + n).slice(offset);

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

/** t = max(ε, σ⁻¹(σ)): the time of a noise level, no earlier than ε. */
const timeOfLevel = (sde: SDE, eps: number, sigma: number): number => Math.max(eps, timeOfNoiseLevel(sde, sigma));

/** The part i of a mixture with Σ_{j<i} w_j ≤ u Σ w < Σ_{j≤i} w_j for u ∈ [0, 1) (the last part if rounding overshoots). */
const partAt = <P extends { readonly weight: number }>(parts: ReadonlyArray<P>, u: number): P => {
  const target = u * parts.reduce((a, p) => a + p.weight, 0);
  const ends = parts.reduce<ReadonlyArray<number>>((acc, p) => [...acc, (acc[acc.length - 1] ?? 0) + p.weight], []);
  const i = ends.findIndex((end) => end > target);
  return parts[i < 0 ? parts.length - 1 : i]!;
};

/**
 * One training time from a key: ε + (T − ε)u, u ~ U(0, 1); or σ = exp(mean + std·n), n ~ N(0, 1); or
 * σ = exp(ln min + (ln max − ln min)u); then t = max(ε, σ⁻¹(σ)). A mixture splits the key in two: u ~ U(0, 1) from the
 * first picks part i with Σ_{j<i} w_j ≤ u Σ w < Σ_{j≤i} w_j, the second draws from it.
 */
const timeOf = (sde: SDE, eps: number, noise: NoiseLevelDistribution, key: Key): number => {
  switch (noise.kind) {
    case 'uniform-t':
      return eps + (sde.T - eps) * random.uniformArray(key, 1)[0]!;
    case 'log-normal':
      return timeOfLevel(sde, eps, Math.exp(noise.mean + noise.std * random.normalArray(key, 1)[0]!));
    case 'log-uniform': {
      const [lo, hi] = [Math.log(noise.min), Math.log(noise.max)];
      return timeOfLevel(sde, eps, Math.exp(lo + (hi - lo) * random.uniformArray(key, 1)[0]!));
    }
    case 'mixture': {
      const [pick, draw] = random.split2(key);
      return timeOf(sde, eps, partAt(noise.parts, random.uniformArray(pick, 1)[0]!).noise, draw);
    }
  }
};

/** P(σ ≤ s) under one law of noise levels, before the clip of its times at ε (uniform-t: P(t ≤ σ⁻¹(s))). */
const levelCdf = (sde: SDE, eps: number, noise: NoiseLevelDistribution, s: number): number => {
  const unit = (u: number): number => Math.min(1, Math.max(0, u));
  switch (noise.kind) {
    case 'uniform-t':
      return unit((timeOfNoiseLevel(sde, s) - eps) / (sde.T - eps));
    case 'log-normal':
      return standardNormalCdf((Math.log(s) - noise.mean) / noise.std);
    case 'log-uniform':
      return unit((Math.log(s) - Math.log(noise.min)) / (Math.log(noise.max) - Math.log(noise.min)));
    case 'mixture': {
      const total = noise.parts.reduce((a, p) => a + p.weight, 0);
      return noise.parts.reduce((a, p) => a + p.weight * levelCdf(sde, eps, p.noise, s), 0) / total;
    }
  }
};

/**
 * The q-quantile of the noise levels σ(t) that {@link dsmDraws} trains on, 0 < q < 1: the least σ ≥ σ(ε) with
 * F(σ) ≥ q, where F is the law's distribution function in σ — log-normal Φ((ln σ − μ)/s), log-uniform
 * (ln σ − ln a)/(ln b − ln a), uniform-t (σ⁻¹(σ) − ε)/(T − ε), a mixture Σ_i w_i F_i(σ)/Σ w — and the draws' clip of
 * t at ε puts the mass F(σ(ε)) on σ(ε). A fraction q of the training draws lies at or below it: a sampler that goes
 * below it integrates where the network has seen few examples. Bisection in ln σ to float64 resolution.
 * @category draws
 */
export const trainingNoiseQuantile = (sde: SDE, eps: number, noise: NoiseLevelDistribution, q: number): number => {
  if (!(q > 0 && q < 1)) throw new RangeError(`trainingNoiseQuantile: q must lie in (0, 1), got ${q}`);
  const F = (logS: number): number => levelCdf(sde, eps, noise, Math.exp(logS));
  const floor = noiseLevel(sde, eps);
  let lo = Math.log(floor);
  if (F(lo) >= q) return floor;
  // Bracket: widen [lo, hi] geometrically until F(hi) ≥ q (every law here reaches any q < 1 at a finite σ).
  let hi = lo + 1;
  for (let k = 0; F(hi) < q; k++) {
    if (k > 60) throw new RangeError(`trainingNoiseQuantile: no level below e^${hi} reaches q = ${q}`);
    [lo, hi] = [hi, hi + 2 * (hi - lo)];
  }
  for (let k = 0; k < 200 && hi - lo > 1e-15 * Math.max(1, Math.abs(hi)); k++) {
    const mid = (lo + hi) / 2;
    if (F(mid) >= q) hi = mid;
    else lo = mid;
  }
  return Math.exp(hi);
};

/**
 * Per-sample times t_b (uniform in (ε, T) by default, or from the noise levels' law) and z_b ~ N(0, I), both from
 * sample b's key `split(key, B)[b]` (split in two: time, noise). Sample b's draws do not depend on B; with `offset`
 * o, the draws of samples o … o + B − 1 of a larger batch.
 * @category draws
 */
export const dsmDraws = (
  sde: SDE,
  eps: number,
  key: Key,
  batch: number,
  sampleShape: ReadonlyArray<number>,
  noise: NoiseLevelDistribution = { kind: 'uniform-t' },
  offset = 0,
): DSMDraws => {
  const pairs = sampleKeys(key, batch, offset).map(random.split2);
  const ts = Float64Array.from(pairs, ([tk]) => timeOf(sde, eps, noise, tk));
  return { ts, noise: random.normalPerSample(pairs.map(([, zk]) => zk), sampleShape) };
};

/** Per-sample discrete labels i_b ∈ {0..N−1} and noise z [B, ...], from `split(key, B)[b]` (split in two); with `offset` o, those of samples o … o + B − 1. @category draws */
export const discreteDraws = (N: number, key: Key, batch: number, sampleShape: ReadonlyArray<number>, offset = 0): { readonly labels: Int32Array; readonly noise: tf.Tensor } => {
  const pairs = sampleKeys(key, batch, offset).map(random.split2);
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
const weightedSumOfSquares = (r: tf.Tensor, w?: ArrayLike<number>, part?: BatchPart): tf.Scalar => {
  const perSample = tf.sum(tf.reshape(tf.square(r), [r.shape[0]!, -1]), 1);
  const weighted = w === undefined ? perSample : tf.mul(perSample, tf.tensor1d(Float32Array.from(w as ArrayLike<number>)));
  // A whole batch: its mean (as every earlier run computed it); a part: its sum over the whole batch's size.
  return (part === undefined ? tf.mean(weighted) : tf.div(tf.sum(weighted), part.of)) as tf.Scalar;
};

/**
 * The per-sample weight w(t) of ‖F − F*‖² for a weighting (module comment): w = λ c_out²/(m² σ⁴) with
 * λ = s² (`sigma2`), g² (`likelihood`), or w = 1 (`edm`). Tutorial parameterisation: 1, g²/s², 1.
 * @category losses
 */
export const lossWeight = (sde: SDE, p: Parameterisation, weighting: Weighting, t: number): number => {
  if (weighting === 'edm') return 1;
  if (p.kind === 'tutorial') return weighting === 'sigma2' ? 1 : (diffusionCoef(sde, t) / marginalStd(sde, t)) ** 2;
  const m = marginalMeanCoef(sde, t);
  const sigma = noiseLevel(sde, t);
  const { cOut } = scalings(sde, p, t);
  const lambda = weighting === 'sigma2' ? marginalStd(sde, t) ** 2 : diffusionCoef(sde, t) ** 2;
  return (lambda * cOut * cOut) / (m * m * sigma ** 4);
};

/**
 * Continuous DSM (module comment): L = mean_b w(t_b) Σ ‖F(c_in x_t/m, c_noise) − (a x₀ − b z)‖², t_b from the
 * noise-level distribution. With the tutorial parameterisation and λ = s² this is mean_b Σ ‖net(x_t, t) + z‖².
 * @category losses
 */
export const dsmLoss =
  (
    sde: SDE,
    opts: { readonly weighting?: Weighting; readonly eps?: number; readonly noise?: NoiseLevelDistribution; readonly parameterisation?: Parameterisation } = {},
  ): LossFn =>
  (net, x0, key, part) =>
    scoped(() => {
      const p = opts.parameterisation ?? tutorialParameterisation;
      const weighting = opts.weighting ?? 'sigma2';
      const { ts, noise } = dsmDraws(sde, opts.eps ?? 1e-5, key, x0.shape[0]!, sampleShapeOf(x0), opts.noise, part?.offset);
      const { xt } = perturb(sde)(x0, ts, noise);
      const cs = Array.from(ts, (t) => scoreCoefficients(sde, p, t));
      const column = (v: ReadonlyArray<number>) => perSampleColumn(v, x0.rank);
      const input = p.kind === 'tutorial' ? xt : tf.mul(xt, column(cs.map((c) => c.inputScale)));
      const F = net(input, tf.tensor1d(Float32Array.from(cs, (c) => c.noiseInput)));
      // F − F* = F − a x₀ + b z (tutorial: a = 0, b = 1).
      const targets = Array.from(ts, (t) => trainingTarget(sde, p, t));
      const residual =
        p.kind === 'tutorial'
          ? tf.add(F, noise)
          : tf.add(tf.sub(F, tf.mul(x0, column(targets.map((c) => c.dataCoef)))), tf.mul(noise, column(targets.map((c) => c.noiseCoef))));
      const w = Array.from(ts, (t) => lossWeight(sde, p, weighting, t));
      return weightedSumOfSquares(residual, w.every((v) => v === 1) ? undefined : w, part);
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
  (net, x0, key, part) => {
    const levels = ddpmLevels(sde, N);
    return scoped(() => {
      const { labels, noise } = discreteDraws(N, key, x0.shape[0]!, sampleShapeOf(x0), part?.offset);
      const { xt, time } = perturbDiscrete(levels, x0, labels, noise);
      const epsHat = tf.neg(net(xt, time));
      return weightedSumOfSquares(tf.sub(epsHat, noise), undefined, part);
    });
  };

/**
 * SMLD loss (Song & Ermon 2019; reference `get_smld_loss_fn`, λ_i = σ_i²): with s_θ = net / s(t_i) and s(t_i) = σ_i,
 * L = mean_b Σ ‖σ_i s_θ(x_i) + z‖².
 * @category losses
 */
export const smldLoss =
  (sde: VESDE, N: number): LossFn =>
  (net, x0, key, part) => {
    const levels = smldLevels(sde, N);
    return scoped(() => {
      const { labels, noise } = discreteDraws(N, key, x0.shape[0]!, sampleShapeOf(x0), part?.offset);
      const { xt, std, time } = perturbDiscrete(levels, x0, labels, noise);
      const sCont = perSampleColumn(Array.from(labels, (i) => marginalStd(sde, levels.time[i]!)), x0.rank);
      const score = tf.div(net(xt, time), sCont);
      return weightedSumOfSquares(tf.add(tf.mul(score, std), noise), undefined, part);
    });
  };

/**
 * The loss a config names for a parameterisation, checked against the SDE: DDPM requires a VP SDE, SMLD a VE SDE,
 * and both the tutorial parameterisation.
 * @category constructors
 */
export const lossFn = (sde: SDE, config: LossConfig, p: Parameterisation = tutorialParameterisation): E.Either<LossConfigError, LossFn> => {
  if (config.kind !== 'dsm' && p.kind !== 'tutorial')
    return E.left({ _tag: 'LossConfigError', message: `loss.kind: '${config.kind}' is written for the tutorial parameterisation, got parameterisation.kind '${p.kind}' (use loss.kind 'dsm')` });
  switch (config.kind) {
    case 'dsm':
      return E.right(dsmLoss(sde, { weighting: config.weighting, eps: config.eps, ...(config.noise !== undefined ? { noise: config.noise } : {}), parameterisation: p }));
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
