/**
 * Correctors: Markov steps that leave p_t invariant (for small steps) and act at the state's own time t
 * (Song et al., ICLR 2021, §4.2, Alg. 4–5).
 *
 * @module correctors
 */
import { tf, fused } from '@score-sde/tensor-fp';
import { type SDE, ddpmBetas, discreteIndex, marginalStd } from '@score-sde/sde-math';
import { type Step, defineStep, noiseDuring } from './step';

/** How the Langevin step size normalises gradients and noise: per sample, or by batch means (reference code). @category model */
export type LangevinNorm = 'per-sample' | 'batch-mean';

/** The Langevin step size of norm 'batch-mean' is a batch statistic. @category model */
export const BATCH_MEAN_NORM = "the Langevin step size comes from batch means of ‖z‖ and ‖s‖ (norm 'batch-mean'; 'per-sample' keeps samples apart)";

/**
 * The default target signal-to-noise ratio r of the Langevin correctors: 0.16, the paper's CIFAR-10 VE value
 * (Song et al., ICLR 2021, App. G) and the score_sde MNIST tutorial's.
 * @category model
 */
export const DEFAULT_SNR = 0.16;

/** Options of the Langevin correctors. @category model */
export interface LangevinOptions {
  /** Target signal-to-noise ratio r (default {@link DEFAULT_SNR}). */
  readonly snr?: number;
  /**
   * 'batch-mean' (default, the reference code: ε from the batch means of ‖z‖ and ‖s‖, which couples the samples of
   * a batch) or 'per-sample' (each sample's own norms: a sample's path does not depend on its batch, but in low
   * dimension ‖s‖ → 0 near a mode makes ε blow up, so use it in high dimension, where the norms concentrate).
   */
  readonly norm?: LangevinNorm;
  /** Discretisation N of the DDPM chain: for VP, α_i = 1 − β_i of the current step; otherwise (or without N) α = 1. */
  readonly N?: number;
}

/**
 * α(t) of the reference correctors: 1 − β_i for VP with a discrete chain of N steps (i the discrete index of t),
 * else 1. The table of β_i is made once per corrector, not once per step.
 */
const alphaOf = (sde: SDE, N: number | undefined): ((t: number) => number) => {
  if (sde.kind !== 'vp' || N === undefined) return () => 1;
  const betas = ddpmBetas(sde, N);
  return (t) => 1 - betas[discreteIndex(sde, N, t)]!;
};

/**
 * Langevin corrector with the signal-to-noise step rule (Song et al. 2021, Alg. 5):
 *   z ~ N(0, I),  ε = 2α (r ‖z‖ / ‖s(x, t)‖)²,  x̄ = x + ε s(x, t),  x' = x̄ + √(2ε) z,
 * the norms taken per sample ('per-sample') or averaged over the batch ('batch-mean', as the reference code).
 * One evaluation; the rest is one fused pass on wasm (tensor-fp's langevinUpdate, the bits of its tf ops).
 * @category correctors
 */
export const langevin = (sde: SDE, opts: LangevinOptions = {}): Step => {
  const snr = opts.snr ?? DEFAULT_SNR;
  const norm = opts.norm ?? 'batch-mean';
  const alphaAt = alphaOf(sde, opts.N);
  return defineStep(
    { name: `langevin(snr=${snr}, ${norm})`, kind: 'corrector', order: 0, stochastic: true, batchCoupling: norm === 'batch-mean' ? [BATCH_MEAN_NORM] : [], nfePerStep: 1 },
    (score, s) => {
      const { value: grad, keys, z } = noiseDuring(s, () => score(s.x, s.t));
      const [x, xMean] = fused.langevinUpdate(s.x, grad, z, { snr, twoAlpha: 2 * alphaAt(s.t), perSample: norm === 'per-sample' });
      return { x, xMean, keys };
    },
  );
};

/**
 * Annealed Langevin dynamics (Song & Ermon 2019; Song et al. 2021, Alg. 4 corrector): the step size follows
 * the noise level of the kernel, ε = 2α (r s(t))², then x̄ = x + ε s(x, t), x' = x̄ + √(2ε) z. One evaluation.
 * @category correctors
 */
export const annealedLangevin = (sde: SDE, opts: Pick<LangevinOptions, 'snr' | 'N'> = {}): Step => {
  const snr = opts.snr ?? DEFAULT_SNR;
  const alphaAt = alphaOf(sde, opts.N);
  return defineStep(
    { name: `annealed-langevin(snr=${snr})`, kind: 'corrector', order: 0, stochastic: true, batchCoupling: [], nfePerStep: 1 },
    (score, s) => {
      const eps = 2 * alphaAt(s.t) * (snr * marginalStd(sde, s.t)) ** 2;
      const { value: xMean, keys, z } = noiseDuring(s, () => tf.add(s.x, tf.mul(score(s.x, s.t), eps)));
      return { x: fused.scaleAdd(xMean, z, Math.sqrt(2 * eps)), xMean, keys };
    },
  );
};
