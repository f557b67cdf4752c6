/**
 * `eval.json` as an io-ts codec — the documented shape of the evaluation's results, which the tests decode the
 * written file with — and `eval.md`, the same results for people, one sentence per figure.
 *
 * Parts that were skipped (or not reached, when `complete` is false) are `null`.
 *
 * @module eval/report
 */
import * as t from 'io-ts';
import { codec } from '@score-sde/tensor-fp';
import { SDE, quantile, noiseLevel } from '@score-sde/sde-math';
import { ScoreNetConfig, DataRange, classifier } from '@score-sde/models';
import { report } from '../lib';
import { EvalPart, SamplerName } from '../pipeline';
import { Dequantization } from '@score-sde/solvers';
import { EvaluationOptions, MaskKind, ConditionalSampler, Estimator } from './options';

// -------------------------------------------------------------------------------------
// codec
// -------------------------------------------------------------------------------------

const nullable = <C extends t.Mixed>(c: C) => t.union([c, t.null]);
const list = <C extends t.Mixed>(c: C) => t.readonlyArray(c);

/** The clean classifier's verdict on a set of images. @category codec */
export const ClassesRecord = codec.strict(
  { histogram: list(codec.NonNegativeInt), meanMaxProb: codec.UnitInterval, confidentRate: codec.UnitInterval, entropyBits: codec.NonNegativeFinite },
  'ClassesRecord',
);

/** Stray strokes and background grain of a set of images (lib/strokes). @category codec */
export const StrokesRecord = codec.strict(
  { n: codec.NonNegativeInt, strayRate: codec.UnitInterval, strayInk: codec.UnitInterval, grain: codec.UnitInterval },
  'StrokesRecord',
);

/** A classifier used by the run: its name (architecture + weights fingerprint), where it is, whether it was reused, how it was trained. @category codec */
export const ClassifierRecord = codec.strict(
  { name: t.string, dir: t.string, reused: t.boolean, sha256: t.string, config: classifier.ClassifierConfig, training: classifier.ClassifierTraining },
  'ClassifierRecord',
);
export type ClassifierRecord = t.TypeOf<typeof ClassifierRecord>;

/** FID of the first n images (a nested count of the FID's n). @category codec */
export const FidAtRecord = codec.strict({ n: codec.PositiveInt, fid: codec.NonNegativeFinite }, 'FidAtRecord');

/** The FID set-up: extractor, feature dimension, reference set, n, and the real-vs-real floor at that n. @category codec */
export const FidSetup = codec.strict(
  {
    extractor: t.string,
    featureDim: codec.PositiveInt,
    /** Generated samples per sampler. */
    n: codec.PositiveInt,
    reference: codec.strict({ set: t.literal('MNIST test'), n: codec.PositiveInt }, 'FidReference'),
    floor: codec.strictWithOptional(
      { set: t.literal('MNIST train'), n: codec.PositiveInt, fid: codec.NonNegativeFinite, meanTerm: codec.NonNegativeFinite, covTerm: codec.Finite, classes: ClassesRecord },
      { strokes: StrokesRecord, fidAt: list(FidAtRecord), fidInfinity: codec.Finite },
      'FidFloor',
    ),
  },
  'FidSetup',
);

/** One sampler of the comparison. @category codec */
export const SamplerRecord = codec.strictWithOptional(
  {
    id: t.string,
    family: SamplerName,
    label: t.string,
    spec: t.unknown,
    n: codec.PositiveInt,
    nfe: codec.NonNegativeFinite,
    seconds: codec.NonNegativeFinite,
    fid: nullable(codec.NonNegativeFinite),
    meanTerm: nullable(codec.NonNegativeFinite),
    covTerm: nullable(codec.Finite),
    classes: nullable(ClassesRecord),
    error: nullable(t.string),
  },
  { strokes: nullable(StrokesRecord), fidAt: list(FidAtRecord), fidInfinity: codec.Finite },
  'SamplerRecord',
);

/** The sampler comparison: one record per sampler and the two figures. @category codec */
export const SamplersSection = codec.strict({ results: list(SamplerRecord), plot: t.string, panels: t.string }, 'SamplersSection');

