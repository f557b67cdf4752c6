/**
 * One fast-check configuration for every property test of the workspace.
 *
 * CI (and a plain `npm test`) runs every property with the fixed seed 42 and the number of cases its test asks
 * for, so a run is reproducible. Two environment variables explore new cases without editing a test:
 *
 *   FC_SEED=<integer> | random   the seed of every property (`random`: a fresh one per test file, printed when a
 *                                property fails together with its replay path, as fast-check always does)
 *   FC_NUM_RUNS=<integer ≥ 1>    the number of cases of every property, instead of each test's own budget
 *
 * e.g. `FC_SEED=random FC_NUM_RUNS=500 npx nx run-many -t test` (README, "Tests"). The jest set-up file
 * (`tools/test-support/fast-check-setup.ts`, listed in jest.preset.cjs) installs the seed with `fc.configureGlobal`;
 * each property states its budget with {@link runs}, which FC_NUM_RUNS overrides.
 *
 * @module tensor-fp/testing/fast-check
 */
import { randomInt } from 'node:crypto';
import type { Parameters } from 'fast-check';

/** The seed every property runs with unless FC_SEED says otherwise. */
export const DEFAULT_SEED = 42;

/** What the environment asks of fast-check: a seed, and optionally a case count for every property. */
export interface FastCheckEnv {
  readonly seed: number;
  readonly numRuns: number | undefined;
}

const INT = /^-?\d+$/;

/**
 * Reads FC_SEED and FC_NUM_RUNS. Throws (naming the variable and the value) on anything else than documented, so
 * a misspelt value never silently falls back to the default seed. `draw` gives the seed of `FC_SEED=random`.
 */
export const readFastCheckEnv = (env: Readonly<Record<string, string | undefined>>, draw: () => number = () => randomInt(0, 2 ** 31 - 1)): FastCheckEnv => {
  const rawSeed = env['FC_SEED']?.trim() ?? '';
  const rawRuns = env['FC_NUM_RUNS']?.trim() ?? '';
  let seed = DEFAULT_SEED;
  if (rawSeed === 'random') seed = draw();
  else if (rawSeed !== '') {
    const n = Number(rawSeed);
    if (!INT.test(rawSeed) || !Number.isSafeInteger(n) || Math.abs(n) > 2 ** 31 - 1) throw new Error(`FC_SEED: expected an integer in [−2³¹+1, 2³¹−1] or "random", got "${rawSeed}"`);
    seed = n;
  }
  let numRuns: number | undefined;
  if (rawRuns !== '') {
    const n = Number(rawRuns);
    if (!INT.test(rawRuns) || !Number.isSafeInteger(n) || n < 1) throw new Error(`FC_NUM_RUNS: expected an integer ≥ 1, got "${rawRuns}"`);
    numRuns = n;
  }
  return { seed, numRuns };
};

/** The global parameters the set-up file installs: the seed, and FC_NUM_RUNS when it is set. */
export const globalParameters = (e: FastCheckEnv): Parameters<unknown> => (e.numRuns === undefined ? { seed: e.seed } : { seed: e.seed, numRuns: e.numRuns });

let current: FastCheckEnv | undefined;
const fromProcess = (): FastCheckEnv => (current ??= readFastCheckEnv(process.env));

/** Installs an environment (the set-up file's job; tests of this module use it too). */
export const useFastCheckEnv = (e: FastCheckEnv): void => {
  current = e;
};

/**
 * A property's parameters: `numRuns` cases (the test's own budget, chosen for its cost) unless FC_NUM_RUNS
 * overrides it, plus any other fast-check parameters. The seed is never set here: it comes from the global
 * configuration (FC_SEED, default 42).
 */
export const runs = <T = unknown>(numRuns: number, extra: Omit<Parameters<T>, 'numRuns' | 'seed'> = {}): Parameters<T> => ({
  ...extra,
  numRuns: fromProcess().numRuns ?? numRuns,
});
