/**
 * The pieces of the evaluation on their own: exact FID of features with known statistics, the statistics
 * helpers, masks and the inpainting invariant, chunk-independence of drawing, the classifier store, the sampler
 * list and the flags.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, initBackend, liveTensors, random } from '@score-sde/tensor-fp';
import { type ScoreFn, tutorial, marginalVariance } from '@score-sde/sde-math';
import { fid, classifier } from '@score-sde/models';
import { cli } from '../../src/lib';
import {
  mnistEvalFlags,
  fidOfStats,
  meanAndStandardError,
  perClassAccuracy,
  repeatRows,
  halfMask,
  maskTensor,
  inpaintDigits,
  drawInChunks,
  evalSampler,
  comparisonEntries,
  formatTol,
  requestedClasses,
  itemKeys,
  saveClassifier,
  loadClassifier,
  renderStoreError,
  disposeParams,
  classifierName,
  type ClassifierTraining,
} from '../../src/eval';
import { storedPath, tempDir } from './helpers';

let root: string;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  root = tempDir('units');
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** The score of the tutorial SDE's marginal when the data is N(0, I): ∇ log N(0, (1 + s(t)²) I) = −x / (1 + s(t)²). Elementwise and cheap. */
const gaussianScore =
  (sde = tutorial()): ScoreFn =>
  (x, t) =>
    tf.tidy(() => tf.mul(x, -1 / (1 + marginalVariance(sde, t))));

describe('FID glue', () => {
  test('features with exactly known sample statistics: FID = ‖μ₁ − μ₂‖² + Σ_k (√λ₁ₖ − √λ₂ₖ)²', () => {
    // The 2d design points μ ± c √λ_k e_k have sample mean exactly μ and unbiased covariance
    // Σ_k 2 c² λ_k e_k e_kᵀ / (2d − 1) = diag(λ) when c² = (2d − 1)/2: exact statistics, so the distance between
    // the two feature sets is the closed form for commuting (diagonal) covariances.
    const d = 5;
    const design = (mu: ReadonlyArray<number>, lambda: ReadonlyArray<number>): Float64Array => {
      const c = Math.sqrt((2 * d - 1) / 2);
      const rows: number[] = [];
      for (let k = 0; k < d; k++)
        for (const sign of [1, -1]) rows.push(...mu.map((m, j) => m + (j === k ? sign * c * Math.sqrt(lambda[k]!) : 0)));
      return Float64Array.from(rows);
    };
    const mu1 = [0.5, -1, 2, 0, 3];
    const mu2 = [1, 1, -2, 0.25, 3];
    const l1 = [1, 4, 0.25, 9, 2];
    const l2 = [2, 1, 1, 0.5, 2];
    const a = fid.gaussianStats(design(mu1, l1), 2 * d, d);
    const b = fid.gaussianStats(design(mu2, l2), 2 * d, d);
    if (E.isLeft(a) || E.isLeft(b)) throw new Error('stats');
    const r = fidOfStats(a.right, b.right);
    if (E.isLeft(r)) throw new Error(r.left.message);
    const meanTerm = mu1.reduce((s, m, j) => s + (m - mu2[j]!) ** 2, 0);
    const covTerm = l1.reduce((s, l, k) => s + (Math.sqrt(l) - Math.sqrt(l2[k]!)) ** 2, 0);
    // float64 throughout: the statistics are exact to rounding (~1e-15 relative) and the Jacobi eigen-solver is
    // exact to rounding; 1e-9 on values of order 10 leaves a million-fold margin.
    expect(Math.abs(r.right.meanTerm - meanTerm)).toBeLessThan(1e-9);
    expect(Math.abs(r.right.covTerm - covTerm)).toBeLessThan(1e-9);
    expect(Math.abs(r.right.fid - (meanTerm + covTerm))).toBeLessThan(1e-9);
    expect(r.right.n).toBe(2 * d);
  });
});

