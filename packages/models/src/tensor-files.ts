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
 * its entry before a single value is used.
 *
 * @module tensor-files
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import { type ParamSpec, type TensorRecord, sizeOfShape, recordValues } from './params';
import { point } from './faults';

// -------------------------------------------------------------------------------------
// codecs
// -------------------------------------------------------------------------------------

/** A lowercase hexadecimal sha256 digest (64 digits). @category codecs */
export const Sha256Hex = new t.Type<string, string, unknown>(
  'Sha256Hex',
  (u): u is string => typeof u === 'string' && /^[0-9a-f]{64}$/.test(u),
  (u, c) => (typeof u === 'string' && /^[0-9a-f]{64}$/.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);

/** One tensor of a file: its name and shape. @category codecs */
export const TensorEntry = codec.strict({ name: t.string, shape: t.array(codec.NonNegativeInt) }, 'TensorEntry');

/** A binary file's manifest entry: byte length, sha256, and its tensors in storage order. @category codecs */
export const FileEntry = codec.strict({ bytes: codec.NonNegativeInt, sha256: Sha256Hex, tensors: t.array(TensorEntry) }, 'FileEntry');
export type FileEntry = t.TypeOf<typeof FileEntry>;

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

/** Little-endian bytes as float32 values (a copy). @category bytes */
export const float32FromBytes = (b: Uint8Array): Float32Array => {
  const out = new Float32Array(b.byteLength / 4);
  if (LE) new Uint8Array(out.buffer).set(b);
  else {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
};

/** sha256 of bytes, lowercase hex. @category bytes */
export const sha256Hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Consecutive slices of a flat array, one per spec, sized by its shape: {name ↦ values}. @category bytes */
export const splitBySpecs = (flat: Float32Array, specs: ReadonlyArray<ParamSpec>): Record<string, Float32Array> => {
  const out: Record<string, Float32Array> = {};
  let o = 0;
  for (const s of specs) {
    const n = sizeOfShape(s.shape);
    out[s.name] = flat.subarray(o, o + n);
    o += n;
  }
  return out;
};

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

/**
 * Checks a file entry against the specs a config implies: the same tensors (names, shapes) in the same order, and
 * a byte count of 4 Σ |shape|. Left: what differs, in words.
 * @category encoding
 */
export const checkTensorLayout = (want: ReadonlyArray<ParamSpec>, entry: FileEntry): E.Either<{ readonly field: 'tensors' | 'bytes'; readonly message: string }, void> => {
  const got = entry.tensors;
  if (got.length !== want.length) return E.left({ field: 'tensors', message: `manifest lists ${got.length} tensors, the config has ${want.length}` });
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (g.name !== w.name || JSON.stringify(g.shape) !== JSON.stringify(w.shape))
      return E.left({ field: 'tensors', message: `tensor ${i} is ${g.name} [${g.shape.join(', ')}], the config needs ${w.name} [${w.shape.join(', ')}]` });
  }
  const need = 4 * want.reduce((a, s) => a + sizeOfShape(s.shape), 0);
  return entry.bytes === need ? E.right(undefined) : E.left({ field: 'bytes', message: `${entry.bytes}, but its tensors need ${need} bytes of float32` });
};

// -------------------------------------------------------------------------------------
// file system
// -------------------------------------------------------------------------------------

/** An fs failure: Node's error code (if any) and message. @category file system */
export interface FsProblem {
  readonly code: string | undefined;
  readonly message: string;
}

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

/** The pointer file of a stored directory. @category file system */
export const CURRENT = 'CURRENT';

/** A version directory's name: `<label>.<8 hex>` (label: letters, digits, `-`). */
const VERSION = /^[A-Za-z0-9-]+\.[0-9a-f]{8}$/;
/** Temporary entries of a writer: `.<version>.tmp` directories and `.CURRENT.tmp-<tag>` files. */
const TEMPORARY = /^\.(?:[A-Za-z0-9-]+\.[0-9a-f]{8}\.tmp|CURRENT\.tmp-[0-9a-f-]+)$/;

/**
 * The directory holding a stored value's files: `dir/<CURRENT's version>` when `dir` has a CURRENT, else `dir`
 * itself (a directory written before the pointer scheme). Left when CURRENT cannot be read or names no version.
 * @category file system
 */
export const storedDirectory = async (dir: string): Promise<E.Either<FsProblem, string>> => {
  const text = await attempt(() => fs.readFile(path.join(dir, CURRENT), 'utf8'));
  if (E.isLeft(text)) return text.left.code === 'ENOENT' || text.left.code === 'ENOTDIR' ? E.right(dir) : text;
  const name = text.right.trim();
  return VERSION.test(name) ? E.right(path.join(dir, name)) : E.left({ code: undefined, message: `${CURRENT} names no version directory (it holds ${JSON.stringify(text.right.slice(0, 40))})` });
};

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

/** Why a stored file could not be read. @category file system */
export type ReadProblem =
  | { readonly _tag: 'Missing' }
  | { readonly _tag: 'IO'; readonly message: string }
  | { readonly _tag: 'Size'; readonly actual: number; readonly expected: number }
  | { readonly _tag: 'Checksum'; readonly actual: string; readonly expected: string };

/** Reads `file` of the stored directory `dir` (through CURRENT) and checks its length and sha256 against `entry` before decoding the float32 values. @category file system */
export const readVerifiedFile = async (dir: string, file: string, entry: FileEntry): Promise<E.Either<ReadProblem, Float32Array>> => {
  const at = await storedDirectory(dir);
  if (E.isLeft(at)) return E.left({ _tag: 'IO', message: at.left.message });
  const read = await attempt(() => fs.readFile(path.join(at.right, file)));
  if (E.isLeft(read)) return E.left(read.left.code === 'ENOENT' ? { _tag: 'Missing' } : { _tag: 'IO', message: read.left.message });
  const b = read.right;
  if (b.byteLength !== entry.bytes) return E.left({ _tag: 'Size', actual: b.byteLength, expected: entry.bytes });
  const digest = sha256Hex(b);
  if (digest !== entry.sha256) return E.left({ _tag: 'Checksum', actual: digest, expected: entry.sha256 });
  return E.right(float32FromBytes(b));
};

/**
 * Why a directory's manifest could not be read: no such directory, no manifest.json, a manifest the codec refuses
 * (its problems name the fields), or a file-system error. Every case names the directory; the tags are those of the
 * weights store's `StoreError`, which adds the kind of weights to them.
 * @category file system
 */
export type ManifestProblem =
  | { readonly _tag: 'NotFound'; readonly dir: string; readonly message: string }
  | { readonly _tag: 'MissingFile'; readonly dir: string; readonly file: string }
  | { readonly _tag: 'BadManifest'; readonly dir: string; readonly problems: ReadonlyArray<string> }
  | { readonly _tag: 'IOError'; readonly dir: string; readonly message: string };

/** Reads the manifest.json of the stored directory `dir` (through CURRENT) and decodes it with `manifest` (io-ts; unknown keys as the codec says). @category file system */
export const readManifest = async <A, O>(dir: string, manifest: t.Type<A, O, unknown>): Promise<E.Either<ManifestProblem, A>> => {
  const st = await attempt(() => fs.stat(dir));
  if (E.isLeft(st)) return E.left({ _tag: 'NotFound', dir, message: st.left.code === 'ENOENT' ? 'no such directory' : st.left.message });
  if (!st.right.isDirectory()) return E.left({ _tag: 'NotFound', dir, message: 'not a directory' });
  const at = await storedDirectory(dir);
  if (E.isLeft(at)) return E.left({ _tag: 'IOError', dir, message: at.left.message });
  const text = await attempt(() => fs.readFile(path.join(at.right, 'manifest.json'), 'utf8'));
  if (E.isLeft(text)) return E.left(text.left.code === 'ENOENT' ? { _tag: 'MissingFile', dir, file: 'manifest.json' } : { _tag: 'IOError', dir, message: text.left.message });
  const decoded = codec.decodeJson(manifest, 'manifest.json')(text.right);
  return E.isLeft(decoded) ? E.left({ _tag: 'BadManifest', dir, problems: decoded.left.problems }) : E.right(decoded.right);
};
