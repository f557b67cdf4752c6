/**
 * The conformance suite as factories (pure-rand style): each property is a function of a sampler case, and the
 * test files apply every property to every case. A case states its step count; each count was chosen so that the
 * sampler's discretisation bias on these mixtures is below the Monte-Carlo error of the test (never by widening a
 * tolerance): see the `why` of each case.
 */
import * as E from 'fp-ts/Either';
import { tf, random, type Key } from '@score-sde/tensor-fp';
import { type SDE, type GaussianMixture, exactScore, marginalMixture } from '@score-sde/sde-math';
import {
  type Sampler,
  type SampleResult,
  sample,
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
  adaptiveReverse,
} from '@score-sde/solvers';
import { type Check, mixtureChecks, isotropicMixture } from './helpers';

/** A sampler under test: how to build it for an SDE (undefined when it does not apply) and why its step count. */
export interface SamplerCase {
  readonly name: string;
  readonly why: string;
  readonly build: (sde: SDE) => Sampler | undefined;
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
    build: (sde) => ({ sde, grid: uniformGrid(sde, 200, EPS), step: eulerMaruyama(sde) }),
    batchInvariant: true,
  },
  {
    name: 'reverse-diffusion',
    why: 'N = 1000 (the reference N; the SMLD chain under VE leaves a variance bias of ~6 SE in 64-D at N = 200, ~3 at 500, ~2 at 1000)',
    build: (sde) => ({ sde, grid: uniformGrid(sde, 1000, EPS), step: reverseDiffusion(sde, 1000) }),
    batchInvariant: true,
  },
  {
    name: 'ancestral',
    why: 'N = 500 uniform steps (VP and VE only; ~3 SE variance bias in 64-D VE at N = 200)',
    build: (sde) => (sde.kind === 'vp' || sde.kind === 've' ? { sde, grid: uniformGrid(sde, 500, EPS), step: ancestralSampling(sde) } : undefined),
    batchInvariant: true,
  },
  {
    name: 'pc (corrector-first): langevin (batch-mean, snr 0.16) ▸ reverse-diffusion',
    why: 'N = 200, one corrector step per interval, in the reference order (the reference PC sampler)',
    build: (sde) => ({ sde, grid: uniformGrid(sde, 200, EPS), step: pc(reverseDiffusion(sde, 200), langevin(sde, { norm: 'batch-mean' }), 1, { order: 'corrector-first' }) }),
    batchInvariant: false,
  },
  {
    name: 'pc: euler-maruyama ▸ langevin (per-sample, snr 0.16)',
    why: 'N = 200, one corrector step; per-sample norms, checked in 64-D only (in 1-D/2-D the per-sample rule is ill-posed: ‖s‖ → 0 at a mode makes ε blow up, and it fails by 10–25 SE)',
    build: (sde) => ({ sde, grid: uniformGrid(sde, 200, EPS), step: pc(eulerMaruyama(sde), langevin(sde, { norm: 'per-sample' }), 1) }),
    batchInvariant: true,
    dims: ['64-D'],
  },
  {
    name: 'pc (corrector-first): annealed-langevin ▸ euler-maruyama',
    why: 'N = 200, one annealed Langevin step (snr 0.16) before each predictor step, the reference order',
    build: (sde) => ({ sde, grid: uniformGrid(sde, 200, EPS), step: pc(eulerMaruyama(sde), annealedLangevin(sde), 1, { order: 'corrector-first' }) }),
    batchInvariant: true,
  },
  {
    name: 'pf-ode euler',
    why: 'N = 2000 Karras steps (first order: under VE the variance bias in 64-D is ~4.7 SE at N = 500, ~2.5 at 1000, ~1.3 at 2000)',
    build: (sde) => ({ sde, grid: karrasGrid(sde, 2000, EPS), step: pfEuler(sde) }),
    batchInvariant: true,
  },
  {
    name: 'pf-ode heun',
    why: 'N = 100 Karras steps (second order; ~2.7 SE variance bias in 64-D VE at N = 50)',
    build: (sde) => ({ sde, grid: karrasGrid(sde, 100, EPS), step: pfHeun(sde) }),
    batchInvariant: true,
  },
  {
    name: 'pf-ode rk4',
    why: 'N = 25 Karras steps (fourth order)',
    build: (sde) => ({ sde, grid: karrasGrid(sde, 25, EPS), step: pfRk4(sde) }),
    batchInvariant: true,
  },
  {
    name: 'pf-ode dopri5 (rtol = atol = 1e-5)',
    why: 'adaptive over [T, ε]',
    build: (sde) => ({ sde, grid: uniformGrid(sde, 1, EPS), step: pfAdaptive(sde) }),
    batchInvariant: false,
  },
  {
    name: 'edm heun',
    why: 'N = 100 Karras steps, deterministic (the variance bias in 64-D is ~4 SE at N = 30, ~2 at 50)',
    build: (sde) => ({ sde, grid: karrasGrid(sde, 100, EPS), step: edmHeun(sde) }),
    batchInvariant: true,
  },
  {
    name: 'edm heun with churn (γ = 0.1)',
    why: 'N = 60 Karras steps, stochastic churn on every step',
    build: (sde) => ({ sde, grid: karrasGrid(sde, 60, EPS), step: edmHeun(sde, { gamma: 0.1 }) }),
    batchInvariant: true,
  },
  {
    name: 'dpm-solver++(2M)',
    why: 'N = 100 log-SNR-uniform steps (~3 SE variance bias in 64-D sub-VP at N = 30, ~1.8 at 50)',
    build: (sde) => ({ sde, grid: logSnrGrid(sde, 100, EPS), step: dpmSolverPP2M(sde) }),
    batchInvariant: true,
  },
  {
    name: 'adaptive reverse SDE (PI controller, rtol = atol = 1e-2)',
    why: 'adaptive over [T, ε]',
    build: (sde) => ({ sde, grid: uniformGrid(sde, 1, EPS), step: adaptiveReverse(sde) }),
    batchInvariant: false,
  },
  {
    name: 'adaptive probability-flow ODE (heun–euler, I controller, rtol = atol = 1e-2)',
    why: 'adaptive over [T, ε]',
    build: (sde) => ({ sde, grid: uniformGrid(sde, 1, EPS), step: adaptiveReverse(sde, { probabilityFlow: true }) }),
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
 * Property: the sampler's output matches the exact marginal p_ε of the mixture (the target of a sampler that ends
 * at ε) in component weights, per-component means and variances, each within 5 standard errors.
 */
export const recoversMixture = async (
  sampler: Sampler,
  m: GaussianMixture,
  n: number,
  seed: number,
  opts: { perCoordinate?: boolean } = {},
): Promise<{ checks: ReadonlyArray<Check>; nfe: number }> => {
  const r = await runExact(sampler, m, random.split(random.key(seed), n));
  const target = marginalMixture(sampler.sde, m, sampler.grid[sampler.grid.length - 1]!);
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
