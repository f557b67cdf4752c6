/**
 * Group 3 — reverse-time SDE and probability-flow identities (Song et al. 2021, eqs. 6 and 13), with the exact
 * score of a Gaussian mixture, and the stationarity of N(0, I) under the VP SDE.
 */
import fc from 'fast-check';
import { tf, initBackend, random } from '@score-sde/tensor-fp';
import {
  type SDE,
  type GaussianMixture,
  vp,
  drift,
  reverseDrift,
  probabilityFlowDrift,
  reverse,
  diffusionCoef,
  betaOf,
  exactScore,
  marginalMixture,
  gaussian,
} from '@score-sde/sde-math';
import { EPS32, DENORM32, columnMoments, gaussianStandardErrors, mixtureArb, sdeArb, timeArb, vpArb } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const driftDifference = identity({
  concept: 'reverse',
  title: 'Forward drift minus reverse drift',
  formula: String.raw`$f(x, t) - \bar f(x, t) = g(t)^2\, \nabla_x \log p_t(x)$, where $dx = \bar f(x, t)\,dt + g(t)\,d\bar w$ runs backwards in time`,
  source: 'Song et al. 2021, eq. 6 (Anderson 1982): the reverse-time SDE has drift f − g² ∇ log p_t; checked with the exact score of random Gaussian mixtures, all four SDE kinds',
  tolerance: 'float32: f·x, g²·s and their difference each round once, plus g² rounded: 4ε(|f x| + g²|s|), + 4(1 + g²)·2⁻¹⁴⁹ for results in the subnormal range',
});

const flowDrift = identity({
  concept: 'reverse',
  title: 'Probability-flow drift is the mean of the forward and reverse drifts',
  formula: String.raw`$\tilde f(x, t) = f(x, t) - \tfrac12 g(t)^2 \nabla_x \log p_t(x) = \tfrac12\big(f(x, t) + \bar f(x, t)\big)$`,
  source: 'Song et al. 2021, eq. 13 (the probability-flow ODE dx = f̃ dt has the marginals p_t of the SDE)',
  tolerance: 'both sides are f x − c g² s computed in float32, each within 4ε(|f x| + g²|s|): 8ε(|f x| + g²|s|) + 8(1 + g²)·2⁻¹⁴⁹',
});

const vpStationary = identity({
  concept: 'reverse',
  title: 'N(0, I) is stationary under the VP SDE',
  formula: String.raw`$p_0 = \mathcal N(0, I) \Rightarrow p_t = \mathcal N(0, I)$ and $\nabla_x \log p_t(x) = -x$ for all $t$`,
  source: 'm(t)² + s(t)² = e^{−∫β} + (1 − e^{−∫β}) = 1 for the VP SDE (Song et al. 2021, eq. 11 and App. B)',
  tolerance: 'marginal std within 8 ε₆₄ of 1 (float64 expm1/exp); the float32 score −x/1 within one rounding of 1/s²: 2 ε₃₂ |x|',
});

const vpStationaryReverse = identity({
  concept: 'reverse',
  title: 'The reverse VP SDE keeps N(0, 1)',
  formula: String.raw`$x_T \sim \mathcal N(0, 1),\ \nabla \log p_t(x) = -x \Rightarrow x_t \sim \mathcal N(0, 1)$ along reverse Euler–Maruyama ($\bar f = \tfrac12 \beta(t)\,x$)`,
  source: 'stationarity above, simulated: 2000 paths of 1000 reverse Euler–Maruyama steps',
  tolerance: 'mean within 5 SE (SE = 1/√n); variance within 5 SE (SE = √(2/(n−1))) + the exactly computed Euler–Maruyama bias of the chain v ← (1 − ½βΔ)² v + βΔ (itself required ≤ 0.5 SE)',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

/** x ~ U(−R, R)^{B×D} as float32, R = 3 marginal scales around the origin (from fast-check values). */
const batchArb = (B: number) => fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 3 * B, maxLength: 3 * B });

const evalAll = (sde: SDE, m: GaussianMixture, t: number, xs: ReadonlyArray<number>, B: number) => {
  const D = m.means[0]!.length;
  const mt = marginalMixture(sde, m, t);
  const scale = 3 * Math.max(...mt.stds.flat(), ...mt.means.flat().map(Math.abs));
  const x32 = Float32Array.from({ length: B * D }, (_, i) => scale * xs[i]!);
  return tf.tidy(() => {
    const x = tf.tensor2d(x32, [B, D]);
    const score = exactScore(sde, m);
    return {
      x: x32,
      f: drift(sde)(x, t).dataSync(),
      rev: reverseDrift(sde, score)(x, t).dataSync(),
      pf: probabilityFlowDrift(sde, score)(x, t).dataSync(),
      s: score(x, t).dataSync(),
    };
  });
};

