/**
 * End-to-end fuzzing of the commands, in process: a command's `main` runs on an argv (from fast-check) with its
 * output captured, in a fresh sandbox directory as working directory, and the outcome is checked against what every
 * command promises: a documented exit code, one line per problem naming what was wrong, never a stack trace, no
 * empty folder and no lock left behind.
 *
 * Arguments are mutations of a tiny valid command line (so that a mutant that is still valid runs in well under a
 * second): flags dropped, renamed, repeated, written `--flag=value`, given odd values, or junk tokens inserted. Flags
 * that set the size of the work ("cost flags", e.g. --epochs, --subset) are never dropped or renamed (their defaults
 * are full-size runs) and only get values that are invalid or small; {@link assertCheap} checks that invariant on every
 * argv that parses, before it runs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { initBackend } from '@score-sde/tensor-fp';
import { STACK_LINE } from '../process/helpers';
import { tinyCheckpoint } from '../eval/helpers';
import { LOCK_FILE } from '../../src/lib/lock';

/** A valid toy spec of a few milliseconds: 1-D, two components, DPM-Solver++ with 4 steps, 20 samples. */
export const SMALL_TOY = {
  sde: { kind: 've', sigmaMin: 0.01, sigmaMax: 50, T: 1 },
  data: { kind: 'gaussian-mixture', weights: [0.4, 0.6], means: [[-1], [1.5]], stds: [0.5, [0.3]] },
  sampler: { kind: 'dpm-solver++2m', steps: 4 },
  samples: 20,
  seed: 1,
  likelihoodPoints: [[0.5]],
};

// -------------------------------------------------------------------------------------
// running a main in process
// -------------------------------------------------------------------------------------

/** What a command did: its exit code (or the exception that escaped it), stdout and stderr. */
export interface Outcome {
  readonly code: number | 'threw';
  readonly stdout: string;
  readonly stderr: string;
  readonly thrown?: unknown;
}

/** A fresh sandbox directory. */
export const sandbox = (name: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `score-sde-fuzz-${name}-`));

/** The working directory of a case inside its sandbox, one level down, so that a relative `../x` stays in the sandbox. */
const WORK = 'work';

/**
 * Runs `main(argv)` with `cwd` as working directory and process.stdout/stderr captured. An exception that escapes is
 * an outcome too ('threw'): the property then fails.
 */
export const invoke = async (main: (argv: ReadonlyArray<string>) => Promise<number>, argv: ReadonlyArray<string>, cwd: string): Promise<Outcome> => {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((stdout += String(s)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((stderr += String(s)), true));
  // The console as a process has it (Jest's own console decorates a warning with the place it came from, e.g. the
  // tfjs cpu backend's advice to install tfjs-node).
  const warn = jest.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void (stderr += `${a.map(String).join(' ')}\n`));
  const log = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void (stdout += `${a.map(String).join(' ')}\n`));
  const before = process.cwd();
  process.chdir(cwd);
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } catch (thrown) {
    return { code: 'threw', stdout, stderr, thrown };
  } finally {
    process.chdir(before);
    out.mockRestore();
    err.mockRestore();
    warn.mockRestore();
    log.mockRestore();
  }
};

// -------------------------------------------------------------------------------------
// what every outcome must satisfy
// -------------------------------------------------------------------------------------

/** Directories under `dir` that are empty (`dir` and `keep` excepted), and lock files left in it. */
const leftovers = (dir: string, keep: string = dir): { readonly empty: ReadonlyArray<string>; readonly locks: ReadonlyArray<string> } => {
  const empty: string[] = [];
  const locks: string[] = [];
  const walk = (d: string): void => {
    const entries = fs.readdirSync(d);
    if (entries.length === 0 && d !== dir && d !== keep) empty.push(path.relative(dir, d));
    for (const e of entries) {
      const p = path.join(d, e);
      if (e === LOCK_FILE) locks.push(path.relative(dir, p));
      if (fs.lstatSync(p).isDirectory()) walk(p);
    }
  };
  walk(dir);
  return { empty, locks };
};

/** A decoding problem `path.to.field: problem` (odd keys quoted as JSON strings; `(root)` for the whole document). */
const KEY = '(?:[\\w$]+|"(?:[^"\\\\]|\\\\.)*")';
export const FIELD_PROBLEM = new RegExp(`^(\\(root\\)|${KEY}(?:\\.${KEY})*): \\S`);

