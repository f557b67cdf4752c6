/**
 * The shard folder of `experiments:mnist --sample-only <checkpoint> --shard i/n`: every sampler's samples of the
 * shard's key range (pipeline/shards), with a manifest that says which checkpoint (by the sha256 of its weights), which
 * flags, which range, and what the unsharded run's report needs (the training config, the loss history).
 *
 * @module mnist/shard
 */
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import { SamplerSpec } from '@score-sde/solvers';
import { TrainConfig, CheckpointManifest, renderStoreError, tensorFiles } from '@score-sde/models';
import { type Drawn, type ExperimentError, type ItemRange, type SamplerName as SamplerNameT, type ShardSpec, DrawnSet, Recipe, ItemRangeC, SamplerName, encodeDrawn, fail, shardManifestFields, writeShardFolder } from '../pipeline';
import type { RunFacts } from './run';

/** The manifest of a shard folder of `experiments:mnist`. @category model */
export const MnistShardManifest = codec.strict(
  {
    ...shardManifestFields('mnist'),
    numSamples: codec.PositiveInt,
    sampleBatch: codec.PositiveInt,
    range: ItemRangeC,
    facts: codec.strict(
      {
        flags: t.UnknownRecord,
        seed: codec.SafeInt,
        epochs: codec.PositiveInt,
        recipe: Recipe,
        config: TrainConfig,
        losses: t.array(codec.Finite),
        trainSteps: codec.NonNegativeInt,
      },
      'ShardFacts',
    ),
    samplers: t.array(codec.strict({ name: SamplerName, spec: SamplerSpec, set: DrawnSet }, 'ShardSampler')),
  },
  'MnistShardManifest',
);
export type MnistShardManifest = t.TypeOf<typeof MnistShardManifest>;

/** What a shard folder is written from. @category model */
export interface MnistShardContent {
  readonly shard: ShardSpec;
  readonly checkpoint: string;
  readonly sampleBatch: number;
  readonly range: ItemRange;
  readonly facts: RunFacts;
  readonly backend: string;
  readonly draws: ReadonlyArray<{ readonly name: SamplerNameT; readonly spec: SamplerSpec; readonly drawn: Drawn }>;
}

/** The sha256 of a checkpoint's params.bin, from its manifest. @category model */
export const checkpointDigest = async (dir: string): Promise<E.Either<ExperimentError, string>> => {
  const m = await tensorFiles.readManifest(dir, CheckpointManifest);
  return E.isLeft(m) ? fail(`--sample-only: ${renderStoreError({ ...m.left, kind: 'checkpoint' })}`) : E.right(m.right.files['params.bin'].sha256);
};

/** Writes the shard folder `out`: one samples-<sampler>.f32 per sampler, then manifest.json. @category writing */
export const writeMnistShard = async (out: string, c: MnistShardContent): Promise<E.Either<ExperimentError, MnistShardManifest>> => {
  const digest = await checkpointDigest(c.checkpoint);
  if (E.isLeft(digest)) return digest;
  const sets = c.draws.map((d) => ({ d, ...encodeDrawn(`samples-${d.name}.f32`, c.range, d.drawn) }));
  const { flags, recipe, seed, epochs, config, losses, trainSteps } = c.facts;
  const manifest: MnistShardManifest = {
    format: 'score-sde-ts/shard',
    version: 1,
    command: 'mnist',
    shard: c.shard,
    checkpoint: { dir: path.resolve(c.checkpoint), sha256: digest.right },
    numSamples: c.facts.numSamples,
    sampleBatch: c.sampleBatch,
    range: c.range,
    backend: c.backend,
    facts: { flags: JSON.parse(JSON.stringify({ ...flags, shard: undefined })) as Record<string, unknown>, recipe, seed, epochs, config, losses: [...losses], trainSteps },
    samplers: sets.map((s) => ({ name: s.d.name, spec: s.d.spec, set: s.set })),
  };
  const w = await writeShardFolder(out, sets.map((s) => [s.set.file, s.bytes] as const), manifest);
  return E.map(() => manifest)(w);
};
