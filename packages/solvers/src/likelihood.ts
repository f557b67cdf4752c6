/**
 * Exact likelihood through the probability-flow ODE (Song et al., ICLR 2021, §4.3 and App. D.2; score_sde's
 * `likelihood.py`): for the flow dx/dt = F(x, t) = f(t)x − ½g(t)² s(x, t),
 *   log p_ε(x(ε)) = log p_T(x(T)) + ∫_ε^T ∇·F(x(t), t) dt,
 * integrating the augmented ODE d[x, Δ]/dt = [F, ∇·F] from ε to T (adaptive Dormand–Prince 5(4), rtol = atol =
 * 1e-5). The divergence is exact (a Jacobian trace by autodiff, D vector–Jacobian products batched into one
 * backward pass: for small D) or the Skilling–Hutchinson estimate vᵀ(∂F/∂x)v with one Gaussian or Rademacher
 * probe v per sample held fixed through the solve (so the estimate of log p is unbiased); repeated passes give a
 * mean ± standard error.
 *
 * @module likelihood
 */
import * as E from 'fp-ts/Either';
import type * as t from 'io-ts';
import { tf, random, codec, type Key } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, priorLogProb, probabilityFlowDrift, timeOfNoiseLevel } from '@score-sde/sde-math';
import type { VectorField } from './runge-kutta';
import { type AdaptiveOptions, type IntegrationError, integrateAdaptive } from './adaptive';
import { countingScore } from './step';

// -------------------------------------------------------------------------------------
// divergence
// -------------------------------------------------------------------------------------

/** A divergence estimator of a vector field at (x, t): returns [B]. @category model */
export type Divergence = (x: tf.Tensor, t: number) => tf.Tensor;

const perSampleSize = (x: tf.Tensor): number => x.size / x.shape[0]!;

/**
 * Exact divergence ∇·F(x, t) = Σ_d ∂F_d/∂x_d per sample by autodiff: the batch is replicated D times, replicate d
 * is contracted with the basis vector e_d, and one backward pass of Σ_{d,b} e_dᵀF(x_b) gives every diagonal entry
 * (samples are independent). Costs one evaluation of F on a batch of D·B: for small D.
 * @category divergence
 */
export const exactDivergence =
  (F: VectorField): Divergence =>
  (x, t) =>
    tf.tidy(() => {
      const B = x.shape[0]!;
      const D = perSampleSize(x);
      const rows = tf.reshape(x, [B, D]);
      const rep = tf.reshape(tf.tile(tf.expandDims(rows, 0), [D, 1, 1]), [D * B, ...x.shape.slice(1)]); // replicate d = block d
      const basis = tf.reshape(tf.tile(tf.expandDims(tf.eye(D), 1), [1, B, 1]), [D * B, D]); // row (d, b) = e_d
      const g = tf.grad((xr: tf.Tensor) => tf.sum(tf.mul(tf.reshape(F(xr, t), [D * B, D]), basis)))(rep);
      return tf.sum(tf.reshape(tf.sum(tf.mul(tf.reshape(g, [D * B, D]), basis), 1), [D, B]), 0);
    });

/** A vector field and its divergence at (x, t) together: F(x, t) [B, …] and ∇·F(x, t) [B]. @category model */
export type DriftAndDivergence = (x: tf.Tensor, t: number) => { readonly drift: tf.Tensor; readonly divergence: tf.Tensor };

/**
 * F(x, t) and the Skilling–Hutchinson estimate of ∇·F(x, t) with probe v (E[vvᵀ] = I), vᵀ (∂F/∂x) v per sample,
 * from **one** evaluation of F: the forward pass of the vector–Jacobian product ∇ₓ(Σ_b v_bᵀF(x_b)) is kept as the
 * drift. Unbiased: E_v[vᵀJv] = tr J (and exact when J is diagonal and v is Rademacher, v_j² = 1).
 * @category divergence
 */
