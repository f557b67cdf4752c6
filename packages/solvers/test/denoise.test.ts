/**
 * The denoised endpoint: every sampler ends with one step from ε to t = 0, Tweedie's denoiser
 *   x̂₀ = E[x₀ | x_ε] = (x_ε + s(ε)² ∇log p_ε(x_ε)) / m(ε),
 * so with the exact score of a Gaussian mixture its output has a known law: given component k it is Gaussian,
 * N(μ_k, m²Σ_k(m²Σ_k + s²I)⁻¹Σ_k), the components mixed through the posterior responsibilities p(k | x_ε).
 *
 * The samplers here stop at the time where the noise level σ(ε) = s/m is 0.5 (not 1e-3, where the denoiser moves
 * a sample by ~s² ≈ 1e-4 and its law cannot be told from p_ε), so the checks see the denoiser: the variance of a
 * component of std 0.5 shrinks from 0.25 + 0.25 (p_ε, in x/m units) to 0.125 (denoised).
 * - 2-D and 64-D mixtures with separated components (every component mean ≥ 6 marginal standard deviations from the
 *   midpoint to its neighbour, so p(k | x_ε) differs from 0 or 1 only on a set of probability < Φ(−6) ≈ 1e-9 and
 *   the closed form {@link denoisedMixture} is the law up to that): weights, per-component means and variances
 *   within 5 SE (the conformance suite's checks);
 * - the 1-D mixture of the conformance suite, whose components overlap at σ = 0.5: E[y], E[y²] and the CDF at the
 *   midpoints between components against the exact law computed by quadrature, within 5 SE;
 * - every mixture: the mean of the output is the data mean (tower rule), within 5 SE.
 * Samplers: one per family the issue names (predictor–corrector, Euler–Maruyama, EDM Heun, DPM-Solver++(2M),
 * fixed-step and adaptive probability-flow ODE, adaptive reverse SDE), with the conformance suite's step counts and
 * dimensions (per-sample Langevin norms only in 64-D). Reverse diffusion and ancestral sampling are left out: their
 * steps are tied to the discrete schedule of N uniform steps over [0, T], which a grid stopped at σ = 0.5 is not.
 */
import { initBackend, random, liveTensors, tf } from '@score-sde/tensor-fp';
import { vp, subvp, ve, type SDE, type GaussianMixture, timeOfNoiseLevel, mixtureMean, mixtureVariance } from '@score-sde/sde-math';
import { none, samplerName, stepCount } from '@score-sde/solvers';
import { samplerCases, mixtures, recoversMixture, runExact, denoisedLaw1D, denoisedMeanIsDataMean, denoisedExpectation1D } from './conformance';
import { failures } from './helpers';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const SIGMA = 0.5;

const sdes: ReadonlyArray<readonly [string, SDE]> = [
  ['VP', vp()],
  ['sub-VP', subvp()],
  ['VE', ve()],
];

/** Two separated 2-D components: mean distance 2·√(6² + 1.5²) ≈ 12.4 against marginal stds ≤ 0.9. */
const separated2D: GaussianMixture = {
  weights: [0.35, 0.65],
  means: [
    [-6, -1.5],
    [6, 1.5],
  ],
  stds: [
    [0.5, 0.8],
    [0.6, 0.3],
  ],
};

const FAMILIES = [
  'euler-maruyama',
  'pc: euler-maruyama ▸ langevin (per-sample, snr 0.16)',
  'pc (corrector-first): annealed-langevin ▸ euler-maruyama',
  'pf-ode heun',
  'pf-ode dopri5 (rtol = atol = 1e-5)',
  'edm heun',
  'dpm-solver++(2M)',
  'adaptive reverse SDE (PI controller, rtol = atol = 1e-2)',
];
const cases = samplerCases.filter((c) => FAMILIES.includes(c.name));

test('the family list names existing conformance cases', () => {
  expect(cases.map((c) => c.name).sort()).toEqual([...FAMILIES].sort());
});

