/**
 * Shapes that stay honest: a batch of samples `[B, ...S]` carries its sample shape S in its type, and
 * per-sample scalars are applied through columns `[B, 1, …, 1]`.
 *
 * The trap this closes: with x of shape [B, 28, 28, 1] and σ of shape [B], `x · σ` broadcasts to
 * [B, 28, 28, B] without an error. {@link mulPerSample} and {@link column} reshape σ to [B, 1, 1, 1] and check
 * its length, so the result is always x's shape.
 *
 * `Batch<S>` is a phantom-typed (branded) `tf.Tensor`: no wrapper object, it can be passed to any tfjs op; only
 * {@link asBatch} (which checks the shape) and the helpers here produce one.
 *
 * @module shape
 */
import * as E from 'fp-ts/Either';
import { tf } from './tf';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A sample shape, e.g. `readonly [28, 28, 1]`. @category model */
export type SampleShape = ReadonlyArray<number>;

declare const SampleShapeBrand: unique symbol;

/**
 * A tensor of shape [B, ...S]: a batch of B samples of shape S (B free at run time, S fixed in the type).
 * E.g. `Batch<readonly [28, 28, 1]>` for a batch of MNIST images.
 * @category model
 */
export type Batch<S extends SampleShape> = tf.Tensor & { readonly [SampleShapeBrand]: S };

/** A shape mismatch, with a message giving both shapes. @category model */
export interface ShapeError {
  readonly _tag: 'ShapeError';
  readonly message: string;
}

const shapeError = (message: string): ShapeError => ({ _tag: 'ShapeError', message });

const show = (s: ReadonlyArray<number>): string => `[${s.join(', ')}]`;

const sizeOf = (s: ReadonlyArray<number>): number => s.reduce((a, b) => a * b, 1);

// -------------------------------------------------------------------------------------
// constructors and queries
// -------------------------------------------------------------------------------------

/**
 * Views x as a batch of samples of shape S: Right when x.shape = [B, ...S] for some B ≥ 1, else a Left naming
 * both shapes. No copy; x itself, branded.
 * @category constructors
 */
export const asBatch = <const S extends SampleShape>(x: tf.Tensor, sampleShape: S): E.Either<ShapeError, Batch<S>> => {
  const [b, ...rest] = x.shape;
  return x.rank === sampleShape.length + 1 && b !== undefined && b >= 1 && rest.every((d, i) => d === sampleShape[i])
    ? E.right(x as Batch<S>)
    : E.left(shapeError(`expected a batch of shape [B, ${sampleShape.join(', ')}], got ${show(x.shape)}`));
};

/** B, the number of samples of a batch. @category queries */
export const batchSize = <S extends SampleShape>(x: Batch<S>): number => x.shape[0]!;

/** S, the shape of one sample of a batch (x.shape without its first axis). @category queries */
export const sampleShapeOf = <S extends SampleShape>(x: Batch<S>): S => x.shape.slice(1) as unknown as S;

// -------------------------------------------------------------------------------------
// per-sample scalars
// -------------------------------------------------------------------------------------

/**
 * Per-sample scalars c (length B: an array, or a tensor with B elements) as a column [B, 1, …, 1] of the
 * given total rank (≥ 1), which broadcasts against a [B, ...S] batch of that rank sample by sample.
 * @category per-sample
 */
export const column = (values: ArrayLike<number> | tf.Tensor, rank: number): tf.Tensor => {
  if (!Number.isInteger(rank) || rank < 1) throw new Error(`column: rank must be an integer ≥ 1, got ${rank}`);
  const ones = Array.from({ length: rank - 1 }, () => 1);
  return values instanceof tf.Tensor
    ? tf.reshape(values, [values.size, ...ones])
    : tf.tensor(Float32Array.from(values as ArrayLike<number>), [values.length, ...ones], 'float32');
};

/**
 * y_b = c_b · x_b for every sample b: x [B, ...S] times per-sample scalars c (B of them) as a column. Throws
 * when c does not hold exactly B values (a programming error, not a data error).
 * @category per-sample
 */
export const mulPerSample = <S extends SampleShape>(x: Batch<S>, c: ArrayLike<number> | tf.Tensor): Batch<S> =>
  tf.tidy(() => {
    const n = c instanceof tf.Tensor ? c.size : c.length;
    if (n !== batchSize(x)) throw new Error(`mulPerSample: ${n} scalars for a batch of ${batchSize(x)} (shape ${show(x.shape)})`);
    return tf.mul(x, column(c, x.rank)) as Batch<S>;
  });

/** Σ over each sample's axes: [B, ...S] ↦ [B] (e.g. per-sample log-densities or losses). @category per-sample */
export const sumPerSample = <S extends SampleShape>(x: Batch<S>): tf.Tensor1D =>
  tf.tidy(() => tf.sum(tf.reshape(x, [batchSize(x), -1]), 1) as tf.Tensor1D);

// -------------------------------------------------------------------------------------
// reshaping
// -------------------------------------------------------------------------------------

/** [B, ...S] ↦ [B, ∏S]: each sample as a vector, in row-major order. @category reshaping */
export const flattenSamples = <S extends SampleShape>(x: Batch<S>): Batch<readonly [number]> =>
  tf.reshape(x, [batchSize(x), sizeOf(sampleShapeOf(x))]) as Batch<readonly [number]>;

/**
 * [B, n] ↦ [B, ...S], the inverse of {@link flattenSamples}: Right when n = ∏S, else a Left naming the sizes.
 * @category reshaping
 */
export const unflattenSamples = <const S extends SampleShape>(x: Batch<readonly [number]>, sampleShape: S): E.Either<ShapeError, Batch<S>> =>
  x.rank === 2 && x.shape[1] === sizeOf(sampleShape)
    ? E.right(tf.reshape(x, [batchSize(x), ...sampleShape]) as Batch<S>)
    : E.left(shapeError(`cannot unflatten ${show(x.shape)} into samples of shape ${show(sampleShape)} (${sizeOf(sampleShape)} values each)`));
