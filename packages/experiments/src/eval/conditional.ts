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
 * @module eval/conditional
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type { Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { classifierGuidance } from '@score-sde/solvers';
import { classifier } from '@score-sde/models';
import { png, report } from '../lib';
import { type EvalError, fail, perClassAccuracy } from './common';
import { drawInChunks } from './draw';
import { evalSampler } from './compare';
import { classRecord } from './fid';
import type { ClassifierHandle } from './classifiers';
import type { ConditionalSampler, MnistEvalFlags } from './flags';

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

/** What conditional generation needs. @category model */
export interface ConditionalInput {
  readonly sde: SDE;
  readonly score: ScoreFn;
  readonly guide: ClassifierHandle;
  readonly judge: ClassifierHandle;
  readonly keys: ReadonlyArray<Key>;
  readonly flags: MnistEvalFlags;
  readonly out: string;
  readonly log: (line: string) => void;
}

/**
 * For each sampler of `--conditional-samplers`: draws `--per-class` samples of every class with the guided score
 * (sample b requests class ⌊b / perClass⌋, with key keys[b]), writes `conditional-<sampler>.png` (one row per
 * class), and scores the samples with the clean classifier.
 * @category conditional
 */
export const runConditional = async (i: ConditionalInput): Promise<E.Either<EvalError, ReadonlyArray<ConditionalRun>>> => {
  const f = i.flags;
  const K = i.guide.config.numClasses;
  const labels = requestedClasses(K, f.perClass);
  if (i.keys.length !== labels.length) return fail(`conditional: ${i.keys.length} keys for ${labels.length} samples`);
  const runs: ConditionalRun[] = [];
  for (const name of f.conditionalSamplers) {
    const sampler = evalSampler(i.sde, name, { steps: f.steps, fastSteps: f.fastSteps[0] ?? 10, snr: f.snr, odeTol: f.odeTol });
    if (E.isLeft(sampler)) return fail(`--conditional-samplers ${name}: ${sampler.left.problems.join('; ')}`);
    const drawn = await drawInChunks(
      i.keys,
      (start, size) => ({
        sampler: sampler.right,
        score: classifierGuidance(i.score, classifier.classifierLogLikelihood(i.guide.config, i.guide.params, labels.subarray(start, start + size)), f.guidanceScale),
      }),
      { batch: f.sampleBatch, label: `class-conditional ${name} (w = ${f.guidanceScale})`, quiet: f.quiet },
    );
    if (E.isLeft(drawn)) return drawn;
    const { x, nfe, seconds } = drawn.right;
    const c = classRecord(i.judge.config, i.judge.params, x);
    const grid = png.imageGrid(x, f.perClass);
    x.dispose();
    if (E.isLeft(grid)) return fail(`conditional-${name}.png: ${grid.left.message}`);
    const file = `conditional-${name}.png`;
    const w = await png.writePng(path.join(i.out, file), grid.right)();
    if (E.isLeft(w)) return fail(`${file}: ${report.renderIoError(w.left)}`);
    const run: ConditionalRun = {
      sampler: name,
      n: labels.length,
      accuracy: classifier.accuracy(c.predictions, labels),
      perClassAccuracy: perClassAccuracy(c.predictions, labels, K),
      meanMaxProb: c.meanMaxProb,
      nfe,
      seconds,
      png: file,
    };
    runs.push(run);
    i.log(`class-conditional ${name} (w = ${f.guidanceScale}): clean-classifier accuracy ${(100 * run.accuracy).toFixed(1)}% on ${run.n} samples, NFE ${report.formatNumber(nfe)}, ${seconds.toFixed(1)} s → ${path.join(i.out, file)}`);
  }
  return E.right(runs);
};
