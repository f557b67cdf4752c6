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
import * as conv from './conv';
import { groupNormFused, swishWithGrad } from './group-norm';

/**
 * swish(x) = x·sigmoid(x) (a.k.a. SiLU; Ramachandran et al. 2017), with the analytic gradient
 * dx = dy·(σ(x) + swish(x)·(1 − σ(x))).
 * @category activations
 */
export const swish = (x: tf.Tensor): tf.Tensor => tf.tidy(() => swishWithGrad(x));

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
 *   y = γ · (x − μ_g) / √(σ_g² + ε) + β, with μ_g, σ_g² over (H, W, C/G) of each group (biased variance).
 * Statistics per channel, then per group (law of total variance: as exact as `tf.moments`), the output one
 * per-channel affine map of x, and an analytic gradient: a few passes over memory instead of autograd through
 * a 5-D reshape → moments → normalise → affine chain (issue 6). See `group-norm.ts`.
 * @category normalisation
 */
export const groupNorm = (x: tf.Tensor4D, groups: number, gamma: tf.Tensor, beta: tf.Tensor, eps = 1e-5): tf.Tensor4D =>
  tf.tidy(() => groupNormFused(x, groups, gamma, beta, { eps }));

/**
 * The ScoreNet block swish(GN_{γ,β}(x + bias)) in one op (Song's tutorial: `act(gnorm(h + dense(embed)))`),
 * bias a per-sample channel bias [B, C] or [B, 1, 1, C] (e.g. the time embedding's Dense output):
 * = nn.swish(nn.groupNorm(x + bias, …)), with the bias folded into the statistics and one analytic gradient
 * for x, γ, β and the bias — fewer passes over memory forward and backward than the three ops.
 * @category normalisation
 */
export const groupNormSwish = (x: tf.Tensor4D, groups: number, gamma: tf.Tensor, beta: tf.Tensor, bias?: tf.Tensor, eps = 1e-5): tf.Tensor4D =>
  tf.tidy(() => groupNormFused(x, groups, gamma, beta, { swish: true, eps, ...(bias !== undefined ? { bias } : {}) }));

/**
 * 2-D convolution, NHWC input, HWIO filter, 'valid' or 'same' padding:
 *   y[b,i,j,o] = Σ_{p,q,c} x̄[b, s·i+p, s·j+q, c] · f[p,q,c,o].
 * Differentiable on every backend (wasm has no filter-gradient kernel): see {@link conv.conv2d}.
 * @category convolution
 */
export const conv2d = (x: tf.Tensor4D, filter: tf.Tensor4D, stride: number, pad: 'valid' | 'same'): tf.Tensor4D =>
  conv.conv2d(x, filter, stride, pad);

/**
 * Transposed 2-D convolution (the adjoint of {@link conv2d} with the same filter), NHWC input, filter
 * [h, w, outChannels, inChannels], producing `outputShape` = [B, H', W', outChannels] (output padding, as in
 * PyTorch's `output_padding`, is expressed by a larger H', W'; rows no tap reaches are zero):
 *   z[b, s·i+p−top, s·j+q−left, c] += x[b,i,j,o] · f[p,q,c,o].
 * Computed as s² sub-pixel phase convolutions, differentiable everywhere: see {@link conv.conv2dTranspose}.
 * @category convolution
 */
export const conv2dTranspose = (
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  outputShape: [number, number, number, number],
  stride: number,
  pad: 'valid' | 'same',
): tf.Tensor4D => conv.conv2dTranspose(x, filter, outputShape, stride, pad);
