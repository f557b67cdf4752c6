/**
 * The plain-conv kernels of `conv.ts` (sub-pixel transposed convs, dilated filter gradients, lazy custom
 * gradients) against tfjs' own ops on the `cpu` backend: values and gradients w.r.t. input and filter.
 *
 * Tolerance: every compared number is a float32 sum of n products of the same float32 inputs, computed in two
 * different orders. Each computed sum is within γ_n·Σ|aᵢbᵢ| of the exact one (γ_n = n·u/(1 − n·u), u = 2⁻²⁴,
 * Higham §3.1, any order, FMA or not), so the two agree within 2γ_n·Σ|aᵢbᵢ|. Σ|aᵢbᵢ| is computed exactly as the
 * same op applied to |a| and |b| (on cpu). A wrong index drops or adds whole terms, O(|aᵢbᵢ|) ≫ 2γ_n·Σ|aᵢbᵢ| at
 * these sizes.
 */
import fc from 'fast-check';
import { tf, initBackend, random, conv, nn, customGradLazy, leakedBy, fused, type Key } from '@score-sde/tensor-fp';
import { identity, type Identity, runs } from '@score-sde/tensor-fp/testing';
import { gamma32, onCpu, readScoped } from './helpers';

const ROUNDING =
  'each compared number is a float32 sum of n products of the same inputs in two orders, each within γ_n Σ|aᵢbᵢ| of the exact sum (γ_n = nu/(1 − nu), u = 2⁻²⁴; Higham 2002, §3.1): 2γ_n(1 + γ_n) Σ|aᵢbᵢ| elementwise, with Σ|aᵢbᵢ| the same op on |a|, |b|. A wrong index moves whole terms, far above it';

const convRounding = identity({
  concept: 'kernels',
  title: 'Convolutions equal the tfjs reference',
  formula: String.raw`$\mathrm{conv2d},\ \mathrm{conv2dTranspose}$ and their $\partial/\partial x,\ \partial/\partial f$ (ours, wasm) $=$ tf.conv2d, tf.conv2dTranspose (cpu)`,
  source: 'the same bilinear maps computed by other kernels (sub-pixel transposed convs, matMul + overlap-add, dilated filter gradients); the tutorial ScoreNet geometries and random ones',
  tolerance: ROUNDING,
});

const filterGradient = identity({
  concept: 'kernels',
  title: 'The three filter-gradient kernels equal the tfjs filter gradient',
  formula: String.raw`$\partial f_{pqco} = \sum_{b,i,j} \bar x_{b,\,s i + p,\,s j + q,\,c}\; dy_{b i j o}$ by dilated convolution, by im2col and by the fused wasm kernel $=$ Conv2DBackpropFilter (cpu)`,
  source: 'the gradient of a convolution with respect to its filter',
  tolerance: ROUNDING,
});

type Pad = 'valid' | 'same';
type S4 = readonly [number, number, number, number];

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const draw = (k: Key, shape: S4): Float32Array => Float32Array.from(random.normalArray(k, shape.reduce((a, b) => a * b, 1)));

interface Compared {
  readonly ours: ReadonlyArray<Float64Array>;
  readonly ref: ReadonlyArray<Float64Array>;
  readonly bound: ReadonlyArray<Float64Array>;
}

const t4 = (v: Float32Array, s: S4): tf.Tensor4D => tf.tensor4d(v, [...s] as [number, number, number, number]);

/**
 * y = conv2d(x, f), and ∂/∂x, ∂/∂f of L = Σ y·dy, by ours on the current backend and by tfjs on cpu, plus the
 * Σ|terms| bounds: the same maps applied to |x|, |f|, |dy|.
 */
