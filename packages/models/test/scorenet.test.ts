import * as E from 'fp-ts/Either';
import { fc } from '@fast-check/jest';
import { tf, random, codec, initBackend, leakedBy } from '@score-sde/tensor-fp';
import {
  ScoreNetConfig,
  scoreNetConfig,
  tutorialScoreNetConfig,
  scoreNetSpec,
  parameterCount,
  initScoreNet,
  scoreNet,
  groupCounts,
  sizeOfShape,
  disposeRecord,
} from '../src';
import { maxAbs, maxAbsDiff, U32 } from './helpers';
import { runs } from '@score-sde/tensor-fp/testing';

/** γ_n = n·u/(1 − n·u): relative error bound of a float32 sum of n products (Higham §3.1). */
const gamma = (n: number): number => (n * U32) / (1 - n * U32);

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

/**
 * The parameter count of the tutorial's PyTorch ScoreNet, written out layer by layer from its __init__
 * (independently of `scoreNetSpec`): Linear(e,e); conv_i 3×3 no bias; Dense_i = Linear(e, C) ×7;
 * GroupNorm affine 2C ×7; ConvTranspose2d 3×3 no bias ×3; tconv1 with bias.
 */
const torchCount = ([c1, c2, c3, c4]: readonly [number, number, number, number], e: number): number =>
  e * e + e +
  9 * (1 * c1 + c1 * c2 + c2 * c3 + c3 * c4) +
  [c1, c2, c3, c4, c3, c2, c1].reduce((n, c) => n + e * c + c, 0) +
  2 * (c1 + c2 + c3 + c4 + c3 + c2 + c1) +
  9 * (c4 * c3 + 2 * c3 * c2 + 2 * c2 * c1 + 2 * c1 * 1) + 1;

const tiny = scoreNetConfig({ channels: [8, 16, 16, 16], embedDim: 32 });

