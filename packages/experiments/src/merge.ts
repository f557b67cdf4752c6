/**
 * `npx nx run experiments:merge -- --shards <dir>,<dir>,... --out <dir>`: assembles the shard folders of
 * `experiments:mnist --shard i/n` or `experiments:mnist-eval --shard i/n` (all n of them, any order) into the files
 * one unsharded run writes.
 *
 * @module merge
 */
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { BACKEND_CHOICES } from '@score-sde/tensor-fp';
import { cli, command, lock } from './lib';
import { mergeShardFolders } from './run-merge';

const USAGE = 'npx nx run experiments:merge -- --shards <dir>,<dir>,... --out <dir> [--checkpoint <dir>]';
const DESCRIPTION = [
  'Merges the shard folders written by experiments:mnist --sample-only <checkpoint> --shard i/n (samples) or by',
  "experiments:mnist-eval --shard i/n (the evaluation's draws), shards 0 … n−1 of one run, into --out: the files one",
  'unsharded run writes. The samples (samples-<sampler>.png and .idx, every evaluation figure) are bit for bit those of',
  "the unsharded run; in report.json / eval.json the seconds are the sum of the shards'. For an evaluation the merge",
  'scores the joined draws (FID, classes; it obtains the clean classifier as mnist-eval does) and runs the latent',
  'interpolation, which has nothing to split.',
].join('\n');

/** A folder name as a list item (the list parser reads a numeric-looking item as a number). */
const Folder = new t.Type<string, string, unknown>(
  'folder',
  (u): u is string => typeof u === 'string',
  (u, c) => (typeof u === 'string' || typeof u === 'number' ? t.success(String(u)) : t.failure(u, c)),
  t.identity,
);

/** The flags of the merge. @category flags */
export const mergeFlags = {
  shards: cli.listFlag(Folder, { description: 'the shard folders, comma-separated (all n shards of one run, any order)' }),
  out: cli.stringFlag({ description: 'output folder' }),
  checkpoint: cli.optional(cli.stringFlag({ description: 'for an evaluation: the checkpoint, if it is not where the shards found it (its weights must be the same)' })),
  backend: cli.oneOfFlag(BACKEND_CHOICES, { default: 'auto', description: 'TensorFlow.js backend (overrides SCORE_SDE_BACKEND)' }),
  quiet: cli.booleanFlag({ description: 'no progress output', default: false }),
} as const;

/**
 * The command: flags, locks (--out, every shard folder and a --checkpoint's folder, so that no run writes them
 * meanwhile), the merge. Returns the exit code (lib/command: 0 done, 1 failed, 2 bad flags or environment).
 * @category command line
 */
export const mergeMain = async (argv: ReadonlyArray<string>): Promise<number> => {
  const parsed = command.parseCommandFlags(mergeFlags, argv, { usage: USAGE, description: DESCRIPTION });
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const backend = await command.prepare('merge', { prefer: flags.backend, quiet: flags.quiet });
  if (E.isLeft(backend)) return backend.left;
  const out = path.resolve(flags.out);
  const shards = flags.shards.map((d) => path.resolve(d));
  return command.withLocks('merge', [
    ['--out', () => lock.claimRunFolder(out, 'experiments:merge')],
    ...shards.map((d) => ['--shards: the shard folder', () => lock.lockExistingFolder(d, 'experiments:merge')] as const),
    ...(flags.checkpoint === undefined ? [] : [['--checkpoint: the folder of', () => lock.lockSourceFolder(flags.checkpoint!, 'experiments:merge')] as const]),
  ], async () => {
    const r = await mergeShardFolders(shards, out, {
      backend: backend.right,
      log: (l) => void process.stderr.write(`${l}\n`),
      ...(flags.checkpoint !== undefined ? { checkpoint: flags.checkpoint } : {}),
    });
    if (E.isLeft(r)) {
      process.stderr.write(`merge: ${r.left.message}\n`);
      return command.EXIT.failed;
    }
    process.stderr.write(`merged ${flags.shards.length} shards: ${out}\n`);
    return command.EXIT.ok;
  });
};

if (require.main === module) command.runMain('merge', mergeMain);
