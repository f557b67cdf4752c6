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
import { tf, random, macrotask, type Key } from '@score-sde/tensor-fp';
import { type SDE, perturb } from '@score-sde/sde-math';
import { classifier, type MnistData, type Params, batchesPerEpoch, epochOrder, imageBatch } from '@score-sde/models';
import { progress } from '../lib';
import { type ExperimentError, fail, itemKeys } from '../pipeline';
import { range } from './common';
import type { ClassifierOptions } from './options';
import { type ClassifierManifest, type ClassifierTraining, type NoisyAccuracy, holdsClassifier, loadClassifier, saveClassifier, renderStoreError, disposeParams } from './store';

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
  readonly manifest: ClassifierManifest;
  /** A name that identifies the network: architecture, and the first 12 hex digits of its weights' sha256. */
  readonly name: string;
}

/** Releases a classifier's variables. @category model */
export const disposeClassifier = (h: ClassifierHandle): void => disposeParams(h.params);

/**
 * `mnist-convnet[32,64,128]→128 sha256:0123456789ab`: architecture, feature width and a weights fingerprint, so
 * FIDs computed with different extractors are never confused.
 * @category model
 */
export const classifierName = (m: ClassifierManifest): string =>
  `mnist-convnet${m.config.noiseConditional ? '-t' : ''}[${m.config.channels.join(',')}]→${m.config.featureDim} sha256:${m.params.sha256.slice(0, 12)}`;

// -------------------------------------------------------------------------------------
// evaluation
// -------------------------------------------------------------------------------------

/** argmax_y logits(x, t) of every image of x [N, H, W, 1], in batches (t only for a noise-conditional classifier). @category evaluation */
export const predictInBatches = (config: classifier.ClassifierConfig, params: Params, x: tf.Tensor, time?: number, batchSize = 256): Int32Array => {
  const n = x.shape[0]!;
  const out = new Int32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const p = tf.tidy(() => tf.argMax(classifier.classifierLogits(config, params)(tf.slice(x, start, size), time), 1));
    out.set(p.dataSync() as Int32Array, start);
    p.dispose();
  }
  return out;
};

/** Accuracy of a classifier on the first n images of a split (at time t for a noise-conditional one, unperturbed). @category evaluation */
export const accuracyOn = (config: classifier.ClassifierConfig, params: Params, data: MnistData, n = data.count, time?: number): number => {
  const x = imageBatch(data, range(Math.min(n, data.count)));
  const pred = predictInBatches(config, params, x, time);
  x.dispose();
  return classifier.accuracy(pred, data.labels.subarray(0, pred.length));
};

/** Times at which a noise-conditional classifier's accuracy is reported, as fractions of T. @category evaluation */
export const NOISY_ACCURACY_TIMES = [0.01, 0.1, 0.25, 0.5, 1] as const;

/**
 * Accuracy of a noise-conditional classifier on the first n test images perturbed to each time t:
 * x_t = m(t) x₀ + s(t) z, image i's noise from foldIn(key, i).
 * @category evaluation
 */
export const noisyAccuracies = (config: classifier.ClassifierConfig, params: Params, sde: SDE, data: MnistData, n: number, key: Key): ReadonlyArray<NoisyAccuracy> => {
  const count = Math.min(n, data.count);
  const x0 = imageBatch(data, range(count));
  const out = NOISY_ACCURACY_TIMES.map((fraction, j) => {
    const time = fraction * sde.T;
    const xt = tf.tidy(() => perturb(sde)(x0, new Float32Array(count).fill(time), random.normalPerSample(itemKeys(random.foldIn(key, j), 0, count), [data.rows, data.cols, 1])).xt);
    const pred = predictInBatches(config, params, xt, time);
    xt.dispose();
    return { t: time, accuracy: classifier.accuracy(pred, data.labels.subarray(0, count)) };
  });
  x0.dispose();
  return out;
};

// -------------------------------------------------------------------------------------
// training
// -------------------------------------------------------------------------------------

/** Options of {@link trainOnMnist}. @category training */
export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  readonly lr: number;
  /** Data-order key (epoch e uses permutation(foldIn(key, e))). */
  readonly key: Key;
  /** For a noise-conditional classifier: the SDE and key of the perturbations. */
  readonly noise?: classifier.NoiseSchedule;
  readonly label: string;
  readonly quiet: boolean;
}

/**
 * Trains the classifier's variables in place over `epochs` shuffled passes of the data, one Adam step per
 * mini-batch with the learning rate decayed from `lr` to 0 by a cosine over all the steps, with a progress bar per epoch; returns the steps taken, the mean loss of the last epoch and the
 * seconds spent.
 * @category training
 */
