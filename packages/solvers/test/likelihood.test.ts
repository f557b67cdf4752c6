/**
 * Likelihoods through the probability-flow ODE: divergence estimators against closed forms, the exact-divergence
 * log-likelihood against the mixture's exact log p_ε, Hutchinson's unbiasedness, bits/dim and dequantisation.
 */
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import { tf, initBackend, random, liveTensors } from '@score-sde/tensor-fp';
import {
  type SDE,
  vp,
  subvp,
  ve,
  tutorial,
  exactScore,
  exactLogProb,
  gaussian,
  probabilityFlowDrift,
  driftCoef,
  diffusionCoef,
  marginalMeanCoef,
  marginalVariance,
  gaussianFlowMap,
  gaussianMarginalStd,
  priorStd,
  noiseLevel,
  timeOfNoiseLevel,
} from '@score-sde/sde-math';
import {
  exactDivergence,
  hutchinsonDivergence,
  hutchinsonDriftAndDivergence,
  logLikelihood,
  bitsPerDim,
  uniformDequantize,
  centredDequantize,
  dequantize,
  cellWidth,
  imageBitsPerDim,
  blurredLevelBitsPerDim,
  cellMatchedNoiseLevel,
  cellMatchedStartTime,
} from '@score-sde/solvers';
import { mixtures, mixtures as M } from './conformance';
import { isotropicMixture } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const linearDivergence = identity({
  concept: 'likelihood',
  title: 'Divergence estimators on a linear field',
  formula: String.raw`$\nabla \cdot (Ax) = \operatorname{tr} A$ (exact divergence), $\ v^\top \nabla_x (v^\top A x) = v^\top A v$ (Hutchinson with probe $v$)`,
  source: 'the Jacobian of x ↦ Ax is A; Hutchinson 1989 / Skilling 1989: E_v[vᵀAv] = tr A for E[vvᵀ] = I',
  tolerance: 'float32 sums of ≤ 25 products of size ≤ 4|v|², relative rounding ~1e−6 of Σ|terms| ≤ 100: 1e−4',
});

const gaussianDivergence = identity({
  concept: 'likelihood',
  title: 'Divergence of the Gaussian probability-flow drift',
  formula: String.raw`$\nabla \cdot \tilde f(x, t) = \sum_j \Big(f(t) + \frac{g(t)^2}{2\,\sigma_{t,j}^2}\Big),\quad \sigma_{t,j}^2 = m(t)^2 s_j^2 + s(t)^2$`,
  source: 'f̃ = f x − ½ g² ∇ log p_t with the Gaussian score −(x − mμ)/σ_t², whose Jacobian is diagonal',
  tolerance: 'relative float32 rounding (~1e−6) of the largest term ½g²/σ² (≤ ~10³ under VE at t = 0.05): 1e−5 max(1, |expected|)',
});

const exactLikelihood = identity({
  concept: 'likelihood',
  title: 'Log-likelihood by the probability-flow ODE with the exact divergence',
  formula: String.raw`$\log p_\varepsilon(x(\varepsilon)) = \log p_T(x(T)) + \int_\varepsilon^T \nabla \cdot \tilde f(x(t), t)\, dt$`,
  source: 'instantaneous change of variables (Chen et al. 2018; Song et al. 2021, App. D.2), with the exact p_T as prior; against the closed-form log p_ε of mixtures in 1, 2, 8 dimensions',
  tolerance: '1e−3 nats per dimension: the ODE solve (rtol = atol = 1e−5 on x and Δ log p) and float32 sums are ~10× below it; the exact estimator reports SE 0',
});

