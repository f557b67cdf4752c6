import * as E from 'fp-ts/Either';
import { tf, random, initBackend, codec, leakedBy } from '@score-sde/tensor-fp';
import { tutorial } from '@score-sde/sde-math';
import {
  ClassifierConfig,
  classifierConfig,
  mnistClassifierConfig,
  classifierParameterCount,
  initClassifier,
  classifierLogits,
  classifierFeatures,
  classifierLogProbs,
  classifierLoss,
  crossEntropy,
  trainClassifier,
  classifierLogLikelihood,
  perturbForClassifier,
  featuresInBatches,
  summariseProbabilities,
  histogramEntropyBits,
  accuracy,
  cosineLearningRate,
} from '../src/classifier/index';
import type { MnistData } from '../src';

const U32 = 2 ** -24; // float32 unit roundoff

/** Tiny configs so the tests stay fast (8×8 images: the last feature map is 2×2). */
const tiny = classifierConfig({ imageSize: 8, channels: [4, 8, 8], featureDim: 8 });
const tinyNoisy = classifierConfig({ imageSize: 8, channels: [4, 8, 8], featureDim: 8, noiseConditional: true, embedDim: 8 });

/** Training-sized configs: wide enough (groups of ≥ 2 channels before the pool) to learn in a dozen steps. */
const small = classifierConfig({ imageSize: 8, channels: [8, 16, 32], featureDim: 16 });
const smallNoisy = classifierConfig({ imageSize: 8, channels: [8, 16, 32], featureDim: 16, noiseConditional: true, embedDim: 8 });

/**
 * A balanced toy batch over all 10 classes: x_b = P_{y_b} + 0.1·z_b with one random U(0,1) prototype image P_k
 * per class. Balanced labels matter: a loss below log 10 cannot be reached by the output bias alone, only by
 * using the input.
 */
const toyBatch = (n: number, size: number, seed: number): { readonly x: tf.Tensor4D; readonly labels: ReadonlyArray<number>; readonly data: MnistData } => {
  const labels = Array.from({ length: n }, (_, i) => i % 10);
  const protos = random.uniformArray(random.key(seed), 10 * size * size);
  const noise = random.normalArray(random.key(seed + 1), n * size * size);
  const d = size * size;
  const data = new Float32Array(n * d);
  labels.forEach((l, b) => {
    for (let j = 0; j < d; j++) data[b * d + j] = protos[l * d + j]! + 0.1 * noise[b * d + j]!;
  });
  return { x: tf.tensor4d(data, [n, size, size, 1]), labels, data: { count: n, rows: size, cols: size, images: data, labels: Uint8Array.from(labels) } };
};

/**
 * Guidance as the solvers build it, scale · ∇ₓ Σ_b log p_t(y_b | x_b) (solvers' `logLikelihoodGradient`, written out
 * here: models does not depend on solvers).
 */
const guidance =
  (config: ClassifierConfig, p: Parameters<typeof classifierLogLikelihood>[1], labels: ReadonlyArray<number>, scale = 1) =>
  (x: tf.Tensor, time: number): tf.Tensor =>
    tf.tidy(() => tf.mul(tf.grad((xx: tf.Tensor) => tf.sum(classifierLogLikelihood(config, p, labels)(xx, time)) as tf.Scalar)(x), scale));

