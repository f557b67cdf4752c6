/**
 * Sampling and evaluation past one machine: shard i of n draws only whole chunks of every key range, and the merge
 * of the n shard folders writes exactly the files of the unsharded run — the samples (IDX and PNG) and every figure
 * byte for byte, the reports equal but for wall-clock fields. Checked on a tiny untrained checkpoint, with a
 * batch-coupled sampler (the adaptive ODE, one step size per chunk) among them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { initBackend, type BackendInfo } from '@score-sde/tensor-fp';
import { cli } from '../src/lib';
import { mnistFlags, type MnistFlags } from '../src/mnist/flags';
import { runMnist, runMnistShard } from '../src/mnist/run';
import { runEvaluation } from '../src/eval/run';
import { runEvaluationShard } from '../src/eval/shard';
import { mergeShardFolders } from '../src/run-merge';
import { chunkAlignedRange } from '../src/pipeline';
import { parse, smallMnist, tempDir, tinyArgs, tinyCheckpoint } from './eval/helpers';

let backend: BackendInfo;
let dir: string;
let checkpoint: string;
const quiet = (): void => undefined;

beforeAll(async () => {
  backend = await initBackend({ prefer: 'wasm', quiet: true });
  dir = tempDir('shards');
  checkpoint = await tinyCheckpoint(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every file below a folder (relative paths), without the ones `skip` names. */
const filesUnder = (root: string, skip: (rel: string) => boolean = () => false): ReadonlyArray<string> =>
  fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .filter((rel) => !skip(rel))
    .sort();

/** A JSON report without the fields that are wall-clock or machine readings, or name where a run wrote. */
const stable = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(stable)
    : v !== null && typeof v === 'object'
      ? Object.fromEntries(
          Object.entries(v)
            .filter(([k]) => !['seconds', 'trainSeconds', 'memory', 'peakRssMb', 'backend', 'out', 'dir', 'reused', 'epochMemory'].includes(k))
            .map(([k, x]) => [k, stable(x)]),
        )
      : v;

describe('chunkAlignedRange', () => {
  test('the shards of n items in chunks of b are whole chunks that tile [0, n) in order (empty when there are more shards than chunks)', () => {
    for (const [n, b, count] of [[5, 2, 3], [64, 64, 4], [10, 3, 2], [7, 1, 7], [1, 4, 1]] as const) {
      const r = Array.from({ length: count }, (_, i) => chunkAlignedRange(n, b, i, count));
      expect(r[0]!.start).toBe(0);
      expect(r[count - 1]!.end).toBe(n);
      r.slice(1).forEach((x, i) => expect(x.start).toBe(r[i]!.end));
      for (const x of r) expect(x.start % b === 0 && (x.end % b === 0 || x.end === n)).toBe(true);
    }
  });
});

