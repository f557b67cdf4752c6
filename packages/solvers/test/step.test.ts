/**
 * Laws of the step combinators and of the runner: `none` is the unit of `andThen`, `andThen` is associative,
 * pc(p, none, n) = p, NFE counts real score evaluations, runs are cancellable and leak no tensor.
 */
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import { tf, initBackend, random, liveTensors, type Key } from '@score-sde/tensor-fp';
import { vp, ve, exactScore, type ScoreFn } from '@score-sde/sde-math';
import {
  type Step,
  type SamplerState,
  andThen,
  sequence,
  repeat,
  none,
  nonePredictor,
  pc,
  eulerMaruyama,
  reverseDiffusion,
  ancestralSampling,
  langevin,
  annealedLangevin,
  pfHeun,
  edmHeun,
  dpmSolverPP2M,
  priorState,
  disposeState,
  releaseReplaced,
  uniformGrid,
  run,
  sample,
} from '@score-sde/solvers';
import { mixtures } from './conformance';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const STATES = 'exact: every observable of the state after two steps (x, x̄, t, nfe, keys) equal, from the same prior draw and keys';

const unit = identity({
  concept: 'steps',
  title: 'none is the unit of andThen',
  formula: String.raw`$\mathrm{none} \mathbin{▸} s = s = s \mathbin{▸} \mathrm{none}$`,
  source: 'none returns its state unchanged: steps under ▸ (andThen) form a monoid (cf. fp-ts Endomorphism)',
  tolerance: STATES,
});

const associative = identity({
  concept: 'steps',
  title: 'andThen is associative',
  formula: String.raw`$(a \mathbin{▸} b) \mathbin{▸} c = a \mathbin{▸} (b \mathbin{▸} c)$`,
  source: 'andThen is composition of state transitions, which is associative',
  tolerance: STATES,
});

const pcNone = identity({
  concept: 'steps',
  title: 'A predictor–corrector pair without corrector is its predictor',
  formula: String.raw`$\mathrm{pc}(p, \mathrm{none}, n) = p$ for every $n$ and both orders`,
  source: 'pc(p, c, n) = p ▸ cⁿ and noneⁿ = none (the unit law)',
  tolerance: STATES,
});

const pcSequence = identity({
  concept: 'steps',
  title: 'pc is a predictor followed (or preceded) by n corrector steps',
  formula: String.raw`$\mathrm{pc}(p, c, n) = p \mathbin{▸} c^n$ (predictor-first), $\ c^n \mathbin{▸} p$ (corrector-first)`,
  source: 'Song et al. 2021, Alg. 1 (PC sampling), with the reference order (corrector first) as an option',
  tolerance: STATES,
});

const metadata = identity({
  concept: 'steps',
  title: 'Step metadata composes',
  formula: String.raw`$t(c(s)) = t(s),\ t(p(s, t')) = t'$; $\ \mathrm{nfe}(a \mathbin{▸} b) = \mathrm{nfe}(a) + \mathrm{nfe}(b)$; $\ \mathrm{stochastic}(a \mathbin{▸} b) = \mathrm{stochastic}(a) \lor \mathrm{stochastic}(b)$`,
  source: 'a corrector acts at fixed t, a predictor moves to t_next; the declared data of a composite is the sum / or of its parts',
  tolerance: 'exact',
});

