/**
 * The evaluation past one machine. `experiments:mnist-eval --shard i/n` draws shard i of n of every sampling part
 * (the sampler comparison, bits/dim, class-conditional samples, inpainting: whole chunks of each part's items,
 * pipeline/shards) and writes what it drew into a shard folder; `experiments:merge` joins the n folders' draws and runs
 * the scoring of the evaluation on them (FID, classes, figures; latent interpolation, which has nothing to split,
 * runs there), writing the files of one unsharded run.
 *
 * The class-conditional samples need the noise-conditional classifier while drawing: every shard obtains it as the
 * unsharded run does (reused from `--noisy-classifier`, or trained, deterministically, into `<out>/noisy-classifier`);
 * the merge refuses shards guided by different classifiers (by the sha256 of their weights). Training it once and
 * passing `--noisy-classifier` to every shard saves the shards that time.
 *
 * @module eval/shard
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec, describeBackend } from '@score-sde/tensor-fp';
import { renderCheckpointError, tensorFiles, CheckpointManifest, renderStoreError, dataRangeOf } from '@score-sde/models';
import {
  type Drawn,
  type ExperimentError,
  type ItemRange,
  type ShardSpec,
  DrawnSet,
  ItemRangeC,
  checkShardSet,
  disposeScoreModel,
  encodeDrawn,
  fail,
  joinDrawn,
  loadScoreModel,
  guideFor,
  logOf,
  readDrawn,
  shardManifestFields,
  shardRange,
  writeShardFolder,
  conditionalScoreOfState,
  labelledScoreOfState,
} from '../pipeline';
import type { EvalContext } from './common';
import { EvaluationOptions, optionProblems } from './options';
import { type EvalReport, ClassifierRecord as ClassifierRecordC } from './report';
import { type DrawSetting, type PartDraws, clampedSetting, labelledOf, drawBpdPart, drawConditionalPart, drawInpaintingPart, drawSamplersPart, loadSplits, obtainEvalClassifier, classifierRecord, partSizes, runEvaluation } from './run';
import { type BpdPart, bpdCount } from './bpd';
import { type EntryDraw, comparisonEntries } from './compare';
import { disposeClassifier } from './classifiers';

const nullable = <C extends t.Mixed>(c: C) => t.union([c, t.null]);

// -------------------------------------------------------------------------------------
// manifest
// -------------------------------------------------------------------------------------

/** One comparison entry's draw in a shard: its samples, or the error of its solve. @category model */
export const EntryShard = codec.strict({ id: t.string, set: nullable(DrawnSet), error: nullable(t.string) }, 'EntryShard');

/** The manifest of a shard folder of `experiments:mnist-eval`. @category model */
export const EvalShardManifest = codec.strict(
  {
    ...shardManifestFields('mnist-eval'),
    options: EvaluationOptions,
    samplers: nullable(codec.strict({ range: ItemRangeC, entries: t.array(EntryShard) }, 'SamplersShard')),
    bpd: nullable(
      codec.strict(
        { range: ItemRangeC, perImage: t.array(codec.Finite), nfeSum: codec.NonNegativeInt, solves: codec.NonNegativeInt, seconds: codec.NonNegativeFinite },
        'BpdShard',
      ),
    ),
    conditional: nullable(codec.strict({ guide: ClassifierRecordC, numClasses: codec.PositiveInt, sets: t.array(DrawnSet) }, 'ConditionalShard')),
    inpainting: nullable(DrawnSet),
  },
  'EvalShardManifest',
);
export type EvalShardManifest = t.TypeOf<typeof EvalShardManifest>;

// -------------------------------------------------------------------------------------
// drawing a shard
// -------------------------------------------------------------------------------------

/**
 * Draws shard `shard` of every sampling part of the options' parts and writes the shard folder `out` (data files,
 * then manifest.json). Returns the manifest.
 * @category shards
 */
