/**
 * The flags of `nx run experiments:mnist`, as data (each decoded with io-ts; errors name the flag).
 *
 * What a run learns and draws is a recipe (`pipeline/recipe`): `--preset quick` (the default, sized for at most 10
 * minutes on 2 cores), `--preset quality` (at most 60) or `--preset tutorial` (the earlier default), or a whole recipe as JSON (`--recipe file.json`); each of the
 * recipe flags below (epochs, batch size, learning rate, …) overrides one field of it. The recipe a run used is
 * written into its report.
 *
 * @module mnist/flags
 */
import * as fs from 'node:fs/promises';
import * as E from 'fp-ts/Either';
import { codec, BACKEND_CHOICES } from '@score-sde/tensor-fp';
import { cli } from '../lib';
import { guidanceWeightFlags, guidanceWithFlags } from '../pipeline/guidance-flags';
import { EVAL_PARTS, EvalPart, SAMPLER_NAMES, SamplerName, type Recipe, Recipe as RecipeCodec, type GuideSnapshot, recipeProblems, type ExperimentError, PRESETS, PRESET_NAMES, SDE_NAMES, ShardFlag, type ShardSpec, fail, sdeOfName } from '../pipeline';

const fromPreset = 'default: the preset’s';

/** The flags of the MNIST experiment. @category flags */
export const mnistFlags = {
  preset: cli.oneOfFlag(PRESET_NAMES, {
    default: 'quick',
    description: 'the recipe: quick (at most 10 minutes on 2 cores, sampling included), quality (at most 60), or tutorial (the earlier default: Song\'s tutorial recipe at half width); see README, "Presets"',
  }),
  recipe: cli.optional(cli.stringFlag({ description: 'a whole recipe as a JSON file (the "recipe" record of a report.json), instead of the preset' })),
  epochs: cli.optional(cli.numberFlag(codec.PositiveInt, { description: `training epochs over the (sub)set (${fromPreset})` })),
  batchSize: cli.optional(cli.numberFlag(codec.PositiveInt, { description: `training batch size (${fromPreset})` })),
  lr: cli.optional(cli.numberFlag(codec.PositiveFinite, { description: `Adam learning rate after the warm-up (${fromPreset})` })),
  warmup: cli.optional(cli.numberFlag(codec.NonNegativeInt, { description: `linear learning-rate warm-up steps, 0: none (${fromPreset})` })),
  gradClip: cli.optional(cli.numberFlag(codec.NonNegativeFinite, { description: `global gradient-norm clipping, 0: none (${fromPreset})` })),
  sde: cli.optional(
    cli.oneOfFlag(SDE_NAMES, { description: `SDE: tutorial (dx = 25^t dw), ve, vp, subvp (paper defaults) or ve-edm (VE over σ ∈ [0.002, 80]) (${fromPreset})` }),
  ),
  samplers: cli.optional(cli.listFlag<SamplerName>(SamplerName, { description: `samplers to draw with, comma-separated, of ${SAMPLER_NAMES.join(',')} (${fromPreset})` })),
  steps: cli.optional(cli.numberFlag(codec.PositiveInt, { description: `time steps of the em and pc samplers (${fromPreset})` })),
  fastSteps: cli.optional(cli.numberFlag(codec.PositiveInt, { description: `time steps k of the edm and dpm samplers; dpm-sde takes 2k, the NFE of edm (${fromPreset})` })),
  snr: cli.optional(cli.numberFlag(codec.PositiveFinite, { description: `signal-to-noise ratio of the Langevin corrector of pc (${fromPreset})` })),
  odeTol: cli.optional(cli.numberFlag(codec.PositiveFinite, { description: `rtol = atol of the adaptive probability-flow ODE sampler ode (${fromPreset})` })),
  endNoise: cli.optional(
    cli.numberFlag(codec.PositiveFinite, {
      description: 'noise level σ where every sampler stops and takes its denoising step (default: the 2% quantile of the levels the loss trains on, when it draws them from a law of σ — 0.047 for the quick preset, 0.0032 for the quality preset — else ε = 1e-3)',
    }),
  ),
  ...guidanceWeightFlags('drawn'),
  numSamples: cli.numberFlag(codec.PositiveInt, { default: 64, description: 'samples drawn per sampler' }),
  sampleBatch: cli.optional(cli.numberFlag(codec.PositiveInt, { description: 'samples per sampler call (default: all --num-samples at once); the unit --shard splits by, and the coupling unit of the ode sampler' })),
  shard: cli.optional(
    cli.stringFlag<ShardSpec>({
      codec: ShardFlag,
      placeholder: 'i/n',
      description:
        'with --sample-only: draw only shard i of n (0-based) of every sampler\'s samples (whole --sample-batch chunks) and write them with a manifest into --out; experiments:merge assembles the n shard folders into the files of one unsharded run, bit for bit',
    }),
  ),
  seed: cli.numberFlag(codec.SafeInt, { default: 0, description: 'seed of every random choice (weights, data order, noise, samples)' }),
  subset: cli.numberFlag(codec.PositiveInt, { default: 60000, description: 'train on the first N training images (≤ 60000)' }),
  channels: cli.optional(cli.listFlag(codec.PositiveInt, { description: `ScoreNet channels of the 4 levels; the tutorial's: 32,64,128,256 (${fromPreset})` })),
  embedDim: cli.optional(cli.numberFlag(codec.PositiveInt, { description: `ScoreNet time-embedding size, even; the tutorial's: 256 (${fromPreset})` })),
  dequantize: cli.optional(
    cli.oneOfFlag(['none', 'centred'] as const, {
      description: `dequantisation of the training images: none, or centred uniform noise x + (u − ½)/255, so the model learns the density whose cell averages are the 256 levels' probabilities (bits/dim with --bpd-cells centred) (${fromPreset})`,
    }),
  ),
  guideAt: cli.optional(
    cli.numberFlag(codec.UnitInterval, {
      description: `fraction of the run after which the EMA weights are saved as the guide of the autoguided samplers dpm-ag, dpm-sde-ag, dpm-ag-cond and dpm-sde-ag-cond (guide/ beside checkpoint/); 0: no guide (${fromPreset})`,
    }),
  ),
  labelDropout: cli.optional(
    cli.numberFlag(codec.UnitInterval, {
      description: `train class-conditional on MNIST's 10 labels, each replaced by "no label" with this probability, so one network learns p(x | y) and p(x) (classifier-free guidance: samplers dpm-sde-cond, dpm-cfg, dpm-ag-cond and dpm-sde-ag-cond; the others draw from p(x)); 1: unconditional (${fromPreset})`,
    }),
  ),
  emaDecay: cli.optional(cli.numberFlag(codec.UnitInterval, { description: `EMA decay of the weights that sample, with the reference's warm-up; the guide then takes this EMA too, without the preset's guide exponent (${fromPreset})` })),
  checkpointEvery: cli.numberFlag(codec.NonNegativeInt, { default: 0, description: 'also save a checkpoint every N steps (0: at the end of each epoch only)' }),
  resume: cli.optional(cli.stringFlag({ description: 'continue training from this checkpoint directory' })),
  sampleOnly: cli.optional(cli.stringFlag({ description: 'skip training; sample from this checkpoint directory' })),
  out: cli.optional(cli.stringFlag({ description: 'output folder (default packages/experiments/out/mnist/<run-id>)' })),
  backend: cli.oneOfFlag(BACKEND_CHOICES, { default: 'auto', description: 'TensorFlow.js backend (overrides SCORE_SDE_BACKEND)' }),
  workers: cli.numberFlag(codec.PositiveInt, {
    default: 1,
    description:
      'sample in N worker threads, each a contiguous range of the samples with their own keys (1: in this process); the samples are bit-identical to --workers 1. A sampler whose step couples its batch (ode: one adaptive step size per batch) stays in this process, and the log says so; guided samplers draw in the workers too, each worker loading the guide beside the checkpoint',
  }),
  dataParallel: cli.numberFlag(codec.PositiveInt, {
    default: 1,
    description:
      'train data-parallel: every batch split into K parts, each part\'s gradient computed by one of K single-threaded worker threads and summed here in part order (1: the whole batch in this process). A fresh run records K in its config (models\' microBatches): its bits depend on K, never on where the parts ran, and --resume continues it with the same bits with or without this flag. This process computes no gradient and runs single-threaded unless SCORE_SDE_WASM_THREADS says otherwise, so sample with --workers. On 2 cores it was 6–9% faster per step in the benchmarks and no faster in whole runs of the default recipe (README)',
  }),
  quiet: cli.booleanFlag({ description: 'no progress output', default: false }),
  eval: cli.listFlag<EvalPart>(EvalPart, {
    default: [],
    description: `after sampling, evaluate the checkpoint into <out>/eval with these parts of experiments:mnist-eval, comma-separated, of ${EVAL_PARTS.join(',')} (default: none; --steps, --snr, --seed and --quiet carry over, everything else is at mnist-eval's defaults)`,
  }),
  evalSamples: cli.numberFlag(codec.PositiveInt, { default: 256, description: 'with --eval: samples per sampler of the comparison (the FID n)' }),
} as const;

