/**
 * Fuzzing every command end to end, in process (each command's main with its output captured): arbitrary mutations
 * of a tiny valid command line for experiments:mnist (training, and --sample-only with --shard and --sample-batch;
 * --preset and --recipe in both), experiments:mnist-eval, experiments:toy, experiments:merge, experiments:torch-export
 * and experiments:torch-import. Whatever the argv: an exit code of 0, 1 or 2, never an escaped exception or a stack trace, every
 * usage error naming its flag, every failure a one-line message, no empty folder and no lock left behind (harness.ts).
 * A few cases run as real processes too, to check the same of the process's own exit code.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import { cli } from '../../src/lib';
import { mnistMain } from '../../src/mnist';
import { mnistEvalMain } from '../../src/mnist-eval';
import { toyMain } from '../../src/toy';
import { mnistFlags, recipeOfFlags, type MnistFlags } from '../../src/mnist/flags';
import { runMnistShard } from '../../src/mnist/run';
import { mnistEvalFlags } from '../../src/eval';
import { mergeMain, mergeFlags } from '../../src/merge';
import { torchExportMain, torchExportFlags } from '../../src/torch-export';
import { torchImportMain, torchImportFlags } from '../../src/torch-import';
import { exportCheckpoint } from '../../src/run-torch';
import { edmRecipe, tutorialRecipe } from '../../src/pipeline';
import { tinyArgs } from '../eval/helpers';
import { initBackend } from '@score-sde/tensor-fp';
import { runCommand, STACK_LINE } from '../process/helpers';
import { type Line, SMALL_TOY, argvOf, checkCase, lineOf, mutatedArgv, sandbox, useCheckpointFixture } from './harness';
import { runs } from '@score-sde/tensor-fp/testing';

const fixture = useCheckpointFixture();

const kebab = (spec: Record<string, unknown>): ReadonlyArray<string> => Object.keys(spec).map(cli.toKebab);

// -------------------------------------------------------------------------------------
// experiments:mnist
// -------------------------------------------------------------------------------------

const MNIST_COST = new Set(['subset', 'batch-size', 'epochs', 'channels', 'embed-dim', 'steps', 'fast-steps', 'num-samples', 'ode-tol', 'eval', 'eval-samples', 'workers']);
const mnistTraining: Line = lineOf({
  subset: '32', 'batch-size': '16', epochs: '1', channels: '4,8,8,8', 'embed-dim': '8', samplers: 'em', steps: '3', 'fast-steps': '2', 'num-samples': '2', 'ode-tol': '0.1', backend: 'wasm', quiet: true, out: 'run',
});

/**
 * Recipe files for --recipe (made before the cases, removed after): the tutorial recipe (another SDE, parameterisation
 * and sampler list than the default preset), one with an unknown key, and one that is not JSON. The cost flags of every
 * case override a recipe's sizes.
 */
