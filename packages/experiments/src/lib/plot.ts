/**
 * Figures without a browser: line plots written by hand as SVG (axes, "nice" ticks, labels, legend, optional
 * log axes), rendered to PNG with resvg (Rust, prebuilt, no system libraries); and figures that put several
 * PNGs side by side with captions.
 *
 * Text needs a font. resvg is given one font file directly when a known one exists (DejaVu Sans, Liberation
 * Sans, Arial, Helvetica; or the file named by `SCORE_SDE_FONT`), else it loads the system fonts; on a system
 * with no fonts at all, the lines still render and the text is silently missing (see {@link fontConfig}).
 *
 * @module plot
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { Resvg, type ResvgRenderOptions } from '@resvg/resvg-js';
import { type ImageError, pngSize } from './png';

// -------------------------------------------------------------------------------------
// fonts
// -------------------------------------------------------------------------------------

/** The font resvg is given. @category fonts */
export interface FontConfig {
  /** Font files loaded explicitly (empty: system fonts only). */
  readonly fontFiles: ReadonlyArray<string>;
  readonly loadSystemFonts: boolean;
  /** The family name to ask for in the SVG. */
  readonly family: string;
  /** A human-readable account of what was chosen. */
  readonly description: string;
}

/** DejaVu Sans from the npm package `dejavu-fonts-ttf` (a dependency), so text renders on machines without fonts. */
const bundledFont = (): ReadonlyArray<{ readonly path: string; readonly family: string }> => {
  try {
    const dir = path.dirname(require.resolve('dejavu-fonts-ttf/package.json'));
    return [{ path: path.join(dir, 'ttf', 'DejaVuSans.ttf'), family: 'DejaVu Sans' }];
  } catch {
    return [];
  }
};

