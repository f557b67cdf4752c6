/**
 * Gaussian mixtures with diagonal component covariances: a data distribution whose every marginal p_t under
 * the linear SDEs of this package is known in closed form, so it is the exact oracle for scores,
 * log-densities, samplers and likelihoods.
 *
 *   p_0(x) = Σ_k w_k N(x; μ_k, diag(s_k²)),
 *   p_t(x) = Σ_k w_k N(x; m(t) μ_k, diag(m(t)² s_k² + s(t)²))      (the kernel is N(m(t) x_0, s(t)² I)),
 *   ∇ log p(x) = Σ_k r_k(x) · (−(x − μ_k) / s_k²),   r_k(x) = p(k | x) = softmax_k(log w_k + log N_k(x)).
 *
 * Tensor versions compute in float32 with a max-subtracted log-sum-exp; the `…At` versions compute one point in
 * float64 JavaScript (for tests and reports).
 *
 * @module mixture
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { tf, codec, random, scoped, type Key, type DecodeError } from '@score-sde/tensor-fp';
import { type SDE, marginalMeanCoef, marginalVariance } from './sde';
import type { ScoreFn } from './dynamics';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/**
 * A mixture of K diagonal Gaussians in dimension D: weights w (K, summing to 1), means μ (K × D), standard
 * deviations s (K × D, positive). Plain JSON-serialisable data.
 * @category model
 */
export interface GaussianMixture {
  readonly weights: ReadonlyArray<number>;
  readonly means: ReadonlyArray<ReadonlyArray<number>>;
  readonly stds: ReadonlyArray<ReadonlyArray<number>>;
}

const GaussianMixtureFields = codec.strict(
  { weights: t.array(codec.PositiveFinite), means: t.array(t.array(codec.Finite)), stds: t.array(t.array(codec.PositiveFinite)) },
  'GaussianMixture',
);

/** Tolerance on |Σ w_k − 1| accepted when decoding. */
export const WEIGHT_SUM_TOLERANCE = 1e-9;

/** The shape problems of a field-valid record, as (field path, message) pairs; empty when it is a mixture. */
const shapeProblems = (m: t.TypeOf<typeof GaussianMixtureFields>): ReadonlyArray<readonly [ReadonlyArray<string>, string]> => {
  const K = m.weights.length;
  if (K === 0) return [[['weights'], 'must have at least one component']];
  const out: Array<readonly [ReadonlyArray<string>, string]> = [];
  const sum = m.weights.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > WEIGHT_SUM_TOLERANCE) out.push([['weights'], `must sum to 1 within ${WEIGHT_SUM_TOLERANCE} (sum is ${sum})`]);
  if (m.means.length !== K) out.push([['means'], `must have one row per component (${K} weights, ${m.means.length} rows)`]);
  if (m.stds.length !== K) out.push([['stds'], `must have one row per component (${K} weights, ${m.stds.length} rows)`]);
  const D = m.means[0]?.length ?? 0;
  if (m.means.length > 0 && D === 0) out.push([['means', '0'], 'must have dimension D ≥ 1']);
  m.means.forEach((row, k) => {
    if (k > 0 && row.length !== D) out.push([['means', String(k)], `must have dimension ${D} like means.0 (has ${row.length})`]);
  });
  m.stds.forEach((row, k) => {
    if (row.length !== D) out.push([['stds', String(k)], `must have dimension ${D} like means.0 (has ${row.length})`]);
  });
  return out;
};

/**
 * io-ts codec of a {@link GaussianMixture}. Besides each field (weights > 0, finite means, stds > 0, no unknown
 * key) it checks K ≥ 1 components, one mean row and one std row per weight, one dimension D ≥ 1 for every row,
 * and Σ w_k = 1 within 1e-9 (weights are not renormalised: an unnormalised record is an error naming `weights`).
 * @category model
 */
