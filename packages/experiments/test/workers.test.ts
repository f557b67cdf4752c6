/**
 * Drawing over worker threads (issue 6): for a batch-separable sampler, sample b is a function of its key and the
 * network only, so splitting the keys over workers and concatenating in order must give the in-process batch bit
 * for bit. Checked on a tiny untrained ScoreNet checkpoint with 6 samples of a 3-step EM sampler and a 3-step PC
 * sampler (Langevin with the per-sample norm), each over 2 workers.
 */
import * as fs from 'node:fs';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import * as path from 'node:path';
import { tf, initBackend, type Key, type BackendInfo } from '@score-sde/tensor-fp';
import { type SamplerSpec, samplerFromSpec, sample } from '@score-sde/solvers';
import { loadCheckpoint, renderCheckpointError, emaParams, scoreNet, scoreFromNet, disposeTrainState } from '@score-sde/models';
import { tutorial } from '@score-sde/sde-math';
import { drawInWorkers, shardRanges, couplingOf, renderWorkerError, sampleKeys } from '../src/pipeline';
import { cli } from '../src/lib';
import { mnistFlags } from '../src/mnist/flags';
import { runMnist } from '../src/mnist/run';
import { tempDir, tinyCheckpoint } from './eval/helpers';
import { runs } from '@score-sde/tensor-fp/testing';

const SHAPE = [28, 28, 1] as const;
const EM: SamplerSpec = { kind: 'pc', predictor: 'euler-maruyama', corrector: 'none', steps: 3 };
const PC: SamplerSpec = { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', correctorSteps: 1, snr: 0.16, norm: 'per-sample', steps: 3 };

/** The run's keys as the MNIST experiments make them: key_b = foldIn(foldIn(key(seed), 0x5a3d), b). */
const keysOf = (n: number, seed = 0): ReadonlyArray<Key> => sampleKeys(seed, 0, n);
const SDE = tutorial();

/** The same sampler in this process, on the whole batch: x̄ at the end of the grid, as float32 bits. */
const inProcess = async (checkpoint: string, spec: SamplerSpec, keys: ReadonlyArray<Key>): Promise<{ readonly bits: Uint32Array; readonly nfe: number }> => {
  const loaded = await loadCheckpoint(checkpoint)();
  if (E.isLeft(loaded)) throw new Error(renderCheckpointError(loaded.left));
  const { config, state } = loaded.right;
  try {
    const sampler = samplerFromSpec(config.sde, spec);
    if (E.isLeft(sampler)) throw new Error(sampler.left.problems.join('; '));
    const score = scoreFromNet(config.sde, scoreNet(config.model, emaParams(state)));
    const r = await sample(sampler.right, score, { keys, sampleShape: SHAPE })();
    if (E.isLeft(r)) throw new Error(r.left._tag);
    const values = new Float32Array(r.right.x.dataSync());
    r.right.x.dispose();
    return { bits: new Uint32Array(values.buffer), nfe: r.right.nfe };
  } finally {
    disposeTrainState(state);
  }
};

/** The float32 bit patterns of a Float32Array (so the comparison is exact, NaN and −0 included). */
const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

let dir: string;
let checkpoint: string;
let backend: BackendInfo;

beforeAll(async () => {
  backend = await initBackend({ prefer: 'wasm', quiet: true });
  dir = tempDir('shard');
  checkpoint = await tinyCheckpoint(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('shardRanges', () => {
  test('min(W, n) contiguous shards cover [0, n) in order, sizes differing by at most one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 16 }), (n, w) => {
        const r = shardRanges(n, w);
        const sizes = r.map((s) => s.end - s.start);
        expect(r.length).toBe(Math.min(n, w));
        expect(r[0]!.start).toBe(0);
        expect(r[r.length - 1]!.end).toBe(n);
        r.slice(1).forEach((s, i) => expect(s.start).toBe(r[i]!.end));
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
      }),
      runs(200),
    );
  });
});

