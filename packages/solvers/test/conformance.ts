/**
 * The conformance suite as factories (pure-rand style): each property is a function of a sampler case, and the
 * test files apply every property to every case. A case states its step count; each count was chosen so that the
 * sampler's discretisation bias on these mixtures is below the Monte-Carlo error of the test (never by widening a
 * tolerance): see the `why` of each case.
 */
import * as E from 'fp-ts/Either';
import { tf, random, type Key } from '@score-sde/tensor-fp';
import {
  type SDE,
  type GaussianMixture,
  exactScore,
  marginalMixture,
  denoisedMixture,
  posteriorMeanAt,
  mixtureMean,
} from '@score-sde/sde-math';
import {
  type Sampler,
  type SampleResult,
  sample,
  denoises,
  uniformGrid,
  karrasGrid,
  logSnrGrid,
  eulerMaruyama,
  reverseDiffusion,
  ancestralSampling,
  langevin,
  annealedLangevin,
  pc,
  pfEuler,
  pfHeun,
  pfRk4,
  pfAdaptive,
  edmHeun,
  dpmSolverPP2M,
  dpmSolverPP3M,
  adaptiveReverse,
} from '@score-sde/solvers';
import { type Check, mixtureChecks, isotropicMixture, meanAndSE } from './helpers';

/** A sampler under test: how to build it for an SDE (undefined when it does not apply) and why its step count. */
export interface SamplerCase {
  readonly name: string;
  readonly why: string;
  /** The sampler for an SDE, its grid ending at `eps` (default {@link EPS}); undefined when it does not apply. */
  readonly build: (sde: SDE, eps?: number) => Sampler | undefined;
  /**
   * Whether a sample's value is independent of its batch: false for the batch-mean Langevin rule (by design) and
   * for the adaptive solvers (one step size for the whole batch, so the batch changes the steps taken).
   */
  readonly batchInvariant: boolean;
  /** Dimensions the case is checked in (default all). */
  readonly dims?: ReadonlyArray<MixtureName>;
}

/** Names of the test mixtures. */
export type MixtureName = '1-D' | '2-D' | '64-D';

/** End time of the sampling grids. */
export const EPS = 1e-3;

