/**
 * The pieces of the evaluation on their own: exact FID of features with known statistics, the statistics
 * helpers, masks and the inpainting invariant, chunk-independence of drawing, the classifier store, the sampler
 * list and the flags.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, initBackend, liveTensors, random } from '@score-sde/tensor-fp';
import { type ScoreFn, tutorial, ve, marginalVariance, marginalMeanCoef } from '@score-sde/sde-math';
import { fid, classifier, initTrainState, saveCheckpoint, disposeTrainState } from '@score-sde/models';
import { cli } from '../../src/lib';
import { draw, namedSampler, itemKeys, ODE_INTERVALS, DPM_SDE_ETA, DPM_SDE_SIGMA_MIN, LABELLED_SAMPLERS } from '../../src/pipeline';
import {
  mnistEvalFlags,
  fidOfStats,
  fidOfImages,
  perClassAccuracy,
  halfMask,
  maskTensor,
  inpaintDigits,
  comparisonEntries,
  formatTol,
  requestedClasses,
  evaluationOptionsOf,
  checkpointIsClassConditional,
  checkpointTraits,
  optionProblems,
  clampedSetting,
  DEFAULT_EVALUATION,
} from '../../src/eval';
import { tempDir, tinyTrainConfig } from './helpers';

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

describe('FID at nested sample counts', () => {
  test('FID of the first k images is the FID of those k images alone, at every nested count of fid.prefixCounts (k ≥ 16d), and FID∞ is the least-squares line in 1/k through them', () => {
    const config: classifier.ClassifierConfig = { ...classifier.mnistClassifierConfig, channels: [4, 4, 8], featureDim: 3 };
    const params = classifier.initClassifier(config, random.key(3));
    const n = 160;
    const x = tf.tidy(() => tf.randomUniform([n, 28, 28, 1], 0, 1, 'float32', 5));
    const refImages = tf.tidy(() => tf.randomUniform([30, 28, 28, 1], 0, 1, 'float32', 6));
    const reference = fid.gaussianStats(classifier.featuresInBatches(config, params, refImages), 30, config.featureDim);
    if (E.isLeft(reference)) throw new Error(reference.left.message);
    const whole = fidOfImages(config, params, x, reference.right);
    if (E.isLeft(whole)) throw new Error(whole.left.message);
    const ks = fid.prefixCounts(n, config.featureDim);
    expect(ks).toEqual([53, 80, 107, 160]);
    expect(whole.right.fidAt?.map((a) => a.n)).toEqual(ks);
    ks.forEach((k, i) => {
      const alone = tf.tidy(() => tf.slice(x, [0, 0, 0, 0], [k, 28, 28, 1]));
      const r = fidOfImages(config, params, alone, reference.right);
      alone.dispose();
      if (E.isLeft(r)) throw new Error(r.left.message);
      // the same features (one image at a time through the same network, batches of 256) and the same float64 arithmetic: equal to the bit
      expect(whole.right.fidAt![i]!.fid).toBe(r.right.fid);
    });
    expect(whole.right.fidAt![ks.length - 1]!.fid).toBe(whole.right.fid);
    const line = fid.extrapolateFid(whole.right.fidAt!);
    if (E.isLeft(line)) throw new Error(line.left.message);
    expect(whole.right.fidInfinity).toBe(line.right.fidInfinity);
    // too few images for two counts ≥ 16d (48 here; 60 gives only 60 itself): no extrapolation, the plain FID
    const few = tf.tidy(() => tf.slice(x, [0, 0, 0, 0], [60, 28, 28, 1]));
    const r60 = fidOfImages(config, params, few, reference.right);
    few.dispose();
    expect(E.isRight(r60) && r60.right.fidAt === undefined && r60.right.fidInfinity === undefined).toBe(true);
    tf.dispose([x, refImages]);
    tf.dispose(Object.values(params));
  });
});

describe('statistics helpers', () => {
  test('per-class accuracy = hits / count per true class (NaN for an absent class)', () => {
    const acc = perClassAccuracy([0, 1, 1, 2, 2, 0], [0, 1, 0, 2, 2, 2], 4);
    expect(acc.slice(0, 3)).toEqual([0.5, 1, 2 / 3]);
    expect(Number.isNaN(acc[3]!)).toBe(true);
  });

  test('requested classes: sample b asks for ⌊b / perClass⌋', () => {
    expect(Array.from(requestedClasses(3, 2))).toEqual([0, 0, 1, 1, 2, 2]);
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
    const sampler = namedSampler(sde, 'em', { steps: 4, fastSteps: 2, snr: 0.16, odeTol: 1e-3 });
    if (E.isLeft(sampler)) throw new Error('sampler');
    const originals = tf.tidy(() => tf.mul(random.uniform(random.key(3), [2, 28, 28, 1]), 1));
    const mask = maskTensor('lower', 28, 28);
    const before = liveTensors();
    const r = await inpaintDigits(sde, gaussianScore(sde), sampler.right, originals, mask, 3, itemKeys(random.key(4), 0, 6), { start: 0, end: 6 }, { batch: 4, label: 'inpaint', quiet: true, dataRange: [0, 1] });
    expect(liveTensors()).toBe(before);
    if (E.isLeft(r)) throw new Error(r.left.message);
    const xs = r.right.samples;
    const y = originals.arraySync() as number[][][][];
    let known = 0;
    let hiddenDiffers = 0;
    for (let b = 0; b < 6; b++)
      for (let row = 0; row < 28; row++)
        for (let c = 0; c < 28; c++) {
          const v = xs[b * 784 + row * 28 + c]!;
          const o = y[Math.floor(b / 3)]![row]![c]![0]!;
          // Known pixels: mask·(1·y) + 0·x̄ = y exactly in float32, and y ∈ [0, 1] survives the final clipping.
          if (row < 14) known = Math.max(known, Math.abs(v - o));
          else if (v !== o) hiddenDiffers++;
        }
    expect(known).toBe(0);
    // The hidden half is sampled: (almost) every pixel differs from the original.
    expect(hiddenDiffers).toBeGreaterThan(0.9 * 6 * 14 * 28);
    tf.dispose([originals, mask]);
  });
});

describe('drawing in chunks', () => {
  test('a batch-separable sampler (EM) gives the same samples whatever the chunk size: sample b depends only on keys[b]', async () => {
    const sde = tutorial();
    const sampler = namedSampler(sde, 'em', { steps: 5, fastSteps: 2, snr: 0.16, odeTol: 1e-3 });
    if (E.isLeft(sampler)) throw new Error('sampler');
    const keys = itemKeys(random.key(11), 0, 6);
    const before = liveTensors();
    const setup = () => ({ sampler: sampler.right, score: gaussianScore(sde) });
    const a = await draw(keys, setup, { batch: 6, sampleShape: [3, 3, 1], dataRange: [0, 1] }, 'a');
    const b = await draw(keys, setup, { batch: 4, sampleShape: [3, 3, 1], dataRange: [0, 1] }, 'b');
    if (E.isLeft(a) || E.isLeft(b)) throw new Error('draw');
    // 5 Euler–Maruyama steps and the final Tweedie step, per sample; 6 samples in all.
    expect([a.right.nfe, a.right.nfeTotal, b.right.nfeTotal]).toEqual([6, 36, 36]);
    // The same elementwise float32 arithmetic on the same numbers: equal (1e-6 only allows a backend that fuses
    // operations differently by batch size; values are O(1)).
    let m = 0;
    for (let i = 0; i < a.right.samples.length; i++) m = Math.max(m, Math.abs(a.right.samples[i]! - b.right.samples[i]!));
    expect(m).toBeLessThanOrEqual(1e-6);
    expect(liveTensors()).toBe(before);
  });
});

describe('sampler list and flags', () => {
  test('the comparison expands ode over --ode-tols and edm/dpm over --fast-steps; the ode is the named one, its reporting grid in its spec', () => {
    const r = comparisonEntries(tutorial(), { samplers: ['em', 'ode', 'edm', 'dpm', 'dpm-sde'], steps: 500, snr: 0.16, odeTols: [1e-5, 1e-3], fastSteps: [10, 20] });
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(r.right.map((e) => e.id)).toEqual(['em-500', 'ode-1e-5', 'ode-1e-3', 'edm-10', 'edm-20', 'dpm-10', 'dpm-20', 'dpm-sde-10', 'dpm-sde-20']);
    // dpm-sde at k takes 2k steps (edm's NFE at k), on the Karras grid
    expect(r.right[7]!.sampler.grid).toHaveLength(21);
    expect(r.right[7]!.spec).toEqual({ kind: 'dpm-solver++2m', steps: 20, eta: DPM_SDE_ETA, sMin: DPM_SDE_SIGMA_MIN, grid: 'karras' });
    expect(r.right[1]!.sampler.grid).toHaveLength(ODE_INTERVALS + 1);
    expect(r.right[1]!.spec).toEqual({ kind: 'ode-adaptive', rtol: 1e-5, atol: 1e-5, intervals: ODE_INTERVALS });
    expect(r.right[4]!.sampler.grid).toHaveLength(21);
    expect([1e-5, 1e-3, 0.5, 2.5e-4, 0.1].map(formatTol)).toEqual(['1e-5', '1e-3', '0.5', '2.5e-4', '0.1']);
  });

  test('without --compare the comparison is the default list, and on a class-conditional checkpoint the labelled samplers too; --compare names them exactly', async () => {
    const flags = (argv: ReadonlyArray<string>) => {
      const r = cli.parseFlags(mnistEvalFlags, ['--checkpoint', 'c', ...argv]);
      if (E.isLeft(r)) throw new Error(cli.renderCliError(r.left));
      return r.right;
    };
    expect(evaluationOptionsOf(flags([])).samplers.samplers).toEqual(DEFAULT_EVALUATION.samplers.samplers);
    expect(evaluationOptionsOf(flags([]), { classConditional: true }).samplers.samplers).toEqual([...DEFAULT_EVALUATION.samplers.samplers, ...LABELLED_SAMPLERS]);
    expect(evaluationOptionsOf(flags(['--compare', 'dpm-sde']), { classConditional: true }).samplers.samplers).toEqual(['dpm-sde']);
    // whether a checkpoint is class-conditional comes from its manifest: a label table, none, or no checkpoint at all
    const dir = tempDir('classes');
    const labelled = { ...tinyTrainConfig, model: { ...tinyTrainConfig.model, classes: 10 }, conditioning: { dropout: 0.1, prior: new Array<number>(10).fill(0.1) } };
    for (const [name, config] of [['labelled', labelled], ['plain', tinyTrainConfig]] as const) {
      const state = initTrainState(config, random.key(1));
      const saved = await saveCheckpoint(path.join(dir, name), config, state)();
      disposeTrainState(state);
      if (E.isLeft(saved)) throw new Error(saved.left._tag);
    }
    expect(await Promise.all(['labelled', 'plain', 'absent'].map((n) => checkpointIsClassConditional(path.join(dir, n))))).toEqual([true, false, false]);
  });

  test('--cfg-weight and --autoguidance-weight reach the comparison (none given: no guidance field), and the labels of the samplers they apply to say so', () => {
    const parsed = (argv: ReadonlyArray<string>) => {
      const r = cli.parseFlags(mnistEvalFlags, ['--checkpoint', 'c', ...argv]);
      if (E.isLeft(r)) throw new Error(cli.renderCliError(r.left));
      return r.right;
    };
    expect('guidance' in evaluationOptionsOf(parsed([])).samplers).toBe(false);
    const o = evaluationOptionsOf(parsed(['--cfg-weight', '1.3', '--autoguidance-weight', '2', '--compare', 'dpm-cfg,dpm-ag,dpm-ag-cond,dpm-sde-cond', '--fast-steps', '5']));
    expect(o.samplers.guidance).toEqual({ cfg: 1.3, autoguidance: 2 });
    const entries = comparisonEntries(ve({ sigmaMin: 0.002, sigmaMax: 80 }), o.samplers);
    if (E.isLeft(entries)) throw new Error(entries.left.message);
    expect(entries.right.map((e) => e.label.match(/\((w.*)\)$/)?.[1] ?? '')).toEqual(['w = 1.3', 'w_g = 2', 'w = 1.3, w_g = 2', '']);
  });

  test('the samplers stop at the 2% quantile of the levels the checkpoint was trained on: log-normal ln σ ~ N(−0.6, 1.2²) gives σ_end = e^{−0.6 + 1.2 Φ⁻¹(0.02)}; uniform-t training keeps ε; --end-noise overrides; the likelihood starts where σ(ε) is the cell’s standard deviation', async () => {
    const dir = tempDir('end');
    const edm = { ...tinyTrainConfig, sde: ve({ sigmaMin: 0.002, sigmaMax: 80 }), loss: { kind: 'dsm' as const, weighting: 'edm' as const, eps: 1e-5, noise: { kind: 'log-normal' as const, mean: -0.6, std: 1.2 } } };
    for (const [name, config] of [['edm', edm], ['tutorial', tinyTrainConfig]] as const) {
      const state = initTrainState(config, random.key(1));
      const saved = await saveCheckpoint(path.join(dir, name), config, state)();
      disposeTrainState(state);
      if (E.isLeft(saved)) throw new Error(saved.left._tag);
    }
    const [edmTraits, tutorialTraits] = await Promise.all([checkpointTraits(path.join(dir, 'edm')), checkpointTraits(path.join(dir, 'tutorial'))]);
    // Φ⁻¹(0.02) = −2.0537489106318225; the quantile's bisection resolves ln σ to float64 resolution
    const expected = Math.exp(-0.6 - 1.2 * 2.0537489106318225);
    expect(Math.abs(edmTraits.endNoise! / expected - 1)).toBeLessThan(1e-12);
    expect(tutorialTraits).toEqual({ classConditional: false, space: { sde: tinyTrainConfig.sde, dataRange: [0, 1] } });
    const parsed = (argv: ReadonlyArray<string>) => {
      const r = cli.parseFlags(mnistEvalFlags, ['--checkpoint', 'c', ...argv]);
      if (E.isLeft(r)) throw new Error(cli.renderCliError(r.left));
      return r.right;
    };
    const o = evaluationOptionsOf(parsed([]), edmTraits);
    expect([o.samplers.endNoise, o.conditional.sampler.endNoise, o.inpainting.sampler.endNoise]).toEqual([edmTraits.endNoise, edmTraits.endNoise, edmTraits.endNoise]);
    // every compared sampler's spec ends there: ε = σ⁻¹(σ_end)
    const entries = comparisonEntries(edm.sde, o.samplers);
    if (E.isLeft(entries)) throw new Error(entries.left.message);
    const eps = Math.log1p((expected / 0.002) ** 2) / (2 * Math.log(80 / 0.002));
    for (const e of entries.right) expect(Math.abs((e.spec as { eps: number }).eps / eps - 1)).toBeLessThan(1e-9);
    expect(evaluationOptionsOf(parsed(['--end-noise', '0.1']), edmTraits).samplers.endNoise).toBe(0.1);
    expect(evaluationOptionsOf(parsed([]), tutorialTraits).samplers.endNoise).toBeUndefined();
    // the likelihood starts where the noise level is the centred cell's standard deviation, σ(ε) = (1/255)/√12, for the
    // checkpoint's VE record: ε = log(1 + σ²/σ_min²)/(2 log(σ_max/σ_min)); score_sde's cells are 1/256 wide; --bpd-eps overrides
    const start = (w: number) => Math.log1p((w / Math.sqrt(12) / 0.002) ** 2) / (2 * Math.log(80 / 0.002));
    expect(o.bpd.cells).toBe('centred');
    expect(Math.abs(o.bpd.eps / start(1 / 255) - 1)).toBeLessThan(1e-12);
    expect(Math.abs(evaluationOptionsOf(parsed(['--bpd-cells', 'score-sde']), edmTraits).bpd.eps / start(1 / 256) - 1)).toBeLessThan(1e-12);
    expect(evaluationOptionsOf(parsed(['--bpd-eps', '1e-5']), edmTraits).bpd.eps).toBe(1e-5);
    // a checkpoint that cannot be read falls back to score_sde's ε
    expect(evaluationOptionsOf(parsed([]), await checkpointTraits(path.join(dir, 'absent'))).bpd.eps).toBe(1e-5);
  });

  test('--denoiser-range lo,hi reaches the options (absent: none) and clamps the denoiser of every score the parts draw with — the model\'s, given labels, conditional, the guide\'s — to clip(D, lo, hi); lo ≥ hi or one number is a problem naming the flag', () => {
    const parsed = (argv: ReadonlyArray<string>) => {
      const r = cli.parseFlags(mnistEvalFlags, ['--checkpoint', 'c', ...argv]);
      if (E.isLeft(r)) throw new Error(cli.renderCliError(r.left));
      return evaluationOptionsOf(r.right);
    };
    expect('denoiserRange' in parsed([])).toBe(false);
    const o = parsed(['--denoiser-range', '-1,2']);
    expect([o.denoiserRange, optionProblems(o)]).toEqual([[-1, 2], []]);
    expect(optionProblems(parsed(['--denoiser-range', '2,1']))).toEqual(['--denoiser-range: expected lo,hi with lo < hi, got 2,1']);
    expect(optionProblems(parsed(['--denoiser-range', '1']))).toEqual(['--denoiser-range: expected lo,hi with lo < hi, got 1']);
    // Scores whose denoiser is c = (3, −2, 0.5) (s = −(x − m c)/s(t)²): clamped to [−1, 2] they denoise to (2, −1, 0.5).
    const sde = ve();
    const t = 0.5;
    const m = marginalMeanCoef(sde, t);
    const v = marginalVariance(sde, t);
    const withDenoiser = (c: ReadonlyArray<number>): ScoreFn => (x) => tf.tidy(() => tf.div(tf.sub(tf.mul(tf.tensor(c, [1, 3]), m), x), v));
    const c = [3, -2, 0.5];
    const plain = { o, sde, score: withDenoiser(c), dataRange: [0, 1] as const, test: {} as never, log: () => undefined, guide: E.right(withDenoiser(c)), conditional: E.right(() => withDenoiser(c)), guideConditional: E.right(() => withDenoiser(c)), labelled: { scoreGiven: () => withDenoiser(c), prior: [1] } };
    const s = clampedSetting(plain);
    const unwrap = <A>(e: E.Either<string, A> | undefined): A => {
      if (e === undefined || E.isLeft(e)) throw new Error('missing');
      return e.right;
    };
    const scores: ReadonlyArray<ScoreFn> = [s.score, unwrap(s.guide), unwrap(s.conditional)([]), unwrap(s.guideConditional)([]), s.labelled!.scoreGiven([0])];
    const x = tf.tensor([[0.1, -0.3, 0.7]]);
    for (const f of scores) {
      const denoised = tf.tidy(() => tf.div(tf.add(x, tf.mul(f(x, t), v)), m).dataSync());
      // float32: ≤ 8 roundings, each of a value ≤ |x| + s(t)²|s| + m(|c| + |clip c|) ≤ 2|x| + m(2|c| + |clip c|), over m
      const want = [2, -1, 0.5];
      Array.from(denoised).forEach((d, j) => expect(Math.abs(d - want[j]!)).toBeLessThanOrEqual((8 * 2 ** -24 * (2 * Math.abs([0.1, -0.3, 0.7][j]!) + m * (2 * Math.abs(c[j]!) + Math.abs(want[j]!)))) / m));
    }
    // and without the flag the setting is returned as it is
    expect(clampedSetting({ ...plain, o: parsed([]) })).toEqual({ ...plain, o: parsed([]) });
    x.dispose();
  });

  test('bad flags are reported naming the flag; --checkpoint is required', () => {
    const r = cli.parseFlags(mnistEvalFlags, ['--samples', 'many', '--skip', 'bpd,fid', '--mask', 'upper', '--fast-steps', '10,0', '--guidance-scale', '-1', '--bpd-cells', 'middle']);
    expect(E.isLeft(r) && r.left._tag === 'InvalidFlags' && r.left.problems).toEqual([
      '--checkpoint: required (score-model checkpoint directory (from nx run experiments:mnist); its EMA weights are evaluated)',
      '--samples: expected PositiveInt, got "many"',
      '--skip: expected a comma-separated list of EvalPart, got "fid"',
      '--fast-steps: expected a comma-separated list of PositiveInt, got "0"',
      '--bpd-cells: expected score-sde|centred, got "middle"',
      '--guidance-scale: expected NonNegativeFinite, got "-1"',
      '--mask: expected lower|right, got "upper"',
    ]);
  });
});
