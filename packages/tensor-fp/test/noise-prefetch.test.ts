/**
 * Laws of the speculative noise prefetch (noise-prefetch.ts): what the worker thread draws is bit-identical to
 * `random.normalPerSample` (its JavaScript is a copy of the Threefry-2x32 + Box–Muller loop, so this is the test
 * that the copy is exact), a mispredicted prefetch falls back to the synchronous draw, a taken draw never changes
 * afterwards (the shared buffer is reused by later jobs), the off switch posts nothing, and no tensor leaks.
 * Bit identity is checked on the float32 bit patterns (Uint32 views), so −0 and NaN would count too.
 */
import fc from 'fast-check';
import { tf, initBackend, random, noisePrefetch, liveTensors, type Key } from '@score-sde/tensor-fp';
import { runs } from '../../../tools/test-support/fast-check';

const ENV = 'SCORE_SDE_NOISE_PREFETCH';
/** How long a test waits for a job it expects from the worker (a job takes milliseconds; this only bounds a hang). */
const WAIT = 10_000;

/** The bit patterns of a float32 tensor's values. */
const bitsOf = (x: tf.Tensor): Uint32Array => new Uint32Array(Float32Array.from(x.dataSync() as Float32Array).buffer);

/** Waits until the worker has started and answers (the first job after start-up is drawn here, by design). */
const warmUp = async (): Promise<void> => {
  const k = [random.key(0)];
  for (let i = 0; i < 200; i++) {
    const before = noisePrefetch.stats().hits;
    noisePrefetch.prefetchNormals(k, [3]);
    await new Promise((r) => setTimeout(r, 10));
    noisePrefetch.normalPerSample(k, [3], WAIT).dispose();
    if (noisePrefetch.stats().hits > before) return;
  }
  throw new Error('the prefetch worker never answered');
};

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  process.env[ENV] = '1';
  await warmUp();
});

afterAll(() => {
  delete process.env[ENV];
});

/**
 * Keeps the worker busy for ≥ 100 ms (2²² normals at ≥ 25 ns each) so that a job posted next is still queued when it
 * is taken microseconds later: deterministically late unless this thread stalls for 100 ms between post and take.
 */
const occupyWorker = (): void => noisePrefetch.prefetchNormals([random.key(99)], [2 ** 22]);

/** Any key: both words over the whole uint32 range (the worker's integer arithmetic must wrap as random.ts's). */
const keyArb: fc.Arbitrary<Key> = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }));
/** Sample shapes of 1–3 axes, odd sizes included (the last normal of an odd row uses only the cosine). */
const shapeArb = fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 3 });