/** An `error:` line of a usage failure names what was wrong: a flag, an unknown flag, a stray argument or a variable. */
export const NAMES_WHAT = /^error: (--[a-z][a-z0-9-]*(:| and )|unknown flag --|unexpected argument |SCORE_SDE_[A-Z_]+: )/;

/**
 * The promises of every command: an exit code of {0, 1, 2}, no exception escaping, no stack trace printed; exit 2
 * with every `error:` line naming what was wrong (and at least one); exit 1 with a one-line message prefixed by the
 * command's name; nothing left in the sandbox as an empty folder or a lock. Returns the problems (empty when none).
 */
export const broken = (name: string, o: Outcome, cwd: string, root: string = cwd): ReadonlyArray<string> => {
  const problems: string[] = [];
  if (o.code === 'threw') problems.push(`an exception escaped: ${String((o.thrown as Error)?.stack ?? o.thrown)}`);
  else if (![0, 1, 2].includes(o.code)) problems.push(`exit code ${o.code}`);
  if (STACK_LINE.test(o.stdout) || STACK_LINE.test(o.stderr)) problems.push('a stack trace was printed');
  if (/internal error/.test(o.stderr)) problems.push('an internal error was reported');
  if (o.code === 2) {
    const errors = o.stderr.split('\n').filter((l) => l.startsWith('error: ') || /^invalid /.test(l));
    if (errors.length === 0) problems.push('exit 2 without an error line');
    errors.filter((l) => l.startsWith('error: ') && !NAMES_WHAT.test(l)).forEach((l) => problems.push(`an error that names nothing: ${l}`));
  }
  if (o.code === 1 && !new RegExp(`^${name}( --eval)?: \\S`, 'm').test(o.stderr)) problems.push('exit 1 without a message');
  const left = leftovers(root, cwd);
  if (left.empty.length > 0) problems.push(`empty folders left: ${left.empty.join(', ')}`);
  if (left.locks.length > 0) problems.push(`locks left: ${left.locks.join(', ')}`);
  return problems.length === 0 ? [] : [...problems, `stderr:\n${o.stderr.slice(-2000)}`];
};

// -------------------------------------------------------------------------------------
// argv mutations
// -------------------------------------------------------------------------------------

/** A command line as (flag, value) pairs; a switch has no value. */
export type Line = ReadonlyArray<readonly [string, string | undefined]>;

/**
 * Values that no cost flag accepts as a large number: non-numbers, non-integers, out-of-range and odd spellings, and
 * a few small numbers. No digit string longer than one character, so no valid large count can appear.
 */
const oddValue: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', ' ', '0', '1', '2', '-1', '-0', '1.5', '.5', '1e400', '1e-400', 'NaN', 'Infinity', '-Infinity', '9007199254740993', '0x10', '1_0', '١', 'null', 'true', ',', '1,', ',1', '1,,2', ' 1', '--', '-', 'é', '\u0000', '../x', '~'),
  // Never an absolute path nor one that climbs out of the sandbox (a value may become a folder the command writes).
  fc.string({ unit: fc.constantFrom(...'abcxyzEPS-_=., /\\:;"\'()[]{}%$#@!?*&^|<>`~é漢'.split('')), maxLength: 8 }).filter((v) => !v.trim().startsWith('/') && !v.split('/').some((p) => p.trim() === '..')),
);

export interface MutationOptions {
  /** Every flag of the command (for renames and inserted flags). */
  readonly flags: ReadonlyArray<string>;
  /** Flags that set the size of the work: never dropped nor renamed, only given odd values. */
  readonly cost: ReadonlySet<string>;
  /** Safe valid alternatives for a flag's value (e.g. other sampler names), set (or added) by one kind of mutation. */
  readonly alternatives?: Readonly<Record<string, ReadonlyArray<string>>>;
}

type Mutation =
  | { readonly kind: 'drop' | 'repeat' | 'inline' | 'switch-off'; readonly at: number }
  | { readonly kind: 'alternative'; readonly flag: string; readonly pick: number }
  | { readonly kind: 'value'; readonly at: number; readonly value: string }
  | { readonly kind: 'rename'; readonly at: number; readonly to: string }
  | { readonly kind: 'insert'; readonly at: number; readonly tokens: ReadonlyArray<string> };

