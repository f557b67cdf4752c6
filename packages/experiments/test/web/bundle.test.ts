/**
 * The browser bundle check: tensor-fp, sde-math, solvers and models bundle for esbuild's browser platform from their
 * browser entries, and so do the site's pages, with no Node shim — esbuild's browser platform refuses every Node
 * built-in (`node:fs`, `path`, `worker_threads`, …), and no module of ours in the bundle names a Node global
 * (`process`, `Buffer`, `require`, `__dirname`, `setImmediate`, …; the host is read through `globalThis`, env.ts).
 * The Node-only parts sit behind the `node` entries, and a bundle that reaches one fails.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as ts from 'typescript';
import * as E from 'fp-ts/Either';
import { bundlePages, PAGE_ENTRIES } from '../../src/site';

const ROOT = path.resolve(__dirname, '..', '..', '..', '..');
const pkg = (p: string): string => path.join(ROOT, 'packages', p);

/** The Node globals a browser does not have. */
const NODE_GLOBALS = new Set(['process', 'Buffer', 'require', 'module', 'exports', '__dirname', '__filename', 'global', 'setImmediate', 'clearImmediate']);

/** The places in a TypeScript source where it names a Node global (not as a property name: `x.process` is fine). */
export const nodeGlobalReferences = (file: string, text: string): ReadonlyArray<string> => {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isIdentifier(node) && NODE_GLOBALS.has(node.text)) {
      const p = node.parent;
      const isName =
        (ts.isPropertyAccessExpression(p) && p.name === node) ||
        ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodDeclaration(p)) && p.name === node) ||
        ts.isQualifiedName(p);
      if (!isName) found.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${node.text}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
};

/** Bundles entries for the browser (in memory): Left esbuild's errors, Right our own sources in the bundle. */
const browserBundle = async (entries: Record<string, string>): Promise<E.Either<ReadonlyArray<string>, ReadonlyArray<string>>> => {
  const r = await bundlePages({ outdir: path.join(ROOT, 'out-never-written'), minify: false, write: false, entries });
  return E.map((b: { readonly metafile: { readonly inputs: Record<string, unknown> } }) => Object.keys(b.metafile.inputs).filter((f) => f.startsWith('packages/')).map((f) => path.join(ROOT, f)))(r);
};

const ENTRIES = {
  'tensor-fp': path.join(pkg('tensor-fp'), 'src', 'browser.ts'),
  'sde-math': path.join(pkg('sde-math'), 'src', 'index.ts'),
  solvers: path.join(pkg('solvers'), 'src', 'index.ts'),
  models: path.join(pkg('models'), 'src', 'browser.ts'),
  ...PAGE_ENTRIES,
};

describe('browser bundle', () => {
  let ours: ReadonlyArray<string>;

  beforeAll(async () => {
    const r = await browserBundle(ENTRIES);
    if (E.isLeft(r)) throw new Error(`the browser bundle failed:\n${r.left.join('\n')}`);
    ours = r.right;
  }, 60_000);

  test('the packages\' browser entries and the pages bundle for the browser platform (no Node built-in reachable)', () => {
    for (const p of ['tensor-fp', 'sde-math', 'solvers', 'models']) expect(ours.some((f) => f.startsWith(pkg(p)))).toBe(true);
    expect(ours.some((f) => f.includes(`${path.sep}web${path.sep}src${path.sep}`))).toBe(true);
    // The Node-only modules stay out.
    for (const nodeOnly of ['tensor-fp/src/node.ts', 'tensor-fp/src/wasm-threads.ts', 'tensor-fp/src/backend-node.ts', 'tensor-fp/src/fused-wat.ts', 'models/src/node.ts', 'models/src/tensor-files.ts', 'models/src/faults.ts'])
      expect(ours.filter((f) => f.endsWith(nodeOnly))).toEqual([]);
  });

  test('no module of ours in the bundle names a Node global', () => {
    expect(ours.length).toBeGreaterThan(40);
    expect(ours.flatMap((f) => nodeGlobalReferences(path.relative(ROOT, f), fs.readFileSync(f, 'utf8')))).toEqual([]);
  });

  test('a bundle that reaches a Node-only part fails, naming the built-in', async () => {
    const r = await browserBundle({ bad: path.join(pkg('tensor-fp'), 'src', 'node.ts') });
    expect(E.isLeft(r)).toBe(true);
    if (E.isLeft(r)) expect(r.left.join('\n')).toMatch(/Could not resolve "node:(fs|path|crypto|vm|os)"/);
  });

  test('the scan finds Node globals, and not property names or globalThis lookups', () => {
    const text = [
      "const a = process.env['X'];",
      "const b = Buffer.from('x');",
      'setImmediate(() => undefined);',
      'const c = __dirname;',
      "const d = (globalThis as { process?: unknown }).process;",
      'const e = { process: 1, Buffer: 2 };',
      'const f = e.process + e.Buffer;',
    ].join('\n');
    expect(nodeGlobalReferences('x.ts', text)).toEqual(['x.ts:1: process', 'x.ts:2: Buffer', 'x.ts:3: setImmediate', 'x.ts:4: __dirname']);
  });
});
