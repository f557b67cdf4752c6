/**
 * Directories of float32 tensor files, the storage under every checkpoint format of the project (ScoreNet training
 * states, classifiers): each binary file is its tensors' values, float32 little-endian, concatenated in a listed
 * order, and described in the directory's manifest by a {@link FileEntry} = {bytes, sha256, tensors [(name, shape)]}.
 *
 * A stored directory `dir` is a pointer and complete versions:
 *
 *   dir/CURRENT          one line: the name of the version directory that is the stored value
 *   dir/<label>.<8 hex>/ a complete version: manifest.json and the binary files
 *
 * Writing never leaves the path without a loadable value: the new version is written into a hidden temporary
 * directory inside `dir`, every file fsynced, and renamed to its final name; then CURRENT is replaced atomically
 * (a temporary file renamed over it); only then are older versions removed. A crash at any moment leaves `dir/CURRENT`
 * naming a complete version (the old one or the new one), or, before the first save, no CURRENT at all. A directory
 * written by an older version of this module (manifest.json and the files directly inside it) still loads, and is
 * replaced the same way (its files are removed after the new CURRENT is in place).
 *
 * Reading resolves CURRENT (or takes `dir` itself when it has none) and checks a file's length and sha256 against
 * its entry before a single value is used: the format's reading (stored-format.ts, on any host) over a Node directory
 * ({@link fsSource}). This module is Node's: writing, and the file system as a {@link StoreSource}.
 *
 * @module tensor-files
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { type ParamSpec, type TensorRecord, sizeOfShape, recordValues } from './params';
import { point } from './faults';
import { type FileEntry, CURRENT, VERSION, type ManifestProblem, type ReadProblem, storedPrefix, readManifestFrom, readVerifiedFrom } from './stored-format';
import type { FsProblem, StoreSource } from './store-source';

// -------------------------------------------------------------------------------------
// the format (stored-format.ts), re-exported
// -------------------------------------------------------------------------------------

export { Sha256Hex, TensorEntry, FileEntry, float32FromBytes, splitBySpecs, checkTensorLayout, CURRENT, type ReadProblem, type ManifestProblem } from './stored-format';
export type { FsProblem } from './store-source';

// -------------------------------------------------------------------------------------
// bytes
// -------------------------------------------------------------------------------------

const LE = os.endianness() === 'LE';

/** Float32 values as little-endian bytes, concatenated. @category bytes */
export const float32Bytes = (parts: ReadonlyArray<Float32Array>): Buffer => {
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

/** sha256 of bytes, lowercase hex. @category bytes */
export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

// -------------------------------------------------------------------------------------
// encoding and layout
// -------------------------------------------------------------------------------------

/** Why a record could not be encoded: a tensor of the wrong size, or non-finite values. @category encoding */
export type EncodeProblem = { readonly _tag: 'Layout'; readonly message: string } | { readonly _tag: 'NonFinite'; readonly tensor: string };

/** A file's bytes and its manifest entry. @category encoding */
export interface EncodedFile {
  readonly bytes: Buffer;
  readonly entry: FileEntry;
}

/**
 * The tensors of `record` named by `specs`, in that order, as one file: refuses a tensor whose size does not match
 * its spec's shape and any NaN/±∞ (a checkpoint must never store a diverged model).
 * @category encoding
 */
export const encodeTensorFile = async (specs: ReadonlyArray<ParamSpec>, record: TensorRecord): Promise<E.Either<EncodeProblem, EncodedFile>> => {
  const values = await recordValues(record, specs.map((s) => s.name));
  for (const s of specs) {
    const v = values[s.name]!;
    if (v.length !== sizeOfShape(s.shape)) return E.left({ _tag: 'Layout', message: `tensor ${s.name} has ${v.length} values, its shape [${s.shape.join(', ')}] needs ${sizeOfShape(s.shape)}` });
    if (!v.every(Number.isFinite)) return E.left({ _tag: 'NonFinite', tensor: s.name });
  }
  const bytes = float32Bytes(specs.map((s) => values[s.name]!));
  return E.right({ bytes, entry: { bytes: bytes.byteLength, sha256: sha256Hex(bytes), tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape] })) } });
};

