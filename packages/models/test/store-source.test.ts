/**
 * A checkpoint reads the same from every source: the file system (`loadCheckpoint`), a URL (`urlSource`, a local HTTP
 * server over the same folder) and a picked folder's files (`filesSource`, File objects of the same files) give the
 * same values, or the same error message up to the name of the directory — intact, flat (older layout), and each
 * damage: a flipped byte, a cut file, a missing file, an edited manifest, a CURRENT that names nothing.
 * And the sha256 of the browser sources (WebCrypto, or plain JavaScript without it) is Node's.
 */
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { random, initBackend } from '@score-sde/tensor-fp';
import { runs } from '@score-sde/tensor-fp/testing';
import {
  saveCheckpoint,
  loadCheckpoint,
  loadCheckpointFrom,
  renderCheckpointError,
  initTrainState,
  disposeTrainState,
  urlSource,
  filesSource,
  sha256HexJs,
  sha256HexAsync,
  type TrainConfig,
  type CheckpointError,
  type LoadedCheckpoint,
  type StoreSource,
} from '../src';
import { tinyTrainConfig } from './helpers';

const nodeSha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('sha256 of the browser sources', () => {
  test('sha256HexJs(b) = Node crypto sha256(b), lengths across the 55/56/64-byte padding boundaries', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => sha256HexJs(b) === nodeSha(b)),
      runs(200, { examples: [[new Uint8Array(0)], [new Uint8Array(55)], [new Uint8Array(56)], [new Uint8Array(64)], [new Uint8Array(119)]] }),
    );
  });

  test('sha256HexAsync(b) (WebCrypto) = Node crypto sha256(b)', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (b) => (await sha256HexAsync(b)) === nodeSha(b)), runs(50));
  });
});

const config: TrainConfig = tinyTrainConfig;

/** Every file under `dir`, as paths relative to it. */
const listFiles = async (dir: string, under = ''): Promise<string[]> => {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, under), { withFileTypes: true })) {
    const rel = under === '' ? e.name : `${under}/${e.name}`;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
};

/** The folder as a browser's picker gives it: File objects named `<folder>/<path>`. */
const pickedFiles = async (dir: string): Promise<StoreSource> => {
  const files = await Promise.all(
    (await listFiles(dir)).map(async (rel) => {
      const f = new File([await fs.readFile(path.join(dir, rel))], path.basename(rel));
      Object.defineProperty(f, 'webkitRelativePath', { value: `${path.basename(dir)}/${rel}` });
      return f as File & { webkitRelativePath: string };
    }),
  );
  const s = filesSource(files);
  if (E.isLeft(s)) throw new Error(s.left);
  return s.right;
};

/** What a load gives, comparable across sources: the message with the directory's name replaced, or the values. */
const outcome = async (r: E.Either<CheckpointError, LoadedCheckpoint>, name: string): Promise<string> => {
  if (E.isLeft(r)) return renderCheckpointError(r.left).split(name).join('<dir>');
  const values = await Promise.all(Object.entries(r.right.state.params).map(async ([k, v]) => `${k}:${Array.from(await v.data()).join(',')}`));
  disposeTrainState(r.right.state);
  return `loaded step ${r.right.config.batchSize}/${values.join(';')}`;
};

let root: string;
let server: http.Server;
let base: string;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'store-source-'));
  server = http.createServer((req, res) => {
    const file = path.join(root, decodeURIComponent((req.url ?? '/').split('?')[0]!));
    fs.readFile(file).then(
      (b) => res.writeHead(200).end(b),
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await fs.rm(root, { recursive: true, force: true });
});

/** The version folder CURRENT names. */
const version = async (dir: string): Promise<string> => path.join(dir, (await fs.readFile(path.join(dir, 'CURRENT'), 'utf8')).trim());

const damages: ReadonlyArray<readonly [string, (dir: string) => Promise<void>]> = [
  ['intact', async () => undefined],
  ['a flipped byte in params.bin', async (dir) => {
    const f = path.join(await version(dir), 'params.bin');
    const b = await fs.readFile(f);
    b[100] = b[100]! ^ 0x10;
    await fs.writeFile(f, b);
  }],
  ['ema.bin cut short', async (dir) => {
    const f = path.join(await version(dir), 'ema.bin');
    await fs.writeFile(f, (await fs.readFile(f)).subarray(0, 40));
  }],
  ['adam-v.bin missing', async (dir) => fs.rm(path.join(await version(dir), 'adam-v.bin'))],
  ['manifest.json with a bad field', async (dir) => {
    const f = path.join(await version(dir), 'manifest.json');
    const m = JSON.parse(await fs.readFile(f, 'utf8'));
    await fs.writeFile(f, JSON.stringify({ ...m, step: -1, extra: true }));
  }],
  ['manifest.json not JSON', async (dir) => fs.writeFile(path.join(await version(dir), 'manifest.json'), '{ "format": ')],
  ['CURRENT naming nothing', async (dir) => fs.writeFile(path.join(dir, 'CURRENT'), 'garbage\n')],
  ['no CURRENT and no manifest (an empty folder)', async (dir) => {
    for (const e of await fs.readdir(dir)) await fs.rm(path.join(dir, e), { recursive: true });
    await fs.writeFile(path.join(dir, 'README'), 'not a checkpoint');
  }],
  ['the older flat layout', async (dir) => {
    const v = await version(dir);
    for (const e of await fs.readdir(v)) await fs.rename(path.join(v, e), path.join(dir, e));
    await fs.rm(v, { recursive: true });
    await fs.rm(path.join(dir, 'CURRENT'));
  }],
];

describe('a checkpoint reads the same from the file system, a URL and a picked folder', () => {
  test.each(damages)('%s: the same values or the same message', async (label, damage) => {
    const name = `ckpt-${damages.findIndex((d) => d[0] === label)}`;
    const dir = path.join(root, name);
    const state = initTrainState(config, random.key(7));
    const saved = await saveCheckpoint(dir, config, state)();
    disposeTrainState(state);
    expect(E.isRight(saved)).toBe(true);
    await damage(dir);
    const fromFs = await outcome(await loadCheckpoint(dir)(), dir);
    const fromUrl = await outcome(await loadCheckpointFrom(urlSource(`${base}/${name}`))(), `${base}/${name}`);
    const fromFiles = await outcome(await loadCheckpointFrom(await pickedFiles(dir))(), name);
    if (label === 'intact' || label === 'the older flat layout') expect(fromFs).toMatch(/^loaded/);
    else expect(fromFs).toMatch(/^checkpoint <dir>: /);
    expect(fromUrl).toBe(fromFs);
    expect(fromFiles).toBe(fromFs);
  });

  test('a missing folder: Node says so; a URL and a picked folder cannot be listed, and name the missing manifest.json', async () => {
    const gone = path.join(root, 'nowhere');
    expect(await outcome(await loadCheckpoint(gone)(), gone)).toBe('checkpoint <dir>: no such directory');
    expect(await outcome(await loadCheckpointFrom(urlSource(`${base}/nowhere`))(), `${base}/nowhere`)).toBe('checkpoint <dir>: manifest.json is missing');
  });

  test('filesSource refuses files that are not under one folder', () => {
    const f = (p: string): { webkitRelativePath: string; name: string; arrayBuffer: () => Promise<ArrayBuffer> } => ({ webkitRelativePath: p, name: path.basename(p), arrayBuffer: async () => new ArrayBuffer(0) });
    expect(E.isLeft(filesSource([f('a/CURRENT'), f('b/manifest.json')]))).toBe(true);
    expect(E.isLeft(filesSource([]))).toBe(true);
  });
});
