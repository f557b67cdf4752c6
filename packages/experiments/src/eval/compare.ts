/**
 * The sampler comparison: every sampler draws the same n samples (same keys) from one checkpoint, and each is
 * scored by its score evaluations per sample (NFE), wall seconds, FID against the MNIST test set, and the clean
 * classifier's class histogram (entropy: log₂ 10 ≈ 3.32 bits for balanced classes) and mean max-probability.
 *
 * The samplers are the named ones (pipeline/samplers): Euler–Maruyama, PC (Euler–Maruyama ∘ one Langevin step at the
 * snr rule), the probability-flow ODE with adaptive RK45 at each rtol = atol of `odeTols`, EDM's Heun sampler and
 * DPM-Solver++(2M) at each of `fastSteps` (Song et al., ICLR 2021; Karras et al. 2022; Lu et al. 2022).
 *
 * Drawing ({@link drawComparison}) and scoring ({@link scoreComparison}) are separate, so the samples of a key range
 * can be drawn anywhere (`--shard`) and scored after a merge.
 *
 * @module eval/compare
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type { Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import type { Sampler, SamplerSpec } from '@score-sde/solvers';
import type { fid } from '@score-sde/models';
import { png, plot, report, strokes as inkStrokes } from '../lib';
import { type Drawn, type ExperimentError, type GuidanceWeights, type SamplerName, type SamplerSettings, IMAGE_SHAPE, SAMPLER_LABELS, fail, namedSampler, namedSamplerSpec, drawWithBar, scoreOfNamed, networksAt, guidanceIntervalOf, cfgWeightOf, autoguidanceWeightOf, DPM_SDE_AG_COND_NOISE } from '../pipeline';
import { type ClassRecord, type FidResult, classRecord, extrapolationOf, fidOfImages } from './fid';
import type { ClassifierHandle } from './classifiers';
import type { ComparisonOptions } from './options';
import { imagesTensor } from './common';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** One sampler of the comparison. @category model */
export interface ComparisonEntry {
  /** File-safe id: `em-500`, `pc-500`, `ode-1e-5`, `edm-20`, `dpm-20`. */
  readonly id: string;
  readonly family: SamplerName;
  /** For tables and captions: `EM 500`, `RK45 tol 1e-5`, … */
  readonly label: string;
  readonly spec: SamplerSpec;
  readonly sampler: Sampler;
  /** Network evaluations of one score evaluation at t (pipeline's `networksAt`). */
  readonly networks: (t: number) => number;
}

/** One sampler's outcome (fid, classes null and error set when its solve failed). @category model */
export interface SamplerResult {
  readonly id: string;
  readonly family: SamplerName;
  readonly label: string;
  readonly spec: SamplerSpec;
  readonly n: number;
  readonly nfe: number;
  readonly seconds: number;
  readonly fid: number | null;
  readonly meanTerm: number | null;
  readonly covTerm: number | null;
  /** FID of the first k samples at nested counts k (eval/fid's `fidOfImages`), and extrapolated to n → ∞; absent when n is too small. */
  readonly fidAt?: ReadonlyArray<{ readonly n: number; readonly fid: number }>;
  readonly fidInfinity?: number;
  readonly classes: ClassRecord | null;
  /** Stray strokes and background grain of the samples (lib/strokes). */
  readonly strokes: inkStrokes.StrokeRecord | null;
  readonly error: string | null;
}

/** What one entry's draw gave: the samples, or why its solve failed. @category model */
export type EntryDraw = E.Either<string, Drawn>;

// -------------------------------------------------------------------------------------
// samplers
// -------------------------------------------------------------------------------------

/** A tolerance, short and file-safe: the shorter of exponent form and plain (`1e-5` for 0.00001, `0.5` for 0.5). @category samplers */
export const formatTol = (tol: number): string => {
  const exp = tol.toExponential().replace(/\.?0+e/, 'e').replace('e+', 'e');
  const plain = String(tol);
  return exp.length < plain.length ? exp : plain;
};

/** The steps of a fixed-grid spec (`fallback` for the adaptive ODE, which has none). */
const stepsOf = (spec: SamplerSpec, fallback: number): number => ('steps' in spec ? spec.steps : fallback);

/** A label's note of the guidance weights given in place of a sampler's own (none given, or none it uses: empty). */
const weightsNote = (family: SamplerName, g: GuidanceWeights | undefined): string => {
  const parts = [
    ...(g?.cfg !== undefined && cfgWeightOf(family) !== undefined ? [`w = ${g.cfg}`] : []),
    ...(g?.autoguidance !== undefined && autoguidanceWeightOf(family) !== undefined ? [`w_g = ${g.autoguidance}`] : []),
  ];
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
};

