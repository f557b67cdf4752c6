/**
 * The Monte-Carlo check of the solver tests fails on NaN: an estimate, a target or a standard error that is NaN is
 * reported, never passed (`!(|e − t| ≤ z·se)` is true for NaN).
 */
import { failures, meanAndSE } from './helpers';

test('failures reports NaN estimates, targets and standard errors, and passes only estimates within z SE', () => {
  expect(failures([{ name: 'ok', estimate: 1.01, target: 1, se: 0.01 }])).toEqual([]);
  expect(failures([{ name: 'far', estimate: 1.1, target: 1, se: 0.01 }])).toHaveLength(1);
  expect(failures([{ name: 'nan estimate', estimate: NaN, target: 1, se: 0.01 }])).toHaveLength(1);
  expect(failures([{ name: 'nan target', estimate: 1, target: NaN, se: 0.01 }])).toHaveLength(1);
  expect(failures([{ name: 'nan se', estimate: 1, target: 1, se: NaN }])).toHaveLength(1);
  // A NaN sample makes the mean and its SE NaN, which then fails as above.
  const { mean, se } = meanAndSE([1, NaN, 2]);
  expect(failures([{ name: 'nan sample', estimate: mean, target: 1.5, se }])).toHaveLength(1);
});