describe('noise prefetch', () => {
  test('worker normals ≡ normalPerSample bit for bit, for any keys and shape (and the draw is taken from the worker)', () => {
    fc.assert(
      fc.property(fc.array(keyArb, { minLength: 1, maxLength: 6 }), shapeArb, (keys, shape) => {
        const before = noisePrefetch.stats();
        noisePrefetch.prefetchNormals(keys, shape);
        const fast = noisePrefetch.normalPerSample(keys, shape, WAIT);
        const sync = random.normalPerSample(keys, shape);
        expect(fast.shape).toEqual([keys.length, ...shape]);
        expect(bitsOf(fast)).toEqual(bitsOf(sync));
        // Exactly one draw served by the worker: the identity above is about the worker's numbers, not the fallback.
        expect(noisePrefetch.stats().hits).toBe(before.hits + 1);
        tf.dispose([fast, sync]);
      }),
      runs(40),
    );
  });

  test('a batch of MNIST size (64 × 28 × 28 × 1) from the worker ≡ normalPerSample bit for bit', () => {
    const keys = random.split(random.key(7), 64);
    const before = noisePrefetch.stats().hits;
    noisePrefetch.prefetchNormals(keys, [28, 28, 1]);
    const fast = noisePrefetch.normalPerSample(keys, [28, 28, 1], WAIT);
    const sync = random.normalPerSample(keys, [28, 28, 1]);
    expect(noisePrefetch.stats().hits).toBe(before + 1);
    // Byte comparison (Jest's toEqual on 50 176 elements takes half a second).
    expect(Buffer.compare(Buffer.from(bitsOf(fast).buffer), Buffer.from(bitsOf(sync).buffer))).toBe(0);
    tf.dispose([fast, sync]);
  });

  test('mispredicted prefetch (other keys, other shape, other batch size) ⇒ the synchronous draw, and the next prefetch is exact again', () => {
    const ks = random.split(random.key(3), 4);
    const [a, b] = [ks.slice(0, 2), ks.slice(2, 4)];
    const cases: ReadonlyArray<readonly [ReadonlyArray<Key>, number[], ReadonlyArray<Key>, number[]]> = [
      [a, [5], b, [5]], // other keys
      [a, [5], a, [6]], // other shape, same size prefix
      [a, [2, 3], a, [3, 2]], // same size, other shape
      [a, [5], [a[0]!], [5]], // other batch
    ];
    for (const [pk, ps, ck, cs] of cases) {
      const before = noisePrefetch.stats();
      noisePrefetch.prefetchNormals(pk, ps);
      const got = noisePrefetch.normalPerSample(ck, cs);
      const want = random.normalPerSample(ck, cs);
      expect(bitsOf(got)).toEqual(bitsOf(want));
      expect(noisePrefetch.stats().misses).toBe(before.misses + 1);
      expect(noisePrefetch.stats().hits).toBe(before.hits);
      tf.dispose([got, want]);
      // The stale job is still queued in the worker; the next job must still come back exact.
      noisePrefetch.prefetchNormals(b, [7]);
      const next = noisePrefetch.normalPerSample(b, [7], WAIT);
      const nextWant = random.normalPerSample(b, [7]);
      expect(bitsOf(next)).toEqual(bitsOf(nextWant));
      expect(noisePrefetch.stats().hits).toBe(before.hits + 1);
      tf.dispose([next, nextWant]);
    }
  });

  // On cpu, which keeps the very array a tensor is made from (wasm copies it into its heap at once).
  test('a draw taken from the worker does not change when later jobs reuse the shared buffer (cpu backend)', async () => {
    const before = tf.getBackend();
    await tf.setBackend('cpu');
    try {
      const k1 = random.split(random.key(5), 3);
      const k2 = random.split(random.key(6), 3);
      const hits = noisePrefetch.stats().hits;
      noisePrefetch.prefetchNormals(k1, [9]);
      const first = noisePrefetch.normalPerSample(k1, [9], WAIT);
      const snapshot = bitsOf(first);
      noisePrefetch.prefetchNormals(k2, [9]);
      const second = noisePrefetch.normalPerSample(k2, [9], WAIT);
      expect(noisePrefetch.stats().hits).toBe(hits + 2);
      expect(bitsOf(first)).toEqual(snapshot);
      expect(bitsOf(second)).not.toEqual(snapshot);
      tf.dispose([first, second]);
    } finally {
      await tf.setBackend(before);
    }
  });

  test('a job not done when the draw is needed (no wait) ⇒ drawn here, bit-identical, and the next prefetch is exact again', () => {
    const keys = random.split(random.key(10), 64);
    const before = noisePrefetch.stats();
    occupyWorker();
    noisePrefetch.prefetchNormals(keys, [28, 28, 1]);
    // Taken microseconds after the post, behind a job of ≥ 100 ms: late.
    const got = noisePrefetch.normalPerSample(keys, [28, 28, 1]);
    const want = random.normalPerSample(keys, [28, 28, 1]);
    expect(noisePrefetch.stats().late).toBe(before.late + 1);
    expect(Buffer.compare(Buffer.from(bitsOf(got).buffer), Buffer.from(bitsOf(want).buffer))).toBe(0);
    tf.dispose([got, want]);
    const k2 = random.split(random.key(11), 2);
    noisePrefetch.prefetchNormals(k2, [5]);
    expect(noisePrefetch.settle(WAIT)).toBe(true);
    const next = noisePrefetch.normalPerSample(k2, [5]);
    const nextWant = random.normalPerSample(k2, [5]);
    expect(noisePrefetch.stats().hits).toBe(before.hits + 1);
    expect(bitsOf(next)).toEqual(bitsOf(nextWant));
    tf.dispose([next, nextWant]);
  });

  test(`${ENV}=auto: batches under MIN_PREFETCH_SIZE normals are not prefetched, larger ones are`, () => {
    process.env[ENV] = 'auto';
    try {
      const small = random.split(random.key(12), 2);
      const before = noisePrefetch.stats().posted;
      noisePrefetch.prefetchNormals(small, [noisePrefetch.MIN_PREFETCH_SIZE / 2 - 1]);
      expect(noisePrefetch.stats().posted).toBe(before);
      noisePrefetch.prefetchNormals(small, [noisePrefetch.MIN_PREFETCH_SIZE / 2]);
      expect(noisePrefetch.stats().posted).toBe(before + 1);
      noisePrefetch.settle(WAIT);
    } finally {
      process.env[ENV] = '1';
    }
  });

  test(`${ENV} unset or 0 ⇒ off: nothing is posted and the draw is the synchronous one`, () => {
    delete process.env[ENV];
    expect(noisePrefetch.enabled()).toBe(false);
    process.env[ENV] = '0';
    try {
      const keys = random.split(random.key(8), 2);
      const before = noisePrefetch.stats();
      expect(noisePrefetch.enabled()).toBe(false);
      noisePrefetch.prefetchNormals(keys, [4]);
      const got = noisePrefetch.normalPerSample(keys, [4]);
      const want = random.normalPerSample(keys, [4]);
      expect(bitsOf(got)).toEqual(bitsOf(want));
      expect(noisePrefetch.stats()).toEqual(before);
      tf.dispose([got, want]);
    } finally {
      process.env[ENV] = '1';
    }
  });

  // Last: it leaves the auto setting backing off.
  test(`${ENV}=auto: after 3 late jobs in a row the next prefetches are skipped (steps too short for the worker)`, () => {
    process.env[ENV] = 'auto';
    try {
      const keys = random.split(random.key(13), 64);
      const before = noisePrefetch.stats();
      for (let i = 0; i < 3; i++) {
        occupyWorker();
        noisePrefetch.prefetchNormals(keys, [28, 28, 1]);
        // Microseconds after the post, behind a job of ≥ 100 ms: late.
        noisePrefetch.normalPerSample(keys, [28, 28, 1]).dispose();
      }
      expect(noisePrefetch.stats().late).toBe(before.late + 3);
      expect(noisePrefetch.stats().posted).toBe(before.posted + 6);
      noisePrefetch.prefetchNormals(keys, [28, 28, 1]);
      expect(noisePrefetch.stats().posted).toBe(before.posted + 6);
      noisePrefetch.settle(WAIT);
    } finally {
      process.env[ENV] = '1';
    }
  });

  test('no tensor leak: prefetch + draw + dispose leaves the live tensors unchanged', () => {
    const keys = random.split(random.key(9), 4);
    const before = liveTensors();
    for (let i = 0; i < 5; i++) {
      noisePrefetch.prefetchNormals(keys, [6]);
      noisePrefetch.normalPerSample(keys, [6], WAIT).dispose();
    }
    expect(liveTensors()).toBe(before);
  });
});
