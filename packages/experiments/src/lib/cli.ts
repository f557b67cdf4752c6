/**
 * Command-line flags for the experiment commands, as data: a spec is a record of flags, each with an io-ts
 * codec, a default and a description. Parsing is total and returns every problem at once, each naming the
 * flag: `--epochs: expected PositiveInt, got "ten"`, `unknown flag --epoch (did you mean --epochs?)`.
 *
 * Spec keys are camelCase and map to kebab-case flags (`batchSize` ↔ `--batch-size`). Values are written
 * `--flag value` or `--flag=value`; booleans are `--flag`, `--flag=false` or `--no-flag`; lists are
 * comma-separated (`--samplers em,pc,ode`). `--help`/`-h` anywhere asks for help. A bare `--` is ignored
 * (npm/nx pass it through). A value may start with one dash (`--shift -1`) but not two: a following `--x` is
 * always read as the next flag (write `--out=--odd-name` if you must).
 *
 * @module cli
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** How a flag's text is read before decoding. @category model */
export type FlagKind = 'number' | 'string' | 'boolean' | 'list';

/** Anything that decodes an unknown into A and has a name for error messages (every io-ts codec). @category model */
export type Decoder<A> = t.Decoder<unknown, A> & { readonly name: string };

/** One flag: how to read it, how to decode it, its default (undefined: required or optional), and its help. @category model */
export interface FlagSpec<A> {
  readonly kind: FlagKind;
  /** Decodes the read value (a number, a string, a boolean, or an array of strings/numbers for lists). */
  readonly codec: Decoder<A>;
  readonly description: string;
  readonly default: A | undefined;
  /** Must be given when there is no default (false for optional flags). */
  readonly required: boolean;
  /** Shown in help as `--flag <placeholder>`. */
  readonly placeholder: string;
}

/** A command's flags. @category model */
export type FlagsSpec = Readonly<Record<string, FlagSpec<unknown>>>;

/** The parsed flags: one field per spec key with the decoded type. @category model */
export type Flags<S extends FlagsSpec> = { readonly [K in keyof S]: S[K] extends FlagSpec<infer A> ? A : never };

/** Why flags could not be parsed: help was asked for, or a list of problems each naming its flag. @category errors */
export type CliError = { readonly _tag: 'HelpRequested' } | { readonly _tag: 'InvalidFlags'; readonly problems: ReadonlyArray<string> };

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

interface FlagOptions<A> {
  readonly description: string;
  /** Omit for a required flag. */
  readonly default?: A;
  readonly placeholder?: string;
}

const make = <A>(kind: FlagKind, codec: Decoder<A>, o: FlagOptions<A>): FlagSpec<A> => ({
  kind,
  codec,
  description: o.description,
  default: o.default,
  required: o.default === undefined,
  placeholder: o.placeholder ?? codec.name,
});

/** A numeric flag decoded by `codec` (e.g. `codec.PositiveInt`). @category constructors */
export const numberFlag = <A>(codec: Decoder<A>, o: FlagOptions<A>): FlagSpec<A> => make('number', codec, o);

/** A text flag decoded by `codec` (default `t.string`). @category constructors */
export const stringFlag = <A = string>(o: FlagOptions<A> & { readonly codec?: Decoder<A> }): FlagSpec<A> =>
  make('string', o.codec ?? (t.string as unknown as Decoder<A>), { placeholder: 'string', ...o });

/** A flag taking one of the given words. @category constructors */
export const oneOfFlag = <L extends string>(values: readonly [L, ...L[]], o: FlagOptions<L>): FlagSpec<L> =>
  make('string', codec.oneOf(values, values.join('|')) as unknown as Decoder<L>, o);

/** A comma-separated list, each item decoded by `item` (numbers are read as numbers when they look like one). @category constructors */
export const listFlag = <A>(item: Decoder<A>, o: FlagOptions<ReadonlyArray<A>>): FlagSpec<ReadonlyArray<A>> => {
  const codec: Decoder<ReadonlyArray<A>> = {
    name: `${item.name},…`,
    decode: (u) => (Array.isArray(u) ? E.sequenceArray(u.map((x) => item.decode(x))) : t.failure(u, [{ key: '', type: t.array(t.unknown), actual: u }])),
    validate: (u, c) => (Array.isArray(u) ? E.sequenceArray(u.map((x) => item.validate(x, c))) : t.failure(u, c)),
  };
  return make('list', codec, { placeholder: `${item.name},…`, ...o });
};

