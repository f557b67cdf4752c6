/**
 * Scoped memory: tensors are disposed by construction, not by discipline.
 *
 * Every public tensor function of this workspace runs inside {@link scoped} (a `tf.tidy` scope) and returns
 * only what it returns; everything it made on the way is freed when the scope closes.
 *
 * @module memory
 */
import { tf } from './tf';
import { derivedTensorCount } from './derived';

/** Runs `f` in a tidy scope: tensors created inside and not returned are disposed. @category scopes */
export const scoped = <A extends tf.TensorContainer>(f: () => A): A => tf.tidy(f);

/**
 * Lifts a tensor function into a scoped one: `scopedFn(f)(...args) = tidy(() => f(...args))`.
 * Must not wrap an async function (tidy cannot follow awaits).
 * @category scopes
 */
export const scopedFn =
  <Args extends ReadonlyArray<unknown>, A extends tf.TensorContainer>(f: (...args: Args) => A) =>
  (...args: Args): A =>
    tf.tidy(() => f(...args));

/**
 * Number of live tensors in the engine, less those `derivedOnce` keeps for live sources (derived.ts: e.g. the phase
 * filters of fixed weights, released with them), which belong to their source rather than to any computation.
 * @category queries
 */
export const liveTensors = (): number => tf.memory().numTensors - derivedTensorCount();

/**
 * Runs `f`, disposes what it returns, and reports how many tensors it leaked (live after − live before, as counted by
 * {@link liveTensors}). For tests: a scoped pipeline leaks 0.
 * @category queries
 */
export const leakedBy = (f: () => tf.TensorContainer): number => {
  const before = liveTensors();
  tf.dispose(f());
  return liveTensors() - before;
};

/** Async form of {@link leakedBy}: awaits `f`, disposes its result, reports the growth in live tensors. @category queries */
export const leakedByAsync = async (f: () => Promise<tf.TensorContainer>): Promise<number> => {
  const before = liveTensors();
  tf.dispose(await f());
  return liveTensors() - before;
};

/** Reads a tensor's values into a float64 JavaScript array and disposes nothing. @category conversion */
export const toFloat64 = (x: tf.Tensor): Float64Array => Float64Array.from(x.dataSync());

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Instrumentation for benchmarks and tests: calls `onRead` once for every outermost read of tensor data into
 * JavaScript — Tensor.prototype dataSync/arraySync/data/array and the active backend's readSync/read (which kernels
 * may call internally; a tensor read that reaches the backend read counts once). Returns the function that restores
 * the original methods.
 * @category instrumentation
 */
export const watchReads = (onRead: () => void): (() => void) => {
  let nest = 0;
  const restore: Array<() => void> = [];
  const wrap = (obj: object, name: string): void => {
    const target = obj as Record<string, Method | undefined>;
    const original = target[name];
    if (typeof original !== 'function') return;
    target[name] = function (this: unknown, ...args: unknown[]): unknown {
      if (nest === 0) onRead();
      nest += 1;
      try {
        return original.apply(this, args);
      } finally {
        nest -= 1;
      }
    };
    restore.push(() => {
      target[name] = original;
    });
  };
  for (const m of ['dataSync', 'arraySync', 'data', 'array']) wrap(tf.Tensor.prototype, m);
  for (const m of ['readSync', 'read']) wrap(tf.backend() as unknown as object, m);
  return () => restore.reverse().forEach((f) => f());
};
