/**
 * Class-conditional generation by classifier guidance (Song et al., ICLR 2021, §5 and eq. 14; Dhariwal & Nichol
 * 2021 for the scale): sample y's images with the score of p_t(x | y) ∝ p_t(x) p_t(y | x)^w,
 *
 *   s_y(x, t) = s_θ(x, t) + w ∇ₓ log p_φ(y | x, t),
 *
 * p_φ the noise-conditional classifier. A transformed score is a score, so the same guided score drives the PC
 * sampler and the probability-flow ODE. The clean classifier then labels the samples: its accuracy against the
 * requested classes measures how well the guidance works (target ≥ 90 %).
 *
 * Sample b requests class ⌊b / perClass⌋ and uses key b of the part's stream; drawing a range of b
 * ({@link drawConditional}) and scoring all of them ({@link scoreConditional}) are separate steps.
 *
 * @module eval/conditional
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type { Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { classifierGuidance } from '@score-sde/solvers';
import { classifier } from '@score-sde/models';
import { png, report } from '../lib';
import { type Drawn, type ExperimentError, type ItemRange, IMAGE_SHAPE, fail, namedSampler, drawWithBar } from '../pipeline';
import { imagesTensor, perClassAccuracy } from './common';
import { classRecord } from './fid';
import type { ClassifierHandle } from './classifiers';
import type { ConditionalOptions, ConditionalSampler } from './options';

/** One sampler's class-conditional run. @category model */
export interface ConditionalRun {
  readonly sampler: ConditionalSampler;
  readonly n: number;
  /** Fraction of samples the clean classifier labels as the requested class. */
  readonly accuracy: number;
  /** The same per requested class 0 … K − 1. */
  readonly perClassAccuracy: ReadonlyArray<number>;
  readonly meanMaxProb: number;
  readonly nfe: number;
  readonly seconds: number;
  readonly png: string;
}

/** The requested class of sample b when each class gets `perClass` consecutive samples: ⌊b / perClass⌋. @category model */
export const requestedClasses = (numClasses: number, perClass: number): Int32Array => Int32Array.from({ length: numClasses * perClass }, (_, b) => Math.floor(b / perClass));

/**
 * For each sampler of `o.samplers`, samples `range` of the part (sample b requests class ⌊b / perClass⌋ and uses
 * keys[b − range.start]) with the score guided by `guide`.
 * @category conditional
 */
export const drawConditional = async (
  sde: SDE,
  score: ScoreFn,
  guide: ClassifierHandle,
  keys: ReadonlyArray<Key>,
  range: ItemRange,
  o: ConditionalOptions & { readonly quiet: boolean; readonly dataRange: readonly [number, number] },
): Promise<E.Either<ExperimentError, ReadonlyArray<Drawn>>> => {
  const labels = requestedClasses(guide.config.numClasses, o.perClass).subarray(range.start, range.end);
  if (keys.length !== labels.length) return fail(`conditional: ${keys.length} keys for ${labels.length} samples`);
  const out: Drawn[] = [];
  for (const name of o.samplers) {
    const sampler = namedSampler(sde, name, o.sampler);
    if (E.isLeft(sampler)) return fail(`--conditional-samplers ${name}: ${sampler.left.problems.join('; ')}`);
    const drawn = await drawWithBar(
      keys,
      (start, size) => ({
        sampler: sampler.right,
        score: classifierGuidance(score, classifier.classifierLogLikelihood(guide.config, guide.params, labels.subarray(start, start + size)), o.guidanceScale),
      }),
      { batch: o.batch, sampleShape: IMAGE_SHAPE, dataRange: o.dataRange, quiet: o.quiet },
      `class-conditional ${name} (w = ${o.guidanceScale})`,
    );
    if (E.isLeft(drawn)) return drawn;
    out.push(drawn.right);
  }
  return E.right(out);
};

/**
 * Scores each sampler's samples (all of the part's, in order) with the clean classifier and writes
 * `conditional-<sampler>.png` (one row per class).
 * @category conditional
 */
export const scoreConditional = async (
  judge: ClassifierHandle,
  numClasses: number,
  draws: ReadonlyArray<Drawn>,
  o: ConditionalOptions & { readonly out: string; readonly log: (line: string) => void },
): Promise<E.Either<ExperimentError, ReadonlyArray<ConditionalRun>>> => {
  const labels = requestedClasses(numClasses, o.perClass);
  const runs: ConditionalRun[] = [];
  for (const [k, name] of o.samplers.entries()) {
    const { samples, nfe, seconds } = draws[k]!;
    const x = imagesTensor(samples);
    const c = classRecord(judge.config, judge.params, x);
    x.dispose();
    const grid = png.imageGrid(samples, o.perClass);
    const file = `conditional-${name}.png`;
    if (E.isLeft(grid)) return fail(`${file}: ${grid.left.message}`);
    const w = await png.writePng(path.join(o.out, file), grid.right)();
    if (E.isLeft(w)) return fail(`${file}: ${report.renderIoError(w.left)}`);
    const run: ConditionalRun = {
      sampler: name,
      n: labels.length,
      accuracy: classifier.accuracy(c.predictions, labels),
      perClassAccuracy: perClassAccuracy(c.predictions, labels, numClasses),
      meanMaxProb: c.meanMaxProb,
      nfe,
      seconds,
      png: file,
    };
    runs.push(run);
    o.log(`class-conditional ${name} (w = ${o.guidanceScale}): clean-classifier accuracy ${(100 * run.accuracy).toFixed(1)}% on ${run.n} samples, NFE ${report.formatNumber(nfe)}, ${seconds.toFixed(1)} s → ${path.join(o.out, file)}`);
  }
  return E.right(runs);
};
