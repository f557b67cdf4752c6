/**
 * Tensors derived from a fixed tensor, made once and reused while that tensor lives (issue 11): e.g. the sub-pixel
 * phase filters of a transposed convolution's weight, which a sampler needs at every score evaluation while the
 * weights stay the same.
 *
 * A tfjs tensor's values never change: a data buffer (its `dataId`) is written once, when it is made, and a variable's
 * `assign` moves the variable to a new buffer. So a function of the values alone may be cached by the buffer, and
 * the cached result is the same bits as a fresh one. Here the cache is keyed by (buffer, tag) and
 * - a derivation is kept only the second time the same (buffer, tag) is asked for: a buffer asked for once (a training
 *   step's weights, used once per step) is derived as before, inside the caller's scope, and nothing is kept;
 * - kept tensors are disposed as soon as their source buffer is freed (the backend's `disposeData` is watched), so the
 *   live tensors of a program are the same before and after it, as long as it disposes its own;
 * - kept tensors are marked `kept`: no enclosing `tidy` disposes them, and they must never be handed to a caller that
 *   might (derivations are internal to the functions that use them).
 * {@link configureDerived} turns it off (tests, benchmarks); results are bit-identical either way.
 *
 * @module derived
 */
import { tf } from './tf';

/** What a derivation returns: tensors (undefined for an absent part, e.g. a phase no tap reaches). @category model */
export type Derivation = ReadonlyArray<tf.Tensor | undefined>;

interface Watched {
  disposeData(dataId: object, force?: boolean): boolean;
}

let enabled = true;
const askedOnce = new WeakMap<object, Set<string>>();
const kept = new Map<object, Map<string, Derivation>>();
const watched = new WeakSet<object>();

/** The backend holding a buffer (the engine's record of it; the active backend if there is none). */
const backendOf = (dataId: object): Watched | undefined => {
  const engine = tf.engine() as unknown as { state?: { tensorInfo?: WeakMap<object, { backend?: Watched }> } };
  return engine.state?.tensorInfo?.get(dataId)?.backend ?? (tf.backend() as unknown as Watched | undefined);
};

/** Disposes what was derived from a freed buffer. */
const release = (dataId: object): void => {
  const mine = kept.get(dataId);
  if (mine === undefined) return;
  kept.delete(dataId);
  mine.forEach((ts) => ts.forEach((t) => t?.dispose()));
};

/** Wraps a backend's `disposeData` once, so a freed source buffer releases its derivations. */
const watch = (backend: Watched): void => {
  if (watched.has(backend)) return;
  watched.add(backend);
  const dispose = backend.disposeData.bind(backend);
  backend.disposeData = (dataId: object, force?: boolean): boolean => {
    const freed = dispose(dataId, force);
    if (freed) release(dataId);
    return freed;
  };
};

/**
 * `make()`, a pure function of `source`'s values (tag: what is derived, with every parameter it depends on besides the
 * values, e.g. `phases/s=2`), reused while `source`'s buffer lives: the first call for a (buffer, tag) derives it in the
 * caller's scope, the second derives and keeps it, later calls return the kept tensors (see the module comment). The
 * returned tensors must not be disposed or returned to the caller's caller.
 * @category cache
 */
export const derivedOnce = <T extends Derivation>(tag: string, source: tf.Tensor, make: () => T): T => {
  if (!enabled) return make();
  const dataId = source.dataId as object;
  const hit = kept.get(dataId)?.get(tag);
  if (hit !== undefined) return hit as T;
  const tags = askedOnce.get(dataId);
  if (tags === undefined || !tags.has(tag)) {
    askedOnce.set(dataId, (tags ?? new Set<string>()).add(tag));
    return make();
  }
  const backend = backendOf(dataId);
  if (backend === undefined || typeof backend.disposeData !== 'function') return make();
  watch(backend);
  let made: T | undefined;
  // tidy disposes the intermediates; the defined parts of `made` are what it returns, so they survive it.
  tf.tidy(() => {
    made = make();
    return made.filter((t): t is tf.Tensor => t !== undefined);
  }).forEach((t) => tf.keep(t));
  const byTag = kept.get(dataId) ?? new Map<string, Derivation>();
  byTag.set(tag, made!);
  kept.set(dataId, byTag);
  return made!;
};

/**
 * Turns the reuse of derivations on (default) or off; off also disposes everything kept. Tests and benchmarks compare
 * both; the results are the same bits.
 * @category cache
 */
export const configureDerived = (opts: { readonly enabled: boolean }): void => {
  enabled = opts.enabled;
  if (!enabled) [...kept.keys()].forEach(release);
};

/** The number of tensors kept by {@link derivedOnce} now (each released with its source). @category cache */
export const derivedTensorCount = (): number => [...kept.values()].reduce((n, byTag) => [...byTag.values()].reduce((m, ts) => m + ts.filter((t) => t !== undefined).length, n), 0);
