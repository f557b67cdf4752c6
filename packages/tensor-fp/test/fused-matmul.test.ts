/**
 * Small matrix products on wasm by the fused module (`matmul_seq`): Σ_k a[m, k]·b[k, n] summed in order from +0, each
 * product and sum rounded to float32 — the bits of XNNPACK's GEMM, which it replaces, and of that sum written out in
 * JavaScript, with and without transposes, special values included (NaN as NaN, whatever its sign and payload).
 */
import fc from 'fast-check';
import { tf, initBackend } from '@score-sde/tensor-fp';
import { SMALL_MATMUL_MAX, configureFusedOverrides } from '../src/fused-kernels';
import { canonicalNaN, float32Bits as bits, seededValues as valuesOf } from './helpers';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

afterEach(() => configureFusedOverrides({ enabled: true }));

/** The reference: out[m, n] = (((0 + a₀b₀) + a₁b₁) + …) in float32, a [M, K] and b [K, N] row-major. */
const sequential = (a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array => {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let p = 0; p < k; p++) acc = Math.fround(acc + Math.fround(a[i * k + p]! * b[p * n + j]!));
      out[i * n + j] = acc;
    }
  return out;
};

/** [rows, cols] of a row-major matrix, transposed: its values in the transposed layout. */
const transposed = (x: Float32Array, rows: number, cols: number): Float32Array => Float32Array.from({ length: rows * cols }, (_, i) => x[(i % rows) * cols + Math.floor(i / rows)]!);

const geometry = fc.record({
  m: fc.integer({ min: 1, max: 37 }),
  k: fc.integer({ min: 1, max: 90 }),
  // up to 300 columns: wide products (several 16-column blocks and a remainder)
  n: fc.oneof(fc.integer({ min: 1, max: 45 }), fc.integer({ min: 200, max: 300 })),
  transposeA: fc.boolean(),
  transposeB: fc.boolean(),
  special: fc.boolean(),
  seed: fc.nat(1000),
});

test('a·b has the bits of the in-order float32 sum and of the XNNPACK kernel it replaces (any shape, transposes, special values)', () => {
  const cases = fc.sample(geometry, { numRuns: 120, seed: 5 });
  const run = (): number[][] =>
    cases.map(({ m, k, n, transposeA, transposeB, special, seed }) =>
      tf.tidy(() => {
        const [a, b] = [valuesOf(m * k, seed, special), valuesOf(k * n, seed + 1, special)];
        const ta = transposeA ? tf.tensor2d(transposed(a, m, k), [k, m]) : tf.tensor2d(a, [m, k]);
        const tb = transposeB ? tf.tensor2d(transposed(b, k, n), [n, k]) : tf.tensor2d(b, [k, n]);
        return bits(tf.matMul(ta, tb, transposeA, transposeB).dataSync());
      }),
    );
  const ours = run();
  configureFusedOverrides({ enabled: false });
  const theirs = run();
  cases.forEach((c, i) => {
    const want = bits(sequential(valuesOf(c.m * c.k, c.seed, c.special), valuesOf(c.k * c.n, c.seed + 1, c.special), c.m, c.k, c.n));
    expect([c, canonicalNaN(ours[i]!)]).toEqual([c, canonicalNaN(want)]);
    expect([c, canonicalNaN(ours[i]!)]).toEqual([c, canonicalNaN(theirs[i]!)]);
  });
});

test("the ScoreNet's Dense layers ([64, 128]·[128, 16 … 128]) take the kernel, and their bits are XNNPACK's", () => {
  for (const n of [16, 32, 64, 128]) {
    expect(64 * 128 * n).toBeLessThanOrEqual(SMALL_MATMUL_MAX);
    const [a, b] = [valuesOf(64 * 128, n, false), valuesOf(128 * n, n + 1, false)];
    const product = (): number[] => tf.tidy(() => bits(tf.matMul(tf.tensor2d(a, [64, 128]), tf.tensor2d(b, [128, n])).dataSync()));
    const ours = product();
    configureFusedOverrides({ enabled: false });
    expect(ours).toEqual(product());
    configureFusedOverrides({ enabled: true });
  }
});
