/**
 * Inpainting (Song et al., ICLR 2021, App. I.2): hide half of each test digit and fill it in by sampling with
 * the PC sampler and the inpainting transform, which after every step puts the known pixels back on their
 * forward kernel, x ← mask ⊙ (m(t) y + s(t) z) + (1 − mask) ⊙ x, so the hidden half evolves under the score
 * with the known half held to the observation. The clean classifier then says whether a completion is the
 * same digit as the original.
 *
 * @module eval/inpainting
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, type Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { type Sampler, inpaint } from '@score-sde/solvers';
import { classifier, type MnistData, imageBatch } from '@score-sde/models';
import { png, report } from '../lib';
import { type EvalError, fail, labelsAt, range, repeatRows } from './common';
import { type Drawn, drawInChunks } from './draw';
import { evalSampler } from './compare';
import type { ClassifierHandle } from './classifiers';
import { predictInBatches } from './classifiers';
import type { MnistEvalFlags } from './flags';

/** Which half is hidden. @category model */
export type MaskKind = 'lower' | 'right';

/**
 * The mask of the known pixels (1 known, 0 hidden), row-major rows × cols: `lower` hides rows ≥ ⌊rows/2⌋,
 * `right` hides columns ≥ ⌊cols/2⌋.
 * @category masks
 */
export const halfMask = (kind: MaskKind, rows: number, cols: number): Float32Array =>
  Float32Array.from({ length: rows * cols }, (_, i) => {
    const r = Math.floor(i / cols);
    const c = i % cols;
    return (kind === 'lower' ? r < Math.floor(rows / 2) : c < Math.floor(cols / 2)) ? 1 : 0;
  });

/** The mask as a [1, rows, cols, 1] tensor (broadcasts over a batch). @category masks */
export const maskTensor = (kind: MaskKind, rows: number, cols: number): tf.Tensor4D => tf.tensor4d(halfMask(kind, rows, cols), [1, rows, cols, 1]);

/** What the masked digit looks like: known pixels as they are, hidden ones mid-grey: x ⊙ mask + ½ (1 − mask). @category masks */
export const maskedForDisplay = (x: tf.Tensor, mask: tf.Tensor): tf.Tensor => tf.tidy(() => tf.add(tf.mul(x, mask), tf.mul(tf.sub(1, mask), 0.5)));

/**
 * Completions of `originals` [M, H, W, 1]: k per original (row i·k + j is completion j of original i), drawn
 * by `sampler` with the inpainting transform of the observation (originals, mask); sample b uses keys[b].
 * @category inpainting
 */
export const inpaintDigits = async (
  sde: SDE,
  score: ScoreFn,
  sampler: Sampler,
  originals: tf.Tensor,
  mask: tf.Tensor,
  k: number,
  keys: ReadonlyArray<Key>,
  o: { readonly batch: number; readonly label: string; readonly quiet: boolean },
): Promise<E.Either<EvalError, Drawn>> => {
  const observed = repeatRows(originals, k);
  if (keys.length !== observed.shape[0]) {
    observed.dispose();
    return fail(`inpainting: ${keys.length} keys for ${observed.shape[0]} completions`);
  }
  try {
    return await drawInChunks(
      keys,
      (start, size) => {
        const chunk = tf.slice(observed, start, size);
        return { sampler: { ...sampler, transform: inpaint(sde, { observed: chunk, mask }) }, score, release: () => chunk.dispose() };
      },
      { ...o, sampleShape: originals.shape.slice(1) },
    );
  } finally {
    observed.dispose();
  }
};

/** The inpainting figure. @category model */
export interface InpaintingResult {
  readonly mask: MaskKind;
  readonly digits: number;
  readonly completions: number;
  readonly sampler: string;
  /** Fraction of completions the clean classifier labels like the original. */
  readonly agreement: number;
  /** Fraction of completions the clean classifier labels with the original's true label. */
  readonly trueLabelAgreement: number;
  /** The clean classifier's accuracy on the originals (the ceiling of the true-label agreement). */
  readonly originalAccuracy: number;
  readonly nfe: number;
  readonly seconds: number;
  readonly png: string;
}

