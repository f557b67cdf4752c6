/**
 * A training run's configuration and state, and what sampling needs of them: the config codec (the network, the SDE,
 * the loss, the optimiser, the EMA, the batch size, the parameterisation and the data range), the state's record, the
 * weights to sample with and the score of a run. No training here (train.ts), so it runs on any host.
 *
 * @module train-config
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { pipe } from 'fp-ts/function';
import { tf, codec, random } from '@score-sde/tensor-fp';
import { SDE, Parameterisation, tutorialParameterisation, clampedDenoiserScore, type ScoreFn } from '@score-sde/sde-math';
import type { Key } from '@score-sde/tensor-fp';
import { scoreFromNet } from './score';
import { ScoreNetConfig, scoreNet } from './scorenet';
import { LossConfig } from './loss';
import { AdamConfig, type AdamState, disposeAdam } from './optim';
import { EmaConfig } from './ema';
import { DataRange, imagesToRange, rangeToImages } from './data-range';
import { type Params, type TensorRecord, disposeRecord, overlay } from './params';

// -------------------------------------------------------------------------------------
// config and state
// -------------------------------------------------------------------------------------

/**
 * Dequantisation of the training images: `none` (the 256 levels k/255 as they are: the model learns atoms, and its
 * density at small σ is a spike on each level) or `centred` (x̃ = x + (u − ½)/255, u ~ U(0, 1) per pixel and step:
 * the model learns the density of the levels' cells, the continuous density whose cell averages are the discrete
 * probabilities, which is what bits/dim with `centred` cells measures).
 * @category config
 */
export const TrainDequantization = codec.oneOf(['none', 'centred'] as const, 'TrainDequantization');
export type TrainDequantization = t.TypeOf<typeof TrainDequantization>;

/**
 * How a class-conditional network (model `classes` = K) trains and samples: each training label is replaced by
 * "no label" with probability `dropout` (so the one network also learns the unconditional score: classifier-free
 * guidance), and samples draw their label y ~ `prior` (K weights, the training set's class frequencies).
 * @category config
 */
export const Conditioning = codec.strict(
  { dropout: codec.UnitInterval, prior: t.readonlyArray(codec.NonNegativeFinite, 'ClassPrior') },
  'Conditioning',
);
export type Conditioning = t.TypeOf<typeof Conditioning>;

const TrainConfigFields = codec.strictWithOptional(
  { model: ScoreNetConfig, sde: SDE, loss: LossConfig, optim: AdamConfig, emaDecay: EmaConfig, batchSize: codec.PositiveInt },
  { parameterisation: Parameterisation, dataRange: DataRange, dequantization: TrainDequantization, conditioning: Conditioning, microBatches: codec.PositiveInt, denoiserRange: DataRange },
  'TrainConfig',
);
type TrainConfigFields = t.TypeOf<typeof TrainConfigFields>;

/** What is wrong between a config's `model.classes` and its `conditioning`, or its `microBatches` and batch size (undefined: nothing), naming the field. */
const configProblem = (c: TrainConfigFields): { readonly key: string; readonly message: string } | undefined => {
  if (c.microBatches !== undefined && c.microBatches > c.batchSize)
    return { key: 'microBatches', message: `microBatches: ${c.microBatches} parts of a batch of ${c.batchSize} (at most one part per sample)` };
  const K = c.model.classes;
  const cond = c.conditioning;
  if (K === undefined) return cond === undefined ? undefined : { key: 'conditioning', message: 'conditioning: the network has no classes (model.classes)' };
  if (cond === undefined) return { key: 'conditioning', message: `conditioning: a network of ${K} classes needs its label dropout and class prior` };
  if (cond.dropout >= 1) return { key: 'conditioning', message: `conditioning.dropout: must be below 1 (some steps must see the label), got ${cond.dropout}` };
  if (cond.prior.length !== K) return { key: 'conditioning', message: `conditioning.prior: ${cond.prior.length} weights for ${K} classes` };
  if (!(cond.prior.reduce((a, b) => a + b, 0) > 0)) return { key: 'conditioning', message: 'conditioning.prior: the weights sum to 0' };
  return undefined;
};