const nfeCounts = identity({
  concept: 'steps',
  title: 'NFE counts real score evaluations',
  formula: String.raw`$\mathrm{nfe}(\text{state}) = \#\{\text{calls of the score}\}$, and a full run of pc(reverse-diffusion, langevin, 2) on 25 intervals, then the Tweedie step, costs $25 \times 3 + 1$`,
  source: 'counted by an independent counter wrapped around the score',
  tolerance: 'exact',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const sde = vp();
const m = mixtures['2-D'];
const score = exactScore(sde, m);

/** A pool of predictors and correctors to combine (DPM-Solver carries memory; EDM with churn draws noise). */
const predictors: ReadonlyArray<Step> = [eulerMaruyama(sde), reverseDiffusion(sde, 20), ancestralSampling(sde), pfHeun(sde), edmHeun(sde, { gamma: 0.2 }), dpmSolverPP2M(sde)];
const correctors: ReadonlyArray<Step> = [langevin(sde), langevin(sde, { norm: 'per-sample' }), annealedLangevin(sde), none];
const pool = [...predictors, ...correctors, nonePredictor];

/** A counter of score calls independent of the library's own counting. */
const externalCounter = (): { score: ScoreFn; calls: () => number } => {
  let n = 0;
  return {
    score: (x, t) => {
      n++;
      return score(x, t);
    },
    calls: () => n,
  };
};

/** Applies a step over the grid [0.8 → 0.7 → 0.6] from a fixed prior draw; returns everything observable. */
const observe = (step: Step, keys: ReadonlyArray<Key>): { x: number[]; xMean: number[]; t: number; nfe: number; keys: ReadonlyArray<Key> } => {
  const before = liveTensors();
  const s0 = priorState(sde, keys, [2], 0.8);
  const s1 = step.step(score, s0, 0.7);
  const s2 = step.step(score, s1, 0.6);
  const out = { x: Array.from(s2.x.dataSync()), xMean: Array.from(s2.xMean.dataSync()), t: s2.t, nfe: s2.nfe, keys: s2.keys };
  releaseReplaced(s0, s1);
  releaseReplaced(s1, s2);
  disposeState(s2);
  // Composite steps release their intermediate states: nothing is left once the caller releases what it owns.
  expect(liveTensors()).toBe(before);
  return out;
};

const stepArb = fc.constantFrom(...pool);
const keysArb = fc.integer({ min: 0, max: 2 ** 31 - 1 }).map((seed) => random.split(random.key(seed), 4));

describe('combinator laws', () => {
  test('none is the unit of andThen: none ▸ s = s = s ▸ none (identical states)', () => {
    fc.assert(
      fc.property(stepArb, keysArb, (s, keys) => {
        const ref = observe(s, keys);
        unit.equal(observe(andThen(none, s), keys), ref);
        unit.equal(observe(andThen(s, none), keys), ref);
      }),
      runs(12),
    );
  });

  test('andThen is associative: (a ▸ b) ▸ c = a ▸ (b ▸ c) (identical states)', () => {
    fc.assert(
      fc.property(stepArb, stepArb, stepArb, keysArb, (a, b, c, keys) => {
        associative.equal(observe(andThen(andThen(a, b), c), keys), observe(andThen(a, andThen(b, c)), keys));
      }),
      runs(15),
    );
  });

  test('pc(p, none, n) = p for every n and both orders (identical states)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...predictors), fc.integer({ min: 0, max: 3 }), fc.constantFrom('predictor-first', 'corrector-first' as const), keysArb, (p, n, order, keys) => {
        pcNone.equal(observe(pc(p, none, n, { order: order as 'predictor-first' | 'corrector-first' }), keys), observe(p, keys));
      }),
      runs(12),
    );
  });

  test('pc(p, c, n) = p ▸ cⁿ (predictor-first) and cⁿ ▸ p (corrector-first)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...predictors), fc.constantFrom(...correctors), fc.integer({ min: 0, max: 2 }), keysArb, (p, c, n, keys) => {
        pcSequence.equal(observe(pc(p, c, n), keys), observe(sequence(p, ...new Array<Step>(n).fill(c)), keys));
        pcSequence.equal(observe(pc(p, c, n, { order: 'corrector-first' }), keys), observe(sequence(...new Array<Step>(n).fill(c), p), keys));
      }),
      runs(10),
    );
  });

  test('a corrector keeps t and a predictor moves it to t_next; metadata composes (nfe adds, stochastic ors)', () => {
    const c = langevin(sde);
    const p = eulerMaruyama(sde);
    const s0 = priorState(sde, random.split(random.key(1), 3), [2], 0.5);
    const sc = c.step(score, s0, 0.4);
    const sp = p.step(score, s0, 0.4);
    metadata.equal(sc.t, 0.5);
    metadata.equal(sp.t, 0.4);
    metadata.equal(nonePredictor.step(score, s0, 0.4).t, 0.4);
    [sc, sp].forEach((s) => releaseReplaced(s, s0));
    disposeState(s0);
    const both = pc(pfHeun(sde), c, 2);
    metadata.equal(both.nfePerStep, 2 + 2);
    metadata.equal(both.stochastic, true);
    metadata.equal(pc(pfHeun(sde), none, 3).stochastic, false);
    expect(repeat(c, 0)).toBe(none);
  });
});

describe('ownership', () => {
  test('a step never disposes its input state, composites included (the caller owns it)', () => {
    fc.assert(
      fc.property(stepArb, stepArb, stepArb, keysArb, (a, b, c, keys) => {
        const s0 = priorState(sde, keys, [2], 0.8);
        const s1 = sequence(a, b, c).step(score, s0, 0.7);
        expect(s0.x.isDisposed).toBe(false);
        expect(s0.xMean.isDisposed).toBe(false);
        releaseReplaced(s0, s1);
        disposeState(s1);
      }),
      runs(20),
    );
  });
});

