/**
 * Checkpoints on disk without tfjs-node: a directory
 *
 *   manifest.json   format + version, the full {@link TrainConfig} (model config, SDE record, loss, optimiser,
 *                   EMA decay, batch size), step, root key, Adam step, `meta` (caller's data), and for every binary file
 *                   its byte length, sha256 and tensor list (name, shape) in storage order
 *   params.bin      all weights (fixed Fourier frequencies included), float32 little-endian, concatenated
 *   ema.bin         EMA weights of the trainable names
 *   adam-m.bin      Adam first moments        adam-v.bin   Adam second moments
 *
 * Saving is atomic: everything is written into a temporary directory next to the target and fsynced, then the
 * old checkpoint (if any) is renamed aside, the new one renamed into place, and the old one removed. A failed
 * save removes its temporary directory and leaves the existing checkpoint untouched; the target path never
 * holds a half-written checkpoint. Loading validates the manifest with io-ts and every file's length and
 * checksum against it, and the tensor layout against the model config, before creating a single tensor.
 *
 * @module checkpoint
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { random, codec } from '@score-sde/tensor-fp';
import type { SDE } from '@score-sde/sde-math';
import { type ScoreNetConfig, scoreNetSpec } from './scorenet';
import { type ParamSpec, type TensorRecord, sizeOfShape, paramsFromValues, recordFromValues, recordValues } from './params';
import { TrainConfig, type TrainState } from './train';

// -------------------------------------------------------------------------------------
// manifest
// -------------------------------------------------------------------------------------

/** The four binary files of a checkpoint, in writing order. @category model */
export const CHECKPOINT_FILES = ['params.bin', 'ema.bin', 'adam-m.bin', 'adam-v.bin'] as const;
export type CheckpointFile = (typeof CHECKPOINT_FILES)[number];

/** Current format version. @category model */
export const CHECKPOINT_VERSION = 1;

const Sha256Hex = new t.Type<string, string, unknown>(
  'Sha256Hex',
  (u): u is string => typeof u === 'string' && /^[0-9a-f]{64}$/.test(u),
  (u, c) => (typeof u === 'string' && /^[0-9a-f]{64}$/.test(u) ? t.success(u) : t.failure(u, c)),
  t.identity,
);

const TensorEntry = codec.strict({ name: t.string, shape: t.array(codec.NonNegativeInt) }, 'TensorEntry');
const FileEntry = codec.strict({ bytes: codec.NonNegativeInt, sha256: Sha256Hex, tensors: t.array(TensorEntry) }, 'FileEntry');

/** io-ts codec of `manifest.json` (unknown keys rejected, every error naming its field). @category model */
export const CheckpointManifest = codec.strict(
  {
    format: t.literal('score-sde-ts/checkpoint'),
    version: t.literal(CHECKPOINT_VERSION),
    dtype: t.literal('float32'),
    byteOrder: t.literal('little-endian'),
    config: TrainConfig,
    step: codec.NonNegativeInt,
    key: random.KeyCodec,
    adamStep: codec.NonNegativeInt,
    files: codec.strict({ 'params.bin': FileEntry, 'ema.bin': FileEntry, 'adam-m.bin': FileEntry, 'adam-v.bin': FileEntry }, 'Files'),
    /** Free-form data of the caller (e.g. the loss history), stored verbatim; {} when none. */
    meta: t.UnknownRecord,
  },
  'CheckpointManifest',
);
export type CheckpointManifest = t.TypeOf<typeof CheckpointManifest>;

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/** Why a checkpoint could not be saved or loaded. Every case names the checkpoint directory. @category errors */
export type CheckpointError =
  | { readonly _tag: 'NotFound'; readonly dir: string; readonly message: string }
  | { readonly _tag: 'MissingFile'; readonly dir: string; readonly file: string }
  | { readonly _tag: 'BadManifest'; readonly dir: string; readonly problems: ReadonlyArray<string> }
  | { readonly _tag: 'SizeMismatch'; readonly dir: string; readonly file: string; readonly actual: number; readonly expected: number }
  | { readonly _tag: 'ChecksumMismatch'; readonly dir: string; readonly file: string; readonly actual: string; readonly expected: string }
  | { readonly _tag: 'LayoutMismatch'; readonly dir: string; readonly file: string; readonly message: string }
  | { readonly _tag: 'ConfigMismatch'; readonly dir: string; readonly field: string; readonly checkpoint: string; readonly requested: string }
  | { readonly _tag: 'NonFiniteWeights'; readonly dir: string; readonly file: string; readonly tensor: string }
  | { readonly _tag: 'NotACheckpoint'; readonly dir: string }
  | { readonly _tag: 'IOError'; readonly dir: string; readonly message: string };

