/**
 * Sampler specifications: decoding names the bad field and rejects unknown keys; every example builds a sampler
 * that samples the 1-D test mixture correctly; impossible combinations are Lefts naming the field; the batch
 * coupling a sampler's step declares is the one sampling shows.
 */
import * as E from 'fp-ts/Either';
import { codec, initBackend, random } from '@score-sde/tensor-fp';
import { vp, subvp, ve, exactScore } from '@score-sde/sde-math';
import { SamplerSpec, exampleSpecs, samplerFromSpec, sample, eulerMaruyama, langevin, andThen, pc, pfAdaptive, BATCH_MEAN_NORM, SHARED_STEP_SIZE } from '@score-sde/solvers';
import { mixtures } from './conformance';
import { mixtureChecks, failures } from './helpers';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const decode = codec.decodeWith(SamplerSpec, 'sampler');
const problems = (u: unknown): ReadonlyArray<string> => {
  const r = decode(u);
  return E.isLeft(r) ? r.left.problems : [];
};

test('every example specification decodes to itself', () => {
  exampleSpecs.forEach((s) => expect(decode(s)).toEqual(E.right(s)));
});

test('decoding errors name the field: a wrong kind, a bad number, an unknown key, a bad enum', () => {
  expect(problems({ kind: 'langevin', steps: 10 })).toEqual([expect.stringMatching(/^kind: expected SamplerKind/)]);
  expect(problems({ kind: 'pc', predictor: 'euler-maruyama', steps: -3 })).toEqual([expect.stringMatching(/^steps: expected PositiveInt, got -3/)]);
  expect(problems({ kind: 'pc', predictor: 'euler-maruyama', steps: 10, snrr: 0.1 })).toEqual(['snrr: unknown key']);
  expect(problems({ kind: 'ode', method: 'rk45', steps: 10 })).toEqual([expect.stringMatching(/^method: expected ODEMethod/)]);
  expect(problems({ kind: 'edm', steps: 10, gamma: Number.NaN })).toEqual([expect.stringMatching(/^gamma: expected NonNegativeFinite, got NaN/)]);
});

test('impossible combinations are Lefts naming the field', () => {
  const anc = samplerFromSpec(subvp(), { kind: 'pc', predictor: 'ancestral', steps: 10 });
  expect(E.isLeft(anc) && anc.left.problems[0]).toMatch(/^predictor: ancestral sampling needs a VP or VE SDE/);
  const eps = samplerFromSpec(vp(), { kind: 'ode', method: 'heun', steps: 10, eps: 2 });
  expect(E.isLeft(eps) && eps.left.problems[0]).toMatch(/^eps: must be below T/);
  const gamma = samplerFromSpec(vp(), { kind: 'edm', steps: 10, gamma: 0.5 });
  expect(E.isLeft(gamma) && gamma.left.problems[0]).toMatch(/^gamma:/);
});

test.each(exampleSpecs.map((s) => [s.kind, s] as const))('example %s builds a sampler that recovers the 1-D mixture under VE (5 SE, 1000 samples)', async (_k, spec) => {
  const sde = ve();
  const built = samplerFromSpec(sde, spec);
  expect(E.isRight(built)).toBe(true);
  if (E.isLeft(built)) return;
  const r = await sample(built.right, exactScore(sde, mixtures['1-D']), { keys: random.split(random.key(8), 1000), sampleShape: [1] })();
  expect(E.isRight(r)).toBe(true);
  if (E.isLeft(r)) return;
  expect(failures(mixtureChecks(mixtures['1-D'], r.right.x, { perCoordinate: true }), 5)).toEqual([]);
  r.right.x.dispose();
});

describe('batch coupling, declared by the step', () => {
  const sde = ve();
  const score = exactScore(sde, mixtures['1-D']);
  const bitsOf = async (spec: SamplerSpec, keys: ReadonlyArray<readonly [number, number]>): Promise<Uint32Array> => {
    const built = samplerFromSpec(sde, spec);
    if (E.isLeft(built)) throw new Error(built.left.problems.join('; '));
    const r = await sample(built.right, score, { keys, sampleShape: [1] })();
    if (E.isLeft(r)) throw new Error(r.left._tag);
    const v = Float32Array.from(r.right.x.dataSync());
    r.right.x.dispose();
    return new Uint32Array(v.buffer);
  };
  const specs: ReadonlyArray<SamplerSpec> = [...exampleSpecs, { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', norm: 'per-sample', steps: 20 }];

  test.each(specs.map((s) => [JSON.stringify(s), s] as const))(
    'a step that declares no coupling samples keys[0..6) as keys[0..3) ++ keys[3..6), bit for bit; one that declares a coupling does not (%s)',
    async (_name, spec) => {
      const built = samplerFromSpec(sde, spec);
      if (E.isLeft(built)) throw new Error('spec');
      const keys = random.split(random.key(21), 6);
      const whole = await bitsOf(spec, keys);
      const halves = [...(await bitsOf(spec, keys.slice(0, 3))), ...(await bitsOf(spec, keys.slice(3)))];
      const separable = built.right.step.batchCoupling.length === 0;
      expect(Array.from(whole).every((w, i) => w === halves[i])).toBe(separable);
    },
  );

  test('combinators join the couplings: (a ▸ b).batchCoupling = a.batchCoupling ∪ b.batchCoupling; pc with the batch-mean Langevin corrector couples, with per-sample it does not', () => {
    const em = eulerMaruyama(sde);
    const batchMean = langevin(sde, { norm: 'batch-mean' });
    expect(andThen(em, batchMean).batchCoupling).toEqual([BATCH_MEAN_NORM]);
    expect(andThen(batchMean, batchMean).batchCoupling).toEqual([BATCH_MEAN_NORM]);
    expect(pc(em, langevin(sde, { norm: 'per-sample' }), 2).batchCoupling).toEqual([]);
    expect(andThen(pfAdaptive(sde), batchMean).batchCoupling).toEqual([SHARED_STEP_SIZE, BATCH_MEAN_NORM]);
  });
});
