/**
 * The score model of a checkpoint: its training config, its state, and the score s_θ(x, t) (through the run's
 * parameterisation: net_θ(x, t)/s(t) for the tutorial's) of
 * the weights that sample (the EMA weights, as every experiment does, or the raw ones).
 *
 * @module pipeline/model
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import type { ScoreFn } from '@score-sde/sde-math';
import { type TrainConfig, type TrainState, type CheckpointError, loadCheckpoint, emaParams, scoreOfRun, disposeTrainState } from '@score-sde/models';

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

/**
 * The score of a training state (models' `scoreOfRun`) with θ the EMA weights (`ema`, the default: they
 * overlay the trainable names on the fixed parameters) or the raw weights (`params`).
 * @category model
 */
export const scoreOfState = (config: TrainConfig, state: TrainState, weights: Weights = 'ema'): ScoreFn =>
  scoreOfRun(config, weights === 'ema' ? emaParams(state) : state.params);

/** Loads a checkpoint as a {@link ScoreModel}; dispose it with {@link disposeScoreModel}. @category model */
export const loadScoreModel = async (dir: string, weights: Weights = 'ema'): Promise<E.Either<CheckpointError, ScoreModel>> => {
  const loaded = await loadCheckpoint(dir)();
  if (E.isLeft(loaded)) return loaded;
  const { config, state } = loaded.right;
  return E.right({ config, state, score: scoreOfState(config, state, weights) });
};

/** Releases a score model's variables (the EMA overlay belongs to the state and goes with it). @category model */
export const disposeScoreModel = (m: ScoreModel): void => disposeTrainState(m.state);
