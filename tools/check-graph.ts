/**
 * Keeps the dependency arrows one way: tensor-fp ← sde-math ← solvers ← models ← experiments ← tools.
 *
 * Independent checks, each failing the test run:
 * 1. Nx's project graph (`nx graph --file`, built from imports and package.json): every edge between packages must
 *    point to a package earlier in the chain.
 * 2. Entry points only: a file under `tools/` imports a package by its name (`@score-sde/solvers`), never a path into
 *    a package (`../../packages/solvers/src/…`) nor a deep name (`@score-sde/solvers/src/…`); and no relative import
 *    in a package leaves that package.
 * 3. Layers inside experiments: `lib` ← `pipeline` ← {`mnist`, `eval`}, `lib` ← `toy`, `lib` ← `site`; the command files at the top
 *    (`src/*.ts`) may import any of them, and no folder imports a folder to its right or a sibling (so `mnist/` and
 *    `eval/` never import each other).
 * 4. dpdm over every package's and the tools' sources: no circular import anywhere.
 *
 * Imports are read with the TypeScript compiler's own pre-processor (`ts.preProcessFile`: static imports, exports
 * from, `require` and `import()`), so comments and strings never count.
 *
 * Run: `npm run check:graph` (part of `npm test`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';

/** The chain, left to right: a package may depend only on packages to its left. */
export const CHAIN = ['tensor-fp', 'sde-math', 'solvers', 'models', 'experiments'] as const;

/**
 * The folders of `packages/experiments/src`, each with the folders it may import from (besides itself). Files at
 * the top of `src` (the commands and the entry) may import anything.
 */
export const EXPERIMENT_LAYERS: Readonly<Record<string, ReadonlyArray<string>>> = {
  lib: [],
  pipeline: ['lib'],
  toy: ['lib'],
  site: ['lib'],
  mnist: ['lib', 'pipeline'],
  eval: ['lib', 'pipeline'],
};

const root = path.resolve(__dirname, '..');
const rank = (project: string): number => CHAIN.findIndex((p) => project === p || project === `@score-sde/${p}`);

interface NxGraph {
  readonly graph: { readonly dependencies: Record<string, ReadonlyArray<{ readonly target: string }>> };
}

/** Edges of the Nx project graph that point the wrong way (or to a package outside the chain). */
export const wrongEdges = (g: NxGraph): ReadonlyArray<string> =>
  Object.entries(g.graph.dependencies).flatMap(([source, deps]) =>
    rank(source) < 0
      ? []
      : deps
          .filter((d) => rank(d.target) >= 0 || d.target.startsWith('@score-sde/'))
          .filter((d) => rank(d.target) < 0 || rank(d.target) >= rank(source))
          .map((d) => `${source} → ${d.target}`),
  );

/** The module specifiers a TypeScript source imports (static, re-exports, require, dynamic import). */
export const importsOf = (text: string): ReadonlyArray<string> => ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);

/** A source file: its path relative to the repository root (forward slashes) and its text. */
export interface SourceFile {
  readonly file: string;
  readonly text: string;
}

const posix = (p: string): string => p.split(path.sep).join('/');

/**
 * Imports that go past a package's entry points: from `tools/`, a relative path into `packages/` or a deep
 * `@score-sde/<pkg>/…` name that the package does not declare in its `exports` (`entries`, e.g.
 * `@score-sde/tensor-fp/testing`); from `packages/<p>/`, a relative path out of `packages/<p>/` or such a deep name.
 */
export const entryPointViolations = (files: ReadonlyArray<SourceFile>, entries: ReadonlySet<string> = new Set()): ReadonlyArray<string> =>
  files.flatMap(({ file, text }) =>
    importsOf(text).flatMap((spec) => {
      if (/^@score-sde\/[^/]+\/./.test(spec) && !entries.has(spec)) return [`${file}: imports ${spec} (import the package by its name or a declared entry, not a file inside it)`];
      if (!spec.startsWith('.')) return [];
      const target = posix(path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)));
      if (file.startsWith('tools/') && target.startsWith('packages/')) return [`${file}: imports ${spec} (a path into a package: import @score-sde/${target.split('/')[1]} instead)`];
      const pkg = /^packages\/[^/]+\//.exec(file)?.[0];
      if (pkg !== undefined && !target.startsWith(pkg)) return [`${file}: imports ${spec} (a path out of its package ${pkg.slice(0, -1)})`];
      return [];
    }),
  );

const EXPERIMENTS_SRC = 'packages/experiments/src/';

/** The layer (folder) of a file under experiments/src, or '' for the top-level files. */
const layerOf = (file: string): string => {
  const rest = file.slice(EXPERIMENTS_SRC.length);
  return rest.includes('/') ? rest.slice(0, rest.indexOf('/')) : '';
};

