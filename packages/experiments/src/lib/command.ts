/**
 * What every command's entry shares: the exit codes, flag parsing that prints help or the problems and returns a
 * code (never exits, so a command's `main` can run in process, under test), the checks of the environment, the
 * Ctrl-C handling of long runs, and the tail of every command file ({@link runMain}) that turns an escaped exception
 * into one line.
 *
 * Exit codes (README, "Faults"):
 *   0    done (also after Ctrl-C during training: the run saved, sampled and reported; report.json says interrupted)
 *   1    the run failed: a message says what happened and what was kept (missing or corrupt checkpoint, NaN loss,
 *        disk full, folder in use by another run, backend not available, …)
 *   2    bad command line, spec file or environment variable: every problem is named
 *   70   an internal error (a bug): one line, the stack only with SCORE_SDE_DEBUG=1
 *   130  stopped by Ctrl-C (during sampling, or a second Ctrl-C at any time); what was saved is intact
 *
 * @module lib/command
 */
import * as E from 'fp-ts/Either';
import { initBackend, type BackendInfo } from '@score-sde/tensor-fp';
import { faults } from '@score-sde/models';
import { type FlagsSpec, type Flags, parseFlags, renderHelp, renderCliError } from './cli';
import { type Claim, holdAll, renderLockError } from './lock';

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
 * Parses argv; on `--help` prints the help (and `extra`) to stdout and gives Left 0, on bad flags prints every
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

/**
 * The start of every command after its flags: the environment checked (a bad fault variable: exit 2) and the backend
 * initialised (one that cannot be had: exit 1), each failure printed as one line; Left is the exit code.
 * @category environment
 */
export const prepare = async (name: string, prefer: Parameters<typeof initBackend>[0], io: CommandIO = processIO): Promise<E.Either<number, BackendInfo>> => {
  const env = checkEnvironment();
  if (E.isLeft(env)) {
    io.err(`error: ${env.left}`);
    return E.left(EXIT.usage);
  }
  const backend = await chooseBackend(prefer);
  if (E.isLeft(backend)) {
    io.err(`${name}: --backend ${prefer?.prefer ?? 'auto'}: ${backend.left}`);
    return E.left(EXIT.failed);
  }
  return backend;
};

/**
 * Runs `run` holding the command's locks (lib/lock's {@link holdAll}: its output folder, the folders it reads): a lock
 * another run holds is a one-line message naming that run (exit 1) and nothing runs; the locks are released when
 * `run` settles, whichever way.
 * @category locks
 */
export const withLocks = async (name: string, claims: ReadonlyArray<Claim>, run: () => Promise<number>, io: CommandIO = processIO): Promise<number> => {
  const held = holdAll(claims);
  if (E.isLeft(held)) {
    io.err(`${name}: ${renderLockError(held.left.error, held.left.what)}`);
    return EXIT.failed;
  }
  try {
    return await run();
  } finally {
    held.right();
  }
};

// -------------------------------------------------------------------------------------
// Ctrl-C
// -------------------------------------------------------------------------------------

/**
 * A stop request of a long run: `requested` turns true at the first Ctrl-C, and `signal` aborts with it (a sampler
 * stops at its next step). The run decides what a request means where it stands (training: save and go on to
 * sampling; sampling: stop).
 * @category Ctrl-C
 */
export interface StopRequest {
  readonly requested: boolean;
  readonly signal: AbortSignal;
}

/**
 * Installs the SIGINT handler of a long run for the time of `run`: the first Ctrl-C prints `first` and sets the
 * {@link StopRequest}; a second one prints that it exits and ends the process at once with 130 (what was saved is
 * intact: every file is written atomically). The handler is removed when `run` settles.
 * @category Ctrl-C
 */
export const withCtrlC = async <A>(first: string, run: (stop: StopRequest) => Promise<A>, io: CommandIO = processIO): Promise<A> => {
  const controller = new AbortController();
  const stop: StopRequest = {
    get requested() {
      return controller.signal.aborted;
    },
    signal: controller.signal,
  };
  const onSigint = (): void => {
    if (controller.signal.aborted) {
      io.err('\nsecond Ctrl-C: exiting now (the last saved checkpoint is intact)');
      process.exit(EXIT.interrupted);
    }
    io.err(`\n${first}`);
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await run(stop);
  } finally {
    process.off('SIGINT', onSigint);
  }
};

// -------------------------------------------------------------------------------------
// the tail of a command file
// -------------------------------------------------------------------------------------

/** One line for an exception that escaped a command (a bug); the stack with SCORE_SDE_DEBUG=1. @category exit codes */
export const renderInternalError = (name: string, e: unknown, env: Readonly<Record<string, string | undefined>> = process.env): string => {
  const message = e instanceof Error ? e.message : String(e);
  const stack = env['SCORE_SDE_DEBUG'] === '1' && e instanceof Error && e.stack !== undefined ? `\n${e.stack}` : '';
  return `${name}: internal error: ${message.split('\n')[0]} (a bug: please report it; SCORE_SDE_DEBUG=1 shows where)${stack}`;
};

/**
 * The bottom of a command's file (`if (require.main === module) runMain('mnist', mnistMain)`): runs `main` on the
 * process's arguments and exits with its code; an escaped exception exits 70 with one line ({@link renderInternalError}).
 * @category exit codes
 */
export const runMain = (name: string, main: (argv: ReadonlyArray<string>) => Promise<number>): void => {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${renderInternalError(name, e)}\n`);
      process.exit(EXIT.internal);
    },
  );
};
