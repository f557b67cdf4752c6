/**
 * Neural-network building blocks as pure tensor functions (NHWC throughout).
 *
 * These are the single definitions the models package uses; faster kernels for a backend (for example
 * transposed convolutions rewritten as plain convolutions for wasm) replace the bodies here, never the
 * call sites.
 *
 * @module nn
 */
import { tf } from './tf';

/** swish(x) = x·sigmoid(x) (a.k.a. SiLU). @category activations */
export const swish = (x: tf.Tensor): tf.Tensor => tf.tidy(() => tf.mul(x, tf.sigmoid(x)));

/**
 * Gaussian random Fourier features of time (Tancik et al. 2020; Song's tutorial):
 *   φ(t) = [sin(2π W t), cos(2π W t)],  W fixed, W ~ N(0, scale²).
 * `t` has shape [B]; `W` has shape [E/2]; the result has shape [B, E].
 * @category embeddings
 */
export const fourierFeatures = (t: tf.Tensor, W: tf.Tensor): tf.Tensor =>
  tf.tidy(() => {
    const proj = tf.mul(tf.reshape(t, [-1, 1]), tf.mul(tf.reshape(W, [1, -1]), 2 * Math.PI));
    return tf.concat([tf.sin(proj), tf.cos(proj)], 1);
  });

/**
 * Group normalisation (Wu & He 2018) of an NHWC tensor with G groups:
 *   y = γ · (x − μ_g) / √(σ_g² + ε) + β, with μ_g, σ_g² over (H, W, C/G) of each group.
 * @category normalisation
 */
export const groupNorm = (x: tf.Tensor4D, groups: number, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor4D =>
  tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    const xg = tf.reshape(x, [b, h, w, groups, c / groups]);
    const { mean, variance } = tf.moments(xg, [1, 2, 4], true);
    const xn = tf.reshape(tf.div(tf.sub(xg, mean), tf.sqrt(tf.add(variance, eps))), [b, h, w, c]);
    return tf.add(tf.mul(xn, tf.reshape(gamma, [1, 1, 1, c])), tf.reshape(beta, [1, 1, 1, c])) as tf.Tensor4D;
  });

/** 2-D convolution, NHWC input, HWIO filter, 'valid' or 'same' padding. @category convolution */
export const conv2d = (x: tf.Tensor4D, filter: tf.Tensor4D, stride: number, pad: 'valid' | 'same'): tf.Tensor4D =>
  tf.conv2d(x, filter, stride, pad);

/**
 * Transposed 2-D convolution (the adjoint of {@link conv2d} with the same filter), NHWC input, filter
 * [h, w, outChannels, inChannels], producing `outputShape` = [B, H', W', outChannels].
 * @category convolution
 */
export const conv2dTranspose = (
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  outputShape: [number, number, number, number],
  stride: number,
  pad: 'valid' | 'same',
): tf.Tensor4D => tf.conv2dTranspose(x, filter, outputShape, stride, pad);