const hutchinson = identity({
  concept: 'likelihood',
  title: 'Skilling–Hutchinson log-likelihood is unbiased',
  formula: String.raw`$\mathbb E_v\big[\widehat{\log p}_v(x)\big] = \log p(x)$ with $\nabla \cdot \tilde f \approx v^\top \nabla_x(v^\top \tilde f)$, $v$ Rademacher or Gaussian`,
  source: 'Song et al. 2021, App. D.2 (Grathwohl et al. 2019, FFJORD); mean of 30 independent passes against the exact-divergence likelihood',
  tolerance: 'Monte-Carlo: 5 SE of the 30-pass mean; the solver error at rtol = atol = 1e−4 (~1e−3 nats) is far below the SE (0.05–0.2 nats)',
});

const uniformBpd = identity({
  concept: 'likelihood',
  title: 'A uniform density is 8 bits per dimension',
  formula: String.raw`$\log p = 0$ on $[0, 1]^D$ or $-D \log 2$ on $[-1, 1]^D$ $\Rightarrow$ bpd $= 8$`,
  source: '256 equally likely levels per dimension',
  tolerance: 'float64: 12 decimal places',
});

const bpd = identity({
  concept: 'likelihood',
  title: 'Bits per dimension',
  formula: String.raw`$\text{bpd} = -\frac{\log p(x)}{D \ln 2} + 8$ for data in $[0, 1]$ (offset 7 for $[-1, 1]$)`,
  source: 'the score_sde reference (likelihood.py, with inverse_scaler(−1) = −1): the density of the 256-level data in [0, 256)^D',
  tolerance: 'float64: 12 decimal places',
});

const dequantise = identity({
  concept: 'likelihood',
  title: 'Uniform dequantisation stays in its cell',
  formula: String.raw`$x = k/255 \Rightarrow \lfloor 256\,\tilde x \rfloor = k$ for $\tilde x = (255 x + u)/256$, $u \sim U(0, 1)$`,
  source: 'Theis et al. 2016; Song et al. 2021, App. D.2',
  tolerance: 'exact',
});

const centredCell = identity({
  concept: 'likelihood',
  title: 'Centred dequantisation stays in the cell centred on its level',
  formula: String.raw`$x = k/255 \Rightarrow |255\,\tilde x - k| \le \tfrac12$ for $\tilde x = x + (u - \tfrac12)/255$, $u \sim U(0, 1)$; a uniform density on the cells' hull $[-\tfrac1{510}, 1 + \tfrac1{510}]^D$ is 8 bits/dim`,
  source: 'disjoint cells of width 1/255 centred on the data values: Jensen bounds the discrete likelihood as for any cells',
  tolerance: 'exact up to float32 rounding of x̃ (1e-4 of a level); float64: 12 decimal places',
});

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
        ex.forEach((d) => linearDivergence.atMost(Math.abs(d - tr), 1e-4));
        hu.forEach((d) => linearDivergence.atMost(Math.abs(d - vAv), 1e-4));
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
      got.forEach((d) => gaussianDivergence.atMost(Math.abs(d - expected), 1e-5 * Math.max(1, Math.abs(expected))));
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
    r.right.logp.forEach((lp, b) => exactLikelihood.atMost(Math.abs(lp - exact[b]!) / D, 1e-3));
    r.right.standardError.forEach((se) => exactLikelihood.equal(se, 0));
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
      hutchinson.withinSE(lp, exact.right.logp[b]!, se, { z: 5 }, `${estimator}, point ${b}`);
    });
    x.dispose();
  });
});

