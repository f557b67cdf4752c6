import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import { linePlotSvg, linePlotPng, lossCurveSpec, panelFigure, niceStep, linearAxis, logAxis, formatTick, movingAverage, svgToPng, fontConfig, escapeXml } from '../../src/lib/plot';
import { imageGrid, pngSize } from '../../src/lib/png';
import { runs } from '@score-sde/tensor-fp/testing';

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(`expected Right, got ${JSON.stringify(e.left)}`);
  return e.right;
};

/** Number of pixels of a PNG whose RGB is within `tol` of `rgb`. */
const countColour = (png: Buffer, rgb: readonly [number, number, number], tol = 8): number => {
  const img = PNG.sync.read(png);
  let n = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    if (Math.abs(img.data[4 * i]! - rgb[0]) <= tol && Math.abs(img.data[4 * i + 1]! - rgb[1]) <= tol && Math.abs(img.data[4 * i + 2]! - rgb[2]) <= tol) n++;
  }
  return n;
};

describe('ticks', () => {
  const finite = fc.double({ min: -1e6, max: 1e6, noNaN: true });

  it('niceStep is 1, 2 or 5 × 10^k', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e9, noNaN: true }), (range) => {
        const s = niceStep(range, 5);
        const m = s / 10 ** Math.floor(Math.log10(s) + 1e-12);
        expect([1, 2, 5, 10].some((k) => Math.abs(m - k) < 1e-9)).toBe(true);
      }),
      runs(100),
    );
  });

  it('a linear axis covers the data: lo ≤ min, hi ≥ max, ticks evenly spaced from lo to hi', () => {
    fc.assert(
      fc.property(finite, finite, (a, b) => {
        const [mn, mx] = a <= b ? [a, b] : [b, a];
        const ax = linearAxis(mn, mx);
        expect(ax.lo).toBeLessThanOrEqual(mn);
        expect(ax.hi).toBeGreaterThanOrEqual(mx);
        expect(ax.ticks.length).toBeGreaterThanOrEqual(2);
        expect(ax.ticks.length).toBeLessThanOrEqual(12);
        const step = ax.ticks[1]! - ax.ticks[0]!;
        // Ticks are k·step rounded to 12 significant digits: spacing equal to 1e-9 relative to the axis span.
        ax.ticks.forEach((t, i) => i > 0 && expect(Math.abs(t - ax.ticks[i - 1]! - step)).toBeLessThanOrEqual(1e-9 * (ax.hi - ax.lo)));
      }),
      runs(100),
    );
  });

  it('a log axis over at least a decade covers the data and its ticks are 1, 2 or 5 × 10^k', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e6, noNaN: true }), fc.double({ min: 1, max: 12, noNaN: true }), (a, decades) => {
        const [mn, mx] = [a, a * 10 ** decades];
        const ax = logAxis(mn, mx);
        expect(ax.lo).toBeLessThanOrEqual(mn);
        expect(ax.hi).toBeGreaterThanOrEqual(mx);
        for (const t of ax.ticks) {
          const m = t / 10 ** Math.floor(Math.log10(t) + 1e-12);
          expect([1, 2, 5].some((k) => Math.abs(m - k) < 1e-9)).toBe(true);
        }
      }),
      runs(100),
    );
  });

  it('formats ticks without float noise', () => {
    expect([0.1 + 0.2, 0, 1e-4, 2e5, 1500, -0.5].map(formatTick)).toEqual(['0.3', '0', '1e-4', '2e5', '1500', '-0.5']);
  });
});

describe('movingAverage', () => {
  it('window 1 is the identity; window ≥ n is the running mean (1/(i+1)) Σ_{j≤i} x_j', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -100, max: 100, noNaN: true }), { minLength: 1, maxLength: 50 }), (xs) => {
        // The average is a running sum (add the new value, subtract the one leaving the window): after i steps it
        // carries at most 2i roundings of numbers ≤ max|x|, so |error| ≤ 2·n·ε·max|x| (ε = 2⁻⁵²).
        const maxAbs = Math.max(...xs.map(Math.abs));
        const tol = 2 * xs.length * Number.EPSILON * maxAbs;
        movingAverage(xs, 1).forEach((m, i) => expect(Math.abs(m - xs[i]!)).toBeLessThanOrEqual(tol));
        const m = movingAverage(xs, xs.length);
        let s = 0;
        xs.forEach((x, i) => {
          s += x;
          expect(Math.abs(m[i]! - s / (i + 1))).toBeLessThanOrEqual(tol);
        });
      }),
      runs(50),
    );
  });
});