export const hutchinsonDriftAndDivergence =
  (F: VectorField, probe: tf.Tensor): DriftAndDivergence =>
  (x, t) => {
    let drift: tf.Tensor | undefined;
    const divergence = tf.tidy(() => {
      const B = x.shape[0]!;
      const g = tf.grad((xx: tf.Tensor) => {
        const f = F(xx, t);
        drift = tf.keep(tf.clone(f));
        return tf.sum(tf.mul(f, probe));
      })(x);
      return tf.sum(tf.reshape(tf.mul(g, probe), [B, -1]), 1);
    });
    return { drift: drift!, divergence };
  };

/**
 * Skilling–Hutchinson estimate of ∇·F(x, t) with probe v (E[vvᵀ] = I): vᵀ (∂F/∂x) v per sample, by one
 * vector–Jacobian product ∇ₓ(Σ_b v_bᵀF(x_b)). Unbiased: E_v[vᵀJv] = tr J.
 * @category divergence
 */
export const hutchinsonDivergence =
  (F: VectorField, probe: tf.Tensor): Divergence =>
  (x, t) => {
    const { drift, divergence } = hutchinsonDriftAndDivergence(F, probe)(x, t);
    drift.dispose();
    return divergence;
  };

/** F(x, t) and its exact divergence ({@link exactDivergence}: one more evaluation of F on a batch of D·B). @category divergence */
export const exactDriftAndDivergence =
  (F: VectorField): DriftAndDivergence =>
  (x, t) => ({ drift: F(x, t), divergence: exactDivergence(F)(x, t) });

// -------------------------------------------------------------------------------------
// log-likelihood
// -------------------------------------------------------------------------------------

/** How to take the divergence: exactly, or with Hutchinson probes. @category model */
export type DivergenceEstimator = 'exact' | 'gaussian' | 'rademacher';

/** Options of {@link logLikelihood}. @category model */
export interface LikelihoodOptions extends Pick<AdaptiveOptions, 'rtol' | 'atol' | 'maxSteps'> {
  /** Divergence estimator (default 'rademacher', the reference's default Hutchinson probe). */
  readonly estimator?: DivergenceEstimator;
  /** One key per sample, for the Hutchinson probes (required unless 'exact'). */
  readonly keys?: ReadonlyArray<Key>;
  /** Independent passes (default 1; forced to 1 for 'exact'). */
  readonly passes?: number;
  /** Start time ε of the solve (default 1e-5, score_sde's likelihood ε). */
  readonly eps?: number;
  /** log p_T of the latent: [B] (default: the SDE's prior N(0, σ_p² I)). */
  readonly priorLogProb?: (z: tf.Tensor) => tf.Tensor;
}

/** Per-sample log-likelihood: mean over passes, its standard error, each pass, and the work done. @category model */
export interface LikelihoodResult {
  /** log p_ε(x) per sample (nats), the mean over passes. */
  readonly logp: Float64Array;
  /** Standard error of the mean over passes (sd/√passes); 0 for the exact estimator, NaN for one Hutchinson pass. */
  readonly standardError: Float64Array;
  readonly passes: ReadonlyArray<Float64Array>;
  /** Score evaluations over all passes. */
  readonly nfe: number;
}

const probeOf = (estimator: 'gaussian' | 'rademacher', keys: ReadonlyArray<Key>, shape: ReadonlyArray<number>): tf.Tensor =>
  estimator === 'gaussian' ? random.normalPerSample(keys, shape) : random.rademacherPerSample(keys, shape);

