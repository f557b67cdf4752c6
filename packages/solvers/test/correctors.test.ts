/**
 * Correctors leave the exact p_t invariant: started from exact samples of p_t and run at fixed t with a small step,
 * the samples still match p_t (weights, per-component means and variances within 5 SE), and they did move.
 */
import { tf, initBackend, random, liveTensors } from '@score-sde/tensor-fp';
import { type SDE, vp, ve, exactScore, marginalMixture, sampleMixture, type GaussianMixture } from '@score-sde/sde-math';
import { type Step, langevin, annealedLangevin, repeat, stateAt, releaseReplaced, disposeState } from '@score-sde/solvers';
import { mixtures } from './conformance';
import { type Check, mixtureChecks } from './helpers';
import { identity } from '@score-sde/tensor-fp/testing';

const invariance = identity({
  concept: 'steps',
  title: 'Correctors leave the exact p_t invariant',
  formula: String.raw`$x \sim p_t \Rightarrow x + \epsilon \nabla \log p_t(x) + \sqrt{2\epsilon}\, z \sim p_t$ (up to the $O(\epsilon)$ bias of unadjusted Langevin), 50 steps at $t = 0.5$`,
  source: 'p_t is the stationary law of Langevin dynamics with its score (Song et al. 2021, Alg. 4/5 correctors; Song & Ermon 2019 annealed Langevin)',
  tolerance: 'Monte-Carlo: weights, per-coordinate means and variances within 5 SE; snr 0.1 makes the Langevin variance bias ≈ 1 % (a fifth of the SE); the samples must also move (mean squared move > 0.1 Var)',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

// At t = 0.5 the kernel's s(t) is comparable to the data's spread under both SDEs, so annealed Langevin (whose step
// follows s(t)) moves the samples appreciably too.
const T_FIXED = 0.5;

/** Runs K corrector steps at t from exact samples of p_t; returns the checks against p_t and the mean squared move. */
const runAtFixedTime = (sde: SDE, m: GaussianMixture, corrector: Step, K: number, n: number): { checks: ReadonlyArray<Check>; moved: number; variance: number } => {
  const pt = marginalMixture(sde, m, T_FIXED);
  const keys = random.split(random.key(99), n);
  const before = liveTensors();
  const { x } = sampleMixture(pt)(keys.map((k) => random.foldIn(k, 1)));
  const s0 = stateAt(x, T_FIXED, keys);
  const s1 = repeat(corrector, K).step(exactScore(sde, m), s0, T_FIXED);
  const checks = mixtureChecks(pt, s1.x, { perCoordinate: true });
  const moved = tf.tidy(() => tf.mean(tf.sum(tf.square(tf.sub(s1.x, x)), 1)).dataSync()[0]!);
  const D = m.means[0]!.length;
  const variance = pt.stds.reduce((a, row, k) => a + pt.weights[k]! * row.reduce((b, s) => b + s * s, 0), 0) / D;
  releaseReplaced(s0, s1);
  disposeState(s1);
  expect(liveTensors()).toBe(before);
  return { checks, moved: moved / D, variance };
};

// snr 0.1 gives ε ≈ 2(0.1)²‖z‖²/‖s‖² ≈ 0.02 σ_t² per step, so the unadjusted Langevin bias on the variance is a factor
// 1/(1 − ε/(2σ²)) ≈ 1.01 — a fifth of the standard error of the variance checks at these sample sizes; 50 steps diffuse
// each sample by 2·50·ε ≈ 2σ², far enough to forget its start.
test.each([
  ['VP', 'langevin (batch-mean)', '2-D', vp(), (sde: SDE) => langevin(sde, { snr: 0.1, norm: 'batch-mean' }), 2000],
  ['VE', 'langevin (batch-mean)', '2-D', ve(), (sde: SDE) => langevin(sde, { snr: 0.1, norm: 'batch-mean' }), 2000],
  ['VP', 'langevin (per-sample)', '64-D', vp(), (sde: SDE) => langevin(sde, { snr: 0.1, norm: 'per-sample' }), 256],
  ['VE', 'langevin (per-sample)', '64-D', ve(), (sde: SDE) => langevin(sde, { snr: 0.1, norm: 'per-sample' }), 256],
  ['VP', 'annealed langevin', '2-D', vp(), (sde: SDE) => annealedLangevin(sde, { snr: 0.1 }), 2000],
  ['VE', 'annealed langevin', '2-D', ve(), (sde: SDE) => annealedLangevin(sde, { snr: 0.1 }), 2000],
] as const)('%s, %s on the %s mixture: 50 small steps leave the exact p_t invariant (5 SE) and move the samples', (label, name, dim, sde, make, n) => {
  const { checks, moved, variance } = runAtFixedTime(sde, mixtures[dim], make(sde), 50, n);
  invariance.allWithinSE(checks, 5, { corrector: name, SDE: label, distribution: dim });
  // Not a no-op: the mean squared move per coordinate is a sizeable fraction of p_t's variance.
  expect(moved).toBeGreaterThan(0.1 * variance);
});
