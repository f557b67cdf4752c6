/**
 * Prior and kernel identities of `dynamics.ts`, and its memory discipline.
 */
import fc from 'fast-check';
import { tf, initBackend, random, leakedBy } from '@score-sde/tensor-fp';
import {
  type SDE,
  vp,
  ve,
  subvp,
  tutorial,
  priorLogProb,
  priorStd,
  priorSample,
  kernelScore,
  perturb,
  marginalMeanCoef,
  marginalStd,
  reverseDrift,
  reverseDiscretize,
  probabilityFlowDrift,
  discretize,
  exactScore,
  clampedDenoiserScore,
  marginalVariance,
} from '@score-sde/sde-math';
import { EPS32, EPS64, TINY32, sdeArb, timeArb } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const priorDensity = identity({
  concept: 'sde',
  title: 'Prior log-density',
  formula: String.raw`$\log p_T(x) = -\tfrac{D}{2} \log(2\pi\sigma_p^2) - \frac{\lVert x \rVert^2}{2\sigma_p^2}$ per sample`,
  source: 'the prior N(0, σ_p² I) of each SDE (Song et al. 2021, App. B: σ_p = 1 for VP and sub-VP, σ_max for VE)',
  tolerance: 'float32: a sum of 4 squares and two terms, each rounded: 8ε(|c| + ‖x‖²/(2σ_p²))',
});

const priorVariance = identity({
  concept: 'sde',
  title: 'Prior samples have the prior variance',
  formula: String.raw`$\mathbb E\big[x_j^2\big] = \sigma_p^2$ for $x = \sigma_p z$, $z \sim \mathcal N(0, I)$`,
  source: 'definition of the prior; 500 samples × 4 coordinates with the mean known (0)',
  tolerance: 'Monte-Carlo: |q − σ_p²| ≤ 5 SE with SE(q) = σ_p² √(2/n)',
});

const kernelGradient = identity({
  concept: 'sde',
  title: 'Kernel score is the gradient of the log-kernel',
  formula: String.raw`$\nabla_{x_t} \log \mathcal N\big(x_t;\, m(t)\,x_0,\, s(t)^2 I\big) = -\frac{x_t - m(t)\,x_0}{s(t)^2}$`,
  source: 'differentiating the Gaussian transition kernel p_0t (Song et al. 2021, eq. 7 uses it as the DSM target)',
  tolerance: 'the log-kernel is quadratic, so central differences have no truncation error: float64 rounding 8ε(|log k| + 1)/h + float32 kernelScore rounding 4ε₃₂(|x_t| + |m x_0|)/s²',
});

const perturbation = identity({
  concept: 'sde',
  title: 'Perturbation and its kernel score',
  formula: String.raw`$x_t = m(t_b)\,x_0 + s(t_b)\,z$ per sample, and $\nabla \log p_{0t}(x_t \mid x_0) = -z / s(t_b)$`,
  source: 'reparameterisation of the Gaussian kernel with one time per sample',
  tolerance: 'float32: 3 roundings of values ≤ 6: 4ε·6·2; the score: cancellation in x_t − m x_0 (≤ 8ε·12) divided by s², + 4ε|z/s|',
});

const clampedDenoiser = identity({
  concept: 'sde',
  title: 'A clamped denoiser’s score denoises into the box, and is the score itself inside it',
  formula: String.raw`$s' = s + m\,(\operatorname{clip}(D, lo, hi) - D)/s(t)^2$ with $D = (x + s(t)^2 s)/m$: $\ (x + s(t)^2 s')/m = \operatorname{clip}(D, lo, hi)$, and $s' = s$ where $lo \le D \le hi$`,
  source: 'Tweedie’s E[x₀ | x_t] = (x + s(t)² ∇log p_t)/m(t) solved for the score; static thresholding (Saharia et al. 2022) applied to it',
  tolerance: 'inside the box exact (the correction is 0); outside float32: each of the ≤ 6 roundings errs by ε₃₂ of a value ≤ |x| + s(t)²|s| + m(|D| + |clip D|), divided by m: 8ε₃₂(…)/m',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const valuesArb = (n: number) => fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: n, maxLength: n });