/**
 * Everything that defines a training run except the seed and the data: the network, the SDE, the loss, the
 * optimiser, the EMA, the batch size, and (optional, with the defaults every earlier checkpoint used) the
 * parameterisation (default tutorial: s = F/s(t)), the data range (default [0, 1], the images as they are), the
 * training images' dequantisation (default none), for a class-conditional network (and only then), its
 * {@link Conditioning}, the number of parts K of every batch (`microBatches`, default 1; see {@link microBatchesOf}), and
 * the box [lo, hi] the model's denoiser is clipped to when it samples or measures a likelihood (`denoiserRange`, default
 * none; see {@link scoreOfRun}: training does not use it).
 * @category config
 */
export const TrainConfig = new t.Type<TrainConfigFields, t.OutputOf<typeof TrainConfigFields>, unknown>(
  'TrainConfig',
  (u): u is TrainConfigFields => TrainConfigFields.is(u) && configProblem(u) === undefined,
  (u, c) =>
    pipe(
      TrainConfigFields.validate(u, c),
      E.chain((cfg) => {
        const problem = configProblem(cfg);
        if (problem === undefined) return t.success(cfg);
        const actual = problem.key === 'microBatches' ? cfg.microBatches : cfg.conditioning;
        return t.failure(actual, [...c, { key: problem.key, type: problem.key === 'microBatches' ? codec.PositiveInt : Conditioning, actual }], problem.message);
      }),
    ),
  TrainConfigFields.encode,
);
export type TrainConfig = TrainConfigFields;

/** The parameterisation of a run (tutorial when the config has none). @category config */
export const parameterisationOf = (c: TrainConfig): Parameterisation => c.parameterisation ?? tutorialParameterisation;

/** The data range of a run ([0, 1] when the config has none). @category config */
export const dataRangeOf = (c: TrainConfig): DataRange => c.dataRange ?? [0, 1];

/** Images in [0, 1] to the run's data space ({@link imagesToRange}). @category config */
export const toModelSpace = (c: TrainConfig, images: tf.Tensor): tf.Tensor => imagesToRange(dataRangeOf(c), images);

/**
 * The parts K a step splits its batch into (1 when the config has none): the gradient is then
 *   ∇L = Σ_{k<K} ∇L_k,   L_k = (1/B) Σ_{b∈part k} ℓ_b,
 * summed in part order, each part's rows a contiguous block ({@link microBatchRanges}). It is the same sum whether the
 * parts run one after another in this process or at once in K workers (a data-parallel step), so a run's bits depend on
 * K and never on where its parts ran. K = 1 is the whole batch's gradient as every earlier run computed it.
 * @category config
 */
export const microBatchesOf = (c: TrainConfig): number => c.microBatches ?? 1;

/** K contiguous blocks of rows of a batch of B whose sizes differ by at most one (the first B mod K one larger): part k = [start, end). @category config */
export const microBatchRanges = (batch: number, parts: number): ReadonlyArray<{ readonly start: number; readonly end: number }> => {
  const k = Math.max(1, Math.min(parts, batch));
  const base = Math.floor(batch / k);
  const extra = batch % k;
  return Array.from({ length: k }, (_, i) => {
    const start = i * base + Math.min(i, extra);
    return { start, end: start + base + (i < extra ? 1 : 0) };
  });
};

/** The training images' dequantisation of a run (none when the config has none). @category config */
export const dequantizationOf = (c: TrainConfig): TrainDequantization => c.dequantization ?? 'none';

/**
 * The batch the loss of a step sees, from images x₀ [B, ...] in [0, 1] and the step's key: with `centred`
 * dequantisation x̃ = x₀ + (u − ½)/255, sample b's u ~ U(0, 1) drawn from split(foldIn(key, 1), B)[b] alone (the loss
 * draws from split(key, B): another counter domain), then {@link toModelSpace}. Without, `toModelSpace(c, x₀)`.
 * @category config
 */