export const GaussianMixture: t.Type<GaussianMixture, t.OutputOf<typeof GaussianMixtureFields>, unknown> = new t.Type<
  GaussianMixture,
  t.OutputOf<typeof GaussianMixtureFields>,
  unknown
>(
  'GaussianMixture',
  (u): u is GaussianMixture => GaussianMixtureFields.is(u) && shapeProblems(u).length === 0,
  (u, c) => {
    const r = GaussianMixtureFields.validate(u, c);
    if (r._tag === 'Left') return r;
    const problems = shapeProblems(r.right);
    return problems.length === 0
      ? r
      : t.failures(
          problems.map(([path, message]) => ({
            value: u,
            context: [...c, ...path.map((key) => ({ key, type: t.unknown, actual: undefined }))],
            message,
          })),
        );
  },
  (m) => ({ weights: [...m.weights], means: m.means.map((r) => [...r]), stds: m.stds.map((r) => [...r]) }),
);

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/** A single Gaussian N(mean, diag(std²)) as a one-component mixture. @category constructors */
export const gaussian = (mean: ReadonlyArray<number>, std: ReadonlyArray<number>): GaussianMixture => ({
  weights: [1],
  means: [[...mean]],
  stds: [[...std]],
});

/** Builds and validates a mixture from its parts: `Left` names the bad field. @category constructors */
export const mixture = (
  weights: ReadonlyArray<number>,
  means: ReadonlyArray<ReadonlyArray<number>>,
  stds: ReadonlyArray<ReadonlyArray<number>>,
): E.Either<DecodeError, GaussianMixture> => codec.decodeWith(GaussianMixture)({ weights, means, stds });

// -------------------------------------------------------------------------------------
// queries
// -------------------------------------------------------------------------------------

/** Dimension D of the mixture's space. @category queries */
export const mixtureDim = (m: GaussianMixture): number => m.means[0]?.length ?? 0;

/** Number K of components. @category queries */
export const mixtureComponents = (m: GaussianMixture): number => m.weights.length;

/** Mean of the mixture, E x = Σ_k w_k μ_k (per coordinate). @category queries */
export const mixtureMean = (m: GaussianMixture): Float64Array =>
  Float64Array.from({ length: mixtureDim(m) }, (_, j) => m.weights.reduce((a, w, k) => a + w * m.means[k]![j]!, 0));

/** Per-coordinate variance of the mixture: Var x_j = Σ_k w_k (s_kj² + μ_kj²) − (E x_j)². @category queries */
export const mixtureVariance = (m: GaussianMixture): Float64Array => {
  const mu = mixtureMean(m);
  return Float64Array.from(
    { length: mixtureDim(m) },
    (_, j) => m.weights.reduce((a, w, k) => a + w * (m.stds[k]![j]! ** 2 + m.means[k]![j]! ** 2), 0) - mu[j]! ** 2,
  );
};

// -------------------------------------------------------------------------------------
// marginals under an SDE
// -------------------------------------------------------------------------------------

/**
 * The marginal p_t of data p_0 = `m` under the SDE: component k becomes N(m(t) μ_k, diag(m(t)² s_k² + s(t)²)),
 * weights unchanged (the kernel N(m(t) x_0, s(t)² I) convolves each component separately).
 * @category marginals
 */
export const marginalMixture = (sde: SDE, m: GaussianMixture, t: number): GaussianMixture => {
  const a = marginalMeanCoef(sde, t);
  const v = marginalVariance(sde, t);
  return {
    weights: m.weights,
    means: m.means.map((row) => row.map((mu) => a * mu)),
    stds: m.stds.map((row) => row.map((s) => Math.sqrt(a * a * s * s + v))),
  };
};

