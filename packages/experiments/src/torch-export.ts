/**
 * `npx nx run experiments:torch-export -- --checkpoint <dir> --out <file.safetensors>`: a checkpoint's weights as a
 * safetensors file of Yang Song's tutorial ScoreNet (PyTorch names and layouts, mapping version in the metadata).
 *
 * @module torch-export
 */
import * as E from 'fp-ts/Either';
import { initBackend } from '@score-sde/tensor-fp';
import { cli, command } from './lib';
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

const main = async (): Promise<number> => {
  const flags = cli.parseFlagsOrExit(torchExportFlags, process.argv.slice(2), USAGE, DESCRIPTION);
  await initBackend({ prefer: 'cpu', quiet: true });
  const r = await exportCheckpoint(flags.checkpoint, flags.out, flags.weights);
  if (E.isLeft(r)) {
    process.stderr.write(`torch-export: ${r.left.message}\n`);
    return 1;
  }
  process.stderr.write(`wrote ${flags.out} (${r.right.bytes} bytes)\n`);
  return 0;
};

command.runMain('torch-export', main);
