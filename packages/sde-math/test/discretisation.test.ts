/**
 * Group 6 — the N-step discretisations of `discretize` (DDPM for VP, SMLD for VE, Euler–Maruyama for sub-VP)
 * and the continuous marginals they approximate.
 *
 * A step x_{i+1} = x_i + f_i(x_i) + G_i z_i with f_i(x) = a_i x pushes the mean and variance of a point mass through
 *   μ_{i+1} = (1 + a_i) μ_i,   v_{i+1} = (1 + a_i)² v_i + G_i²,
 * exactly. Step i is taken at t_i = i T/(N − 1), i = 0…N−1 — the grid of the reference samplers
 * (`linspace(T, ε, N)`), on which `discreteIndex` gives index i — so after N steps the chain stands for t = T.
 */
import fc from 'fast-check';
import { tf, initBackend } from '@score-sde/tensor-fp';
import { type SDE, vp, subvp, ve, discretize, marginalMeanCoef, marginalVariance, smldSigmas } from '@score-sde/sde-math';
import { EPS32, EPS64, vpArb, timeArb } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const firstOrder = identity({
  concept: 'discretisation',
  title: 'DDPM and Euler–Maruyama chains converge at first order',
  formula: String.raw`$\big|\mu_N - m(T)\big|,\ \big|v_N - s(T)^2\big| = c/N + O(N^{-2}),\ c \ne 0$, so $\text{err}(2N) \le 0.6\,\text{err}(N)$ for $N \ge 100$`,
  source: 'DDPM (Ho et al. 2020): log ᾱ_N = −Σβ_i − ½Σβ_i² − … with Σβ_i = ∫β exactly, so the error is −∫β²/(2N) + O(N⁻²); Euler–Maruyama: left-point rule for the moment ODEs, first order',
  tolerance: 'error ratio 0.6 = ½ + O(1/N) headroom at N ≥ 100 (N = 100…1600, the moments pushed exactly through the chain), and error ≤ 10⁻² at N = 1600 (|c| ≲ 5)',
});

const smld = identity({
  concept: 'discretisation',
  title: 'SMLD chain variance telescopes to σ_i²',
  formula: String.raw`$v_{i+1} = \sum_{j \le i} (\sigma_j^2 - \sigma_{j-1}^2) = \sigma_i^2 = s(t_i)^2 + \sigma_{\min}^2,\quad \mu_{i+1} = 1$`,
  source: 'SMLD (Song & Ermon 2019) as the VE discretisation of Song et al. 2021, eq. 8 with σ_{−1} = 0: the chain adds σ_min² at step 0, a constant offset, not an O(1/N) error',
  tolerance: 'telescoping float64 sum of N terms ≤ σ_max²: 4Nε σ_max²; two float64 formulas for σ_min²(σ_max/σ_min)^{2t}: 64(1 + 2 ln(σ_max/σ_min))ε σ_i²; mean exact',
});

const ddpm = identity({
  concept: 'discretisation',
  title: 'DDPM chain preserves variance',
  formula: String.raw`$\mu_i^2 + v_i = \bar\alpha_i + (1 - \bar\alpha_i) = 1,\quad \bar\alpha_i = \prod_{j \le i}(1 - \beta_j)$`,
  source: 'Ho et al. 2020, eq. 4: x_i = √(1 − β_i) x_{i−1} + √β_i z keeps 1 − v = ᾱ = μ²',
  tolerance: 'N float32 roundings of a_i = √(1 − β_i) − 1, each ≤ 2ε β_i: 4ε(β_max + β_min)',
});