/** A boolean switch, false unless given. @category constructors */
export const booleanFlag = (o: { readonly description: string; readonly default?: boolean }): FlagSpec<boolean> =>
  make('boolean', t.boolean, { description: o.description, default: o.default ?? false, placeholder: '' });

/** The same flag, but it may be left out (then its value is undefined). @category constructors */
export const optional = <A>(spec: FlagSpec<A>): FlagSpec<A | undefined> => ({ ...spec, default: undefined, required: false });

// -------------------------------------------------------------------------------------
// names
// -------------------------------------------------------------------------------------

/** `batchSize` → `batch-size`. @category names */
export const toKebab = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();

/** Levenshtein distance (for "did you mean"). */
const editDistance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
};

const suggest = (name: string, known: ReadonlyArray<string>): string | undefined => {
  const best = known.map((k) => ({ k, d: editDistance(name, k) })).sort((x, y) => x.d - y.d)[0];
  return best !== undefined && best.d <= Math.max(2, Math.floor(name.length / 3)) ? best.k : undefined;
};

// -------------------------------------------------------------------------------------
// parsing
// -------------------------------------------------------------------------------------

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The text of a number-looking argument as a number; anything else stays a string (so errors show it). */
const readNumber = (raw: string): unknown => (NUMBER.test(raw.trim()) ? Number(raw) : raw);

const readBoolean = (raw: string): unknown => {
  const v = raw.trim().toLowerCase();
  return ['true', '1', 'yes', 'on'].includes(v) ? true : ['false', '0', 'no', 'off'].includes(v) ? false : raw;
};

const readValue = (kind: FlagKind, raw: string): unknown =>
  kind === 'number'
    ? readNumber(raw)
    : kind === 'boolean'
      ? readBoolean(raw)
      : kind === 'list'
        ? raw
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '')
            .map((s) => (NUMBER.test(s) ? Number(s) : s))
        : raw;

const showRaw = (raw: string): string => JSON.stringify(raw);

/** Decodes one flag's text, or says what was wrong: `--epochs: expected PositiveInt, got "ten"`. */
const decodeFlag = (flag: string, spec: FlagSpec<unknown>, raw: string): E.Either<string, unknown> => {
  const value = readValue(spec.kind, raw);
  if (spec.kind === 'list' && Array.isArray(value)) {
    const items = value as ReadonlyArray<unknown>;
    const all = spec.codec.decode(items);
    if (E.isRight(all)) return E.right(all.right);
    const bad = items.find((x) => E.isLeft(spec.codec.decode([x])));
    return E.left(`--${flag}: expected a comma-separated list of ${spec.placeholder.replace(/,…$/, '')}, got ${showRaw(bad === undefined ? raw : String(bad))}`);
  }
  const r = spec.codec.decode(value);
  return E.isRight(r) ? r : E.left(`--${flag}: expected ${spec.codec.name}, got ${showRaw(raw)}`);
};

/**
 * Parses argv (without the node and script names) against a spec. Every problem is reported: unknown flags
 * (with a suggestion), missing values, values the codec rejects, repeated flags, stray arguments and missing
 * required flags. `--help`/`-h` anywhere gives `HelpRequested`.
 * @category parsing
 */
