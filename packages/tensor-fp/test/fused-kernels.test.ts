/**
 * The fused wasm kernels (fused-kernels.wat) against the same formulas in float64, from the same float32 inputs,
 * within float32 rounding bounds; and the whole fused GroupNorm + swish against the cpu backend at a ScoreNet shape.
 */
import { tf, initBackend, random, nn } from '@score-sde/tensor-fp';
import fc from 'fast-check';
import { FUSED_KERNELS, eulerUpdate, fusedKernelsReady, fusedNormalsApply, groupNormBackward, groupNormForward, heunStageWithError, langevinUpdate, normalsPerSample } from '../src/fused-kernels';
import { U32, gamma32, onCpu, readScoped, seededValues, worstExcess } from './helpers';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const sigmoid = (y: number): number => 1 / (1 + Math.exp(-y));

/** Values of shape [b, hw, c] from a key, N(offset, scale²), as float32. */
const draw = (seed: number, n: number, offset = 0, scale = 1): Float32Array => Float32Array.from(random.normalArray(random.key(seed), n), (z) => offset + scale * z);


test('the fused kernels are assembled and registered for wasm', () => {
  expect(fusedKernelsReady()).toBe(true);
  expect(FUSED_KERNELS.every((k) => tf.getKernel(k, 'wasm') !== undefined)).toBe(true);
});

/**
 * The kernels against float64 at a geometry [B, H, W, C] with G groups, x ~ N(offset, scale²): large groups (a loose
 * float32 bound) and tiny ones (n = 8 terms per group: a bound tight enough to catch a wrong constant).
 */
const geometries = [
  { B: 3, H: 5, W: 4, C: 8, groups: 2, offset: 0.5, spread: 2 },
  { B: 5, H: 2, W: 2, C: 8, groups: 4, offset: 1, spread: 1 },
] as const;

