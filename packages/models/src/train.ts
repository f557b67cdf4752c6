/**
 * Training as functions over a plain state record.
 *
 * Everything random is a pure function of the run's root key and the step number:
 *   init key = foldIn(root, 0), data key = foldIn(root, 1), loss key of step s = foldIn(foldIn(root, 2), s),
 * and the batch of step s is `batchIndices(dataKey, n, B, s)`. The rest of the state (weights, EMA weights,
 * Adam moments and step) is checkpointed exactly, so k steps + save + load + (n − k) steps ≡ n steps.
 *
 * The state is used linearly: {@link trainStep} writes the new weights into the parameter variables (the one
 * mutation tfjs requires), disposes the old EMA/Adam tensors and returns the new state; after a Right the old
 * record must not be used. After a Left (non-finite loss or gradient) nothing has changed.
 *
 * @module train
 */
import * as E from 'fp-ts/Either';
import { pipe } from 'fp-ts/function';
import { tf, random, fused, type Key } from '@score-sde/tensor-fp';
import { scoreNet, scoreNetSpec } from './scorenet';
import { type LossConfigError, lossFn } from './loss';
import { adamStep, adamEmaStep, initAdam, disposeAdam, globalNorm } from './optim';
import { emaUpdate, emaDecayAt } from './ema';
import { type TensorRecord, type Params, trainableNames, initParams, cloneRecord, assignParams, disposeRecord } from './params';
import { type MnistData, batchIndices, imageBatch } from './mnist';
import { nullLabel } from './scorenet';
import { TrainConfig, type TrainState, parameterisationOf, trainingBatch, microBatchesOf, microBatchRanges } from './train-config';
import { poisonAtStep, pointSync } from './faults';

// -------------------------------------------------------------------------------------
// config and state
// -------------------------------------------------------------------------------------

/** Why a step was refused. @category errors */
export type TrainError =
  | { readonly _tag: 'NonFiniteLoss'; readonly step: number; readonly loss: number }
  | { readonly _tag: 'NonFiniteGradient'; readonly step: number; readonly norm: number }
  | LossConfigError;

/** A one-line message for a {@link TrainError}. @category errors */
export const renderTrainError = (e: TrainError): string =>
  e._tag === 'NonFiniteLoss'
    ? `loss is ${e.loss} at step ${e.step + 1}: training stopped, the weights are those after step ${e.step}`
    : e._tag === 'NonFiniteGradient'
      ? `gradient norm is ${e.norm} at step ${e.step + 1}: training stopped, the weights are those after step ${e.step}`
      : e.message;

/** The keys of a run, derived from its root key. @category keys */
export const runKeys = (root: Key): { readonly init: Key; readonly data: Key; readonly loss: Key } => ({
  init: random.foldIn(root, 0),
  data: random.foldIn(root, 1),
  loss: random.foldIn(root, 2),
});

/** The key of step s's loss draws: foldIn(foldIn(root, 2), s). @category keys */
export const stepKey = (root: Key, step: number): Key => random.foldIn(runKeys(root).loss, step);

/** A fresh state: weights from the init key, EMA = a copy of the weights, Adam at step 0. @category constructors */
export const initTrainState = (config: TrainConfig, root: Key): TrainState => {
  const specs = scoreNetSpec(config.model);
  const params = initParams(specs, runKeys(root).init);
  const trainable = specs.filter((s) => s.trainable);
  return { params, ema: cloneRecord(params, trainable.map((s) => s.name)), adam: initAdam(trainable), step: 0, key: root };
};

// -------------------------------------------------------------------------------------
// one step
// -------------------------------------------------------------------------------------

/**
 * The labels a class-conditional network trains on at a step: y_b, or "no label" (K) where
 * u_b < dropout, u = uniformArray(foldIn(key_s, 2), B) (another counter domain than the loss's and the
 * dequantisation's draws). Undefined for an unconditional run (and then `labels` must be absent).
 * @category training
 */
export const trainingLabels = (config: TrainConfig, labels: ArrayLike<number> | undefined, key: Key): Int32Array | undefined => {
  const K = nullLabel(config.model);
  if (K === undefined) {
    if (labels !== undefined) throw new Error('labels were given to a run whose network has no classes');
    return undefined;
  }
  if (labels === undefined) throw new Error(`a class-conditional run (${K} classes) trains on labelled batches`);
  const u = random.uniformArray(random.foldIn(key, 2), labels.length);
  const p = config.conditioning?.dropout ?? 0;
  return Int32Array.from(labels, (y, b) => (u[b]! < p ? K : y));
};

