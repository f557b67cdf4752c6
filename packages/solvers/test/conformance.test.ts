/**
 * The conformance suite: every sampler (predictors, predictor–corrector pairs, ODE solvers, fast and adaptive
 * samplers) run with the exact score of Gaussian mixtures under VP, sub-VP and VE must reproduce the exact marginal
 * p_ε — component weights, per-component means and variances — within 5 standard errors, at the step count each
 * case states (see `conformance.ts`); and must be reproducible (same keys → identical samples) and, where the maths
 * allows, batch-invariant (a sample's value is the same in a batch of 1 and a batch of 64).
 *
 * Sample sizes: 2000 in 1-D and 2-D (mean, variance of every coordinate and the coordinate averages), 256 in 64-D
 * (the coordinate-averaged mean and variance of each component: with 64 coordinates their standard error is 8×
 * smaller than a single coordinate's, so 256 samples detect a 2–3 % variance bias).
 */
import { initBackend, random, liveTensors } from '@score-sde/tensor-fp';
import { vp, subvp, ve, type SDE } from '@score-sde/sde-math';
import { none } from '@score-sde/solvers';
import { samplerCases, mixtures, recoversMixture, sameKeysSameSamples, batchOfOneDifference, type MixtureName } from './conformance';
import { identity } from '@score-sde/tensor-fp/testing';

const recoversMarginal = identity({
  concept: 'conformance',
  title: 'Every sampler recovers the exact marginal of a Gaussian mixture',
  formula: String.raw`$x \sim \text{sampler} \Rightarrow \mathbb E[r_k(x)] = w_k,\ \ \mathbb E\big[r_k(x)(x_j - \mu_{kj})\big] = 0,\ \ \mathbb E\big[r_k(x)\big((x_j - \mu_{kj})^2 - s_{kj}^2\big)\big] = 0$, with $r_k(x) = p_\varepsilon(k \mid x)$ of the exact $p_\varepsilon$`,
  source: 'for x ~ p_ε these hold exactly whatever the overlap (E[r_k g(x)] = w_k E_k[g]); samplers run with the exact mixture score from the prior at T to ε = 1e−3 and stop there (final: none), at the step count each case states in conformance.ts',
  tolerance: 'Monte-Carlo: every check within 5 SE of its plain mean over samples (2000 samples in 1-D and 2-D, per coordinate and coordinate-averaged; 256 in 64-D, coordinate-averaged); step counts chosen so the discretisation bias is below the Monte-Carlo error, never by widening',
});

const reproducible = identity({
  concept: 'conformance',
  title: 'Same keys, same samples',
  formula: String.raw`$\text{sample}(\text{sampler}, k_{1..B}) = \text{sample}(\text{sampler}, k_{1..B})$ bit for bit`,
  source: 'all randomness comes from the per-sample keys (counter-based Threefry)',
  tolerance: 'exact (bit for bit), VP, 2-D mixture, 64 samples, first 40 intervals of each grid',
});

const batchInvariant = identity({
  concept: 'conformance',
  title: 'A sample does not depend on its batch',
  formula: String.raw`$\text{sample}(k_1, \dots, k_{64})_{17} = \text{sample}(k_{17})$`,
  source: 'noise is drawn per sample from its own key and every op is row-wise (not claimed for batch-mean Langevin or the adaptive solvers, which share one step size)',
  tolerance: 'exact (bit for bit)',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const sdes: ReadonlyArray<readonly [string, SDE]> = [
  ['VP', vp()],
  ['sub-VP', subvp()],
  ['VE', ve()],
];

const SAMPLES: Record<MixtureName, number> = { '1-D': 2000, '2-D': 2000, '64-D': 256 };

describe.each(sdes)('%s', (label, sde) => {
  for (const c of samplerCases) {
    const built = c.build(sde);
    if (built === undefined) continue;
    // The grid's part of the sampler, stopped at ε (the denoised endpoint is checked in denoise.test.ts).
    const sampler = { ...built, final: none };
    for (const dim of c.dims ?? (['1-D', '2-D', '64-D'] as const)) {
      test(`${c.name} recovers the ${dim} mixture: weights, per-component means and variances within 5 SE (${c.why})`, async () => {
        const before = liveTensors();
        const { checks, nfe } = await recoversMixture(sampler, mixtures[dim], SAMPLES[dim], 42, { perCoordinate: dim !== '64-D' });
        expect(checks.length).toBeGreaterThan(0);
        expect(nfe).toBeGreaterThan(0);
        // Each check: |estimate − target| ≤ 5 standard errors of its Monte-Carlo estimate.
        recoversMarginal.allWithinSE(checks, 5, { sampler: c.name, SDE: label, distribution: dim });
        expect(liveTensors()).toBe(before);
      });
    }
  }
});

// Reproducibility and batch invariance are properties of the step code, not of the SDE or of the step count:
// checked under VP, on the 2-D mixture with 64 samples, over the first 40 intervals of each sampler's grid.
describe('reproducibility (VP, 2-D, first 40 intervals)', () => {
  const sde = vp();
  const keys = random.split(random.key(2024), 64);
  for (const c of samplerCases) {
    const full = c.build(sde)!;
    const sampler = { ...full, grid: full.grid.slice(0, 41) };
    test(`${c.name}: the same keys give bit-identical samples`, async () => {
      reproducible.equal(await sameKeysSameSamples(sampler, mixtures['2-D'], keys), true, c.name);
    });
    if (c.batchInvariant) {
      test(`${c.name}: sample 17 of a batch of 64 equals the sample drawn alone with its key`, async () => {
        // Noise is drawn per sample from its own key and every op is row-wise, so the values are bit-identical.
        batchInvariant.equal(await batchOfOneDifference(sampler, mixtures['2-D'], keys, 17), 0, c.name);
      });
    }
  }
});