/** A readable message, e.g. `checkpoint out/ckpt: params.bin is 1200 bytes, manifest says 4800`. @category errors */
export const renderCheckpointError = (e: CheckpointError): string => {
  const where = `checkpoint ${e.dir}`;
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
      return `${where}: ${e.field} is ${e.checkpoint} in the checkpoint, but ${e.requested} was requested`;
    case 'NonFiniteWeights':
      return `${where}: not saved, ${e.file} tensor ${e.tensor} holds NaN or ±Infinity`;
    case 'NotACheckpoint':
      return `${where}: exists and is not a checkpoint directory (no manifest.json); refusing to replace it`;
    case 'IOError':
      return `${where}: ${e.message}`;
  }
};

// -------------------------------------------------------------------------------------
// layout
// -------------------------------------------------------------------------------------

/** The tensors each file stores, in order: params.bin all specs, the others the trainable specs. @category layout */
export const checkpointLayout = (model: ScoreNetConfig): Readonly<Record<CheckpointFile, ReadonlyArray<ParamSpec>>> => {
  const all = scoreNetSpec(model);
  const trainable = all.filter((s) => s.trainable);
  return { 'params.bin': all, 'ema.bin': trainable, 'adam-m.bin': trainable, 'adam-v.bin': trainable };
};

const LE = os.endianness() === 'LE';

/** Float32 values as little-endian bytes. */
const toBytes = (parts: ReadonlyArray<Float32Array>): Buffer => {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const all = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  if (LE) return Buffer.from(all.buffer, all.byteOffset, all.byteLength);
  const b = Buffer.alloc(4 * n);
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

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

// -------------------------------------------------------------------------------------
// saving
// -------------------------------------------------------------------------------------

interface Encoded {
  readonly bytes: Buffer;
  readonly entry: t.TypeOf<typeof FileEntry>;
}

const encodeFile = async (dir: string, file: CheckpointFile, specs: ReadonlyArray<ParamSpec>, r: TensorRecord): Promise<E.Either<CheckpointError, Encoded>> => {
  const values = await recordValues(r, specs.map((s) => s.name));
  for (const s of specs) {
    const v = values[s.name]!;
    if (v.length !== sizeOfShape(s.shape)) return E.left({ _tag: 'LayoutMismatch', dir, file, message: `tensor ${s.name} has ${v.length} values, its shape [${s.shape.join(', ')}] needs ${sizeOfShape(s.shape)}` });
    if (!v.every(Number.isFinite)) return E.left({ _tag: 'NonFiniteWeights', dir, file, tensor: s.name });
  }
  const bytes = toBytes(specs.map((s) => values[s.name]!));
  return E.right({ bytes, entry: { bytes: bytes.byteLength, sha256: sha256(bytes), tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape] })) } });
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

/** fsync of a directory entry list; best effort (some file systems refuse it; the renames are atomic regardless). */
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

/** Whether `dir` may be replaced: it does not exist, is an empty directory, or is a checkpoint (has manifest.json). */
const replaceable = async (dir: string): Promise<boolean> => {
  const st = await fs.stat(dir).catch(() => undefined);
  if (st === undefined) return true;
  if (!st.isDirectory()) return false;
  const entries = await fs.readdir(dir);
  return entries.length === 0 || entries.includes('manifest.json');
};

/**
 * Saves a training state atomically to `dir` (see the module comment). Refuses non-finite weights and a target
 * that exists but is not a checkpoint. `meta` is stored verbatim in the manifest (e.g. the loss history).
 * @category saving
 */