const compareConv = async (xs: S4, fs: S4, s: number, pad: Pad, k: Key): Promise<Compared> => {
  const [k1, k2, k3] = random.split(k, 3);
  const ys = conv.conv2dOutputShape(xs, fs, s, pad);
  const [xv, fv, dyv] = [draw(k1!, xs), draw(k2!, fs), draw(k3!, ys)];
  const ours = readScoped(() => {
    const [x, f, dy] = [t4(xv, xs), t4(fv, fs), t4(dyv, ys)];
    const y = nn.conv2d(x, f, s, pad);
    const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(nn.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad), dy)))([x, f]);
    return [y, gx!, gf!];
  });
  const both = await onCpu(() =>
    readScoped(() => {
      const [x, f, dy] = [t4(xv, xs), t4(fv, fs), t4(dyv, ys)];
      const [ax, af, ady] = [tf.abs(x), tf.abs(f), tf.abs(dy)] as tf.Tensor4D[];
      const grads = (a: tf.Tensor4D, b: tf.Tensor4D, d: tf.Tensor4D) =>
        tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(u as tf.Tensor4D, v as tf.Tensor4D, s, pad), d)))([a, b]);
      const [rx, rf] = grads(x, f, dy);
      const [bx, bf] = grads(ax!, af!, ady!);
      return [tf.conv2d(x, f, s, pad), rx!, rf!, tf.conv2d(ax!, af!, s, pad), bx!, bf!];
    }),
  );
  return { ours, ref: both.slice(0, 3), bound: both.slice(3) };
};

/** z = conv2dTranspose(x, f, zs), its ∂/∂x, ∂/∂f, likewise. */
const compareTranspose = async (xs: S4, fs: S4, zs: S4, s: number, pad: Pad, k: Key): Promise<Compared> => {
  const [k1, k2, k3] = random.split(k, 3);
  const [xv, fv, dzv] = [draw(k1!, xs), draw(k2!, fs), draw(k3!, zs)];
  const out = [...zs] as [number, number, number, number];
  const ours = readScoped(() => {
    const [x, f, dz] = [t4(xv, xs), t4(fv, fs), t4(dzv, zs)];
    const z = nn.conv2dTranspose(x, f, out, s, pad);
    const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(nn.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, out, s, pad), dz)))([x, f]);
    return [z, gx!, gf!];
  });
  const both = await onCpu(() =>
    readScoped(() => {
      const [x, f, dz] = [t4(xv, xs), t4(fv, fs), t4(dzv, zs)];
      const [ax, af, adz] = [tf.abs(x), tf.abs(f), tf.abs(dz)] as tf.Tensor4D[];
      const grads = (a: tf.Tensor4D, b: tf.Tensor4D, d: tf.Tensor4D) =>
        tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(tf.conv2dTranspose(u as tf.Tensor4D, v as tf.Tensor4D, out, s, pad), d)))([a, b]);
      const [rx, rf] = grads(x, f, dz);
      const [bx, bf] = grads(ax!, af!, adz!);
      return [tf.conv2dTranspose(x, f, out, s, pad), rx!, rf!, tf.conv2dTranspose(ax!, af!, out, s, pad), bx!, bf!];
    }),
  );
  return { ours, ref: both.slice(0, 3), bound: both.slice(3) };
};

/** Asserts the three comparisons (value, ∂/∂x, ∂/∂f), each with its own number of terms n. */
const expectWithinRoundoff = (law: Identity, c: Compared, terms: readonly [number, number, number]): void => {
  (['value', 'd/dx', 'd/df'] as const).forEach((what, i) => {
    // |ours − ref| ≤ 2γ_n Σ|terms| (module note); (1 + γ_n) covers the rounding of the bound itself.
    const n = terms[i]!;
    const tol = 2 * gamma32(n) * (1 + gamma32(n));
    law.closeEach(c.ours[i]!, c.ref[i]!, c.bound[i]!.map((b) => tol * b), what);
  });
};

// The tutorial ScoreNet's ladder (Song's score-SDE Colab), with small batch and channel counts: the index
// arithmetic depends only on the spatial geometry, stride and padding.
const CONVS: ReadonlyArray<readonly [string, S4, S4, number, Pad]> = [
  ['conv1 3×3 s1 28→26', [2, 28, 28, 1], [3, 3, 1, 4], 1, 'valid'],
  ['conv2 3×3 s2 26→12', [2, 26, 26, 3], [3, 3, 3, 4], 2, 'valid'],
  ['conv3 3×3 s2 12→5', [2, 12, 12, 3], [3, 3, 3, 4], 2, 'valid'],
  ['conv4 3×3 s2 5→2', [2, 5, 5, 3], [3, 3, 3, 4], 2, 'valid'],
  ["3×3 s2 'same' 7×8→4×4", [2, 7, 8, 3], [3, 3, 3, 2], 2, 'same'],
  ["3×3 s1 'same'", [1, 6, 5, 2], [3, 3, 2, 3], 1, 'same'],
];