export const samplerCases: ReadonlyArray<SamplerCase> = [
  {
    name: 'euler-maruyama',
    why: 'N = 200 uniform steps',
    build: (sde, eps = EPS) => ({ sde, grid: uniformGrid(sde, 200, eps), step: eulerMaruyama(sde) }),
    batchInvariant: true,
  },
  {
    name: 'reverse-diffusion',
    why: 'N = 1000 (the reference N; the SMLD chain under VE leaves a variance bias of ~6 SE in 64-D at N = 200, ~3 at 500, ~2 at 1000)',
    build: (sde, eps = EPS) => ({ sde, grid: uniformGrid(sde, 1000, eps), step: reverseDiffusion(sde, 1000) }),
    batchInvariant: true,
  },
  {
    name: 'ancestral',
    why: 'N = 500 uniform steps (VP and VE only; ~3 SE variance bias in 64-D VE at N = 200)',
    build: (sde, eps = EPS) => (sde.kind === 'vp' || sde.kind === 've' ? { sde, grid: uniformGrid(sde, 500, eps), step: ancestralSampling(sde) } : undefined),
    batchInvariant: true,
  },
  {
    name: 'pc (corrector-first): langevin (batch-mean, snr 0.16) ▸ reverse-diffusion',
    why: 'N = 200, one corrector step per interval, in the reference order (the reference PC sampler)',
    build: (sde, eps = EPS) => ({ sde, grid: uniformGrid(sde, 200, eps), step: pc(reverseDiffusion(sde, 200), langevin(sde, { norm: 'batch-mean' }), 1, { order: 'corrector-first' }) }),
    batchInvariant: false,
  },
  {
    name: 'pc: euler-maruyama ▸ langevin (per-sample, snr 0.16)',
    why: 'N = 200, one corrector step; per-sample norms, checked in 64-D only (in 1-D/2-D the per-sample rule is ill-posed: ‖s‖ → 0 at a mode makes ε blow up, and it fails by 10–25 SE)',
    build: (sde, eps = EPS) => ({ sde, grid: uniformGrid(sde, 200, eps), step: pc(eulerMaruyama(sde), langevin(sde, { norm: 'per-sample' }), 1) }),
    batchInvariant: true,
    dims: ['64-D'],
  },
  {
    name: 'pc (corrector-first): annealed-langevin ▸ euler-maruyama',
    why: 'N = 200, one annealed Langevin step (snr 0.16) before each predictor step, the reference order',
    build: (sde, eps = EPS) => ({ sde, grid: uniformGrid(sde, 200, eps), step: pc(eulerMaruyama(sde), annealedLangevin(sde), 1, { order: 'corrector-first' }) }),
    batchInvariant: true,
  },
  {
    name: 'pf-ode euler',
    why: 'N = 2000 Karras steps (first order: under VE the variance bias in 64-D is ~4.7 SE at N = 500, ~2.5 at 1000, ~1.3 at 2000)',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 2000, eps), step: pfEuler(sde) }),
    batchInvariant: true,
  },
  {
    name: 'pf-ode heun',
    why: 'N = 100 Karras steps (second order; ~2.7 SE variance bias in 64-D VE at N = 50)',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 100, eps), step: pfHeun(sde) }),
    batchInvariant: true,
  },
  {
    name: 'pf-ode rk4',
    why: 'N = 25 Karras steps (fourth order)',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 25, eps), step: pfRk4(sde) }),
    batchInvariant: true,
  },
  {
    name: 'pf-ode dopri5 (rtol = atol = 1e-5)',
    why: 'adaptive over [T, ε]',
    build: (sde, eps = EPS) => ({ sde, grid: uniformGrid(sde, 1, eps), step: pfAdaptive(sde) }),
    batchInvariant: false,
  },
  {
    name: 'edm heun',
    why: 'N = 100 Karras steps, deterministic (the variance bias in 64-D is ~4 SE at N = 30, ~2 at 50)',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 100, eps), step: edmHeun(sde) }),
    batchInvariant: true,
  },
  {
    name: 'edm heun with churn (γ = 0.1)',
    why: 'N = 60 Karras steps, stochastic churn on every step',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 60, eps), step: edmHeun(sde, { gamma: 0.1 }) }),
    batchInvariant: true,
  },
  {
    name: 'dpm-solver++(2M)',
    why: 'N = 100 log-SNR-uniform steps (~3 SE variance bias in 64-D sub-VP at N = 30, ~1.8 at 50)',
    build: (sde, eps = EPS) => ({ sde, grid: logSnrGrid(sde, 100, eps), step: dpmSolverPP2M(sde) }),
    batchInvariant: true,
  },
  {
    name: 'dpm-solver++(2M) SDE (η = 1)',
    why: 'N = 100 Karras steps, the noise of every step re-drawn',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 100, eps), step: dpmSolverPP2M(sde, { eta: 1 }) }),
    batchInvariant: true,
  },
  {
    name: 'dpm-solver++(2M) SDE (η = 3)',
    why: 'N = 100 Karras steps of the reverse SDE with triple noise variance (the same marginals as η = 1)',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 100, eps), step: dpmSolverPP2M(sde, { eta: 3 }) }),
    batchInvariant: true,
  },
  {
    name: 'dpm-solver++(2M) SDE (η = 3 for σ ≥ 0.5)',
    why: 'N = 100 Karras steps, stochastic above σ = 0.5 and the probability-flow steps below (every η keeps the marginals)',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 100, eps), step: dpmSolverPP2M(sde, { eta: 3, sMin: 0.5 }) }),
    batchInvariant: true,
  },
  {
    name: 'dpm-solver++(3M)',
    why: 'N = 100 log-SNR-uniform steps, the third-order multistep form',
    build: (sde, eps = EPS) => ({ sde, grid: logSnrGrid(sde, 100, eps), step: dpmSolverPP3M(sde) }),
    batchInvariant: true,
  },
  {
    name: 'dpm-solver++(3M) SDE (η = 1)',
    why: 'N = 100 Karras steps, the noise of every step re-drawn',
    build: (sde, eps = EPS) => ({ sde, grid: karrasGrid(sde, 100, eps), step: dpmSolverPP3M(sde, { eta: 1 }) }),
    batchInvariant: true,
  },
  {
    name: 'adaptive reverse SDE (PI controller, rtol = atol = 1e-2)',
    why: 'adaptive over [T, ε]',
    build: (sde, eps = EPS) => ({ sde, grid: uniformGrid(sde, 1, eps), step: adaptiveReverse(sde) }),
    batchInvariant: false,
  },
  {
    name: 'adaptive probability-flow ODE (heun–euler, I controller, rtol = atol = 1e-2)',
    why: 'adaptive over [T, ε]',
    build: (sde, eps = EPS) => ({ sde, grid: uniformGrid(sde, 1, eps), step: adaptiveReverse(sde, { probabilityFlow: true }) }),
    batchInvariant: false,
  },
];