export const saveCheckpoint = (dir: string, config: TrainConfig, state: TrainState, meta?: Readonly<Record<string, unknown>>): TE.TaskEither<CheckpointError, void> => {
  const target = path.resolve(dir);
  const ioError = (e: unknown): CheckpointError => ({ _tag: 'IOError', dir, message: (e as Error).message });
  const encodeAll = async (): Promise<E.Either<CheckpointError, { readonly manifest: CheckpointManifest; readonly encoded: Record<CheckpointFile, Encoded> }>> => {
    const layout = checkpointLayout(config.model);
    const records: Record<CheckpointFile, TensorRecord> = { 'params.bin': state.params, 'ema.bin': state.ema, 'adam-m.bin': state.adam.m, 'adam-v.bin': state.adam.v };
    const encoded: Partial<Record<CheckpointFile, Encoded>> = {};
    for (const f of CHECKPOINT_FILES) {
      const r = await encodeFile(dir, f, layout[f], records[f]);
      if (E.isLeft(r)) return r;
      encoded[f] = r.right;
    }
    const manifest: CheckpointManifest = {
      format: 'score-sde-ts/checkpoint',
      version: CHECKPOINT_VERSION,
      dtype: 'float32',
      byteOrder: 'little-endian',
      config,
      step: state.step,
      key: state.key,
      adamStep: state.adam.step,
      files: {
        'params.bin': encoded['params.bin']!.entry,
        'ema.bin': encoded['ema.bin']!.entry,
        'adam-m.bin': encoded['adam-m.bin']!.entry,
        'adam-v.bin': encoded['adam-v.bin']!.entry,
      },
      meta: { ...(meta ?? {}) },
    };
    return E.right({ manifest, encoded: encoded as Record<CheckpointFile, Encoded> });
  };
  return async () => {
    // Reading the tensors can throw (e.g. a disposed tensor): a TaskEither never rejects, so catch it here.
    const enc = await encodeAll().catch((e: unknown) => E.left<CheckpointError>(ioError(e)));
    if (E.isLeft(enc)) return enc;
    const { manifest, encoded } = enc.right;
    const canReplace = await replaceable(target).catch((e: unknown) => ioError(e));
    if (canReplace !== true) return E.left<CheckpointError>(canReplace === false ? { _tag: 'NotACheckpoint', dir } : canReplace);
    const parent = path.dirname(target);
    const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmp = path.join(parent, `.${path.basename(target)}.tmp-${tag}`);
    const aside = path.join(parent, `.${path.basename(target)}.old-${tag}`);
    try {
      await fs.mkdir(parent, { recursive: true });
      await fs.mkdir(tmp);
      for (const f of CHECKPOINT_FILES) await writeSynced(path.join(tmp, f), encoded[f]!.bytes);
      await writeSynced(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      await syncDir(tmp);
    } catch (e) {
      await fs.rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      return E.left(ioError(e));
    }
    // Swap: the target path holds either the complete old checkpoint, nothing, or the complete new one.
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
      return E.left(ioError(e));
    }
    if (hadOld) await fs.rm(aside, { recursive: true, force: true }).catch(() => undefined);
    return E.right(undefined);
  };
};

// -------------------------------------------------------------------------------------
// loading
// -------------------------------------------------------------------------------------

/** What a caller may require of a checkpoint it loads (mismatches are errors naming the field). @category loading */
export interface CheckpointExpectation {
  readonly model?: ScoreNetConfig;
  readonly sde?: SDE;
}

/** A loaded checkpoint: the run's config, a live state (new variables and tensors), and the stored `meta`. @category loading */
export interface LoadedCheckpoint {
  readonly config: TrainConfig;
  readonly state: TrainState;
  readonly meta: Readonly<Record<string, unknown>>;
}

const show = (v: unknown): string => JSON.stringify(v);

/** The first differing leaf between two JSON-like values, as [path, a, b]. */
const firstDifference = (a: unknown, b: unknown, at: string): [string, unknown, unknown] | undefined => {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  return show(a) === show(b) ? undefined : [at, a, b];
};

const checkExpectation = (dir: string, m: CheckpointManifest, expect: CheckpointExpectation): E.Either<CheckpointError, CheckpointManifest> => {
  for (const [field, requested, stored] of [
    ['model', expect.model, m.config.model],
    ['sde', expect.sde, m.config.sde],
  ] as const) {
    if (requested === undefined) continue;
    const d = firstDifference(stored, requested, field);
    if (d !== undefined) return E.left({ _tag: 'ConfigMismatch', dir, field: d[0], checkpoint: show(d[1]) ?? 'absent', requested: show(d[2]) ?? 'absent' });
  }
  return E.right(m);
};

const checkLayout = (dir: string, m: CheckpointManifest): E.Either<CheckpointError, CheckpointManifest> => {
  const layout = checkpointLayout(m.config.model);
  for (const f of CHECKPOINT_FILES) {
    const want = layout[f];
    const got = m.files[f].tensors;
    if (got.length !== want.length)
      return E.left({ _tag: 'LayoutMismatch', dir, file: f, message: `manifest lists ${got.length} tensors, the model config has ${want.length}` });
    for (let i = 0; i < want.length; i++) {
      const w = want[i]!;
      const g = got[i]!;
      if (g.name !== w.name || show(g.shape) !== show(w.shape))
        return E.left({ _tag: 'LayoutMismatch', dir, file: f, message: `tensor ${i} is ${g.name} [${g.shape.join(', ')}], the model config needs ${w.name} [${w.shape.join(', ')}]` });
    }
    const need = 4 * want.reduce((a, s) => a + sizeOfShape(s.shape), 0);
    if (m.files[f].bytes !== need)
      return E.left({ _tag: 'BadManifest', dir, problems: [`files.${f}.bytes: ${m.files[f].bytes}, but its tensors need ${need} bytes of float32`] });
  }
  return E.right(m);
};