describe('ScoreNet parameters', () => {
  test('the tutorial network has 1,115,297 trainable parameters (+128 fixed Fourier frequencies), as its PyTorch layers add up', () => {
    expect(torchCount([32, 64, 128, 256], 256)).toBe(1115297);
    expect(parameterCount(tutorialScoreNetConfig)).toBe(1115297);
    expect(parameterCount(tutorialScoreNetConfig, true)).toBe(1115297 + 128);
    process.stdout.write(`[models] tutorial ScoreNet: ${parameterCount(tutorialScoreNetConfig).toLocaleString('en')} trainable parameters\n`);
  });

  test('parameterCount(config) = the layer-by-layer PyTorch count for any channels and embedding size', () => {
    fc.assert(
      fc.property(fc.tuple(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 })), fc.integer({ min: 1, max: 64 }), (ch, half) => {
        expect(parameterCount(scoreNetConfig({ channels: ch, embedDim: 2 * half }))).toBe(torchCount(ch, 2 * half));
      }),
      runs(50),
    );
  });

  test('initScoreNet creates one variable per spec with the spec shape; the trainable ones add up to parameterCount', () => {
    const p = initScoreNet(tiny, random.key(1));
    const specs = scoreNetSpec(tiny);
    expect(Object.keys(p)).toEqual(specs.map((s) => s.name));
    specs.forEach((s) => expect(p[s.name]!.shape).toEqual(s.shape));
    const trainable = Object.values(p).filter((v) => v.trainable).reduce((n, v) => n + sizeOfShape(v.shape), 0);
    expect(trainable).toBe(parameterCount(tiny));
    expect(p['embed.W']!.trainable).toBe(false);
    disposeRecord(p);
  });

  test('initialisation matches PyTorch defaults: |w| ≤ 1/√fan_in, std(w) = bound/√3, GroupNorm γ = 1, β = 0, W ~ N(0, 30²)', () => {
    const p = initScoreNet(tutorialScoreNetConfig, random.key(7));
    // conv4: HWIO [3,3,128,256], fan_in = 128·9; tconv4: [3,3,128(out),256(in)], PyTorch fan_in = out·9 = 128·9.
    for (const [name, fanIn] of [['conv4.weight', 128 * 9], ['tconv4.weight', 128 * 9], ['dense4.weight', 256], ['embed.dense.bias', 256]] as const) {
      const w = Float32Array.from(p[name]!.dataSync());
      const b = 1 / Math.sqrt(fanIn);
      expect(maxAbs(p[name]!)).toBeLessThanOrEqual(b);
      const n = w.length;
      const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / n);
      // U(−b, b) has variance b²/3 and fourth moment b⁴/5, so the sample variance has SE √((b⁴/5 − b⁴/9)/n);
      // 5 SE of the variance, converted to the std by d√v = dv/(2√v).
      const seVar = Math.sqrt((b ** 4 / 5 - b ** 4 / 9) / n);
      expect(Math.abs(std - b / Math.sqrt(3))).toBeLessThan((5 * seVar) / (2 * (b / Math.sqrt(3))));
    }
    expect(Array.from(p['gnorm2.gamma']!.dataSync()).every((v) => v === 1)).toBe(true);
    expect(Array.from(p['tgnorm3.beta']!.dataSync()).every((v) => v === 0)).toBe(true);
    const W = Array.from(p['embed.W']!.dataSync());
    const sW = Math.sqrt(W.reduce((a, v) => a + v * v, 0) / W.length);
    // Sample std of n = 128 normals: SE ≈ σ/√(2n) = 30/16; 5 SE.
    expect(Math.abs(sW - 30)).toBeLessThan((5 * 30) / Math.sqrt(2 * W.length));
    disposeRecord(p);
  });

  test('the same key gives bit-identical parameters; another key different ones', () => {
    const a = initScoreNet(tiny, random.key(3));
    const b = initScoreNet(tiny, random.key(3));
    const c = initScoreNet(tiny, random.key(4));
    expect(Array.from(a['conv2.weight']!.dataSync())).toEqual(Array.from(b['conv2.weight']!.dataSync()));
    expect(Array.from(a['conv2.weight']!.dataSync())).not.toEqual(Array.from(c['conv2.weight']!.dataSync()));
    [a, b, c].forEach(disposeRecord);
  });

  test('GroupNorm group counts are the tutorial ones (4,32,32,32 / 32,32,32), reduced to divide narrower channels', () => {
    expect(groupCounts(tutorialScoreNetConfig)).toEqual({ enc: [4, 32, 32, 32], dec: [32, 32, 32] });
    expect(groupCounts(tiny)).toEqual({ enc: [4, 16, 16, 16], dec: [16, 16, 8] });
    fc.assert(
      fc.property(fc.tuple(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 300 })), (ch) => {
        const g = groupCounts(scoreNetConfig({ channels: ch }));
        g.enc.forEach((k, i) => expect(ch[i]! % k).toBe(0));
        [ch[2], ch[1], ch[0]].forEach((c, i) => expect(c! % g.dec[i]!).toBe(0));
      }),
      runs(50),
    );
  });
});

describe('ScoreNet config codec', () => {
  const decode = codec.decodeWith(ScoreNetConfig);

  test('decodes the tutorial config and rejects unknown keys, odd embedDim and a wrong channel list, naming the field', () => {
    expect(decode({ channels: [32, 64, 128, 256], embedDim: 256, fourierScale: 30 })).toEqual(E.right(tutorialScoreNetConfig));
    const unknown = decode({ ...tutorialScoreNetConfig, chanels: [1, 2, 3, 4] });
    expect(E.isLeft(unknown) && unknown.left.problems).toEqual(['chanels: unknown key']);
    const odd = decode({ ...tutorialScoreNetConfig, embedDim: 33 });
    expect(E.isLeft(odd) && odd.left.problems.join()).toMatch(/embedDim: must be even/);
    const three = decode({ ...tutorialScoreNetConfig, channels: [32, 64, 128] });
    expect(E.isLeft(three) && three.left.problems.join()).toMatch(/channels\.3: expected PositiveInt, got undefined/);
    const neg = decode({ ...tutorialScoreNetConfig, fourierScale: -1 });
    expect(E.isLeft(neg) && neg.left.problems).toEqual(['fourierScale: expected PositiveFinite, got -1']);
  });
});