/** Test mixtures: 1-D and 2-D with three components, 64-D with two. */
export const mixtures: Record<MixtureName, GaussianMixture> = {
  '1-D': { weights: [0.2, 0.5, 0.3], means: [[-3], [0], [2.5]], stds: [[0.4], [0.6], [0.3]] },
  '2-D': {
    weights: [0.5, 0.3, 0.2],
    means: [
      [-2, 1],
      [2, 2],
      [0, -2.5],
    ],
    stds: [
      [0.5, 0.8],
      [0.4, 0.4],
      [0.7, 0.3],
    ],
  },
  '64-D': isotropicMixture([0.4, 0.6], [-1, 1], [0.5, 0.8], 64),
};

/** Runs a sampler with the exact score of m under sde; throws on a Left. */
export const runExact = async (sampler: Sampler, m: GaussianMixture, keys: ReadonlyArray<Key>): Promise<SampleResult> => {
  const r = await sample(sampler, exactScore(sampler.sde, m), { keys, sampleShape: [m.means[0]!.length] })();
  if (E.isLeft(r)) throw new Error(`sampler failed: ${JSON.stringify(r.left)}`);
  return r.right;
};

/**
 * Property: the sampler's output matches its exact target in component weights, per-component means and variances,
 * each within 5 standard errors: the marginal p_ε of the mixture for a sampler that stops at ε (`final: none`), or,
 * for a sampler that denoises, the law of Tweedie's denoiser E[x₀ | x_ε] under p_ε ({@link denoisedMixture}: exact
 * for separated components).
 */
export const recoversMixture = async (
  sampler: Sampler,
  m: GaussianMixture,
  n: number,
  seed: number,
  opts: { perCoordinate?: boolean } = {},
): Promise<{ checks: ReadonlyArray<Check>; nfe: number }> => {
  const r = await runExact(sampler, m, random.split(random.key(seed), n));
  const eps = sampler.grid[sampler.grid.length - 1]!;
  const target = denoises(sampler) ? denoisedMixture(sampler.sde, m, eps) : marginalMixture(sampler.sde, m, eps);
  const checks = mixtureChecks(target, r.x, opts);
  r.x.dispose();
  return { checks, nfe: r.nfe };
};

/** Property: the same keys give bit-identical samples. */
export const sameKeysSameSamples = async (sampler: Sampler, m: GaussianMixture, keys: ReadonlyArray<Key>): Promise<boolean> => {
  const a = await runExact(sampler, m, keys);
  const b = await runExact(sampler, m, keys);
  const same = tf.tidy(() => tf.all(tf.equal(a.x, b.x)).dataSync()[0] === 1);
  tf.dispose([a.x, b.x]);
  return same;
};

/** Property: sample i of a batch equals the sample drawn alone with keys[i]: returns the largest |difference|. */
export const batchOfOneDifference = async (sampler: Sampler, m: GaussianMixture, keys: ReadonlyArray<Key>, i: number): Promise<number> => {
  const a = await runExact(sampler, m, keys);
  const b = await runExact(sampler, m, [keys[i]!]);
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(a.x, [i, 0], [1, -1]), b.x))).dataSync()[0]!);
  tf.dispose([a.x, b.x]);
  return d;
};

// -------------------------------------------------------------------------------------
// the denoised endpoint
// -------------------------------------------------------------------------------------

