/**
 * Exponential moving average of the weights (Polyak averaging), used for sampling and evaluation: after the n-th
 * optimiser step (n = 1, 2, …), ema ← d_n · ema + (1 − d_n) · θ with
 * - a decay (a number): the warm-up of the reference code (score_sde `models/ema.py`, after TensorFlow's
 *   `ExponentialMovingAverage` with `num_updates`), d_n = min(decay, (1 + n) / (10 + n));
 * - `{ kind: 'power', gamma }`: the power-function EMA of Karras et al. 2024 ("EDM2", §3.1), d_n = (1 − 1/n)^{γ+1},
 *   which averages θ over the last fraction of the run with weights ∝ τ^γ whatever the run's length — an average
 *   made for short runs (the warm-up EMA's window of ~1/(1 − decay) steps is fixed). With `early: { steps: S, gamma: γ₀ }`
 *   the first S updates use γ₀ instead, so the EMA after step S is the power EMA of exponent γ₀ (a run's guide,
 *   saved there, takes that average), and the EMA after step n > S is the power EMA of γ over steps S+1…n plus the
 *   EMA at S with weight (S/n)^{γ+1}: for S = n/9 and γ = 6.94 a weight of 3·10⁻⁸, below float32's resolution.
 *
 * @module ema
 */
import * as t from 'io-ts';
import { tf, scoped, codec } from '@score-sde/tensor-fp';
import type { TensorRecord } from './params';
import { flatten, unflatten } from './optim';

/** The tutorial/reference default decay 0.999. @category config */
export const DEFAULT_EMA_DECAY = 0.999;

/** Another exponent γ₀ for the first `steps` updates of a power EMA (module comment). @category config */
export const EarlyPowerEma = codec.strict({ steps: codec.PositiveInt, gamma: codec.NonNegativeFinite }, 'EarlyPowerEma');
export type EarlyPowerEma = t.TypeOf<typeof EarlyPowerEma>;

/** The power-function EMA with exponent γ ≥ 0 (EDM2), optionally with another exponent early in the run. @category config */
export const PowerEma = codec.strictWithOptional({ kind: t.literal('power'), gamma: codec.NonNegativeFinite }, { early: EarlyPowerEma }, 'PowerEma');
export type PowerEma = t.TypeOf<typeof PowerEma>;

/** An EMA: a decay in [0, 1] (reference warm-up) or a power-function EMA. @category config */
export const EmaConfig = t.union([codec.UnitInterval, PowerEma], 'EmaConfig');
export type EmaConfig = t.TypeOf<typeof EmaConfig>;

/**
 * The decay after the n-th update: min(decay, (1 + n)/(10 + n)) for a decay, (1 − 1/n)^{γ+1} for a power EMA
 * (γ₀ instead of γ for n ≤ S when it has `early: { steps: S, gamma: γ₀ }`).
 * @category ema
 */
export const emaDecayAt = (ema: EmaConfig, n: number): number =>
  typeof ema === 'number' ? Math.min(ema, (1 + n) / (10 + n)) : Math.pow(1 - 1 / n, (ema.early !== undefined && n <= ema.early.steps ? ema.early.gamma : ema.gamma) + 1);

/**
 * One EMA update after the n-th optimiser step: ema_k ← d_n ema_k + (1 − d_n) θ_k for every name k of `ema`,
 * computed on the flattened records (3 kernels for all names; the same float32 operations per element).
 * Pure: returns a new record; the inputs are untouched.
 * @category ema
 */
export const emaUpdate =
  (decay: EmaConfig) =>
  (ema: TensorRecord, params: TensorRecord, n: number): TensorRecord =>
    scoped(() => {
      const d = emaDecayAt(decay, n);
      const names = Object.keys(ema);
      return unflatten(tf.add(tf.mul(flatten(ema, names), d), tf.mul(flatten(params, names), 1 - d)), names, ema);
    });