describe.each(geometries)('the GroupNorm kernels against float64 at $B×$H×$W×$C, $groups groups', ({ B, H, W, C, groups, offset, spread }) => {
  const HW = H * W;
  const at = (b: number, p: number, c: number): number => (b * HW + p) * C + c;
/** Float64 group normalisation of float32 inputs, as the module note of group-norm.ts writes it. */
const referenceOf = (B: number, HW: number, C: number, at: (b: number, p: number, c: number) => number) => (xv: Float32Array, gv: Float32Array, bv: Float32Array, biasv: Float32Array, groups: number, eps: number) => {
  const per = C / groups;
  const [mc, vc, mu, r, k] = [new Float64Array(B * C), new Float64Array(B * C), new Float64Array(B * groups), new Float64Array(B * C), new Float64Array(B * C)];
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let p = 0; p < HW; p++) s += xv[at(b, p, c)]!;
      mc[b * C + c] = s / HW;
      let q = 0;
      for (let p = 0; p < HW; p++) q += (xv[at(b, p, c)]! - mc[b * C + c]!) ** 2;
      vc[b * C + c] = q / HW;
    }
  for (let b = 0; b < B; b++)
    for (let g = 0; g < groups; g++) {
      const cs = Array.from({ length: per }, (_, j) => b * C + g * per + j);
      const m = cs.reduce((a, i) => a + mc[i]! + biasv[i]!, 0) / per;
      const v = cs.reduce((a, i) => a + vc[i]! + (mc[i]! + biasv[i]! - m) ** 2, 0) / per;
      mu[b * groups + g] = m;
      cs.forEach((i) => {
        r[i] = 1 / Math.sqrt(v + eps);
        k[i] = (biasv[i]! - m) * r[i]!;
      });
    }
  const y = Float64Array.from(xv, (x, i) => {
    const bc = Math.floor(i / (HW * C)) * C + (i % C);
    return gv[i % C]! * (x * r[bc]! + k[bc]!) + bv[i % C]!;
  });
  return { mc, vc, r, k, y };
};

  const eps = 1e-5;
  const xv = draw(2, B * HW * C, offset, spread);
  const gv = draw(3, C, 1, 0.5);
  const bv = draw(4, C, 0, 1);
  const biasv = draw(5, B * C);
  const dzv = draw(6, B * HW * C);
  const ref = referenceOf(B, HW, C, at)(xv, gv, bv, biasv, groups, eps);
  // Group sums of n = HW·C/G terms: the statistics are off by γ_n relative (Higham §3.1), which moves x̂ by
  // γ_n·(1 + |x|/σ); then a handful of roundings per element (y = x·scale + shift, σ(y) with e^x's polynomial ~1e-7):
  // the tolerance per unit of (1 + |value|) is 4γ_n(1 + max|x|/σ_min) + 16u.
  const n = (HW * C) / groups;
  const maxAbs = xv.reduce((m, v) => Math.max(m, Math.abs(v)), 0) + biasv.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const sigmaMin = Math.min(...Array.from(ref.r, (r) => 1 / r));
  const tol = 4 * gamma32(n) * (1 + maxAbs / sigmaMin) + 16 * U32;
  const scaleOf = (v: ArrayLike<number>): Float64Array => Float64Array.from(v, (u) => 1 + Math.abs(u));

  test.each([true, false])('forward (swish %s): z, mc, r, k, scale = γr, shift = γk + β', (swish) => {
    const [z, mc, r, k, scale, shift] = readScoped(() => {
      const f = groupNormForward(tf.tensor4d(xv, [B, H, W, C]), tf.tensor1d(gv), tf.tensor1d(bv), tf.tensor2d(biasv, [B, C]), groups, eps, swish);
      return [f.z, f.mc, f.r, f.k, f.scale, f.shift];
    });
    const zRef = Float64Array.from(ref.y, (y) => (swish ? y * sigmoid(y) : y));
    expect(worstExcess(z!, zRef, scaleOf(zRef), tol).excess).toBeLessThanOrEqual(0);
    // The channel means alone: a sum of HW terms, γ_HW relative to Σ|x|/HW ≤ max|x|.
    expect(worstExcess(mc!, ref.mc, Float64Array.from(ref.mc, () => maxAbs), gamma32(HW + 1)).excess).toBeLessThanOrEqual(0);
    const rel = Float64Array.from(ref.r, () => 1);
    expect(worstExcess(Float64Array.from(r!, (v, i) => v / ref.r[i]!), rel, rel, tol).excess).toBeLessThanOrEqual(0);
    expect(worstExcess(k!, ref.k, scaleOf(ref.k), tol).excess).toBeLessThanOrEqual(0);
    expect(worstExcess(scale!, Float64Array.from(ref.r, (v, i) => gv[i % C]! * v), scaleOf(ref.r), tol).excess).toBeLessThanOrEqual(0);
    expect(worstExcess(shift!, Float64Array.from(ref.k, (v, i) => gv[i % C]! * v + bv[i % C]!), scaleOf(ref.k), tol).excess).toBeLessThanOrEqual(0);
  });

  test.each([true, false])('backward (swish %s): dx = r(γdy − mean_g γdy − x̂ mean_g γdy·x̂), S1 = Σ dy, s2 = Σ dy·x̂, dbias = Σ dx', (swish) => {
    const [dx, s1, s2, dbias, mcv, rv, kv] = readScoped(() => {
      const x = tf.tensor4d(xv, [B, H, W, C]);
      const g = tf.tensor1d(gv);
      const f = groupNormForward(x, g, tf.tensor1d(bv), tf.tensor2d(biasv, [B, C]), groups, eps, swish);
      return [...groupNormBackward(tf.tensor4d(dzv, [B, H, W, C]), x, g, f, groups, swish), f.mc, f.r, f.k];
    });
    // float64 from the kernel's own float32 coefficients r, k (so only the backward pass is compared).
    const bc = (i: number): number => Math.floor(i / (HW * C)) * C + (i % C);
    const xhat = (i: number): number => xv[i]! * rv![bc(i)]! + kv![bc(i)]!;
    const dy = Float64Array.from(dzv, (d, i) => {
      if (!swish) return d;
      const y = gv[i % C]! * xhat(i) + bv[i % C]!;
      const sg = sigmoid(y);
      return d * (sg + y * sg * (1 - sg));
    });
    const [S1, S2, M1, M2] = [new Float64Array(B * C), new Float64Array(B * C), new Float64Array(B * groups), new Float64Array(B * groups)];
    dy.forEach((d, i) => {
      S1[bc(i)] = S1[bc(i)]! + d;
      S2[bc(i)] = S2[bc(i)]! + d * xhat(i);
    });
    const per = C / groups;
    for (let i = 0; i < B * C; i++) {
      const g = Math.floor(i / C) * groups + Math.floor((i % C) / per);
      M1[g] = M1[g]! + (gv[i % C]! * S1[i]!) / (per * HW);
      M2[g] = M2[g]! + (gv[i % C]! * S2[i]!) / (per * HW);
    }
    const grp = (i: number): number => Math.floor(i / (HW * C)) * groups + Math.floor((i % C) / per);
    const dxRef = Float64Array.from(dy, (d, i) => rv![bc(i)]! * (gv[i % C]! * d - M1[grp(i)]! - xhat(i) * M2[grp(i)]!));
    const dbiasRef = new Float64Array(B * C);
    dxRef.forEach((v, i) => (dbiasRef[bc(i)] = dbiasRef[bc(i)]! + v));
    // Sums of HW (dx: of n) float32 terms of magnitude ≤ max|dy|·(1 + |x̂|): γ_n of Σ|terms| per unit of scale.
    const mag = Float64Array.from(dy, (d, i) => Math.abs(d) * (1 + Math.abs(xhat(i))));
    const sumMag = new Float64Array(B * C);
    mag.forEach((m, i) => (sumMag[bc(i)] = sumMag[bc(i)]! + m));
    const t = gamma32(n + 8) * 4;
    expect(worstExcess(dx!, dxRef, Float64Array.from(dxRef, (_, i) => (1 + Math.abs(xhat(i))) * (sumMag[bc(i)]! / HW) * rv![bc(i)]! * 4 + Math.abs(dy[i]!) * rv![bc(i)]!), t).excess).toBeLessThanOrEqual(0);
    expect(worstExcess(s1!, S1, sumMag, t).excess).toBeLessThanOrEqual(0);
    expect(worstExcess(s2!, S2, sumMag, t).excess).toBeLessThanOrEqual(0);
    expect(worstExcess(dbias!, dbiasRef, Float64Array.from(sumMag, (m, i) => m * rv![i]! * 4), t).excess).toBeLessThanOrEqual(0);
    expect(mcv!.length).toBe(B * C);
  });
});

