/**
 * The time-dependent U-Net of Song's score-SDE tutorial ("Score-Based Generative Modeling through Stochastic
 * Differential Equations", Song et al., ICLR 2021; the accompanying PyTorch Colab), as data + a pure forward.
 *
 *   embed   = swish(Linear(φ(t))),  φ(t) = [sin 2πWt, cos 2πWt],  W ~ N(0, scale²) fixed
 *   h1 = swish(GN₄ (conv3×3 s1 (x)   + Dense₁(embed)))        28 → 26   (valid padding, no bias)
 *   h2 = swish(GN₃₂(conv3×3 s2 (h1)  + Dense₂(embed)))        26 → 12
 *   h3 = swish(GN₃₂(conv3×3 s2 (h2)  + Dense₃(embed)))        12 → 5
 *   h4 = swish(GN₃₂(conv3×3 s2 (h3)  + Dense₄(embed)))         5 → 2
 *   h  = swish(GN₃₂(tconv s2 (h4)             + Dense₅(embed)))  2 → 5
 *   h  = swish(GN₃₂(tconv s2 ([h, h3]) (op 1) + Dense₆(embed)))  5 → 12
 *   h  = swish(GN₃₂(tconv s2 ([h, h2]) (op 1) + Dense₇(embed))) 12 → 26
 *   out = tconv s1 ([h, h1]) + bias                              26 → 28
 *
 * Class-conditional (config `classes` = K): embed = swish(Linear(φ(t))) + E[y], with E a learned [K + 1, embedDim] table
 * whose last row y = K stands for "no label" (EDM's label embedding added to the noise embedding; the label is dropped to
 * K in a share of training steps, so one network is both p(x | y) and p(x): classifier-free guidance, Ho & Salimans 2022).
 *
 * The forward here returns `out` un-normalised; the score is out / s(t) (see `score.ts`), which is the tutorial's
 * `h / marginal_prob_std(t)` moved to the SDE-aware wrapper so one network plugs into every SDE.
 * The transposed convolutions take the skip tensor's spatial size as their output size, which is exactly
 * PyTorch's `output_padding` (the extra row/column receives no contribution, only the next layer's bias).
 *
 * @module scorenet
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { pipe } from 'fp-ts/function';
import { tf, nn, codec, scoped, type Key } from '@score-sde/tensor-fp';
import { type ParamSpec, type Params, type TensorRecord, initParams, trainableCount, totalCount } from './params';

// -------------------------------------------------------------------------------------
// config
// -------------------------------------------------------------------------------------

const ScoreNetConfigBase = codec.strictWithOptional(
  {
    channels: t.readonly(t.tuple([codec.PositiveInt, codec.PositiveInt, codec.PositiveInt, codec.PositiveInt]), 'Channels'),
    embedDim: codec.PositiveInt,
    fourierScale: codec.PositiveFinite,
  },
  { classes: codec.PositiveInt },
  'ScoreNetConfig',
);

/**
 * The network's shape as data: channels of the 4 levels, the time-embedding size (even: half sines, half
 * cosines), the std of the fixed Fourier frequencies and (optional) the number of classes K of a class-conditional
 * network. Unknown keys are rejected; an odd `embedDim` is an error.
 * @category config
 */
export const ScoreNetConfig = new t.Type<t.TypeOf<typeof ScoreNetConfigBase>, t.OutputOf<typeof ScoreNetConfigBase>, unknown>(
  'ScoreNetConfig',
  (u): u is t.TypeOf<typeof ScoreNetConfigBase> => ScoreNetConfigBase.is(u) && u.embedDim % 2 === 0,
  (u, c) =>
    pipe(
      ScoreNetConfigBase.validate(u, c),
      E.chain((cfg) =>
        cfg.embedDim % 2 === 0
          ? t.success(cfg)
          : t.failure(cfg.embedDim, [...c, { key: 'embedDim', type: codec.PositiveInt, actual: cfg.embedDim }], `embedDim: must be even (half sines, half cosines), got ${cfg.embedDim}`),
      ),
    ),
  t.identity,
);
export type ScoreNetConfig = t.TypeOf<typeof ScoreNetConfigBase>;

