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
}

/** A Left with a message. @category constructors */
export const fail = (message: string): E.Either<ExperimentError, never> => E.left({ _tag: 'ExperimentError', message });

/** The log sink of a context: its own `log`, else a line on stderr. @category constructors */
export const logOf = (ctx: { readonly log?: (line: string) => void }): ((line: string) => void) => ctx.log ?? ((l: string) => process.stderr.write(`${l}\n`));
