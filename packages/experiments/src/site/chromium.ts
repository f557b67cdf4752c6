/**
 * A headless Chromium that arrives with `npm ci`: the `@sparticuz/chromium` npm package ships a brotli-compressed
 * headless Chromium (with SwiftShader for WebGL and the NSS libraries it links), which this module unpacks once into
 * a folder of the system's temporary directory named by the package's version (unpacked beside it and renamed into
 * place, so concurrent processes never see half a browser), and `puppeteer-core` drives it. No download, no system
 * package. `SCORE_SDE_CHROMIUM=/path/to/chromium` uses another Chromium instead (e.g. Debian's `/usr/bin/chromium`).
 *
 * A browser that cannot be had is an error with the reason (the web tests then fail; they never skip).
 *
 * @module site/chromium
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { Browser, LaunchOptions } from 'puppeteer-core';

const brotli = promisify(zlib.brotliDecompress);

/** The files of a tar archive (ustar: 512-byte headers, regular files and folders; other entries are skipped). */
export const tarFiles = (tar: Uint8Array): ReadonlyArray<{ readonly name: string; readonly data: Uint8Array; readonly mode: number }> => {
  const out: Array<{ name: string; data: Uint8Array; mode: number }> = [];
  const str = (at: number, len: number): string => new TextDecoder().decode(tar.subarray(at, at + len)).replace(/\0.*$/s, '');
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = str(at, 100);
    if (name === '') break;
    const size = parseInt(str(at + 124, 12).trim() || '0', 8);
    const mode = parseInt(str(at + 100, 8).trim() || '644', 8);
    const type = str(at + 156, 1);
    const prefix = str(at + 257, 6) === 'ustar' ? str(at + 345, 155) : '';
    if (type === '0' || type === '') out.push({ name: prefix === '' ? name : `${prefix}/${name}`, data: tar.subarray(at + 512, at + 512 + size), mode });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
};

interface Unpacked {
  readonly executable: string;
  readonly libraries: string;
  readonly fontconfig: string;
}

/** The package's folder (its exports hide package.json: two levels above its CommonJS entry, build/cjs/index.cjs). */
const packageDir = (): string => path.resolve(path.dirname(require.resolve('@sparticuz/chromium')), '..', '..');

/**
 * Unpacks @sparticuz/chromium's browser into `<tmp>/score-sde-chromium-<version>/`: `chromium`, SwiftShader's libraries
 * beside it, `lib/` (NSS, expat), `fonts/` with a fonts.conf over them and the DejaVu fonts of `dejavu-fonts-ttf`.
 */
const unpack = async (): Promise<Unpacked> => {
  const pkg = packageDir();
  const version = (JSON.parse(await fs.readFile(path.join(pkg, 'package.json'), 'utf8')) as { version: string }).version;
  const dir = path.join(os.tmpdir(), `score-sde-chromium-${version}`);
  const found: Unpacked = { executable: path.join(dir, 'chromium'), libraries: path.join(dir, 'lib'), fontconfig: path.join(dir, 'fonts', 'fonts.conf') };
  if (await fs.stat(path.join(dir, 'complete')).then(() => true, () => false)) return found;
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await fs.mkdir(tmp, { recursive: true });
  try {
    const bin = path.join(pkg, 'bin');
    await fs.writeFile(path.join(tmp, 'chromium'), await brotli(await fs.readFile(path.join(bin, 'chromium.br'))), { mode: 0o755 });
    for (const archive of ['swiftshader.tar.br', 'al2023.tar.br', 'fonts.tar.br']) {
      for (const f of tarFiles(await brotli(await fs.readFile(path.join(bin, archive))))) {
        if (f.name === 'fonts.conf') continue;
        await fs.mkdir(path.dirname(path.join(tmp, f.name)), { recursive: true });
        await fs.writeFile(path.join(tmp, f.name), f.data, { mode: f.mode });
      }
    }
    const dejavu = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
    await fs.writeFile(
      path.join(tmp, 'fonts', 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <dir>${dir}/fonts</dir>\n  <dir>${dejavu}</dir>\n  <cachedir>${dir}/fonts-cache</cachedir>\n</fontconfig>\n`,
    );
    await fs.writeFile(path.join(tmp, 'complete'), `${version}\n`);
    await fs.rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
      // Another process unpacked it first: use theirs.
      if (!(await fs.stat(path.join(dir, 'complete')).then(() => true, () => false))) throw e;
    });
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return found;
};

/** How to start the browser: WebGL through SwiftShader (software), or no GPU at all (WebGL unavailable). @category launching */
export interface ChromiumOptions {
  readonly webgl?: boolean;
}

/** A running browser, and how to stop it (which also removes its temporary profile). @category launching */
export interface Chromium {
  readonly browser: Browser;
  readonly close: () => Promise<void>;
}

/**
 * Launches headless Chromium (module comment) with a fresh profile, no background networking, as root without a
 * sandbox. Rejects with the reason when there is no browser to be had.
 * @category launching
 */
export const launchChromium = async (o: ChromiumOptions = {}): Promise<Chromium> => {
  const puppeteer = (await import('puppeteer-core')).default;
  const given = process.env['SCORE_SDE_CHROMIUM'];
  const unpacked = given === undefined || given === '' ? await unpack() : undefined;
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'score-sde-chromium-profile-'));
  const env: Record<string, string | undefined> = { ...process.env };
  if (unpacked !== undefined) {
    env['LD_LIBRARY_PATH'] = [unpacked.libraries, process.env['LD_LIBRARY_PATH']].filter((p) => p !== undefined && p !== '').join(':');
    env['FONTCONFIG_FILE'] = unpacked.fontconfig;
  }
  const options: LaunchOptions = {
    executablePath: unpacked?.executable ?? given!,
    headless: 'shell',
    userDataDir: profile,
    env: env as Record<string, string>,
    args: [
      '--no-sandbox',
      '--no-zygote',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--disable-default-apps',
      '--disable-extensions',
      '--mute-audio',
      '--font-render-hinting=none',
      ...(o.webgl === true ? ['--use-gl=angle', '--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'] : ['--disable-gpu']),
    ],
  };
  try {
    const browser = await puppeteer.launch(options);
    return {
      browser,
      close: async () => {
        await browser.close();
        await fs.rm(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await fs.rm(profile, { recursive: true, force: true });
    throw new Error(`cannot start headless Chromium (${options.executablePath}): ${(e as Error).message.split('\n')[0]}`);
  }
};
