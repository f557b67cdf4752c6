/**
 * Exponential moving average of the weights (Polyak averaging), used for sampling and evaluation, with the
 * warm-up of the reference code (score_sde `models/ema.py`, after TensorFlow's `ExponentialMovingAverage` with
 * `num_updates`): after the n-th optimiser step (n = 1, 2, …)
 *   d_n = min(decay, (1 + n) / (10 + n)),     ema ← d_n · ema + (1 − d_n) · θ.
 *
 * @module ema
 */
import { tf, scoped } from '@score-sde/tensor-fp';
import type { TensorRecord } from './params';
import { flatten, unflatten } from './optim';

/** The tutorial/reference default decay 0.999. @category config */
export const DEFAULT_EMA_DECAY = 0.999;

/** d_n = min(decay, (1 + n)/(10 + n)): the warmed-up decay after the n-th update. @category ema */
export const emaDecayAt = (decay: number, n: number): number => Math.min(decay, (1 + n) / (10 + n));

/**
 * One EMA update after the n-th optimiser step: ema_k ← d_n ema_k + (1 − d_n) θ_k for every name k of `ema`,
 * computed on the flattened records (3 kernels for all names; the same float32 operations per element).
 * Pure: returns a new record; the inputs are untouched.
 * @category ema
 */
export const emaUpdate =
  (decay: number) =>
  (ema: TensorRecord, params: TensorRecord, n: number): TensorRecord =>
    scoped(() => {
      const d = emaDecayAt(decay, n);
      const names = Object.keys(ema);
      return unflatten(tf.add(tf.mul(flatten(ema, names), d), tf.mul(flatten(params, names), 1 - d)), names, ema);
    });
