/**
 * The sampler comparison: every sampler draws the same n samples (same keys) from one checkpoint, and each is
 * scored by its score evaluations per sample (NFE), wall seconds, FID against the MNIST test set, and the clean
 * classifier's class histogram (entropy: log₂ 10 ≈ 3.32 bits for balanced classes) and mean max-probability.
 *
 * Samplers (Song et al., ICLR 2021; Karras et al. 2022; Lu et al. 2022): Euler–Maruyama, PC (Euler–Maruyama ∘
 * one Langevin step at the snr rule), the probability-flow ODE with adaptive RK45 (Dormand–Prince 5(4)) at each
 * rtol = atol of `--ode-tols`, EDM's Heun sampler and DPM-Solver++(2M) at each of `--fast-steps`.
 *
 * @module eval/compare
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, type Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { type Sampler, type SamplerSpec, samplerFromSpec } from '@score-sde/solvers';
import type { DecodeError } from '@score-sde/tensor-fp';
import type { fid } from '@score-sde/models';
import { png, plot, report } from '../lib';
import { mnistSamplerSpec, type SamplerSettings } from '../mnist/samplers';
import type { MnistSamplerName } from '../mnist/flags';
import { type EvalError, fail } from './common';
import { drawInChunks } from './draw';
import { type ClassRecord, type FidResult, classRecord, fidOfImages } from './fid';
import type { ClassifierHandle } from './classifiers';
import type { ComparisonSampler, MnistEvalFlags } from './flags';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** One sampler of the comparison. @category model */
export interface ComparisonEntry {
  /** File-safe id: `em-500`, `pc-500`, `ode-1e-5`, `edm-20`, `dpm-20`. */
  readonly id: string;
  readonly family: ComparisonSampler;
  /** For tables and captions: `EM 500`, `RK45 tol 1e-5`, … */
  readonly label: string;
  readonly spec: SamplerSpec;
  readonly sampler: Sampler;
}

/** One sampler's outcome (fid, classes null and error set when its solve failed). @category model */
export interface SamplerResult {
  readonly id: string;
  readonly family: ComparisonSampler;
  readonly label: string;
  readonly spec: SamplerSpec;
  readonly n: number;
  readonly nfe: number;
  readonly seconds: number;
  readonly fid: number | null;
  readonly meanTerm: number | null;
  readonly covTerm: number | null;
  readonly classes: ClassRecord | null;
  readonly error: string | null;
}

const FAMILY_LABEL: Readonly<Record<ComparisonSampler, string>> = {
  em: 'Euler–Maruyama',
  pc: 'PC (EM ∘ Langevin)',
  ode: 'PF-ODE RK45',
  edm: 'EDM Heun',
  dpm: 'DPM-Solver++(2M)',
};

// -------------------------------------------------------------------------------------
// samplers
// -------------------------------------------------------------------------------------

/** A tolerance, short and file-safe: the shorter of exponent form and plain (`1e-5` for 0.00001, `0.5` for 0.5). @category samplers */
export const formatTol = (tol: number): string => {
  const exp = tol.toExponential().replace(/\.?0+e/, 'e').replace('e+', 'e');
  const plain = String(tol);
  return exp.length < plain.length ? exp : plain;
};

/**
 * The sampler a name of the MNIST experiment stands for (its spec from `mnistSamplerSpec`), built as specified:
 * the adaptive ODE solves [ε, T] as one interval, so its NFE is the solver's own (the experiment's 20-interval
 * progress grid would force at least 20 steps).
 * @category samplers
 */
export const evalSampler = (sde: SDE, name: MnistSamplerName, settings: SamplerSettings): E.Either<DecodeError, Sampler> => samplerFromSpec(sde, mnistSamplerSpec(name, settings));

/**
 * The samplers of the comparison, in the order of `--compare`, expanding `ode` over `--ode-tols` and `edm`,
 * `dpm` over `--fast-steps`. Left (naming `--compare`) when a sampler is not defined for the SDE.
 * @category samplers
 */
export const comparisonEntries = (sde: SDE, f: Pick<MnistEvalFlags, 'compare' | 'steps' | 'snr' | 'odeTols' | 'fastSteps'>): E.Either<EvalError, ReadonlyArray<ComparisonEntry>> => {
  const base: SamplerSettings = { steps: f.steps, fastSteps: f.fastSteps[0] ?? 10, snr: f.snr, odeTol: f.odeTols[0] ?? 1e-5 };
  const variants = (family: ComparisonSampler): ReadonlyArray<{ readonly id: string; readonly label: string; readonly settings: SamplerSettings }> => {
    switch (family) {
      case 'em':
        return [{ id: `em-${f.steps}`, label: `EM ${f.steps}`, settings: base }];
      case 'pc':
        return [{ id: `pc-${f.steps}`, label: `PC ${f.steps} (snr ${f.snr})`, settings: base }];
      case 'ode':
        return f.odeTols.map((tol) => ({ id: `ode-${formatTol(tol)}`, label: `RK45 tol ${formatTol(tol)}`, settings: { ...base, odeTol: tol } }));
      case 'edm':
        return f.fastSteps.map((k) => ({ id: `edm-${k}`, label: `EDM Heun ${k}`, settings: { ...base, fastSteps: k } }));
      case 'dpm':
        return f.fastSteps.map((k) => ({ id: `dpm-${k}`, label: `DPM++ ${k}`, settings: { ...base, fastSteps: k } }));
    }
  };
  const out: ComparisonEntry[] = [];
  for (const family of f.compare) {
    for (const v of variants(family)) {
      const name: MnistSamplerName = family;
      const s = evalSampler(sde, name, v.settings);
      if (E.isLeft(s)) return fail(`--compare ${family}: ${s.left.problems.join('; ')}`);
      out.push({ id: v.id, family, label: v.label, spec: mnistSamplerSpec(name, v.settings), sampler: s.right });
    }
  }
  return E.right(out);
};

