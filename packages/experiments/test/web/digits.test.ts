/**
 * The digits page in headless Chromium, against the built site: the committed tiny checkpoint (test/fixtures,
 * the default EDM recipe at 4,453 parameters) loads by URL and draws grids whose pixels are the same sampler's in Node
 * (pipeline/draw, the draw routine of experiments:mnist) from the same keys; a corrupted copy shows Node's message; a
 * run can be cancelled; the page says which backend it chose and why it skipped the others.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { initBackend } from '@score-sde/tensor-fp';
import { loadCheckpoint, renderCheckpointError } from '@score-sde/models';
import { type SamplerName, namedSampler, sampleKeys, loadScoreModel, disposeScoreModel, draw, IMAGE_SHAPE, quickPreset, endNoiseOf } from '../../src/pipeline';
import { type WebRig, startRig, openPage, stateOf, runEnded, setField, screenshot } from './helpers';

const FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'tiny-edm-checkpoint');

let rig: WebRig;
let corrupt: string;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  rig = await startRig(async (tmp) => {
    // A copy of the fixture with one flipped byte in params.bin.
    corrupt = path.join(tmp, 'corrupt');
    await fs.cp(FIXTURE, corrupt, { recursive: true });
    const version = (await fs.readFile(path.join(corrupt, 'CURRENT'), 'utf8')).trim();
    const file = path.join(corrupt, version, 'params.bin');
    const b = await fs.readFile(file);
    b[1000] = b[1000]! ^ 0x01;
    await fs.writeFile(file, b);
    return [
      { name: 'tiny', dir: FIXTURE },
      { name: 'corrupt', dir: corrupt },
    ];
  });
}, 120_000);

afterAll(async () => {
  await rig?.close();
});

/** The same sampler's images in Node: experiments:mnist's draw routine on the fixture, keys sampleKeys(seed, 0, n), ending where the fixture's training ends (endNoiseOf, as the commands do). */
const nodeImages = async (name: SamplerName, settings: typeof quickPreset.sampling, seed: number, n: number): Promise<Float32Array> => {
  const model = await loadScoreModel(FIXTURE);
  if (E.isLeft(model)) throw new Error(renderCheckpointError(model.left));
  try {
    const end = endNoiseOf(model.right.config.sde, model.right.config.loss);
    const sampler = namedSampler(model.right.config.sde, name, { ...settings, ...(end !== undefined ? { endNoise: end } : {}) });
    if (E.isLeft(sampler)) throw new Error(sampler.left.problems.join('; '));
    const drawn = await draw(sampleKeys(seed, 0, n), () => ({ sampler: sampler.right, score: model.right.score }), { batch: n, sampleShape: IMAGE_SHAPE, dataRange: model.right.config.dataRange ?? [0, 1] }, name);
    if (E.isLeft(drawn)) throw new Error(drawn.left.message);
    return drawn.right.samples;
  } finally {
    disposeScoreModel(model.right);
  }
};

