/**
 * Running a sampler: an async iterator of states over the time grid and the final step to t = 0, with
 * cancellation, and `sample`, which returns the final batch.
 *
 * A sampler ends in two stages. The grid takes the batch from T down to ε > 0 (the score is singular at t = 0);
 * then the sampler's `final` step takes it from ε to t = 0: by default Tweedie's denoiser
 * x̂₀ = E[x₀ | x_ε] = (x_ε + s(ε)² ∇log p_ε(x_ε)) / m(ε) ({@link tweedieDenoise}; one score evaluation), which removes
 * the noise of level s(ε) that every state at ε still holds (score_sde's `denoise=True` and the extra denoising step
 * after its probability-flow ODE; EDM's σ grid ends at σ = 0 for the same reason). With `final: none` the run stops
 * at ε and returns the p_ε state (x̄, the batch without its last noise injection).
 *
 * @module runner
 */
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { tf, macrotask, type Key } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, posteriorMean } from '@score-sde/sde-math';
import { type SamplerState, disposeState, priorState, releaseReplaced, stateAt } from './state';
import { type Step, type StateTransform, defineStep, none } from './step';
import { type TimeGrid, isDecreasing } from './grid';
import { type SolverFailure, isSolverFailure } from './ode';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/**
 * A sampler as a value: the SDE, the time grid (T down to ε), the step applied on each interval, an optional state
 * transform applied after every step (and to the initial state), and the final step from ε to t = 0
 * (default {@link tweedieDenoise}; {@link none} stops at ε).
 * @category model
 */
export interface Sampler {
  readonly sde: SDE;
  readonly grid: TimeGrid;
  readonly step: Step;
  readonly transform?: StateTransform;
  /** The step from the grid's last time ε to t = 0 (default: Tweedie's denoiser; `none`: stop at ε). */
  readonly final?: Step;
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
// the final step
// -------------------------------------------------------------------------------------

/**
 * Tweedie's denoiser as a step from t to 0 (Efron 2011; Song et al. 2021, App. G "denoising"):
 *   x̂₀ = E[x₀ | x_t = x] = (x + s(t)² ∇log p_t(x)) / m(t),
 * the posterior mean of the clean data under the kernel x_t = m(t) x₀ + s(t) n. One score evaluation; no noise.
 * For a Gaussian-mixture p₀ with component k ~ N(μ_k, Σ_k), given k the map is affine,
 * x̂₀ = μ_k + m Σ_k (m² Σ_k + s² I)⁻¹ (x − m μ_k), so x̂₀ | k ~ N(μ_k, m² Σ_k (m² Σ_k + s² I)⁻¹ Σ_k), and the full map
 * mixes these affine maps through the posterior responsibilities p(k | x_t).
 * @category final
 */
export const tweedieDenoise = (sde: SDE): Step =>
  defineStep({ name: 'tweedie', kind: 'predictor', order: 1, stochastic: false, batchCoupling: [], nfePerStep: 1 }, (score, s) => ({ x: posteriorMean(sde, score)(s.x, s.t) }));

/** The sampler's final step: `final`, or Tweedie's denoiser when none is given. @category final */
export const finalStep = (sampler: Sampler): Step => sampler.final ?? tweedieDenoise(sampler.sde);

/** Whether the run takes a final step to t = 0: its final step is not `none` and its grid ends above 0. @category final */
export const denoises = (sampler: Sampler): boolean => finalStep(sampler) !== none && sampler.grid[sampler.grid.length - 1]! > 0;

/** The number of steps a run takes: the grid's intervals, plus the final step when it denoises. @category final */
export const stepCount = (sampler: Sampler): number => sampler.grid.length - 1 + (denoises(sampler) ? 1 : 0);

/** The sampler's name: its step, then its final step (`euler-maruyama → tweedie`). @category final */
export const samplerName = (sampler: Sampler): string => (denoises(sampler) ? `${sampler.step.name} → ${finalStep(sampler).name}` : sampler.step.name);

/** The batch a run returns from its last state: x̄ (`xMean`), which is x itself after a final step. @category final */
export const outputOf = (state: SamplerState): tf.Tensor => state.xMean;

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
 * state after each interval, then (when it denoises) the state at t = 0 after the final step. A yielded state is valid until the iterator advances (clone what you keep); the
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
    const final = finalStep(sampler);
    const times = denoises(sampler) ? [...sampler.grid, 0] : sampler.grid;
    for (let i = 1; i < times.length; i++) {
      // Yield to the event loop, so an abort from a timer, a signal handler or I/O can land between steps.
      await macrotask();
      if (opts.signal?.aborted === true) return;
      const step = i < sampler.grid.length ? sampler.step : final;
      const next = transformed(sampler, step.step(score, state, times[i]!));
      releaseReplaced(state, next);
      state = next;
      yield state;
    }
  } finally {
    disposeState(state);
  }
}

/**
 * Runs the sampler to the end (its grid, then its final step) and returns the final batch ({@link outputOf}: the
 * denoised x̂₀ by default, x̄ at ε with `final: none`). Left on cancellation, an invalid grid or start, a solver
 * failure, or a non-finite result. Calls `opts.onStep` after every step.
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import * as E from 'fp-ts/Either';
 * import { random } from '@score-sde/tensor-fp';
 * import { ve, gaussian, exactScore } from '@score-sde/sde-math';
 * import { type Sampler, sample, uniformGrid, eulerMaruyama } from '@score-sde/solvers';
 *
 * const sde = ve();
 * const sampler: Sampler = { sde, grid: uniformGrid(sde, 50), step: eulerMaruyama(sde) };
 * const keys = random.split(random.key(1), 8); // one key per sample
 * const result = await sample(sampler, exactScore(sde, gaussian([3], [0.5])), { keys, sampleShape: [1] })();
 * assert.ok(E.isRight(result));
 * if (E.isRight(result)) {
 *   assert.deepStrictEqual(result.right.x.shape, [8, 1]);
 *   assert.strictEqual(result.right.nfe, 50 + 1); // one score evaluation per interval, one for Tweedie's final step
 *   result.right.x.dispose();
 * }
 * ```
 * @category running
 */
export const sample =
  (sampler: Sampler, score: ScoreFn, opts: RunOptions): TE.TaskEither<SamplerError, SampleResult> =>
  async (): Promise<E.Either<SamplerError, SampleResult>> => {
    if (!isDecreasing(sampler.grid)) return E.left({ _tag: 'InvalidGrid', message: 'the time grid must be strictly decreasing with at least two points' });
    const problem = checkStart(sampler, opts);
    if (problem !== undefined) return E.left({ _tag: 'InvalidStart', message: problem });
    let last: { x: tf.Tensor; t: number; nfe: number; steps: number } | undefined;
    try {
      let steps = -1;
      for await (const s of run(sampler, score, opts)) {
        steps += 1;
        if (last !== undefined) last.x.dispose();
        last = { x: tf.clone(outputOf(s)), t: s.t, nfe: s.nfe, steps };
        if (steps > 0) opts.onStep?.({ step: steps, steps: stepCount(sampler), nfe: s.nfe });
      }
    } catch (e) {
      if (last !== undefined) last.x.dispose();
      if (isSolverFailure(e)) return E.left({ _tag: 'SolverFailed', failure: e.cause });
      throw e;
    }
    if (last === undefined) return E.left({ _tag: 'InvalidStart', message: 'no state was produced' });
    if (last.steps < stepCount(sampler)) {
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
