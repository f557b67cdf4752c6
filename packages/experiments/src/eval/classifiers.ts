/**
 * The two MNIST classifiers of the evaluation, trained here or reused from disk:
 *
 * - the clean convnet, whose penultimate features are the FID feature space and whose labels score the
 *   class-conditional samples and inpaintings (target ≥ 99 % test accuracy);
 * - the noise-conditional convnet p_t(y | x), trained on x_t = m(t) x₀ + s(t) z with t ~ U(ε, T) under the
 *   checkpoint's SDE (Song et al., ICLR 2021, §5), whose gradient ∇ₓ log p_t(y | x) guides class-conditional
 *   sampling.
 *
 * Both train with Adam (Kingma & Ba 2015), cosine learning-rate decay, on shuffled mini-batches: epoch e visits the training images in the
 * order permutation(foldIn(key, e)).
 *
 * @module eval/classifiers
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { random, type Key } from '@score-sde/tensor-fp';
import type { SDE } from '@score-sde/sde-math';
import { classifier, type MnistData, type Params, type DataRange, UNIT_RANGE, sameRange, batchesPerEpoch, renderStoreError } from '@score-sde/models';
import { progress } from '../lib';
import { type ExperimentError, fail } from '../pipeline';
import type { ClassifierOptions } from './options';

const { classifierName, disposeParams } = classifier;

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** Which classifier: the clean feature extractor or the noise-conditional guide. @category model */
export type ClassifierKind = 'clean' | 'noisy';

/** A classifier ready to use: where it lives, whether it was reused, its config, variables and manifest. @category model */
export interface ClassifierHandle {
  readonly kind: ClassifierKind;
  readonly dir: string;
  readonly reused: boolean;
  readonly config: classifier.ClassifierConfig;
  readonly params: Params;
  readonly manifest: classifier.ClassifierManifest;
  /** A name that identifies the network: architecture, and the first 12 hex digits of its weights' sha256. */
  readonly name: string;
}

/** Releases a classifier's variables. @category model */
export const disposeClassifier = (h: ClassifierHandle): void => disposeParams(h.params);

// -------------------------------------------------------------------------------------
// obtaining
// -------------------------------------------------------------------------------------

/** What obtaining a classifier needs. @category obtaining */
export interface ObtainOptions {
  readonly kind: ClassifierKind;
  /** Where the classifier is read from, or trained into when absent. */
  readonly dir: string;
  /** The flag that names `dir`, for messages. */
  readonly flag: string;
  /** The checkpoint's SDE (the noise-conditional classifier must have been trained under it). */
  readonly sde: SDE;
  /** The score model's data range (a noise-conditional classifier sees its perturbed images in it). */
  readonly dataRange: DataRange;
  readonly train: MnistData;
  readonly test: MnistData;
  readonly options: ClassifierOptions;
  /** The run's seed, recorded in the manifest. */
  readonly seed: number;
  readonly quiet: boolean;
  readonly key: Key;
  readonly log: (line: string) => void;
}

const sameSde = (a: SDE | undefined, b: SDE): boolean => a !== undefined && JSON.stringify(a) === JSON.stringify(b);

/**
 * The classifier in `dir` when it holds one of the right kind (and, for the noise-conditional one, trained
 * under the checkpoint's SDE); otherwise a new one trained on the training (sub)set, evaluated on the test
 * (sub)set and saved into `dir`. A directory holding the wrong kind, or a guide for another SDE, is an error
 * (never overwritten).
 * @category obtaining
 */
