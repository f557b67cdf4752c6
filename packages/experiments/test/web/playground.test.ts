/**
 * The sampler playground in headless Chromium, against the built site: for every sampler kind, the page's samples of a
 * 2-D mixture with its exact score pass the toy checks within 5 standard errors (the page's own table, recomputed here
 * from its samples) and are the samples `experiments:toy` draws in Node for the same spec (runToy: the same keys); bad
 * JSON is refused inline naming the field; a run can be cancelled.
 *
 * Sample size: n = 1000 per sampler. The checks' standard errors come from the samples (toy/check.ts): a coordinate's
 * mean has SE = s/√n ≈ 0.032 s, so 5 SE catches a shift of 0.16 s; a two-sample second moment has SE ≈ √2·√(2/n)·σ²
 * ≈ 0.063 σ², so 5 SE catches a spread off by ≈ 30 % in variance; the fractions have SE ≤ √(2·w(1 − w)/n) ≤ 0.022.
 * Finer biases are the Node conformance suite's job (solvers, 2000 samples per case); here the claim is that the
 * samplers run in the browser as they do in Node, which the equality with runToy's samples makes exact.
 */
import * as E from 'fp-ts/Either';
import { initBackend, codec } from '@score-sde/tensor-fp';
import type { SamplerSpec } from '@score-sde/solvers';
import { ToySpec, runToy, toyTarget, conformanceChecks, toyKeys, type ConformanceCheck } from '../../src/toy/index';
import { samplerFromSpec } from '@score-sde/solvers';
import { random } from '@score-sde/tensor-fp';
import { type WebRig, startRig, openPage, stateOf, runEnded, setField, screenshot } from './helpers';

let rig: WebRig;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  rig = await startRig();
}, 120_000);

afterAll(async () => {
  await rig?.close();
});

const SDE = { kind: 'vp', betaMin: 0.1, betaMax: 20, T: 1 };
const DATA = { kind: 'gaussian-mixture', weights: [0.3, 0.5, 0.2], means: [[-2, -1], [2, 0.5], [-0.5, 2.5]], stds: [0.5, [0.4, 0.8], 0.3] };
const N = 1000;

