/**
 * Time grids: the noise level σ(t) = s(t)/m(t) and its closed-form inverse, and the defining spacing of each grid.
 */
import fc from 'fast-check';
import { type SDE, marginalMeanCoef, marginalStd, noiseLevel, timeOfNoiseLevel, logSnr } from '@score-sde/sde-math';
import { uniformGrid, quadraticGrid, karrasGrid, logSnrGrid, isDecreasing } from '@score-sde/solvers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const inverse = identity({
  concept: 'discretisation',
  title: 'timeOfNoiseLevel inverts noiseLevel',
  formula: String.raw`$t\big(\sigma(t)\big) = t$ on $(0, T]$, $\sigma(t) = s(t)/m(t)$`,
  source: 'closed-form inverses of σ(t) for each SDE kind',
  tolerance: 'float64 round trip through exp/log/sqrt, amplified by the conditioning of t(σ): 1e−9 · max(t, 1e−3)',
});

const noiseLevelLaw = identity({
  concept: 'discretisation',
  title: 'Noise level and log-SNR',
  formula: String.raw`$\sigma(t) = s(t)/m(t),\quad \lambda(t) = \log \mathrm{SNR}(t) = -2 \log \sigma(t)$`,
  source: 'Karras et al. 2022 (σ-parameterisation); Lu et al. 2022 (DPM-Solver, λ = log α/σ)',
  tolerance: 'float64: 12 decimal places for σ, 10 for λ',
});

const gridShape = identity({
  concept: 'discretisation',
  title: 'Every grid runs from T down to ε',
  formula: String.raw`$t_0 = T > t_1 > \dots > t_n = \varepsilon$, $n + 1$ points (uniform, quadratic, Karras, log-SNR)`,
  source: 'definition of a sampling grid',
  tolerance: 'exact',
});

const gridSpacing = identity({
  concept: 'discretisation',
  title: 'Each grid is uniform in its own variable',
  formula: String.raw`second differences vanish: $t$ (uniform), $\sqrt{t - \varepsilon}$ (quadratic), $\sigma(t)^{1/\rho}$ with $\rho = 7$ (Karras et al. 2022, eq. 5), $\lambda(t)$ (log-SNR, Lu et al. 2022)`,
  source: 'the defining spacing of each grid',
  tolerance: 'float64 evaluation through t(σ) and back, times the conditioning: 1e−7 of the largest value',
});

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

const tArb = real(1e-4, 1);

/** "t(σ(t)) = t on (0, T]" of a pair (σ, t(σ)): the error and its bound, so it can be applied to a deliberately broken inverse. */
const inversionError =
  (sigmaOf: typeof noiseLevel, timeOf: typeof timeOfNoiseLevel) =>
  (sde: SDE, t: number): { readonly error: number; readonly bound: number } => ({ error: Math.abs(timeOf(sde, sigmaOf(sde, t)) - t), bound: REL * Math.max(t, 1e-3) });

test('timeOfNoiseLevel inverts noiseLevel: t(σ(t)) = t on (0, T]', () => {
  fc.assert(
    fc.property(sdeArb, tArb, (sde, t) => {
      const { error, bound } = inversionError(noiseLevel, timeOfNoiseLevel)(sde, t);
      inverse.atMost(error, bound);
    }),
    runs(200),
  );
});

test('the inversion property fails for an inverse off by one part in a million in σ', () => {
  const broken: typeof timeOfNoiseLevel = (sde, sigma) => timeOfNoiseLevel(sde, sigma * (1 + 1e-6));
  const holds = fc.property(sdeArb, tArb, (sde, t) => {
    const { error, bound } = inversionError(noiseLevel, broken)(sde, t);
    return error <= bound;
  });
  expect(fc.check(holds, runs(200)).failed).toBe(true);
});

test('noiseLevel is σ = s(t)/m(t) and logSnr is −2 log σ', () => {
  fc.assert(
    fc.property(sdeArb, real(1e-3, 1), (sde, t) => {
      const s = marginalStd(sde, t) / marginalMeanCoef(sde, t);
      noiseLevelLaw.lessThan(Math.abs(noiseLevel(sde, t) - s), 0.5e-12); // toBeCloseTo(s, 12)
      noiseLevelLaw.lessThan(Math.abs(logSnr(sde, t) + 2 * Math.log(s)), 0.5e-10); // toBeCloseTo(−2 log s, 10)
    }),
    runs(100),
  );
});

