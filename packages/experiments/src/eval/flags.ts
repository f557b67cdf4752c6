/**
 * The flags of `nx run experiments:mnist-eval`, as data (each decoded with io-ts; errors name the flag), the
 * evaluation options they stand for ({@link evaluationOptionsOf}), and the help text that explains every figure the
 * command writes. The defaults are those of `DEFAULT_EVALUATION` (eval/options).
 *
 * @module eval/flags
 */
import * as E from 'fp-ts/Either';
import { codec, BACKEND_CHOICES } from '@score-sde/tensor-fp';
import { cli } from '../lib';
import { guidanceWeightFlags, guidanceWithFlags } from '../pipeline/guidance-flags';
import { EVAL_PARTS, EvalPart, SAMPLER_NAMES, SamplerName, ShardFlag, LABELLED_SAMPLERS, endNoiseOf, type ShardSpec } from '../pipeline';
import { DEQUANTIZATIONS, type Dequantization, cellMatchedStartTime } from '@score-sde/solvers';
import type { SDE } from '@score-sde/sde-math';
import { CheckpointManifest, tensorFiles, dataRangeOf } from '@score-sde/models';
import { type EvaluationOptions, CONDITIONAL_SAMPLERS, ConditionalSampler, DEFAULT_EVALUATION, ESTIMATORS, MASKS, defaultComparedSamplers } from './options';

const D = DEFAULT_EVALUATION;

