/**
 * Steps and their combinators. A step maps a sampler state over one interval [t, t_next] of a time grid; it
 * declares its maths as data (name, kind, order, stochastic, score evaluations per call) next to the function.
 *
 * - a **predictor** moves the state from t to t_next;
 * - a **corrector** acts at the state's own time t and ignores t_next (so "predictor, then corrector" corrects at
 *   t_next and "corrector, then predictor" at t, which is the reference code's order);
 * - {@link andThen}/{@link sequence} run steps one after the other on the same interval, {@link repeat} runs one
 *   n times, {@link pc} builds predictor–corrector samplers, {@link none} is the identity corrector.
 *
 * Score evaluations are counted, not declared: {@link defineStep} hands the body a counting wrapper of the score
 * and adds the real count to `nfe`.
 *
 * @module step
 */
import { tf, random, type Key } from '@score-sde/tensor-fp';
import type { ScoreFn } from '@score-sde/sde-math';
import { type SamplerState, type SolverMemory, releaseReplaced } from './state';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** The function of a step: (score, state at t, t_next) ↦ state. Pure; never disposes its input. @category model */
export type StepFn = (score: ScoreFn, state: SamplerState, tNext: number) => SamplerState;

/** Whether a step moves time (predictor), stays at t (corrector), or is built from others. @category model */
export type StepKind = 'predictor' | 'corrector' | 'composite';

/**
 * A step with its maths declared as data: `order` is the order of accuracy of its deterministic part (0 for
 * correctors), `nfePerStep` the score evaluations of one call ('adaptive' when the solver decides), and
 * `batchCoupling` the reasons a sample's path depends on the other samples of its batch — empty when the step is
 * batch-separable (sample b is then a function of its own key and the score alone, so a batch may be split into
 * shards, over threads or machines, without changing a sample).
 * @category model
 */
export interface Step {
  readonly name: string;
  readonly kind: StepKind;
  readonly order: number;
  readonly stochastic: boolean;
  readonly batchCoupling: ReadonlyArray<string>;
  readonly nfePerStep: number | 'adaptive';
  readonly step: StepFn;
}

/** A transform of the state applied after every step (inpainting's projection, for instance). @category model */
export type StateTransform = (state: SamplerState) => SamplerState;

