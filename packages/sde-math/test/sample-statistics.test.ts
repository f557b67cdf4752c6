/**
 * The sample statistics (sample-statistics.ts) against hand-computed values and the laws they estimate: the
 * moments of a small data set, mean ± SE, the energy distance as an unbiased distance (0 ± SE under one law), and
 * mixture component fractions as unbiased estimates of the weights.
 */
import fc from 'fast-check';
import { random } from '@score-sde/tensor-fp';
import { sampleMean, sampleCovariance, meanAndStandardError, quantile, energyDistance, componentFractions, sampleMixtureAt, standardNormalCdf, type GaussianMixture } from '@score-sde/sde-math';
import { EPS64 } from './helpers';

describe('moments', () => {
  test('hand example: rows (1,2), (3,5), (5,11) have mean (3, 6) and covariance [[4, 9], [9, 21]]', () => {
    const x = [1, 2, 3, 5, 5, 11];
    expect(Array.from(sampleMean(x, 2))).toEqual([3, 6]);
    // Deviations (−2, −4), (0, −1), (2, 5): S = [[8, 18], [18, 42]] / 2, exact in float64.
    expect(sampleCovariance(x, 2).map((r) => Array.from(r))).toEqual([
      [4, 9],
      [9, 21],
    ]);
  });

  test('the variance equals the one-pass form (Σx² − n x̄²)/(n − 1), within float64 rounding of the sums', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: 2, maxLength: 50 }), (xs) => {
        const n = xs.length;
        const mean = xs.reduce((a, b) => a + b, 0) / n;
        const onePass = (xs.reduce((a, b) => a + b * b, 0) - n * mean * mean) / (n - 1);
        // Each sum of n terms ≤ 100 carries ≤ n·ε·Σ|terms| ≤ n·ε·100n of rounding; divided by n − 1 ≥ n/2.
        const bound = 4 * n * n * 100 * EPS64;
        return Math.abs(sampleCovariance(xs, 1)[0]![0]! - onePass) <= bound;
      }),
      { seed: 12, numRuns: 200 },
    );
  });

  test('mean ± standard error: x̄ = Σx/n, SE = √(Σ(x − x̄)²/(n − 1)/n) (hand example 1,2,3,4: 2.5 ± √(5/12)); SE is NaN for n = 1', () => {
    const r = meanAndStandardError([1, 2, 3, 4]);
    expect(r.mean).toBe(2.5);
    // Σ(x − x̄)² = 5, s² = 5/3, SE² = 5/12; a few ulps of rounding.
    expect(Math.abs(r.standardError - Math.sqrt(5 / 12))).toBeLessThan(1e-15);
    expect(Number.isNaN(meanAndStandardError([3]).standardError)).toBe(true);
  });

  test('a constant sample of a short dyadic value c has mean c and standard error 0 exactly (its partial sums k·c are exact in float64)', () => {
    for (const [c, n] of [[1, 1000], [0.375, 777], [3.75, 5]] as const) expect(meanAndStandardError(new Array<number>(n).fill(c))).toEqual({ mean: c, standardError: 0 });
  });
});

describe('quantiles', () => {
  test('the quantile of any ordering of 0, 1, …, n − 1 is (n − 1) q: type-7 interpolation between order statistics', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(), (n, q, seed) => {
        // a shuffled 0…n−1: order must not matter; values up to 59 and (n − 1) q carry one rounding each
        const xs = Array.from({ length: n }, (_, i) => i).sort((a, b) => ((a * 7919 + seed) % 101) - ((b * 7919 + seed) % 101));
        return Math.abs(quantile(xs, q) - (n - 1) * q) <= 4 * 60 * Number.EPSILON;
      }),
      { seed: 5, numRuns: 300 },
    );
    expect(quantile([5, 1, 3], 0.5)).toBe(3);
    expect(quantile([4, 1, 3, 2], 0.5)).toBe(2.5);
  });

  test('quantile refuses an empty sample, a NaN in it, and q outside [0, 1]', () => {
    expect(() => quantile([], 0.5)).toThrow(RangeError);
    expect(() => quantile([1, NaN, 2], 0.5)).toThrow(/NaN/);
    expect(() => quantile([1, 2], 1.5)).toThrow(RangeError);
  });
});