export const trainOnMnist = async (
  config: classifier.ClassifierConfig,
  params: Params,
  data: MnistData,
  o: TrainOptions,
): Promise<{ readonly steps: number; readonly finalLoss: number; readonly seconds: number }> => {
  const started = Date.now();
  const perEpoch = batchesPerEpoch(data.count, o.batchSize);
  const schedule = { lr: o.lr, decaySteps: o.epochs * perEpoch };
  const trainer = classifier.classifierTrainer(config, params, o.noise !== undefined ? { ...schedule, noise: o.noise } : schedule);
  let step = 0;
  let finalLoss = NaN;
  try {
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      const order = epochOrder(o.key, data.count, epoch);
      const bar = progress.withProgress(`${o.label} epoch ${epoch + 1}/${o.epochs}`, perEpoch, { quiet: o.quiet });
      let sum = 0;
      try {
        for (let j = 0; j < perEpoch; j++) {
          const idx = order.subarray(j * o.batchSize, Math.min((j + 1) * o.batchSize, data.count));
          const x = imageBatch(data, idx);
          const loss = trainer.step({ x, labels: Int32Array.from(idx, (i) => data.labels[i]!) }, step);
          x.dispose();
          step += 1;
          sum += loss;
          bar.tick(1, { loss: (sum / (j + 1)).toPrecision(4) });
          if (j % 8 === 7) await macrotask();
        }
      } finally {
        bar.stop();
      }
      finalLoss = sum / perEpoch;
    }
  } finally {
    trainer.dispose();
  }
  return { steps: step, finalLoss, seconds: (Date.now() - started) / 1000 };
};

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
  if (await holdsClassifier(o.dir)) {
    const loaded = await loadClassifier(o.dir);
    if (E.isLeft(loaded)) return fail(`${o.flag}: ${renderStoreError(loaded.left)}`);
    const { manifest, params } = loaded.right;
    const problem =
      manifest.config.noiseConditional !== noisy
        ? `${o.dir} holds a ${manifest.config.noiseConditional ? 'noise-conditional' : 'clean'} classifier, a ${what} is needed`
        : noisy && !sameSde(manifest.training.sde, o.sde)
          ? `${o.dir} holds a classifier trained under the SDE ${JSON.stringify(manifest.training.sde)}, but the checkpoint's is ${JSON.stringify(o.sde)}; give another directory`
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
  let trained: Awaited<ReturnType<typeof trainOnMnist>>;
  try {
    trained = await trainOnMnist(config, params, o.train, {
      epochs,
      batchSize: f.batchSize,
      lr: f.lr,
      key: dataKey,
      ...(noisy ? { noise: { sde: o.sde, key: noiseKey, eps } } : {}),
      label: noisy ? 'noisy classifier' : 'classifier',
      quiet: o.quiet,
    });
  } catch (e) {
    disposeParams(params);
    return fail(`training the ${what}: ${(e as Error).message}`);
  }
  if (!Number.isFinite(trained.finalLoss)) {
    disposeParams(params);
    return fail(`training the ${what}: the loss became ${trained.finalLoss}; lower --classifier-lr`);
  }
  const testAccuracy = accuracyOn(config, params, o.test, o.test.count, noisy ? eps : undefined);
  const noisyAccuracy = noisy ? noisyAccuracies(config, params, o.sde, o.test, 2000, evalKey) : undefined;
  const training: ClassifierTraining = {
    steps: trained.steps,
    epochs,
    batchSize: f.batchSize,
    lr: f.lr,
    trainImages: o.train.count,
    seed: o.seed,
    seconds: trained.seconds,
    finalLoss: trained.finalLoss,
    testImages: o.test.count,
    testAccuracy,
    ...(noisy ? { sde: o.sde, eps, noisyAccuracy: [...noisyAccuracy!] } : {}),
  };
  const saved = await saveClassifier(o.dir, config, params, training);
  if (E.isLeft(saved)) {
    disposeParams(params);
    return fail(`${o.flag}: ${renderStoreError(saved.left)}`);
  }
  const h: ClassifierHandle = { kind: o.kind, dir: path.resolve(o.dir), reused: false, config, params, manifest: saved.right.manifest, name: classifierName(saved.right.manifest) };
  o.log(
    `${what}: ${h.name}, test accuracy ${(100 * testAccuracy).toFixed(2)}% on ${o.test.count} images after ${trained.steps} steps (${trained.seconds.toFixed(0)} s)` +
      (noisyAccuracy !== undefined ? `; on perturbed test images ${noisyAccuracy.map((a) => `t=${a.t}: ${(100 * a.accuracy).toFixed(1)}%`).join(', ')}` : '') +
      ` → ${h.dir}`,
  );
  if (!noisy && testAccuracy < 0.99) o.log(`warning: the clean classifier's test accuracy ${(100 * testAccuracy).toFixed(2)}% is below the 99% target; raise --classifier-epochs`);
  return E.right(h);
};
