/**
 * The small command-line helpers the benchmark scripts share.
 *
 * @module bench/args
 */

/** The value after `--name` on the command line, or `fallback`. */
export const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};

/** The integer after `--name` in `argv`, or `fallback`; an error naming the flag when it is not an integer ≥ `min`. */
export const intFlag = (argv: ReadonlyArray<string>, name: string, fallback: number, min = 1): number => {
  const i = argv.indexOf(`--${name}`);
  const raw = i >= 0 ? argv[i + 1] : undefined;
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got "${raw}"`);
  return n;
};

/** The median of a non-empty list (NaN for an empty one). */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Runs a synchronous `main`, exiting with its code, or with 2 and `usage` after an error's message. */
export const runMain = (main: () => number | Promise<number>, usage: string): void => {
  Promise.resolve()
    .then(main)
    .then(
      (code) => process.exit(code),
      (e: unknown) => {
        process.stderr.write(`${(e as Error).message}\n${usage}`);
        process.exit(2);
      },
    );
};
