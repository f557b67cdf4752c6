/**
 * Building the static site of `experiments:web`: the two pages (sampler playground, digits) bundled for the browser by
 * esbuild from `packages/experiments/web/`, against the packages' browser entries (no Node built-in may be reachable:
 * esbuild's browser platform refuses them), with what the pages load at run time:
 *
 *   index.html, playground.html, digits.html, style.css   the pages (web/static)
 *   playground.js, digits.js, chunk-*.js                  the bundles (ES modules, the shared code in chunks)
 *   wasm/tfjs-backend-wasm*.wasm                          the wasm backend's three builds (from node_modules)
 *   wasm/fused-kernels.wasm, fused-kernels-shared.wasm    the project's fused kernels, assembled here with wabt
 *   checkpoints/index.json, checkpoints/<name>/           checkpoints bundled with --checkpoint (their CURRENT and version)
 *
 * Static files only: any static host serves them, and the pages need nothing else once loaded.
 *
 * @module site/build
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import * as esbuild from 'esbuild';
import { fusedKernelsBinary } from '@score-sde/tensor-fp/node';
import { tensorFiles } from '@score-sde/models';

/** Where the pages' sources are. @category layout */
export const WEB_ROOT = path.resolve(__dirname, '..', '..', 'web');

/** The pages' entry points (bundle name ↦ source). @category layout */
export const PAGE_ENTRIES: Readonly<Record<string, string>> = {
  playground: path.join(WEB_ROOT, 'src', 'playground.ts'),
  digits: path.join(WEB_ROOT, 'src', 'digits.ts'),
};

/** The file marking a folder as a built site (a rebuild replaces only such a folder). @category layout */
export const SITE_MARKER = '.score-sde-site';

/** A checkpoint to bundle: the name it gets in the site and the directory it is read from. @category model */
export interface BundledCheckpoint {
  readonly name: string;
  readonly dir: string;
}

/** What a build wrote: the folder, its files with their sizes, and esbuild's warnings. @category model */
export interface SiteBuild {
  readonly out: string;
  readonly files: ReadonlyArray<{ readonly file: string; readonly bytes: number }>;
  readonly warnings: ReadonlyArray<string>;
}

/**
 * Bundles the pages for the browser platform (ES modules, shared chunks): Left with esbuild's errors, one line each
 * (`file:line: message`), e.g. a Node built-in that a page reaches. `write: false` builds in memory (the bundle check).
 * @category building
 */
export const bundlePages = async (o: { readonly outdir: string; readonly minify: boolean; readonly write: boolean; readonly entries?: Readonly<Record<string, string>> }): Promise<E.Either<ReadonlyArray<string>, esbuild.BuildResult & { readonly metafile: esbuild.Metafile }>> => {
  try {
    const r = await esbuild.build({
      entryPoints: { ...(o.entries ?? PAGE_ENTRIES) },
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: o.minify,
      outdir: o.outdir,
      write: o.write,
      metafile: true,
      // The metafile's paths are relative to the workspace root (packages/…, node_modules/…).
      absWorkingDir: path.resolve(WEB_ROOT, '..', '..', '..'),
      tsconfig: path.join(WEB_ROOT, 'tsconfig.json'),
      logLevel: 'silent',
      legalComments: 'none',
    });
    return E.right(r);
  } catch (e) {
    const errors = (e as { errors?: ReadonlyArray<esbuild.Message> }).errors;
    return E.left(errors === undefined ? [(e as Error).message] : errors.map((m) => `${m.location === null ? '' : `${m.location.file}:${m.location.line}: `}${m.text}`));
  }
};

/** Whether `out` may be (re)built: absent, empty, or a site built before (its marker). */
const replaceable = async (out: string): Promise<boolean> => {
  const entries = await fs.readdir(out).catch(() => undefined);
  return entries === undefined || entries.length === 0 || entries.includes(SITE_MARKER);
};

