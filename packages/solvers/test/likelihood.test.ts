/**
 * Likelihoods through the probability-flow ODE: divergence estimators against closed forms, the exact-divergence
 * log-likelihood against the mixture's exact log p_ε, Hutchinson's unbiasedness, bits/dim and dequantisation.
 */
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import { tf, initBackend, random, liveTensors } from '@score-sde/tensor-fp';
import { type SDE, vp, subvp, ve, exactScore, exactLogProb, gaussian, probabilityFlowDrift, driftCoef, diffusionCoef, marginalMeanCoef, marginalVariance } from '@score-sde/sde-math';
import { exactDivergence, hutchinsonDivergence, logLikelihood, bitsPerDim, uniformDequantize } from '@score-sde/solvers';
import { mixtures, mixtures as M } from './conformance';
import { isotropicMixture } from './helpers';
import { runs } from '../../../tools/test-support/fast-check';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const real = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });

describe('divergence estimators', () => {
  test('exact divergence of a linear field F(x) = Ax is tr A; Hutchinson with probe v gives vᵀAv', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }).chain((D) => fc.tuple(fc.constant(D), fc.array(real(-2, 2), { minLength: D * D, maxLength: D * D }), fc.array(real(-2, 2), { minLength: D, maxLength: D }))), ([D, a, v]) => {
        const before = liveTensors();
        const A = tf.tensor2d(a, [D, D]);
        const F = (x: tf.Tensor): tf.Tensor => tf.matMul(x, A, false, true); // row b: A x_b
        const x = tf.tensor2d(Array.from({ length: 3 * D }, (_, i) => Math.cos(i)), [3, D]);
        const probe = tf.tidy(() => tf.tile(tf.tensor2d([v]), [3, 1]));
        const tr = a.reduce((s, aij, i) => s + (i % (D + 1) === 0 ? aij : 0), 0);
        const vAv = v.reduce((s, vi, i) => s + vi * v.reduce((r, vj, j) => r + a[i * D + j]! * vj, 0), 0);
        const exT = exactDivergence(F)(x, 0);
        const huT = hutchinsonDivergence(F, probe)(x, 0);
        const ex = exT.dataSync();
        const hu = huT.dataSync();
        // float32 sums of ≤ 25 products of magnitude ≤ 4·(|v|²): relative rounding ~1e-6 of Σ|terms| ≤ 100.
        ex.forEach((d) => expect(Math.abs(d - tr)).toBeLessThanOrEqual(1e-4));
        hu.forEach((d) => expect(Math.abs(d - vAv)).toBeLessThanOrEqual(1e-4));
        tf.dispose([A, x, probe, exT, huT]);
        expect(liveTensors()).toBe(before);
      }),
      runs(20),
    );
  });

  test.each([
    ['VP', vp()],
    ['sub-VP', subvp()],
    ['VE', ve()],
  ] as const)('%s: exact divergence of the Gaussian PF drift is Σ_j (f(t) + ½ g(t)² / σ_tj²)', (_l, sde) => {
    const mean = [1, -0.5, 2];
    const std = [0.3, 0.7, 1.2];
    const F = probabilityFlowDrift(sde, exactScore(sde, gaussian(mean, std)));
    const x = tf.tensor2d([
      [0.1, 0.2, 0.3],
      [2, -1, 0],
    ]);
    for (const t of [0.05, 0.3, 0.9]) {
      const m = marginalMeanCoef(sde, t);
      const expected = std.reduce((s, sd) => s + driftCoef(sde, t) + (0.5 * diffusionCoef(sde, t) ** 2) / (m * m * sd * sd + marginalVariance(sde, t)), 0);
      const div = exactDivergence(F)(x, t);
      const got = div.dataSync();
      div.dispose();
      // Relative float32 rounding of each term (~1e-6) times the largest term ½g²/σ² (≤ ~10³ under VE at t = 0.05).
      got.forEach((d) => expect(Math.abs(d - expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected))));
    }
    x.dispose();
  });
});