export const runEvaluationShard = async (o: EvaluationOptions, shard: ShardSpec, ctx: EvalContext, out: string): Promise<E.Either<ExperimentError, EvalShardManifest>> => {
  const log = logOf(ctx);
  const problems = optionProblems(o);
  if (problems.length > 0) return fail(problems.join('\n'));
  const runs = (p: string): boolean => (o.parts as ReadonlyArray<string>).includes(p);
  const digest = await tensorFiles.readManifest(o.checkpoint, CheckpointManifest);
  if (E.isLeft(digest)) return fail(`--checkpoint: ${renderStoreError({ ...digest.left, kind: 'checkpoint' })}`);
  const model = await loadScoreModel(o.checkpoint);
  if (E.isLeft(model)) return fail(`--checkpoint: ${renderCheckpointError(model.left)}`);
  const weaker = await guideFor(runs('samplers') ? o.samplers.samplers : [], model.right.config, o.checkpoint);
  const files: Array<readonly [string, Uint8Array]> = [];
  const stored = (name: string, range: ItemRange, d: Drawn): t.TypeOf<typeof DrawnSet> => {
    const e = encodeDrawn(name, range, d);
    files.push([e.set.file, e.bytes]);
    return e.set;
  };
  try {
    const data = await loadSplits(o, ctx);
    if (E.isLeft(data)) return data;
    const { train, test } = data.right;
    const s: DrawSetting = clampedSetting({ o, sde: model.right.config.sde, score: model.right.score, dataRange: dataRangeOf(model.right.config), test, log, guide: weaker.guide, guideConditional: weaker.guideConditional, conditional: conditionalScoreOfState(model.right.config, model.right.state), ...labelledOf(labelledScoreOfState(model.right.config, model.right.state)) });
    const sizes = partSizes(o, test);
    const at = `shard ${shard.index}/${shard.count}`;

    let samplers: EvalShardManifest['samplers'] = null;
    if (runs('samplers')) {
      const r = shardRange(sizes.samplers.n, sizes.samplers.batch, shard);
      log(`${at}: sampler comparison, samples ${r.start}…${r.end - 1} of ${sizes.samplers.n}`);
      const drawn = await drawSamplersPart(s, r);
      if (E.isLeft(drawn)) return drawn;
      const entries = comparisonEntries(s.sde, o.samplers);
      if (E.isLeft(entries)) return entries;
      samplers = {
        range: r,
        entries: entries.right.map((entry, k) => {
          const d = drawn.right[k]!;
          return E.isLeft(d) ? { id: entry.id, set: null, error: d.left } : { id: entry.id, set: stored(`samplers-${entry.id}.f32`, r, d.right), error: null };
        }),
      };
    }

    let bpd: EvalShardManifest['bpd'] = null;
    if (runs('bpd')) {
      const r = shardRange(sizes.bpd.n, sizes.bpd.batch, shard);
      log(`${at}: bits/dim of test images ${r.start}…${r.end - 1} of ${sizes.bpd.n}`);
      const b = await drawBpdPart(s, r);
      if (E.isLeft(b)) return b;
      bpd = { range: r, perImage: [...b.right.perImage], nfeSum: b.right.nfeSum, solves: b.right.solves, seconds: b.right.seconds };
    }

    let conditional: EvalShardManifest['conditional'] = null;
    if (runs('conditional')) {
      const guide = await obtainEvalClassifier('noisy', o, { sde: s.sde, dataRange: s.dataRange, train, test, out, log });
      if (E.isLeft(guide)) return guide;
      try {
        const g = guide.right;
        const r = shardRange(g.config.numClasses * o.conditional.perClass, o.conditional.batch, shard);
        log(`${at}: class-conditional samples ${r.start}…${r.end - 1}`);
        const drawn = await drawConditionalPart(s, g, r);
        if (E.isLeft(drawn)) return drawn;
        conditional = { guide: classifierRecord(g), numClasses: g.config.numClasses, sets: drawn.right.map((d, k) => stored(`conditional-${o.conditional.samplers[k]}.f32`, r, d)) };
      } finally {
        disposeClassifier(guide.right);
      }
    }

    let inpainting: EvalShardManifest['inpainting'] = null;
    if (runs('inpainting')) {
      const r = shardRange(sizes.inpainting.n, sizes.inpainting.batch, shard);
      log(`${at}: inpainting completions ${r.start}…${r.end - 1} of ${sizes.inpainting.n}`);
      const d = await drawInpaintingPart(s, r);
      if (E.isLeft(d)) return d;
      inpainting = stored('inpainting.f32', r, d.right);
    }

    const manifest: EvalShardManifest = {
      format: 'score-sde-ts/shard',
      version: 1,
      command: 'mnist-eval',
      shard,
      checkpoint: { dir: o.checkpoint, sha256: digest.right.files['params.bin'].sha256 },
      backend: describeBackend(ctx.backend),
      options: o,
      samplers,
      bpd,
      conditional,
      inpainting,
    };
    const w = await writeShardFolder(out, files, manifest);
    return E.map(() => manifest)(w);
  } finally {
    weaker.release();
    disposeScoreModel(model.right);
  }
};

// -------------------------------------------------------------------------------------
// merging shards
// -------------------------------------------------------------------------------------

/** Reads and joins one drawn set of every shard (in item order) into the draw of all `n` items. */
const joinSets = async (what: string, n: number, sets: ReadonlyArray<{ readonly dir: string; readonly set: t.TypeOf<typeof DrawnSet> }>): Promise<E.Either<ExperimentError, Drawn>> => {
  const parts = [];
  for (const { dir, set } of sets) {
    const p = await readDrawn(dir, set);
    if (E.isLeft(p)) return p;
    parts.push(p.right);
  }
  return joinDrawn(what, n, parts);
};

/** A part's section of every shard, or a Left naming the first shard without it. */
const sectionsOf = <K extends 'samplers' | 'bpd' | 'conditional' | 'inpainting'>(
  shards: ReadonlyArray<{ readonly dir: string; readonly manifest: EvalShardManifest }>,
  part: K,
): E.Either<ExperimentError, ReadonlyArray<{ readonly dir: string; readonly section: NonNullable<EvalShardManifest[K]> }>> => {
  const missing = shards.find((s) => s.manifest[part] === null);
  if (missing !== undefined) return fail(`--shards: ${missing.dir} has no ${part} part`);
  return E.right(shards.map((s) => ({ dir: s.dir, section: s.manifest[part] as NonNullable<EvalShardManifest[K]> })));
};

