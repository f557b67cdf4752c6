/**
 * `npm run docs`: regenerates the documentation.
 *
 * 1. Runs every package's tests with `SCORE_SDE_MARGINS` set, so each identity records its worst statistic, and
 *    keeps them in `docs/margins.json` (skipped with `--no-test`; `--projects a,b` re-runs only those packages and
 *    keeps the other packages' margins).
 * 2. Renders `docs/mathematics.md` from the declarations in the tests and those margins.
 * 3. Writes the `@example` blocks of the doc comments to `packages/experiments/examples/doc/` (run by `npm test`).
 * 4. Writes the API reference with TypeDoc to `docs/api/` (skipped with `--no-api`).
 *
 * Exits non-zero when a test failed (the document is still written, with the failing identities marked).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MARGINS_ENV, type Margin } from '@score-sde/tensor-fp/testing';
import { collect, ROOT } from './collect';
import { render, type MarginsFile } from './render';
import { DOC, MARGINS, readMargins } from './check';
import { writeExamples } from './examples';

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(name);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const known = new Set(['--no-test', '--no-api', '--projects']);
args.forEach((a, i) => {
  if (a.startsWith('--') && !known.has(a)) {
    console.error(`docs: unknown flag ${a} (flags: --no-test, --no-api, --projects a,b)`);
    process.exit(2);
  }
  if (!a.startsWith('--') && args[i - 1] !== '--projects') {
    console.error(`docs: unexpected argument ${a}`);
    process.exit(2);
  }
});

const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', FORCE_COLOR: '0' };

/** Runs the tests recording margins; returns the margins and the number of failed projects. */
const runTests = (projects: ReadonlyArray<string> | undefined): { margins: Margin[]; failed: number } => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'score-sde-margins-'));
  const nxArgs = ['nx', 'run-many', '-t', 'test', '--skip-nx-cache', '--output-style=static', ...(projects === undefined ? [] : ['-p', projects.join(',')])];
  console.log(`docs: npx ${nxArgs.join(' ')} (recording margins in ${dir})`);
  const r = spawnSync('npx', nxArgs, { cwd: ROOT, env: { ...env, [MARGINS_ENV]: dir }, stdio: 'inherit' });
  const margins = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .flatMap((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Margin[]);
  fs.rmSync(dir, { recursive: true, force: true });
  return { margins, failed: r.status === 0 ? 0 : 1 };
};

const main = (): void => {
  const declared = collect(); // fails early on a malformed declaration
  const projects = option('--projects')?.split(',').filter((p) => p !== '');
  let failed = 0;
  if (!flag('--no-test')) {
    const r = runTests(projects);
    failed = r.failed;
    const previous = readMargins();
    const rerun = projects === undefined ? undefined : new Set(projects.map((p) => `packages/${p}/`));
    const kept = rerun === undefined ? [] : previous.margins.filter((m) => ![...rerun].some((p) => m.file.startsWith(p)));
    const file: MarginsFile = {
      run: { date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC', command: `npm run docs${projects === undefined ? '' : ` -- --projects ${projects.join(',')}`}`, passed: failed === 0 },
      margins: [...kept, ...r.margins].sort((a, b) => a.file.localeCompare(b.file) || a.title.localeCompare(b.title) || a.test.localeCompare(b.test)),
    };
    fs.mkdirSync(path.dirname(MARGINS), { recursive: true });
    fs.writeFileSync(MARGINS, `${JSON.stringify(file, null, 1)}\n`);
  }
  fs.writeFileSync(DOC, render(declared, readMargins()));
  console.log(`docs: wrote ${path.relative(ROOT, DOC)} (${declared.length} identities)`);
  console.log(`docs: wrote ${writeExamples()} @example files to packages/experiments/examples/doc/`);
  if (!flag('--no-api')) {
    execFileSync('npx', ['typedoc', '--options', 'typedoc.json'], { cwd: ROOT, env, stdio: 'inherit' });
    console.log('docs: wrote the API reference to docs/api/ (open docs/api/index.html)');
  }
  if (failed > 0) {
    console.error('docs: some tests failed; their identities are marked ❌ in docs/mathematics.md');
    process.exit(1);
  }
};

main();
