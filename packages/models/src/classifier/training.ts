/**
 * Training the MNIST classifier: the cross-entropy loss, the perturbation of a noise-conditional classifier's
 * batches (x_t = m(t) x₀ + s(t) z, t ~ U(ε, T) of an SDE), the cosine learning-rate decay, and the one training loop
 * (epochs of shuffled mini-batches, one Adam step each, Kingma & Ba 2015).
 *
 * @module classifier/training
 */
import { tf, random, scoped, macrotask, type Key } from '@score-sde/tensor-fp';
import { type SDE, perturb } from '@score-sde/sde-math';
import type { Params, TensorRecord } from '../params';
import { type MnistData, batchesPerEpoch, epochOrder, imageBatch } from '../mnist';
import { type DataRange, UNIT_RANGE, imagesToRange } from '../data-range';
import { type ClassifierConfig, type Times, classifierLogits, trainableVariables } from './architecture';

// -------------------------------------------------------------------------------------
// loss and training
// -------------------------------------------------------------------------------------

/** Integer labels as an int32 [B] tensor. */
const labelTensor = (labels: tf.Tensor | ArrayLike<number>): tf.Tensor1D =>
  labels instanceof tf.Tensor ? (tf.cast(tf.reshape(labels, [-1]), 'int32') as tf.Tensor1D) : tf.tensor1d(Int32Array.from(labels as ArrayLike<number>), 'int32');

/**
 * Mean cross-entropy of logits [B, K] against integer labels: −(1/B) Σ_b log softmax(logits_b)_{y_b}.
 * @category loss
 */
export const crossEntropy = (logits: tf.Tensor, labels: tf.Tensor | ArrayLike<number>): tf.Scalar =>
  scoped(() => {
    const k = logits.shape[1]!;
    const onehot = tf.oneHot(labelTensor(labels), k);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
  });

/** The classifier's loss on one batch: crossEntropy(logits(x, t), y). @category loss */
export const classifierLoss =
  (config: ClassifierConfig, params: TensorRecord) =>
  (x: tf.Tensor, labels: tf.Tensor | ArrayLike<number>, time?: Times): tf.Scalar =>
    scoped(() => crossEntropy(classifierLogits(config, params)(x, time), labels));

/** How a noise-conditional classifier's batches are perturbed: t ~ U(ε, T), x_t ~ p_0t(x_t | x_0) of `sde`. @category training */
export interface NoiseSchedule {
  readonly sde: SDE;
  /** Root key; step i draws from foldIn(key, i). */
  readonly key: Key;
  /** Smallest time, default 1e-5 (as the score-matching loss). */
  readonly eps?: number;
  /** The score model's data range: images are mapped into it before they are perturbed (default [0, 1]). */
  readonly dataRange?: DataRange;
}

/**
 * A perturbed batch for noise-conditional training: t_b = ε + (T − ε) u_b, u_b ~ U(0, 1), and
 * x_t = m(t_b) y_0 + s(t_b) z_b, z_b ~ N(0, I), y_0 the images in the schedule's data range; all randomness from
 * `key` (per-sample keys).
 * @category training
 */
export const perturbForClassifier = (schedule: NoiseSchedule, key: Key, x0: tf.Tensor): { readonly xt: tf.Tensor; readonly t: Float32Array } =>
  scoped(() => {
    const eps = schedule.eps ?? 1e-5;
    const T = schedule.sde.T;
    const batch = x0.shape[0]!;
    const [kt, kz] = random.split2(key);
    const ts = Float32Array.from(random.uniformArray(kt, batch), (u) => eps + (T - eps) * u);
    const noise = random.normalPerSample(random.split(kz, batch), x0.shape.slice(1));
    const { xt } = perturb(schedule.sde)(imagesToRange(schedule.dataRange ?? UNIT_RANGE, x0), ts, noise);
    return { xt, t: ts };
  });

/**
 * Cosine learning-rate decay (Loshchilov & Hutter 2017): lr_i = lr · ½(1 + cos(π · min(i, N)/N)), from lr at
 * step 0 to 0 at step N; constant lr when N is undefined.
 * @category training
 */
