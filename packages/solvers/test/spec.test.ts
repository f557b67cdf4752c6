/**
 * Sampler specifications: decoding names the bad field and rejects unknown keys; every example builds a sampler
 * that samples the 1-D test mixture correctly; impossible combinations are Lefts naming the field; the batch
 * coupling a sampler's step declares is the one sampling shows.
 */
import * as E from 'fp-ts/Either';
import { tf, codec, initBackend, random } from '@score-sde/tensor-fp';
import { vp, subvp, ve, exactScore, ddpmBetas, discreteIndex, marginalStd } from '@score-sde/sde-math';
import { SamplerSpec, exampleSpecs, samplerFromSpec, sample, stateAt, MAX_STEPS, type Sampler, eulerMaruyama, langevin, andThen, pc, pfAdaptive, BATCH_MEAN_NORM, SHARED_STEP_SIZE } from '@score-sde/solvers';
import { mixtures } from './conformance';
import { mixtureChecks, failures } from './helpers';
import { identity } from '@score-sde/tensor-fp/testing';

const langevinAlpha = identity({
  concept: 'steps',
  title: 'Langevin step size α from a pc spec',
  formula: String.raw`$\alpha_i = 1 - \beta_i$, $\beta_i = \beta(t_i)/N$ of the $N$-step DDPM chain (VP, uniform grid, the default); $\alpha = 1$ with "alpha": "one" or off VP / off the uniform grid`,
  source: 'score_sde (Song et al. 2021), LangevinCorrector and AnnealedLangevinDynamics: alpha = 1 − β_i on VP, 1 otherwise',
  tolerance: 'α recovered from one corrector call through float32 sums over D = 2048 same-sign terms: 1e−4 relative (γ_D ≈ 1.2e−4 worst case), far below the 1.9e−3 gap between neighbouring β_i',
});

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

