/**
 * The score model of a checkpoint: its training config, its state, and the score s_θ(x, t) (through the run's
 * parameterisation: net_θ(x, t)/s(t) for the tutorial's) of
 * the weights that sample (the EMA weights, as every experiment does, or the raw ones).
 *
 * @module pipeline/model
 */
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec, type Key } from '@score-sde/tensor-fp';
import type { ScoreFn } from '@score-sde/sde-math';
import { type SamplerName, autoguidanceWeightOf } from './samplers';
import { type TrainConfig, type TrainState, type TensorRecord, type CheckpointError, loadCheckpoint, emaParams, scoreOfRun, sampleLabels, disposeTrainState, renderCheckpointError } from '@score-sde/models';

/** Which weights of a state sample: the EMA weights or the raw ones. @category model */
export const WEIGHTS = ['ema', 'params'] as const;
export type Weights = (typeof WEIGHTS)[number];
export const Weights: t.Type<Weights, Weights, unknown> = codec.oneOf(WEIGHTS, 'Weights');

/** A checkpoint ready to sample: its config and state, and the score of the chosen weights. @category model */
export interface ScoreModel {
  readonly config: TrainConfig;
  readonly state: TrainState;
  readonly score: ScoreFn;
}

/** The weights of a state that sample: the EMA weights overlaid on the fixed parameters, or the raw weights. */
const weightsOf = (state: TrainState, weights: Weights): TensorRecord => (weights === 'ema' ? emaParams(state) : state.params);

/**
 * The score of a training state (models' `scoreOfRun`) with θ the EMA weights (`ema`, the default: they
 * overlay the trainable names on the fixed parameters) or the raw weights (`params`).
 * @category model
 */
export const scoreOfState = (config: TrainConfig, state: TrainState, weights: Weights = 'ema'): ScoreFn => scoreOfRun(config, weightsOf(state, weights));

/** A class-conditional model's score given labels, s_θ(x | y_b), and its class prior π. @category model */
export interface LabelledScore {
  readonly scoreGiven: (labels: ArrayLike<number>) => ScoreFn;
  readonly prior: ReadonlyArray<number>;
}

/** The {@link LabelledScore} of a class-conditional state (θ as in {@link scoreOfState}); undefined for an unconditional one. @category model */
export const labelledScoreOfState = (config: TrainConfig, state: TrainState, weights: Weights = 'ema'): LabelledScore | undefined =>
  config.conditioning === undefined ? undefined : { scoreGiven: (labels) => scoreOfRun(config, weightsOf(state, weights), labels), prior: config.conditioning.prior };

/**
 * The conditional score of a class-conditional state for samples with keys k_b: s_θ(x | y_b), y_b their labels
 * (models' `sampleLabels`: drawn from the run's class prior by each key alone). Left for an unconditional model.
 * @category model
 */
export const conditionalScoreOfState = (config: TrainConfig, state: TrainState, weights: Weights = 'ema'): E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn> => {
  const labelled = labelledScoreOfState(config, state, weights);
  return labelled === undefined
    ? E.left('the model is not class-conditional (trained without labels: its recipe has no `conditional`)')
    : E.right((keys) => labelled.scoreGiven(sampleLabels(config, keys)!));
};

/** Loads a checkpoint as a {@link ScoreModel}; dispose it with {@link disposeScoreModel}. @category model */
export const loadScoreModel = async (dir: string, weights: Weights = 'ema'): Promise<E.Either<CheckpointError, ScoreModel>> => {
  const loaded = await loadCheckpoint(dir)();
  if (E.isLeft(loaded)) return loaded;
  const { config, state } = loaded.right;
  return E.right({ config, state, score: scoreOfState(config, state, weights) });
};

/** Releases a score model's variables (the EMA overlay belongs to the state and goes with it). @category model */
export const disposeScoreModel = (m: ScoreModel): void => disposeTrainState(m.state);

/**
 * Where a run keeps its guide, the weaker model of the autoguided samplers (the EMA weights saved at the recipe's
 * `guide.at` of the run): `guide/` beside the run's `checkpoint/`, i.e. `<dir of checkpoint>/guide`.
 * @category guide
 */
export const guideDirOf = (checkpoint: string): string => path.join(path.dirname(path.resolve(checkpoint)), 'guide');

/**
 * The guide of a checkpoint, for the autoguided samplers: the score model at `dir` (default {@link guideDirOf}),
 * which must be of the same SDE, parameterisation and data range as the model it guides. Left naming the
 * directory and the problem.
 * @category guide
 */
export const loadGuide = async (model: TrainConfig, dir: string): Promise<E.Either<string, ScoreModel>> => {
  const loaded = await loadScoreModel(dir);
  if (E.isLeft(loaded)) return E.left(`the guide ${dir} (the weaker model of the autoguided samplers, saved by training when the recipe has a guide): ${renderCheckpointError(loaded.left)}`);
  const c = loaded.right.config;
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  if (!same(c.sde, model.sde) || !same(c.parameterisation, model.parameterisation) || !same(c.dataRange, model.dataRange)) {
    disposeScoreModel(loaded.right);
    return E.left(`the guide ${dir} is not a model of the same SDE, parameterisation and data range as the checkpoint it would guide`);
  }
  return loaded;
};

/**
 * A run's guide as the samplers take it (Left: why there is none), its conditional score (for labelled samplers), the
 * directory it was loaded from (worker threads load it from there too), and how to release it.
 * @category guide
 */
export interface LoadedGuide {
  readonly guide: E.Either<string, ScoreFn>;
  readonly dir?: string;
  readonly guideConditional: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
  readonly release: () => void;
}

/**
 * The guide for a set of named samplers: loaded from `dir` (default {@link guideDirOf} of `checkpoint`) only when
 * one of them is autoguided; otherwise, or without a checkpoint, a Left that says so (used only by an autoguided
 * sampler, whose draw then fails with it).
 * @category guide
 */
export const guideFor = async (names: ReadonlyArray<SamplerName>, model: TrainConfig, checkpoint: string | undefined, dir?: string): Promise<LoadedGuide> => {
  const none = (why: string): LoadedGuide => ({ guide: E.left(why), guideConditional: E.left(why), release: () => undefined });
  if (!names.some((n) => autoguidanceWeightOf(n) !== undefined)) return none('no autoguided sampler was asked for');
  const at = dir ?? (checkpoint !== undefined ? guideDirOf(checkpoint) : undefined);
  if (at === undefined) return none('the model was not loaded from a checkpoint, so there is no guide beside it');
  const g = await loadGuide(model, at);
  return E.isLeft(g)
    ? none(g.left)
    : {
        guide: E.right(g.right.score),
        dir: at,
        guideConditional: E.mapLeft((why: string) => `the guide ${at}: ${why}`)(conditionalScoreOfState(g.right.config, g.right.state)),
        release: () => disposeScoreModel(g.right),
      };
};
