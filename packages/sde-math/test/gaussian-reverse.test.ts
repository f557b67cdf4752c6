/**
 * Group 4 — Gaussian data N(μ, diag(s²)) with its exact score: the reverse SDE started from the exact p_T returns
 * to the data law, and the probability-flow ODE integrated numerically matches the closed-form map
 * `gaussianFlowMap` (x(t1) = m(t1)μ + (σ_{t1}/σ_{t0})(x(t0) − m(t0)μ), σ_t² = m(t)² s² + s(t)²).
 */
import fc from 'fast-check';
import { tf, initBackend, random } from '@score-sde/tensor-fp';
import {
  type SDE,
  vp,
  subvp,
  ve,
  tutorial,
  reverse,
  probabilityFlowDrift,
  exactScore,
  gaussian,
  gaussianFlowMap,
  gaussianFlowMapTensor,
  gaussianMarginalStd,
  driftCoef,
  diffusionCoef,
  marginalMeanCoef,
} from '@score-sde/sde-math';
import { EPS32, EPS64, columnMoments, gaussianStandardErrors, sdeArb } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const reverseToData = identity({
  concept: 'reverse',
  title: 'The reverse SDE returns Gaussian data to its law',
  formula: String.raw`$x_T \sim p_T = \mathcal N(m(T)\mu, \sigma_T^2),\ dx = \bar f\,dt + g\,d\bar w \Rightarrow x_0 \sim \mathcal N(\mu, \operatorname{diag} s^2)$, $\sigma_t^2 = m(t)^2 s^2 + s(t)^2$`,
  source: 'Song et al. 2021, eq. 6 with the exact score −(x − m(t)μ)/σ_t² of Gaussian data; 1000 paths, 1000 reverse Euler–Maruyama steps, all four kinds',
  tolerance: 'Monte-Carlo: 5 SE + the Euler–Maruyama bias of the affine chain (mean ← a·mean + (g²/σ_t²) m μ Δ, v ← a² v + g² Δ), computed exactly and required ≤ 0.25 SE',
});

const flowMap = identity({
  concept: 'reverse',
  title: 'The probability-flow ODE of Gaussian data is the closed-form flow map',
  formula: String.raw`$x(t_1) = m(t_1)\mu + \frac{\sigma_{t_1}}{\sigma_{t_0}}\big(x(t_0) - m(t_0)\mu\big)$ solves $\frac{dx}{dt} = f(t)\,x - \tfrac12 g(t)^2 \nabla \log p_t(x)$`,
  source: 'Song et al. 2021, eq. 13 with the Gaussian score: the standardised coordinate (x − m μ)/σ_t is constant along the flow; integrated by RK4 from T to 0, all kinds, random μ, s, x_T',
  tolerance: 'RK4 truncation by step halving |X₁₀₀ − X₂₀₀| (≈ 15× the error of X₂₀₀) + float32 rounding 200 steps × 16 roundings × ε max|x| (the flow contracts); the tensor map within 8ε max|x|',
});

