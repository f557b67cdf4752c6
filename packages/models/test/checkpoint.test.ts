import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, random, initBackend } from '@score-sde/tensor-fp';
import { ve } from '@score-sde/sde-math';
import {
  saveCheckpoint,
  loadCheckpoint,
  renderCheckpointError,
  initTrainState,
  disposeTrainState,
  scoreNetConfig,
  adamStep,
  emaUpdate,
  assignParams,
  disposeRecord,
  disposeAdam,
  CHECKPOINT_FILES,
  tensorFiles,
  type TrainConfig,
  type TrainState,
  type CheckpointError,
} from '../src';
import { bitEqual, tinyTrainConfig } from './helpers';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const config: TrainConfig = tinyTrainConfig;

/**
 * Two optimiser steps with random gradients (no network needed), so that weights, EMA weights and both Adam
 * moments are all distinct, non-trivial tensors.
 */
const fakeTrained = (seed: number): TrainState => {
  let s = initTrainState(config, random.key(seed));
  for (let i = 0; i < 2; i++) {
    const grads = Object.fromEntries(Object.keys(s.ema).map((n, j) => [n, random.normal(random.foldIn(random.key(seed + 100 + i), j), s.params[n]!.shape)]));
    const r = adamStep(config.optim)(s.params, grads, s.adam);
    disposeRecord(grads);
    assignParams(s.params, r.params);
    const ema = emaUpdate(config.emaDecay)(s.ema, s.params, r.state.step);
    disposeRecord(s.ema);
    disposeAdam(s.adam);
    s = { ...s, ema, adam: r.state, step: s.step + 1 };
  }
  return s;
};

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'ckpt-'));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const message = (r: E.Either<CheckpointError, unknown>): string => (E.isLeft(r) ? renderCheckpointError(r.left) : 'no error');

/** Every file's bytes under a directory, recursively (paths relative to it), for "untouched" checks. */
const snapshot = async (dir: string): Promise<Record<string, string>> => {
  const out: Record<string, string> = {};
  const walk = async (sub: string): Promise<void> => {
    for (const f of (await fs.readdir(path.join(dir, sub))).sort()) {
      const rel = path.join(sub, f);
      if ((await fs.stat(path.join(dir, rel))).isDirectory()) await walk(rel);
      else out[rel] = (await fs.readFile(path.join(dir, rel))).toString('base64');
    }
  };
  await walk('');
  return out;
};

/** The path of a stored file of the checkpoint in `dir` (through its CURRENT version). */
const stored = async (dir: string, file: string): Promise<string> => {
  const at = await tensorFiles.storedDirectory(dir);
  if (E.isLeft(at)) throw new Error(at.left.message);
  return path.join(at.right, file);
};

const loadOk = async (dir: string) => {
  const r = await loadCheckpoint(dir)();
  if (E.isLeft(r)) throw new Error(renderCheckpointError(r.left));
  return r.right;
};

