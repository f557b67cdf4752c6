/**
 * `npx nx run experiments:mnist-eval -- --checkpoint <dir> [--samples <n>] [--out <dir>] [flags]`: evaluate a
 * trained MNIST score model — FID with a self-trained classifier, bits/dim, the sampler comparison,
 * class-conditional guidance, inpainting and latent interpolation (`--help` explains each figure).
 *
 * @module mnist-eval
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { report } from './lib';
import * as command from './lib/command';
import * as lock from './lib/lock';
import { mnistEvalFlags, USAGE, DESCRIPTION } from './eval/flags';
import { runMnistEval } from './eval/run';

/**
 * The command: flags, locks (the --out folder, and the folder of --checkpoint when it is another one), the
 * evaluation. Returns the exit code (lib/command: 0 done, 1 failed, 2 bad flags).
 * @category command line
 */
export const mnistEvalMain = async (argv: ReadonlyArray<string>): Promise<number> => {
  const parsed = command.parseCommandFlags(mnistEvalFlags, argv, { usage: USAGE, description: DESCRIPTION });
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const env = command.checkEnvironment();
  if (E.isLeft(env)) {
    process.stderr.write(`error: ${env.left}\n`);
    return command.EXIT.usage;
  }
  const backend = await command.chooseBackend({ prefer: flags.backend, quiet: flags.quiet });
  if (E.isLeft(backend)) {
    process.stderr.write(`mnist-eval: --backend ${flags.backend}: ${backend.left}\n`);
    return command.EXIT.failed;
  }
  const out = path.resolve(flags.out ?? path.join('packages', 'experiments', 'out', 'mnist-eval', report.runId()));
  const folder = lock.claimRunFolder(out, 'experiments:mnist-eval');
  if (E.isLeft(folder)) {
    process.stderr.write(`mnist-eval: ${lock.renderLockError(folder.left, '--out')}\n`);
    return command.EXIT.failed;
  }
  const sourceLock = lock.lockSourceFolder(flags.checkpoint, 'experiments:mnist-eval');
  if (E.isLeft(sourceLock)) {
    folder.right.release();
    process.stderr.write(`mnist-eval: ${lock.renderLockError(sourceLock.left, '--checkpoint: the folder of')}\n`);
    return command.EXIT.failed;
  }
  try {
    process.stderr.write(`[score-sde] output: ${out}\n`);
    const r = await runMnistEval(flags, { backend: backend.right }, out);
    if (E.isLeft(r)) {
      process.stderr.write(`mnist-eval: ${r.left.message}\n`);
      return command.EXIT.failed;
    }
    process.stderr.write(`done in ${report.formatNumber(r.right.seconds)} s: ${path.join(out, 'eval.md')}\n`);
    return command.EXIT.ok;
  } finally {
    sourceLock.right?.release();
    folder.right.release();
  }
};

if (require.main === module) command.runCommand('mnist-eval', mnistEvalMain);