describe.each(sdes)('%s, stopped at σ(ε) = 0.5, then Tweedie to t = 0', (_label, sde) => {
  const eps = timeOfNoiseLevel(sde, SIGMA);
  for (const c of cases) {
    const sampler = c.build(sde, eps)!;
    const checked = (d: '1-D' | '2-D' | '64-D'): boolean => c.dims === undefined || c.dims.includes(d);
    if (checked('2-D'))
    test(`${c.name}: the output of the 2-D separated mixture has the law N(μ_k, m²s_k⁴/(m²s_k² + s²)) per component, within 5 SE`, async () => {
      const before = liveTensors();
      const { checks } = await recoversMixture(sampler, separated2D, 2000, 7, { perCoordinate: true });
      expect(checks.length).toBeGreaterThan(0);
      expect(failures(checks, 5)).toEqual([]);
      expect(liveTensors()).toBe(before);
    });
    if (checked('64-D')) {
      test(`${c.name}: the 64-D separated mixture, per-component law and the data mean (tower rule), within 5 SE`, async () => {
        const { checks } = await recoversMixture(sampler, mixtures['64-D'], 256, 8);
        expect(failures(checks, 5)).toEqual([]);
        const r = await runExact(sampler, mixtures['64-D'], random.split(random.key(8), 256));
        expect(failures(denoisedMeanIsDataMean(mixtures['64-D'], r.x, false), 5)).toEqual([]);
        r.x.dispose();
      });
    }
    if (checked('1-D')) {
      test(`${c.name}: the 1-D overlapping mixture, E[y], E[y²], CDF at the midpoints against the exact law (quadrature), and E[y] = E[x₀], within 5 SE`, async () => {
        const r = await runExact(sampler, mixtures['1-D'], random.split(random.key(9), 2000));
        expect(failures(denoisedLaw1D(sde, mixtures['1-D'], eps, r.x), 5)).toEqual([]);
        expect(failures(denoisedMeanIsDataMean(mixtures['1-D'], r.x, true), 5)).toEqual([]);
        r.x.dispose();
      });
    }
  }
});

test('denoising is part of the sampler value: its name, its step count and its NFE show the final step', async () => {
  const sde = vp();
  const base = cases[0]!.build(sde, timeOfNoiseLevel(sde, SIGMA))!;
  const stopped = { ...base, final: none };
  expect(samplerName(base)).toBe('euler-maruyama → tweedie');
  expect(samplerName(stopped)).toBe('euler-maruyama');
  expect(stepCount(base)).toBe(stepCount(stopped) + 1);
  const keys = random.split(random.key(3), 16);
  const a = await runExact(base, separated2D, keys);
  const b = await runExact(stopped, separated2D, keys);
  // One more score evaluation, and the denoised batch differs from the stopped one (s(ε) is large here).
  expect(a.nfe).toBe(b.nfe + 1);
  expect(tf.tidy(() => tf.max(tf.abs(tf.sub(a.x, b.x))).dataSync()[0]!)).toBeGreaterThan(0.01);
  tf.dispose([a.x, b.x]);
});

test('the quadrature of the exact denoised law integrates to 1 and gives the data mean (tower rule), to 1e-9', () => {
  // A check of the oracle itself: ∫ p_ε = 1 and E[E[x₀ | x_ε]] = E[x₀] hold exactly; the trapezoid error is far below 1e-9.
  for (const [, sde] of sdes) {
    const eps = timeOfNoiseLevel(sde, SIGMA);
    expect(Math.abs(denoisedExpectation1D(sde, mixtures['1-D'], eps, () => 1) - 1)).toBeLessThan(1e-9);
    expect(Math.abs(denoisedExpectation1D(sde, mixtures['1-D'], eps, (y) => y) - mixtureMean(mixtures['1-D'])[0]!)).toBeLessThan(1e-9);
    // and the denoised law is not p_ε: its variance is smaller than the data's (shrinkage), p_ε's is larger.
    const second = denoisedExpectation1D(sde, mixtures['1-D'], eps, (y) => y * y);
    const mean = mixtureMean(mixtures['1-D'])[0]!;
    expect(second - mean * mean).toBeLessThan(mixtureVariance(mixtures['1-D'])[0]!);
  }
});
