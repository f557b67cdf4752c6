import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { tf, initBackend } from '@score-sde/tensor-fp';
import { imageGrid, gridSize, decodeGrayPng, pngSize, writePng, toByte, toImageBatch } from '../../src/lib/png';
import { runs } from '@score-sde/tensor-fp/testing';

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(`expected Right, got ${JSON.stringify(e.left)}`);
  return e.right;
};

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

describe('imageGrid', () => {
  it('decodes back (pngjs) to the grid size and puts pixel (y, x) of image i at its cell, scaled and padded', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        (n, cols, h, w, pad, scale) => {
          // Image i has value v(i, y, x) = ((i·h + y)·w + x) mod 11 / 10 — distinct neighbours, all in [0, 1].
          const data = Float32Array.from({ length: n * h * w }, (_, k) => (k % 11) / 10);
          const png = right(imageGrid(data, cols, { height: h, width: w, pad, scale, padValue: 0.5 }));
          const img = decodeGrayPng(png);
          const size = gridSize(n, h, w, cols, pad, scale);
          expect([img.width, img.height]).toEqual([size.width, size.height]);
          const c = Math.min(cols, n);
          for (let i = 0; i < n; i++)
            for (let y = 0; y < h; y++)
              for (let x = 0; x < w; x++) {
                const gx = (pad + (i % c) * (w + pad) + x) * scale + scale - 1;
                const gy = (pad + Math.floor(i / c) * (h + pad) + y) * scale + scale - 1;
                expect(img.pixels[gy * img.width + gx]).toBe(toByte(data[(i * h + y) * w + x]!));
              }
          // The top-left corner is padding whenever there is any.
          if (pad > 0) expect(img.pixels[0]).toBe(toByte(0.5));
        },
      ),
      runs(25),
    );
  });

  it('clamps to [0, 1] (and maps NaN to black): −1 → 0, 2 → 255, NaN → 0, 0.5 → 128', () => {
    const png = right(imageGrid([-1, 2, NaN, 0.5], 1, { height: 2, width: 2, pad: 0 }));
    expect(Array.from(decodeGrayPng(png).pixels)).toEqual([0, 255, 0, 128]);
  });

  it('a tensor [N, H, W, 1] gives the same PNG as its values, and is not disposed', () => {
    const values = Float32Array.from({ length: 3 * 5 * 4 }, (_, k) => (k % 7) / 6);
    const x = tf.tensor4d(values, [3, 5, 4, 1]);
    const a = right(imageGrid(x, 2, { scale: 2 }));
    const b = right(imageGrid(values, 2, { scale: 2, height: 5, width: 4 }));
    expect(Buffer.compare(a, b)).toBe(0);
    expect(x.isDisposed).toBe(false);
    x.dispose();
    expect(right(pngSize(a))).toEqual({ width: decodeGrayPng(a).width, height: decodeGrayPng(a).height });
  });

  it('says what is wrong: wrong tensor shape, length not a whole number of images, cols < 1, no images', () => {
    const bad = tf.zeros([2, 3, 3, 3]);
    const msg = (e: E.Either<{ message: string }, unknown>) => (E.isLeft(e) ? e.left.message : 'Right');
    expect(msg(imageGrid(bad, 2))).toMatch(/expected images of shape \[N, H, W, 1\].*got \[2, 3, 3, 3\]/);
    bad.dispose();
    expect(msg(imageGrid(new Float32Array(10), 2, { height: 3, width: 3 }))).toMatch(/10 values are not a whole number of 3×3 images/);
    expect(msg(imageGrid(new Float32Array(9), 0, { height: 3, width: 3 }))).toMatch(/cols must be a positive integer/);
    expect(msg(imageGrid(new Float32Array(0), 2))).toMatch(/no images/);
    expect(msg(pngSize(new Uint8Array(30)))).toMatch(/not a PNG/);
    expect(E.isRight(toImageBatch(new Float32Array(28 * 28 * 2)))).toBe(true);
  });

  it('writePng writes the bytes to a new directory', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'png-test-'));
    try {
      const png = right(imageGrid([0, 1, 1, 0], 1, { height: 2, width: 2 }));
      const target = path.join(dir, 'sub', 'grid.png');
      expect(E.isRight(await writePng(target, png)())).toBe(true);
      expect(Buffer.compare(fs.readFileSync(target), png)).toBe(0);
      expect(fs.readdirSync(path.join(dir, 'sub'))).toEqual(['grid.png']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
