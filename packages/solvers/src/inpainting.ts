/**
 * Inpainting / imputation as a state transform (Song et al., ICLR 2021, App. I.2; score_sde's
 * `controllable_generation.get_pc_inpainter`): after every step at time t, the known coordinates are replaced by a
 * fresh draw from the forward kernel of the observation,
 *   x ← mask ⊙ (m(t) y + s(t) z) + (1 − mask) ⊙ x,   x̄ ← mask ⊙ m(t) y + (1 − mask) ⊙ x̄,
 * so the unknown coordinates evolve under the joint score with the known ones kept on p_0t(· | y). As a state
 * transform it composes with every step (`withTransform`) or sampler (`transform`), ODE samplers included.
 *
 * Replacement is the reference method and the one that works with a trained score network, but it is exact only when
 * the missing coordinates are independent of the known ones: it conditions them on a fresh noisy draw of the known
 * ones rather than on x_0,O = y (on an informative mixture it picks the wrong components, see controllable.test.ts).
 * The exact route is observation guidance (`observationGuidance` in conditional.ts): the score
 * ∇ log p_t(x) + ∇ log p(x_0,O = y | x_t) = ∇ log p_t(x | y), e.g. `exactConditionalScore` for a Gaussian mixture, with
 * which any sampler returns p(x_0 | y).
 *
 * @module inpainting
 */
import { tf } from '@score-sde/tensor-fp';
import { type SDE, marginalMeanCoef, marginalStd } from '@score-sde/sde-math';
import type { StateTransform } from './step';
import { perSampleNoise } from './step';

/** An observation: values y and a mask (1 = known, 0 = missing), both broadcastable to the batch. @category model */
export interface Observation {
  readonly observed: tf.Tensor;
  readonly mask: tf.Tensor;
}

/**
 * An observation of one D-vector with missing entries as `null` (the format of sde-math's `conditionalMixture`):
 * y = the values (0 where missing) and the mask, both [1, D]. The caller disposes them.
 * @category constructors
 */
export const observationOf = (values: ReadonlyArray<number | null>): Observation => ({
  observed: tf.tensor2d([values.map((v) => v ?? 0)], [1, values.length], 'float32'),
  mask: tf.tensor2d([values.map((v) => (v === null ? 0 : 1))], [1, values.length], 'float32'),
});

/**
 * The inpainting transform: replaces the known coordinates by m(t) y + s(t) z (z per sample from the state's
 * keys) in x, and by m(t) y in x̄ (see the module comment). The observation's tensors are not disposed.
 * @category transforms
 */
export const inpaint =
  (sde: SDE, obs: Observation): StateTransform =>
  (s) => {
    const { keys, z } = perSampleNoise(s);
    const out = tf.tidy(() => {
      const mean = tf.mul(obs.observed, marginalMeanCoef(sde, s.t));
      const draw = tf.add(mean, tf.mul(z, marginalStd(sde, s.t)));
      const keep = tf.sub(1, obs.mask);
      const x = tf.add(tf.mul(obs.mask, draw), tf.mul(keep, s.x));
      const xMean = tf.add(tf.mul(obs.mask, mean), tf.mul(keep, s.xMean));
      return { x, xMean };
    });
    z.dispose();
    return { ...s, x: out.x, xMean: out.xMean, keys };
  };
