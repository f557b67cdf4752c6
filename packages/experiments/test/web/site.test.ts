/**
 * The web command and its site without a browser: flags, what a build writes, what it refuses (a folder it did not
 * build, a folder that is not a checkpoint — leaving an earlier build as it was), and the local server (headers for
 * cross-origin isolation, content types, 404 and 405, no path outside the site).
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { webMain, bundledCheckpoint } from '../../src/web';
import { fileOfRequest, serveSite, SITE_MARKER } from '../../src/site';

const FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'tiny-edm-checkpoint');

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'web-site-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const run = async (argv: ReadonlyArray<string>): Promise<{ readonly code: number; readonly err: string }> => {
  const lines: string[] = [];
  const code = await webMain(argv, { err: (l) => lines.push(l), out: (t) => lines.push(t) });
  return { code, err: lines.join('\n') };
};

describe('experiments:web', () => {
  test('builds the site: pages, bundles, the wasm builds, the fused kernels, the bundled checkpoint and its index', async () => {
    const out = path.join(root, 'site');
    const r = await run(['--out', out, '--checkpoint', `tiny=${FIXTURE}`]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^web: built \d+ files \([\d.]+ MB\) into /);
    const files = await fs.readdir(out, { recursive: true });
    expect(files).toEqual(
      expect.arrayContaining([SITE_MARKER, 'index.html', 'playground.html', 'digits.html', 'style.css', 'playground.js', 'digits.js', path.join('wasm', 'tfjs-backend-wasm-threaded-simd.wasm'), path.join('wasm', 'fused-kernels-shared.wasm'), path.join('checkpoints', 'tiny', 'CURRENT')]),
    );
    expect(JSON.parse(await fs.readFile(path.join(out, 'checkpoints', 'index.json'), 'utf8'))).toEqual([{ name: 'tiny', url: 'checkpoints/tiny' }]);
    // Only the stored value is copied: CURRENT and the version it names.
    const version = (await fs.readFile(path.join(FIXTURE, 'CURRENT'), 'utf8')).trim();
    expect((await fs.readdir(path.join(out, 'checkpoints', 'tiny'))).sort()).toEqual(['CURRENT', version]);
  });

  test('refuses a folder it did not build, and leaves it as it was', async () => {
    const mine = path.join(root, 'mine');
    await fs.mkdir(mine);
    await fs.writeFile(path.join(mine, 'notes.txt'), 'keep me');
    const r = await run(['--out', mine]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/--out .*mine: exists and is not a site built by experiments:web/);
    expect(await fs.readdir(mine)).toEqual(['notes.txt']);
  });

  test('a checkpoint that is not one fails naming it, and the earlier build stays', async () => {
    const out = path.join(root, 'site');
    const before = (await fs.readdir(out, { recursive: true })).sort();
    const r = await run(['--out', out, '--checkpoint', root]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`--checkpoint ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a checkpoint directory`));
    expect((await fs.readdir(out, { recursive: true })).sort()).toEqual(before);
    expect((await fs.readdir(root)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('bad flags exit 2 naming the flag', async () => {
    const r = await run(['--port', '-1']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--port/);
    expect((await run(['--checkpoint', 'a=x,a=y', '--out', path.join(root, 'other')])).err).toMatch(/the name "a" is repeated/);
  });

  test('a checkpoint is named after its folder, or its parent for …/checkpoint, unless name= is given', () => {
    expect(bundledCheckpoint('runs/a/checkpoint')).toEqual({ name: 'a', dir: 'runs/a/checkpoint' });
    expect(bundledCheckpoint('ckpts/best')).toEqual({ name: 'best', dir: 'ckpts/best' });
    expect(bundledCheckpoint('x=runs/a/checkpoint')).toEqual({ name: 'x', dir: 'runs/a/checkpoint' });
  });
});

describe('the local server', () => {
  test('serves the site cross-origin isolated, with content types; 404 outside it or for a missing file; 405 for POST', async () => {
    const server = await serveSite(path.join(root, 'site'), { port: 0, host: '127.0.0.1' });
    try {
      const page = await fetch(`${server.url}playground.html`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
      expect((await fetch(`${server.url}wasm/fused-kernels.wasm`)).headers.get('content-type')).toBe('application/wasm');
      expect((await fetch(`${server.url}`)).status).toBe(200);
      expect((await fetch(`${server.url}nothing.js`)).status).toBe(404);
      expect((await fetch(`${server.url}%2e%2e/%2e%2e/package.json`)).status).toBe(404);
      expect((await fetch(`${server.url}playground.html`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });

  test('a request path never names a file outside the site', () => {
    const site = path.join(root, 'site');
    for (const p of ['/../secret', '/%2e%2e/%2e%2e/etc/passwd', '/a/../../b', '/..%2f..%2fx', '/%zz']) {
      const f = fileOfRequest(site, p);
      expect(f === undefined || f.startsWith(site + path.sep)).toBe(true);
    }
    expect(fileOfRequest(site, '/')).toBe(path.join(site, 'index.html'));
  });
});
