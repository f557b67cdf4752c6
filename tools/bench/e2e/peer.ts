/**
 * The plumbing of the PyTorch peer, shared by the end-to-end benchmark (`index.ts`) and its profile (`profile.ts
 * --peer`): finding a python with torch, the peer's inputs (the recipe as JSON, the project's example indices, the
 * IDX file), and running a side as a child process whose last stdout line is its JSON.
 *
 * @module bench/e2e/peer
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { random } from '@score-sde/tensor-fp';
import { batchIndices, mnistFiles, parameterCount, runKeys } from '@score-sde/models';
import { defaultRecipe } from './recipe';
import { torchEnv } from './torch-env';

/** What both sides print (PyTorch adds its configuration; the project its memory phases). */
/** Self milliseconds per training step and per score evaluation by op category, and the wall medians (`e2e_torch.py --profile-ops`). */
export interface OpProfile {
  readonly train: Readonly<Record<string, number>>;
  readonly trainWallMs: number;
  readonly score: Readonly<Record<string, number>>;
  readonly scoreWallMs: number;
}

export interface Measurement {
  readonly framework: 'tfjs' | 'pytorch';
  readonly backend?: string;
  readonly version?: string;
  readonly threads?: number;
  readonly parallelInfo?: string;
  readonly config?: string;
  readonly env?: Readonly<Record<string, string | null>>;
  readonly trainStepMs: ReadonlyArray<number>;
  readonly trainCpuMs: ReadonlyArray<number>;
  readonly sampleSeconds: number;
  readonly sampleNfe: number;
  readonly sampleEvalMs: number;
  readonly peakRssMb: number;
  readonly phases?: ReadonlyArray<{ readonly phase: string; readonly rssMb: number; readonly peakRssMb: number; readonly heapMb: number | null }>;
  readonly params: number;
  readonly losses: ReadonlyArray<number>;
  readonly ops?: OpProfile;
}

const PYTHON = '/usr/bin/python3';
export const ROOT = path.join(__dirname, '..', '..', '..');

export const runJson = (what: string, cmd: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Measurement => {
  const r = spawnSync(cmd, [...args], { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || line === '') throw new Error(`${what} failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(line) as Measurement;
};

/** A python with torch, or why there is none: /usr/bin/python3 (Debian's python3-torch), else `python3` on PATH. */
export const findTorch = (): { readonly python: string } | { readonly missing: string } => {
  for (const python of [PYTHON, 'python3']) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', env: torchEnv() });
    if (r.status === 0) return { python };
  }
  return { missing: 'no python with torch (apt-get install python3-torch libopenblas0-openmp; the peer uses /usr/bin/python3)' };
};

export interface Files {
  readonly recipe: string;
  readonly order: string;
  readonly images: string;
  readonly params: number;
  readonly defaultSteps: number;
  /** Whether the default recipe's label table was left out (the PyTorch peer has none). */
  readonly labelsDropped: boolean;
}

/**
 * The recipe as JSON and the example indices of steps 0 … total − 1 (the project's batches for the run's seed:
 * `batchIndices` of the data key, epoch after epoch) as int32, for the PyTorch peer.
 */
export const writeInputs = async (total: number, dir: string): Promise<Files> => {
  const { flags, train, steps, labelsDropped } = await defaultRecipe();
  const count = Math.min(flags.subset, 60000);
  const dataKey = runKeys(random.key(flags.seed)).data;
  const order = new Int32Array(total * train.batchSize);
  let filled = 0;
  for (let s = 0; s < total; s++) {
    const idx = batchIndices(dataKey, count, train.batchSize, s);
    if (idx.length !== train.batchSize) throw new Error(`step ${s} has a short batch (${idx.length}); use fewer --steps`);
    order.set(idx, filled);
    filled += idx.length;
  }
  fs.mkdirSync(dir, { recursive: true });
  const recipe = path.join(dir, 'recipe.json');
  fs.writeFileSync(recipe, JSON.stringify(train, null, 2));
  const orderFile = path.join(dir, 'order.i32');
  fs.writeFileSync(orderFile, Buffer.from(order.buffer));
  return {
    recipe,
    order: orderFile,
    images: mnistFiles().train.images,
    params: parameterCount(train.model),
    defaultSteps: steps,
    labelsDropped,
  };
};

