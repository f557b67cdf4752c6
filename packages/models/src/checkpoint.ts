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
 * The format and its loading from any source are checkpoint-format.ts's; this module saves and loads directories
 * (Node). Stored through the one weights store (weights-store.ts), in a version directory `step-<n>.<8 hex>/` of the
 * checkpoint directory whose `CURRENT` file names the version that is the checkpoint (tensor-files): saving writes and
 * fsyncs a complete new version, then replaces CURRENT atomically, then removes the old version. At every moment the
 * checkpoint path holds a loadable checkpoint (the old or the new one; nothing before the first save), a crash or a
 * failed save included; a failed save removes its own files and leaves the existing checkpoint untouched. A flat
 * checkpoint (the files directly in the directory, as written before CURRENT existed) still loads. Loading validates
 * the manifest with io-ts, the tensor layout against the model config, and every file's length and checksum, before
 * creating a single tensor.
 *
 * @module checkpoint
 */
import * as E from 'fp-ts/Either';
import type * as TE from 'fp-ts/TaskEither';
import type { TrainConfig, TrainState } from './train-config';
import { fsSource } from './tensor-files';
import { saveWeights } from './weights-store';
import { type CheckpointError, type CheckpointExpectation, type CheckpointManifest, type LoadedCheckpoint, CHECKPOINT_VERSION, checkpointKind, checkpointLayout, loadCheckpointFrom } from './checkpoint-format';

// -------------------------------------------------------------------------------------
// saving
// -------------------------------------------------------------------------------------

/**
 * Saves a training state atomically to `dir` (see the module comment). Refuses non-finite weights and a target
 * that exists but is not a checkpoint. `meta` is stored verbatim in the manifest (e.g. the loss history).
 * @category saving
 */
export const saveCheckpoint =
  (dir: string, config: TrainConfig, state: TrainState, meta?: Readonly<Record<string, unknown>>): TE.TaskEither<CheckpointError, void> =>
  async () => {
    const layout = checkpointLayout(config.model);
    const saved = await saveWeights(
      checkpointKind,
      dir,
      [
        { file: 'params.bin', specs: layout['params.bin'], record: state.params },
        { file: 'ema.bin', specs: layout['ema.bin'], record: state.ema },
        { file: 'adam-m.bin', specs: layout['adam-m.bin'], record: state.adam.m },
        { file: 'adam-v.bin', specs: layout['adam-v.bin'], record: state.adam.v },
      ],
      (entries): CheckpointManifest => ({
        format: 'score-sde-ts/checkpoint',
        version: CHECKPOINT_VERSION,
        dtype: 'float32',
        byteOrder: 'little-endian',
        config,
        step: state.step,
        key: state.key,
        adamStep: state.adam.step,
        files: { 'params.bin': entries['params.bin']!, 'ema.bin': entries['ema.bin']!, 'adam-m.bin': entries['adam-m.bin']!, 'adam-v.bin': entries['adam-v.bin']! },
        meta: { ...(meta ?? {}) },
      }),
      `step-${state.step}`,
    );
    return E.map(() => undefined)(saved);
  };

// -------------------------------------------------------------------------------------
// loading
// -------------------------------------------------------------------------------------

/**
 * Loads a checkpoint directory ({@link loadCheckpointFrom} over the file system): validates manifest.json (io-ts,
 * fields named), the requested model config / SDE, the tensor layout, and each file's length and sha256; only then
 * creates the state's variables and tensors.
 * @category loading
 */
export const loadCheckpoint = (dir: string, expect: CheckpointExpectation = {}): TE.TaskEither<CheckpointError, LoadedCheckpoint> => loadCheckpointFrom(fsSource(dir), expect);