/** Relative imports inside experiments/src that go against {@link EXPERIMENT_LAYERS} (or from/to an undeclared folder). */
export const layerViolations = (files: ReadonlyArray<SourceFile>): ReadonlyArray<string> => {
  const known = new Set(files.map((f) => f.file));
  // A relative specifier names `x.ts`, or a folder `x/` through its `x/index.ts`.
  const resolve = (target: string): string => [target, `${target}.ts`, `${target}/index.ts`].find((c) => known.has(c)) ?? `${target}.ts`;
  return files
    .filter(({ file }) => file.startsWith(EXPERIMENTS_SRC))
    .flatMap(({ file, text }) => {
      const from = layerOf(file);
      if (from === '') return [];
      const allowed = EXPERIMENT_LAYERS[from];
      if (allowed === undefined) return [`${file}: the folder ${from}/ has no declared layer (add it to EXPERIMENT_LAYERS in tools/check-graph.ts)`];
      return importsOf(text)
        .filter((spec) => spec.startsWith('.'))
        .flatMap((spec) => {
          const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
          if (!target.startsWith(EXPERIMENTS_SRC)) return [];
          const to = layerOf(resolve(target));
          return to === from || allowed.includes(to) ? [] : [`${file}: ${from}/ imports ${to === '' ? 'a command file' : `${to}/`} (${spec}); ${from}/ may import ${[...allowed, from].join(', ')}`];
        });
    });
};

/** Every .ts file under `dir` (relative to the root), skipping node_modules and output folders. */
const sourcesUnder = (dir: string): ReadonlyArray<SourceFile> => {
  const out: SourceFile[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(path.join(root, d), { withFileTypes: true })) {
      const rel = `${d}/${e.name}`;
      if (e.isDirectory()) {
        if (!['node_modules', 'out', 'dist', 'coverage'].includes(e.name)) walk(rel);
      } else if (e.name.endsWith('.ts')) out.push({ file: rel, text: fs.readFileSync(path.join(root, rel), 'utf8') });
    }
  };
  walk(dir);
  return out;
};

const npx = (args: ReadonlyArray<string>): string =>
  execFileSync('npx', [...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

/** The deep entry points the packages declare in their package.json `exports` (every key but "."). */
const declaredEntries = (): ReadonlySet<string> =>
  new Set(
    CHAIN.flatMap((p) => {
      const pkg = JSON.parse(fs.readFileSync(path.join(root, 'packages', p, 'package.json'), 'utf8')) as { name: string; exports?: Record<string, string> };
      return Object.keys(pkg.exports ?? {})
        .filter((k) => k !== '.')
        .map((k) => `${pkg.name}/${k.replace(/^\.\//, '')}`);
    }),
  );

const main = (): void => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nx-graph-')), 'graph.json');
  npx(['nx', 'graph', `--file=${file}`]);
  const graph = JSON.parse(fs.readFileSync(file, 'utf8')) as NxGraph;
  const projects = Object.keys(graph.graph.dependencies).filter((p) => rank(p) >= 0);
  const bad = wrongEdges(graph);

  const sources = [...CHAIN.flatMap((p) => sourcesUnder(`packages/${p}`)), ...sourcesUnder('tools')];
  const pastEntry = entryPointViolations(sources, declaredEntries());
  const layers = layerViolations(sources);

  let cycles = '';
  const entries = [...CHAIN.map((p) => `packages/${p}/src/**/*.ts`), 'tools/**/*.ts'];
  try {
    npx(['dpdm', '--no-warning', '--no-tree', '--exit-code', 'circular:1', '-T', ...entries]);
  } catch (e) {
    cycles = String((e as { stdout?: string }).stdout ?? e);
  }

  const failures = [
    ...(projects.length !== CHAIN.length ? [`expected the ${CHAIN.length} packages of the chain, Nx sees ${projects.join(', ')}`] : []),
    ...(bad.length > 0 ? [`dependencies against the chain ${CHAIN.join(' ← ')}:\n  ${bad.join('\n  ')}`] : []),
    ...(pastEntry.length > 0 ? [`imports past a package's entry point:\n  ${pastEntry.join('\n  ')}`] : []),
    ...(layers.length > 0 ? [`imports against the layers of experiments (${Object.entries(EXPERIMENT_LAYERS).map(([k, v]) => `${k} ← ${v.join(',') || '∅'}`).join('; ')}):\n  ${layers.join('\n  ')}`] : []),
    ...(cycles !== '' ? [`circular imports found:\n${cycles}`] : []),
  ];
  if (failures.length > 0) {
    console.error(failures.map((f) => `check-graph: ${f}`).join('\n'));
    process.exit(1);
  }
  const edges = projects.flatMap((p) => (graph.graph.dependencies[p] ?? []).filter((d) => rank(d.target) >= 0 || d.target.startsWith('@score-sde/')).map((d) => `${p}→${d.target}`));
  console.log(
    `check-graph: ${projects.length} packages, ${edges.length} edges, all along ${CHAIN.join(' ← ')}; ${sources.length} files import packages by their entry points only; ` +
      `experiments' layers hold; no circular imports`,
  );
};

if (require.main === module) main();