export const trainingBatch = (c: TrainConfig, x0: tf.Tensor, key: Key): tf.Tensor =>
  dequantizationOf(c) === 'none'
    ? toModelSpace(c, x0)
    : tf.tidy(() => {
        const u = random.uniformPerSample(random.split(random.foldIn(key, 1), x0.shape[0]!), x0.shape.slice(1));
        return toModelSpace(c, tf.add(x0, tf.div(tf.sub(u, 0.5), 255)));
      });

/** The run's data space back to images in [0, 1] ({@link rangeToImages}). @category config */
export const toImageSpace = (c: TrainConfig, x: tf.Tensor): tf.Tensor => rangeToImages(dataRangeOf(c), x);

/** The state of a run: weights, EMA weights (trainable names), Adam state, steps taken, root key. @category model */
export interface TrainState {
  readonly params: Params;
  readonly ema: TensorRecord;
  readonly adam: AdamState;
  readonly step: number;
  readonly key: Key;
}

/** Disposes every tensor and variable of a state. @category destructors */
export const disposeTrainState = (s: TrainState): void => {
  disposeRecord(s.params);
  disposeRecord(s.ema);
  disposeAdam(s.adam);
};

/** The weights to sample with: the EMA weights over the trainable names, the fixed ones as they are. @category queries */
export const emaParams = (s: TrainState): TensorRecord => overlay(s.params, s.ema);

/**
 * The score of a trained run with the given weights (e.g. {@link emaParams}): the run's network through its
 * parameterisation, s_θ(x, t) in the model's data space (`scoreFromNet`); with the config's `denoiserRange` [lo, hi],
 * the score of its denoiser clipped to the box, s' = s_θ + m(t)(clip(D, lo, hi) − D)/s(t)² (sde-math
 * `clampedDenoiserScore`), which every sampler, the likelihood and guidance then use. Training fits s_θ itself (its
 * loss never calls this), so the clamp changes no trained weight.
 * @category queries
 */
export const scoreOfRun = (config: TrainConfig, weights: TensorRecord, labels?: ArrayLike<number>): ScoreFn => {
  const score = scoreFromNet(config.sde, scoreNet(config.model, weights, labels), parameterisationOf(config));
  return config.denoiserRange === undefined ? score : clampedDenoiserScore(config.sde, score, config.denoiserRange);
};

/**
 * The label of each sample of a class-conditional run, y_b ~ prior drawn from foldIn(keys[b], {@link LABEL_DOMAIN})
 * alone (so a sample's label, like its noise, depends on its own key only): the first y with
 * u < Σ_{k ≤ y} prior_k / Σ prior, u ~ U(0, 1). Undefined for an unconditional run.
 * @category queries
 */
export const sampleLabels = (config: TrainConfig, keys: ReadonlyArray<Key>): Int32Array | undefined => {
  const prior = config.conditioning?.prior;
  if (prior === undefined) return undefined;
  const total = prior.reduce((a, b) => a + b, 0);
  return Int32Array.from(keys, (k) => {
    const u = random.uniformArray(random.foldIn(k, LABEL_DOMAIN), 1)[0]! * total;
    let acc = 0;
    for (let y = 0; y < prior.length; y++) {
      acc += prior[y]!;
      if (u < acc) return y;
    }
    return prior.length - 1;
  });
};

/** The fold-in constant of a sample's label key (ASCII "labl"): a domain no sampler's own draws use. @category queries */
export const LABEL_DOMAIN = 0x6c61626c;

/**
 * The class prior of a labelled training set: the frequency of each class 0..K−1 among `labels`.
 * @category queries
 */
export const classFrequencies = (labels: ArrayLike<number>, classes: number): ReadonlyArray<number> => {
  const counts = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    counts[y] = (counts[y] ?? 0) + 1;
  }
  return counts.map((c) => c / Math.max(1, labels.length));
};