test('impossible combinations are Lefts naming the field (ancestral off VP/VE, eps ≥ T, EDM γ > √2 − 1, steps > 10⁷)', () => {
  const anc = samplerFromSpec(subvp(), { kind: 'pc', predictor: 'ancestral', steps: 10 });
  expect(E.isLeft(anc) && anc.left.problems[0]).toMatch(/^predictor: ancestral sampling needs a VP or VE SDE/);
  const eps = samplerFromSpec(vp(), { kind: 'ode', method: 'heun', steps: 10, eps: 2 });
  expect(E.isLeft(eps) && eps.left.problems[0]).toMatch(/^eps: must be below T/);
  const gamma = samplerFromSpec(vp(), { kind: 'edm', steps: 10, gamma: 0.5 });
  expect(E.isLeft(gamma) && gamma.left.problems[0]).toMatch(/^gamma:/);
  const range = samplerFromSpec(vp(), { kind: 'edm', steps: 10, gamma: 0.2, sMin: 5, sMax: 1 });
  expect(E.isLeft(range) && range.left.problems[0]).toMatch(/^sMax: must be above sMin/);
  // A grid of more than MAX_STEPS + 1 times could not be allocated (2^53 steps threw RangeError: Invalid array length).
  const huge = samplerFromSpec(ve(), { kind: 'ode', method: 'heun', steps: 2 ** 53 - 1 });
  expect(E.isLeft(huge) && huge.left.problems[0]).toBe(`steps: at most 10,000,000 (got ${2 ** 53 - 1})`);
  expect(E.isRight(samplerFromSpec(ve(), { kind: 'pc', predictor: 'euler-maruyama', steps: MAX_STEPS }))).toBe(true);
  expect(E.isLeft(samplerFromSpec(ve(), { kind: 'pc', predictor: 'euler-maruyama', steps: MAX_STEPS + 1 }))).toBe(true);
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

describe("Langevin's α from a pc spec (score_sde: α_i = 1 − β_i on VP)", () => {
  const D = 2048;
  const r = 0.16;
  const sde = vp();
  /**
   * One corrector call of a corrector-only pc sampler (predictor none, so the corrector acts at grid[i + 1]) from
   * x = 0 with the constant score s = 1, and the α it used, recovered from its output:
   *   annealed:  x̄ = ε s with ε = 2α (r σ_t)²                       ⇒ α = ε / (2 (r σ_t)²);
   *   snr rule:  x̄ = ε s, x' − x̄ = √(2ε) z, ε = 2α (r ‖z‖/‖s‖)²   ⇒ α = ε² ‖s‖² / (r² ‖x' − x̄‖²).
   */
  const alphaUsed = (sampler: Sampler, i: number, annealed: boolean): { readonly alpha: number; readonly t: number } => {
    const t = sampler.grid[i + 1]!;
    const x = tf.zeros([1, D]);
    const out = sampler.step.step((y) => tf.onesLike(y), stateAt(x, sampler.grid[i]!, [random.key(3)]), t);
    const xMean = Array.from(out.xMean.dataSync());
    const xNew = Array.from(out.x.dataSync());
    const eps = xMean.reduce((a, v) => a + v, 0) / D;
    const noise2 = xNew.reduce((a, v, j) => a + (v - xMean[j]!) ** 2, 0);
    tf.dispose([x, out.x, out.xMean]);
    return { t, alpha: annealed ? eps / (2 * (r * marginalStd(sde, t)) ** 2) : (eps * eps * D) / (r * r * noise2) };
  };
  // α is recovered through float32 values of size ≤ 1 summed over D = 2048 entries: a relative error below 1e-4
  // (γ_D ≈ 1.2e-4 is the worst case; the sums here are of same-sign terms) — far below the gap 1.9e-3 between
  // neighbouring β_i of the 100-step chain and the gap ≥ 1e-3 between 1 − β_i and 1.
  const TOL = 1e-4;

  test.each([
    ['langevin', false],
    ['annealed-langevin', true],
  ] as const)('%s on VP, uniform grid, by default: α = 1 − β_i, β_i of the 100-step DDPM chain at the step\'s time', (corrector, annealed) => {
    const N = 100;
    const built = samplerFromSpec(sde, { kind: 'pc', predictor: 'none', corrector, steps: N, snr: r });
    if (E.isLeft(built)) throw new Error(built.left.problems.join('; '));
    const betas = ddpmBetas(sde, N);
    for (const i of [0, 1, 37, 98, 99]) {
      const { alpha, t } = alphaUsed(built.right, i, annealed);
      const want = 1 - betas[discreteIndex(sde, N, t)]!;
      langevinAlpha.close(alpha, want, TOL * want, { corrector, i: String(i) });
    }
  });

  test('"alpha": "one" gives α = 1; VE and non-uniform grids give α = 1 by default', () => {
    const cases: ReadonlyArray<readonly [typeof sde | ReturnType<typeof ve>, SamplerSpec]> = [
      [sde, { kind: 'pc', predictor: 'none', corrector: 'langevin', steps: 100, snr: r, alpha: 'one' }],
      [sde, { kind: 'pc', predictor: 'none', corrector: 'langevin', steps: 100, snr: r, grid: 'karras' }],
    ];
    for (const [s, spec] of cases) {
      const built = samplerFromSpec(s, spec);
      if (E.isLeft(built)) throw new Error(built.left.problems.join('; '));
      langevinAlpha.close(alphaUsed(built.right, 10, false).alpha, 1, TOL, JSON.stringify(spec));
    }
  });

  test('"ddpm" is refused off VP or off the uniform grid, and with steps ≤ β_max (α_i ≤ 0), naming the field', () => {
    const first = (e: ReturnType<typeof samplerFromSpec>) => (E.isLeft(e) ? e.left.problems[0] : 'built');
    expect(first(samplerFromSpec(ve(), { kind: 'pc', predictor: 'none', corrector: 'langevin', steps: 100, alpha: 'ddpm' }))).toMatch(/^alpha: .*VP/);
    expect(first(samplerFromSpec(sde, { kind: 'pc', predictor: 'none', corrector: 'langevin', steps: 100, alpha: 'ddpm', grid: 'karras' }))).toMatch(/^alpha: .*uniform grid/);
    expect(first(samplerFromSpec(sde, { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', steps: 20 }))).toMatch(/^steps: .*β_max = 20/);
    expect(first(samplerFromSpec(sde, { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', steps: 20, alpha: 'one' }))).toBe('built');
    expect(first(samplerFromSpec(sde, { kind: 'pc', predictor: 'euler-maruyama', corrector: 'none', steps: 20 }))).toBe('built');
  });
});

/** The samples a spec draws from the 2-D test mixture's exact score with these keys, as plain numbers. */
const samplesOf =
  (sde: ReturnType<typeof ve>, keys: ReturnType<typeof random.split>) =>
  async (spec: SamplerSpec): Promise<number[]> => {
    const s = samplerFromSpec(sde, spec);
    if (E.isLeft(s)) throw new Error(s.left.problems.join('; '));
    const r = await sample(s.right, exactScore(sde, mixtures['2-D']), { keys, sampleShape: [2] })();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    const v = Array.from(r.right.x.dataSync());
    r.right.x.dispose();
    return v;
  };

test("EDM's churn acts only at noise levels in [sMin, sMax]: a range no grid point reaches gives the deterministic sampler bit for bit, one that holds every point the churned sampler", async () => {
  const sde = ve();
  const run = samplesOf(sde, random.split(random.key(12), 32));
  const deterministic = await run({ kind: 'edm', steps: 12 });
  const churned = await run({ kind: 'edm', steps: 12, gamma: 0.3 });
  // σ of the VE grid lies in [σ(ε), σ(T) = 50]: a range above 100 is never met, one of [0, 100] always.
  expect(await run({ kind: 'edm', steps: 12, gamma: 0.3, sMin: 100, sMax: 200 })).toEqual(deterministic);
  expect(await run({ kind: 'edm', steps: 12, gamma: 0.3, sMin: 0, sMax: 100 })).toEqual(churned);
  expect(churned).not.toEqual(deterministic);
});

test("DPM-Solver++'s η acts only on steps starting at σ ∈ [sMin, sMax]: a range no grid point reaches gives the probability-flow solver bit for bit, one that holds every point the SDE solver, one in between neither", async () => {
  const sde = ve();
  const run = samplesOf(sde, random.split(random.key(13), 32));
  for (const kind of ['dpm-solver++2m', 'dpm-solver++3m'] as const) {
    const flow = await run({ kind, steps: 12, grid: 'karras' });
    const sde2 = await run({ kind, steps: 12, eta: 2, grid: 'karras' });
    // σ of the VE grid lies in [σ(ε), σ(T) = 50]: a range above 100 is never met, one of [0, 100] always.
    expect(await run({ kind, steps: 12, eta: 2, sMin: 100, sMax: 200, grid: 'karras' })).toEqual(flow);
    expect(await run({ kind, steps: 12, eta: 2, sMin: 0, sMax: 100, grid: 'karras' })).toEqual(sde2);
    const upper = await run({ kind, steps: 12, eta: 2, sMin: 0.2, grid: 'karras' });
    expect(sde2).not.toEqual(flow);
    expect(upper).not.toEqual(flow);
    expect(upper).not.toEqual(sde2);
  }
  const range = samplerFromSpec(sde, { kind: 'dpm-solver++2m', steps: 10, eta: 1, sMin: 5, sMax: 1 });
  expect(E.isLeft(range) && range.left.problems[0]).toMatch(/^sMax: must be above sMin = 5/);
  expect(problems({ kind: 'dpm-solver++2m', steps: 10, eta: 1, sMin: -1 })).toEqual([expect.stringMatching(/^sMin: expected NonNegativeFinite, got -1/)]);
});
