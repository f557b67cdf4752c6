/**
 * Derivations kept per source buffer (derived.ts): reused from the second request on, the same bits as fresh ones,
 * released with their source, never stale after a variable is assigned; the transposed convolution's phase filters
 * are such a derivation (a sampler's fixed weights).
 */
import { tf, initBackend, random, nn, derivedOnce, configureDerived, derivedTensorCount, liveTensors } from '@score-sde/tensor-fp';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

afterEach(() => configureDerived({ enabled: true }));

const kernelNames = async (f: () => tf.Tensor): Promise<string[]> => {
  const p = await tf.profile(() => f());
  tf.dispose(p.result as tf.Tensor);
  return p.kernels.map((k) => k.name);
};

describe('derivedOnce', () => {
  test('make runs on the first and second request only; the kept tensors are released when the source is disposed', () => {
    const before = liveTensors();
    const source = tf.tensor1d([1, 2, 3]);
    let made = 0;
    const derive = (): ReadonlyArray<tf.Tensor | undefined> =>
      derivedOnce('doubled', source, () => {
        made++;
        return [tf.mul(source, 2), undefined];
      });
    const first = tf.tidy(() => Array.from(derive()[0]!.dataSync()));
    expect([made, derivedTensorCount()]).toEqual([1, 0]);
    const results = [1, 2, 3].map(() => tf.tidy(() => Array.from(derive()[0]!.dataSync())));
    expect([made, derivedTensorCount()]).toEqual([2, 1]);
    expect(results).toEqual([first, first, first]);
    expect(derive()[1]).toBeUndefined();
    source.dispose();
    expect([derivedTensorCount(), liveTensors()]).toEqual([0, before]);
  });

  test('a tag is its own entry: two derivations of one source are kept apart', () => {
    const source = tf.tensor1d([1, 2]);
    const read = (tag: string, k: number): number[] => tf.tidy(() => Array.from(derivedOnce(tag, source, () => [tf.mul(source, k)])[0]!.dataSync()));
    [0, 1, 2].forEach(() => {
      expect(read('times 3', 3)).toEqual([3, 6]);
      expect(read('times 5', 5)).toEqual([5, 10]);
    });
    expect(derivedTensorCount()).toBe(2);
    source.dispose();
    expect(derivedTensorCount()).toBe(0);
  });

  test('never stale: a variable assigned new values gets derivations of the new values', () => {
    const init = tf.tensor1d([1, 2]);
    const v = tf.variable(init);
    init.dispose(); // the variable alone holds the buffer now
    const read = (): number[] => tf.tidy(() => Array.from(derivedOnce('plus one', v, () => [tf.add(v, 1)])[0]!.dataSync()));
    [0, 1, 2].forEach(() => expect(read()).toEqual([2, 3]));
    const next = tf.tensor1d([10, 20]);
    v.assign(next);
    next.dispose();
    expect(derivedTensorCount()).toBe(0);
    [0, 1, 2].forEach(() => expect(read()).toEqual([11, 21]));
    v.dispose();
    expect(derivedTensorCount()).toBe(0);
  });

  test('kept tensors survive the tidy of the call that kept them', () => {
    const source = tf.tensor1d([4]);
    const derive = (): tf.Tensor => derivedOnce('half', source, () => [tf.div(source, 2)])[0]!;
    tf.tidy(() => void derive());
    tf.tidy(() => void derive());
    expect(derive().isDisposed).toBe(false);
    expect(Array.from(derive().dataSync())).toEqual([2]);
    source.dispose();
  });

  test('configureDerived({ enabled: false }) makes every time and releases what was kept', () => {
    const source = tf.tensor1d([1]);
    let made = 0;
    const derive = (): void => tf.tidy(() => void derivedOnce('same', source, () => (made++, [tf.clone(source)])));
    derive();
    derive();
    configureDerived({ enabled: false });
    expect(derivedTensorCount()).toBe(0);
    derive();
    derive();
    expect(made).toBe(4);
    source.dispose();
  });
});

describe('the phase filters of a transposed convolution', () => {
  const x = (): tf.Tensor4D => random.normal(random.key(1), [2, 5, 5, 8]) as tf.Tensor4D;
  const tconv = (h: tf.Tensor4D, f: tf.Tensor4D): tf.Tensor => nn.conv2dTranspose(h, f, [2, 12, 12, 4], 2, 'valid');

  test('from the third call on, no kernel rebuilds them, and the output has the same bits as with the reuse off', async () => {
    const before = liveTensors();
    const h = x();
    const f = random.normal(random.key(2), [3, 3, 4, 8]) as tf.Tensor4D;
    configureDerived({ enabled: false });
    const fresh = tf.tidy(() => tconv(h, f).dataSync().slice());
    const freshKernels = await kernelNames(() => tconv(h, f));
    configureDerived({ enabled: true });
    const calls = [0, 1, 2, 3].map(() => tf.tidy(() => tconv(h, f).dataSync().slice()));
    calls.forEach((c) => expect(Buffer.from(c.buffer).equals(Buffer.from(fresh.buffer))).toBe(true));
    const reusedKernels = await kernelNames(() => tconv(h, f));
    // Fresh: a Transpose of f, a SplitV into its 9 taps, Concats per phase; reused: the phase convs and the interleave.
    expect(freshKernels).toEqual(expect.arrayContaining(['Transpose', 'SplitV', 'Concat']));
    expect(reusedKernels.filter((k) => ['Transpose', 'SplitV', 'Concat'].includes(k))).toEqual([]);
    expect(derivedTensorCount()).toBeGreaterThan(0);
    f.dispose();
    h.dispose();
    expect([derivedTensorCount(), liveTensors()]).toEqual([0, before]);
  });

  test('gradients through a reused filter bank are those of a fresh one', () => {
    const h = x();
    const f = random.normal(random.key(3), [3, 3, 4, 8]) as tf.Tensor4D;
    const grads = (): Float32Array[] =>
      tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tconv(a as tf.Tensor4D, b as tf.Tensor4D))))([h, f]).map((g) => g.dataSync() as Float32Array));
    configureDerived({ enabled: false });
    const fresh = grads();
    configureDerived({ enabled: true });
    const reused = [0, 1, 2].map(grads);
    reused.forEach((gs) => gs.forEach((g, i) => expect(Buffer.from(g.buffer).equals(Buffer.from(fresh[i]!.buffer))).toBe(true)));
    tf.dispose([h, f]);
  });
});
