/**
 * Data-parallel training against one process (issue 11): one process's training speed on the default recipe, either
 * in-process (MODE=here: the recipe as it is, the whole batch on this process's threads) or data-parallel
 * (MODE=workers: every batch in 2 parts, each in one single-threaded train worker, `experiments:mnist --data-parallel 2`).
 * Run the two modes as alternating processes, the data-parallel one single-threaded itself (as `--data-parallel` makes
 * the experiment):
 *
 *   for r in 1 2 3 4; do STEPS=150 MODE=here npx tsx tools/bench/e2e/data-parallel-ab.ts
 *     STEPS=150 SCORE_SDE_WASM_THREADS=1 MODE=workers npx tsx tools/bench/e2e/data-parallel-ab.ts; done
 *
 * Prints the mode and the milliseconds per step after 5 warm-up steps.
 *
 * @module bench/e2e/data-parallel-ab
 */
import * as E from 'fp-ts/Either';
import { random, initBackend } from '@score-sde/tensor-fp';
import { initTrainState, trainLoop, loadMnist, renderIdxError, renderTrainLoopFailure, type TrainConfig } from '@score-sde/models';
import { cli, pipeline, mnistFlags, recipeOfFlags } from '@score-sde/experiments';
const main = async () => {
  const flags = cli.parseFlags(mnistFlags, []);
  if (E.isLeft(flags)) throw new Error(cli.renderCliError(flags.left));
  const recipe = await recipeOfFlags(flags.right);
  if (E.isLeft(recipe)) throw new Error(recipe.left.message);
  const steps = Number(process.env.STEPS ?? 60);
  const base = pipeline.trainConfigOfRecipe(recipe.right, 8442);
  await initBackend({ prefer: 'wasm', quiet: true });
  const data = await loadMnist({ split: 'train', subset: 60000 })();
  if (E.isLeft(data)) throw new Error(renderIdxError(data.left));
  const mode = process.env.MODE ?? 'here';
  const config: TrainConfig = mode === 'here' ? base : { ...base, microBatches: 2 };
  const w = mode === 'here' ? undefined : await pipeline.startTrainWorkers({ config });
  if (w !== undefined && E.isLeft(w)) throw new Error(w.left);
  const parts = w === undefined || E.isLeft(w) ? {} : { parts: w.right.parts };
  const s = initTrainState(config, random.key(0));
  const warm = await trainLoop(config)(s, data.right, { untilStep: 5, ...parts });
  if (E.isLeft(warm)) throw new Error(renderTrainLoopFailure(warm.left));
  const t0 = performance.now();
  const r = await trainLoop(config)(warm.right.state, data.right, { untilStep: 5 + steps, ...parts });
  if (E.isLeft(r)) throw new Error(renderTrainLoopFailure(r.left));
  process.stdout.write(`${mode} ${((performance.now() - t0) / steps).toFixed(1)} ms a step\n`);
  if (w !== undefined && E.isRight(w)) await w.right.close();
};
main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
