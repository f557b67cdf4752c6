import * as E from 'fp-ts/Either';
import { tf, random, codec, initBackend } from '@score-sde/tensor-fp';
import { tutorial } from '@score-sde/sde-math';
import { identity } from '@score-sde/tensor-fp/testing';
import {
  TrainConfig,
  scoreNetConfig,
  scoreNetSpec,
  initScoreNet,
  scoreNet,
  nullLabel,
  disposeRecord,
  trainingLabels,
  sampleLabels,
  classFrequencies,
  adamConfig,
  defaultLossConfig,
  type TensorRecord,
} from '../src';
import { maxAbs, maxAbsDiff, U32 } from './helpers';

const dropoutShare = identity({
  concept: 'training',
  title: 'Label dropout drops each label with probability p',
  formula: String.raw`$\tilde y_b = K$ (no label) if $u_b < p$, else $y_b$, $u_b \sim U(0, 1)$: $\Pr[\tilde y_b = K] = p$, and a kept label is the data's own`,
  source: 'classifier-free guidance (Ho & Salimans 2022): one network learns p(x | y) and p(x)',
  tolerance: '5 SE of the share of n labels, SE = √(p(1 − p)/n)',
});

const labelPrior = identity({
  concept: 'guidance',
  title: 'Sample labels follow the class prior',
  formula: String.raw`$y_b \sim \pi$ from $\mathrm{foldIn}(k_b, \cdot)$ alone: $\Pr[y_b = k] = \pi_k / \sum_j \pi_j$`,
  source: 'a class-conditional sampler draws p(x) = Σ_y π_y p(x | y) when its labels follow the data’s class frequencies',
  tolerance: '5 SE per class of n labels, SE = √(π_k(1 − π_k)/n)',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const K = 10;
const tiny = scoreNetConfig({ channels: [8, 16, 16, 16], embedDim: 32 });
const tinyConditional = { ...tiny, classes: K };

/** Parameters of the conditional network with a random (non-zero) label table, so that the label matters. */
const withRandomLabels = (seed: number): TensorRecord => {
  const p = initScoreNet(tinyConditional, random.key(seed));
  const table = p['label.embed']! as tf.Variable;
  table.assign(random.normal(random.key(seed + 1), table.shape));
  return p;
};

describe('class-conditional ScoreNet', () => {
  test('the classes option adds exactly one parameter, the label table E [K + 1, embedDim], after the unconditional network’s', () => {
    const plain = scoreNetSpec(tiny);
    const conditional = scoreNetSpec(tinyConditional);
    expect(conditional.slice(0, plain.length)).toEqual(plain);
    expect(conditional.slice(plain.length).map((s) => [s.name, s.shape])).toEqual([['label.embed', [K + 1, 32]]]);
    expect(nullLabel(tinyConditional)).toBe(K);
    expect(nullLabel(tiny)).toBeUndefined();
  });

  test('with its initial, zero label table the conditional network is the unconditional one, bit for bit, for every label (same key, same weights)', () => {
    const p = initScoreNet(tinyConditional, random.key(3));
    const q = initScoreNet(tiny, random.key(3));
    const x = random.uniform(random.key(4), [3, 28, 28, 1]);
    const t = tf.tensor1d([0.1, 0.5, 0.9]);
    const plain = scoreNet(tiny, q)(x, t);
    for (const labels of [undefined, [0, 4, 9], [K, K, K]]) {
      const y = scoreNet(tinyConditional, p, labels)(x, t);
      expect(maxAbsDiff(y, plain)).toBe(0);
      y.dispose();
    }
    tf.dispose([x, t, plain]);
    disposeRecord(p);
    disposeRecord(q);
  });

  test('net(x, t | y)_b = net(x_b, t_b | y_b): each sample sees its own label only; no labels means y = K (no label) for all', () => {
    const p = withRandomLabels(5);
    const x = random.uniform(random.key(6), [3, 28, 28, 1]);
    const ts = [0.05, 0.4, 0.95];
    const labels = [2, K, 7];
    const y = scoreNet(tinyConditional, p, labels)(x, tf.tensor1d(ts));
    for (let b = 0; b < 3; b++) {
      const xb = tf.slice(x, [b, 0, 0, 0], [1, 28, 28, 1]);
      const yb = scoreNet(tinyConditional, p, [labels[b]!])(xb, tf.tensor1d([ts[b]!]));
      const rowB = tf.slice(y, [b, 0, 0, 0], [1, 28, 28, 1]);
      // As for the unconditional network (scorenet.test): batched kernels sum in another order, O(10) layers of sums
      // of ≤ 9·32 unit-scale terms.
      expect(maxAbsDiff(yb, rowB)).toBeLessThanOrEqual(10 * 288 * U32 * Math.max(1, maxAbs(rowB)));
      tf.dispose([xb, yb, rowB]);
    }
    const none = scoreNet(tinyConditional, p)(x, tf.tensor1d(ts));
    const allNull = scoreNet(tinyConditional, p, [K, K, K])(x, tf.tensor1d(ts));
    expect(maxAbsDiff(none, allNull)).toBe(0);
    // The label matters: another label changes the output by far more than rounding.
    const other = scoreNet(tinyConditional, p, [3, K, 7])(x, tf.tensor1d(ts));
    expect(maxAbsDiff(tf.slice(other, [0, 0, 0, 0], [1, 28, 28, 1]), tf.slice(y, [0, 0, 0, 0], [1, 28, 28, 1]))).toBeGreaterThan(1e-3 * Math.max(1, maxAbs(y)));
    tf.dispose([x, y, none, allNull, other]);
    disposeRecord(p);
  });

  test('labels out of 0..K, of the wrong count, or given to an unconditional network are errors that say so', () => {
    const p = initScoreNet(tinyConditional, random.key(1));
    const q = initScoreNet(tiny, random.key(1));
    const x = tf.zeros([2, 28, 28, 1]);
    const t = tf.tensor1d([0.5, 0.5]);
    expect(() => scoreNet(tinyConditional, p, [0, K + 1])(x, t)).toThrow(/label 11 of sample 1 is outside 0\.\.10/);
    expect(() => scoreNet(tinyConditional, p, [0])(x, t)).toThrow(/1 labels for a batch of 2/);
    expect(() => scoreNet(tiny, q, [0, 1])(x, t)).toThrow(/network without classes/);
    tf.dispose([x, t]);
    disposeRecord(p);
    disposeRecord(q);
  });
});

describe('labels in training and sampling', () => {
  const config: TrainConfig = {
    model: tinyConditional,
    sde: tutorial(),
    loss: defaultLossConfig,
    optim: adamConfig({ lr: 1e-3 }),
    emaDecay: 0.999,
    batchSize: 4,
    conditioning: { dropout: 0.3, prior: [0.1, 0.2, 0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1] },
  };

  test('label dropout: a share p of the labels becomes K, the others are the data’s own, and the draw is a function of the step key', () => {
    const n = 20_000;
    const data = Int32Array.from({ length: n }, (_, i) => i % K);
    const key = random.key(11);
    const y = trainingLabels(config, data, key)!;
    const dropped = y.filter((v) => v === K).length;
    y.forEach((v, b) => {
      if (v !== K) expect(v).toBe(data[b]);
    });
    const p = config.conditioning!.dropout;
    dropoutShare.withinSE(dropped / n, p, Math.sqrt((p * (1 - p)) / n));
    expect(trainingLabels(config, data, key)).toEqual(y);
    expect(trainingLabels({ ...config, conditioning: { ...config.conditioning!, dropout: 0 } }, data, key)).toEqual(data);
    expect(trainingLabels({ ...config, model: tiny, conditioning: undefined } as TrainConfig, undefined, key)).toBeUndefined();
    expect(() => trainingLabels(config, undefined, key)).toThrow(/trains on labelled batches/);
  });

  test('sample labels follow the prior, and sample b’s label depends on its key alone', () => {
    const n = 20_000;
    const keys = random.split(random.key(12), n);
    const y = sampleLabels(config, keys)!;
    const prior = config.conditioning!.prior;
    const freq = classFrequencies(y, K);
    prior.forEach((pk, k) => labelPrior.withinSE(freq[k]!, pk, Math.sqrt((pk * (1 - pk)) / n), {}, { class: String(k) }));
    // A subset of the keys, in another order, gets the same labels.
    const picked = [17, 3, 999, 4];
    expect(Array.from(sampleLabels(config, picked.map((i) => keys[i]!))!)).toEqual(picked.map((i) => y[i]));
    expect(sampleLabels({ ...config, model: tiny, conditioning: undefined } as TrainConfig, keys)).toBeUndefined();
  });

  test('the config codec: conditioning goes with classes, its prior has K weights, dropout < 1; each problem names the field', () => {
    const decode = codec.decodeWith(TrainConfig);
    const encoded = TrainConfig.encode(config);
    expect(decode(encoded)).toEqual(E.right(config));
    const problems = (u: unknown): string => {
      const r = decode(u);
      return E.isLeft(r) ? r.left.problems.join('; ') : 'decoded';
    };
    expect(problems({ ...encoded, conditioning: undefined })).toMatch(/conditioning: a network of 10 classes needs its label dropout and class prior/);
    expect(problems({ ...encoded, model: tiny })).toMatch(/conditioning: the network has no classes/);
    expect(problems({ ...encoded, conditioning: { dropout: 0.1, prior: [1, 2] } })).toMatch(/conditioning\.prior: 2 weights for 10 classes/);
    expect(problems({ ...encoded, conditioning: { dropout: 1, prior: config.conditioning!.prior } })).toMatch(/conditioning\.dropout: must be below 1/);
    expect(problems({ ...encoded, conditioning: { dropout: 0.1, prior: new Array(10).fill(0) } })).toMatch(/conditioning\.prior: the weights sum to 0/);
    expect(problems({ ...encoded, conditioning: { dropout: -0.1, prior: config.conditioning!.prior } })).toMatch(/conditioning\.dropout/);
  });

  test('classFrequencies: the share of each class among the labels', () => {
    expect(classFrequencies([0, 1, 1, 3], 4)).toEqual([0.25, 0.5, 0, 0.25]);
  });
});