describe('ScoreNet forward', () => {
  test('the tutorial network maps x [B,28,28,1], t [B] to [B,28,28,1] (finite) and leaks no tensor', () => {
    const p = initScoreNet(tutorialScoreNetConfig, random.key(0));
    const x = random.uniform(random.key(1), [2, 28, 28, 1]);
    const t = tf.tensor1d([0.3, 0.9]);
    const leaked = leakedBy(() => {
      const y = scoreNet(tutorialScoreNetConfig, p)(x, t);
      expect(y.shape).toEqual([2, 28, 28, 1]);
      expect(y.dataSync().every(Number.isFinite)).toBe(true);
      return y;
    });
    expect(leaked).toBe(0);
    tf.dispose([x, t]);
    disposeRecord(p);
  });

  test('a narrow network (channels [8,16,16,16], embedding 32) has the same interface', () => {
    const p = initScoreNet(tiny, random.key(0));
    const x = random.uniform(random.key(1), [3, 28, 28, 1]);
    const t = tf.tensor1d([0.1, 0.5, 1]);
    const y = scoreNet(tiny, p)(x, t);
    expect(y.shape).toEqual([3, 28, 28, 1]);
    tf.dispose([x, t, y]);
    disposeRecord(p);
  });

  test('samples do not interact: net(x, t)_b = net(x_b, t_b) (GroupNorm normalises each sample on its own)', () => {
    const p = initScoreNet(tiny, random.key(5));
    const x = random.uniform(random.key(6), [3, 28, 28, 1]);
    const ts = [0.05, 0.4, 0.95];
    const y = scoreNet(tiny, p)(x, tf.tensor1d(ts));
    for (let b = 0; b < 3; b++) {
      const xb = tf.slice(x, [b, 0, 0, 0], [1, 28, 28, 1]);
      const yb = scoreNet(tiny, p)(xb, tf.tensor1d([ts[b]!]));
      const rowB = tf.slice(y, [b, 0, 0, 0], [1, 28, 28, 1]);
      // The only difference is the summation order inside batched kernels; float32 rounding of O(10) layers of
      // sums of ≤ 9·32 terms of unit scale: a relative 10·288·u ≈ 2e-4 of the output scale bounds it.
      expect(maxAbsDiff(yb, rowB)).toBeLessThanOrEqual(10 * 288 * U32 * Math.max(1, maxAbs(rowB)));
      tf.dispose([xb, yb, rowB]);
    }
    tf.dispose([x, y]);
    disposeRecord(p);
  });
});

