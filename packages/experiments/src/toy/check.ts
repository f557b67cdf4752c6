/**
 * What a toy run's samples are checked against, on any host (the `experiments:toy` command and the web playground):
 * the exact target of a sampler on a Gaussian mixture with its exact score, and the checks that its samples follow it,
 * each an estimate, its target and a standard error, to hold within a few standard errors.
 *
 * The target: p_ε (the mixture's marginal at the grid's end time ε) pushed through the exact Tweedie denoiser
 * x ↦ E[x₀ | x_ε = x] when the sampler denoises (the default), p_ε itself with `"denoise": false`. Its mean is exact
 * in closed form (E E[x₀ | x_ε] = E x₀, the data's mean; or the marginal's mean), and exact samples of it are drawn
 * from the mixture at ε (and denoised exactly).
 *
 * @module toy/check
 */
import { random, type Key } from '@score-sde/tensor-fp';
import {
  type GaussianMixture,
  type SDE,
  marginalMixture,
  denoisedMixture,
  posteriorMeanAt,
  mixtureDim,
  mixtureMean,
  sampleMixtureAt,
  componentPosteriorAt,
  meanAndStandardError,
  energyDistance,
} from '@score-sde/sde-math';
import { type Sampler, denoises } from '@score-sde/solvers';

// -------------------------------------------------------------------------------------
// the target
// -------------------------------------------------------------------------------------

/**
 * The key streams of a toy run with `seed`: [sampler, reference, likelihood] = split(key(seed), 3); sample i of the
 * sampler uses split(sampler, n)[i], so the command and the playground draw the same samples for the same spec.
 * @category target
 */
export const toyKeys = (seed: number): { readonly sampler: Key; readonly reference: Key; readonly likelihood: Key } => {
  const [a, b, c] = random.split(random.key(seed), 3);
  return { sampler: a!, reference: b!, likelihood: c! };
};

/**
 * The exact target of a sampler on a mixture: its end time ε, whether it denoises, the mixture whose responsibilities
 * sort samples into components (`denoisedMixture` or `marginalMixture` at ε), the exact mean, and exact samples.
 * @category target
 */
export interface ToyTarget {
  readonly eps: number;
  readonly denoised: boolean;
  readonly components: GaussianMixture;
  readonly mean: Float64Array;
  /** One exact sample of the target per key, row-major [n, D]. */
  readonly reference: (keys: ReadonlyArray<Key>) => Float64Array;
}

/** Each D-row of a row-major [B, D] array mapped by f. */
const mapRows = (x: Float64Array, D: number, f: (row: Float64Array) => Float64Array): Float64Array => {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i += D) out.set(f(x.subarray(i, i + D)), i);
  return out;
};

/** The target of `sampler` run with the exact score of the mixture `m` under `sde` (module comment). @category target */
export const toyTarget = (sde: SDE, m: GaussianMixture, sampler: Sampler): ToyTarget => {
  const eps = sampler.grid[sampler.grid.length - 1]!;
  const denoised = denoises(sampler);
  const atEps = marginalMixture(sde, m, eps);
  const D = mixtureDim(m);
  return {
    eps,
    denoised,
    components: denoised ? denoisedMixture(sde, m, eps) : atEps,
    mean: mixtureMean(denoised ? m : atEps),
    reference: (keys) => {
      const x = sampleMixtureAt(atEps)(keys).x;
      return denoised ? mapRows(x, D, (row) => posteriorMeanAt(sde, m)(row, eps)) : x;
    },
  };
};

// -------------------------------------------------------------------------------------
// checks
// -------------------------------------------------------------------------------------

/** One check: an estimate from the samples, its target, and the standard error of their difference. @category checks */
export interface ConformanceCheck {
  readonly name: string;
  readonly estimate: number;
  readonly target: number;
  readonly standardError: number;
}

/** |estimate − target| / standard error: how many standard errors a check is off (NaN when any part is). @category checks */
export const standardErrorsOff = (c: ConformanceCheck): number => Math.abs(c.estimate - c.target) / c.standardError;

/** Whether a check holds within k standard errors (never when it is NaN or its standard error is not positive). @category checks */
export const holdsWithin = (k: number) => (c: ConformanceCheck): boolean => c.standardError > 0 && standardErrorsOff(c) <= k;

/** Two sample means compared: the estimate is ā, the target b̄, the standard error √(SE_a² + SE_b²). */
const twoSample = (name: string, a: ArrayLike<number>, b: ArrayLike<number>): ConformanceCheck => {
  const x = meanAndStandardError(a);
  const y = meanAndStandardError(b);
  return { name, estimate: x.mean, target: y.mean, standardError: Math.hypot(x.standardError, y.standardError) };
};

/** Column j of row-major [n, D] values, mapped by f. */
const column = (x: Float64Array, D: number, j: number, f: (v: number) => number = (v) => v): Float64Array => Float64Array.from({ length: x.length / D }, (_, i) => f(x[i * D + j]!));

/**
 * The checks that samples x (row-major [n, D]) follow the target, given as many exact samples of it (`reference`):
 * - `fraction k`: the mean responsibility of component k over x against the same over the reference (two-sample: both
 *   estimate w_k under the target; the responsibilities are those of `target.components`);
 * - `mean j`: the mean of coordinate j against the exact mean (one-sample, SE = s/√n);
 * - `second moment j`: the mean of (x_j − mean_j)² against the same over the reference (two-sample);
 * - `energy distance`: the energy distance between x and the reference against 0, with its jackknife SE.
 * @category checks
 */
export const conformanceChecks = (target: ToyTarget, x: Float64Array, reference: Float64Array, D: number): ReadonlyArray<ConformanceCheck> => {
  const post = componentPosteriorAt(target.components);
  const responsibilities = (y: Float64Array): ReadonlyArray<Float64Array> => {
    const n = y.length / D;
    const r = target.components.weights.map(() => new Float64Array(n));
    for (let i = 0; i < n; i++) post(y.subarray(i * D, (i + 1) * D)).forEach((v, k) => (r[k]![i] = v));
    return r;
  };
  const rx = responsibilities(x);
  const ry = responsibilities(reference);
  const ed = energyDistance(x, reference, D);
  return [
    ...rx.map((r, k) => twoSample(`fraction ${k}`, r, ry[k]!)),
    ...Array.from({ length: D }, (_, j) => {
      const m = meanAndStandardError(column(x, D, j));
      return { name: `mean ${j}`, estimate: m.mean, target: target.mean[j]!, standardError: m.standardError };
    }),
    ...Array.from({ length: D }, (_, j) => {
      const sq = (v: number): number => (v - target.mean[j]!) ** 2;
      return twoSample(`second moment ${j}`, column(x, D, j, sq), column(reference, D, j, sq));
    }),
    { name: 'energy distance', estimate: ed.estimate, target: 0, standardError: ed.standardError },
  ];
};
