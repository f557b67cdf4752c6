/**
 * `Conv2D` on wasm by the fused module (`conv_forward`, served where the kernel thread runs): every output is the float32
 * sum over the taps inside x in the order p, q, c from +0, each product and sum rounded —
 *   y[b, i, j, o] = (((0 + x̄₀f₀) + x̄₁f₁) + …),  x̄ = x padded by (top, left), taps outside x skipped —
 * which is also the bits of XNNPACK's convolution it replaces (with 'valid' and explicit padding; XNNPACK's own 'same'
 * returns zeros at some geometries, where this kernel gives the sum), at any geometry, strides 1–3, channel counts that are not multiples of 4 on the input side, 4–44 outputs), with special values in x.
 * This file opts in to the threaded build (the kernel is served only beside the kernel thread) and splits every call.
 * The same for matrix products too large for the single-threaded `matmul_seq` (split by rows), and for a strided
 * transposed conv, whose s² sub-pixel phases the same micro-kernels sum and store straight into their interleaved places.
 */
import fc from 'fast-check';
import { tf, initBackend } from '@score-sde/tensor-fp';
import { transposeByPhases, conv2dOutputShape, type Padding, type Shape4 } from '../src/conv';
import { KERNEL_THREAD_MIN_WORK, configureFusedOverrides, configureKernelThread, kernelThreadStatus, startKernelThread } from '../src/fused-kernels';
import '../src/fused-thread';
import { canonicalNaN, firstDifference, float32Bits as bits, seededValues as valuesOf, useThreadedBuild } from './helpers';

useThreadedBuild();

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  expect(await startKernelThread()).toBe(true);
});

afterEach(() => {
  configureFusedOverrides({ enabled: true });
  configureKernelThread({ enabled: true, adaptive: true, minWork: KERNEL_THREAD_MIN_WORK });
});

type Pad = 'valid' | 'same' | [[0, 0], [number, number], [number, number], [0, 0]];
interface Geometry {
  readonly b: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
  readonly o: number;
  readonly kh: number;
  readonly kw: number;
  readonly s: number;
  readonly pad: Pad;
  readonly special: boolean;
  readonly seed: number;
}

/** The reference: the in-order float32 sum over the taps inside x (tfjs' padding arithmetic for the output size). */
const sequentialConv = (g: Geometry, x: Float32Array, f: Float32Array): Float32Array => {
  const info = tf.backend_util.computeConv2DInfo([g.b, g.h, g.w, g.c], [g.kh, g.kw, g.c, g.o], [g.s, g.s], [1, 1], g.pad);
  const { outHeight: ho, outWidth: wo } = info;
  const { top, left } = info.padInfo;
  const out = new Float32Array(g.b * ho * wo * g.o);
  for (let b = 0; b < g.b; b++)
    for (let i = 0; i < ho; i++)
      for (let j = 0; j < wo; j++)
        for (let o = 0; o < g.o; o++) {
          let acc = 0;
          for (let p = 0; p < g.kh; p++) {
            const r = g.s * i + p - top;
            if (r < 0 || r >= g.h) continue;
            for (let q = 0; q < g.kw; q++) {
              const col = g.s * j + q - left;
              if (col < 0 || col >= g.w) continue;
              for (let c = 0; c < g.c; c++) acc = Math.fround(acc + Math.fround(x[((b * g.h + r) * g.w + col) * g.c + c]! * f[((p * g.kw + q) * g.c + c) * g.o + o]!));
            }
          }
          out[((b * ho + i) * wo + j) * g.o + o] = acc;
        }
  return out;
};

const padding = fc.oneof(
  fc.constant<Pad>('valid'),
  fc.constant<Pad>('same'),
  fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.nat(3)).map(([t, bo, l, r]): Pad => [[0, 0], [t, bo], [l, r], [0, 0]]),
);
const geometry: fc.Arbitrary<Geometry> = fc
  .record({
    b: fc.integer({ min: 1, max: 5 }),
    h: fc.integer({ min: 1, max: 11 }),
    w: fc.integer({ min: 1, max: 11 }),
    c: fc.integer({ min: 1, max: 37 }),
    o: fc.integer({ min: 1, max: 11 }).map((n) => 4 * n),
    kh: fc.integer({ min: 1, max: 4 }),
    kw: fc.integer({ min: 1, max: 4 }),
    s: fc.integer({ min: 1, max: 3 }),
    pad: padding,
    special: fc.boolean(),
    seed: fc.nat(1000),
  })
  // tfjs needs an output of at least one pixel; 'valid' needs the filter inside the (padded) input
  .filter((g) => {
    const info = tf.backend_util.computeConv2DInfo([g.b, g.h, g.w, g.c], [g.kh, g.kw, g.c, g.o], [g.s, g.s], [1, 1], g.pad);
    return info.outHeight > 0 && info.outWidth > 0;
  });

