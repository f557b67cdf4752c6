/**
 * Drawing the playground's frame: the exact density p_t of a 2-D Gaussian mixture as a shaded image with contour lines
 * (marching squares over a grid of its values), and the samples as points, in a view box that follows p_t's spread.
 *
 * @module web/plot
 */
import { type GaussianMixture, mixtureLogProbAt, mixtureMean, mixtureVariance } from '@score-sde/sde-math';

/** The part of the plane a frame shows: its centre and half-width (a square). @category view */
export interface View {
  readonly cx: number;
  readonly cy: number;
  readonly half: number;
}

/**
 * A square view over both mixtures (the density at time t and the data): centre the mean of p_t, half-width 2.8
 * standard deviations of its widest coordinate, at least the data's own 2.8 σ box around the centre.
 * @category view
 */
export const viewOf = (pt: GaussianMixture, data: GaussianMixture): View => {
  const m = mixtureMean(pt);
  const spread = (g: GaussianMixture): number => 2.8 * Math.sqrt(Math.max(...mixtureVariance(g)));
  const dm = mixtureMean(data);
  const dataHalf = spread(data) + Math.max(Math.abs(dm[0]! - m[0]!), Math.abs(dm[1]! - m[1]!));
  return { cx: m[0]!, cy: m[1]!, half: Math.max(spread(pt), dataHalf) };
};

/** The grid of density values p(x) over the view, G × G cell centres, row 0 at the top. */
const densityGrid = (m: GaussianMixture, v: View, G: number): Float64Array => {
  const logp = mixtureLogProbAt(m);
  const out = new Float64Array(G * G);
  for (let i = 0; i < G; i++)
    for (let j = 0; j < G; j++) {
      const x = v.cx - v.half + ((j + 0.5) / G) * 2 * v.half;
      const y = v.cy + v.half - ((i + 0.5) / G) * 2 * v.half;
      out[i * G + j] = Math.exp(logp([x, y]));
    }
  return out;
};

/**
 * The segments where a G × G grid crosses `level` (marching squares, linear interpolation along each cell's edges;
 * in grid units, x to the right and y down; a saddle cell's four crossings are joined in edge order).
 * @category contours
 */
export const contourSegments = (f: Float64Array, G: number, level: number): ReadonlyArray<readonly [number, number, number, number]> => {
  const segs: Array<readonly [number, number, number, number]> = [];
  const at = (i: number, j: number): number => f[i * G + j]!;
  for (let i = 0; i + 1 < G; i++)
    for (let j = 0; j + 1 < G; j++) {
      // corners in order around the cell: (i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j)
      const cs: ReadonlyArray<readonly [number, number, number]> = [
        [j, i, at(i, j)],
        [j + 1, i, at(i, j + 1)],
        [j + 1, i + 1, at(i + 1, j + 1)],
        [j, i + 1, at(i + 1, j)],
      ];
      const hits: Array<readonly [number, number]> = [];
      for (let e = 0; e < 4; e++) {
        const [x0, y0, a] = cs[e]!;
        const [x1, y1, b] = cs[(e + 1) % 4]!;
        if ((a < level) !== (b < level)) {
          const s = (level - a) / (b - a);
          hits.push([x0 + s * (x1 - x0), y0 + s * (y1 - y0)]);
        }
      }
      for (let h = 0; h + 1 < hits.length; h += 2) segs.push([hits[h]![0], hits[h]![1], hits[h + 1]![0], hits[h + 1]![1]]);
    }
  return segs;
};

const GRID = 96;
const LEVELS = [0.02, 0.1, 0.25, 0.5, 0.75];

/**
 * Draws one frame: p_t shaded (√ of the density, relative to its maximum) with contours at 2, 10, 25, 50 and 75 % of
 * its maximum, the points (row-major [n, 2]) on top, and t in the corner.
 * @category drawing
 */
export const drawFrame = (canvas: HTMLCanvasElement, pt: GaussianMixture, view: View, points: ArrayLike<number>, label: string): void => {
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  const W = canvas.width;
  const H = canvas.height;
  const f = densityGrid(pt, view, GRID);
  const max = f.reduce((a, b) => Math.max(a, b), 0);
  const shade = document.createElement('canvas');
  shade.width = GRID;
  shade.height = GRID;
  const sctx = shade.getContext('2d')!;
  const img = sctx.createImageData(GRID, GRID);
  for (let k = 0; k < f.length; k++) {
    const a = max > 0 ? Math.sqrt(f[k]! / max) : 0;
    img.data.set([255 - 70 * a, 255 - 45 * a, 255 - 10 * a, 255], 4 * k);
  }
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(shade, 0, 0, W, H);
  ctx.strokeStyle = 'rgba(36, 87, 197, 0.8)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (const level of LEVELS)
    for (const [x0, y0, x1, y1] of contourSegments(f, GRID, level * max)) {
      // grid units are cell centres: cell k spans [k, k + 1) · (W / G)
      ctx.moveTo(((x0 + 0.5) / GRID) * W, ((y0 + 0.5) / GRID) * H);
      ctx.lineTo(((x1 + 0.5) / GRID) * W, ((y1 + 0.5) / GRID) * H);
    }
  ctx.stroke();
  ctx.fillStyle = 'rgba(200, 40, 30, 0.55)';
  const sx = W / (2 * view.half);
  for (let i = 0; i + 1 < points.length; i += 2) {
    const px = (points[i]! - (view.cx - view.half)) * sx;
    const py = (view.cy + view.half - points[i + 1]!) * sx;
    if (px >= -2 && px <= W + 2 && py >= -2 && py <= H + 2) ctx.fillRect(px - 1.5, py - 1.5, 3, 3);
  }
  ctx.fillStyle = '#1d2330';
  ctx.font = '13px ui-monospace, monospace';
  ctx.fillText(label, 8, 18);
};