/**
 * The samplers of the comparison, in the order of `samplers`, expanding `ode` over `odeTols` and `edm`, `edm-sde`, `dpm`, `dpm-sde` over
 * `fastSteps` (`dpm-sde` at k takes 2k steps, the NFE of `edm` at k). Left (naming `--compare`) when a sampler is not defined for the SDE.
 * @category samplers
 */
export const comparisonEntries = (
  sde: SDE,
  o: Pick<ComparisonOptions, 'samplers' | 'steps' | 'snr' | 'odeTols' | 'fastSteps' | 'endNoise' | 'guidance'>,
): E.Either<ExperimentError, ReadonlyArray<ComparisonEntry>> => {
  const base: SamplerSettings = { steps: o.steps, fastSteps: o.fastSteps[0] ?? 10, snr: o.snr, odeTol: o.odeTols[0] ?? 1e-5, ...(o.endNoise !== undefined ? { endNoise: o.endNoise } : {}) };
  const variants = (family: SamplerName): ReadonlyArray<{ readonly id: string; readonly label: string; readonly settings: SamplerSettings }> => {
    switch (family) {
      case 'em':
        return [{ id: `em-${o.steps}`, label: `EM ${o.steps}`, settings: base }];
      case 'pc':
        return [{ id: `pc-${o.steps}`, label: `PC ${o.steps} (snr ${o.snr})`, settings: base }];
      case 'ode':
        return o.odeTols.map((tol) => ({ id: `ode-${formatTol(tol)}`, label: `RK45 tol ${formatTol(tol)}`, settings: { ...base, odeTol: tol } }));
      case 'edm':
        return o.fastSteps.map((k) => ({ id: `edm-${k}`, label: `EDM Heun ${k}`, settings: { ...base, fastSteps: k } }));
      case 'edm-sde':
        return o.fastSteps.map((k) => ({ id: `edm-sde-${k}`, label: `EDM Heun stochastic ${k}`, settings: { ...base, fastSteps: k } }));
      case 'dpm':
        return o.fastSteps.map((k) => ({ id: `dpm-${k}`, label: `DPM++ ${k}`, settings: { ...base, fastSteps: k } }));
      case 'dpm-sde':
        return o.fastSteps.map((k) => ({ id: `dpm-sde-${k}`, label: `DPM++ SDE ${2 * k}`, settings: { ...base, fastSteps: k } }));
      case 'dpm-ag':
        return o.fastSteps.map((k) => ({ id: `dpm-ag-${k}`, label: `DPM++ ${k} autoguided`, settings: { ...base, fastSteps: k } }));
      case 'dpm-sde-ag':
        return o.fastSteps.map((k) => ({ id: `dpm-sde-ag-${k}`, label: `DPM++ SDE ${k} autoguided`, settings: { ...base, fastSteps: k } }));
      case 'dpm-sde-cond':
        return o.fastSteps.map((k) => ({ id: `dpm-sde-cond-${k}`, label: `DPM++ SDE ${2 * k} given y`, settings: { ...base, fastSteps: k } }));
      case 'dpm-cfg':
        return o.fastSteps.map((k) => ({ id: `dpm-cfg-${k}`, label: `DPM++ ${k} CFG`, settings: { ...base, fastSteps: k } }));
      case 'dpm-ag-cond':
      case 'dpm-sde-ag-cond': {
        const stochastic = family === 'dpm-sde-ag-cond';
        const noise = stochastic ? `, η = ${DPM_SDE_AG_COND_NOISE.eta} on σ ∈ [${DPM_SDE_AG_COND_NOISE.sMin}, ${DPM_SDE_AG_COND_NOISE.sMax}]` : '';
        return o.fastSteps.map((k) => ({
          id: `${family}-${k}`,
          label: `DPM++ ${stochastic ? 'SDE ' : ''}${stepsOf(namedSamplerSpec(sde, family, { ...base, fastSteps: k }), k)} given y, autoguided + CFG on σ ∈ (${guidanceIntervalOf(family)?.join(', ') ?? '0, ∞'}]${noise}`,
          settings: { ...base, fastSteps: k },
        }));
      }
    }
  };
  const out: ComparisonEntry[] = [];
  for (const family of o.samplers) {
    for (const v of variants(family)) {
      const s = namedSampler(sde, family, v.settings);
      if (E.isLeft(s)) return fail(`--compare ${family}: ${s.left.problems.join('; ')}`);
      out.push({ id: v.id, family, label: `${v.label}${weightsNote(family, o.guidance)}`, spec: namedSamplerSpec(sde, family, v.settings), sampler: s.right, networks: networksAt(sde, family) });
    }
  }
  return E.right(out);
};

