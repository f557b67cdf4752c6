/**
 * The recipe the end-to-end benchmark trains: whatever `nx run experiments:mnist` does by default, read from the
 * experiments package (its flags' defaults mapped by `trainConfigOf`), never copied. When the experiments package
 * exports one default recipe record, this is the one place to point at it.
 *
 * @module bench/e2e/recipe
 */
import * as E from 'fp-ts/Either';
import type { TrainConfig } from '@score-sde/models';
import { cli } from '../../../packages/experiments/src/lib';
import { mnistFlags, type MnistFlags } from '../../../packages/experiments/src/mnist/flags';
import { trainConfigOf } from '../../../packages/experiments/src/mnist/run';

/** The default run of the MNIST experiment: its flags and the training configuration they give. */
export interface DefaultRecipe {
  readonly flags: MnistFlags;
  readonly train: TrainConfig;
}

/** The defaults of `nx run experiments:mnist` (its flags parsed from an empty command line). */
export const defaultRecipe = (): DefaultRecipe => {
  const flags = cli.parseFlags(mnistFlags, []);
  if (E.isLeft(flags)) throw new Error(`the MNIST experiment's default flags do not parse: ${cli.renderCliError(flags.left)}`);
  return { flags: flags.right, train: trainConfigOf(flags.right) };
};