const TRANSPOSES: ReadonlyArray<readonly [string, S4, S4, S4, number, Pad]> = [
  ['tconv4 s2 2→5', [2, 2, 2, 4], [3, 3, 3, 4], [2, 5, 5, 3], 2, 'valid'],
  ['tconv3 s2 5→12 (output padding 1)', [2, 5, 5, 4], [3, 3, 3, 4], [2, 12, 12, 3], 2, 'valid'],
  ['tconv2 s2 12→26 (output padding 1)', [2, 12, 12, 4], [3, 3, 3, 4], [2, 26, 26, 3], 2, 'valid'],
  ['tconv1 s1 26→28', [2, 26, 26, 4], [3, 3, 1, 4], [2, 28, 28, 1], 1, 'valid'],
  ["s2 'same' 4×4→8×7", [2, 4, 4, 3], [3, 3, 2, 3], [2, 8, 7, 2], 2, 'same'],
];

describe('nn.conv2d = tf.conv2d (cpu) in value, ∂/∂x and ∂/∂f, within 2γ_n Σ|terms|', () => {
  test.each(CONVS)('%s', async (_name, xs, fs, s, pad) => {
    const ys = conv.conv2dOutputShape(xs, fs, s, pad);
    const c = await compareConv(xs, fs, s, pad, random.key(11));
    // n: value kh·kw·C_in; ∂/∂x sums kh·kw·C_out products (at most); ∂/∂f sums B·H_o·W_o.
    expectWithinRoundoff(convRounding, c, [fs[0] * fs[1] * fs[2], fs[0] * fs[1] * fs[3], ys[0] * ys[1] * ys[2]]);
  });
});

describe('nn.conv2dTranspose = tf.conv2dTranspose (cpu) in value, ∂/∂x and ∂/∂f, within 2γ_n Σ|terms|', () => {
  test.each(TRANSPOSES)('%s', async (_name, xs, fs, zs, s, pad) => {
    const c = await compareTranspose(xs, fs, zs, s, pad, random.key(12));
    // n: value kh·kw·C_x (at most); ∂/∂x = conv2d(dz, f) sums kh·kw·C_z; ∂/∂f sums B·H_x·W_x.
    expectWithinRoundoff(convRounding, c, [fs[0] * fs[1] * fs[3], fs[0] * fs[1] * fs[2], xs[0] * xs[1] * xs[2]]);
  });
});

describe('the same identities over random geometries (kernel 1–4, stride 1–3, valid/same)', () => {
  const geometry = fc
    .record({
      b: fc.integer({ min: 1, max: 2 }),
      kh: fc.integer({ min: 1, max: 4 }),
      kw: fc.integer({ min: 1, max: 4 }),
      extraH: fc.integer({ min: 0, max: 6 }),
      extraW: fc.integer({ min: 0, max: 6 }),
      cin: fc.integer({ min: 1, max: 3 }),
      cout: fc.integer({ min: 1, max: 3 }),
      s: fc.integer({ min: 1, max: 3 }),
      pad: fc.constantFrom<Pad>('valid', 'same'),
      seed: fc.integer({ min: 0, max: 1000 }),
    })
    .map((g) => ({ ...g, h: g.kh + g.extraH, w: g.kw + g.extraW }));

  test('conv2d: value, ∂/∂x, ∂/∂f equal tfjs cpu', async () => {
    await fc.assert(
      fc.asyncProperty(geometry, async ({ b, h, w, kh, kw, cin, cout, s, pad, seed }) => {
        const xs: S4 = [b, h, w, cin];
        const fs: S4 = [kh, kw, cin, cout];
        const ys = conv.conv2dOutputShape(xs, fs, s, pad);
        const c = await compareConv(xs, fs, s, pad, random.key(seed));
        expectWithinRoundoff(convRounding, c, [kh * kw * cin, kh * kw * cout, ys[0] * ys[1] * ys[2]]);
      }),
      runs(15),
    );
  });

  test('conv2dTranspose: value, ∂/∂x, ∂/∂f equal tfjs cpu (z of size ≥ the conv input, any output padding)', async () => {
    await fc.assert(
      fc.asyncProperty(geometry, async ({ b, h, w, kh, kw, cin, cout, s, pad, seed }) => {
        // z [b, h, w, cin] is what the transpose produces; x is the conv output of z's shape.
        const zs: S4 = [b, h, w, cin];
        const fs: S4 = [kh, kw, cin, cout];
        const xs = conv.conv2dOutputShape(zs, fs, s, pad);
        const c = await compareTranspose(xs, fs, zs, s, pad, random.key(seed));
        expectWithinRoundoff(convRounding, c, [kh * kw * cout, kh * kw * cin, xs[0] * xs[1] * xs[2]]);
      }),
      runs(15),
    );
  });
});

