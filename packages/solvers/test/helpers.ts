/**
 * Statistics shared by the solver tests: per-component moment checks of samples against a Gaussian mixture,
 * each with the standard error of its Monte-Carlo estimate.
 */
import { tf } from '@score-sde/tensor-fp';
import { type GaussianMixture, componentPosteriorAt, mixtureDim, meanAndStandardError } from '@score-sde/sde-math';

/** One Monte-Carlo check: an estimate, the value it must match, and the estimate's standard error. */
export interface Check {
  readonly name: string;
  readonly estimate: number;
  readonly target: number;
  readonly se: number;
}

/** Mean and standard error (sd/√n) of per-sample values (sde-math's `meanAndStandardError`). */
export const meanAndSE = (v: ArrayLike<number>): { mean: number; se: number } => {
  const { mean, standardError } = meanAndStandardError(v);
  return { mean, se: standardError };
};

const check = (name: string, values: ArrayLike<number>, target: number): Check => {
  const { mean, se } = meanAndSE(values);
  return { name, estimate: mean, target, se };
};

/**
 * Per-component checks of samples x [n, D] against the mixture m, through the responsibilities r_k(x) = p(k | x)
 * of m itself. For x ~ m these identities are exact (E[r_k(x) g(x)] = w_k E_k[g]), whatever the overlap:
 *   E[r_k] = w_k,   E[r_k (x_j − μ_kj)] = 0,   E[r_k ((x_j − μ_kj)² − s_kj²)] = 0;
 * each estimate is a plain mean over samples, so its standard error is sd/√n. `perCoordinate` adds the mean and
 * variance checks of every coordinate; otherwise (and always) the coordinate-averaged ones are checked, which have
 * a √D smaller error and so detect a small bias shared by all coordinates.
 */
export const mixtureChecks = (m: GaussianMixture, x: tf.Tensor, opts: { perCoordinate?: boolean } = {}): ReadonlyArray<Check> => {
  const D = mixtureDim(m);
  const data = x.dataSync();
  const n = data.length / D;
  const K = m.weights.length;
  const post = Array.from({ length: n }, (_, b) => componentPosteriorAt(m)(Array.from(data.subarray(b * D, (b + 1) * D))));
  const out: Check[] = [];
  for (let k = 0; k < K; k++) {
    // A component whose weight is below 1e-9 has no sample of n ≤ 10⁴ in it: its checks would compare numbers
    // below float32 resolution of the samples (responsibilities ~1e-50), so they are left out.
    if (m.weights[k]! < 1e-9) continue;
    const mu = m.means[k]!;
    const sd = m.stds[k]!;
    const r = post.map((p) => p[k]!);
    out.push(check(`weight[${k}]`, r, m.weights[k]!));
    const dev = (b: number, j: number): number => data[b * D + j]! - mu[j]!;
    out.push(check(`mean[${k}] (avg over coords)`, r.map((rb, b) => (rb * Array.from({ length: D }, (_, j) => dev(b, j)).reduce((a, c) => a + c, 0)) / D), 0));
    out.push(
      check(`var[${k}] (avg over coords)`, r.map((rb, b) => (rb * Array.from({ length: D }, (_, j) => dev(b, j) ** 2 - sd[j]! ** 2).reduce((a, c) => a + c, 0)) / D), 0),
    );
    if (opts.perCoordinate === true) {
      for (let j = 0; j < D; j++) {
        out.push(check(`mean[${k}][${j}]`, r.map((rb, b) => rb * dev(b, j)), 0));
        out.push(check(`var[${k}][${j}]`, r.map((rb, b) => rb * (dev(b, j) ** 2 - sd[j]! ** 2)), 0));
      }
    }
  }
  return out;
};

/** The checks whose estimate is more than `z` standard errors from its target (empty when all pass). */
export const failures = (checks: ReadonlyArray<Check>, z = 5): ReadonlyArray<string> =>
  checks
    .filter((c) => !(Math.abs(c.estimate - c.target) <= z * c.se))
    .map((c) => `${c.name}: estimate ${c.estimate.toPrecision(4)}, target ${c.target.toPrecision(4)}, ${(Math.abs(c.estimate - c.target) / c.se).toFixed(1)} SE`);

/** A mixture with the same mean and std in every coordinate of each component (for 64-D cases). */
export const isotropicMixture = (weights: ReadonlyArray<number>, means: ReadonlyArray<number>, stds: ReadonlyArray<number>, D: number): GaussianMixture => ({
  weights,
  means: means.map((mu) => new Array<number>(D).fill(mu)),
  stds: stds.map((s) => new Array<number>(D).fill(s)),
});
