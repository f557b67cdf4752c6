/**
 * Grayscale image grids as PNG files (pngjs, no native code): a batch of images [N, H, W, 1] in [0, 1] laid out
 * `cols` per row with padding, optionally upscaled by an integer factor (nearest neighbour, so pixels stay
 * crisp).
 *
 * @module png
 */
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { PNG } from 'pngjs';
import { tf } from '@score-sde/tensor-fp';
import { type IoError, atomicWriteFile } from './report';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** N grayscale images of H×W pixels, row-major, values nominally in [0, 1]. @category model */
export interface ImageBatch {
  readonly data: ArrayLike<number>;
  readonly n: number;
  readonly height: number;
  readonly width: number;
}

/** Why a grid could not be made. @category errors */
export interface ImageError {
  readonly _tag: 'ImageError';
  readonly message: string;
}

const imageError = (message: string): ImageError => ({ _tag: 'ImageError', message });

/** Layout of a grid. @category model */
export interface GridOptions {
  /** Pixels of padding between and around images (before scaling), default 2. */
  readonly pad?: number;
  /** Integer upscaling factor (nearest neighbour), default 1. */
  readonly scale?: number;
  /** Gray level of the padding in [0, 1], default 0.5 (visible between white-on-black digits). */
  readonly padValue?: number;
  /** For a flat Float32Array input: image height and width, default 28 × 28 (MNIST). */
  readonly height?: number;
  readonly width?: number;
}

// -------------------------------------------------------------------------------------
// conversion
// -------------------------------------------------------------------------------------

/**
 * A batch from a tensor [N, H, W, 1] or [N, H, W] (read synchronously, not disposed) or from a flat array of
 * N·H·W values with H, W from the options (default 28 × 28).
 * @category conversion
 */
export const toImageBatch = (images: tf.Tensor | ArrayLike<number>, opts: Pick<GridOptions, 'height' | 'width'> = {}): E.Either<ImageError, ImageBatch> => {
  if (images instanceof tf.Tensor) {
    const s = images.shape;
    const ok = (s.length === 4 && s[3] === 1) || s.length === 3;
    if (!ok) return E.left(imageError(`expected images of shape [N, H, W, 1] or [N, H, W], got [${s.join(', ')}]`));
    return E.right({ data: images.dataSync() as Float32Array, n: s[0]!, height: s[1]!, width: s[2]! });
  }
  const height = opts.height ?? 28;
  const width = opts.width ?? 28;
  const per = height * width;
  if (!Number.isSafeInteger(height) || !Number.isSafeInteger(width) || height < 1 || width < 1) {
    return E.left(imageError(`image height and width must be positive integers, got ${height} × ${width}`));
  }
  if (images.length % per !== 0) return E.left(imageError(`${images.length} values are not a whole number of ${height}×${width} images`));
  return E.right({ data: images, n: images.length / per, height, width });
};

/** v ∈ [0, 1] ↦ byte round(255·clamp(v, 0, 1)); NaN ↦ 0. @category conversion */
export const toByte = (v: number): number => (Number.isNaN(v) ? 0 : Math.round(255 * Math.min(1, Math.max(0, v))));

/** Every pixel of a batch as a byte (for IDX files and PNGs). @category conversion */
export const toBytes = (batch: ImageBatch): Uint8Array => Uint8Array.from(batch.data, toByte);

// -------------------------------------------------------------------------------------
// grids
// -------------------------------------------------------------------------------------

/** Grid geometry: rows = ⌈N / cols⌉; size = (cols·W + (cols + 1)·pad)·scale by (rows·H + (rows + 1)·pad)·scale. @category grids */
export const gridSize = (n: number, height: number, width: number, cols: number, pad: number, scale: number): { readonly rows: number; readonly width: number; readonly height: number } => {
  const c = Math.max(1, Math.min(cols, n));
  const rows = Math.max(1, Math.ceil(n / c));
  return { rows, width: (c * width + (c + 1) * pad) * scale, height: (rows * height + (rows + 1) * pad) * scale };
};

