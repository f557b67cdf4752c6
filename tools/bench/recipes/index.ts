/**
 * The recipe study (`npm run bench -- recipes`): which training recipe gives the best digits per CPU-minute.
 *
 * Every candidate recipe trains on the real 60,000 MNIST training images for the same wall-clock budget on this
 * machine, and is judged with the project's own extractor (the clean MNIST classifier of `experiments:mnist-eval`,
 * whose 128 penultimate features are the FID space):
 *
 * 1. Calibration (first, all candidates, alternating rounds, after one untimed warm-up of the backend): seconds per
 *    training step of each recipe, the median of `--calibration-steps` timed steps per round after 3 warm-up steps,
 *    pooled over the candidates that share a network and a batch size (the same computation). A candidate then trains for
 *    ⌊budget / (seconds per step)⌋ steps, so its budget is wall-clock on the machine as it was during calibration
 *    — pause other work then (the study prints when it starts and ends); the long training and evaluation after it may
 *    share the machine without changing any result.
 * 2. Training, with its cosine decay (when the recipe has one) spanning exactly those steps, evaluated at `--points`
 *    equally spaced fractions of the budget: n = `--samples` samples from each fast sampler (EDM Heun, deterministic
 *    and stochastic, and DPM-Solver++(2M), at ≤ 40 score evaluations, Tweedie's final step included), FID against the 10,000 test
 *    images and the extractor's confident-class rate (max p ≥ 0.9).
 * 3. At the end of the budget also the recipe's `pc` sampler (EM ∘ Langevin, 1000 evaluations) at n = `--pc-samples`,
 *    and bits/dim of the first `--bpd-images` test images (PF-ODE, RK45 at 1e-5, ε = `--bpd-eps`).
 *
 * Beside every figure: the real-vs-real floor, n training images against the same test images (what a perfect
 * sampler scores at that n) and their confident-class rate. Output: `--out`/recipes.json, recipes.md (table with the
 * command), recipes.png (FID of the best fast sampler against training minutes), one grid of samples per candidate,
 * and each candidate's final checkpoint (`recipes-<name>/checkpoint`, for `experiments:mnist-eval`).
 *
 * @module bench/recipes
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, codec, random, initBackend, describeBackend, BACKEND_CHOICES } from '@score-sde/tensor-fp';
import { type SDE, vp } from '@score-sde/sde-math';
import {
  type MnistData,
  type TrainState,
  loadMnist,
  initTrainState,
  disposeTrainState,
  trainLoop,
  batchesPerEpoch,
  parameterCount,
  saveCheckpoint,
  renderCheckpointError,
  renderIdxError,
  renderTrainLoopFailure,
} from '@score-sde/models';
import * as t from 'io-ts';
import { cli, plot, png, progress, report, pipeline, mnistEval } from '@score-sde/experiments';

type Recipe = pipeline.Recipe;

// -------------------------------------------------------------------------------------
// the candidates
// -------------------------------------------------------------------------------------

const variant = (base: Recipe, name: string, description: string, change: Partial<Recipe>): Recipe => ({ ...base, ...change, name, description });
const edm = pipeline.edmRecipe;

/** EDM's DSM loss with ln σ ~ N(mean, std²). */
const logNormal = (mean: number, std: number): Recipe['loss'] => ({ kind: 'dsm', weighting: 'edm', eps: 1e-5, noise: { kind: 'log-normal', mean, std } });

/** A variant of the EDM recipe on data in [0, 1] (the first study's best), changed by `o`. */
/** The quick preset before stop 37: half width (the EDM recipe's network), 9 epochs, the guide at one epoch (1/9). */
const halfWidthQuick: Recipe = { ...pipeline.quickPreset, model: edm.model, epochs: 9, guide: { at: 1 / 9 } };
/** The quick preset as rounds 5 and 6 varied it: half width, before class-conditional training. */
const unconditionalQuick = pipeline.unconditional(halfWidthQuick);

const unitData = (name: string, what: string, o: Partial<Recipe>): Recipe => variant(edm, name, `EDM recipe, data in [0, 1], ${what}`, { dataRange: [0, 1], ...o });

/**
 * The candidates of the study: the earlier default (the tutorial's recipe), EDM preconditioning, VP with ε-prediction,
 * and one-factor changes of the EDM recipe: width (the full tutorial width, fewer steps in the budget), a constant
 * learning rate, the reference warm-up EMA, batch 128, and data in [0, 1]; then, round by round, changes of the best
 * so far (σ_d, the centre and spread of the log-normal noise levels, the learning rate), the quality preset, and
 * one-factor changes of the quick preset (σ_d, learning rate, batch), and a share of log-uniform noise levels for bits/dim.
 */