export const parseFlags = <S extends FlagsSpec>(spec: S, argv: ReadonlyArray<string>): E.Either<CliError, Flags<S>> => {
  if (argv.some((a) => a === '--help' || a === '-h')) return E.left({ _tag: 'HelpRequested' });
  const byFlag = new Map(Object.keys(spec).map((k) => [toKebab(k), k] as const));
  const knownFlags = [...byFlag.keys()];
  const problems: string[] = [];
  const raw = new Map<string, string>();
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    i++;
    if (arg === '--') continue;
    if (!arg.startsWith('--')) {
      problems.push(`unexpected argument ${showRaw(arg)} (flags are written --name value)`);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    let inline: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (!byFlag.has(name) && name.startsWith('no-') && byFlag.has(name.slice(3)) && spec[byFlag.get(name.slice(3))!]!.kind === 'boolean' && inline === undefined) {
      name = name.slice(3);
      inline = 'false';
    }
    const key = byFlag.get(name);
    if (key === undefined) {
      const s = suggest(name, knownFlags);
      problems.push(`unknown flag --${name}${s !== undefined ? ` (did you mean --${s}?)` : ''}`);
      // Skip its value, if it seems to have one, so it is not reported again as a stray argument.
      if (inline === undefined && i < argv.length && !argv[i]!.startsWith('--')) i++;
      continue;
    }
    const fs = spec[key]!;
    let value: string | undefined = inline;
    if (value === undefined) {
      if (fs.kind === 'boolean') value = 'true';
      else if (i < argv.length && !argv[i]!.startsWith('--')) {
        value = argv[i]!;
        i++;
      } else {
        problems.push(`--${name}: missing value (expected ${fs.placeholder})`);
        continue;
      }
    }
    if (raw.has(name)) {
      problems.push(`--${name}: given more than once`);
      continue;
    }
    raw.set(name, value);
  }
  const out: Record<string, unknown> = {};
  for (const [key, fs] of Object.entries(spec)) {
    const name = toKebab(key);
    const text = raw.get(name);
    if (text === undefined) {
      if (fs.required) problems.push(`--${name}: required (${fs.description})`);
      else out[key] = fs.default;
      continue;
    }
    const r = decodeFlag(name, fs, text);
    if (E.isLeft(r)) problems.push(r.left);
    else out[key] = r.right;
  }
  return problems.length > 0 ? E.left({ _tag: 'InvalidFlags', problems }) : E.right(out as Flags<S>);
};

// -------------------------------------------------------------------------------------
// help and errors
// -------------------------------------------------------------------------------------

/** A flag's default for help: lists comma-joined, strings as they are. */
const showDefault = (v: unknown): string => (Array.isArray(v) ? v.join(',') : typeof v === 'string' ? v : JSON.stringify(v));

/** Greedy word wrap to `width` columns. */
const wrap = (text: string, width: number): ReadonlyArray<string> => {
  const lines: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(/\s+/).filter((w) => w !== '')) {
      if (line !== '' && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line === '' ? word : `${line} ${word}`;
    }
    lines.push(line);
  }
  return lines;
};

/**
 * The help text: usage line, optional description, then one entry per flag with its placeholder, description
 * and default (or "required" / "optional"), descriptions wrapped at 100 columns.
 * @category help
 */
export const renderHelp = (spec: FlagsSpec, usage: string, description?: string): string => {
  const entries = [
    ...Object.entries(spec).map(([key, fs]) => {
      const left = `--${toKebab(key)}${fs.kind === 'boolean' ? '' : ` <${fs.placeholder}>`}`;
      const tail = fs.required ? ' (required)' : fs.default === undefined ? ' (optional)' : fs.kind === 'boolean' && fs.default === false ? '' : ` (default: ${showDefault(fs.default)})`;
      return { left, text: `${fs.description}${tail}` };
    }),
    { left: '--help, -h', text: 'Show this help and exit.' },
  ];
  const col = Math.min(34, Math.max(...entries.map((e) => e.left.length)) + 3);
  const lines: string[] = [`Usage: ${usage}`, ''];
  if (description !== undefined) lines.push(...wrap(description, 100), '');
  lines.push('Flags:');
  for (const e of entries) {
    const body = wrap(e.text, 100 - col - 2);
    const pad = e.left.length + 2 < col ? e.left.padEnd(col - 2) : `${e.left}\n${' '.repeat(col)}`;
    lines.push(`  ${pad}${body[0] ?? ''}`);
    for (const b of body.slice(1)) lines.push(`${' '.repeat(col + 2)}${b}`);
  }
  return `${lines.join('\n')}\n`;
};

/** The problems, one per line, and a pointer to --help. @category help */
export const renderCliError = (e: CliError): string =>
  e._tag === 'HelpRequested' ? 'help requested' : `${e.problems.map((p) => `error: ${p}`).join('\n')}\nRun with --help to see every flag.`;

/**
 * For the top of a command: parse, or print help (exit 0) / the problems (exit 2) and exit.
 * @category help
 */
export const parseFlagsOrExit = <S extends FlagsSpec>(spec: S, argv: ReadonlyArray<string>, usage: string, description?: string): Flags<S> => {
  const r = parseFlags(spec, argv);
  if (E.isRight(r)) return r.right;
  if (r.left._tag === 'HelpRequested') {
    process.stdout.write(renderHelp(spec, usage, description));
    process.exit(0);
  }
  process.stderr.write(`${renderCliError(r.left)}\n`);
  process.exit(2);
};
