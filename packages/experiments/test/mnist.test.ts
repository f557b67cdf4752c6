import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import * as E from 'fp-ts/Either';
import { PNG } from 'pngjs';
import { tf, initBackend, type BackendInfo, type Key } from '@score-sde/tensor-fp';
import { type MnistData, loadMnist, readIdxImages, loadCheckpoint, pixelsToUnit, tensorFiles, dataRangeOf, disposeTrainState, classFrequencies, scoreOfRun, emaParams, sampleLabels, type LossConfig } from '@score-sde/models';
import { type ScoreFn, type SDE, marginalStd, marginalMeanCoef, timeOfNoiseLevel, noiseLevel } from '@score-sde/sde-math';
import { cellMatchedStartTime, samplerFromSpec } from '@score-sde/solvers';
import { cli } from '../src/lib';
import { mnistFlags, type MnistFlags, recipeOfFlags } from '../src/mnist/flags';
import { runMnist } from '../src/mnist/run';
import { evaluationOptionsOfRun } from '../src/run-evaluation';
import { DEFAULT_EVALUATION } from '../src/eval/options';
import { EVAL_PARTS, PRESETS, CFG_WEIGHTS, AUTOGUIDANCE_WEIGHTS, GUIDANCE_INTERVALS, guidedSteps, multistepNetworkEvaluations, endNoiseOf, trainConfigOfRecipe, loadScoreModel, conditionalScoreOfState, namedSampler, namedSamplerSpec, samplerSettingsOf, draw, sampleKeys, DPM_SDE_AG_COND_NOISE } from '../src/pipeline';
import { writeSamples, drawNamed } from '../src/mnist/sample';

/** A few hundred real training images, and a tiny model, sampler and step count: checks the pipeline, not quality. */
const tinyArgs = (extra: ReadonlyArray<string>, samplers = 'em,pc,ode,edm', epochs = 1): MnistFlags => {
  const r = cli.parseFlags(mnistFlags, [
    '--epochs', String(epochs), '--batch-size', '32', '--channels', '8,16,16,16', '--embed-dim', '16', '--steps', '4',
    '--fast-steps', '3', '--ode-tol', '1e-2', '--num-samples', '6', '--samplers', samplers, '--quiet', ...extra,
  ]);
  if (E.isLeft(r)) throw new Error(cli.renderCliError(r.left));
  return r.right;
};

const sha = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const quietLog = (): void => undefined;

let backend: BackendInfo;
let data: MnistData;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnist-smoke-'));