/**
 * log p_ε(x) for a batch x by the probability-flow ODE augmented with the divergence (see the module comment).
 * Pass j draws sample b's probe from foldIn(keys[b], j). Left when the adaptive solve fails.
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import * as E from 'fp-ts/Either';
 * import { tf } from '@score-sde/tensor-fp';
 * import { vp, gaussian, exactScore, exactLogProb } from '@score-sde/sde-math';
 * import { logLikelihood } from '@score-sde/solvers';
 *
 * const sde = vp();
 * const data = gaussian([1, -1], [0.5, 2]);
 * const x = tf.tensor2d([[1.2, -0.5], [0.3, 1]]);
 * // log p_ε(x) with the exact divergence, and the exact p_T as the prior
 * const prior = (z: tf.Tensor) => exactLogProb(sde, data)(z, sde.T);
 * const r = logLikelihood(sde, exactScore(sde, data), x, { estimator: 'exact', eps: 1e-5, priorLogProb: prior });
 * const exact = tf.tidy(() => exactLogProb(sde, data)(x, 1e-5).dataSync());
 * assert.ok(E.isRight(r));
 * if (E.isRight(r)) r.right.logp.forEach((lp, b) => assert.ok(Math.abs(lp - exact[b]!) < 2e-3)); // ≤ 1e-3 nats/dim
 * x.dispose();
 * ```
 * @category likelihood
 */
export const logLikelihood = (sde: SDE, score: ScoreFn, x: tf.Tensor, opts: LikelihoodOptions = {}): E.Either<IntegrationError, LikelihoodResult> => {
  const estimator = opts.estimator ?? 'rademacher';
  if (estimator !== 'exact' && opts.keys === undefined) throw new RangeError('logLikelihood: Hutchinson probes need keys (one per sample)');
  const passes = estimator === 'exact' ? 1 : opts.passes ?? 1;
  const eps = opts.eps ?? 1e-5;
  const B = x.shape[0]!;
  const D = perSampleSize(x);
  const sampleShape = x.shape.slice(1);
  const counted = countingScore(score);
  const F = probabilityFlowDrift(sde, counted.score);
  const prior = opts.priorLogProb ?? priorLogProb(sde);
  const results: Float64Array[] = [];
  for (let j = 0; j < passes; j++) {
    const probe = estimator === 'exact' ? undefined : probeOf(estimator, opts.keys!.map((k) => random.foldIn(k, j)), sampleShape);
    const both = probe === undefined ? exactDriftAndDivergence(F) : hutchinsonDriftAndDivergence(F, probe);
    // The augmented state [x, Δ] as [B, D + 1]; one evaluation of the score per stage with a Hutchinson probe.
    const augmented: VectorField = (y, t) =>
      tf.tidy(() => {
        const xs = tf.reshape(tf.slice(y, [0, 0], [B, D]), x.shape);
        const { drift, divergence } = both(xs, t);
        const out = tf.concat([tf.reshape(drift, [B, D]), tf.reshape(divergence, [B, 1])], 1);
        tf.dispose([drift, divergence]);
        return out;
      });
    const y0 = tf.tidy(() => tf.concat([tf.reshape(x, [B, D]), tf.zeros([B, 1])], 1));
    const r = integrateAdaptive(augmented, y0, eps, sde.T, { rtol: opts.rtol ?? 1e-5, atol: opts.atol ?? 1e-5, ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}) });
    tf.dispose(y0);
    if (probe !== undefined) probe.dispose();
    if (E.isLeft(r)) return r;
    const logp = tf.tidy(() => {
      const z = tf.reshape(tf.slice(r.right.y, [0, 0], [B, D]), x.shape);
      const delta = tf.reshape(tf.slice(r.right.y, [0, D], [B, 1]), [B]);
      return tf.add(prior(z), delta);
    });
    r.right.y.dispose();
    results.push(Float64Array.from(logp.dataSync()));
    logp.dispose();
  }
  const mean = Float64Array.from({ length: B }, (_, b) => results.reduce((a, r) => a + r[b]!, 0) / passes);
  const se = Float64Array.from({ length: B }, (_, b) => {
    if (estimator === 'exact') return 0;
    if (passes < 2) return NaN;
    const v = results.reduce((a, r) => a + (r[b]! - mean[b]!) ** 2, 0) / (passes - 1);
    return Math.sqrt(v / passes);
  });
  return E.right({ logp: mean, standardError: se, passes: results, nfe: counted.calls() });
};

// -------------------------------------------------------------------------------------
// bits per dimension
// -------------------------------------------------------------------------------------

