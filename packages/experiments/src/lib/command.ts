/**
 * The tail of every command file: run its async `main`, exit with the code it returns, and report a throw with its
 * stack (exit 1).
 *
 * @module lib/command
 */

/** Runs `main` and exits with its code; an exception is printed as `<name>: <stack>` and exits 1. @category commands */
export const runMain = (name: string, main: () => Promise<number>): void => {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${name}: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
};
