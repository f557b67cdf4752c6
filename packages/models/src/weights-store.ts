/**
 * One store for every kind of weights the project keeps on disk (ScoreNet training states, classifiers): a directory
 * of float32 tensor files (tensor-files.ts) described by a `manifest.json` whose codec the kind gives, kept in a
 * complete version directory that the store's one-line `CURRENT` file names. Saving encodes each file's tensors in
 * the order of its specs (refusing NaN/±∞), builds the manifest from the files' entries, writes and fsyncs a new
 * version, then replaces CURRENT atomically and removes the old version: at every moment, a crash included, the
 * directory holds a loadable value (the old or the new one; nothing before the first save). It refuses to replace a
 * directory that holds something else. A directory of the older flat layout (the files directly in it) still loads. Loading
 * decodes the manifest (io-ts, fields named), checks every file's tensor layout against the specs the manifest's
 * config implies, reads each file and checks its length and sha256, and only then hands back the values.
 *
 * Every failure is one {@link StoreError}, naming the kind and the directory (and the file where there is one).
 *
 * @module weights-store
 */
import * as path from 'node:path';
import type * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import type { ParamSpec, TensorRecord } from './params';
import { type FileEntry, checkTensorLayout, encodeTensorFile, holdsManifest, readManifest, readVerifiedFile, splitBySpecs, writeDirectoryAtomically } from './tensor-files';

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
// saving
// -------------------------------------------------------------------------------------

/** One file to save: its name, its tensors' specs (the storage order) and the record holding them. @category saving */
export interface FileToSave {
  readonly file: string;
  readonly specs: ReadonlyArray<ParamSpec>;
  readonly record: TensorRecord;
}

/**
 * Saves `files` and the manifest `manifestOf(entries)` as a new version of the directory `dir` (see the module
 * comment); `label` starts the version's name (e.g. `step-128`). Returns the manifest written.
 * @category saving
 */
export const saveWeights = async <M>(
  kind: WeightsKind<M>,
  dir: string,
  files: ReadonlyArray<FileToSave>,
  manifestOf: (entries: Readonly<Record<string, FileEntry>>) => M,
  label = 'v',
): Promise<E.Either<StoreError, M>> => {
  const at = { kind: kind.name, dir };
  const entries: Record<string, FileEntry> = {};
  const bytes: Array<readonly [string, Uint8Array | string]> = [];
  try {
    for (const f of files) {
      const encoded = await encodeTensorFile(f.specs, f.record);
      if (E.isLeft(encoded)) {
        const p = encoded.left;
        return E.left(p._tag === 'Layout' ? { _tag: 'LayoutMismatch', ...at, file: f.file, message: p.message } : { _tag: 'NonFiniteWeights', ...at, file: f.file, tensor: p.tensor });
      }
      entries[f.file] = encoded.right.entry;
      bytes.push([f.file, encoded.right.bytes]);
    }
  } catch (e) {
    // Reading the tensors can throw (e.g. a disposed tensor).
    return E.left({ _tag: 'IOError', ...at, message: (e as Error).message });
  }
  const manifest = manifestOf(entries);
  const written = await writeDirectoryAtomically(path.resolve(dir), [...bytes, ['manifest.json', `${JSON.stringify(manifest, null, 2)}\n`]], label);
  if (E.isLeft(written)) return E.left(written.left._tag === 'NotReplaceable' ? { _tag: 'NotReplaceable', ...at } : { _tag: 'IOError', ...at, message: written.left.message });
  return E.right(manifest);
};

// -------------------------------------------------------------------------------------
// loading
// -------------------------------------------------------------------------------------

/** Whether `dir` holds stored weights: a CURRENT naming a version with a manifest.json, or a flat manifest.json (loading then validates everything). @category loading */
export const holdsWeights = (dir: string): Promise<boolean> => holdsManifest(dir);

/** Loaded weights: the manifest, and for every file the values of its tensors by name (copies, no tensor). @category loading */
export interface LoadedWeights<M> {
  readonly dir: string;
  readonly manifest: M;
  readonly values: Readonly<Record<string, Readonly<Record<string, Float32Array>>>>;
}

/**
 * Loads weights (through CURRENT): decodes manifest.json, runs `check` on it (e.g. a requested config), checks every file's layout,
 * then reads and verifies every file (see the module comment).
 * @category loading
 */
export const loadWeights = async <M>(kind: WeightsKind<M>, dir: string, check: (m: M) => E.Either<StoreError, M> = E.right): Promise<E.Either<StoreError, LoadedWeights<M>>> => {
  const at = { kind: kind.name, dir };
  const decoded = await readManifest(dir, kind.manifest);
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
    const bin = await readVerifiedFile(dir, f.file, f.entry);
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
  return E.right({ dir: path.resolve(dir), manifest: m, values });
};
