/**
 * Classifier checkpoints on disk: a directory
 *
 *   manifest.json   format + version, the {@link classifier.ClassifierConfig}, how it was trained
 *                   ({@link ClassifierTraining}: steps, data, test accuracy, the SDE of a noise-conditional one),
 *                   and params.bin's byte length, sha256 and tensor list (name, shape) in storage order
 *   params.bin      every parameter (fixed Fourier frequencies included), float32 little-endian, concatenated
 *
 * (in a version directory named by the directory's CURRENT file: tensor-files). Saving is atomic (a complete new
 * version, fsynced, then CURRENT replaced by a rename, then the old version removed: the path always holds a loadable
 * classifier), and refuses to replace a directory that holds something else. Loading decodes
 * the manifest with io-ts (fields named), checks the tensor layout against the config, the length and the sha256
 * of params.bin, and only then creates tensors.
 *
 * @module eval/store
 */
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { tf, codec } from '@score-sde/tensor-fp';
import { SDE } from '@score-sde/sde-math';
import { classifier, tensorFiles, type Params, type ParamSpec, paramsFromValues } from '@score-sde/models';

const { attempt } = tensorFiles;

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
  { sde: SDE, eps: codec.PositiveFinite, noisyAccuracy: t.array(NoisyAccuracy) },
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
    config: classifier.ClassifierConfig,
    training: ClassifierTraining,
    params: tensorFiles.FileEntry,
  },
  'ClassifierManifest',
);
export type ClassifierManifest = t.TypeOf<typeof ClassifierManifest>;

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/** Why a classifier could not be saved or loaded; every case names the directory. @category errors */
export type StoreError =
  | { readonly _tag: 'NotFound'; readonly dir: string; readonly message: string }
  | { readonly _tag: 'MissingFile'; readonly dir: string; readonly file: string }
  | { readonly _tag: 'BadManifest'; readonly dir: string; readonly problems: ReadonlyArray<string> }
  | { readonly _tag: 'SizeMismatch'; readonly dir: string; readonly actual: number; readonly expected: number }
  | { readonly _tag: 'ChecksumMismatch'; readonly dir: string; readonly actual: string; readonly expected: string }
  | { readonly _tag: 'LayoutMismatch'; readonly dir: string; readonly message: string }
  | { readonly _tag: 'NonFiniteWeights'; readonly dir: string; readonly tensor: string }
  | { readonly _tag: 'NotAClassifier'; readonly dir: string }
  | { readonly _tag: 'IOError'; readonly dir: string; readonly message: string };

/** `classifier out/classifier: params.bin has sha256 …, manifest says … (the file is corrupt)`. @category errors */
export const renderStoreError = (e: StoreError): string => {
  const where = `classifier ${e.dir}`;
  switch (e._tag) {
    case 'NotFound':
      return `${where}: ${e.message}`;
    case 'MissingFile':
      return `${where}: ${e.file} is missing`;
    case 'BadManifest':
      return `${where}: invalid manifest.json:\n${e.problems.map((p) => `  ${p}`).join('\n')}`;
    case 'SizeMismatch':
      return `${where}: params.bin is ${e.actual} bytes, manifest says ${e.expected}`;
    case 'ChecksumMismatch':
      return `${where}: params.bin has sha256 ${e.actual}, manifest says ${e.expected} (the file is corrupt)`;
    case 'LayoutMismatch':
      return `${where}: params.bin: ${e.message}`;
    case 'NonFiniteWeights':
      return `${where}: not saved, tensor ${e.tensor} holds NaN or ±Infinity`;
    case 'NotAClassifier':
      return `${where}: exists and is not a classifier directory (no CURRENT or manifest.json); refusing to replace it`;
    case 'IOError':
      return `${where}: ${e.message}`;
  }
};

/** sha256 of bytes, lowercase hex. @category bytes */
export const sha256Hex = tensorFiles.sha256Hex;

// -------------------------------------------------------------------------------------
// saving
// -------------------------------------------------------------------------------------

/** A stored classifier: its manifest (config, training record, file entry). @category model */
export interface StoredClassifier {
  readonly dir: string;
  readonly manifest: ClassifierManifest;
}

