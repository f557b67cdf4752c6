/**
 * The models tests' comparison helpers fail on NaN: a bound check `maxAbsDiff(a, b) ≤ tol` can never pass an
 * output holding NaN, nor a bound built from `maxAbs` of one.
 */
import { tf, initBackend } from '@score-sde/tensor-fp';
import { maxAbs, maxAbsDiff, bitEqual } from './helpers';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu', quiet: true });
});

test('maxAbsDiff and maxAbs are NaN when any entry is NaN, so every ordered comparison with them fails', () => {
  const ok = tf.tensor1d([1, 2, 3]);
  const bad = tf.tensor1d([1, NaN, 3]);
  const allNaN = tf.tensor1d([NaN, NaN, NaN]);
  expect(maxAbsDiff(ok, ok)).toBe(0);
  for (const d of [maxAbsDiff(bad, ok), maxAbsDiff(ok, bad), maxAbsDiff(allNaN, ok), maxAbs(bad)]) {
    expect(d <= 1e9).toBe(false);
    expect(d > -1).toBe(false);
  }
  expect(bitEqual(allNaN, ok)).toBe(false);
  tf.dispose([ok, bad, allNaN]);
});
