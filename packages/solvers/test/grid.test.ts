/**
 * Time grids: the noise level σ(t) = s(t)/m(t) and its closed-form inverse, and the defining spacing of each grid.
 */
import fc from 'fast-check';
import { type SDE, marginalMeanCoef, marginalStd, noiseLevel, timeOfNoiseLevel, logSnr } from '@score-sde/sde-math';
import { uniformGrid, quadraticGrid, karrasGrid, logSnrGrid, isDecreasing } from '@score-sde/solvers';

const real = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
const sdeArb: fc.Arbitrary<SDE> = fc.oneof(
  fc.record({ betaMin: real(0.05, 1), betaMax: real(5, 30) }).map((p): SDE => ({ kind: 'vp', ...p, T: 1 })),
  fc.record({ betaMin: real(0.05, 1), betaMax: real(5, 30) }).map((p): SDE => ({ kind: 'subvp', ...p, T: 1 })),
  fc.record({ sigmaMin: real(0.005, 0.1), sigmaMax: real(10, 100) }).map((p): SDE => ({ kind: 've', ...p, T: 1 })),
  real(2, 50).map((sigma): SDE => ({ kind: 'tutorial', sigma, T: 1 })),
);
const nArb = fc.integer({ min: 1, max: 200 });
const epsArb = real(1e-5, 1e-2);

/** Float64 round trips through exp/log/sqrt lose a few ulps per operation, amplified by the condition number of t(σ). */
const REL = 1e-9;

test('timeOfNoiseLevel inverts noiseLevel: t(σ(t)) = t on (0, T]', () => {
  fc.assert(
    fc.property(sdeArb, real(1e-4, 1), (sde, t) => {
      expect(Math.abs(timeOfNoiseLevel(sde, noiseLevel(sde, t)) - t)).toBeLessThanOrEqual(REL * Math.max(t, 1e-3));
    }),
    { seed: 42, numRuns: 200 },
  );
});

test('noiseLevel is σ = s(t)/m(t) and logSnr is −2 log σ', () => {
  fc.assert(
    fc.property(sdeArb, real(1e-3, 1), (sde, t) => {
      const s = marginalStd(sde, t) / marginalMeanCoef(sde, t);
      expect(noiseLevel(sde, t)).toBeCloseTo(s, 12);
      expect(logSnr(sde, t)).toBeCloseTo(-2 * Math.log(s), 10);
    }),
    { seed: 42, numRuns: 100 },
  );
});

test('every grid is strictly decreasing from T to ε with n + 1 points', () => {
  fc.assert(
    fc.property(sdeArb, nArb, epsArb, (sde, n, eps) => {
      for (const grid of [uniformGrid(sde, n, eps), quadraticGrid(sde, n, eps), karrasGrid(sde, n, eps), logSnrGrid(sde, n, eps)]) {
        expect(grid.length).toBe(n + 1);
        expect(grid[0]).toBe(sde.T);
        expect(grid[n]).toBe(eps);
        expect(isDecreasing(grid)).toBe(true);
      }
    }),
    { seed: 42, numRuns: 100 },
  );
});

/** Second differences of a sequence (zero for an arithmetic one). */
const secondDifferences = (v: ReadonlyArray<number>): number[] => v.slice(2).map((x, i) => x - 2 * v[i + 1]! + v[i]!);

test('each grid is uniform in its own variable: t (uniform), √(t−ε) (quadratic), σ^{1/ρ} (Karras), λ (log-SNR)', () => {
  fc.assert(
    fc.property(sdeArb, fc.integer({ min: 2, max: 100 }), epsArb, (sde, n, eps) => {
      const sc = (v: ReadonlyArray<number>): number => Math.max(...v.map(Math.abs));
      const check = (v: ReadonlyArray<number>): void => {
        // Rounding in each point's float64 evaluation (through t(σ) and back) is a few ulps of the scale, times the
        // conditioning of the inverse map: 1e-7 relative leaves room for it and still catches any real curvature.
        secondDifferences(v.slice(1, -1)).forEach((d) => expect(Math.abs(d)).toBeLessThanOrEqual(1e-7 * sc(v)));
      };
      check(uniformGrid(sde, n, eps));
      check(quadraticGrid(sde, n, eps).map((t) => Math.sqrt((t - eps) / (sde.T - eps))));
      check(karrasGrid(sde, n, eps).map((t) => noiseLevel(sde, t) ** (1 / 7)));
      check(logSnrGrid(sde, n, eps).map((t) => logSnr(sde, t)));
    }),
    { seed: 42, numRuns: 100 },
  );
});

test('grids reject n < 1 and ε outside [0, T)', () => {
  const sde: SDE = { kind: 'vp', betaMin: 0.1, betaMax: 20, T: 1 };
  expect(() => uniformGrid(sde, 0)).toThrow(RangeError);
  expect(() => uniformGrid(sde, 10, 1)).toThrow(RangeError);
  expect(() => karrasGrid(sde, 10, 0)).toThrow(RangeError);
});