const flowProperty = identity({
  concept: 'reverse',
  title: 'The Gaussian flow map is a flow',
  formula: String.raw`$\Phi_{t_1 \to t_2} \circ \Phi_{t_0 \to t_1} = \Phi_{t_0 \to t_2},\ \Phi_{t \to t} = \mathrm{id}$, and $\Phi$ maps $\mathcal N(m(t_0)\mu, \sigma_{t_0}^2)$ to $\mathcal N(m(t_1)\mu, \sigma_{t_1}^2)$`,
  source: 'the map is affine with the invariant z = (x − m(t)μ)/σ_t',
  tolerance: 'float64 affine maps with coefficients < 400 and |x| < 400: 64ε·400² for the composition, 64ε·400 for z; Φ(t → t) to 12 digits',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const MU = [1.5, -0.5];
const S = [0.5, 1.2];

describe('Gaussian data: reverse SDE (group 4)', () => {
  test.each([
    ['vp', vp()],
    ['subvp', subvp()],
    ['ve', ve()],
    ['tutorial', tutorial()],
  ] as const)('%s: reverse Euler–Maruyama from the exact p_T returns to N(μ, s²) (mean and variance within 5 SE + exact EM bias)', (name, sde: SDE) => {
    const N = 1000; // samples of dimension 2: 2000 draws per step
    const STEPS = 1000;
    const dt = sde.T / STEPS;
    const D = MU.length;
    const data = gaussian(MU, S);
    const dyn = reverse(sde, exactScore(sde, data));
    const key = random.foldIn(random.key(4), name.charCodeAt(0) + name.length);
    const before = tf.memory().numTensors;
    // Exact p_T = N(m(T) μ, σ_T²): x_T = m(T) μ + σ_T z.
    const mT = marginalMeanCoef(sde, sde.T);
    let x = tf.tidy(() =>
      tf.add(
        tf.mul(random.normalPerSample(random.split(random.foldIn(key, 0xffffff), N), [D]), tf.tensor2d([S.map((s) => gaussianMarginalStd(sde, s, sde.T))])),
        tf.tensor2d([MU.map((mu) => mT * mu)]),
      ),
    );
    // x ← x − f̄(x, t) Δ + g(t) √Δ z for t = T, T − Δ, …, Δ.
    for (let i = 0; i < STEPS; i++) {
      const t = sde.T - i * dt;
      const next = tf.tidy(() => tf.add(tf.sub(x, tf.mul(dyn.drift(x, t), dt)), tf.mul(random.normal(random.foldIn(key, i), [N, D]), dyn.diffusion(t) * Math.sqrt(dt))));
      x.dispose();
      x = next;
    }
    const xs = x.dataSync();
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    MU.forEach((mu, j) => {
      // Exact moments of the chain: with score −(x − m μ)/σ_t², the reverse drift f̄ = f x + g²(x − m μ)/σ_t² is
      // affine in x, so with a = 1 − (f + g²/σ_t²)Δ the chain's mean and variance obey, from (m(T) μ, σ_T²),
      //   mean ← a·mean + (g²/σ_t²) m(t) μ Δ,   v ← a² v + g² Δ.
      let mean = mT * mu;
      let v = gaussianMarginalStd(sde, S[j]!, sde.T) ** 2;
      for (let i = 0; i < STEPS; i++) {
        const t = sde.T - i * dt;
        const f = driftCoef(sde, t);
        const g2 = diffusionCoef(sde, t) ** 2;
        const st2 = gaussianMarginalStd(sde, S[j]!, t) ** 2;
        const a = 1 - (f + g2 / st2) * dt;
        mean = a * mean + (g2 / st2) * marginalMeanCoef(sde, t) * mu * dt;
        v = a * a * v + g2 * dt;
      }
      const target = S[j]! ** 2;
      const se = gaussianStandardErrors(target, N);
      const bias = { mean: Math.abs(mean - mu), variance: Math.abs(v - target) };
      // 1000 steps keep the Euler–Maruyama bias (exact, above) below the MC error: it is O(Δ) and evaluates to
      // ≤ 0.08 SE for these four SDEs (largest for sub-VP's mean); we require ≤ 0.25 SE.
      expect(bias.mean).toBeLessThanOrEqual(0.25 * se.mean);
      expect(bias.variance).toBeLessThanOrEqual(0.25 * se.variance);
      const got = columnMoments(xs, D, j);
      // N i.i.d. Gaussian draws (the chain is affine-Gaussian): 5 SE + the exact bias.
      reverseToData.withinSE(got.mean, mu, se.mean, { z: 5, bias: bias.mean }, `mean[${j}]`);
      reverseToData.withinSE(got.variance, target, se.variance, { z: 5, bias: bias.variance }, `variance[${j}]`);
    });
  });
});

/** Classical RK4 in float32 tensors for dx/dt = F(x, t) from t0 to t1 in n steps. */
const rk4 = (F: (x: tf.Tensor, t: number) => tf.Tensor, x0: tf.Tensor, t0: number, t1: number, n: number): Float32Array => {
  const h = (t1 - t0) / n;
  let x = tf.clone(x0);
  for (let i = 0; i < n; i++) {
    const t = t0 + i * h;
    const next = tf.tidy(() => {
      const k1 = F(x, t);
      const k2 = F(tf.add(x, tf.mul(k1, h / 2)), t + h / 2);
      const k3 = F(tf.add(x, tf.mul(k2, h / 2)), t + h / 2);
      const k4 = F(tf.add(x, tf.mul(k3, h)), t + h);
      return tf.add(x, tf.mul(tf.addN([k1, tf.mul(k2, 2), tf.mul(k3, 2), k4]), h / 6));
    });
    x.dispose();
    x = next;
  }
  const out = x.dataSync() as Float32Array;
  x.dispose();
  return out;
};

describe('Gaussian data: probability-flow ODE (group 4)', () => {
  test('RK4 on probabilityFlowDrift with the exact score = gaussianFlowMap, from T to 0 (all kinds, random μ, s, x_T)', () => {
    fc.assert(
      fc.property(
        sdeArb,
        fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: 2, maxLength: 2 }),
        fc.array(fc.double({ min: 0.3, max: 2, noNaN: true }), { minLength: 2, maxLength: 2 }),
        fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: 4, maxLength: 4 }),
        (sde, mu, s, u) => {
          // Two samples x_T = m(T) μ + σ_T u (u ∈ [−2, 2]) of dimension 2.
          const x32 = Float32Array.from(u, (v, i) => marginalMeanCoef(sde, sde.T) * mu[i % 2]! + gaussianMarginalStd(sde, s[i % 2]!, sde.T) * v);
          const F = probabilityFlowDrift(sde, exactScore(sde, gaussian(mu, s)));
          const before = tf.memory().numTensors;
          const x0 = tf.tensor2d(x32, [2, 2]);
          const fine = rk4(F, x0, sde.T, 0, 200);
          const coarse = rk4(F, x0, sde.T, 0, 100);
          const mapped = tf.tidy(() => gaussianFlowMapTensor(sde, mu, s)(x0, sde.T, 0).dataSync());
          x0.dispose();
          expect(tf.memory().numTensors).toBe(before);
          const want = gaussianFlowMap(sde, mu, s)(x32, sde.T, 0);
          want.forEach((w, i) => {
            // RK4 truncation: global error C h⁴, so |X_100 − X_200| ≈ 15·err(X_200) bounds it (step-halving estimate).
            // float32 rounding: each of the 200 steps adds ≤ ~16 roundings of size ε|x| (the flow contracts towards
            // t = 0, so errors are not amplified): ≤ 200·16·ε·max|x|.
            const scale = Math.max(Math.abs(x32[i]!), Math.abs(w), 1);
            const tol = Math.abs(coarse[i]! - fine[i]!) + 200 * 16 * EPS32 * scale;
            flowMap.atMost(Math.abs(fine[i]! - w), tol);
            // The tensor form of the map = the float64 form within a few float32 roundings.
            flowMap.atMost(Math.abs(mapped[i]! - w), 8 * EPS32 * scale);
          });
        },
      ),
      // endOnFailure: shrinking re-runs two 100–200-step RK4 integrations per candidate (≈ 1 min when failing).
      runs(8, { endOnFailure: true }),
    );
  });

  test('gaussianFlowMap is a flow: Φ(t1 → t2) ∘ Φ(t0 → t1) = Φ(t0 → t2), Φ(t → t) = id, and it maps N(m(t0)μ, σ_t0²) to N(m(t1)μ, σ_t1²)', () => {
    fc.assert(
      fc.property(
        sdeArb,
        fc.double({ min: -2, max: 2, noNaN: true }),
        fc.double({ min: 0.3, max: 2, noNaN: true }),
        fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
        fc.double({ min: -3, max: 3, noNaN: true }),
        (sde, mu, s, [t0, t1, t2], z) => {
          const phi = gaussianFlowMap(sde, [mu], [s]);
          const x0 = marginalMeanCoef(sde, t0) * mu + gaussianMarginalStd(sde, s, t0) * z;
          const direct = phi([x0], t0, t2)[0]!;
          const composed = phi(phi([x0], t0, t1), t1, t2)[0]!;
          // Affine maps with coefficients of size ≤ σ_max/0.3 < 400 and |x| ≤ 400: float64 rounding ≤ 64ε·400².
          flowProperty.atMost(Math.abs(direct - composed), 64 * EPS64 * 400 * 400);
          flowProperty.lessThan(Math.abs(phi([x0], t0, t0)[0]! - x0), 0.5e-12); // toBeCloseTo(x0, 12)
          // The standardised coordinate z = (x − m μ)/σ_t is invariant: so the map pushes N(m(t0)μ, σ_t0²) to N(m(t1)μ, σ_t1²).
          const z1 = (direct - marginalMeanCoef(sde, t2) * mu) / gaussianMarginalStd(sde, s, t2);
          flowProperty.atMost(Math.abs(z1 - z), 64 * EPS64 * 400);
        },
      ),
      runs(100),
    );
  });
});
