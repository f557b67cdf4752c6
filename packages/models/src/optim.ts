/**
 * Adam (Kingma & Ba, ICLR 2015) as a pure function over records, with the reference code's linear learning-rate
 * warm-up and global gradient-norm clipping (score_sde `losses.optimization_manager`).
 *
 * The optimiser state is plain data — the step count and the first/second moment records — so it is
 * checkpointed exactly and a resumed run continues bit-identically.
 *
 * @module optim
 */
import * as t from 'io-ts';
import { tf, codec, scoped, fused } from '@score-sde/tensor-fp';
import { type ParamSpec, type TensorRecord, zerosLike } from './params';

// -------------------------------------------------------------------------------------
// config and state
// -------------------------------------------------------------------------------------

/**
 * Adam's hyper-parameters. `warmup` = number of warm-up steps (0: none); `gradClip` = max global gradient norm
 * (0: no clipping); `schedule` (optional) = a cosine decay of the learning rate after the warm-up, to `floor`·lr at
 * step `steps` (absent: constant). Defaults: the tutorial's lr 1e-4, β = (0.9, 0.999), ε = 1e-8, no warm-up, no
 * clipping, constant rate.
 * @category config
 */
export const CosineSchedule = codec.strict({ kind: t.literal('cosine'), steps: codec.PositiveInt, floor: codec.UnitInterval }, 'CosineSchedule');
export type CosineSchedule = t.TypeOf<typeof CosineSchedule>;

export const AdamConfig = codec.strictWithOptional(
  {
    lr: codec.PositiveFinite,
    beta1: codec.UnitInterval,
    beta2: codec.UnitInterval,
    eps: codec.PositiveFinite,
    warmup: codec.NonNegativeInt,
    gradClip: codec.NonNegativeFinite,
  },
  { schedule: CosineSchedule },
  'AdamConfig',
);
export type AdamConfig = t.TypeOf<typeof AdamConfig>;

/** Defaults with overrides. @category config */
export const adamConfig = (p: Partial<AdamConfig> = {}): AdamConfig => ({ lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, warmup: 0, gradClip: 0, ...p });

/** Adam's state: the number of steps taken and the moment estimates m, v (records over the trainable names). @category model */
export interface AdamState {
  readonly step: number;
  readonly m: TensorRecord;
  readonly v: TensorRecord;
}

/** The initial state: step 0, m = v = 0. @category constructors */
export const initAdam = (trainable: ReadonlyArray<ParamSpec>): AdamState => ({ step: 0, m: zerosLike(trainable), v: zerosLike(trainable) });

/** Disposes the moment tensors of a state. @category destructors */
export const disposeAdam = (s: AdamState): void => tf.dispose([...Object.values(s.m), ...Object.values(s.v)]);

// -------------------------------------------------------------------------------------
// flat views of records
// -------------------------------------------------------------------------------------

/**
 * The named tensors of a record laid end to end: flatten(r, names) = concat_k vec(r[k]) ∈ ℝ^P, P = Σ_k |r[k]|.
 * The optimiser works on this one vector instead of ~30 tensors: element-wise maps give bit-identical
 * values either way (each element sees the same float32 operations), in ~13 kernel calls instead of ~400
 * (on wasm each call costs more than the arithmetic of a small tensor; issue 6).
 * @category flat
 */
export const flatten = (r: TensorRecord, names: ReadonlyArray<string>): tf.Tensor1D =>
  scoped(() => (names.length === 1 ? tf.reshape(r[names[0]!]!, [-1]) : tf.concat(names.map((k) => tf.reshape(r[k]!, [-1])), 0)) as tf.Tensor1D);

/**
 * The inverse of {@link flatten}: unflatten(flatten(r, names), names, shapes) = r (shapes[k] = shape of r[k]).
 * @category flat
 */
export const unflatten = (flat: tf.Tensor, names: ReadonlyArray<string>, shapes: TensorRecord): TensorRecord =>
  scoped(() => {
    const sizes = names.map((k) => shapes[k]!.size);
    const parts = names.length === 1 ? [flat] : tf.split(flat, sizes, 0);
    return Object.fromEntries(names.map((k, i) => [k, tf.reshape(parts[i]!, shapes[k]!.shape)]));
  });

// -------------------------------------------------------------------------------------
// pieces
// -------------------------------------------------------------------------------------

/**
 * Learning rate of step n (1-based): lr_n = lr · min(1, n / warmup) · c_n (linear warm-up; none when warmup = 0),
 * with c_n = 1 without a schedule and, for a cosine schedule to step S with floor f,
 *   c_n = f + (1 − f)·½(1 + cos(π·u)),   u = clamp((n − warmup)/(S − warmup), 0, 1)
 * (Loshchilov & Hutter 2017, without restarts; warm-up then cosine is the usual "one-cycle"-like shape).
 * (The reference code uses step/warmup with a 0-based step, whose first step has lr = 0; here step 1 moves.)
 * @category schedules
 */
export const learningRate = (config: AdamConfig, n: number): number => {
  const warm = config.warmup > 0 ? Math.min(1, n / config.warmup) : 1;
  const s = config.schedule;
  if (s === undefined) return config.lr * warm;
  const u = Math.min(1, Math.max(0, (n - config.warmup) / Math.max(1, s.steps - config.warmup)));
  return config.lr * warm * (s.floor + (1 - s.floor) * 0.5 * (1 + Math.cos(Math.PI * u)));
};

/** Global norm ‖g‖ = √(Σ_names Σ g²) = ‖flatten(g)‖₂, as a scalar tensor. @category clipping */
export const globalNorm = (grads: TensorRecord): tf.Scalar => scoped(() => flatNorm(flatten(grads, Object.keys(grads))));

