/**
 * Work past one machine: `--shard i/n` makes a sampling or evaluation command compute only shard i of n of every key
 * range it draws, and write what it drew into a shard directory; `experiments:merge` assembles the n shard
 * directories into the files one unsharded run writes.
 *
 * A shard of n items drawn in chunks of `batch` is a run of whole chunks ({@link chunkAlignedRange}): the chunks of the
 * whole run, split among the shards in order. Every chunk is drawn exactly as in the unsharded run (the same keys,
 * the same batch), so the concatenated shards are the unsharded samples bit for bit, even for a sampler whose step
 * couples its batch; and the NFE adds up exactly (Σ nfe · chunk size is an integer).
 *
 * A shard directory holds `manifest.json` (which shard of what, the options, where each part's items are) and one
 * float32 file per drawn set (tensor-files: length, sha256 and shape in the manifest, checked on reading), written
 * atomically. This module has the vocabulary every command's shards share; `mnist/shard` and `eval/shard` hold
 * their manifests.
 *
 * @module pipeline/shards
 */
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import { tensorFiles } from '@score-sde/models';
import { memory, report } from '../lib';
import { type Drawn, type ItemRange, chunkAlignedRange } from './draw';
import { type ExperimentError, fail } from './messages';

// -------------------------------------------------------------------------------------
// the shard of a run
// -------------------------------------------------------------------------------------

/** Which shard of how many: index i ∈ [0, count). @category model */
export const ShardSpec = new t.Type<{ readonly index: number; readonly count: number }, { readonly index: number; readonly count: number }, unknown>(
  'ShardSpec',
  (u): u is { readonly index: number; readonly count: number } =>
    typeof u === 'object' && u !== null && Number.isSafeInteger((u as { index?: unknown }).index) && Number.isSafeInteger((u as { count?: unknown }).count),
  (u, c) => {
    const base = codec.strict({ index: codec.NonNegativeInt, count: codec.PositiveInt }, 'ShardSpec').validate(u, c);
    if (E.isLeft(base)) return base;
    return base.right.index < base.right.count ? t.success(base.right) : t.failure(u, c, `index ${base.right.index} is not below count ${base.right.count}`);
  },
  t.identity,
);
export type ShardSpec = t.TypeOf<typeof ShardSpec>;

/**
 * `--shard i/n` as a flag value: "3/8" is shard 3 of 8 (0-based, as Slurm's `$SLURM_ARRAY_TASK_ID` and Kubernetes'
 * `$JOB_COMPLETION_INDEX` count).
 * @category model
 */
export const ShardFlag = new t.Type<ShardSpec, string, unknown>(
  'i/n',
  ShardSpec.is,
  (u, c) => {
    const m = typeof u === 'string' ? /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(u) : null;
    if (m === null) return t.failure(u, c);
    const spec = { index: Number(m[1]), count: Number(m[2]) };
    return spec.count >= 1 && spec.index < spec.count ? t.success(spec) : t.failure(u, c);
  },
  (s) => `${s.index}/${s.count}`,
);

/** The whole run as a shard: shard 0 of 1. @category model */
export const WHOLE: ShardSpec = { index: 0, count: 1 };

/** The items of a part (n items in chunks of `batch`) that a shard draws. @category model */
export const shardRange = (n: number, batch: number, shard: ShardSpec): ItemRange => chunkAlignedRange(n, batch, shard.index, shard.count);

/** An item range as JSON. @category model */
export const ItemRangeC = codec.strict({ start: codec.NonNegativeInt, end: codec.NonNegativeInt }, 'ItemRange');

// -------------------------------------------------------------------------------------
// drawn sets on disk
// -------------------------------------------------------------------------------------

/**
 * A drawn set of a shard: its items' range, its file (float32 [m, ...sampleShape] with its entry) and its work
 * (Σ nfe · chunk size, seconds).
 * @category sets
 */
export const DrawnSet = codec.strict(
  { range: ItemRangeC, file: t.string, entry: tensorFiles.FileEntry, nfeTotal: codec.NonNegativeInt, seconds: codec.NonNegativeFinite },
  'DrawnSet',
);
export type DrawnSet = t.TypeOf<typeof DrawnSet>;

/** The file bytes and manifest record of drawn samples of `range`, stored as `file`. @category sets */
export const encodeDrawn = (file: string, range: ItemRange, d: Drawn): { readonly bytes: Buffer; readonly set: DrawnSet } => {
  const bytes = tensorFiles.float32Bytes([d.samples]);
  return {
    bytes,
    set: { range, file, entry: { bytes: bytes.byteLength, sha256: tensorFiles.sha256Hex(bytes), tensors: [{ name: 'samples', shape: [...d.shape] }] }, nfeTotal: d.nfeTotal, seconds: d.seconds },
  };
};

