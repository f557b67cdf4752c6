/**
 * The MNIST experiment as a function: train a score model (or load one), draw samples with each named sampler,
 * and write every artefact. The command-line entry (`src/mnist.ts`) only parses flags and calls {@link runMnist};
 * the smoke test calls it in-process on a few hundred images.
 *
 * Artefacts in the output folder:
 *   checkpoint/                   the final checkpoint (weights, EMA weights, Adam state, step, key, manifest)
 *   samples-<sampler>.png         an image grid of the samples (8 columns)
 *   samples-<sampler>.idx         the same samples as an IDX file of uint8 images (MNIST's own format)
 *   loss.png                      the training loss per step and its moving average
 *   report.json, report.md        final loss, train seconds, NFE and seconds per sampler, memory per epoch and per
 *                                 sampler (RSS, peak RSS, live tensors), backend, seed, config
 *
 * @module mnist/run
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { describeBackend } from '@score-sde/tensor-fp';
import type { SamplerSpec } from '@score-sde/solvers';
import { type TrainConfig, disposeTrainState, parameterCount, dataRangeOf } from '@score-sde/models';
import { plot, report, memory, strokes } from '../lib';
import { type Drawn, type ExperimentError, type ItemRange, type SamplerName, type Recipe, fail, interrupted, logOf, sampleKeys, scoreOfState, conditionalScoreOfState, shardRange, samplerSettingsOf, guideFor } from '../pipeline';
import { type MnistShardManifest, writeMnistShard } from './shard';
import { type MnistFlags, recipeOfFlags } from './flags';
import { type EpochMemory, type MnistContext, type Trained, loadTrained, trainMnist } from './train';
import { drawNamed, writeSamples } from './sample';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** One sampler's outcome. @category model */
export interface SamplerRecord {
  readonly sampler: SamplerName;
  readonly spec: SamplerSpec;
  readonly nfe: number;
  readonly seconds: number;
  readonly png: string;
  readonly idx: string;
  /** Stray strokes (digits whose ink has more than one component) and background grain of the samples (lib/strokes). */
  readonly strokes: strokes.StrokeRecord;
  /** Memory after the sampler finished (its samples released). */
  readonly memory: memory.MemoryReading;
}

/** What `report.json` holds. @category model */
export interface MnistReport {
  readonly backend: string;
  readonly seed: number;
  readonly trainSteps: number;
  readonly trainSeconds: number;
  readonly finalLoss: number | null;
  readonly interrupted: boolean;
  readonly parameterCount: number;
  readonly numSamples: number;
  readonly samplers: ReadonlyArray<SamplerRecord>;
  /** One reading per epoch trained in this run: the tensor count must not grow, RSS should level off. */
  readonly epochMemory: ReadonlyArray<EpochMemory>;
  /** The process's peak RSS over the whole run (MiB). */
  readonly peakRssMb: number;
  /** The flags of the run (a merged run: those of its shards, `shard` left out). */
  readonly config: { readonly flags: Readonly<Record<string, unknown>>; readonly recipe: Recipe; readonly train: TrainConfig };
  readonly out: string;
}

// -------------------------------------------------------------------------------------
// the run
// -------------------------------------------------------------------------------------

