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
import { plot, report, memory } from '../lib';
import { type ExperimentError, type SamplerName, type Recipe, fail, logOf, sampleKeys, scoreOfState, samplerSettingsOf } from '../pipeline';
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
  readonly config: { readonly flags: MnistFlags; readonly recipe: Recipe; readonly train: TrainConfig };
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
      r.samplers.map((s) => ({ sampler: s.sampler, nfe: s.nfe, seconds: s.seconds, 'peak RSS MB': s.memory.peakRssMb, grid: `![${s.sampler}](${s.png})`, idx: s.idx })),
    ),
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

/**
 * Trains (or loads) and samples, writing every artefact into `out`. A Left carries a message that says what
 * failed and what was kept; nothing already on disk is overwritten by a failed write.
 * @category running
 */
export const runMnist = async (f: MnistFlags, ctx: MnistContext, out: string): Promise<E.Either<ExperimentError, MnistReport>> => {
  const log = logOf(ctx);
  const mk = await report.ensureDir(out)();
  if (E.isLeft(mk)) return fail(`--out: ${report.renderIoError(mk.left)}`);

  const recipe = await recipeOfFlags(f);
  if (E.isLeft(recipe)) return recipe;
  log(`recipe: ${recipe.right.name} — ${recipe.right.description}`);
  const got = f.sampleOnly !== undefined ? await loadTrained(f.sampleOnly, '--sample-only') : await trainMnist(f, recipe.right, ctx, out);
  if (E.isLeft(got)) return got;
  const trained: Trained = got.right;
  const { state, config, losses } = trained;

  // Workers load the checkpoint of this state: the one training saved in this run, else the one loaded.
  const checkpoint = f.sampleOnly ?? (trained.epochMemory.length > 0 ? path.join(out, 'checkpoint') : f.resume);
  const src = { sde: config.sde, score: scoreOfState(config, state), dataRange: dataRangeOf(config), checkpoint, workers: f.workers, backend: ctx.backend, quiet: f.quiet, log };
  const settings = samplerSettingsOf(recipe.right);
  const keys = sampleKeys(f.seed, 0, f.numSamples);
  const records: SamplerRecord[] = [];
  let problem: ExperimentError | undefined;
  for (const name of recipe.right.samplers) {
    const drawn = await drawNamed(name, settings, keys, src);
    if (E.isLeft(drawn)) {
      problem = drawn.left;
      break;
    }
    const { samples, nfe, seconds, spec } = drawn.right;
    const files = await writeSamples(out, name, samples, f.numSamples);
    if (E.isLeft(files)) {
      problem = files.left;
      break;
    }
    const after = memory.readMemory();
    records.push({ sampler: name, spec, nfe, seconds, png: files.right.png, idx: files.right.idx, memory: after });
    log(`${name}: ${f.numSamples} samples, ${nfe} score evaluations, ${seconds.toFixed(1)} s → ${path.join(out, files.right.png)}; ${memory.describeMemory(after)}`);
  }
  // emaParams overlays the EMA tensors on the fixed parameters: both belong to the state, disposed with it.
  disposeTrainState(state);
  if (problem !== undefined) return E.left(problem);

  if (losses.length > 0) {
    const lossPng = plot.linePlotPng(plot.lossCurveSpec(losses, { title: `denoising score matching loss (${config.sde.kind} SDE)` }));
    const w = await report.atomicWriteFile(path.join(out, 'loss.png'), lossPng)();
    if (E.isLeft(w)) return fail(`loss.png: ${report.renderIoError(w.left)}`);
  }
  const result: MnistReport = {
    backend: describeBackend(ctx.backend),
    seed: f.seed,
    trainSteps: state.step,
    trainSeconds: trained.seconds,
    finalLoss: finalLoss(losses, recipe.right.epochs),
    interrupted: trained.interrupted,
    parameterCount: parameterCount(config.model),
    numSamples: f.numSamples,
    samplers: records,
    epochMemory: trained.epochMemory,
    peakRssMb: memory.readMemory().peakRssMb,
    config: { flags: f, recipe: recipe.right, train: config },
    out,
  };
  const wr = await report.writeReport(out, result, markdownReport(result))();
  if (E.isLeft(wr)) return fail(`report: ${report.renderIoError(wr.left)}`);
  return E.right(result);
};