/** What a step body returns: the new batch, its noise-free part, and what it changed of keys and memory. */
export interface StepOutput {
  readonly x: tf.Tensor;
  readonly xMean?: tf.Tensor;
  readonly keys?: ReadonlyArray<Key>;
  readonly memory?: SolverMemory;
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * Wraps a score (or any vector field (x, t) ↦ F(x, t)) so that every evaluation is counted: `calls()` is the number
 * of evaluations so far, and `onCall(n)`, when given, hears of evaluation n before it runs (progress displays).
 * @category constructors
 */
export const countingScore = <F extends ScoreFn>(score: F, onCall?: (n: number) => void): { readonly score: F; readonly calls: () => number } => {
  let n = 0;
  const counted = ((x: tf.Tensor, t: number) => {
    n += 1;
    onCall?.(n);
    return score(x, t);
  }) as F;
  return { score: counted, calls: () => n };
};

/**
 * Builds a step from its metadata and a body. The body runs in one tidy scope (everything it makes and does not
 * return is freed), receives a counting score, and returns the new batch; `t` becomes t_next for a predictor and
 * stays for a corrector; `nfe` grows by the evaluations the body really made; keys and memory are carried over
 * unless the body returns new ones.
 * @category constructors
 */
export const defineStep = (
  meta: Omit<Step, 'step'>,
  body: (score: ScoreFn, state: SamplerState, tNext: number) => StepOutput,
): Step => ({
  ...meta,
  step: (score, state, tNext) => {
    const counted = countingScore(score);
    let rest: Pick<StepOutput, 'keys' | 'memory'> = {};
    const out = tf.tidy(() => {
      const r = body(counted.score, state, tNext);
      rest = { keys: r.keys, memory: r.memory };
      const x0 = r.memory?.previous?.x0;
      return { x: r.x, xMean: r.xMean ?? r.x, ...(x0 !== undefined ? { x0 } : {}) };
    });
    const memory = rest.memory ?? state.memory;
    return {
      x: out.x,
      xMean: out.xMean,
      t: meta.kind === 'corrector' ? state.t : tNext,
      nfe: state.nfe + counted.calls(),
      keys: rest.keys ?? state.keys,
      ...(memory !== undefined ? { memory } : {}),
    };
  },
});

/**
 * Splits each sample's key and draws z ~ N(0, I) of the batch's shape, sample b from its own key:
 * (carry, use) = splitEach(keys), z_b = normalPerSample(use_b); returns the keys to carry on and the noise.
 * @category constructors
 */
export const perSampleNoise = (state: SamplerState): { readonly keys: ReadonlyArray<Key>; readonly z: tf.Tensor } => {
  const [carry, use] = random.splitEach(state.keys);
  return { keys: carry, z: random.normalPerSample(use, state.x.shape.slice(1)) };
};

/**
 * Runs `during` (a step's score evaluation and its deterministic update) while the step's noise is made: the draw of
 * {@link perSampleNoise} — (carry, use) = splitEach(keys), z_b = normalPerSample(use_b) — begun before `during` and taken
 * after it, so that where tensor-fp's kernel thread runs, the normals are made in that thread's idle moments of the
 * score evaluation (random.normalPerSampleAhead; the same bits whoever makes them). Returns `during`'s value, the keys
 * to carry on and z; the noise is dropped if `during` throws.
 * @category constructors
 */
export const noiseDuring = <A>(state: SamplerState, during: () => A): { readonly value: A; readonly keys: ReadonlyArray<Key>; readonly z: tf.Tensor } => {
  const [carry, use] = random.splitEach(state.keys);
  const pending = random.normalPerSampleAhead(use, state.x.shape.slice(1));
  let value: A;
  try {
    value = during();
  } catch (e) {
    pending.dispose();
    throw e;
  }
  return { value, keys: carry, z: pending.take() };
};

/**
 * The noise term of a stochastic step with a scalar scale c: x + c·z, z the same draw as {@link perSampleNoise}'s
 * (carry, use) = splitEach(keys), z_b = normalPerSample(use_b), with the bits of tf.add(x, tf.mul(z, c)); on wasm one
 * fused kernel (random.addNormalPerSample). Returns the keys to carry on and the noisy batch.
 * @category constructors
 */
export const addPerSampleNoise = (state: SamplerState, x: tf.Tensor, c: number): { readonly keys: ReadonlyArray<Key>; readonly x: tf.Tensor } => {
  const [carry, use] = random.splitEach(state.keys);
  return { keys: carry, x: random.addNormalPerSample(x, use, c) };
};

// -------------------------------------------------------------------------------------
// combinators
// -------------------------------------------------------------------------------------

/** The identity corrector: returns the state unchanged (no evaluation, no key used). @category combinators */
export const none: Step = { name: 'none', kind: 'corrector', order: 0, stochastic: false, batchCoupling: [], nfePerStep: 0, step: (_score, state) => state };

/**
 * The identity predictor: moves t to t_next and leaves the batch alone (the reference's `NonePredictor`), for
 * corrector-only samplers such as annealed Langevin dynamics: pc(nonePredictor, annealedLangevin(sde), n).
 * @category combinators
 */
export const nonePredictor: Step = {
  name: 'none-predictor',
  kind: 'predictor',
  order: 0,
  stochastic: false,
  batchCoupling: [],
  nfePerStep: 0,
  step: (_score, state, tNext) => ({ ...state, t: tNext }),
};

const nfeSum = (a: Step, b: Step): number | 'adaptive' =>
  a.nfePerStep === 'adaptive' || b.nfePerStep === 'adaptive' ? 'adaptive' : a.nfePerStep + b.nfePerStep;

const kindOf = (a: Step, b: Step): StepKind =>
  a.kind === 'corrector' && b.kind === 'corrector' ? 'corrector' : 'composite';

const orderOf = (a: Step, b: Step): number => {
  const moving = [a, b].filter((s) => s.kind !== 'corrector');
  return moving.length === 0 ? 0 : Math.min(...moving.map((s) => s.order));
};

/**
 * `first` then `second` on the same interval: (first ▸ second)(s) = second(first(s)). Associative, with
 * {@link none} as its unit. The composite is stochastic if either is, and couples its batch for the reasons of
 * either (their union). The intermediate state's own tensors are released.
 * @category combinators
 */
export const andThen = (first: Step, second: Step): Step => {
  if (first === none) return second;
  if (second === none) return first;
  return {
    name: `${first.name} ▸ ${second.name}`,
    kind: kindOf(first, second),
    order: orderOf(first, second),
    stochastic: first.stochastic || second.stochastic,
    batchCoupling: [...new Set([...first.batchCoupling, ...second.batchCoupling])],
    nfePerStep: nfeSum(first, second),
    step: (score, state, tNext) => {
      const mid = first.step(score, state, tNext);
      const out = second.step(score, mid, tNext);
      if (mid !== state) releaseReplaced(mid, out, state);
      return out;
    },
  };
};

/** Steps run in the order given: sequence(a, b, c) = a ▸ b ▸ c; sequence() = none. @category combinators */
export const sequence = (...steps: ReadonlyArray<Step>): Step => steps.reduce(andThen, none);

/** A step run n times in a row on the same interval (n = 0 gives {@link none}). @category combinators */
export const repeat = (step: Step, n: number): Step => {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`repeat: n must be an integer ≥ 0, got ${n}`);
  return n === 0 ? none : sequence(...new Array<Step>(n).fill(step));
};