const markdownReport = (r: MnistReport): string =>
  [
    '# MNIST score model',
    '',
    report.markdownKeyValue({
      backend: r.backend,
      seed: r.seed,
      'train steps': r.trainSteps,
      'train seconds': r.trainSeconds,
      'final loss (mean of the last epoch)': r.finalLoss ?? 'n/a',
      interrupted: r.interrupted,
      parameters: r.parameterCount,
      'samples per sampler': r.numSamples,
      recipe: `${r.config.recipe.name}: ${r.config.recipe.description}`,
      sde: JSON.stringify(r.config.train.sde),
      parameterisation: JSON.stringify(r.config.train.parameterisation ?? { kind: 'tutorial' }),
      model: JSON.stringify(r.config.train.model),
    }),
    '',
    '## Samplers',
    '',
    report.markdownTable(
      r.samplers.map((s) => ({
        sampler: s.sampler,
        nfe: s.nfe,
        seconds: s.seconds,
        'stray strokes': s.strokes.strayRate,
        grain: s.strokes.grain,
        'peak RSS MB': s.memory.peakRssMb,
        grid: `![${s.sampler}](${s.png})`,
        idx: s.idx,
      })),
    ),
    '',
    'Stray strokes: the share of digits whose ink (pixels > 0.5) has more than one 8-connected component (detached specks); ' +
      'grain: the share of background pixels (more than 2 pixels from any pixel ≥ 64/255) at 10–63 of 255. 1000 real training digits ' +
      'give 2.5% and 0.00%; `experiments:mnist-eval` reports both beside FID and their real-digit floor.',
    '',
    '## Memory',
    '',
    `Peak resident set size of the whole run: **${r.peakRssMb} MB**. At the end of each epoch (a tensor count that grows is a leak):`,
    '',
    r.epochMemory.length > 0
      ? report.markdownTable(r.epochMemory.map((m) => ({ epoch: m.epoch, step: m.step, 'RSS MB': m.rssMb, 'peak RSS MB': m.peakRssMb, tensors: m.tensors, 'tensor MB': m.tensorMb })))
      : '(no epochs trained in this run)',
    '',
    '![training loss](loss.png)',
    '',
    '## Full configuration',
    '',
    '```json',
    JSON.stringify(r.config, null, 2),
    '```',
  ].join('\n');

/** The mean loss of the last epoch's worth of steps (null when nothing was trained). */
const finalLoss = (losses: ReadonlyArray<number>, epochs: number): number | null => {
  const perEpochLast = Math.min(losses.length, Math.max(1, Math.round(losses.length / Math.max(1, epochs))));
  const tail = losses.slice(losses.length - perEpochLast);
  return tail.length > 0 ? tail.reduce((a, b) => a + b, 0) / tail.length : null;
};

/** What a run's report says about the model and how it was obtained. @category model */
export interface RunFacts {
  readonly flags: Readonly<Record<string, unknown>>;
  /** The recipe of the run (the preset, `--recipe` and the flags that override it). */
  readonly recipe: Recipe;
  readonly seed: number;
  readonly epochs: number;
  readonly numSamples: number;
  readonly config: TrainConfig;
  readonly losses: ReadonlyArray<number>;
  readonly trainSteps: number;
  readonly trainSeconds: number;
  readonly interrupted: boolean;
  readonly epochMemory: ReadonlyArray<EpochMemory>;
}

/**
 * Writes one sampler's samples (all `--num-samples` of them) as PNG and IDX into `out` and logs them; returns its
 * report record.
 * @category running
 */
export const writeSamplerOutput = async (out: string, name: SamplerName, spec: SamplerSpec, drawn: Drawn, log: (line: string) => void): Promise<E.Either<ExperimentError, SamplerRecord>> => {
  const n = drawn.shape[0] ?? 0;
  const files = await writeSamples(out, name, drawn.samples, n);
  if (E.isLeft(files)) return files;
  const after = memory.readMemory();
  const ink = strokes.strokeRecord(drawn.samples);
  log(
    `${name}: ${n} samples, ${drawn.nfe} network evaluations (NFE), ${drawn.seconds.toFixed(1)} s, stray strokes ${(100 * ink.strayRate).toFixed(1)}%, grain ${(100 * ink.grain).toFixed(2)}% → ` +
      `${path.join(out, files.right.png)}; ${memory.describeMemory(after)}`,
  );
  return E.right({ sampler: name, spec, nfe: drawn.nfe, seconds: drawn.seconds, png: files.right.png, idx: files.right.idx, strokes: ink, memory: after });
};