const subVpBelowVp = identity({
  concept: 'sde',
  title: 'Sub-VP variance is below VP variance',
  formula: String.raw`$s_{\text{sub-VP}}(t)^2 = \big(1 - e^{-\int_0^t \beta}\big)^2 \le 1 - e^{-\int_0^t \beta} = s_{\text{VP}}(t)^2$, same $m(t)$`,
  source: 'Song et al. 2021, eq. 12 and App. B: 0 ≤ 1 − e^{−∫β} ≤ 1',
  tolerance: 'exact in real arithmetic; one float64 rounding (factor 1 + 2ε); the mean coefficients equal bit for bit',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

/** Mean coefficient and variance of the N-step chain after each step, reading (a_i, G_i) from `discretize` on x = 1. */
const discreteMoments = (sde: SDE, N: number): { mean: Float64Array; variance: Float64Array } => {
  const step = discretize(sde, N);
  const one = tf.ones([1, 1]);
  const mean = new Float64Array(N + 1);
  const variance = new Float64Array(N + 1);
  mean[0] = 1;
  for (let i = 0; i < N; i++) {
    const { f, G } = step(one, N === 1 ? 0 : (i * sde.T) / (N - 1));
    const a = f.dataSync()[0]!;
    f.dispose();
    mean[i + 1] = (1 + a) * mean[i]!;
    variance[i + 1] = (1 + a) ** 2 * variance[i]! + G * G;
  }
  one.dispose();
  return { mean, variance };
};

const NS = [100, 200, 400, 800, 1600];

describe('discretisation (group 6)', () => {
  test.each([
    ['vp (DDPM)', vp()],
    ['subvp (Euler–Maruyama)', subvp()],
    ['vp (DDPM), β ∈ [1, 5]', vp({ betaMin: 1, betaMax: 5 })],
  ] as const)('%s: N-step marginal at t = T → continuous marginal, error(2N) ≤ 0.6 error(N) for N ≥ 100', (_name, sde: SDE) => {
    // DDPM: log ᾱ_N = Σ log(1 − β_i) = −Σ β_i − ½ Σ β_i² − …, and Σ β_i = β_min + ½(β_max − β_min) = ∫₀¹ β exactly for
    // the linspace(β_min/N, β_max/N, N) betas, so log ᾱ_N − (−∫β) = −½ Σ β_i² + O(N⁻²) ≈ −∫β²/(2N): first order in
    // 1/N with a non-zero constant. Euler–Maruyama on a linear SDE: the mean and variance recursions are one-step
    // methods of order 1 for the moment ODEs (left-point rule on a grid of spacing T/(N − 1) with weights T/N, both
    // O(1/N) off). Either way error(N) = c/N + O(N⁻²) with c ≠ 0, so error(2N)/error(N) = ½ + O(1/N) ≤ 0.6 for N ≥ 100.
    const m = marginalMeanCoef(sde, sde.T);
    const v = marginalVariance(sde, sde.T);
    const errs = NS.map((N) => {
      const d = discreteMoments(sde, N);
      return { mean: Math.abs(d.mean[N]! - m), variance: Math.abs(d.variance[N]! - v) };
    });
    for (let k = 1; k < errs.length; k++) {
      firstOrder.atMost(errs[k]!.mean, 0.6 * errs[k - 1]!.mean, `mean, N = ${NS[k]}`);
      firstOrder.atMost(errs[k]!.variance, 0.6 * errs[k - 1]!.variance, `variance, N = ${NS[k]}`);
    }
    // And they are small at N = 1600: c/N with |c| ≈ 5 at most here (sub-VP's variance), i.e. ≈ 3·10⁻³ < 10⁻².
    firstOrder.atMost(errs[errs.length - 1]!.mean, 1e-2, 'mean, N = 1600');
    firstOrder.atMost(errs[errs.length - 1]!.variance, 1e-2, 'variance, N = 1600');
  });

  test('ve (SMLD): after step i the variance is σ_i² = s(t_i)² + σ_min² for every N — exact up to the σ_min² the chain adds at step 0', () => {
    // SMLD: G_i² = σ_i² − σ_{i−1}² with σ_{−1} = 0 telescopes to v_{i+1} = σ_i² = σ(t_i)², while the continuous kernel
    // variance is σ(t)² − σ_min² (x(0) is noise-free). So the discrete marginal does not converge to s(T)² but to
    // s(T)² + σ_min² (= σ_max², the reference's prior variance): a constant offset σ_min², not an O(1/N) error.
    for (const sde of [ve(), ve({ sigmaMin: 0.05, sigmaMax: 20 })]) {
      if (sde.kind !== 've') throw new Error('unreachable');
      for (const N of [10, 100, 1000]) {
        const d = discreteMoments(sde, N);
        const sig = smldSigmas(sde, N);
        for (let i = 0; i < N; i++) {
          const t = (i * sde.T) / (N - 1);
          // f_i = 0 exactly, so the mean coefficient stays 1.
          smld.equal(d.mean[i + 1], 1);
          // Telescoping sum of N float64 terms ≤ σ_max²: rounding ≤ 4 N ε σ_max².
          smld.atMost(Math.abs(d.variance[i + 1]! - sig[i]! ** 2), 4 * N * EPS64 * sde.sigmaMax ** 2);
          // σ_i² and s(t_i)² + σ_min² are two float64 formulas for σ_min² (σ_max/σ_min)^{2t}: relative rounding ≤ 64ε·(1 + 2 ln(σ_max/σ_min)).
          smld.atMost(
            Math.abs(d.variance[i + 1]! - (marginalVariance(sde, t) + sde.sigmaMin ** 2)),
            64 * (1 + 2 * Math.log(sde.sigmaMax / sde.sigmaMin)) * EPS64 * sig[i]! ** 2 + 4 * N * EPS64 * sde.sigmaMax ** 2,
          );
        }
      }
    }
  });

  test('vp (DDPM): the N-step chain is the DDPM forward process, mean² + variance = 1 at every step (variance preserved)', () => {
    // (1 − β)·v + β keeps 1 − v = ∏(1 − β_i) = ᾱ = mean²; a_i = √(1 − β_i) − 1 is read back from float32 tensors, so
    // mean² + variance = 1 up to N float32 roundings of a_i, each contributing ≤ 2ε|a_i| ≤ 2ε β_i.
    const sde = vp();
    const N = 1000;
    const d = discreteMoments(sde, N);
    for (let i = 0; i <= N; i++) ddpm.atMost(Math.abs(d.mean[i]! ** 2 + d.variance[i]! - 1), 4 * EPS32 * (sde.betaMax + sde.betaMin));
  });

  test('sub-VP variance ≤ VP variance for all t and β: (1 − e^{−∫β})² ≤ 1 − e^{−∫β}', () => {
    fc.assert(
      fc.property(vpArb, fc.oneof(timeArb, fc.double({ min: 0, max: 1, noNaN: true })), (p, t) => {
        if (p.kind !== 'vp') throw new Error('unreachable');
        const sub = subvp({ betaMin: p.betaMin, betaMax: p.betaMax });
        // Holds exactly in real arithmetic since 0 ≤ 1 − e^{−∫β} ≤ 1; allow one float64 rounding.
        subVpBelowVp.atMost(marginalVariance(sub, t), marginalVariance(p, t) * (1 + 2 * EPS64));
        // And they share the mean coefficient.
        subVpBelowVp.equal(marginalMeanCoef(sub, t), marginalMeanCoef(p, t));
      }),
      runs(200),
    );
  });
});