/** Order of a predictor–corrector pair on an interval. @category model */
export type PCOrder = 'predictor-first' | 'corrector-first';

/**
 * A predictor–corrector step (Song et al. 2021, Alg. 1–2): with 'predictor-first' (default) the predictor moves
 * t → t_next, then n corrector steps act at t_next (predictor ▸ correctorⁿ); with 'corrector-first' (the
 * reference code's order) n corrector steps act at t, then the predictor moves (correctorⁿ ▸ predictor).
 * pc(p, none, n) = p.
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import { vp } from '@score-sde/sde-math';
 * import { pc, reverseDiffusion, eulerMaruyama, langevin, none } from '@score-sde/solvers';
 *
 * const sde = vp();
 * const step = pc(reverseDiffusion(sde, 100), langevin(sde, { snr: 0.16 }), 1); // predictor ▸ corrector per interval
 * assert.strictEqual(step.nfePerStep, 2);
 * assert.strictEqual(step.stochastic, true);
 * assert.strictEqual(pc(eulerMaruyama(sde), none, 3).nfePerStep, 1); // pc(p, none, n) = p
 * ```
 * @category combinators
 */
export const pc = (predictor: Step, corrector: Step, n = 1, opts: { readonly order?: PCOrder } = {}): Step => {
  const c = repeat(corrector, n);
  return (opts.order ?? 'predictor-first') === 'predictor-first' ? andThen(predictor, c) : andThen(c, predictor);
};

/**
 * A step followed by a state transform (e.g. inpainting's projection): (step ▸ transform)(s) = transform(step(s)).
 * @category combinators
 */
export const withTransform = (step: Step, transform: StateTransform, name = 'transform'): Step => ({
  ...step,
  name: `${step.name} ▸ ${name}`,
  step: (score, state, tNext) => {
    const mid = step.step(score, state, tNext);
    const out = transform(mid);
    if (mid !== state) releaseReplaced(mid, out, state);
    return out;
  },
});