/** ‖g‖₂ = √(Σ g²) of a flat vector. */
const flatNorm = (g: tf.Tensor): tf.Scalar => tf.sqrt(tf.sum(tf.square(g))) as tf.Scalar;

/** The clipping factor min(1, c / (‖g‖ + 10⁻⁶)) of a flat gradient (PyTorch `clip_grad_norm_`). */
const clipFactor = (maxNorm: number, g: tf.Tensor): tf.Scalar => tf.minimum(1, tf.div(maxNorm, tf.add(flatNorm(g), 1e-6))) as tf.Scalar;

/**
 * Global-norm clipping (PyTorch `clip_grad_norm_`): g ← g · min(1, c / (‖g‖ + 10⁻⁶)); c = 0 leaves g unchanged.
 * Returns new tensors (also when nothing is clipped).
 * @category clipping
 */
export const clipByGlobalNorm =
  (maxNorm: number) =>
  (grads: TensorRecord): TensorRecord =>
    scoped(() => {
      if (maxNorm <= 0) return Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.clone(g)]));
      const factor = clipFactor(maxNorm, flatten(grads, Object.keys(grads)));
      return Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.mul(g, factor)]));
    });

// -------------------------------------------------------------------------------------
// the step
// -------------------------------------------------------------------------------------

/**
 * One Adam step n = state.step + 1 on the names present in `grads` (after optional clipping):
 *   m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²,
 *   θ ← θ − lr_n · (m / (1 − β₁ⁿ)) / (√(v / (1 − β₂ⁿ)) + ε)            (PyTorch's placement of ε).
 * Computed on the {@link flatten}ed vectors of θ, g, m, v (one kernel per operation for all parameters; the
 * same float32 operations per element as per tensor) and split back into records.
 * Pure: returns new parameter values and a new state; the inputs are untouched (the caller disposes them).
 * @category optimiser
 */
export const adamStep =
  (config: AdamConfig) =>
  (params: TensorRecord, grads: TensorRecord, state: AdamState): { readonly params: TensorRecord; readonly state: AdamState } =>
    scoped(() => {
      const n = state.step + 1;
      const lr = learningRate(config, n);
      const bc1 = 1 - Math.pow(config.beta1, n);
      const bc2 = 1 - Math.pow(config.beta2, n);
      const names = Object.keys(grads);
      const g0 = flatten(grads, names);
      const g = config.gradClip > 0 ? tf.mul(g0, clipFactor(config.gradClip, g0)) : g0;
      const m = tf.add(tf.mul(flatten(state.m, names), config.beta1), tf.mul(g, 1 - config.beta1));
      const v = tf.add(tf.mul(flatten(state.v, names), config.beta2), tf.mul(tf.square(g), 1 - config.beta2));
      const denom = tf.add(tf.sqrt(tf.div(v, bc2)), config.eps);
      const next = tf.sub(flatten(params, names), tf.mul(tf.div(m, denom), lr / bc1));
      return { params: unflatten(next, names, grads), state: { step: n, m: unflatten(m, names, grads), v: unflatten(v, names, grads) } };
    });

// -------------------------------------------------------------------------------------
// the fused step (wasm)
// -------------------------------------------------------------------------------------

/**
 * The clipping factor min(1, c / (‖g‖ + 10⁻⁶)) in float32 operations, as {@link clipByGlobalNorm} computes it on
 * tensors, from a global norm already read back; 1 when c = 0 (no clipping).
 * @category clipping
 */
export const clipFactorOf = (maxNorm: number, norm: number): number =>
  maxNorm > 0 ? Math.min(1, Math.fround(Math.fround(maxNorm) / Math.fround(Math.fround(norm) + Math.fround(1e-6)))) : 1;

/**
 * {@link adamStep} followed by the EMA update ema ← d·ema + (1 − d)·θ_new (`ema.ts`, d = the EMA's decay for this
 * step, e.g. `emaDecayAt(decay, n)`) in one pass per parameter tensor (the wasm backend's fused kernel: the same
 * float32 operations per element as the tensor formulas, without concatenating ~40 tensors into flat vectors and
 * splitting them back), given the gradient's global norm already read back (for the clipping factor). The learning
 * rate is {@link learningRate}'s, as in {@link adamStep}. Use it when `fused.fusedKernelsReady()`; pure: new tensors,
 * inputs untouched.
 * @category optimiser
 */
export const adamEmaStep =
  (config: AdamConfig) =>
  (
    params: TensorRecord,
    grads: TensorRecord,
    state: AdamState,
    ema: TensorRecord,
    norm: number,
    d: number,
  ): { readonly params: TensorRecord; readonly state: AdamState; readonly ema: TensorRecord } => {
    const n = state.step + 1;
    const scalars: fused.AdamEmaScalars = {
      clip: clipFactorOf(config.gradClip, norm),
      beta1: config.beta1,
      oneMinusBeta1: 1 - config.beta1,
      beta2: config.beta2,
      oneMinusBeta2: 1 - config.beta2,
      bc2: 1 - Math.pow(config.beta2, n),
      eps: config.eps,
      step: learningRate(config, n) / (1 - Math.pow(config.beta1, n)),
      decay: d,
      oneMinusDecay: 1 - d,
    };
    const out = Object.keys(grads).map((k) => [k, fused.adamEmaStep(grads[k]!, params[k]!, state.m[k]!, state.v[k]!, ema[k], scalars)] as const);
    const pick = (i: number): TensorRecord => Object.fromEntries(out.filter(([, ts]) => ts[i] !== undefined).map(([k, ts]) => [k, ts[i]!]));
    return { params: pick(0), state: { step: n, m: pick(1), v: pick(2) }, ema: pick(3) };
  };
