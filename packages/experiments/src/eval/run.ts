/**
 * The MNIST evaluation as a function: load a score-model checkpoint, obtain the classifiers, run each part that
 * is not skipped, and write every artefact. The command-line entry (`src/mnist-eval.ts`) only parses flags and
 * calls {@link runMnistEval}; the tests call it in-process with a tiny model and tiny sizes.
 *
 * Artefacts in the output folder (see `--help`):
 *   classifier/, noisy-classifier/   the classifiers (unless --classifier / --noisy-classifier point elsewhere)
 *   fid-vs-nfe.png, samplers.png     the sampler comparison
 *   conditional-<sampler>.png        class-conditional samples, one row per class
 *   inpainting.png                   original / masked / completions
 *   interpolation.png                latent interpolation strip
 *   eval.json, eval.md               every figure, the extractor's name and the sample counts
 *
 * eval.json and eval.md are rewritten after every part (with `complete: false` until the end), so a long run
 * that is stopped keeps what it measured.
 *
 * @module eval/run
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { random, describeBackend, type Key } from '@score-sde/tensor-fp';
import {
  type MnistData,
  type TrainState,
  loadCheckpoint,
  renderCheckpointError,
  renderIdxError,
  loadMnist,
  emaParams,
  scoreOfRun,
  disposeTrainState,
  imageBatch,
} from '@score-sde/models';
import { report } from '../lib';
import { type EvalContext, type EvalError, STREAMS, fail, itemKeys, logOf, partKey, range } from './common';
import { type EvalPart, type MnistEvalFlags, EVAL_PARTS } from './flags';
import { type ClassifierHandle, disposeClassifier, obtainClassifier } from './classifiers';
import { classRecord, featureStats, fidOfImages } from './fid';
import { runComparison } from './compare';
import { testBitsPerDim } from './bpd';
import { runConditional } from './conditional';
import { runInpainting } from './inpainting';
import { runInterpolation } from './interpolation';
import { type ClassifierRecord, type EvalReport, evalMarkdown } from './report';

// -------------------------------------------------------------------------------------
// checks
// -------------------------------------------------------------------------------------

/**
 * Problems of flag combinations that each flag's codec cannot see, each naming its flag (all at once).
 * @category checks
 */
export const flagProblems = (f: MnistEvalFlags): ReadonlyArray<string> => {
  const runs = (p: EvalPart): boolean => !f.skip.includes(p);
  const problems: string[] = [];
  if (f.classifierChannels.length !== 3) problems.push(`--classifier-channels: expected 3 channel counts (one per conv block), got ${f.classifierChannels.length}`);
  if (runs('samplers')) {
    if (f.samples < 2) problems.push(`--samples: FID needs at least 2 samples, got ${f.samples}`);
    if (f.compare.length === 0) problems.push('--compare: give at least one sampler (or --skip samplers)');
    if (f.compare.includes('ode') && f.odeTols.length === 0) problems.push('--ode-tols: give at least one tolerance for the ode sampler');
    if ((f.compare.includes('edm') || f.compare.includes('dpm')) && f.fastSteps.length === 0) problems.push('--fast-steps: give at least one step count for edm/dpm');
  }
  if (runs('conditional') && f.conditionalSamplers.length === 0) problems.push('--conditional-samplers: give at least one sampler (or --skip conditional)');
  if (runs('interpolation') && f.frames < 2) problems.push(`--frames: need at least 2 frames (the two ends), got ${f.frames}`);
  return problems;
};

// -------------------------------------------------------------------------------------
// data
// -------------------------------------------------------------------------------------

/** The first n examples of a split (views, no copy). @category data */
export const firstN = (d: MnistData, n: number): MnistData => {
  const m = Math.min(n, d.count);
  return { ...d, count: m, images: d.images.subarray(0, m * d.rows * d.cols), labels: d.labels.subarray(0, m) };
};

const loadSplits = async (f: MnistEvalFlags, ctx: EvalContext): Promise<E.Either<EvalError, { readonly train: MnistData; readonly test: MnistData }>> => {
  if (ctx.mnist !== undefined) return E.right({ train: firstN(ctx.mnist.train, f.trainSubset), test: firstN(ctx.mnist.test, f.testSubset) });
  const train = await loadMnist({ split: 'train', subset: f.trainSubset })();
  if (E.isLeft(train)) return fail(`MNIST: ${renderIdxError(train.left)}`);
  const test = await loadMnist({ split: 'test', subset: f.testSubset })();
  if (E.isLeft(test)) return fail(`MNIST: ${renderIdxError(test.left)}`);
  return E.right({ train: train.right, test: test.right });
};