/** One spec per sampler kind, at step counts whose discretisation bias is far below these checks' resolution. */
const KINDS: ReadonlyArray<readonly [string, SamplerSpec]> = [
  ['pc', { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', steps: 200, snr: 0.16 }],
  ['ode', { kind: 'ode', method: 'heun', steps: 50 }],
  ['ode-adaptive', { kind: 'ode-adaptive', rtol: 1e-4, atol: 1e-4 }],
  ['edm', { kind: 'edm', steps: 60, gamma: 0.1 }],
  ['dpm-solver++2m', { kind: 'dpm-solver++2m', steps: 50 }],
  ['adaptive-sde', { kind: 'adaptive-sde', rtol: 1e-2, atol: 1e-2 }],
];

describe('the sampler playground', () => {
  let page: Awaited<ReturnType<typeof openPage>>['page'];
  let errors: string[];

  beforeAll(async () => {
    ({ page, errors } = await openPage(rig, 'playground.html?backend=wasm&threads=1'));
  }, 60_000);

  afterAll(async () => {
    await page?.close();
  });

  test.each(KINDS)('%s: every toy check within 5 SE, and the samples experiments:toy draws in Node', async (kind, sampler) => {
    await setField(page, 'sde-json', JSON.stringify(SDE));
    await setField(page, 'data-json', JSON.stringify(DATA));
    await setField(page, 'sampler-json', JSON.stringify(sampler));
    await setField(page, 'samples', String(N));
    await setField(page, 'seed', '7');
    expect((await stateOf(page))['problems']).toEqual([]);
    await page.click('#sample');
    const s = await runEnded(page);
    expect(s['status']).toBe('done');
    const checks = s['checks'] as ReadonlyArray<ConformanceCheck>;
    expect(checks).toHaveLength(3 + 2 + 2 + 1);
    for (const c of checks) expect(Math.abs(c.estimate - c.target) / c.standardError).toBeLessThanOrEqual(5);
    // The table is the page's own computation: recomputed here from its samples, the same numbers.
    const spec = codec.decodeWith(ToySpec, 'spec')({ sde: SDE, data: DATA, sampler, samples: N, seed: 7 });
    if (E.isLeft(spec)) throw new Error(spec.left.problems.join('; '));
    const built = samplerFromSpec(spec.right.sde, spec.right.sampler);
    if (E.isLeft(built)) throw new Error('spec');
    const samples = Float64Array.from(s['samples'] as number[]);
    const target = toyTarget(spec.right.sde, spec.right.data, built.right);
    const again = conformanceChecks(target, samples, target.reference(random.split(toyKeys(7).reference, N)), 2);
    expect(again.map((c) => [c.name, c.estimate, c.target, c.standardError])).toEqual(checks.map((c) => [c.name, c.estimate, c.target, c.standardError]));
    // And the samples are experiments:toy's for this spec (the same keys and kernels: bit for bit).
    const node = await runToy(spec.right)();
    if (E.isLeft(node)) throw new Error(JSON.stringify(node.left));
    expect(s['samples']).toEqual(node.right.samples.flat());
    expect(s['nfe']).toBe(node.right.report.nfe);
    expect(await page.$eval('#sampler-name', (e) => e.textContent)).toBe(node.right.report.sampler);
    expect(await page.$eval('#status', (e) => e.textContent)).toMatch(/every check within 5 SE$/);
    if (kind === 'pc') await screenshot(page, 'playground');
    expect(errors).toEqual([]);
  });

  test('bad JSON is refused under its editor, naming the field, and Sample is disabled', async () => {
    const problemsFor = async (id: string, value: string): Promise<{ readonly shown: string; readonly disabled: boolean }> => {
      await setField(page, id, value);
      return { shown: (await page.$eval(`#${id.replace('-json', '')}-errors`, (e) => e.textContent)) ?? '', disabled: await page.$eval('#sample', (e) => (e as unknown as { disabled: boolean }).disabled) };
    };
    await setField(page, 'sde-json', JSON.stringify(SDE));
    await setField(page, 'data-json', JSON.stringify(DATA));
    let r = await problemsFor('sampler-json', '{ "kind": "pc", "steps": -3 }');
    expect(r.shown).toMatch(/^sampler\.predictor: /m);
    expect(r.shown).toMatch(/^sampler\.steps: expected PositiveInt/m);
    expect(r.disabled).toBe(true);
    r = await problemsFor('sampler-json', '{ "kind": "edm", "steps": 10, "stepz": 3 }');
    expect(r.shown).toBe('sampler.stepz: unknown key');
    r = await problemsFor('sampler-json', '{ "kind": "edm", "steps": 10, "gamma": 0.9 }');
    expect(r.shown).toMatch(/^sampler\.gamma: must be at most/);
    await setField(page, 'sampler-json', '{ "kind": "edm", "steps": 10 }');
    r = await problemsFor('sde-json', '{ "kind": "vp", ');
    expect(r.shown).toMatch(/^sde: not JSON \(/);
    await setField(page, 'sde-json', JSON.stringify(SDE));
    r = await problemsFor('data-json', JSON.stringify({ ...DATA, weights: [0.3, 0.5, 0.3] }));
    expect(r.shown).toMatch(/^data\.weights: must sum to 1/);
    r = await problemsFor('data-json', JSON.stringify({ kind: 'gaussian-mixture', weights: [1], means: [[0, 0, 0]], stds: [1] }));
    expect(r.shown).toMatch(/^data\.means: the playground draws 2-D mixtures/);
    r = await problemsFor('data-json', JSON.stringify(DATA));
    expect(r).toEqual({ shown: '', disabled: false });
    expect(await page.$eval('#sampler-name', (e) => e.textContent)).toBe('edm-heun → tweedie');
    expect(errors).toEqual([]);
  });

  test('Cancel stops a run after the step it is in', async () => {
    await setField(page, 'sampler-json', JSON.stringify({ kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', steps: 100000 }));
    await page.click('#sample');
    await page.waitForFunction(() => /^step [1-9]\d*\//.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById('status')?.textContent ?? ''), { timeout: 60_000 });
    await page.click('#cancel');
    const s = await runEnded(page);
    expect(s['status']).toBe('cancelled');
    expect(await page.$eval('#status', (e) => e.textContent)).toMatch(/^cancelled at step \d+\/100001/);
    expect(errors).toEqual([]);
  });
});
