/**
 * `npx nx run experiments:torch-export -- --checkpoint <dir> --out <file.safetensors>`: a checkpoint's weights as a
 * safetensors file of Yang Song's tutorial ScoreNet (PyTorch names and layouts, mapping version in the metadata).
 *
 * @module torch-export
 */
import * as E from 'fp-ts/Either';
import { cli, command, lock } from './lib';
import { WEIGHTS } from './pipeline';
import { exportCheckpoint } from './run-torch';

const USAGE = 'npx nx run experiments:torch-export -- --checkpoint <dir> --out <file.safetensors> [--weights ema|params]';
const DESCRIPTION = [
  "Writes a checkpoint's ScoreNet as a safetensors file that the PyTorch tutorial ScoreNet loads with",
  'load_state_dict(strict=True) (tools/torch/scorenet_twin.py builds it: `score --weights <file>`). The mapping of',
  'names and layouts (linear weights transposed, conv kernels OIHW, transposed-conv kernels [in, out, kh, kw]) is',
  'documented in packages/models/src/torch-twin.ts and versioned in the file; the metadata records the network',
  'config, the SDE and the parameterisation (the tutorial network outputs the score: net(x, t)/s(t)).',
].join('\n');

export const torchExportFlags = {
  checkpoint: cli.stringFlag({ description: 'checkpoint directory (from nx run experiments:mnist)' }),
  out: cli.stringFlag({ description: 'the safetensors file to write' }),
  weights: cli.oneOfFlag(WEIGHTS, { default: 'ema', description: 'which weights: the EMA weights (what the samplers here use) or the raw ones' }),
} as const;

/**
 * The command: flags, a lock of the checkpoint's folder (no run replaces it meanwhile), the export. Returns the exit
 * code (lib/command: 0 done, 1 failed, 2 bad flags or environment).
 * @category command line
 */
export const torchExportMain = async (argv: ReadonlyArray<string>): Promise<number> => {
  const parsed = command.parseCommandFlags(torchExportFlags, argv, { usage: USAGE, description: DESCRIPTION });
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const backend = await command.prepare('torch-export', { prefer: 'cpu', quiet: true });
  if (E.isLeft(backend)) return backend.left;
  return command.withLocks('torch-export', [['--checkpoint: the folder of', () => lock.lockSourceFolder(flags.checkpoint, 'experiments:torch-export')]], async () => {
    const r = await exportCheckpoint(flags.checkpoint, flags.out, flags.weights);
    if (E.isLeft(r)) {
      process.stderr.write(`torch-export: ${r.left.message}\n`);
      return command.EXIT.failed;
    }
    process.stderr.write(`wrote ${flags.out} (${r.right.bytes} bytes)\n`);
    return command.EXIT.ok;
  });
};

if (require.main === module) command.runMain('torch-export', torchExportMain);