/**
 * The grid as an 8-bit grayscale raster (row-major bytes) with its size: image i goes to row ⌊i / cols⌋,
 * column i mod cols; values clamped to [0, 1].
 * @category grids
 */
export const gridRaster = (batch: ImageBatch, cols: number, opts: GridOptions = {}): E.Either<ImageError, { readonly width: number; readonly height: number; readonly pixels: Uint8Array }> => {
  const pad = opts.pad ?? 2;
  const scale = opts.scale ?? 1;
  if (!Number.isSafeInteger(cols) || cols < 1) return E.left(imageError(`cols must be a positive integer, got ${cols}`));
  if (!Number.isSafeInteger(pad) || pad < 0) return E.left(imageError(`pad must be a non-negative integer, got ${pad}`));
  if (!Number.isSafeInteger(scale) || scale < 1) return E.left(imageError(`scale must be a positive integer, got ${scale}`));
  if (batch.n < 1) return E.left(imageError('no images to draw'));
  const c = Math.min(cols, batch.n);
  const { width, height } = gridSize(batch.n, batch.height, batch.width, c, pad, scale);
  const pixels = new Uint8Array(width * height).fill(toByte(opts.padValue ?? 0.5));
  const per = batch.height * batch.width;
  for (let i = 0; i < batch.n; i++) {
    const x0 = pad + (i % c) * (batch.width + pad);
    const y0 = pad + Math.floor(i / c) * (batch.height + pad);
    for (let y = 0; y < batch.height; y++) {
      for (let x = 0; x < batch.width; x++) {
        const b = toByte(batch.data[i * per + y * batch.width + x]!);
        for (let dy = 0; dy < scale; dy++) {
          const row = ((y0 + y) * scale + dy) * width;
          for (let dx = 0; dx < scale; dx++) pixels[row + (x0 + x) * scale + dx] = b;
        }
      }
    }
  }
  return E.right({ width, height, pixels });
};

/** Encodes an 8-bit grayscale raster as a PNG (colour type 0). @category encoding */
export const encodeGrayPng = (width: number, height: number, pixels: Uint8Array): Buffer => {
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
};

/**
 * A PNG of the images laid out `cols` per row (see {@link gridRaster}): images [N, H, W, 1] (tensor, not
 * disposed) or a flat array of N·H·W values in [0, 1].
 * @category grids
 */
export const imageGrid = (images: tf.Tensor | ArrayLike<number>, cols: number, opts: GridOptions = {}): E.Either<ImageError, Buffer> =>
  pipe(
    toImageBatch(images, opts),
    E.chain((batch) => gridRaster(batch, cols, opts)),
    E.map((r) => encodeGrayPng(r.width, r.height, r.pixels)),
  );

/** Writes PNG bytes to `path` atomically (see `atomicWriteFile`). @category files */
export const writePng = (path: string, png: Uint8Array): TE.TaskEither<IoError, void> => atomicWriteFile(path, png);

/** PNG dimensions from the IHDR chunk (bytes 16–23), without decoding. @category encoding */
export const pngSize = (png: Uint8Array): E.Either<ImageError, { readonly width: number; readonly height: number }> => {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.length < 24 || sig.some((b, i) => png[i] !== b)) return E.left(imageError('not a PNG file (bad signature)'));
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return E.right({ width: dv.getUint32(16), height: dv.getUint32(20) });
};

/** Decodes a PNG to 8-bit grayscale pixels (the red channel of RGBA), for tests and checks. @category encoding */
export const decodeGrayPng = (png: Buffer): { readonly width: number; readonly height: number; readonly pixels: Uint8Array } => {
  const img = PNG.sync.read(png);
  const pixels = new Uint8Array(img.width * img.height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = img.data[4 * i]!;
  return { width: img.width, height: img.height, pixels };
};