describe('stride-1 transposed convs with few output channels (matMul + overlap-add path)', () => {
  test('conv2dTranspose = tf.conv2dTranspose (cpu) in value, ∂/∂x, ∂/∂f for C_z ≤ 2, C_x ≥ 4·C_z, any kernel, valid/same', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          k: fc.integer({ min: 1, max: 4 }),
          cz: fc.integer({ min: 1, max: 2 }),
          extraC: fc.integer({ min: 0, max: 4 }),
          h: fc.integer({ min: 4, max: 9 }),
          pad: fc.constantFrom<Pad>('valid', 'same'),
          seed: fc.nat(1000),
        }),
        async ({ k, cz, extraC, h, pad, seed }) => {
          const cx = 4 * cz + extraC;
          const fs: S4 = [k, k, cz, cx];
          const zs: S4 = [2, h, h + 1, cz];
          const xs = conv.conv2dOutputShape(zs, fs, 1, pad);
          const c = await compareTranspose(xs, fs, zs, 1, pad, random.key(seed));
          expectWithinRoundoff(convRounding, c, [k * k * cx, k * k * cz, xs[0] * xs[1] * xs[2]]);
        },
      ),
      runs(20),
    );
  });
});

describe('the three filter-gradient kernels all equal tfjs (cpu) ∂/∂f, within 2γ_n Σ|terms|', () => {
  // df[p,q,c,o] = Σ_{b,i,j} x̄[b, s·i+p, s·j+q, c]·dy[b,i,j,o]: a sum of at most n = B·H_o·W_o products (fewer where a
  // tap falls in the padding), compared with the filter gradient of tf.conv2d on cpu (autograd: its
  // Conv2DBackpropFilter), bound from |x|, |dy|. Each side is within γ_n Σ|terms| of the exact sum, whatever its order.
  const methods = { dilated: conv.filterGradientDilated, im2col: conv.filterGradientIm2col, fused: conv.filterGradientFused } as const;
  type Method = keyof typeof methods;
  const filterGradients = (xs: S4, fs: S4, s: number, pad: Pad, seed: number, which: ReadonlyArray<Method>) => {
    const ys = conv.conv2dOutputShape(xs, fs, s, pad);
    const [k1, k2] = random.split(random.key(seed), 2);
    const [xv, dyv] = [draw(k1!, xs), draw(k2!, ys)];
    const ours = readScoped(() => {
      const [x, dy] = [t4(xv, xs), t4(dyv, ys)];
      return which.map((m) => methods[m](x, dy, fs, s, pad));
    });
    return { ours, ys, xv, dyv };
  };
  const reference = (xs: S4, fs: S4, ys: S4, s: number, pad: Pad, xv: Float32Array, dyv: Float32Array) =>
    onCpu(() =>
      readScoped(() => {
        const gradF = (x: tf.Tensor4D, dy: tf.Tensor4D) =>
          tf.grad((f: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, f as tf.Tensor4D, s, pad), dy)))(tf.zeros([...fs]));
        const [x, dy] = [t4(xv, xs), t4(dyv, ys)];
        return [gradF(x, dy), gradF(tf.abs(x) as tf.Tensor4D, tf.abs(dy) as tf.Tensor4D)];
      }),
    );
  /** Checks the methods' ∂/∂f at one geometry against the cpu reference within 2γ_n(1 + γ_n) Σ|terms|, through `law`. */
  const check = async (law: Identity, xs: S4, fs: S4, s: number, pad: Pad, seed: number, which: ReadonlyArray<Method>): Promise<void> => {
    const { ours, ys, xv, dyv } = filterGradients(xs, fs, s, pad, seed, which);
    const [ref, bound] = await reference(xs, fs, ys, s, pad, xv, dyv);
    const n = ys[0] * ys[1] * ys[2];
    // |ours − ref| ≤ 2γ_n Σ|terms| (module note), (1 + γ_n) for the rounding of the bound.
    const tol = 2 * gamma32(n) * (1 + gamma32(n));
    ours.forEach((got, i) => law.closeEach(got, ref!, bound!.map((b) => tol * b), which[i]!));
  };

  test('over random geometries (kernel 1–4, stride 1–3, valid/same, 1–5 input channels)', async () => {
    const cases = fc.sample(
      fc.record({ k: fc.integer({ min: 1, max: 4 }), s: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 4, max: 10 }), c: fc.integer({ min: 1, max: 5 }), pad: fc.constantFrom<Pad>('valid', 'same'), seed: fc.nat(1000) }),
      runs(12),
    );
    for (const { k, s, h, c, pad, seed } of cases) await check(filterGradient, [2, h, h + 1, c], [k, k + 1 > h ? k : k + 1, c, 3], s, pad, seed, ['dilated', 'im2col']);
  });

  test('the fused kernel over random geometries (kernel 1–4 × 1–4, stride 1–3, valid/same, C 1–5 or 16, O 4–32, batch 1–3)', async () => {
    expect(fused.fusedKernelsReady()).toBe(true);
    // O: the 16-wide blocks, the 4-wide remainders and both; C: the 2-channel blocks and the odd channel left over.
    const cases = fc.sample(
      fc.record({
        b: fc.integer({ min: 1, max: 3 }),
        kh: fc.integer({ min: 1, max: 4 }),
        kw: fc.integer({ min: 1, max: 4 }),
        h: fc.integer({ min: 4, max: 11 }),
        w: fc.integer({ min: 4, max: 11 }),
        c: fc.constantFrom(1, 2, 3, 4, 5, 16),
        o: fc.constantFrom(4, 8, 12, 16, 20, 32),
        s: fc.integer({ min: 1, max: 3 }),
        pad: fc.constantFrom<Pad>('valid', 'same'),
        seed: fc.nat(1000),
      }),
      runs(30),
    );
    for (const { b, kh, kw, h, w, c, o, s, pad, seed } of cases) await check(filterGradient, [b, h, w, c], [Math.min(kh, h), Math.min(kw, w), c, o], s, pad, seed, ['fused']);
  });

  // The ScoreNet's filter gradients (half width; a transposed conv's is that of the conv from its output to its input)
  // at batch 1–2, where one dropped or repeated term is far above the bound; the 5×5 → 2×2 level at batch 64 (two chunks
  // of 32 images) with fewer channels (the cpu reference is slow);
  // 7 images of 5×5 outputs (chunks of 5 and 2); and 'same' at stride 1 and 2.
  const FUSED: ReadonlyArray<readonly [string, S4, S4, number, Pad]> = [
    ['conv1', [2, 28, 28, 1], [3, 3, 1, 16], 1, 'valid'],
    ['tconv1', [1, 28, 28, 1], [3, 3, 1, 32], 1, 'valid'],
    ['conv2', [2, 26, 26, 16], [3, 3, 16, 32], 2, 'valid'],
    ['tconv2', [1, 26, 26, 16], [3, 3, 16, 64], 2, 'valid'],
    ['conv3', [2, 12, 12, 32], [3, 3, 32, 64], 2, 'valid'],
    ['tconv3', [1, 12, 12, 32], [3, 3, 32, 128], 2, 'valid'],
    ['conv4 / tconv4', [2, 5, 5, 64], [3, 3, 64, 128], 2, 'valid'],
    ['the 5×5 → 2×2 level at batch 64 (8 → 16 channels)', [64, 5, 5, 8], [3, 3, 8, 16], 2, 'valid'],
    ['7 images of 5×5 outputs', [7, 12, 12, 3], [3, 3, 3, 8], 2, 'valid'],
    ["'same', stride 1", [2, 9, 7, 5], [3, 3, 5, 20], 1, 'same'],
    ["'same', stride 2, 4×4 kernel", [2, 10, 9, 4], [4, 4, 4, 12], 2, 'same'],
  ];
  test.each(FUSED)('the fused kernel at %s: x %j, filter %j, stride %d, %s', async (_name, xs, fs, s, pad) => {
    await check(filterGradient, xs, fs, s, pad, 17, ['fused']);
  });

  test('at the ScoreNet geometries of batch 64 the rule picks the fused kernel where it was measured fastest (n > 4096 or C·O ≤ 2048), else im2col for n ≤ 4096 and for ≤ 2 input channels only', () => {
    // (filter, dy) of conv1, conv2, conv3, conv4 and the transposed convs' filter gradients (tconv4 … tconv1), at half
    // width (the default recipe) and full width; n = B·H_o·W_o.
    const geometries = (ch: readonly [number, number, number, number]): ReadonlyArray<readonly [S4, S4]> => [
      [[3, 3, 1, ch[0]], [64, 26, 26, ch[0]]],
      [[3, 3, ch[0], ch[1]], [64, 12, 12, ch[1]]],
      [[3, 3, ch[1], ch[2]], [64, 5, 5, ch[2]]],
      [[3, 3, ch[2], ch[3]], [64, 2, 2, ch[3]]],
      [[3, 3, ch[2], ch[3]], [64, 2, 2, ch[3]]],
      [[3, 3, ch[1], 2 * ch[2]], [64, 5, 5, 2 * ch[2]]],
      [[3, 3, ch[0], 2 * ch[1]], [64, 12, 12, 2 * ch[1]]],
      [[3, 3, 1, 2 * ch[0]], [64, 26, 26, 2 * ch[0]]],
    ];
    const [half, full] = [geometries([16, 32, 64, 128]), geometries([32, 64, 128, 256])];
    expect(half.map(([f, dy]) => conv.filterGradientMethod(f, dy))).toEqual(['fused', 'fused', 'fused', 'im2col', 'im2col', 'im2col', 'fused', 'fused']);
    expect(full.map(([f, dy]) => conv.filterGradientMethod(f, dy))).toEqual(['fused', 'fused', 'im2col', 'im2col', 'im2col', 'im2col', 'fused', 'fused']);
    // Without the fused kernels (another backend): the two XNNPACK methods, as before.
    expect(full.map(([f, dy]) => conv.filterGradientMethod(f, dy, false))).toEqual(['im2col', 'dilated', 'im2col', 'im2col', 'im2col', 'im2col', 'dilated', 'im2col']);
    // O not a multiple of 4: the fused kernel does not apply.
    expect([conv.filterGradientMethod([3, 3, 32, 6], [64, 12, 12, 6]), conv.filterGradientMethod([3, 3, 1, 3], [64, 26, 26, 3])]).toEqual(['dilated', 'im2col']);
  });
});

