/**
 * The recipe the end-to-end benchmark trains: whatever `nx run experiments:mnist` does by default — its flags parsed
 * from an empty command line and the recipe they give (the `quick` preset), read through the experiments package's
 * entry point, never copied.
 *
 * @module bench/e2e/recipe
 */
import * as E from 'fp-ts/Either';
import { type TrainConfig, batchesPerEpoch } from '@score-sde/models';
import { cli, pipeline, mnistFlags, recipeOfFlags, type MnistFlags } from '@score-sde/experiments';

/** The default run of the MNIST experiment: its flags, its recipe, and the training configuration of the whole run. */
export interface DefaultRecipe {
  readonly flags: MnistFlags;
  readonly recipe: pipeline.Recipe;
  readonly train: TrainConfig;
  /** The run's length: the recipe's epochs over the (sub)set. */
  readonly steps: number;
}

/** The defaults of `nx run experiments:mnist`. */
export const defaultRecipe = async (): Promise<DefaultRecipe> => {
  const flags = cli.parseFlags(mnistFlags, []);
  if (E.isLeft(flags)) throw new Error(`the MNIST experiment's default flags do not parse: ${cli.renderCliError(flags.left)}`);
  const recipe = await recipeOfFlags(flags.right);
  if (E.isLeft(recipe)) throw new Error(recipe.left.message);
  const steps = recipe.right.epochs * batchesPerEpoch(Math.min(flags.right.subset, 60000), recipe.right.batchSize);
  return { flags: flags.right, recipe: recipe.right, train: pipeline.trainConfigOfRecipe(recipe.right, steps), steps };
};
