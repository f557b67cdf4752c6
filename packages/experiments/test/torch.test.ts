/**
 * The PyTorch twin at the command line: a checkpoint exported as the tutorial ScoreNet's safetensors and imported
 * back is a checkpoint with the same sampling weights, bit for bit, so every command gives the same samples from it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { initBackend, random, type BackendInfo } from '@score-sde/tensor-fp';
import { loadCheckpoint, renderCheckpointError, emaParams, disposeTrainState, recordValues, initTrainState, saveCheckpoint, type TrainConfig } from '@score-sde/models';
import { cli } from '../src/lib';
import { mnistFlags } from '../src/mnist/flags';
import { runMnist } from '../src/mnist/run';
import { exportCheckpoint, importWeights } from '../src/run-torch';
import { tempDir, tinyCheckpoint, tinyTrainConfig } from './eval/helpers';

let backend: BackendInfo;
let dir: string;
let checkpoint: string;

beforeAll(async () => {
  backend = await initBackend({ prefer: 'wasm', quiet: true });
  dir = tempDir('torch');
  checkpoint = await tinyCheckpoint(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sampleIdx = async (ckpt: string, out: string): Promise<Buffer> => {
  const f = cli.parseFlags(mnistFlags, ['--sample-only', ckpt, '--samplers', 'em', '--steps', '3', '--num-samples', '4', '--quiet']);
  if (E.isLeft(f)) throw new Error(cli.renderCliError(f.left));
  const r = await runMnist(f.right, { backend, log: () => undefined }, out);
  if (E.isLeft(r)) throw new Error(r.left.message);
  return fs.readFileSync(path.join(out, 'samples-em.idx'));
};

test('torch-export then torch-import gives a checkpoint whose weights are the EMA weights bit for bit, and the same samples', async () => {
  const file = path.join(dir, 'scorenet.safetensors');
  const ex = await exportCheckpoint(checkpoint, file, 'ema');
  if (E.isLeft(ex)) throw new Error(ex.left.message);
  const back = path.join(dir, 'imported');
  const im = await importWeights(file, back, { seed: 0 });
  if (E.isLeft(im)) throw new Error(im.left.message);
  const [a, b] = [await loadCheckpoint(checkpoint)(), await loadCheckpoint(back)()];
  if (E.isLeft(a) || E.isLeft(b)) throw new Error(E.isLeft(a) ? renderCheckpointError(a.left) : renderCheckpointError((b as E.Left<never>).left));
  expect(b.right.config.model).toEqual(a.right.config.model);
  expect(b.right.config.sde).toEqual(a.right.config.sde);
  const [va, vb] = [await recordValues(emaParams(a.right.state)), await recordValues(emaParams(b.right.state))];
  expect(Object.keys(va).filter((n) => !Buffer.from(va[n]!.buffer).equals(Buffer.from(vb[n]!.buffer)))).toEqual([]);
  disposeTrainState(a.right.state);
  disposeTrainState(b.right.state);
  expect((await sampleIdx(back, path.join(dir, 's2'))).equals(await sampleIdx(checkpoint, path.join(dir, 's1')))).toBe(true);
});

test('a file that is not the tutorial ScoreNet is refused, naming it; the checkpoint path is not written', async () => {
  const bad = path.join(dir, 'bad.safetensors');
  fs.writeFileSync(bad, Buffer.from('not a safetensors file'));
  const out = path.join(dir, 'never');
  const r = await importWeights(bad, out, { seed: 0 });
  expect(E.isLeft(r) && r.left.message).toMatch(/^--weights: invalid bad\.safetensors:/);
  expect(fs.existsSync(out)).toBe(false);
});

test('a class-conditional checkpoint has no PyTorch twin: the export is refused, naming it, and writes nothing', async () => {
  const config: TrainConfig = { ...tinyTrainConfig, model: { ...tinyTrainConfig.model, classes: 10 }, conditioning: { dropout: 0.1, prior: new Array<number>(10).fill(0.1) } };
  const state = initTrainState(config, random.key(3));
  const ckpt = path.join(dir, 'conditional');
  const saved = await saveCheckpoint(ckpt, config, state)();
  disposeTrainState(state);
  if (E.isLeft(saved)) throw new Error(renderCheckpointError(saved.left));
  const file = path.join(dir, 'conditional.safetensors');
  const r = await exportCheckpoint(ckpt, file, 'ema');
  expect(E.isLeft(r) && r.left.message).toMatch(/is a class-conditional network \(10 classes\); the PyTorch twin is the tutorial's unconditional ScoreNet/);
  expect(fs.existsSync(file)).toBe(false);
});