/**
 * Bits per dimension of a log-likelihood (nats) of D-dimensional data scaled from 8-bit values to [lo, hi]
 * after uniform dequantisation into cells of width w·(hi − lo) (score_sde `likelihood.py`, w = 1/256:
 * bpd = −log p / (D ln 2) + 7 − inverse_scaler(−1)):
 *   bpd = −log p / (D ln 2) − log₂(w (hi − lo)),
 * i.e. offset 8 for data in [0, 1] and 7 for data in [−1, 1] with w = 1/256, log₂ 255 with the centred cells (w = 1/255).
 * @category likelihood
 */
export const bitsPerDim = (logp: number, D: number, range: readonly [number, number] = [0, 1], cellWidth = 1 / 256): number =>
  -logp / (D * Math.LN2) - Math.log2(cellWidth * (range[1] - range[0]));

/**
 * Where uniform dequantisation puts level k of 8-bit data x = k/255:
 * - `score-sde`: the cell [k/256, (k+1)/256) (score_sde `run_lib.py`), width 1/256 — level 0 sits at its cell's
 *   edge, so a model whose density peaks at the data (0 for an MNIST background) meets only half of its peak;
 * - `centred`: the cell [(k − ½)/255, (k + ½)/255), width 1/255, centred on the data value the model was trained on.
 * Both cell sets are disjoint, so by Jensen both bits/dim bound the same discrete negative log-likelihood.
 * @category likelihood
 */
export const DEQUANTIZATIONS = ['score-sde', 'centred'] as const;

/** io-ts codec of a {@link DEQUANTIZATIONS} name. @category likelihood */
export const Dequantization = codec.oneOf(DEQUANTIZATIONS, 'Dequantization');
export type Dequantization = t.TypeOf<typeof Dequantization>;

/** Cell width of a {@link Dequantization}, in units of [0, 1] data: 1/256 or 1/255. @category likelihood */
export const cellWidth = (d: Dequantization): number => (d === 'centred' ? 1 / 255 : 1 / 256);

/**
 * Bits per dimension a level costs when the model holds it as a point mass blurred by N(0, σ²) and the cell around it
 * has width w (the same units), under uniform dequantisation u ~ U(−w/2, w/2) centred on the level:
 *   E_u[−log₂(w · N(u; 0, σ²))] = ½ log₂(2π σ² / w²) + w² / (24 σ² ln 2).
 * It is least at σ = w/√12 ({@link cellMatchedNoiseLevel}), where it is ½ log₂(2πe/12) ≈ 0.254 bits.
 * @category likelihood
 */
export const blurredLevelBitsPerDim = (sigma: number, w: number): number => 0.5 * Math.log2((2 * Math.PI * sigma * sigma) / (w * w)) + (w * w) / (24 * sigma * sigma * Math.LN2);

/**
 * The noise level whose blur matches a dequantisation cell: the cell's own standard deviation
 *   σ = w (hi − lo) / √12,
 * the σ that minimises {@link blurredLevelBitsPerDim} (d/dσ: 1/σ − w²/(12σ³) = 0). A model trained on the levels
 * themselves (a density peaked on them, as MNIST's 0 and 255 make it) is sharpest there for the bound.
 * @category likelihood
 */
export const cellMatchedNoiseLevel = (d: Dequantization, range: readonly [number, number] = [0, 1]): number => (cellWidth(d) * (range[1] - range[0])) / Math.sqrt(12);

/**
 * The start time ε of a likelihood solve whose density p_ε blurs each level by its cell's standard deviation:
 *   ε = σ⁻¹(w (hi − lo) / √12)   ({@link cellMatchedNoiseLevel}, sde-math `timeOfNoiseLevel`).
 * p_ε is a density for every ε, so the bits/dim from this ε bounds the model's discrete likelihood like any other.
 * @category likelihood
 */
export const cellMatchedStartTime = (sde: SDE, d: Dequantization, range: readonly [number, number] = [0, 1]): number => timeOfNoiseLevel(sde, cellMatchedNoiseLevel(d, range));