/**
 * Saves a classifier's parameters atomically into `dir` (see the module comment); returns the manifest written.
 * Refuses non-finite weights and a target that exists but is not a classifier directory.
 * @category saving
 */
export const saveClassifier = async (
  dir: string,
  config: classifier.ClassifierConfig,
  params: Params,
  training: ClassifierTraining,
): Promise<E.Either<StoreError, StoredClassifier>> => {
  const target = path.resolve(dir);
  const specs = classifier.classifierSpec(config);
  const encoded = await attempt(() => tensorFiles.encodeTensorFile(specs, params));
  if (E.isLeft(encoded)) return E.left({ _tag: 'IOError', dir, message: encoded.left.message });
  if (E.isLeft(encoded.right)) {
    const p = encoded.right.left;
    return E.left(p._tag === 'NonFinite' ? { _tag: 'NonFiniteWeights', dir, tensor: p.tensor } : { _tag: 'LayoutMismatch', dir, message: p.message });
  }
  const { bytes, entry } = encoded.right.right;
  const manifest: ClassifierManifest = {
    format: 'score-sde-ts/classifier',
    version: CLASSIFIER_STORE_VERSION,
    dtype: 'float32',
    byteOrder: 'little-endian',
    config,
    training,
    params: entry,
  };
  const written = await tensorFiles.writeDirectoryAtomically(target, [
    ['params.bin', bytes],
    ['manifest.json', `${JSON.stringify(manifest, null, 2)}\n`],
  ]);
  if (E.isLeft(written)) return E.left(written.left._tag === 'NotReplaceable' ? { _tag: 'NotAClassifier', dir } : { _tag: 'IOError', dir, message: written.left.message });
  return E.right({ dir: target, manifest });
};

// -------------------------------------------------------------------------------------
// loading
// -------------------------------------------------------------------------------------

/** Whether `dir` holds a classifier manifest (the reuse test; loading then validates everything). @category loading */
export const holdsClassifier = (dir: string): Promise<boolean> => tensorFiles.holdsManifest(dir);

const checkLayout = (dir: string, m: ClassifierManifest): E.Either<StoreError, ReadonlyArray<ParamSpec>> => {
  const want = classifier.classifierSpec(m.config);
  const ok = tensorFiles.checkTensorLayout(want, m.params);
  if (E.isRight(ok)) return E.right(want);
  return E.left(ok.left.field === 'tensors' ? { _tag: 'LayoutMismatch', dir, message: ok.left.message } : { _tag: 'BadManifest', dir, problems: [`params.bytes: ${ok.left.message}`] });
};

/** A loaded classifier: the manifest and new variables holding its parameters (the caller disposes them). @category loading */
export interface LoadedClassifier extends StoredClassifier {
  readonly params: Params;
}

/**
 * Loads a classifier: decodes manifest.json, checks the layout, the length and sha256 of params.bin, then
 * creates the variables.
 * @category loading
 */
export const loadClassifier = async (dir: string): Promise<E.Either<StoreError, LoadedClassifier>> => {
  const decoded = await tensorFiles.readManifest(dir, ClassifierManifest);
  if (E.isLeft(decoded)) return decoded;
  const m = decoded.right;
  const specs = checkLayout(dir, m);
  if (E.isLeft(specs)) return specs;
  const bin = await tensorFiles.readVerifiedFile(dir, 'params.bin', m.params);
  if (E.isLeft(bin)) {
    const p = bin.left;
    switch (p._tag) {
      case 'Missing':
        return E.left({ _tag: 'MissingFile', dir, file: 'params.bin' });
      case 'IO':
        return E.left({ _tag: 'IOError', dir, message: p.message });
      case 'Size':
        return E.left({ _tag: 'SizeMismatch', dir, actual: p.actual, expected: p.expected });
      case 'Checksum':
        return E.left({ _tag: 'ChecksumMismatch', dir, actual: p.actual, expected: p.expected });
    }
  }
  return E.right({ dir: path.resolve(dir), manifest: m, params: paramsFromValues(specs.right, tensorFiles.splitBySpecs(bin.right, specs.right)) });
};

/** Disposes a classifier's variables. @category loading */
export const disposeParams = (params: Params): void => tf.dispose(Object.values(params));