const recipes = ((): { readonly files: () => ReadonlyArray<string> } => {
  let dir = '';
  beforeAll(() => {
    dir = sandbox('recipes');
    fs.writeFileSync(path.join(dir, 'tutorial.json'), JSON.stringify(tutorialRecipe));
    fs.writeFileSync(path.join(dir, 'extra-key.json'), JSON.stringify({ ...edmRecipe, extra: 1 }));
    fs.writeFileSync(path.join(dir, 'broken.json'), '{"name": ');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { files: () => ['tutorial.json', 'extra-key.json', 'broken.json', 'missing.json'].map((f) => path.join(dir, f)) };
})();

/**
 * Every valid mutant is a run of at most 4 training steps on a ≤ 16-channel network and a few sampler steps, whatever
 * the preset or recipe file it names (the run's recipe: the preset's or the file's, with the flags over it).
 */
const assertCheap = async (f: MnistFlags): Promise<void> => {
  const recipe = await recipeOfFlags(f);
  if (E.isLeft(recipe)) return; // refused before any work
  const r = recipe.right;
  const steps = f.sampleOnly !== undefined ? 0 : r.epochs * Math.ceil(Math.min(f.subset, 60000) / r.batchSize);
  const ok =
    steps <= 4 &&
    Math.max(...r.model.channels) <= 16 &&
    r.model.embedDim <= 16 &&
    r.sampling.steps <= 3 &&
    r.sampling.fastSteps <= 2 &&
    f.numSamples <= 2 &&
    r.sampling.odeTol >= 0.1 &&
    f.eval.length === 0 &&
    f.workers <= 2;
  if (!ok) throw new Error(`the argv generator made an expensive run: ${JSON.stringify({ flags: f, recipe: r })}`);
};

const runMnistCase = async (argv: ReadonlyArray<string>): Promise<boolean> => {
  const parsed = cli.parseFlags(mnistFlags, argv);
  if (E.isRight(parsed)) await assertCheap(parsed.right);
  const o = await checkCase('mnist', mnistMain, argv);
  // A run that succeeded wrote its report or its shard (or printed the help).
  if (o.code === 0 && !o.stdout.startsWith('Usage:')) expect(o.stderr).toMatch(/^(done: .*report\.md|shard \d+\/\d+ written: .*)$/m);
  return true;
};

test('experiments:mnist, training: any mutation of a tiny command line exits 0, 1 or 2 with a message naming the problem', async () => {
  const o = {
    flags: kebab(mnistFlags),
    cost: MNIST_COST,
    alternatives: {
      samplers: ['em,dpm', 'ode', 'pc', 'edm', 'dpm'],
      sde: ['vp', 've', 'subvp', 've-edm', 'tutorial'],
      preset: ['quick', 'quality'],
      recipe: recipes.files(),
      backend: ['cpu', 'tensorflow', 'auto'],
      'sample-only': [fixture.checkpoint(), path.join(fixture.dir(), 'nowhere')],
      resume: [fixture.checkpoint()],
      workers: ['2'],
      'sample-batch': ['1', '2'],
      shard: ['0/2', '1/2'],
    },
  };
  // Pinned: cases exploration found (an empty --channels list reached the network and threw), and the recipe files.
  const pinned = [
    ...[['--channels', ''], ['--channels', '4,8,8,8,8'], ['--embed-dim', '7']].map(([flag, v]) => argvOf(mnistTraining.map(([f, x]) => (`--${f}` === flag ? [f, v] : [f, x])))),
    ...recipes.files().map((file) => argvOf([...mnistTraining, ['recipe', file]])),
    argvOf([...mnistTraining, ['preset', 'quality']]),
  ].map((argv) => [argv] as [ReadonlyArray<string>]);
  await fc.assert(fc.asyncProperty(mutatedArgv(mnistTraining, o), runMnistCase), runs(30, { examples: pinned }));
});

test('experiments:mnist, --sample-only (with --shard and --sample-batch): any mutation exits 0, 1 or 2 with a message naming the problem', async () => {
  const base = lineOf({ 'sample-only': fixture.checkpoint(), samplers: 'em,dpm', steps: '3', 'fast-steps': '2', 'num-samples': '2', 'ode-tol': '0.1', channels: '4,8,8,8', 'embed-dim': '8', subset: '32', epochs: '1', backend: 'wasm', quiet: true, out: 'so' });
  const o = {
    flags: kebab(mnistFlags),
    cost: MNIST_COST,
    alternatives: {
      samplers: ['ode', 'pc', 'edm'],
      'sample-only': [path.join(fixture.dir(), 'nowhere'), fixture.dir()],
      shard: ['0/2', '1/2', '0/1', '2/2', '1/3'],
      'sample-batch': ['1', '2'],
      preset: ['quick', 'quality'],
      recipe: recipes.files(),
    },
  };
  const pinned = [argvOf([...base, ['shard', '1/2'], ['sample-batch', '1']]), argvOf([...base, ['shard', '0/3'], ['sample-batch', '1']]), argvOf([...base, ['recipe', recipes.files()[0]!]])].map(
    (argv) => [argv] as [ReadonlyArray<string>],
  );
  await fc.assert(fc.asyncProperty(mutatedArgv(base, o), runMnistCase), runs(20, { examples: pinned }));
});

// -------------------------------------------------------------------------------------
// experiments:mnist-eval
// -------------------------------------------------------------------------------------

test('experiments:mnist-eval: any mutation of a tiny command line exits 0, 1 or 2 with a message naming the problem', async () => {
  const argv = tinyArgs(fixture.checkpoint(), { skip: 'samplers,bpd,conditional,inpainting,interpolation', backend: 'wasm', out: 'eval' });
  const base: Line = [];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!.slice(2);
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      (base as Array<readonly [string, string | undefined]>).push([flag, next]);
      i++;
    } else (base as Array<readonly [string, string | undefined]>).push([flag, undefined]);
  }
  const cost = new Set(
    ['samples', 'sample-batch', 'classifier-epochs', 'noisy-classifier-epochs', 'train-subset', 'test-subset', 'steps', 'fast-steps', 'ode-tols', 'bpd-images', 'bpd-batch', 'bpd-eps', 'ode-tol', 'per-class', 'inpaint-digits', 'completions', 'frames', 'classifier-channels', 'feature-dim', 'skip', 'classifier-batch'],
  );
  const o = {
    flags: kebab(mnistEvalFlags),
    cost,
    alternatives: { skip: ['samplers,bpd,conditional,inpainting', 'samplers,conditional,inpainting,interpolation'], checkpoint: [path.join(fixture.dir(), 'nowhere'), fixture.dir()], shard: ['0/2', '1/2'] },
  };
  await fc.assert(
    fc.asyncProperty(mutatedArgv(base, o), async (args) => (await checkCase('mnist-eval', mnistEvalMain, args), true)),
    runs(20),
  );
});

