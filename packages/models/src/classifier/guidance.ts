/**
 * The classifier as a guide: log p_t(y | x) per sample, the log-likelihood that solvers' `classifierGuidance` turns
 * into the guided score s(x, t) + w ∇ₓ log p_t(y | x) (Song et al., ICLR 2021, §5, eq. 14).
 *
 * @module classifier/guidance
 */
import { tf, scoped } from '@score-sde/tensor-fp';
import type { TensorRecord } from '../params';
import { type ClassifierConfig, classifierLogProbs } from './architecture';

/**
 * log p_t(y_b | x_b) = log softmax(logits(x_b, t))_{y_b} per sample: [B], for target labels y (one per sample).
 * This is the `LogLikelihoodFn` the solvers' guidance transforms take. A clean classifier ignores t.
 * @category guidance
 */
export const classifierLogLikelihood =
  (config: ClassifierConfig, params: TensorRecord, labels: ArrayLike<number>) =>
  (x: tf.Tensor, time: number): tf.Tensor =>
    scoped(() => {
      const y = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), config.numClasses);
      return tf.sum(tf.mul(y, classifierLogProbs(config, params)(x, config.noiseConditional ? time : undefined)), 1);
    });
