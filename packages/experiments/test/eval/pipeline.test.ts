/**
 * The evaluation command in process, CI-sized: a tiny untrained checkpoint, every part on a few images. These
 * tests check the pipeline and its artefacts (files exist, eval.json decodes with its documented codec, every
 * number finite, the classifiers are reused), not the quality of anything.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { codec, initBackend, liveTensors, currentBackend } from '@score-sde/tensor-fp';
import type { MnistData } from '@score-sde/models';
import { noiseLevel } from '@score-sde/sde-math';
import { png, report } from '../../src/lib';
import { EvalReport, runEvaluation, type EvalContext } from '../../src/eval';
import { parse, smallMnist, storedPath, tempDir, tinyArgs, tinyCheckpoint } from './helpers';

let mnist: { readonly train: MnistData; readonly test: MnistData };
let ctx: EvalContext;
let root: string;
let checkpoint: string;

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
  mnist = await smallMnist();
  ctx = { backend: currentBackend()!, log: () => undefined, mnist };
  root = tempDir('pipeline');
  checkpoint = await tinyCheckpoint(root);
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/** Every number in a JSON value, with its path. */
const numbersIn = (v: unknown, at = ''): ReadonlyArray<readonly [string, unknown]> =>
  typeof v === 'number'
    ? [[at, v]]
    : Array.isArray(v)
      ? v.flatMap((x, i) => numbersIn(x, `${at}[${i}]`))
      : v !== null && typeof v === 'object'
        ? Object.entries(v).flatMap(([k, x]) => numbersIn(x, at === '' ? k : `${at}.${k}`))
        : [];

/** Strings where a number is expected ("NaN", "Infinity") are how the report writer spells non-finite numbers. */
const nonFiniteSpellings = (v: unknown): ReadonlyArray<string> => JSON.stringify(v).match(/"(NaN|-?Infinity)"/g) ?? [];

describe('mnist-eval pipeline (tiny model, tiny sizes)', () => {
  test('a full tiny run writes every artefact; eval.json decodes with the EvalReport codec and every number is finite; no tensor leaks', async () => {
    const out = path.join(root, 'run1');
    const before = liveTensors();
    const r = await runEvaluation(parse(tinyArgs(checkpoint)), ctx, out);
    expect(liveTensors()).toBe(before);
    if (E.isLeft(r)) throw new Error(r.left.message);

    for (const file of ['eval.json', 'eval.md', 'fid-vs-nfe.png', 'samplers.png', 'conditional-pc.png', 'conditional-ode.png', 'inpainting.png', 'interpolation.png']) {
      expect(fs.existsSync(path.join(out, file))).toBe(true);
    }
    for (const store of ['classifier', 'noisy-classifier'])
      for (const file of ['manifest.json', 'params.bin']) expect(fs.existsSync(await storedPath(path.join(out, store), file))).toBe(true);
    for (const file of ['fid-vs-nfe.png', 'samplers.png', 'conditional-pc.png', 'inpainting.png', 'interpolation.png']) {
      expect(E.isRight(png.pngSize(fs.readFileSync(path.join(out, file))))).toBe(true);
    }

    const json: unknown = JSON.parse(fs.readFileSync(path.join(out, 'eval.json'), 'utf8'));
    const decoded = codec.decodeWith(EvalReport, 'eval.json')(json);
    if (E.isLeft(decoded)) throw new Error(decoded.left.problems.join('\n'));
    const rep = decoded.right;
    expect(nonFiniteSpellings(json)).toEqual([]);
    for (const [at, v] of numbersIn(json)) expect([at, Number.isFinite(v)]).toEqual([at, true]);

    expect(rep.complete).toBe(true);
    expect(rep.skipped).toEqual([]);
    // The extractor is named, and the sample counts are stated, in the JSON and the markdown.
    expect(rep.extractor?.name).toMatch(/^mnist-convnet\[4,8,8\]→8 sha256:[0-9a-f]{12}$/);
    expect(rep.fid).toMatchObject({ n: 8, reference: { set: 'MNIST test', n: 64 }, floor: { set: 'MNIST train', n: 8 } });
    // Every sampler of the comparison ran without error: EM, PC, one RK45 tolerance, EDM (deterministic and stochastic)
    // and DPM (ODE and SDE) at one step count.
    expect(rep.samplers?.results.map((s) => [s.id, s.error])).toEqual([
      ['em-3', null],
      ['pc-3', null],
      ['ode-0.1', null],
      ['edm-2', null],
      ['edm-sde-2', null],
      ['dpm-2', null],
      ['dpm-sde-2', null],
      ['dpm-ag-2', null],
      ['dpm-sde-ag-2', null],
    ]);
    // Fixed-step NFE per sample path: EM 3 steps = 3; PC = 3 predictor + 3 corrector evaluations; EDM Heun = 2 per
    // step (the grid ends at ε > 0, so the last step is corrected too), with or without churn; DPM-Solver++(2M) = 1 per
    // step, its SDE form taking 2k steps at k (the autoguided SDE form k steps); each + 1 for the final Tweedie step
    // from ε to 0; the autoguided ones (the checkpoint and its guide/) two network evaluations each.
    expect(rep.samplers?.results.map((s) => s.nfe)).toEqual([3 + 1, 6 + 1, expect.any(Number), 4 + 1, 4 + 1, 2 + 1, 4 + 1, 2 * (2 + 1), 2 * (2 + 1)]);
    for (const s of rep.samplers!.results) expect(s.classes!.histogram.reduce((a, b) => a + b, 0)).toBe(8);
    expect(rep.bpd).toMatchObject({ images: 2, batch: 2, estimator: 'rademacher', eps: 1e-3, cells: 'centred' });
    expect(rep.bpd!.perImage).toHaveLength(2);
    expect(rep.conditional?.runs.map((c) => [c.sampler, c.n])).toEqual([
      ['pc', 10],
      ['ode', 10],
    ]);
    expect(rep.conditional?.guide.config.noiseConditional).toBe(true);
    expect(rep.conditional?.guide.training.sde).toEqual(rep.checkpoint.sde);
    expect(rep.inpainting).toMatchObject({ mask: 'lower', digits: 2, completions: 2 });
    expect(rep.interpolation).toMatchObject({ frames: 3 });

    const md = fs.readFileSync(path.join(out, 'eval.md'), 'utf8');
    expect(md).toContain(rep.extractor!.name);
    for (const figure of ['fid-vs-nfe.png', 'samplers.png', 'conditional-pc.png', 'inpainting.png', 'interpolation.png']) expect(md).toContain(`\`${figure}\`:`);
    expect(md).toMatch(/n = 8 samples per sampler against the first 64 MNIST test images/);
    // the likelihood's start, in time and in noise level (the checkpoint's SDE)
    expect(md).toContain(`from ε = 0.001 (noise level σ(ε) = ${report.formatNumber(noiseLevel(rep.checkpoint.sde, 1e-3), 3)})`);
    // bits/dim beside their median and quartiles (two images: the median is their mean, the quartiles ¼ and ¾ of the way)
    const [b0, b1] = [...rep.bpd!.perImage].sort((a, b) => a - b) as [number, number];
    expect(md).toContain(`median ${report.formatNumber(b0 + 0.5 * (b1 - b0), 4)}, quartiles ${report.formatNumber(b0 + 0.25 * (b1 - b0), 4)} … ${report.formatNumber(b0 + 0.75 * (b1 - b0), 4)}`);

    // A second run with --classifier and --noisy-classifier pointing at the first run's reuses both (same names).
    const out2 = path.join(root, 'run2');
    const again = await runEvaluation(
      parse(
        tinyArgs(checkpoint, {
          classifier: path.join(out, 'classifier'),
          'noisy-classifier': path.join(out, 'noisy-classifier'),
          skip: 'samplers,bpd,inpainting,interpolation',
          'conditional-samplers': 'pc',
        }),
      ),
      ctx,
      out2,
    );
    expect(liveTensors()).toBe(before);
    if (E.isLeft(again)) throw new Error(again.left.message);
    expect(again.right.extractor).toMatchObject({ reused: true, name: rep.extractor!.name });
    expect(again.right.conditional?.guide).toMatchObject({ reused: true, name: rep.conditional!.guide.name });
    expect(again.right.skipped).toEqual(['samplers', 'bpd', 'inpainting', 'interpolation']);
    expect(again.right.samplers).toBeNull();
    expect(fs.existsSync(path.join(out2, 'classifier'))).toBe(false);
  });
});

