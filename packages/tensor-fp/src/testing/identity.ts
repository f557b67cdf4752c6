/**
 * Identities as data: what a property or conformance test states, declared once, and the comparisons that both
 * assert it and record how close the run came to its tolerance.
 *
 * A test file declares each identity it checks with {@link identity} — a title, the formula (GitHub markdown math,
 * `$…$`), where it comes from, and how its tolerance is derived — and routes the identity's assertions through the
 * returned {@link Identity}: `atMost` / `close` for deterministic bounds (the statistic is the error as a fraction of
 * the bound), `withinSE` / `allWithinSE` for Monte-Carlo checks (the error in standard errors), `equal` for exact
 * laws. Every comparison fails on NaN.
 *
 * `tools/mathdoc` reads the declarations statically (they must be literals) to write `docs/mathematics.md`, and
 * `npm test` fails when that document no longer matches them. When the environment variable `SCORE_SDE_MARGINS`
 * names a directory, each test file also writes the worst statistic of every identity it checked there (one JSON file
 * per test file), which `npm run docs` turns into the document's "last measured margin".
 *
 * This module is test support: it is exported as `@score-sde/tensor-fp/testing`, never from the package's index.
 * @module testing
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual, inspect } from 'node:util';

/** The sections of `docs/mathematics.md`, in order: concept id → heading. */
export const CONCEPTS = {
  sde: 'SDE records and their moments',
  reverse: 'The reverse-time SDE and the probability-flow ODE',
  discretisation: 'Discretisations, time grids and ODE solvers',
  mixture: 'The Gaussian-mixture oracle',
  steps: 'Steps and combinator laws',
  conformance: 'Sampler conformance',
  likelihood: 'Likelihood and Hutchinson',
  guidance: 'Guidance and conditionals',
  denoised: 'The denoised endpoint',
  random: 'Random numbers',
  kernels: 'Tensor kernels and float32 rounding',
  training: 'Losses, optimiser and networks',
  evaluation: 'Evaluation statistics',
} as const;

/** A section of `docs/mathematics.md`. */
export type Concept = keyof typeof CONCEPTS;

/** What a test states, as data. Every field must be a string literal (or `String.raw` template) in the test file. */
export interface Declaration {
  /** The section of the document. */
  readonly concept: Concept;
  /** A short name, unique across the project. */
  readonly title: string;
  /** The identity in GitHub markdown math, e.g. `$\frac{dm}{dt} = f(t)\,m$`. */
  readonly formula: string;
  /** Where it comes from: paper and equation, or a derivation in one line. */
  readonly source: string;
  /** How the tolerance is derived (standard errors, a float32 rounding bound, exact). */
  readonly tolerance: string;
}

/** A label for one instance of a parameterised check (e.g. `{ sampler, sde, distribution }`). */
export type Where = string | Readonly<Record<string, string>>;

/** One Monte-Carlo check: an estimate, the value it must match, and the estimate's standard error. */
export interface MonteCarloCheck {
  readonly name: string;
  readonly estimate: number;
  readonly target: number;
  readonly se: number;
}

/** Options of a Monte-Carlo comparison. */
export interface SEOptions {
  readonly z?: number;
  readonly bias?: number;
  readonly strict?: boolean;
  readonly oneSided?: boolean;
}

/** A declared identity: its declaration and the assertions that record their margin. */
export interface Identity {
  readonly declaration: Declaration;
  /** Asserts `error ≤ bound` (fails on NaN); records error/bound. */
  readonly atMost: (error: number, bound: number, where?: Where) => void;
  /** Asserts `error < bound` (fails on NaN); records error/bound. */
  readonly lessThan: (error: number, bound: number, where?: Where) => void;
  /** Asserts `|actual − expected| ≤ bound` (fails on NaN); records |actual − expected|/bound. */
  readonly close: (actual: number, expected: number, bound: number, where?: Where) => void;
  /**
   * Asserts `|actualᵢ − expectedᵢ| ≤ boundᵢ` for every element (equal lengths; fails on NaN), naming the first element
   * out of bounds; records the largest |actualᵢ − expectedᵢ|/boundᵢ.
   */
  readonly closeEach: (actual: ArrayLike<number>, expected: ArrayLike<number>, bound: ArrayLike<number> | number, where?: Where) => void;
  /**
   * Asserts `|estimate − target| ≤ z·se + bias` (z = 5 unless given; `bias` an exactly computed discretisation bias);
   * records the error in standard errors against its limit z + bias/se. Fails on NaN. `strict` asserts `<` instead;
   * `oneSided` bounds `estimate − target` only (an upper tail, e.g. a χ² statistic).
   */
  readonly withinSE: (estimate: number, target: number, se: number, opts?: SEOptions, where?: Where) => void;
  /** Asserts every check within z standard errors, naming each that is not; records the worst. */
  readonly allWithinSE: (checks: ReadonlyArray<MonteCarloCheck>, z: number, where?: Where) => void;
  /** Asserts deep equality (Jest's `toEqual` under Jest); fails when either side holds a NaN. */
  readonly equal: (actual: unknown, expected: unknown, where?: Where) => void;
}

