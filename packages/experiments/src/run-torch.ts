/**
 * The PyTorch twin at the command line (models' torch-twin.ts holds the mapping): a checkpoint's weights exported as
 * a safetensors file of the tutorial ScoreNet, and such a file imported as a checkpoint that every command here
 * samples, evaluates, composes with, or trains further.
 *
 * @module run-torch
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { codec, random } from '@score-sde/tensor-fp';
import type { SDE } from '@score-sde/sde-math';
import { loadCheckpoint, saveCheckpoint, renderCheckpointError, emaParams, disposeTrainState, exportTorch, importTorch, stateFromImport, parameterisationOf, dataRangeOf } from '@score-sde/models';
import { report } from './lib';
import { type ExperimentError, type Weights, fail } from './pipeline';

/**
 * Writes the `weights` of the checkpoint `dir` (its EMA weights, as every sampler here uses, or the raw ones) as the
 * safetensors file `out` (atomically).
 * @category torch
 */
export const exportCheckpoint = async (dir: string, out: string, weights: Weights): Promise<E.Either<ExperimentError, { readonly bytes: number }>> => {
  const loaded = await loadCheckpoint(dir)();
  if (E.isLeft(loaded)) return fail(`--checkpoint: ${renderCheckpointError(loaded.left)}`);
  const { config, state } = loaded.right;
  if (config.model.classes !== undefined) {
    disposeTrainState(state);
    return fail(`--checkpoint: ${dir} is a class-conditional network (${config.model.classes} classes); the PyTorch twin is the tutorial's unconditional ScoreNet, which has no label table`);
  }
  try {
    const bytes = await exportTorch(weights === 'ema' ? emaParams(state) : state.params, {
      model: config.model,
      sde: config.sde,
      parameterisation: parameterisationOf(config),
      dataRange: dataRangeOf(config),
      weights,
      step: state.step,
    });
    const w = await report.atomicWriteFile(path.resolve(out), bytes)();
    return E.isLeft(w) ? fail(`--out: ${report.renderIoError(w.left)}`) : E.right({ bytes: bytes.byteLength });
  } finally {
    disposeTrainState(state);
  }
};

/**
 * Reads the safetensors file `file` (the tutorial ScoreNet's names and layouts; `sde` when the file does not say)
 * and writes it as the checkpoint `out`: its weights as both the weights and the EMA weights, Adam at step 0, the
 * run's key from `seed`, the project's default training settings.
 * @category torch
 */
export const importWeights = async (file: string, out: string, o: { readonly sde?: SDE; readonly seed: number }): Promise<E.Either<ExperimentError, { readonly parameters: number }>> => {
  const bytes = await fs.readFile(file).then(
    (b) => E.right(b),
    (e: unknown) => E.left((e as Error).message),
  );
  if (E.isLeft(bytes)) return fail(`--weights: ${bytes.left}`);
  const imp = importTorch(bytes.right, path.basename(file), o.sde);
  if (E.isLeft(imp)) return fail(`--weights: ${codec.renderDecodeError(imp.left)}`);
  const { config, state } = stateFromImport(imp.right, random.key(o.seed));
  try {
    const saved = await saveCheckpoint(out, config, state, { importedFrom: path.resolve(file) })();
    return E.isLeft(saved) ? fail(`--out: ${renderCheckpointError(saved.left)}`) : E.right({ parameters: Object.values(imp.right.values).reduce((a, v) => a + v.length, 0) });
  } finally {
    disposeTrainState(state);
  }
};
