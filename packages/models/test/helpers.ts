/**
 * Shared helpers of the models tests (ScoreNet, losses, training, checkpoints, MNIST).
 */
import { tf, nn, initBackend, random } from '@score-sde/tensor-fp';
import { tutorial } from '@score-sde/sde-math';
import { type TrainConfig, scoreNetConfig, adamConfig, defaultLossConfig } from '../src';

/** float32 unit roundoff u = 2⁻²⁴. */
export const U32 = 2 ** -24;

/**
 * The backend for tests that differentiate through convolutions: wasm if `nn.conv2d` has a filter gradient there
 * (tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel until tensor-fp's custom-gradient convolutions land),
 * otherwise cpu. A test compares runs on one backend only, so the choice never mixes backends.
 */
export const initTrainingBackend = async (): Promise<'wasm' | 'cpu'> => {
  await initBackend({ prefer: 'wasm', quiet: true });
  const ok = (() => {
    try {
      const x = tf.ones([1, 5, 5, 1]) as tf.Tensor4D;
      const w = tf.ones([3, 3, 1, 2]) as tf.Tensor4D;
      const g = tf.grad((f: tf.Tensor) => tf.sum(nn.conv2d(x, f as tf.Tensor4D, 2, 'valid')))(w);
      const fine = g.shape.join() === '3,3,1,2';
      tf.dispose([x, w, g]);
      return fine;
    } catch {
      return false;
    }
  })();
  if (ok) return 'wasm';
  await initBackend({ prefer: 'cpu', quiet: true });
  return 'cpu';
};

/** Max |a − b| over two equally shaped tensors (as float64); NaN if any entry is NaN (Math.max propagates it), so every bound check fails. */
export const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor): number => {
  const x = a.dataSync();
  const y = b.dataSync();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
};

/** Max |a| of a tensor; NaN if any entry is NaN. */
export const maxAbs = (a: tf.Tensor): number => Array.from(a.dataSync()).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Bitwise equality of two float32 tensors' contents. */
export const bitEqual = (a: tf.Tensor, b: tf.Tensor): boolean => {
  if (a.shape.join() !== b.shape.join()) return false;
  const x = new Uint32Array(Float32Array.from(a.dataSync()).buffer);
  const y = new Uint32Array(Float32Array.from(b.dataSync()).buffer);
  return x.every((v, i) => v === y[i]);
};

/** A batch of B images in [0, 1] from a key (uniform pixels). */
export const uniformImages = (seed: number, B: number, size = 28): tf.Tensor4D => random.uniform(random.key(seed), [B, size, size, 1]) as tf.Tensor4D;

/** A tiny run's configuration (the tutorial SDE, channels 4/8/8/8): checkpoints whose files take milliseconds to write. */
export const tinyTrainConfig: TrainConfig = {
  model: scoreNetConfig({ channels: [4, 8, 8, 8], embedDim: 16 }),
  sde: tutorial(),
  loss: defaultLossConfig,
  optim: adamConfig({ lr: 1e-3 }),
  emaDecay: 0.999,
  batchSize: 4,
};
