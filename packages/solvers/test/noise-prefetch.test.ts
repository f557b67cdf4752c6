/**
 * The stochastic samplers draw their noise through `perSampleNoise`, which prefetches the next step's normals in a
 * worker thread (tensor-fp's noisePrefetch). By construction that changes nothing: an Euler–Maruyama run and a
 * predictor–corrector run give bit-identical samples with the prefetch on and off, and the "on" runs really take
 * their noise from the worker (the hit counter grows by about one per noise draw). No tensor leaks either way.
 */
import * as E from 'fp-ts/Either';
import { initBackend, random, noisePrefetch, liveTensors } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, vp, gaussian, exactScore } from '@score-sde/sde-math';
import { type SamplerSpec, type Step, samplerFromSpec, sample } from '@score-sde/solvers';

const ENV = 'SCORE_SDE_NOISE_PREFETCH';
/** Bound on a wait for the worker (a job takes well under a millisecond here; this only bounds a hang). */
const WAIT = 10_000;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

afterAll(() => {
  delete process.env[ENV];
});

const D = 4;
const data = gaussian([1, -0.5, 0.25, 2], [0.5, 0.8, 0.3, 1]);
const sde: SDE = vp();
const score = exactScore(sde, data);
const keys = random.split(random.key(21), 6);
const N = 12;

/** The samples of one run (float32 bit patterns) and the live tensors before and after it. */
const run = async (spec: SamplerSpec, prefetch: '0' | '1'): Promise<{ readonly bits: Uint32Array; readonly leaked: number }> => {
  process.env[ENV] = prefetch;
  const s = samplerFromSpec(sde, spec);
  if (E.isLeft(s)) throw new Error(s.left.problems.join('; '));
  // The worker's job is let finish before every score evaluation and after every step, so that each predicted
  // draw is taken from the worker (the samplers themselves never wait: a late job is drawn in place).
  const settled: ScoreFn = (x, t) => {
    noisePrefetch.settle(WAIT);
    return score(x, t);
  };
  const step: Step = {
    ...s.right.step,
    step: (sc, st, tNext) => {
      const out = s.right.step.step(sc, st, tNext);
      noisePrefetch.settle(WAIT);
      return out;
    },
  };
  const before = liveTensors();
  const r = await sample({ ...s.right, step }, settled, { keys, sampleShape: [D] })();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  const bits = new Uint32Array(Float32Array.from(r.right.x.dataSync() as Float32Array).buffer);
  r.right.x.dispose();
  return { bits, leaked: liveTensors() - before };
};

const specs: ReadonlyArray<readonly [string, SamplerSpec, number]> = [
  // [name, spec, noise draws per run]: EM draws once per step; EM + Langevin twice (predictor, corrector).
  ['euler-maruyama', { kind: 'pc', predictor: 'euler-maruyama', steps: N }, N],
  ['pc: euler-maruyama + langevin', { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', alpha: 'one', steps: N }, 2 * N],
];

describe('perSampleNoise with the noise prefetch', () => {
  test.each(specs)('%s: samples with the prefetch on ≡ off, bit for bit; no tensor leak', async (_name, spec, draws) => {
    // A first run starts the worker (its first job is drawn here while the worker boots).
    await run(spec, '1');
    const hits0 = noisePrefetch.stats().hits;
    const on = await run(spec, '1');
    const hits = noisePrefetch.stats().hits - hits0;
    const off = await run(spec, '0');
    expect(on.bits).toEqual(off.bits);
    // Every draw but the run's first (what was prefetched before it was the previous run's next draw) comes from
    // the worker: the identity above is about the worker's numbers.
    expect(hits).toBe(draws - 1);
    expect(on.leaked).toBe(0);
    expect(off.leaked).toBe(0);
  });
});