describe('reverse-time identities (group 3)', () => {
  test('forward drift − reverse drift = g(t)² ∇log p_t (exact mixture score, all kinds)', () => {
    fc.assert(
      fc.property(sdeArb, mixtureArb(), timeArb, batchArb(4), (sde, m, t, xs) => {
        const { f, rev, s } = evalAll(sde, m, t, xs, 4);
        const g2 = diffusionCoef(sde, t) ** 2;
        f.forEach((fi, i) => {
          // float32: f x, g² s and their difference each round once (relative ε), plus g² rounded to float32:
          // |error| ≤ 4ε (|f x| + g²|s|); results in float32's subnormal range round with absolute error ≤ 2⁻¹⁴⁹ instead,
          // which g² may amplify: + 4(1 + g²)·2⁻¹⁴⁹.
          driftDifference.atMost(Math.abs(fi - rev[i]! - g2 * s[i]!), 4 * EPS32 * (Math.abs(fi) + g2 * Math.abs(s[i]!)) + 4 * (1 + g2) * DENORM32);
        });
      }),
      runs(40),
    );
  });

  test('probability-flow drift = ½ (forward drift + reverse drift)', () => {
    fc.assert(
      fc.property(sdeArb, mixtureArb(), timeArb, batchArb(4), (sde, m, t, xs) => {
        const { f, rev, pf, s } = evalAll(sde, m, t, xs, 4);
        const g2 = diffusionCoef(sde, t) ** 2;
        f.forEach((fi, i) => {
          // Both sides are f x − c·g² s (c = ½, resp. the mean of c = 0 and 1), each with ≤ 4ε (|f x| + g²|s|) error
          // (+ 4(1 + g²)·2⁻¹⁴⁹ in the subnormal range, as above).
          flowDrift.atMost(Math.abs(pf[i]! - 0.5 * (fi + rev[i]!)), 8 * EPS32 * (Math.abs(fi) + g2 * Math.abs(s[i]!)) + 8 * (1 + g2) * DENORM32);
        });
      }),
      runs(40),
    );
  });

  test('VP stationarity: for data N(0, I) the marginals stay N(0, I), so the exact score is −x at every t', () => {
    fc.assert(
      fc.property(vpArb, timeArb, batchArb(4), (sde, t, xs) => {
        const m = gaussian([0, 0, 0], [1, 1, 1]);
        // m(t)²·1 + (1 − m(t)²) = 1 up to float64 rounding of expm1/exp.
        marginalMixture(sde, m, t).stds.flat().forEach((s) => vpStationary.atMost(Math.abs(s - 1), 8 * Number.EPSILON));
        const x32 = Float32Array.from(xs, (v) => 3 * v);
        const got = tf.tidy(() => exactScore(sde, m)(tf.tensor2d(x32, [4, 3]), t).dataSync());
        // The score is (0 − x)/1 computed in float32: exact up to one rounding of 1/s² ≈ 1.
        got.forEach((v, i) => vpStationary.atMost(Math.abs(v + x32[i]!), 2 * EPS32 * Math.abs(x32[i]!)));
      }),
      runs(30),
    );
  });

  test('VP stationarity: the reverse SDE simulated from N(0, I) with the exact score stays N(0, I) (Euler–Maruyama)', () => {
    const sde = vp();
    const score = exactScore(sde, gaussian([0], [1]));
    const dyn = reverse(sde, score);
    const N = 2000;
    const STEPS = 1000;
    const dt = sde.T / STEPS;
    const key = random.key(3);
    const before = tf.memory().numTensors;
    let x = random.normalPerSample(random.split(random.foldIn(key, 0xffff), N), [1]);
    // Reverse-time Euler–Maruyama, t from T down to Δ: x ← x − f̄(x, t) Δ + g(t) √Δ z.
    for (let i = 0; i < STEPS; i++) {
      const t = sde.T - i * dt;
      const next = tf.tidy(() => tf.add(tf.sub(x, tf.mul(dyn.drift(x, t), dt)), tf.mul(random.normal(random.foldIn(key, i), [N, 1]), dyn.diffusion(t) * Math.sqrt(dt))));
      x.dispose();
      x = next;
    }
    const { mean, variance } = columnMoments(x.dataSync(), 1, 0);
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
    // Exact moments of this chain: with score −x the reverse drift is f̄ = −½β x + β x = ½β x, so
    //   v ← (1 − ½β_t Δ)² v + β_t Δ,  v_T = 1  (mean stays 0);
    // its fixed point 1/(1 − β Δ/4) is the Euler–Maruyama bias (≤ 0.5% for β ≤ 20, Δ = 10⁻³), computed exactly.
    let v = 1;
    for (let i = 0; i < STEPS; i++) {
      const t = sde.T - i * dt;
      v = (1 - 0.5 * betaOf(sde, t) * dt) ** 2 * v + diffusionCoef(sde, t) ** 2 * dt;
    }
    const bias = Math.abs(v - 1);
    const se = gaussianStandardErrors(1, N);
    expect(bias).toBeLessThanOrEqual(0.5 * se.variance); // the discretisation bias is below the MC error
    // N i.i.d. N(0, 1) draws: |mean| ≤ 5 SE, |variance − 1| ≤ 5 SE + bias.
    vpStationaryReverse.withinSE(mean, 0, se.mean, { z: 5 }, 'mean');
    vpStationaryReverse.withinSE(variance, 1, se.variance, { z: 5, bias }, 'variance');
  });
});
