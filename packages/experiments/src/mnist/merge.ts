/**
 * Merging the shard folders of `experiments:mnist --shard i/n` into the files of one unsharded run: for every sampler
 * the shards' samples are joined in key order and written by the same writer (`samples-<sampler>.png`,
 * `samples-<sampler>.idx`, bit for bit those of the unsharded run), then `loss.png` and the report (whose times are
 * the sum of the shards').
 *
 * @module mnist/merge
 */
import * as E from 'fp-ts/Either';
import { type ExperimentError, fail, checkShardSet, joinDrawn, readDrawn } from '../pipeline';
import type { MnistShardManifest } from './shard';
import { type MnistReport, type SamplerRecord, writeRunReport, writeSamplerOutput } from './run';

/** What must be the same in every shard of one run (as JSON). */
const sameRun = (m: MnistShardManifest): string =>
  JSON.stringify({ checkpoint: m.checkpoint.sha256, numSamples: m.numSamples, sampleBatch: m.sampleBatch, samplers: m.samplers.map((s) => [s.name, s.spec]), config: m.facts.config, seed: m.facts.seed });

/**
 * Merges the shards (each a folder and its decoded manifest) into `out`. Left when they are not shards 0 … n − 1 of
 * one run (another checkpoint, other flags, a missing or repeated shard, a gap in the samples) or a file is corrupt.
 * @category merging
 */
export const mergeMnistShards = async (
  shards: ReadonlyArray<{ readonly dir: string; readonly manifest: MnistShardManifest }>,
  out: string,
  log: (line: string) => void,
): Promise<E.Either<ExperimentError, MnistReport>> => {
  const set = checkShardSet(shards.map((s) => ({ dir: s.dir, shard: s.manifest.shard })));
  if (E.isLeft(set)) return set;
  const first = shards[0]!;
  const other = shards.find((s) => sameRun(s.manifest) !== sameRun(first.manifest));
  if (other !== undefined) return fail(`--shards: ${first.dir} and ${other.dir} are shards of different runs (checkpoint, samplers, sample counts, config or seed differ)`);
  const m = first.manifest;
  const records: SamplerRecord[] = [];
  for (const [k, sampler] of m.samplers.entries()) {
    const parts = [];
    for (const s of shards) {
      const part = await readDrawn(s.dir, s.manifest.samplers[k]!.set);
      if (E.isLeft(part)) return part;
      parts.push(part.right);
    }
    const joined = joinDrawn(`samples of ${sampler.name}`, m.numSamples, parts);
    if (E.isLeft(joined)) return joined;
    const rec = await writeSamplerOutput(out, sampler.name, sampler.spec, joined.right, log);
    if (E.isLeft(rec)) return rec;
    records.push(rec.right);
  }
  const f = m.facts;
  const backends = [...new Set(shards.map((s) => s.manifest.backend))].join('; ');
  return writeRunReport(
    out,
    { flags: f.flags, recipe: f.recipe, seed: f.seed, epochs: f.epochs, numSamples: m.numSamples, config: f.config, losses: f.losses, trainSteps: f.trainSteps, trainSeconds: 0, interrupted: false, epochMemory: [] },
    records,
    backends,
  );
};
