/**
 * The sampling loop does not talk to JavaScript or grow: no read of a tensor back to JavaScript inside a step,
 * except the one scalar per attempted step that adaptive step control needs, and the same number of live tensors
 * after every step. (Speed itself is measured by `npm run bench -- overhead`, never here.)
 */
import * as E from 'fp-ts/Either';
import { initBackend, random, liveTensors, watchReads } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, vp, gaussian, exactScore, probabilityFlowDrift } from '@score-sde/sde-math';
import { type Sampler, type SamplerSpec, type Step, samplerFromSpec, sample, integrateAdaptive } from '@score-sde/solvers';

// -------------------------------------------------------------------------------------
// counting reads to JavaScript
// -------------------------------------------------------------------------------------

/** Events in call order: 'S' a score call, 'R' a read to JavaScript made outside any score call. */
let events: string[] = [];
let inScore = 0;
let restoreReads: () => void = () => undefined;

const recorded = (score: ScoreFn): ScoreFn => (x, t) => {
  events.push('S');
  inScore += 1;
  try {
    return score(x, t);
  } finally {
    inScore -= 1;
  }
};

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  restoreReads = watchReads(() => {
    if (inScore === 0) events.push('R');
  });
});

afterAll(() => restoreReads());

// -------------------------------------------------------------------------------------
// fixture
// -------------------------------------------------------------------------------------

const D = 4;
const data = gaussian([1, -0.5, 0.25, 2], [0.5, 0.8, 0.3, 1]);
const sde: SDE = vp();
const score = exactScore(sde, data);
const keys = random.split(random.key(11), 8);

/** A run of `sampler` that records, per step, the reads inside it and the live tensors after it. */
const probedRun = async (sampler: Sampler): Promise<{ readonly stepReads: number[]; readonly tensorsAfterStep: number[]; readonly before: number; readonly after: number }> => {
  const stepReads: number[] = [];
  const tensorsAfterStep: number[] = [];
  const step: Step = {
    ...sampler.step,
    step: (sc, s, tNext) => {
      const from = events.length;
      const out = sampler.step.step(sc, s, tNext);
      stepReads.push(events.slice(from).filter((e) => e === 'R').length);
      tensorsAfterStep.push(liveTensors());
      return out;
    },
  };
  const before = liveTensors();
  const r = await sample({ ...sampler, step }, recorded(score), { keys, sampleShape: [D] })();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  r.right.x.dispose();
  return { stepReads, tensorsAfterStep, before, after: liveTensors() };
};

const build = (spec: SamplerSpec): Sampler => {
  const s = samplerFromSpec(sde, spec);
  if (E.isLeft(s)) throw new Error(s.left.problems.join('; '));
  return s.right;
};

const N = 6;
/** Reverse diffusion uses the DDPM chain of its N steps: β_i ≈ β_max/N must stay below 1. */
const NRD = 40;
const fixedStep: ReadonlyArray<SamplerSpec> = [
  { kind: 'pc', predictor: 'euler-maruyama', steps: N },
  { kind: 'pc', predictor: 'reverse-diffusion', steps: NRD },
  { kind: 'pc', predictor: 'ancestral', steps: N },
  { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', alpha: 'one', steps: N },
  { kind: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', norm: 'per-sample', order: 'corrector-first', correctorSteps: 2, steps: NRD },
  { kind: 'pc', predictor: 'none', corrector: 'annealed-langevin', alpha: 'one', steps: N },
  { kind: 'edm', steps: N },
  { kind: 'edm', steps: N, gamma: 0.2 },
  { kind: 'dpm-solver++2m', steps: N },
  { kind: 'ode', method: 'euler', steps: N },
  { kind: 'ode', method: 'heun', steps: N },
  { kind: 'ode', method: 'rk4', steps: N },
];

// -------------------------------------------------------------------------------------
// tests
// -------------------------------------------------------------------------------------

describe('the sampling loop', () => {
  test.each(fixedStep.map((s) => [JSON.stringify(s), s] as const))(
    'fixed-step %s: zero reads to JavaScript inside every step, and live tensors constant over the steps and restored after the run',
    async (_name, spec) => {
      const sampler = build(spec);
      const r = await probedRun(sampler);
      expect(r.stepReads).toEqual(new Array<number>(sampler.grid.length - 1).fill(0));
      // From the third step on, every multistep memory (DPM-Solver's previous x̂₀) is in place.
      expect(new Set(r.tensorsAfterStep.slice(2)).size).toBe(1);
      expect(r.after).toBe(r.before);
    },
  );

  test('adaptive reverse SDE: exactly one read per attempted step, each after the one or two evaluations of that attempt', async () => {
    events = [];
    const r = await probedRun(build({ kind: 'adaptive-sde', rtol: 0.05, atol: 0.05 }));
    // An attempt evaluates the drift at the new point (after f̄(x, t), unless a rejection lets it be reused), then
    // reads its error norm: the score/read sequence is (S S? R)+, followed by the final Tweedie step's evaluation and
    // the runner's one finiteness read.
    const seq = events.join('');
    expect(seq).toMatch(/^(SS?R)+SR$/);
    expect(r.stepReads[0]).toBe((seq.match(/R/g) ?? []).length - 1);
    expect(r.after).toBe(r.before);
  });

  test('integrateAdaptive: reads = accepted + rejected attempts (+ 3 for Hairer’s initial step size, none when given)', () => {
    const F = probabilityFlowDrift(sde, recorded(score));
    const y0 = random.normal(random.key(5), [8, D]);
    for (const initialStep of [undefined, 0.05]) {
      events = [];
      const r = integrateAdaptive(F, y0, 1, 0.01, { rtol: 1e-4, atol: 1e-4, ...(initialStep !== undefined ? { initialStep } : {}) });
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      const reads = events.filter((e) => e === 'R').length;
      expect(reads).toBe(r.right.accepted + r.right.rejected + (initialStep === undefined ? 3 : 0));
      expect(r.right.rejected + r.right.accepted).toBeGreaterThan(1);
      r.right.y.dispose();
    }
    y0.dispose();
  });
});
