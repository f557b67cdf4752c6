/**
 * `npm run check:benches`: every benchmark (and the e2e profile) run once at its smallest setting, into a temporary
 * folder, as a real process: a benchmark that no longer runs against the packages it measures fails here, in
 * `npm test`, not the next time someone measures. Nothing is timed or compared (speed is measured by the benchmarks
 * themselves, on a quiet machine); only the exit codes count. The PyTorch peers are left out (`--no-torch`: CI has no
 * torch), and so is `web` (it needs a headless Chromium).
 *
 * @module bench/smoke
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A smoke run: the script under tools/bench and its arguments (`{out}` is replaced by a fresh folder). */
interface Smoke {
  readonly name: string;
  readonly script: string;
  readonly args: ReadonlyArray<string>;
}

const SMOKES: ReadonlyArray<Smoke> = [
  { name: 'samplers', script: 'samplers/index.ts', args: ['--quick', '--out', '{out}'] },
  { name: 'scorenet', script: 'scorenet/index.ts', args: ['--quick', '--no-torch', '--backends', 'wasm', '--out', '{out}'] },
  { name: 'overhead', script: 'overhead/index.ts', args: ['--quick', '--batch', '4', '--out', '{out}'] },
  { name: 'filter-gradient', script: 'filter-gradient/index.ts', args: ['--runs', '1', '--batch', '2', '--out', '{out}'] },
  { name: 'e2e', script: 'e2e/index.ts', args: ['--no-torch', '--steps', '2', '--warmup', '1', '--sample-steps', '2', '--rounds', '1', '--out', '{out}'] },
  { name: 'e2e profile', script: 'e2e/profile.ts', args: ['--steps', '1', '--profiles', '1', '--top', '5', '--out', '{out}/profile.md'] },
  { name: 'recipes', script: 'recipes/index.ts', args: ['--quick', '--candidates', 'quick', '--quiet', '--out', '{out}'] },
];

const main = (): number => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'score-sde-bench-smoke-'));
  const failed: string[] = [];
  for (const s of SMOKES) {
    const out = path.join(root, s.name.replace(/\W+/g, '-'));
    fs.mkdirSync(out, { recursive: true });
    const args = s.args.map((a) => a.replace('{out}', out));
    const started = Date.now();
    const r = spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, s.script), ...args], { encoding: 'utf8' });
    const seconds = ((Date.now() - started) / 1000).toFixed(0);
    const command = `npx tsx tools/bench/${s.script} ${args.join(' ')}`;
    if (r.status === 0) process.stdout.write(`check-benches: ${s.name} ran (${seconds} s)\n`);
    else {
      failed.push(s.name);
      process.stderr.write(`check-benches: ${s.name} failed (exit ${r.status ?? r.signal}): ${command}\n${(r.stderr ?? '').split('\n').slice(-20).join('\n')}\n`);
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
  if (failed.length > 0) {
    process.stderr.write(`check-benches: ${failed.length} of ${SMOKES.length} benchmarks no longer run: ${failed.join(', ')}\n`);
    return 1;
  }
  process.stdout.write(`check-benches: all ${SMOKES.length} benchmarks run (web left out: it needs a headless Chromium)\n`);
  return 0;
};

process.exit(main());
