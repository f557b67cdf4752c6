/**
 * `npm run bench -- web [--checkpoint DIR] [--rounds 3] [--threads 1,2] [--samples 64]`: the digits page in headless
 * Chromium against Node, drawing the same digits with the default fast sampler (the quick preset's first sampler,
 * `edm`, at its settings) from the same checkpoint and keys.
 *
 * Per round and thread count, alternating so that the machine's load falls on both alike:
 * - browser: the built site served on loopback (cross-origin isolated), `digits.html?backend=wasm&threads=T`, a fresh
 *   page per run; the page's own timing from the click on Sample to the last grid, once drawing every step (what a
 *   person sees) and once drawing only the result (`frames=none`, sampling only); and the time to the first frame
 *   (the prior's grid) and to the first step's grid;
 * - Node: `experiments:mnist --sample-only` in a child process with `SCORE_SDE_WASM_THREADS=T`, its report's seconds
 *   for the sampler (the same draw, timed the same way: from the first step to the samples).
 * Without `--checkpoint`, an untrained checkpoint of the quick preset's network (channels 16, 32, 96, 192; 508,369 parameters without a label table) is
 * written first: the timing does not depend on the weights. Output: tools/bench/out/web.{md,json}.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { initBackend, random } from '@score-sde/tensor-fp';
import { initTrainState, disposeTrainState, saveCheckpoint, renderCheckpointError } from '@score-sde/models';
import { pipeline, site } from '@score-sde/experiments';
import { arg, median, runMain } from '../args';

const USAGE = 'usage: npm run bench -- web [--checkpoint DIR] [--rounds 3] [--threads 1,2] [--samples 64]\n';
const ROOT = path.resolve(__dirname, '..', '..', '..');
const OUT = path.join(ROOT, 'tools', 'bench', 'out');

/** An untrained checkpoint of the quick preset (the timing does not depend on the weights). */
const untrainedCheckpoint = async (dir: string): Promise<string> => {
  await initBackend({ prefer: 'wasm', quiet: true });
  const config = pipeline.trainConfigOfRecipe(pipeline.quickPreset, 1);
  const state = initTrainState(config, random.key(0));
  const saved = await saveCheckpoint(dir, config, state)();
  disposeTrainState(state);
  if (E.isLeft(saved)) throw new Error(renderCheckpointError(saved.left));
  return dir;
};

interface BrowserRun {
  readonly seconds: number;
  readonly firstFrameMs: number;
  readonly firstStepMs: number;
  readonly nfe: number;
  readonly backend: string;
}

const browserRun = async (browser: site.Chromium['browser'], url: string, samples: number): Promise<BrowserRun> => {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    await page.waitForFunction(() => (globalThis as unknown as { scoreSde?: { checkpoint?: unknown; loadError?: string } }).scoreSde?.checkpoint !== undefined || (globalThis as unknown as { scoreSde?: { loadError?: string } }).scoreSde?.loadError !== undefined, { timeout: 120_000 });
    await page.$eval('#samples', (el, v) => {
      (el as unknown as { value: string }).value = v as string;
    }, String(samples));
    await page.click('#sample');
    await page.waitForFunction(() => ['done', 'failed', 'cancelled'].includes(String((globalThis as unknown as { scoreSde?: { status?: string } }).scoreSde?.status)), { timeout: 600_000 });
    const s = (await page.evaluate(() => (globalThis as unknown as { scoreSde: Record<string, unknown> }).scoreSde)) as Record<string, unknown>;
    if (s['status'] !== 'done') throw new Error(`the page's run ended ${String(s['status'])}: ${String(s['error'] ?? s['loadError'] ?? '')}`);
    return { seconds: s['seconds'] as number, firstFrameMs: s['firstFrameMs'] as number, firstStepMs: s['firstStepMs'] as number, nfe: s['nfe'] as number, backend: s['backend'] as string };
  } finally {
    await page.close();
  }
};

const nodeRun = (checkpoint: string, threads: number, samples: number): { readonly seconds: number; readonly nfe: number; readonly backend: string } => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-web-node-'));
  try {
    const r = spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(ROOT, 'packages', 'experiments', 'src', 'mnist.ts'), '--sample-only', checkpoint, '--samplers', 'edm', '--num-samples', String(samples), '--out', path.join(out, 'run'), '--quiet', '--backend', 'wasm'], {
      env: { ...process.env, SCORE_SDE_WASM_THREADS: String(threads) },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`experiments:mnist --sample-only failed (${r.status}): ${r.stderr}`);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'run', 'report.json'), 'utf8')) as { backend: string; samplers: ReadonlyArray<{ sampler: string; seconds: number; nfe: number }> };
    const edm = report.samplers.find((s) => s.sampler === 'edm')!;
    return { seconds: edm.seconds, nfe: edm.nfe, backend: report.backend };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
};