/** The tutorial's network: channels 32/64/128/256, embedding 256, Fourier scale 30 (1,115,297 trainable parameters). @category config */
export const tutorialScoreNetConfig: ScoreNetConfig = { channels: [32, 64, 128, 256], embedDim: 256, fourierScale: 30 };

/** A config with the tutorial's defaults overridden by `p`. @category config */
export const scoreNetConfig = (p: Partial<ScoreNetConfig> = {}): ScoreNetConfig => ({ ...tutorialScoreNetConfig, ...p });

/** Group counts of the tutorial: encoder GN(4), GN(32)×3; decoder GN(32)×3. */
const TUTORIAL_GROUPS = { enc: [4, 32, 32, 32], dec: [32, 32, 32] } as const;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * GroupNorm group counts actually used: the tutorial's counts reduced to gcd(groups, channels), so they always
 * divide the channel count (tutorial channels: exactly 4, 32, 32, 32 / 32, 32, 32; channels [8,16,16,16]:
 * 4, 16, 16, 16 / 16, 16, 8).
 * @category config
 */
export const groupCounts = (config: ScoreNetConfig): { readonly enc: ReadonlyArray<number>; readonly dec: ReadonlyArray<number> } => {
  const [c1, c2, c3] = config.channels;
  return {
    enc: config.channels.map((c, i) => gcd(TUTORIAL_GROUPS.enc[i]!, c)),
    dec: [c3, c2, c1].map((c, i) => gcd(TUTORIAL_GROUPS.dec[i]!, c)),
  };
};

// -------------------------------------------------------------------------------------
// parameters
// -------------------------------------------------------------------------------------

/** PyTorch's default bound for Linear/Conv weights and biases: kaiming_uniform(a=√5) ⇒ U(±1/√fan_in). */
const torchUniform = (fanIn: number) => ({ kind: 'uniform', bound: 1 / Math.sqrt(fanIn) }) as const;

const dense = (name: string, inDim: number, outDim: number): ReadonlyArray<ParamSpec> => [
  { name: `${name}.weight`, shape: [inDim, outDim], init: torchUniform(inDim), trainable: true },
  { name: `${name}.bias`, shape: [outDim], init: torchUniform(inDim), trainable: true },
];

const norm = (name: string, ch: number): ReadonlyArray<ParamSpec> => [
  { name: `${name}.gamma`, shape: [ch], init: { kind: 'ones' }, trainable: true },
  { name: `${name}.beta`, shape: [ch], init: { kind: 'zeros' }, trainable: true },
];

/** Conv2d weight, HWIO [3, 3, in, out]; PyTorch fan_in = in·3·3. */
const conv = (name: string, cin: number, cout: number): ParamSpec => ({
  name: `${name}.weight`,
  shape: [3, 3, cin, cout],
  init: torchUniform(cin * 9),
  trainable: true,
});

/** ConvTranspose2d weight, [3, 3, out, in] (tfjs layout); PyTorch computes its fan_in from dim 1 = out·3·3. */
const tconv = (name: string, cin: number, cout: number): ParamSpec => ({
  name: `${name}.weight`,
  shape: [3, 3, cout, cin],
  init: torchUniform(cout * 9),
  trainable: true,
});

/**
 * The parameter list of the network, in a fixed order (the order of initialisation keys and of checkpoint files).
 * Names follow the tutorial's PyTorch module names.
 * @category parameters
 */