describe('gradients are computed only for the inputs differentiated', () => {
  test('customGradLazy: ∂/∂a alone never evaluates the thunk of b', () => {
    const calls = { a: 0, b: 0 };
    // f(a, b) = a·b, ∂f/∂a = b·dy, ∂f/∂b = a·dy.
    const mul = customGradLazy(([a, b], save) => {
      save([a!, b!]);
      return {
        value: tf.mul(a!, b!),
        gradFunc: (dy, [sa, sb]) => [
          () => (calls.a++, tf.mul(dy, sb!)),
          () => (calls.b++, tf.mul(dy, sa!)),
        ],
      };
    });
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.tensor1d([4, 5, 6]);
    const ga = tf.grad((u: tf.Tensor) => tf.sum(mul(u, b)))(a);
    expect(Array.from(ga.dataSync())).toEqual([4, 5, 6]);
    expect(calls).toEqual({ a: 1, b: 0 });
    const [ga2, gb2] = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(mul(u, v)))([a, b]);
    expect([Array.from(ga2!.dataSync()), Array.from(gb2!.dataSync())]).toEqual([
      [4, 5, 6],
      [1, 2, 3],
    ]);
    expect(calls).toEqual({ a: 2, b: 1 });
    tf.dispose([a, b, ga, ga2!, gb2!]);
  });

  test('∇ₓ of a conv stack on wasm runs no filter-gradient conv; ∇ of all runs one per filter', async () => {
    const x = random.normal(random.key(1), [2, 12, 12, 3]) as tf.Tensor4D;
    const f1 = random.normal(random.key(2), [3, 3, 3, 4]) as tf.Tensor4D;
    const f2 = random.normal(random.key(3), [3, 3, 2, 4]) as tf.Tensor4D;
    const loss = (u: tf.Tensor, a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(nn.conv2dTranspose(nn.conv2d(u as tf.Tensor4D, a as tf.Tensor4D, 2, 'valid'), b as tf.Tensor4D, [2, 12, 12, 2], 2, 'valid'));
    // tf.profile returns one shared record, so the names are copied out before the next profile.
    const kernelNames = async (f: () => tf.TensorContainer): Promise<ReadonlyArray<string>> =>
      (await tf.profile(() => tf.dispose(f()))).kernels.map((k) => k.name);
    const onlyX = await kernelNames(() => tf.grad((u: tf.Tensor) => loss(u, f1, f2))(x));
    const all = await kernelNames(() => tf.grads(loss)([x, f1, f2]));
    // Conv2D calls: forward 1 (conv) + 4 (tconv phases); ∇ₓ backward 1 (tconv's ∂/∂x = conv) + 4 (conv's ∂/∂x =
    // tconv phases) = 10. On wasm each filter gradient (O = 4) is one call of the fused kernel (filterGradientMethod),
    // none with ∇ₓ alone; no im2col (DepthwiseConv2dNative + BatchMatMul) and no dilated conv.
    const count = (ks: ReadonlyArray<string>, name: string) => ks.filter((k) => k === name).length;
    expect(conv.filterGradientMethod([3, 3, 3, 4], [2, 5, 5, 4])).toBe('fused');
    expect([count(onlyX, 'Conv2D'), count(all, 'Conv2D')]).toEqual([10, 10]);
    expect([count(onlyX, 'ScoreSdeConvFilterGrad'), count(all, 'ScoreSdeConvFilterGrad')]).toEqual([0, 2]);
    expect([count(onlyX, 'DepthwiseConv2dNative'), count(all, 'DepthwiseConv2dNative')]).toEqual([0, 0]);
    expect([count(onlyX, 'BatchMatMul'), count(all, 'BatchMatMul')]).toEqual([0, 0]);
    expect(onlyX.filter((k) => k === 'Conv2DBackpropFilter' || k === 'Conv2DBackpropInput')).toEqual([]);
    tf.dispose([x, f1, f2]);
  });
});

