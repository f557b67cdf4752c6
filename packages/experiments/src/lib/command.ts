/**
 * What every command's entry shares: the exit codes, flag parsing that prints help or the problems and returns a
 * code (never exits, so a command's `main` can run in process, under test), the checks of the environment, and the
 * last-resort handler that turns an escaped exception into one line.
 *
 * Exit codes (README, "Faults"):
 *   0    done (also after Ctrl-C during training: the run saved, sampled and reported; report.json says interrupted)
 *   1    the run failed: a message says what happened and what was kept (missing or corrupt checkpoint, NaN loss,
 *        disk full, folder in use by another run, backend not available, …)
 *   2    bad command line, spec file or environment variable: every problem is named
 *   70   an internal error (a bug): one line, the stack only with SCORE_SDE_DEBUG=1
 *   130  stopped by Ctrl-C (during sampling, or a second Ctrl-C at any time); what was saved is intact
 *
 * @module command
 */
import * as E from 'fp-ts/Either';
import { initBackend, type BackendInfo } from '@score-sde/tensor-fp';
import { faults } from '@score-sde/models';
import { type FlagsSpec, type Flags, parseFlags, renderHelp, renderCliError } from './cli';

/** The exit codes of every command (see the module comment). @category exit codes */
export const EXIT = { ok: 0, failed: 1, usage: 2, internal: 70, interrupted: 130 } as const;

/** Where a command writes: lines to stderr (progress, messages), help to stdout. @category io */
export interface CommandIO {
  readonly err: (line: string) => void;
  readonly out: (text: string) => void;
}

/** The process's own streams. @category io */
export const processIO: CommandIO = { err: (l) => process.stderr.write(`${l}\n`), out: (t) => process.stdout.write(t) };

/**
 * Parses argv; on `--help` prints the help (and `extraHelp`) to stdout and gives Left 0, on bad flags prints every
 * problem to stderr and gives Left 2.
 * @category flags
 */
export const parseCommandFlags = <S extends FlagsSpec>(
  spec: S,
  argv: ReadonlyArray<string>,
  help: { readonly usage: string; readonly description?: string; readonly extra?: string },
  io: CommandIO = processIO,
): E.Either<number, Flags<S>> => {
  const r = parseFlags(spec, argv);
  if (E.isRight(r)) return r;
  if (r.left._tag === 'HelpRequested') {
    io.out(renderHelp(spec, help.usage, help.description));
    if (help.extra !== undefined) io.out(`${help.extra}\n`);
    return E.left(EXIT.ok);
  }
  io.err(renderCliError(r.left));
  return E.left(EXIT.usage);
};

/** The environment variables a command reads besides its flags, checked before any work: Left names the variable. @category environment */
export const checkEnvironment = (env: Readonly<Record<string, string | undefined>> = process.env): E.Either<string, void> =>
  E.map(() => undefined)(faults.faultsFromEnv(env));

/** initBackend as an Either: a backend that cannot be had (e.g. `--backend tensorflow` without tfjs-node) is a message. @category environment */
export const chooseBackend = async (prefer: Parameters<typeof initBackend>[0]): Promise<E.Either<string, BackendInfo>> => {
  try {
    return E.right(await initBackend(prefer));
  } catch (e) {
    return E.left((e as Error).message);
  }
};

/** One line for an exception that escaped a command (a bug); the stack with SCORE_SDE_DEBUG=1. @category exit codes */
export const renderInternalError = (name: string, e: unknown, env: Readonly<Record<string, string | undefined>> = process.env): string => {
  const message = e instanceof Error ? e.message : String(e);
  const stack = env['SCORE_SDE_DEBUG'] === '1' && e instanceof Error && e.stack !== undefined ? `\n${e.stack}` : '';
  return `${name}: internal error: ${message.split('\n')[0]} (a bug: please report it; SCORE_SDE_DEBUG=1 shows where)${stack}`;
};

/**
 * The bottom of a command's file: runs `main(argv)` and exits with its code; an escaped exception exits 70 with one
 * line ({@link renderInternalError}).
 * @category exit codes
 */
export const runCommand = (name: string, main: (argv: ReadonlyArray<string>) => Promise<number>): void => {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${renderInternalError(name, e)}\n`);
      process.exit(EXIT.internal);
    },
  );
};
