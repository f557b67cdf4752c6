/**
 * Reading every kind of weights the project keeps (ScoreNet training states, classifiers), from any
 * {@link StoreSource}: a directory of float32 tensor files (stored-format.ts) described by a `manifest.json` whose
 * codec the kind gives, in the version directory that its `CURRENT` names (or the older flat layout). Loading decodes
 * the manifest (io-ts, fields named), checks every file's tensor layout against the specs the manifest's config
 * implies, reads each file and checks its length and sha256, and only then hands back the values. Node's store
 * (weights-store.ts) saves, and loads from its file system through this; a web page loads from a URL or a picked folder
 * through the same code, with the same messages.
 *
 * Every failure is one {@link StoreError}, naming the kind and the directory (and the file where there is one).
 *
 * @module weights-load
 */
import type * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import type { ParamSpec } from './params';
import { type FileEntry, checkTensorLayout, readManifestFrom, readVerifiedFrom, splitBySpecs } from './stored-format';
import type { StoreSource } from './store-source';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** One binary file of a store: its name, its entry in the manifest (and where that sits), and the tensors it must hold. @category model */
export interface StoredFile {
  readonly file: string;
  readonly entry: FileEntry;
  /** The entry's path in the manifest, for messages (`files.params.bin`). */
  readonly field: string;
  readonly specs: ReadonlyArray<ParamSpec>;
}

/**
 * A kind of stored weights: its name (in messages: `checkpoint`, `classifier`), its manifest codec, and the binary
 * files a decoded manifest lists, each with the specs its config implies.
 * @category model
 */
export interface WeightsKind<M> {
  readonly name: string;
  readonly manifest: t.Type<M, unknown, unknown>;
  readonly files: (m: M) => ReadonlyArray<StoredFile>;
}

/** Why weights could not be saved or loaded. Every case names the kind and the directory. @category errors */
export type StoreError =
  | { readonly _tag: 'NotFound'; readonly kind: string; readonly dir: string; readonly message: string }
  | { readonly _tag: 'MissingFile'; readonly kind: string; readonly dir: string; readonly file: string }
  | { readonly _tag: 'BadManifest'; readonly kind: string; readonly dir: string; readonly problems: ReadonlyArray<string> }
  | { readonly _tag: 'SizeMismatch'; readonly kind: string; readonly dir: string; readonly file: string; readonly actual: number; readonly expected: number }
  | { readonly _tag: 'ChecksumMismatch'; readonly kind: string; readonly dir: string; readonly file: string; readonly actual: string; readonly expected: string }
  | { readonly _tag: 'LayoutMismatch'; readonly kind: string; readonly dir: string; readonly file: string; readonly message: string }
  | { readonly _tag: 'ConfigMismatch'; readonly kind: string; readonly dir: string; readonly field: string; readonly stored: string; readonly requested: string }
  | { readonly _tag: 'NonFiniteWeights'; readonly kind: string; readonly dir: string; readonly file: string; readonly tensor: string }
  | { readonly _tag: 'NotReplaceable'; readonly kind: string; readonly dir: string }
  | { readonly _tag: 'IOError'; readonly kind: string; readonly dir: string; readonly message: string };

/** A readable message, e.g. `checkpoint out/ckpt: params.bin is 1200 bytes, manifest says 4800`. @category errors */
export const renderStoreError = (e: StoreError): string => {
  const where = `${e.kind} ${e.dir}`;
  switch (e._tag) {
    case 'NotFound':
      return `${where}: ${e.message}`;
    case 'MissingFile':
      return `${where}: ${e.file} is missing`;
    case 'BadManifest':
      return `${where}: invalid manifest.json:\n${e.problems.map((p) => `  ${p}`).join('\n')}`;
    case 'SizeMismatch':
      return `${where}: ${e.file} is ${e.actual} bytes, manifest says ${e.expected}`;
    case 'ChecksumMismatch':
      return `${where}: ${e.file} has sha256 ${e.actual}, manifest says ${e.expected} (the file is corrupt)`;
    case 'LayoutMismatch':
      return `${where}: ${e.file}: ${e.message}`;
    case 'ConfigMismatch':
      return `${where}: ${e.field} is ${e.stored} in the ${e.kind}, but ${e.requested} was requested`;
    case 'NonFiniteWeights':
      return `${where}: not saved, ${e.file} tensor ${e.tensor} holds NaN or ±Infinity`;
    case 'NotReplaceable':
      return `${where}: exists and is not a ${e.kind} directory (no CURRENT or manifest.json); refusing to replace it`;
    case 'IOError':
      return `${where}: ${e.message}`;
  }
};

// -------------------------------------------------------------------------------------
// loading
// -------------------------------------------------------------------------------------

/** Loaded weights: the manifest, and for every file the values of its tensors by name (copies, no tensor). @category loading */
export interface LoadedWeights<M> {
  readonly dir: string;
  readonly manifest: M;
  readonly values: Readonly<Record<string, Readonly<Record<string, Float32Array>>>>;
}

/**
 * Loads weights from a source (through CURRENT): decodes manifest.json, runs `check` on it (e.g. a requested config),
 * checks every file's layout, then reads and verifies every file (see the module comment). Messages name `source.dir`.
 * @category loading
 */
export const loadWeightsFrom = async <M>(kind: WeightsKind<M>, source: StoreSource, check: (m: M) => E.Either<StoreError, M> = E.right): Promise<E.Either<StoreError, LoadedWeights<M>>> => {
  const dir = source.dir;
  const at = { kind: kind.name, dir };
  const decoded = await readManifestFrom(source, kind.manifest);
  if (E.isLeft(decoded)) return E.left({ ...decoded.left, kind: kind.name });
  const checked = check(decoded.right);
  if (E.isLeft(checked)) return checked;
  const m = checked.right;
  const files = kind.files(m);
  for (const f of files) {
    const ok = checkTensorLayout(f.specs, f.entry);
    if (E.isLeft(ok))
      return E.left(ok.left.field === 'tensors' ? { _tag: 'LayoutMismatch', ...at, file: f.file, message: ok.left.message } : { _tag: 'BadManifest', ...at, problems: [`${f.field}.bytes: ${ok.left.message}`] });
  }
  const values: Record<string, Record<string, Float32Array>> = {};
  for (const f of files) {
    const bin = await readVerifiedFrom(source, f.file, f.entry);
    if (E.isLeft(bin)) {
      const p = bin.left;
      switch (p._tag) {
        case 'Missing':
          return E.left({ _tag: 'MissingFile', ...at, file: f.file });
        case 'IO':
          return E.left({ _tag: 'IOError', ...at, message: p.message });
        case 'Size':
          return E.left({ _tag: 'SizeMismatch', ...at, file: f.file, actual: p.actual, expected: p.expected });
        case 'Checksum':
          return E.left({ _tag: 'ChecksumMismatch', ...at, file: f.file, actual: p.actual, expected: p.expected });
      }
    }
    values[f.file] = splitBySpecs(bin.right, f.specs);
  }
  return E.right({ dir, manifest: m, values });
};