describe('checkpoint round trip', () => {
  test('save then load gives bit-identical weights, EMA weights, Adam moments, step, key, config and meta', async () => {
    const s = fakeTrained(1);
    const dir = path.join(root, 'ckpt');
    const saved = await saveCheckpoint(dir, config, s, { losses: [3.5, 2.25] })();
    expect(E.isRight(saved)).toBe(true);
    // dir/CURRENT names the one version directory step-2.<8 hex>, which holds the four files and the manifest.
    const entries = (await fs.readdir(dir)).sort();
    expect(entries).toEqual(['CURRENT', expect.stringMatching(/^step-2\.[0-9a-f]{8}$/)]);
    expect((await fs.readFile(path.join(dir, 'CURRENT'), 'utf8')).trim()).toBe(entries[1]);
    expect((await fs.readdir(path.join(dir, entries[1]!))).sort()).toEqual([...CHECKPOINT_FILES, 'manifest.json'].sort());
    const back = await loadOk(dir);
    expect(back.config).toEqual(config);
    expect(back.meta).toEqual({ losses: [3.5, 2.25] });
    expect([back.state.step, back.state.adam.step, back.state.key]).toEqual([s.step, s.adam.step, s.key]);
    for (const n of Object.keys(s.params)) {
      expect({ n, same: bitEqual(back.state.params[n]!, s.params[n]!), trainable: back.state.params[n]!.trainable }).toEqual({ n, same: true, trainable: s.params[n]!.trainable });
    }
    for (const n of Object.keys(s.ema)) {
      expect({ n, ema: bitEqual(back.state.ema[n]!, s.ema[n]!), m: bitEqual(back.state.adam.m[n]!, s.adam.m[n]!), v: bitEqual(back.state.adam.v[n]!, s.adam.v[n]!) }).toEqual({ n, ema: true, m: true, v: true });
    }
    disposeTrainState(s);
    disposeTrainState(back.state);
  });

  test('saving over a checkpoint replaces it whole and leaves no temporary directory behind', async () => {
    const a = fakeTrained(2);
    const b = fakeTrained(3);
    const dir = path.join(root, 'ckpt');
    expect(E.isRight(await saveCheckpoint(dir, config, a)())).toBe(true);
    expect(E.isRight(await saveCheckpoint(dir, config, b)())).toBe(true);
    expect(await fs.readdir(root)).toEqual(['ckpt']);
    expect((await fs.readdir(dir)).length).toBe(2); // CURRENT and the new version only
    const back = await loadOk(dir);
    expect(bitEqual(back.state.params['conv2.weight']!, b.params['conv2.weight']!)).toBe(true);
    [a, b, back.state].forEach(disposeTrainState);
  });

  test('the manifest holds the format version, model config, SDE record, and per-file names/shapes/byte lengths/sha256', async () => {
    const s = fakeTrained(4);
    const dir = path.join(root, 'ckpt');
    await saveCheckpoint(dir, config, s)();
    const m = JSON.parse(await fs.readFile(await stored(dir, 'manifest.json'), 'utf8'));
    expect([m.format, m.version, m.dtype, m.byteOrder]).toEqual(['score-sde-ts/checkpoint', 1, 'float32', 'little-endian']);
    expect(m.config.model).toEqual(config.model);
    expect(m.config.sde).toEqual(config.sde);
    const bytes = (await fs.stat(await stored(dir, 'params.bin'))).size;
    expect(m.files['params.bin'].bytes).toBe(bytes);
    expect(m.files['params.bin'].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(m.files['params.bin'].tensors[0]).toEqual({ name: 'embed.W', shape: [8] });
    disposeTrainState(s);
  });
});

describe('corrupt or mismatched checkpoints give a clear Left', () => {
  let dir: string;
  beforeEach(async () => {
    dir = path.join(root, 'ckpt');
    const s = fakeTrained(5);
    await saveCheckpoint(dir, config, s)();
    disposeTrainState(s);
  });

  // The edits reach into arbitrary JSON on purpose (that is what a corrupted manifest is).
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const editManifest = async (f: (m: Record<string, any>) => void) => {
    const p = await stored(dir, 'manifest.json');
    const m = JSON.parse(await fs.readFile(p, 'utf8'));
    f(m);
    await fs.writeFile(p, JSON.stringify(m));
  };

  test('truncated weights: "params.bin is N bytes, manifest says M"', async () => {
    const p = await stored(dir, 'params.bin');
    const full = (await fs.stat(p)).size;
    await fs.truncate(p, 1200);
    expect(message(await loadCheckpoint(dir)())).toBe(`checkpoint ${dir}: params.bin is 1200 bytes, manifest says ${full}`);
  });

  test('one flipped byte: the sha256 does not match', async () => {
    const p = await stored(dir, 'adam-v.bin');
    const b = await fs.readFile(p);
    b[100] = b[100]! ^ 0x01;
    await fs.writeFile(p, b);
    expect(message(await loadCheckpoint(dir)())).toMatch(new RegExp(`^checkpoint ${dir}: adam-v\\.bin has sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64} \\(the file is corrupt\\)$`));
  });

  test('edited manifest: a bad field is named, an unknown key is named, broken JSON is reported', async () => {
    await editManifest((m) => {
      m.config.model.embedDim = 'abc';
      m.step = -1;
    });
    expect(message(await loadCheckpoint(dir)())).toBe(
      `checkpoint ${dir}: invalid manifest.json:\n  config.model.embedDim: expected PositiveInt, got "abc"\n  step: expected NonNegativeInt, got -1`,
    );
    await editManifest((m) => {
      m.config.model.embedDim = 16;
      m.step = 2;
      m.stepp = 3;
    });
    expect(message(await loadCheckpoint(dir)())).toBe(`checkpoint ${dir}: invalid manifest.json:\n  stepp: unknown key`);
    await fs.writeFile(await stored(dir, 'manifest.json'), '{"format": ');
    expect(message(await loadCheckpoint(dir)())).toMatch(/invalid manifest\.json:\n {2}\(root\): not valid JSON/);
  });

  test('a manifest whose tensor list does not fit its model config is refused before reading weights', async () => {
    await editManifest((m) => {
      m.files['ema.bin'].tensors[2].shape = [9, 9];
    });
    expect(message(await loadCheckpoint(dir)())).toBe(`checkpoint ${dir}: ema.bin: tensor 2 is conv1.weight [9, 9], the config needs conv1.weight [3, 3, 1, 4]`);
  });

  test('a missing file, a missing manifest and a missing directory are each named', async () => {
    await fs.rm(await stored(dir, 'ema.bin'));
    expect(message(await loadCheckpoint(dir)())).toBe(`checkpoint ${dir}: ema.bin is missing`);
    await fs.rm(await stored(dir, 'manifest.json'));
    expect(message(await loadCheckpoint(dir)())).toBe(`checkpoint ${dir}: manifest.json is missing`);
    const nowhere = path.join(root, 'nowhere');
    expect(message(await loadCheckpoint(nowhere)())).toBe(`checkpoint ${nowhere}: no such directory`);
  });

  test('a checkpoint of another model or SDE than the one requested is refused, naming the field', async () => {
    const other = scoreNetConfig({ channels: [8, 16, 16, 16], embedDim: 16 });
    expect(message(await loadCheckpoint(dir, { model: other })())).toBe(
      `checkpoint ${dir}: model.channels is [4,8,8,8] in the checkpoint, but [8,16,16,16] was requested`,
    );
    expect(message(await loadCheckpoint(dir, { sde: ve() })())).toBe(`checkpoint ${dir}: sde.kind is "tutorial" in the checkpoint, but "ve" was requested`);
    const same = await loadCheckpoint(dir, { model: config.model, sde: config.sde })();
    expect(E.isRight(same)).toBe(true);
    if (E.isRight(same)) disposeTrainState(same.right.state);
  });
});

describe('a failed save never touches the existing checkpoint', () => {
  test('non-finite weights are refused and the previous checkpoint stays byte-identical, with no temporary files', async () => {
    const dir = path.join(root, 'ckpt');
    const good = fakeTrained(6);
    await saveCheckpoint(dir, config, good)();
    const before = await snapshot(dir);
    const bad = fakeTrained(7);
    bad.params['dense3.bias']!.assign(tf.fill(bad.params['dense3.bias']!.shape, Number.NaN));
    expect(message(await saveCheckpoint(dir, config, bad)())).toBe(`checkpoint ${dir}: not saved, params.bin tensor dense3.bias holds NaN or ±Infinity`);
    expect(await snapshot(dir)).toEqual(before);
    expect(await fs.readdir(root)).toEqual(['ckpt']);
    [good, bad].forEach(disposeTrainState);
  });

  test('a write that fails midway (the third file cannot be opened) leaves the old checkpoint and no temporary directory', async () => {
    const dir = path.join(root, 'ckpt');
    const good = fakeTrained(8);
    await saveCheckpoint(dir, config, good)();
    const before = await snapshot(dir);
    const other = fakeTrained(9);
    // The module's `fs.open` is read through the CommonJS binding of node:fs/promises, so a spy there reaches it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const fsp = require('node:fs/promises') as typeof fs;
    const realOpen = fsp.open;
    const spy = jest.spyOn(fsp, 'open').mockImplementation(((p: string, flags?: string) =>
      String(p).endsWith('adam-m.bin') ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' })) : realOpen(p, flags)) as typeof fs.open);
    const r = await saveCheckpoint(dir, config, other)();
    spy.mockRestore();
    expect(message(r)).toBe(`checkpoint ${dir}: ENOSPC: no space left on device`);
    expect(await snapshot(dir)).toEqual(before);
    expect(await fs.readdir(root)).toEqual(['ckpt']);
    disposeTrainState(good);
    disposeTrainState(other);
  });

  test('a tensor that cannot be read (disposed) gives a Left, not a rejected promise, and nothing is written', async () => {
    const dir = path.join(root, 'ckpt');
    const broken = fakeTrained(11);
    const v = broken.adam.v['conv1.weight']!;
    v.dispose();
    const r = await saveCheckpoint(dir, config, broken)();
    expect(message(r)).toMatch(new RegExp(`^checkpoint ${dir}: .*disposed`));
    expect(await fs.readdir(root)).toEqual([]);
    disposeTrainState({ ...broken, adam: { ...broken.adam, v: Object.fromEntries(Object.entries(broken.adam.v).filter(([n]) => n !== 'conv1.weight')) } });
  });

  test('a target that exists but is not a checkpoint is refused and left alone; an unwritable parent is an IOError', async () => {
    const dir = path.join(root, 'precious');
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'thesis.tex'), 'do not delete');
    const s = fakeTrained(10);
    expect(message(await saveCheckpoint(dir, config, s)())).toBe(`checkpoint ${dir}: exists and is not a checkpoint directory (no CURRENT or manifest.json); refusing to replace it`);
    expect(await snapshot(dir)).toEqual({ 'thesis.tex': Buffer.from('do not delete').toString('base64') });
    const underFile = path.join(dir, 'thesis.tex', 'ckpt');
    expect(message(await saveCheckpoint(underFile, config, s)())).toMatch(new RegExp(`^checkpoint ${underFile}: `));
    expect(await fs.readdir(dir)).toEqual(['thesis.tex']);
    disposeTrainState(s);
  });
});