describe('log-likelihood by the probability-flow ODE with the exact divergence', () => {
  const cases: ReadonlyArray<readonly [string, string, SDE]> = [
    ['VP', '1-D', vp()],
    ['VP', '2-D', vp()],
    ['VP', '8-D', vp()],
    ['sub-VP', '2-D', subvp()],
    ['sub-VP', '8-D', subvp()],
    ['VE', '1-D', ve()],
    ['VE', '2-D', ve()],
    ['VE', '8-D', ve()],
  ];
  const byName = { '1-D': M['1-D'], '2-D': M['2-D'], '8-D': isotropicMixture([0.4, 0.6], [-1, 1], [0.5, 0.8], 8) } as const;
  test.each(cases)('%s, %s mixture: log p_ε(x) within 1e-3 nats/dim of the exact log-density', (_l, dim, sde) => {
    const m = byName[dim as keyof typeof byName];
    const D = m.means[0]!.length;
    const eps = 1e-5;
    const score = exactScore(sde, m);
    // Points from each component, spread by its std.
    const pts = Array.from({ length: 6 }, (_, b) => m.means[b % m.weights.length]!.map((mu, j) => mu + m.stds[b % m.weights.length]![j]! * Math.sin(3 * b + j)));
    const x = tf.tensor2d(pts.flat(), [6, D]);
    const before = liveTensors();
    // The identity checked is log p_ε(x(ε)) = log p_T(x(T)) + ∫_ε^T ∇·F dt, so the exact p_T is used as the prior
    // (the default N(0, σ_p²) prior differs from p_T by a mixture-dependent amount, up to ~0.04 nats/dim under VE).
    const r = logLikelihood(sde, score, x, { estimator: 'exact', eps, priorLogProb: (z) => exactLogProb(sde, m)(z, sde.T) });
    expect(liveTensors()).toBe(before);
    expect(E.isRight(r)).toBe(true);
    if (E.isLeft(r)) return;
    const exact = exactLogProb(sde, m)(x, eps).dataSync();
    // 1e-3 nats per dimension: the ODE solve (rtol = atol = 1e-5 on x and on Δ) and float32 sums are ~10× below it.
    r.right.logp.forEach((lp, b) => expect(Math.abs(lp - exact[b]!) / D).toBeLessThanOrEqual(1e-3));
    r.right.standardError.forEach((se) => expect(se).toBe(0));
    x.dispose();
  });
});

describe('Skilling–Hutchinson estimate', () => {
  test.each(['rademacher', 'gaussian'] as const)('%s probes: the mean over 30 passes is within 5 SE of the exact-divergence log-likelihood', (estimator) => {
    const sde = vp();
    const m = mixtures['2-D'];
    const score = exactScore(sde, m);
    const x = tf.tensor2d([
      [-2, 1],
      [2.3, 1.8],
      [0.2, -2.4],
    ]);
    const exact = logLikelihood(sde, score, x, { estimator: 'exact' });
    const hutch = logLikelihood(sde, score, x, { estimator, keys: random.split(random.key(11), 3), passes: 30, rtol: 1e-4, atol: 1e-4 });
    expect(E.isRight(exact) && E.isRight(hutch)).toBe(true);
    if (E.isLeft(exact) || E.isLeft(hutch)) return;
    hutch.right.logp.forEach((lp, b) => {
      const se = hutch.right.standardError[b]!;
      expect(se).toBeGreaterThan(0); // a non-degenerate estimate (2-D: vᵀJv varies with v)
      // Unbiasedness: E_v[log p̂] = log p, so the mean of 30 independent passes is within 5 SE of it. The solver
      // error at rtol = atol = 1e-4 (~1e-3 nats) is well below the SE (~0.05–0.2 nats).
      expect(Math.abs(lp - exact.right.logp[b]!)).toBeLessThanOrEqual(5 * se);
    });
    x.dispose();
  });
});

describe('bits per dimension', () => {
  test('a uniform density on the unit cube is exactly 8 bits/dim (256 equally likely levels); data in [−1, 1] has offset 7', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3072 }), (D) => {
        expect(bitsPerDim(0, D)).toBeCloseTo(8, 12);
        // The same uniform law on [−1, 1]^D has log p = −D log 2 and is still 8 bits/dim.
        expect(bitsPerDim(-D * Math.LN2, D, [-1, 1])).toBeCloseTo(8, 12);
      }),
      runs(20),
    );
  });

  test('bpd = −log p / (D ln 2) + 8 for [0, 1] data (score_sde likelihood.py with inverse_scaler(−1) = −1)', () => {
    expect(bitsPerDim(-100 * Math.LN2, 10)).toBeCloseTo(18, 12);
    expect(bitsPerDim(-100 * Math.LN2, 10, [-1, 1])).toBeCloseTo(17, 12);
  });

  test('uniform dequantisation stays in the level’s cell: ⌊256 x̃⌋ = 255 x for x = k/255', () => {
    const k = Array.from({ length: 256 }, (_, i) => i);
    const x = tf.tensor2d([k.map((v) => v / 255), k.map((v) => (255 - v) / 255)]);
    const xt = uniformDequantize(random.split(random.key(3), 2), x);
    const v = xt.dataSync();
    const src = x.dataSync();
    v.forEach((d, i) => expect(Math.floor(256 * d)).toBe(Math.round(255 * src[i]!)));
    tf.dispose([x, xt]);
  });
});
