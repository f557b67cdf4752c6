/**
 * Shared set-up of the evaluation tests: a tiny untrained ScoreNet checkpoint, small MNIST subsets, and the flags
 * of a CI-sized run (every part runs, on a few images, in a few steps).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { random } from '@score-sde/tensor-fp';
import { tutorial } from '@score-sde/sde-math';
import { type MnistData, type TrainConfig, initTrainState, saveCheckpoint, disposeTrainState, defaultLossConfig, adamConfig, loadMnist, renderCheckpointError, tensorFiles } from '@score-sde/models';
import { cli } from '../../src/lib';
import { type EvaluationOptions, mnistEvalFlags, evaluationOptionsOf } from '../../src/eval';

/** A tiny ScoreNet (channels 8/16/16/16, embedding 16) under the tutorial SDE. */
export const tinyTrainConfig: TrainConfig = {
  model: { channels: [8, 16, 16, 16], embedDim: 16, fourierScale: 30 },
  sde: tutorial(),
  loss: defaultLossConfig,
  optim: adamConfig({ lr: 1e-3 }),
  emaDecay: 0.999,
  batchSize: 8,
};

/** A fresh temporary directory. */
export const tempDir = (name: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `score-sde-eval-${name}-`));

/** The path of `file` in the stored directory `dir` (a checkpoint or classifier: through its CURRENT version). */
export const storedPath = async (dir: string, file: string): Promise<string> => {
  const at = await tensorFiles.storedDirectory(dir);
  if (E.isLeft(at)) throw new Error(at.left.message);
  return path.join(at.right, file);
};

/** Saves an untrained tiny checkpoint into `<dir>/checkpoint`, and another as its guide into `<dir>/guide` (for the autoguided samplers); returns the checkpoint's path. */
export const tinyCheckpoint = async (dir: string): Promise<string> => {
  for (const [name, seed] of [['guide', 8], ['checkpoint', 7]] as const) {
    const state = initTrainState(tinyTrainConfig, random.key(seed));
    const r = await saveCheckpoint(path.join(dir, name), tinyTrainConfig, state)();
    disposeTrainState(state);
    if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
  }
  return path.join(dir, 'checkpoint');
};

/** The first 256 training and 64 test images. */
export const smallMnist = async (): Promise<{ readonly train: MnistData; readonly test: MnistData }> => {
  const train = await loadMnist({ split: 'train', subset: 256 })();
  const test = await loadMnist({ split: 'test', subset: 64 })();
  if (E.isLeft(train) || E.isLeft(test)) throw new Error('MNIST could not be loaded');
  return { train: train.right, test: test.right };
};

/** Parses argv like the command does into evaluation options (throws on bad flags, so a test sees the problems). */
export const parse = (argv: ReadonlyArray<string>): EvaluationOptions => {
  const r = cli.parseFlags(mnistEvalFlags, argv);
  if (E.isLeft(r)) throw new Error(cli.renderCliError(r.left));
  return evaluationOptionsOf(r.right);
};

/**
 * A CI-sized run: 8 samples per sampler through every family (EM/PC 3 steps, RK45 at a loose tolerance, EDM/DPM
 * 2 steps), a 4/8/8-channel classifier trained one epoch on 256 images (2 steps of 128), bits/dim of 2 images from ε = 1e-3,
 * one conditional sample per class, 2 digits × 2 completions, 3 interpolation frames. `overrides` replace or add
 * flags (`true` for a switch).
 */
export const tinyArgs = (checkpoint: string, overrides: Readonly<Record<string, string | true>> = {}): ReadonlyArray<string> => {
  const flags: Record<string, string | true> = {
    checkpoint,
    samples: '8',
    'sample-batch': '8',
    quiet: true,
    'classifier-channels': '4,8,8',
    'feature-dim': '8',
    'classifier-epochs': '1',
    'noisy-classifier-epochs': '1',
    'train-subset': '256',
    'test-subset': '64',
    steps: '3',
    'ode-tols': '0.1',
    'fast-steps': '2',
    'bpd-images': '2',
    'bpd-batch': '2',
    'bpd-eps': '1e-3',
    'ode-tol': '0.1',
    'per-class': '1',
    'inpaint-digits': '2',
    completions: '2',
    frames: '3',
    ...overrides,
  };
  return Object.entries(flags).flatMap(([k, v]) => (v === true ? [`--${k}`] : [`--${k}`, v]));
};
