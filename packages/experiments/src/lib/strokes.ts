/**
 * What a person sees in a grid of digits and FID may not weigh: stray strokes and background grain. A written digit
 * is (almost always) one connected stroke on a clean background; a sampler whose flow is wrong near the data leaves
 * detached specks beside the stroke, and one that stops while noise is left leaves faint grey grain on the
 * background. Both are counted on images in [0, 1], without a classifier, so real digits give their floor:
 *
 * - ink: pixels > {@link INK_THRESHOLD}; its connected components under 8-connectivity (diagonal neighbours touch,
 *   as a pen stroke drawn at an angle does);
 * - stray rate: the share of images with more than one ink component; stray ink: the ink outside each image's
 *   largest component, as a share of all ink;
 * - grain: the share of background pixels — more than {@link GRAIN_MARGIN} pixels (in both directions) from every
 *   stroke pixel at level ≥ 64 of 255 — at levels 10–63 of 255: faint grey where MNIST's background is black.
 *
 * @module lib/strokes
 */

/** Ink: pixels above half intensity. @category model */
export const INK_THRESHOLD = 0.5;
/** Stroke pixels for the background mask: levels ≥ 64 of 255 (the threshold half a level below, so float32 rounding of k/255 cannot move a level across it). @category model */
export const STROKE_LEVEL = 63.5 / 255;
/** Grain: background pixels at levels ≥ 10 of 255 (and below {@link STROKE_LEVEL}; half a level below, as there). @category model */
export const GRAIN_LOW = 9.5 / 255;
/** Background: pixels further than this (Chebyshev distance) from every stroke pixel. @category model */
export const GRAIN_MARGIN = 2;

/** Stray strokes and grain of a set of images. @category model */
export interface StrokeRecord {
  /** Images counted. */
  readonly n: number;
  /** Share of images whose ink has more than one 8-connected component. */
  readonly strayRate: number;
  /** Ink outside each image's largest component, over all ink (0 when there is no ink). */
  readonly strayInk: number;
  /** Share of background pixels at [GRAIN_LOW, STROKE_LEVEL) (0 when there is no background). */
  readonly grain: number;
}

/**
 * Sizes of the 8-connected components of the pixels of a `height` × `width` image (row-major) above `threshold`,
 * in the order their first pixel appears in a row-major scan.
 * @category statistics
 */
export const inkComponentSizes = (image: ArrayLike<number>, height: number, width: number, threshold: number = INK_THRESHOLD): ReadonlyArray<number> => {
  const seen = new Uint8Array(height * width);
  const sizes: number[] = [];
  const stack: number[] = [];
  for (let start = 0; start < height * width; start++) {
    if (seen[start] === 1 || !(image[start]! > threshold)) continue;
    seen[start] = 1;
    stack.push(start);
    let size = 0;
    while (stack.length > 0) {
      const p = stack.pop()!;
      size++;
      const r = Math.floor(p / width);
      const c = p - r * width;
      for (let dr = -1; dr <= 1; dr++) {
        for (let dc = -1; dc <= 1; dc++) {
          const rr = r + dr;
          const cc = c + dc;
          if (rr < 0 || rr >= height || cc < 0 || cc >= width) continue;
          const q = rr * width + cc;
          if (seen[q] === 0 && image[q]! > threshold) {
            seen[q] = 1;
            stack.push(q);
          }
        }
      }
    }
    sizes.push(size);
  }
  return sizes;
};

/**
 * Background pixels of an image and how many of them are grain: a pixel is background when no pixel within
 * {@link GRAIN_MARGIN} rows and columns of it is ≥ {@link STROKE_LEVEL}; grain when it is also ≥ {@link GRAIN_LOW}.
 * @category statistics
 */
export const backgroundGrain = (image: ArrayLike<number>, height: number, width: number): { readonly background: number; readonly grain: number } => {
  let background = 0;
  let grain = 0;
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      let nearStroke = false;
      for (let rr = Math.max(0, r - GRAIN_MARGIN); rr <= Math.min(height - 1, r + GRAIN_MARGIN) && !nearStroke; rr++) {
        for (let cc = Math.max(0, c - GRAIN_MARGIN); cc <= Math.min(width - 1, c + GRAIN_MARGIN); cc++) {
          if (image[rr * width + cc]! >= STROKE_LEVEL) {
            nearStroke = true;
            break;
          }
        }
      }
      if (nearStroke) continue;
      background++;
      if (image[r * width + c]! >= GRAIN_LOW) grain++;
    }
  }
  return { background, grain };
};

/**
 * The stroke record of `images`, n = images.length / (height · width) images of height × width in [0, 1], row-major
 * one after another (MNIST: 28 × 28).
 * @category statistics
 */
export const strokeRecord = (images: Float32Array, height: number = 28, width: number = 28): StrokeRecord => {
  const pixels = height * width;
  const n = Math.floor(images.length / pixels);
  let stray = 0;
  let outside = 0;
  let ink = 0;
  let background = 0;
  let grain = 0;
  for (let i = 0; i < n; i++) {
    const image = images.subarray(i * pixels, (i + 1) * pixels);
    const sizes = inkComponentSizes(image, height, width);
    if (sizes.length > 1) stray++;
    const total = sizes.reduce((a, b) => a + b, 0);
    ink += total;
    outside += total - (sizes.length > 0 ? Math.max(...sizes) : 0);
    const g = backgroundGrain(image, height, width);
    background += g.background;
    grain += g.grain;
  }
  return { n, strayRate: n === 0 ? 0 : stray / n, strayInk: ink === 0 ? 0 : outside / ink, grain: background === 0 ? 0 : grain / background };
};