describe('memory: the conv functions and their gradients leave no tensor behind', () => {
  test('conv2d, conv2dTranspose, and both gradients leak 0 tensors', () => {
    const x = random.normal(random.key(4), [2, 12, 12, 3]) as tf.Tensor4D;
    const f = random.normal(random.key(5), [3, 3, 3, 4]) as tf.Tensor4D;
    const z = random.normal(random.key(6), [2, 5, 5, 4]) as tf.Tensor4D;
    expect(leakedBy(() => nn.conv2d(x, f, 2, 'valid'))).toBe(0);
    expect(leakedBy(() => nn.conv2dTranspose(z, f, [2, 12, 12, 3], 2, 'valid'))).toBe(0);
    expect(leakedBy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(nn.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'valid')))([x, f]))).toBe(0);
    expect(leakedBy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(nn.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [2, 12, 12, 3], 2, 'valid')))([z, f]))).toBe(0);
    expect(leakedBy(() => conv.filterGradientDilated(x, z, [3, 3, 3, 4], 2, 'valid'))).toBe(0);
    expect(leakedBy(() => conv.filterGradientIm2col(x, z, [3, 3, 3, 4], 2, 'valid'))).toBe(0);
    expect(leakedBy(() => conv.filterGradientFused(x, z, [3, 3, 3, 4], 2, 'valid'))).toBe(0);
    tf.dispose([x, f, z]);
  });
});