/** Writes loss.png (when there are losses) and report.json / report.md of a run into `out`. @category running */
export const writeRunReport = async (out: string, facts: RunFacts, records: ReadonlyArray<SamplerRecord>, backend: string): Promise<E.Either<ExperimentError, MnistReport>> => {
  const { config, losses } = facts;
  if (losses.length > 0) {
    const lossPng = plot.linePlotPng(plot.lossCurveSpec(losses, { title: `denoising score matching loss (${config.sde.kind} SDE)` }));
    const w = await report.atomicWriteFile(path.join(out, 'loss.png'), lossPng)();
    if (E.isLeft(w)) return fail(`loss.png: ${report.renderIoError(w.left)}`);
  }
  const result: MnistReport = {
    backend,
    seed: facts.seed,
    trainSteps: facts.trainSteps,
    trainSeconds: facts.trainSeconds,
    finalLoss: finalLoss(losses, facts.epochs),
    interrupted: facts.interrupted,
    parameterCount: parameterCount(config.model),
    numSamples: facts.numSamples,
    samplers: records,
    epochMemory: facts.epochMemory,
    peakRssMb: memory.readMemory().peakRssMb,
    config: { flags: facts.flags, recipe: facts.recipe, train: config },
    out,
  };
  const wr = await report.writeReport(out, result, markdownReport(result))();
  if (E.isLeft(wr)) return fail(`report: ${report.renderIoError(wr.left)}`);
  return E.right(result);
};

/**
 * Every sampler's samples of a key range, drawn from a trained (or loaded) state; each handed to `onDrawn` in turn. A
 * stop request that training did not answer (Ctrl-C while sampling, or before it) stops the sampling at the next step:
 * a Left with `interrupted`, naming the sampler.
 */
const drawSamplers = async (
  f: MnistFlags,
  recipe: Recipe,
  ctx: MnistContext,
  out: string,
  trained: Trained,
  range: ItemRange,
  onDrawn: (name: SamplerName, spec: SamplerSpec, drawn: Drawn) => Promise<E.Either<ExperimentError, void>>,
): Promise<E.Either<ExperimentError, void>> => {
  const { state, config } = trained;
  // Workers load the checkpoint of this state: the one training saved in this run, else the one loaded.
  const checkpoint = f.sampleOnly ?? (trained.epochMemory.length > 0 ? path.join(out, 'checkpoint') : f.resume);
  // A Ctrl-C that stopped training was answered there (checkpoint, then sampling); only a later one stops sampling.
  const signal = trained.interrupted ? undefined : ctx.stop?.signal;
  const stopRequested = (): boolean => !trained.interrupted && ctx.stop?.requested === true;
  const src = {
    sde: config.sde,
    score: scoreOfState(config, state),
    conditional: conditionalScoreOfState(config, state),
    dataRange: dataRangeOf(config),
    checkpoint,
    workers: f.workers,
    backend: ctx.backend,
    quiet: f.quiet,
    log: logOf(ctx),
    ...(signal !== undefined ? { signal } : {}),
  };
  const settings = samplerSettingsOf(recipe);
  const keys = sampleKeys(f.seed, range.start, range.end - range.start);
  const weaker = await guideFor(recipe.samplers, config, checkpoint);
  try {
    for (const name of recipe.samplers) {
      const drawn = stopRequested() ? interrupted(`sampling ${name}: not started`) : await drawNamed(name, settings, keys, f.sampleBatch ?? f.numSamples, { ...src, guide: weaker.guide, guideConditional: weaker.guideConditional, ...(weaker.dir !== undefined ? { guideDir: weaker.dir } : {}) });
      if (E.isLeft(drawn)) return drawn.left.interrupted === true ? interrupted(`sampling ${name}: stopped by Ctrl-C`) : drawn;
      const done = await onDrawn(name, drawn.right.spec, drawn.right);
      if (E.isLeft(done)) return done;
    }
    return E.right(undefined);
  } finally {
    // emaParams overlays the EMA tensors on the fixed parameters: both belong to the state, disposed with it.
    weaker.release();
    disposeTrainState(state);
  }
};

const factsOf = (f: MnistFlags, recipe: Recipe, t: Trained): RunFacts => ({
  flags: f,
  recipe,
  seed: f.seed,
  epochs: recipe.epochs,
  numSamples: f.numSamples,
  config: t.config,
  losses: t.losses,
  trainSteps: t.state.step,
  trainSeconds: t.seconds,
  interrupted: t.interrupted,
  epochMemory: t.epochMemory,
});