describe('the digits page', () => {
  test('says which backend it chose by itself and why it skipped the ones before (no GPU here: wasm, after webgpu and webgl)', async () => {
    const { page, errors } = await openPage(rig, 'digits.html');
    const s = await stateOf(page);
    expect(s['backend']).toMatch(/^wasm \(SIMD, \d+ threads?\)$/);
    expect(s['backendSkipped']).toEqual([expect.stringMatching(/^webgpu: /), expect.stringMatching(/^webgl: /)]);
    expect(await page.$eval('#backend', (e) => e.textContent)).toBe(`backend: ${s['backend']}`);
    expect(errors).toEqual([]);
    await page.close();
  });

  test.each([
    ['edm', { ...quickPreset.sampling }, 3, 16],
    ['em', { ...quickPreset.sampling, steps: 40 }, 5, 8],
  ] as const)('the fixture loads by URL; %s draws the grid step by step, pixels equal to Node\'s (wasm both)', async (name, settings, seed, n) => {
    const { page, errors } = await openPage(rig, 'digits.html?backend=wasm&threads=1&checkpoint=checkpoints/tiny');
    const loaded = await stateOf(page);
    expect(loaded['loadError']).toBeUndefined();
    expect(loaded['checkpoint']).toMatchObject({ dir: 'checkpoints/tiny', step: 16 });
    // The page loads one checkpoint and not its guide, and draws without labels: it offers no autoguided or labelled
    // sampler, and starts at the preset's first other one (the presets draw labelled samplers only: dpm-sde).
    const offered = await page.$$eval('#sampler option', (os) => os.map((o) => o.getAttribute('value') ?? ''));
    expect(offered.filter((o) => o.endsWith('-ag') || o.endsWith('-cond') || o === 'dpm-cfg')).toEqual([]);
    expect(await page.$eval('#sampler', (e) => (e as unknown as { readonly value: string }).value)).toBe('dpm-sde');
    await page.select('#sampler', name);
    await setField(page, 'samples', String(n));
    await setField(page, 'seed', String(seed));
    await setField(page, 'steps', String(settings.steps));
    await setField(page, 'fast-steps', String(settings.fastSteps));
    await page.click('#sample');
    const s = await runEnded(page);
    expect(s['status']).toBe('done');
    const got = Float32Array.from(s['samples'] as number[]);
    const want = await nodeImages(name, settings, seed, n);
    expect(got.length).toBe(want.length);
    let max = 0;
    for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(got[i]! - want[i]!));
    // The same kernels on the same backend (tfjs' wasm build, XNNPACK, the project's fused kernels, the same keys):
    // bit-identical, so the tolerance is 0 (a NaN anywhere fails too).
    expect(Number.isNaN(max)).toBe(false);
    expect(max).toBe(0);
    // No tensor outlives the run: as many live tensors as after loading.
    expect(typeof loaded['liveTensors']).toBe('number');
    expect(s['liveTensors']).toBe(loaded['liveTensors']);
    if (name === 'edm') await screenshot(page, 'digits-fixture');
    expect(errors).toEqual([]);
    await page.close();
  });

  test('a corrupted checkpoint shows the message Node gives for it', async () => {
    const { page, errors } = await openPage(rig, 'digits.html?backend=wasm&threads=1&checkpoint=checkpoints/corrupt');
    const s = await stateOf(page);
    const node = await loadCheckpoint(corrupt)();
    expect(E.isLeft(node)).toBe(true);
    if (E.isRight(node)) return;
    const message = renderCheckpointError(node.left);
    expect(message).toMatch(/params\.bin has sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64} \(the file is corrupt\)$/);
    expect(s['loadError']).toBe(message.replace(corrupt, 'checkpoints/corrupt'));
    expect(await page.$eval('#load-errors', (e) => e.textContent)).toBe(s['loadError']);
    expect(await page.$eval('#sample', (e) => (e as unknown as { disabled: boolean }).disabled)).toBe(true);
    await screenshot(page, 'digits-corrupt');
    expect(errors).toEqual([]);
    await page.close();
  });

  test('a folder picked on this computer loads the same way: the fixture, and the corrupted copy refused with Node\'s message', async () => {
    const { page, errors } = await openPage(rig, 'digits.html?backend=wasm&threads=1');
    const pick = async (dir: string): Promise<Record<string, unknown>> => {
      // Forget the last outcome, so that the wait below sees this pick's.
      await page.evaluate(() => {
        const s = (globalThis as unknown as { scoreSde: Record<string, unknown> }).scoreSde;
        s['checkpoint'] = undefined;
        s['loadError'] = undefined;
      });
      const input = await page.$('#checkpoint-folder');
      await input!.uploadFile(dir);
      await page.waitForFunction(() => {
        const s = (globalThis as unknown as { scoreSde?: { loading?: string; checkpoint?: unknown; loadError?: string } }).scoreSde;
        return s?.loading === undefined && (s?.checkpoint !== undefined || s?.loadError !== undefined);
      }, { timeout: 60_000 });
      return stateOf(page);
    };
    const good = await pick(FIXTURE);
    expect(good['loadError']).toBeUndefined();
    expect(good['checkpoint']).toMatchObject({ dir: 'tiny-edm-checkpoint', step: 16 });
    const bad = await pick(corrupt);
    const node = await loadCheckpoint(corrupt)();
    if (E.isRight(node)) throw new Error('the corrupted copy loads in Node');
    expect(bad['loadError']).toBe(renderCheckpointError(node.left).replace(corrupt, 'corrupt'));
    expect(errors).toEqual([]);
    await page.close();
  });

  test('Cancel stops a run after the step it is in', async () => {
    const { page, errors } = await openPage(rig, 'digits.html?backend=wasm&threads=1&checkpoint=checkpoints/tiny');
    await page.select('#sampler', 'pc');
    await setField(page, 'steps', '5000');
    await page.click('#sample');
    await page.waitForFunction(() => /^step [3-9]/.test((globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } }).document.getElementById('status')?.textContent ?? ''), { timeout: 60_000 });
    await page.click('#cancel');
    const s = await runEnded(page);
    expect(s['status']).toBe('cancelled');
    expect(s['step']).toBeLessThan(5001);
    expect(await page.$eval('#status', (e) => e.textContent)).toMatch(/^cancelled at step \d+\/5001/);
    expect(await page.$eval('#sample', (e) => (e as unknown as { disabled: boolean }).disabled)).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  });
});
