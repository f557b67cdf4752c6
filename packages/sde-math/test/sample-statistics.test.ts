/**
 * The sample statistics (sample-statistics.ts) against hand-computed values and the laws they estimate: the
 * moments of a small data set, mean ± SE, the energy distance as an unbiased distance (0 ± SE under one law), and
 * mixture component fractions as unbiased estimates of the weights.
 */
import fc from 'fast-check';
import { random } from '@score-sde/tensor-fp';
import { sampleMean, sampleCovariance, meanAndStandardError, quantile, energyDistance, componentFractions, sampleMixtureAt, type GaussianMixture } from '@score-sde/sde-math';
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
