/**
 * `npx nx run experiments:mnist-eval -- --checkpoint <dir> [--samples <n>] [--out <dir>] [flags]`: evaluate a
 * trained MNIST score model — FID with a self-trained classifier, bits/dim, the sampler comparison,
 * class-conditional guidance, inpainting and latent interpolation (`--help` explains each figure).
 *
 * @module mnist-eval
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { initBackend } from '@score-sde/tensor-fp';
import { cli, report, command } from './lib';
import { mnistEvalFlags, evaluationOptionsOf, USAGE, DESCRIPTION } from './eval/flags';
import { runEvaluation } from './eval/run';
import { runEvaluationShard } from './eval/shard';

const main = async (): Promise<number> => {
  const flags = cli.parseFlagsOrExit(mnistEvalFlags, process.argv.slice(2), USAGE, DESCRIPTION);
  const backend = await initBackend({ prefer: flags.backend, quiet: flags.quiet });
  const out = path.resolve(flags.out ?? path.join('packages', 'experiments', 'out', 'mnist-eval', report.runId()));
  process.stderr.write(`[score-sde] output: ${out}\n`);
  if (flags.shard !== undefined) {
    const shard = await runEvaluationShard(evaluationOptionsOf(flags), flags.shard, { backend }, out);
    if (E.isLeft(shard)) {
      process.stderr.write(`mnist-eval: ${shard.left.message}\n`);
      return 1;
    }
    process.stderr.write(`shard ${flags.shard.index}/${flags.shard.count} written: ${out} (merge the shards with nx run experiments:merge)\n`);
    return 0;
  }
  const r = await runEvaluation(evaluationOptionsOf(flags), { backend }, out);
  if (E.isLeft(r)) {
    process.stderr.write(`mnist-eval: ${r.left.message}\n`);
    return 1;
  }
  process.stderr.write(`done in ${report.formatNumber(r.right.seconds)} s: ${path.join(out, 'eval.md')}\n`);
  return 0;
};

command.runMain('mnist-eval', main);
