/**
 * Identities of the neural-network blocks (nn.ts): GroupNorm normalises each group, swish is x·σ(x),
 * Fourier features lie on unit circles.
 */
import fc from 'fast-check';
import { tf, initBackend, random, nn } from '@score-sde/tensor-fp';
import { U32, gamma32, moments, onCpu, readScoped } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const groupNormMoments = identity({
  concept: 'kernels',
  title: 'GroupNorm standardises each group',
  formula: String.raw`$\hat x = \frac{x - \mu_g}{\sqrt{\sigma_g^2 + \epsilon}} \Rightarrow \operatorname{mean}_g \hat x = 0,\ \operatorname{var}_g \hat x = \frac{\sigma_g^2}{\sigma_g^2 + \epsilon}$ per (sample, group)`,
  source: 'Wu & He 2018 (Group Normalization), with γ = 1, β = 0',
  tolerance: 'float32 group sums of n terms off by ≤ γ_n max|x| and γ_n max|x|² (Higham §3.1): 4γ_n(1 + max|x|/σ) + 8u for the mean, 4× that for the variance',
});

const groupNormAffine = identity({
  concept: 'kernels',
  title: 'GroupNorm’s affine parameters act per channel',
  formula: String.raw`$\mathrm{GN}_{\gamma,\beta}(x) = \gamma \cdot \mathrm{GN}_{1,0}(x) + \beta$`,
  source: 'definition (Wu & He 2018)',
  tolerance: 'a few float32 roundings of values ≤ 5|γ| + |β|: 1e−5 (1 + |rhs|) (~100 u)',
});

const groupNormReference = identity({
  concept: 'kernels',
  title: 'Fused GroupNorm (and GroupNorm + swish) equal the 5-D reference',
  formula: String.raw`$\mathrm{GN}$, $\mathrm{swish}(\mathrm{GN}(x + b))$ and their gradients $=$ reshape → moments → normalise → affine (cpu)`,
  source: 'the same function computed by the fused kernel and by plain tfjs ops',
  tolerance: 'group sums over n = hwC/G values off by γ_n max|x|/σ after normalising, through the chained reductions: 8γ_n(1 + max|x|/σ_min)(1 + |ref|) elementwise',
});

const swishLaw = identity({
  concept: 'kernels',
  title: 'swish',
  formula: String.raw`$\mathrm{swish}(x) = x\,\sigma(x) = \frac{x}{1 + e^{-x}},\quad \mathrm{swish}(x) - \mathrm{swish}(-x) = x$`,
  source: 'Ramachandran et al. 2017; σ(x) + σ(−x) = 1',
  tolerance: 'a few float32 roundings: 8u(1 + |x|) and 16u(1 + |x|)',
});

const swishGradient = identity({
  concept: 'kernels',
  title: 'swish gradient',
  formula: String.raw`$\frac{d}{dx}\mathrm{swish}(x) = \sigma(x)\big(1 + x(1 - \sigma(x))\big)$`,
  source: 'differentiating x σ(x) with σ′ = σ(1 − σ); against autograd (cpu) and float64',
  tolerance: 'float32: 16u(1 + |x|)',
});