describe('bits per dimension', () => {
  test('a uniform density on the unit cube is exactly 8 bits/dim (256 equally likely levels); data in [−1, 1] has offset 7', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3072 }), (D) => {
        uniformBpd.lessThan(Math.abs(bitsPerDim(0, D) - 8), 0.5e-12); // toBeCloseTo(8, 12)
        // The same uniform law on [−1, 1]^D has log p = −D log 2 and is still 8 bits/dim.
        uniformBpd.lessThan(Math.abs(bitsPerDim(-D * Math.LN2, D, [-1, 1]) - 8), 0.5e-12);
      }),
      runs(20),
    );
  });

  test('bpd = −log p / (D ln 2) + 8 for [0, 1] data (score_sde likelihood.py with inverse_scaler(−1) = −1)', () => {
    bpd.lessThan(Math.abs(bitsPerDim(-100 * Math.LN2, 10) - 18), 0.5e-12); // toBeCloseTo(18, 12)
    bpd.lessThan(Math.abs(bitsPerDim(-100 * Math.LN2, 10, [-1, 1]) - 17), 0.5e-12);
  });

  /** Every level k/255 (twice, in both orders) and its dequantised values under `f`: [levels k, x̃]. */
  const dequantisedLevels = (f: typeof uniformDequantize): readonly [ReadonlyArray<number>, Float32Array] => {
    const k = Array.from({ length: 256 }, (_, i) => i);
    const levels = [...k, ...k.map((v) => 255 - v)];
    const x = tf.tensor2d([k.map((v) => v / 255), k.map((v) => (255 - v) / 255)]);
    const xt = f(random.split(random.key(3), 2), x);
    const v = xt.dataSync() as Float32Array;
    tf.dispose([x, xt]);
    return [levels, v];
  };

  test('uniform dequantisation stays in the level’s cell: ⌊256 x̃⌋ = 255 x for x = k/255', () => {
    const [levels, v] = dequantisedLevels(uniformDequantize);
    v.forEach((d, i) => dequantise.equal(Math.floor(256 * d), levels[i]!));
  });

  test('centred dequantisation stays in the cell centred on its level: |255 x̃ − k| ≤ ½, and a uniform density on the cells is 8 bits/dim', () => {
    const [levels, v] = dequantisedLevels(centredDequantize);
    // float32 x̃ is within 1 ulp (≤ 1.2e-7 in [−0.002, 1.002]) of the exact value, i.e. 3e-5 of a level.
    v.forEach((d, i) => centredCell.lessThan(Math.abs(255 * d - levels[i]!), 0.5 + 1e-4));
    // The uniform density on [−1/510, 1 + 1/510] is 255/256 per coordinate.
    for (const D of [1, 784, 3072]) centredCell.lessThan(Math.abs(bitsPerDim(D * Math.log(255 / 256), D, [0, 1], cellWidth('centred')) - 8), 0.5e-12);
  });
});

const bpdPipeline = identity({
  concept: 'likelihood',
  title: 'The bits/dim pipeline reproduces the exact model density of a 784-dimensional Gaussian',
  formula: String.raw`$\mathrm{bpd} = -\frac{\log p(y)}{D \ln 2} + 8 - \log_2(hi - lo)$, $\log p(y) = \log \mathcal N\big(\Phi(y); 0, \sigma_p^2 I\big) + \sum_j \log \frac{\sigma_{Tj}}{\sigma_{\varepsilon j}}$, $y = lo + (hi - lo)\,\frac{255x + u}{256}$`,
  source: 'the exact affine flow map Φ of Gaussian data from ε to T (gaussianFlowMap) and the change of variables; score_sde run_lib.py for the dequantisation and offset',
  tolerance: 'the adaptive solver’s global error: ≲ 100 accepted steps × (atol + rtol·|Δ|) ≈ 5 nats, i.e. 0.01 bits/dim (Rademacher Hutchinson is exact for the diagonal Jacobian)',
});

const oneEvaluation = identity({
  concept: 'likelihood',
  title: 'Hutchinson’s drift and divergence come from one score evaluation',
  formula: String.raw`$\big(F(x, t),\ v^\top \partial_x F(x, t)\, v\big)$ from one evaluation of $F$, equal bit for bit to $F(x, t)$ and to the separate estimate`,
  source: 'the forward pass of the vector–Jacobian product ∇ₓ(vᵀF) is F itself',
  tolerance: 'exact (call counts and bit-identical tensors)',
});

