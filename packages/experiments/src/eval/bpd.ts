/**
 * Test-set bits/dim through the probability-flow ODE (Song et al., ICLR 2021, §4.3, App. D.2):
 *
 *   x̃ = (255 x + u) / 256,  u ~ U(0, 1)^D                          (uniform dequantisation; `--bpd-cells centred`:
 *                                                                     x̃ = x + (u − ½)/255, cells centred on the levels)
 *   y = lo + (hi − lo) x̃                                             (the model's data range)
 *   log p_ε(y) = log p_T(y(T)) + ∫_ε^T ∇·F(y(t), t) dt              (PF-ODE, RK45 at rtol = atol = --ode-tol)
 *   ∇·F ≈ vᵀ (∂F/∂x) v,  v Rademacher or Gaussian, fixed per image   (Skilling–Hutchinson; one score evaluation a stage)
 *   bpd = −log p(y) / (D ln 2) − log₂(w (hi − lo))                   (cell width w = 1/256 or 1/255; solvers' `imageBitsPerDim`)
 *
 * reported as the mean over images ± its standard error s/√n (which covers the image-to-image spread, the
 * dequantisation noise and the Hutchinson noise together). p_ε is a density for every ε > 0, so by Jensen's
 * inequality E_u[−log₂ p_ε(x̃)]/D − log₂ w bounds the model's discrete negative log-likelihood for any ε (`--bpd-eps`).
 *
 * @module eval/bpd
 */
import * as E from 'fp-ts/Either';
import { random, macrotask, type Key } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, meanAndStandardError } from '@score-sde/sde-math';
import { type Dequantization, imageBitsPerDim, countingScore } from '@score-sde/solvers';
import { type MnistData, imageBatch } from '@score-sde/models';
import { progress } from '../lib';
import { type ExperimentError, type ItemRange, fail, itemKeys } from '../pipeline';
import { range } from './common';
import type { BpdOptions } from './options';

/** The bits/dim figure. @category model */
export interface BpdResult {
  readonly images: number;
  readonly batch: number;
  readonly estimator: 'rademacher' | 'gaussian';
  readonly tol: number;
  /** Start time ε of the solve. */
  readonly eps: number;
  /** The dequantisation cells. */
  readonly cells: Dequantization;
  readonly mean: number;
  readonly standardError: number;
  readonly min: number;
  readonly max: number;
  /** bits/dim of each image, in test-set order. */
  readonly perImage: ReadonlyArray<number>;
  /** Score evaluations per likelihood solve (one batch), averaged over batches. */
  readonly nfePerSolve: number;
  readonly seconds: number;
  /**
   * `label` for a class-conditional model: each figure is bpd(x | y) − log₂ π_y / D with y the image's own label, an
   * upper bound of the bits/dim of the model's p(x) = Σ_y π_y p(x | y) (absent: the model's own p(x)).
   */
  readonly given?: 'label';
}

/** The bits/dim of a range of test images and the work they took (what a shard computes). @category model */
export interface BpdPart {
  readonly perImage: ReadonlyArray<number>;
  /** Σ over solves of their score evaluations, and the number of solves. */
  readonly nfeSum: number;
  readonly solves: number;
  readonly seconds: number;
}

/** The number of test images the part measures. @category bits/dim */
export const bpdCount = (test: MnistData, o: BpdOptions): number => Math.min(o.images, test.count);

/**
 * The label term of the mixture bound: p(x) = Σ_y π_y p(x | y) ≥ π_y p(x | y) for every y, so
 * bpd(x) ≤ bpd(x | y) − log₂(π_y / Σπ) / D, D the dimension (784 for MNIST).
 * @category bits/dim
 */
export const labelBitsPerDim = (prior: ReadonlyArray<number>, y: number, dimension: number): number => -Math.log2(prior[y]! / prior.reduce((a, b) => a + b, 0)) / dimension;

