/**
 * Test-set bits/dim through the probability-flow ODE (Song et al., ICLR 2021, §4.3, App. D.2):
 *
 *   x̃ = (255 x + u) / 256,  u ~ U(0, 1)^D                          (uniform dequantisation)
 *   log p_ε(x̃) = log p_T(x(T)) + ∫_ε^T ∇·F(x(t), t) dt              (PF-ODE, RK45 at rtol = atol = --ode-tol)
 *   ∇·F ≈ vᵀ (∂F/∂x) v,  v Rademacher or Gaussian, fixed per image   (Skilling–Hutchinson)
 *   bpd = −log p(x̃) / (D ln 2) + 8                                    (data in [0, 1], 256 levels)
 *
 * reported as the mean over images ± its standard error s/√n (which covers the image-to-image spread, the
 * dequantisation noise and the Hutchinson noise together). p_ε is a density for every ε > 0, so by Jensen's
 * inequality E_u[−log₂ p_ε(x̃)]/D + 8 bounds the model's discrete negative log-likelihood for any ε (`--bpd-eps`).
 *
 * @module eval/bpd
 */
import * as E from 'fp-ts/Either';
import { random, type Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { logLikelihood, bitsPerDim, uniformDequantize } from '@score-sde/solvers';
import { type MnistData, imageBatch } from '@score-sde/models';
import { progress } from '../lib';
import { type EvalError, fail, itemKeys, macrotask, meanAndStandardError, range } from './common';

/** The bits/dim figure. @category model */
export interface BpdResult {
  readonly images: number;
  readonly batch: number;
  readonly estimator: 'rademacher' | 'gaussian';
  readonly tol: number;
  /** Start time ε of the solve. */
  readonly eps: number;
  readonly mean: number;
  readonly standardError: number;
  readonly min: number;
  readonly max: number;
  /** bits/dim of each image, in test-set order. */
  readonly perImage: ReadonlyArray<number>;
  /** Score evaluations per likelihood solve (one batch), averaged over batches. */
  readonly nfePerSolve: number;
  readonly seconds: number;
}

/** Options of {@link testBitsPerDim}. @category model */
export interface BpdOptions {
  readonly images: number;
  readonly batch: number;
  readonly estimator: 'rademacher' | 'gaussian';
  readonly tol: number;
  readonly eps: number;
  /** Image i dequantises with foldIn(foldIn(key, i), 0) and probes with foldIn(key, i). */
  readonly key: Key;
  readonly quiet: boolean;
}

/**
 * bits/dim of the first `images` test images (see the module comment), in batches, with a progress bar whose
 * extra field shows the score evaluations of the running solve. Left when a solve fails.
 * @category bits/dim
 */
export const testBitsPerDim = async (sde: SDE, score: ScoreFn, test: MnistData, o: BpdOptions): Promise<E.Either<EvalError, BpdResult>> => {
  const n = Math.min(o.images, test.count);
  const D = test.rows * test.cols;
  const started = Date.now();
  const perImage: number[] = [];
  let nfeSum = 0;
  let solves = 0;
  const bar = progress.withProgress('bits/dim', n, { quiet: o.quiet });
  try {
    for (let start = 0; start < n; start += o.batch) {
      const size = Math.min(o.batch, n - start);
      const keys = itemKeys(o.key, start, size);
      const x = imageBatch(test, range(size).map((i) => start + i));
      const xd = uniformDequantize(
        keys.map((k) => random.foldIn(k, 0)),
        x,
      );
      x.dispose();
      let calls = 0;
      const counted: ScoreFn = (xx, t) => {
        calls += 1;
        if (calls % 10 === 0) bar.tick(0, { nfe: calls });
        return score(xx, t);
      };
      let r: ReturnType<typeof logLikelihood>;
      try {
        r = logLikelihood(sde, counted, xd, { estimator: o.estimator, keys, rtol: o.tol, atol: o.tol, eps: o.eps });
      } finally {
        xd.dispose();
      }
      if (E.isLeft(r)) return fail(`bits/dim of test images ${start}…${start + size - 1}: the ODE solve failed (${r.left._tag} at t = ${r.left.t}); raise --ode-tol`);
      for (const lp of r.right.logp) perImage.push(bitsPerDim(lp, D));
      nfeSum += r.right.nfe;
      solves += 1;
      bar.tick(size, { nfe: r.right.nfe });
      await macrotask();
    }
  } finally {
    bar.stop();
  }
  const { mean, standardError } = meanAndStandardError(perImage);
  return E.right({
    images: n,
    batch: o.batch,
    estimator: o.estimator,
    tol: o.tol,
    eps: o.eps,
    mean,
    standardError,
    min: Math.min(...perImage),
    max: Math.max(...perImage),
    perImage,
    nfePerSolve: nfeSum / solves,
    seconds: (Date.now() - started) / 1000,
  });
};
