/**
 * The options of the MNIST evaluation, typed per part and declared once with their defaults. `experiments:mnist-eval`
 * builds them from its flags (`eval/flags`), `experiments:mnist --eval` from the run's own settings, and
 * {@link runEvaluation} (eval/run) takes them as they are. They are io-ts codecs, so eval.json records them and a
 * shard's manifest carries them to the merge, decoded on the way back.
 *
 * @module eval/options
 */
import * as t from 'io-ts';
import { codec } from '@score-sde/tensor-fp';
import { Dequantization } from '@score-sde/solvers';
import { EVAL_PARTS, EvalPart, SamplerName, SamplerSettings, GuidanceWeights, DEFAULT_SAMPLER_SETTINGS, LABELLED_SAMPLERS, type SamplerName as SamplerNameT } from '../pipeline';

const list = <C extends t.Mixed>(c: C) => t.readonlyArray(c);

/** The samplers of class-conditional generation. @category vocabulary */
export const CONDITIONAL_SAMPLERS = ['pc', 'ode'] as const satisfies ReadonlyArray<SamplerNameT>;
export type ConditionalSampler = (typeof CONDITIONAL_SAMPLERS)[number];
export const ConditionalSampler: t.Type<ConditionalSampler, ConditionalSampler, unknown> = codec.oneOf(CONDITIONAL_SAMPLERS, 'ConditionalSampler');

/** Which half of a test digit inpainting hides. @category vocabulary */
export const MASKS = ['lower', 'right'] as const;
export type MaskKind = (typeof MASKS)[number];
export const MaskKind: t.Type<MaskKind, MaskKind, unknown> = codec.oneOf(MASKS, 'MaskKind');

/** Hutchinson probe distributions. @category vocabulary */
export const ESTIMATORS = ['rademacher', 'gaussian'] as const;
export const Estimator = codec.oneOf(ESTIMATORS, 'Estimator');

/** The data: the first `trainSubset` training and `testSubset` test images. @category options */
export const DataOptions = codec.strict({ trainSubset: codec.PositiveInt, testSubset: codec.PositiveInt }, 'DataOptions');
export type DataOptions = t.TypeOf<typeof DataOptions>;

/**
 * The two classifiers: where they are reused from or trained into (absent: `<out>/classifier`,
 * `<out>/noisy-classifier`), and how they are trained.
 * @category options
 */
export const ClassifierOptions = codec.strictWithOptional(
  {
    epochs: codec.PositiveInt,
    noisyEpochs: codec.PositiveInt,
    batchSize: codec.PositiveInt,
    lr: codec.PositiveFinite,
    channels: list(codec.PositiveInt),
    featureDim: codec.PositiveInt,
  },
  { clean: t.string, noisy: t.string },
  'ClassifierOptions',
);
export type ClassifierOptions = t.TypeOf<typeof ClassifierOptions>;

/**
 * The sampler comparison: n = `samples` per sampler (also the FID n), the named samplers to compare, `ode` run once
 * per tolerance of `odeTols` and `edm`/`dpm` once per step count of `fastSteps`, in chunks of `batch`, each stopping at
 * the noise level `endNoise` (absent: the specs' ε), the guided ones with `guidance` in place of their own weights when given.
 * @category options
 */
export const ComparisonOptions = codec.strictWithOptional(
  {
    samples: codec.PositiveInt,
    samplers: list(SamplerName),
    steps: codec.PositiveInt,
    snr: codec.PositiveFinite,
    odeTols: list(codec.PositiveFinite),
    fastSteps: list(codec.PositiveInt),
    batch: codec.PositiveInt,
  },
  { endNoise: codec.PositiveFinite, guidance: GuidanceWeights },
  'ComparisonOptions',
);
export type ComparisonOptions = t.TypeOf<typeof ComparisonOptions>;

/** Bits/dim of the first `images` test images, `batch` per likelihood solve, from ε = `eps`, RK45 at rtol = atol = `tol`. @category options */
export const BpdOptions = codec.strict(
  { images: codec.PositiveInt, batch: codec.PositiveInt, estimator: Estimator, tol: codec.PositiveFinite, eps: codec.PositiveFinite, cells: Dequantization },
  'BpdOptions',
);
export type BpdOptions = t.TypeOf<typeof BpdOptions>;

/** Class-conditional generation: `perClass` samples of every class per sampler, guidance scale w. @category options */
export const ConditionalOptions = codec.strict(
  { samplers: list(ConditionalSampler), guidanceScale: codec.NonNegativeFinite, perClass: codec.PositiveInt, sampler: SamplerSettings, batch: codec.PositiveInt },
  'ConditionalOptions',
);
export type ConditionalOptions = t.TypeOf<typeof ConditionalOptions>;

/** Inpainting: the first `digits` test digits, `completions` each, by the pc sampler. @category options */
export const InpaintingOptions = codec.strict(
  { mask: MaskKind, digits: codec.PositiveInt, completions: codec.PositiveInt, sampler: SamplerSettings, batch: codec.PositiveInt },
  'InpaintingOptions',
);
export type InpaintingOptions = t.TypeOf<typeof InpaintingOptions>;

/** Latent interpolation: `frames` decodings, RK45 at rtol = atol = `tol`. @category options */
export const InterpolationOptions = codec.strict({ frames: codec.PositiveInt, tol: codec.PositiveFinite }, 'InterpolationOptions');
export type InterpolationOptions = t.TypeOf<typeof InterpolationOptions>;

