/**
 * `npx nx run experiments:torch-import -- --weights <file.safetensors> --out <checkpoint-dir>`: a PyTorch-trained
 * tutorial ScoreNet (a safetensors file of its state_dict) as a checkpoint every command here reads.
 *
 * @module torch-import
 */
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import { cli, command, lock } from './lib';
import { importWeights } from './run-torch';
import { SDE_NAMES, sdeOfName } from './pipeline';

const USAGE = 'npx nx run experiments:torch-import -- --weights <file.safetensors> --out <checkpoint-dir> [--sde tutorial|ve|vp|subvp|ve-edm]';
const DESCRIPTION = [
  "Reads a safetensors file of the tutorial ScoreNet's state_dict (PyTorch names and layouts; an export of",
  'experiments:torch-export, or torch.save of your own training converted with safetensors) and writes it as a',
  'checkpoint: sample it with experiments:mnist --sample-only, evaluate it with experiments:mnist-eval, or --resume',
  "training. Without metadata the file's shapes give the widths, and --sde says the SDE it was trained under.",
].join('\n');

export const torchImportFlags = {
  weights: cli.stringFlag({ description: 'the safetensors file to read' }),
  out: cli.stringFlag({ description: 'the checkpoint directory to write' }),
  sde: cli.optional(cli.oneOfFlag(SDE_NAMES, { description: 'the SDE the network was trained under, when the file does not say (paper defaults)' })),
  seed: cli.numberFlag(codec.SafeInt, { default: 0, description: "the checkpoint's run key (for training it further)" }),
} as const;

/**
 * The command: flags, a lock of the folder the checkpoint is written into (no run writes it meanwhile), the import.
 * Returns the exit code (lib/command: 0 done, 1 failed, 2 bad flags or environment).
 * @category command line
 */
export const torchImportMain = async (argv: ReadonlyArray<string>): Promise<number> => {
  const parsed = command.parseCommandFlags(torchImportFlags, argv, { usage: USAGE, description: DESCRIPTION });
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const backend = await command.prepare('torch-import', { prefer: 'cpu', quiet: true });
  if (E.isLeft(backend)) return backend.left;
  return command.withLocks('torch-import', [['--out: the folder of', () => lock.lockSourceFolder(flags.out, 'experiments:torch-import')]], async () => {
    const r = await importWeights(flags.weights, flags.out, { seed: flags.seed, ...(flags.sde !== undefined ? { sde: sdeOfName(flags.sde) } : {}) });
    if (E.isLeft(r)) {
      process.stderr.write(`torch-import: ${r.left.message}\n`);
      return command.EXIT.failed;
    }
    process.stderr.write(`wrote checkpoint ${flags.out} (${r.right.parameters.toLocaleString('en')} values)\n`);
    return command.EXIT.ok;
  });
};

if (require.main === module) command.runMain('torch-import', torchImportMain);