test('groupNormSwish at a ScoreNet shape ([4, 26, 26, 16], 4 groups) through the fused kernels = the cpu backend, value and gradients', async () => {
  const [b, h, w, c, groups] = [4, 26, 26, 16, 4];
  const k = random.split(random.key(30), 5);
  const xv = Float32Array.from(random.normalArray(k[0]!, b * h * w * c), (z) => 0.3 + 0.8 * z);
  const gv = Float32Array.from(random.normalArray(k[1]!, c), (z) => 1 + 0.1 * z);
  const bv = Float32Array.from(random.normalArray(k[2]!, c), (z) => 0.1 * z);
  const biasv = Float32Array.from(random.normalArray(k[3]!, b * c));
  const dv = Float32Array.from(random.normalArray(k[4]!, b * h * w * c));
  const run = () =>
    readScoped(() => {
      const [x, g, be, bias, dy] = [tf.tensor4d(xv, [b, h, w, c]), tf.tensor1d(gv), tf.tensor1d(bv), tf.tensor2d(biasv, [b, c]), tf.tensor4d(dv, [b, h, w, c])];
      const f = (u: tf.Tensor, v: tf.Tensor, z: tf.Tensor, q: tf.Tensor): tf.Tensor => nn.groupNormSwish(u as tf.Tensor4D, groups, v, z, q);
      const grads = tf.grads((u: tf.Tensor, v: tf.Tensor, z: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(f(u, v, z, q), dy)))([x, g, be, bias]);
      return [f(x, g, be, bias), ...grads];
    });
  const ours = run();
  const ref = await onCpu(run);
  // Group sums of n = h·w·C/G terms (σ ≈ 0.8, |x| ≤ 5): 8·γ_n·(1 + max|x|/σ) per unit of 1 + |value| (as nn.test.ts);
  // the parameter gradients sum over the batch and pixels too: n·B terms.
  const n = (h * w * c) / groups;
  const maxAbs = xv.reduce((m, v) => Math.max(m, Math.abs(v)), 0) + 3;
  const tol = [n, n, n * b, n * b, n].map((m) => 8 * gamma32(m) * (1 + maxAbs / 0.8));
  ours.forEach((o, i) => {
    const scale = Float64Array.from(ref[i]!, (v) => 1 + Math.abs(v));
    expect({ output: i, excess: Math.max(0, worstExcess(o, ref[i]!, scale, tol[i]!).excess) }).toEqual({ output: i, excess: 0 });
  });
});