describe('energy distance', () => {
  test('unbiased: ≈ 0 (within 5 SE) for two samples of one law, many SE above 0 for different laws', () => {
    const m = { weights: [0.5, 0.5], means: [[-1, 0], [1, 0]], stds: [[0.5, 0.5], [0.5, 0.5]] };
    const shifted = { ...m, means: [[0, 0], [2, 0]] };
    const a = sampleMixtureAt(m)(random.split(random.key(1), 300)).x;
    const b = sampleMixtureAt(m)(random.split(random.key(2), 300)).x;
    const c = sampleMixtureAt(shifted)(random.split(random.key(3), 300)).x;
    const same = energyDistance(a, b, 2);
    const diff = energyDistance(a, c, 2);
    // The U-statistic is unbiased, so under equal laws it is 0 ± its standard error.
    expect(Math.abs(same.estimate)).toBeLessThanOrEqual(5 * same.standardError);
    // A shift of the whole law by 1 (about one standard deviation of the mixture) is many SE away from 0 at n = 300.
    expect(diff.estimate).toBeGreaterThan(5 * diff.standardError);
  });

  test('hand example in one dimension: X = (0, 1, 2), Y = (0, 1, 2) + 3 gives 2·mean|x − y| − mean|x−x′| − mean|y−y′| = 6 − 4/3 − 4/3', () => {
    // |x_i − y_j| = 3 + j − i: mean over the 9 pairs is 3; |x_i − x_j| over i ≠ j: (1+2+1+1+2+1)/6 = 4/3.
    const r = energyDistance([0, 1, 2], [3, 4, 5], 1);
    expect(Math.abs(r.estimate - (6 - 8 / 3))).toBeLessThan(8 * EPS64);
  });
});

describe('component fractions', () => {
  const m: GaussianMixture = { weights: [0.2, 0.5, 0.3], means: [[-3, 0], [0, 2], [3, 0]], stds: [[0.6, 0.6], [0.5, 0.9], [0.7, 0.4]] };

  test('the mean responsibilities of n samples of the mixture estimate its weights: |f_k − w_k| ≤ 5 √(w_k(1 − w_k)/n), and Σ f_k = 1', () => {
    const n = 2000;
    const x = sampleMixtureAt(m)(random.split(random.key(4), n)).x;
    const f = componentFractions(m, x);
    // p(k | x) ∈ [0, 1] with mean w_k, so its variance is at most w_k(1 − w_k): the Bernoulli bound on the SE.
    m.weights.forEach((w, k) => expect(Math.abs(f[k]! - w)).toBeLessThanOrEqual(5 * Math.sqrt((w * (1 - w)) / n)));
    expect(Math.abs(f.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(n * EPS64);
  });
});

describe('the standard normal law', () => {
  test("Φ' = φ: the central difference (Φ(z + h) − Φ(z − h))/2h equals e^{−z²/2}/√(2π) within 1e-6 relative for z ∈ [−8, 8], across both of Φ's forms", () => {
    // Truncation: h² |φ'''| / 6 ≤ h² (z² + 3) φ / 6 ≤ 1.2e-7 φ for |z| ≤ 8 at h = 1e-4; rounding: Φ carries a few ulps
    // relative to itself, ≤ 4ε Φ / h ≤ 4ε · 0.5/1e-4 ≈ 4e-12 absolute, below 1e-6 φ for |z| ≤ 5.9 — beyond it Φ(z − h)
    // and Φ(z + h) are tails evaluated with relative precision (the continued fraction), so the bound is relative there too.
    const h = 1e-4;
    fc.assert(
      fc.property(fc.double({ min: -8, max: 8, noNaN: true }), (z) => {
        const phi = Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI);
        const lo = standardNormalCdf(z - h);
        const hi = standardNormalCdf(z + h);
        // in the upper tail take 1 − Φ from the lower tail by symmetry, so both differences keep relative precision
        const diff = z > 0 ? standardNormalCdf(-z + h) - standardNormalCdf(-z - h) : hi - lo;
        return Math.abs(diff / (2 * h) - phi) <= 1e-6 * phi;
      }),
      { seed: 3, numRuns: 400 },
    );
  });

  test('Φ at table values: Φ(0) = 1/2, Φ(−1.959963984540054) = 0.025, Φ(−5) = 2.866515718791946e−7, Φ(−8) = 6.220960574271819e−16', () => {
    expect(standardNormalCdf(0)).toBe(0.5);
    // a few ulps of the series' rounding
    expect(Math.abs(standardNormalCdf(-1.959963984540054) - 0.025)).toBeLessThan(8 * EPS64);
    expect(Math.abs(standardNormalCdf(-5) / 2.866515718791946e-7 - 1)).toBeLessThan(1e-12);
    expect(Math.abs(standardNormalCdf(-8) / 6.220960574271819e-16 - 1)).toBeLessThan(1e-12);
    expect(Math.abs(standardNormalCdf(1.6448536269514722) - 0.95)).toBeLessThan(8 * EPS64);
    expect(Number.isNaN(standardNormalCdf(Number.NaN))).toBe(true);
  });
});