/** The statistic a comparison records. */
export type MarginKind = 'bound' | 'se' | 'exact';

/** The worst statistic of one identity in one test (and instance), as written to `SCORE_SDE_MARGINS`. */
export interface Margin {
  readonly title: string;
  readonly file: string;
  readonly test: string;
  readonly where?: Readonly<Record<string, string>>;
  readonly kind: MarginKind;
  /** Number of comparisons made. */
  readonly checks: number;
  /** Number of comparisons that failed. */
  readonly failed: number;
  /** bound: the largest error/bound; se: the error in SE of the check nearest its limit; exact: 0. */
  readonly worst: number;
  /** bound: 1; se: that check's limit in SE; exact: 0. */
  readonly limit: number;
}

// ---------------------------------------------------------------------------------------------------------- recording

const root = path.resolve(__dirname, '..', '..', '..', '..');

interface JestState {
  readonly currentTestName?: string;
  readonly testPath?: string;
}
interface JestGlobals {
  readonly expect?: ((actual: unknown) => { toEqual: (expected: unknown) => void }) & { getState?: () => JestState };
  readonly afterAll?: (fn: () => void) => void;
}
const runner = globalThis as JestGlobals;

const context = (): { file: string; test: string } => {
  const s = runner.expect?.getState?.() ?? {};
  return { file: s.testPath === undefined ? '' : path.relative(root, s.testPath).split(path.sep).join('/'), test: s.currentTestName ?? '(outside a test)' };
};

const tallies = new Map<string, Margin>();

const whereRecord = (where: Where | undefined): Readonly<Record<string, string>> | undefined =>
  where === undefined ? undefined : typeof where === 'string' ? { case: where } : where;

const whereText = (where: Where | undefined): string =>
  where === undefined ? '' : ` [${typeof where === 'string' ? where : Object.entries(where).map(([k, v]) => `${k}: ${v}`).join(', ')}]`;

/** Severity of a statistic against its limit (larger is closer to failing; > 1 fails). */
const severity = (kind: MarginKind, worst: number, limit: number): number => (kind === 'exact' ? 0 : kind === 'bound' ? worst : worst / limit);

const record = (title: string, kind: MarginKind, worst: number, limit: number, ok: boolean, where: Where | undefined): void => {
  const { file, test } = context();
  const w = whereRecord(where);
  const key = JSON.stringify([title, file, test, kind, w ?? null]);
  const prev = tallies.get(key);
  const value = Number.isNaN(worst) ? Infinity : worst;
  const replace = prev === undefined || severity(kind, value, limit) > severity(kind, prev.worst, prev.limit);
  tallies.set(key, {
    title,
    file,
    test,
    ...(w === undefined ? {} : { where: w }),
    kind,
    checks: (prev?.checks ?? 0) + 1,
    failed: (prev?.failed ?? 0) + (ok ? 0 : 1),
    worst: replace ? value : prev.worst,
    limit: replace ? limit : prev.limit,
  });
};

/** The margins recorded so far in this module instance (one test file under Jest). */
export const recordedMargins = (): ReadonlyArray<Margin> => [...tallies.values()];

/** Environment variable naming the directory the margins are written to. */
export const MARGINS_ENV = 'SCORE_SDE_MARGINS';

