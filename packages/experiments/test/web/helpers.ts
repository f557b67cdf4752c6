/**
 * The web tests' set-up: the site built (site/build.ts) into a temporary folder with the given checkpoints, served on
 * loopback (site/serve.ts), and one headless Chromium (site/chromium.ts, from the @sparticuz/chromium npm package) per
 * test file. A browser that cannot be started fails the file: these tests never skip.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type { Browser, Page } from 'puppeteer-core';
import { buildSite, serveSite, launchChromium, type BundledCheckpoint, type SiteServer } from '../../src/site';

/** Where the screenshots go (git-ignored: packages/experiments/out/). */
export const ARTEFACTS = path.resolve(__dirname, '..', '..', 'out', 'web-test');

/** A built, served site and a browser. */
export interface WebRig {
  readonly root: string;
  readonly server: SiteServer;
  readonly browser: Browser;
  readonly close: () => Promise<void>;
}

/** Builds the site with `checkpoints` (made by `prepare` in a temporary folder), serves it, starts Chromium. */
export const startRig = async (prepare: (tmp: string) => Promise<ReadonlyArray<BundledCheckpoint>> = async () => []): Promise<WebRig> => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'web-test-'));
  const built = await buildSite({ out: path.join(root, 'site'), checkpoints: await prepare(root) });
  if (E.isLeft(built)) throw new Error(built.left);
  const server = await serveSite(built.right.out, { port: 0, host: '127.0.0.1' });
  const chromium = await launchChromium();
  return {
    root,
    server,
    browser: chromium.browser,
    close: async () => {
      await chromium.close();
      await server.close();
      await fs.rm(root, { recursive: true, force: true });
    },
  };
};

/** The page's published state (`window.scoreSde`). */
export type PageState = Record<string, unknown>;

/** Opens a page of the site (path with its query), waits until it is ready, and collects its errors. */
export const openPage = async (rig: WebRig, at: string): Promise<{ readonly page: Page; readonly errors: string[] }> => {
  const page = await rig.browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String((e as Error).message ?? e)));
  await page.setViewport({ width: 1280, height: 900 });
  await page.goto(`${rig.server.url}${at}`);
  await page.waitForFunction(() => (globalThis as unknown as { scoreSde?: { ready?: boolean; backendError?: string } }).scoreSde?.ready === true || (globalThis as unknown as { scoreSde?: { backendError?: string } }).scoreSde?.backendError !== undefined, { timeout: 60_000 });
  return { page, errors };
};

/** The page's published state. */
export const stateOf = (page: Page): Promise<PageState> => page.evaluate(() => (globalThis as unknown as { scoreSde: PageState }).scoreSde);

/** Waits until the page's run has ended (done, cancelled or failed) and returns its state. */
export const runEnded = async (page: Page, timeout = 120_000): Promise<PageState> => {
  await page.waitForFunction(() => ['done', 'cancelled', 'failed'].includes(String((globalThis as unknown as { scoreSde?: { status?: string } }).scoreSde?.status)), { timeout });
  return stateOf(page);
};

/** Sets a text field or textarea as a person typing would (an input event follows). */
export const setField = (page: Page, id: string, value: string): Promise<void> =>
  page.$eval(
    `#${id}`,
    (el, v) => {
      (el as unknown as { value: string }).value = v as string;
      el.dispatchEvent(new Event('input', { bubbles: true }));
    },
    value,
  );

/** Saves a screenshot of the page as a test artefact (ARTEFACTS/<name>.png). */
export const screenshot = async (page: Page, name: string): Promise<string> => {
  await fs.mkdir(ARTEFACTS, { recursive: true });
  const file = path.join(ARTEFACTS, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
};
