import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, random } from '@score-sde/tensor-fp';
import { clampedDenoiserScore } from '@score-sde/sde-math';
import {
  initTrainState,
  disposeTrainState,
  trainStep,
  trainLoop,
  renderTrainLoopFailure,
  epochOrder,
  runKeys,
  emaParams,
  loadCheckpoint,
  renderCheckpointError,
  renderTrainError,
  scoreNetConfig,
  adamConfig,
  dsmLoss,
  dsmDraws,
  scoreNet,
  loadMnist,
  imageBatch,
  recordValues,
  type MnistData,
  type TrainConfig,
  type TrainState,
  type TensorRecord,
  trainingBatch,
  toModelSpace,
  stepPartGradients,
  microBatchRanges,
  TrainConfig as TrainConfigC,
  type PartGradientSource,
  scoreOfRun,
} from '../src';
import { bitEqual, initTrainingBackend, tinyTrainConfig, U32 } from './helpers';
import { identity } from '@score-sde/tensor-fp/testing';

const centredTraining = identity({
  concept: 'training',
  title: 'Centred dequantisation of the training images is uniform on each level’s cell',
  formula: String.raw`$\tilde x = x + (u - \tfrac12)/255$, $u \sim U(0, 1)$: $|255\,(\tilde x - x)| \le \tfrac12$, $\mathbb E[255(\tilde x - x)] = 0$, $\mathrm{Var}[255(\tilde x - x)] = \tfrac1{12}$`,
  source: 'uniform dequantisation (Theis et al. 2016) with cells centred on the levels k/255, the cells of bits/dim with --bpd-cells centred',
  tolerance: 'the cell: float32 rounding (1e−4 of a level); mean and variance: 5 SE of n draws, SE = √(1/(12n)) and √(1/(180n)) (Var[(u − ½)²] = 1/80 − 1/144)',
});

const batchParts = identity({
  concept: 'training',
  title: 'A batch’s parts carry the whole batch’s draws, and their losses sum to its loss',
  formula: String.raw`$L = \tfrac1B \sum_{b<B} \ell_b = \sum_{k<K} L_k$, $L_k = \tfrac1B \sum_{b \in \text{part } k} \ell_b$, sample $b$ of part $k$ drawing from $\mathrm{split}(\text{key}, B)_b$`,
  source: 'data-parallel training (models microBatches): a sum over samples split into contiguous blocks; the gradient of each part is taken alone and summed in part order',
  tolerance: 'draws: exact. Losses: the per-sample terms ℓ_b ≥ 0 are the same bits in any batch (batch-invariant network), so only the float32 sums differ: |ΣL_k − L| ≤ 2(B + 1)·2⁻²⁴·L',
});

let backend: string;
let data: MnistData;

beforeAll(async () => {
  backend = await initTrainingBackend();
  const r = await loadMnist({ split: 'train', subset: 32 })();
  if (E.isLeft(r)) throw new Error(r.left.message);
  data = r.right;
});

/**
 * A narrow network (4/8/8/8 channels, 16-d embedding) at batch 2, with a large learning rate so that a couple of
 * dozen steps show learning: a training step is cheap even on the cpu backend.
 */
const small: TrainConfig = { ...tinyTrainConfig, optim: adamConfig({ lr: 1e-2 }), batchSize: 2 };

/** The same, class-conditional: 10 classes, each label dropped to "no label" with probability ½. */
const smallConditional: TrainConfig = { ...small, model: { ...small.model, classes: 10 }, conditioning: { dropout: 0.5, prior: new Array<number>(10).fill(0.1) } };

/** The first n images of the subset. */
const subset = (n: number): MnistData => ({ ...data, count: n, images: data.images.subarray(0, n * 784), labels: data.labels.subarray(0, n) });

const run = async (config: TrainConfig, state: TrainState, d: MnistData, until: number) => {
  const r = await trainLoop(config)(state, d, { untilStep: until });
  if (E.isLeft(r)) throw new Error(renderTrainLoopFailure(r.left));
  return r.right;
};