/** The names of the config's trainable parameters, in the network's order (the order gradients are reported in). */
const trainedNames = (config: TrainConfig): ReadonlyArray<string> => trainableNames(scoreNetSpec(config.model));

/** One part's gradient: ∇_θ L_k by name, and L_k as a number. @category training */
export interface PartGradient {
  readonly grads: TensorRecord;
  readonly loss: number;
}

/**
 * The gradient of part `part` of step s's batch (rows [start, end) of {@link microBatchRanges}; the whole batch when
 * absent): the batch x₀ [B, 28, 28, 1] in [0, 1] is dequantised and mapped to the run's data space whole
 * ({@link trainingBatch}) and its labels dropped whole ({@link trainingLabels}), then the part's rows feed the network
 * and the loss takes the part's share L_k = (1/B) Σ_{b∈part} ℓ_b (the loss's `BatchPart`), so every sample sees the
 * draws it has in the whole batch. `tf.variableGrads` over the trainable variables of `params`. Pure in its inputs:
 * the same bits in any process with the same backend, whatever its thread count.
 * @category training
 */
export const partGradient = (config: TrainConfig) => {
  const lossOf = lossFn(config.sde, config.loss, parameterisationOf(config));
  const names = trainedNames(config);
  return (params: Params, x0: tf.Tensor, labels: ArrayLike<number> | undefined, key: Key, part?: { readonly start: number; readonly end: number }): E.Either<LossConfigError, PartGradient> =>
    pipe(
      lossOf,
      E.map((loss) => {
        const vars = names.map((n) => params[n]!);
        const dropped = trainingLabels(config, labels, key);
        const whole = trainingBatch(config, x0, key);
        const B = x0.shape[0]!;
        const rows = part === undefined || (part.start === 0 && part.end === B) ? undefined : part;
        const data = rows === undefined ? whole : tf.slice(whole, [rows.start], [rows.end - rows.start]);
        const net = scoreNet(config.model, params, rows === undefined || dropped === undefined ? dropped : dropped.slice(rows.start, rows.end));
        const { value, grads: byVar } = tf.variableGrads(() => loss(net, data, key, rows === undefined ? undefined : { offset: rows.start, of: B }), vars);
        if (data !== x0) data.dispose();
        if (whole !== x0 && whole !== data) whole.dispose();
        const grads: TensorRecord = Object.fromEntries(names.map((n, i) => [n, byVar[vars[i]!.name]!]));
        const lossValue = value.dataSync()[0]!;
        value.dispose();
        return { grads, loss: lossValue };
      }),
    );
};

/**
 * The gradients of the K parts of step s's batch, computed one after another here ({@link partGradient} of each of
 * {@link microBatchRanges}(B, K), K = {@link microBatchesOf}), or the whole batch's when K = 1.
 * @category training
 */
export const stepPartGradients = (config: TrainConfig) => {
  const gradient = partGradient(config);
  const K = microBatchesOf(config);
  return (state: TrainState, x0: tf.Tensor, labels?: ArrayLike<number>): E.Either<LossConfigError, ReadonlyArray<PartGradient>> => {
    const key = stepKey(state.key, state.step);
    if (K === 1) return pipe(gradient(state.params, x0, labels, key), E.map((g) => [g]));
    const parts: PartGradient[] = [];
    for (const rows of microBatchRanges(x0.shape[0]!, K)) {
      const g = gradient(state.params, x0, labels, key, rows);
      if (E.isLeft(g)) {
        parts.forEach((p) => disposeRecord(p.grads));
        return g;
      }
      parts.push(g.right);
    }
    return E.right(parts);
  };
};

/**
 * Applies the parts' gradients to the state: ∇L = Σ_k ∇L_k and L = Σ_k L_k in part order (one part: itself), the
 * gradient norm, an Adam step and the EMA update with the new step count. Consumes the parts' tensors. Returns the
 * loss and the new state, or a Left (and no change to the state) if the loss or the gradient norm is NaN/±∞.
 * @category training
 */