/** Bits/dim of test images. @category codec */
export const BpdSection = codec.strictWithOptional(
  {
    images: codec.PositiveInt,
    batch: codec.PositiveInt,
    estimator: Estimator,
    tol: codec.PositiveFinite,
    eps: codec.PositiveFinite,
    cells: Dequantization,
    mean: codec.Finite,
    standardError: codec.NonNegativeFinite,
    min: codec.Finite,
    max: codec.Finite,
    perImage: list(codec.Finite),
    nfePerSolve: codec.NonNegativeFinite,
    seconds: codec.NonNegativeFinite,
  },
  { given: t.literal('label') },
  'BpdSection',
);

/** One class-conditional run. @category codec */
export const ConditionalRunRecord = codec.strict(
  {
    sampler: ConditionalSampler,
    n: codec.PositiveInt,
    accuracy: codec.UnitInterval,
    perClassAccuracy: list(codec.UnitInterval),
    meanMaxProb: codec.UnitInterval,
    nfe: codec.NonNegativeFinite,
    seconds: codec.NonNegativeFinite,
    png: t.string,
  },
  'ConditionalRun',
);

/** Class-conditional generation: the guide, the scale, the runs. @category codec */
export const ConditionalSection = codec.strict(
  { guide: ClassifierRecord, guidanceScale: codec.NonNegativeFinite, perClass: codec.PositiveInt, runs: list(ConditionalRunRecord) },
  'ConditionalSection',
);

/** Inpainting. @category codec */
export const InpaintingSection = codec.strict(
  {
    mask: MaskKind,
    digits: codec.PositiveInt,
    completions: codec.PositiveInt,
    sampler: t.string,
    agreement: codec.UnitInterval,
    trueLabelAgreement: codec.UnitInterval,
    originalAccuracy: codec.UnitInterval,
    nfe: codec.NonNegativeFinite,
    seconds: codec.NonNegativeFinite,
    png: t.string,
  },
  'InpaintingSection',
);

/** Latent interpolation. @category codec */
export const InterpolationSection = codec.strict(
  {
    indices: t.readonly(t.tuple([codec.NonNegativeInt, codec.NonNegativeInt])),
    labels: t.readonly(t.tuple([codec.NonNegativeInt, codec.NonNegativeInt])),
    frames: codec.PositiveInt,
    tol: codec.PositiveFinite,
    nfeEncode: codec.NonNegativeInt,
    nfeDecode: codec.NonNegativeInt,
    reconstructionMaxAbs: t.readonly(t.tuple([codec.NonNegativeFinite, codec.NonNegativeFinite])),
    seconds: codec.NonNegativeFinite,
    png: t.string,
  },
  'InterpolationSection',
);

/**
 * `eval.json`. Every number is finite (NaN would be written as the string "NaN" and fail to decode); a part
 * is null when skipped (listed in `skipped`) or, in a report with `complete: false`, not reached yet.
 * @category codec
 */
export const EvalReport = codec.strict(
  {
    command: t.literal('mnist-eval'),
    complete: t.boolean,
    backend: t.string,
    seed: codec.SafeInt,
    out: t.string,
    seconds: codec.NonNegativeFinite,
    checkpoint: codec.strictWithOptional({ dir: t.string, step: codec.NonNegativeInt, sde: SDE, model: ScoreNetConfig }, { denoiserRange: DataRange }, 'CheckpointRecord'),
    extractor: nullable(ClassifierRecord),
    fid: nullable(FidSetup),
    samplers: nullable(SamplersSection),
    bpd: nullable(BpdSection),
    conditional: nullable(ConditionalSection),
    inpainting: nullable(InpaintingSection),
    interpolation: nullable(InterpolationSection),
    skipped: list(EvalPart),
    options: EvaluationOptions,
  },
  'EvalReport',
);
export type EvalReport = t.TypeOf<typeof EvalReport>;

// -------------------------------------------------------------------------------------
// markdown
// -------------------------------------------------------------------------------------

/** The clean classifier's target test accuracy (issue 5). @category markdown */
export const EXTRACTOR_TARGET_ACCURACY = 0.99;

const pct = (v: number): string => `${(100 * v).toFixed(1)}%`;
const num = (v: number | null, digits = 4): string => (v === null ? 'n/a' : report.formatNumber(v, digits));