// -------------------------------------------------------------------------------------
// drawing
// -------------------------------------------------------------------------------------

/**
 * Draws one sample per key with every entry (in chunks of `batch`, mapped from the model's data range to images in [0, 1]). An entry whose solve fails
 * keeps its error (the others still run); an autoguided one draws with the autoguided score of `guide`, a
 * classifier-free guided one with the guided score of `conditional` (an error when there is none), with `guidance` in
 * place of their own weights when given, and their NFE counts network evaluations.
 * @category drawing
 */
export const drawComparison = async (
  entries: ReadonlyArray<ComparisonEntry>,
  score: ScoreFn,
  keys: ReadonlyArray<Key>,
  o: {
    readonly batch: number;
    readonly quiet: boolean;
    readonly log: (line: string) => void;
    readonly dataRange: readonly [number, number];
    readonly guide?: E.Either<string, ScoreFn>;
    readonly conditional?: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
    readonly guideConditional?: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
    /** Guidance weights in place of the guided samplers' own. */
    readonly guidance?: GuidanceWeights;
  },
): Promise<ReadonlyArray<EntryDraw>> => {
  const out: EntryDraw[] = [];
  for (const entry of entries) {
    const s = scoreOfNamed(entry.family, { sde: entry.sampler.sde, score, guide: o.guide ?? E.left('no guide was loaded'), conditional: o.conditional ?? E.left('no conditional score was given'),
      guideConditional: o.guideConditional ?? E.left('no guide was loaded'),
    }, o.guidance);
    const drawn: E.Either<ExperimentError, Drawn> = E.isLeft(s)
      ? fail(s.left)
      : await drawWithBar(
          keys,
          (start, size) => ({ sampler: entry.sampler, score: s.right(keys.slice(start, start + size)), networks: entry.networks }),
          { batch: o.batch, sampleShape: IMAGE_SHAPE, dataRange: o.dataRange, quiet: o.quiet },
          `sampling ${entry.label}`,
        );
    if (E.isLeft(drawn)) o.log(`${entry.label}: failed: ${drawn.left.message}`);
    out.push(E.mapLeft((e: ExperimentError) => e.message)(drawn));
  }
  return out;
};

// -------------------------------------------------------------------------------------
// scoring
// -------------------------------------------------------------------------------------

/** What scoring the comparison needs. @category scoring */
export interface ComparisonScoring {
  readonly entries: ReadonlyArray<ComparisonEntry>;
  /** One draw per entry, in order, of the same n samples. */
  readonly draws: ReadonlyArray<EntryDraw>;
  readonly n: number;
  readonly extractor: ClassifierHandle;
  readonly reference: fid.Stats;
  /** The real-vs-real floor at the same n (drawn in the plot as a dashed line). */
  readonly floor: FidResult;
  readonly out: string;
  readonly log: (line: string) => void;
}

/** The comparison's results and the figures it wrote. @category scoring */
export interface ComparisonOutput {
  readonly results: ReadonlyArray<SamplerResult>;
  readonly plotPng: string;
  readonly panelPng: string;
}

/** Images per panel of samplers.png. */
const PANEL_IMAGES = 64;

/**
 * Scores every entry's samples (FID, classes) and writes `fid-vs-nfe.png` and `samplers.png` into `out`. A Left
 * only for unwritable figures.
 * @category scoring
 */
