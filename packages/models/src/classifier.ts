/**
 * A small MNIST convnet classifier, clean or noise-conditional, as parameter data + pure forward functions.
 *
 *   h1 = swish(GN(conv3×3 s1 (x))  [+ Dense₁(embed)])     28 → 28   (same padding)
 *   h2 = swish(GN(conv3×3 s2 (h1)) [+ Dense₂(embed)])     28 → 14
 *   h3 = swish(GN(conv3×3 s2 (h2)) [+ Dense₃(embed)])     14 → 7
 *   features = swish(Dense(flatten h3))                    the penultimate layer: FID feature space
 *   logits   = Dense(features)
 *
 * The noise-conditional variant (Song et al., ICLR 2021, §5 "controllable generation"; Dhariwal & Nichol 2021)
 * adds a time embedding embed = swish(Dense(φ(t))), φ(t) = [sin 2πWt, cos 2πWt], W ~ N(0, scale²) fixed, as a
 * per-channel bias in every block, and is trained on perturbed images x_t ~ p_0t(x_t | x_0). Its gradient
 *   ∇ₓ log p_t(y | x) = ∇ₓ log softmax(logits(x, t))_y
 * is added to the unconditional score to sample from p_t(x | y) (classifier guidance).
 *
 * @module classifier
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { pipe } from 'fp-ts/function';
import { tf, nn, codec, random, scoped, type Key } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, perturb } from '@score-sde/sde-math';
import { type ParamSpec, type Params, type TensorRecord, initParams, trainableCount } from './params';

// -------------------------------------------------------------------------------------
// config
// -------------------------------------------------------------------------------------

/**
 * The classifier's shape as data: the side of its square input images, channels of the three conv blocks, the feature (penultimate) width, the
 * number of classes, and whether it is noise-conditional (then `embedDim`, even, and `fourierScale` shape its
 * time embedding; otherwise they are ignored). Unknown keys are rejected.
 * @category config
 */
const ClassifierConfigBase = codec.strict(
  {
    imageSize: codec.PositiveInt,
    channels: t.readonly(t.tuple([codec.PositiveInt, codec.PositiveInt, codec.PositiveInt]), 'Channels'),
    featureDim: codec.PositiveInt,
    numClasses: codec.PositiveInt,
    noiseConditional: t.boolean,
    embedDim: codec.PositiveInt,
    fourierScale: codec.PositiveFinite,
  },
  'ClassifierConfig',
);
export type ClassifierConfig = t.TypeOf<typeof ClassifierConfigBase>;

export const ClassifierConfig = new t.Type<ClassifierConfig, t.OutputOf<typeof ClassifierConfigBase>, unknown>(
  'ClassifierConfig',
  (u): u is ClassifierConfig => ClassifierConfigBase.is(u) && u.embedDim % 2 === 0,
  (u, c) =>
    pipe(
      ClassifierConfigBase.validate(u, c),
      E.chain((cfg) =>
        cfg.embedDim % 2 === 0
          ? t.success(cfg)
          : t.failure(cfg.embedDim, [...c, { key: 'embedDim', type: codec.PositiveInt, actual: cfg.embedDim }], `embedDim: must be even (half sines, half cosines), got ${cfg.embedDim}`),
      ),
    ),
  t.identity,
);

/** The clean MNIST classifier: 28×28 inputs, 32/64/128 channels, 128 features, 10 classes. @category config */
export const mnistClassifierConfig: ClassifierConfig = {
  imageSize: 28,
  channels: [32, 64, 128],
  featureDim: 128,
  numClasses: 10,
  noiseConditional: false,
  embedDim: 128,
  fourierScale: 16,
};

/** The noise-conditional MNIST classifier (for guidance): as {@link mnistClassifierConfig} plus a time embedding. @category config */
export const noisyMnistClassifierConfig: ClassifierConfig = { ...mnistClassifierConfig, noiseConditional: true };

/** A config with `p` over the clean MNIST defaults. @category config */
export const classifierConfig = (p: Partial<ClassifierConfig> = {}): ClassifierConfig => ({ ...mnistClassifierConfig, ...p });