// -------------------------------------------------------------------------------------
// file system
// -------------------------------------------------------------------------------------

/** Runs an fs call, turning a rejection into a Left of its code and message (no `instanceof`: Node's errors may come from another realm). */
const attempt = async <A>(f: () => Promise<A>): Promise<E.Either<FsProblem, A>> => {
  try {
    return E.right(await f());
  } catch (e) {
    return E.left({ code: (e as NodeJS.ErrnoException).code, message: String((e as Error).message) });
  }
};

/** Writes a file and fsyncs it; the `write:<name>` fault point (name: the file's final name) sits between opening and writing. */
const writeSynced = async (file: string, data: Uint8Array | string, name = path.basename(file)): Promise<void> => {
  const fh = await fs.open(file, 'w');
  try {
    await point(`write:${name}`);
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
};

/** fsync of a directory's entry list; best effort (some file systems refuse it; the renames are atomic regardless). */
const syncDir = async (dir: string): Promise<void> => {
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Best effort only.
  }
};

let tempCounter = 0;

/**
 * Writes `data` to the file `target` atomically: the bytes go to a temporary file `.<name>.tmp-<pid>-<n>` in the same
 * directory, which is fsynced and renamed over `target`. On any failure (a full disk included) the temporary file is
 * removed and `target` is left as it was; the promise rejects with the file system's error. The parent must exist.
 * @category file system
 */