/** Parsed flags. @category flags */
export type MnistFlags = cli.Flags<typeof mnistFlags>;

/**
 * Problems of flag values that each flag's codec cannot see, each naming its flag (all at once): the network has four
 * levels (`--channels` gives exactly four counts) and an even time embedding (half sines, half cosines); `--resume`
 * and `--sample-only` exclude each other; `--shard` samples a trained model (`--sample-only`).
 * @category flags
 */
export const mnistFlagProblems = (f: MnistFlags): ReadonlyArray<string> => [
  ...(f.channels === undefined || f.channels.length === 4 ? [] : [`--channels: expected 4 channel counts (one per level of the ScoreNet), got ${f.channels.length}`]),
  ...(f.embedDim === undefined || f.embedDim % 2 === 0 ? [] : [`--embed-dim: must be even (half sines, half cosines), got ${f.embedDim}`]),
  ...(f.resume !== undefined && f.sampleOnly !== undefined ? ['--resume and --sample-only exclude each other: give one'] : []),
  ...(f.shard !== undefined && f.sampleOnly === undefined ? ['--shard: shards sample a trained model: give --sample-only <checkpoint> (training runs on one machine)'] : []),
];

// -------------------------------------------------------------------------------------
// the recipe of a run
// -------------------------------------------------------------------------------------

