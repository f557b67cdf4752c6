/**
 * One store for every kind of weights the project keeps on disk (ScoreNet training states, classifiers): a directory
 * of float32 tensor files (tensor-files.ts) described by a `manifest.json` whose codec the kind gives, kept in a
 * complete version directory that the store's one-line `CURRENT` file names. Saving encodes each file's tensors in
 * the order of its specs (refusing NaN/±∞), builds the manifest from the files' entries, writes and fsyncs a new
 * version, then replaces CURRENT atomically and removes the old version: at every moment, a crash included, the
 * directory holds a loadable value (the old or the new one; nothing before the first save). It refuses to replace a
 * directory that holds something else. A directory of the older flat layout (the files directly in it) still loads. Loading
 * decodes the manifest (io-ts, fields named), checks every file's tensor layout against the specs the manifest's
 * config implies, reads each file and checks its length and sha256, and only then hands back the values (weights-load.ts,
 * which reads any source; here the file system). Node only.
 *
 * Every failure is one {@link StoreError}, naming the kind and the directory (and the file where there is one).
 *
 * @module weights-store
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type { ParamSpec, TensorRecord } from './params';
import { type FileEntry, encodeTensorFile, fsSource, holdsManifest, writeDirectoryAtomically } from './tensor-files';
import { type LoadedWeights, type StoreError, type WeightsKind, loadWeightsFrom } from './weights-load';

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

/**
 * Loads weights from the directory `dir` (through CURRENT): {@link loadWeightsFrom} over the file system, messages
 * naming `dir` as given, the result's `dir` resolved.
 * @category loading
 */
export const loadWeights = async <M>(kind: WeightsKind<M>, dir: string, check: (m: M) => E.Either<StoreError, M> = E.right): Promise<E.Either<StoreError, LoadedWeights<M>>> =>
  E.map((w: LoadedWeights<M>) => ({ ...w, dir: path.resolve(dir) }))(await loadWeightsFrom(kind, fsSource(dir), check));