/**
 * The law of Tweedie's denoiser x̂₀ = E[x₀ | x_t] for x_t ~ p_t, component by component: given component k
 * (N(μ_k, diag(s_k²)) in the data), E[x₀ | x_t, k] = μ_k + m s_k² (m² s_k² + s²)⁻¹ (x_t − m μ_k) is affine in the Gaussian
 * x_t | k ~ N(m μ_k, m² s_k² + s²), so it is N(μ_k, diag(m² s_k⁴ / (m² s_k² + s²))) — the covariance m²Σ(m²Σ + s²I)⁻¹Σ
 * for diagonal Σ = diag(s_k²), with m = m(t), s = s(t). The full denoiser mixes these affine maps through the
 * posterior responsibilities p(k | x_t), which this mixture ignores: it is the exact law in the limit of separated
 * components (where p(k | x_t) is 0 or 1 wherever x_t | k has its mass), an approximation otherwise (see
 * {@link posteriorMeanAt} for the exact map).
 * @category marginals
 */
export const denoisedMixture = (sde: SDE, m: GaussianMixture, t: number): GaussianMixture => {
  const a = marginalMeanCoef(sde, t);
  const v = marginalVariance(sde, t);
  return {
    weights: m.weights,
    means: m.means,
    stds: m.stds.map((row) => row.map((s) => (a * s * s) / Math.sqrt(a * a * s * s + v))),
  };
};

// -------------------------------------------------------------------------------------
// float64 point functions
// -------------------------------------------------------------------------------------

const LOG_2PI = Math.log(2 * Math.PI);