export const scoreNetSpec = (config: ScoreNetConfig): ReadonlyArray<ParamSpec> => {
  const [c1, c2, c3, c4] = config.channels;
  const e = config.embedDim;
  return [
    { name: 'embed.W', shape: [e / 2], init: { kind: 'normal', std: config.fourierScale }, trainable: false },
    ...dense('embed.dense', e, e),
    conv('conv1', 1, c1),
    ...dense('dense1', e, c1),
    ...norm('gnorm1', c1),
    conv('conv2', c1, c2),
    ...dense('dense2', e, c2),
    ...norm('gnorm2', c2),
    conv('conv3', c2, c3),
    ...dense('dense3', e, c3),
    ...norm('gnorm3', c3),
    conv('conv4', c3, c4),
    ...dense('dense4', e, c4),
    ...norm('gnorm4', c4),
    tconv('tconv4', c4, c3),
    ...dense('dense5', e, c3),
    ...norm('tgnorm4', c3),
    tconv('tconv3', c3 + c3, c2),
    ...dense('dense6', e, c2),
    ...norm('tgnorm3', c2),
    tconv('tconv2', c2 + c2, c1),
    ...dense('dense7', e, c1),
    ...norm('tgnorm2', c1),
    tconv('tconv1', c1 + c1, 1),
    { name: 'tconv1.bias', shape: [1], init: torchUniform(1 * 9), trainable: true },
    // Last, so an unconditional network's parameters (and their initialisation keys) are what they always were.
    ...(config.classes === undefined ? [] : [{ name: 'label.embed', shape: [config.classes + 1, e], init: { kind: 'zeros' }, trainable: true } as const]),
  ];
};

/**
 * The label that means "no label" for a class-conditional network of K classes: K (the last row of its label
 * table). Undefined for an unconditional network.
 * @category config
 */
export const nullLabel = (config: ScoreNetConfig): number | undefined => config.classes;

/**
 * Number of trainable parameters (what PyTorch's `sum(p.numel() for p in model.parameters() if p.requires_grad)`
 * gives for the tutorial network): 1,115,297 for the tutorial config. `withFixed` adds the E/2 fixed Fourier
 * frequencies (PyTorch's `model.parameters()` lists them too: 1,115,425).
 * @category parameters
 */
export const parameterCount = (config: ScoreNetConfig, withFixed = false): number =>
  withFixed ? totalCount(scoreNetSpec(config)) : trainableCount(scoreNetSpec(config));

/**
 * Fresh parameters from a key, initialised as PyTorch does by default: Linear/Conv weights and biases
 * U(±1/√fan_in), GroupNorm γ = 1, β = 0, Fourier frequencies N(0, scale²).
 * @category parameters
 */
export const initScoreNet = (config: ScoreNetConfig, key: Key): Params => initParams(scoreNetSpec(config), key);

// -------------------------------------------------------------------------------------
// forward
// -------------------------------------------------------------------------------------

/** A network of (x [B,H,W,1], t [B]) ↦ [B,H,W,1]. @category model */
export type Net = (x: tf.Tensor, t: tf.Tensor) => tf.Tensor;

const linear = (x: tf.Tensor, p: TensorRecord, name: string): tf.Tensor =>
  tf.add(tf.matMul(x as tf.Tensor2D, p[`${name}.weight`] as tf.Tensor2D), p[`${name}.bias`]!);

/**
 * swish(GN(h + Dense(embed))) as one fused op (`nn.groupNormSwish`: the time bias folded into the group
 * statistics, one analytic gradient for h, γ, β and the bias), equal to the three ops up to float32 rounding.
 */
const injectNormAct = (h: tf.Tensor4D, embed: tf.Tensor, p: TensorRecord, dense: string, normName: string, groups: number): tf.Tensor4D =>
  nn.groupNormSwish(h, groups, p[`${normName}.gamma`]!, p[`${normName}.beta`]!, linear(embed, p, dense));

const w4 = (p: TensorRecord, name: string): tf.Tensor4D => p[`${name}.weight`] as tf.Tensor4D;

/** [B, H, W, C] output shape of a transposed convolution landing on `like`'s grid with `c` channels. */
const outShape = (like: tf.Tensor4D, c: number): [number, number, number, number] => [like.shape[0], like.shape[1], like.shape[2], c];

