/**
 * The training loop: {@link trainStep} over the epochs of a data set, the one loop every caller uses
 * (`experiments:mnist`, the tests, the benchmarks).
 *
 * Step s trains on the batch `batchIndices(dataKey, n, B, s)`, epoch e = ⌊s / ⌈n/B⌉⌋ visiting the images in the order
 * permutation(foldIn(dataKey, e)) (computed once per epoch). Between steps the loop yields to the event loop and
 * asks `shouldStop` (a Ctrl-C handler), so a step is never interrupted halfway. With a checkpoint directory it
 * saves at the end of every epoch, every `every` steps, and when stopped, with the losses so far in the manifest's
 * `meta`. Because every random choice is a function of the root key and the step, and the state is saved exactly,
 * k steps + save + load + (n − k) steps ≡ n steps, bit for bit.
 *
 * A non-finite loss or gradient ends the loop with the last good state (the weights before the failed step,
 * unchanged); with a checkpoint directory that state is saved there first (unless it is the one stored there
 * already), so the last good state is on disk even when the very first step fails. A save that fails ends the loop
 * too; the checkpoint saved before it, if any, stays intact (checkpoints are written atomically).
 *
 * A step's part gradients may come from elsewhere (`parts`: e.g. data-parallel workers, `experiments`' train workers):
 * they are the values {@link stepPartGradients} computes here, so where they ran changes no bit. If that source fails,
 * the loop says why (`onPartsLost`) and computes the parts here from that step on, losing nothing.
 *
 * @module train-loop
 */
import * as E from 'fp-ts/Either';
import { macrotask, type tf } from '@score-sde/tensor-fp';
import type { TrainConfig, TrainState } from './train-config';
import { type TrainError, type PartGradient, trainStep, applyPartGradients, batchForStep, labelsForStep, runKeys, renderTrainError } from './train';
import { saveCheckpoint } from './checkpoint';
import { type CheckpointError, renderCheckpointError } from './checkpoint-format';
import { type MnistData, batchesPerEpoch, epochOrder } from './mnist';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** Where to save while training: the directory and the step cadence (0 or absent: at epoch ends and on stop only). @category model */
export interface CheckpointCadence {
  readonly dir: string;
  readonly every?: number;
  /** The step of the state the directory holds already (a run resumed from it), so that it is not written again. */
  readonly storedStep?: number;
}

/**
 * Computes step s's part gradients somewhere else, e.g. in data-parallel workers: exactly the values
 * `stepPartGradients(config)(state, x0, labels)` gives in this process, in part order; a Left says why it could not.
 * @category model
 */
export type PartGradientSource = (state: TrainState, x0: tf.Tensor, labels: ArrayLike<number> | undefined) => Promise<E.Either<string, ReadonlyArray<PartGradient>>>;

/** Options of {@link trainLoop}. @category model */
export interface TrainLoopOptions {
  /** Train until the state's step count reaches this. */
  readonly untilStep: number;
  /** Losses of the steps taken before this state (a resumed run), kept in the checkpoints' `meta.losses`. */
  readonly losses?: ReadonlyArray<number>;
  readonly checkpoint?: CheckpointCadence;
  /**
   * States also saved after a given step, each as a checkpoint of its own in `dir` (e.g. the earlier, weaker model
   * that autoguidance extrapolates from). A run that starts past a snapshot's step leaves that snapshot as it is.
   */
  readonly snapshots?: ReadonlyArray<{ readonly step: number; readonly dir: string }>;
  /** Where the steps' part gradients are computed (default: here, {@link trainStep}). */
  readonly parts?: PartGradientSource;
  /** Called once if `parts` fails: the steps from then on compute their parts here (the same bits). */
  readonly onPartsLost?: (reason: string) => void;
  /** Asked after every step; true ends training there (the state is saved when a checkpoint directory is given). */
  readonly shouldStop?: () => boolean;
  /** Before the first step of an epoch in this run: epoch e (0-based) spans steps [start, end); `step` is where this run enters it. */
  readonly onEpochStart?: (e: { readonly epoch: number; readonly start: number; readonly end: number; readonly step: number }) => void;
  /** After each step: the steps taken, its loss, and the mean loss of this epoch's steps so far in this run. */
  readonly onStep?: (s: { readonly step: number; readonly loss: number; readonly epochMeanLoss: number }) => void;
  /** After an epoch ends (or training stops) and its checkpoint is saved: its mean loss over the steps of this run (undefined: none). */
  readonly onEpochEnd?: (e: { readonly epoch: number; readonly step: number; readonly meanLoss: number | undefined }) => void;
}

/** A loop that ran to `untilStep` or was stopped: the state, every loss (those given first), and whether it was stopped. @category model */
export interface TrainLoopResult {
  readonly state: TrainState;
  readonly losses: ReadonlyArray<number>;
  readonly stopped: boolean;
}

/** What a diverged loop kept: the last good state stored in the checkpoint directory (saved now or already there), nothing (no directory), or the failed save of it. @category model */
export type KeptState =
  | { readonly _tag: 'stored'; readonly dir: string }
  | { readonly _tag: 'none' }
  | { readonly _tag: 'unsaved'; readonly error: CheckpointError };

/**
 * Why the loop ended early: a non-finite loss or gradient, or a checkpoint that could not be saved. `state` is the
 * last good state (the caller owns and disposes it), `losses` every loss up to it; a divergence says what it `kept`.
 * @category model
 */
