/**
 * `npx tsx tools/web/screenshots.ts --checkpoint DIR`: the README's two screenshots of the web site
 * (docs/web-playground.png, docs/web-digits.png): the playground after a run of its default sampler, and the digits
 * page after drawing 64 digits with the default fast sampler from a checkpoint of `experiments:mnist`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { site } from '@score-sde/experiments';
import { arg, runMain } from '../bench/args';

const USAGE = 'usage: npx tsx tools/web/screenshots.ts --checkpoint DIR\n';
const DOCS = path.resolve(__dirname, '..', '..', 'docs');

const ended = (): boolean => ['done', 'failed', 'cancelled'].includes(String((globalThis as unknown as { scoreSde?: { status?: string } }).scoreSde?.status));
const ready = (): boolean => (globalThis as unknown as { scoreSde?: { ready?: boolean } }).scoreSde?.ready === true;

const main = async (): Promise<number> => {
  const checkpoint = arg('checkpoint', '');
  if (checkpoint === '') throw new Error('--checkpoint: give a checkpoint directory of experiments:mnist');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'web-screenshots-'));
  const built = await site.buildSite({ out: path.join(tmp, 'site'), checkpoints: [{ name: 'mnist', dir: checkpoint }] });
  if (E.isLeft(built)) throw new Error(built.left);
  const server = await site.serveSite(built.right.out, { port: 0, host: '127.0.0.1' });
  const chromium = await site.launchChromium();
  try {
    const page = await chromium.browser.newPage();
    await page.setViewport({ width: 1180, height: 960 });
    await page.goto(`${server.url}playground.html`);
    await page.waitForFunction(ready, { timeout: 60_000 });
    await page.click('#sample');
    await page.waitForFunction(ended, { timeout: 120_000 });
    await page.screenshot({ path: path.join(DOCS, 'web-playground.png') });
    await page.setViewport({ width: 1180, height: 780 });
    await page.goto(`${server.url}digits.html?checkpoint=checkpoints/mnist`);
    await page.waitForFunction(ready, { timeout: 60_000 });
    await page.click('#sample');
    await page.waitForFunction(ended, { timeout: 300_000 });
    await page.screenshot({ path: path.join(DOCS, 'web-digits.png') });
  } finally {
    await chromium.close();
    await server.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  for (const f of ['web-playground.png', 'web-digits.png']) process.stderr.write(`${path.join(DOCS, f)}: ${fs.statSync(path.join(DOCS, f)).size} bytes\n`);
  return 0;
};

runMain(main, USAGE);