describe('ScoreNet fast path = plain tfjs ops on cpu', () => {
  /**
   * The tutorial forward written with tfjs' own ops only (tf.conv2d, tf.conv2dTranspose, GroupNorm as 5-D reshape →
   * moments → normalise → affine, swish = x·σ(x), the time bias added before GroupNorm), to run on the cpu backend.
   */
  const plainNet = (config: ScoreNetConfig, p: Record<string, tf.Tensor>) => (x: tf.Tensor4D, t: tf.Tensor1D): tf.Tensor => {
    const g = groupCounts(config);
    const [c1, c2, c3] = config.channels;
    const swish = (u: tf.Tensor) => tf.mul(u, tf.sigmoid(u));
    const lin = (u: tf.Tensor, n: string) => tf.add(tf.matMul(u as tf.Tensor2D, p[`${n}.weight`] as tf.Tensor2D), p[`${n}.bias`]!);
    const gn = (u: tf.Tensor4D, groups: number, n: string) => {
      const [b, h, w, c] = u.shape;
      const r = tf.reshape(u, [b, h, w, groups, c / groups]);
      const { mean, variance } = tf.moments(r, [1, 2, 4], true);
      const xh = tf.reshape(tf.div(tf.sub(r, mean), tf.sqrt(tf.add(variance, 1e-5))), [b, h, w, c]);
      return tf.add(tf.mul(xh, p[`${n}.gamma`]!), p[`${n}.beta`]!);
    };
    const proj = tf.mul(tf.reshape(t, [-1, 1]), tf.mul(tf.reshape(p['embed.W']!, [1, -1]), 2 * Math.PI));
    const embed = swish(lin(tf.concat([tf.sin(proj), tf.cos(proj)], 1), 'embed.dense'));
    const block = (u: tf.Tensor4D, dense: string, norm: string, groups: number) => {
      const bias = lin(embed, dense);
      return swish(gn(tf.add(u, tf.reshape(bias, [bias.shape[0]!, 1, 1, bias.shape[1]!])) as tf.Tensor4D, groups, norm)) as tf.Tensor4D;
    };
    const w = (n: string) => p[`${n}.weight`] as tf.Tensor4D;
    const like = (u: tf.Tensor4D, c: number): [number, number, number, number] => [u.shape[0], u.shape[1], u.shape[2], c];
    const h1 = block(tf.conv2d(x, w('conv1'), 1, 'valid'), 'dense1', 'gnorm1', g.enc[0]!);
    const h2 = block(tf.conv2d(h1, w('conv2'), 2, 'valid'), 'dense2', 'gnorm2', g.enc[1]!);
    const h3 = block(tf.conv2d(h2, w('conv3'), 2, 'valid'), 'dense3', 'gnorm3', g.enc[2]!);
    const h4 = block(tf.conv2d(h3, w('conv4'), 2, 'valid'), 'dense4', 'gnorm4', g.enc[3]!);
    const d4 = block(tf.conv2dTranspose(h4, w('tconv4'), like(h3, c3), 2, 'valid'), 'dense5', 'tgnorm4', g.dec[0]!);
    const d3 = block(tf.conv2dTranspose(tf.concat([d4, h3], 3), w('tconv3'), like(h2, c2), 2, 'valid'), 'dense6', 'tgnorm3', g.dec[1]!);
    const d2 = block(tf.conv2dTranspose(tf.concat([d3, h2], 3), w('tconv2'), like(h1, c1), 2, 'valid'), 'dense7', 'tgnorm2', g.dec[2]!);
    return tf.add(tf.conv2dTranspose(tf.concat([d2, h1], 3), w('tconv1'), like(x, 1), 1, 'valid'), p['tconv1.bias']!);
  };

  test('value and ∂(Σ net·r)/∂θ for every parameter equal the plain ops on cpu within the float32 rounding of ~10 layers', async () => {
    const specs = scoreNetSpec(tiny);
    const values = Object.fromEntries(specs.map((s, i) => [s.name, Float32Array.from(random.normalArray(random.key(100 + i), sizeOfShape(s.shape)), (v) => v * (s.name.endsWith('gamma') ? 0.2 : 0.3) + (s.name.endsWith('gamma') ? 1 : 0))]));
    const xv = Float32Array.from(random.uniformArray(random.key(7), 2 * 28 * 28));
    const rv = Float32Array.from(random.normalArray(random.key(8), 2 * 28 * 28));
    const ts = [0.1, 0.7];
    const names = specs.filter((s) => s.trainable).map((s) => s.name);
    // L(θ) = Σ net(x, t)·r: its gradient is the vector-Jacobian product with a random cotangent r.
    const run = (net: (p: Record<string, tf.Tensor>) => (x: tf.Tensor4D, t: tf.Tensor1D) => tf.Tensor): Float64Array[] => {
      const ps = Object.fromEntries(specs.map((s) => [s.name, tf.tensor(values[s.name]!, [...s.shape])]));
      const x = tf.tensor4d(xv, [2, 28, 28, 1]);
      const r = tf.tensor4d(rv, [2, 28, 28, 1]);
      const t = tf.tensor1d(ts);
      const out = tf.tidy(() => {
        const f = (...args: tf.Tensor[]) => tf.sum(tf.mul(net({ ...ps, ...Object.fromEntries(names.map((n, i) => [n, args[i]!])) })(x, t), r));
        return [net(ps)(x, t), ...tf.grads(f)(names.map((n) => ps[n]!))];
      });
      const arrays = out.map((o) => Float64Array.from(o.dataSync()));
      tf.dispose([...out, ...Object.values(ps), x, r, t]);
      return arrays;
    };
    const ours = run((p) => (x, t) => scoreNet(tiny, p)(x, t));
    await initBackend({ prefer: 'cpu', quiet: true });
    const ref = run((p) => plainNet(tiny, p));
    await initBackend({ prefer: 'wasm', quiet: true });
    const inf = (a: Float64Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const gradScale = Math.max(...ref.slice(1).map(inf));
    // Each layer's outputs are float32 sums of ≤ n = 9·32 = 288 products, computed in another order here (and GN's
    // statistics by another formula): ≤ 2γ_n relative per layer; ~10 layers (forward, and again backward) compound
    // to ≤ 20·2γ_n ≈ 7e-4 of the scale. Gradients that are exactly zero in exact arithmetic (the time bias before a
    // GroupNorm with one channel per group is normalised away) are compared against 1e-3 of the largest gradient.
    const tol = 20 * 2 * gamma(288);
    ref.forEach((want, i) => {
      const scale = i === 0 ? inf(want) : Math.max(inf(want), 1e-3 * gradScale);
      let worst = 0;
      want.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - ours[i]![j]!))));
      expect({ what: i === 0 ? 'value' : names[i - 1], ok: worst <= tol * scale }).toEqual({ what: i === 0 ? 'value' : names[i - 1], ok: true });
    });
  });
});