describe('the bits/dim pipeline on a 784-dimensional Gaussian data model with its exact score', () => {
  // Data N(μ, diag(s²)) in the model's space (the image of [0, 1] under y = lo + (hi − lo)x). Its probability-flow map
  // from ε to T is exact and affine (sde-math `gaussianFlowMap`): y ↦ Φ(y), log|det ∂Φ/∂y| = Σ_j log(σ_Tj/σ_εj),
  // so the model density the pipeline measures — the prior pulled back by the flow — is exactly
  //   log p(y) = log N(Φ(y); 0, σ_p² I) + Σ_j log(σ_Tj/σ_εj),
  // and its bits/dim = −log p(y)/(D ln 2) + 8 − log₂(hi − lo) at the dequantised y the pipeline draws (same keys).
  // The Jacobian of the flow is diagonal, so a Rademacher probe (v_j² = 1) makes Hutchinson's estimate exact and the
  // only errors are the adaptive solver's and float32's: with rtol = atol = 1e-5 every accepted step of the Δ-component
  // (|Δ| ≤ ~5·10³ nats) errs by at most atol + rtol·|Δ| ≈ 0.05 nats locally, and over the ≲ 100 accepted steps here by
  // ≲ 5 nats in all; in bits/dim that is 5/(784 ln 2) ≈ 0.01. Every mistake of the pipeline — the offset (8 vs 7:
  // 1 bpd), the range's log-determinant (1 bpd for [−1, 1]), the direction of integration (sign of Δ), the
  // prior, ε — moves the result by far more than that bound. (The dequantisation's own cell is checked exactly in
  // 'uniform dequantisation stays in the level’s cell' above.)
  const D = 784;
  const unitMean = Array.from({ length: D }, (_, j) => 0.2 + (0.6 * ((j * 37) % 101)) / 100);
  const unitStd = Array.from({ length: D }, (_, j) => 0.05 + (0.25 * ((j * 53) % 97)) / 96);
  const cases = [
    ['VP, data in [0, 1]', vp(), [0, 1]],
    ['VE, data in [0, 1]', ve(), [0, 1]],
    ['tutorial, data in [−1, 1]', tutorial(), [-1, 1]],
  ] as const;
  const runs = [
    ...cases.flatMap(([label, sde, range]) => [1e-5, 1e-3].map((eps) => ({ label, sde, range, eps, dq: 'score-sde' as const }))),
    // the centred cells: offset log₂ 255 instead of 8, and x̃ = x + (u − ½)/255
    ...cases.slice(0, 2).map(([label, sde, range]) => ({ label, sde, range, eps: 1e-5, dq: 'centred' as const })),
  ];
  for (const { label, sde, range, eps, dq: dequantization } of runs)
    test(`${label}, ε = ${eps}, ${dequantization} cells: bpd = −log p(y)/(D ln 2) − log₂(w (hi − lo)) with log p(y) = log N(Φ(y); 0, σ_p²) + Σ log(σ_T/σ_ε), within the solver's bound (0.01)`, () => {
      const [lo, hi] = range;
      const mean = unitMean.map((mu) => lo + (hi - lo) * mu);
      const std = unitStd.map((s) => (hi - lo) * s);
      const B = 3;
      // 8-bit images: k/255 with k from the data law in [0, 1], clipped.
      const k = random.normalArray(random.key(61), B * D).map((z, i) => Math.round(255 * Math.min(1, Math.max(0, unitMean[i % D]! + unitStd[i % D]! * z))));
      const images = tf.tensor2d(Float32Array.from(k, (v) => v / 255), [B, D]);
      const dq = random.split(random.key(62), B);
      const r = imageBitsPerDim(sde, exactScore(sde, gaussian(mean, std)), images, { estimator: 'rademacher', keys: random.split(random.key(63), B), dequantizeKeys: dq, range, eps, dequantization });
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      // The same y the pipeline made (same ops, same keys), then the exact model density in float64.
      const y = tf.tidy(() => tf.add(tf.mul(dequantize(dequantization)(dq, images), hi - lo), lo));
      const yv = y.dataSync();
      const phi = gaussianFlowMap(sde, mean, std)(yv, eps, sde.T);
      const sp = priorStd(sde);
      const logDet = std.reduce((a, s) => a + Math.log(gaussianMarginalStd(sde, s, sde.T) / gaussianMarginalStd(sde, s, eps)), 0);
      for (let b = 0; b < B; b++) {
        let q = 0;
        for (let j = 0; j < D; j++) q += phi[b * D + j]! ** 2;
        const logp = -0.5 * D * Math.log(2 * Math.PI * sp * sp) - q / (2 * sp * sp) + logDet;
        const exact = -logp / (D * Math.LN2) - Math.log2((dequantization === 'centred' ? 1 / 255 : 1 / 256) * (hi - lo));
        bpdPipeline.close(r.right.bpd[b]!, exact, 0.01, { case: label, eps: String(eps), cells: dequantization });
      }
      tf.dispose([images, y]);
    });

  test('one score evaluation per stage with a Hutchinson probe: the drift and vᵀJv come from a single evaluation, the drift bit-identical to F(x, t)', () => {
    const sde = vp();
    const score = exactScore(sde, gaussian(unitMean, unitStd));
    let calls = 0;
    const counting = (x: tf.Tensor, t: number) => {
      calls += 1;
      return score(x, t);
    };
    const F = probabilityFlowDrift(sde, counting);
    const x = tf.tidy(() => tf.add(tf.mul(random.normal(random.key(4), [2, D]), 0.2), 0.5));
    const probe = random.rademacherPerSample(random.split(random.key(5), 2), [D]);
    const both = hutchinsonDriftAndDivergence(F, probe)(x, 0.3);
    oneEvaluation.equal(calls, 1);
    const drift = F(x, 0.3);
    const div = hutchinsonDivergence(F, probe)(x, 0.3);
    oneEvaluation.equal(calls, 3);
    oneEvaluation.equal(tf.tidy(() => tf.all(tf.equal(both.drift, drift)).dataSync()[0]), 1);
    oneEvaluation.equal(tf.tidy(() => tf.all(tf.equal(both.divergence, div)).dataSync()[0]), 1);
    tf.dispose([x, probe, both.drift, both.divergence, drift, div]);
    // and the likelihood's NFE is the evaluations the score really received
    calls = 0;
    const images = tf.tensor2d([unitMean.map((m) => Math.round(255 * m) / 255)]);
    const r = imageBitsPerDim(sde, counting, images, { estimator: 'rademacher', keys: [random.key(1)], dequantizeKeys: [random.key(2)], rtol: 1e-3, atol: 1e-3 });
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    oneEvaluation.equal(r.right.nfe, calls);
    images.dispose();
  });
});

