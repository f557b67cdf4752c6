/**
 * Classifier checkpoints on disk: a directory
 *
 *   manifest.json   format + version, the {@link classifier.ClassifierConfig}, how it was trained
 *                   ({@link ClassifierTraining}: steps, data, test accuracy, the SDE of a noise-conditional one),
 *                   and params.bin's byte length, sha256 and tensor list (name, shape) in storage order
 *   params.bin      every parameter (fixed Fourier frequencies included), float32 little-endian, concatenated
 *
 * Saving is atomic (temp directory next to the target, fsynced, renamed into place; an old classifier is renamed
 * aside first and removed after), and refuses to replace a directory that holds something else. Loading decodes
 * the manifest with io-ts (fields named), checks the tensor layout against the config, the length and the sha256
 * of params.bin, and only then creates tensors.
 *
 * @module eval/store
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { tf, codec } from '@score-sde/tensor-fp';
import { SDE } from '@score-sde/sde-math';
import { classifier, type Params, type ParamSpec, sizeOfShape, paramsFromValues, recordValues } from '@score-sde/models';

// -------------------------------------------------------------------------------------
// manifest
// -------------------------------------------------------------------------------------

/** Current format version. @category model */
export const CLASSIFIER_STORE_VERSION = 1;

const Sha256Hex = new t.Type<string, string, unknown>(
  'Sha256Hex',
  (u): u is string => typeof u === 'string' && /^[0-9a-f]{64}$/.test(u),
  (u, c) => (typeof u === 'string' && /^[0-9a-f]{64}$/.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);

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

const TensorEntry = codec.strict({ name: t.string, shape: t.array(codec.NonNegativeInt) }, 'TensorEntry');

/** io-ts codec of a classifier's `manifest.json` (unknown keys rejected). @category model */
export const ClassifierManifest = codec.strict(
  {
    format: t.literal('score-sde-ts/classifier'),
    version: t.literal(CLASSIFIER_STORE_VERSION),
    dtype: t.literal('float32'),
    byteOrder: t.literal('little-endian'),
    config: classifier.ClassifierConfig,
    training: ClassifierTraining,
    params: codec.strict({ bytes: codec.NonNegativeInt, sha256: Sha256Hex, tensors: t.array(TensorEntry) }, 'ParamsFile'),
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
      return `${where}: exists and is not a classifier directory (no manifest.json); refusing to replace it`;
    case 'IOError':
      return `${where}: ${e.message}`;
  }
};

// -------------------------------------------------------------------------------------
// bytes
// -------------------------------------------------------------------------------------

const LE = os.endianness() === 'LE';

/** Float32 values as little-endian bytes, concatenated. */
const toBytes = (parts: ReadonlyArray<Float32Array>): Buffer => {
  const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  if (LE) return Buffer.from(all.buffer, all.byteOffset, all.byteLength);
  const b = Buffer.alloc(4 * all.length);
  all.forEach((v, i) => b.writeFloatLE(v, 4 * i));
  return b;
};

/** Little-endian bytes as float32 values. */
const fromBytes = (b: Buffer): Float32Array => {
  const out = new Float32Array(b.byteLength / 4);
  if (LE) new Uint8Array(out.buffer).set(b);
  else for (let i = 0; i < out.length; i++) out[i] = b.readFloatLE(4 * i);
  return out;
};

/** sha256 of bytes, lowercase hex. @category bytes */
export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

// -------------------------------------------------------------------------------------
// saving
// -------------------------------------------------------------------------------------

const attempt = async <A>(f: () => Promise<A>): Promise<E.Either<{ readonly code: string | undefined; readonly message: string }, A>> => {
  try {
    return E.right(await f());
  } catch (e) {
    return E.left({ code: (e as NodeJS.ErrnoException).code, message: String((e as Error).message) });
  }
};

const writeSynced = async (file: string, data: Uint8Array | string): Promise<void> => {
  const fh = await fs.open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
};

/** The directory may be replaced: absent, empty, or a classifier (holds manifest.json). */
const replaceable = async (dir: string): Promise<boolean> => {
  const st = await fs.stat(dir).catch(() => undefined);
  if (st === undefined) return true;
  if (!st.isDirectory()) return false;
  const entries = await fs.readdir(dir);
  return entries.length === 0 || entries.includes('manifest.json');
};

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
  const values = await attempt(() => recordValues(params, specs.map((s) => s.name)));
  if (E.isLeft(values)) return E.left({ _tag: 'IOError', dir, message: values.left.message });
  for (const s of specs) if (!values.right[s.name]!.every(Number.isFinite)) return E.left({ _tag: 'NonFiniteWeights', dir, tensor: s.name });
  const bytes = toBytes(specs.map((s) => values.right[s.name]!));
  const manifest: ClassifierManifest = {
    format: 'score-sde-ts/classifier',
    version: CLASSIFIER_STORE_VERSION,
    dtype: 'float32',
    byteOrder: 'little-endian',
    config,
    training,
    params: { bytes: bytes.byteLength, sha256: sha256Hex(bytes), tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape] })) },
  };
  const ok = await attempt(() => replaceable(target));
  if (E.isLeft(ok)) return E.left({ _tag: 'IOError', dir, message: ok.left.message });
  if (!ok.right) return E.left({ _tag: 'NotAClassifier', dir });
  const parent = path.dirname(target);
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `.${path.basename(target)}.tmp-${tag}`);
  const aside = path.join(parent, `.${path.basename(target)}.old-${tag}`);
  const done = await attempt(async () => {
    try {
      await fs.mkdir(tmp, { recursive: true });
      await writeSynced(path.join(tmp, 'params.bin'), bytes);
      await writeSynced(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      const had = await fs.stat(target).then(
        () => true,
        () => false,
      );
      if (had) await fs.rename(target, aside);
      await fs.rename(tmp, target);
      if (had) await fs.rm(aside, { recursive: true, force: true });
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      throw e;
    }
  });
  return E.isLeft(done) ? E.left({ _tag: 'IOError', dir, message: done.left.message }) : E.right({ dir: target, manifest });
};