describe('shape checks', () => {
  test('conv2dTranspose names the shapes when the output shape does not map back to the input', () => {
    const x = tf.zeros([1, 5, 5, 4]) as tf.Tensor4D;
    const f = tf.zeros([3, 3, 3, 4]) as tf.Tensor4D;
    expect(() => nn.conv2dTranspose(x, f, [1, 14, 14, 3], 2, 'valid')).toThrow(/output shape \[1,14,14,3\].*maps back to \[1,6,6,4\], not to the input shape \[1,5,5,4\]/);
    tf.dispose([x, f]);
  });

  test("filterGradientFused names the shapes when dy is not the conv's output, and a batch of 0 gives a zero gradient", () => {
    const x = tf.zeros([2, 12, 12, 3]) as tf.Tensor4D;
    const dy = tf.zeros([2, 6, 5, 4]) as tf.Tensor4D;
    expect(() => conv.filterGradientFused(x, dy, [3, 3, 3, 4], 2, 'valid')).toThrow(/has output \[2,5,5,4\], not dy's shape \[2,6,5,4\]/);
    const [x0, dy0] = [tf.zeros([0, 12, 12, 3]) as tf.Tensor4D, tf.zeros([0, 5, 5, 4]) as tf.Tensor4D];
    const empty = conv.filterGradientFused(x0, dy0, [3, 3, 3, 4], 2, 'valid');
    expect([empty.shape, Array.from(empty.dataSync()).every((v) => v === 0)]).toEqual([[3, 3, 3, 4], true]);
    tf.dispose([x, dy, x0, dy0, empty]);
  });
});

describe("on the cpu backend (native transposed conv, dilated-conv filter gradient)", () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'cpu', quiet: true });
  });
  afterAll(async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
  });

  test.each([CONVS[1]!, CONVS[4]!])('nn.conv2d = tf.conv2d: %s', async (_name, xs, fs, s, pad) => {
    expect(conv.convKernels()).toBe('cpu');
    const ys = conv.conv2dOutputShape(xs, fs, s, pad);
    const c = await compareConv(xs, fs, s, pad, random.key(13));
    expectWithinRoundoff(convRounding, c, [fs[0] * fs[1] * fs[2], fs[0] * fs[1] * fs[3], ys[0] * ys[1] * ys[2]]);
  });

  test.each([TRANSPOSES[1]!, TRANSPOSES[4]!])('nn.conv2dTranspose = tf.conv2dTranspose: %s', async (_name, xs, fs, zs, s, pad) => {
    const c = await compareTranspose(xs, fs, zs, s, pad, random.key(14));
    expectWithinRoundoff(convRounding, c, [fs[0] * fs[1] * fs[3], fs[0] * fs[1] * fs[2], xs[0] * xs[1] * xs[2]]);
  });

  test('transposeByPhases with its filter bank made by tensor ops (the non-wasm path) = tf.conv2dTranspose', () => {
    fc.assert(
      fc.property(
        fc.record({ k: fc.integer({ min: 1, max: 5 }), s: fc.integer({ min: 1, max: 3 }), h: fc.integer({ min: 5, max: 9 }), pad: fc.constantFrom<Pad>('valid', 'same'), seed: fc.nat(1000) }),
        ({ k, s, h, pad, seed }) => {
          const zs: S4 = [2, h, h + 1, 2];
          const fs: S4 = [k, k, 2, 3];
          const xs = conv.conv2dOutputShape(zs, fs, s, pad);
          const [ours, ref, bound] = readScoped(() => {
            const x = random.normal(random.key(seed), xs) as tf.Tensor4D;
            const f = random.normal(random.key(seed + 1), fs) as tf.Tensor4D;
            const out = [...zs] as [number, number, number, number];
            return [conv.transposeByPhases(x, f, zs, s, pad), tf.conv2dTranspose(x, f, out, s, pad), tf.conv2dTranspose(tf.abs(x) as tf.Tensor4D, tf.abs(f) as tf.Tensor4D, out, s, pad)];
          });
          const n = k * k * 3;
          const tol = 2 * gamma32(n) * (1 + gamma32(n));
          convRounding.closeEach(ours!, ref!, bound!.map((b) => tol * b), 'transposeByPhases');
        },
      ),
      runs(20),
    );
  });
});
