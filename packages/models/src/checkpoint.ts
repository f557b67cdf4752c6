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
 * These files live in a version directory `step-<n>.<8 hex>/` of the checkpoint directory, whose `CURRENT` file names
 * the version that is the checkpoint (tensor-files): saving writes and fsyncs a complete new version, then replaces
 * CURRENT atomically, then removes the old version. At every moment the checkpoint path holds a loadable checkpoint
 * (the old or the new one; nothing before the first save), a crash or a failed save included; a failed save removes
 * its own files and leaves the existing checkpoint untouched. A flat checkpoint (the files directly in the directory,
 * as written before CURRENT existed) still loads. Loading validates the manifest with io-ts and every file's length and
 * checksum against it, and the tensor layout against the model config, before creating a single tensor.
 *
 * @module checkpoint
 */
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { random, codec } from '@score-sde/tensor-fp';
import type { SDE } from '@score-sde/sde-math';
import { type ScoreNetConfig, scoreNetSpec } from './scorenet';
import { type ParamSpec, type TensorRecord, paramsFromValues, recordFromValues } from './params';
import { TrainConfig, type TrainState } from './train';
import { FileEntry, type EncodedFile, readManifest as readManifestOf, checkTensorLayout, encodeTensorFile, readVerifiedFile, splitBySpecs, writeDirectoryAtomically } from './tensor-files';

// -------------------------------------------------------------------------------------
// manifest
// -------------------------------------------------------------------------------------

/** The four binary files of a checkpoint, in writing order. @category model */
export const CHECKPOINT_FILES = ['params.bin', 'ema.bin', 'adam-m.bin', 'adam-v.bin'] as const;
export type CheckpointFile = (typeof CHECKPOINT_FILES)[number];

/** Current format version. @category model */
export const CHECKPOINT_VERSION = 1;

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
      return `${where}: exists and is not a checkpoint directory (no CURRENT or manifest.json); refusing to replace it`;
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

// -------------------------------------------------------------------------------------
// saving
// -------------------------------------------------------------------------------------

const encodeFile = async (dir: string, file: CheckpointFile, specs: ReadonlyArray<ParamSpec>, r: TensorRecord): Promise<E.Either<CheckpointError, EncodedFile>> => {
  const encoded = await encodeTensorFile(specs, r);
  if (E.isRight(encoded)) return encoded;
  const p = encoded.left;
  return E.left(p._tag === 'Layout' ? { _tag: 'LayoutMismatch', dir, file, message: p.message } : { _tag: 'NonFiniteWeights', dir, file, tensor: p.tensor });
};

/**
 * Saves a training state atomically to `dir` (see the module comment). Refuses non-finite weights and a target
 * that exists but is not a checkpoint. `meta` is stored verbatim in the manifest (e.g. the loss history).
 * @category saving
 */
export const saveCheckpoint = (dir: string, config: TrainConfig, state: TrainState, meta?: Readonly<Record<string, unknown>>): TE.TaskEither<CheckpointError, void> => {
  const target = path.resolve(dir);
  const ioError = (e: unknown): CheckpointError => ({ _tag: 'IOError', dir, message: (e as Error).message });
  const encodeAll = async (): Promise<E.Either<CheckpointError, { readonly manifest: CheckpointManifest; readonly encoded: Record<CheckpointFile, EncodedFile> }>> => {
    const layout = checkpointLayout(config.model);
    const records: Record<CheckpointFile, TensorRecord> = { 'params.bin': state.params, 'ema.bin': state.ema, 'adam-m.bin': state.adam.m, 'adam-v.bin': state.adam.v };
    const encoded: Partial<Record<CheckpointFile, EncodedFile>> = {};
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
    return E.right({ manifest, encoded: encoded as Record<CheckpointFile, EncodedFile> });
  };
  return async () => {
    // Reading the tensors can throw (e.g. a disposed tensor): a TaskEither never rejects, so catch it here.
    const enc = await encodeAll().catch((e: unknown) => E.left<CheckpointError>(ioError(e)));
    if (E.isLeft(enc)) return enc;
    const { manifest, encoded } = enc.right;
    const files: ReadonlyArray<readonly [string, Uint8Array | string]> = [
      ...CHECKPOINT_FILES.map((f) => [f, encoded[f].bytes] as const),
      ['manifest.json', `${JSON.stringify(manifest, null, 2)}\n`],
    ];
    const written = await writeDirectoryAtomically(target, files, `step-${state.step}`);
    if (E.isLeft(written)) return E.left<CheckpointError>(written.left._tag === 'NotReplaceable' ? { _tag: 'NotACheckpoint', dir } : { _tag: 'IOError', dir, message: written.left.message });
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
    const ok = checkTensorLayout(layout[f], m.files[f]);
    if (E.isLeft(ok))
      return E.left(
        ok.left.field === 'tensors' ? { _tag: 'LayoutMismatch', dir, file: f, message: ok.left.message } : { _tag: 'BadManifest', dir, problems: [`files.${f}.bytes: ${ok.left.message}`] },
      );
  }
  return E.right(m);
};

const readManifest = (dir: string): TE.TaskEither<CheckpointError, CheckpointManifest> => () => readManifestOf(dir, CheckpointManifest);

const readBinary = (dir: string, m: CheckpointManifest, f: CheckpointFile): TE.TaskEither<CheckpointError, Float32Array> => async () => {
  const r = await readVerifiedFile(dir, f, m.files[f]);
  if (E.isRight(r)) return r;
  const p = r.left;
  switch (p._tag) {
    case 'Missing':
      return E.left({ _tag: 'MissingFile', dir, file: f });
    case 'IO':
      return E.left({ _tag: 'IOError', dir, message: p.message });
    case 'Size':
      return E.left({ _tag: 'SizeMismatch', dir, file: f, actual: p.actual, expected: p.expected });
    case 'Checksum':
      return E.left({ _tag: 'ChecksumMismatch', dir, file: f, actual: p.actual, expected: p.expected });
  }
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
              params: paramsFromValues(layout['params.bin'], splitBySpecs(bin.params, layout['params.bin'])),
              ema: recordFromValues(trainable, splitBySpecs(bin.ema, trainable)),
              adam: { step: m.adamStep, m: recordFromValues(trainable, splitBySpecs(bin.m, trainable)), v: recordFromValues(trainable, splitBySpecs(bin.v, trainable)) },
              step: m.step,
              key: m.key,
            },
          };
        }),
      ),
    ),
  );
