/**
 * FID in the clean classifier's feature space (Heusel et al., NeurIPS 2017), in float64:
 *
 *   FID = ‖μ_g − μ_r‖² + tr Σ_g + tr Σ_r − 2 tr (Σ_g^{1/2} Σ_r Σ_g^{1/2})^{1/2},
 *
 * μ, Σ the mean and unbiased covariance of the penultimate features of the generated images (g) and of the
 * MNIST test images (r); the matrix square roots come from a symmetric (Jacobi) eigendecomposition
 * (`models/fid`). FID is biased upwards at small n, so it is only comparable at equal n; the real-vs-real floor
 * (n training images against the same test reference) is the value a perfect sampler would get at that n.
 *
 * @module eval/fid
 */
import * as E from 'fp-ts/Either';
import { tf, random, type Key } from '@score-sde/tensor-fp';
import { fid, classifier, type Params, type MnistData, imageBatch } from '@score-sde/models';
import { type ExperimentError, fail } from '../pipeline';
import { strokes } from '../lib';

/** FID against the reference and its two terms. @category model */
export interface FidResult {
  readonly n: number;
  readonly fid: number;
  /** ‖μ_g − μ_r‖² */
  readonly meanTerm: number;
  /** tr Σ_g + tr Σ_r − 2 tr (Σ_g^{1/2} Σ_r Σ_g^{1/2})^{1/2} */
  readonly covTerm: number;
  /** FID of the first k images at the nested counts k of models' `fid.prefixCounts` (n included; absent when n is too small). */
  readonly fidAt?: ReadonlyArray<fid.FidAtN>;
  /** FID extrapolated to n → ∞ through `fidAt` (models' `fid.extrapolateFid`; absent with `fidAt`). */
  readonly fidInfinity?: number;
}

/**
 * What the clean classifier says about a set of images: class histogram, mean max-probability, the confident-class
 * rate (max p ≥ 0.9), histogram entropy (bits).
 * @category model
 */
export interface ClassRecord {
  readonly histogram: ReadonlyArray<number>;
  readonly meanMaxProb: number;
  readonly confidentRate: number;
  readonly entropyBits: number;
}

/** Gaussian statistics (float64 mean and unbiased covariance) of the penultimate features of x [N, 28, 28, 1]. @category statistics */
export const featureStats = (config: classifier.ClassifierConfig, params: Params, x: tf.Tensor): E.Either<fid.FidError, fid.Stats> =>
  fid.gaussianStats(classifier.featuresInBatches(config, params, x), x.shape[0]!, config.featureDim);

/** FID of feature statistics against reference statistics, with its terms. @category distance */
export const fidOfStats = (generated: fid.Stats, reference: fid.Stats): E.Either<fid.FidError, FidResult> =>
  E.map((r: fid.FrechetTerms): FidResult => ({ n: generated.n, fid: r.fid, meanTerm: r.meanTerm, covTerm: r.covTerm }))(fid.frechetTerms(generated, reference));

/**
 * FID of images x against reference statistics, in the classifier's feature space; also at the nested counts of
 * `fid.prefixCounts` (the first k images) and extrapolated from them to n → ∞, FID_k ≈ FID∞ + b/k (`fid.extrapolateFid`).
 * @category distance
 */
export const fidOfImages = (config: classifier.ClassifierConfig, params: Params, x: tf.Tensor, reference: fid.Stats): E.Either<fid.FidError, FidResult> => {
  const n = x.shape[0]!;
  const d = config.featureDim;
  const features = classifier.featuresInBatches(config, params, x);
  const whole = E.chain((s: fid.Stats) => fidOfStats(s, reference))(fid.gaussianStats(features, n, d));
  if (E.isLeft(whole)) return whole;
  const ks = fid.prefixCounts(n, d);
  if (ks.length === 0) return whole;
  const at: fid.FidAtN[] = [];
  for (const k of ks) {
    const r = k === n ? whole : E.chain((s: fid.Stats) => fidOfStats(s, reference))(fid.gaussianStats(features.subarray(0, k * d), k, d));
    if (E.isLeft(r)) return r;
    at.push({ n: k, fid: r.right.fid });
  }
  return E.map((line: fid.FidExtrapolation): FidResult => ({ ...whole.right, fidAt: at, fidInfinity: line.fidInfinity }))(fid.extrapolateFid(at));
};

/** The extrapolation fields of a FID result, both or neither (for records that spread them in). @category distance */
export const extrapolationOf = (r: FidResult): Pick<FidResult, 'fidAt' | 'fidInfinity'> =>
  r.fidAt !== undefined && r.fidInfinity !== undefined ? { fidAt: r.fidAt, fidInfinity: r.fidInfinity } : {};

/** The clean classifier's class histogram, mean max-probability and histogram entropy of x. @category classes */
export const classRecord = (config: classifier.ClassifierConfig, params: Params, x: tf.Tensor): ClassRecord & { readonly predictions: Int32Array } => {
  const s = classifier.classSummary(config, params, x);
  return { histogram: s.histogram, meanMaxProb: s.meanMaxProb, confidentRate: s.confidentRate, entropyBits: s.histogramEntropyBits, predictions: s.predictions };
};

/** The FID reference statistics and the real-vs-real floor at n. @category distance */
export interface FidReference {
  readonly reference: fid.Stats;
  /** n random training images against the reference: what a perfect sampler scores at this n. */
  readonly floor: FidResult;
  readonly floorClasses: ClassRecord;
  /** Stray strokes and grain of the same n real images. */
  readonly floorStrokes: strokes.StrokeRecord;
}

/**
 * The FID reference (features of every image of `test`) and the real-vs-real floor: n training images, a random
 * subset permutation(key)[0 … n), against the same reference, with the clean classifier's verdict on them and their
 * stroke record (lib/strokes).
 * @category distance
 */
export const fidSetup = (judge: { readonly config: classifier.ClassifierConfig; readonly params: Params }, train: MnistData, test: MnistData, n: number, key: Key): E.Either<ExperimentError, FidReference> => {
  const testImages = imageBatch(test, Int32Array.from({ length: test.count }, (_, i) => i));
  const reference = featureStats(judge.config, judge.params, testImages);
  testImages.dispose();
  if (E.isLeft(reference)) return fail(`FID reference (MNIST test): ${reference.left.message}`);
  const nFloor = Math.min(n, train.count);
  if (nFloor < 2) return fail(`the FID floor needs at least 2 training images, got ${train.count}`);
  const realImages = imageBatch(train, random.permutation(key, train.count).subarray(0, nFloor));
  const floor = fidOfImages(judge.config, judge.params, realImages, reference.right);
  const { predictions: _p, ...floorClasses } = classRecord(judge.config, judge.params, realImages);
  const floorStrokes = strokes.strokeRecord(realImages.dataSync() as Float32Array);
  realImages.dispose();
  if (E.isLeft(floor)) return fail(`FID floor: ${floor.left.message}`);
  return E.right({ reference: reference.right, floor: floor.right, floorClasses, floorStrokes });
};