test('every grid is strictly decreasing from T to ε with n + 1 points', () => {
  fc.assert(
    fc.property(sdeArb, nArb, epsArb, (sde, n, eps) => {
      for (const grid of [uniformGrid(sde, n, eps), quadraticGrid(sde, n, eps), karrasGrid(sde, n, eps), logSnrGrid(sde, n, eps)]) {
        gridShape.equal(grid.length, n + 1);
        gridShape.equal(grid[0], sde.T);
        gridShape.equal(grid[n], eps);
        gridShape.equal(isDecreasing(grid), true);
      }
    }),
    runs(100),
  );
});

/** Second differences of a sequence (zero for an arithmetic one); n − 1 of them for n + 1 points. */
const secondDifferences = (v: ReadonlyArray<number>): number[] => v.slice(2).map((x, i) => x - 2 * v[i + 1]! + v[i]!);

/** The four grids, each with the variable in which it is uniform. */
type GridOf = (sde: SDE, n: number, eps: number) => ReadonlyArray<number>;
const gridsAndVariables = (quadratic: GridOf = quadraticGrid): ReadonlyArray<readonly [string, GridOf, (sde: SDE, eps: number) => (t: number) => number]> => [
  ['uniform', uniformGrid, () => (t) => t],
  ['quadratic', quadratic, (sde, eps) => (t) => Math.sqrt((t - eps) / (sde.T - eps))],
  ['karras', karrasGrid, (sde) => (t) => noiseLevel(sde, t) ** (1 / 7)],
  ['log-snr', logSnrGrid, (sde) => (t) => logSnr(sde, t)],
];

/**
 * "Each grid is uniform in its own variable": all n − 1 ≥ 1 second differences of that variable over the n + 1
 * points (end points included: they are pinned to T and ε exactly) vanish up to rounding. Rounding in each point's
 * float64 evaluation (through t(σ) and back) is a few ulps of the scale, times the conditioning of the inverse map:
 * 1e-7 relative leaves room for it and still catches any real curvature. Returns, per grid, the second differences
 * and their bound.
 */
const secondDifferencesOfGrids = (grids: ReturnType<typeof gridsAndVariables>, sde: SDE, n: number, eps: number) =>
  grids.map(([name, grid, variable]) => {
    const v = grid(sde, n, eps).map(variable(sde, eps));
    return { name, d: secondDifferences(v), bound: 1e-7 * Math.max(...v.map(Math.abs)) };
  });

const nGridArb = fc.integer({ min: 2, max: 100 });

test('each grid is uniform in its own variable: t (uniform), √(t−ε) (quadratic), σ^{1/ρ} (Karras), λ (log-SNR)', () => {
  fc.assert(
    fc.property(sdeArb, nGridArb, epsArb, (sde, n, eps) => {
      for (const { name, d, bound } of secondDifferencesOfGrids(gridsAndVariables(), sde, n, eps)) {
        gridSpacing.equal(d.length, n - 1, name);
        d.forEach((x) => gridSpacing.atMost(Math.abs(x), bound, name));
      }
    }),
    runs(100),
  );
});

test('the uniformity property fails for a quadratic grid with exponent 2.05 (checked already at n = 2)', () => {
  const bent: GridOf = (sde, n, eps) => quadraticGrid(sde, n, eps).map((t, i) => (i === 0 || i === n ? t : eps + (sde.T - eps) * (1 - i / n) ** 2.05));
  const holds = fc.property(sdeArb, nGridArb, epsArb, (sde, n, eps) =>
    secondDifferencesOfGrids(gridsAndVariables(bent), sde, n, eps).every(({ d, bound }) => d.length === n - 1 && d.every((x) => Math.abs(x) <= bound)),
  );
  const r = fc.check(holds, runs(100));
  expect(r.failed).toBe(true);
  // Shrinking reaches the smallest grid with an interior point: the property is not vacuous at n = 2.
  expect(r.counterexample?.[1]).toBe(2);
});

test('grids reject n < 1 and ε outside [0, T)', () => {
  const sde: SDE = { kind: 'vp', betaMin: 0.1, betaMax: 20, T: 1 };
  expect(() => uniformGrid(sde, 0)).toThrow(RangeError);
  expect(() => uniformGrid(sde, 10, 1)).toThrow(RangeError);
  expect(() => karrasGrid(sde, 10, 0)).toThrow(RangeError);
});