const allBitEqual = (a: TensorRecord, b: TensorRecord): ReadonlyArray<string> => Object.keys(a).filter((n) => !bitEqual(a[n]!, b[n]!));

describe(`training (backend chosen by initTrainingBackend)`, () => {
  test('the loss goes down on a fixed subset: after 24 steps the held-fixed evaluation loss is below half its start and below the zero network', async () => {
    // The tiny config of the brief: channels [8, 16, 16, 16], a 32-d embedding, batches of 4 from 32 images.
    const config: TrainConfig = { ...small, model: scoreNetConfig({ channels: [8, 16, 16, 16], embedDim: 32 }), batchSize: 4 };
    const state = initTrainState(config, random.key(0));
    const x = imageBatch(data, Array.from({ length: 16 }, (_, i) => i));
    const evalKey = random.key(99);
    // The evaluation loss uses one batch and one key (same t's and noise): a deterministic function of θ.
    const evalLoss = (p: TensorRecord): number => tf.tidy(() => dsmLoss(config.sde)(scoreNet(config.model, p), x, evalKey).dataSync()[0]!);
    const before = evalLoss(state.params);
    const { state: after, losses } = await run(config, state, data, 24);
    const l1 = evalLoss(after.params);
    // The zero network's loss is mean_b ‖z_b‖² (≈ 784): beating it means the network predicts part of the noise.
    const { noise } = dsmDraws(config.sde, 1e-5, evalKey, 16, [28, 28, 1]);
    const zeroLoss = Array.from(noise.dataSync()).reduce((a, v) => a + v * v, 0) / 16;
    noise.dispose();
    process.stdout.write(`[models] ${backend}: eval loss ${before.toFixed(1)} → ${l1.toFixed(1)} (zero network ${zeroLoss.toFixed(1)}); step losses ${losses.map((l) => l.toFixed(0)).join(' ')}\n`);
    expect(losses).toHaveLength(24);
    expect(l1).toBeLessThan(before / 2);
    expect(l1).toBeLessThan(zeroLoss);
    x.dispose();
    disposeTrainState(after);
  });

  test.each([
    ['unconditional', small],
    ['class-conditional, label dropout ½', smallConditional],
  ] as const)('resume equals uninterrupted (%s): 3 steps + stop + save + load + 2 steps ≡ 5 steps, bit-identically (weights, EMA, Adam moments)', async (_, config) => {
    const d = subset(4); // 2 batches per epoch: the runs cross epoch boundaries and resume mid-epoch.
    const straight = await run(config, initTrainState(config, random.key(5)), d, 5);
    // The interrupted run is stopped from outside after 3 steps, as Ctrl-C would (the loop asks between steps), and
    // the loop saves the checkpoint (with its losses) where it stopped.
    let taken = 0;
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'resume-'));
    const interrupted = await trainLoop(config)(initTrainState(config, random.key(5)), d, {
      untilStep: 5,
      checkpoint: { dir: path.join(dir, 'ckpt') },
      onStep: (p) => (taken = p.step),
      shouldStop: () => taken >= 3,
    });
    if (E.isLeft(interrupted)) throw new Error(renderTrainLoopFailure(interrupted.left));
    const first = interrupted.right;
    expect([first.stopped, first.state.step]).toEqual([true, 3]);
    disposeTrainState(first.state);
    const loaded = await loadCheckpoint(path.join(dir, 'ckpt'), { model: config.model, sde: config.sde })();
    if (E.isLeft(loaded)) throw new Error(renderCheckpointError(loaded.left));
    const stored = loaded.right.meta['losses'] as number[];
    const second = await run(loaded.right.config, loaded.right.state, d, 5);
    expect([...stored, ...second.losses]).toEqual(straight.losses);
    expect(second.state.step).toBe(5);
    expect(second.state.adam.step).toBe(5);
    expect(allBitEqual(second.state.params, straight.state.params)).toEqual([]);
    expect(allBitEqual(second.state.ema, straight.state.ema)).toEqual([]);
    expect(allBitEqual(second.state.adam.m, straight.state.adam.m)).toEqual([]);
    expect(allBitEqual(second.state.adam.v, straight.state.adam.v)).toEqual([]);
    [straight.state, second.state].forEach(disposeTrainState);
    await fs.rm(dir, { recursive: true });
  });

  test('a snapshot saved at step 2 of a 5-step run is the state of a 2-step run, bit for bit, and the run goes on unchanged', async () => {
    const d = subset(4);
    const short = await run(small, initTrainState(small, random.key(7)), d, 2);
    const straight = await run(small, initTrainState(small, random.key(7)), d, 5);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapshot-'));
    const r = await trainLoop(small)(initTrainState(small, random.key(7)), d, { untilStep: 5, snapshots: [{ step: 2, dir: path.join(dir, 'guide') }] });
    if (E.isLeft(r)) throw new Error(renderTrainLoopFailure(r.left));
    const snap = await loadCheckpoint(path.join(dir, 'guide'), { model: small.model, sde: small.sde })();
    if (E.isLeft(snap)) throw new Error(renderCheckpointError(snap.left));
    expect(snap.right.state.step).toBe(2);
    expect(allBitEqual(snap.right.state.params, short.state.params)).toEqual([]);
    expect(allBitEqual(snap.right.state.ema, short.state.ema)).toEqual([]);
    expect(allBitEqual(r.right.state.ema, straight.state.ema)).toEqual([]);
    [short.state, straight.state, r.right.state, snap.right.state].forEach(disposeTrainState);
    await fs.rm(dir, { recursive: true });
  });

  test('after the first step the EMA is d₁·θ₀ + (1 − d₁)·θ₁ with d₁ = min(0.999, 2/11)', async () => {
    const s0 = initTrainState(small, random.key(6));
    const theta0 = await recordValues(s0.params);
    const x = imageBatch(data, [0, 1]);
    const r = trainStep(small)(s0, x);
    x.dispose();
    if (E.isLeft(r)) throw new Error(renderTrainError(r.left));
    const s1 = r.right.state;
    const theta1 = await recordValues(s1.params);
    const d = 2 / 11;
    for (const n of ['conv3.weight', 'dense6.bias', 'tgnorm2.gamma']) {
      const ema = s1.ema[n]!.dataSync();
      // Two float32 products and a sum of terms of size |θ|: 4u·max(|θ₀|, |θ₁|) (+ the float32 rounding of d).
      theta0[n]!.forEach((v, i) => expect(Math.abs(ema[i]! - (d * v + (1 - d) * theta1[n]![i]!))).toBeLessThanOrEqual(5 * U32 * Math.max(Math.abs(v), Math.abs(theta1[n]![i]!))));
    }
    // The fixed Fourier frequencies are neither trained nor averaged.
    expect(Object.keys(s1.ema)).not.toContain('embed.W');
    expect(Array.from(s1.params['embed.W']!.dataSync())).toEqual(Array.from(theta0['embed.W']!));
    expect(emaParams(s1)['embed.W']).toBe(s1.params['embed.W']);
    disposeTrainState(s1);
  });

  test('denoiserRange: a training step is the same bits with it (training fits s_θ itself), and scoreOfRun is then s_θ with its denoiser clamped (clampedDenoiserScore) bit for bit; the config decodes with it and refuses one that is not [lo, hi] with lo < hi', async () => {
    const clamped: TrainConfig = { ...small, denoiserRange: [-1, 2] };
    const x = imageBatch(data, [0, 1]);
    const a = trainStep(small)(initTrainState(small, random.key(8)), x);
    const b = trainStep(clamped)(initTrainState(clamped, random.key(8)), x);
    x.dispose();
    if (E.isLeft(a) || E.isLeft(b)) throw new Error('a training step failed');
    expect(allBitEqual(a.right.state.params, b.right.state.params)).toEqual([]);
    const weights = emaParams(b.right.state);
    const y = random.normal(random.key(9), [2, 28, 28, 1]);
    for (const t of [0.01, 0.5]) {
      const got = scoreOfRun(clamped, weights)(y, t);
      const want = clampedDenoiserScore(small.sde, scoreOfRun(small, weights), [-1, 2])(y, t);
      expect(bitEqual(got, want)).toBe(true);
      tf.dispose([got, want]);
    }
    y.dispose();
    [a.right.state, b.right.state].forEach(disposeTrainState);
    expect(E.isRight(TrainConfigC.decode(JSON.parse(JSON.stringify(clamped))))).toBe(true);
    expect(E.isLeft(TrainConfigC.decode({ ...JSON.parse(JSON.stringify(small)), denoiserRange: [2, 1] }))).toBe(true);
  });

  test('a NaN loss is a Left naming the step, and the state is left exactly as it was', async () => {
    const s0 = initTrainState(small, random.key(7));
    const before = await recordValues(s0.params);
    const x = tf.tidy(() => tf.where(tf.equal(tf.range(0, 2 * 784).reshape([2, 28, 28, 1]), 5), tf.fill([2, 28, 28, 1], Number.NaN), imageBatch(data, [0, 1])));
    const r = trainStep(small)(s0, x);
    x.dispose();
    expect(E.isLeft(r) && r.left).toEqual({ _tag: 'NonFiniteLoss', step: 0, loss: Number.NaN });
    expect(E.isLeft(r) && renderTrainError(r.left)).toBe('loss is NaN at step 1: training stopped, the weights are those after step 0');
    const after = await recordValues(s0.params);
    expect(Object.keys(before).filter((n) => !before[n]!.every((v, i) => Object.is(v, after[n]![i])))).toEqual([]);
    expect([s0.step, s0.adam.step]).toEqual([0, 0]);
    // Still usable: a good batch trains from it.
    const good = imageBatch(data, [0, 1]);
    const ok = trainStep(small)(s0, good);
    good.dispose();
    expect(E.isRight(ok)).toBe(true);
    if (E.isRight(ok)) disposeTrainState(ok.right.state);
  });

  test('a non-finite loss ends the loop with the last good state, which equals the last checkpoint it saved (every step)', async () => {
    // The first image of epoch 0's second batch holds a NaN pixel: step 2 gives a NaN loss, after step 1 was saved.
    const d = subset(4);
    const root = random.key(10);
    const bad = epochOrder(runKeys(root).data, 4, 0)[2]!;
    const poisoned: MnistData = { ...d, images: Float32Array.from(d.images, (v, i) => (i === bad * 784 + 400 ? NaN : v)) };
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'diverge-'));
    const ckpt = path.join(dir, 'ckpt');
    const r = await trainLoop(small)(initTrainState(small, root), poisoned, { untilStep: 6, checkpoint: { dir: ckpt, every: 1 } });
    if (E.isRight(r)) throw new Error('expected the loop to stop at the poisoned batch');
    expect(r.left._tag).toBe('Diverged');
    const good = r.left.state;
    expect(good.step).toBe(1);
    expect(renderTrainLoopFailure(r.left)).toBe(`loss is NaN at step ${good.step + 1}: training stopped, the weights are those after step ${good.step}. The last good state (step ${good.step}) is saved at ${ckpt}`);
    expect(r.left.losses).toHaveLength(good.step);
    const loaded = await loadCheckpoint(ckpt)();
    if (E.isLeft(loaded)) throw new Error(renderCheckpointError(loaded.left));
    expect(loaded.right.state.step).toBe(good.step);
    expect(allBitEqual(loaded.right.state.params, good.params)).toEqual([]);
    [good, loaded.right.state].forEach(disposeTrainState);
    await fs.rm(dir, { recursive: true });
  });

  test('a non-finite loss at the very first step, with no checkpoint saved yet (epoch-end cadence), saves the initial state as the last good one', async () => {
    const d = subset(4);
    const root = random.key(11);
    const first = epochOrder(runKeys(root).data, 4, 0)[0]!;
    const poisoned: MnistData = { ...d, images: Float32Array.from(d.images, (v, i) => (i === first * 784 + 400 ? NaN : v)) };
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'diverge-first-'));
    const ckpt = path.join(dir, 'ckpt');
    const s0 = initTrainState(small, root);
    const r = await trainLoop(small)(s0, poisoned, { untilStep: 2, checkpoint: { dir: ckpt } });
    if (E.isRight(r)) throw new Error('expected the loop to stop at the poisoned batch');
    expect([r.left._tag, r.left.state.step, r.left._tag === 'Diverged' && r.left.kept]).toEqual(['Diverged', 0, { _tag: 'stored', dir: ckpt }]);
    const loaded = await loadCheckpoint(ckpt)();
    if (E.isLeft(loaded)) throw new Error(renderCheckpointError(loaded.left));
    expect(loaded.right.state.step).toBe(0);
    expect(allBitEqual(loaded.right.state.params, r.left.state.params)).toEqual([]);
    [r.left.state, loaded.right.state].forEach(disposeTrainState);
    await fs.rm(dir, { recursive: true });
  });

  test('no tensor leaks across a training epoch: live tensors before = after', async () => {
    const d = subset(4);
    const s0 = initTrainState(small, random.key(8));
    const before = tf.memory().numTensors;
    const r = await run(small, s0, d, 2); // one epoch of 2 batches
    expect(tf.memory().numTensors).toBe(before);
    disposeTrainState(r.state);
  });

  test('a state owns exactly its tensors: initTrainState then disposeTrainState leaves live tensors unchanged', () => {
    const before = tf.memory().numTensors;
    disposeTrainState(initTrainState(small, random.key(9)));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('the training batch', () => {
  const levels = (B: number): tf.Tensor4D =>
    tf.tensor4d(Float32Array.from(random.bits(random.key(21), B * 28 * 28), (w) => (w % 256) / 255), [B, 28, 28, 1]);

  test('centred dequantisation keeps each pixel in its level’s cell, centred and uniform there (data in [0, 1] and in [−1, 1])', () => {
    const B = 16;
    const x = levels(B);
    const xs = x.dataSync();
    for (const range of [[0, 1], [-1, 1]] as const) {
      const config: TrainConfig = { ...tinyTrainConfig, dataRange: range, dequantization: 'centred' };
      const y = trainingBatch(config, x, random.key(5));
      const ys = y.dataSync();
      const [lo, hi] = range;
      let sum = 0;
      let sumSq = 0;
      ys.forEach((v, i) => {
        const d = (255 * (v - lo)) / (hi - lo) - 255 * xs[i]!; // 255 (x̃ − x) in image units
        centredTraining.lessThan(Math.abs(d), 0.5 + 1e-4);
        sum += d;
        sumSq += d * d;
      });
      const n = ys.length;
      const mean = sum / n;
      centredTraining.lessThan(Math.abs(mean), 5 * Math.sqrt(1 / (12 * n)));
      centredTraining.lessThan(Math.abs(sumSq / n - mean * mean - 1 / 12), 5 * Math.sqrt(1 / (180 * n)));
      y.dispose();
    }
    x.dispose();
  });

  test('sample b’s dequantisation noise depends on its key alone (a batch of 4 is the first 4 of a batch of 16, bit for bit); without dequantisation the batch is the images mapped to the range', () => {
    const config: TrainConfig = { ...tinyTrainConfig, dequantization: 'centred' };
    const x = levels(16);
    const whole = trainingBatch(config, x, random.key(7));
    const first = tf.slice(x, [0, 0, 0, 0], [4, 28, 28, 1]);
    const part = trainingBatch(config, first, random.key(7));
    const wholeFirst = tf.slice(whole, [0, 0, 0, 0], [4, 28, 28, 1]);
    expect(bitEqual(part, wholeFirst)).toBe(true);
    const none = trainingBatch({ ...tinyTrainConfig, dataRange: [-1, 1] }, x, random.key(7));
    const mapped = toModelSpace({ ...tinyTrainConfig, dataRange: [-1, 1] }, x);
    expect(bitEqual(none, mapped)).toBe(true);
    tf.dispose([x, whole, first, part, wholeFirst, none, mapped]);
  });
});

describe('a batch in parts (data-parallel steps)', () => {
  const parted = (K: number): TrainConfig => ({ ...smallConditional, batchSize: 6, microBatches: K });

  test('a part draws what its samples draw in the whole batch: times and noise of rows [o, o + n)', () => {
    const key = random.key(5);
    const whole = dsmDraws(tinyTrainConfig.sde, 1e-5, key, 6, [28, 28, 1]);
    for (const { start, end } of microBatchRanges(6, 4)) {
      const part = dsmDraws(tinyTrainConfig.sde, 1e-5, key, end - start, [28, 28, 1], { kind: 'uniform-t' }, start);
      batchParts.equal(Array.from(part.ts), Array.from(whole.ts.subarray(start, end)), { rows: `${start}..${end}` });
      const rows = tf.slice(whole.noise, [start], [end - start]);
      expect(bitEqual(part.noise, rows)).toBe(true);
      tf.dispose([part.noise, rows]);
    }
    whole.noise.dispose();
  });

  test.each([2, 3, 6])('the losses of %i parts sum to the whole batch’s loss', (K) => {
    const state = initTrainState(parted(1), random.key(2));
    const x0 = imageBatch(data, [0, 1, 2, 3, 4, 5]);
    const labels = Array.from(data.labels.subarray(0, 6));
    const loss = (config: TrainConfig): number => {
      const parts = stepPartGradients(config)(state, x0, labels);
      if (E.isLeft(parts)) throw new Error(parts.left.message);
      parts.right.forEach((p) => Object.values(p.grads).forEach((g) => g.dispose()));
      expect(parts.right).toHaveLength(microBatchRanges(6, config.microBatches ?? 1).length);
      return parts.right.reduce((a, p) => a + p.loss, 0);
    };
    const whole = loss(parted(1));
    const sum = loss(parted(K));
    batchParts.lessThan(Math.abs(sum - whole), 2 * (6 + 1) * 2 ** -24 * whole, { K: String(K) });
    x0.dispose();
    disposeTrainState(state);
  });

  test('a part source that fails hands the steps back to this process, which gives the same bits', async () => {
    const config = parted(2);
    const plain = await run(config, initTrainState(config, random.key(4)), data, 4);
    // The source computes the parts as this process would for 2 steps, then fails.
    let calls = 0;
    const lost: string[] = [];
    const source: PartGradientSource = async (st, x0, labels) => {
      calls++;
      if (st.step >= 2) return E.left('the workers are gone');
      const parts = stepPartGradients(config)(st, x0, labels);
      return E.isLeft(parts) ? E.left(parts.left.message) : E.right(parts.right);
    };
    const r = await trainLoop(config)(initTrainState(config, random.key(4)), data, { untilStep: 4, parts: source, onPartsLost: (why) => lost.push(why) });
    if (E.isLeft(r)) throw new Error(renderTrainLoopFailure(r.left));
    expect(calls).toBe(3);
    expect(lost).toEqual(['the workers are gone']);
    expect(r.right.losses).toEqual(plain.losses);
    expect(allBitEqual(r.right.state.params, plain.state.params)).toEqual([]);
    expect(allBitEqual(r.right.state.ema, plain.state.ema)).toEqual([]);
    disposeTrainState(r.right.state);
    disposeTrainState(plain.state);
  });

  test('a config of more parts than samples is refused, naming microBatches', () => {
    const r = TrainConfigC.decode({ ...tinyTrainConfig, microBatches: tinyTrainConfig.batchSize + 1 });
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) expect(r.left.map((e) => e.message ?? '').join(' ')).toMatch(/microBatches: 5 parts of a batch of 4/);
    expect(E.isRight(TrainConfigC.decode({ ...tinyTrainConfig, microBatches: tinyTrainConfig.batchSize }))).toBe(true);
  });
});