/** Side of the last feature map: two stride-2 'same' convolutions, ⌈⌈s/2⌉/2⌉. @category config */
export const finalMapSize = (config: ClassifierConfig): number => Math.ceil(Math.ceil(config.imageSize / 2) / 2);

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** GroupNorm group count of a block with c channels: gcd(8, c) (divides c by construction). @category config */
export const classifierGroups = (c: number): number => gcd(8, c);

// -------------------------------------------------------------------------------------
// parameters
// -------------------------------------------------------------------------------------

const uniform = (fanIn: number) => ({ kind: 'uniform', bound: 1 / Math.sqrt(fanIn) }) as const;

const dense = (name: string, inDim: number, outDim: number): ReadonlyArray<ParamSpec> => [
  { name: `${name}.weight`, shape: [inDim, outDim], init: uniform(inDim), trainable: true },
  { name: `${name}.bias`, shape: [outDim], init: uniform(inDim), trainable: true },
];

const block = (i: number, cin: number, cout: number, config: ClassifierConfig): ReadonlyArray<ParamSpec> => [
  { name: `conv${i}.weight`, shape: [3, 3, cin, cout], init: uniform(cin * 9), trainable: true },
  { name: `conv${i}.bias`, shape: [cout], init: uniform(cin * 9), trainable: true },
  ...(config.noiseConditional ? dense(`time${i}`, config.embedDim, cout) : []),
  { name: `gnorm${i}.gamma`, shape: [cout], init: { kind: 'ones' }, trainable: true },
  { name: `gnorm${i}.beta`, shape: [cout], init: { kind: 'zeros' }, trainable: true },
];

/**
 * The parameter list, in a fixed order (initialisation keys, checkpoint files). PyTorch-default initialisation:
 * weights and biases U(±1/√fan_in), GroupNorm γ = 1, β = 0, Fourier frequencies N(0, scale²) (fixed).
 * @category parameters
 */
export const classifierSpec = (config: ClassifierConfig): ReadonlyArray<ParamSpec> => {
  const [c1, c2, c3] = config.channels;
  const e = config.embedDim;
  return [
    ...(config.noiseConditional
      ? [{ name: 'embed.W', shape: [e / 2], init: { kind: 'normal', std: config.fourierScale }, trainable: false } as ParamSpec, ...dense('embed.dense', e, e)]
      : []),
    ...block(1, 1, c1, config),
    ...block(2, c1, c2, config),
    ...block(3, c2, c3, config),
    ...dense('features', finalMapSize(config) ** 2 * c3, config.featureDim),
    ...dense('logits', config.featureDim, config.numClasses),
  ];
};

/** Number of trainable parameters. @category parameters */
export const classifierParameterCount = (config: ClassifierConfig): number => trainableCount(classifierSpec(config));

/** Fresh variables from a key (parameter i drawn from split(key, n)[i]). @category parameters */
export const initClassifier = (config: ClassifierConfig, key: Key): Params => initParams(classifierSpec(config), key);

/** The trainable variables of a parameter record (what the optimiser updates). @category parameters */
export const trainableVariables = (config: ClassifierConfig, params: Params): ReadonlyArray<tf.Variable> =>
  classifierSpec(config)
    .filter((s) => s.trainable)
    .map((s) => params[s.name]!);

// -------------------------------------------------------------------------------------
// forward
// -------------------------------------------------------------------------------------

/** Times of a batch: a number shared by the batch, or a [B] tensor. @category model */
export type Times = number | tf.Tensor;

/** The classifier's outputs: penultimate features [B, featureDim] and logits [B, numClasses]. @category model */
export interface ClassifierOutput {
  readonly features: tf.Tensor2D;
  readonly logits: tf.Tensor2D;
}

const linear = (x: tf.Tensor, p: TensorRecord, name: string): tf.Tensor2D =>
  tf.add(tf.matMul(x as tf.Tensor2D, p[`${name}.weight`] as tf.Tensor2D), p[`${name}.bias`]!) as tf.Tensor2D;

const timeVector = (batch: number, time: Times): tf.Tensor => (typeof time === 'number' ? tf.fill([batch], time) : tf.reshape(time, [batch]));