/** Reads a drawn set back (length and sha256 checked) as a {@link Drawn} of its range. @category sets */
export const readDrawn = async (dir: string, set: DrawnSet): Promise<E.Either<ExperimentError, Drawn & { readonly range: ItemRange }>> => {
  const r = await tensorFiles.readVerifiedFile(dir, set.file, set.entry);
  if (E.isLeft(r)) {
    const p = r.left;
    return fail(`shard ${dir}: ${set.file} ${p._tag === 'Missing' ? 'is missing' : p._tag === 'IO' ? `: ${p.message}` : p._tag === 'Size' ? `is ${p.actual} bytes, manifest says ${p.expected}` : `has sha256 ${p.actual}, manifest says ${p.expected} (the file is corrupt)`}`);
  }
  const n = set.range.end - set.range.start;
  return E.right({ samples: r.right, shape: set.entry.tensors[0]?.shape ?? [n], nfe: n === 0 ? 0 : set.nfeTotal / n, nfeTotal: set.nfeTotal, seconds: set.seconds, memory: memory.readMemory(), range: set.range });
};

/**
 * The draws of a part's shards joined in item order into the draw of all its n items: Left unless their ranges
 * tile [0, n) exactly. nfe = Σ nfeTotal / n, seconds = Σ seconds (the sum of the shards' work).
 * @category sets
 */
export const joinDrawn = (what: string, n: number, parts: ReadonlyArray<Drawn & { readonly range: ItemRange }>): E.Either<ExperimentError, Drawn> => {
  const sorted = [...parts].sort((a, b) => a.range.start - b.range.start);
  let at = 0;
  for (const p of sorted) {
    if (p.range.start !== at) return fail(`${what}: the shards leave items ${at}…${p.range.start - 1} out or overlap at ${p.range.start}`);
    at = p.range.end;
  }
  if (at !== n) return fail(`${what}: the shards cover items 0…${at - 1} of ${n}`);
  const per = n === 0 ? 0 : sorted.reduce((a, p) => a + p.samples.length, 0) / n;
  const samples = new Float32Array(n * per);
  for (const p of sorted) samples.set(p.samples, p.range.start * per);
  const nfeTotal = sorted.reduce((a, p) => a + p.nfeTotal, 0);
  const shape = sorted.find((p) => p.range.end > p.range.start)?.shape ?? [0];
  return E.right({ samples, shape: [n, ...shape.slice(1)], nfe: n === 0 ? 0 : nfeTotal / n, nfeTotal, seconds: sorted.reduce((a, p) => a + p.seconds, 0), memory: memory.readMemory() });
};

/**
 * Checks that shards are shard 0 … n − 1 of the same n, each once; Left naming what is missing or repeated.
 * @category sets
 */
export const checkShardSet = (shards: ReadonlyArray<{ readonly dir: string; readonly shard: ShardSpec }>): E.Either<ExperimentError, number> => {
  if (shards.length === 0) return fail('--shards: give the shard directories to merge');
  const count = shards[0]!.shard.count;
  const other = shards.find((s) => s.shard.count !== count);
  if (other !== undefined) return fail(`--shards: ${shards[0]!.dir} is a shard of ${count}, ${other.dir} of ${other.shard.count}`);
  const seen = new Map<number, string>();
  for (const s of shards) {
    const before = seen.get(s.shard.index);
    if (before !== undefined) return fail(`--shards: ${before} and ${s.dir} are both shard ${s.shard.index}/${count}`);
    seen.set(s.shard.index, s.dir);
  }
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  return missing.length > 0 ? fail(`--shards: shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} missing`) : E.right(count);
};

// -------------------------------------------------------------------------------------
// shard folders
// -------------------------------------------------------------------------------------

/**
 * Writes a shard folder: the data files first (each atomically), then `manifest.json` (atomically), so a folder
 * with a manifest is complete (and every file is checked against it on reading). Other contents of the folder (a
 * classifier trained there) are left alone.
 * @category folders
 */
export const writeShardFolder = async (out: string, files: ReadonlyArray<readonly [string, Uint8Array]>, manifest: unknown): Promise<E.Either<ExperimentError, void>> => {
  const mk = await report.ensureDir(out)();
  if (E.isLeft(mk)) return fail(`--out: ${report.renderIoError(mk.left)}`);
  for (const [name, bytes] of files) {
    const w = await report.atomicWriteFile(path.join(out, name), bytes)();
    if (E.isLeft(w)) return fail(`--out: ${report.renderIoError(w.left)}`);
  }
  const m = await report.atomicWriteFile(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)();
  return E.isLeft(m) ? fail(`--out: ${report.renderIoError(m.left)}`) : E.right(undefined);
};

/**
 * The fields every shard manifest starts with: the format and version, the command, which shard, the checkpoint
 * sampled (its folder and the sha256 of its params.bin: the shards of one merge must agree), and the backend.
 * @category folders
 */
export const shardManifestFields = <C extends string>(command: C) => ({
  format: t.literal('score-sde-ts/shard'),
  version: t.literal(1),
  command: t.literal(command),
  shard: ShardSpec,
  checkpoint: codec.strict({ dir: t.string, sha256: tensorFiles.Sha256Hex }, 'ShardCheckpoint'),
  backend: t.string,
});

/**
 * The command a shard folder belongs to, read from its manifest before the rest (a peek: the other keys are left to
 * the command's own strict manifest codec, which decodes the file next).
 * @category folders
 */
export const ShardHeader = t.type({ format: t.literal('score-sde-ts/shard'), version: t.literal(1), command: t.keyof({ mnist: null, 'mnist-eval': null }) }, 'ShardHeader');
