/**
 * Shared arbitraries and small statistics for the sde-math property tests.
 */
import fc from 'fast-check';
import { type SDE, type GaussianMixture } from '@score-sde/sde-math';

/** Float64 machine epsilon and float32 unit roundoff. */
export const EPS64 = Number.EPSILON;
export const EPS32 = 2 ** -24;
/** Smallest normal float32: values below it are flushed/denormalised with an absolute error of this size. */
export const TINY32 = 2 ** -126;
/** Spacing of float32 subnormals: the absolute rounding error of a result that underflows is ≤ this. */
export const DENORM32 = 2 ** -149;

const real = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });

/** VP SDEs with β_min ∈ [0.05, 1], β_max ∈ [5, 30], T = 1. */
export const vpArb = fc.record({ betaMin: real(0.05, 1), betaMax: real(5, 30) }).map((p): SDE => ({ kind: 'vp', ...p, T: 1 }));
/** Sub-VP SDEs with the same ranges. */
export const subvpArb = fc.record({ betaMin: real(0.05, 1), betaMax: real(5, 30) }).map((p): SDE => ({ kind: 'subvp', ...p, T: 1 }));
/** VE SDEs with σ_min ∈ [0.005, 0.1], σ_max ∈ [10, 100], T = 1. */
export const veArb = fc.record({ sigmaMin: real(0.005, 0.1), sigmaMax: real(10, 100) }).map((p): SDE => ({ kind: 've', ...p, T: 1 }));
/** Tutorial SDEs with σ ∈ [2, 50], T = 1. */
export const tutorialArb = real(2, 50).map((sigma): SDE => ({ kind: 'tutorial', sigma, T: 1 }));
/** Any of the four kinds. */
export const sdeArb = fc.oneof(vpArb, subvpArb, veArb, tutorialArb);

/** The four kinds by name, for `describe.each`. */
export const arbsByKind = { vp: vpArb, subvp: subvpArb, ve: veArb, tutorial: tutorialArb } as const;

/** Interior times t ∈ [0.05, 0.95]. */
export const timeArb = real(0.05, 0.95);

/**
 * Small mixtures: K ∈ [1, 3] components in dimension D ∈ [1, 3], weights ≥ 0.05 (normalised in float64), means in
 * [−3, 3], stds in [0.2, 2].
 */
export const mixtureArb = (dims: { minD?: number; maxD?: number } = {}): fc.Arbitrary<GaussianMixture> =>
  fc
    .record({ K: fc.integer({ min: 1, max: 3 }), D: fc.integer({ min: dims.minD ?? 1, max: dims.maxD ?? 3 }) })
    .chain(({ K, D }) =>
      fc.record({
        raw: fc.array(real(0.05, 1), { minLength: K, maxLength: K }),
        means: fc.array(fc.array(real(-3, 3), { minLength: D, maxLength: D }), { minLength: K, maxLength: K }),
        stds: fc.array(fc.array(real(0.2, 2), { minLength: D, maxLength: D }), { minLength: K, maxLength: K }),
      }),
    )
    .map(({ raw, means, stds }) => {
      const s = raw.reduce((a, b) => a + b, 0);
      return { weights: raw.map((w) => w / s), means, stds };
    });

/** Sample mean and unbiased sample variance of a column of a row-major [N, D] array. */
export const columnMoments = (x: ArrayLike<number>, D: number, j: number): { mean: number; variance: number; n: number } => {
  const n = x.length / D;
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i * D + j]!;
  const mean = s / n;
  let q = 0;
  for (let i = 0; i < n; i++) q += (x[i * D + j]! - mean) ** 2;
  return { mean, variance: q / (n - 1), n };
};

/**
 * Standard errors of the sample mean and sample variance of n i.i.d. N(·, v) draws:
 * SE(mean) = √(v/n), SE(variance) = v √(2/(n−1)).
 */
export const gaussianStandardErrors = (v: number, n: number): { mean: number; variance: number } => ({
  mean: Math.sqrt(v / n),
  variance: v * Math.sqrt(2 / (n - 1)),
});