/** The part draws of a set of shards (checked to be one run's). @category shards */
export const drawsFromShards = (shards: ReadonlyArray<{ readonly dir: string; readonly manifest: EvalShardManifest }>): PartDraws => ({
  samplers: async (s) => {
    const secs = sectionsOf(shards, 'samplers');
    if (E.isLeft(secs)) return secs;
    const count = secs.right[0]!.section.entries.length;
    const out: EntryDraw[] = [];
    for (let k = 0; k < count; k++) {
      const failed = secs.right.map((x) => x.section.entries[k]?.error).find((e) => e !== null && e !== undefined);
      if (failed !== undefined) {
        out.push(E.left(failed));
        continue;
      }
      const joined = await joinSets(`samples of ${secs.right[0]!.section.entries[k]!.id}`, s.o.samplers.samples, secs.right.map((x) => ({ dir: x.dir, set: x.section.entries[k]!.set! })));
      if (E.isLeft(joined)) return joined;
      out.push(E.right(joined.right));
    }
    return E.right(out);
  },
  bpd: async (s) => {
    const secs = sectionsOf(shards, 'bpd');
    if (E.isLeft(secs)) return secs;
    const sorted = [...secs.right].sort((a, b) => a.section.range.start - b.section.range.start);
    const end = sorted.reduce((at, x) => (x.section.range.start === at ? x.section.range.end : NaN), 0);
    if (end !== bpdCount(s.test, s.o.bpd)) return fail('--shards: the shards\' bits/dim ranges do not tile the test images measured');
    const parts: BpdPart[] = sorted.map((x) => x.section);
    return E.right(parts);
  },
  conditional: async (s) => {
    const secs = sectionsOf(shards, 'conditional');
    if (E.isLeft(secs)) return secs;
    const first = secs.right[0]!.section;
    const other = secs.right.find((x) => x.section.guide.sha256 !== first.guide.sha256);
    if (other !== undefined) return fail(`--shards: ${secs.right[0]!.dir} and ${other.dir} were guided by different noise-conditional classifiers (${first.guide.name}, ${other.section.guide.name})`);
    const draws: Drawn[] = [];
    for (const [k, name] of s.o.conditional.samplers.entries()) {
      const joined = await joinSets(`class-conditional samples of ${name}`, first.numClasses * s.o.conditional.perClass, secs.right.map((x) => ({ dir: x.dir, set: x.section.sets[k]! })));
      if (E.isLeft(joined)) return joined;
      draws.push(joined.right);
    }
    return E.right({ guide: first.guide, numClasses: first.numClasses, draws });
  },
  inpainting: async (s) => {
    const secs = sectionsOf(shards, 'inpainting');
    if (E.isLeft(secs)) return secs;
    return joinSets('inpainting completions', partSizes(s.o, s.test).inpainting.n, secs.right.map((x) => ({ dir: x.dir, set: x.section })));
  },
});

/**
 * Merges the shard folders of one evaluation into `out`: checks they are shards 0 … n − 1 of one run (the same
 * options and checkpoint weights), then runs the evaluation with the shards' draws in place of drawing (the
 * checkpoint at `checkpoint` when given, else where the shards found it). Left naming what does not fit.
 * @category shards
 */
export const mergeEvaluationShards = async (
  shards: ReadonlyArray<{ readonly dir: string; readonly manifest: EvalShardManifest }>,
  ctx: EvalContext,
  out: string,
  checkpoint?: string,
): Promise<E.Either<ExperimentError, EvalReport>> => {
  const set = checkShardSet(shards.map((s) => ({ dir: s.dir, shard: s.manifest.shard })));
  if (E.isLeft(set)) return set;
  const first = shards[0]!;
  const key = (m: EvalShardManifest): string => JSON.stringify({ options: m.options, checkpoint: m.checkpoint.sha256 });
  const other = shards.find((s) => key(s.manifest) !== key(first.manifest));
  if (other !== undefined) return fail(`--shards: ${first.dir} and ${other.dir} are shards of different evaluations (options or checkpoint weights differ)`);
  const o = { ...first.manifest.options, ...(checkpoint !== undefined ? { checkpoint } : {}) };
  const weights = await tensorFiles.readManifest(o.checkpoint, CheckpointManifest);
  if (E.isLeft(weights)) return fail(`--checkpoint: ${renderStoreError({ ...weights.left, kind: 'checkpoint' })}`);
  if (weights.right.files['params.bin'].sha256 !== first.manifest.checkpoint.sha256) return fail(`--checkpoint: ${o.checkpoint} is not the checkpoint the shards sampled (the sha256 of its weights differs)`);
  return runEvaluation(o, ctx, out, drawsFromShards(shards));
};