describe('score evaluations', () => {
  test('nfe counts real evaluations: the state’s nfe equals an external counter of the score calls', () => {
    fc.assert(
      fc.property(stepArb, stepArb, keysArb, (a, b, keys) => {
        const counted = externalCounter();
        const s0 = priorState(sde, keys, [2], 0.8);
        const s1 = andThen(a, b).step(counted.score, s0, 0.7);
        nfeCounts.equal(s1.nfe, counted.calls());
        releaseReplaced(s0, s1);
        disposeState(s1);
      }),
      runs(12),
    );
  });

  test('a full run reports the evaluations the score really received', async () => {
    const counted = externalCounter();
    const sampler = { sde, grid: uniformGrid(sde, 25), step: pc(reverseDiffusion(sde, 25), langevin(sde), 2) };
    const r = await sample(sampler, counted.score, { keys: random.split(random.key(3), 8), sampleShape: [2] })();
    expect(E.isRight(r)).toBe(true);
    if (E.isRight(r)) {
      nfeCounts.equal(r.right.nfe, counted.calls());
      // 25 intervals of predictor + 2 corrector steps, and the final Tweedie step.
      nfeCounts.equal(r.right.nfe, 25 * 3 + 1);
      r.right.x.dispose();
    }
  });
});

describe('runner', () => {
  const sampler = { sde: ve(), grid: uniformGrid(ve(), 10), step: eulerMaruyama(ve()) };
  const veScore: ScoreFn = exactScore(ve(), m);

  test('run yields the start state, one state per grid point, and the denoised state at t = 0, in order, and leaks nothing', async () => {
    const before = liveTensors();
    const ts: number[] = [];
    for await (const s of run(sampler, veScore, { keys: random.split(random.key(4), 5), sampleShape: [2] })) ts.push(s.t);
    expect(ts).toEqual([...sampler.grid, 0]);
    expect(liveTensors()).toBe(before);
  });

  test('breaking out of the iterator disposes its state (no leak)', async () => {
    const before = liveTensors();
    let seen = 0;
    for await (const s of run(sampler, veScore, { keys: random.split(random.key(4), 5), sampleShape: [2] })) {
      void s;
      if (++seen === 3) break;
    }
    expect(liveTensors()).toBe(before);
  });

  test('an aborted signal stops the run: sample returns Left Cancelled, and nothing leaks', async () => {
    const before = liveTensors();
    const ctrl = new AbortController();
    let calls = 0;
    const abortingScore: ScoreFn = (x, t) => {
      if (++calls === 4) ctrl.abort();
      return veScore(x, t);
    };
    const r = await sample(sampler, abortingScore, { keys: random.split(random.key(4), 5), sampleShape: [2], signal: ctrl.signal })();
    expect(E.isLeft(r) && r.left._tag).toBe('Cancelled');
    if (E.isLeft(r) && r.left._tag === 'Cancelled') expect(r.left.nfe).toBe(4);
    expect(liveTensors()).toBe(before);
  });

  test('an invalid grid or start is a Left naming the problem', async () => {
    const bad = await sample({ ...sampler, grid: [0.5, 0.6] }, veScore, { keys: [random.key(1)], sampleShape: [2] })();
    expect(E.isLeft(bad) && bad.left._tag).toBe('InvalidGrid');
    const noKeys = await sample(sampler, veScore, { keys: [], sampleShape: [2] })();
    expect(E.isLeft(noKeys) && noKeys.left._tag).toBe('InvalidStart');
  });

  test('a non-finite result is a Left NonFinite', async () => {
    const nan: ScoreFn = (x) => tf.mul(x, NaN);
    const r = await sample(sampler, nan, { keys: [random.key(1)], sampleShape: [2] })();
    expect(E.isLeft(r) && r.left._tag).toBe('NonFinite');
  });

  test('starting from a given batch x uses it at grid[0] and does not dispose it', async () => {
    const x = tf.tensor2d([[0.5, -0.5]]);
    const states: SamplerState[] = [];
    for await (const s of run({ ...sampler, step: pfHeun(ve()) }, veScore, { keys: [random.key(1)], x })) {
      if (states.length === 0) expect(Array.from(s.x.dataSync())).toEqual([0.5, -0.5]);
      states.push(s);
    }
    expect(x.isDisposed).toBe(false);
    x.dispose();
  });
});