const convBlock = (h: tf.Tensor4D, i: number, stride: number, p: TensorRecord, embed: tf.Tensor | undefined): tf.Tensor4D => {
  const w = p[`conv${i}.weight`] as tf.Tensor4D;
  const c = w.shape[3];
  const z = nn.groupNorm(tf.add(nn.conv2d(h, w, stride, 'same'), p[`conv${i}.bias`]!) as tf.Tensor4D, classifierGroups(c), p[`gnorm${i}.gamma`]!, p[`gnorm${i}.beta`]!);
  if (embed === undefined) return nn.swish(z) as tf.Tensor4D;
  // The time bias goes after the normalisation: a per-channel constant before GN would be (partly) normalised away.
  const b = linear(embed, p, `time${i}`);
  return nn.swish(tf.add(z, tf.reshape(b, [b.shape[0], 1, 1, b.shape[1]]))) as tf.Tensor4D;
};

/**
 * The forward pass: x [B, s, s, 1] (s = `imageSize`, 28 for MNIST) and, for a
 * noise-conditional config, times t ↦ {features, logits}. Pure and scoped.
 * Throws if a noise-conditional classifier is called without t (a programming error).
 * @category model
 */
export const classifierForward =
  (config: ClassifierConfig, params: TensorRecord) =>
  (x: tf.Tensor, time?: Times): ClassifierOutput =>
    scoped(() => {
      if (config.noiseConditional && time === undefined) throw new Error('classifierForward: a noise-conditional classifier needs times t');
      const p = params;
      const batch = x.shape[0]!;
      const embed =
        config.noiseConditional && time !== undefined ? nn.swish(linear(nn.fourierFeatures(timeVector(batch, time), p['embed.W']!), p, 'embed.dense')) : undefined;
      const h1 = convBlock(x as tf.Tensor4D, 1, 1, p, embed);
      const h2 = convBlock(h1, 2, 2, p, embed);
      const h3 = convBlock(h2, 3, 2, p, embed);
      const features = nn.swish(linear(tf.reshape(h3, [batch, -1]), p, 'features')) as tf.Tensor2D;
      return { features, logits: linear(features, p, 'logits') };
    });

/** logits(x, t) [B, numClasses]. @category model */
export const classifierLogits =
  (config: ClassifierConfig, params: TensorRecord) =>
  (x: tf.Tensor, time?: Times): tf.Tensor2D =>
    scoped(() => classifierForward(config, params)(x, time).logits);

/** Penultimate features(x, t) [B, featureDim] — the FID feature space. @category model */
export const classifierFeatures =
  (config: ClassifierConfig, params: TensorRecord) =>
  (x: tf.Tensor, time?: Times): tf.Tensor2D =>
    scoped(() => classifierForward(config, params)(x, time).features);

/** log p(y | x, t) = log softmax(logits)_y for every class: [B, numClasses]. @category model */
export const classifierLogProbs =
  (config: ClassifierConfig, params: TensorRecord) =>
  (x: tf.Tensor, time?: Times): tf.Tensor2D =>
    scoped(() => tf.logSoftmax(classifierForward(config, params)(x, time).logits) as tf.Tensor2D);

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

/** A batch of images [B, H, W, 1] in [0, 1] with integer labels. The caller owns (and disposes) its tensors. @category training */
export interface ClassifierBatch {
  readonly x: tf.Tensor;
  readonly labels: tf.Tensor | ArrayLike<number>;
}

/** How a noise-conditional classifier's batches are perturbed: t ~ U(ε, T), x_t ~ p_0t(x_t | x_0) of `sde`. @category training */
export interface NoiseSchedule {
  readonly sde: SDE;
  /** Root key; step i draws from foldIn(key, i). */
  readonly key: Key;
  /** Smallest time, default 1e-5 (as the score-matching loss). */
  readonly eps?: number;
}

/**
 * A perturbed batch for noise-conditional training: t_b = ε + (T − ε) u_b, u_b ~ U(0, 1), and
 * x_t = m(t_b) x_0 + s(t_b) z_b, z_b ~ N(0, I); all randomness from `key` (per-sample keys).
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
    const { xt } = perturb(schedule.sde)(x0, ts, noise);
    return { xt, t: ts };
  });

/**
 * Options of classifier training: Adam's peak learning rate, the number of steps of its cosine decay
 * (omitted: constant), and a noise schedule for a noise-conditional classifier.
 * @category training
 */
export interface ClassifierTrainOptions {
  readonly lr: number;
  readonly decaySteps?: number;
  readonly noise?: NoiseSchedule;
}

