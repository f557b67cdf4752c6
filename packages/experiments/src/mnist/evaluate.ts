/**
 * `nx run experiments:mnist -- --eval <parts>`: the evaluation of `experiments:mnist-eval` run on the checkpoint the
 * training just wrote, into `<out>/eval`, with the main experiment's sampler settings and seed carried over.
 *
 * @module mnist/evaluate
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type { BackendInfo } from '@score-sde/tensor-fp';
import { cli } from '../lib';
import { EVAL_PARTS, mnistEvalFlags, type MnistEvalFlags } from '../eval/flags';
import type { EvalError } from '../eval/common';
import type { EvalReport } from '../eval/report';
import { runMnistEval } from '../eval/run';
import type { MnistFlags } from './flags';

/** Where the evaluation of a run writes: `<out>/eval`. @category config */
export const evalDirOf = (out: string): string => path.join(out, 'eval');

/**
 * The evaluation flags of a run with output folder `out`: checkpoint `<out>/checkpoint`, out `<out>/eval`, the parts
 * of `--eval` (the others skipped), n = `--eval-samples`, and `--steps`, `--snr`, `--seed`, `--backend`, `--quiet`
 * of the run; everything else at the evaluation's defaults. Decoded by the evaluation's own codecs.
 * @category config
 */
export const evalFlagsOf = (f: MnistFlags, out: string): E.Either<cli.CliError, MnistEvalFlags> => {
  const skipped = EVAL_PARTS.filter((p) => !f.eval.includes(p));
  return cli.parseFlags(mnistEvalFlags, [
    '--checkpoint', path.join(out, 'checkpoint'),
    '--out', evalDirOf(out),
    '--samples', String(f.evalSamples),
    '--steps', String(f.steps),
    '--snr', String(f.snr),
    '--seed', String(f.seed),
    '--backend', f.backend,
    ...(skipped.length > 0 ? ['--skip', skipped.join(',')] : []),
    ...(f.quiet ? ['--quiet'] : []),
  ]);
};

/**
 * Runs the evaluation parts of `--eval` on the run's checkpoint (nothing when `--eval` is empty: Right(undefined)).
 * @category running
 */
export const evaluateRun = async (
  f: MnistFlags,
  ctx: { readonly backend: BackendInfo; readonly log?: (line: string) => void },
  out: string,
): Promise<E.Either<EvalError, EvalReport | undefined>> => {
  if (f.eval.length === 0) return E.right(undefined);
  const flags = evalFlagsOf(f, out);
  if (E.isLeft(flags)) return E.left({ _tag: 'EvalError', message: `--eval: ${cli.renderCliError(flags.left)}` });
  return runMnistEval(flags.right, ctx, evalDirOf(out));
};