const convBits = (g: Geometry): number[] =>
  tf.tidy(() => {
    const x = tf.tensor4d(valuesOf(g.b * g.h * g.w * g.c, g.seed, g.special), [g.b, g.h, g.w, g.c]);
    const f = tf.tensor4d(valuesOf(g.kh * g.kw * g.c * g.o, g.seed + 1, false), [g.kh, g.kw, g.c, g.o]);
    return canonicalNaN(bits(tf.conv2d(x, f, g.s, g.pad).dataSync()));
  });

test('conv2d has the bits of the in-order float32 sum over (p, q, c) and of the XNNPACK kernel it replaces (any geometry and padding, special values in x)', () => {
  const cases = fc.sample(geometry, { numRuns: 150, seed: 11 });
  configureKernelThread({ adaptive: false, minWork: { conv: 0 } });
  const before = kernelThreadStatus().splitCalls;
  const ours = cases.map(convBits);
  // the calls with two or more images were split between the threads
  expect(kernelThreadStatus().splitCalls - before).toBe(cases.filter((g) => g.b >= 2).length);
  configureFusedOverrides({ enabled: false });
  const theirs = cases.map(convBits);
  cases.forEach((g, i) => {
    const want = canonicalNaN(bits(sequentialConv(g, valuesOf(g.b * g.h * g.w * g.c, g.seed, g.special), valuesOf(g.kh * g.kw * g.c * g.o, g.seed + 1, false))));
    expect([g, ours[i]]).toEqual([g, want]);
    // XNNPACK's own 'same' (its TF-SAME flag) returns zeros at some geometries (conv.ts passes explicit paddings instead)
    if (g.pad !== 'same') expect([g, ours[i]]).toEqual([g, theirs[i]]);
  });
});

test("the ScoreNet's convolutions (batch 64) give the same bits on one thread and split over two, and XNNPACK's", () => {
  const layers: ReadonlyArray<Geometry> = [
    { b: 64, h: 28, w: 28, c: 1, o: 16, kh: 3, kw: 3, s: 1, pad: 'valid', special: false, seed: 1 },
    { b: 64, h: 26, w: 26, c: 16, o: 32, kh: 3, kw: 3, s: 2, pad: 'valid', special: false, seed: 2 },
    { b: 64, h: 5, w: 5, c: 64, o: 128, kh: 3, kw: 3, s: 2, pad: 'valid', special: false, seed: 3 },
    { b: 64, h: 2, w: 2, c: 128, o: 64, kh: 2, kw: 2, s: 1, pad: [[0, 0], [1, 1], [1, 1], [0, 0]], special: false, seed: 4 },
  ];
  configureKernelThread({ adaptive: false, minWork: { conv: Number.MAX_SAFE_INTEGER } });
  const one = layers.map(convBits);
  configureKernelThread({ adaptive: false, minWork: { conv: 0 } });
  const before = kernelThreadStatus().splitCalls;
  const two = layers.map(convBits);
  expect(kernelThreadStatus().splitCalls - before).toBe(layers.length);
  configureFusedOverrides({ enabled: false });
  const theirs = layers.map(convBits);
  expect(layers.map((_, i) => [firstDifference(two[i]!, one[i]!), firstDifference(two[i]!, theirs[i]!)])).toEqual(layers.map(() => [-1, -1]));
});

interface TransposeGeometry {
  readonly z: Shape4;
  readonly kh: number;
  readonly kw: number;
  readonly cx: number;
  readonly s: number;
  readonly pad: Padding;
  readonly special: boolean;
  readonly seed: number;
}