describe('statistics helpers', () => {
  test('mean ± standard error: x̄ = Σx/n, SE = √(Σ(x − x̄)²/(n − 1)/n) (hand example 1,2,3,4: 2.5 ± √(5/12))', () => {
    const r = meanAndStandardError([1, 2, 3, 4]);
    expect(r.mean).toBe(2.5);
    // Σ(x − x̄)² = 5, s² = 5/3, SE² = 5/12; a few ulps of rounding.
    expect(Math.abs(r.standardError - Math.sqrt(5 / 12))).toBeLessThan(1e-15);
    expect(Number.isNaN(meanAndStandardError([3]).standardError)).toBe(true);
  });

  test('per-class accuracy = hits / count per true class (NaN for an absent class)', () => {
    const acc = perClassAccuracy([0, 1, 1, 2, 2, 0], [0, 1, 0, 2, 2, 2], 4);
    expect(acc.slice(0, 3)).toEqual([0.5, 1, 2 / 3]);
    expect(Number.isNaN(acc[3]!)).toBe(true);
  });

  test('requested classes: sample b asks for ⌊b / perClass⌋', () => {
    expect(Array.from(requestedClasses(3, 2))).toEqual([0, 0, 1, 1, 2, 2]);
  });

  test('repeatRows(x, k): row i·k + j of the result is row i of x', () => {
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const r = repeatRows(x, 3);
    expect(r.arraySync()).toEqual([
      [1, 2],
      [1, 2],
      [1, 2],
      [3, 4],
      [3, 4],
      [3, 4],
    ]);
    tf.dispose([x, r]);
  });
});

describe('masks and inpainting', () => {
  test('halfMask: lower keeps rows 0…13 of 28 and hides 14…27; right keeps columns 0…13', () => {
    const lower = halfMask('lower', 28, 28);
    const right = halfMask('right', 28, 28);
    for (let r = 0; r < 28; r++)
      for (let c = 0; c < 28; c++) {
        expect(lower[r * 28 + c]).toBe(r < 14 ? 1 : 0);
        expect(right[r * 28 + c]).toBe(c < 14 ? 1 : 0);
      }
  });

  test('inpainted completions equal the observation on the known half (x̄ = m(ε) y there, m ≡ 1 for the tutorial SDE) and fill the hidden half', async () => {
    const sde = tutorial();
    const sampler = evalSampler(sde, 'em', { steps: 4, fastSteps: 2, snr: 0.16, odeTol: 1e-3 });
    if (E.isLeft(sampler)) throw new Error('sampler');
    const originals = tf.tidy(() => tf.mul(random.uniform(random.key(3), [2, 28, 28, 1]), 1));
    const mask = maskTensor('lower', 28, 28);
    const before = liveTensors();
    const r = await inpaintDigits(sde, gaussianScore(sde), sampler.right, originals, mask, 3, itemKeys(random.key(4), 0, 6), { batch: 4, label: 'inpaint', quiet: true });
    expect(liveTensors()).toBe(before + 1);
    if (E.isLeft(r)) throw new Error(r.left.message);
    const x = r.right.x.arraySync() as number[][][][];
    const y = originals.arraySync() as number[][][][];
    let known = 0;
    let hiddenDiffers = 0;
    for (let b = 0; b < 6; b++)
      for (let row = 0; row < 28; row++)
        for (let c = 0; c < 28; c++) {
          const v = x[b]![row]![c]![0]!;
          const o = y[Math.floor(b / 3)]![row]![c]![0]!;
          // Known pixels: mask·(1·y) + 0·x̄ = y exactly in float32, and y ∈ [0, 1] survives the final clipping.
          if (row < 14) known = Math.max(known, Math.abs(v - o));
          else if (v !== o) hiddenDiffers++;
        }
    expect(known).toBe(0);
    // The hidden half is sampled: (almost) every pixel differs from the original.
    expect(hiddenDiffers).toBeGreaterThan(0.9 * 6 * 14 * 28);
    tf.dispose([r.right.x, originals, mask]);
  });
});