/**
 * Cosine learning-rate decay (Loshchilov & Hutter 2017): lr_i = lr · ½(1 + cos(π · min(i, N)/N)), from lr at
 * step 0 to 0 at step N; constant lr when N is undefined.
 * @category training
 */
export const cosineLearningRate = (lr: number, decaySteps: number | undefined, step: number): number =>
  decaySteps === undefined ? lr : 0.5 * lr * (1 + Math.cos((Math.PI * Math.min(step, decaySteps)) / decaySteps));

/** A stateful Adam trainer (tfjs's optimiser keeps its moments inside): `step` returns the batch loss. @category training */
export interface ClassifierTrainer {
  readonly step: (batch: ClassifierBatch, stepIndex: number) => number;
  readonly dispose: () => void;
}

/**
 * One Adam step (Kingma & Ba 2015, tf.train.adam; learning rate {@link cosineLearningRate}) per call on the cross-entropy of the batch — of the
 * perturbed batch x_t at random t when `noise` is given (step i perturbs with foldIn(noise.key, i)).
 * Only this classifier's trainable variables are updated.
 * @category training
 */
export const classifierTrainer = (config: ClassifierConfig, params: Params, opts: ClassifierTrainOptions): ClassifierTrainer => {
  if (config.noiseConditional && opts.noise === undefined) throw new Error('classifierTrainer: a noise-conditional classifier needs a noise schedule');
  const optimizer = tf.train.adam(opts.lr);
  // tfjs's Adam reads its (protected) learning rate at every update; the schedule sets it before each step.
  const scheduled = optimizer as unknown as { learningRate: number };
  const vars = [...trainableVariables(config, params)];
  const step = (batch: ClassifierBatch, stepIndex: number): number => {
    scheduled.learningRate = cosineLearningRate(opts.lr, opts.decaySteps, stepIndex);
    const loss = tf.tidy((): tf.Scalar => {
      const cost = optimizer.minimize(
        () => {
          if (opts.noise !== undefined && config.noiseConditional) {
            const { xt, t: ts } = perturbForClassifier(opts.noise, random.foldIn(opts.noise.key, stepIndex), batch.x);
            return classifierLoss(config, params)(xt, batch.labels, tf.tensor1d(ts));
          }
          return classifierLoss(config, params)(batch.x, batch.labels);
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
  return { step, dispose: () => optimizer.dispose() };
};

/**
 * Trains over the given batches (one Adam step each, in order), calling `onStep(i, loss)` after step i;
 * returns the losses. Step indices start at `firstStep` (default 0) so a later call continues the noise stream.
 * @category training
 */
export const trainClassifier = (
  config: ClassifierConfig,
  params: Params,
  batches: Iterable<ClassifierBatch>,
  opts: ClassifierTrainOptions & { readonly onStep?: (step: number, loss: number) => void; readonly firstStep?: number },
): { readonly losses: ReadonlyArray<number> } => {
  const trainer = classifierTrainer(config, params, opts);
  const losses: number[] = [];
  let i = opts.firstStep ?? 0;
  try {
    for (const batch of batches) {
      const l = trainer.step(batch, i);
      losses.push(l);
      opts.onStep?.(i, l);
      i++;
    }
  } finally {
    trainer.dispose();
  }
  return { losses };
};

// -------------------------------------------------------------------------------------
// guidance
// -------------------------------------------------------------------------------------

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

/**
 * Classifier guidance: (x, t) ↦ scale · ∇ₓ log p_t(y | x) = scale · ∇ₓ log softmax(logits(x, t))_y, per sample
 * with its own target label y_b (the classifier treats samples independently, so the gradient of
 * Σ_b log p(y_b | x_b) w.r.t. x_b is each sample's own gradient). A clean classifier ignores t.
 * @category guidance
 */
export const classifierGuidance =
  (config: ClassifierConfig, params: TensorRecord, labels: ArrayLike<number>, scale = 1): ScoreFn =>
  (x: tf.Tensor, time: number): tf.Tensor =>
    scoped(() => {
      const logLik = classifierLogLikelihood(config, params, labels);
      return tf.mul(tf.grad((xx: tf.Tensor) => tf.sum(logLik(xx, time)) as tf.Scalar)(x), scale);
    });

/** s(x, t) + guidance(x, t): the score of p_t(x | y) ∝ p_t(x) p_t(y | x)^scale. @category guidance */
export const guidedScore =
  (score: ScoreFn, guidance: ScoreFn): ScoreFn =>
  (x: tf.Tensor, time: number): tf.Tensor =>
    scoped(() => tf.add(score(x, time), guidance(x, time)));

// -------------------------------------------------------------------------------------
// evaluation in batches
// -------------------------------------------------------------------------------------

/** Runs `f` on consecutive slices of at most `batchSize` rows of x and concatenates the float32 results row-wise. */
const inBatches = (x: tf.Tensor, batchSize: number, f: (xb: tf.Tensor) => tf.Tensor): { readonly data: Float32Array; readonly cols: number } => {
  const n = x.shape[0]!;
  const parts: Float32Array[] = [];
  let cols = 0;
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const out = tf.tidy(() => f(tf.slice(x, start, size)));
    cols = out.shape[1]!;
    parts.push(out.dataSync() as Float32Array);
    out.dispose();
  }
  const data = new Float32Array(n * cols);
  let off = 0;
  for (const p of parts) {
    data.set(p, off);
    off += p.length;
  }
  return { data, cols };
};

/** Penultimate features of every image of x [N, H, W, 1], in batches, as float64 [N·featureDim] (for gaussianStats). @category evaluation */
export const featuresInBatches = (config: ClassifierConfig, params: TensorRecord, x: tf.Tensor, batchSize = 256): Float64Array =>
  Float64Array.from(inBatches(x, batchSize, (xb) => classifierFeatures(config, params)(xb)).data);

/** Class probabilities softmax(logits) of every image of x [N, H, W, 1], in batches: [N·numClasses]. @category evaluation */
export const probabilitiesInBatches = (config: ClassifierConfig, params: TensorRecord, x: tf.Tensor, batchSize = 256): Float32Array =>
  inBatches(x, batchSize, (xb) => tf.softmax(classifierLogits(config, params)(xb))).data;

/** What a clean classifier says about a set of images. @category evaluation */
export interface ClassSummary {
  /** argmax class of each image. */
  readonly predictions: Int32Array;
  /** Number of images per predicted class. */
  readonly histogram: ReadonlyArray<number>;
  /** Mean over images of max_y p(y | x) (confidence). */
  readonly meanMaxProb: number;
  /** Entropy of the normalised histogram, in bits (log₂ K for perfectly balanced classes). */
  readonly histogramEntropyBits: number;
}

/** H(h/Σh) = −Σ_k p_k log₂ p_k of a histogram (0 log 0 = 0). @category evaluation */
export const histogramEntropyBits = (histogram: ReadonlyArray<number>): number => {
  const total = histogram.reduce((a, b) => a + b, 0);
  return total === 0 ? 0 : histogram.reduce((s, h) => (h === 0 ? s : s + (h / total) * Math.log2(total / h)), 0);
};

/** Predictions, class histogram, mean max-probability and histogram entropy from probabilities [N·K]. @category evaluation */
export const summariseProbabilities = (probs: ArrayLike<number>, numClasses: number): ClassSummary => {
  const n = Math.floor(probs.length / numClasses);
  const predictions = new Int32Array(n);
  const histogram = new Array<number>(numClasses).fill(0);
  let sumMax = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let k = 1; k < numClasses; k++) if (probs[i * numClasses + k]! > probs[i * numClasses + best]!) best = k;
    predictions[i] = best;
    histogram[best]!++;
    sumMax += probs[i * numClasses + best]!;
  }
  return { predictions, histogram, meanMaxProb: n === 0 ? NaN : sumMax / n, histogramEntropyBits: histogramEntropyBits(histogram) };
};

/** {@link summariseProbabilities} of a clean classifier on x [N, H, W, 1]. @category evaluation */
export const classSummary = (config: ClassifierConfig, params: TensorRecord, x: tf.Tensor, batchSize = 256): ClassSummary =>
  summariseProbabilities(probabilitiesInBatches(config, params, x, batchSize), config.numClasses);

/** Fraction of predictions equal to their labels. @category evaluation */
export const accuracy = (predictions: ArrayLike<number>, labels: ArrayLike<number>): number => {
  const n = Math.min(predictions.length, labels.length);
  let hits = 0;
  for (let i = 0; i < n; i++) if (predictions[i] === labels[i]) hits++;
  return n === 0 ? NaN : hits / n;
};
