/**
 * Concat and SplitV on wasm as row copies of the fused module (`rows_copy`): against a reference made of plain array
 * copies, bit for bit, for any rank, axis, part sizes (empty parts included) and 4-byte dtype.
 */
import fc from 'fast-check';
import { tf, initBackend } from '@score-sde/tensor-fp';
import { FUSED_OVERRIDES, fusedKernelsReady } from '../src/fused-kernels';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

/** The reference concat along `axis`: output row o (of outer = ∏ shape[:axis]) is each part's row o in turn. */
const concatReference = (parts: ReadonlyArray<{ readonly values: ArrayLike<number>; readonly shape: ReadonlyArray<number> }>, axis: number): number[] => {
  const outer = parts[0]!.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let o = 0; o < outer; o++)
    for (const p of parts) {
      const n = p.shape.slice(axis).reduce((a, b) => a * b, 1);
      for (let i = 0; i < n; i++) out.push(p.values[o * n + i]!);
    }
  return out;
};

/** A rank, an axis, the other dimensions, and k ≥ 2 sizes along the axis. */
const geometry = fc
  .record({
    dims: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
    sizes: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 2, maxLength: 4 }),
    axisPick: fc.nat(),
    dtype: fc.constantFrom('float32' as const, 'int32' as const),
    seed: fc.integer({ min: 1, max: 1000 }),
  })
  .map(({ dims, sizes, axisPick, dtype, seed }) => ({ dims, sizes, axis: axisPick % dims.length, dtype, seed }))
  .filter(({ sizes }) => sizes.some((n) => n > 0));

const shapeWith = (dims: ReadonlyArray<number>, axis: number, n: number): number[] => dims.map((d, i) => (i === axis ? n : d));
const valuesOf = (n: number, seed: number, dtype: 'float32' | 'int32'): Float32Array | Int32Array =>
  dtype === 'float32' ? Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * 1e3) : Int32Array.from({ length: n }, (_, i) => (seed * 31 + i * 17) % 1013);

test('the fused module serves Concat and SplitV on wasm', () => {
  expect(fusedKernelsReady()).toBe(true);
  expect(FUSED_OVERRIDES).toEqual(expect.arrayContaining(['Concat', 'SplitV']));
});

test('tf.concat = the row-by-row reference, bit for bit (any rank, axis, part sizes, float32 or int32)', () => {
  fc.assert(
    fc.property(geometry, ({ dims, sizes, axis, dtype, seed }) => {
      const parts = sizes.map((n, i) => {
        const shape = shapeWith(dims, axis, n);
        return { shape, values: valuesOf(shape.reduce((a, b) => a * b, 1), seed + i, dtype) };
      });
      const got = tf.tidy(() => tf.concat(parts.map((p) => tf.tensor(p.values, p.shape, dtype)), axis).dataSync());
      expect(Array.from(got)).toEqual(concatReference(parts, axis));
    }),
    { numRuns: 200 },
  );
});

test('tf.split into the same sizes gives the parts back, bit for bit (concat of the parts = x)', () => {
  fc.assert(
    fc.property(geometry, ({ dims, sizes, axis, dtype, seed }) => {
      const parts = sizes.map((n, i) => {
        const shape = shapeWith(dims, axis, n);
        return { shape, values: valuesOf(shape.reduce((a, b) => a * b, 1), seed + i, dtype) };
      });
      const whole = concatReference(parts, axis);
      const got = tf.tidy(() => tf.split(tf.tensor(whole, shapeWith(dims, axis, sizes.reduce((a, b) => a + b, 0)), dtype), sizes, axis).map((t) => [t.shape, Array.from(t.dataSync())] as const));
      expect(got).toEqual(parts.map((p) => [p.shape, Array.from(p.values)]));
    }),
    { numRuns: 200 },
  );
});

test('the U-Net skip concat and its gradient: concat along channels of [2, 5, 5, 8] and [2, 5, 5, 4]; ∂ = the split of dy', () => {
  const a = tf.tensor(valuesOf(400, 1, 'float32'), [2, 5, 5, 8]);
  const b = tf.tensor(valuesOf(200, 2, 'float32'), [2, 5, 5, 4]);
  const dy = tf.tensor(valuesOf(600, 3, 'float32'), [2, 5, 5, 12]);
  const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.concat([x, y], 3), dy)))([a, b]);
  const dyRows = Array.from(dy.dataSync());
  const expectA = dyRows.filter((_, i) => i % 12 < 8);
  const expectB = dyRows.filter((_, i) => i % 12 >= 8);
  expect([Array.from(ga!.dataSync()), Array.from(gb!.dataSync())]).toEqual([expectA, expectB]);
  tf.dispose([a, b, dy, ga!, gb!]);
});