// -------------------------------------------------------------------------------------
// running
// -------------------------------------------------------------------------------------

/** What the comparison needs. @category running */
export interface ComparisonInput {
  readonly sde: SDE;
  readonly score: ScoreFn;
  readonly extractor: ClassifierHandle;
  readonly reference: fid.Stats;
  /** The real-vs-real floor at the same n (drawn in the plot as a dashed line). */
  readonly floor: FidResult;
  /** One key per sample (shared by every sampler). */
  readonly keys: ReadonlyArray<Key>;
  readonly flags: MnistEvalFlags;
  readonly out: string;
  readonly log: (line: string) => void;
}

/** The comparison's results and the figures it wrote. @category running */
export interface ComparisonOutput {
  readonly results: ReadonlyArray<SamplerResult>;
  readonly plotPng: string;
  readonly panelPng: string;
}

/** Images per panel of samplers.png. */
const PANEL_IMAGES = 64;

/**
 * Runs every sampler, scores it, and writes `fid-vs-nfe.png` and `samplers.png` into `out`. A sampler whose
 * solve fails is recorded with its error (the others still run); a Left only for unwritable figures or bad flags.
 * @category running
 */
export const runComparison = async (i: ComparisonInput): Promise<E.Either<EvalError, ComparisonOutput>> => {
  const f = i.flags;
  const entries = comparisonEntries(i.sde, f);
  if (E.isLeft(entries)) return entries;
  const results: SamplerResult[] = [];
  const panels: plot.Panel[] = [];
  for (const entry of entries.right) {
    const drawn = await drawInChunks(i.keys, () => ({ sampler: entry.sampler, score: i.score }), { batch: f.sampleBatch, label: `sampling ${entry.label}`, quiet: f.quiet });
    if (E.isLeft(drawn)) {
      i.log(`${entry.label}: failed: ${drawn.left.message}`);
      results.push({ id: entry.id, family: entry.family, label: entry.label, spec: entry.spec, n: i.keys.length, nfe: 0, seconds: 0, fid: null, meanTerm: null, covTerm: null, classes: null, error: drawn.left.message });
      continue;
    }
    const { x, nfe, seconds } = drawn.right;
    const scored = fidOfImages(i.extractor.config, i.extractor.params, x, i.reference);
    const classes = classRecord(i.extractor.config, i.extractor.params, x);
    const grid = tf.tidy(() => tf.slice(x, 0, Math.min(PANEL_IMAGES, x.shape[0]!)));
    const gridPng = png.imageGrid(grid, 8);
    grid.dispose();
    x.dispose();
    const error = E.isLeft(scored) ? scored.left.message : null;
    const r: SamplerResult = {
      id: entry.id,
      family: entry.family,
      label: entry.label,
      spec: entry.spec,
      n: i.keys.length,
      nfe,
      seconds,
      fid: E.isRight(scored) ? scored.right.fid : null,
      meanTerm: E.isRight(scored) ? scored.right.meanTerm : null,
      covTerm: E.isRight(scored) ? scored.right.covTerm : null,
      classes: { histogram: classes.histogram, meanMaxProb: classes.meanMaxProb, entropyBits: classes.entropyBits },
      error,
    };
    results.push(r);
    if (E.isRight(gridPng)) panels.push({ png: gridPng.right, caption: `${entry.label}: NFE ${report.formatNumber(nfe, 3)}, FID ${r.fid === null ? 'n/a' : report.formatNumber(r.fid, 3)}` });
    i.log(
      `${entry.label}: ${i.keys.length} samples, NFE ${report.formatNumber(nfe)}, ${seconds.toFixed(1)} s, FID ${r.fid === null ? `n/a (${error})` : report.formatNumber(r.fid)}` +
        `, class entropy ${classes.entropyBits.toFixed(3)} bits, mean max-prob ${classes.meanMaxProb.toFixed(3)}`,
    );
  }

  const plotPng = 'fid-vs-nfe.png';
  const w1 = await report.atomicWriteFile(path.join(i.out, plotPng), plot.linePlotPng(fidPlotSpec(results, i.floor, i.extractor.name)))();
  if (E.isLeft(w1)) return fail(`${plotPng}: ${report.renderIoError(w1.left)}`);
  const panelPng = 'samplers.png';
  if (panels.length > 0) {
    const fig = plot.panelFigure(panels, { title: `${i.keys.length} samples per sampler (first ${PANEL_IMAGES} shown)` });
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
    name: FAMILY_LABEL[family],
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
