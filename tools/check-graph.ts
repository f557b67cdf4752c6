/**
 * Keeps the dependency arrows one way: tensor-fp ← sde-math ← solvers ← models ← experiments.
 *
 * Two independent checks, both failing the test run:
 * 1. Nx's project graph (`nx graph --file`, built from imports and package.json): every edge must point to a
 *    package earlier in the chain.
 * 2. dpdm over every package's sources: no circular import anywhere.
 *
 * Run: `npm run check:graph` (part of `npm test`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The chain, left to right: a package may depend only on packages to its left. */
export const CHAIN = ['tensor-fp', 'sde-math', 'solvers', 'models', 'experiments'] as const;

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

const npx = (args: ReadonlyArray<string>): string =>
  execFileSync('npx', [...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

const main = (): void => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nx-graph-')), 'graph.json');
  npx(['nx', 'graph', `--file=${file}`]);
  const graph = JSON.parse(fs.readFileSync(file, 'utf8')) as NxGraph;
  const projects = Object.keys(graph.graph.dependencies).filter((p) => rank(p) >= 0);
  const bad = wrongEdges(graph);

  let cycles = '';
  const entries = CHAIN.map((p) => `packages/${p}/src/**/*.ts`);
  try {
    npx(['dpdm', '--no-warning', '--no-tree', '--exit-code', 'circular:1', '-T', ...entries]);
  } catch (e) {
    cycles = String((e as { stdout?: string }).stdout ?? e);
  }

  if (projects.length !== CHAIN.length) {
    console.error(`check-graph: expected the ${CHAIN.length} packages of the chain, Nx sees ${projects.join(', ')}`);
    process.exit(1);
  }
  if (bad.length > 0) {
    console.error(`check-graph: dependencies against the chain ${CHAIN.join(' ← ')}:\n  ${bad.join('\n  ')}`);
    process.exit(1);
  }
  if (cycles !== '') {
    console.error(`check-graph: circular imports found:\n${cycles}`);
    process.exit(1);
  }
  const edges = projects.flatMap((p) => (graph.graph.dependencies[p] ?? []).filter((d) => rank(d.target) >= 0 || d.target.startsWith('@score-sde/')).map((d) => `${p}→${d.target}`));
  console.log(`check-graph: ${projects.length} packages, ${edges.length} edges, all along ${CHAIN.join(' ← ')}; no circular imports`);
};

if (require.main === module) main();
