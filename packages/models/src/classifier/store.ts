/**
 * Classifiers on disk, through the one weights store (weights-store.ts): a directory
 *
 *   manifest.json   format + version, the {@link ClassifierConfig}, how it was trained ({@link ClassifierTraining}:
 *                   steps, data, test accuracy, the SDE of a noise-conditional one), and params.bin's byte length,
 *                   sha256 and tensor list (name, shape) in storage order
 *   params.bin      every parameter (fixed Fourier frequencies included), float32 little-endian, concatenated
 *
 * in a version directory that the directory's CURRENT file names (tensor-files): saving writes a complete new
 * version, fsynced, then replaces CURRENT by a rename, then removes the old version, so the path always holds a
 * loadable classifier; it is read back only after the manifest, the layout, the length and the sha256 are checked.
 *
 * @module classifier/store
 */
import * as nodePath from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { tf, codec } from '@score-sde/tensor-fp';
import { SDE } from '@score-sde/sde-math';
import { type Params, paramsFromValues } from '../params';
import { FileEntry } from '../stored-format';
import { DataRange } from '../data-range';
import type { StoreError, WeightsKind } from '../weights-load';
import { saveWeights, loadWeights, holdsWeights } from '../weights-store';
import { ClassifierConfig, classifierSpec } from './architecture';

// -------------------------------------------------------------------------------------
// manifest
// -------------------------------------------------------------------------------------

/** Current format version. @category model */
export const CLASSIFIER_STORE_VERSION = 1;

/** Accuracy of a noise-conditional classifier on test images perturbed to time t. @category model */
export const NoisyAccuracy = codec.strict({ t: codec.PositiveFinite, accuracy: codec.UnitInterval }, 'NoisyAccuracy');
export type NoisyAccuracy = t.TypeOf<typeof NoisyAccuracy>;

/**
 * How a stored classifier was trained and how good it is. `sde`, `eps` and `noisyAccuracy` are present exactly
 * for a noise-conditional classifier (trained on x_t ~ p_0t(x_t | x_0), t ~ U(eps, T) of that SDE).
 * @category model
 */
export const ClassifierTraining = codec.strictWithOptional(
  {
    steps: codec.NonNegativeInt,
    epochs: codec.PositiveInt,
    batchSize: codec.PositiveInt,
    lr: codec.PositiveFinite,
    trainImages: codec.PositiveInt,
    seed: codec.SafeInt,
    seconds: codec.NonNegativeFinite,
    finalLoss: codec.Finite,
    testImages: codec.PositiveInt,
    /** Clean test accuracy (for a noise-conditional classifier: at its smallest time). */
    testAccuracy: codec.UnitInterval,
  },
  { sde: SDE, eps: codec.PositiveFinite, noisyAccuracy: t.array(NoisyAccuracy), dataRange: DataRange },
  'ClassifierTraining',
);
export type ClassifierTraining = t.TypeOf<typeof ClassifierTraining>;

/** io-ts codec of a classifier's `manifest.json` (unknown keys rejected). @category model */
export const ClassifierManifest = codec.strict(
  {
    format: t.literal('score-sde-ts/classifier'),
    version: t.literal(CLASSIFIER_STORE_VERSION),
    dtype: t.literal('float32'),
    byteOrder: t.literal('little-endian'),
    config: ClassifierConfig,
    training: ClassifierTraining,
    params: FileEntry,
  },
  'ClassifierManifest',
);
export type ClassifierManifest = t.TypeOf<typeof ClassifierManifest>;

/** Classifiers as a kind of stored weights. @category model */
export const classifierKind: WeightsKind<ClassifierManifest> = {
  name: 'classifier',
  manifest: ClassifierManifest,
  files: (m) => [{ file: 'params.bin', entry: m.params, field: 'params', specs: classifierSpec(m.config) }],
};

/**
 * `mnist-convnet[32,64,128]→128 sha256:0123456789ab`: architecture, feature width and a weights fingerprint, so
 * FIDs computed with different extractors are never confused.
 * @category model
 */
export const classifierName = (m: ClassifierManifest): string =>
  `mnist-convnet${m.config.noiseConditional ? '-t' : ''}[${m.config.channels.join(',')}]→${m.config.featureDim} sha256:${m.params.sha256.slice(0, 12)}`;

// -------------------------------------------------------------------------------------
// saving and loading
// -------------------------------------------------------------------------------------

/** A stored classifier: where, and its manifest (config, training record, file entry). @category store */
export interface StoredClassifier {
  readonly dir: string;
  readonly manifest: ClassifierManifest;
}

/**
 * Saves a classifier's parameters atomically into `dir`; returns the manifest written. Refuses non-finite weights
 * and a target that exists but is not a classifier directory.
 * @category store
 */
export const saveClassifier = async (dir: string, config: ClassifierConfig, params: Params, training: ClassifierTraining): Promise<E.Either<StoreError, StoredClassifier>> => {
  const saved = await saveWeights(classifierKind, dir, [{ file: 'params.bin', specs: classifierSpec(config), record: params }], (entries): ClassifierManifest => ({
    format: 'score-sde-ts/classifier',
    version: CLASSIFIER_STORE_VERSION,
    dtype: 'float32',
    byteOrder: 'little-endian',
    config,
    training,
    params: entries['params.bin']!,
  }));
  return E.map((manifest: ClassifierManifest) => ({ dir: nodePath.resolve(dir), manifest }))(saved);
};


/** Whether `dir` holds a manifest (the reuse test; loading then validates everything). @category store */
export const holdsClassifier = holdsWeights;

/** A loaded classifier: the manifest and new variables holding its parameters (the caller disposes them). @category store */
export interface LoadedClassifier extends StoredClassifier {
  readonly params: Params;
}

/** Loads a classifier (see the module comment), then creates its variables. @category store */
export const loadClassifier = async (dir: string): Promise<E.Either<StoreError, LoadedClassifier>> => {
  const loaded = await loadWeights(classifierKind, dir);
  if (E.isLeft(loaded)) return loaded;
  const { manifest, values } = loaded.right;
  return E.right({ dir: loaded.right.dir, manifest, params: paramsFromValues(classifierSpec(manifest.config), values['params.bin']!) });
};

/** Disposes a classifier's variables. @category store */
export const disposeParams = (params: Params): void => tf.dispose(Object.values(params));