/** Copies the stored value of a checkpoint directory: CURRENT and the version it names, or the flat files. */
const copyCheckpoint = async (from: string, to: string): Promise<E.Either<string, void>> => {
  const at = await tensorFiles.storedDirectory(from);
  if (E.isLeft(at)) return E.left(`--checkpoint ${from}: ${at.left.message}`);
  if (!(await tensorFiles.holdsManifest(from))) return E.left(`--checkpoint ${from}: not a checkpoint directory (no CURRENT or manifest.json)`);
  await fs.mkdir(to, { recursive: true });
  if (at.right === from) await fs.cp(from, to, { recursive: true, filter: (src) => !path.basename(src).startsWith('.') });
  else {
    await fs.copyFile(path.join(from, tensorFiles.CURRENT), path.join(to, tensorFiles.CURRENT));
    await fs.cp(at.right, path.join(to, path.basename(at.right)), { recursive: true });
  }
  return E.right(undefined);
};

const listFiles = async (dir: string, under = ''): Promise<Array<{ file: string; bytes: number }>> => {
  const out: Array<{ file: string; bytes: number }> = [];
  for (const e of await fs.readdir(path.join(dir, under), { withFileTypes: true })) {
    const rel = under === '' ? e.name : `${under}/${e.name}`;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push({ file: rel, bytes: (await fs.stat(path.join(dir, rel))).size });
  }
  return out;
};

/** Writes the site into the empty folder `dir` (module comment). */
const writeSite = async (dir: string, checkpoints: ReadonlyArray<BundledCheckpoint>, minify: boolean): Promise<E.Either<string, ReadonlyArray<string>>> => {
  await fs.mkdir(path.join(dir, 'wasm'), { recursive: true });
  await fs.writeFile(path.join(dir, SITE_MARKER), 'built by npx nx run experiments:web\n');
  const bundled = await bundlePages({ outdir: dir, minify, write: true });
  if (E.isLeft(bundled)) return E.left(`bundling the pages failed:\n${bundled.left.map((l) => `  ${l}`).join('\n')}`);
  await fs.cp(path.join(WEB_ROOT, 'static'), dir, { recursive: true });
  const wasmDist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) await fs.copyFile(path.join(wasmDist, f), path.join(dir, 'wasm', f));
  await fs.writeFile(path.join(dir, 'wasm', 'fused-kernels.wasm'), await fusedKernelsBinary(false));
  await fs.writeFile(path.join(dir, 'wasm', 'fused-kernels-shared.wasm'), await fusedKernelsBinary(true));
  await fs.mkdir(path.join(dir, 'checkpoints'), { recursive: true });
  for (const c of checkpoints) {
    const copied = await copyCheckpoint(path.resolve(c.dir), path.join(dir, 'checkpoints', c.name));
    if (E.isLeft(copied)) return copied;
  }
  await fs.writeFile(path.join(dir, 'checkpoints', 'index.json'), `${JSON.stringify(checkpoints.map((c) => ({ name: c.name, url: `checkpoints/${c.name}` })), null, 2)}\n`);
  return E.right((bundled.right.warnings ?? []).map((w) => w.text));
};

/**
 * Builds the site into `out` (module comment): written beside it into a temporary folder, which then replaces `out`,
 * so a failed build leaves `out` as it was. Refuses a folder that holds anything but an earlier build. Left: what went
 * wrong, in one message.
 * @category building
 */
export const buildSite = async (o: { readonly out: string; readonly checkpoints: ReadonlyArray<BundledCheckpoint>; readonly minify?: boolean }): Promise<E.Either<string, SiteBuild>> => {
  const out = path.resolve(o.out);
  if (!(await replaceable(out))) return E.left(`--out ${out}: exists and is not a site built by experiments:web (no ${SITE_MARKER}); refusing to replace it`);
  const names = o.checkpoints.map((c) => c.name);
  const bad = names.find((n, i) => !/^[A-Za-z0-9._-]+$/.test(n) || names.indexOf(n) !== i);
  if (bad !== undefined) return E.left(`--checkpoint: the name "${bad}" is repeated or not made of letters, digits, ".", "_" and "-"`);
  const tmp = `${out}.tmp-${process.pid}-${Date.now()}`;
  try {
    const written = await writeSite(tmp, o.checkpoints, o.minify ?? true);
    if (E.isLeft(written)) return written;
    await fs.rm(out, { recursive: true, force: true });
    await fs.rename(tmp, out);
    return E.right({ out, files: await listFiles(out), warnings: written.right });
  } catch (e) {
    return E.left(`writing ${out}: ${(e as Error).message}`);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
};