const fourier = identity({
  concept: 'kernels',
  title: 'Gaussian Fourier features',
  formula: String.raw`$\phi(t) = [\sin 2\pi W t,\ \cos 2\pi W t]$, so $\sin^2 + \cos^2 = 1$ per (sample, frequency)`,
  source: 'Tancik et al. 2020; the time embedding of the tutorial ScoreNet',
  tolerance: 'float32: 8u for sin² + cos², 1e−6 at a known point',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

/** Per (sample, group) mean and biased variance of an NHWC array, in float64. */
const groupMoments = (v: ArrayLike<number>, [b, h, w, c]: readonly number[], groups: number): Array<{ mean: number; variance: number }> => {
  const per = c! / groups;
  const out: Array<{ mean: number; variance: number }> = [];
  for (let n = 0; n < b!; n++) {
    for (let g = 0; g < groups; g++) {
      const xs: number[] = [];
      for (let p = 0; p < h! * w!; p++) for (let j = 0; j < per; j++) xs.push(v[(n * h! * w! + p) * c! + g * per + j]!);
      const m = moments(xs);
      out.push({ mean: m.mean, variance: (m.variance * (m.n - 1)) / m.n });
    }
  }
  return out;
};

describe('nn.groupNorm', () => {
  const shapeArb = fc.record({
    b: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 2, max: 6 }),
    w: fc.integer({ min: 2, max: 6 }),
    groups: fc.integer({ min: 1, max: 4 }),
    perGroup: fc.integer({ min: 1, max: 4 }),
    offset: fc.double({ min: -20, max: 20, noNaN: true }),
    scale: fc.double({ min: 0.1, max: 10, noNaN: true }),
    seed: fc.nat(1000),
  });

  test('with γ = 1, β = 0 each (sample, group) has mean 0 and variance σ²/(σ² + ε) ≈ 1', () => {
    fc.assert(
      fc.property(shapeArb, ({ b, h, w, groups, perGroup, offset, scale, seed }) => {
        const c = groups * perGroup;
        const shape = [b, h, w, c] as const;
        const eps = 1e-5;
        const [xv, yv] = readScoped(() => {
          const x = tf.add(tf.mul(random.normal(random.key(seed), shape), scale), offset) as tf.Tensor4D;
          return [x, nn.groupNorm(x, groups, tf.ones([c]), tf.zeros([c]), eps)];
        });
        const before = groupMoments(xv!, shape, groups);
        const maxAbs = xv!.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const n = h * w * perGroup;
        groupMoments(yv!, shape, groups).forEach(({ mean, variance }, i) => {
          const v = before[i]!.variance;
          // float32: μ and σ² are sums of n terms, off by ≤ γ_n·max|x| and γ_n·max|x|² (Higham §3.1); after
          // dividing by σ these are γ_n·max|x|/σ in the normalised units, plus a few u per element op.
          const tol = 4 * gamma32(n) * (1 + maxAbs / Math.sqrt(v)) + 8 * U32;
          groupNormMoments.lessThan(Math.abs(mean), tol, 'mean');
          groupNormMoments.lessThan(Math.abs(variance - v / (v + eps)), 4 * tol, 'variance');
        });
      }),
      runs(25),
    );
  });

  test('γ and β act per channel: GN_{γ,β}(x) = γ·GN_{1,0}(x) + β', () => {
    const [b, h, w, c, groups] = [2, 4, 3, 6, 3];
    const [lhs, rhs] = readScoped(() => {
      const x = random.normal(random.key(1), [b, h, w, c]) as tf.Tensor4D;
      const gamma = random.normal(random.key(2), [c]);
      const beta = random.normal(random.key(3), [c]);
      return [nn.groupNorm(x, groups, gamma, beta), tf.add(tf.mul(nn.groupNorm(x, groups, tf.ones([c]), tf.zeros([c])), gamma), beta)];
    });
    // Both sides are γ·x̂ + β up to a few roundings of values of size ≤ |γ|·5 + |β|: 1e-5 absolute is ~100 u.
    lhs!.forEach((v, i) => groupNormAffine.lessThan(Math.abs(v - rhs![i]!), 1e-5 * (1 + Math.abs(rhs![i]!))));
  });

  test('equals the 5-D reference (reshape → moments → normalise → affine) on cpu, values and gradients', async () => {
    const [b, h, w, c, groups] = [2, 5, 4, 8, 4];
    const k = random.split(random.key(4), 4);
    const xv = Float32Array.from(random.normalArray(k[0]!, b * h * w * c), (z) => 3 + 2 * z);
    const gv = Float32Array.from(random.normalArray(k[1]!, c));
    const bv = Float32Array.from(random.normalArray(k[2]!, c));
    const dv = Float32Array.from(random.normalArray(k[3]!, b * h * w * c));
    const run = (gn: typeof nn.groupNorm) => () =>
      readScoped(() => {
        const [x, g, be, dy] = [tf.tensor4d(xv, [b, h, w, c]), tf.tensor1d(gv), tf.tensor1d(bv), tf.tensor4d(dv, [b, h, w, c])];
        const [dx, dg, db] = tf.grads((u: tf.Tensor, v: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(gn(u as tf.Tensor4D, groups, v, z), dy)))([x, g, be]);
        return [gn(x, groups, g, be), dx!, dg!, db!];
      });
    const reference: typeof nn.groupNorm = (x, G, gamma, beta, eps = 1e-5) =>
      tf.tidy(() => {
        const xg = tf.reshape(x, [b, h, w, G, c / G]);
        const { mean, variance } = tf.moments(xg, [1, 2, 4], true);
        const xn = tf.reshape(tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, eps))), [b, h, w, c]);
        return tf.add(tf.mul(xn, tf.reshape(gamma, [1, 1, 1, c])), tf.reshape(beta, [1, 1, 1, c])) as tf.Tensor4D;
      });
    const ours = run(nn.groupNorm)();
    const ref = await onCpu(run(reference));
    // Both are O(1) functions of group sums over n = h·w·C/G values; each sum is off by ≤ γ_n·max|x| (Higham
    // §3.1), i.e. γ_n·max|x|/σ after normalising; with the chained reductions (mean, variance, and the
    // gradient's two group sums) 8·γ_n·(1 + max|x|/σ_min) per unit of scale bounds the difference.
    const n = (h * w * c) / groups;
    const maxAbs = xv.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const sigmaMin = Math.sqrt(Math.min(...groupMoments(xv, [b, h, w, c], groups).map((g) => g.variance)));
    const tol = 8 * gamma32(n) * (1 + maxAbs / sigmaMin);
    ours.forEach((o, i) => {
      const scale = Float64Array.from(ref[i]!, (v) => 1 + Math.abs(v));
      groupNormReference.closeEach(o, ref[i]!, scale.map((sc) => tol * sc), ['value', 'd/dx', 'd/dγ', 'd/dβ'][i]);
    });
  });
});