/** The flags of the evaluation. @category flags */
export const mnistEvalFlags = {
  checkpoint: cli.stringFlag({ description: 'score-model checkpoint directory (from nx run experiments:mnist); its EMA weights are evaluated' }),
  samples: cli.numberFlag(codec.PositiveInt, { default: D.samplers.samples, description: 'samples per sampler of the comparison; also the n of the real-vs-real FID floor (FID is only comparable at equal n)' }),
  out: cli.optional(cli.stringFlag({ description: 'output folder (default packages/experiments/out/mnist-eval/<run-id>)' })),
  seed: cli.numberFlag(codec.SafeInt, { default: D.seed, description: 'seed of every random choice (classifier weights and batches, noise, probes, dequantisation, samples)' }),
  skip: cli.listFlag<EvalPart>(EvalPart, { default: [], description: `parts to leave out, comma-separated, of ${EVAL_PARTS.join(',')}` }),
  backend: cli.oneOfFlag(BACKEND_CHOICES, { default: 'auto', description: 'TensorFlow.js backend (overrides SCORE_SDE_BACKEND)' }),
  quiet: cli.booleanFlag({ description: 'no progress output', default: false }),
  shard: cli.optional(
    cli.stringFlag<ShardSpec>({
      codec: ShardFlag,
      placeholder: 'i/n',
      description:
        'draw only shard i of n (0-based) of every sampling part (whole --sample-batch / --bpd-batch chunks of its items) and write the draws with a manifest into --out; experiments:merge joins the n shard folders and scores them into the files of one unsharded run',
    }),
  ),
  sampleBatch: cli.numberFlag(codec.PositiveInt, { default: D.samplers.batch, description: 'images per sampler call (memory); sample b always starts from the same prior draw and noise stream, whatever the batching' }),

  // classifiers
  classifier: cli.optional(cli.stringFlag({ description: 'directory of the clean MNIST classifier (the FID feature extractor): reused when it holds one, else trained and saved there (default <out>/classifier)' })),
  noisyClassifier: cli.optional(cli.stringFlag({ description: "directory of the noise-conditional classifier for guidance: reused when it holds one trained under the checkpoint's SDE, else trained and saved there (default <out>/noisy-classifier)" })),
  classifierEpochs: cli.numberFlag(codec.PositiveInt, { default: D.classifiers.epochs, description: 'epochs of the clean classifier over the training (sub)set' }),
  noisyClassifierEpochs: cli.numberFlag(codec.PositiveInt, { default: D.classifiers.noisyEpochs, description: 'epochs of the noise-conditional classifier over the training (sub)set' }),
  classifierBatch: cli.numberFlag(codec.PositiveInt, { default: D.classifiers.batchSize, description: 'classifier training batch size' }),
  classifierLr: cli.numberFlag(codec.PositiveFinite, { default: D.classifiers.lr, description: 'classifier Adam peak learning rate (cosine-decayed to 0 over the training)' }),
  classifierChannels: cli.listFlag(codec.PositiveInt, { default: D.classifiers.channels, description: 'channels of the classifiers’ three conv blocks' }),
  featureDim: cli.numberFlag(codec.PositiveInt, { default: D.classifiers.featureDim, description: 'width of the classifiers’ penultimate layer (the FID feature dimension)' }),
  trainSubset: cli.numberFlag(codec.PositiveInt, { default: D.data.trainSubset, description: 'train the classifiers on the first N training images; the FID floor draws its n real images from them' }),
  testSubset: cli.numberFlag(codec.PositiveInt, { default: D.data.testSubset, description: 'the first N test images: the FID reference set and the classifiers’ test set' }),

  // sampler comparison
  compare: cli.optional(cli.listFlag<SamplerName>(SamplerName, { description: `named samplers to compare, of ${SAMPLER_NAMES.join(',')} (default: ${D.samplers.samplers.join(',')}, and on a class-conditional checkpoint ${LABELLED_SAMPLERS.join(',')} too); the autoguided dpm-ag, dpm-sde-ag, dpm-ag-cond and dpm-sde-ag-cond need the run's guide/ beside the checkpoint (experiments:mnist saves it); the labelled dpm-sde-cond, dpm-cfg, dpm-ag-cond and dpm-sde-ag-cond a class-conditional checkpoint (each digit given a label drawn from its class prior); guided samplers count network evaluations` })),
  steps: cli.numberFlag(codec.PositiveInt, { default: D.samplers.steps, description: 'time steps of the em and pc samplers (comparison, conditional pc, inpainting)' }),
  snr: cli.numberFlag(codec.PositiveFinite, { default: D.samplers.snr, description: 'signal-to-noise ratio of the Langevin corrector of pc' }),
  endNoise: cli.optional(
    cli.numberFlag(codec.PositiveFinite, {
      description: 'noise level σ where every sampler stops and takes its denoising step (default: the 2% quantile of the levels the checkpoint was trained on, when its loss draws them from a law of σ, else ε = 1e-3)',
    }),
  ),
  ...guidanceWeightFlags('compared'),
  odeTols: cli.listFlag(codec.PositiveFinite, { default: D.samplers.odeTols, description: 'rtol = atol of the adaptive RK45 probability-flow ODE sampler in the comparison, one run each' }),
  fastSteps: cli.listFlag(codec.PositiveInt, { default: D.samplers.fastSteps, description: 'step counts k of EDM Heun and DPM-Solver++(2M) in the comparison, one run each (dpm-sde takes 2k steps, the NFE of EDM Heun at k; dpm-sde-cond 2k like dpm-sde; the guided dpm-ag, dpm-sde-ag and dpm-cfg k steps at two network evaluations each, the same NFE; dpm-ag-cond and dpm-sde-ag-cond, at three, the most steps within that NFE)' }),

  // bits/dim
  bpdImages: cli.numberFlag(codec.PositiveInt, { default: D.bpd.images, description: 'test images whose bits/dim are estimated (the first N)' }),
  bpdBatch: cli.numberFlag(codec.PositiveInt, { default: D.bpd.batch, description: 'images per likelihood solve' }),
  bpdEps: cli.optional(
    cli.numberFlag(codec.PositiveFinite, {
      description:
        "start time ε of the likelihood solve (default: where the noise level is the cell's standard deviation, σ(ε) = w (hi − lo)/√12, the blur at which a level the model holds sharply costs least: 0.0011 for data in [0, 1] with the centred cells; score_sde's is 1e-5); log p_ε is a density for every ε, so each ε gives a valid bits/dim bound",
    }),
  ),
  bpdCells: cli.oneOfFlag(DEQUANTIZATIONS, {
    default: D.bpd.cells,
    description:
      "dequantisation cells of the 256 levels: centred, [(k − ½)/255, (k + ½)/255) around the data value k/255 the model was trained on, or score-sde, [k/256, (k+1)/256) (score_sde's; with --bpd-eps 1e-5 comparable with published figures); both bound the same discrete likelihood; the centred cells are tighter for a density peaked on the levels (MNIST's 0 and 255), and equal for one smooth at the scale of a level (README, \"Where the bits go\")",
  }),
  denoiserRange: cli.optional(
    cli.listFlag(codec.Finite, {
      description:
        "lo,hi: clip the model's denoiser D(x, t) = (x + s(t)² s_θ)/m(t) to [lo, hi] in every part, samplers and likelihood alike (another model, the same wherever D stays in the box; e.g. -0.00196,1.00196 for data in [0, 1], the box every dequantised image lies in, and so the exact denoiser too: keeps the likelihood's flow from running away where the network's denoiser grows without bound off the data; README, \"The data's own box\")",
    }),
  ),
  bpdEstimator: cli.oneOfFlag(ESTIMATORS, { default: D.bpd.estimator, description: 'Hutchinson probe distribution of the divergence estimate' }),
  odeTol: cli.numberFlag(codec.PositiveFinite, { default: D.bpd.tol, description: 'rtol = atol of the probability-flow ODE solves of bits/dim, conditional ode sampling and latent interpolation' }),

  // conditional generation
  guidanceScale: cli.numberFlag(codec.NonNegativeFinite, { default: D.conditional.guidanceScale, description: 'classifier-guidance scale w in s(x,t) + w ∇ₓ log p_t(y|x)' }),
  perClass: cli.numberFlag(codec.PositiveInt, { default: D.conditional.perClass, description: 'class-conditional samples per class (one row per class in the grid)' }),
  conditionalSamplers: cli.listFlag<ConditionalSampler>(ConditionalSampler, { default: D.conditional.samplers, description: `samplers of class-conditional generation, of ${CONDITIONAL_SAMPLERS.join(',')}` }),

  // inpainting
  mask: cli.oneOfFlag(MASKS, { default: D.inpainting.mask, description: 'which half of the test digits is hidden and filled in' }),
  inpaintDigits: cli.numberFlag(codec.PositiveInt, { default: D.inpainting.digits, description: 'test digits to inpaint (the first N)' }),
  completions: cli.numberFlag(codec.PositiveInt, { default: D.inpainting.completions, description: 'completions drawn per inpainted digit' }),

  // interpolation
  frames: cli.numberFlag(codec.PositiveInt, { default: D.interpolation.frames, description: 'latent interpolation frames between (and including) the two digits’ latents (≥ 2)' }),
} as const;