const transposeGeometry: fc.Arbitrary<TransposeGeometry> = fc
  .record({
    z: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 5 }).map((n) => 4 * n)),
    kh: fc.integer({ min: 1, max: 4 }),
    kw: fc.integer({ min: 1, max: 4 }),
    cx: fc.integer({ min: 1, max: 21 }),
    s: fc.integer({ min: 1, max: 3 }),
    pad: fc.constantFrom<Padding>('valid', 'same'),
    special: fc.boolean(),
    seed: fc.nat(1000),
  })
  // x is what a conv of z with this filter gives: at least one pixel
  .filter((g) => conv2dOutputShape(g.z, [g.kh, g.kw, g.z[3], g.cx], g.s, g.pad).every((n) => n > 0));

/** The transposed conv's output bits, and the kernels that ran. */
const transposeBits = async (g: TransposeGeometry): Promise<[number[], string[]]> => {
  const xs = conv2dOutputShape(g.z, [g.kh, g.kw, g.z[3], g.cx], g.s, g.pad);
  const x = tf.tensor4d(valuesOf(xs[0] * xs[1] * xs[2] * xs[3], g.seed, g.special), [...xs]);
  const f = tf.tensor4d(valuesOf(g.kh * g.kw * g.z[3] * g.cx, g.seed + 1, false), [g.kh, g.kw, g.z[3], g.cx]);
  let out: number[] = [];
  const info = await tf.profile(() => {
    const z = transposeByPhases(x, f, g.z, g.s, g.pad);
    out = canonicalNaN(bits(z.dataSync()));
    z.dispose();
  });
  tf.dispose([x, f]);
  return [out, info.kernels.map((k) => k.name)];
};

test('a strided transposed conv in one kernel, each sub-pixel phase stored in place, has the bits of its phase convs interleaved (any stride, filter, padding, size; special values in x)', async () => {
  const cases = fc.sample(transposeGeometry, { numRuns: 120, seed: 12 });
  configureKernelThread({ adaptive: false, minWork: { conv: 0 } });
  const split = await Promise.all(cases.map(transposeBits));
  configureKernelThread({ adaptive: false, minWork: { conv: Number.MAX_SAFE_INTEGER } });
  const one = await Promise.all(cases.map(transposeBits));
  // the previous composition: a Conv2D per phase (XNNPACK's, the bits conv_forward has) and the interleaving kernel
  configureFusedOverrides({ enabled: false });
  const phases = await Promise.all(cases.map(transposeBits));
  cases.forEach((g, i) => {
    expect(split[i]![1]).toContain('ScoreSdeTransposeConv');
    expect(split[i]![1]).not.toContain('ScoreSdeInterleavePhases');
    expect(phases[i]![1]).not.toContain('ScoreSdeTransposeConv');
    expect([g, firstDifference(split[i]![0], phases[i]![0]), firstDifference(one[i]![0], phases[i]![0])]).toEqual([g, -1, -1]);
  });
});

test('a·b beyond the single-threaded size is split by rows between the threads, with the bits of XNNPACK (transposed operands, column counts that are not multiples of 16)', () => {
  const cases = [
    { m: 4000, k: 32, n: 9, transposeA: false },
    { m: 1601, k: 288, n: 21, transposeA: true },
    { m: 577, k: 256, n: 128, transposeA: true },
  ];
  configureKernelThread({ adaptive: false, minWork: { matmul: 0 } });
  const product = (c: (typeof cases)[number]): number[] =>
    tf.tidy(() => {
      const a = valuesOf(c.m * c.k, c.m, false);
      const b = tf.tensor2d(valuesOf(c.k * c.n, c.n, false), [c.k, c.n]);
      return bits(tf.matMul(tf.tensor2d(a, c.transposeA ? [c.k, c.m] : [c.m, c.k]), b, c.transposeA, false).dataSync());
    });
  const before = kernelThreadStatus().splitCalls;
  const ours = cases.map(product);
  expect(kernelThreadStatus().splitCalls - before).toBe(cases.length);
  configureFusedOverrides({ enabled: false });
  const theirs = cases.map(product);
  expect(cases.map((c, i) => [c, firstDifference(ours[i]!, theirs[i]!)])).toEqual(cases.map((c) => [c, -1]));
});
