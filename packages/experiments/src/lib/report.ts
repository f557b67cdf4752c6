/**
 * Writing experiment results: atomic file writes (temp file + rename, so a reader never sees half a file and a
 * failed write never clobbers the old one), `report.json` with non-finite numbers kept readable, markdown
 * tables, and run ids.
 *
 * @module report
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { tensorFiles } from '@score-sde/models';

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/** A file-system failure, naming the path. @category errors */
export interface IoError {
  readonly _tag: 'IoError';
  readonly path: string;
  readonly message: string;
}

/** An IoError from a caught exception. @category errors */
export const ioError = (p: string, e: unknown): IoError => ({
  _tag: 'IoError',
  path: p,
  // Not `instanceof Error`: Node's fs errors may come from another realm (a worker, a test sandbox).
  message: typeof (e as { message?: unknown } | null)?.message === 'string' ? (e as Error).message : String(e),
});

/** `cannot write out/report.json: EACCES …`. @category errors */
export const renderIoError = (e: IoError): string => `${e.path}: ${e.message}`;

// -------------------------------------------------------------------------------------
// run ids
// -------------------------------------------------------------------------------------

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/**
 * A filesystem-safe, lexicographically sortable run id from a time (UTC): `YYYYMMDD-HHMMSS-mmm`,
 * e.g. `20250131-093005-042`. No colons, spaces or slashes.
 * @category run ids
 */
export const runId = (date: Date = new Date()): string =>
  `${date.getUTCFullYear()}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}-` +
  `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}-${pad(date.getUTCMilliseconds(), 3)}`;

// -------------------------------------------------------------------------------------
// atomic writes
// -------------------------------------------------------------------------------------

/** mkdir -p. @category files */
export const ensureDir = (dir: string): TE.TaskEither<IoError, void> =>
  TE.tryCatch(
    async () => {
      await fs.promises.mkdir(dir, { recursive: true });
    },
    (e) => ioError(dir, e),
  );

/**
 * Writes `data` to `target` atomically: parent directories are created, the bytes go to a temp file in the same
 * directory which is flushed (fsync) and renamed over `target` (models' tensorFiles.writeFileAtomically, whose
 * `write:<name>` fault point the process tests use). On any failure the temp file is removed and `target` is left
 * as it was.
 * @category files
 */
export const atomicWriteFile = (target: string, data: string | Uint8Array): TE.TaskEither<IoError, void> =>
  pipe(
    ensureDir(path.dirname(target)),
    TE.chain(() =>
      TE.tryCatch(
        () => tensorFiles.writeFileAtomically(target, data),
        (e) => ioError(target, e),
      ),
    ),
  );

// -------------------------------------------------------------------------------------
// JSON
// -------------------------------------------------------------------------------------

/**
 * JSON.stringify replacer for reports: NaN and ±Infinity become the strings "NaN", "Infinity", "-Infinity"
 * (JSON has no such numbers and would silently write null), typed arrays become arrays, bigints strings.
 * @category json
 */
export const reportReplacer = (_key: string, value: unknown): unknown => {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'bigint') return value.toString();
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
  return value;
};

/** Pretty JSON (2 spaces, trailing newline) with {@link reportReplacer}. @category json */
export const toReportJson = (value: unknown): string => `${JSON.stringify(value, reportReplacer, 2)}\n`;

/** Writes `value` as pretty JSON, atomically. @category json */
export const writeJson = (target: string, value: unknown): TE.TaskEither<IoError, void> => atomicWriteFile(target, toReportJson(value));

/**
 * Writes `report.json` (and `report.md` when markdown is given) into `dir`, atomically each; the base name is
 * configurable (`eval` → `eval.json`, `eval.md`).
 * @category json
 */
export const writeReport = (
  dir: string,
  report: unknown,
  markdown?: string,
  baseName = 'report',
): TE.TaskEither<IoError, { readonly json: string; readonly markdown?: string }> => {
  const jsonPath = path.join(dir, `${baseName}.json`);
  const mdPath = path.join(dir, `${baseName}.md`);
  return pipe(
    writeJson(jsonPath, report),
    TE.chain(() => (markdown === undefined ? TE.right(undefined) : atomicWriteFile(mdPath, markdown.endsWith('\n') ? markdown : `${markdown}\n`))),
    TE.map(() => (markdown === undefined ? { json: jsonPath } : { json: jsonPath, markdown: mdPath })),
  );
};

// -------------------------------------------------------------------------------------
// markdown
// -------------------------------------------------------------------------------------

/**
 * A number for a table: integers as they are, others to 4 significant digits (exponent form outside
 * [1e-3, 1e6)), NaN/±Infinity spelt out.
 * @category markdown
 */
export const formatNumber = (v: number, digits = 4): string => {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '∞' : '−∞';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(digits)));
};

/** A cell: numbers via {@link formatNumber}, arrays comma-joined, null/undefined empty, `|` and newlines escaped. @category markdown */
export const formatCell = (v: unknown): string => {
  const s =
    v === null || v === undefined
      ? ''
      : typeof v === 'number'
        ? formatNumber(v)
        : Array.isArray(v) || ArrayBuffer.isView(v)
          ? Array.from(v as ArrayLike<unknown>, formatCell).join(', ')
          : typeof v === 'object'
            ? JSON.stringify(v, reportReplacer)
            : String(v);
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
};

/** Options of {@link markdownTable}: the columns and their order (default: every key, first-seen order), and headers. @category markdown */
export interface TableOptions {
  readonly columns?: ReadonlyArray<string>;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * A GitHub-flavoured markdown table of records: one column per key, numeric columns right-aligned.
 * @category markdown
 */
export const markdownTable = (rows: ReadonlyArray<Readonly<Record<string, unknown>>>, opts: TableOptions = {}): string => {
  const columns = opts.columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  if (columns.length === 0) return '';
  const numeric = columns.map((c) => rows.length > 0 && rows.every((r) => r[c] === undefined || r[c] === null || typeof r[c] === 'number'));
  const header = `| ${columns.map((c) => formatCell(opts.headers?.[c] ?? c)).join(' | ')} |`;
  const rule = `|${numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`;
  const body = rows.map((r) => `| ${columns.map((c) => formatCell(r[c])).join(' | ')} |`);
  return [header, rule, ...body].join('\n');
};

/** A two-column `key | value` table of a record (for configs), nested objects flattened with dots. @category markdown */
export const markdownKeyValue = (record: Readonly<Record<string, unknown>>, headers: readonly [string, string] = ['key', 'value']): string => {
  const flat: Array<Record<string, unknown>> = [];
  const walk = (prefix: string, v: unknown): void => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) walk(prefix === '' ? k : `${prefix}.${k}`, x);
    } else flat.push({ [headers[0]]: prefix, [headers[1]]: v });
  };
  walk('', record);
  return markdownTable(flat, { columns: headers });
};