/** Runs an fs call, turning a rejection into a Left of its error code and message (no `instanceof`: Node's errors may come from another realm). */
const attempt = async <A>(f: () => Promise<A>): Promise<E.Either<{ readonly code: string | undefined; readonly message: string }, A>> => {
  try {
    return E.right(await f());
  } catch (e) {
    return E.left({ code: (e as NodeJS.ErrnoException).code, message: String((e as Error).message) });
  }
};

const readManifest = (dir: string): TE.TaskEither<CheckpointError, CheckpointManifest> => async () => {
  const st = await attempt(() => fs.stat(dir));
  if (E.isLeft(st)) return E.left({ _tag: 'NotFound', dir, message: st.left.code === 'ENOENT' ? 'no such directory' : st.left.message });
  if (!st.right.isDirectory()) return E.left({ _tag: 'NotFound', dir, message: 'not a directory' });
  const text = await attempt(() => fs.readFile(path.join(dir, 'manifest.json'), 'utf8'));
  if (E.isLeft(text))
    return E.left(text.left.code === 'ENOENT' ? { _tag: 'MissingFile', dir, file: 'manifest.json' } : { _tag: 'IOError', dir, message: text.left.message });
  return pipe(
    codec.decodeJson(CheckpointManifest, 'manifest.json')(text.right),
    E.mapLeft((d): CheckpointError => ({ _tag: 'BadManifest', dir, problems: d.problems })),
  );
};

const readBinary = (dir: string, m: CheckpointManifest, f: CheckpointFile): TE.TaskEither<CheckpointError, Float32Array> => async () => {
  const read = await attempt(() => fs.readFile(path.join(dir, f)));
  if (E.isLeft(read)) return E.left(read.left.code === 'ENOENT' ? { _tag: 'MissingFile', dir, file: f } : { _tag: 'IOError', dir, message: read.left.message });
  const b = read.right;
  const entry = m.files[f];
  if (b.byteLength !== entry.bytes) return E.left({ _tag: 'SizeMismatch', dir, file: f, actual: b.byteLength, expected: entry.bytes });
  const digest = sha256(b);
  if (digest !== entry.sha256) return E.left({ _tag: 'ChecksumMismatch', dir, file: f, actual: digest, expected: entry.sha256 });
  return E.right(fromBytes(b));
};

const split = (flat: Float32Array, specs: ReadonlyArray<ParamSpec>): Record<string, Float32Array> => {
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
 * Loads a checkpoint: validates manifest.json (io-ts, fields named), the requested model config / SDE, the
 * tensor layout, and each file's length and sha256; only then creates the state's variables and tensors.
 * @category loading
 */
export const loadCheckpoint = (dir: string, expect: CheckpointExpectation = {}): TE.TaskEither<CheckpointError, LoadedCheckpoint> =>
  pipe(
    readManifest(dir),
    TE.chainEitherK((m) => checkExpectation(dir, m, expect)),
    TE.chainEitherK((m) => checkLayout(dir, m)),
    TE.chain((m) =>
      pipe(
        TE.Do,
        TE.apS('params', readBinary(dir, m, 'params.bin')),
        TE.apS('ema', readBinary(dir, m, 'ema.bin')),
        TE.apS('m', readBinary(dir, m, 'adam-m.bin')),
        TE.apS('v', readBinary(dir, m, 'adam-v.bin')),
        TE.map((bin): LoadedCheckpoint => {
          const layout = checkpointLayout(m.config.model);
          const trainable = layout['ema.bin'];
          return {
            config: m.config,
            meta: m.meta,
            state: {
              params: paramsFromValues(layout['params.bin'], split(bin.params, layout['params.bin'])),
              ema: recordFromValues(trainable, split(bin.ema, trainable)),
              adam: { step: m.adamStep, m: recordFromValues(trainable, split(bin.m, trainable)), v: recordFromValues(trainable, split(bin.v, trainable)) },
              step: m.step,
              key: m.key,
            },
          };
        }),
      ),
    ),
  );