describe('classifier on wasm: shapes, parameters, guidance', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
  });

  it('parameter count = Σ layer sizes (convs + biases + GroupNorm γ,β + dense layers on the flattened 7×7 map) for the MNIST config', () => {
    const [c1, c2, c3] = mnistClassifierConfig.channels;
    const f = mnistClassifierConfig.featureDim;
    const block = (cin: number, cout: number) => 9 * cin * cout + cout + 2 * cout;
    const expected = block(1, c1) + block(c1, c2) + block(c2, c3) + (7 * 7 * c3 * f + f) + (f * 10 + 10);
    expect(classifierParameterCount(mnistClassifierConfig)).toBe(expected);
    expect(expected).toBe(897354);
  });

  it('logits are [B, numClasses] and features [B, featureDim], for the clean and the noise-conditional network', () => {
    const pc = initClassifier(tiny, random.key(1));
    const pn = initClassifier(tinyNoisy, random.key(2));
    const x = random.normal(random.key(3), [3, 8, 8, 1]);
    const times = tf.tensor1d([0.1, 0.5, 0.9]);
    const leaked = leakedBy(() => [
      classifierLogits(tiny, pc)(x),
      classifierFeatures(tiny, pc)(x),
      classifierLogits(tinyNoisy, pn)(x, 0.5),
      classifierLogits(tinyNoisy, pn)(x, times),
    ]);
    expect(leaked).toBe(0);
    expect(classifierLogits(tiny, pc)(x).shape).toEqual([3, 10]);
    expect(classifierFeatures(tiny, pc)(x).shape).toEqual([3, 8]);
    expect(classifierFeatures(tinyNoisy, pn)(x, 0.5).shape).toEqual([3, 8]);
    expect(() => classifierLogits(tinyNoisy, pn)(x)).toThrow(/needs times t/);
    tf.dispose([x, times, ...Object.values(pc), ...Object.values(pn)]);
  });

  it('the noise-conditional logits depend on t; the same t as a number or a [B] tensor gives the same logits', () => {
    const p = initClassifier(tinyNoisy, random.key(4));
    const x = random.normal(random.key(5), [2, 8, 8, 1]);
    const a = classifierLogits(tinyNoisy, p)(x, 0.2).arraySync();
    const b = classifierLogits(tinyNoisy, p)(x, tf.tensor1d([0.2, 0.2])).arraySync();
    const c = classifierLogits(tinyNoisy, p)(x, 0.8).arraySync();
    expect(b).toEqual(a);
    expect(Math.max(...a.flat().map((v, i) => Math.abs(v - c.flat()[i]!)))).toBeGreaterThan(1e-4);
    tf.dispose([x, ...Object.values(p)]);
  });

  it('crossEntropy = −mean log softmax(logits)_y (hand example: logits (0, 0) → log 2; (ln 3, 0) with y = 0 → log 4/3)', () => {
    const l = tf.tensor2d([0, 0, Math.log(3), 0], [2, 2]);
    const ce = crossEntropy(l, [1, 0]).dataSync()[0]!;
    // A few float32 roundings on numbers ≤ 1: 16 ulps.
    expect(Math.abs(ce - (Math.log(2) + Math.log(4 / 3)) / 2)).toBeLessThanOrEqual(16 * U32);
    l.dispose();
  });

  it('classifier guidance = ∇ₓ Σ_b log softmax(logits(x_b, t))_{y_b}: equals central finite differences of log p(y | x)', () => {
    const p = initClassifier(tinyNoisy, random.key(6));
    // Sharpen the output layer so p(y | x) is far from uniform and the gradient is large compared with rounding.
    p['logits.weight']!.assign(tf.mul(p['logits.weight']!, 20));
    const x = random.normal(random.key(7), [3, 8, 8, 1]);
    const labels = [1, 7, 3];
    const time = 0.3;
    const scale = 2.5;
    const before = tf.memory().numTensors;
    const g = guidance(tinyNoisy, p, labels, scale)(x, time);
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(g.shape).toEqual(x.shape);
    const f = (xx: tf.Tensor): number =>
      tf.tidy(() => tf.sum(tf.mul(classifierLogProbs(tinyNoisy, p)(xx, time), tf.oneHot(tf.tensor1d(labels, 'int32'), 10))).dataSync()[0]!);
    const f0 = Math.abs(f(x));
    const fd = (v: tf.Tensor, h: number): number => tf.tidy(() => (f(tf.add(x, tf.mul(v, h))) - f(tf.sub(x, tf.mul(v, h)))) / (2 * h));
    const gNorm = tf.tidy(() => tf.norm(g).dataSync()[0]! / scale);
    const gAbs = Float32Array.from(g.dataSync());
    const iMax = gAbs.reduce((best, v, i) => (Math.abs(v) > Math.abs(gAbs[best]!) ? i : best), 0);
    const directions = [
      tf.tidy(() => tf.div(g, tf.norm(g))), // along the gradient: ⟨∇f, v⟩ = ‖∇f‖
      tf.tidy(() => tf.reshape(tf.oneHot(tf.tensor1d([iMax], 'int32'), x.size), x.shape)), // the steepest pixel
      tf.tidy(() => {
        const v = random.normal(random.key(8), x.shape);
        return tf.div(v, tf.norm(v));
      }),
    ];
    const h = 1e-2;
    // Rounding part of the error bound: f is a float32 sum of logits through ~8 layers of ≤ 72-term sums, accurate to a
    // few hundred ulps of (1 + |f|); the central difference divides the difference of two such values by 2h.
    const rounding = (2 * 256 * U32 * (1 + f0)) / (2 * h);
    directions.forEach((v, k) => {
      const analytic = tf.tidy(() => tf.sum(tf.mul(g, v)).dataSync()[0]! / scale);
      const numeric = fd(v, h);
      // Error of the central difference (‖v‖ = 1):
      //  · truncation h²/6·f''' — to leading order (FD(2h) − FD(h))/3 (Richardson), so |FD(2h) − FD(h)| bounds it
      //    with a factor-3 margin;
      //  · rounding, above; and the analytic side is float32 too: 256·u·‖∇f‖.
      const tol = Math.abs(fd(v, 2 * h) - numeric) + rounding + 256 * U32 * gNorm;
      expect(Math.abs(numeric - analytic)).toBeLessThanOrEqual(tol);
      // The check has teeth: along the gradient and at the steepest pixel the whole tolerance is under a quarter of
      // the derivative being checked, so a wrong sign, a factor 2 or a missing term would fail.
      if (k < 2) expect(tol).toBeLessThan(0.25 * Math.abs(analytic));
    });
    tf.dispose([x, g, ...directions, ...Object.values(p)]);
  });

  it('classifierLogLikelihood(y)(x, t)_b = log softmax(logits(x_b, t))_{y_b}, shape [B]', () => {
    const p = initClassifier(tinyNoisy, random.key(15));
    const x = random.normal(random.key(16), [3, 8, 8, 1]);
    const ll = classifierLogLikelihood(tinyNoisy, p, [2, 0, 9])(x, 0.4);
    const lp = classifierLogProbs(tinyNoisy, p)(x, 0.4).arraySync();
    expect(ll.shape).toEqual([3]);
    // Same float32 numbers picked out by a one-hot product: exact up to adding zeros.
    expect(Array.from(ll.dataSync())).toEqual([lp[0]![2]!, lp[1]![0]!, lp[2]![9]!]);
    tf.dispose([x, ll, ...Object.values(p)]);
  });

  it('guidance of sample b depends only on x_b and y_b (samples are independent)', () => {
    const p = initClassifier(tiny, random.key(9));
    const x = random.normal(random.key(10), [2, 8, 8, 1]);
    const both = guidance(tiny, p, [4, 2])(x, 0.5);
    const first = guidance(tiny, p, [4])(tf.slice(x, 0, 1), 0.5);
    // The two computations do the same float32 operations on sample 0 except the batch reduction order: a few ulps.
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(tf.slice(both, 0, 1), first))).dataSync()[0]!);
    const mag = tf.tidy(() => tf.max(tf.abs(first)).dataSync()[0]!);
    expect(diff).toBeLessThanOrEqual(64 * U32 * mag);
    tf.dispose([x, both, first, ...Object.values(p)]);
  });

  it('perturbForClassifier draws t in [ε, T] and is a pure function of its key', () => {
    const x = tf.zeros([4, 8, 8, 1]);
    const sch = { sde: tutorial(), key: random.key(11), eps: 1e-3 };
    const a = perturbForClassifier(sch, random.key(12), x);
    const b = perturbForClassifier(sch, random.key(12), x);
    a.t.forEach((ti) => expect(ti >= 1e-3 && ti <= 1).toBe(true));
    expect(Array.from(a.xt.dataSync())).toEqual(Array.from(b.xt.dataSync()));
    tf.dispose([x, a.xt, b.xt]);
  });

  it('featuresInBatches gives the same rows whatever the batch size', () => {
    const p = initClassifier(tiny, random.key(13));
    const x = random.normal(random.key(14), [5, 8, 8, 1]);
    const a = featuresInBatches(tiny, p, x, 2);
    const b = featuresInBatches(tiny, p, x, 5);
    expect(a.length).toBe(5 * 8);
    // Per-sample computation: batching changes nothing but kernel blocking, a few ulps.
    a.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(64 * U32 * (1 + Math.abs(v))));
    tf.dispose([x, ...Object.values(p)]);
  });

  it('ClassifierConfig rejects unknown keys and an odd embedDim, naming the field', () => {
    const bad = codec.decodeWith(ClassifierConfig)({ ...mnistClassifierConfig, embedDim: 7, extra: 1 });
    expect(E.isLeft(bad) && bad.left.problems.join('\n')).toMatch(/extra: unknown key/);
    const odd = codec.decodeWith(ClassifierConfig)({ ...mnistClassifierConfig, embedDim: 7 });
    expect(E.isLeft(odd) && odd.left.problems.join('\n')).toMatch(/embedDim: must be even/);
    expect(E.isRight(codec.decodeWith(ClassifierConfig)(mnistClassifierConfig))).toBe(true);
  });
});