beforeAll(async () => {
  backend = await initBackend({ prefer: 'wasm', quiet: true });
  const d = await loadMnist({ split: 'train', subset: 96 })();
  if (E.isLeft(d)) throw new Error('MNIST did not load');
  data = d.right;
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('experiments:mnist on a few hundred images', () => {
  test('writes the checkpoint, a PNG grid and an IDX file per sampler, the loss curve and both reports', async () => {
    const out = path.join(tmp, 'run');
    const before = tf.memory().numTensors;
    const r = await runMnist(tinyArgs([]), { backend, data, log: quietLog }, out);
    expect(E.isRight(r)).toBe(true);
    if (E.isLeft(r)) return;
    // No tensor survives a training epoch and four sampler runs.
    expect(tf.memory().numTensors).toBe(before);

    for (const name of ['em', 'pc', 'ode', 'edm']) {
      const png = PNG.sync.read(fs.readFileSync(path.join(out, `samples-${name}.png`)));
      expect(png.width).toBeGreaterThan(28 * 6);
      const idx = await readIdxImages(path.join(out, `samples-${name}.idx`))();
      expect(E.isRight(idx) && [idx.right.count, idx.right.rows, idx.right.cols]).toEqual([6, 28, 28]);
    }
    expect(PNG.sync.read(fs.readFileSync(path.join(out, 'loss.png'))).width).toBeGreaterThan(100);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.trainSteps).toBe(3); // ⌈96 / 32⌉ steps in one epoch
    expect(Number.isFinite(report.finalLoss)).toBe(true);
    expect(report.samplers.map((s: { sampler: string }) => s.sampler)).toEqual(['em', 'pc', 'ode', 'edm']);
    // EM: one score evaluation per step; PC: predictor + one Langevin step; EDM Heun: 2 per step (the grid ends at
    // ε > 0, so the last step is corrected too); each + 1 for the final Tweedie step from ε to 0.
    expect(report.samplers.map((s: { nfe: number }) => s.nfe).slice(0, 2)).toEqual([4 + 1, 8 + 1]);
    expect(report.samplers[3].nfe).toBe(2 * 3 + 1);
    expect(report.backend).toMatch(/^wasm/);
    expect(report.seed).toBe(0);
    expect(report.config.train.model.channels).toEqual([8, 16, 16, 16]);
    expect(fs.readFileSync(path.join(out, 'report.md'), 'utf8')).toMatch(/\| em \| 5 \|/);
    const ckpt = await loadCheckpoint(path.join(out, 'checkpoint'))();
    expect(E.isRight(ckpt) && ckpt.right.state.step).toBe(3);
    if (E.isRight(ckpt)) tf.dispose([...Object.values(ckpt.right.state.params), ...Object.values(ckpt.right.state.ema), ...Object.values(ckpt.right.state.adam.m), ...Object.values(ckpt.right.state.adam.v)]);
  });

  test('the recipe’s guide is the state after round(at · total) steps, saved as guide/ beside checkpoint/; autoguided samplers draw with it at two network evaluations per score evaluation, guided by the model itself equal their sampler on the model’s own score bit for bit, and without a guide fail naming it', async () => {
    const out = path.join(tmp, 'guided');
    const r = await runMnist(tinyArgs([], 'dpm-sde-ag,dpm-sde', 2), { backend, data, log: quietLog }, out);
    expect(E.isRight(r)).toBe(true);
    const guide = await loadCheckpoint(path.join(out, 'guide'))();
    // the quick preset's guide.at = 1/7 of 2 epochs × 3 steps: round(0.86) = 1
    expect(E.isRight(guide) && guide.right.state.step).toBe(1);
    if (E.isRight(guide)) tf.dispose([...Object.values(guide.right.state.params), ...Object.values(guide.right.state.ema), ...Object.values(guide.right.state.adam.m), ...Object.values(guide.right.state.adam.v)]);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    // DPM-Solver++(2M) + Tweedie: dpm-sde-ag at 3 steps, 4 score evaluations, each of the model and its guide; dpm-sde
    // at 2 · 3 steps, 7 of the model alone
    expect(report.samplers.map((s: { nfe: number }) => s.nfe)).toEqual([8, 7]);
    expect(sha(path.join(out, 'samples-dpm-sde-ag.idx'))).not.toBe(sha(path.join(out, 'samples-dpm-sde.idx')));

    const self = path.join(tmp, 'self');
    fs.cpSync(path.join(out, 'checkpoint'), path.join(self, 'checkpoint'), { recursive: true });
    fs.cpSync(path.join(out, 'checkpoint'), path.join(self, 'guide'), { recursive: true });
    // With workers asked for, both draw in the workers (the autoguided one loading the guide beside the checkpoint;
    // bit-identical to this process by the workers' promise).
    const lines: string[] = [];
    const same = await runMnist(tinyArgs(['--sample-only', path.join(self, 'checkpoint'), '--workers', '2'], 'dpm-sde-ag,dpm-sde'), { backend, data, log: (l) => void lines.push(l) }, path.join(tmp, 'self-out'));
    expect(E.isRight(same)).toBe(true);
    expect(lines.filter((l) => /sampled in this process/.test(l))).toEqual([]);
    // s + w (s − s) = s exactly: the same samples as dpm-sde-ag's sampler drawing with the model's own score
    const f = tinyArgs([], 'dpm-sde-ag');
    const recipe = await recipeOfFlags(f);
    const model = await loadScoreModel(path.join(self, 'checkpoint'));
    if (E.isLeft(recipe) || E.isLeft(model)) throw new Error('recipe or checkpoint');
    const sampler = namedSampler(model.right.config.sde, 'dpm-sde-ag', samplerSettingsOf(recipe.right));
    if (E.isLeft(sampler)) throw new Error(sampler.left.problems.join('; '));
    const own = await draw(sampleKeys(f.seed, 0, f.numSamples), () => ({ sampler: sampler.right, score: model.right.score }), { batch: f.numSamples, sampleShape: [28, 28, 1], dataRange: dataRangeOf(model.right.config) }, 'own score');
    if (E.isLeft(own)) throw new Error(own.left.message);
    expect(E.isRight(await writeSamples(path.join(tmp, 'own-out'), 'dpm-sde-ag', own.right.samples, f.numSamples))).toBe(true);
    expect(sha(path.join(tmp, 'self-out', 'samples-dpm-sde-ag.idx'))).toBe(sha(path.join(tmp, 'own-out', 'samples-dpm-sde-ag.idx')));
    expect(sha(path.join(tmp, 'self-out', 'samples-dpm-sde-ag.idx'))).not.toBe(sha(path.join(tmp, 'self-out', 'samples-dpm-sde.idx')));
    // and before the 8-bit files, in float32: every value the same
    const src = { sde: model.right.config.sde, score: model.right.score, dataRange: dataRangeOf(model.right.config), checkpoint: undefined, workers: 1, backend, quiet: true, log: quietLog };
    const guided = await drawNamed('dpm-sde-ag', samplerSettingsOf(recipe.right), sampleKeys(f.seed, 0, f.numSamples), f.numSamples, { ...src, guide: E.right(model.right.score) });
    if (E.isLeft(guided)) throw new Error(guided.left.message);
    expect(Array.from(guided.right.samples)).toEqual(Array.from(own.right.samples));
    disposeTrainState(model.right.state);

    const lone = path.join(tmp, 'lone');
    fs.cpSync(path.join(out, 'checkpoint'), path.join(lone, 'checkpoint'), { recursive: true });
    const missing = await runMnist(tinyArgs(['--sample-only', path.join(lone, 'checkpoint')], 'dpm-sde-ag'), { backend, data, log: quietLog }, path.join(tmp, 'lone-out'));
    expect(E.isLeft(missing) && missing.left.message).toMatch(/^--samplers dpm-sde-ag: dpm-sde-ag is autoguided and needs a guide: the guide .*lone\/guide/);
  });

  test('a class-conditional run (--label-dropout) keeps 10 classes, its label dropout and the training labels’ frequencies in its config; dpm-cfg draws with s(x | ∅) + w (s(x | y_b) − s(x | ∅)), y_b from sample b’s own key, at two network evaluations per score evaluation, dpm-ag-cond classifier-free guides s(x | y_b) autoguided by the guide’s s(x | y_b) at three (dpm-sde-ag-cond the same with reverse-SDE steps near the data), dpm-sde-cond at one; on an unconditional checkpoint they fail naming it', async () => {
    const out = path.join(tmp, 'conditional');
    const r = await runMnist(tinyArgs(['--label-dropout', '0.5'], 'dpm-cfg,dpm-ag-cond,dpm-sde-cond,dpm-sde'), { backend, data, log: quietLog }, out);
    if (E.isLeft(r)) throw new Error(r.left.message);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    const config0 = report.config.train as { readonly sde: SDE; readonly loss: LossConfig };
    expect(report.config.train.model.classes).toBe(10);
    expect(report.config.train.conditioning).toEqual({ dropout: 0.5, prior: classFrequencies(data.labels, 10) });
    // dpm-cfg: 3 DPM-Solver++(2M) steps + Tweedie, 4 score evaluations of two networks each; dpm-ag-cond: three inside its
    // guidance interval, one outside, so as many steps as fit in those 8 NFE (its grid's points counted); dpm-sde(-cond)
    // 2 · 3 steps + 1 of one
    // every sampler stops where the preset's log-normal training levels have 2% of their mass: ε = σ⁻¹(σ_end)
    const eps = timeOfNoiseLevel(config0.sde, endNoiseOf(config0.sde, config0.loss)!);
    expect(report.samplers.map((s: { spec: { eps: number } }) => s.spec.eps)).toEqual([eps, eps, eps, eps]);
    const agSteps = guidedSteps(config0.sde, 'dpm-ag-cond', 'log-snr', 3, eps);
    expect(multistepNetworkEvaluations(config0.sde, 'dpm-ag-cond', 'log-snr', agSteps, eps)).toBeLessThanOrEqual(8);
    expect(multistepNetworkEvaluations(config0.sde, 'dpm-ag-cond', 'log-snr', agSteps + 1, eps)).toBeGreaterThan(8);
    expect(report.samplers.map((s: { nfe: number }) => s.nfe)).toEqual([8, multistepNetworkEvaluations(config0.sde, 'dpm-ag-cond', 'log-snr', agSteps, eps), 7, 7]);
    expect(report.samplers[1].spec.steps).toBe(agSteps);
    // the labels matter: given its label, dpm-sde draws other digits than without
    expect(sha(path.join(out, 'samples-dpm-sde-cond.idx'))).not.toBe(sha(path.join(out, 'samples-dpm-sde.idx')));
    // in 2 worker threads (each its own backend, keys, checkpoint and guide) the labelled and the guided samplers draw the
    // same digits, bit for bit, at the same network evaluations
    const lines: string[] = [];
    const workersOut = path.join(tmp, 'conditional-workers');
    const inWorkers = await runMnist(tinyArgs(['--sample-only', path.join(out, 'checkpoint'), '--workers', '2'], 'dpm-cfg,dpm-ag-cond,dpm-sde-cond'), { backend, data, log: (l) => void lines.push(l) }, workersOut);
    if (E.isLeft(inWorkers)) throw new Error(inWorkers.left.message);
    expect(lines.filter((l) => /sampled in this process/.test(l))).toEqual([]);
    for (const name of ['dpm-cfg', 'dpm-ag-cond', 'dpm-sde-cond']) expect([name, sha(path.join(workersOut, `samples-${name}.idx`))]).toEqual([name, sha(path.join(out, `samples-${name}.idx`))]);
    const workersReport = JSON.parse(fs.readFileSync(path.join(workersOut, 'report.json'), 'utf8'));
    expect(workersReport.samplers.map((s: { nfe: number }) => s.nfe)).toEqual(report.samplers.slice(0, 3).map((s: { nfe: number }) => s.nfe));
    const f = tinyArgs([], 'dpm-cfg');
    const recipe = await recipeOfFlags(f);
    const model = await loadScoreModel(path.join(out, 'checkpoint'));
    if (E.isLeft(recipe) || E.isLeft(model)) throw new Error('recipe or checkpoint');
    const { config, state } = model.right;
    const keys = sampleKeys(f.seed, 0, f.numSamples);
    // the guided score written out: the unconditional score (no label) and the conditional one of each key's label
    const written = (ks: ReadonlyArray<Key>, w = CFG_WEIGHTS['dpm-cfg']!): ScoreFn => {
      const conditional = scoreOfRun(config, emaParams(state), sampleLabels(config, ks));
      return (x, t) =>
        tf.tidy(() => {
          const u = model.right.score(x, t);
          return tf.add(u, tf.mul(tf.sub(conditional(x, t), u), w));
        });
    };
    const sampler = namedSampler(config.sde, 'dpm-cfg', samplerSettingsOf(recipe.right));
    if (E.isLeft(sampler)) throw new Error(sampler.left.problems.join('; '));
    const own = await draw(keys, (start, size) => ({ sampler: sampler.right, score: written(keys.slice(start, start + size)) }), { batch: 3, sampleShape: [28, 28, 1], dataRange: dataRangeOf(config) }, 'written out');
    if (E.isLeft(own)) throw new Error(own.left.message);
    const src = { sde: config.sde, score: model.right.score, conditional: conditionalScoreOfState(config, state), dataRange: dataRangeOf(config), checkpoint: undefined, workers: 1, backend, quiet: true, log: quietLog };
    const guided = await drawNamed('dpm-cfg', samplerSettingsOf(recipe.right), keys, 3, src);
    if (E.isLeft(guided)) throw new Error(guided.left.message);
    expect(Array.from(guided.right.samples)).toEqual(Array.from(own.right.samples));
    // a guidance weight given in place of the sampler's own (--cfg-weight): the same written-out score at that w
    const ownW3 = await draw(keys, (start, size) => ({ sampler: sampler.right, score: written(keys.slice(start, start + size), 3) }), { batch: 3, sampleShape: [28, 28, 1], dataRange: dataRangeOf(config) }, 'written out, w = 3');
    if (E.isLeft(ownW3)) throw new Error(ownW3.left.message);
    const guidedW3 = await drawNamed('dpm-cfg', { ...samplerSettingsOf(recipe.right), guidance: { cfg: 3 } }, keys, 3, src);
    if (E.isLeft(guidedW3)) throw new Error(guidedW3.left.message);
    expect(Array.from(guidedW3.right.samples)).toEqual(Array.from(ownW3.right.samples));
    expect(Array.from(guidedW3.right.samples)).not.toEqual(Array.from(own.right.samples));
    // the labels matter: the same draw with every label moved by one is another draw
    const shifted = await draw(keys, (start, size) => ({ sampler: sampler.right, score: scoreOfRun(config, emaParams(state), Int32Array.from(sampleLabels(config, keys.slice(start, start + size))!, (y) => (y + 1) % 10)) }), { batch: 3, sampleShape: [28, 28, 1], dataRange: dataRangeOf(config) }, 'shifted');
    if (E.isLeft(shifted)) throw new Error(shifted.left.message);
    expect(Array.from(shifted.right.samples)).not.toEqual(Array.from(own.right.samples));
    // dpm-ag-cond, written out: classifier-free guidance (w) of the model's s(x | y_b) autoguided (w_g) by the guide's s(x | y_b),
    // at the noise levels σ(t) = s(t)/m(t) of its guidance interval (σ_lo, σ_hi]; s(x | y_b) alone elsewhere
    const guideModel = await loadScoreModel(path.join(out, 'guide'));
    if (E.isLeft(guideModel)) throw new Error('guide');
    const [wg, wc] = [AUTOGUIDANCE_WEIGHTS['dpm-ag-cond']!, CFG_WEIGHTS['dpm-ag-cond']!];
    const [lo, hi] = GUIDANCE_INTERVALS['dpm-ag-cond']!;
    const writtenAg = (ks: ReadonlyArray<Key>): ScoreFn => {
      const labels = sampleLabels(config, ks);
      const [strong, weak] = [scoreOfRun(config, emaParams(state), labels), scoreOfRun(guideModel.right.config, emaParams(guideModel.right.state), labels)];
      return (x, t) =>
        tf.tidy(() => {
          const sigma = marginalStd(config.sde, t) / marginalMeanCoef(config.sde, t);
          if (!(sigma > lo && sigma <= hi)) return strong(x, t);
          const g = weak(x, t);
          const autoguided = tf.add(g, tf.mul(tf.sub(strong(x, t), g), wg));
          const u = model.right.score(x, t);
          return tf.add(u, tf.mul(tf.sub(autoguided, u), wc));
        });
    };
    // each drawn by name and by its written-out sampler on that score: dpm-ag-cond's spec, and dpm-sde-ag-cond's, the
    // same steps with reverse-SDE steps of strength η on [sMin, sMax]
    const agSpec = namedSamplerSpec(config.sde, 'dpm-ag-cond', samplerSettingsOf(recipe.right));
    const drawnBoth: Record<string, Float32Array> = {};
    for (const [name, spec] of [['dpm-ag-cond', agSpec], ['dpm-sde-ag-cond', { ...agSpec, ...DPM_SDE_AG_COND_NOISE }]] as const) {
      const writtenSampler = samplerFromSpec(config.sde, spec);
      if (E.isLeft(writtenSampler)) throw new Error(writtenSampler.left.problems.join('; '));
      const own = await draw(keys, (start, size) => ({ sampler: writtenSampler.right, score: writtenAg(keys.slice(start, start + size)) }), { batch: 3, sampleShape: [28, 28, 1], dataRange: dataRangeOf(config) }, 'written out');
      const named = await drawNamed(name, samplerSettingsOf(recipe.right), keys, 3, { ...src, guideConditional: conditionalScoreOfState(guideModel.right.config, guideModel.right.state) });
      if (E.isLeft(own) || E.isLeft(named)) throw new Error(`${name}: ${E.isLeft(own) ? own.left.message : ''} ${E.isLeft(named) ? named.left.message : ''}`);
      expect([name, Array.from(named.right.samples)]).toEqual([name, Array.from(own.right.samples)]);
      drawnBoth[name] = named.right.samples;
    }
    // the noise of dpm-sde-ag-cond is really there
    expect(Array.from(drawnBoth['dpm-sde-ag-cond']!)).not.toEqual(Array.from(drawnBoth['dpm-ag-cond']!));
    disposeTrainState(guideModel.right.state);
    disposeTrainState(state);

    // a run without labels: its checkpoint has no class-conditional score
    const plainRun = await runMnist(tinyArgs(['--label-dropout', '1', '--guide-at', '0'], 'dpm-sde'), { backend, data, log: quietLog }, path.join(tmp, 'plain'));
    if (E.isLeft(plainRun)) throw new Error(plainRun.left.message);
    const missing = await runMnist(tinyArgs(['--sample-only', path.join(tmp, 'plain', 'checkpoint')], 'dpm-cfg'), { backend, data, log: quietLog }, path.join(tmp, 'plain-out'));
    expect(E.isLeft(missing) && missing.left.message).toMatch(/^--samplers dpm-cfg: dpm-cfg draws each digit given its label and needs a class-conditional model: the model is not class-conditional/);
  });

  test('no growth over epochs: the live tensor count is the same at the end of every epoch, and memory is reported per epoch and sampler', async () => {
    const out = path.join(tmp, 'epochs');
    const r = await runMnist(tinyArgs([], 'em', 3), { backend, data, log: quietLog }, out);
    expect(E.isRight(r)).toBe(true);
    if (E.isLeft(r)) return;
    const epochs = r.right.epochMemory;
    expect(epochs.map((m) => [m.epoch, m.step])).toEqual([[1, 3], [2, 6], [3, 9]]);
    expect(new Set(epochs.map((m) => m.tensors)).size).toBe(1);
    for (const m of epochs) expect(m.peakRssMb).toBeGreaterThanOrEqual(m.rssMb);
    expect(r.right.peakRssMb).toBeGreaterThanOrEqual(Math.max(...epochs.map((m) => m.peakRssMb)));
    expect(r.right.samplers[0]!.memory.tensors).toBeGreaterThan(0);
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/## Memory/);
    expect(md).toMatch(/\| 3 \| 9 \|/);
  });

  test('--eval gives the evaluation of <out>/checkpoint into <out>/eval its parts, --eval-samples, the recipe’s steps, snr, guidance weights and likelihood start, --seed; the rest at its defaults', async () => {
    const f = tinyArgs(['--eval', 'samplers,bpd', '--eval-samples', '32', '--seed', '5', '--snr', '0.2']);
    const recipe = await recipeOfFlags(f);
    if (E.isLeft(recipe)) throw new Error(recipe.left.message);
    const o = evaluationOptionsOfRun(f, recipe.right, '/runs/a');
    expect([o.checkpoint, o.samplers.samples, o.samplers.steps, o.samplers.snr, o.seed, o.quiet]).toEqual(['/runs/a/checkpoint', 32, 4, 0.2, 5, true]);
    expect([o.conditional.sampler.steps, o.conditional.sampler.snr, o.inpainting.sampler.steps]).toEqual([4, 0.2, 4]);
    // and its samplers' end noise level (the preset's: the 2% quantile of its training levels)
    const end = samplerSettingsOf(recipe.right).endNoise;
    expect(end).toBeGreaterThan(0.04);
    expect([o.samplers.endNoise, o.conditional.sampler.endNoise, o.inpainting.sampler.endNoise]).toEqual([end, end, end]);
    expect(o.parts).toEqual(['samplers', 'bpd']);
    // bits/dim at the evaluation's defaults, from where the recipe's noise level is the centred cell's standard deviation
    expect(o.bpd).toEqual({ ...DEFAULT_EVALUATION.bpd, eps: cellMatchedStartTime(recipe.right.sde, 'centred', recipe.right.dataRange) });
    expect(Math.abs(noiseLevel(recipe.right.sde, o.bpd.eps) * 255 * Math.sqrt(12) - 1)).toBeLessThan(1e-9);
    expect(evaluationOptionsOfRun(tinyArgs(['--eval', 'interpolation,samplers,bpd,conditional,inpainting']), recipe.right, '/r').parts).toEqual([...EVAL_PARTS]);
    // the default (class-conditional) recipe's evaluation compares the labelled samplers too; an unconditional one's does not
    expect(o.samplers.samplers).toEqual([...DEFAULT_EVALUATION.samplers.samplers, 'dpm-sde-cond', 'dpm-cfg', 'dpm-ag-cond', 'dpm-sde-ag-cond']);
    const plain = await recipeOfFlags(tinyArgs(['--eval', 'samplers', '--label-dropout', '1']));
    if (E.isLeft(plain)) throw new Error(plain.left.message);
    expect(plain.right.conditional).toBeUndefined();
    // both presets train with labels; the earlier default (tutorial) without
    expect([PRESETS.quick.conditional, PRESETS.quality.conditional, PRESETS.tutorial.conditional]).toEqual([{ classes: 10, dropout: 0.1 }, { classes: 10, dropout: 0.1 }, undefined]);
    expect(evaluationOptionsOfRun(tinyArgs(['--eval', 'samplers']), plain.right, '/r').samplers.samplers).toEqual(DEFAULT_EVALUATION.samplers.samplers);
    // the recipe's guidance weights reach the comparison (the quality preset's w = 1.2); none: no field
    expect('guidance' in o.samplers).toBe(false);
    const quality = await recipeOfFlags(tinyArgs(['--preset', 'quality', '--eval', 'samplers']));
    if (E.isLeft(quality)) throw new Error(quality.left.message);
    expect(evaluationOptionsOfRun(tinyArgs(['--eval', 'samplers']), quality.right, '/r').samplers.guidance).toEqual({ cfg: 1.2 });
    const bad = cli.parseFlags(mnistFlags, ['--eval', 'fid']);
    expect(E.isLeft(bad) && cli.renderCliError(bad.left)).toMatch(/--eval: expected .*EvalPart.*"fid"/);
  });

  test('--dequantize centred reaches the recipe (named as an override) and the training config; the presets leave the config without it', async () => {
    const on = await recipeOfFlags(tinyArgs(['--dequantize', 'centred']));
    if (E.isLeft(on)) throw new Error(on.left.message);
    expect(on.right.name).toMatch(/\+ .*dequantize/);
    expect(trainConfigOfRecipe(on.right, 10).dequantization).toBe('centred');
    for (const preset of Object.values(PRESETS)) expect('dequantization' in trainConfigOfRecipe(preset, 10)).toBe(false);
    const bad = cli.parseFlags(mnistFlags, ['--dequantize', 'yes']);
    expect(E.isLeft(bad) && cli.renderCliError(bad.left)).toMatch(/--dequantize: expected none\|centred, got "yes"/);
  });

  test('the quality preset’s denoiser clamp, the dequantised data’s box [−1/510, 1 + 1/510], reaches its training config (and so every sampler and likelihood of its checkpoints); quick and tutorial leave the config without one', () => {
    expect(trainConfigOfRecipe(PRESETS.quality, 10).denoiserRange).toEqual([-1 / 510, 1 + 1 / 510]);
    expect(['quick', 'tutorial'].map((p) => 'denoiserRange' in trainConfigOfRecipe(PRESETS[p as 'quick' | 'tutorial'], 10))).toEqual([false, false]);
  });

  test('--cfg-weight and --autoguidance-weight reach the recipe’s sampling settings (named as overrides); of the presets only quality has its own (w = 1.2); a weight must be positive', async () => {
    const r = await recipeOfFlags(tinyArgs(['--cfg-weight', '1.2', '--autoguidance-weight', '2']));
    if (E.isLeft(r)) throw new Error(r.left.message);
    expect(r.right.name).toMatch(/\+ .*cfg-weight, autoguidance-weight/);
    expect(r.right.sampling.guidance).toEqual({ cfg: 1.2, autoguidance: 2 });
    const one = await recipeOfFlags(tinyArgs(['--cfg-weight', '1.2']));
    expect(E.isRight(one) && one.right.sampling.guidance).toEqual({ cfg: 1.2 });
    expect([PRESETS.quick.sampling.guidance, PRESETS.quality.sampling.guidance, PRESETS.tutorial.sampling.guidance]).toEqual([undefined, { cfg: 1.2 }, undefined]);
    // a flag replaces the preset's own weight and keeps the others
    const quality = await recipeOfFlags(tinyArgs(['--preset', 'quality', '--autoguidance-weight', '1.5']));
    expect(E.isRight(quality) && quality.right.sampling.guidance).toEqual({ cfg: 1.2, autoguidance: 1.5 });
    const bad = cli.parseFlags(mnistFlags, ['--cfg-weight', '0']);
    expect(E.isLeft(bad) && cli.renderCliError(bad.left)).toMatch(/--cfg-weight: expected PositiveFinite/);
  });

  test('--guide-at sets the recipe’s guide (0: none, and no guide/ is written); the presets save one at 1/7 (quick: one of its 7 epochs) and 1/6 (quality) of the run', async () => {
    const at = async (extra: ReadonlyArray<string>) => {
      const r = await recipeOfFlags(tinyArgs(extra));
      if (E.isLeft(r)) throw new Error(r.left.message);
      return r.right.guide;
    };
    expect(await at([])).toEqual({ at: 1 / 7 });
    expect(await at(['--guide-at', '0.5'])).toEqual({ at: 0.5 });
    expect(await at(['--guide-at', '0'])).toBeUndefined();
    expect([PRESETS.quick.guide, PRESETS.quality.guide]).toEqual([{ at: 1 / 7 }, { at: 1 / 6 }]);
    const out = path.join(tmp, 'unguided');
    expect(E.isRight(await runMnist(tinyArgs(['--guide-at', '0'], 'em'), { backend, data, log: quietLog }, out))).toBe(true);
    expect(fs.existsSync(path.join(out, 'guide'))).toBe(false);
  });

  test('a guide exponent γ₀ (guide.gamma) runs the power EMA at γ₀ until the guide step S: the run’s EMA is { ...ema, early: { steps: S, gamma: γ₀ } }; --guide-at keeps γ₀, --ema-decay drops it, a decay EMA with one is refused naming guide.gamma', async () => {
    const withGamma = { ...PRESETS.quick, ema: { kind: 'power' as const, gamma: 6.94 }, guide: { at: 0.25, gamma: 20 } };
    expect(trainConfigOfRecipe(withGamma, 100).emaDecay).toEqual({ kind: 'power', gamma: 6.94, early: { steps: 25, gamma: 20 } });
    expect(trainConfigOfRecipe({ ...withGamma, guide: { at: 0.25 } }, 100).emaDecay).toEqual({ kind: 'power', gamma: 6.94 });
    const file = path.join(tmp, 'guide-gamma.json');
    fs.writeFileSync(file, JSON.stringify(withGamma));
    const of = async (extra: ReadonlyArray<string>) => {
      const r = await recipeOfFlags(tinyArgs(['--recipe', file, ...extra]));
      if (E.isLeft(r)) throw new Error(r.left.message);
      return [r.right.guide, r.right.ema];
    };
    expect(await of([])).toEqual([{ at: 0.25, gamma: 20 }, { kind: 'power', gamma: 6.94 }]);
    expect(await of(['--guide-at', '0.5'])).toEqual([{ at: 0.5, gamma: 20 }, { kind: 'power', gamma: 6.94 }]);
    expect(await of(['--ema-decay', '0.999'])).toEqual([{ at: 0.25 }, 0.999]);
    expect(await of(['--guide-at', '0'])).toEqual([undefined, { kind: 'power', gamma: 6.94 }]);
    fs.writeFileSync(file, JSON.stringify({ ...withGamma, ema: 0.999 }));
    const refused = await recipeOfFlags(tinyArgs(['--recipe', file]));
    expect(E.isLeft(refused) && refused.left.message).toMatch(/--recipe: recipe .*guide-gamma\.json: guide\.gamma \(20\) needs a power EMA .* but ema is the decay 0\.999/);
  });

  test('a stop request (Ctrl-C) ends training after the current step, saves a checkpoint and still samples', async () => {
    const out = path.join(tmp, 'interrupted');
    const r = await runMnist(tinyArgs([], 'em'), { backend, data, log: quietLog, stop: { requested: true } }, out);
    expect(E.isRight(r) && [r.right.interrupted, r.right.trainSteps]).toEqual([true, 1]);
    const ckpt = await loadCheckpoint(path.join(out, 'checkpoint'))();
    expect(E.isRight(ckpt) && ckpt.right.state.step).toBe(1);
    expect(fs.existsSync(path.join(out, 'samples-em.png'))).toBe(true);
  });

  test('a non-finite loss stops training with a message and leaves the last good checkpoint byte-identical', async () => {
    const out = path.join(tmp, 'nan');
    const ckpt = path.join(out, 'checkpoint');
    const first = await runMnist(tinyArgs([], 'em'), { backend, data, log: quietLog }, out);
    expect(E.isRight(first)).toBe(true);
    const listing = fs.readdirSync(ckpt).sort();
    const stored = async (): Promise<ReadonlyArray<readonly [string, string]>> => {
      const at = await tensorFiles.storedDirectory(ckpt);
      if (E.isLeft(at)) throw new Error(at.left.message);
      return fs.readdirSync(at.right).sort().map((f) => [f, sha(path.join(at.right, f))] as const);
    };
    const before = await stored();
    // The same run resumed for a second epoch on data with a NaN pixel in every image: the first step's loss is NaN.
    // Its last good state is the checkpoint it resumed from, at this very path: that checkpoint is kept as it was.
    const poisoned: MnistData = { ...data, images: Float32Array.from(pixelsToUnit(data.images as Uint8Array), (v, i) => (i % 784 === 400 ? NaN : v)) };
    const second = await runMnist(tinyArgs(['--resume', ckpt], 'em', 2), { backend, data: poisoned, log: quietLog }, out);
    expect(E.isLeft(second) && second.left.message).toMatch(/loss is NaN at step 4: training stopped.*last good state \(step 3\) is saved at/);
    expect(fs.readdirSync(ckpt).sort()).toEqual(listing);
    expect(await stored()).toEqual(before);
  });

  test('bad flags name the flag and what was expected; unknown flags are rejected', () => {
    const r = cli.parseFlags(mnistFlags, ['--epochs', 'ten', '--samplers', 'em,xyz', '--sde', 'vq', '--epoch', '3']);
    expect(E.isLeft(r)).toBe(true);
    const text = E.isLeft(r) ? cli.renderCliError(r.left) : '';
    expect(text).toMatch(/--epochs: expected PositiveInt, got "ten"/);
    expect(text).toMatch(/--samplers/);
    expect(text).toMatch(/--sde/);
    expect(text).toMatch(/unknown flag --epoch/);
  });

  test('--sample-only with a missing checkpoint is a clear error and writes nothing into the checkpoint path', async () => {
    const missing = path.join(tmp, 'no-such-checkpoint');
    const r = await runMnist(tinyArgs(['--sample-only', missing]), { backend, data, log: quietLog }, path.join(tmp, 'so'));
    expect(E.isLeft(r) && r.left.message).toMatch(/^--sample-only: .*no-such-checkpoint/);
    expect(fs.existsSync(missing)).toBe(false);
  });
});