/**
 * Everything an evaluation does: the checkpoint, the parts to run, the seed, and each part's options; with
 * `denoiserRange` [lo, hi], every score of the model (and of its guide) has its denoiser clipped to [lo, hi] (sde-math
 * `clampedDenoiserScore`) in every part, the samplers and the likelihood alike.
 * @category options
 */
export const EvaluationOptions = codec.strictWithOptional(
  {
    checkpoint: t.string,
    parts: list(EvalPart),
    seed: codec.SafeInt,
    quiet: t.boolean,
    data: DataOptions,
    classifiers: ClassifierOptions,
    samplers: ComparisonOptions,
    bpd: BpdOptions,
    conditional: ConditionalOptions,
    inpainting: InpaintingOptions,
    interpolation: InterpolationOptions,
  },
  { denoiserRange: list(codec.Finite) },
  'EvaluationOptions',
);
export type EvaluationOptions = t.TypeOf<typeof EvaluationOptions>;

/** The sampler settings the evaluation uses by default (em/pc: 500 steps, snr 0.16; the ODE solves: 1e-5). @category defaults */
const SAMPLER = { ...DEFAULT_SAMPLER_SETTINGS, fastSteps: 10 };

/**
 * The defaults, sized for a 2-core CPU on the embedded wasm backend: one score evaluation of the tutorial ScoreNet
 * costs ≈ 6.5 ms per image there, so 256 samples with every sampler of the comparison (≈ 2,300 evaluations per
 * image) take about an hour. FID depends on n: compare FIDs only at equal `samplers.samples`. Bits/dim uses the cells
 * centred on the levels; its `eps` (score_sde's 1e-5) is the fallback only: both commands start the solve where the
 * checkpoint's noise level is the cell's standard deviation (eval/flags `bpdStartOf`).
 * @category defaults
 */
export const DEFAULT_EVALUATION: Omit<EvaluationOptions, 'checkpoint'> = {
  parts: [...EVAL_PARTS],
  seed: 0,
  quiet: false,
  data: { trainSubset: 60000, testSubset: 10000 },
  classifiers: { epochs: 2, noisyEpochs: 3, batchSize: 128, lr: 2e-3, channels: [32, 64, 128], featureDim: 128 },
  samplers: { samples: 256, samplers: ['em', 'pc', 'ode', 'edm', 'edm-sde', 'dpm', 'dpm-sde', 'dpm-ag', 'dpm-sde-ag'], steps: SAMPLER.steps, snr: SAMPLER.snr, odeTols: [1e-5, 1e-3], fastSteps: [10, 19, 39], batch: 128 },
  bpd: { images: 64, batch: 16, estimator: 'rademacher', tol: SAMPLER.odeTol, eps: 1e-5, cells: 'centred' },
  conditional: { samplers: [...CONDITIONAL_SAMPLERS], guidanceScale: 4, perClass: 10, sampler: SAMPLER, batch: 128 },
  inpainting: { mask: 'lower', digits: 10, completions: 4, sampler: SAMPLER, batch: 128 },
  interpolation: { frames: 9, tol: SAMPLER.odeTol },
};

/**
 * The samplers compared when none are named: {@link DEFAULT_EVALUATION}'s, and on a class-conditional checkpoint its
 * labelled samplers too (pipeline's `LABELLED_SAMPLERS`: on such a model they are the ones that draw good digits).
 * @category defaults
 */
export const defaultComparedSamplers = (classConditional: boolean): ReadonlyArray<SamplerNameT> =>
  classConditional ? [...DEFAULT_EVALUATION.samplers.samplers, ...LABELLED_SAMPLERS] : DEFAULT_EVALUATION.samplers.samplers;

/**
 * Problems of option combinations that each codec cannot see, each naming its flag of `experiments:mnist-eval` (all
 * at once).
 * @category checks
 */
export const optionProblems = (o: EvaluationOptions): ReadonlyArray<string> => {
  const runs = (p: EvalPart): boolean => o.parts.includes(p);
  const problems: string[] = [];
  if (o.classifiers.channels.length !== 3) problems.push(`--classifier-channels: expected 3 channel counts (one per conv block), got ${o.classifiers.channels.length}`);
  if (runs('samplers')) {
    const s = o.samplers;
    if (s.samples < 2) problems.push(`--samples: FID needs at least 2 samples, got ${s.samples}`);
    if (s.samplers.length === 0) problems.push('--compare: give at least one sampler (or --skip samplers)');
    if (s.samplers.includes('ode') && s.odeTols.length === 0) problems.push('--ode-tols: give at least one tolerance for the ode sampler');
    if ((s.samplers.includes('edm') || s.samplers.includes('dpm')) && s.fastSteps.length === 0) problems.push('--fast-steps: give at least one step count for edm/dpm');
  }
  if (runs('conditional') && o.conditional.samplers.length === 0) problems.push('--conditional-samplers: give at least one sampler (or --skip conditional)');
  if (runs('interpolation') && o.interpolation.frames < 2) problems.push(`--frames: need at least 2 frames (the two ends), got ${o.interpolation.frames}`);
  const r = o.denoiserRange;
  if (r !== undefined && !(r.length === 2 && r[0]! < r[1]!)) problems.push(`--denoiser-range: expected lo,hi with lo < hi, got ${r.join(',')}`);
  return problems;
};
