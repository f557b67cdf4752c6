/**
 * The comparison helpers of the tests cannot lie: a NaN anywhere fails the comparison (an all-NaN output must
 * never pass a convolution, GroupNorm or wasm-kernel check), and the shared fast-check configuration does what its
 * documentation says (seed 42 unless FC_SEED, each test's budget unless FC_NUM_RUNS).
 */
import fc from 'fast-check';
import { worstExcess } from './helpers';
import { DEFAULT_SEED, globalParameters, readFastCheckEnv, runs, useFastCheckEnv } from '@score-sde/tensor-fp/testing';

describe('worstExcess (float32 comparisons of conv, GroupNorm and the wasm kernels)', () => {
  const ref = [1, -2, 3, 0.5];
  const bound = [1, 2, 3, 0.5];

  test('equal arrays are within any bound; a difference beyond tol·bound is reported with its index', () => {
    expect(worstExcess(ref, ref, bound, 1e-6).excess).toBeLessThanOrEqual(0);
    const off = [1, -2, 3 + 1e-3, 0.5];
    expect(worstExcess(off, ref, bound, 1e-6)).toEqual({ excess: expect.any(Number), at: 2 });
    expect(worstExcess(off, ref, bound, 1e-6).excess).toBeGreaterThan(0);
  });

  test('an all-NaN output fails (it used to pass: NaN > excess is false)', () => {
    expect(worstExcess([NaN, NaN, NaN, NaN], ref, bound, 1e-6)).toEqual({ excess: Infinity, at: 0 });
  });

  test('a single NaN in the output, the reference or the bound fails at its index', () => {
    expect(worstExcess([1, -2, NaN, 0.5], ref, bound, 1e-6)).toEqual({ excess: Infinity, at: 2 });
    expect(worstExcess(ref, [1, NaN, 3, 0.5], bound, 1e-6)).toEqual({ excess: Infinity, at: 1 });
    expect(worstExcess(ref, ref, [1, 2, 3, NaN], 1e-6)).toEqual({ excess: Infinity, at: 3 });
  });

  test('arrays of different lengths fail', () => {
    expect(worstExcess(ref.slice(0, 3), ref, bound, 1).excess).toBe(Infinity);
  });
});

describe('shared fast-check configuration (@score-sde/tensor-fp/testing)', () => {
  test('defaults: seed 42 and each property its own budget', () => {
    expect(readFastCheckEnv({})).toEqual({ seed: DEFAULT_SEED, numRuns: undefined });
    expect(globalParameters(readFastCheckEnv({}))).toEqual({ seed: 42 });
  });

  test('FC_SEED and FC_NUM_RUNS are read; FC_SEED=random draws a seed', () => {
    expect(readFastCheckEnv({ FC_SEED: '-17', FC_NUM_RUNS: '500' })).toEqual({ seed: -17, numRuns: 500 });
    expect(readFastCheckEnv({ FC_SEED: 'random' }, () => 123456).seed).toBe(123456);
  });

  test('a value outside the documented ones is refused, naming the variable', () => {
    expect(() => readFastCheckEnv({ FC_SEED: '4x' })).toThrow(/^FC_SEED: .*"4x"/);
    expect(() => readFastCheckEnv({ FC_SEED: '1e3' })).toThrow(/^FC_SEED/);
    expect(() => readFastCheckEnv({ FC_NUM_RUNS: '0' })).toThrow(/^FC_NUM_RUNS: .*"0"/);
    expect(() => readFastCheckEnv({ FC_NUM_RUNS: 'many' })).toThrow(/^FC_NUM_RUNS/);
  });

  test('runs(n) keeps the budget n unless FC_NUM_RUNS overrides it, and never sets the seed', () => {
    const installed = readFastCheckEnv(process.env);
    try {
      useFastCheckEnv({ seed: 1, numRuns: undefined });
      expect(runs(30)).toEqual({ numRuns: 30 });
      useFastCheckEnv({ seed: 1, numRuns: 700 });
      expect(runs(30, { endOnFailure: true })).toEqual({ numRuns: 700, endOnFailure: true });
    } finally {
      useFastCheckEnv(installed);
    }
  });

  test('the jest set-up installed the seed of this environment: a property runs with it and replays', () => {
    const want = readFastCheckEnv(process.env, () => NaN).seed;
    const r = fc.check(
      fc.property(fc.integer(), () => true),
      runs(5),
    );
    if (!Number.isNaN(want)) expect(r.seed).toBe(want);
    // Same configuration, same cases: the run is reproducible from its seed.
    const cases = (seed: number) => fc.sample(fc.integer(), { seed, numRuns: 5 });
    expect(cases(r.seed)).toEqual(cases(r.seed));
  });
});