/** Stable log Σ exp(a_k) = max + log Σ exp(a_k − max). */
const logSumExp = (a: ArrayLike<number>): number => {
  let mx = -Infinity;
  for (let i = 0; i < a.length; i++) mx = Math.max(mx, a[i]!);
  if (mx === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.exp(a[i]! - mx);
  return mx + Math.log(s);
};

/**
 * log w_k + log N(x; μ_k, diag(s_k²)) for each component k, in float64:
 * log N = −½ Σ_j ((x_j − μ_kj)/s_kj)² − Σ_j log s_kj − (D/2) log 2π.
 * @category float64
 */
export const componentLogProbsAt =
  (m: GaussianMixture) =>
  (x: ArrayLike<number>): Float64Array =>
    Float64Array.from(m.weights, (w, k) => {
      const mu = m.means[k]!;
      const s = m.stds[k]!;
      let q = 0;
      let ls = 0;
      for (let j = 0; j < mu.length; j++) {
        const z = (x[j]! - mu[j]!) / s[j]!;
        q += z * z;
        ls += Math.log(s[j]!);
      }
      return Math.log(w) - 0.5 * q - ls - 0.5 * mu.length * LOG_2PI;
    });

/** log p(x) = log Σ_k w_k N(x; μ_k, diag(s_k²)) at one point, float64 (stable log-sum-exp). @category float64 */
export const mixtureLogProbAt =
  (m: GaussianMixture) =>
  (x: ArrayLike<number>): number =>
    logSumExp(componentLogProbsAt(m)(x));

/** Responsibilities r_k(x) = p(k | x) = softmax_k(log w_k + log N_k(x)) at one point, float64. @category float64 */
export const componentPosteriorAt =
  (m: GaussianMixture) =>
  (x: ArrayLike<number>): Float64Array => {
    const l = componentLogProbsAt(m)(x);
    const z = logSumExp(l);
    return l.map((v) => Math.exp(v - z));
  };

/** ∇ log p(x) = Σ_k r_k(x) · (μ_k − x) / s_k² at one point, float64. @category float64 */
export const mixtureScoreAt =
  (m: GaussianMixture) =>
  (x: ArrayLike<number>): Float64Array => {
    const r = componentPosteriorAt(m)(x);
    const D = mixtureDim(m);
    const out = new Float64Array(D);
    r.forEach((rk, k) => {
      const mu = m.means[k]!;
      const s = m.stds[k]!;
      for (let j = 0; j < D; j++) out[j] = out[j]! + (rk * (mu[j]! - x[j]!)) / (s[j]! * s[j]!);
    });
    return out;
  };

/** log p_t(x) of data `m` under the SDE, at one point, float64. @category float64 */
export const exactLogProbAt =
  (sde: SDE, m: GaussianMixture) =>
  (x: ArrayLike<number>, t: number): number =>
    mixtureLogProbAt(marginalMixture(sde, m, t))(x);

/** ∇ log p_t(x) of data `m` under the SDE, at one point, float64. @category float64 */
export const exactScoreAt =
  (sde: SDE, m: GaussianMixture) =>
  (x: ArrayLike<number>, t: number): Float64Array =>
    mixtureScoreAt(marginalMixture(sde, m, t))(x);

/**
 * Tweedie's denoiser of the mixture at one point, float64: E[x₀ | x_t = x] = (x + s(t)² ∇log p_t(x)) / m(t)
 * = Σ_k p(k | x) (μ_k + m s_k² (m² s_k² + s²)⁻¹ (x − m μ_k)), the exact map {@link denoisedMixture} approximates.
 * @category float64
 */
export const posteriorMeanAt =
  (sde: SDE, m: GaussianMixture) =>
  (x: ArrayLike<number>, t: number): Float64Array => {
    const a = marginalMeanCoef(sde, t);
    const v = marginalVariance(sde, t);
    const g = exactScoreAt(sde, m)(x, t);
    return g.map((gj, j) => (x[j]! + v * gj) / a);
  };

// -------------------------------------------------------------------------------------
// tensor functions (float32, batched)
// -------------------------------------------------------------------------------------

/** x as [B, D], checking that its per-sample size is the mixture's dimension. */
const asRows = (m: GaussianMixture, x: tf.Tensor): tf.Tensor2D => {
  const B = x.shape[0] ?? 1;
  const D = mixtureDim(m);
  if (x.rank < 1 || x.size !== B * D)
    throw new RangeError(`mixture of dimension ${D} applied to a tensor of shape [${x.shape.join(', ')}] (per-sample size must be ${D})`);
  return tf.reshape(x, [B, D]) as tf.Tensor2D;
};

/** The mixture's parameters as [1, K, D] tensors: means, log stds, inverse variances; and log weights [1, K]. */
const params = (m: GaussianMixture) => {
  const K = mixtureComponents(m);
  const D = mixtureDim(m);
  const flat = (rows: ReadonlyArray<ReadonlyArray<number>>, f: (v: number) => number) =>
    tf.tensor3d(Float32Array.from(rows.flat(), f), [1, K, D], 'float32');
  return {
    mu: flat(m.means, (v) => v),
    invVar: flat(m.stds, (s) => 1 / (s * s)),
    // Σ_j log s_kj + (D/2) log 2π − log w_k, summed in float64 before rounding.
    logNorm: tf.tensor2d(
      Float32Array.from(m.weights, (w, k) => m.stds[k]!.reduce((a, s) => a + Math.log(s), 0) + 0.5 * D * LOG_2PI - Math.log(w)),
      [1, K],
      'float32',
    ),
  };
};

/**
 * log w_k + log N(x_b; μ_k, diag(s_k²)) for a batch x of shape [B, D] (or [B, …] with per-sample size D):
 * returns [B, K].
 * @category tensors
 */
export const componentLogProbs =
  (m: GaussianMixture) =>
  (x: tf.Tensor): tf.Tensor2D =>
    scoped(() => {
      const { mu, invVar, logNorm } = params(m);
      const diff = tf.sub(tf.expandDims(asRows(m, x), 1), mu); // [B, K, D]
      const q = tf.sum(tf.mul(tf.square(diff), invVar), 2); // [B, K]
      return tf.sub(tf.mul(q, -0.5), logNorm) as tf.Tensor2D;
    });

/** Stable log-sum-exp over axis 1 of [B, K]: max_k + log Σ_k exp(a_k − max_k). */
const logSumExpRows = (a: tf.Tensor2D): tf.Tensor1D => {
  const mx = tf.max(a, 1, true);
  return tf.add(tf.reshape(mx, [-1]), tf.log(tf.sum(tf.exp(tf.sub(a, mx)), 1))) as tf.Tensor1D;
};

/** log p(x) = log Σ_k w_k N(x; μ_k, diag(s_k²)) for x of shape [B, D]: returns [B] (stable log-sum-exp). @category tensors */
export const mixtureLogProb =
  (m: GaussianMixture) =>
  (x: tf.Tensor): tf.Tensor =>
    scoped(() => logSumExpRows(componentLogProbs(m)(x)));

/** Responsibilities p(k | x) = softmax_k(log w_k + log N_k(x)) for x of shape [B, D]: returns [B, K]. @category tensors */
export const componentPosterior =
  (m: GaussianMixture) =>
  (x: tf.Tensor): tf.Tensor =>
    scoped(() => tf.softmax(componentLogProbs(m)(x), 1));

/**
 * ∇ log p(x) = Σ_k p(k | x) (μ_k − x) / s_k² for x of shape [B, D] (or [B, …] with per-sample size D):
 * returns a tensor of x's shape.
 * @category tensors
 */
export const mixtureScore =
  (m: GaussianMixture) =>
  (x: tf.Tensor): tf.Tensor =>
    scoped(() => {
      const { mu, invVar, logNorm } = params(m);
      const diff = tf.sub(tf.expandDims(asRows(m, x), 1), mu); // [B, K, D]
      const logits = tf.sub(tf.mul(tf.sum(tf.mul(tf.square(diff), invVar), 2), -0.5), logNorm); // [B, K]
      const r = tf.expandDims(tf.softmax(logits, 1), 2); // [B, K, 1]
      return tf.reshape(tf.neg(tf.sum(tf.mul(r, tf.mul(diff, invVar)), 1)), x.shape);
    });

/**
 * The exact score of the SDE's marginals for data `m`: s(x, t) = ∇ log p_t(x) with p_t = {@link marginalMixture}.
 * `x` is [B, D] or [B, …] with per-sample size D; the result has x's shape.
 * @category marginals
 */
export const exactScore =
  (sde: SDE, m: GaussianMixture): ScoreFn =>
  (x, t) =>
    mixtureScore(marginalMixture(sde, m, t))(x);

/** log p_t(x) of data `m` under the SDE, for x of shape [B, D] (or [B, …]): returns [B]. @category marginals */
export const exactLogProb =
  (sde: SDE, m: GaussianMixture) =>
  (x: tf.Tensor, t: number): tf.Tensor =>
    mixtureLogProb(marginalMixture(sde, m, t))(x);

// -------------------------------------------------------------------------------------
// sampling
// -------------------------------------------------------------------------------------

/** Inverse CDF of the categorical law w at u ∈ (0, 1). */
const categorical = (w: ReadonlyArray<number>, u: number): number => {
  let c = 0;
  for (let k = 0; k < w.length - 1; k++) {
    c += w[k]!;
    if (u < c) return k;
  }
  return w.length - 1;
};

/**
 * One sample per key from the mixture, in float64: sample b splits keys[b] into (component key, noise key),
 * draws k ~ Categorical(w) by inverse CDF and x = μ_k + s_k ⊙ z, z ~ N(0, I). Rows of `x` are row-major [B, D].
 * @category sampling
 */
export const sampleMixtureAt =
  (m: GaussianMixture) =>
  (keys: ReadonlyArray<Key>): { readonly x: Float64Array; readonly component: Int32Array } => {
    const D = mixtureDim(m);
    const x = new Float64Array(keys.length * D);
    const component = new Int32Array(keys.length);
    keys.forEach((key, b) => {
      const [kc, kn] = random.split2(key);
      const k = categorical(m.weights, random.uniformArray(kc, 1)[0]!);
      const z = random.normalArray(kn, D);
      component[b] = k;
      for (let j = 0; j < D; j++) x[b * D + j] = m.means[k]![j]! + m.stds[k]![j]! * z[j]!;
    });
    return { x, component };
  };

/**
 * One sample per key from the mixture as a float32 tensor [B, D] with the component of each sample; sample b
 * uses keys[b] only (see {@link sampleMixtureAt}), so it does not depend on the batch it is drawn in.
 * @category sampling
 */
export const sampleMixture =
  (m: GaussianMixture) =>
  (keys: ReadonlyArray<Key>): { readonly x: tf.Tensor; readonly component: Int32Array } => {
    const { x, component } = sampleMixtureAt(m)(keys);
    return { x: tf.tensor2d(Float32Array.from(x), [keys.length, mixtureDim(m)], 'float32'), component };
  };

// -------------------------------------------------------------------------------------
// conditioning
// -------------------------------------------------------------------------------------

/**
 * p(x_missing | x_observed) for a diagonal mixture (the inpainting oracle). `observed[j]` is the value of
 * coordinate j or `null` when it is missing. Since each component factorises over coordinates,
 *   p(x_M | x_O) = Σ_k w'_k N(x_M; μ_kM, diag(s_kM²)),   w'_k ∝ w_k N(x_O; μ_kO, diag(s_kO²)),
 * i.e. components are reweighted by the likelihood of the observed coordinates (normalised in float64 by
 * log-sum-exp; a weight that underflows is kept at the least positive double) and keep their missing coordinates' means and stds. The result has dimension #missing (which
 * may be 0 when every coordinate is observed: then only the weights are meaningful).
 * Precondition (a programming error otherwise, thrown as RangeError): `observed` has length D and finite values.
 * @category conditioning
 */
export const conditionalMixture = (m: GaussianMixture, observed: ReadonlyArray<number | null>): GaussianMixture => {
  const D = mixtureDim(m);
  if (observed.length !== D) throw new RangeError(`conditionalMixture: observed has length ${observed.length}, mixture dimension is ${D}`);
  const obs: number[] = [];
  const miss: number[] = [];
  observed.forEach((v, j) => {
    if (v === null) miss.push(j);
    else if (Number.isFinite(v)) obs.push(j);
    else throw new RangeError(`conditionalMixture: observed.${j} is not finite (${v})`);
  });
  const logw = m.weights.map((w, k) => {
    let l = Math.log(w);
    for (const j of obs) {
      const s = m.stds[k]![j]!;
      const z = (observed[j]! - m.means[k]![j]!) / s;
      l += -0.5 * z * z - Math.log(s) - 0.5 * LOG_2PI;
    }
    return l;
  });
  const z = logSumExp(logw);
  return {
    // Clamped to the least positive double so that a component the observation rules out stays a valid weight.
    weights: logw.map((l) => Math.max(Math.exp(l - z), Number.MIN_VALUE)),
    means: m.means.map((row) => miss.map((j) => row[j]!)),
    stds: m.stds.map((row) => miss.map((j) => row[j]!)),
  };
};

// -------------------------------------------------------------------------------------
// observation likelihood
// -------------------------------------------------------------------------------------

/** Indices j of the observed coordinates (non-null entries); RangeError when the length or a value is wrong. */
const observedIndices = (m: GaussianMixture, observed: ReadonlyArray<number | null>, who: string): ReadonlyArray<number> => {
  const D = mixtureDim(m);
  if (observed.length !== D) throw new RangeError(`${who}: observed has length ${observed.length}, mixture dimension is ${D}`);
  return observed.flatMap((v, j) => {
    if (v === null) return [];
    if (!Number.isFinite(v)) throw new RangeError(`${who}: observed.${j} is not finite (${v})`);
    return [j];
  });
};

/**
 * The backward kernel of one component and coordinate: with x_0j ~ N(μ, s²) and x_tj | x_0j ~ N(a x_0j, v)
 * (a = m(t), v = s(t)²), Bayes for two Gaussians gives x_0j | x_tj ~ N(μ̂, v̂) with precision 1/s² + a²/v, i.e.
 *   v̂ = s² v / (a² s² + v),   μ̂ = v̂ (μ/s² + a x_tj/v) = μ + a s² (x_tj − a μ)/(a² s² + v) = gain·x_tj + offset,
 *   gain = a s²/(a² s² + v),  offset = μ v/(a² s² + v).
 */
const backwardKernel = (a: number, v: number, mu: number, s: number): { gain: number; offset: number; variance: number } => {
  const s2 = s * s;
  const d = a * a * s2 + v;
  return { gain: (a * s2) / d, offset: (mu * v) / d, variance: (s2 * v) / d };
};

/**
 * The closed-form observation likelihood of the mixture under the SDE, in float64 at one point x_t (length D):
 *   log p(x_0,O = y | x_t) = log Σ_k p_t(k | x_t) Π_{j∈O} N(y_j; μ̂_kj(x_tj), v̂_kj),
 * where O are the non-null entries of `observed` (= y), p_t(k | x_t) are the responsibilities of the marginal mixture
 * p_t ({@link marginalMixture}) and N(μ̂, v̂) is the backward kernel of component k (see
 * {@link observationLogLikelihood} for the derivation). Computed as the difference of two log-sum-exps,
 * log Σ_k exp(ℓ_k + o_k) − log Σ_k exp(ℓ_k) with ℓ_k = log w_k + log N_k,t(x_t) and o_k = Σ_{j∈O} log N(y_j; μ̂_kj, v̂_kj).
 * Needs s(t) > 0 (at t = 0 the likelihood is the point mass δ(y − x_O)). With nothing observed it is log 1 = 0.
 * Precondition (RangeError otherwise): `observed` has length D and finite values.
 * @category float64
 */
export const observationLogLikelihoodAt = (sde: SDE, m: GaussianMixture, observed: ReadonlyArray<number | null>) => {
  const obs = observedIndices(m, observed, 'observationLogLikelihoodAt');
  return (x: ArrayLike<number>, t: number): number => {
    const a = marginalMeanCoef(sde, t);
    const v = marginalVariance(sde, t);
    const logits = componentLogProbsAt(marginalMixture(sde, m, t))(x);
    const joint = logits.map((l, k) =>
      obs.reduce((acc, j) => {
        const { gain, offset, variance } = backwardKernel(a, v, m.means[k]![j]!, m.stds[k]![j]!);
        const r = observed[j]! - gain * x[j]! - offset;
        return acc - (0.5 * r * r) / variance - 0.5 * Math.log(variance) - 0.5 * LOG_2PI;
      }, l),
    );
    return logSumExp(joint) - logSumExp(logits);
  };
};

/**
 * The closed-form observation likelihood of a diagonal Gaussian mixture under any linear SDE: for data x_0 ~ p_0 = `m`
 * of which the coordinates O (the non-null entries of `observed`) were observed as y, and a noisy x_t ~ p_0t(· | x_0),
 *   log p(x_0,O = y | x_t) = log Σ_k p_t(k | x_t) Π_{j∈O} N(y_j; μ̂_kj(x_tj), v̂_kj),
 *   μ̂_kj = μ_kj + m s_kj² (x_tj − m μ_kj)/(m² s_kj² + σ²),   v̂_kj = s_kj² σ²/(m² s_kj² + σ²),   m = m(t), σ = s(t).
 * Derivation: p(y | x_t) = Σ_k p_t(k | x_t) p(y | x_t, k). Given the component, x_0 ~ N(μ_k, diag(s_k²)) and the
 * kernel N(m x_0, σ² I) are independent across coordinates, so x_0,O given (x_t, k) depends on x_t,O only, one
 * coordinate at a time, with the Gaussian posterior of a Gaussian prior N(μ, s²) seen through N(m x_0, σ²): precision
 * 1/s² + m²/σ², hence v̂ and μ̂ = v̂(μ/s² + m x_t/σ²) as above. And p_t(k | x_t) ∝ w_k N(x_t; m μ_k, m² s_k² + σ²) are
 * the responsibilities of the marginal mixture. Evaluated in float32 as the stable log-sum-exp
 * log Σ_k exp(log p_t(k | x_t) + o_k), with log p_t(k | x_t) = logSoftmax_k(ℓ), ℓ_k = log w_k + log N_k,t(x_t) and
 * o_k = Σ_{j∈O} log N(y_j; μ̂_kj, v̂_kj); coordinates outside O contribute nothing.
 *
 * By Bayes, ∇ log p_t(x_t) + ∇ log p(y | x_t) = ∇ log p_t(x_t | y), the score of the SDE marginal of p(x_0 | y): with
 * it as the score, every sampler samples the exact conditional (solvers' `observationGuidance`, Song et al., ICLR 2021,
 * §5 eq. 14 with the exact likelihood of App. I.2's inpainting problem). For diagonal components that marginal is
 *   p_t(x_t | y) = N(x_t,O; m y, σ² I) · Σ_k w'_k N(x_t,M; m μ_kM, m² s_kM² + σ²),  w' = conditionalMixture(m, y).weights.
 * `x_t` is [B, D] (or [B, …] with per-sample size D); returns [B]. Differentiable in x_t (tf.grad). Needs s(t) > 0.
 * Precondition (RangeError otherwise, when the function is built): `observed` has length D and finite values.
 * @category conditioning
 */
export const observationLogLikelihood = (sde: SDE, m: GaussianMixture, observed: ReadonlyArray<number | null>) => {
  const obs = observedIndices(m, observed, 'observationLogLikelihood');
  const K = mixtureComponents(m);
  const D = mixtureDim(m);
  const isObs = observed.map((v) => v !== null);
  return (x: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => {
      const rows = asRows(m, x);
      const logits = componentLogProbs(marginalMixture(sde, m, t))(rows); // [B, K]: ℓ_k = log w_k + log N_k,t(x_t)
      if (obs.length === 0) return tf.zeros([rows.shape[0]]);
      const a = marginalMeanCoef(sde, t);
      const v = marginalVariance(sde, t);
      // Per (k, j) kernel parameters in float64, rounded once; coordinates outside O get gain = offset = y = 1/v̂ = 0.
      const kernels = m.means.map((row, k) => row.map((mu, j) => backwardKernel(a, v, mu, m.stds[k]![j]!)));
      const perKJ = (f: (q: { gain: number; offset: number; variance: number }) => number) =>
        tf.tensor3d(Float32Array.from(kernels.flatMap((row) => row.map((q, j) => (isObs[j] ? f(q) : 0)))), [1, K, D], 'float32');
      const gain = perKJ((q) => q.gain);
      const offset = perKJ((q) => q.offset);
      const invVar = perKJ((q) => 1 / q.variance);
      const y = tf.tensor3d(Float32Array.from(observed, (val) => val ?? 0), [1, 1, D], 'float32');
      // ½ Σ_{j∈O} log(2π v̂_kj), summed in float64.
      const logNorm = tf.tensor2d(
        Float32Array.from(kernels, (row) => obs.reduce((acc, j) => acc + 0.5 * (Math.log(row[j]!.variance) + LOG_2PI), 0)),
        [1, K],
        'float32',
      );
      const resid = tf.sub(tf.sub(y, tf.mul(gain, tf.expandDims(rows, 1))), offset); // [B, K, D]: y − μ̂(x_t)
      const o = tf.sub(tf.mul(tf.sum(tf.mul(tf.square(resid), invVar), 2), -0.5), logNorm); // [B, K]
      // log Σ_k p_t(k | x_t) exp(o_k), with log p_t(k | x_t) = logSoftmax_k(ℓ) (cheaper to differentiate than a second log-sum-exp).
      return logSumExpRows(tf.add(tf.logSoftmax(logits, 1), o) as tf.Tensor2D);
    });
};