/** The classes of MNIST's labels (a class-conditional run's `classes`). @category recipe */
export const MNIST_CLASSES = 10;

/** A recipe read from a JSON file and decoded (errors name the file and the field). @category recipe */
export const readRecipeFile = async (file: string): Promise<E.Either<ExperimentError, Recipe>> => {
  const text = await fs.readFile(file, 'utf8').then(
    (s) => E.right<string, string>(s),
    (e: unknown) => E.left<string, string>((e as Error).message),
  );
  if (E.isLeft(text)) return fail(`--recipe: cannot read ${file}: ${text.left}`);
  const r = codec.decodeJson(RecipeCodec, `recipe ${file}`)(text.right);
  if (E.isLeft(r)) return fail(`--recipe: ${codec.renderDecodeError(r.left)}`);
  const problems = recipeProblems(r.right);
  return problems.length > 0 ? fail(`--recipe: recipe ${file}: ${problems.join('; ')}`) : E.right(r.right);
};

/**
 * The guide of a run's recipe with `--guide-at` and `--ema-decay` applied: none at `--guide-at 0` or when neither
 * gives one; it keeps its exponent when moved, and takes the run's EMA when `--ema-decay` replaces it by a decay.
 */
const guideWithFlags = (guide: GuideSnapshot | undefined, f: MnistFlags): GuideSnapshot | undefined => {
  const at = f.guideAt ?? guide?.at;
  if (at === undefined || at === 0) return undefined;
  return f.emaDecay === undefined && guide?.gamma !== undefined ? { at, gamma: guide.gamma } : { at };
};

/**
 * The recipe of a run: the preset (or `--recipe`'s), with every recipe flag given on the command line in place of
 * its field; the name says what was overridden (`quick + lr, epochs`).
 * @category recipe
 */
export const recipeOfFlags = async (f: MnistFlags): Promise<E.Either<ExperimentError, Recipe>> => {
  const base = f.recipe !== undefined ? await readRecipeFile(f.recipe) : E.right(PRESETS[f.preset]);
  if (E.isLeft(base)) return base;
  // --guide-at 0: a recipe without a guide; --label-dropout 1: an unconditional one
  const { guide, conditional, ...r } = base.right;
  const problems = mnistFlagProblems(f);
  if (problems.length > 0) return fail(problems.join('; '));
  const guideWith = guideWithFlags(guide, f);
  const given = (['epochs', 'batchSize', 'lr', 'warmup', 'gradClip', 'sde', 'samplers', 'steps', 'fastSteps', 'snr', 'odeTol', 'endNoise', 'cfgWeight', 'autoguidanceWeight', 'channels', 'embedDim', 'emaDecay', 'dequantize', 'guideAt', 'labelDropout'] as const).filter(
    (k) => f[k] !== undefined,
  );
  return E.right({
    ...r,
    name: given.length === 0 ? r.name : `${r.name} + ${given.map(cli.toKebab).join(', ')}`,
    model: {
      ...r.model,
      ...(f.channels !== undefined ? { channels: [f.channels[0]!, f.channels[1]!, f.channels[2]!, f.channels[3]!] as const } : {}),
      ...(f.embedDim !== undefined ? { embedDim: f.embedDim } : {}),
    },
    ...(f.sde !== undefined ? { sde: sdeOfName(f.sde) } : {}),
    ...(f.epochs !== undefined ? { epochs: f.epochs } : {}),
    ...(f.batchSize !== undefined ? { batchSize: f.batchSize } : {}),
    ...(f.lr !== undefined ? { lr: f.lr } : {}),
    ...(f.warmup !== undefined ? { warmup: f.warmup } : {}),
    ...(f.gradClip !== undefined ? { gradClip: f.gradClip } : {}),
    ...(f.emaDecay !== undefined ? { ema: f.emaDecay } : {}),
    ...(f.dequantize !== undefined ? { dequantization: f.dequantize } : {}),
    ...(guideWith !== undefined ? { guide: guideWith } : {}),
    ...(f.labelDropout === undefined
      ? conditional !== undefined
        ? { conditional }
        : {}
      : f.labelDropout < 1
        ? { conditional: { classes: MNIST_CLASSES, dropout: f.labelDropout } }
        : {}),
    ...(f.samplers !== undefined ? { samplers: [...f.samplers] } : {}),
    sampling: {
      steps: f.steps ?? r.sampling.steps,
      fastSteps: f.fastSteps ?? r.sampling.fastSteps,
      snr: f.snr ?? r.sampling.snr,
      odeTol: f.odeTol ?? r.sampling.odeTol,
      ...(f.endNoise !== undefined ? { endNoise: f.endNoise } : r.sampling.endNoise !== undefined ? { endNoise: r.sampling.endNoise } : {}),
      ...guidanceWithFlags(r.sampling.guidance, f),
    },
  });
};
