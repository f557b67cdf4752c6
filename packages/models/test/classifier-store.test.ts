/**
 * The classifier store (classifier/store.ts, over the one weights store): save → load is bit-exact and names the
 * network by its weights; corrupt files, unknown manifest keys and foreign directories are refused, naming them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { initBackend, random } from '@score-sde/tensor-fp';
import { renderStoreError, tensorFiles } from '../src';
import { classifierConfig, initClassifier, classifierSpec, saveClassifier, loadClassifier, disposeParams, classifierName, type ClassifierTraining } from '../src/classifier/index';

let root: string;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'classifier-store-'));
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** The path of `file` in the stored directory `dir` (through its CURRENT version). */
const storedPath = async (dir: string, file: string): Promise<string> => {
  const at = await tensorFiles.storedDirectory(dir);
  if (E.isLeft(at)) throw new Error(at.left.message);
  return path.join(at.right, file);
};

describe('classifier store', () => {
  const config = classifierConfig({ imageSize: 8, channels: [2, 4, 4], featureDim: 4 });
  const training: ClassifierTraining = {
    steps: 3,
    epochs: 1,
    batchSize: 8,
    lr: 1e-3,
    trainImages: 24,
    seed: 0,
    seconds: 0.5,
    finalLoss: 2.3,
    testImages: 10,
    testAccuracy: 0.1,
  };

  test('save → load gives the same values bit for bit, the same manifest, and names the network by its sha256', async () => {
    const params = initClassifier(config, random.key(5));
    const dir = path.join(root, 'clf');
    const saved = await saveClassifier(dir, config, params, training);
    if (E.isLeft(saved)) throw new Error(renderStoreError(saved.left));
    const loaded = await loadClassifier(dir);
    if (E.isLeft(loaded)) throw new Error(renderStoreError(loaded.left));
    expect(loaded.right.manifest).toEqual(saved.right.manifest);
    for (const s of classifierSpec(config)) {
      const a = new Uint32Array(Float32Array.from(params[s.name]!.dataSync()).buffer);
      const b = new Uint32Array(Float32Array.from(loaded.right.params[s.name]!.dataSync()).buffer);
      expect([s.name, Array.from(b)]).toEqual([s.name, Array.from(a)]);
    }
    expect(classifierName(loaded.right.manifest)).toBe(`mnist-convnet[2,4,4]→4 sha256:${saved.right.manifest.params.sha256.slice(0, 12)}`);
    // Saving again over it replaces it atomically (no temp or aside directory is left).
    const again = await saveClassifier(dir, config, loaded.right.params, training);
    expect(E.isRight(again)).toBe(true);
    expect(fs.readdirSync(root).filter((n) => n.startsWith('.clf'))).toEqual([]);
    disposeParams(params);
    disposeParams(loaded.right.params);
  });

  test('load refuses a corrupt params.bin (sha256), an unknown manifest key (named), and save refuses a foreign directory', async () => {
    const params = initClassifier(config, random.key(6));
    const dir = path.join(root, 'clf-bad');
    const saved = await saveClassifier(dir, config, params, training);
    if (E.isLeft(saved)) throw new Error(renderStoreError(saved.left));
    const binPath = await storedPath(dir, 'params.bin');
    const bin = fs.readFileSync(binPath);
    bin[10] = bin[10]! ^ 0xff;
    fs.writeFileSync(binPath, bin);
    const corrupt = await loadClassifier(dir);
    expect(E.isLeft(corrupt) && renderStoreError(corrupt.left)).toMatch(/params\.bin has sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64} \(the file is corrupt\)/);

    const manifestPath = await storedPath(dir, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(manifestPath, JSON.stringify({ ...m, extra: 1 }));
    const bad = await loadClassifier(dir);
    expect(E.isLeft(bad) && renderStoreError(bad.left)).toMatch(/invalid manifest\.json:\n {2}extra: unknown key/);

    const foreign = path.join(root, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    const refused = await saveClassifier(foreign, config, params, training);
    expect(E.isLeft(refused) && renderStoreError(refused.left)).toMatch(/is not a classifier directory .* refusing to replace it/);
    expect(fs.readdirSync(foreign)).toEqual(['notes.txt']);
    disposeParams(params);
  });
});
