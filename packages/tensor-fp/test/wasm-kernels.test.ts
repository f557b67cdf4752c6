/**
 * The wasm kernel overrides (wasm-kernels.ts) change costs, never values: Identity shares buffers safely,
 * BatchMatMul with transposes equals the product of the explicitly transposed operand, and Concat/SplitV move
 * exactly the cpu backend's values, bit for bit.
 */
import fc from 'fast-check';
import { tf, initBackend, random, wasmKernelOverrides, leakedBy, liveTensors } from '@score-sde/tensor-fp';
import { identity, runs } from '@score-sde/tensor-fp/testing';
import { gamma32, onCpu, readScoped } from './helpers';

const matMulFlags = identity({
  concept: 'kernels',
  title: 'Transposed matrix products',
  formula: String.raw`$\mathrm{matMul}(a, b, t_A, t_B) = \mathrm{matMul}(t_A\,?\,a^\top : a,\ t_B\,?\,b^\top : b)$`,
  source: 'the BatchMatMul override reads transposed operands in place; ranks 2–4, every flag combination',
  tolerance: 'exact (bit for bit)',
});

const dense = identity({
  concept: 'kernels',
  title: 'Dense layer equals the cpu backend',
  formula: String.raw`$y = xW + b$ and $\partial/\partial x,\ \partial/\partial W,\ \partial/\partial b$ (wasm overrides) $=$ cpu backend`,
  source: 'the same bilinear map through different kernels',
  tolerance: 'float32 sums of n products in two orders: 2γ_n(1 + γ_n) Σ|aᵢbᵢ| elementwise (Higham 2002, §3.1)',
});

