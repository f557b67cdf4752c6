/**
 * The flags of `nx run experiments:mnist`, as data (each decoded with io-ts; errors name the flag).
 *
 * The defaults are sized for a few minutes of training (7 measured) on a 2-core CPU with the embedded wasm backend: a
 * half-width ScoreNet (280k parameters) for 3 epochs at a high learning rate (see README, "What the default run
 * trades away"). `--epochs 50 --channels 32,64,128,256 --embed-dim 256 --lr 1e-4 --batch-size 32 --warmup 0
 * --grad-clip 0` is the tutorial's full setting.
 *
 * @module mnist/flags
 */
import { codec, BACKEND_CHOICES } from '@score-sde/tensor-fp';
import { cli } from '../lib';
import { EVAL_PARTS, EvalPart, SAMPLER_NAMES, SamplerName, DEFAULT_SAMPLER_SETTINGS, ShardFlag, type ShardSpec } from '../pipeline';

/** The SDEs a run may train under (the paper's and the tutorial's defaults). @category flags */
export const SDE_NAMES = ['tutorial', 've', 'vp', 'subvp'] as const;

/** The flags of the MNIST experiment. @category flags */
export const mnistFlags = {
  epochs: cli.numberFlag(codec.PositiveInt, { default: 3, description: 'training epochs over the (sub)set' }),
  batchSize: cli.numberFlag(codec.PositiveInt, { default: 64, description: 'training batch size' }),
  lr: cli.numberFlag(codec.PositiveFinite, { default: 2e-3, description: 'Adam learning rate (after warm-up)' }),
  warmup: cli.numberFlag(codec.NonNegativeInt, { default: 100, description: 'linear learning-rate warm-up steps (0: none)' }),
  gradClip: cli.numberFlag(codec.NonNegativeFinite, { default: 1, description: 'global gradient-norm clipping (0: none)' }),
  sde: cli.oneOfFlag(SDE_NAMES, { default: 'tutorial', description: 'SDE: tutorial (dx = 25^t dw), ve, vp or subvp (paper defaults)' }),
  samplers: cli.listFlag<SamplerName>(SamplerName, { default: ['em', 'pc', 'ode'], description: `samplers to draw with, comma-separated, of ${SAMPLER_NAMES.join(',')}` }),
  steps: cli.numberFlag(codec.PositiveInt, { default: DEFAULT_SAMPLER_SETTINGS.steps, description: 'time steps of the em and pc samplers (edm/dpm use --fast-steps)' }),
  fastSteps: cli.numberFlag(codec.PositiveInt, { default: DEFAULT_SAMPLER_SETTINGS.fastSteps, description: 'time steps of the edm and dpm samplers' }),
  snr: cli.numberFlag(codec.PositiveFinite, { default: DEFAULT_SAMPLER_SETTINGS.snr, description: 'signal-to-noise ratio of the Langevin corrector (pc)' }),
  odeTol: cli.numberFlag(codec.PositiveFinite, { default: DEFAULT_SAMPLER_SETTINGS.odeTol, description: 'rtol = atol of the adaptive probability-flow ODE sampler (ode)' }),
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
  channels: cli.listFlag(codec.PositiveInt, { default: [16, 32, 64, 128], description: "ScoreNet channels of the 4 levels (the tutorial's: 32,64,128,256)" }),
  embedDim: cli.numberFlag(codec.PositiveInt, { default: 128, description: "ScoreNet time-embedding size, even (the tutorial's: 256)" }),
  emaDecay: cli.numberFlag(codec.UnitInterval, { default: 0.999, description: 'EMA decay of the weights used for sampling' }),
  checkpointEvery: cli.numberFlag(codec.NonNegativeInt, { default: 0, description: 'also save a checkpoint every N steps (0: at the end of each epoch only)' }),
  resume: cli.optional(cli.stringFlag({ description: 'continue training from this checkpoint directory' })),
  sampleOnly: cli.optional(cli.stringFlag({ description: 'skip training; sample from this checkpoint directory' })),
  out: cli.optional(cli.stringFlag({ description: 'output folder (default packages/experiments/out/mnist/<run-id>)' })),
  backend: cli.oneOfFlag(BACKEND_CHOICES, { default: 'auto', description: 'TensorFlow.js backend (overrides SCORE_SDE_BACKEND)' }),
  workers: cli.numberFlag(codec.PositiveInt, {
    default: 1,
    description:
      'sample in N worker threads, each a contiguous range of the samples with their own keys (1: in this process); the samples are bit-identical to --workers 1. A sampler whose step couples its batch (ode: one adaptive step size per batch) stays in this process, and the log says so',
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
