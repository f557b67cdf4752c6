/**
 * From a network to a score, through a parameterisation (sde-math `parameterisation`): the network F sees the
 * scaled input c_in·x/m(t) and the noise input c_noise, and
 *   s_θ(x, t) = skip(t)·x + F(inputScale(t)·x, c_noise(t)) / outDivisor(t)          (`scoreCoefficients`),
 * which is Tweedie's formula solved for the score with the denoiser D = c_skip x̃ + c_out F (x̃ = x/m).
 * - tutorial (default; Song's tutorial `h / marginal_prob_std(t)`, score_sde): s_θ = F(x, t)/s(t), so F learns
 *   s(t)·∇ log p_t = −E[z | x_t], a unit-scale quantity at every t;
 * - EDM (Karras et al. 2022): D(x̃; σ) = c_skip x̃ + c_out F(c_in x̃, ¼ ln σ) with σ = s/m.
 * Any trained model plugs into any solver through the {@link ScoreFn} type of sde-math.
 *
 * @module score
 */
import { tf, scoped } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, type Parameterisation, tutorialParameterisation, scoreCoefficients, perSampleColumn } from '@score-sde/sde-math';
import type { Net } from './scorenet';

/** s = skip·x + F / outDivisor, without the ops a coefficient makes trivial (tutorial: F / s(t) exactly). */
const combine = (x: tf.Tensor, F: tf.Tensor, skip: tf.Tensor | number, outDivisor: tf.Tensor | number): tf.Tensor => {
  const out = tf.div(F, outDivisor);
  return skip === 0 ? out : tf.add(out, tf.mul(x, skip));
};

/**
 * The score of a network at a time shared by the batch (module comment):
 * s_θ(x, t) = skip(t)·x + F(inputScale(t)·x, c_noise(t)·𝟙) / outDivisor(t); tutorial: net(x, t·𝟙) / s(t).
 * At t = 0 the score is undefined (samplers stop at ε > 0 and denoise with Tweedie's formula).
 * @category wrappers
 */
export const scoreFromNet =
  (sde: SDE, net: Net, p: Parameterisation = tutorialParameterisation): ScoreFn =>
  (x: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => {
      const c = scoreCoefficients(sde, p, t);
      const F = net(c.inputScale === 1 ? x : tf.mul(x, c.inputScale), tf.fill([x.shape[0]!], c.noiseInput));
      return combine(x, F, c.skip, c.outDivisor);
    });

/**
 * The score with one time per sample: s_θ(x_b, t_b) (for losses and per-sample time grids), the same map as
 * {@link scoreFromNet} with each coefficient a [B, 1, …] column.
 * @category wrappers
 */
export const scoreFromNetPerSample =
  (sde: SDE, net: Net, p: Parameterisation = tutorialParameterisation) =>
  (x: tf.Tensor, ts: ArrayLike<number>): tf.Tensor =>
    scoped(() => {
      const cs = Array.from(ts as ArrayLike<number>, (t) => scoreCoefficients(sde, p, t));
      const column = (f: (c: (typeof cs)[number]) => number) => perSampleColumn(cs.map(f), x.rank);
      const input = p.kind === 'tutorial' ? x : tf.mul(x, column((c) => c.inputScale));
      const F = net(input, tf.tensor1d(Float32Array.from(cs, (c) => c.noiseInput)));
      return combine(x, F, p.kind === 'tutorial' ? 0 : column((c) => c.skip), column((c) => c.outDivisor));
    });