export const obtainClassifier = async (o: ObtainOptions): Promise<E.Either<ExperimentError, ClassifierHandle>> => {
  const noisy = o.kind === 'noisy';
  const what = noisy ? 'noise-conditional classifier' : 'clean classifier';
  if (await classifier.holdsClassifier(o.dir)) {
    const loaded = await classifier.loadClassifier(o.dir);
    if (E.isLeft(loaded)) return fail(`${o.flag}: ${renderStoreError(loaded.left)}`);
    const { manifest, params } = loaded.right;
    const problem =
      manifest.config.noiseConditional !== noisy
        ? `${o.dir} holds a ${manifest.config.noiseConditional ? 'noise-conditional' : 'clean'} classifier, a ${what} is needed`
        : noisy && !sameSde(manifest.training.sde, o.sde)
          ? `${o.dir} holds a classifier trained under the SDE ${JSON.stringify(manifest.training.sde)}, but the checkpoint's is ${JSON.stringify(o.sde)}; give another directory`
          : noisy && !sameRange(manifest.training.dataRange, o.dataRange)
            ? `${o.dir} holds a classifier trained on data in ${JSON.stringify(manifest.training.dataRange ?? UNIT_RANGE)}, but the checkpoint's data range is ${JSON.stringify(o.dataRange)}; give another directory`
            : undefined;
    if (problem !== undefined) {
      disposeParams(params);
      return fail(`${o.flag}: ${problem}`);
    }
    const h: ClassifierHandle = { kind: o.kind, dir: loaded.right.dir, reused: true, config: manifest.config, params, manifest, name: classifierName(manifest) };
    o.log(`${what}: reusing ${h.name} from ${h.dir} (test accuracy ${(100 * manifest.training.testAccuracy).toFixed(2)}%)`);
    return E.right(h);
  }

  const f = o.options;
  const config = classifier.classifierConfig({
    imageSize: o.train.rows,
    channels: [f.channels[0]!, f.channels[1]!, f.channels[2]!],
    featureDim: f.featureDim,
    noiseConditional: noisy,
  });
  const [initKey, dataKey, noiseKey, evalKey] = [0, 1, 2, 3].map((i) => random.foldIn(o.key, i)) as [Key, Key, Key, Key];
  const params = classifier.initClassifier(config, initKey);
  const epochs = noisy ? f.noisyEpochs : f.epochs;
  const eps = 1e-5;
  o.log(
    `${what}: training ${classifier.classifierParameterCount(config).toLocaleString('en')} parameters on ${o.train.count} images, ${epochs} epochs × ${batchesPerEpoch(o.train.count, f.batchSize)} steps of batch ${f.batchSize}` +
      (noisy ? ` (perturbed under the checkpoint's ${o.sde.kind} SDE, t ~ U(${eps}, ${o.sde.T}))` : ''),
  );
  let trained: classifier.ClassifierLoopResult;
  const started = Date.now();
  let bar: progress.Progress | undefined;
  const label = noisy ? 'noisy classifier' : 'classifier';
  try {
    trained = await classifier.trainClassifier(config, params, o.train, {
      epochs,
      batchSize: f.batchSize,
      lr: f.lr,
      key: dataKey,
      ...(noisy ? { noise: { sde: o.sde, key: noiseKey, eps, dataRange: o.dataRange } } : {}),
      onEpochStart: (e) => {
        bar?.stop();
        bar = progress.withProgress(`${label} epoch ${e.epoch + 1}/${epochs}`, e.steps, { quiet: o.quiet });
      },
      onStep: (st) => bar?.tick(1, { loss: st.epochMeanLoss.toPrecision(4) }),
    });
  } catch (e) {
    disposeParams(params);
    return fail(`training the ${what}: ${(e as Error).message}`);
  } finally {
    bar?.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  if (!Number.isFinite(trained.finalLoss)) {
    disposeParams(params);
    return fail(`training the ${what}: the loss became ${trained.finalLoss}; lower --classifier-lr`);
  }
  const testAccuracy = classifier.accuracyOn(config, params, o.test, o.test.count, noisy ? eps : undefined, noisy ? o.dataRange : UNIT_RANGE);
  const noisyAccuracy = noisy ? classifier.noisyAccuracies(config, params, o.sde, o.test, 2000, evalKey, o.dataRange) : undefined;
  const training: classifier.ClassifierTraining = {
    steps: trained.steps,
    epochs,
    batchSize: f.batchSize,
    lr: f.lr,
    trainImages: o.train.count,
    seed: o.seed,
    seconds,
    finalLoss: trained.finalLoss,
    testImages: o.test.count,
    testAccuracy,
    ...(noisy ? { sde: o.sde, eps, noisyAccuracy: [...noisyAccuracy!], ...(sameRange(o.dataRange, UNIT_RANGE) ? {} : { dataRange: o.dataRange }) } : {}),
  };
  const saved = await classifier.saveClassifier(o.dir, config, params, training);
  if (E.isLeft(saved)) {
    disposeParams(params);
    return fail(`${o.flag}: ${renderStoreError(saved.left)}`);
  }
  const h: ClassifierHandle = { kind: o.kind, dir: path.resolve(o.dir), reused: false, config, params, manifest: saved.right.manifest, name: classifierName(saved.right.manifest) };
  o.log(
    `${what}: ${h.name}, test accuracy ${(100 * testAccuracy).toFixed(2)}% on ${o.test.count} images after ${trained.steps} steps (${seconds.toFixed(0)} s)` +
      (noisyAccuracy !== undefined ? `; on perturbed test images ${noisyAccuracy.map((a) => `t=${a.t}: ${(100 * a.accuracy).toFixed(1)}%`).join(', ')}` : '') +
      ` → ${h.dir}`,
  );
  if (!noisy && testAccuracy < 0.99) o.log(`warning: the clean classifier's test accuracy ${(100 * testAccuracy).toFixed(2)}% is below the 99% target; raise --classifier-epochs`);
  return E.right(h);
};