describe('mnist-eval errors name the flag', () => {
  test('a missing checkpoint directory → "--checkpoint: …", nothing written', async () => {
    const out = path.join(root, 'missing');
    const r = await runEvaluation(parse(tinyArgs(path.join(root, 'no-such-checkpoint'))), ctx, out);
    expect(E.isLeft(r) && r.left.message).toMatch(/^--checkpoint: checkpoint .*no-such-checkpoint: no such directory/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('flag combinations the codecs cannot see: --samples 1, --frames 1, wrong --classifier-channels, empty lists', async () => {
    const r = await runEvaluation(parse(tinyArgs(checkpoint, { samples: '1', frames: '1', 'classifier-channels': '4,8', compare: '' })), ctx, path.join(root, 'bad'));
    expect(E.isLeft(r)).toBe(true);
    if (E.isRight(r)) return;
    expect(r.left.message.split('\n')).toEqual([
      expect.stringMatching(/^--classifier-channels: expected 3 channel counts/),
      expect.stringMatching(/^--samples: FID needs at least 2 samples, got 1/),
      expect.stringMatching(/^--compare: give at least one sampler/),
      expect.stringMatching(/^--frames: need at least 2 frames/),
    ]);
  });

  test('a --noisy-classifier trained under another SDE is refused, not overwritten', async () => {
    const out = path.join(root, 'run1');
    if (!fs.existsSync(path.join(out, 'noisy-classifier'))) throw new Error('needs the first test’s output');
    const other = path.join(root, 'other-sde');
    fs.cpSync(path.join(out, 'noisy-classifier'), other, { recursive: true });
    const otherManifest = await storedPath(other, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(otherManifest, 'utf8')) as { training: { sde: unknown } };
    m.training.sde = { kind: 've', sigmaMin: 0.01, sigmaMax: 50, T: 1 };
    fs.writeFileSync(otherManifest, JSON.stringify(m));
    const r = await runEvaluation(
      parse(tinyArgs(checkpoint, { classifier: path.join(out, 'classifier'), 'noisy-classifier': other, skip: 'samplers,bpd,inpainting,interpolation' })),
      ctx,
      path.join(root, 'run3'),
    );
    expect(E.isLeft(r) && r.left.message).toMatch(/^--noisy-classifier: .* trained under the SDE \{"kind":"ve".*give another directory/);
    expect(JSON.parse(fs.readFileSync(await storedPath(other, 'manifest.json'), 'utf8'))).toEqual(m);
  });
});