const classifierLine = (c: ClassifierRecord): string =>
  `\`${c.name}\` — ${c.reused ? 'reused from' : 'trained here and saved to'} \`${c.dir}\`; ${c.training.steps} Adam steps (${c.training.epochs} epochs, batch ${c.training.batchSize}, lr ${c.training.lr}) on ${c.training.trainImages} training images; ` +
  `test accuracy ${pct(c.training.testAccuracy)} on ${c.training.testImages} test images`;

const samplersSection = (r: EvalReport): ReadonlyArray<string> => {
  if (r.samplers === null || r.fid === null) return [];
  const fid = r.fid;
  const rows = r.samplers.results.map((s) => ({
    sampler: s.label,
    NFE: s.nfe,
    seconds: s.seconds,
    FID: s.fid ?? 'failed',
    'FID∞': s.fidInfinity ?? null,
    '‖Δμ‖²': s.meanTerm,
    'cov term': s.covTerm,
    'class entropy (bits)': s.classes?.entropyBits ?? null,
    'mean max-prob': s.classes?.meanMaxProb ?? null,
    'confident (p ≥ 0.9)': s.classes?.confidentRate ?? null,
    'stray strokes': s.strokes?.strayRate ?? null,
    grain: s.strokes?.grain ?? null,
  }));
  rows.push({
    sampler: `real vs real (train n = ${fid.floor.n})`,
    NFE: 0,
    seconds: 0,
    FID: fid.floor.fid,
    'FID∞': fid.floor.fidInfinity ?? null,
    '‖Δμ‖²': fid.floor.meanTerm,
    'cov term': fid.floor.covTerm,
    'class entropy (bits)': fid.floor.classes.entropyBits,
    'mean max-prob': fid.floor.classes.meanMaxProb,
    'confident (p ≥ 0.9)': fid.floor.classes.confidentRate,
    'stray strokes': fid.floor.strokes?.strayRate ?? null,
    grain: fid.floor.strokes?.grain ?? null,
  });
  const hist = [
    ...r.samplers.results.filter((s) => s.classes !== null).map((s) => ({ sampler: s.label, ...Object.fromEntries(s.classes!.histogram.map((h, k) => [String(k), h])) })),
    { sampler: 'real (train)', ...Object.fromEntries(fid.floor.classes.histogram.map((h, k) => [String(k), h])) },
  ];
  const failed = r.samplers.results.filter((s) => s.error !== null);
  return [
    '## Sampler comparison',
    '',
    `FID of n = ${fid.n} samples per sampler against the first ${fid.reference.n} MNIST test images, in float64, in the ${fid.featureDim}-dimensional penultimate-feature space of \`${fid.extractor}\`. ` +
      `Every sampler starts from the same prior draws and noise streams. The real-vs-real floor — ${fid.floor.n} training images against the same test images — is ${num(fid.floor.fid)}: ` +
      'the FID of a perfect sampler at this n (FID is biased upwards at small n, so compare FIDs only at equal n). ' +
      'FID∞: the FIDs of the first k samples (and of the first k floor images) at nested counts k ≥ 16·(feature dimension), where FID_k is close to linear in 1/k, fitted by least squares as FID_k = FID∞ + b/k and read at k → ∞ (Chong & Forsyth 2020): an estimate free of the 1/n bias, so the ratio of two FID∞ does not depend on n the way the ratio at one n does (empty when fewer than two such counts exist). Class entropy is that of the clean classifier\'s histogram of the samples (log₂ 10 ≈ 3.32 bits when balanced). ' +
      'Stray strokes: the share of digits whose ink (pixels > 0.5) has more than one 8-connected component (detached specks); grain: the share of background pixels (more than 2 pixels from any pixel ≥ 64/255) at 10–63 of 255. The real digits give their floor.',
    '',
    report.markdownTable(rows),
    '',
    ...(failed.length > 0 ? [`Failed: ${failed.map((s) => `${s.label} (${s.error})`).join('; ')}.`, ''] : []),
    `![FID vs NFE](${r.samplers.plot})`,
    '',
    `\`${r.samplers.plot}\`: FID against score evaluations per sample (log scale), one line per sampler family over its tolerances or step counts; the dashed line is the real-vs-real floor.`,
    '',
    `![samplers](${r.samplers.panels})`,
    '',
    `\`${r.samplers.panels}\`: the first 64 samples of each sampler side by side (the same keys, so the same prior draws), captioned with NFE and FID.`,
    '',
    'Predicted-class histograms (clean classifier):',
    '',
    report.markdownTable(hist, { columns: ['sampler', ...fid.floor.classes.histogram.map((_, k) => String(k))] }),
    '',
  ];
};