const FONT_CANDIDATES: ReadonlyArray<{ readonly path: string; readonly family: string }> = [
  ...bundledFont(),
  { path: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', family: 'DejaVu Sans' },
  { path: '/usr/share/fonts/TTF/DejaVuSans.ttf', family: 'DejaVu Sans' },
  { path: '/usr/share/fonts/dejavu/DejaVuSans.ttf', family: 'DejaVu Sans' },
  { path: '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf', family: 'DejaVu Sans' },
  { path: '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf', family: 'Liberation Sans' },
  { path: '/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf', family: 'Liberation Sans' },
  { path: '/System/Library/Fonts/Supplemental/Arial.ttf', family: 'Arial' },
  { path: '/Library/Fonts/Arial.ttf', family: 'Arial' },
  { path: '/System/Library/Fonts/Helvetica.ttc', family: 'Helvetica' },
  { path: 'C:\\Windows\\Fonts\\arial.ttf', family: 'Arial' },
];

let cachedFont: FontConfig | undefined;

/**
 * The font to render text with: `SCORE_SDE_FONT` (a .ttf/.otf path, family from `SCORE_SDE_FONT_FAMILY` or
 * guessed from the file name) if set, else the bundled DejaVu Sans (npm `dejavu-fonts-ttf`), else the first
 * known system font file that exists, else the system fonts.
 * Cached after the first call.
 * @category fonts
 */
export const fontConfig = (): FontConfig => {
  if (cachedFont !== undefined) return cachedFont;
  const fromEnv = process.env['SCORE_SDE_FONT'];
  if (fromEnv !== undefined && fromEnv !== '' && fs.existsSync(fromEnv)) {
    const family = process.env['SCORE_SDE_FONT_FAMILY'] ?? (fromEnv.split(/[\\/]/).pop() ?? '').replace(/[-_].*$|\.[^.]+$/g, '');
    cachedFont = { fontFiles: [fromEnv], loadSystemFonts: false, family, description: `${family} from SCORE_SDE_FONT=${fromEnv}` };
    return cachedFont;
  }
  const found = FONT_CANDIDATES.find((c) => fs.existsSync(c.path));
  cachedFont =
    found !== undefined
      ? { fontFiles: [found.path], loadSystemFonts: false, family: found.family, description: `${found.family} (${found.path})` }
      : { fontFiles: [], loadSystemFonts: true, family: 'sans-serif', description: 'system fonts (no known font file found; text may be missing)' };
  return cachedFont;
};

const renderOptions = (fit: ResvgRenderOptions['fitTo'], imageRendering: 0 | 1 = 0): ResvgRenderOptions => {
  const f = fontConfig();
  return {
    fitTo: fit,
    background: 'white',
    imageRendering,
    font: {
      loadSystemFonts: f.loadSystemFonts,
      fontFiles: [...f.fontFiles],
      defaultFontFamily: f.family,
      sansSerifFamily: f.family,
    },
    logLevel: 'off',
  };
};

/**
 * Renders an SVG string to PNG bytes, `width` pixels wide (default: the SVG's own width).
 * @category rendering
 */
export const svgToPng = (svg: string, width?: number): Buffer =>
  new Resvg(svg, renderOptions(width === undefined ? { mode: 'original' } : { mode: 'width', value: width })).render().asPng();

// -------------------------------------------------------------------------------------
// scales and ticks
// -------------------------------------------------------------------------------------

/** A "nice" step for about `target` intervals over `range`: 1, 2 or 5 × 10^k. @category ticks */
export const niceStep = (range: number, target = 5): number => {
  const raw = range / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
};

/** An axis: its domain and tick positions. @category ticks */
export interface Axis {
  readonly lo: number;
  readonly hi: number;
  readonly ticks: ReadonlyArray<number>;
  readonly log: boolean;
}

/**
 * Linear axis covering [lo, hi]: domain widened to multiples of a nice step, ticks at every step.
 * A degenerate range (lo = hi) is widened to lo ± max(1, |lo|/10).
 * @category ticks
 */
export const linearAxis = (lo: number, hi: number, target = 5): Axis => {
  let a = lo;
  let b = hi;
  const scale = Math.max(Math.abs(a), Math.abs(b));
  if (!(b - a > 1e-12 * scale && b - a > 1e-300)) {
    // Degenerate (or sub-rounding) range: widen to ±10% of the value, or ±1 around 0.
    const w = scale > 1e-300 ? scale / 10 : 1;
    a -= w;
    b += w;
  }
  const step = niceStep(b - a, target);
  // Round away float noise (3.0000000001 steps is 3), then make sure the rounded ends still contain [a, b].
  const tick = (k: number): number => Number((k * step).toPrecision(12));
  let start = Math.floor(a / step + 1e-9);
  let end = Math.ceil(b / step - 1e-9);
  while (tick(start) > a) start--;
  while (tick(end) < b) end++;
  const ticks: number[] = [];
  for (let k = start; k <= end; k++) ticks.push(tick(k));
  return { lo: ticks[0]!, hi: ticks[ticks.length - 1]!, ticks, log: false };
};

/**
 * Log axis covering [lo, hi] (> 0): domain padded by 5% in log space; ticks at 1·10^k, plus 2·10^k and 5·10^k
 * when the range spans at most 3 decades.
 * @category ticks
 */
export const logAxis = (lo: number, hi: number): Axis => {
  let la = Math.log10(lo);
  let lb = Math.log10(hi);
  if (!(lb > la)) {
    la -= 0.5;
    lb += 0.5;
  }
  const padding = 0.05 * (lb - la);
  la -= padding;
  lb += padding;
  const ticksWith = (mantissas: ReadonlyArray<number>): number[] => {
    const out: number[] = [];
    for (let k = Math.floor(la); k <= Math.ceil(lb); k++) {
      for (const m of mantissas) {
        const v = Number((m * 10 ** k).toPrecision(12));
        const lv = Math.log10(v);
        if (lv >= la - 1e-9 && lv <= lb + 1e-9) out.push(v);
      }
    }
    return out;
  };
  // Narrow ranges (well within a decade) get every mantissa, then plain nice linear ticks, so that at least two
  // labelled ticks always show.
  let ticks = ticksWith(lb - la <= 3 ? [1, 2, 5] : [1]);
  if (ticks.length < 2) ticks = ticksWith([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  if (ticks.length < 2) ticks = linearAxis(10 ** la, 10 ** lb, 4).ticks.filter((v) => v > 0 && Math.log10(v) >= la - 1e-9 && Math.log10(v) <= lb + 1e-9);
  return { lo: 10 ** la, hi: 10 ** lb, ticks, log: true };
};

/** Position of v on an axis as a fraction of its length (0 at lo, 1 at hi). @category ticks */
export const axisFraction = (axis: Axis, v: number): number =>
  axis.log ? (Math.log10(v) - Math.log10(axis.lo)) / (Math.log10(axis.hi) - Math.log10(axis.lo)) : (v - axis.lo) / (axis.hi - axis.lo);

/** A tick label: 0, plain decimals for 1e-3 ≤ |v| < 1e5, else `2e-4` / `1e6` style. @category ticks */
export const formatTick = (v: number): string => {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) {
    const [m, e] = v.toExponential().split('e');
    return `${Number(Number(m).toPrecision(3))}e${Number(e)}`;
  }
  return String(Number(v.toPrecision(6)));
};

// -------------------------------------------------------------------------------------
// line plots
// -------------------------------------------------------------------------------------

/** One line of a plot. Non-finite points (and non-positive ones on a log axis) are skipped. @category line plots */
export interface Series {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  /** CSS colour; default from the tab10 palette by position. */
  readonly color?: string;
  /** Draw a dot at each point (default: when the series has ≤ 60 points). */
  readonly markers?: boolean;
  readonly dashed?: boolean;
  readonly strokeWidth?: number;
  readonly opacity?: number;
}

/** A line plot as data. @category line plots */
export interface LinePlotSpec {
  readonly title?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: ReadonlyArray<Series>;
  readonly logX?: boolean;
  readonly logY?: boolean;
  /** SVG size in px, default 800 × 500. */
  readonly width?: number;
  readonly height?: number;
  /** Legend corner, default top-right; 'none' hides it. */
  readonly legend?: 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left' | 'none';
}

/** Matplotlib's tab10 palette. @category line plots */
export const PALETTE: ReadonlyArray<string> = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Escapes text for SVG/XML. @category line plots */
export const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const usable = (p: readonly [number, number], logX: boolean, logY: boolean): boolean =>
  Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!logX || p[0] > 0) && (!logY || p[1] > 0);

const fmt = (v: number): string => String(Math.round(v * 100) / 100);

/**
 * The plot as an SVG string: frame, grid lines at the ticks, tick labels, axis labels, title, one polyline (and
 * optional dots) per series, and a legend. Pure: same spec, same string.
 * @category line plots
 */
export const linePlotSvg = (spec: LinePlotSpec): string => {
  const W = spec.width ?? 800;
  const H = spec.height ?? 500;
  const logX = spec.logX === true;
  const logY = spec.logY === true;
  const family = escapeXml(fontConfig().family);
  const margin = { left: 78, right: 24, top: spec.title !== undefined ? 44 : 20, bottom: 58 };
  const pw = W - margin.left - margin.right;
  const ph = H - margin.top - margin.bottom;

  const series = spec.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length]!, pts: s.points.filter((p) => usable(p, logX, logY)) }));
  const all = series.flatMap((s) => s.pts);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = xs.length > 0 ? [Math.min(...xs), Math.max(...xs)] : logX ? [1, 10] : [0, 1];
  const [y0, y1] = ys.length > 0 ? [Math.min(...ys), Math.max(...ys)] : logY ? [1, 10] : [0, 1];
  const ax = logX ? logAxis(x0, x1) : linearAxis(x0, x1, 6);
  const ay = logY ? logAxis(y0, y1) : linearAxis(y0, y1, 5);
  const px = (v: number) => margin.left + axisFraction(ax, v) * pw;
  const py = (v: number) => margin.top + (1 - axisFraction(ay, v)) * ph;

  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${family}, sans-serif">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  if (spec.title !== undefined) out.push(`<text x="${W / 2}" y="28" font-size="17" text-anchor="middle" fill="#111">${escapeXml(spec.title)}</text>`);
  // Grid and ticks.
  for (const t of ax.ticks) {
    const x = fmt(px(t));
    out.push(`<line x1="${x}" y1="${margin.top}" x2="${x}" y2="${margin.top + ph}" stroke="#e5e5e5" stroke-width="1"/>`);
    out.push(`<line x1="${x}" y1="${margin.top + ph}" x2="${x}" y2="${margin.top + ph + 5}" stroke="#333" stroke-width="1"/>`);
    out.push(`<text x="${x}" y="${margin.top + ph + 20}" font-size="12" text-anchor="middle" fill="#333">${escapeXml(formatTick(t))}</text>`);
  }
  for (const t of ay.ticks) {
    const y = fmt(py(t));
    out.push(`<line x1="${margin.left}" y1="${y}" x2="${margin.left + pw}" y2="${y}" stroke="#e5e5e5" stroke-width="1"/>`);
    out.push(`<line x1="${margin.left - 5}" y1="${y}" x2="${margin.left}" y2="${y}" stroke="#333" stroke-width="1"/>`);
    out.push(`<text x="${margin.left - 8}" y="${y}" dy="4" font-size="12" text-anchor="end" fill="#333">${escapeXml(formatTick(t))}</text>`);
  }
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${pw}" height="${ph}" fill="none" stroke="#333" stroke-width="1"/>`);
  // Axis labels.
  out.push(`<text x="${margin.left + pw / 2}" y="${H - 14}" font-size="14" text-anchor="middle" fill="#111">${escapeXml(spec.xLabel + (logX ? ' (log scale)' : ''))}</text>`);
  out.push(
    `<text x="0" y="0" transform="translate(18 ${margin.top + ph / 2}) rotate(-90)" font-size="14" text-anchor="middle" fill="#111">${escapeXml(spec.yLabel + (logY ? ' (log scale)' : ''))}</text>`,
  );
  // Series, clipped to the frame.
  // The domain always contains the data (ticks are widened to it), so the clip only guards against stray
  // values; it is 5 px larger than the frame so dots on the frame's edge are drawn whole.
  out.push(`<clipPath id="frame"><rect x="${margin.left - 5}" y="${margin.top - 5}" width="${pw + 10}" height="${ph + 10}"/></clipPath>`);
  out.push('<g clip-path="url(#frame)">');
  for (const s of series) {
    if (s.pts.length === 0) continue;
    const sw = s.strokeWidth ?? 2;
    const op = s.opacity ?? 1;
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    if (s.pts.length > 1) {
      const pts = s.pts.map((p) => `${fmt(px(p[0]))},${fmt(py(p[1]))}`).join(' ');
      out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="${sw}" stroke-opacity="${op}" stroke-linejoin="round"${dash}/>`);
    }
    if (s.markers ?? s.pts.length <= 60) {
      for (const p of s.pts) out.push(`<circle cx="${fmt(px(p[0]))}" cy="${fmt(py(p[1]))}" r="3.5" fill="${s.color}" fill-opacity="${op}"/>`);
    }
  }
  out.push('</g>');
  if (all.length === 0) out.push(`<text x="${margin.left + pw / 2}" y="${margin.top + ph / 2}" font-size="14" text-anchor="middle" fill="#888">no data</text>`);
  // Legend.
  const corner = spec.legend ?? 'top-right';
  if (corner !== 'none' && series.length > 0) {
    const lineH = 18;
    const maxChars = Math.max(...series.map((s) => s.name.length));
    const lw = Math.min(pw - 20, 44 + maxChars * 7.2);
    const lh = 10 + series.length * lineH;
    const lx = corner.endsWith('right') ? margin.left + pw - lw - 10 : margin.left + 10;
    const ly = corner.startsWith('top') ? margin.top + 10 : margin.top + ph - lh - 10;
    out.push(`<rect x="${fmt(lx)}" y="${fmt(ly)}" width="${fmt(lw)}" height="${lh}" fill="white" fill-opacity="0.9" stroke="#bbb" stroke-width="1"/>`);
    series.forEach((s, i) => {
      const yy = ly + 5 + lineH * i + lineH / 2;
      const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
      out.push(`<line x1="${fmt(lx + 8)}" y1="${fmt(yy)}" x2="${fmt(lx + 32)}" y2="${fmt(yy)}" stroke="${s.color}" stroke-width="${s.strokeWidth ?? 2}"${dash}/>`);
      out.push(`<circle cx="${fmt(lx + 20)}" cy="${fmt(yy)}" r="3" fill="${s.color}"/>`);
      out.push(`<text x="${fmt(lx + 38)}" y="${fmt(yy)}" dy="4" font-size="12" fill="#111">${escapeXml(s.name)}</text>`);
    });
  }
  out.push('</svg>');
  return out.join('\n');
};

/** The line plot rendered to PNG bytes at `width` px (default: its SVG width). @category line plots */
export const linePlotPng = (spec: LinePlotSpec, width?: number): Buffer => svgToPng(linePlotSvg(spec), width);

// -------------------------------------------------------------------------------------
// loss curves
// -------------------------------------------------------------------------------------

/** Trailing moving average: m_i = mean(x_{max(0, i−w+1)} … x_i), skipping non-finite values. @category loss curves */
export const movingAverage = (xs: ArrayLike<number>, window: number): Float64Array => {
  const out = new Float64Array(xs.length);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i]!;
    if (Number.isFinite(v)) {
      sum += v;
      count++;
    }
    const j = i - window;
    if (j >= 0 && Number.isFinite(xs[j]!)) {
      sum -= xs[j]!;
      count--;
    }
    out[i] = count > 0 ? sum / count : NaN;
  }
  return out;
};

/** At most `max` evenly spaced indices of a length-n sequence, always including the last. */
const thin = (n: number, max: number): ReadonlyArray<number> => {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const step = (n - 1) / (max - 1);
  return Array.from({ length: max }, (_, k) => Math.round(k * step));
};

/**
 * A training-loss figure: the per-step loss (thin, translucent) and its moving average over `window` steps
 * (default: ~2% of the run, at least 1), at most 2000 points each; log-y when every loss is positive
 * (unless `logY` says otherwise).
 * @category loss curves
 */
export const lossCurveSpec = (
  losses: ArrayLike<number>,
  opts: { readonly title?: string; readonly window?: number; readonly logY?: boolean; readonly xLabel?: string; readonly yLabel?: string } = {},
): LinePlotSpec => {
  const n = losses.length;
  const window = opts.window ?? Math.max(1, Math.round(n / 50));
  const avg = movingAverage(losses, window);
  const idx = thin(n, 2000);
  const positive = Array.from(losses).every((v) => !Number.isFinite(v) || v > 0);
  return {
    title: opts.title ?? 'Training loss',
    xLabel: opts.xLabel ?? 'step',
    yLabel: opts.yLabel ?? 'loss',
    logY: opts.logY ?? positive,
    series: [
      { name: 'loss per step', points: idx.map((i) => [i + 1, losses[i]!] as const), color: '#9ecae1', strokeWidth: 1, markers: n <= 60 },
      { name: `moving average (${window} steps)`, points: idx.map((i) => [i + 1, avg[i]!] as const), color: '#08519c', strokeWidth: 2.5, markers: false },
    ],
  };
};

// -------------------------------------------------------------------------------------
// panels
// -------------------------------------------------------------------------------------

/** One image of a panel figure, with its caption. @category panels */
export interface Panel {
  readonly png: Uint8Array;
  readonly caption: string;
}

/**
 * Several PNGs side by side (top-aligned, `gap` px apart), each with its caption underneath, and an optional
 * title; `scale` enlarges everything with crisp (nearest-neighbour) pixels. Rendered through SVG with the
 * images embedded as data URIs.
 * @category panels
 */
export const panelFigure = (
  panels: ReadonlyArray<Panel>,
  opts: { readonly gap?: number; readonly title?: string; readonly scale?: number; readonly fontSize?: number } = {},
): E.Either<ImageError, Buffer> => {
  if (panels.length === 0) return E.left({ _tag: 'ImageError', message: 'panelFigure: no panels' });
  const sizes: Array<{ width: number; height: number }> = [];
  for (const [i, p] of panels.entries()) {
    const s = pngSize(p.png);
    if (E.isLeft(s)) return E.left({ _tag: 'ImageError', message: `panel ${i} (${p.caption}): ${s.left.message}` });
    sizes.push(s.right);
  }
  const gap = opts.gap ?? 16;
  const fs_ = opts.fontSize ?? 14;
  const titleH = opts.title !== undefined ? fs_ + 18 : 0;
  const captionH = fs_ + 14;
  const widths = sizes.map((s, i) => Math.max(s.width, Math.ceil(panels[i]!.caption.length * fs_ * 0.6)));
  const W = widths.reduce((a, b) => a + b, 0) + gap * (panels.length + 1);
  const H = titleH + Math.max(...sizes.map((s) => s.height)) + captionH + 2 * gap;
  const family = escapeXml(fontConfig().family);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${family}, sans-serif">`];
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  if (opts.title !== undefined) out.push(`<text x="${W / 2}" y="${gap + fs_}" font-size="${fs_ + 2}" text-anchor="middle" fill="#111">${escapeXml(opts.title)}</text>`);
  let x = gap;
  panels.forEach((p, i) => {
    const s = sizes[i]!;
    const cx = x + (widths[i]! - s.width) / 2;
    const y = gap + titleH;
    const uri = `data:image/png;base64,${Buffer.from(p.png).toString('base64')}`;
    out.push(`<image x="${cx}" y="${y}" width="${s.width}" height="${s.height}" href="${uri}" image-rendering="optimizeSpeed"/>`);
    out.push(`<text x="${x + widths[i]! / 2}" y="${y + s.height + fs_ + 6}" font-size="${fs_}" text-anchor="middle" fill="#111">${escapeXml(p.caption)}</text>`);
    x += widths[i]! + gap;
  });
  out.push('</svg>');
  const scale = opts.scale ?? 1;
  return E.right(new Resvg(out.join('\n'), renderOptions(scale === 1 ? { mode: 'original' } : { mode: 'zoom', value: scale }, 1)).render().asPng());
};