/**
 * bits/dim of test images `range` (see the module comment), in batches of `batch` from range.start, with a progress
 * bar whose extra field shows the score evaluations of the running solve. Image i dequantises with
 * foldIn(foldIn(key, i), 0) and probes with foldIn(key, i). With `labelled` (a class-conditional model) image i is
 * solved on the score given its own label y_i and scores bpd(x | y_i) + {@link labelBitsPerDim}: an upper bound of the
 * bits/dim of the model's mixture p(x) = Σ_y π_y p(x | y). Left when a solve fails.
 * @category bits/dim
 */
export const bitsPerDimOf = async (
  sde: SDE,
  score: ScoreFn,
  test: MnistData,
  r: ItemRange,
  o: BpdOptions & {
    readonly key: Key;
    readonly quiet: boolean;
    readonly dataRange: readonly [number, number];
    readonly labelled?: { readonly scoreGiven: (labels: ArrayLike<number>) => ScoreFn; readonly prior: ReadonlyArray<number> };
  },
): Promise<E.Either<ExperimentError, BpdPart>> => {
  const started = Date.now();
  const perImage: number[] = [];
  let nfeSum = 0;
  let solves = 0;
  const bar = progress.withProgress('bits/dim', r.end - r.start, { quiet: o.quiet });
  try {
    for (let start = r.start; start < r.end; start += o.batch) {
      const size = Math.min(o.batch, r.end - start);
      const keys = itemKeys(o.key, start, size);
      const indices = range(size).map((i) => start + i);
      const x = imageBatch(test, indices);
      const labels = o.labelled === undefined ? undefined : indices.map((i) => test.labels[i]!);
      const counted = countingScore(o.labelled === undefined || labels === undefined ? score : o.labelled.scoreGiven(labels), (calls) => {
        if (calls % 10 === 0) bar.tick(0, { nfe: calls });
      });
      let solved: ReturnType<typeof imageBitsPerDim>;
      try {
        solved = imageBitsPerDim(sde, counted.score, x, {
          estimator: o.estimator,
          keys,
          dequantizeKeys: keys.map((k) => random.foldIn(k, 0)),
          range: o.dataRange,
          rtol: o.tol,
          atol: o.tol,
          eps: o.eps,
          dequantization: o.cells,
        });
      } finally {
        x.dispose();
      }
      if (E.isLeft(solved)) return fail(`bits/dim of test images ${start}…${start + size - 1}: the ODE solve failed (${solved.left._tag} at t = ${solved.left.t}); raise --ode-tol`);
      const dimension = test.rows * test.cols;
      perImage.push(...solved.right.bpd.map((b, i) => (o.labelled === undefined || labels === undefined ? b : b + labelBitsPerDim(o.labelled.prior, labels[i]!, dimension))));
      nfeSum += solved.right.nfe;
      solves += 1;
      bar.tick(size, { nfe: solved.right.nfe });
      await macrotask();
    }
  } finally {
    bar.stop();
  }
  return E.right({ perImage, nfeSum, solves, seconds: (Date.now() - started) / 1000 });
};

/** The figure of the parts of all test images, in order: mean ± standard error over images, range, NFE per solve. @category bits/dim */
export const bpdResult = (parts: ReadonlyArray<BpdPart>, o: BpdOptions, given?: 'label'): BpdResult => {
  const perImage = parts.flatMap((p) => p.perImage);
  const solves = parts.reduce((a, p) => a + p.solves, 0);
  const { mean, standardError } = meanAndStandardError(perImage);
  return {
    images: perImage.length,
    batch: o.batch,
    estimator: o.estimator,
    tol: o.tol,
    eps: o.eps,
    cells: o.cells,
    mean,
    standardError,
    min: Math.min(...perImage),
    max: Math.max(...perImage),
    perImage,
    nfePerSolve: parts.reduce((a, p) => a + p.nfeSum, 0) / solves,
    seconds: parts.reduce((a, p) => a + p.seconds, 0),
    ...(given !== undefined ? { given } : {}),
  };
};
