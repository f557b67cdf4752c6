/**
 * The toy command, in process: decoding names bad fields, a small run reports statistics that agree with the
 * exact mixture, the energy distance behaves as a distance, and the command writes its files.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { codec, initBackend, liveTensors } from '@score-sde/tensor-fp';
import { ToySpec, EXAMPLE_SPEC, runToy } from '../src/toy/index';
import { toyMain } from '../src/toy';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const decode = codec.decodeWith(ToySpec, 'spec');
const problems = (u: unknown): ReadonlyArray<string> => {
  const r = decode(u);
  return E.isLeft(r) ? r.left.problems : [];
};

const small = {
  sde: { kind: 've', sigmaMin: 0.01, sigmaMax: 50, T: 1 },
  data: { kind: 'gaussian-mixture', weights: [0.3, 0.7], means: [[-2, 0], [2, 1]], stds: [0.5, [0.4, 0.8]] },
  sampler: { kind: 'dpm-solver++2m', steps: 50 },
  samples: 400,
  seed: 3,
  likelihoodPoints: [
    [-2, 0],
    [1.5, 1],
  ],
};

describe('spec', () => {
  test('the example spec decodes, isotropic stds expanded to rows', () => {
    const r = decode(EXAMPLE_SPEC);
    expect(E.isRight(r)).toBe(true);
    if (E.isRight(r)) expect(r.right.data.stds).toEqual([[0.5, 0.5], [0.4, 0.8]]);
  });

  test('errors name the field', () => {
    expect(problems({ ...small, samples: 0 })).toEqual([expect.stringMatching(/^samples: expected PositiveInt/)]);
    expect(problems({ ...small, data: { ...small.data, weights: [0.3, 0.6] } })).toEqual([expect.stringMatching(/^data\.weights: must sum to 1/)]);
    expect(problems({ ...small, data: { ...small.data, means: [[-2, 0], [2]] } })).toEqual([expect.stringMatching(/^data\.means\.1: must have dimension 2/)]);
    expect(problems({ ...small, sampler: { kind: 'ode', method: 'heun', steps: 'ten' } })).toEqual([expect.stringMatching(/^sampler\.steps: expected PositiveInt/)]);
    expect(problems({ ...small, sde: { kind: 've', sigmaMin: 1, sigmaMax: 0.5, T: 1 } })).toEqual([expect.stringMatching(/^sde/)]);
    expect(problems({ ...small, likelihoodPoints: [[1, 2, 3]] })).toEqual([expect.stringMatching(/^likelihoodPoints\.0: must have the mixture's dimension 2/)]);
    expect(problems({ ...small, seeds: 3 })).toEqual(['seeds: unknown key']);
    expect(problems({ ...small, likelihood: { passes: 2, prio: 'exact' } })).toEqual(['likelihood.prio: unknown key']);
  });
});

describe('run', () => {
  test('a small run (VE, DPM-Solver++ 50 steps, 400 samples): fractions, mean within 5 SE; exact-divergence likelihoods', async () => {
    const spec = decode(small);
    expect(E.isRight(spec)).toBe(true);
    if (E.isLeft(spec)) return;
    const before = liveTensors();
    const r = await runToy(spec.right)();
    expect(liveTensors()).toBe(before);
    expect(E.isRight(r)).toBe(true);
    if (E.isLeft(r)) return;
    const rep = r.right.report;
    const n = 400;
    // Fraction of component 0 estimates w₀ = 0.3 with SE ≤ √(w(1−w)/n) ≈ 0.023.
    expect(Math.abs(rep.componentFractions[0]! - 0.3)).toBeLessThanOrEqual(5 * Math.sqrt((0.3 * 0.7) / n));
    // Mean of coordinate 0: exact 0.3·(−2) + 0.7·2 = 0.8, variance 0.3·0.25 + 0.7·0.16 + 0.3·0.7·16 = 3.547.
    expect(Math.abs(rep.mean[0]! - 0.8)).toBeLessThanOrEqual(5 * Math.sqrt(3.547 / n));
    expect(rep.cov.length).toBe(2);
    expect(rep.cov[0]![1]).toBe(rep.cov[1]![0]);
    expect(Math.abs(rep.energyDistance)).toBeLessThanOrEqual(5 * rep.energyDistanceSE);
    expect(rep.nfe).toBe(50 + 1); // 50 DPM-Solver++ steps and the final Tweedie step
    expect(r.right.samples.length).toBe(n);
    expect(rep.logLikelihood).toHaveLength(2);
    // With the SDE prior N(0, 50²) in place of the exact p_T, the estimate differs from the exact log p by the prior
    // mismatch, far below 0.1 nats here (points within a few units of the origin, σ_max = 50).
    rep.logLikelihood.forEach((l) => expect(Math.abs(l.estimate - l.exact)).toBeLessThan(0.1));
  });

  test('the command writes the report and the samples, and prints the backend', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'toy-'));
    const specFile = path.join(dir, 'spec.json');
    fs.writeFileSync(specFile, JSON.stringify({ ...small, samples: 50, likelihoodPoints: undefined }));
    const lines: string[] = [];
    const code = await toyMain(['--spec', specFile, '--out', path.join(dir, 'report.json'), '--samples-out', path.join(dir, 'samples.json'), '--backend', 'wasm'], { log: (s) => lines.push(s) });
    expect(code).toBe(0);
    expect(lines[0]).toMatch(/^\[score-sde\] backend: wasm/);
    const rep = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    expect(Object.keys(rep)).toEqual(expect.arrayContaining(['componentFractions', 'mean', 'cov', 'energyDistance', 'energyDistanceSE', 'nfe', 'seconds', 'logLikelihood']));
    const samples = JSON.parse(fs.readFileSync(path.join(dir, 'samples.json'), 'utf8'));
    expect(samples).toHaveLength(50);
    expect(samples[0]).toHaveLength(2);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('--help prints the schema and an example; a bad spec exits 2 naming the field', async () => {
    const lines: string[] = [];
    expect(await toyMain(['--help'], { log: (s) => lines.push(s) })).toBe(0);
    expect(lines.join('\n')).toMatch(/Spec schema/);
    expect(lines.join('\n')).toMatch(/Example spec:/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'toy-'));
    const specFile = path.join(dir, 'spec.json');
    fs.writeFileSync(specFile, JSON.stringify({ ...small, samples: -1 }));
    const err: string[] = [];
    expect(await toyMain(['--spec', specFile, '--out', path.join(dir, 'r.json'), '--backend', 'wasm'], { log: (s) => err.push(s) })).toBe(2);
    expect(err.join('\n')).toMatch(/samples: expected PositiveInt/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
