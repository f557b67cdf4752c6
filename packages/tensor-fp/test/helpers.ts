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

// -------------------------------------------------------------------------------------
// bit-exact comparisons of the fused kernels
// -------------------------------------------------------------------------------------

/**
 * Opts a test file in to the threaded wasm build (Jest keeps the single-threaded one otherwise): sets
 * `SCORE_SDE_WASM_THREADS` = 2 for the file's `initBackend` (call it before that, at the top of the file) and restores
 * the previous value after the file.
 */
export const useThreadedBuild = (): void => {
  const requested = process.env['SCORE_SDE_WASM_THREADS'];
  process.env['SCORE_SDE_WASM_THREADS'] = '2';
  afterAll(() => {
    if (requested === undefined) delete process.env['SCORE_SDE_WASM_THREADS'];
    else process.env['SCORE_SDE_WASM_THREADS'] = requested;
  });
};

const SPECIALS = [NaN, Infinity, -Infinity, -0, 1e-40, 3e38];

/** n float32 values from a seed, 4 sin(2.3 seed + 0.77 i); with `special`, every 17th or so a NaN, ±∞, −0, subnormal or near-max. */
export const seededValues = (n: number, seed: number, special: boolean): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => (special && (i * 13 + seed) % 17 === 0 ? SPECIALS[(i + seed) % SPECIALS.length]! : Math.sin(seed * 2.3 + i * 0.77) * 4));

/** The float32 bit patterns of values. */
export const float32Bits = (x: ArrayLike<number>): number[] => Array.from(new Uint32Array(Float32Array.from(x).buffer));

/**
 * Bits with every NaN as the one quiet NaN 0x7fc00000: WebAssembly leaves a computed NaN's sign and payload
 * nondeterministic (V8 may swap the operands of a commutative x86 instruction, which picks whose NaN survives), and
 * JavaScript has a single NaN. Every other value is compared bit for bit.
 */
export const canonicalNaN = (xs: ReadonlyArray<number>): number[] => xs.map((x) => ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0 ? 0x7fc00000 : x));

/**
 * The first index where two arrays differ (−1: none; the shorter length if the lengths differ): compared this way, a
 * failure on a million-element output prints one number, not the arrays.
 */
export const firstDifference = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
};
