/**
 * The data range's dequantised hull: the box every dequantised image lies in, for both kinds of cells.
 */
import fc from 'fast-check';
import { dequantisedHull } from '../src/data-range';

test('dequantisedHull(lo, hi; L) = [lo − w/2, hi + w/2], w = (hi − lo)/(L − 1): it holds every centred cell x + (u − ½)/(L − 1) and every score_sde cell ((L − 1)x + u)/L of every level, mapped into the range, and its ends are the outermost cells’ ends', () => {
  const range = fc.tuple(fc.double({ min: -4, max: 4, noNaN: true }), fc.double({ min: 0.01, max: 8, noNaN: true })).map(([lo, span]) => [lo, lo + span] as const);
  fc.assert(
    fc.property(range, fc.integer({ min: 2, max: 65536 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(), ([lo, hi], L, u, k) => {
      const [a, b] = dequantisedHull([lo, hi], L);
      const level = (k % L) / (L - 1);
      const inRange = (x: number): number => lo + (hi - lo) * x;
      // the two kinds of cells, and the outermost cells' ends
      const centred = inRange(level + (u - 0.5) / (L - 1));
      const scoreSde = inRange(((L - 1) * level + u) / L);
      // float64 rounding of the map into the range: a few ulps of its largest term
      const tol = 4 * Number.EPSILON * (Math.abs(lo) + Math.abs(hi) + 1);
      const inside = (x: number): boolean => x >= a - tol && x <= b + tol;
      return inside(centred) && inside(scoreSde) && Math.abs(inRange(-0.5 / (L - 1)) - a) <= tol && Math.abs(inRange(1 + 0.5 / (L - 1)) - b) <= tol;
    }),
    { seed: 11, numRuns: 300 },
  );
  // the quality preset's box for images in [0, 1] at 8 bits: half a grey level past each end
  expect(dequantisedHull([0, 1])).toEqual([-1 / 510, 1 + 1 / 510]);
});