export const CANDIDATES: ReadonlyArray<Recipe> = [
  pipeline.tutorialRecipe,
  edm,
  variant(pipeline.tutorialRecipe, 'vp-eps', 'VP SDE (β ∈ [0.1, 20]) with ε-prediction (tutorial parameterisation, σ² weighting = ε-MSE), t ~ U(ε, T), data in [−1, 1]', {
    sde: vp() as SDE,
    dataRange: [-1, 1],
    samplers: ['edm-sde', 'edm', 'dpm', 'pc'],
    sampling: { ...edm.sampling },
  }),
  variant(edm, 'edm-full-width', 'EDM recipe at the tutorial width (channels 32/64/128/256, embedding 256)', { model: { channels: [32, 64, 128, 256], embedDim: 256, fourierScale: 16 } }),
  variant(edm, 'edm-constant-lr', 'EDM recipe with a constant learning rate after the warm-up', { lrDecay: 'constant' }),
  variant(edm, 'edm-ema-0.999', 'EDM recipe with the reference warm-up EMA (decay 0.999) instead of the power EMA', { ema: 0.999 }),
  variant(edm, 'edm-batch-128', 'EDM recipe with batch 128', { batchSize: 128 }),
  variant(edm, 'edm-data-01', 'EDM recipe with data in [0, 1] (σ_d = 0.5 and the noise levels unchanged)', { dataRange: [0, 1] }),
  // Follow-ups of the first study, around its best candidate (data in [0, 1]), then of the second (noise levels
  // centred higher), then of the third:
  unitData('edm-data-01-sd033', 'σ_d = 0.33 (the RMS of MNIST pixels in [0, 1])', { parameterisation: { kind: 'edm', sigmaData: 0.33 } }),
  unitData('edm-data-01-pmean-0.6', 'log-normal noise levels centred higher: ln σ ~ N(−0.6, 1.2²)', { loss: logNormal(-0.6, 1.2) }),
  unitData('edm-data-01-lr4e-3', 'learning rate 4e-3', { lr: 4e-3 }),
  unitData('edm-data-01-pmean-0', 'log-normal noise levels centred at σ = 1: ln σ ~ N(0, 1.2²)', { loss: logNormal(0, 1.2) }),
  unitData('edm-data-01-pmean-0.6-lr4e-3', 'ln σ ~ N(−0.6, 1.2²), learning rate 4e-3 (the quick preset)', { loss: logNormal(-0.6, 1.2), lr: 4e-3 }),
  unitData('edm-data-01-pmean-0.6-sd033', 'ln σ ~ N(−0.6, 1.2²), σ_d = 0.33', { loss: logNormal(-0.6, 1.2), parameterisation: { kind: 'edm', sigmaData: 0.33 } }),
  unitData('edm-data-01-pmean+0.6', 'ln σ ~ N(0.6, 1.2²)', { loss: logNormal(0.6, 1.2) }),
  unitData('edm-data-01-pmean-0-std1.6', 'ln σ ~ N(0, 1.6²)', { loss: logNormal(0, 1.6) }),
  unitData('edm-data-01-pmean-0-lr4e-3', 'ln σ ~ N(0, 1.2²), learning rate 4e-3', { loss: logNormal(0, 1.2), lr: 4e-3 }),
  unitData('edm-data-01-full-width', 'at the tutorial width (channels 32/64/128/256, embedding 256)', { model: { channels: [32, 64, 128, 256], embedDim: 256, fourierScale: 16 } }),
  pipeline.qualityPreset,
  // Round 5: one-factor changes of the quick preset (as it was then: unconditional).
  variant(unconditionalQuick, 'quick-sd033', 'the quick preset with σ_d = 0.33 (the RMS of MNIST pixels in [0, 1])', { parameterisation: { kind: 'edm', sigmaData: 0.33 } }),
  variant(unconditionalQuick, 'quick-lr8e-3', 'the quick preset with learning rate 8e-3', { lr: 8e-3 }),
  variant(unconditionalQuick, 'quick-batch-32', 'the quick preset with batch 32 (more, noisier steps in the same minutes)', { batchSize: 32 }),
  // Round 6: a share of log-uniform noise levels, the likelihood weighting of the small levels (bits/dim).
  variant(unconditionalQuick, 'quick-mix20', 'the quick preset with 20% of the noise levels log-uniform over σ ∈ [0.002, 80]', {
    loss: pipeline.withLowNoiseShare(0.2, 0.002, 80),
  }),
  variant(unconditionalQuick, 'quick-mix10-low', 'the quick preset with 10% of the noise levels log-uniform over σ ∈ [0.002, 0.2]', {
    loss: pipeline.withLowNoiseShare(0.1, 0.002, 0.2),
  }),
  // Round 7: class-conditional training (label dropout 0.1), scored also with the labelled samplers: the quick preset
  // as it was then (half width); round 8: its two coarsest levels 1.5× wider, the quick preset since stop 37.
  variant(halfWidthQuick, 'quick-half-width', 'the quick preset before stop 37: half-width ScoreNet (channels 16, 32, 64, 128)', {}),
  pipeline.quickPreset,
];

// -------------------------------------------------------------------------------------
// flags
// -------------------------------------------------------------------------------------