/**
 * Uniform dequantisation of 8-bit data given in [0, 1] as k/255 (score_sde `run_lib.py`):
 *   x̃ = (255 x + u) / 256,  u ~ U(0, 1) per coordinate,
 * so x̃ has a density on [0, 1] whose cell averages are the discrete probabilities. One key per sample.
 * @category likelihood
 */
export const uniformDequantize = (keys: ReadonlyArray<Key>, x: tf.Tensor): tf.Tensor =>
  tf.tidy(() => tf.div(tf.add(tf.mul(x, 255), random.uniformPerSample(keys, x.shape.slice(1))), 256));

/**
 * Uniform dequantisation into cells centred on the data, x = k/255 ↦ x̃ = x + (u − ½)/255, u ~ U(0, 1) per
 * coordinate: x̃ ∈ [(k − ½)/255, (k + ½)/255). One key per sample (the same u as {@link uniformDequantize}).
 * @category likelihood
 */
export const centredDequantize = (keys: ReadonlyArray<Key>, x: tf.Tensor): tf.Tensor =>
  tf.tidy(() => tf.add(x, tf.div(tf.sub(random.uniformPerSample(keys, x.shape.slice(1)), 0.5), 255)));

/** The dequantisation map of a {@link Dequantization}. @category likelihood */
export const dequantize = (d: Dequantization): ((keys: ReadonlyArray<Key>, x: tf.Tensor) => tf.Tensor) => (d === 'centred' ? centredDequantize : uniformDequantize);

/** Options of {@link imageBitsPerDim}: the likelihood's, the dequantisation keys, and the model's data range. @category model */
export interface BitsPerDimOptions extends LikelihoodOptions {
  /** One key per image for the dequantisation noise u. */
  readonly dequantizeKeys: ReadonlyArray<Key>;
  /** The interval [lo, hi] the model's data space maps [0, 1] images to (default [0, 1]). */
  readonly range?: readonly [number, number];
  /** Where the dequantisation cells lie (default `score-sde`). */
  readonly dequantization?: Dequantization;
}

/** Bits/dim per image (mean over passes), its standard error over passes, and the score evaluations. @category model */
export interface BitsPerDimResult {
  readonly bpd: Float64Array;
  readonly standardError: Float64Array;
  readonly nfe: number;
}

/**
 * Bits per dimension of 8-bit images x = k/255 ∈ [0, 1] through the whole pipeline (score_sde `run_lib.py`):
 *   x̃ = (255 x + u)/256, u ~ U(0, 1)^D                (dequantisation, {@link uniformDequantize}; or centred,
 *                                                      x̃ = x + (u − ½)/255, {@link centredDequantize})
 *   y = lo + (hi − lo) x̃                               (the model's data space)
 *   log p_ε(y) = log p_T(y(T)) + ∫_ε^T ∇·F dt          (the PF-ODE from ε up to T, {@link logLikelihood})
 *   bpd = −log p_ε(y)/(D ln 2) − log₂(w (hi − lo))     ({@link bitsPerDim}; w = 1/256 or 1/255, the cell width)
 * By Jensen, E_u[bpd] bounds the model's discrete negative log-likelihood in bits for every ε > 0. Left when the
 * ODE solve fails.
 * @category likelihood
 */
export const imageBitsPerDim = (sde: SDE, score: ScoreFn, images: tf.Tensor, opts: BitsPerDimOptions): E.Either<IntegrationError, BitsPerDimResult> => {
  const [lo, hi] = opts.range ?? [0, 1];
  const cells = opts.dequantization ?? 'score-sde';
  const y = tf.tidy(() => {
    const x = dequantize(cells)(opts.dequantizeKeys, images);
    return lo === 0 && hi === 1 ? x : tf.add(tf.mul(x, hi - lo), lo);
  });
  try {
    const D = perSampleSize(images);
    return E.map((r: LikelihoodResult) => ({
      bpd: r.logp.map((lp) => bitsPerDim(lp, D, [lo, hi], cellWidth(cells))),
      standardError: r.standardError.map((se) => se / (D * Math.LN2)),
      nfe: r.nfe,
    }))(logLikelihood(sde, score, y, opts));
  } finally {
    y.dispose();
  }
};