const main = async (): Promise<number> => {
  if (process.argv.includes('--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const rounds = Number(arg('rounds', '3'));
  const threadCounts = arg('threads', '1,2').split(',').map(Number);
  const samples = Number(arg('samples', '64'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-web-'));
  const given = arg('checkpoint', '');
  const checkpoint = given !== '' ? path.resolve(given) : await untrainedCheckpoint(path.join(tmp, 'checkpoint'));
  const built = await site.buildSite({ out: path.join(tmp, 'site'), checkpoints: [{ name: 'bench', dir: checkpoint }] });
  if (E.isLeft(built)) throw new Error(built.left);
  const server = await site.serveSite(built.right.out, { port: 0, host: '127.0.0.1' });
  const chromium = await site.launchChromium();
  const browser = chromium.browser;
  // the page draws without a guide and without labels: the preset's first sampler that needs neither
  const sampler = pipeline.quickPreset.samplers.find((s) => pipeline.networksPerScore(s) === 1 && !pipeline.isLabelled(s)) ?? 'dpm-sde';
  const rows: Array<Record<string, unknown>> = [];
  try {
    for (const threads of threadCounts) {
      const page = (frames: string): string => `${server.url}digits.html?backend=wasm&threads=${threads}&checkpoint=checkpoints/bench${frames}`;
      const b: BrowserRun[] = [];
      const bNone: BrowserRun[] = [];
      const n: Array<{ seconds: number; nfe: number; backend: string }> = [];
      for (let r = 0; r < rounds; r++) {
        b.push(await browserRun(browser, page(''), samples));
        n.push(nodeRun(checkpoint, threads, samples));
        bNone.push(await browserRun(browser, page('&frames=none'), samples));
        process.stderr.write(`threads ${threads}, round ${r + 1}/${rounds}: browser ${b[r]!.seconds.toFixed(2)} s (drawing every step), ${bNone[r]!.seconds.toFixed(2)} s (result only); Node ${n[r]!.seconds.toFixed(2)} s; first frame ${b[r]!.firstFrameMs.toFixed(0)} ms, first step ${b[r]!.firstStepMs.toFixed(0)} ms\n`);
      }
      const row = {
        threads,
        browserBackend: b[0]!.backend,
        nodeBackend: n[0]!.backend,
        nfe: b[0]!.nfe,
        nodeNfe: n[0]!.nfe,
        browserSeconds: median(b.map((x) => x.seconds)),
        browserSamplingSeconds: median(bNone.map((x) => x.seconds)),
        nodeSeconds: median(n.map((x) => x.seconds)),
        ratio: median(b.map((x, i) => x.seconds / n[i]!.seconds)),
        samplingRatio: median(bNone.map((x, i) => x.seconds / n[i]!.seconds)),
        firstFrameMs: median(b.map((x) => x.firstFrameMs)),
        firstStepMs: median(b.map((x) => x.firstStepMs)),
        rounds: { browser: b, browserResultOnly: bNone, node: n },
      };
      rows.push(row);
    }
  } finally {
    await chromium.close();
    await server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const load = os.loadavg()[0]!;
  const md = [
    `# Digits in the browser vs Node (${samples} samples, sampler ${sampler} of the quick preset, ${rounds} alternating rounds, medians)`,
    '',
    `Checkpoint: ${given !== '' ? given : 'untrained quick-preset network'}; load average at the end ${load.toFixed(1)} on ${os.cpus().length} cores.`,
    '',
    '| threads | browser backend | Node backend | NFE | browser, every step drawn | browser, result only | Node | ratio (drawn) | ratio (result only) | first frame | first step |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) =>
      `| ${r['threads']} | ${r['browserBackend']} | ${r['nodeBackend']} | ${r['nfe']} | ${(r['browserSeconds'] as number).toFixed(2)} s | ${(r['browserSamplingSeconds'] as number).toFixed(2)} s | ${(r['nodeSeconds'] as number).toFixed(2)} s | ${(r['ratio'] as number).toFixed(2)} | ${(r['samplingRatio'] as number).toFixed(2)} | ${(r['firstFrameMs'] as number).toFixed(0)} ms | ${(r['firstStepMs'] as number).toFixed(0)} ms |`,
    ),
    '',
  ].join('\n');
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, 'web.md'), md);
  fs.writeFileSync(path.join(OUT, 'web.json'), `${JSON.stringify({ samples, sampler, rounds, loadAverage: load, rows }, null, 2)}\n`);
  process.stdout.write(md);
  return 0;
};

runMain(main, USAGE);
