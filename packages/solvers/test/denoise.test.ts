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
import { identity } from '@score-sde/tensor-fp/testing';

const separatedLaw = identity({
  concept: 'denoised',
  title: 'The denoised endpoint of separated components has the closed-form law',
  formula: String.raw`$\hat x_0 = \mathbb E[x_0 \mid x_\varepsilon] = \big(x_\varepsilon + s^2 \nabla \log p_\varepsilon(x_\varepsilon)\big)/m$ and, given component $k$, $\hat x_0 \sim \mathcal N\big(\mu_k,\ m^2 \Sigma_k (m^2 \Sigma_k + s^2 I)^{-1} \Sigma_k\big)$ with $m = m(\varepsilon)$, $s = s(\varepsilon)$`,
  source: 'Tweedie (Efron 2011); given k the denoiser is affine in the Gaussian x_ε | k; the responsibilities are 0 or 1 up to Φ(−6) ≈ 1e−9 for components ≥ 6 marginal sd from the midpoint',
  tolerance: 'Monte-Carlo: weights, per-component means and variances within 5 SE (2000 samples in 2-D per coordinate, 256 in 64-D coordinate-averaged), samplers stopped at σ(ε) = 0.5 then denoised',
});

const overlappingLaw = identity({
  concept: 'denoised',
  title: 'The denoised endpoint of overlapping components has the numerically integrated law',
  formula: String.raw`$\mathbb E[g(\hat x_0)] = \int p_\varepsilon(x)\, g\Big(\sum_k p(k \mid x)\big(\mu_k + m s_k^2 (m^2 s_k^2 + s^2)^{-1}(x - m\mu_k)\big)\Big)\,dx$ for $g(y) = y,\ y^2,\ \mathbb 1[y < c]$`,
  source: 'the exact Tweedie map of the mixture (posteriorMeanAt), integrated by the trapezoid rule on 40,001 points over ±12 marginal sd',
  tolerance: 'Monte-Carlo: each expectation within 5 SE of its sample mean (2000 samples); the quadrature error is below 1e−9',
});

const towerRule = identity({
  concept: 'denoised',
  title: 'The denoised endpoint has the data mean',
  formula: String.raw`$\mathbb E\big[\mathbb E[x_0 \mid x_\varepsilon]\big] = \mathbb E[x_0] = \sum_k w_k \mu_k$`,
  source: 'the tower rule of conditional expectation, for every mixture',
  tolerance: 'Monte-Carlo: within 5 SE (per coordinate in 1-D, coordinate-averaged in 64-D)',
});

const quadratureCheck = identity({
  concept: 'denoised',
  title: 'The quadrature oracle of the denoised law is normalised and has the data mean',
  formula: String.raw`$\int p_\varepsilon = 1$ and $\int p_\varepsilon(x)\,\mathbb E[x_0 \mid x]\,dx = \mathbb E[x_0]$`,
  source: 'a check of the oracle itself: both identities hold exactly',
  tolerance: 'trapezoid rule on a smooth integrand over ±12 sd: far below 1e−9',
});

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
  'dpm-solver++(2M) SDE (η = 1)',
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
      separatedLaw.allWithinSE(checks, 5, { sampler: c.name, SDE: _label, distribution: '2-D separated' });
      expect(liveTensors()).toBe(before);
    });
    if (checked('64-D')) {
      test(`${c.name}: the 64-D separated mixture, per-component law and the data mean (tower rule), within 5 SE`, async () => {
        const { checks } = await recoversMixture(sampler, mixtures['64-D'], 256, 8);
        separatedLaw.allWithinSE(checks, 5, { sampler: c.name, SDE: _label, distribution: '64-D' });
        const r = await runExact(sampler, mixtures['64-D'], random.split(random.key(8), 256));
        towerRule.allWithinSE(denoisedMeanIsDataMean(mixtures['64-D'], r.x, false), 5, { sampler: c.name, SDE: _label, distribution: '64-D' });
        r.x.dispose();
      });
    }
    if (checked('1-D')) {
      test(`${c.name}: the 1-D overlapping mixture, E[y], E[y²], CDF at the midpoints against the exact law (quadrature), and E[y] = E[x₀], within 5 SE`, async () => {
        const r = await runExact(sampler, mixtures['1-D'], random.split(random.key(9), 2000));
        overlappingLaw.allWithinSE(denoisedLaw1D(sde, mixtures['1-D'], eps, r.x), 5, { sampler: c.name, SDE: _label, distribution: '1-D' });
        towerRule.allWithinSE(denoisedMeanIsDataMean(mixtures['1-D'], r.x, true), 5, { sampler: c.name, SDE: _label, distribution: '1-D' });
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
    quadratureCheck.lessThan(Math.abs(denoisedExpectation1D(sde, mixtures['1-D'], eps, () => 1) - 1), 1e-9, sde.kind);
    quadratureCheck.lessThan(Math.abs(denoisedExpectation1D(sde, mixtures['1-D'], eps, (y) => y) - mixtureMean(mixtures['1-D'])[0]!), 1e-9, sde.kind);
    // and the denoised law is not p_ε: its variance is smaller than the data's (shrinkage), p_ε's is larger.
    const second = denoisedExpectation1D(sde, mixtures['1-D'], eps, (y) => y * y);
    const mean = mixtureMean(mixtures['1-D'])[0]!;
    expect(second - mean * mean).toBeLessThan(mixtureVariance(mixtures['1-D'])[0]!);
  }
});
