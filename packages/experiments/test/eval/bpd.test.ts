/**
 * Bits/dim of a class-conditional model: the mixture bound bpd(x) ≤ bpd(x | y) − log₂ π_y / D, each image solved
 * given its own label.
 */
import * as E from 'fp-ts/Either';
import { initBackend } from '@score-sde/tensor-fp';
import { ve, exactScore, gaussian, type ScoreFn } from '@score-sde/sde-math';
import { loadMnist, type MnistData } from '@score-sde/models';
import { bitsPerDimOf, labelBitsPerDim, bpdResult } from '../../src/eval/bpd';

let test3: MnistData;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  const t = await loadMnist({ split: 'test', subset: 3 })();
  if (E.isLeft(t)) throw new Error('MNIST did not load');
  test3 = t.right;
});

describe('bits/dim of a class-conditional model', () => {
  const sde = ve();
  const D = 784;
  // class y: a Gaussian of mean 0.1 + 0.05 y and std 0.3 in every pixel (its exact score: sde-math's mixtures)
  const classScore = (y: number): ScoreFn => exactScore(sde, gaussian(new Array<number>(D).fill(0.1 + 0.05 * y), new Array<number>(D).fill(0.3)));
  const prior = [3, 1, 1, 1, 1, 1, 1, 1, 1, 1];
  const o = { images: 3, batch: 1, estimator: 'rademacher', tol: 1e-3, eps: 1e-3, cells: 'score-sde', key: [7, 11] as const, quiet: true, dataRange: [0, 1] } as const;

  test('the label term is −log₂(π_y / Σπ) / D: log₂ 10 / 784 for a uniform prior, and the bound p(x) = Σ π_y p(x | y) ≥ π_y p(x | y) in bits', () => {
    expect(labelBitsPerDim(new Array<number>(10).fill(1), 4, D)).toBeCloseTo(Math.log2(10) / D, 15);
    expect(labelBitsPerDim(prior, 0, D)).toBeCloseTo(-Math.log2(3 / 12) / D, 15);
  });

  test('each image is solved on the score given its own label and scores bpd(x | y) − log₂ π_y / D, exactly the solve given that label plus the term', async () => {
    const labelled = {
      scoreGiven: (labels: ArrayLike<number>): ScoreFn => {
        expect(labels.length).toBe(1);
        return classScore(labels[0]!);
      },
      prior,
    };
    const got = await bitsPerDimOf(sde, classScore(9), test3, { start: 0, end: 3 }, { ...o, key: [...o.key], labelled });
    if (E.isLeft(got)) throw new Error(got.left.message);
    for (let i = 0; i < 3; i++) {
      const y = test3.labels[i]!;
      // the same image, the same keys (image i probes and dequantises by its index), on its class's score
      const alone = await bitsPerDimOf(sde, classScore(y), test3, { start: i, end: i + 1 }, { ...o, key: [...o.key] });
      if (E.isLeft(alone)) throw new Error(alone.left.message);
      expect(got.right.perImage[i]).toBe(alone.right.perImage[0]! + labelBitsPerDim(prior, y, D));
    }
    expect(bpdResult([got.right], o, 'label').given).toBe('label');
    expect('given' in bpdResult([got.right], o)).toBe(false);
  });
});