/**
 * The label embedding E[y_b] [B, embedDim] of a class-conditional network, as one-hot(y) · E (labels y_b ∈ {0..K},
 * K = no label; absent: K for every sample). Throws on labels for an unconditional network or out of range.
 */
const labelEmbedding = (config: ScoreNetConfig, p: TensorRecord, batch: number, labels: ArrayLike<number> | undefined): tf.Tensor | undefined => {
  const K = config.classes;
  if (K === undefined) {
    if (labels !== undefined) throw new Error('labels were given to a network without classes (its config has no `classes`)');
    return undefined;
  }
  const ys = labels === undefined ? new Int32Array(batch).fill(K) : Int32Array.from(labels);
  if (ys.length !== batch) throw new Error(`${ys.length} labels for a batch of ${batch}`);
  const bad = ys.findIndex((y) => !(y >= 0 && y <= K));
  if (bad >= 0) throw new Error(`label ${ys[bad]} of sample ${bad} is outside 0..${K} (${K} = no label)`);
  return tf.matMul(tf.oneHot(tf.tensor1d(ys, 'int32'), K + 1), p['label.embed'] as tf.Tensor2D);
};

/**
 * The forward pass net(x, t): x [B, 28, 28, 1] (any H, W the valid-padding ladder accepts), t [B] ↦ [B, H, W, 1],
 * un-normalised (divide by s(t) for the score). Pure and scoped: only the output survives. A class-conditional
 * network takes one label per sample, y_b ∈ {0..K} (K, or no `labels`: unconditional), and
 * embed = swish(Linear(φ(t))) + E[y].
 * @category model
 */
export const scoreNet =
  (config: ScoreNetConfig, params: TensorRecord, labels?: ArrayLike<number>): Net =>
  (x: tf.Tensor, t: tf.Tensor): tf.Tensor =>
    scoped(() => {
      const p = params;
      const g = groupCounts(config);
      const [c1, c2, c3] = config.channels;
      const x4 = x as tf.Tensor4D;
      const timeEmbed = nn.swish(linear(nn.fourierFeatures(t, p['embed.W']!), p, 'embed.dense'));
      const label = labelEmbedding(config, p, x4.shape[0], labels);
      const embed = label === undefined ? timeEmbed : tf.add(timeEmbed, label);
      // Encoder.
      const h1 = injectNormAct(nn.conv2d(x4, w4(p, 'conv1'), 1, 'valid'), embed, p, 'dense1', 'gnorm1', g.enc[0]!);
      const h2 = injectNormAct(nn.conv2d(h1, w4(p, 'conv2'), 2, 'valid'), embed, p, 'dense2', 'gnorm2', g.enc[1]!);
      const h3 = injectNormAct(nn.conv2d(h2, w4(p, 'conv3'), 2, 'valid'), embed, p, 'dense3', 'gnorm3', g.enc[2]!);
      const h4 = injectNormAct(nn.conv2d(h3, w4(p, 'conv4'), 2, 'valid'), embed, p, 'dense4', 'gnorm4', g.enc[3]!);
      // Decoder, with skip connections concatenated along channels.
      const d4 = injectNormAct(nn.conv2dTranspose(h4, w4(p, 'tconv4'), outShape(h3, c3), 2, 'valid'), embed, p, 'dense5', 'tgnorm4', g.dec[0]!);
      const d3 = injectNormAct(nn.conv2dTranspose(tf.concat([d4, h3], 3), w4(p, 'tconv3'), outShape(h2, c2), 2, 'valid'), embed, p, 'dense6', 'tgnorm3', g.dec[1]!);
      const d2 = injectNormAct(nn.conv2dTranspose(tf.concat([d3, h2], 3), w4(p, 'tconv2'), outShape(h1, c1), 2, 'valid'), embed, p, 'dense7', 'tgnorm2', g.dec[2]!);
      const out = nn.conv2dTranspose(tf.concat([d2, h1], 3), w4(p, 'tconv1'), outShape(x4, 1), 1, 'valid');
      return tf.add(out, p['tconv1.bias']!);
    });
