/**
 * Scoped memory: every public tensor function of tensor-fp returns its result and nothing else survives;
 * a long scoped loop does not grow the number of live tensors.
 */
import * as E from 'fp-ts/Either';
import { tf, initBackend, random, nn, conv, scoped, scopedFn, leakedBy, leakedByAsync, liveTensors, watchReads, asBatch, column, mulPerSample, sumPerSample, flattenSamples, unflattenSamples, type Batch } from '@score-sde/tensor-fp';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const k = random.key(0);

describe('every public tensor function leaves numTensors unchanged (beyond what it returns)', () => {
  // Made in beforeAll (after the backend is up); the cases below read them when they run.
  let x: tf.Tensor4D, f: tf.Tensor4D, ft: tf.Tensor4D, h: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, t: tf.Tensor, W: tf.Tensor;
  let batch: Batch<readonly [12, 12, 4]>;
  let flat: Batch<readonly [number]>;
  const keys = random.split(k, 3);
  beforeAll(() => {
    x = random.normal(k, [2, 12, 12, 4]) as tf.Tensor4D;
    f = random.normal(random.key(1), [3, 3, 4, 8]) as tf.Tensor4D;
    ft = random.normal(random.key(2), [3, 3, 4, 8]) as tf.Tensor4D;
    h = random.normal(random.key(3), [2, 5, 5, 8]) as tf.Tensor4D;
    gamma = tf.ones([4]);
    beta = tf.zeros([4]);
    t = tf.tensor1d([0.1, 0.9]);
    W = random.normal(random.key(4), [8]);
    batch = E.getOrElseW(() => {
      throw new Error('not a batch');
    })(asBatch(x, [12, 12, 4] as const));
  });
  beforeAll(() => {
    flat = flattenSamples(batch);
  });
  afterAll(() => tf.dispose([x, f, ft, h, gamma, beta, t, W, flat]));

  const cases: ReadonlyArray<readonly [string, () => tf.TensorContainer]> = [
    ['random.normal', () => random.normal(k, [3, 4])],
    ['random.uniform', () => random.uniform(k, [3, 4], -1, 1)],
    ['random.rademacher', () => random.rademacher(k, [3, 4])],
    ['random.normalPerSample', () => random.normalPerSample(keys, [2, 2])],
    ['random.uniformPerSample', () => random.uniformPerSample(keys, [2, 2])],
    ['random.rademacherPerSample', () => random.rademacherPerSample(keys, [2, 2])],
    ['nn.swish', () => nn.swish(x)],
    ['nn.fourierFeatures', () => nn.fourierFeatures(t, W)],
    ['nn.groupNorm', () => nn.groupNorm(x, 2, gamma, beta)],
    ['nn.conv2d', () => nn.conv2d(x, f, 2, 'valid')],
    ['nn.conv2dTranspose', () => nn.conv2dTranspose(h, ft, [2, 12, 12, 4], 2, 'valid')],
    ['conv.conv2d (same)', () => conv.conv2d(x, f, 2, 'same')],
    ['∇ groupNorm', () => tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(nn.groupNorm(a as tf.Tensor4D, 2, g, b)))([x, gamma, beta])],
    ['∇ conv2d', () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(nn.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'valid')))([x, f])],
    ['∇ conv2dTranspose', () => tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(nn.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [2, 12, 12, 4], 2, 'valid')))([h, ft])],
    ['column', () => column([1, 2], 4)],
    ['mulPerSample', () => mulPerSample(batch, [2, 3])],
    ['sumPerSample', () => sumPerSample(batch)],
    ['flattenSamples', () => flattenSamples(batch)],
    ['unflattenSamples', () => E.getOrElseW(() => tf.scalar(0))(unflattenSamples(flat, [12, 12, 4] as const))],
    ['scoped', () => scoped(() => tf.add(tf.mul(x, 2), 1))],
    ['scopedFn', () => scopedFn((a: tf.Tensor) => tf.sub(tf.exp(a), 1))(x)],
  ];

  test.each(cases)('%s leaks 0 tensors', (_name, f) => {
    expect(leakedBy(f)).toBe(0);
  });

  test('leakedBy itself counts a leak: a function that keeps an intermediate leaks 1', () => {
    let kept: tf.Tensor | undefined;
    expect(
      leakedBy(() => {
        kept = tf.mul(x, 2);
        return tf.add(kept, 1);
      }),
    ).toBe(1);
    tf.dispose(kept!);
  });

  test('leakedByAsync: an awaited scoped computation leaks 0', async () => {
    expect(await leakedByAsync(async () => scoped(() => nn.swish(x)))).toBe(0);
  });
});

describe('long loops', () => {
  test('a 1,000-step scoped pipeline (x ← x + h·swish(GN(conv(x)))) leaves numTensors unchanged', () => {
    const f = tf.mul(random.normal(random.key(5), [3, 3, 2, 2]), 0.1) as tf.Tensor4D;
    const gamma = tf.ones([2]);
    const beta = tf.zeros([2]);
    const before = liveTensors();
    let x = random.normal(random.key(6), [1, 6, 6, 2]) as tf.Tensor4D;
    for (let i = 0; i < 1000; i++) {
      const next = scoped(() => tf.add(x, tf.mul(nn.swish(nn.groupNorm(nn.conv2d(x, f, 1, 'same'), 1, gamma, beta)), 1e-3)) as tf.Tensor4D);
      x.dispose();
      x = next;
    }
    expect(liveTensors()).toBe(before + 1);
    expect(x.shape).toEqual([1, 6, 6, 2]);
    tf.dispose([x, f, gamma, beta]);
  });

  test('a 1,000-step loop of per-sample noise draws (keys split each step) leaves numTensors unchanged', () => {
    const before = liveTensors();
    let keys = random.split(random.key(7), 4);
    let x: Batch<readonly [3]> = E.getOrElseW(() => {
      throw new Error('not a batch');
    })(asBatch(tf.zeros([4, 3]), [3] as const));
    for (let i = 0; i < 1000; i++) {
      const [carry, use] = random.splitEach(keys);
      keys = carry;
      const next = scoped(() => tf.add(mulPerSample(x, [1, 1, 1, 1]), tf.mul(random.normalPerSample(use, [3]), 0.01)) as Batch<readonly [3]>);
      x.dispose();
      x = next;
    }
    expect(liveTensors()).toBe(before + 1);
    x.dispose();
  });
});

describe('watchReads', () => {
  test('counts each outermost read into JavaScript once (a dataSync reaching the backend read is one read), none for ops, and stops after restore', () => {
    let reads = 0;
    const restore = watchReads(() => {
      reads += 1;
    });
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.tidy(() => tf.add(tf.mul(x, 2), 1));
    expect(reads).toBe(0);
    y.dataSync();
    expect(reads).toBe(1);
    y.arraySync();
    expect(reads).toBe(2);
    restore();
    y.dataSync();
    expect(reads).toBe(2);
    tf.dispose([x, y]);
  });
});
