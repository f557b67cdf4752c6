/**
 * The checkpoint format, read from any {@link StoreSource}: a directory
 *
 *   manifest.json   format + version, the full {@link TrainConfig} (model config, SDE record, loss, optimiser,
 *                   EMA decay, batch size), step, root key, Adam step, `meta` (caller's data), and for every binary file
 *                   its byte length, sha256 and tensor list (name, shape) in storage order
 *   params.bin      all weights (fixed Fourier frequencies included), float32 little-endian, concatenated
 *   ema.bin         EMA weights of the trainable names
 *   adam-m.bin      Adam first moments        adam-v.bin   Adam second moments
 *
 * in the version directory `step-<n>.<8 hex>/` that the checkpoint directory's `CURRENT` names (or, as written before
 * CURRENT existed, directly in the directory). Loading validates the manifest with io-ts, the tensor layout against the
 * model config, and every file's length and checksum, before creating a single tensor. Saving is Node's
 * (checkpoint.ts); this module runs on any host, so a web page loads a checkpoint with the same checks and messages.
 *
 * @module checkpoint-format
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { random, codec } from '@score-sde/tensor-fp';
import type { SDE } from '@score-sde/sde-math';
import { type ScoreNetConfig, scoreNetSpec } from './scorenet';
import { type ParamSpec, paramsFromValues, recordFromValues } from './params';
import { TrainConfig, type TrainState } from './train-config';
import { FileEntry } from './stored-format';
import { type StoreError, type WeightsKind, renderStoreError, loadWeightsFrom } from './weights-load';
import type { StoreSource } from './store-source';

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

/** Why a checkpoint could not be saved or loaded: the one {@link StoreError} of every kind of weights. @category errors */
export type CheckpointError = StoreError;

/** A readable message, e.g. `checkpoint out/ckpt: params.bin is 1200 bytes, manifest says 4800`. @category errors */
export const renderCheckpointError: (e: CheckpointError) => string = renderStoreError;

// -------------------------------------------------------------------------------------
// layout
// -------------------------------------------------------------------------------------

/** The tensors each file stores, in order: params.bin all specs, the others the trainable specs. @category layout */
export const checkpointLayout = (model: ScoreNetConfig): Readonly<Record<CheckpointFile, ReadonlyArray<ParamSpec>>> => {
  const all = scoreNetSpec(model);
  const trainable = all.filter((s) => s.trainable);
  return { 'params.bin': all, 'ema.bin': trainable, 'adam-m.bin': trainable, 'adam-v.bin': trainable };
};

/** Checkpoints as a kind of stored weights. @category layout */
export const checkpointKind: WeightsKind<CheckpointManifest> = {
  name: 'checkpoint',
  manifest: CheckpointManifest,
  files: (m) => {
    const layout = checkpointLayout(m.config.model);
    return CHECKPOINT_FILES.map((file) => ({ file, entry: m.files[file], field: `files.${file}`, specs: layout[file] }));
  },
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
    if (d !== undefined) return E.left({ _tag: 'ConfigMismatch', kind: checkpointKind.name, dir, field: d[0], stored: show(d[1]) ?? 'absent', requested: show(d[2]) ?? 'absent' });
  }
  return E.right(m);
};

/**
 * Loads a checkpoint from a source (a Node directory, a URL, a picked folder): validates manifest.json (io-ts, fields
 * named), the requested model config / SDE, the tensor layout, and each file's length and sha256; only then creates
 * the state's variables and tensors. Messages name `source.dir`.
 * @category loading
 */
export const loadCheckpointFrom =
  (source: StoreSource, expect: CheckpointExpectation = {}): TE.TaskEither<CheckpointError, LoadedCheckpoint> =>
  async () => {
    const loaded = await loadWeightsFrom(checkpointKind, source, (m) => checkExpectation(source.dir, m, expect));
    if (E.isLeft(loaded)) return loaded;
    const { manifest: m, values } = loaded.right;
    const layout = checkpointLayout(m.config.model);
    const trainable = layout['ema.bin'];
    return E.right({
      config: m.config,
      meta: m.meta,
      state: {
        params: paramsFromValues(layout['params.bin'], values['params.bin']!),
        ema: recordFromValues(trainable, values['ema.bin']!),
        adam: { step: m.adamStep, m: recordFromValues(trainable, values['adam-m.bin']!), v: recordFromValues(trainable, values['adam-v.bin']!) },
        step: m.step,
        key: m.key,
      },
    });
  };