/**
 * Trains (or loads) and samples, writing every artefact into `out`. A Left carries a message that says what
 * failed and what was kept; nothing already on disk is overwritten by a failed write. A stop request (`ctx.stop`)
 * during training ends training, saves and samples (the report says `interrupted`); one during sampling ends the run
 * at the next step with an `interrupted` Left: the finished samplers' files and the checkpoint stay, no report.
 * @category running
 */
export const runMnist = async (f: MnistFlags, ctx: MnistContext, out: string): Promise<E.Either<ExperimentError, MnistReport>> => {
  if (f.shard !== undefined) return fail('--shard: a shard is drawn by runMnistShard');
  const mk = await report.ensureDir(out)();
  if (E.isLeft(mk)) return fail(`--out: ${report.renderIoError(mk.left)}`);
  const recipe = ctx.recipe !== undefined ? E.right(ctx.recipe) : await recipeOfFlags(f);
  if (E.isLeft(recipe)) return recipe;
  logOf(ctx)(`recipe: ${recipe.right.name} — ${recipe.right.description}`);
  const got = f.sampleOnly !== undefined ? await loadTrained(f.sampleOnly, '--sample-only') : await trainMnist(f, recipe.right, ctx, out);
  if (E.isLeft(got)) return got;
  const facts = factsOf(f, recipe.right, got.right);
  const records: SamplerRecord[] = [];
  const drawn = await drawSamplers(f, recipe.right, ctx, out, got.right, { start: 0, end: f.numSamples }, async (name, spec, d) =>
    E.map((r: SamplerRecord) => void records.push(r))(await writeSamplerOutput(out, name, spec, d, logOf(ctx))),
  );
  if (E.isLeft(drawn) && drawn.left.interrupted === true) {
    const kept = records.length > 0 ? `the samples of ${records.map((r) => r.sampler).join(', ')}` : 'no samples';
    const ckpt = f.sampleOnly === undefined ? ` and the checkpoint ${path.join(out, 'checkpoint')}` : '';
    return interrupted(`${drawn.left.message}; ${kept}${ckpt} are kept in ${out} (no report is written)`);
  }
  if (E.isLeft(drawn)) return drawn;
  return writeRunReport(out, facts, records, describeBackend(ctx.backend));
};

/**
 * `--sample-only <checkpoint> --shard i/n`: draws shard i of n of every sampler's samples (whole `--sample-batch`
 * chunks) and writes them with a manifest into `out` (mnist/shard); `experiments:merge` assembles the shards.
 * @category running
 */
export const runMnistShard = async (f: MnistFlags, ctx: MnistContext, out: string): Promise<E.Either<ExperimentError, MnistShardManifest>> => {
  const shard = f.shard;
  if (shard === undefined) return fail('--shard: no shard given');
  if (f.sampleOnly === undefined) return fail('--shard: shards sample a trained model: give --sample-only <checkpoint> (training runs on one machine)');
  const recipe = ctx.recipe !== undefined ? E.right(ctx.recipe) : await recipeOfFlags(f);
  if (E.isLeft(recipe)) return recipe;
  const got = await loadTrained(f.sampleOnly, '--sample-only');
  if (E.isLeft(got)) return got;
  const facts = factsOf(f, recipe.right, got.right);
  const batch = f.sampleBatch ?? f.numSamples;
  const range = shardRange(f.numSamples, batch, shard);
  const draws: Array<{ readonly name: SamplerName; readonly spec: SamplerSpec; readonly drawn: Drawn }> = [];
  const drawn = await drawSamplers(f, recipe.right, ctx, out, got.right, range, async (name, spec, d) => {
    draws.push({ name, spec, drawn: d });
    logOf(ctx)(`${name}: samples ${range.start}…${range.end - 1} of ${f.numSamples} (shard ${shard.index}/${shard.count}), ${d.seconds.toFixed(1)} s`);
    return E.right(undefined);
  });
  if (E.isLeft(drawn)) return drawn;
  return writeMnistShard(out, { shard, checkpoint: f.sampleOnly, sampleBatch: batch, range, facts, backend: describeBackend(ctx.backend), draws });
};
