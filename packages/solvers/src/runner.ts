/**
 * Running a sampler: an async iterator of states over the time grid, with cancellation, and `sample`, which
 * returns the final batch (x̄ at the last point when denoising, as the references do by default).
 *
 * @module runner
 */
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { tf, macrotask, type Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { type SamplerState, disposeState, priorState, releaseReplaced, stateAt } from './state';
import type { Step, StateTransform } from './step';
import { type TimeGrid, isDecreasing } from './grid';
import { type SolverFailure, isSolverFailure } from './ode';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/**
 * A sampler as a value: the SDE, the time grid, the step applied on each interval, an optional state transform
 * applied after every step (and to the initial state), and whether to return x̄ (`xMean`) at the end.
 * @category model
 */
export interface Sampler {
  readonly sde: SDE;
  readonly grid: TimeGrid;
  readonly step: Step;
  readonly transform?: StateTransform;
  /** Return xMean instead of x at the end (default true). */
  readonly denoise?: boolean;
}

/** Where a run starts: per-sample keys and the sample shape (prior draw at grid[0]), or a given batch `x`. @category model */
export interface RunOptions {
  readonly keys: ReadonlyArray<Key>;
  readonly sampleShape?: ReadonlyArray<number>;
  /** Start from this batch at grid[0] instead of the prior (decoding a latent, for instance). Not disposed. */
  readonly x?: tf.Tensor;
  readonly signal?: AbortSignal;
  /** {@link sample} calls it after each interval of the grid: step i of `steps`, score evaluations so far. */
  readonly onStep?: (p: StepProgress) => void;
}

/** Where a run stands after step `step` of `steps` (grid intervals), with `nfe` score evaluations so far. @category model */
export interface StepProgress {
  readonly step: number;
  readonly steps: number;
  readonly nfe: number;
}

/** The final batch of a run and the work it took. @category model */
export interface SampleResult {
  readonly x: tf.Tensor;
  readonly nfe: number;
  readonly steps: number;
}

/** Why a run did not produce a batch. @category model */
export type SamplerError =
  | { readonly _tag: 'Cancelled'; readonly t: number; readonly nfe: number }
  | { readonly _tag: 'InvalidGrid'; readonly message: string }
  | { readonly _tag: 'InvalidStart'; readonly message: string }
  | { readonly _tag: 'NonFinite'; readonly nfe: number }
  | { readonly _tag: 'SolverFailed'; readonly failure: SolverFailure['cause'] };

// -------------------------------------------------------------------------------------
// running
// -------------------------------------------------------------------------------------

const startState = (sampler: Sampler, opts: RunOptions): SamplerState => {
  const t0 = sampler.grid[0]!;
  if (opts.x !== undefined) return stateAt(tf.clone(opts.x), t0, opts.keys);
  if (opts.sampleShape === undefined) throw new RangeError('run: give either sampleShape or x');
  return priorState(sampler.sde, opts.keys, opts.sampleShape, t0);
};

const checkStart = (sampler: Sampler, opts: RunOptions): string | undefined => {
  if (!isDecreasing(sampler.grid)) return 'the time grid must be strictly decreasing with at least two points';
  if (opts.keys.length === 0) return 'keys: need one key per sample (got none)';
  if (opts.x === undefined && opts.sampleShape === undefined) return 'give either sampleShape or x';
  if (opts.x !== undefined && opts.x.shape[0] !== opts.keys.length) return `x has batch ${opts.x.shape[0]} but ${opts.keys.length} keys were given`;
  return undefined;
};

/** Applies the sampler's transform to a state, releasing what it replaces. */
const transformed = (sampler: Sampler, s: SamplerState): SamplerState => {
  if (sampler.transform === undefined) return s;
  const out = sampler.transform(s);
  releaseReplaced(s, out);
  return out;
};

/**
 * Runs the sampler on the score as an async iterator of states: first the start state at grid[0], then the
 * state after each interval. A yielded state is valid until the iterator advances (clone what you keep); the
 * iterator disposes everything when it finishes, is broken out of, or the signal aborts (it then stops early).
 * Throws a `RangeError` on an invalid start (use {@link sample} for an Either).
 * @category running
 */
export async function* run(sampler: Sampler, score: ScoreFn, opts: RunOptions): AsyncGenerator<SamplerState, void, undefined> {
  const problem = checkStart(sampler, opts);
  if (problem !== undefined) throw new RangeError(`run: ${problem}`);
  let state = transformed(sampler, startState(sampler, opts));
  try {
    yield state;
    for (let i = 1; i < sampler.grid.length; i++) {
      // Yield to the event loop, so an abort from a timer, a signal handler or I/O can land between steps.
      await macrotask();
      if (opts.signal?.aborted === true) return;
      const next = transformed(sampler, sampler.step.step(score, state, sampler.grid[i]!));
      releaseReplaced(state, next);
      state = next;
      yield state;
    }
  } finally {
    disposeState(state);
  }
}

/**
 * Runs the sampler to the end of its grid and returns the final batch: x̄ (`xMean`) when denoising (default),
 * else x, calling `opts.onStep` after every interval. Left on cancellation, an invalid grid or start, a solver
 * failure, or a non-finite result.
 * @category running
 */
export const sample =
  (sampler: Sampler, score: ScoreFn, opts: RunOptions): TE.TaskEither<SamplerError, SampleResult> =>
  async (): Promise<E.Either<SamplerError, SampleResult>> => {
    if (!isDecreasing(sampler.grid)) return E.left({ _tag: 'InvalidGrid', message: 'the time grid must be strictly decreasing with at least two points' });
    const problem = checkStart(sampler, opts);
    if (problem !== undefined) return E.left({ _tag: 'InvalidStart', message: problem });
    const denoise = sampler.denoise ?? true;
    let last: { x: tf.Tensor; t: number; nfe: number; steps: number } | undefined;
    try {
      let steps = -1;
      for await (const s of run(sampler, score, opts)) {
        steps += 1;
        if (last !== undefined) last.x.dispose();
        last = { x: tf.clone(denoise ? s.xMean : s.x), t: s.t, nfe: s.nfe, steps };
        if (steps > 0) opts.onStep?.({ step: steps, steps: sampler.grid.length - 1, nfe: s.nfe });
      }
    } catch (e) {
      if (last !== undefined) last.x.dispose();
      if (isSolverFailure(e)) return E.left({ _tag: 'SolverFailed', failure: e.cause });
      throw e;
    }
    if (last === undefined) return E.left({ _tag: 'InvalidStart', message: 'no state was produced' });
    if (last.steps < sampler.grid.length - 1) {
      last.x.dispose();
      return E.left({ _tag: 'Cancelled', t: last.t, nfe: last.nfe });
    }
    const finite = tf.tidy(() => tf.all(tf.isFinite(last!.x)).dataSync()[0] === 1);
    if (!finite) {
      last.x.dispose();
      return E.left({ _tag: 'NonFinite', nfe: last.nfe });
    }
    return E.right({ x: last.x, nfe: last.nfe, steps: last.steps });
  };
