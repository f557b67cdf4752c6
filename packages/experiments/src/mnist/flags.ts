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
import * as t from 'io-ts';
import { codec } from '@score-sde/tensor-fp';
import { cli } from '../lib';
import { EVAL_PARTS, type EvalPart } from '../eval/flags';

/** Sampler names the MNIST experiment knows. @category flags */
export const MNIST_SAMPLERS = ['em', 'pc', 'ode', 'edm', 'dpm'] as const;
export type MnistSamplerName = (typeof MNIST_SAMPLERS)[number];

const SamplerName = t.keyof({ em: null, pc: null, ode: null, edm: null, dpm: null }, 'SamplerName');
const EvalPartName = t.keyof({ samplers: null, bpd: null, conditional: null, inpainting: null, interpolation: null }, 'EvalPart');

/** The flags of the MNIST experiment. @category flags */
export const mnistFlags = {
  epochs: cli.numberFlag(codec.PositiveInt, { default: 3, description: 'training epochs over the (sub)set' }),
  batchSize: cli.numberFlag(codec.PositiveInt, { default: 64, description: 'training batch size' }),
  lr: cli.numberFlag(codec.PositiveFinite, { default: 2e-3, description: 'Adam learning rate (after warm-up)' }),
  warmup: cli.numberFlag(codec.NonNegativeInt, { default: 100, description: 'linear learning-rate warm-up steps (0: none)' }),
  gradClip: cli.numberFlag(codec.NonNegativeFinite, { default: 1, description: 'global gradient-norm clipping (0: none)' }),
  sde: cli.oneOfFlag(['tutorial', 've', 'vp', 'subvp'], { default: 'tutorial', description: 'SDE: tutorial (dx = 25^t dw), ve, vp or subvp (paper defaults)' }),
  samplers: cli.listFlag<MnistSamplerName>(SamplerName, { default: ['em', 'pc', 'ode'], description: `samplers to draw with, comma-separated, of ${MNIST_SAMPLERS.join(',')}` }),
  steps: cli.numberFlag(codec.PositiveInt, { default: 500, description: 'time steps of the em and pc samplers (edm/dpm use --fast-steps)' }),
  fastSteps: cli.numberFlag(codec.PositiveInt, { default: 40, description: 'time steps of the edm and dpm samplers' }),
  snr: cli.numberFlag(codec.PositiveFinite, { default: 0.16, description: 'signal-to-noise ratio of the Langevin corrector (pc)' }),
  odeTol: cli.numberFlag(codec.PositiveFinite, { default: 1e-5, description: 'rtol = atol of the adaptive probability-flow ODE sampler (ode)' }),
  numSamples: cli.numberFlag(codec.PositiveInt, { default: 64, description: 'samples drawn per sampler' }),
  seed: cli.numberFlag(codec.SafeInt, { default: 0, description: 'seed of every random choice (weights, data order, noise, samples)' }),
  subset: cli.numberFlag(codec.PositiveInt, { default: 60000, description: 'train on the first N training images (≤ 60000)' }),
  channels: cli.listFlag(codec.PositiveInt, { default: [16, 32, 64, 128], description: "ScoreNet channels of the 4 levels (the tutorial's: 32,64,128,256)" }),
  embedDim: cli.numberFlag(codec.PositiveInt, { default: 128, description: "ScoreNet time-embedding size, even (the tutorial's: 256)" }),
  emaDecay: cli.numberFlag(codec.UnitInterval, { default: 0.999, description: 'EMA decay of the weights used for sampling' }),
  checkpointEvery: cli.numberFlag(codec.NonNegativeInt, { default: 0, description: 'also save a checkpoint every N steps (0: at the end of each epoch only)' }),
  resume: cli.optional(cli.stringFlag({ description: 'continue training from this checkpoint directory' })),
  sampleOnly: cli.optional(cli.stringFlag({ description: 'skip training; sample from this checkpoint directory' })),
  out: cli.optional(cli.stringFlag({ description: 'output folder (default packages/experiments/out/mnist/<run-id>)' })),
  backend: cli.oneOfFlag(['auto', 'wasm', 'cpu', 'tensorflow'], { default: 'auto', description: 'TensorFlow.js backend (overrides SCORE_SDE_BACKEND)' }),
  workers: cli.numberFlag(codec.PositiveInt, {
    default: 1,
    description:
      'sample in N worker threads, each a contiguous shard of the samples with their own keys (1: in this process); the samples are bit-identical to --workers 1. pc (Langevin batch-mean step) and ode (one adaptive step size per batch) couple their batch, so they stay in this process',
  }),
  quiet: cli.booleanFlag({ description: 'no progress output', default: false }),
  eval: cli.listFlag<EvalPart>(EvalPartName, {
    default: [],
    description: `after sampling, evaluate the checkpoint into <out>/eval with these parts of experiments:mnist-eval, comma-separated, of ${EVAL_PARTS.join(',')} (default: none; --steps, --snr, --seed, --backend carry over)`,
  }),
  evalSamples: cli.numberFlag(codec.PositiveInt, { default: 256, description: 'with --eval: samples per sampler of the comparison (the FID n)' }),
} as const;

/** Parsed flags. @category flags */
export type MnistFlags = cli.Flags<typeof mnistFlags>;

/**
 * Problems of flag values that each flag's codec cannot see, each naming its flag (all at once): the network has four
 * levels (`--channels` gives exactly four counts) and an even time embedding (half sines, half cosines); `--resume`
 * and `--sample-only` exclude each other.
 * @category flags
 */
export const mnistFlagProblems = (f: MnistFlags): ReadonlyArray<string> => [
  ...(f.channels.length === 4 ? [] : [`--channels: expected 4 channel counts (one per level of the ScoreNet), got ${f.channels.length}`]),
  ...(f.embedDim % 2 === 0 ? [] : [`--embed-dim: must be even (half sines, half cosines), got ${f.embedDim}`]),
  ...(f.resume !== undefined && f.sampleOnly !== undefined ? ['--resume and --sample-only exclude each other: give one'] : []),
];