describe('prior and kernel', () => {
  test('priorLogProb(x) = log N(x; 0, σ_p² I) = −(D/2) log(2πσ_p²) − ‖x‖²/(2σ_p²), per sample, for x of shape [B, 2, 2]', () => {
    fc.assert(
      fc.property(sdeArb, valuesArb(12), (sde: SDE, u) => {
        const sp = priorStd(sde);
        const x32 = Float32Array.from(u, (v) => v * sp);
        const got = tf.tidy(() => priorLogProb(sde)(tf.tensor(x32, [3, 2, 2])).dataSync());
        expect(got.length).toBe(3);
        for (let b = 0; b < 3; b++) {
          let sq = 0;
          for (let j = 0; j < 4; j++) sq += x32[b * 4 + j]! ** 2;
          const c = 2 * Math.log(2 * Math.PI * sp * sp);
          const want = -c - sq / (2 * sp * sp);
          // float32: a sum of 4 squares and two terms, each rounded: ≤ 8ε(|c| + ‖x‖²/(2σ²)).
          priorDensity.atMost(Math.abs(got[b]! - want), 8 * EPS32 * (Math.abs(c) + sq / (2 * sp * sp)));
        }
      }),
      runs(50),
    );
  });

  test('priorSample has the prior std σ_p (sample variance within 5 SE) and sample b depends on keys[b] only', () => {
    for (const sde of [vp(), ve(), tutorial()]) {
      const keys = random.split(random.key(5), 500);
      const x = priorSample(sde)(keys, [4]);
      const xs = Float64Array.from(x.dataSync());
      const one = priorSample(sde)([keys[17]!], [4]);
      expect(Array.from(one.dataSync())).toEqual(Array.from(xs.subarray(17 * 4, 18 * 4)));
      tf.dispose([x, one]);
      const n = xs.length;
      const v = priorStd(sde) ** 2;
      const q = xs.reduce((a, b) => a + b * b, 0) / n; // mean known (0): E q = v, SE(q) = v √(2/n)
      priorVariance.withinSE(q, v, v * Math.sqrt(2 / n), { z: 5 }, sde.kind);
    }
  });

  test('kernelScore = central finite-difference gradient of log N(x_t; m(t) x_0, s(t)² I) (float64 FD, float32 kernelScore)', () => {
    fc.assert(
      fc.property(sdeArb, timeArb, valuesArb(3), valuesArb(3), (sde: SDE, t, u0, uz) => {
        const m = marginalMeanCoef(sde, t);
        const s = marginalStd(sde, t);
        const x0 = Float32Array.from(u0);
        const xt = Float32Array.from(uz, (z, j) => m * x0[j]! + s * z);
        const got = tf.tidy(() => kernelScore(sde)(tf.tensor2d(xt, [1, 3]), tf.tensor2d(x0, [1, 3]), t).dataSync());
        const logk = (x: ArrayLike<number>) => {
          let q = 0;
          for (let j = 0; j < 3; j++) q += (x[j]! - m * x0[j]!) ** 2;
          return -q / (2 * s * s) - 1.5 * Math.log(2 * Math.PI * s * s);
        };
        const h = 1e-3 * s;
        for (let j = 0; j < 3; j++) {
          const xp = Float64Array.from(xt);
          const xm = Float64Array.from(xt);
          xp[j] = xt[j]! + h;
          xm[j] = xt[j]! - h;
          const fd = (logk(xp) - logk(xm)) / (2 * h);
          // The log-kernel is quadratic in x_t, so the central difference has no truncation error; its float64 rounding
          // is ≤ 8ε(|log k| + 1)/h. The float32 kernelScore (m x_0 − x_t)/s² rounds m x_0, the difference and the
          // division: ≤ 4ε₃₂(|x_t| + |m x_0|)/s².
          const tol = (8 * EPS64 * (Math.abs(logk(xp)) + Math.abs(logk(xm)) + 2)) / h + (4 * EPS32 * (Math.abs(xt[j]!) + Math.abs(m * x0[j]!))) / (s * s);
          kernelGradient.atMost(Math.abs(got[j]! - fd), tol);
        }
      }),
      runs(50),
    );
  });

  test('perturb: x_t = m(t_b) x_0 + s(t_b) z with one time per sample, and kernelScore(x_t) = −z/s(t)', () => {
    const sde = subvp();
    const ts = [0.1, 0.5, 0.9];
    const out = tf.tidy(() => {
      const x0 = tf.tensor([1, 2, 3, 4, 5, 6], [3, 2]);
      const z = tf.tensor([0.5, -1, 2, 0, -0.25, 1], [3, 2]);
      const p = perturb(sde)(x0, ts, z);
      const scores = ts.map((t, b) => kernelScore(sde)(tf.slice(p.xt, [b, 0], [1, 2]), tf.slice(x0, [b, 0], [1, 2]), t));
      return { xt: p.xt.dataSync(), mean: p.mean.dataSync(), std: p.std.dataSync(), shape: p.std.shape, scores: scores.map((s) => s.dataSync()) };
    });
    expect(out.shape).toEqual([3, 1]);
    ts.forEach((t, b) => {
      const m = marginalMeanCoef(sde, t);
      const s = marginalStd(sde, t);
      perturbation.lessThan(Math.abs(out.mean[b]! - m), 0.5e-6); // toBeCloseTo(m, 6)
      perturbation.lessThan(Math.abs(out.std[b]! - s), 0.5e-6);
      const z = [
        [0.5, -1],
        [2, 0],
        [-0.25, 1],
      ][b]!;
      z.forEach((zj, j) => {
        // float32: 3 roundings of values ≤ 6: ≤ 4ε·6·(1 + m).
        perturbation.atMost(Math.abs(out.xt[b * 2 + j]! - (m * (b * 2 + j + 1) + s * zj)), 4 * EPS32 * 6 * 2);
        // −(x_t − m x_0)/s² = −z/s up to the cancellation error in x_t − m x_0 (≤ 8ε·6·2), divided by s².
        perturbation.atMost(Math.abs(out.scores[b]![j]! + zj / s), (8 * EPS32 * 12) / (s * s) + 4 * EPS32 * Math.abs(zj / s));
      });
    });
  });
});