describe('cosine learning-rate decay', () => {
  it('lr_i = lr·½(1 + cos(πi/N)): lr at i = 0, lr/2 at N/2, 0 from N on, non-increasing; constant without N', () => {
    const lr = 2e-3;
    const N = 100;
    expect(cosineLearningRate(lr, N, 0)).toBe(lr);
    expect(cosineLearningRate(lr, N, N / 2)).toBeCloseTo(lr / 2, 15);
    expect(cosineLearningRate(lr, N, N)).toBeCloseTo(0, 15);
    expect(cosineLearningRate(lr, N, 3 * N)).toBeCloseTo(0, 15);
    // symmetry of the cosine about N/2: lr_i + lr_{N−i} = lr
    for (const i of [1, 17, 40]) expect(cosineLearningRate(lr, N, i) + cosineLearningRate(lr, N, N - i)).toBeCloseTo(lr, 15);
    const seq = Array.from({ length: N + 1 }, (_, i) => cosineLearningRate(lr, N, i));
    seq.slice(1).forEach((v, i) => expect(v).toBeLessThanOrEqual(seq[i]!));
    expect(cosineLearningRate(lr, undefined, 12345)).toBe(lr);
  });
});

describe('class summaries', () => {
  it('argmax predictions, histogram, mean max-probability; entropy of a balanced histogram = log₂ K', () => {
    const probs = [0.7, 0.2, 0.1, 0.1, 0.1, 0.8, 0.2, 0.5, 0.3];
    const s = summariseProbabilities(probs, 3);
    expect(Array.from(s.predictions)).toEqual([0, 2, 1]);
    expect(s.histogram).toEqual([1, 1, 1]);
    expect(s.meanMaxProb).toBeCloseTo((0.7 + 0.8 + 0.5) / 3, 12);
    expect(s.histogramEntropyBits).toBeCloseTo(Math.log2(3), 12);
    expect(histogramEntropyBits([5, 0, 0])).toBe(0);
    expect(accuracy([1, 2, 3, 4], [1, 2, 0, 4])).toBe(0.75);
  });

  it('the confident-class rate is the fraction of images with max_y p(y | x) ≥ 0.9 (the threshold included)', () => {
    const probs = [0.95, 0.05, 0.9, 0.1, 0.5, 0.5, 0.1, 0.89];
    expect(summariseProbabilities(probs, 2).confidentRate).toBe(2 / 4);
    expect(summariseProbabilities([0.3, 0.7], 2).confidentRate).toBe(0);
  });
});

