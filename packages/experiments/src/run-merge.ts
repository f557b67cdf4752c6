/**
 * Merging shard folders, whichever command wrote them: reads each folder's manifest header, checks they are all of
 * one command, decodes their manifests and hands them to `mergeMnistShards` (experiments:mnist) or
 * `mergeEvaluationShards` (experiments:mnist-eval). The command `experiments:merge` parses its flags and calls
 * {@link mergeShardFolders}; the tests call it in process.
 *
 * @module run-merge
 */
import type * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import type { BackendInfo } from '@score-sde/tensor-fp';
import { tensorFiles } from '@score-sde/models';
import { report } from './lib';
import { type ExperimentError, ShardHeader, fail } from './pipeline';
import { MnistShardManifest } from './mnist/shard';
import { mergeMnistShards } from './mnist/merge';
import type { MnistReport } from './mnist/run';
import { EvalShardManifest, mergeEvaluationShards } from './eval/shard';
import type { EvalReport } from './eval/report';

/** Reads a shard folder's manifest with `codec`; a Left names the folder and what is wrong. @category merging */
const readShard = async <A>(dir: string, manifest: t.Type<A, unknown, unknown>): Promise<E.Either<ExperimentError, { readonly dir: string; readonly manifest: A }>> => {
  const m = await tensorFiles.readManifest(dir, manifest);
  if (E.isRight(m)) return E.right({ dir, manifest: m.right });
  const p = m.left;
  return fail(
    `--shards: ${dir}: ${p._tag === 'BadManifest' ? `invalid manifest.json:\n  ${p.problems.join('\n  ')}` : p._tag === 'MissingFile' ? 'no manifest.json (not a shard folder, or its shard did not finish)' : p.message}`,
  );
};

const readAll = async <A>(dirs: ReadonlyArray<string>, manifest: t.Type<A, unknown, unknown>): Promise<E.Either<ExperimentError, ReadonlyArray<{ readonly dir: string; readonly manifest: A }>>> => {
  const out: Array<{ readonly dir: string; readonly manifest: A }> = [];
  for (const dir of dirs) {
    const s = await readShard(dir, manifest);
    if (E.isLeft(s)) return s;
    out.push(s.right);
  }
  return E.right(out);
};

/**
 * Merges the shard folders `dirs` into `out` (see the module comment). For an evaluation, `checkpoint` replaces the
 * checkpoint path the shards recorded (its weights must be the same).
 * @category merging
 */
export const mergeShardFolders = async (
  dirs: ReadonlyArray<string>,
  out: string,
  ctx: { readonly backend: BackendInfo; readonly log: (line: string) => void; readonly checkpoint?: string },
): Promise<E.Either<ExperimentError, MnistReport | EvalReport>> => {
  const headers = await readAll(dirs, ShardHeader);
  if (E.isLeft(headers)) return headers;
  const command = headers.right[0]?.manifest.command;
  if (command === undefined) return fail('--shards: give the shard folders to merge');
  const other = headers.right.find((h) => h.manifest.command !== command);
  if (other !== undefined) return fail(`--shards: ${headers.right[0]!.dir} is a shard of experiments:${command}, ${other.dir} of experiments:${other.manifest.command}`);
  const mk = await report.ensureDir(out)();
  if (E.isLeft(mk)) return fail(`--out: ${report.renderIoError(mk.left)}`);
  if (command === 'mnist') {
    const shards = await readAll(dirs, MnistShardManifest);
    return E.isLeft(shards) ? shards : mergeMnistShards(shards.right, out, ctx.log);
  }
  const shards = await readAll(dirs, EvalShardManifest);
  return E.isLeft(shards) ? shards : mergeEvaluationShards(shards.right, { backend: ctx.backend, log: ctx.log }, out, ctx.checkpoint);
};