export const cosineLearningRate = (lr: number, decaySteps: number | undefined, step: number): number =>
  decaySteps === undefined ? lr : 0.5 * lr * (1 + Math.cos((Math.PI * Math.min(step, decaySteps)) / decaySteps));

/** Options of {@link trainClassifier}. @category training */
export interface ClassifierLoopOptions {
  readonly epochs: number;
  readonly batchSize: number;
  /** Adam's (peak) learning rate. */
  readonly lr: number;
  /** 'cosine' (default): decayed from lr to 0 over all the steps ({@link cosineLearningRate}); 'constant': lr throughout. */
  readonly schedule?: 'cosine' | 'constant';
  /** Data-order key: epoch e visits the images in the order permutation(foldIn(key, e)). */
  readonly key: Key;
  /** For a noise-conditional classifier: the SDE and key of the perturbations (step i perturbs with foldIn(key, i)). */
  readonly noise?: NoiseSchedule;
  readonly onEpochStart?: (e: { readonly epoch: number; readonly steps: number }) => void;
  readonly onStep?: (s: { readonly step: number; readonly loss: number; readonly epochMeanLoss: number }) => void;
}

/** What a training run did: the steps taken, every loss, and the mean loss of the last epoch. @category training */
export interface ClassifierLoopResult {
  readonly steps: number;
  readonly losses: ReadonlyArray<number>;
  readonly finalLoss: number;
}

/**
 * Trains the classifier's variables in place over `epochs` shuffled passes of the data (mini-batch j of epoch e:
 * images order_e[jB : (j+1)B)), one Adam step (tf.train.adam, its moments inside the optimiser, which lives only
 * for this call) per mini-batch on the cross-entropy of the batch, or of the perturbed batch x_t when `noise` is
 * given. Only this classifier's trainable variables are updated; the loop yields to the event loop every 8 steps.
 * @category training
 */
export const trainClassifier = async (config: ClassifierConfig, params: Params, data: MnistData, o: ClassifierLoopOptions): Promise<ClassifierLoopResult> => {
  if (config.noiseConditional && o.noise === undefined) throw new Error('trainClassifier: a noise-conditional classifier needs a noise schedule');
  const perEpoch = batchesPerEpoch(data.count, o.batchSize);
  const decaySteps = (o.schedule ?? 'cosine') === 'cosine' ? o.epochs * perEpoch : undefined;
  const optimizer = tf.train.adam(o.lr);
  // tfjs's Adam reads its (protected) learning rate at every update; the schedule sets it before each step.
  const scheduled = optimizer as unknown as { learningRate: number };
  const vars = [...trainableVariables(config, params)];
  const adamStep = (x: tf.Tensor, labels: Int32Array, step: number): number => {
    scheduled.learningRate = cosineLearningRate(o.lr, decaySteps, step);
    const loss = tf.tidy((): tf.Scalar => {
      const cost = optimizer.minimize(
        () => {
          if (o.noise !== undefined && config.noiseConditional) {
            const { xt, t: ts } = perturbForClassifier(o.noise, random.foldIn(o.noise.key, step), x);
            return classifierLoss(config, params)(xt, labels, tf.tensor1d(ts));
          }
          return classifierLoss(config, params)(x, labels);
        },
        true,
        vars,
      );
      return cost ?? tf.scalar(NaN);
    });
    const value = loss.dataSync()[0]!;
    loss.dispose();
    return value;
  };
  const losses: number[] = [];
  let finalLoss = NaN;
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const order = epochOrder(o.key, data.count, epoch);
      o.onEpochStart?.({ epoch, steps: perEpoch });
      let sum = 0;
      for (let j = 0; j < perEpoch; j++) {
        const idx = order.subarray(j * o.batchSize, Math.min((j + 1) * o.batchSize, data.count));
        const x = imageBatch(data, idx);
        const loss = adamStep(x, Int32Array.from(idx, (i) => data.labels[i]!), losses.length);
        x.dispose();
        losses.push(loss);
        sum += loss;
        o.onStep?.({ step: losses.length, loss, epochMeanLoss: sum / (j + 1) });
        if (j % 8 === 7) await macrotask();
      }
      finalLoss = sum / perEpoch;
    }
  } finally {
    optimizer.dispose();
  }
  return { steps: losses.length, losses, finalLoss };
};