const mutationArb = (o: MutationOptions): fc.Arbitrary<Mutation> => {
  const flagName = fc.oneof(fc.constantFrom(...o.flags), fc.constantFrom('help', 'h', 'epoch', 'out=', 'no-out', '', 'x'));
  const withAlternatives = Object.keys(o.alternatives ?? {});
  return fc.oneof(
    ...(withAlternatives.length > 0 ? [fc.record({ kind: fc.constant('alternative' as const), flag: fc.constantFrom(...withAlternatives), pick: fc.nat() })] : []),
    fc.record({ kind: fc.constantFrom('drop' as const, 'repeat' as const, 'inline' as const, 'switch-off' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('value' as const), at: fc.nat(), value: oddValue }),
    fc.record({ kind: fc.constant('rename' as const), at: fc.nat(), to: flagName }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      tokens: fc.array(fc.oneof(flagName.map((f) => `--${f}`), oddValue), { minLength: 1, maxLength: 2 }),
    }),
  );
};

/** Applies one mutation, keeping the cost flags present (a dropped or renamed cost flag would mean a full-size run). */
const apply = (o: MutationOptions) => (line: Line, m: Mutation): Line => {
  if (m.kind === 'alternative') {
    const alt = o.alternatives?.[m.flag] ?? [];
    const v = alt[m.pick % alt.length]!;
    return line.some(([f]) => f === m.flag) ? line.map(([f, x]) => (f === m.flag ? [f, v] : [f, x])) : [...line, [m.flag, v]];
  }
  if (line.length === 0) return line;
  const i = m.at % line.length;
  const [flag, value] = line[i]!;
  const replace = (...items: Line): Line => [...line.slice(0, i), ...items, ...line.slice(i + 1)];
  switch (m.kind) {
    case 'drop':
      return o.cost.has(flag) ? line : replace();
    case 'repeat':
      return replace([flag, value], [flag, value]);
    case 'inline':
      return value === undefined ? line : replace([`${flag}=${value}`, undefined]);
    case 'switch-off':
      return value === undefined ? replace([`no-${flag}`, undefined]) : line;
    case 'value':
      return value === undefined ? replace([flag, undefined], [`\u0000raw`, m.value]) : replace([flag, m.value]);
    case 'rename':
      return o.cost.has(flag) || o.cost.has(m.to) ? line : replace([m.to, value]);
    case 'insert':
      return [...line.slice(0, i), ...m.tokens.map((t) => [`\u0000raw`, t] as const), ...line.slice(i)];
  }
};

/** A line as argv: `--flag value`, `--flag`; raw tokens as they are. */
export const argvOf = (line: Line): ReadonlyArray<string> =>
  line.flatMap(([f, v]) => (f === '\u0000raw' ? [v!] : v === undefined ? [`--${f}`] : [`--${f}`, v]));

/** Argv arbitrary: the base line with up to three mutations. */
export const mutatedArgv = (base: Line, o: MutationOptions): fc.Arbitrary<ReadonlyArray<string>> =>
  fc.array(mutationArb(o), { maxLength: 3 }).map((ms) => argvOf(ms.reduce(apply(o), base)));

/** Base line from a record (`true` for a switch). */
export const lineOf = (r: Readonly<Record<string, string | true>>): Line => Object.entries(r).map(([k, v]) => [k, v === true ? undefined : v] as const);

/**
 * Runs one fuzz case of a command in a fresh sandbox and throws (with the argv and what broke) unless the outcome
 * keeps every promise ({@link broken}); returns the outcome for further checks.
 */
export const checkCase = async (name: string, main: (argv: ReadonlyArray<string>) => Promise<number>, argv: ReadonlyArray<string>): Promise<Outcome> => {
  const root = sandbox(name);
  const cwd = path.join(root, WORK);
  fs.mkdirSync(cwd);
  try {
    const o = await invoke(main, argv, cwd);
    const problems = broken(name, o, cwd, root);
    if (problems.length > 0) throw new Error(`argv ${JSON.stringify(argv)}:\n${problems.join('\n')}`);
    return o;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
};

/** A tiny untrained checkpoint in a sandbox, made before a test file's cases and removed after them. */
export const useCheckpointFixture = (): { readonly dir: () => string; readonly checkpoint: () => string } => {
  let dir = '';
  let checkpoint = '';
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
    dir = sandbox('fixtures');
    checkpoint = await tinyCheckpoint(dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir: () => dir, checkpoint: () => checkpoint };
};
