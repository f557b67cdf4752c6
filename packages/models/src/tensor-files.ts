/**
 * Directories of float32 tensor files, the storage under every checkpoint format of the project (ScoreNet training
 * states, classifiers): each binary file is its tensors' values, float32 little-endian, concatenated in a listed
 * order, and described in the directory's manifest by a {@link FileEntry} = {bytes, sha256, tensors [(name, shape)]}.
 *
 * Writing is atomic: every file goes into a temporary directory next to the target and is fsynced; then an existing
 * target is renamed aside, the new directory renamed into place (the old one renamed back if that fails) and the old
 * one removed. The target path never holds a half-written directory. Reading checks a file's length and sha256
 * against its entry before a single value is used.
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

const writeSynced = async (file: string, data: Uint8Array | string): Promise<void> => {
  const fh = await fs.open(file, 'w');
  try {
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

const exists = async (p: string): Promise<boolean> =>
  fs.stat(p).then(
    () => true,
    () => false,
  );

/** Whether `dir` may be replaced: it does not exist, is an empty directory, or holds a manifest.json. */
const replaceable = async (dir: string): Promise<boolean> => {
  const st = await fs.stat(dir).catch(() => undefined);
  if (st === undefined) return true;
  if (!st.isDirectory()) return false;
  const entries = await fs.readdir(dir);
  return entries.length === 0 || entries.includes('manifest.json');
};

/** Why a directory was not written: the target holds something else, or the file system failed. @category file system */
export type WriteProblem = { readonly _tag: 'NotReplaceable' } | { readonly _tag: 'IO'; readonly message: string };

/**
 * Writes `files` (name ↦ bytes or text, `manifest.json` among them) as the directory `target`, atomically (see the
 * module comment). Refuses to replace a target that exists and is neither empty nor holds a manifest.json.
 * @category file system
 */
export const writeDirectoryAtomically = async (target: string, files: ReadonlyArray<readonly [string, Uint8Array | string]>): Promise<E.Either<WriteProblem, void>> => {
  const io = (e: unknown): E.Either<WriteProblem, never> => E.left({ _tag: 'IO', message: String((e as Error).message) });
  const canReplace = await attempt(() => replaceable(target));
  if (E.isLeft(canReplace)) return io(canReplace.left);
  if (!canReplace.right) return E.left({ _tag: 'NotReplaceable' });
  const parent = path.dirname(target);
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = path.join(parent, `.${path.basename(target)}.tmp-${tag}`);
  const aside = path.join(parent, `.${path.basename(target)}.old-${tag}`);
  try {
    await fs.mkdir(parent, { recursive: true });
    await fs.mkdir(tmp);
    for (const [name, data] of files) await writeSynced(path.join(tmp, name), data);
    await syncDir(tmp);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    return io(e);
  }
  // Swap: the target path holds either the complete old directory, nothing, or the complete new one.
  const hadOld = await exists(target);
  try {
    if (hadOld) await fs.rename(target, aside);
    try {
      await fs.rename(tmp, target);
    } catch (e) {
      if (hadOld) await fs.rename(aside, target);
      throw e;
    }
    await syncDir(parent);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    return io(e);
  }
  if (hadOld) await fs.rm(aside, { recursive: true, force: true }).catch(() => undefined);
  return E.right(undefined);
};

/** Why a stored file could not be read. @category file system */
export type ReadProblem =
  | { readonly _tag: 'Missing' }
  | { readonly _tag: 'IO'; readonly message: string }
  | { readonly _tag: 'Size'; readonly actual: number; readonly expected: number }
  | { readonly _tag: 'Checksum'; readonly actual: string; readonly expected: string };

/** Reads `dir/file` and checks its length and sha256 against `entry` before decoding the float32 values. @category file system */
export const readVerifiedFile = async (dir: string, file: string, entry: FileEntry): Promise<E.Either<ReadProblem, Float32Array>> => {
  const read = await attempt(() => fs.readFile(path.join(dir, file)));
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

/** Reads `dir/manifest.json` and decodes it with `manifest` (io-ts; unknown keys as the codec says). @category file system */
export const readManifest = async <A, O>(dir: string, manifest: t.Type<A, O, unknown>): Promise<E.Either<ManifestProblem, A>> => {
  const st = await attempt(() => fs.stat(dir));
  if (E.isLeft(st)) return E.left({ _tag: 'NotFound', dir, message: st.left.code === 'ENOENT' ? 'no such directory' : st.left.message });
  if (!st.right.isDirectory()) return E.left({ _tag: 'NotFound', dir, message: 'not a directory' });
  const text = await attempt(() => fs.readFile(path.join(dir, 'manifest.json'), 'utf8'));
  if (E.isLeft(text)) return E.left(text.left.code === 'ENOENT' ? { _tag: 'MissingFile', dir, file: 'manifest.json' } : { _tag: 'IOError', dir, message: text.left.message });
  const decoded = codec.decodeJson(manifest, 'manifest.json')(text.right);
  return E.isLeft(decoded) ? E.left({ _tag: 'BadManifest', dir, problems: decoded.left.problems }) : E.right(decoded.right);
};