describe('nn.groupNormSwish', () => {
  test('= swish(GN(x + bias)) with the 5-D reference on cpu: value and ∂/∂x, ∂/∂γ, ∂/∂β, ∂/∂bias', async () => {
    const [b, h, w, c, groups] = [3, 4, 5, 8, 2];
    const k = random.split(random.key(9), 5);
    const xv = Float32Array.from(random.normalArray(k[0]!, b * h * w * c), (z) => 2 + 1.5 * z);
    const gv = Float32Array.from(random.normalArray(k[1]!, c));
    const bv = Float32Array.from(random.normalArray(k[2]!, c));
    const biasv = Float32Array.from(random.normalArray(k[3]!, b * c));
    const dv = Float32Array.from(random.normalArray(k[4]!, b * h * w * c));
    const reference = (x: tf.Tensor4D, g: tf.Tensor, be: tf.Tensor, bias: tf.Tensor): tf.Tensor => {
      const u = tf.add(x, tf.reshape(bias, [b, 1, 1, c]));
      const xg = tf.reshape(u, [b, h, w, groups, c / groups]);
      const { mean, variance } = tf.moments(xg, [1, 2, 4], true);
      const y = tf.add(tf.mul(tf.reshape(tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, 1e-5))), [b, h, w, c]), g), be);
      return tf.mul(y, tf.sigmoid(y));
    };
    const run = (f: (x: tf.Tensor4D, g: tf.Tensor, be: tf.Tensor, bias: tf.Tensor) => tf.Tensor) => () =>
      readScoped(() => {
        const [x, g, be, bias, dy] = [tf.tensor4d(xv, [b, h, w, c]), tf.tensor1d(gv), tf.tensor1d(bv), tf.tensor2d(biasv, [b, c]), tf.tensor4d(dv, [b, h, w, c])];
        const grads = tf.grads((u: tf.Tensor, v: tf.Tensor, z: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(f(u as tf.Tensor4D, v, z, q), dy)))([x, g, be, bias]);
        return [f(x, g, be, bias), ...grads];
      });
    const ours = run((x, g, be, bias) => nn.groupNormSwish(x, groups, g, be, bias))();
    const ref = await onCpu(run(reference));
    expect(ours.map((o) => o.length)).toEqual([b * h * w * c, b * h * w * c, c, c, b * c]);
    // As for groupNorm above: chained group sums of n = h·w·C/G terms, 8·γ_n·(1 + max|x|/σ_min) per unit of scale;
    // the swish adds one rounding per op (covered by the 1 + |value| scale).
    const n = (h * w * c) / groups;
    const u = Float64Array.from(xv, (v, i) => v + biasv[Math.floor(i / (h * w * c)) * c + (i % c)]!);
    const maxAbs = u.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const sigmaMin = Math.sqrt(Math.min(...groupMoments(u, [b, h, w, c], groups).map((g) => g.variance)));
    const tol = 8 * gamma32(n) * (1 + maxAbs / sigmaMin);
    ours.forEach((o, i) => {
      const scale = Float64Array.from(ref[i]!, (v) => 1 + Math.abs(v));
      groupNormReference.closeEach(o, ref[i]!, scale.map((sc) => tol * sc), `groupNormSwish output ${i}`);
    });
  });

  test('without a bias it is swish(groupNorm(x)); the bias may also be given as [B, 1, 1, C]', () => {
    const [b, h, w, c] = [2, 3, 3, 4];
    const [a, bb, cc] = readScoped(() => {
      const x = random.normal(random.key(10), [b, h, w, c]) as tf.Tensor4D;
      const g = random.normal(random.key(11), [c]);
      const be = random.normal(random.key(12), [c]);
      const bias = random.normal(random.key(13), [b, c]);
      return [
        nn.groupNormSwish(x, 2, g, be),
        nn.swish(nn.groupNorm(x, 2, g, be)),
        tf.sub(nn.groupNormSwish(x, 2, g, be, bias), nn.groupNormSwish(x, 2, g, be, tf.reshape(bias, [b, 1, 1, c]))),
      ];
    });
    // Same float32 ops up to the order of two roundings: 1e-6 absolute on O(1) values (~16 u).
    a!.forEach((v, i) => expect(Math.abs(v - bb![i]!)).toBeLessThan(1e-6 * (1 + Math.abs(v))));
    cc!.forEach((v) => expect(v).toBe(0));
  });
});

