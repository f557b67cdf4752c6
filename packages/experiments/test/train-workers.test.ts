/**
 * Data-parallel training (issue 11): a run whose config splits every batch into K parts (models' `microBatches`)
 * defines its gradient as the ordered sum of the parts' gradients, and each part is a pure function of the weights,
 * the batch, the step's key and its rows. So K workers computing one part each, summed here, must give the run that
 * computes the parts one after another in this process, bit for bit (weights, EMA, Adam moments, losses). Checked on
 * a tiny ScoreNet, class-conditional (labels and label dropout travel with the parts), 3 steps of batch 6 in 2 and 3
 * parts (3 parts of 2 rows; 2 parts of 3).
 */
import * as E from 'fp-ts/Either';
import { tf, initBackend, random } from '@score-sde/tensor-fp';
import {
  initTrainState,
  trainLoop,
  disposeTrainState,
  loadMnist,
  renderTrainLoopFailure,
  type MnistData,
  type TrainConfig,
  type TrainLoopResult,
  type TensorRecord,
} from '@score-sde/models';
import { startTrainWorkers, type TrainWorkers } from '../src/pipeline';
import { tinyTrainConfig } from './eval/helpers';

let data: MnistData;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  const r = await loadMnist({ split: 'train', subset: 36 })();
  if (E.isLeft(r)) throw new Error(r.left.message);
  data = r.right;
});

const conditional = (parts: number): TrainConfig => ({
  ...tinyTrainConfig,
  model: { ...tinyTrainConfig.model, classes: 10 },
  conditioning: { dropout: 0.5, prior: new Array<number>(10).fill(0.1) },
  batchSize: 6,
  microBatches: parts,
});

const bits = (r: TensorRecord): ReadonlyArray<string> =>
  Object.keys(r)
    .sort()
    .map((n) => Buffer.from((r[n]!.dataSync() as Float32Array).buffer).toString('base64'));

const train = async (config: TrainConfig, steps: number, workers?: TrainWorkers): Promise<TrainLoopResult> => {
  const r = await trainLoop(config)(initTrainState(config, random.key(3)), data, { untilStep: steps, ...(workers !== undefined ? { parts: workers.parts } : {}) });
  if (E.isLeft(r)) throw new Error(renderTrainLoopFailure(r.left));
  return r.right;
};

describe('data-parallel training steps', () => {
  test.each([2, 3])('%i parts in as many workers give the bits of the same parts computed one after another here', async (K) => {
    const config = conditional(K);
    const before = tf.memory().numTensors;
    const here = await train(config, 3);
    const kept = tf.memory().numTensors - before;
    const started = await startTrainWorkers({ config });
    if (E.isLeft(started)) throw new Error(started.left);
    const workers = started.right;
    try {
      expect(workers.backends).toHaveLength(K);
      const between = tf.memory().numTensors;
      const there = await train(config, 3, workers);
      // The parts' tensors made from the workers' arrays are consumed by the step: the run keeps only its state.
      expect(tf.memory().numTensors - between).toBe(kept);
      expect(there.losses).toEqual(here.losses);
      expect(bits(there.state.params)).toEqual(bits(here.state.params));
      expect(bits(there.state.ema)).toEqual(bits(here.state.ema));
      expect(bits(there.state.adam.m)).toEqual(bits(here.state.adam.m));
      expect(bits(there.state.adam.v)).toEqual(bits(here.state.adam.v));
      disposeTrainState(there.state);
    } finally {
      await workers.close();
      disposeTrainState(here.state);
    }
  }, 120_000);

  test('a config of one part per batch starts no workers and says why', async () => {
    const r = await startTrainWorkers({ config: { ...tinyTrainConfig } });
    expect(E.isLeft(r) && r.left).toMatch(/microBatches/);
  });

});