/** Parsed flags. @category flags */
export type MnistEvalFlags = cli.Flags<typeof mnistEvalFlags>;

/**
 * The evaluation options the flags stand for: the parts not in `--skip`, `--steps`/`--snr` for every em/pc/ode sampler
 * of the comparison, class-conditional generation and inpainting, `--ode-tol` for every other ODE solve,
 * `--sample-batch` for every draw; without `--compare`, {@link defaultComparedSamplers} of the checkpoint (whether it is
 * class-conditional: {@link checkpointIsClassConditional}).
 * @category flags
 */
export const evaluationOptionsOf = (f: MnistEvalFlags, checkpoint: CheckpointTraits = { classConditional: false }): EvaluationOptions => {
  const endNoise = f.endNoise ?? checkpoint.endNoise;
  const end = endNoise !== undefined ? { endNoise } : {};
  const sampler = { steps: f.steps, fastSteps: D.conditional.sampler.fastSteps, snr: f.snr, odeTol: f.odeTol, ...end };
  return {
    checkpoint: f.checkpoint,
    parts: EVAL_PARTS.filter((p) => !f.skip.includes(p)),
    seed: f.seed,
    quiet: f.quiet,
    data: { trainSubset: f.trainSubset, testSubset: f.testSubset },
    classifiers: {
      epochs: f.classifierEpochs,
      noisyEpochs: f.noisyClassifierEpochs,
      batchSize: f.classifierBatch,
      lr: f.classifierLr,
      channels: f.classifierChannels,
      featureDim: f.featureDim,
      ...(f.classifier !== undefined ? { clean: f.classifier } : {}),
      ...(f.noisyClassifier !== undefined ? { noisy: f.noisyClassifier } : {}),
    },
    samplers: { samples: f.samples, samplers: f.compare ?? defaultComparedSamplers(checkpoint.classConditional), steps: f.steps, snr: f.snr, odeTols: f.odeTols, fastSteps: f.fastSteps, batch: f.sampleBatch, ...end, ...guidanceWithFlags(undefined, f) },
    bpd: { images: f.bpdImages, batch: f.bpdBatch, estimator: f.bpdEstimator, tol: f.odeTol, eps: f.bpdEps ?? bpdStartOf(checkpoint.space, f.bpdCells), cells: f.bpdCells },
    conditional: { samplers: f.conditionalSamplers, guidanceScale: f.guidanceScale, perClass: f.perClass, sampler, batch: f.sampleBatch },
    inpainting: { mask: f.mask, digits: f.inpaintDigits, completions: f.completions, sampler, batch: f.sampleBatch },
    interpolation: { frames: f.frames, tol: f.odeTol },
    ...(f.denoiserRange !== undefined ? { denoiserRange: f.denoiserRange } : {}),
  };
};

/**
 * Whether the checkpoint in `dir` is class-conditional (its network has a label table: `model.classes`); false when its
 * manifest cannot be read (the evaluation then reports why, naming `--checkpoint`).
 * @category flags
 */
export const checkpointIsClassConditional = async (dir: string): Promise<boolean> => (await checkpointTraits(dir)).classConditional;