describe('nn.swish', () => {
  test('swish(x) = x·σ(x) = x/(1 + e^{−x}), and swish(x) − swish(−x) = x', () => {
    const xs = Array.from({ length: 41 }, (_, i) => -10 + i / 2);
    const [y, yNeg] = readScoped(() => {
      const x = tf.tensor1d(xs);
      return [nn.swish(x), nn.swish(tf.neg(x))];
    });
    xs.forEach((x, i) => {
      // float32 rounding of a value of size ≤ |x|: a few u·|x| (exp and the division round once each).
      swishLaw.lessThan(Math.abs(y![i]! - x / (1 + Math.exp(-x))), 8 * U32 * (1 + Math.abs(x)), 'x·σ(x)');
      swishLaw.lessThan(Math.abs(y![i]! - yNeg![i]! - x), 16 * U32 * (1 + Math.abs(x)), 'odd part');
    });
  });
});

describe('nn.swish gradient', () => {
  test("d swish/dx = σ(x)(1 + x(1 − σ(x))) (the analytic gradient), against autograd of x·σ(x) on cpu", async () => {
    const xs = Float32Array.from({ length: 81 }, (_, i) => -10 + i / 4);
    const [ours] = readScoped(() => [tf.grad((x: tf.Tensor) => tf.sum(nn.swish(x)))(tf.tensor1d(xs))]);
    const [ref] = await onCpu(() => readScoped(() => [tf.grad((x: tf.Tensor) => tf.sum(tf.mul(x, tf.sigmoid(x))))(tf.tensor1d(xs))]));
    // Both are O(1 + |x|) combinations of σ(x) and x computed in a handful of float32 ops: 16 u·(1 + |x|).
    xs.forEach((x, i) => {
      const exact = (1 / (1 + Math.exp(-x))) * (1 + x * (1 - 1 / (1 + Math.exp(-x))));
      swishGradient.lessThan(Math.abs(ours![i]! - ref![i]!), 16 * U32 * (1 + Math.abs(x)), 'autograd (cpu)');
      swishGradient.lessThan(Math.abs(ours![i]! - exact), 16 * U32 * (1 + Math.abs(x)), 'float64');
    });
  });
});

