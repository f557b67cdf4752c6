/**
 * From a network to a score: the tutorial's convention s_θ(x, t) = net(x, t) / s(t), with s(t) the marginal std
 * of the SDE (`marginalStd`), used for every SDE kind (VE, tutorial, VP, sub-VP). The network therefore learns
 * net ≈ s(t)·∇ log p_t = −E[z | x_t], a quantity of unit scale at every t, and any trained model plugs into any
 * solver through the {@link ScoreFn} type of sde-math.
 *
 * (Song et al., ICLR 2021, App. C; Song's tutorial `ScoreNet.forward`: `h / marginal_prob_std(t)`.)
 *
 * @module score
 */
import { tf, scoped } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, marginalStd, perSampleColumn } from '@score-sde/sde-math';
import type { Net } from './scorenet';

/**
 * The score of a network at a time shared by the batch: s_θ(x, t) = net(x, t·𝟙) / s(t).
 * At t = 0, s(0) = 0 and the score is undefined (samplers stop at ε > 0).
 * @category wrappers
 */
export const scoreFromNet =
  (sde: SDE, net: Net): ScoreFn =>
  (x: tf.Tensor, t: number): tf.Tensor =>
    scoped(() => tf.div(net(x, tf.fill([x.shape[0]!], t)), marginalStd(sde, t)));

/**
 * The score with one time per sample: s_θ(x_b, t_b) = net(x, t)_b / s(t_b) (for losses and per-sample time grids).
 * @category wrappers
 */
export const scoreFromNetPerSample =
  (sde: SDE, net: Net) =>
  (x: tf.Tensor, ts: ArrayLike<number>): tf.Tensor =>
    scoped(() => {
      const tv = tf.tensor1d(Float32Array.from(ts as ArrayLike<number>));
      const std = perSampleColumn(Array.from(ts as ArrayLike<number>, (t) => marginalStd(sde, t)), x.rank);
      return tf.div(net(x, tv), std);
    });
