/**
 * Shared helpers of the tensor-fp tests: float32 error bounds and cross-backend comparison.
 */
import { tf, random, type Key } from '@score-sde/tensor-fp';

/** float32 unit roundoff u = 2⁻²⁴. */
export const U32 = 2 ** -24;

/**
 * γ_n = n·u / (1 − n·u): the relative error bound of a float32 dot product of n terms, |ŝ − s| ≤ γ_n Σ|aᵢbᵢ|
 * (Higham, "Accuracy and Stability of Numerical Algorithms", §3.1), whatever the summation order.
 */
export const gamma32 = (n: number): number => (n * U32) / (1 - n * U32);

/** Plain arrays of a tensor's values (float64 copies). */
export const values = (x: tf.Tensor): Float64Array => Float64Array.from(x.dataSync());

/** Runs `f` in a tidy scope and returns the values of the tensors it returns (then disposed). */
export const readScoped = (f: () => ReadonlyArray<tf.Tensor>): Float64Array[] => {
  const ts = tf.tidy(() => [...f()]);
  const out = ts.map(values);
  tf.dispose(ts);
  return out;
};

/** A float32 tensor of N(0, 1) values from a key, on the current backend. */
export const gaussian = (k: Key, shape: ReadonlyArray<number>): tf.Tensor => random.normal(k, shape);

/** Runs `f` on the cpu backend and returns plain arrays; restores the previous backend. */
export const onCpu = async <A>(f: () => A): Promise<A> => {
  const before = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    return f();
  } finally {
    await tf.setBackend(before);
  }
};

/**
 * Largest violation of |a − b| ≤ tol·bound elementwise (≤ 0 when every element is within its bound);
 * reported with the worst index so a failure says where. A NaN anywhere (in a, b or the bound) or lengths that
 * differ are a violation of +∞ at that index: a comparison helper must never pass an output it cannot compare.
 */
export const worstExcess = (a: ArrayLike<number>, b: ArrayLike<number>, bound: ArrayLike<number>, tol: number): { excess: number; at: number } => {
  if (a.length !== b.length || a.length !== bound.length) return { excess: Infinity, at: Math.min(a.length, b.length, bound.length) };
  let excess = -Infinity;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!) - tol * bound[i]!;
    // `!(e <= excess)` rather than `e > excess`: NaN compares false both ways and must not be skipped.
    if (Number.isNaN(e)) return { excess: Infinity, at: i };
    if (!(e <= excess)) {
      excess = e;
      at = i;
    }
  }
  return { excess, at };
};

/** Sample mean and unbiased sample variance. */
export const moments = (x: ArrayLike<number>): { mean: number; variance: number; n: number } => {
  const n = x.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i]!;
  const mean = s / n;
  let q = 0;
  for (let i = 0; i < n; i++) q += (x[i]! - mean) ** 2;
  return { mean, variance: q / (n - 1), n };
};