describe("couplingOf (what the sampler's step declares)", () => {
  test("names the specs whose samples depend on their batch: Langevin with 'batch-mean', the adaptive solvers", () => {
    expect(couplingOf(SDE, EM)).toBeUndefined();
    expect(couplingOf(SDE, PC)).toBeUndefined();
    expect(couplingOf(SDE, { kind: 'edm', steps: 4 })).toBeUndefined();
    expect(couplingOf(SDE, { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', steps: 3 })).toMatch(/batch-mean/);
    expect(couplingOf(SDE, { kind: 'ode-adaptive' })).toMatch(/one step size for the whole batch/);
    expect(couplingOf(SDE, { kind: 'adaptive-sde' })).toMatch(/one step size for the whole batch/);
  });

  test("why: with 'batch-mean', samples 0..2 of a 6-batch differ from the same 3 keys sampled alone; with 'per-sample' they are equal", async () => {
    const keys = keysOf(6, 5);
    const batchMean: SamplerSpec = { ...PC, norm: 'batch-mean' };
    const half = (bits: Uint32Array): Buffer => Buffer.from(bits.buffer, 0, bits.byteLength / 2);
    const [whole, alone] = [await inProcess(checkpoint, batchMean, keys), await inProcess(checkpoint, batchMean, keys.slice(0, 3))];
    expect(half(whole.bits).equals(Buffer.from(alone.bits.buffer))).toBe(false);
    const [wholePS, alonePS] = [await inProcess(checkpoint, PC, keys), await inProcess(checkpoint, PC, keys.slice(0, 3))];
    expect(half(wholePS.bits).equals(Buffer.from(alonePS.bits.buffer))).toBe(true);
  });
});

describe('drawInWorkers', () => {
  test('EM: concat of 2 sharded batches = the in-process batch, bit for bit (and the same NFE)', async () => {
    const keys = keysOf(6);
    const before = tf.memory().numTensors;
    const sharded = await drawInWorkers({ checkpoint, sde: SDE, spec: EM, keys, sampleShape: SHAPE, workers: 2 })();
    expect(tf.memory().numTensors).toBe(before);
    if (E.isLeft(sharded)) throw new Error(renderWorkerError(sharded.left));
    expect(sharded.right.shards.map((s) => [s.start, s.end])).toEqual([
      [0, 3],
      [3, 6],
    ]);
    expect(sharded.right.shape).toEqual([6, 28, 28, 1]);
    const ref = await inProcess(checkpoint, EM, keys);
    // Exact: per-sample keys and batch-invariant kernels make sample b independent of its batch (no tolerance).
    expect(Buffer.from(bitsOf(sharded.right.samples).buffer).equals(Buffer.from(ref.bits.buffer))).toBe(true);
    expect(sharded.right.nfe).toBe(ref.nfe);
  });

  test("PC (Langevin, 'per-sample' norm): concat of 2 sharded batches = the in-process batch, bit for bit", async () => {
    const keys = keysOf(6, 3);
    const sharded = await drawInWorkers({ checkpoint, sde: SDE, spec: PC, keys, sampleShape: SHAPE, workers: 2 })();
    if (E.isLeft(sharded)) throw new Error(renderWorkerError(sharded.left));
    const ref = await inProcess(checkpoint, PC, keys);
    // Exact, as for EM.
    expect(Buffer.from(bitsOf(sharded.right.samples).buffer).equals(Buffer.from(ref.bits.buffer))).toBe(true);
    expect(sharded.right.nfe).toBe(ref.nfe);
  });

  test('a bad checkpoint path is a Left naming the path (the workers are stopped)', async () => {
    const missing = `${dir}/no-such-checkpoint`;
    const r = await drawInWorkers({ checkpoint: missing, sde: SDE, spec: EM, keys: keysOf(2), sampleShape: SHAPE, workers: 2 })();
    expect(E.isLeft(r) && r.left._tag).toBe('WorkerFailed');
    if (E.isRight(r)) return;
    expect(renderWorkerError(r.left)).toContain(`checkpoint ${missing}: no such directory`);
  });

  test('an invalid job is refused by the worker, naming the field (io-ts at the boundary)', async () => {
    const r = await drawInWorkers({ checkpoint, sde: SDE, spec: EM, keys: keysOf(1), sampleShape: [28, 0, 1], workers: 1 })();
    expect(E.isLeft(r) && renderWorkerError(r.left)).toMatch(/invalid shard job:\n\s+sampleShape\.1: expected PositiveInt, got 0/);
  });

  test('a batch-coupled sampler or invalid options are Lefts before any worker starts', async () => {
    const coupled = await drawInWorkers({ checkpoint, sde: SDE, spec: { kind: 'ode-adaptive' }, keys: keysOf(2), sampleShape: SHAPE, workers: 2 })();
    expect(E.isLeft(coupled) && coupled.left._tag).toBe('BatchCoupled');
    const zero = await drawInWorkers({ checkpoint, sde: SDE, spec: EM, keys: keysOf(2), sampleShape: SHAPE, workers: 0 })();
    expect(E.isLeft(zero) && renderWorkerError(zero.left)).toMatch(/workers: expected a positive integer, got 0/);
  });
});

describe('experiments:mnist --workers', () => {
  test('--workers 2 writes the same samples-em.idx and samples-pc.idx (per-sample Langevin norms) as --workers 1; the adaptive ode (batch-coupled) stays in this process and says why', async () => {
    const runWith = async (workers: string): Promise<{ readonly em: Buffer; readonly pc: Buffer; readonly lines: ReadonlyArray<string> }> => {
      const flags = cli.parseFlags(mnistFlags, ['--sample-only', checkpoint, '--samplers', 'em,pc,ode', '--steps', '2', '--ode-tol', '0.1', '--num-samples', '5', '--workers', workers, '--quiet']);
      if (E.isLeft(flags)) throw new Error(cli.renderCliError(flags.left));
      const out = path.join(dir, `mnist-workers-${workers}`);
      const lines: string[] = [];
      const r = await runMnist(flags.right, { backend, log: (l) => lines.push(l) }, out);
      if (E.isLeft(r)) throw new Error(r.left.message);
      return { em: fs.readFileSync(path.join(out, 'samples-em.idx')), pc: fs.readFileSync(path.join(out, 'samples-pc.idx')), lines };
    };
    const one = await runWith('1');
    const two = await runWith('2');
    // Exact: the same keys and weights; the uint8 images of the clipped samples are compared byte for byte.
    expect(two.em.equals(one.em)).toBe(true);
    expect(two.pc.equals(one.pc)).toBe(true);
    expect(two.lines.some((l) => /^pc: sampled in this process/.test(l))).toBe(false);
    expect(two.lines.some((l) => /^ode: sampled in this process, not in 2 workers: /.test(l))).toBe(true);
    expect(one.lines.some((l) => /sampled in this process/.test(l))).toBe(false);
  });
});
