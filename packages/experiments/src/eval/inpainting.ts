/**
 * Inpainting (Song et al., ICLR 2021, App. I.2): hide half of each test digit and fill it in by sampling with
 * the PC sampler and the inpainting transform, which after every step puts the known pixels back on their
 * forward kernel, x ← mask ⊙ (m(t) y + s(t) z) + (1 − mask) ⊙ x, so the hidden half evolves under the score
 * with the known half held to the observation. The clean classifier then says whether a completion is the
 * same digit as the original.
 *
 * Completion b is completion b mod k of test digit ⌊b / k⌋ and uses key b of the part's stream; drawing a range of b
 * ({@link drawInpainting}) and scoring all of them ({@link scoreInpainting}) are separate steps.
 *
 * @module eval/inpainting
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, type Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { type Sampler, inpaint } from '@score-sde/solvers';
import { classifier, type MnistData, imageBatch, imagesToRange } from '@score-sde/models';
import { png, report } from '../lib';
import { type Drawn, type ExperimentError, type ItemRange, fail, namedSampler, drawWithBar } from '../pipeline';
import { imagesTensor, labelsAt, range as range_ } from './common';
import type { ClassifierHandle } from './classifiers';
import type { InpaintingOptions, MaskKind } from './options';

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
 * Completions b ∈ `range` of `originals` [M, H, W, 1], k per original (completion b fills original ⌊b / k⌋), drawn
 * by `sampler` with the inpainting transform of the observation (original, mask); completion b uses
 * keys[b − range.start].
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
  range: ItemRange,
  o: { readonly batch: number; readonly label: string; readonly quiet: boolean; readonly dataRange: readonly [number, number] },
): Promise<E.Either<ExperimentError, Drawn>> => {
  if (keys.length !== range.end - range.start) return fail(`inpainting: ${keys.length} keys for ${range.end - range.start} completions`);
  // The observation in the model's data space (the originals are images in [0, 1]).
  const observed = tf.tidy(() => imagesToRange(o.dataRange, tf.gather(originals, Int32Array.from({ length: keys.length }, (_, i) => Math.floor((range.start + i) / k)))));
  try {
    return await drawWithBar(
      keys,
      (start, size) => {
        const chunk = tf.slice(observed, start, size);
        return { sampler: { ...sampler, transform: inpaint(sde, { observed: chunk, mask }) }, score, release: () => chunk.dispose() };
      },
      { batch: o.batch, sampleShape: originals.shape.slice(1), dataRange: o.dataRange, quiet: o.quiet },
      o.label,
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

/** The number of completions of the part: digits × completions (digits at most the test set). @category inpainting */
export const inpaintingCount = (test: MnistData, o: InpaintingOptions): number => Math.min(o.digits, test.count) * o.completions;

/**
 * Draws completions `range` of the first `digits` test digits (`completions` each) with the pc sampler.
 * @category inpainting
 */
export const drawInpainting = async (
  sde: SDE,
  score: ScoreFn,
  test: MnistData,
  keys: ReadonlyArray<Key>,
  range: ItemRange,
  o: InpaintingOptions & { readonly quiet: boolean; readonly dataRange: readonly [number, number] },
): Promise<E.Either<ExperimentError, Drawn>> => {
  const sampler = namedSampler(sde, 'pc', o.sampler);
  if (E.isLeft(sampler)) return fail(`inpainting: ${sampler.left.problems.join('; ')}`);
  const originals = imageBatch(test, range_(Math.min(o.digits, test.count)));
  const mask = maskTensor(o.mask, test.rows, test.cols);
  try {
    return await inpaintDigits(sde, score, sampler.right, originals, mask, o.completions, keys, range, { batch: o.batch, label: `inpainting (${o.mask} half)`, quiet: o.quiet, dataRange: o.dataRange });
  } finally {
    tf.dispose([originals, mask]);
  }
};

/**
 * Scores all completions with the clean classifier and writes `inpainting.png` (per row: original, masked,
 * completions).
 * @category inpainting
 */
export const scoreInpainting = async (
  judge: ClassifierHandle,
  test: MnistData,
  drawn: Drawn,
  o: InpaintingOptions & { readonly out: string; readonly log: (line: string) => void },
): Promise<E.Either<ExperimentError, InpaintingResult>> => {
  const m = Math.min(o.digits, test.count);
  const k = o.completions;
  const originals = imageBatch(test, range_(m));
  const mask = maskTensor(o.mask, test.rows, test.cols);
  const x = imagesTensor(drawn.samples);
  try {
    const truth = labelsAt(test, range_(m));
    const originalLabels = classifier.predictInBatches(judge.config, judge.params, originals);
    const completionLabels = classifier.predictInBatches(judge.config, judge.params, x);
    const repeat = (a: ArrayLike<number>): Int32Array => Int32Array.from({ length: m * k }, (_, b) => a[Math.floor(b / k)]!);
    const figure = tf.tidy(() => {
      const masked = maskedForDisplay(originals, mask);
      const rows = Array.from({ length: m }, (_, d) => tf.concat([tf.slice(originals, d, 1), tf.slice(masked, d, 1), tf.slice(x, d * k, k)], 0));
      return tf.concat(rows, 0);
    });
    const grid = png.imageGrid(figure, k + 2, { scale: 2 });
    figure.dispose();
    if (E.isLeft(grid)) return fail(`inpainting.png: ${grid.left.message}`);
    const file = 'inpainting.png';
    const w = await png.writePng(path.join(o.out, file), grid.right)();
    if (E.isLeft(w)) return fail(`${file}: ${report.renderIoError(w.left)}`);
    const result: InpaintingResult = {
      mask: o.mask,
      digits: m,
      completions: k,
      sampler: `pc-${o.sampler.steps}`,
      agreement: classifier.accuracy(completionLabels, repeat(originalLabels)),
      trueLabelAgreement: classifier.accuracy(completionLabels, repeat(truth)),
      originalAccuracy: classifier.accuracy(originalLabels, truth),
      nfe: drawn.nfe,
      seconds: drawn.seconds,
      png: file,
    };
    o.log(
      `inpainting (${o.mask} half): ${m} digits × ${k} completions; the clean classifier labels ${(100 * result.agreement).toFixed(1)}% like the original ` +
        `(${(100 * result.trueLabelAgreement).toFixed(1)}% with its true label), ${drawn.seconds.toFixed(1)} s → ${path.join(o.out, file)}`,
    );
    return E.right(result);
  } finally {
    tf.dispose([originals, mask, x]);
  }
};