export type TrainLoopFailure =
  | { readonly _tag: 'Diverged'; readonly error: TrainError; readonly state: TrainState; readonly losses: ReadonlyArray<number>; readonly kept: KeptState }
  | { readonly _tag: 'SaveFailed'; readonly error: CheckpointError; readonly state: TrainState; readonly losses: ReadonlyArray<number> };

/**
 * A message for a {@link TrainLoopFailure} that says what is kept, e.g. `loss is NaN at step 5: training stopped, the
 * weights are those after step 4. The last good state (step 4) is saved at out/checkpoint`, or `could not save the
 * checkpoint to out/checkpoint: …; the checkpoint saved there before, if any, is intact`.
 * @category model
 */
export const renderTrainLoopFailure = (f: TrainLoopFailure): string => {
  if (f._tag === 'SaveFailed') return `could not save the checkpoint to ${f.error.dir}: ${renderCheckpointError(f.error)}; the checkpoint saved there before, if any, is intact`;
  const diverged = renderTrainError(f.error);
  switch (f.kept._tag) {
    case 'stored':
      return `${diverged}. The last good state (step ${f.state.step}) is saved at ${f.kept.dir}`;
    case 'unsaved':
      return `${diverged}. The last good state could not be saved either (${renderCheckpointError(f.kept.error)}); the last checkpoint saved before, if any, is kept at ${f.kept.error.dir}`;
    case 'none':
      return diverged;
  }
};

// -------------------------------------------------------------------------------------
// the loop
// -------------------------------------------------------------------------------------

/**
 * Trains from `state` until `o.untilStep` steps (see the module comment). The input state is consumed (used
 * linearly, as {@link trainStep} does); the result, Right or Left, holds the state to continue with or dispose.
 * @category training
 */
export const trainLoop =
  (config: TrainConfig) =>
  async (state: TrainState, data: MnistData, o: TrainLoopOptions): Promise<E.Either<TrainLoopFailure, TrainLoopResult>> => {
    const here = trainStep(config);
    const apply = applyPartGradients(config);
    let source = o.parts;
    const step = async (st: TrainState, x0: tf.Tensor, labels: ArrayLike<number> | undefined): Promise<E.Either<TrainError, { readonly state: TrainState; readonly loss: number }>> => {
      if (source !== undefined) {
        const parts = await source(st, x0, labels);
        if (E.isRight(parts)) return apply(st, parts.right);
        source = undefined;
        o.onPartsLost?.(parts.left);
      }
      return here(st, x0, labels);
    };
    const perEpoch = batchesPerEpoch(data.count, config.batchSize);
    const dataKey = runKeys(state.key).data;
    const losses: number[] = [...(o.losses ?? [])];
    const every = o.checkpoint?.every ?? 0;
    // The step of the state the checkpoint directory holds (undefined: none known), so a failure does not rewrite it.
    let storedStep = o.checkpoint?.storedStep;
    const save = async (s: TrainState): Promise<E.Either<CheckpointError, void>> => {
      if (o.checkpoint === undefined) return E.right(undefined);
      const r = await saveCheckpoint(o.checkpoint.dir, config, s, { losses: [...losses] })();
      if (E.isRight(r)) storedStep = s.step;
      return r;
    };
    /** Saves the last good state of a diverged run (the state before the failed step), unless it is stored already. */
    const keep = async (s: TrainState): Promise<KeptState> => {
      if (o.checkpoint === undefined) return { _tag: 'none' };
      const stored = { _tag: 'stored', dir: o.checkpoint.dir } as const;
      if (storedStep === s.step) return stored;
      const r = await save(s);
      return E.isRight(r) ? stored : { _tag: 'unsaved', error: r.left };
    };
    let s = state;
    let stopped = false;
    while (s.step < o.untilStep && !stopped) {
      const epoch = Math.floor(s.step / perEpoch);
      const end = Math.min(o.untilStep, (epoch + 1) * perEpoch);
      const order = epochOrder(dataKey, data.count, epoch);
      o.onEpochStart?.({ epoch, start: epoch * perEpoch, end, step: s.step });
      let sum = 0;
      let count = 0;
      while (s.step < end) {
        const labels = labelsForStep(config, s, data, order);
        const x0 = batchForStep(config, s, data, order);
        const r = await step(s, x0, labels);
        x0.dispose();
        if (E.isLeft(r)) return E.left({ _tag: 'Diverged', error: r.left, state: s, losses, kept: await keep(s) });
        s = r.right.state;
        losses.push(r.right.loss);
        sum += r.right.loss;
        count += 1;
        o.onStep?.({ step: s.step, loss: r.right.loss, epochMeanLoss: sum / count });
        for (const snap of o.snapshots ?? []) {
          if (snap.step !== s.step) continue;
          const saved = await saveCheckpoint(snap.dir, config, s, { losses: [...losses] })();
          if (E.isLeft(saved)) return E.left({ _tag: 'SaveFailed', error: saved.left, state: s, losses });
        }
        if (every > 0 && s.step % every === 0 && s.step < end) {
          const saved = await save(s);
          if (E.isLeft(saved)) return E.left({ _tag: 'SaveFailed', error: saved.left, state: s, losses });
        }
        await macrotask();
        if (o.shouldStop?.() === true) {
          stopped = true;
          break;
        }
      }
      const saved = await save(s);
      if (E.isLeft(saved)) return E.left({ _tag: 'SaveFailed', error: saved.left, state: s, losses });
      o.onEpochEnd?.({ epoch, step: s.step, meanLoss: count > 0 ? sum / count : undefined });
    }
    return E.right({ state: s, losses, stopped });
  };