describe('line plots', () => {
  const spec = {
    title: 'FID vs NFE <test>',
    xLabel: 'NFE',
    yLabel: 'FID',
    logX: true,
    series: [
      { name: 'Euler–Maruyama', points: [[100, 40], [1000, 12], [500, NaN]] as const, color: '#ff0000' },
      { name: 'PC & more', points: [[200, 30], [2000, 8]] as const, color: '#0000ff' },
    ],
  };

  it('the SVG is deterministic, escapes text and names every series in the legend', () => {
    const svg = linePlotSvg(spec);
    expect(linePlotSvg(spec)).toBe(svg);
    expect(svg).toContain('FID vs NFE &lt;test&gt;');
    expect(svg).toContain('Euler–Maruyama');
    expect(svg).toContain('PC &amp; more');
    expect(svg).toContain('NFE (log scale)');
    expect(svg).not.toContain('NaN');
    expect(escapeXml('"a"<b>&')).toBe('&quot;a&quot;&lt;b&gt;&amp;');
  });

  it('renders to a PNG of the requested width with each series drawn in its colour', () => {
    expect(right(pngSize(linePlotPng(spec, 400)))).toEqual({ width: 400, height: 250 });
    const png = linePlotPng(spec);
    expect(right(pngSize(png))).toEqual({ width: 800, height: 500 });
    expect(countColour(png, [255, 0, 0])).toBeGreaterThan(50);
    expect(countColour(png, [0, 0, 255])).toBeGreaterThan(50);
  });

  it('a loss curve with a NaN step still renders (the NaN is skipped), log-y when all losses are positive', () => {
    const losses = Array.from({ length: 300 }, (_, i) => (i === 7 ? NaN : 10 * Math.exp(-i / 100) + 1));
    const s = lossCurveSpec(losses);
    expect(s.logY).toBe(true);
    expect(linePlotSvg(s)).not.toContain('NaN');
    expect(right(pngSize(linePlotPng(s)))).toEqual({ width: 800, height: 500 });
  });

  it('renders text when a font is available (dark pixels from a text-only SVG)', () => {
    const png = svgToPng(`<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="10" y="30" font-size="24" font-family="${fontConfig().family}" fill="black">Hello</text></svg>`);
    const dark = countColour(png, [0, 0, 0], 60);
    if (fontConfig().fontFiles.length > 0) expect(dark).toBeGreaterThan(30);
    else expect(dark).toBeGreaterThanOrEqual(0); // no known font file: resvg falls back to system fonts, which may be none
  });
});

describe('panelFigure', () => {
  it('puts PNGs side by side with captions: width ≥ Σ widths + gaps, height ≥ tallest + caption', () => {
    const a = right(imageGrid(new Float32Array(4 * 28 * 28).fill(1), 2));
    const b = right(imageGrid(new Float32Array(2 * 28 * 28), 2, { scale: 2 }));
    const [sa, sb] = [right(pngSize(a)), right(pngSize(b))];
    const fig = right(panelFigure([{ png: a, caption: 'EM' }, { png: b, caption: 'PC' }], { title: 'samplers', gap: 10 }));
    const s = right(pngSize(fig));
    expect(s.width).toBeGreaterThanOrEqual(sa.width + sb.width + 3 * 10);
    expect(s.height).toBeGreaterThanOrEqual(Math.max(sa.height, sb.height) + 2 * 10);
    // The all-white digits of panel a survive as white pixels inside a gray frame.
    expect(countColour(fig, [128, 128, 128], 2)).toBeGreaterThan(100);
  });

  it('rejects bytes that are not a PNG, naming the panel', () => {
    const r = panelFigure([{ png: new Uint8Array(40), caption: 'broken' }]);
    expect(E.isLeft(r) && r.left.message).toMatch(/panel 0 \(broken\): not a PNG/);
  });
});

describe('log axes always label the range', () => {
  test('every log axis over [lo, hi] (0 < lo < hi) has at least two ticks, all inside its domain', () => {
    fc.assert(
      fc.property(fc.double({ min: -6, max: 6, noNaN: true }), fc.double({ min: 1e-3, max: 8, noNaN: true }), (l, span) => {
        const axis = logAxis(10 ** l, 10 ** (l + span));
        expect(axis.ticks.length).toBeGreaterThanOrEqual(2);
        for (const v of axis.ticks) {
          expect(v).toBeGreaterThanOrEqual(axis.lo * (1 - 1e-9));
          expect(v).toBeLessThanOrEqual(axis.hi * (1 + 1e-9));
        }
      }),
      runs(300),
    );
  });
});