// -------------------------------------------------------------------------------------
// loading
// -------------------------------------------------------------------------------------

/** Whether `dir` holds a classifier manifest (the reuse test; loading then validates everything). @category loading */
export const holdsClassifier = async (dir: string): Promise<boolean> =>
  fs.stat(path.join(dir, 'manifest.json')).then(
    (s) => s.isFile(),
    () => false,
  );

const checkLayout = (dir: string, m: ClassifierManifest): E.Either<StoreError, ReadonlyArray<ParamSpec>> => {
  const want = classifier.classifierSpec(m.config);
  const got = m.params.tensors;
  if (got.length !== want.length) return E.left({ _tag: 'LayoutMismatch', dir, message: `manifest lists ${got.length} tensors, the config has ${want.length}` });
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (g.name !== w.name || JSON.stringify(g.shape) !== JSON.stringify(w.shape))
      return E.left({ _tag: 'LayoutMismatch', dir, message: `tensor ${i} is ${g.name} [${g.shape.join(', ')}], the config needs ${w.name} [${w.shape.join(', ')}]` });
  }
  const need = 4 * want.reduce((a, s) => a + sizeOfShape(s.shape), 0);
  if (m.params.bytes !== need) return E.left({ _tag: 'BadManifest', dir, problems: [`params.bytes: ${m.params.bytes}, but the tensors need ${need} bytes of float32`] });
  return E.right(want);
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
  const st = await attempt(() => fs.stat(dir));
  if (E.isLeft(st)) return E.left({ _tag: 'NotFound', dir, message: st.left.code === 'ENOENT' ? 'no such directory' : st.left.message });
  if (!st.right.isDirectory()) return E.left({ _tag: 'NotFound', dir, message: 'not a directory' });
  const text = await attempt(() => fs.readFile(path.join(dir, 'manifest.json'), 'utf8'));
  if (E.isLeft(text)) return E.left(text.left.code === 'ENOENT' ? { _tag: 'MissingFile', dir, file: 'manifest.json' } : { _tag: 'IOError', dir, message: text.left.message });
  const decoded = codec.decodeJson(ClassifierManifest, 'manifest.json')(text.right);
  if (E.isLeft(decoded)) return E.left({ _tag: 'BadManifest', dir, problems: decoded.left.problems });
  const m = decoded.right;
  const specs = checkLayout(dir, m);
  if (E.isLeft(specs)) return specs;
  const bin = await attempt(() => fs.readFile(path.join(dir, 'params.bin')));
  if (E.isLeft(bin)) return E.left(bin.left.code === 'ENOENT' ? { _tag: 'MissingFile', dir, file: 'params.bin' } : { _tag: 'IOError', dir, message: bin.left.message });
  if (bin.right.byteLength !== m.params.bytes) return E.left({ _tag: 'SizeMismatch', dir, actual: bin.right.byteLength, expected: m.params.bytes });
  const digest = sha256Hex(bin.right);
  if (digest !== m.params.sha256) return E.left({ _tag: 'ChecksumMismatch', dir, actual: digest, expected: m.params.sha256 });
  const flat = fromBytes(bin.right);
  const values: Record<string, Float32Array> = {};
  let o = 0;
  for (const s of specs.right) {
    const n = sizeOfShape(s.shape);
    values[s.name] = flat.subarray(o, o + n);
    o += n;
  }
  return E.right({ dir: path.resolve(dir), manifest: m, params: paramsFromValues(specs.right, values) });
};

/** Disposes a classifier's variables. @category loading */
export const disposeParams = (params: Params): void => tf.dispose(Object.values(params));