describe('classifier training on cpu (wasm has no Conv2DBackpropFilter yet)', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'cpu', quiet: true });
  });

  it('a few Adam steps (epochs of one whole batch) reduce the cross-entropy on a tiny fixed set, leaking no tensor', async () => {
    const p = initClassifier(small, random.key(20));
    const { x, labels, data } = toyBatch(10, 8, 21);
    const lossOf = () => tf.tidy(() => classifierLoss(small, p)(x, labels).dataSync()[0]!);
    const before = lossOf();
    const live = tf.memory().numTensors;
    const { losses } = await trainClassifier(small, p, data, { epochs: 6, batchSize: 10, lr: 3e-2, schedule: 'constant', key: random.key(22) });
    expect(tf.memory().numTensors).toBe(live);
    const after = lossOf();
    // Deterministic (fixed keys, fixed data): an optimisation check, not a statistical one. At initialisation the
    // loss is ≈ log 10 ≈ 2.3; with balanced labels the bias alone cannot go below log 10, so halving it requires
    // gradients that actually point downhill through the whole network.
    expect(before).toBeGreaterThan(2);
    expect(after).toBeLessThan(0.5 * before);
    expect(losses.length).toBe(6);
    expect(losses[0]).toBeCloseTo(before, 5);
    tf.dispose([x, ...Object.values(p)]);
  });

  it('the noise-conditional classifier trains on perturbed batches (loss at held-out fixed perturbations goes down)', async () => {
    const p = initClassifier(smallNoisy, random.key(30));
    const { x, labels, data } = toyBatch(10, 8, 31);
    const noise = { sde: tutorial({ sigma: 1.5 }), key: random.key(32), eps: 1e-3 };
    // Evaluate on perturbations drawn from a key the training stream never uses.
    const held = perturbForClassifier(noise, random.key(33), x);
    const ts = tf.tensor1d(held.t);
    const lossOf = () => tf.tidy(() => classifierLoss(smallNoisy, p)(held.xt, labels, ts).dataSync()[0]!);
    const before = lossOf();
    const live = tf.memory().numTensors;
    const { losses } = await trainClassifier(smallNoisy, p, data, { epochs: 8, batchSize: 10, lr: 3e-2, schedule: 'constant', key: random.key(34), noise });
    expect(tf.memory().numTensors).toBe(live);
    const after = lossOf();
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(before).toBeGreaterThan(2); // ≈ log 10 at initialisation (and a cross-entropy is positive)
    // Deterministic as above. A weaker bar than the clean case: at large t the noise (std up to ≈ 1.2 for σ = 1.5)
    // hides the label, so the held-out loss can only fall part of the way; below 0.85·log 10 still needs the input.
    expect(after).toBeLessThan(0.85 * before);
    tf.dispose([x, held.xt, ts, ...Object.values(p)]);
  });
});