/**
 * Property (tower rule): the denoised output has exactly the data mean, E[E[x₀ | x_ε]] = E[x₀] = Σ_k w_k μ_k, for
 * every mixture, overlapping or not. Checked coordinate-averaged (and per coordinate in low dimension), each
 * within 5 standard errors of its sample mean.
 */
export const denoisedMeanIsDataMean = (m: GaussianMixture, x: tf.Tensor, perCoordinate: boolean): ReadonlyArray<Check> => {
  const D = m.means[0]!.length;
  const data = x.dataSync();
  const n = data.length / D;
  const mu = mixtureMean(m);
  const row = (b: number, j: number): number => data[b * D + j]!;
  const avg = meanAndSE(Array.from({ length: n }, (_, b) => Array.from({ length: D }, (_, j) => row(b, j) - mu[j]!).reduce((a, c) => a + c, 0) / D));
  const checks: Check[] = [{ name: 'mean − data mean (avg over coords)', estimate: avg.mean, target: 0, se: avg.se }];
  if (perCoordinate)
    for (let j = 0; j < D; j++) {
      const { mean, se } = meanAndSE(Array.from({ length: n }, (_, b) => row(b, j)));
      checks.push({ name: `mean[${j}]`, estimate: mean, target: mu[j]!, se });
    }
  return checks;
};

/**
 * Expectations under the exact law of the denoised output in one dimension: E[g(x̂₀(X))], X ~ p_ε, x̂₀ the exact
 * Tweedie map (`posteriorMeanAt`, the responsibility-weighted mix of the components' affine maps), by the trapezoid
 * rule on a grid of 40,001 points over ±12 marginal standard deviations around the components (the tails beyond
 * hold < 1e-30 of the mass; the integrand is smooth, so the rule's error is far below the Monte-Carlo error).
 */
export const denoisedExpectation1D = (sde: SDE, m: GaussianMixture, eps: number, g: (y: number) => number): number => {
  const pe = marginalMixture(sde, m, eps);
  const lo = Math.min(...pe.means.map((mu, k) => mu[0]! - 12 * pe.stds[k]![0]!));
  const hi = Math.max(...pe.means.map((mu, k) => mu[0]! + 12 * pe.stds[k]![0]!));
  const N = 40000;
  const h = (hi - lo) / N;
  const denoise = posteriorMeanAt(sde, m);
  let acc = 0;
  for (let i = 0; i <= N; i++) {
    const x = lo + i * h;
    const density = pe.weights.reduce((a, w, k) => a + (w * Math.exp(-0.5 * ((x - pe.means[k]![0]!) / pe.stds[k]![0]!) ** 2)) / (pe.stds[k]![0]! * Math.sqrt(2 * Math.PI)), 0);
    acc += (i === 0 || i === N ? 0.5 : 1) * density * g(denoise([x], eps)[0]!);
  }
  return acc * h;
};

/**
 * Property: in 1-D the denoised output's moments and CDF match the exact law of E[x₀ | x_ε] under p_ε, components
 * overlapping (computed numerically by {@link denoisedExpectation1D}): E[y], E[y²] and P(y < c) at the midpoints c
 * between neighbouring component means, each a sample mean within 5 standard errors of its exact value.
 */
export const denoisedLaw1D = (sde: SDE, m: GaussianMixture, eps: number, x: tf.Tensor): ReadonlyArray<Check> => {
  const y = Array.from(x.dataSync());
  const means = m.means.map((mu) => mu[0]!).sort((a, b) => a - b);
  const cuts = means.slice(1).map((mu, i) => (mu + means[i]!) / 2);
  const fns: ReadonlyArray<readonly [string, (v: number) => number]> = [
    ['E[y]', (v) => v],
    ['E[y²]', (v) => v * v],
    ...cuts.map((c) => [`P(y < ${c})`, (v: number) => (v < c ? 1 : 0)] as const),
  ];
  return fns.map(([name, g]) => {
    const { mean, se } = meanAndSE(y.map(g));
    return { name, estimate: mean, target: denoisedExpectation1D(sde, m, eps, g), se };
  });
};