describe('nn.fourierFeatures', () => {
  test('shape [B, 2·|W|], and sin² + cos² = 1 for every (sample, frequency)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 16 }), fc.nat(1000), (b, half, seed) => {
        const [phi] = readScoped(() => {
          const t = random.uniform(random.key(seed), [b]);
          const W = tf.mul(random.normal(random.key(seed + 1), [half]), 30);
          const out = nn.fourierFeatures(t, W);
          expect(out.shape).toEqual([b, 2 * half]);
          return [out];
        });
        for (let i = 0; i < b; i++) {
          for (let j = 0; j < half; j++) {
            const [s, c] = [phi![i * 2 * half + j]!, phi![i * 2 * half + half + j]!];
            // sin and cos of the same float32 angle, each rounded: |s² + c² − 1| ≤ 2(|s| + |c|)·u + u² ≤ 4u·√2.
            fourier.lessThan(Math.abs(s * s + c * c - 1), 8 * U32);
          }
        }
      }),
      runs(20),
    );
  });

  test('φ(t) = [sin 2πWt, cos 2πWt] at a known point', () => {
    const [phi] = readScoped(() => [nn.fourierFeatures(tf.tensor1d([0.25]), tf.tensor1d([1, 0.5]))]);
    // 2π·1·0.25 = π/2, 2π·0.5·0.25 = π/4.
    const expected = [1, Math.SQRT1_2, 0, Math.SQRT1_2];
    phi!.forEach((v, i) => fourier.lessThan(Math.abs(v - expected[i]!), 1e-6));
  });
});

describe('batch invariance: sample b of a batch is bit-identical to the same sample computed alone', () => {
  // Needed to shard a batch over workers with per-sample keys without changing results (issue 6). On wasm,
  // conv2d (XNNPACK), Sum and the element-wise ops are per-sample deterministic; a batched matMul is not.
  const biasKeys = random.split(random.key(23), 5);
  const ops: ReadonlyArray<readonly [string, (x: tf.Tensor4D, samples: ReadonlyArray<number>) => tf.Tensor]> = [
    ['nn.conv2d', (x) => nn.conv2d(x, tf.tidy(() => random.normal(random.key(21), [3, 3, 8, 4])) as tf.Tensor4D, 2, 'valid')],
    ['nn.conv2dTranspose', (x) => nn.conv2dTranspose(x, tf.tidy(() => random.normal(random.key(22), [3, 3, 4, 8])) as tf.Tensor4D, [x.shape[0], 25, 25, 4], 2, 'valid')],
    ['nn.conv2dTranspose, stride 1, one output channel', (x) => nn.conv2dTranspose(x, tf.tidy(() => random.normal(random.key(24), [3, 3, 1, 8])) as tf.Tensor4D, [x.shape[0], 14, 14, 1], 1, 'valid')],
    ['nn.groupNorm', (x) => nn.groupNorm(x, 2, tf.ones([8]), tf.zeros([8]))],
    ['nn.groupNormSwish', (x, samples) => nn.groupNormSwish(x, 4, tf.ones([8]), tf.zeros([8]), random.normalPerSample(samples.map((i) => biasKeys[i]!), [8]))],
    ['nn.swish', (x) => nn.swish(x)],
  ];
  test.each(ops)('%s', (_name, op) => {
    const [batch, alone] = readScoped(() => {
      const x = random.normalPerSample(random.split(random.key(20), 5), [12, 12, 8]) as tf.Tensor4D;
      return [op(x, [0, 1, 2, 3, 4]), op(tf.slice(x, [2, 0, 0, 0], [1, 12, 12, 8]) as tf.Tensor4D, [2])];
    });
    const per = alone!.length;
    expect(Array.from(batch!.subarray(2 * per, 3 * per))).toEqual(Array.from(alone!));
  });
});
