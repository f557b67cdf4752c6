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
 * per-channel bias in every block, and is trained on perturbed images x_t ~ p_0t(x_t | x_0) (classifier/training).
 *
 * @module classifier/architecture
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { pipe } from 'fp-ts/function';
import { tf, nn, codec, scoped, type Key } from '@score-sde/tensor-fp';
import { type ParamSpec, type Params, type TensorRecord, initParams, trainableCount } from '../params';

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
