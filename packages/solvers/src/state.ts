/**
 * The sampler state: a plain record carried from one point of a time grid to the next.
 *
 * Ownership rule (what keeps tensors disposed by construction): a step never disposes its input; it returns a
 * new state whose tensors may be shared with the input. Whoever calls a step (the runner, a composite step)
 * releases the input's tensors that the output does not reuse, with {@link releaseReplaced}.
 *
 * @module state
 */
import { tf, random, scoped, type Key } from '@score-sde/tensor-fp';
import { type SDE, priorSample } from '@score-sde/sde-math';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A data prediction x̂₀ remembered by a multistep solver, with the time it was made at. @category model */
export interface Denoised {
  readonly t: number;
  readonly x0: tf.Tensor;
}

/**
 * What a solver carries between grid intervals: the next step size of an adaptive solver, the inverse scaled
 * errors of its last two accepted steps (PID history), the previous data prediction of a multistep solver.
 * @category model
 */
export interface SolverMemory {
  readonly stepSize?: number;
  readonly inverseErrors?: readonly [number, number];
  readonly previous?: Denoised;
  /** The data prediction before `previous` (a third-order multistep solver's). */
  readonly older?: Denoised;
}

/**
 * The state of a sampler at time t: the batch x [B, …], x without its last noise injection (`xMean`, the
 * "denoised" output of the references), the number of score evaluations made so far, and one random key per
 * sample (sample b draws its noise from keys[b] alone, so its path does not depend on its batch).
 * @category model
 */
export interface SamplerState {
  readonly x: tf.Tensor;
  readonly xMean: tf.Tensor;
  readonly t: number;
  readonly nfe: number;
  readonly keys: ReadonlyArray<Key>;
  readonly memory?: SolverMemory;
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * A state at time t holding the given batch (xMean = x, nfe = 0). The state shares `x`: releasing the state
 * releases it.
 * @category constructors
 */
export const stateAt = (x: tf.Tensor, t: number, keys: ReadonlyArray<Key>): SamplerState => {
  if (keys.length !== x.shape[0]) throw new RangeError(`stateAt: ${keys.length} keys for a batch of ${x.shape[0]}`);
  return { x, xMean: x, t, nfe: 0, keys };
};

/**
 * The initial state of a reverse-time sampler: x(T) ~ p_T = N(0, σ_p² I) drawn per sample. Each key is split
 * once: one half draws the prior, the other is carried on.
 * @category constructors
 */
export const priorState = (sde: SDE, keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>, t: number = sde.T): SamplerState => {
  const [carry, use] = random.splitEach(keys);
  const x = scoped(() => priorSample(sde)(use, sampleShape));
  return { x, xMean: x, t, nfe: 0, keys: carry };
};

/** B independent keys from one seed: split(key(seed), B). @category constructors */
export const keysFor = (seed: number, batch: number): ReadonlyArray<Key> => random.split(random.key(seed), batch);

// -------------------------------------------------------------------------------------
// memory management
// -------------------------------------------------------------------------------------

/** The tensors a state holds (x, xMean, and the remembered data predictions). @category memory */
export const stateTensors = (s: SamplerState): ReadonlyArray<tf.Tensor> => {
  const out: tf.Tensor[] = [s.x];
  if (s.xMean !== s.x) out.push(s.xMean);
  for (const p of [s.memory?.previous?.x0, s.memory?.older?.x0]) if (p !== undefined && p !== s.x && p !== s.xMean && !out.includes(p)) out.push(p);
  return out;
};

/** Disposes every tensor of a state. @category memory */
export const disposeState = (s: SamplerState): void => tf.dispose([...stateTensors(s)]);

/**
 * Disposes the tensors of `old` that neither `next` nor any of `keep` holds: the release an owner makes once
 * `next` has replaced `old`.
 * @category memory
 */
export const releaseReplaced = (old: SamplerState, next: SamplerState, ...keep: ReadonlyArray<SamplerState>): void => {
  if (old === next) return;
  const held = new Set<tf.Tensor>([...stateTensors(next), ...keep.flatMap(stateTensors)]);
  tf.dispose(stateTensors(old).filter((x) => !held.has(x)));
};