const classifierRecord = (h: ClassifierHandle): ClassifierRecord => ({
  name: h.name,
  dir: h.dir,
  reused: h.reused,
  sha256: h.manifest.params.sha256,
  config: h.manifest.config,
  training: h.manifest.training,
});

// -------------------------------------------------------------------------------------
// the run
// -------------------------------------------------------------------------------------

/**
 * Evaluates the checkpoint `--checkpoint` and writes every artefact into `out` (see the module comment). A Left
 * carries a message naming the flag or part that failed; eval.json then holds the parts finished before.
 * @category running
 */
export const runMnistEval = async (f: MnistEvalFlags, ctx: EvalContext, out: string): Promise<E.Either<EvalError, EvalReport>> => {
  const log = logOf(ctx);
  const started = Date.now();
  const problems = flagProblems(f);
  if (problems.length > 0) return fail(problems.join('\n'));
  const runs = (p: EvalPart): boolean => !f.skip.includes(p);

  const loaded = await loadCheckpoint(f.checkpoint)();
  if (E.isLeft(loaded)) return fail(`--checkpoint: ${renderCheckpointError(loaded.left)}`);
  const { config } = loaded.right;
  const state: TrainState = loaded.right.state;
  const owned: ClassifierHandle[] = [];
  try {
    const mk = await report.ensureDir(out)();
    if (E.isLeft(mk)) return fail(`--out: ${report.renderIoError(mk.left)}`);
    const data = await loadSplits(f, ctx);
    if (E.isLeft(data)) return data;
    const { train, test } = data.right;
    const sde = config.sde;
    // The EMA weights are evaluated; s_θ(x, t) = net(x, t) / s(t).
    const score = scoreOfRun(config, emaParams(state));
    log(`evaluating ${path.resolve(f.checkpoint)} (step ${state.step}, ${sde.kind} SDE) on ${describeBackend(ctx.backend)}; parts: ${EVAL_PARTS.filter(runs).join(', ') || 'none'}`);

    let rep: EvalReport = {
      command: 'mnist-eval',
      complete: false,
      backend: describeBackend(ctx.backend),
      seed: f.seed,
      out,
      seconds: 0,
      checkpoint: { dir: path.resolve(f.checkpoint), step: state.step, sde, model: config.model },
      extractor: null,
      fid: null,
      samplers: null,
      bpd: null,
      conditional: null,
      inpainting: null,
      interpolation: null,
      skipped: EVAL_PARTS.filter((p) => !runs(p)),
      flags: { ...f },
    };
    const save = async (next: EvalReport): Promise<E.Either<EvalError, EvalReport>> => {
      const r = { ...next, seconds: (Date.now() - started) / 1000 };
      const w = await report.writeReport(out, r, evalMarkdown(r), 'eval')();
      return E.isLeft(w) ? fail(`eval.json: ${report.renderIoError(w.left)}`) : E.right(r);
    };

    // The clean classifier: FID features and judge of conditional samples and inpaintings.
    let judge: ClassifierHandle | undefined;
    if (runs('samplers') || runs('conditional') || runs('inpainting')) {
      const h = await obtainClassifier({
        kind: 'clean',
        dir: f.classifier ?? path.join(out, 'classifier'),
        flag: '--classifier',
        sde,
        train,
        test,
        flags: f,
        key: partKey(f.seed, STREAMS.cleanClassifier),
        log,
      });
      if (E.isLeft(h)) return h;
      judge = h.right;
      owned.push(judge);
      const s = await save({ ...rep, extractor: classifierRecord(judge) });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('samplers') && judge !== undefined) {
      const testImages = imageBatch(test, range(test.count));
      const reference = featureStats(judge.config, judge.params, testImages);
      testImages.dispose();
      if (E.isLeft(reference)) return fail(`FID reference (MNIST test): ${reference.left.message}`);
      // The floor: n training images (a random subset) against the same reference.
      const nFloor = Math.min(f.samples, train.count);
      if (nFloor < 2) return fail(`--train-subset: the FID floor needs at least 2 training images, got ${train.count}`);
      const chosen = random.permutation(partKey(f.seed, STREAMS.floor), train.count).subarray(0, nFloor);
      const realImages = imageBatch(train, chosen);
      const floor = fidOfImages(judge.config, judge.params, realImages, reference.right);
      const floorClasses = classRecord(judge.config, judge.params, realImages);
      realImages.dispose();
      if (E.isLeft(floor)) return fail(`FID floor: ${floor.left.message}`);
      log(`FID reference: ${test.count} test images; real-vs-real floor (${nFloor} training images): ${report.formatNumber(floor.right.fid)}`);
      const fidSetup: NonNullable<EvalReport['fid']> = {
        extractor: judge.name,
        featureDim: judge.config.featureDim,
        n: f.samples,
        reference: { set: 'MNIST test', n: test.count },
        floor: {
          set: 'MNIST train',
          n: nFloor,
          fid: floor.right.fid,
          meanTerm: floor.right.meanTerm,
          covTerm: floor.right.covTerm,
          classes: { histogram: floorClasses.histogram, meanMaxProb: floorClasses.meanMaxProb, entropyBits: floorClasses.entropyBits },
        },
      };
      const cmp = await runComparison({
        sde,
        score,
        extractor: judge,
        reference: reference.right,
        floor: floor.right,
        keys: itemKeys(partKey(f.seed, STREAMS.samples), 0, f.samples),
        flags: f,
        out,
        log,
      });
      if (E.isLeft(cmp)) return cmp;
      const s = await save({ ...rep, fid: fidSetup, samplers: { results: cmp.right.results, plot: cmp.right.plotPng, panels: cmp.right.panelPng } });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('bpd')) {
      const b = await testBitsPerDim(sde, score, test, {
        images: f.bpdImages,
        batch: f.bpdBatch,
        estimator: f.bpdEstimator,
        tol: f.odeTol,
        eps: f.bpdEps,
        key: partKey(f.seed, STREAMS.bpd),
        quiet: f.quiet,
      });
      if (E.isLeft(b)) return b;
      log(`bits/dim: ${report.formatNumber(b.right.mean, 5)} ± ${report.formatNumber(b.right.standardError, 3)} over ${b.right.images} test images (${b.right.seconds.toFixed(0)} s)`);
      const s = await save({ ...rep, bpd: b.right });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('conditional') && judge !== undefined) {
      const g = await obtainClassifier({
        kind: 'noisy',
        dir: f.noisyClassifier ?? path.join(out, 'noisy-classifier'),
        flag: '--noisy-classifier',
        sde,
        train,
        test,
        flags: f,
        key: partKey(f.seed, STREAMS.noisyClassifier),
        log,
      });
      if (E.isLeft(g)) return g;
      owned.push(g.right);
      const c = await runConditional({
        sde,
        score,
        guide: g.right,
        judge,
        keys: itemKeys(partKey(f.seed, STREAMS.conditional), 0, g.right.config.numClasses * f.perClass),
        flags: f,
        out,
        log,
      });
      if (E.isLeft(c)) return c;
      const s = await save({ ...rep, conditional: { guide: classifierRecord(g.right), guidanceScale: f.guidanceScale, perClass: f.perClass, runs: c.right } });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('inpainting') && judge !== undefined) {
      const m = Math.min(f.inpaintDigits, test.count);
      const p = await runInpainting({ sde, score, judge, test, keys: itemKeys(partKey(f.seed, STREAMS.inpainting), 0, m * f.completions), flags: f, out, log });
      if (E.isLeft(p)) return p;
      const s = await save({ ...rep, inpainting: p.right });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('interpolation')) {
      const key: Key = partKey(f.seed, STREAMS.interpolation);
      const i = await runInterpolation(sde, score, test, { frames: f.frames, tol: f.odeTol, key, out, log });
      if (E.isLeft(i)) return i;
      rep = { ...rep, interpolation: i.right };
    }

    return await save({ ...rep, complete: true });
  } catch (e) {
    return fail(`mnist-eval: ${(e as Error).stack ?? String(e)}`);
  } finally {
    owned.forEach(disposeClassifier);
    // emaParams overlays the EMA tensors on the fixed parameters: both belong to the state, disposed with it.
    disposeTrainState(state);
  }
};
