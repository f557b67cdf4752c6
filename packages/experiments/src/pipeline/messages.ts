/**
 * How an experiment step talks: human-facing log lines (stderr unless a caller gives its own sink), and failure as
 * one message that says what failed, which flag or part it concerns, and what was kept. Every command (training,
 * sampling, evaluation, merging) returns an {@link ExperimentError} in its Left.
 *
 * @module pipeline/messages
 */
import * as E from 'fp-ts/Either';

/** A failed step of an experiment, with a readable message. @category model */
export interface ExperimentError {
  readonly _tag: 'ExperimentError';
  readonly message: string;
  /** A stop request (Ctrl-C) ended the step: the command then exits 130, not 1. */
  readonly interrupted?: boolean;
}

/** A Left with a message. @category constructors */
export const fail = (message: string): E.Either<ExperimentError, never> => E.left({ _tag: 'ExperimentError', message });

/** A Left of a step that a stop request (Ctrl-C) ended. @category constructors */
export const interrupted = (message: string): E.Either<ExperimentError, never> => E.left({ _tag: 'ExperimentError', message, interrupted: true });

/** The log sink of a context: its own `log`, else a line on stderr. @category constructors */
export const logOf = (ctx: { readonly log?: (line: string) => void }): ((line: string) => void) => ctx.log ?? ((l: string) => process.stderr.write(`${l}\n`));