const cellMatchedBlur = identity({
  concept: 'likelihood',
  title: 'A level blurred to its cell’s standard deviation costs ½ log₂(2πe/12) bits per dimension, the least of any blur',
  formula: String.raw`$\mathbb E_u\big[-\log_2\big(w\,\mathcal N(u; 0, \sigma^2)\big)\big] = \tfrac12\log_2\frac{2\pi\sigma^2}{w^2} + \frac{w^2}{24\,\sigma^2 \ln 2}$, least at $\sigma = w/\sqrt{12}$ where it is $\tfrac12\log_2\frac{2\pi e}{12} \approx 0.254$; the bits/dim pipeline of a point mass from $\varepsilon = \sigma^{-1}(w/\sqrt{12})$ measures it`,
  source: 'E[u²] = w²/12 for u ~ U(−w/2, w/2); d/dσ (log σ + w²/(24σ²)) = 0 at σ² = w²/12; a point mass x₀ under a VE record has p_ε = N(x₀, σ(ε)² I) exactly',
  tolerance: 'closed form: float64 rounding, 1e-12; pipeline: 5 SE of the mean of D·B terms (w²/(2σ² ln 2))·(u − ½)², each of variance (w²/(2σ² ln 2))²/180, plus the solver bound ≲ 100 (atol + rtol |Δ|)/(D ln 2) with |Δ| = D log(σ_T/σ_ε)',
});

