/**
 * `npx nx run experiments:torch-import -- --weights <file.safetensors> --out <checkpoint-dir>`: a PyTorch-trained
 * tutorial ScoreNet (a safetensors file of its state_dict) as a checkpoint every command here reads.
 *
 * @module torch-import
 */
import * as E from 'fp-ts/Either';
import { codec, initBackend } from '@score-sde/tensor-fp';
import { cli, command } from './lib';
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

const main = async (): Promise<number> => {
  const flags = cli.parseFlagsOrExit(torchImportFlags, process.argv.slice(2), USAGE, DESCRIPTION);
  await initBackend({ prefer: 'cpu', quiet: true });
  const r = await importWeights(flags.weights, flags.out, { seed: flags.seed, ...(flags.sde !== undefined ? { sde: sdeOfName(flags.sde) } : {}) });
  if (E.isLeft(r)) {
    process.stderr.write(`torch-import: ${r.left.message}\n`);
    return 1;
  }
  process.stderr.write(`wrote checkpoint ${flags.out} (${r.right.parameters.toLocaleString('en')} values)\n`);
  return 0;
};

command.runMain('torch-import', main);
