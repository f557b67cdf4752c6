/**
 * Drawing the MNIST digits of `experiments:mnist` with each named sampler, in this process or over worker threads
 * (`--workers`), and writing them as `samples-<sampler>.png` (8 columns) and `samples-<sampler>.idx` (uint8 IDX).
 *
 * @module mnist/sample
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import type { BackendInfo, Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { type SamplerSpec, stepCount } from '@score-sde/solvers';
import { writeIdxImages, renderIdxError, unitToPixels } from '@score-sde/models';
import { memory, png, progress, report } from '../lib';
import {
  type Drawn,
  type ExperimentError,
  type SamplerName,
  type SamplerSettings,
  IMAGE_SHAPE,
  fail,
  interrupted,
  namedSampler,
  namedSamplerSpec,
  couplingOf,
  drawWithBar,
  drawInWorkers,
  renderWorkerError,
  scoreOfNamed,
  networksAt,
  autoguidanceWeightOf,
} from '../pipeline';

/** The files of one sampler's samples. @category files */
export const sampleFiles = (name: SamplerName): { readonly png: string; readonly idx: string } => ({ png: `samples-${name}.png`, idx: `samples-${name}.idx` });

/**
 * Writes samples [n, 28, 28, 1] (values in [0, 1]) as `samples-<name>.png` (8 columns, scale 2) and
 * `samples-<name>.idx` (uint8 pixels round(255 x)) into `out`. The same values give the same bytes.
 * @category files
 */
export const writeSamples = async (out: string, name: SamplerName, samples: Float32Array, count: number): Promise<E.Either<ExperimentError, { readonly png: string; readonly idx: string }>> => {
  const files = sampleFiles(name);
  const grid = png.imageGrid(samples, 8, { scale: 2, height: IMAGE_SHAPE[0], width: IMAGE_SHAPE[1] });
  if (E.isLeft(grid)) return fail(`writing samples of ${name}: ${grid.left.message}`);
  const a = await png.writePng(path.join(out, files.png), grid.right)();
  if (E.isLeft(a)) return fail(`writing samples of ${name}: ${report.renderIoError(a.left)}`);
  const b = await writeIdxImages(path.join(out, files.idx), { count, rows: IMAGE_SHAPE[0], cols: IMAGE_SHAPE[1], pixels: unitToPixels(samples) })();
  if (E.isLeft(b)) return fail(`writing samples of ${name}: ${renderIdxError(b.left)}`);
  return E.right(files);
};

/** Where a sampler draws: the score model in this process, and what `--workers` needs to start workers. @category model */
export interface DrawSource {
  readonly sde: SDE;
  readonly score: ScoreFn;
  /** The model's data range: drawn values map to images in [0, 1] through it. */
  readonly dataRange: readonly [number, number];
  /** The checkpoint holding the state that `score` is of (workers load it); undefined: draw in this process only. */
  readonly checkpoint: string | undefined;
  readonly workers: number;
  readonly backend: BackendInfo;
  readonly quiet: boolean;
  readonly log: (line: string) => void;
  /** Aborting it stops the draw at the next step (a Left with `interrupted`). */
  readonly signal?: AbortSignal;
  /** The weaker model of the autoguided samplers (Left: why there is none; used only by them). */
  readonly guide?: E.Either<string, ScoreFn>;
  /** The conditional score of a class-conditional model, for the classifier-free guided samplers (pipeline's `conditionalScoreOfState`). */
  readonly conditional?: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
  /** The guide's conditional score, for a labelled autoguided sampler. */
  readonly guideConditional?: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
  /** The directory the guide was loaded from: workers load it there for an autoguided sampler. */
  readonly guideDir?: string;
}

/**
 * Draws one sample per key with the named sampler, as images in [0, 1] (from the model's data range): over `workers` worker threads when more than
 * one is asked for, a checkpoint is at hand and the sampler is batch-separable (the same samples, bit for bit);
 * otherwise in this process, in chunks of `batch` (saying why, when workers were asked for).
 * @category sampling
 */
export const drawNamed = async (
  name: SamplerName,
  settings: SamplerSettings,
  keys: ReadonlyArray<Key>,
  batch: number,
  src: DrawSource,
): Promise<E.Either<ExperimentError, Drawn & { readonly spec: SamplerSpec }>> => {
  const spec = namedSamplerSpec(src.sde, name, settings);
  const sampler = namedSampler(src.sde, name, settings);
  if (E.isLeft(sampler)) return fail(`--samplers ${name}: ${sampler.left.problems.join('; ')}`);
  const score = scoreOfNamed(name, { sde: src.sde, score: src.score, guide: src.guide ?? E.left('no guide was loaded'), conditional: src.conditional ?? E.left('no conditional score was given'),
    guideConditional: src.guideConditional ?? E.left('no guide was loaded'),
  }, settings.guidance);
  if (E.isLeft(score)) return fail(`--samplers ${name}: ${score.left}`);
  const label = `sampling ${name}`;
  // Workers build the named sampler's score as this process does (guided ones too: they load the guide beside the checkpoint).
  const autoguided = autoguidanceWeightOf(name) !== undefined;
  const coupled =
    src.workers > 1 ? (autoguided && src.guideDir === undefined ? 'autoguided, and no guide directory is known for the workers to load' : couplingOf(src.sde, spec)) : undefined;
  if (coupled !== undefined) src.log(`${name}: sampled in this process, not in ${src.workers} workers: ${coupled}`);
  if (src.workers > 1 && coupled === undefined && src.checkpoint !== undefined && keys.length > 0) {
    const bar = progress.withProgress(`${label} (${src.workers} workers)`, stepCount(sampler.right), { quiet: src.quiet });
    // The bar shows the slowest worker.
    const done = new Map<number, number>();
    let shown = 0;
    const r = await drawInWorkers({
      checkpoint: src.checkpoint,
      sde: src.sde,
      spec,
      keys,
      sampleShape: IMAGE_SHAPE,
      dataRange: src.dataRange,
      workers: src.workers,
      named: { name, ...(autoguided && src.guideDir !== undefined ? { guide: src.guideDir } : {}), ...(settings.guidance !== undefined ? { guidance: settings.guidance } : {}) },
      backend: src.backend.name,
      ...(src.signal !== undefined ? { signal: src.signal } : {}),
      wasmThreads: Math.max(1, Math.floor((src.backend.threads ?? 1) / src.workers)),
      onProgress: (p) => {
        done.set(p.shard, p.done);
        const slowest = done.size < Math.min(src.workers, keys.length) ? 0 : Math.min(...done.values());
        if (slowest > shown) bar.tick(slowest - shown, { nfe: p.nfe });
        shown = Math.max(shown, slowest);
      },
    })();
    bar.stop();
    if (E.isLeft(r)) return (r.left._tag === 'Cancelled' ? interrupted : fail)(`${label}: ${renderWorkerError(r.left)}`);
    const { samples, shape, nfe, nfeTotal, seconds } = r.right;
    return E.right({ samples, shape, nfe, nfeTotal, seconds, memory: memory.readMemory(), spec });
  }
  const drawn = await drawWithBar(
    keys,
    (start, size) => ({ sampler: sampler.right, score: score.right(keys.slice(start, start + size)), networks: networksAt(src.sde, name) }),
    { batch, sampleShape: IMAGE_SHAPE, dataRange: src.dataRange, quiet: src.quiet, faultPoint: `sample:${name}`, ...(src.signal !== undefined ? { signal: src.signal } : {}) },
    label,
  );
  return E.map((d: Drawn) => ({ ...d, spec }))(drawn);
};