/**
 * The spread of per-image bits/dim: median and quartiles, which a few images of very low likelihood cannot move (the
 * mean is what bounds the likelihood of the test set; the median says what a typical image scores).
 * @category report
 */
export const bpdSpread = (perImage: ReadonlyArray<number>): string =>
  perImage.length === 0 ? 'no images' : `median ${report.formatNumber(quantile(perImage, 0.5), 4)}, quartiles ${report.formatNumber(quantile(perImage, 0.25), 4)} … ${report.formatNumber(quantile(perImage, 0.75), 4)}`;

const bpdSection = (r: EvalReport): ReadonlyArray<string> => {
  const b = r.bpd;
  if (b === null) return [];
  return [
    '## Bits/dim',
    '',
    `**${report.formatNumber(b.mean, 5)} ± ${report.formatNumber(b.standardError, 3)} bits/dim** (mean ± standard error over the first ${b.images} MNIST test images; ${bpdSpread(b.perImage)}; range ${report.formatNumber(b.min)} … ${report.formatNumber(b.max)}). ` +
      (b.given === 'label'
        ? "Class-conditional model: each image's likelihood is of p(x | y) given its own label y, plus −log₂ π_y / 784 for the class prior π, an upper bound of the bits/dim of the model's p(x) = Σ_y π_y p(x | y). "
        : '') +
      `Likelihood log p_ε of the uniformly dequantised images (${b.cells === 'centred' ? 'cells centred on the levels: x̃ = x + (u − ½)/255, width w = 1/255' : "score_sde's cells: x̃ = (255x + u)/256, width w = 1/256"}) through the probability-flow ODE from ε = ${b.eps} (noise level σ(ε) = ${report.formatNumber(noiseLevel(r.checkpoint.sde, b.eps), 3)}), RK45 at rtol = atol = ${b.tol}, ` +
      `divergence by a ${b.estimator} Hutchinson probe per image; bpd = −log p / (784 ln 2) − log₂(w (hi − lo)) for the model's data range [lo, hi]. ${report.formatNumber(b.nfePerSolve)} score evaluations (each with a vector–Jacobian product) per solve of ${b.batch} images, ${report.formatNumber(b.seconds)} s in all.`,
    '',
  ];
};

const conditionalSection = (r: EvalReport): ReadonlyArray<string> => {
  const c = r.conditional;
  if (c === null) return [];
  const noisy = c.guide.training.noisyAccuracy ?? [];
  return [
    '## Class-conditional generation',
    '',
    `Classifier guidance s(x, t) + w ∇ₓ log p_t(y | x) with w = ${c.guidanceScale}, p_t(y | x) the noise-conditional classifier ${classifierLine(c.guide)}` +
      (noisy.length > 0 ? `; on perturbed test images its accuracy is ${noisy.map((a) => `${pct(a.accuracy)} at t = ${a.t}`).join(', ')}` : '') +
      `. ${c.perClass} samples per class; the clean classifier's accuracy against the requested class is the figure of merit (target ≥ 90%).`,
    '',
    report.markdownTable(c.runs.map((x) => ({ sampler: x.sampler, samples: x.n, accuracy: pct(x.accuracy), 'mean max-prob': x.meanMaxProb, NFE: x.nfe, seconds: x.seconds, grid: `![${x.sampler}](${x.png})` }))),
    '',
    'Accuracy per requested class:',
    '',
    report.markdownTable(
      c.runs.map((x) => ({ sampler: x.sampler, ...Object.fromEntries(x.perClassAccuracy.map((a, k) => [String(k), pct(a)])) })),
      { columns: ['sampler', ...(c.runs[0]?.perClassAccuracy ?? []).map((_, k) => String(k))] },
    ),
    '',
    ...c.runs.map((x) => `\`${x.png}\`: class-conditional samples of the ${x.sampler} sampler, one row per class 0–9, ${c.perClass} per row.`),
    '',
  ];
};

