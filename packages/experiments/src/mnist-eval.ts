/**
 * `npx nx run experiments:mnist-eval -- --checkpoint <dir> [--samples <n>] [--out <dir>] [flags]`: evaluate a
 * trained MNIST score model — FID with a self-trained classifier, bits/dim, the sampler comparison,
 * class-conditional guidance, inpainting and latent interpolation (`--help` explains each figure).
 *
 * @module mnist-eval
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { report, command, lock } from './lib';
import { mnistEvalFlags, evaluationOptionsOf, checkpointTraits, USAGE, DESCRIPTION } from './eval/flags';
import { runEvaluation } from './eval/run';
import { runEvaluationShard } from './eval/shard';

/**
 * The command: flags, locks (the --out folder, and the folder of --checkpoint when it is another one), the
 * evaluation or one shard of its draws. Returns the exit code (lib/command: 0 done, 1 failed, 2 bad flags or
 * environment).
 * @category command line
 */
export const mnistEvalMain = async (argv: ReadonlyArray<string>): Promise<number> => {
  const parsed = command.parseCommandFlags(mnistEvalFlags, argv, { usage: USAGE, description: DESCRIPTION });
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const backend = await command.prepare('mnist-eval', { prefer: flags.backend, quiet: flags.quiet });
  if (E.isLeft(backend)) return backend.left;
  const out = path.resolve(flags.out ?? path.join('packages', 'experiments', 'out', 'mnist-eval', report.runId()));
  return command.withLocks('mnist-eval', [
    ['--out', () => lock.claimRunFolder(out, 'experiments:mnist-eval')],
    ['--checkpoint: the folder of', () => lock.lockSourceFolder(flags.checkpoint, 'experiments:mnist-eval')],
  ], async () => {
    process.stderr.write(`[score-sde] output: ${out}\n`);
    const options = evaluationOptionsOf(flags, await checkpointTraits(flags.checkpoint));
    if (flags.shard !== undefined) {
      const shard = await runEvaluationShard(options, flags.shard, { backend: backend.right }, out);
      if (E.isLeft(shard)) {
        process.stderr.write(`mnist-eval: ${shard.left.message}\n`);
        return command.EXIT.failed;
      }
      process.stderr.write(`shard ${flags.shard.index}/${flags.shard.count} written: ${out} (merge the shards with nx run experiments:merge)\n`);
      return command.EXIT.ok;
    }
    const r = await runEvaluation(options, { backend: backend.right }, out);
    if (E.isLeft(r)) {
      process.stderr.write(`mnist-eval: ${r.left.message}\n`);
      return command.EXIT.failed;
    }
    process.stderr.write(`done in ${report.formatNumber(r.right.seconds)} s: ${path.join(out, 'eval.md')}\n`);
    return command.EXIT.ok;
  });
};

if (require.main === module) command.runMain('mnist-eval', mnistEvalMain);