describe('clamped denoiser', () => {
  test("clampedDenoiserScore: (x + s(t)² s')/m = clip(D, lo, hi), and s' = s wherever D ∈ [lo, hi] (a score whose denoiser is any c)", () => {
    fc.assert(
      fc.property(sdeArb, timeArb, valuesArb(8), valuesArb(8), (sde: SDE, t: number, xs: number[], cs: number[]) => {
        const m = marginalMeanCoef(sde, t);
        const v = marginalVariance(sde, t);
        const [lo, hi] = [-1, 2];
        // The score whose denoiser is c: s = −(x − m c)/s(t)², so D = c up to rounding.
        const score = (x: tf.Tensor) => tf.tidy(() => tf.div(tf.sub(tf.mul(tf.tensor(cs, [2, 4]), m), x), v));
        const out = tf.tidy(() => {
          const x = tf.tensor(xs, [2, 4]);
          const s = score(x);
          const d = tf.div(tf.add(x, tf.mul(s, v)), m);
          const c = clampedDenoiserScore(sde, score, [lo, hi])(x, t);
          return { s: s.dataSync(), d: d.dataSync(), c: c.dataSync() };
        });
        for (let j = 0; j < 8; j++) {
          const d = out.d[j]!;
          const clipped = Math.min(hi, Math.max(lo, d));
          // Inside the box the same value (s + 0: a −0 becomes +0, which compares equal).
          if (d >= lo && d <= hi) clampedDenoiser.atMost(Math.abs(out.c[j]! - out.s[j]!), 0, { j: String(j) });
          const x = Math.fround(xs[j]!); // the float32 input the score saw
          const implied = (x + v * out.c[j]!) / m;
          const bound = (8 * EPS32 * (Math.abs(x) + v * Math.abs(out.s[j]!) + m * (Math.abs(d) + Math.abs(clipped))) + TINY32) / m;
          clampedDenoiser.atMost(Math.abs(implied - clipped), bound, { j: String(j) });
        }
      }),
      runs(50),
    );
  });
});

describe('memory', () => {
  test('a 1,000-step loop of reverseDrift / probabilityFlowDrift / discretize / reverseDiscretize leaves tf.memory().numTensors unchanged', () => {
    const x = tf.ones([4, 2]);
    const sdes = [vp(), ve(), subvp()] as const;
    const scores = sdes.map((sde) => exactScore(sde, { weights: [0.5, 0.5], means: [[0, 1], [2, -1]], stds: [[1, 1], [0.5, 0.5]] }));
    const before = tf.memory().numTensors;
    // One step of each kind in turn (DDPM, SMLD and Euler–Maruyama discretisations), t from 1 down to 0.
    for (let i = 0; i < 1000; i++) {
      const sde = sdes[i % 3]!;
      const score = scores[i % 3]!;
      const t = 1 - i / 1000;
      const r = reverseDrift(sde, score)(x, t);
      const p = probabilityFlowDrift(sde, score)(x, t);
      const d = discretize(sde, 1000)(x, t);
      const rd = reverseDiscretize(sde, score, 1000)(x, t);
      tf.dispose([r, p, d.f, rd.f]);
    }
    expect(tf.memory().numTensors).toBe(before);
    for (const sde of sdes) {
      expect(leakedBy(() => perturb(sde)(x, [0.1, 0.2, 0.3, 0.4], x))).toBe(0);
      expect(leakedBy(() => priorSample(sde)(random.split(random.key(1), 4), [2]))).toBe(0);
      expect(leakedBy(() => priorLogProb(sde)(x))).toBe(0);
      expect(leakedBy(() => kernelScore(sde)(x, x, 0.5))).toBe(0);
    }
    x.dispose();
  });
});