describe('experiments:mnist --shard i/n, then experiments:merge', () => {
  const flags = (extra: ReadonlyArray<string>): MnistFlags => {
    const r = cli.parseFlags(mnistFlags, ['--sample-only', checkpoint, '--samplers', 'em,ode', '--steps', '3', '--ode-tol', '1e-3', '--num-samples', '5', '--sample-batch', '2', '--quiet', ...extra]);
    if (E.isLeft(r)) throw new Error(cli.renderCliError(r.left));
    return r.right;
  };

  test('3 shards merged write the unsharded run’s samples-<sampler>.idx and .png byte for byte (the adaptive ODE included), and its report but for times', async () => {
    const whole = path.join(dir, 'mnist-whole');
    const w = await runMnist(flags([]), { backend, log: quiet }, whole);
    if (E.isLeft(w)) throw new Error(w.left.message);
    const shards = [2, 0, 1].map((i) => path.join(dir, `mnist-shard-${i}`));
    for (const [k, i] of [2, 0, 1].entries()) {
      const s = await runMnistShard(flags(['--shard', `${i}/3`]), { backend, log: quiet }, shards[k]!);
      if (E.isLeft(s)) throw new Error(s.left.message);
      // Whole chunks of 2: shards [0, 2), [2, 4), [4, 5).
      expect([s.right.range.start, s.right.range.end]).toEqual([[0, 2], [2, 4], [4, 5]][i]);
    }
    const merged = path.join(dir, 'mnist-merged');
    const m = await mergeShardFolders(shards, merged, { backend, log: quiet });
    if (E.isLeft(m)) throw new Error(m.left.message);
    const artefacts = filesUnder(whole, (f) => f.startsWith('report.'));
    expect(artefacts).toEqual(['samples-em.idx', 'samples-em.png', 'samples-ode.idx', 'samples-ode.png']);
    expect(filesUnder(merged, (f) => f.startsWith('report.'))).toEqual(artefacts);
    for (const f of artefacts) expect([f, fs.readFileSync(path.join(merged, f)).equals(fs.readFileSync(path.join(whole, f)))]).toEqual([f, true]);
    const report = (d: string): unknown => stable(JSON.parse(fs.readFileSync(path.join(d, 'report.json'), 'utf8')));
    expect(report(merged)).toEqual(report(whole));
  });

  test('the merge refuses a missing shard, a repeated one, and shards of another run, naming them', async () => {
    const shards = [0, 1, 2].map((i) => path.join(dir, `mnist-shard-${i}`));
    const missing = await mergeShardFolders(shards.slice(0, 2), path.join(dir, 'm1'), { backend, log: quiet });
    expect(E.isLeft(missing) && missing.left.message).toMatch(/shard 2\/3 missing/);
    const twice = await mergeShardFolders([shards[0]!, shards[0]!, shards[1]!], path.join(dir, 'm2'), { backend, log: quiet });
    expect(E.isLeft(twice) && twice.left.message).toMatch(/are both shard 0\/3/);
    const otherRun = path.join(dir, 'mnist-other-2');
    const o = await runMnistShard(flags(['--shard', '2/3', '--seed', '9']), { backend, log: quiet }, otherRun);
    if (E.isLeft(o)) throw new Error(o.left.message);
    const mixed = await mergeShardFolders([shards[0]!, shards[1]!, otherRun], path.join(dir, 'm3'), { backend, log: quiet });
    expect(E.isLeft(mixed) && mixed.left.message).toMatch(/are shards of different runs/);
    const notShard = await mergeShardFolders([checkpoint], path.join(dir, 'm4'), { backend, log: quiet });
    expect(E.isLeft(notShard) && notShard.left.message).toMatch(/invalid manifest\.json/);
  });

  test('--shard without --sample-only is refused (training is not sharded)', async () => {
    const r = cli.parseFlags(mnistFlags, ['--shard', '0/2', '--quiet']);
    if (E.isLeft(r)) throw new Error('flags');
    const s = await runMnistShard(r.right, { backend, log: quiet }, path.join(dir, 'nope'));
    expect(E.isLeft(s) && s.left.message).toMatch(/^--shard: .*--sample-only/);
    expect(E.isLeft(cli.parseFlags(mnistFlags, ['--shard', '3/3']))).toBe(true);
  });
});

describe('experiments:mnist-eval --shard i/n, then experiments:merge', () => {
  test('2 shards merged write every figure of the unsharded evaluation byte for byte, and its eval.json but for times and folders', async () => {
    const mnist = await smallMnist();
    const ctx = { backend, log: quiet, mnist };
    const whole = path.join(dir, 'eval-whole');
    // Chunks of 4 for the 8 samples of each sampler (the adaptive ODE's step size is per chunk) and bits/dim in 1s.
    const args = tinyArgs(checkpoint, { 'sample-batch': '4', 'bpd-batch': '1' });
    const w = await runEvaluation(parse(args), ctx, whole);
    if (E.isLeft(w)) throw new Error(w.left.message);
    // The shards and the merge reuse the classifiers of the whole run (as a cluster job reuses ones trained once).
    const sharedArgs = tinyArgs(checkpoint, { 'sample-batch': '4', 'bpd-batch': '1', classifier: path.join(whole, 'classifier'), 'noisy-classifier': path.join(whole, 'noisy-classifier') });
    const shards = [0, 1].map((i) => path.join(dir, `eval-shard-${i}`));
    for (const i of [0, 1]) {
      const s = await runEvaluationShard(parse(sharedArgs), { index: i, count: 2 }, ctx, shards[i]!);
      if (E.isLeft(s)) throw new Error(s.left.message);
    }
    const merged = path.join(dir, 'eval-merged');
    const m = await mergeShardFolders(shards, merged, { backend, log: quiet });
    // The merge reads MNIST itself: this checks the same splits as the whole run used (the first 256 / 64 images).
    if (E.isLeft(m)) throw new Error(m.left.message);
    const figures = filesUnder(whole, (f) => !f.endsWith('.png'));
    expect(figures).toEqual(['conditional-ode.png', 'conditional-pc.png', 'fid-vs-nfe.png', 'inpainting.png', 'interpolation.png', 'samplers.png']);
    for (const f of figures) expect([f, fs.readFileSync(path.join(merged, f)).equals(fs.readFileSync(path.join(whole, f)))]).toEqual([f, true]);
    const evalJson = (d: string): Record<string, unknown> => {
      const j = stable(JSON.parse(fs.readFileSync(path.join(d, 'eval.json'), 'utf8'))) as Record<string, unknown>;
      // The classifier folders differ by design (trained in the whole run, reused by the shards and the merge).
      return { ...j, options: { ...(j['options'] as Record<string, unknown>), classifiers: undefined } };
    };
    expect(evalJson(merged)).toEqual(evalJson(whole));
  });
});