const flags = {
  budget: cli.numberFlag(codec.PositiveFinite, { default: 6, description: 'training budget per candidate, wall-clock minutes on this machine (calibrated)' }),
  candidates: cli.optional(cli.listFlag(t.string, { description: `candidates to run, comma-separated (default: all of ${CANDIDATES.map((c) => c.name).join(',')})` })),
  points: cli.numberFlag(codec.PositiveInt, { default: 3, description: 'evaluations of the fast samplers along the budget (at k/points of it)' }),
  samples: cli.numberFlag(codec.PositiveInt, { default: 1000, description: 'FID n of the fast samplers (and of the floor)' }),
  pcSamples: cli.numberFlag(codec.NonNegativeInt, { default: 1000, description: 'FID n of the pc sampler at the end of the budget (0: skip pc)' }),
  bpdImages: cli.numberFlag(codec.NonNegativeInt, { default: 256, description: 'test images of the bits/dim figure (0: skip)' }),
  bpdEps: cli.numberFlag(codec.PositiveFinite, { default: 1e-5, description: 'start time ε of the likelihood solve' }),
  calibrationSteps: cli.numberFlag(codec.PositiveInt, { default: 20, description: 'timed training steps per candidate and calibration round' }),
  calibrationRounds: cli.numberFlag(codec.PositiveInt, { default: 2, description: 'alternating calibration rounds (the median of all timed steps is used)' }),
  secondsPerStep: cli.optional(
    cli.listFlag(t.string, {
      description: 'name=seconds for every candidate: the seconds per step of an earlier calibration (its log line "calibration done"), instead of calibrating now',
    }),
  ),
  classifier: cli.optional(cli.stringFlag({ description: 'the clean classifier directory of experiments:mnist-eval (trained there and saved when missing)' })),
  out: cli.stringFlag({ default: path.join('tools', 'bench', 'out'), description: 'output folder' }),
  seed: cli.numberFlag(codec.SafeInt, { default: 0, description: 'seed of every random choice' }),
  backend: cli.oneOfFlag(BACKEND_CHOICES, { default: 'auto', description: 'TensorFlow.js backend' }),
  calibrateOnly: cli.booleanFlag({ description: 'calibrate the candidates, print the --seconds-per-step line, and stop' }),
  merge: cli.optional(cli.listFlag(t.string, { description: 'render one study from the recipes.json of these folders (candidates run in several processes) into --out, and stop' })),
  quick: cli.booleanFlag({ description: 'a smoke run: 2,000 training images, 40 s budget, n = 64, 2 points, pc n 16, 8 bpd images' }),
  quiet: cli.booleanFlag({ description: 'no progress bars' }),
} as const;
type Flags = cli.Flags<typeof flags>;

// -------------------------------------------------------------------------------------
// results
// -------------------------------------------------------------------------------------

/** One sampler's figures at one point of a candidate's budget. */
interface SamplerFigure {
  readonly sampler: pipeline.SamplerName;
  readonly label: string;
  readonly nfe: number;
  readonly n: number;
  readonly fid: number | null;
  readonly confidentRate: number | null;
  readonly seconds: number;
  readonly error?: string;
}

interface PointResult {
  readonly step: number;
  readonly trainMinutes: number;
  readonly figures: ReadonlyArray<SamplerFigure>;
}

interface CandidateResult {
  readonly recipe: Recipe;
  readonly parameters: number;
  readonly secondsPerStep: number;
  readonly steps: number;
  readonly epochs: number;
  readonly trainWallSeconds: number;
  readonly points: ReadonlyArray<PointResult>;
  readonly pc: SamplerFigure | null;
  readonly bpd: { readonly images: number; readonly eps: number; readonly mean: number; readonly standardError: number } | null;
  readonly grid: string | null;
  readonly error?: string;
}

/** The best fast sampler of a point: the lowest FID among its ≤ 40-NFE samplers. */
const bestFast = (p: PointResult): SamplerFigure | undefined =>
  p.figures.filter((f) => f.fid !== null).reduce<SamplerFigure | undefined>((best, f) => (best === undefined || f.fid! < best.fid! ? f : best), undefined);

// -------------------------------------------------------------------------------------
// the study
// -------------------------------------------------------------------------------------

const FAST: ReadonlyArray<pipeline.SamplerName> = ['edm', 'edm-sde', 'dpm', 'dpm-sde', 'dpm-ag'];

/** The fast samplers a candidate is scored with: {@link FAST}, and for a class-conditional one the labelled samplers too. */
const fastSamplersOf = (r: Recipe): ReadonlyArray<pipeline.SamplerName> => (r.conditional === undefined ? FAST : [...FAST, ...pipeline.LABELLED_SAMPLERS]);

