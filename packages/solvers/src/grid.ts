/**
 * Time grids as values: strictly decreasing arrays of times from T down to a small ε > 0, over which a
 * sampler steps (interval i goes from grid[i] to grid[i + 1]).
 *
 * The σ-based grids (Karras, log-SNR) are spaced in the noise level σ(t) = s(t)/m(t) or the log-SNR
 * λ(t) = −2 log σ(t) and mapped back to t by the closed-form inverse `timeOfNoiseLevel` (sde-math, `noise-level`).
 *
 * @module grid
 */
import { type SDE, noiseLevel, logSnr, timeOfNoiseLevel } from '@score-sde/sde-math';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A strictly decreasing array of times grid[0] = T > … > grid[n] = ε ≥ 0; n intervals. @category model */
export type TimeGrid = ReadonlyArray<number>;

/** Default end time ε of sampling grids (score_sde's `sampling_eps` = 1e-3). @category model */
export const DEFAULT_EPS = 1e-3;

// -------------------------------------------------------------------------------------
// grids
// -------------------------------------------------------------------------------------

const checkArgs = (sde: SDE, n: number, eps: number): void => {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`grid: the number of steps must be an integer ≥ 1, got ${n}`);
  if (!(eps >= 0 && eps < sde.T)) throw new RangeError(`grid: eps must lie in [0, T) = [0, ${sde.T}), got ${eps}`);
};

/** Uniform in t: t_i = T − i (T − ε)/n, i = 0…n. @category grids */
export const uniformGrid = (sde: SDE, n: number, eps: number = DEFAULT_EPS): TimeGrid => {
  checkArgs(sde, n, eps);
  return Array.from({ length: n + 1 }, (_, i) => (i === n ? eps : sde.T - (i * (sde.T - eps)) / n));
};

/** Quadratic in t, denser near ε: t_i = ε + (T − ε)(1 − i/n)², i = 0…n. @category grids */
export const quadraticGrid = (sde: SDE, n: number, eps: number = DEFAULT_EPS): TimeGrid => {
  checkArgs(sde, n, eps);
  return Array.from({ length: n + 1 }, (_, i) => eps + (sde.T - eps) * (1 - i / n) ** 2);
};

/** Maps a decreasing sequence of noise levels to times, pinning the end points to T and ε exactly. */
const gridOfNoiseLevels = (sde: SDE, sigmas: ReadonlyArray<number>, eps: number): TimeGrid =>
  sigmas.map((s, i) => (i === 0 ? sde.T : i === sigmas.length - 1 ? eps : timeOfNoiseLevel(sde, s)));

/**
 * Karras/EDM σ-schedule (Karras et al. 2022, eq. 5): σ_i = (σ_max^{1/ρ} + (i/n)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,
 * i = 0…n, with σ_max = σ(T), σ_min = σ(ε), ρ = 7, mapped to t by {@link timeOfNoiseLevel}.
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import { ve, noiseLevel } from '@score-sde/sde-math';
 * import { karrasGrid } from '@score-sde/solvers';
 *
 * const sde = ve();
 * const grid = karrasGrid(sde, 10, 1e-3); // 11 times from T down to ε
 * assert.strictEqual(grid.length, 11);
 * assert.strictEqual(grid[0], sde.T);
 * assert.strictEqual(grid[10], 1e-3);
 * const u = grid.map((t) => noiseLevel(sde, t) ** (1 / 7)); // uniform in σ^{1/ρ}
 * assert.ok(Math.abs(u[1]! - u[0]! - (u[2]! - u[1]!)) < 1e-9);
 * ```
 * @category grids
 */
export const karrasGrid = (sde: SDE, n: number, eps: number = DEFAULT_EPS, rho = 7): TimeGrid => {
  checkArgs(sde, n, eps);
  if (eps === 0) throw new RangeError('karrasGrid: eps must be > 0 (σ(0) = 0)');
  const a = noiseLevel(sde, sde.T) ** (1 / rho);
  const b = noiseLevel(sde, eps) ** (1 / rho);
  return gridOfNoiseLevels(sde, Array.from({ length: n + 1 }, (_, i) => (a + (i / n) * (b - a)) ** rho), eps);
};

/**
 * Uniform in log-SNR (DPM-Solver's default for few steps, Lu et al. 2022): λ_i = λ(T) + (i/n)(λ(ε) − λ(T)),
 * σ_i = e^{−λ_i/2}, mapped to t by {@link timeOfNoiseLevel}.
 * @category grids
 */
export const logSnrGrid = (sde: SDE, n: number, eps: number = DEFAULT_EPS): TimeGrid => {
  checkArgs(sde, n, eps);
  if (eps === 0) throw new RangeError('logSnrGrid: eps must be > 0 (λ(0) = ∞)');
  const l0 = logSnr(sde, sde.T);
  const l1 = logSnr(sde, eps);
  return gridOfNoiseLevels(sde, Array.from({ length: n + 1 }, (_, i) => Math.exp(-0.5 * (l0 + (i / n) * (l1 - l0)))), eps);
};

/** Whether a grid is strictly decreasing with at least one interval. @category queries */
export const isDecreasing = (grid: TimeGrid): boolean => grid.length >= 2 && grid.every((t, i) => i === 0 || t < grid[i - 1]!);