export const scoreComparison = async (i: ComparisonScoring): Promise<E.Either<ExperimentError, ComparisonOutput>> => {
  const results: SamplerResult[] = [];
  const panels: plot.Panel[] = [];
  i.entries.forEach((entry, k) => {
    const drawn = i.draws[k]!;
    const common = { id: entry.id, family: entry.family, label: entry.label, spec: entry.spec, n: i.n };
    if (E.isLeft(drawn)) {
      results.push({ ...common, nfe: 0, seconds: 0, fid: null, meanTerm: null, covTerm: null, classes: null, strokes: null, error: drawn.left });
      return;
    }
    const { samples, nfe, seconds } = drawn.right;
    const x = imagesTensor(samples);
    const scored = fidOfImages(i.extractor.config, i.extractor.params, x, i.reference);
    const classes = classRecord(i.extractor.config, i.extractor.params, x);
    x.dispose();
    const strokes = inkStrokes.strokeRecord(samples);
    const gridPng = png.imageGrid(samples.subarray(0, Math.min(PANEL_IMAGES, i.n) * 784), 8);
    const error = E.isLeft(scored) ? scored.left.message : null;
    const r: SamplerResult = {
      ...common,
      nfe,
      seconds,
      fid: E.isRight(scored) ? scored.right.fid : null,
      meanTerm: E.isRight(scored) ? scored.right.meanTerm : null,
      covTerm: E.isRight(scored) ? scored.right.covTerm : null,
      ...(E.isRight(scored) ? extrapolationOf(scored.right) : {}),
      classes: { histogram: classes.histogram, meanMaxProb: classes.meanMaxProb, confidentRate: classes.confidentRate, entropyBits: classes.entropyBits },
      strokes,
      error,
    };
    results.push(r);
    if (E.isRight(gridPng)) panels.push({ png: gridPng.right, caption: `${entry.label}: NFE ${report.formatNumber(nfe, 3)}, FID ${r.fid === null ? 'n/a' : report.formatNumber(r.fid, 3)}` });
    i.log(
      `${entry.label}: ${i.n} samples, NFE ${report.formatNumber(nfe)}, ${seconds.toFixed(1)} s, FID ${r.fid === null ? `n/a (${error})` : report.formatNumber(r.fid)}` +
        (r.fidInfinity === undefined ? '' : ` (FID∞ ≈ ${report.formatNumber(r.fidInfinity)} from n = ${r.fidAt!.map((a) => a.n).join(', ')})`) +
        `, class entropy ${classes.entropyBits.toFixed(3)} bits, mean max-prob ${classes.meanMaxProb.toFixed(3)}, confident ${(100 * classes.confidentRate).toFixed(1)}%` +
        `, stray strokes ${(100 * strokes.strayRate).toFixed(1)}%, grain ${(100 * strokes.grain).toFixed(2)}%`,
    );
  });

  const plotPng = 'fid-vs-nfe.png';
  const w1 = await report.atomicWriteFile(path.join(i.out, plotPng), plot.linePlotPng(fidPlotSpec(results, i.floor, i.extractor.name)))();
  if (E.isLeft(w1)) return fail(`${plotPng}: ${report.renderIoError(w1.left)}`);
  const panelPng = 'samplers.png';
  if (panels.length > 0) {
    const fig = plot.panelFigure(panels, { title: `${i.n} samples per sampler (first ${PANEL_IMAGES} shown)` });
    if (E.isLeft(fig)) return fail(`${panelPng}: ${fig.left.message}`);
    const w2 = await report.atomicWriteFile(path.join(i.out, panelPng), fig.right)();
    if (E.isLeft(w2)) return fail(`${panelPng}: ${report.renderIoError(w2.left)}`);
  }
  return E.right({ results, plotPng, panelPng });
};

/**
 * FID against NFE (log x): one line per sampler family (its points over tolerances or step counts), and the
 * real-vs-real floor as a dashed line across the NFE range.
 * @category figures
 */
export const fidPlotSpec = (results: ReadonlyArray<SamplerResult>, floor: FidResult, extractor: string): plot.LinePlotSpec => {
  const ok = results.filter((r) => r.fid !== null && r.nfe > 0);
  const families = [...new Set(ok.map((r) => r.family))];
  const series: plot.Series[] = families.map((family, k) => ({
    name: SAMPLER_LABELS[family],
    points: ok
      .filter((r) => r.family === family)
      .map((r) => [r.nfe, r.fid!] as const)
      .sort((a, b) => a[0] - b[0]),
    markers: true,
    color: plot.PALETTE[k % plot.PALETTE.length]!,
  }));
  const nfes = ok.map((r) => r.nfe);
  const lo = nfes.length > 0 ? Math.min(...nfes) : 1;
  const hi = nfes.length > 0 ? Math.max(...nfes) : 10;
  series.push({ name: `real vs real (n = ${floor.n})`, points: [[lo, floor.fid], [hi > lo ? hi : lo * 10, floor.fid]], dashed: true, markers: false, color: '#555555' });
  return {
    title: `FID vs NFE (n = ${floor.n}; features: ${extractor})`,
    width: 960,
    height: 540,
    xLabel: 'score evaluations per sample (NFE)',
    yLabel: 'FID vs MNIST test',
    series,
    logX: true,
    legend: 'top-right',
  };
};
