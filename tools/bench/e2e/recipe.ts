/**
 * The recipe the end-to-end benchmark trains: whatever `nx run experiments:mnist` does by default — its flags parsed
 * from an empty command line and the recipe they give (the `quick` preset), read through the experiments package's
 * entry point, never copied — without its class-conditional label table when it has one (`pipeline.unconditional`):
 * the PyTorch peer's network has none, and the table costs one row lookup and one add of the embedding per step.
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
  /** Whether the default recipe is class-conditional (its label table is then left out here). */
  readonly labelsDropped: boolean;
}

/** The defaults of `nx run experiments:mnist`. */
export const defaultRecipe = async (): Promise<DefaultRecipe> => {
  const flags = cli.parseFlags(mnistFlags, []);
  if (E.isLeft(flags)) throw new Error(`the MNIST experiment's default flags do not parse: ${cli.renderCliError(flags.left)}`);
  const recipe = await recipeOfFlags(flags.right);
  if (E.isLeft(recipe)) throw new Error(recipe.left.message);
  const steps = recipe.right.epochs * batchesPerEpoch(Math.min(flags.right.subset, 60000), recipe.right.batchSize);
  const plain = pipeline.unconditional(recipe.right);
  return { flags: flags.right, recipe: plain, train: pipeline.trainConfigOfRecipe(plain, steps), steps, labelsDropped: recipe.right.conditional !== undefined };
};