const concatSplit = identity({
  concept: 'kernels',
  title: 'Concat and split equal the cpu backend, and split ∘ concat = id',
  formula: String.raw`$\mathrm{concat}_{\text{wasm}} = \mathrm{concat}_{\text{cpu}},\ \mathrm{split}_{\text{wasm}} = \mathrm{split}_{\text{cpu}},\ \mathrm{concat}(\mathrm{split}(x)) = x$`,
  source: 'pure data movement',
  tolerance: 'exact (bit for bit), float32 and int32, any axis',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

test('the four overrides are installed for wasm', () => {
  expect(wasmKernelOverrides).toEqual(['Identity', 'BatchMatMul', 'Concat', 'SplitV']);
  expect(tf.getBackend()).toBe('wasm');
});

describe('Identity shares the buffer', () => {
  test('a clone has the same values, outlives its source, and disposing both frees everything', () => {
    const before = liveTensors();
    const bytesBefore = tf.memory().numBytes;
    const x = random.normal(random.key(1), [3, 4, 5]);
    const values = Array.from(x.dataSync());
    const y = tf.clone(x);
    expect(Array.from(y.dataSync())).toEqual(values);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual(values);
    // Ops on the clone write new buffers, never the shared one.
    const z = tf.add(y, 1);
    expect(Array.from(y.dataSync())).toEqual(values);
    tf.dispose([y, z]);
    expect([liveTensors(), tf.memory().numBytes]).toEqual([before, bytesBefore]);
  });

  test('variableGrads through saved (shared) activations equal the cpu backend\'s, and leak nothing', async () => {
    const wv = Float32Array.from(random.normalArray(random.key(2), 16), (z) => z / 2);
    const xv = Float32Array.from(random.normalArray(random.key(3), 8));
    const grad = () => {
      const w = tf.variable(tf.tensor2d(wv, [4, 4]));
      const x = tf.tensor2d(xv, [2, 4]);
      const f = (): tf.Scalar => tf.sum(tf.square(tf.tanh(tf.matMul(tf.tanh(tf.matMul(x, w)), w))));
      const leaked = leakedBy(() => {
        const { value, grads } = tf.variableGrads(f, [w]);
        return [value, grads];
      });
      const { value, grads } = tf.variableGrads(f, [w]);
      const out = Array.from(grads[w.name]!.dataSync());
      tf.dispose([w, x, value, grads]);
      return { leaked, out };
    };
    const ours = grad();
    const ref = await onCpu(grad);
    expect(ours.leaked).toBe(0);
    // tanh differs between backends by a few ulps; a dozen float32 roundings of O(1) values: 1e-5 relative.
    ours.out.forEach((v, i) => expect(Math.abs(v - ref.out[i]!)).toBeLessThan(1e-5 * (1 + Math.abs(ref.out[i]!))));
  });
});

describe('BatchMatMul with transposes', () => {
  const dims = fc.record({ m: fc.integer({ min: 1, max: 9 }), k: fc.integer({ min: 1, max: 9 }), n: fc.integer({ min: 1, max: 9 }), batch: fc.constantFrom<number[]>([], [3], [2, 2]), seed: fc.nat(1000) });

  test('matMul(a, b, tA, tB) = matMul(tA ? aᵀ : a, tB ? bᵀ : b) bit for bit (ranks 2–4, every flag combination)', () => {
    fc.assert(
      fc.property(dims, fc.boolean(), fc.boolean(), ({ m, k, n, batch, seed }, tA, tB) => {
        const [flagged, explicit] = readScoped(() => {
          const a = random.normal(random.key(seed), [...batch, ...(tA ? [k, m] : [m, k])]);
          const b = random.normal(random.key(seed + 1), [...batch, ...(tB ? [n, k] : [k, n])]);
          const swap = (t: tf.Tensor) => tf.transpose(t, [...batch.map((_, i) => i), batch.length + 1, batch.length]);
          return [tf.matMul(a, b, tA, tB), tf.matMul(tA ? swap(a) : a, tB ? swap(b) : b)];
        });
        matMulFlags.equal(Array.from(flagged!), Array.from(explicit!));
      }),
      runs(40),
    );
  });

  test('a Dense layer y = xW + b: value and ∂/∂x, ∂/∂W, ∂/∂b equal the cpu backend within 2γ_n Σ|terms|', async () => {
    const [B, din, dout] = [5, 7, 3];
    const xs = Float32Array.from(random.normalArray(random.key(5), B * din));
    const ws = Float32Array.from(random.normalArray(random.key(6), din * dout));
    const bs = Float32Array.from(random.normalArray(random.key(7), dout));
    const dy = Float32Array.from(random.normalArray(random.key(8), B * dout));
    const run = (abs: boolean) => () =>
      readScoped(() => {
        const m = (v: Float32Array) => (abs ? v.map(Math.abs) : v);
        const [x, w, b, d] = [tf.tensor2d(m(xs), [B, din]), tf.tensor2d(m(ws), [din, dout]), tf.tensor1d(m(bs)), tf.tensor2d(m(dy), [B, dout])];
        const g = tf.grads((u: tf.Tensor, v: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(tf.add(tf.matMul(u as tf.Tensor2D, v as tf.Tensor2D), c), d)))([x, w, b]);
        return [tf.add(tf.matMul(x, w), b), ...g];
      });
    const ours = run(false)();
    const ref = await onCpu(run(false));
    const bound = await onCpu(run(true));
    // n terms per sum: value din (+ bias), ∂x dout, ∂W B, ∂b B.
    [din + 1, dout, B, B].forEach((n, i) => {
      const tol = 2 * gamma32(n) * (1 + gamma32(n));
      dense.closeEach(ours[i]!, ref[i]!, bound[i]!.map((b) => tol * b), ['value', 'd/dx', 'd/dW', 'd/db'][i]);
    });
  });
});

describe('Concat and SplitV', () => {
  const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 });

  test('concat of k tensors along any axis (equal or unequal shapes, float32 and int32) = the cpu backend, bit for bit', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.nat(3), fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.boolean(), fc.nat(1000), async (shape, axisRaw, k, equal, ints, seed) => {
        const axis = axisRaw % shape.length;
        const shapes = Array.from({ length: k }, (_, i) => shape.map((d, j) => (j === axis && !equal ? d + i : d)));
        const data = shapes.map((sh, i) => Float32Array.from(random.normalArray(random.key(seed + i), sh.reduce((a, b) => a * b, 1)), (v) => (ints ? Math.round(10 * v) : v)));
        const run = () => readScoped(() => [tf.concat(shapes.map((sh, i) => tf.tensor(data[i]!, sh, ints ? 'int32' : 'float32')), axis)])[0]!;
        concatSplit.equal(Array.from(run()), Array.from(await onCpu(run)));
      }),
      runs(60),
    );
  });

  test('split into k parts (equal or given sizes) along any axis = the cpu backend, bit for bit, and split ∘ concat = id', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.nat(3), fc.integer({ min: 1, max: 4 }), fc.boolean(), fc.nat(1000), async (shape, axisRaw, k, equal, seed) => {
        const axis = axisRaw % shape.length;
        const sizes = Array.from({ length: k }, (_, i) => (equal ? shape[axis]! : shape[axis]! + i));
        const full = shape.map((d, j) => (j === axis ? sizes.reduce((a, b) => a + b, 0) : d));
        const data = Float32Array.from(random.normalArray(random.key(seed), full.reduce((a, b) => a * b, 1)));
        const run = () => readScoped(() => tf.split(tf.tensor(data, full), equal ? k : sizes, axis));
        const [ours, ref] = [run(), await onCpu(run)];
        concatSplit.equal(ours.map((p) => Array.from(p)), ref.map((p) => Array.from(p)));
        concatSplit.equal(Array.from(readScoped(() => [tf.concat(tf.split(tf.tensor(data, full), equal ? k : sizes, axis), axis)])[0]!), Array.from(data));
      }),
      runs(60),
    );
  });

  test('concat, split, matMul with transposes and clone (and gradients) leak no tensor and no wasm buffer', () => {
    const a = random.normal(random.key(1), [4, 3, 3, 2]);
    const b = random.normal(random.key(2), [4, 3, 3, 2]);
    const m = random.normal(random.key(3), [3, 5]);
    // Tensors (engine) and data buffers (the wasm backend's own table, which the overrides manage by hand).
    const buffers = (): number => tf.backend().numDataIds();
    const cases: ReadonlyArray<() => tf.TensorContainer> = [
      () => tf.concat([a, b], 3),
      () => tf.tidy(() => tf.split(tf.concat([a, b], 3), 2, 3)),
      () => tf.tidy(() => tf.split(tf.reshape(a, [4, 18]), 2, 0)),
      () => tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.square(tf.concat([u, v], 3))))([a, b]),
      () => [tf.matMul(m, m, true, false), tf.matMul(m, m, false, true)],
      () => tf.clone(a),
    ];
    cases.forEach((f, i) => {
      const before = buffers();
      expect({ i, leaked: leakedBy(f) }).toEqual({ i, leaked: 0 });
      expect({ i, buffers: buffers() - before }).toEqual({ i, buffers: 0 });
    });
    tf.dispose([a, b, m]);
  });
});