describe('drawing in chunks', () => {
  test('a per-sample sampler (EM) gives the same samples whatever --sample-batch: sample b depends only on keys[b]', async () => {
    const sde = tutorial();
    const sampler = evalSampler(sde, 'em', { steps: 5, fastSteps: 2, snr: 0.16, odeTol: 1e-3 });
    if (E.isLeft(sampler)) throw new Error('sampler');
    const keys = itemKeys(random.key(11), 0, 6);
    const before = liveTensors();
    const setup = () => ({ sampler: sampler.right, score: gaussianScore(sde) });
    const a = await drawInChunks(keys, setup, { batch: 6, label: 'a', quiet: true, sampleShape: [3, 3, 1] });
    const b = await drawInChunks(keys, setup, { batch: 4, label: 'b', quiet: true, sampleShape: [3, 3, 1] });
    if (E.isLeft(a) || E.isLeft(b)) throw new Error('draw');
    expect(a.right.nfe).toBe(5);
    // The same elementwise float32 arithmetic on the same numbers: equal (1e-6 only allows a backend that fuses
    // operations differently by batch size; values are O(1)).
    const da = a.right.x.dataSync();
    const db = b.right.x.dataSync();
    let m = 0;
    for (let i = 0; i < da.length; i++) m = Math.max(m, Math.abs(da[i]! - db[i]!));
    expect(m).toBeLessThanOrEqual(1e-6);
    tf.dispose([a.right.x, b.right.x]);
    expect(liveTensors()).toBe(before);
  });
});

describe('classifier store', () => {
  const config = classifier.classifierConfig({ imageSize: 8, channels: [2, 4, 4], featureDim: 4 });
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
    const params = classifier.initClassifier(config, random.key(5));
    const dir = path.join(root, 'clf');
    const saved = await saveClassifier(dir, config, params, training);
    if (E.isLeft(saved)) throw new Error(renderStoreError(saved.left));
    const loaded = await loadClassifier(dir);
    if (E.isLeft(loaded)) throw new Error(renderStoreError(loaded.left));
    expect(loaded.right.manifest).toEqual(saved.right.manifest);
    for (const s of classifier.classifierSpec(config)) {
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
    const params = classifier.initClassifier(config, random.key(6));
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

describe('sampler list and flags', () => {
  test('the comparison expands ode over --ode-tols and edm/dpm over --fast-steps; the ode solves [ε, T] as one interval', () => {
    const r = comparisonEntries(tutorial(), { compare: ['em', 'ode', 'edm', 'dpm'], steps: 500, snr: 0.16, odeTols: [1e-5, 1e-3], fastSteps: [10, 20] });
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(r.right.map((e) => e.id)).toEqual(['em-500', 'ode-1e-5', 'ode-1e-3', 'edm-10', 'edm-20', 'dpm-10', 'dpm-20']);
    expect(r.right[1]!.sampler.grid).toHaveLength(2);
    expect(r.right[1]!.spec).toEqual({ kind: 'ode-adaptive', rtol: 1e-5, atol: 1e-5 });
    expect(r.right[4]!.sampler.grid).toHaveLength(21);
    expect([1e-5, 1e-3, 0.5, 2.5e-4, 0.1].map(formatTol)).toEqual(['1e-5', '1e-3', '0.5', '2.5e-4', '0.1']);
  });

  test('bad flags are reported naming the flag; --checkpoint is required', () => {
    const r = cli.parseFlags(mnistEvalFlags, ['--samples', 'many', '--skip', 'bpd,fid', '--mask', 'upper', '--fast-steps', '10,0', '--guidance-scale', '-1']);
    expect(E.isLeft(r) && r.left._tag === 'InvalidFlags' && r.left.problems).toEqual([
      '--checkpoint: required (score-model checkpoint directory (from nx run experiments:mnist); its EMA weights are evaluated)',
      '--samples: expected PositiveInt, got "many"',
      '--skip: expected a comma-separated list of EvalPart, got "fid"',
      '--fast-steps: expected a comma-separated list of PositiveInt, got "0"',
      '--guidance-scale: expected NonNegativeFinite, got "-1"',
      '--mask: expected lower|right, got "upper"',
    ]);
  });
});