export const applyPartGradients = (config: TrainConfig) => {
  const names = trainedNames(config);
  return (state: TrainState, parts: ReadonlyArray<PartGradient>): E.Either<TrainError, { readonly state: TrainState; readonly loss: number }> => {
    const grads: TensorRecord =
      parts.length === 1
        ? parts[0]!.grads
        : Object.fromEntries(
            names.map((n) => {
              const sum = tf.tidy(() => parts.slice(1).reduce((acc, p) => tf.add(acc, p.grads[n]!), parts[0]!.grads[n]!));
              return [n, sum];
            }),
          );
    if (parts.length > 1) parts.forEach((p) => disposeRecord(p.grads));
    const lossValue = parts.slice(1).reduce((a, p) => a + p.loss, parts[0]!.loss);
    // On wasm the fused kernels read the norm straight off the heap and do Adam + EMA in one pass per tensor.
    const fast = fused.fusedKernelsReady();
    const norm = !Number.isFinite(lossValue) ? NaN : fast ? Math.sqrt(fused.sumOfSquares(names.map((n) => grads[n]!))) : tf.tidy(() => globalNorm(grads).dataSync()[0]!);
    if (!Number.isFinite(lossValue) || !Number.isFinite(norm)) {
      disposeRecord(grads);
      return E.left<TrainError>(
        !Number.isFinite(lossValue) ? { _tag: 'NonFiniteLoss', step: state.step, loss: lossValue } : { _tag: 'NonFiniteGradient', step: state.step, norm },
      );
    }
    if (fast) {
      const step = adamEmaStep(config.optim)(state.params, grads, state.adam, state.ema, norm, emaDecayAt(config.emaDecay, state.adam.step + 1));
      disposeRecord(grads);
      assignParams(state.params, step.params);
      disposeRecord(state.ema);
      disposeAdam(state.adam);
      return E.right({ state: { ...state, ema: step.ema, adam: step.state, step: state.step + 1 }, loss: lossValue });
    }
    const updated = adamStep(config.optim)(state.params, grads, state.adam);
    disposeRecord(grads);
    assignParams(state.params, updated.params);
    const ema = emaUpdate(config.emaDecay)(state.ema, state.params, updated.state.step);
    disposeRecord(state.ema);
    disposeAdam(state.adam);
    return E.right({ state: { ...state, ema, adam: updated.state, step: state.step + 1 }, loss: lossValue });
  };
};

/**
 * One optimisation step on the batch of images x₀ [B, 28, 28, 1] in [0, 1] (and their labels, for a class-conditional
 * run: {@link trainingLabels}) (dequantised if the config says so and mapped to the run's data range first,
 * {@link trainingBatch}): ∇_θ L(θ; x₀, key_s) = Σ_k ∇L_k over the config's K parts ({@link stepPartGradients}), an Adam
 * step, and the EMA update with the new step count ({@link applyPartGradients}). Returns the loss (a number) and the
 * new state, or a Left (and no change at all) if the loss or the gradient norm is NaN/±∞.
 * @category training
 */
export const trainStep = (config: TrainConfig) => {
  const gradients = stepPartGradients(config);
  const apply = applyPartGradients(config);
  return (state: TrainState, x0: tf.Tensor, labels?: ArrayLike<number>): E.Either<TrainError, { readonly state: TrainState; readonly loss: number }> =>
    pipe(
      gradients(state, x0, labels),
      E.chainW((parts) => apply(state, parts)),
    );
};

// -------------------------------------------------------------------------------------
// batches
// -------------------------------------------------------------------------------------

/**
 * The batch of step s of a run on `data`: `imageBatch(data, batchIndices(dataKey, n, B, s))`. The fault points of a
 * step sit here (faults.ts: `step:<s + 1>`, and a NaN or infinite batch when SCORE_SDE_FAULT_NAN_STEP/INF_STEP ask).
 * @category training
 */
export const batchForStep = (config: TrainConfig, state: TrainState, data: MnistData, order?: Int32Array): tf.Tensor4D => {
  pointSync(`step:${state.step + 1}`);
  const x = imageBatch(data, stepIndices(config, state, data, order));
  const poison = poisonAtStep(state.step + 1);
  if (poison === undefined) return x;
  const poisoned = tf.tidy(() => tf.mul(x, poison)) as tf.Tensor4D;
  x.dispose();
  return poisoned;
};

/**
 * The labels of step s's batch (the same indices as {@link batchForStep}) for a class-conditional run; undefined
 * for an unconditional one.
 * @category training
 */
export const labelsForStep = (config: TrainConfig, state: TrainState, data: MnistData, order?: Int32Array): Int32Array | undefined =>
  config.model.classes === undefined ? undefined : Int32Array.from(stepIndices(config, state, data, order), (i) => data.labels[i]!);

/** The indices of step s's batch in `data`: `batchIndices(dataKey, n, B, s)` (of the epoch's `order` when given). */
const stepIndices = (config: TrainConfig, state: TrainState, data: MnistData, order?: Int32Array): Int32Array =>
  batchIndices(runKeys(state.key).data, data.count, config.batchSize, state.step, order);
