/**
 * Stray strokes and background grain (lib/strokes): the connected components of the ink, and the faint grey of
 * the background, counted exactly on images whose answer is known by construction.
 */
import fc from 'fast-check';
import { inkComponentSizes, backgroundGrain, strokeRecord, GRAIN_LOW, STROKE_LEVEL } from '../../src/lib/strokes';

const H = 28;
const W = 28;
const blank = (): Float32Array => new Float32Array(H * W);
const paint = (img: Float32Array, r: number, c: number, v = 1): Float32Array => {
  img[r * W + c] = v;
  return img;
};
/** A filled rectangle of ink, rows r0…r1 and columns c0…c1 inclusive. */
const block = (img: Float32Array, r0: number, c0: number, r1: number, c1: number, v = 1): Float32Array => {
  for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) paint(img, r, c, v);
  return img;
};
const sorted = (xs: ReadonlyArray<number>): ReadonlyArray<number> => [...xs].sort((a, b) => a - b);
const transpose = (img: Float32Array): Float32Array => {
  const out = blank();
  for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) out[c * W + r] = img[r * W + c]!;
  return out;
};

describe('ink components (8-connectivity)', () => {
  test('blocks separated by at least one blank row or column are separate components with their areas; a diagonal touch joins two blocks', () => {
    // 3 × 4 block, 2 × 2 block two columns away, a single speck
    const img = block(block(paint(blank(), 20, 20), 2, 2, 4, 5), 2, 7, 3, 8);
    expect(inkComponentSizes(img, H, W)).toEqual([12, 4, 1]);
    // touching corner to corner: (4, 5) and (5, 6)
    expect(inkComponentSizes(block(block(blank(), 2, 2, 4, 5), 5, 6, 6, 7), H, W)).toEqual([16]);
    // the same pixels at threshold 0.5 exactly are not ink (ink is strictly above it)
    expect(inkComponentSizes(block(blank(), 0, 0, 2, 2, 0.5), H, W)).toEqual([]);
  });

  test('components of k blocks placed on a lattice with gaps: k components, sizes the blocks’ areas, whatever their sizes and positions', () => {
    // cells of 7 × 7 pixels: a block of up to 6 × 6 inside each leaves a blank row and column between neighbours
    const cell = fc.record({ h: fc.integer({ min: 1, max: 6 }), w: fc.integer({ min: 1, max: 6 }), dr: fc.integer({ min: 0, max: 5 }), dc: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(fc.array(fc.option(cell, { nil: undefined }), { minLength: 16, maxLength: 16 }), (cells) => {
        const img = blank();
        const areas: number[] = [];
        cells.forEach((b, k) => {
          if (b === undefined) return;
          const r0 = 7 * Math.floor(k / 4) + Math.min(b.dr, 6 - b.h);
          const c0 = 7 * (k % 4) + Math.min(b.dc, 6 - b.w);
          block(img, r0, c0, r0 + b.h - 1, c0 + b.w - 1);
          areas.push(b.h * b.w);
        });
        expect(sorted(inkComponentSizes(img, H, W))).toEqual(sorted(areas));
      }),
      { numRuns: 200 },
    );
  });

  test('sizes sum to the ink count and are the same on the transposed image (random images at several densities)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.double({ min: 0.05, max: 0.6, noNaN: true }), (seed, density) => {
        let s = seed;
        const next = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
        const img = Float32Array.from({ length: H * W }, () => (next() < density ? 0.5 + 0.5 * next() + 1e-3 : 0.5 * next()));
        const sizes = inkComponentSizes(img, H, W);
        const ink = img.reduce((n, v) => n + (v > 0.5 ? 1 : 0), 0);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(ink);
        expect(sorted(inkComponentSizes(transpose(img), H, W))).toEqual(sorted(sizes));
      }),
      { numRuns: 100 },
    );
  });
});

describe('stroke record', () => {
  test('stray rate = share of images with more than one component; stray ink = ink outside each largest component over all ink', () => {
    const one = block(blank(), 5, 5, 20, 8); // 64 pixels
    const twoParts = block(paint(blank(), 25, 25), 5, 5, 20, 8); // 64 + 1
    const empty = blank();
    const rec = strokeRecord(Float32Array.from([...one, ...twoParts, ...empty, ...one]));
    expect(rec.n).toBe(4);
    expect(rec.strayRate).toBe(1 / 4);
    expect(rec.strayInk).toBe(1 / (64 + 65 + 64));
  });

  test('grain = share of background pixels (more than 2 pixels from every stroke pixel, level ≥ 64) at levels 10–63 of 255: a uniform grey background is all grain, black is none, and the margin round a stroke is not background', () => {
    const grey = (v: number): Float32Array => new Float32Array(H * W).fill(v);
    // levels k/255 as float32, as images are: 10 is grain, 9 is not, 64 is a stroke, 63 is not
    const level = (k: number): number => Math.fround(k / 255);
    expect(GRAIN_LOW).toBeLessThan(level(10));
    expect(STROKE_LEVEL).toBeLessThan(level(64));
    expect(backgroundGrain(grey(level(10)), H, W)).toEqual({ background: H * W, grain: H * W });
    expect(backgroundGrain(grey(level(63)), H, W)).toEqual({ background: H * W, grain: H * W });
    expect(backgroundGrain(grey(level(9)), H, W)).toEqual({ background: H * W, grain: 0 });
    // a stroke pixel at (10, 10) removes the 5 × 5 square round it from the background; level 63 does not
    const dot = paint(grey(level(10)), 10, 10, level(64));
    expect(backgroundGrain(dot, H, W)).toEqual({ background: H * W - 25, grain: H * W - 25 });
    const corner = paint(grey(0), 0, 0, 1);
    expect(backgroundGrain(corner, H, W)).toEqual({ background: H * W - 9, grain: 0 });
    expect(backgroundGrain(paint(grey(0.2), 10, 10, level(63)), H, W).background).toBe(H * W);
    expect(strokeRecord(Float32Array.from([...grey(0.1), ...grey(0)])).grain).toBe(1 / 2);
  });
});
