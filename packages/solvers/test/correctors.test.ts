/**
 * Correctors leave the exact p_t invariant: started from exact samples of p_t and run at fixed t with a small step,
 * the samples still match p_t (weights, per-component means and variances within 5 SE), and they did move.
 */
import { tf, initBackend, random, liveTensors } from '@score-sde/tensor-fp';
import { type SDE, vp, ve, exactScore, marginalMixture, sampleMixture, type GaussianMixture } from '@score-sde/sde-math';
import { type Step, langevin, annealedLangevin, repeat, stateAt, releaseReplaced, disposeState } from '@score-sde/solvers';
import { mixtures } from './conformance';
import { mixtureChecks, failures } from './helpers';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

// At t = 0.5 the kernel's s(t) is comparable to the data's spread under both SDEs, so annealed Langevin (whose step
// follows s(t)) moves the samples appreciably too.
const T_FIXED = 0.5;

/** Runs K corrector steps at t from exact samples of p_t; returns the checks against p_t and the mean squared move. */
const runAtFixedTime = (sde: SDE, m: GaussianMixture, corrector: Step, K: number, n: number): { fails: ReadonlyArray<string>; moved: number; variance: number } => {
  const pt = marginalMixture(sde, m, T_FIXED);
  const keys = random.split(random.key(99), n);
  const before = liveTensors();
  const { x } = sampleMixture(pt)(keys.map((k) => random.foldIn(k, 1)));
  const s0 = stateAt(x, T_FIXED, keys);
  const s1 = repeat(corrector, K).step(exactScore(sde, m), s0, T_FIXED);
  const fails = failures(mixtureChecks(pt, s1.x, { perCoordinate: true }), 5);
  const moved = tf.tidy(() => tf.mean(tf.sum(tf.square(tf.sub(s1.x, x)), 1)).dataSync()[0]!);
  const D = m.means[0]!.length;
  const variance = pt.stds.reduce((a, row, k) => a + pt.weights[k]! * row.reduce((b, s) => b + s * s, 0), 0) / D;
  releaseReplaced(s0, s1);
  disposeState(s1);
  expect(liveTensors()).toBe(before);
  return { fails, moved: moved / D, variance };
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
] as const)('%s, %s on the %s mixture: 50 small steps leave the exact p_t invariant (5 SE) and move the samples', (_l, _n, dim, sde, make, n) => {
  const { fails, moved, variance } = runAtFixedTime(sde, mixtures[dim], make(sde), 50, n);
  expect(fails).toEqual([]);
  // Not a no-op: the mean squared move per coordinate is a sizeable fraction of p_t's variance.
  expect(moved).toBeGreaterThan(0.1 * variance);
});
