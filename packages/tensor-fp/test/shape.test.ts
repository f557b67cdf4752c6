/**
 * Shape helpers: batches carry their sample shape, per-sample scalars broadcast sample by sample, and
 * flatten/unflatten are inverse.
 */
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import { tf, initBackend, random, asBatch, batchSize, sampleShapeOf, column, mulPerSample, sumPerSample, flattenSamples, unflattenSamples, type Batch } from '@score-sde/tensor-fp';
import { readScoped } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const perSampleProduct = identity({
  concept: 'kernels',
  title: 'Per-sample scalars multiply their own sample',
  formula: String.raw`$\mathrm{mulPerSample}(x, c)_b = c_b \cdot x_b$ (one float32 product per element, any rank)`,
  source: 'broadcasting c as [B, 1, …, 1] (tfjs would broadcast [B] against the last axis)',
  tolerance: 'exact: the float32 rounding of c_b times x',
});

const perSampleSum = identity({
  concept: 'kernels',
  title: 'Per-sample sums',
  formula: String.raw`$\mathrm{sumPerSample}(x)_b = \sum_i x_{b,i}$`,
  source: 'definition',
  tolerance: 'float32 summation: γ_n Σ|x| + u|Σx| (Higham 2002, §3.1)',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const sampleShapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 });

const mustBatch = <const S extends ReadonlyArray<number>>(x: tf.Tensor, s: S): Batch<S> =>
  E.getOrElseW((e: { message: string }) => {
    throw new Error(e.message);
  })(asBatch(x, s));

describe('asBatch', () => {
  test('Right iff x.shape = [B, ...S] with B ≥ 1; then batchSize = B and sampleShapeOf = S', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), sampleShapeArb, sampleShapeArb, (b, s, other) => {
        const x = tf.zeros([b, ...s]);
        const r = asBatch(x, s);
        expect(E.isRight(r)).toBe(true);
        if (E.isRight(r)) expect([batchSize(r.right), sampleShapeOf(r.right)]).toEqual([b, s]);
        const same = other.length === s.length && other.every((d, i) => d === s[i]);
        expect(E.isRight(asBatch(x, other))).toBe(same);
        x.dispose();
      }),
      runs(60),
    );
  });

  test('a mismatch is a Left naming both shapes', () => {
    const x = tf.zeros([4, 28, 28]);
    expect(asBatch(x, [28, 28, 1] as const)).toEqual(E.left({ _tag: 'ShapeError', message: 'expected a batch of shape [B, 28, 28, 1], got [4, 28, 28]' }));
    x.dispose();
  });
});

describe('per-sample scalars', () => {
  test('the broadcasting trap: [B,28,28,1] · [B] is [B,28,28,B] in tfjs, while mulPerSample keeps [B,28,28,1]', () => {
    const [b, dims] = [3, [28, 28, 1] as const];
    const x = mustBatch(random.normal(random.key(1), [b, ...dims]), dims);
    const std = tf.tensor1d([0.5, 1, 2]);
    const trap = tf.mul(x, std);
    expect(trap.shape).toEqual([b, 28, 28, b]);
    const safe = mulPerSample(x, std);
    expect(safe.shape).toEqual([b, 28, 28, 1]);
    tf.dispose([x, std, trap, safe]);
  });

  test('mulPerSample(x, c)_b = c_b · x_b exactly (one float32 product per element), for any rank', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), sampleShapeArb, fc.nat(1000), (b, s, seed) => {
        const c = Array.from(random.uniformArray(random.key(seed), b), (u) => 4 * u - 2);
        const [xv, yv] = readScoped(() => {
          const x = mustBatch(random.normal(random.key(seed + 1), [b, ...s]), s);
          return [x, mulPerSample(x, c)];
        });
        const per = xv!.length / b;
        xv!.forEach((v, i) => perSampleProduct.equal(yv![i], Math.fround(Math.fround(c[Math.floor(i / per)]!) * v)));
      }),
      runs(40),
    );
  });

  test('mulPerSample refuses scalars whose count is not the batch size', () => {
    const x = mustBatch(tf.zeros([4, 2, 2]), [2, 2] as const);
    expect(() => mulPerSample(x, [1, 2])).toThrow(/mulPerSample: 2 scalars for a batch of 4 \(shape \[4, 2, 2\]\)/);
    x.dispose();
  });

  test('column(values, rank) has shape [B, 1, …, 1] of that rank, from arrays and from tensors', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 5 }), (vals, rank) => {
        const a = column(vals, rank);
        const t = tf.tensor1d(vals);
        const b = column(t, rank);
        const expected = [vals.length, ...Array.from({ length: rank - 1 }, () => 1)];
        expect([a.shape, b.shape]).toEqual([expected, expected]);
        expect(Array.from(a.dataSync())).toEqual(Array.from(Float32Array.from(vals)));
        tf.dispose([a, t, b]);
      }),
      runs(40),
    );
    expect(() => column([1], 0)).toThrow(/rank must be an integer ≥ 1/);
  });

  test('sumPerSample(x)_b = Σ of sample b (within float32 summation error γ_n·Σ|x|)', () => {
    const [b, s] = [3, [4, 5] as const];
    const [xv, sv] = readScoped(() => {
      const x = mustBatch(random.normal(random.key(3), [b, ...s]), s);
      return [x, sumPerSample(x)];
    });
    const n = 20;
    for (let i = 0; i < b; i++) {
      const row = xv!.subarray(i * n, (i + 1) * n);
      const exact = row.reduce((a, v) => a + v, 0);
      const abs = row.reduce((a, v) => a + Math.abs(v), 0);
      // γ_n·Σ|x| with γ_n = n·u/(1 − n·u) (Higham §3.1), plus the final rounding u·|Σ|.
      perSampleSum.atMost(Math.abs(sv![i]! - exact), (n * 2 ** -24 * abs) / (1 - n * 2 ** -24) + 2 ** -24 * Math.abs(exact));
    }
  });
});

describe('flatten / unflatten', () => {
  test('unflattenSamples ∘ flattenSamples = id (values and shape), flatten gives [B, ∏S]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), sampleShapeArb, fc.nat(1000), (b, s, seed) => {
        const x = mustBatch(random.normal(random.key(seed), [b, ...s]), s);
        const flat = flattenSamples(x);
        expect(flat.shape).toEqual([b, s.reduce((a, d) => a * d, 1)]);
        const back = unflattenSamples(flat, s);
        expect(E.isRight(back)).toBe(true);
        if (E.isRight(back)) {
          expect(back.right.shape).toEqual([b, ...s]);
          expect(Array.from(back.right.dataSync())).toEqual(Array.from(x.dataSync()));
          back.right.dispose();
        }
        tf.dispose([x, flat]);
      }),
      runs(40),
    );
  });

  test('unflattenSamples with the wrong sample size is a Left naming the sizes', () => {
    const flat = mustBatch(tf.zeros([2, 12]), [12] as const) as unknown as Batch<readonly [number]>;
    expect(unflattenSamples(flat, [5, 2] as const)).toEqual(
      E.left({ _tag: 'ShapeError', message: 'cannot unflatten [2, 12] into samples of shape [5, 2] (10 values each)' }),
    );
    flat.dispose();
  });
});
