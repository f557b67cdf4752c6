/**
 * The stored-directory format under every kind of weights (checkpoints, classifiers), read through any
 * {@link StoreSource} (a Node directory, a URL, the files of a folder a browser picked): each binary file is its
 * tensors' values, float32 little-endian, concatenated in a listed order, and described in the manifest by a
 * {@link FileEntry} = {bytes, sha256, tensors [(name, shape)]}.
 *
 *   dir/CURRENT          one line: the name of the version directory that is the stored value
 *   dir/<label>.<8 hex>/ a complete version: manifest.json and the binary files
 *
 * A directory of the older flat layout (manifest.json and the files directly inside it, no CURRENT) reads as itself.
 * Reading resolves CURRENT, decodes the manifest with the kind's io-ts codec, and checks a file's length and sha256
 * against its entry before a single value is used. Writing is Node's (tensor-files.ts). Runs on any host.
 *
 * @module stored-format
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import { type ParamSpec, sizeOfShape } from './params';
import type { FsProblem, StoreSource } from './store-source';

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

/** Whether this host stores numbers little-endian (every host tfjs runs on, in practice). @category bytes */
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Little-endian bytes as float32 values (a copy). @category bytes */
export const float32FromBytes = (b: Uint8Array): Float32Array => {
  const out = new Float32Array(b.byteLength / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(b);
  else {
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  }
  return out;
};

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

/**
 * Checks a file entry against the specs a config implies: the same tensors (names, shapes) in the same order, and
 * a byte count of 4 Σ |shape|. Left: what differs, in words.
 * @category layout
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
// versions
// -------------------------------------------------------------------------------------

/** The pointer file of a stored directory. @category versions */
export const CURRENT = 'CURRENT';

/** A version directory's name: `<label>.<8 hex>` (label: letters, digits, `-`). @category versions */
export const VERSION = /^[A-Za-z0-9-]+\.[0-9a-f]{8}$/;

/**
 * Where a stored value's files are, relative to the source: `<CURRENT's version>/` when the source has a CURRENT, else
 * `''` (a directory written before the pointer scheme). Left when CURRENT cannot be read or names no version.
 * @category versions
 */
export const storedPrefix = async (source: StoreSource): Promise<E.Either<FsProblem, string>> => {
  const text = await source.readText(CURRENT);
  if (E.isLeft(text)) return text.left.code === 'ENOENT' || text.left.code === 'ENOTDIR' ? E.right('') : text;
  const name = text.right.trim();
  return VERSION.test(name) ? E.right(`${name}/`) : E.left({ code: undefined, message: `${CURRENT} names no version directory (it holds ${JSON.stringify(text.right.slice(0, 40))})` });
};

// -------------------------------------------------------------------------------------
// reading
// -------------------------------------------------------------------------------------

/** Why a stored file could not be read. @category reading */
export type ReadProblem =
  | { readonly _tag: 'Missing' }
  | { readonly _tag: 'IO'; readonly message: string }
  | { readonly _tag: 'Size'; readonly actual: number; readonly expected: number }
  | { readonly _tag: 'Checksum'; readonly actual: string; readonly expected: string };

/** Reads `file` of the stored value (through CURRENT) and checks its length and sha256 against `entry` before decoding the float32 values. @category reading */
export const readVerifiedFrom = async (source: StoreSource, file: string, entry: FileEntry): Promise<E.Either<ReadProblem, Float32Array>> => {
  const at = await storedPrefix(source);
  if (E.isLeft(at)) return E.left({ _tag: 'IO', message: at.left.message });
  const read = await source.readBytes(`${at.right}${file}`);
  if (E.isLeft(read)) return E.left(read.left.code === 'ENOENT' ? { _tag: 'Missing' } : { _tag: 'IO', message: read.left.message });
  const b = read.right;
  if (b.byteLength !== entry.bytes) return E.left({ _tag: 'Size', actual: b.byteLength, expected: entry.bytes });
  const digest = await source.sha256(b);
  if (digest !== entry.sha256) return E.left({ _tag: 'Checksum', actual: digest, expected: entry.sha256 });
  return E.right(float32FromBytes(b));
};

/**
 * Why a directory's manifest could not be read: no such directory, no manifest.json, a manifest the codec refuses
 * (its problems name the fields), or a read error. Every case names the directory; the tags are those of the
 * weights store's `StoreError`, which adds the kind of weights to them.
 * @category reading
 */
export type ManifestProblem =
  | { readonly _tag: 'NotFound'; readonly dir: string; readonly message: string }
  | { readonly _tag: 'MissingFile'; readonly dir: string; readonly file: string }
  | { readonly _tag: 'BadManifest'; readonly dir: string; readonly problems: ReadonlyArray<string> }
  | { readonly _tag: 'IOError'; readonly dir: string; readonly message: string };

/** Reads the manifest.json of the stored value (through CURRENT) and decodes it with `manifest` (io-ts; unknown keys as the codec says). @category reading */
export const readManifestFrom = async <A, O>(source: StoreSource, manifest: t.Type<A, O, unknown>): Promise<E.Either<ManifestProblem, A>> => {
  const dir = source.dir;
  const st = await source.isDirectory();
  if (E.isLeft(st)) return E.left({ _tag: 'NotFound', dir, message: st.left.code === 'ENOENT' ? 'no such directory' : st.left.message });
  if (!st.right) return E.left({ _tag: 'NotFound', dir, message: 'not a directory' });
  const at = await storedPrefix(source);
  if (E.isLeft(at)) return E.left({ _tag: 'IOError', dir, message: at.left.message });
  const text = await source.readText(`${at.right}manifest.json`);
  if (E.isLeft(text)) return E.left(text.left.code === 'ENOENT' ? { _tag: 'MissingFile', dir, file: 'manifest.json' } : { _tag: 'IOError', dir, message: text.left.message });
  const decoded = codec.decodeJson(manifest, 'manifest.json')(text.right);
  return E.isLeft(decoded) ? E.left({ _tag: 'BadManifest', dir, problems: decoded.left.problems }) : E.right(decoded.right);
};