/** What the inpainting part needs. @category model */
export interface InpaintingInput {
  readonly sde: SDE;
  readonly score: ScoreFn;
  readonly judge: ClassifierHandle;
  readonly test: MnistData;
  readonly keys: ReadonlyArray<Key>;
  readonly flags: MnistEvalFlags;
  readonly out: string;
  readonly log: (line: string) => void;
}

/**
 * Inpaints the first `--inpaint-digits` test digits `--completions` times each with the PC sampler, writes
 * `inpainting.png` (per row: original, masked, completions) and scores label agreement.
 * @category inpainting
 */
export const runInpainting = async (i: InpaintingInput): Promise<E.Either<EvalError, InpaintingResult>> => {
  const f = i.flags;
  const m = Math.min(f.inpaintDigits, i.test.count);
  const k = f.completions;
  const sampler = evalSampler(i.sde, 'pc', { steps: f.steps, fastSteps: f.fastSteps[0] ?? 10, snr: f.snr, odeTol: f.odeTol });
  if (E.isLeft(sampler)) return fail(`inpainting: ${sampler.left.problems.join('; ')}`);
  const originals = imageBatch(i.test, range(m));
  const mask = maskTensor(f.mask, i.test.rows, i.test.cols);
  try {
    const drawn = await inpaintDigits(i.sde, i.score, sampler.right, originals, mask, k, i.keys.slice(0, m * k), {
      batch: f.sampleBatch,
      label: `inpainting (${f.mask} half)`,
      quiet: f.quiet,
    });
    if (E.isLeft(drawn)) return drawn;
    const { x, nfe, seconds } = drawn.right;
    const truth = labelsAt(i.test, range(m));
    const originalLabels = predictInBatches(i.judge.config, i.judge.params, originals);
    const completionLabels = predictInBatches(i.judge.config, i.judge.params, x);
    const repeat = (a: ArrayLike<number>): Int32Array => Int32Array.from({ length: m * k }, (_, b) => a[Math.floor(b / k)]!);
    const figure = tf.tidy(() => {
      const masked = maskedForDisplay(originals, mask);
      const rows = Array.from({ length: m }, (_, d) => tf.concat([tf.slice(originals, d, 1), tf.slice(masked, d, 1), tf.slice(x, d * k, k)], 0));
      return tf.concat(rows, 0);
    });
    x.dispose();
    const grid = png.imageGrid(figure, k + 2, { scale: 2 });
    figure.dispose();
    if (E.isLeft(grid)) return fail(`inpainting.png: ${grid.left.message}`);
    const file = 'inpainting.png';
    const w = await png.writePng(path.join(i.out, file), grid.right)();
    if (E.isLeft(w)) return fail(`${file}: ${report.renderIoError(w.left)}`);
    const result: InpaintingResult = {
      mask: f.mask,
      digits: m,
      completions: k,
      sampler: `pc-${f.steps}`,
      agreement: classifier.accuracy(completionLabels, repeat(originalLabels)),
      trueLabelAgreement: classifier.accuracy(completionLabels, repeat(truth)),
      originalAccuracy: classifier.accuracy(originalLabels, truth),
      nfe,
      seconds,
      png: file,
    };
    i.log(
      `inpainting (${f.mask} half): ${m} digits × ${k} completions; the clean classifier labels ${(100 * result.agreement).toFixed(1)}% like the original ` +
        `(${(100 * result.trueLabelAgreement).toFixed(1)}% with its true label), ${seconds.toFixed(1)} s → ${path.join(i.out, file)}`,
    );
    return E.right(result);
  } finally {
    tf.dispose([originals, mask]);
  }
};