const flush = (dir: string): void => {
  if (tallies.size === 0) return;
  const file = context().file || [...tallies.values()][0]!.file;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${file.replace(/[^A-Za-z0-9._-]/g, '_')}.json`), `${JSON.stringify(recordedMargins(), null, 1)}\n`);
};

const marginsDir = process.env[MARGINS_ENV];
if (marginsDir !== undefined && marginsDir !== '' && typeof runner.afterAll === 'function') runner.afterAll(() => flush(marginsDir));

// ------------------------------------------------------------------------------------------------------- comparisons

const fmt = (x: number): string => (Number.isFinite(x) ? x.toPrecision(4) : String(x));

const fail = (title: string, message: string, where: Where | undefined): never => {
  throw new Error(`identity "${title}" violated${whereText(where)}: ${message}`);
};

const hasNaN = (v: unknown, seen: Set<unknown> = new Set()): boolean => {
  if (typeof v === 'number') return Number.isNaN(v);
  if (v === null || typeof v !== 'object' || seen.has(v)) return false;
  seen.add(v);
  if (ArrayBuffer.isView(v)) return Array.prototype.some.call(v, (x: unknown) => typeof x === 'number' && Number.isNaN(x));
  return Object.values(v).some((x) => hasNaN(x, seen));
};

/**
 * Declares an identity checked by the tests of this file (`concept`, `title`, `formula`, `source`, `tolerance` as
 * literals) and returns its recording assertions.
 */
export const identity = (declaration: Declaration): Identity => {
  const { title } = declaration;
  const bounded = (error: number, bound: number, strict: boolean, where: Where | undefined): void => {
    const ok = strict ? error < bound : error <= bound; // false for NaN on either side
    const ratio = bound === 0 ? (error === 0 ? 0 : Infinity) : Math.abs(error) / bound;
    record(title, 'bound', ratio, 1, ok, where);
    if (!ok) fail(title, `error ${fmt(error)} ${strict ? '≥' : '>'} bound ${fmt(bound)}`, where);
  };
  const withinSE: Identity['withinSE'] = (estimate, target, se, opts = {}, where) => {
    const z = opts.z ?? 5;
    const bias = opts.bias ?? 0;
    const err = opts.oneSided === true ? estimate - target : Math.abs(estimate - target);
    const limit = z * se + bias;
    const ok = opts.strict === true ? err < limit : err <= limit;
    record(title, 'se', err / se, z + bias / se, ok, where);
    if (!ok) fail(title, `estimate ${fmt(estimate)}, target ${fmt(target)}: ${fmt(err / se)} SE ${opts.strict === true ? '≥' : '>'} ${fmt(z)} SE${bias === 0 ? '' : ` + bias ${fmt(bias)}`} (SE ${fmt(se)})`, where);
  };
  return {
    declaration,
    atMost: (error, bound, where) => bounded(error, bound, false, where),
    lessThan: (error, bound, where) => bounded(error, bound, true, where),
    close: (actual, expected, bound, where) => bounded(Math.abs(actual - expected), bound, false, where),
    withinSE,
    closeEach: (actual, expected, bound, where) => {
      if (actual.length !== expected.length) {
        record(title, 'bound', Infinity, 1, false, where);
        fail(title, `${actual.length} values against ${expected.length} expected`, where);
      }
      let worst = 0;
      let bad = -1;
      for (let i = 0; i < actual.length; i++) {
        const b = typeof bound === 'number' ? bound : bound[i]!;
        const e = Math.abs(actual[i]! - expected[i]!);
        if (!(e <= b) && bad < 0) bad = i;
        const ratio = b === 0 ? (e === 0 ? 0 : Infinity) : e / b;
        worst = Math.max(worst, Number.isNaN(ratio) ? Infinity : ratio);
      }
      record(title, 'bound', worst, 1, bad < 0, where);
      if (bad >= 0) {
        const b = typeof bound === 'number' ? bound : bound[bad]!;
        fail(title, `element ${bad}: |${fmt(actual[bad]!)} − ${fmt(expected[bad]!)}| > bound ${fmt(b)}`, where);
      }
    },
    allWithinSE: (checks, z, where) => {
      if (checks.length === 0) fail(title, 'no Monte-Carlo check to make', where);
      const bad = checks.filter((c) => !(Math.abs(c.estimate - c.target) <= z * c.se));
      checks.forEach((c) => record(title, 'se', Math.abs(c.estimate - c.target) / c.se, z, !bad.includes(c), where));
      if (bad.length > 0)
        fail(title, bad.map((c) => `${c.name}: estimate ${fmt(c.estimate)}, target ${fmt(c.target)}, ${fmt(Math.abs(c.estimate - c.target) / c.se)} SE > ${z}`).join('; '), where);
    },
    equal: (actual, expected, where) => {
      const nan = hasNaN(actual) || hasNaN(expected);
      let ok = !nan;
      let message = nan ? `a NaN in ${hasNaN(actual) ? 'the actual' : 'the expected'} value` : '';
      if (ok) {
        try {
          if (runner.expect !== undefined) runner.expect(actual).toEqual(expected);
          else if (!isDeepStrictEqual(actual, expected)) throw new Error(`${inspect(actual)} ≠ ${inspect(expected)}`);
        } catch (e) {
          ok = false;
          message = e instanceof Error ? e.message : String(e);
        }
      }
      record(title, 'exact', 0, 0, ok, where);
      if (!ok) fail(title, message, where);
    },
  };
};