describe('where the likelihood starts: the noise level matched to the dequantisation cell', () => {
  test('the closed form is ½ log₂(2πe/12) at σ = w/√12 and larger at every other σ', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-4, max: 1, noNaN: true }), fc.double({ min: -3, max: 3, noNaN: true }), (w, logRatio) => {
        const best = blurredLevelBitsPerDim(w / Math.sqrt(12), w);
        cellMatchedBlur.close(best, 0.5 * Math.log2((2 * Math.PI * Math.E) / 12), 1e-12);
        // any other σ = e^r w/√12 costs ½ log₂ e^{2r} + (e^{−2r} − 1)/(2 ln 2) more, which is ≥ 0 (equality only at r = 0)
        const other = blurredLevelBitsPerDim((Math.exp(logRatio) * w) / Math.sqrt(12), w);
        cellMatchedBlur.close(other - best, (logRatio + (Math.exp(-2 * logRatio) - 1) / 2) / Math.LN2, 1e-9);
        cellMatchedBlur.atMost(best - other, 1e-12);
      }),
      runs(50),
    );
    cellMatchedBlur.close(cellMatchedNoiseLevel('centred'), 1 / 255 / Math.sqrt(12), 1e-15);
    cellMatchedBlur.close(cellMatchedNoiseLevel('score-sde', [-1, 1]), 2 / 256 / Math.sqrt(12), 1e-15);
  });

  // A point mass x₀ (one 8-bit image, every image of the batch) under a VE record: p_ε = N(x₀, σ(ε)² I) exactly (m = 1),
  // so the pipeline's bpd of x̃ = x₀ + (u − ½)w is (1/D) Σ_j [½ log₂(2πσ²) + (u_j − ½)² w²/(2σ² ln 2)] − log₂ w, whose
  // mean over u is the closed form. From ε = cellMatchedStartTime the blur is w/√12 and the cost the least.
  const D = 784;
  const B = 4;
  const sde = ve();
  const w = cellWidth('centred');
  const level = Array.from(random.normalArray(random.key(71), D), (z) => Math.round(255 * Math.min(1, Math.max(0, 0.5 + 0.4 * z))) / 255);
  const bitsFrom = (eps: number): number => {
    const images = tf.tensor2d(Array.from({ length: B }, () => level).flat(), [B, D]);
    const r = imageBitsPerDim(sde, exactScore(sde, gaussian(level, level.map(() => 0))), images, {
      estimator: 'rademacher',
      keys: random.split(random.key(72), B),
      dequantizeKeys: random.split(random.key(73), B),
      eps,
      dequantization: 'centred',
    });
    images.dispose();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    return r.right.bpd.reduce((a, b) => a + b, 0) / B;
  };
  for (const ratio of [0.5, 1, 2])
    test(`σ(ε) = ${ratio} · w/√12: the pipeline's bits/dim of a point mass is ½ log₂(2πσ²/w²) + w²/(24σ² ln 2) within 5 SE`, () => {
      const sigma = (ratio * w) / Math.sqrt(12);
      const eps = ratio === 1 ? cellMatchedStartTime(sde, 'centred') : timeOfNoiseLevel(sde, sigma);
      cellMatchedBlur.close(noiseLevel(sde, eps), sigma, 1e-9 * sigma);
      const a = (w * w) / (2 * sigma * sigma * Math.LN2);
      const se = a / Math.sqrt(180) / Math.sqrt(D * B);
      const solver = (100 * (1e-5 + 1e-5 * D * Math.log(priorStd(sde) / sigma))) / (D * Math.LN2);
      cellMatchedBlur.withinSE(bitsFrom(eps), blurredLevelBitsPerDim(sigma, w), se, { bias: solver }, { ratio: String(ratio) });
    });
});