export const writeFileAtomically = async (target: string, data: Uint8Array | string): Promise<void> => {
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${++tempCounter}`);
  try {
    await writeSynced(tmp, data, path.basename(target));
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
};

/** Temporary entries of a writer: `.<version>.tmp` directories and `.CURRENT.tmp-<tag>` files. */
const TEMPORARY = /^\.(?:[A-Za-z0-9-]+\.[0-9a-f]{8}\.tmp|CURRENT\.tmp-[0-9a-f-]+)$/;

/**
 * A directory as a {@link StoreSource}: its files read with Node's file system, sha256 by Node's crypto, messages
 * naming `dir` as given.
 * @category file system
 */
export const fsSource = (dir: string): StoreSource => ({
  dir,
  isDirectory: async () => E.map((st: { isDirectory(): boolean }) => st.isDirectory())(await attempt(() => fs.stat(dir))),
  readText: (file) => attempt(() => fs.readFile(path.join(dir, file), 'utf8')),
  readBytes: (file) => attempt(() => fs.readFile(path.join(dir, file))),
  sha256: async (b) => sha256Hex(b),
});

/**
 * The directory holding a stored value's files: `dir/<CURRENT's version>` when `dir` has a CURRENT, else `dir`
 * itself (a directory written before the pointer scheme). Left when CURRENT cannot be read or names no version.
 * @category file system
 */
export const storedDirectory = async (dir: string): Promise<E.Either<FsProblem, string>> =>
  E.map((prefix: string) => (prefix === '' ? dir : path.join(dir, prefix.slice(0, -1))))(await storedPrefix(fsSource(dir)));

/** Whether `dir` holds a stored value: a CURRENT naming a version with a manifest, or a manifest.json of its own. @category file system */
export const holdsManifest = async (dir: string): Promise<boolean> => {
  const at = await storedDirectory(dir);
  return E.isRight(at) && (await fs.stat(path.join(at.right, 'manifest.json')).then((s) => s.isFile(), () => false));
};

/**
 * Whether `dir` may be written: it does not exist, or it is a directory that holds a stored value (CURRENT or
 * manifest.json) or only entries a writer left behind (nothing a user put there).
 */
const replaceable = async (dir: string): Promise<boolean> => {
  const st = await fs.stat(dir).catch(() => undefined);
  if (st === undefined) return true;
  if (!st.isDirectory()) return false;
  const entries = await fs.readdir(dir);
  return entries.includes(CURRENT) || entries.includes('manifest.json') || entries.every((e) => TEMPORARY.test(e) || VERSION.test(e));
};

/** Why a directory was not written: the target holds something else, or the file system failed. @category file system */
export type WriteProblem = { readonly _tag: 'NotReplaceable' } | { readonly _tag: 'IO'; readonly message: string; readonly code?: string };

/** The entries of a stored directory that a completed write of `version` makes obsolete. */
const obsolete = (entries: ReadonlyArray<string>, version: string, files: ReadonlyArray<string>): ReadonlyArray<string> =>
  entries.filter((e) => e !== CURRENT && e !== version && (VERSION.test(e) || TEMPORARY.test(e) || files.includes(e)));

/**
 * Writes `files` (name ↦ bytes or text, `manifest.json` among them) as a new version of the stored directory
 * `target` and points CURRENT at it (see the module comment); `label` starts the version's name (e.g. `step-128`).
 * Refuses a target that exists and holds something else than a stored value. On failure nothing the target held
 * before is touched and the new version's files are removed.
 * @category file system
 */
export const writeDirectoryAtomically = async (
  target: string,
  files: ReadonlyArray<readonly [string, Uint8Array | string]>,
  label = 'v',
): Promise<E.Either<WriteProblem, void>> => {
  const io = (e: unknown): E.Either<WriteProblem, never> => E.left({ _tag: 'IO', message: String((e as Error).message), code: (e as NodeJS.ErrnoException).code });
  const canReplace = await attempt(() => replaceable(target));
  if (E.isLeft(canReplace)) return io(canReplace.left);
  if (!canReplace.right) return E.left({ _tag: 'NotReplaceable' });
  const created = !(await fs.stat(target).then(() => true, () => false));
  const tag = randomBytes(4).toString('hex');
  const version = `${label.replace(/[^A-Za-z0-9-]/g, '-')}.${tag}`;
  const tmp = path.join(target, `.${version}.tmp`);
  const pointerTmp = path.join(target, `.${CURRENT}.tmp-${process.pid}-${tag}`);
  const base = path.basename(target);
  try {
    await fs.mkdir(target, { recursive: true });
    await fs.mkdir(tmp);
    for (const [name, data] of files) await writeSynced(path.join(tmp, name), data);
    await syncDir(tmp);
    await fs.rename(tmp, path.join(target, version));
    await writeSynced(pointerTmp, `${version}\n`, CURRENT);
    await syncDir(target);
    await point(`pointer:${base}`);
    // The one step that changes what the directory holds: an atomic rename over the old pointer.
    await fs.rename(pointerTmp, path.join(target, CURRENT));
    await syncDir(target);
  } catch (e) {
    await Promise.all([tmp, pointerTmp, path.join(target, version)].map((p) => fs.rm(p, { recursive: true, force: true }).catch(() => undefined)));
    if (created) await fs.rmdir(target).catch(() => undefined);
    return io(e);
  }
  await point(`cleanup:${base}`);
  const entries = await fs.readdir(target).catch(() => [] as string[]);
  // The old manifest.json of a flat directory goes last, so a reader that ignores CURRENT sees its files to the end.
  const old = [...obsolete(entries, version, files.map(([n]) => n))].sort((a, b) => Number(a === 'manifest.json') - Number(b === 'manifest.json'));
  for (const e of old) await fs.rm(path.join(target, e), { recursive: true, force: true }).catch(() => undefined);
  return E.right(undefined);
};

/** Reads `file` of the stored directory `dir` (through CURRENT) and checks its length and sha256 against `entry` before decoding the float32 values. @category file system */
export const readVerifiedFile = (dir: string, file: string, entry: FileEntry): Promise<E.Either<ReadProblem, Float32Array>> => readVerifiedFrom(fsSource(dir), file, entry);

/** Reads the manifest.json of the stored directory `dir` (through CURRENT) and decodes it with `manifest` (io-ts; unknown keys as the codec says). @category file system */
export const readManifest = <A, O>(dir: string, manifest: t.Type<A, O, unknown>): Promise<E.Either<ManifestProblem, A>> => readManifestFrom(fsSource(dir), manifest);