// -------------------------------------------------------------------------------------
// experiments:toy
// -------------------------------------------------------------------------------------

test('experiments:toy: any mutation of a command line exits 0, 1 or 2 with a message naming the problem', async () => {
  const dir = sandbox('toy-spec');
  const spec = path.join(dir, 'spec.json');
  fs.writeFileSync(spec, JSON.stringify(SMALL_TOY));
  const base = lineOf({ spec, out: 'report.json', 'samples-out': 'samples.json', backend: 'wasm' });
  const o = { flags: ['spec', 'out', 'samples-out', 'backend'], cost: new Set<string>(), alternatives: { spec: [dir, path.join(dir, 'missing.json')], backend: ['cpu', 'tensorflow'] } };
  try {
    await fc.assert(
      fc.asyncProperty(mutatedArgv(base, o), async (args) => (await checkCase('toy', (a) => toyMain(a), args), true)),
      runs(40),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// -------------------------------------------------------------------------------------
// experiments:merge, experiments:torch-export, experiments:torch-import
// -------------------------------------------------------------------------------------

/** Two shard folders of a tiny --sample-only run (em, 2 steps, 2 samples in chunks of 1) and the fixture as safetensors. */
const others = ((): { readonly shards: () => ReadonlyArray<string>; readonly weights: () => string } => {
  let shards: ReadonlyArray<string> = [];
  let weights = '';
  beforeAll(async () => {
    const backend = await initBackend({ prefer: 'wasm', quiet: true });
    const dir = fixture.dir();
    shards = ['shard-0', 'shard-1'].map((s) => path.join(dir, s));
    for (const [i, out] of shards.entries()) {
      const f = cli.parseFlags(mnistFlags, ['--sample-only', fixture.checkpoint(), '--samplers', 'em', '--steps', '2', '--num-samples', '2', '--sample-batch', '1', '--shard', `${i}/2`, '--quiet']);
      if (E.isLeft(f)) throw new Error('flags');
      const r = await runMnistShard(f.right, { backend, log: () => undefined }, out);
      if (E.isLeft(r)) throw new Error(r.left.message);
    }
    weights = path.join(dir, 'tiny.safetensors');
    const w = await exportCheckpoint(fixture.checkpoint(), weights, 'ema');
    if (E.isLeft(w)) throw new Error(w.left.message);
  });
  return { shards: () => shards, weights: () => weights };
})();

test('experiments:merge: any mutation of a command line exits 0, 1 or 2 with a message naming the problem', async () => {
  const [a, b] = others.shards();
  const base = lineOf({ shards: `${a},${b}`, out: 'merged', backend: 'wasm', quiet: true });
  const o = {
    flags: kebab(mergeFlags),
    cost: new Set<string>(),
    alternatives: { shards: [`${b},${a}`, a!, `${a},${a}`, `${a},${path.join(fixture.dir(), 'nowhere')}`, fixture.dir()], checkpoint: [fixture.checkpoint(), path.join(fixture.dir(), 'nowhere')] },
  };
  await fc.assert(
    fc.asyncProperty(mutatedArgv(base, o), async (args) => {
      const r = await checkCase('merge', mergeMain, args);
      if (r.code === 0 && !r.stdout.startsWith('Usage:')) expect(r.stderr).toMatch(/^merged 2 shards: /m);
      return true;
    }),
    runs(15, { examples: [[argvOf(base)]] }),
  );
});

test('experiments:torch-export: any mutation of a command line exits 0, 1 or 2 with a message naming the problem', async () => {
  const base = lineOf({ checkpoint: fixture.checkpoint(), out: 'net.safetensors' });
  const o = { flags: kebab(torchExportFlags), cost: new Set<string>(), alternatives: { checkpoint: [fixture.dir(), path.join(fixture.dir(), 'nowhere')], weights: ['ema', 'params', 'both'] } };
  await fc.assert(
    fc.asyncProperty(mutatedArgv(base, o), async (args) => (await checkCase('torch-export', torchExportMain, args), true)),
    runs(15, { examples: [[argvOf(base)]] }),
  );
});

test('experiments:torch-import: any mutation of a command line exits 0, 1 or 2 with a message naming the problem', async () => {
  const base = lineOf({ weights: others.weights(), out: 'imported' });
  const o = {
    flags: kebab(torchImportFlags),
    cost: new Set<string>(),
    alternatives: { weights: [fixture.checkpoint(), path.join(fixture.dir(), 'nowhere.safetensors')], sde: ['tutorial', 've', 'vp', 'subvp', 've-edm'] },
  };
  await fc.assert(
    fc.asyncProperty(mutatedArgv(base, o), async (args) => (await checkCase('torch-import', torchImportMain, args), true)),
    runs(15, { examples: [[argvOf(base)]] }),
  );
});

// -------------------------------------------------------------------------------------
// real processes
// -------------------------------------------------------------------------------------

describe('as real processes: the exit code and the message, never a stack trace', () => {
  test.each([
    ['mnist', ['--epochs', 'ten'], {}, 2, /^error: --epochs: expected PositiveInt, got "ten"$/m],
    ['mnist', ['--subset', '8'], { SCORE_SDE_FAULT_NAN_STEP: 'soon' }, 2, /^error: SCORE_SDE_FAULT_NAN_STEP: expected a step number ≥ 1, got "soon"$/m],
    ['mnist', ['--backend', 'tensorflow', '--out', path.join(os.tmpdir(), 'score-sde-never-created')], {}, 1, /^mnist: --backend tensorflow: /m],
    ['mnist-eval', ['--samples', '4'], {}, 2, /^error: --checkpoint: required/m],
    ['toy', ['--spec', '/nonexistent/spec.json', '--out', 'r.json'], {}, 2, /^error: --spec: cannot read \/nonexistent\/spec\.json: ENOENT/m],
    ['mnist', ['--recipe', '/nonexistent/recipe.json'], {}, 2, /^error: --recipe: cannot read \/nonexistent\/recipe\.json: ENOENT/m],
    ['mnist', ['--shard', '0/2'], {}, 2, /^error: --shard: shards sample a trained model: give --sample-only/m],
    ['merge', ['--out', path.join(os.tmpdir(), 'score-sde-never-merged')], {}, 2, /^error: --shards: required/m],
    ['torch-export', ['--checkpoint', '/nonexistent/ckpt', '--out', path.join(os.tmpdir(), 'score-sde-never.safetensors')], {}, 1, /^torch-export: --checkpoint: checkpoint \/nonexistent\/ckpt: no such directory/m],
    ['torch-import', ['--weights', '/nonexistent/w.safetensors', '--out', path.join(os.tmpdir(), 'score-sde-never-imported')], {}, 1, /^torch-import: --weights: ENOENT/m],
  ] as const)('%s %j (environment %j) → exit %i', async (name, args, env, code, message) => {
    const e = await runCommand(name, args, env);
    expect([e.code, e.stderr]).toEqual([code, expect.stringMatching(message)]);
    expect(e.stderr).not.toMatch(STACK_LINE);
    expect(e.stderr).not.toMatch(/internal error/);
  });
});
