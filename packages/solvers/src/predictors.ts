/**
 * Predictors of the reverse-time SDE dx = [f(t)x − g(t)² ∇log p_t(x)] dt + g(t) dw̄ (Song et al., ICLR 2021,
 * eq. 6): each moves a state from t to t_next < t.
 *
 * @module predictors
 */
import { tf, fused } from '@score-sde/tensor-fp';
import { type SDE, type VPSDE, type VESDE, diffusionCoef, driftCoef, marginalMeanCoef, marginalVariance, reverseDiscretize } from '@score-sde/sde-math';
import { type Step, defineStep, noiseDuring } from './step';

/**
 * Euler–Maruyama on the reverse SDE, with Δt = t_next − t < 0 and z ~ N(0, I):
 *   x̄ = x + [f(t)x − g(t)² s(x, t)] Δt,   x' = x̄ + g(t) √|Δt| z.
 * Weak order 1 (strong order 1 here, the noise being additive). One score evaluation.
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import { random } from '@score-sde/tensor-fp';
 * import { vp, gaussian, exactScore } from '@score-sde/sde-math';
 * import { eulerMaruyama, priorState, releaseReplaced, disposeState } from '@score-sde/solvers';
 *
 * const sde = vp();
 * const step = eulerMaruyama(sde); // a value: its name, kind, order, NFE per step and the step function
 * const score = exactScore(sde, gaussian([0, 0], [1, 1]));
 * const s0 = priorState(sde, random.split(random.key(0), 4), [2], sde.T); // 4 samples of the prior at t = T
 * const s1 = step.step(score, s0, 0.99); // one reverse step, t: 1 → 0.99
 * assert.strictEqual(s1.t, 0.99);
 * assert.strictEqual(s1.nfe, 1);
 * releaseReplaced(s0, s1); // the caller owns both states
 * disposeState(s1);
 * ```
 * @category predictors
 */
export const eulerMaruyama = (sde: SDE): Step =>
  defineStep({ name: 'euler-maruyama', kind: 'predictor', order: 1, stochastic: true, batchCoupling: [], nfePerStep: 1 }, (score, s, tNext) => {
    const dt = tNext - s.t;
    const g = diffusionCoef(sde, s.t);
    // x + [f(t)x − g(t)² s] Δt in one pass (the bits of sde-math's reverseDrift, then · Δt and + x), z made meanwhile
    const { value: xMean, keys, z } = noiseDuring(s, () => fused.eulerUpdate(s.x, score(s.x, s.t), driftCoef(sde, s.t), g ** 2, dt));
    return { x: fused.scaleAdd(xMean, z, g * Math.sqrt(-dt)), xMean, keys };
  });

/**
 * Reverse diffusion (Song et al. 2021, eq. 46): the forward discretisation x_{i+1} = x_i + f_i(x_i) + G_i z_i
 * of the N-step chain (DDPM for VP, SMLD for VE, Euler–Maruyama otherwise; `discretize` of sde-math) run backwards,
 *   x̄ = x − [f_i(x) − G_i² s(x, t)],   x' = x̄ + G_i z,
 * with i the discrete index of the current t. Meant for the uniform grid with N intervals. One evaluation.
 * @category predictors
 */
export const reverseDiffusion = (sde: SDE, N: number): Step =>
  defineStep({ name: `reverse-diffusion(N=${N})`, kind: 'predictor', order: 1, stochastic: true, batchCoupling: [], nfePerStep: 1 }, (score, s) => {
    const { value: [xMean, G], keys, z } = noiseDuring(s, () => {
      const { f, G } = reverseDiscretize(sde, score, N)(s.x, s.t);
      return [tf.sub(s.x, f), G] as const;
    });
    return { x: fused.scaleAdd(xMean, z, G), xMean, keys };
  });

/**
 * Ancestral sampling (Song et al. 2021, App. F), on any grid: the step t → t_next of
 * - VP (DDPM, Ho et al. 2020): with ᾱ(t) = m(t)², β = 1 − ᾱ(t)/ᾱ(t_next),
 *     x̄ = (x + β s(x, t)) / √(1 − β),   x' = x̄ + √β z;
 * - VE (SMLD): with σ² = s(t)², σ'² = s(t_next)²,
 *     x̄ = x + (σ² − σ'²) s(x, t),   x' = x̄ + √(σ'²(σ² − σ'²)/σ²) z.
 * On the N-step uniform grid these are DDPM's and SMLD's updates with the betas/sigmas the grid implies
 * (the reference code reads them from its discrete tables instead; they agree to O(1/N²)). One evaluation.
 * @category predictors
 */
export const ancestralSampling = (sde: VPSDE | VESDE): Step =>
  defineStep({ name: 'ancestral', kind: 'predictor', order: 1, stochastic: true, batchCoupling: [], nfePerStep: 1 }, (score, s, tNext) => {
    if (sde.kind === 'vp') {
      const beta = 1 - (marginalMeanCoef(sde, s.t) / marginalMeanCoef(sde, tNext)) ** 2;
      const { value: xMean, keys, z } = noiseDuring(s, () => tf.div(tf.add(s.x, tf.mul(score(s.x, s.t), beta)), Math.sqrt(1 - beta)));
      return { x: fused.scaleAdd(xMean, z, Math.sqrt(beta)), xMean, keys };
    }
    const v = marginalVariance(sde, s.t);
    const vNext = marginalVariance(sde, tNext);
    const { value: xMean, keys, z } = noiseDuring(s, () => tf.add(s.x, tf.mul(score(s.x, s.t), v - vNext)));
    return { x: fused.scaleAdd(xMean, z, Math.sqrt((vNext * (v - vNext)) / v)), xMean, keys };
  });