describe('normals on the heap (normals_rows)', () => {
  test('the kernel ≡ random.normalsInto bit for bit, for any keys, batch sizes and sample sizes (multiples of 8)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff })), { minLength: 1, maxLength: 9 }), fc.integer({ min: 1, max: 40 }), (keys, m) => {
        const n = 8 * m;
        const [z] = readScoped(() => [normalsPerSample(keys, [n])]);
        const want = new Float32Array(keys.length * n);
        keys.forEach((k, b) => random.normalsInto(k, n, want, b * n));
        return Array.from(z!).every((v, i) => Object.is(v, want[i]));
      }),
      { seed: 5, numRuns: 60 },
    );
  });

  test('normalPerSample uses the kernel for sample sizes that are multiples of 8, and the JS loop otherwise, with the same values', () => {
    expect([fusedNormalsApply([28, 28, 1]), fusedNormalsApply([3, 3]), fusedNormalsApply([0])]).toEqual([true, false, false]);
    const keys = random.split(random.key(8), 3);
    const [a, b] = readScoped(() => [random.normalPerSample(keys, [2, 4]), random.normalPerSample(keys, [9])]);
    const want8 = new Float32Array(24);
    const want9 = new Float32Array(27);
    keys.forEach((k, i) => {
      random.normalsInto(k, 8, want8, 8 * i);
      random.normalsInto(k, 9, want9, 9 * i);
    });
    expect(Array.from(a!)).toEqual(Array.from(want8));
    expect(Array.from(b!)).toEqual(Array.from(want9));
  });

  const f = Math.fround;
  const keyArb = fc.tuple(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }));
  const scalar = fc.oneof(fc.double({ min: -1e3, max: 1e3, noNaN: true }), fc.constantFrom(0, -0, 1e-30, 3.3e38));

  test('x + c·z in one pass, z the normals of the keys (addNormalPerSample) = fround(x + fround(z·fround(c))) bit for bit, for any sample size (multiples of 8 by the kernel, others by tf ops) and special values in x', async () => {
    fc.assert(
      fc.property(fc.array(keyArb, { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 60 }), scalar, fc.boolean(), fc.nat(1000), (keys, n, c, special, seed) => {
        const x = seededValues(keys.length * n, seed, special);
        const [got] = readScoped(() => [random.addNormalPerSample(tf.tensor2d(x, [keys.length, n]), keys, c)]);
        const z = new Float32Array(keys.length * n);
        keys.forEach((k, b) => random.normalsInto(k, n, z, b * n));
        return Array.from(got!).every((v, i) => Object.is(v, f(x[i]! + f(z[i]! * f(c)))));
      }),
      { seed: 6, numRuns: 80 },
    );
    // the fused kernel served the sample sizes that are multiples of 8
    const x = tf.zeros([3, 16]);
    const info = await tf.profile(() => tf.tidy(() => random.addNormalPerSample(x, random.split(random.key(1), 3), 0.5)));
    x.dispose();
    expect(info.kernels.map((k) => k.name)).toEqual(['ScoreSdeNormals']);
  });

  test('eulerUpdate(x, y, a, b, h) = fround(x + fround(fround(fround(x·a) − fround(y·b))·h)) bit for bit (the Euler step of a linear drift), fused or by tf ops, special values in x and y', async () => {
    const [x, y] = [tf.ones([2, 8]), tf.ones([2, 8])];
    const info = await tf.profile(() => tf.tidy(() => eulerUpdate(x, y, 1, 2, 3)));
    tf.dispose([x, y]);
    // sizes that are multiples of 4: one fused pass
    expect(info.kernels.map((k) => k.name)).toEqual(['ScoreSdeEulerUpdate']);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), scalar, scalar, scalar, fc.boolean(), fc.nat(1000), (n, a, b, h, special, seed) => {
        const [x, y] = [seededValues(n, seed, special), seededValues(n, seed + 1, special)];
        const [got] = readScoped(() => [eulerUpdate(tf.tensor1d(x), tf.tensor1d(y), a, b, h)]);
        return Array.from(got!).every((v, i) => Object.is(v, f(x[i]! + f(f(f(x[i]! * f(a)) - f(y[i]! * f(b))) * f(h)))));
      }),
      { seed: 7, numRuns: 80 },
    );
  });

  test('eulerUpdate with noise {z, c} = fround(eulerUpdate(x, y, a, b, h) + fround(z·c)) bit for bit (an Euler–Maruyama step), fused or by tf ops', async () => {
    const [x, y, z] = [tf.ones([2, 8]), tf.ones([2, 8]), tf.ones([2, 8])];
    const info = await tf.profile(() => tf.tidy(() => eulerUpdate(x, y, 1, 2, 3, { z, c: 0.5 })));
    tf.dispose([x, y, z]);
    expect(info.kernels.map((k) => k.name)).toEqual(['ScoreSdeEulerUpdate']);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), scalar, scalar, scalar, scalar, fc.boolean(), fc.nat(1000), (n, a, b, h, c, special, seed) => {
        const [x, y, z] = [seededValues(n, seed, special), seededValues(n, seed + 1, special), seededValues(n, seed + 2, special)];
        const [got] = readScoped(() => [eulerUpdate(tf.tensor1d(x), tf.tensor1d(y), a, b, h, { z: tf.tensor1d(z), c })]);
        return Array.from(got!).every((v, i) => Object.is(v, f(f(x[i]! + f(f(f(x[i]! * f(a)) - f(y[i]! * f(b))) * f(h))) + f(z[i]! * f(c)))));
      }),
      { seed: 8, numRuns: 80 },
    );
  });

  /**
   * The improved-Euler stage of the adaptive Heun–Euler pair in float32, term by term, and its scaled RMS error with
   * the squares summed in index order: m₂ = x − (f₁ + f₂)·h, x₂ = m₂ + c·z, ε = √(Σ q² / n), q = (x₁ − x₂)/(atol + rtol·max(|x|, |x₂|)).
   */
  const heunReference = (x: Float32Array, y1: Float32Array, x1: Float32Array, y2: Float32Array, z: Float32Array | undefined, k: { a1: number; b1: number; a2: number; b2: number; h: number; c: number; rtol: number; atol: number }) => {
    const n = x.length;
    const [x2, m2] = [new Float32Array(n), new Float32Array(n)];
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const d1 = f(f(x[i]! * f(k.a1)) - f(y1[i]! * f(k.b1)));
      const d2 = f(f(x1[i]! * f(k.a2)) - f(y2[i]! * f(k.b2)));
      m2[i] = f(x[i]! - f(f(d1 + d2) * f(k.h)));
      x2[i] = z === undefined ? m2[i]! : f(m2[i]! + f(z[i]! * f(k.c)));
      const q = f(f(x1[i]! - x2[i]!) / f(f(k.atol) + f(Math.max(Math.abs(x[i]!), Math.abs(x2[i]!)) * f(k.rtol))));
      acc = f(acc + f(q * q));
    }
    return { x2, m2, err: f(Math.sqrt(f(acc / n))) };
  };

  test('heunStageWithError = m₂ = x − (f(x, y₁) + f(x₁, y₂))·h, x₂ = m₂ + c·z and ε = √(Σ q²/n), q = (x₁ − x₂)/(atol + rtol·max(|x|, |x₂|)), in float32 bit for bit, the squares summed in index order, fused or by tf ops', async () => {
    const ones = [0, 1, 2, 3, 4].map(() => tf.ones([2, 8]));
    const info = await tf.profile(() => {
      const r = heunStageWithError(ones[0]!, ones[1]!, ones[2]!, ones[3]!, ones[4]!, { a1: 1, b1: 2, a2: 3, b2: 4, h: 0.5, c: 0.1, rtol: 0.01, atol: 0.01 });
      tf.dispose([r.x2, r.m2]);
    });
    tf.dispose(ones);
    // sizes that are multiples of 4: one fused pass (and the read of its sum)
    expect(info.kernels.map((k) => k.name)).toEqual(['ScoreSdeHeunError']);
    const tol = fc.double({ min: 1e-6, max: 1, noNaN: true });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.tuple(scalar, scalar, scalar, scalar, scalar, scalar), tol, tol, fc.boolean(), fc.boolean(), fc.nat(1000), (n, [a1, b1, a2, b2, h, c], rtol, atol, noisy, special, seed) => {
        const [x, y1, x1, y2, z] = [0, 1, 2, 3, 4].map((k) => seededValues(n, seed + k, special)) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
        const k = { a1, b1, a2, b2, h, c, rtol, atol };
        const want = heunReference(x, y1, x1, y2, noisy ? z : undefined, k);
        const ts = [x, y1, x1, y2, z].map((v) => tf.tensor1d(v));
        const r = heunStageWithError(ts[0]!, ts[1]!, ts[2]!, ts[3]!, noisy ? ts[4] : undefined, k);
        const [x2, m2] = [r.x2.dataSync(), r.m2.dataSync()];
        tf.dispose([...ts, r.x2, r.m2]);
        return Object.is(r.err, want.err) && Array.from(x2).every((v, i) => Object.is(v, want.x2[i])) && Array.from(m2).every((v, i) => Object.is(v, want.m2[i]));
      }),
      { seed: 9, numRuns: 80 },
    );
    // a sampler's batch (64 MNIST images): 50,176 squares, where a summation order other than the index order shows
    const n = 64 * 784;
    const [x, y1, x1, y2, z] = [0, 1, 2, 3, 4].map((k) => draw(40 + k, n)) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
    const k = { a1: 0, b1: 0.37, a2: 0, b2: 0.29, h: 0.0125, c: 0.21, rtol: 0.01, atol: 0.01 };
    const want = heunReference(x, y1, x1, y2, z, k);
    const ts = [x, y1, x1, y2, z].map((v) => tf.tensor4d(v, [64, 28, 28, 1]));
    const r = heunStageWithError(ts[0]!, ts[1]!, ts[2]!, ts[3]!, ts[4], k);
    const x2 = r.x2.dataSync();
    tf.dispose([...ts, r.x2, r.m2]);
    expect(r.err).toBe(want.err);
    expect(Array.from(x2).every((v, i) => Object.is(v, want.x2[i]))).toBe(true);
  });

  /**
   * A Langevin step with the signal-to-noise rule in float32, term by term: row norms ‖v_b‖ = √(Σ v²) (squares added in
   * index order), ε = ((‖z‖/‖g‖)·r)²·2α per row or from the norms' means over the batch, x̄ = x + ε g, x' = x̄ + √(2ε) z.
   */
  const langevinReference = (x: Float32Array, g: Float32Array, z: Float32Array, B: number, o: { snr: number; twoAlpha: number; perSample: boolean }) => {
    const n = x.length / B;
    const norm = (v: Float32Array, b: number): number => {
      let acc = 0;
      for (let j = 0; j < n; j++) acc = f(acc + f(v[b * n + j]! * v[b * n + j]!));
      return f(Math.sqrt(acc));
    };
    const mean = (vs: number[]): number => f(vs.reduce((a, v) => f(a + v), 0) / B);
    const [nz, ng] = [Array.from({ length: B }, (_, b) => norm(z, b)), Array.from({ length: B }, (_, b) => norm(g, b))];
    const epsOf = (ratio: number): number => f(f(f(ratio * f(o.snr)) ** 2) * f(o.twoAlpha));
    const batchEps = epsOf(f(mean(nz) / mean(ng)));
    const [out, xm] = [new Float32Array(x.length), new Float32Array(x.length)];
    for (let b = 0; b < B; b++) {
      const e = o.perSample ? epsOf(f(nz[b]! / ng[b]!)) : batchEps;
      const d = f(Math.sqrt(f(e * 2)));
      for (let j = b * n; j < (b + 1) * n; j++) {
        xm[j] = f(x[j]! + f(e * g[j]!));
        out[j] = f(xm[j]! + f(d * z[j]!));
      }
    }
    return { out, xm };
  };

  test('langevinUpdate = x̄ = x + ε g, x\' = x̄ + √(2ε) z with ε = ((‖z‖/‖g‖)·r)²·2α per sample or from the batch means of the norms, in float32 bit for bit, the squares and norms summed in index order, fused or by tf ops', async () => {
    const ones = [0, 1, 2].map(() => tf.ones([2, 8]));
    const info = await tf.profile(() => tf.dispose([...langevinUpdate(ones[0]!, ones[1]!, ones[2]!, { snr: 0.16, twoAlpha: 2, perSample: false })]));
    tf.dispose(ones);
    expect(info.kernels.map((k) => k.name)).toEqual(['ScoreSdeLangevin']);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 40 }), fc.double({ min: 1e-3, max: 1, noNaN: true }), fc.double({ min: 0.5, max: 2, noNaN: true }), fc.boolean(), fc.boolean(), fc.nat(1000),
        (B, n, snr, twoAlpha, perSample, special, seed) => {
          const [x, g, z] = [0, 1, 2].map((k) => seededValues(B * n, seed + k, special)) as [Float32Array, Float32Array, Float32Array];
          const o = { snr, twoAlpha, perSample };
          const want = langevinReference(x, g, z, B, o);
          const [out, xm] = readScoped(() => langevinUpdate(tf.tensor2d(x, [B, n]), tf.tensor2d(g, [B, n]), tf.tensor2d(z, [B, n]), o));
          return Array.from(out!).every((v, i) => Object.is(v, want.out[i])) && Array.from(xm!).every((v, i) => Object.is(v, want.xm[i]));
        }),
      { seed: 10, numRuns: 80 },
    );
    // a sampler's batch (64 MNIST images), both step rules
    const [x, g, z] = [0, 1, 2].map((k) => draw(50 + k, 64 * 784)) as [Float32Array, Float32Array, Float32Array];
    for (const perSample of [false, true]) {
      const o = { snr: 0.16, twoAlpha: 2, perSample };
      const want = langevinReference(x, g, z, 64, o);
      const [out] = readScoped(() => langevinUpdate(tf.tensor4d(x, [64, 28, 28, 1]), tf.tensor4d(g, [64, 28, 28, 1]), tf.tensor4d(z, [64, 28, 28, 1]), o));
      expect(Array.from(out!).every((v, i) => Object.is(v, want.out[i]))).toBe(true);
    }
  });
});