/**
 * What the evaluation's defaults read from a checkpoint: whether it is class-conditional, where its samplers stop, and
 * the space its model lives in (its SDE and data range: where the likelihood starts). @category flags
 */
export interface CheckpointTraits {
  readonly classConditional: boolean;
  readonly endNoise?: number;
  readonly space?: ModelSpace;
}

/** The space a model lives in: its SDE and the data range images map to. @category flags */
export interface ModelSpace {
  readonly sde: SDE;
  readonly dataRange: readonly [number, number];
}

/**
 * The default start time of the likelihood solve in a model's space: σ(ε) = w (hi − lo)/√12 for its SDE, its data range
 * and the cells `cells` (solvers' `cellMatchedStartTime`); score_sde's 1e-5 when the space is unknown.
 * @category flags
 */
export const bpdStartOf = (space: ModelSpace | undefined, cells: Dequantization): number =>
  space !== undefined ? cellMatchedStartTime(space.sde, cells, space.dataRange) : D.bpd.eps;

/**
 * The {@link CheckpointTraits} of the checkpoint in `dir`: whether its network has a label table, the end noise level
 * of its samplers from its training loss (`endNoiseOf`), and its SDE and data range; `{ classConditional: false }` when
 * its manifest cannot be read.
 * @category flags
 */
export const checkpointTraits = async (dir: string): Promise<CheckpointTraits> => {
  const m = await tensorFiles.readManifest(dir, CheckpointManifest);
  if (E.isLeft(m)) return { classConditional: false };
  const { model, sde, loss } = m.right.config;
  const end = endNoiseOf(sde, loss);
  return { classConditional: model.classes !== undefined, ...(end !== undefined ? { endNoise: end } : {}), space: { sde, dataRange: dataRangeOf(m.right.config) } };
};

/** `npx nx run experiments:mnist-eval -- …`. @category help */
export const USAGE = 'npx nx run experiments:mnist-eval -- --checkpoint <dir> [--samples <n>] [--out <dir>] [flags]';

/** What the command does and what each figure shows (the `--help` text above the flags). @category help */
export const DESCRIPTION = [
  'Evaluates a trained MNIST score model (a checkpoint of nx run experiments:mnist, its EMA weights) and writes into --out:',
  '',
  "* classifier/: the clean MNIST convnet, trained here unless --classifier names one. Its penultimate features are the FID feature space; its name (architecture + sha256 of its weights) and test accuracy are in every report.",
  '',
  "* noisy-classifier/: the noise-conditional classifier p_t(y | x), trained on perturbed images under the checkpoint's SDE, whose gradient guides class-conditional sampling (a --noisy-classifier trained under another SDE is refused).",
  '',
  '* fid-vs-nfe.png: FID against the MNIST test set (float64 Fréchet distance of the penultimate features, n = --samples) against score evaluations per sample (log x) for Euler–Maruyama, PC (EM ∘ Langevin), the RK45 probability-flow ODE at each --ode-tols, EDM Heun and DPM-Solver++(2M) at each --fast-steps. The dashed line is the real-vs-real floor: n training images against the same test set.',
  '',
  '* samplers.png: the first 64 samples of each sampler side by side (same prior draws), captioned with NFE and FID.',
  '',
  "* conditional-<sampler>.png: class-conditional samples by classifier guidance (scale --guidance-scale), one row per class 0–9, for PC and the ODE sampler; eval.md gives the clean classifier's accuracy on them (target ≥ 90%).",
  '',
  '* inpainting.png: per row a test digit, the same with its --mask half hidden (grey), and --completions fillings by the PC sampler with the inpainting transform; eval.md gives how often the clean classifier labels a completion like the original.',
  '',
  '* interpolation.png: two test digits at the ends and, between them, the probability-flow decodings of spherical interpolations of their ODE latents.',
  '',
  '* eval.json, eval.md: every figure above with the extractor name and the sample counts, each sampler\'s stray-stroke rate (digits whose ink has more than one 8-connected component: detached specks) and background grain beside the same n real digits\', FID∞ beside FID (when n ≥ 24× the feature dimension, 3072 at the default 128: FID of the first k ≥ 16·(feature dimension) samples at nested k, the least-squares line FID_k = FID∞ + b/k read at k → ∞, for the samplers and the floor alike, so that their ratio does not depend on n; Chong & Forsyth 2020), and bits/dim of the first --bpd-images test images (PF-ODE likelihood, Hutchinson divergence, uniform dequantisation; mean ± standard error over images). Rewritten after each part, so a stopped run keeps what it measured.',
  '',
  'At the defaults on 2 CPU cores (wasm) a run takes about two hours, most of it the sampler comparison; --skip and smaller --samples/--steps shorten it.',
].join('\n');
