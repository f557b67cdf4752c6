/**
 * Group 2 — the closed-form marginals of p_0t(x_t | x_0) agree with a simulation of the forward SDE:
 * Euler–Maruyama on `forward(sde)` (tensors, tensor-fp keys) from a point mass x_0, N samples.
 */
import { tf, initBackend, random, type Key } from '@score-sde/tensor-fp';
import { type SDE, vp, subvp, ve, tutorial, forward, driftCoef, diffusionCoef, marginalMeanCoef, marginalVariance } from '@score-sde/sde-math';
import { columnMoments, gaussianStandardErrors } from './helpers';
import { identity } from '@score-sde/tensor-fp/testing';

const forwardMarginals = identity({
  concept: 'sde',
  title: 'Closed-form marginals match a simulation of the forward SDE',
  formula: String.raw`$x_0 = 1.5,\ dx = f(t)\,x\,dt + g(t)\,dw \Rightarrow x_t \sim \mathcal N\big(m(t)\,x_0,\ s(t)^2\big)$ at $t = 0.5, 1$`,
  source: 'the transition kernel p_0t of a linear SDE (Särkkä & Solin 2019, §6.1; Song et al. 2021, App. B), simulated by Euler–Maruyama with 1000 steps, 2000 paths, all four kinds',
  tolerance: 'Monte-Carlo: 5 SE (SE(mean) = s/√n, SE(var) = s²√(2/(n−1))) + the Euler–Maruyama bias, computed exactly from μ ← (1 + fΔ)μ, v ← (1 + fΔ)²v + g²Δ and required ≤ 0.5 SE',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const N = 2000; // samples (normals are drawn in JS: ~0.6 µs each under Jest, so 2·10⁶ per run)
const STEPS = 1000; // Euler–Maruyama steps over [0, T]
const X0 = 1.5;
const RECORD = [500, 1000]; // steps at which to compare: t = 0.5 and t = 1

/** x_{i+1} = x_i + f(x_i, t_i) Δ + g(t_i) √Δ z_i, t_i = iΔ, z_i ~ N(0, I) from foldIn(key, i); returns the recorded states. */
const simulate = (sde: SDE, key: Key): Map<number, Float64Array> => {
  const dyn = forward(sde);
  const dt = sde.T / STEPS;
  let x = tf.fill([N, 1], X0);
  const out = new Map<number, Float64Array>();
  for (let i = 0; i < STEPS; i++) {
    const t = i * dt;
    const next = tf.tidy(() =>
      tf.add(tf.add(x, tf.mul(dyn.drift(x, t), dt)), tf.mul(random.normal(random.foldIn(key, i), [N, 1]), dyn.diffusion(t) * Math.sqrt(dt))),
    );
    x.dispose();
    x = next;
    if (RECORD.includes(i + 1)) out.set(i + 1, Float64Array.from(x.dataSync()));
  }
  x.dispose();
  return out;
};

/**
 * The Euler–Maruyama chain of a linear SDE from a point mass is Gaussian with moments given exactly by
 *   μ_{i+1} = (1 + f_i Δ) μ_i,   v_{i+1} = (1 + f_i Δ)² v_i + g_i² Δ,
 * so its discretisation bias (against m(t) x_0 and s(t)²) is computed here exactly rather than bounded.
 */
const emMoments = (sde: SDE, steps: number): { mean: number; variance: number } => {
  const dt = sde.T / STEPS;
  let mu = X0;
  let v = 0;
  for (let i = 0; i < steps; i++) {
    const a = 1 + driftCoef(sde, i * dt) * dt;
    mu = a * mu;
    v = a * a * v + diffusionCoef(sde, i * dt) ** 2 * dt;
  }
  return { mean: mu, variance: v };
};

describe('forward SDE by simulation (group 2)', () => {
  test.each([
    ['vp', vp()],
    ['subvp', subvp()],
    ['ve', ve()],
    ['tutorial', tutorial()],
  ] as const)('%s: Euler–Maruyama sample mean = m(t) x_0 and sample variance = s(t)² within 5 standard errors, t = 0.5, 1', (name, sde) => {
    const before = tf.memory().numTensors;
    const states = simulate(sde, random.foldIn(random.key(2021), name.length * 7 + name.charCodeAt(0)));
    expect(tf.memory().numTensors).toBe(before);
    for (const step of RECORD) {
      const t = (step * sde.T) / STEPS;
      const m = marginalMeanCoef(sde, t) * X0;
      const v = marginalVariance(sde, t);
      const se = gaussianStandardErrors(v, N);
      const em = emMoments(sde, step);
      const bias = { mean: Math.abs(em.mean - m), variance: Math.abs(em.variance - v) };
      // 1000 steps make the Euler–Maruyama bias (exact, above) at most half a standard error: at t = 1 the worst
      // relative variance biases are ≈ β_max Δ/4 = 0.5% (VP/sub-VP) and ≈ ln(σ_max/σ_min)Δ = 0.85% (VE, left Riemann
      // sum of an exponential), against SE/v = √(2/(N−1)) = 3.2%.
      expect(bias.mean).toBeLessThanOrEqual(0.5 * se.mean);
      expect(bias.variance).toBeLessThanOrEqual(0.5 * se.variance);
      const { mean, variance } = columnMoments(states.get(step)!, 1, 0);
      // The sample is N i.i.d. Gaussian draws: |mean − m| ≤ 5 SE + bias, |variance − v| ≤ 5 SE + bias.
      forwardMarginals.withinSE(mean, m, se.mean, { z: 5, bias: bias.mean }, `mean, t = ${t}`);
      forwardMarginals.withinSE(variance, v, se.variance, { z: 5, bias: bias.variance }, `variance, t = ${t}`);
    }
  });
});