const inpaintingSection = (r: EvalReport): ReadonlyArray<string> => {
  const p = r.inpainting;
  if (p === null) return [];
  return [
    '## Inpainting',
    '',
    `![inpainting](${p.png})`,
    '',
    `\`${p.png}\`: per row, a test digit, the same with its ${p.mask} half hidden (grey), and ${p.completions} completions drawn by the PC sampler (${p.sampler}) with the inpainting transform. ` +
      `The clean classifier labels **${pct(p.agreement)}** of the ${p.digits * p.completions} completions like the original (${pct(p.trueLabelAgreement)} with the original's true label; it labels ${pct(p.originalAccuracy)} of the ${p.digits} originals correctly). NFE ${num(p.nfe)}, ${num(p.seconds)} s.`,
    '',
  ];
};

const interpolationSection = (r: EvalReport): ReadonlyArray<string> => {
  const i = r.interpolation;
  if (i === null) return [];
  return [
    '## Latent interpolation',
    '',
    `![interpolation](${i.png})`,
    '',
    `\`${i.png}\`: test digits #${i.indices[0]} (a ${i.labels[0]}) and #${i.indices[1]} (a ${i.labels[1]}) at the ends; between them the probability-flow decodings of ${i.frames} spherical interpolants of their ODE latents (α = 0 … 1). ` +
      `RK45 at rtol = atol = ${i.tol}: ${i.nfeEncode} score evaluations to encode, ${i.nfeDecode} to decode. The decoded ends differ from the originals by at most ${num(i.reconstructionMaxAbs[0], 3)} and ${num(i.reconstructionMaxAbs[1], 3)} per pixel ` +
        '(decode ∘ encode is the identity for the exact flow: a large value means the flow squeezes that digit\'s neighbourhood into latents it cannot be recovered from in float32).',
    '',
  ];
};

/** The denoiser clamps the evaluation drew with: the checkpoint's own (its config's `denoiserRange`) and --denoiser-range's. */
const denoiserClampText = (r: EvalReport): string => {
  const own = r.checkpoint.denoiserRange;
  const flag = r.options.denoiserRange;
  const parts = [...(own !== undefined ? [`[${own.join(', ')}] (the checkpoint's)`] : []), ...(flag !== undefined ? [`[${flag.join(', ')}] (--denoiser-range)`] : [])];
  return parts.length === 0 ? 'none' : `${parts.join(' and ')} in every part (sde-math clampedDenoiserScore)`;
};

/** eval.md: a summary table, then one section per part that ran, each figure explained in a sentence. @category markdown */
export const evalMarkdown = (r: EvalReport): string =>
  [
    '# MNIST evaluation',
    '',
    ...(r.complete ? [] : ['**Incomplete**: the run stopped or is still running; parts not reached are missing.', '']),
    report.markdownKeyValue({
      checkpoint: r.checkpoint.dir,
      'checkpoint step': r.checkpoint.step,
      sde: JSON.stringify(r.checkpoint.sde),
      model: JSON.stringify(r.checkpoint.model),
      'denoiser clamp': denoiserClampText(r),
      'FID feature extractor': r.extractor?.name ?? 'n/a',
      'samples per sampler (FID n)': r.fid?.n ?? 'n/a',
      'FID reference': r.fid !== null ? `MNIST test, n = ${r.fid.reference.n}` : 'n/a',
      backend: r.backend,
      seed: r.seed,
      seconds: r.seconds,
      skipped: r.skipped.length > 0 ? r.skipped.join(', ') : 'nothing',
    }),
    '',
    ...(r.extractor !== null
      ? [
          `Feature extractor and judge: the clean classifier ${classifierLine(r.extractor)}; its ${r.extractor.config.featureDim} penultimate features are the FID feature space.` +
            (r.extractor.training.testAccuracy < EXTRACTOR_TARGET_ACCURACY
              ? ` **Its test accuracy is below the ${pct(EXTRACTOR_TARGET_ACCURACY)} target**: its features separate digits less well, and its labels of samples are less trustworthy.`
              : ''),
          '',
        ]
      : []),
    ...samplersSection(r),
    ...bpdSection(r),
    ...conditionalSection(r),
    ...inpaintingSection(r),
    ...interpolationSection(r),
    '## Options',
    '',
    '```json',
    JSON.stringify(r.options, null, 2),
    '```',
  ].join('\n');
