/**
 * Explicit Runge–Kutta methods as data (Butcher tableaux), and one step of a method on a tensor ODE
 * dy/dt = F(y, t):
 *   k_i = F(y + h Σ_{j<i} a_ij k_j, t + c_i h),   y' = y + h Σ_i b_i k_i,   error ≈ h Σ_i (b_i − b̂_i) k_i.
 *
 * @module runge-kutta
 */
import { tf } from '@score-sde/tensor-fp';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A vector field F(y, t) on tensors (the probability-flow drift, for instance). @category model */
export type VectorField = (y: tf.Tensor, t: number) => tf.Tensor;

/**
 * A Butcher tableau. `order` is the order of b; an embedded pair also gives b̂ (a lower-order solution used for
 * the error estimate) and `errorOrder`, the exponent k with local error ∝ h^k (controller exponent 1/k);
 * `fsal` when the last stage is F at the new point (first same as last: reused as the next step's first stage).
 * @category model
 */
export interface ButcherTableau {
  readonly name: string;
  readonly order: number;
  readonly c: ReadonlyArray<number>;
  readonly a: ReadonlyArray<ReadonlyArray<number>>;
  readonly b: ReadonlyArray<number>;
  readonly bHat?: ReadonlyArray<number>;
  readonly errorOrder?: number;
  readonly fsal?: boolean;
}

/** A tableau with an embedded error estimate. @category model */
export type EmbeddedTableau = ButcherTableau & { readonly bHat: ReadonlyArray<number>; readonly errorOrder: number };

// -------------------------------------------------------------------------------------
// tableaux
// -------------------------------------------------------------------------------------

/** Forward Euler, order 1. @category tableaux */
export const eulerTableau: ButcherTableau = { name: 'euler', order: 1, c: [0], a: [[]], b: [1] };

/** Heun's method (explicit trapezoid), order 2. @category tableaux */
export const heunTableau: ButcherTableau = { name: 'heun', order: 2, c: [0, 1], a: [[], [1]], b: [0.5, 0.5] };

/** Heun with embedded Euler: order 2(1), local error estimate ∝ h². @category tableaux */
export const heunEulerTableau: EmbeddedTableau = { ...heunTableau, name: 'heun-euler', bHat: [1, 0], errorOrder: 2 };

/** The classical Runge–Kutta method, order 4. @category tableaux */
export const rk4Tableau: ButcherTableau = {
  name: 'rk4',
  order: 4,
  c: [0, 0.5, 0.5, 1],
  a: [[], [0.5], [0, 0.5], [0, 0, 1]],
  b: [1 / 6, 1 / 3, 1 / 3, 1 / 6],
};

/**
 * Dormand–Prince 5(4) (Dormand & Prince 1980; Hairer, Nørsett & Wanner, Solving ODEs I, Table II.5.2), FSAL,
 * propagating the 5th-order solution; the embedded 4th-order one gives a local error ∝ h⁵.
 * @category tableaux
 */
export const dopri5Tableau: EmbeddedTableau = {
  name: 'dopri5',
  order: 5,
  c: [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1],
  a: [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
  ],
  b: [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0],
  bHat: [5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40],
  errorOrder: 5,
  fsal: true,
};

// -------------------------------------------------------------------------------------
// one step
// -------------------------------------------------------------------------------------

/** y + h Σ w_i k_i, skipping zero weights. */
const combine = (y: tf.Tensor, h: number, ks: ReadonlyArray<tf.Tensor>, w: ReadonlyArray<number>): tf.Tensor =>
  w.reduce<tf.Tensor>((acc, wi, i) => (wi === 0 ? acc : tf.add(acc, tf.mul(ks[i]!, h * wi))), y);

/** h Σ w_i k_i, skipping zero weights: {@link combine} without a start (no zero tensor to add to; 0 if all w_i = 0). */
const weightedSum = (like: tf.Tensor, h: number, ks: ReadonlyArray<tf.Tensor>, w: ReadonlyArray<number>): tf.Tensor => {
  const first = w.findIndex((wi) => wi !== 0);
  return first < 0 ? tf.zerosLike(like) : combine(tf.mul(ks[first]!, h * w[first]!), h, ks, w.map((wi, i) => (i <= first ? 0 : wi)));
};

/**
 * The stages k_1…k_s of one step of size h (signed) from (y, t); `k1` may be supplied (FSAL, or a reused
 * evaluation). Not scoped: call inside a tidy.
 * @category steps
 */
export const rkStages = (tab: ButcherTableau, F: VectorField, y: tf.Tensor, t: number, h: number, k1?: tf.Tensor): ReadonlyArray<tf.Tensor> => {
  const ks: tf.Tensor[] = [k1 ?? F(y, t)];
  for (let i = 1; i < tab.c.length; i++) ks.push(F(combine(y, h, ks, tab.a[i]!), t + tab.c[i]! * h));
  return ks;
};

/**
 * One step of the method: y(t + h) ≈ y + h Σ b_i k_i (and, for an embedded pair, the error estimate
 * h Σ (b_i − b̂_i) k_i). Not scoped: call inside a tidy.
 * @category steps
 */
export const rkStep = (
  tab: ButcherTableau,
  F: VectorField,
  y: tf.Tensor,
  t: number,
  h: number,
  k1?: tf.Tensor,
): { readonly y: tf.Tensor; readonly error?: tf.Tensor; readonly stages: ReadonlyArray<tf.Tensor> } => {
  const ks = rkStages(tab, F, y, t, h, k1);
  const yNew = combine(y, h, ks, tab.b);
  if (tab.bHat === undefined) return { y: yNew, stages: ks };
  const e = tab.b.map((bi, i) => bi - tab.bHat![i]!);
  return { y: yNew, error: weightedSum(y, h, ks, e), stages: ks };
};
