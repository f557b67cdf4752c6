/**
 * Exact conditional sampling (inpainting, imputation) by observation guidance: a score transform, so it works with
 * every sampler of the package, ODE ones included (Song et al., ICLR 2021, §5 eq. 14 and App. I.2).
 *
 * To sample x_0 given that its coordinates O were observed as y, sample the reverse process of p_t(x | y), the SDE
 * marginal of p(x_0 | y). Bayes' rule, p_t(x | y) = p(y | x_t = x) p_t(x) / p(y), gives its score as the data score
 * plus the gradient of the observation likelihood (p(y) does not depend on x):
 *   ∇ₓ log p_t(x | y) = ∇ₓ log p_t(x) + ∇ₓ log p(x_0,O = y | x_t = x).
 * This is exact (not an approximation) when log p(y | x_t) is exact, as sde-math's closed-form
 * `observationLogLikelihood` is for a Gaussian mixture; the samples then follow p(x_0 | y) up to the sampler's own
 * discretisation error: their observed coordinates come out at ≈ y (x_t,O ~ N(m(t) y, s(t)² I) at every t), their
 * missing ones ~ p(x_M | x_O = y) (`conditionalMixture`).
 *
 * Inpainting by replacement (`inpaint`, the reference method, the one that works with a trained network that has no
 * p(y | x_t)) instead conditions the missing coordinates on a fresh noisy draw of the known ones: it is exact only when
 * they are independent of the known ones.
 *
 * @module conditional
 */
import { type SDE, type ScoreFn, type GaussianMixture, exactScore, observationLogLikelihood } from '@score-sde/sde-math';
import { type LogLikelihoodFn, classifierGuidance } from './guidance';

/**
 * Observation guidance: the score of p_t(x | y) from the score of p_t and an observation log-likelihood
 * log p(x_0,O = y | x_t), i.e. classifier guidance with scale 1 (Song et al. 2021, eq. 14):
 *   s_y(x, t) = s(x, t) + ∇ₓ log p(y | x_t = x)   (= ∇ₓ log p_t(x | y) when both terms are exact).
 * @category transforms
 */
export const observationGuidance = (score: ScoreFn, logLik: LogLikelihoodFn): ScoreFn => classifierGuidance(score, logLik, 1);

/**
 * The exact score of p_t(x | x_0,O = y) for data the Gaussian mixture `m` under the SDE:
 *   ∇ log p_t(x) + ∇ log p(y | x_t = x)   (exactScore + observationLogLikelihood, by autodiff),
 * where `observed[j]` is y_j or `null` when coordinate j is missing. Any sampler run with it (ending at ε > 0: the
 * likelihood needs s(t) > 0) samples the exact conditional. Throws a RangeError when `observed` does not fit `m`.
 * @category transforms
 */
export const exactConditionalScore = (sde: SDE, m: GaussianMixture, observed: ReadonlyArray<number | null>): ScoreFn =>
  observationGuidance(exactScore(sde, m), observationLogLikelihood(sde, m, observed));