/**
 * The fast samplers' settings at ≤ 40 evaluations: EDM Heun (deterministic or stochastic) 2·19 + 1 = 39, DPM-Solver++(2M) 39 + 1 = 40, its SDE form 2·19 + 1 = 39,
 * autoguided DPM-Solver++(2M) 2·(19 + 1) = 40 network evaluations (drawn only once the candidate's guide exists); each
 * stops where the candidate's loss stops training (`samplerSettingsOf`).
 */
const fastSettings = (r: Recipe, name: pipeline.SamplerName): pipeline.SamplerSettings => ({ ...pipeline.samplerSettingsOf(r), fastSteps: name === 'dpm' ? 39 : 19 });

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Seconds per training step of a recipe: `steps` timed steps after 3 warm-up steps, each step timed alone. */
const timeSteps = async (r: Recipe, data: MnistData, steps: number, seed: number): Promise<ReadonlyArray<number>> => {
  const config = pipeline.trainConfigOfRecipe(r, 1000, data.labels);
  let state = initTrainState(config, random.key(seed));
  const times: number[] = [];
  try {
    for (let i = 0; i < steps + 3; i++) {
      const t0 = process.hrtime.bigint();
      const out = await trainLoop(config)(state, data, { untilStep: state.step + 1 });
      if (E.isLeft(out)) throw new Error(renderTrainLoopFailure(out.left));
      state = out.right.state;
      if (i >= 3) times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
  } finally {
    disposeTrainState(state);
  }
  return times;
};

interface Judge {
  readonly handle: mnistEval.ClassifierHandle;
  readonly fast: mnistEval.FidReference;
  readonly pc: mnistEval.FidReference | null;
}

/** Draws n samples with a named sampler of the recipe and scores them. */
const figure = async (
  name: pipeline.SamplerName,
  settings: pipeline.SamplerSettings,
  r: Recipe,
  state: TrainState,
  config: ReturnType<typeof pipeline.trainConfigOfRecipe>,
  n: number,
  judge: Judge,
  reference: mnistEval.FidReference,
  f: Flags,
  guide: pipeline.LoadedGuide | undefined,
): Promise<{ readonly figure: SamplerFigure; readonly samples?: Float32Array }> => {
  const spec = pipeline.namedSamplerSpec(r.sde, name, settings);
  const label = `${pipeline.SAMPLER_LABELS[name]} (${JSON.stringify(spec)})`;
  const sampler = pipeline.namedSampler(r.sde, name, settings);
  if (E.isLeft(sampler)) return { figure: { sampler: name, label, nfe: 0, n, fid: null, confidentRate: null, seconds: 0, error: sampler.left.problems.join('; ') } };
  const score = pipeline.scoreOfNamed(name, {
    sde: r.sde,
    score: pipeline.scoreOfState(config, state),
    guide: guide?.guide ?? E.left('no guide'),
    guideConditional: guide?.guideConditional ?? E.left('no guide'),
    conditional: pipeline.conditionalScoreOfState(config, state),
  });
  if (E.isLeft(score)) return { figure: { sampler: name, label, nfe: 0, n, fid: null, confidentRate: null, seconds: 0, error: score.left } };
  const drawn = await pipeline.drawWithBar(
    pipeline.sampleKeys(f.seed, 0, n),
    (start, size) => ({ sampler: sampler.right, score: score.right(pipeline.sampleKeys(f.seed, start, size)), networks: pipeline.networksAt(r.sde, name) }),
    { batch: 64, sampleShape: pipeline.IMAGE_SHAPE, dataRange: r.dataRange, quiet: f.quiet },
    `${r.name}: ${name}`,
  );
  if (E.isLeft(drawn)) return { figure: { sampler: name, label, nfe: 0, n, fid: null, confidentRate: null, seconds: 0, error: drawn.left.message } };
  const x = tf.tensor(drawn.right.samples, [n, ...pipeline.IMAGE_SHAPE]);
  const fid = mnistEval.fidOfImages(judge.handle.config, judge.handle.params, x, reference.reference);
  const classes = mnistEval.classRecord(judge.handle.config, judge.handle.params, x);
  x.dispose();
  return {
    figure: { sampler: name, label, nfe: drawn.right.nfe, n, fid: E.isRight(fid) ? fid.right.fid : null, confidentRate: classes.confidentRate, seconds: drawn.right.seconds },
    samples: drawn.right.samples,
  };
};

const runCandidate = async (r: Recipe, secondsPerStep: number, data: { train: MnistData; test: MnistData }, judge: Judge, f: Flags, budgetSeconds: number, log: (l: string) => void): Promise<CandidateResult> => {
  const steps = Math.max(1, Math.floor(budgetSeconds / secondsPerStep));
  const config = pipeline.trainConfigOfRecipe(r, steps, data.train.labels);
  const perEpoch = batchesPerEpoch(data.train.count, r.batchSize);
  log(`${r.name}: ${parameterCount(r.model).toLocaleString('en')} parameters, ${secondsPerStep.toFixed(3)} s/step → ${steps} steps (${(steps / perEpoch).toFixed(2)} epochs) in ${(budgetSeconds / 60).toFixed(1)} min`);
  let state = initTrainState(config, random.key(f.seed));
  const points: PointResult[] = [];
  let trainWall = 0;
  let lastSamples: Float32Array | undefined;
  // The guide of the autoguided samplers, as experiments:mnist saves it: the state at the recipe's fraction of the run.
  const guideAt = r.guide !== undefined ? pipeline.guideStep(r.guide, steps) : undefined;
  const guideDir = path.join(f.out, `recipes-${r.name}`, 'guide');
  let guide: pipeline.LoadedGuide | undefined;
  try {
    for (let k = 1; k <= f.points; k++) {
      const until = Math.round((k * steps) / f.points);
      const t0 = Date.now();
      const bar = progress.withProgress(`${r.name} training ${k}/${f.points}`, until - state.step, { quiet: f.quiet });
      const out = await trainLoop(config)(state, data.train, {
        untilStep: until,
        ...(guideAt !== undefined ? { snapshots: [{ step: guideAt, dir: guideDir }] } : {}),
        onStep: (s) => bar.tick(1, { loss: s.epochMeanLoss.toPrecision(4) }),
      });
      bar.stop();
      trainWall += (Date.now() - t0) / 1000;
      if (E.isLeft(out)) {
        state = out.left.state;
        throw new Error(renderTrainLoopFailure(out.left));
      }
      state = out.right.state;
      const figures: SamplerFigure[] = [];
      const fast = fastSamplersOf(r);
      if (guide === undefined && guideAt !== undefined && state.step >= guideAt) guide = await pipeline.guideFor(fast, config, undefined, guideDir);
      for (const name of fast) {
        if (pipeline.autoguidanceWeightOf(name) !== undefined && guide === undefined) continue;
        const got = await figure(name, fastSettings(r, name), r, state, config, f.samples, judge, judge.fast, f, guide);
        figures.push(got.figure);
        if (k === f.points && got.samples !== undefined && (lastSamples === undefined || name === bestFast({ step: 0, trainMinutes: 0, figures })?.sampler)) lastSamples = got.samples;
      }
      const p: PointResult = { step: until, trainMinutes: (until * secondsPerStep) / 60, figures };
      points.push(p);
      const b = bestFast(p);
      log(`${r.name} @ ${p.trainMinutes.toFixed(1)} min (step ${until}): ${figures.map((x) => `${x.sampler} NFE ${x.nfe} FID ${x.fid?.toFixed(2) ?? 'failed'} confident ${x.confidentRate !== null ? (100 * x.confidentRate).toFixed(1) : '–'}%`).join('; ')}${b !== undefined ? ` → best ${b.sampler}` : ''}`);
    }
    const ckpt = path.join(f.out, `recipes-${r.name}`, 'checkpoint');
    const saved = await saveCheckpoint(ckpt, config, state, { recipe: r })();
    if (E.isLeft(saved)) log(`${r.name}: checkpoint not saved: ${renderCheckpointError(saved.left)}`);
    let pc: SamplerFigure | null = null;
    if (f.pcSamples > 0 && judge.pc !== null) {
      pc = (await figure('pc', pipeline.samplerSettingsOf(r), r, state, config, f.pcSamples, judge, judge.pc, f, undefined)).figure;
      log(`${r.name}: pc NFE ${pc.nfe} FID ${pc.fid?.toFixed(2) ?? 'failed'} (n = ${pc.n}) confident ${pc.confidentRate !== null ? (100 * pc.confidentRate).toFixed(1) : '–'}%`);
    }
    let bpd: CandidateResult['bpd'] = null;
    if (f.bpdImages > 0) {
      const n = Math.min(f.bpdImages, data.test.count);
      const b = await mnistEval.bitsPerDimOf(r.sde, pipeline.scoreOfState(config, state), data.test, { start: 0, end: n }, {
        images: n,
        batch: 64,
        estimator: 'rademacher',
        tol: 1e-5,
        eps: f.bpdEps,
        cells: 'score-sde',
        key: pipeline.partKey(f.seed, pipeline.STREAMS.bpd),
        quiet: f.quiet,
        dataRange: r.dataRange,
        // a class-conditional candidate: the bound of its mixture Σ_y π_y p(x | y), each image given its own label
        ...mnistEval.labelledOf(pipeline.labelledScoreOfState(config, state)),
      });
      if (E.isRight(b)) {
        const s = mnistEval.bpdResult([b.right], { images: n, batch: 64, estimator: 'rademacher', tol: 1e-5, eps: f.bpdEps, cells: 'score-sde' });
        bpd = { images: n, eps: f.bpdEps, mean: s.mean, standardError: s.standardError };
        log(`${r.name}: ${s.mean.toFixed(3)} ± ${s.standardError.toFixed(3)} bits/dim (${n} test images, ε = ${f.bpdEps})`);
      } else log(`${r.name}: bits/dim failed: ${b.left.message}`);
    }
    let grid: string | null = null;
    if (lastSamples !== undefined) {
      const g = png.imageGrid(lastSamples.subarray(0, 64 * 784), 8, { scale: 2, height: 28, width: 28 });
      if (E.isRight(g)) {
        grid = `recipes-${r.name}.png`;
        fs.writeFileSync(path.join(f.out, grid), g.right);
      }
    }
    return { recipe: r, parameters: parameterCount(r.model), secondsPerStep, steps, epochs: steps / perEpoch, trainWallSeconds: trainWall, points, pc, bpd, grid };
  } catch (e) {
    log(`${r.name}: failed: ${(e as Error).message}`);
    return { recipe: r, parameters: parameterCount(r.model), secondsPerStep, steps, epochs: steps / perEpoch, trainWallSeconds: trainWall, points, pc: null, bpd: null, grid: null, error: (e as Error).message };
  } finally {
    guide?.release();
    disposeTrainState(state);
  }
};

// -------------------------------------------------------------------------------------
// report
// -------------------------------------------------------------------------------------

const fmt = (v: number | null | undefined, d = 2): string => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));
const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${(100 * v).toFixed(1)}%`);

/** What recipes.json holds: everything the table and the plot are made of. */
interface Study {
  readonly commands: ReadonlyArray<string>;
  readonly backend: string;
  readonly budgetMinutes: number;
  readonly points: number;
  readonly seed: number;
  readonly extractor: { readonly name: string; readonly testAccuracy: number };
  readonly floor: { readonly fast: { readonly n: number; readonly fid: number; readonly confidentRate: number }; readonly pc: { readonly n: number; readonly fid: number } | null };
  readonly results: ReadonlyArray<CandidateResult>;
}

const markdown = (study: Study): string => {
  const floor = study.floor.fast.fid;
  const rows = study.results.map((c) => {
    const last = c.points[c.points.length - 1];
    const b = last !== undefined ? bestFast(last) : undefined;
    return {
      recipe: c.recipe.name,
      parameters: c.parameters,
      's/step': fmt(c.secondsPerStep, 3),
      steps: c.steps,
      epochs: fmt(c.epochs, 2),
      ...Object.fromEntries(c.points.map((p, i) => [`FID ≤40 NFE @ ${i + 1}/${study.points}`, fmt(bestFast(p)?.fid)])),
      'best ≤40-NFE sampler': b !== undefined ? `${b.sampler} (${b.nfe})` : '–',
      'FID / floor': b?.fid !== undefined && b.fid !== null ? fmt(b.fid / floor, 2) : '–',
      confident: pct(b?.confidentRate),
      'pc FID': fmt(c.pc?.fid),
      'pc confident': pct(c.pc?.confidentRate),
      'bits/dim': c.bpd !== null ? `${fmt(c.bpd.mean, 3)} ± ${fmt(c.bpd.standardError, 3)}` : '–',
      note: c.error ?? '',
    };
  });
  return [
    '# Recipe study',
    '',
    `Command${study.commands.length > 1 ? 's' : ''}: ${study.commands.map((c) => `\`${c}\``).join(', then ')}`,
    '',
    report.markdownKeyValue({
      backend: study.backend,
      'training budget per candidate': `${study.budgetMinutes.toFixed(2)} min (wall-clock on this machine, via calibrated seconds per step)`,
      'FID extractor': `${study.extractor.name} (test accuracy ${(100 * study.extractor.testAccuracy).toFixed(2)}%)`,
      'FID reference': 'MNIST test, n = 10000',
      [`real-vs-real floor, n = ${study.floor.fast.n}`]: `FID ${fmt(floor)}, confident ${pct(study.floor.fast.confidentRate)}`,
      ...(study.floor.pc !== null ? { [`real-vs-real floor, n = ${study.floor.pc.n} (pc)`]: `FID ${fmt(study.floor.pc.fid)}` } : {}),
      'fast samplers (the best per point)': [...new Set(study.results.flatMap((c) => c.points.flatMap((p) => p.figures.map((f) => `${f.label}, ${f.nfe} NFE`))))].join('; '),
      seed: study.seed,
    }),
    '',
    report.markdownTable(rows),
    '',
    '![FID of the best ≤ 40-NFE sampler against training minutes](recipes.png)',
    '',
    '## Candidates',
    '',
    ...study.results.map((c) => `- **${c.recipe.name}**: ${c.recipe.description}${c.grid !== null ? ` — [samples](${c.grid})` : ''}`),
    '',
  ].join('\n');
};

/** FID of the best fast sampler against training minutes, one line per candidate, the floor dashed. */
const studyPlot = (study: Study): Buffer =>
  plot.linePlotPng({
    title: `FID of the best ≤ 40-NFE sampler (n = ${study.floor.fast.n}) against training minutes`,
    xLabel: 'training minutes (calibrated wall clock)',
    yLabel: 'FID',
    logY: true,
    series: [
      ...study.results.map((r, i) => ({ name: r.recipe.name, color: plot.PALETTE[i % plot.PALETTE.length], points: r.points.map((p) => [p.trainMinutes, bestFast(p)?.fid ?? NaN] as const) })),
      { name: `real vs real (n = ${study.floor.fast.n})`, color: '#444', dashed: true, markers: false, points: [[0.01, study.floor.fast.fid], [study.budgetMinutes, study.floor.fast.fid]] as const },
    ],
  });

/** Writes recipes.json, recipes.md and recipes.png of a study into `out`. */
const writeStudy = (out: string, study: Study): void => {
  fs.writeFileSync(path.join(out, 'recipes.json'), report.toReportJson(study));
  fs.writeFileSync(path.join(out, 'recipes.md'), markdown(study));
  fs.writeFileSync(path.join(out, 'recipes.png'), studyPlot(study));
};

/**
 * The studies of several runs (each a folder with a recipes.json, e.g. candidates run in two processes) as one: their
 * results in the order of {@link CANDIDATES}; they must share the budget, the points, the extractor (by its weights'
 * hash) and the floor's n. The floor's FID may differ in its float32 rounding (another build of the kernels sums in
 * another order): it must agree to 1e-4 relative, far below the 0.01 the table shows.
 */
const mergeStudies = (dirs: ReadonlyArray<string>): E.Either<string, Study> => {
  const studies = dirs.map((d) => JSON.parse(fs.readFileSync(path.join(d, 'recipes.json'), 'utf8')) as Study);
  const first = studies[0];
  if (first === undefined) return E.left('--merge: no folders');
  const same = (s: Study): boolean =>
    s.budgetMinutes === first.budgetMinutes && s.points === first.points && s.extractor.name === first.extractor.name && s.floor.fast.n === first.floor.fast.n && Math.abs(s.floor.fast.fid - first.floor.fast.fid) <= 1e-4 * first.floor.fast.fid;
  const odd = studies.findIndex((s) => !same(s));
  if (odd >= 0) return E.left(`--merge: ${dirs[odd]} has another budget, number of points, extractor or floor than ${dirs[0]}`);
  const order = (name: string): number => CANDIDATES.findIndex((c) => c.name === name);
  const results = studies.flatMap((s) => s.results).sort((a, b) => order(a.recipe.name) - order(b.recipe.name));
  return E.right({ ...first, commands: studies.flatMap((s) => s.commands), results });
};

// -------------------------------------------------------------------------------------
// main
// -------------------------------------------------------------------------------------

/** Seconds per step of every candidate: alternating rounds of timed steps after one untimed warm-up of the backend. */
const calibrate = async (candidates: ReadonlyArray<Recipe>, train: MnistData, o: Flags, log: (l: string) => void): Promise<ReadonlyMap<string, number>> => {
  log(`calibration: ${candidates.length} candidates × ${o.calibrationRounds} rounds × ${o.calibrationSteps} steps — keep the machine quiet until the calibration is done`);
  // One untimed warm-up of the backend (kernel compilation, thread pool, heap growth) before any timed step.
  await timeSteps(candidates[0]!, train, 5, o.seed);
  const times = new Map<string, number[]>(candidates.map((c) => [c.name, []]));
  for (let round = 0; round < o.calibrationRounds; round++)
    for (const c of candidates) times.get(c.name)!.push(...(await timeSteps(c, train, o.calibrationSteps, o.seed)));
  // A step's cost depends only on the network and the batch size: candidates that share both share one figure, the
  // median of all their timed steps (their differences are timing noise, and would hand some of them more steps).
  const costKey = (c: Recipe): string => JSON.stringify([c.model.channels, c.model.embedDim, c.batchSize]);
  const pooled = new Map<string, number[]>();
  for (const c of candidates) pooled.set(costKey(c), [...(pooled.get(costKey(c)) ?? []), ...times.get(c.name)!]);
  const secondsPerStep = new Map(candidates.map((c) => [c.name, median(pooled.get(costKey(c))!)]));
  log(`calibration done: --seconds-per-step ${candidates.map((c) => `${c.name}=${secondsPerStep.get(c.name)!.toFixed(4)}`).join(',')}`);
  return secondsPerStep;
};

const main = async (): Promise<number> => {
  const f = cli.parseFlagsOrExit(flags, process.argv.slice(2).filter((a) => a !== '--'), 'npm run bench -- recipes [flags]', 'The recipe study: candidate training recipes at equal wall-clock budgets, judged by FID, confident-class rate and bits/dim.');
  const quick = f.quick;
  const o: Flags = quick ? { ...f, budget: 40 / 60, samples: 64, points: 2, pcSamples: 16, bpdImages: 8, calibrationSteps: 3, calibrationRounds: 1 } : f;
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  if (o.merge !== undefined) {
    const merged = mergeStudies(o.merge);
    if (E.isLeft(merged)) {
      log(merged.left);
      return 2;
    }
    fs.mkdirSync(o.out, { recursive: true });
    // The sample grids travel with the table.
    for (const dir of o.merge)
      for (const file of fs.readdirSync(dir).filter((x) => /^recipes-.*\.png$/.test(x))) if (path.resolve(dir) !== path.resolve(o.out)) fs.copyFileSync(path.join(dir, file), path.join(o.out, file));
    writeStudy(o.out, merged.right);
    log(`merged ${o.merge.length} studies: ${path.join(o.out, 'recipes.md')}`);
    return 0;
  }
  const candidates = o.candidates === undefined ? CANDIDATES : CANDIDATES.filter((c) => o.candidates!.includes(c.name));
  const unknown = (o.candidates ?? []).filter((n) => !CANDIDATES.some((c) => c.name === n));
  if (unknown.length > 0) {
    log(`--candidates: unknown ${unknown.join(', ')} (known: ${CANDIDATES.map((c) => c.name).join(', ')})`);
    return 2;
  }
  const backend = describeBackend(await initBackend({ prefer: o.backend }));
  fs.mkdirSync(o.out, { recursive: true });
  const train = await loadMnist({ split: 'train', ...(quick ? { subset: 2000 } : {}) })();
  const test = await loadMnist({ split: 'test', ...(quick ? { subset: 1000 } : {}) })();
  if (E.isLeft(train) || E.isLeft(test)) {
    log(`MNIST: ${renderIdxError(E.isLeft(train) ? train.left : (test as E.Left<Parameters<typeof renderIdxError>[0]>).left)}`);
    return 1;
  }
  const data = { train: train.right, test: test.right };

  const handle = await mnistEval.obtainClassifier({
    kind: 'clean',
    dir: o.classifier ?? path.join(o.out, 'recipes-classifier'),
    flag: '--classifier',
    sde: vp(),
    dataRange: [0, 1],
    train: data.train,
    test: data.test,
    options: mnistEval.DEFAULT_EVALUATION.classifiers,
    seed: o.seed,
    quiet: o.quiet,
    key: pipeline.partKey(o.seed, pipeline.STREAMS.cleanClassifier),
    log,
  });
  if (E.isLeft(handle)) {
    log(handle.left.message);
    return 1;
  }
  const fast = mnistEval.fidSetup(handle.right, data.train, data.test, o.samples, pipeline.partKey(o.seed, pipeline.STREAMS.floor));
  const pcRef = o.pcSamples > 0 ? mnistEval.fidSetup(handle.right, data.train, data.test, o.pcSamples, pipeline.partKey(o.seed, pipeline.STREAMS.floor)) : undefined;
  if (E.isLeft(fast) || (pcRef !== undefined && E.isLeft(pcRef))) {
    log(`FID reference: ${E.isLeft(fast) ? fast.left.message : (pcRef as E.Left<{ message: string }>).left.message}`);
    return 1;
  }
  const judge: Judge = { handle: handle.right, fast: fast.right, pc: pcRef !== undefined && E.isRight(pcRef) ? pcRef.right : null };
  log(`floor (n = ${o.samples}): FID ${fast.right.floor.fid.toFixed(2)}, confident ${(100 * fast.right.floorClasses.confidentRate).toFixed(1)}%`);

  // 1. Calibration, all candidates, alternating rounds (or the figures of an earlier one).
  const given = new Map((o.secondsPerStep ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), Number(kv.slice(kv.indexOf('=') + 1))] as const));
  const missing = candidates.filter((c) => !(given.get(c.name)! > 0));
  if (o.secondsPerStep !== undefined && missing.length > 0) {
    log(`--seconds-per-step: no positive figure for ${missing.map((c) => c.name).join(', ')}`);
    return 2;
  }
  const secondsPerStep = o.secondsPerStep !== undefined ? given : await calibrate(candidates, data.train, o, log);
  if (o.calibrateOnly) return 0;

  // 2–3. Training and evaluation.
  const budgetSeconds = o.budget * 60;
  const results: CandidateResult[] = [];
  const command = `npm run bench -- recipes ${process.argv.slice(2).filter((a) => a !== '--').join(' ')}`.trim();
  for (const c of candidates) {
    results.push(await runCandidate(c, secondsPerStep.get(c.name)!, data, judge, o, budgetSeconds, log));
    // Written after every candidate, so a stopped study keeps what it measured.
    writeStudy(o.out, {
      commands: [command],
      backend,
      budgetMinutes: o.budget,
      points: o.points,
      seed: o.seed,
      extractor: { name: handle.right.name, testAccuracy: handle.right.manifest.training.testAccuracy },
      floor: {
        fast: { n: judge.fast.floor.n, fid: judge.fast.floor.fid, confidentRate: judge.fast.floorClasses.confidentRate },
        pc: judge.pc !== null ? { n: judge.pc.floor.n, fid: judge.pc.floor.fid } : null,
      },
      results,
    });
  }
  log(`done: ${path.join(o.out, 'recipes.md')}`);
  return 0;
};

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`recipes: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
