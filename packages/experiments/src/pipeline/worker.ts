/**
 * The worker of {@link drawInWorkers} (started as a `worker_threads` Worker through tsx): decodes its job,
 * initialises its backend, loads the checkpoint (and a named guided sampler's guide), builds the sampler from its JSON
 * spec and the score the job names, and runs the one draw
 * routine (`pipeline/draw`) on its keys, posting its progress and then the drawn batch with its work. Every
 * failure is posted as a `failed` message with a readable reason; nothing is thrown across the boundary.
 *
 * @module pipeline/worker
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as E from 'fp-ts/Either';
import { codec, initBackend, describeBackend } from '@score-sde/tensor-fp';
import { samplerFromSpec } from '@score-sde/solvers';
import { renderCheckpointError } from '@score-sde/models';
import { ShardJob, type ShardMessage } from './workers';
import { type ScoreModel, loadScoreModel, loadGuide, disposeScoreModel, conditionalScoreOfState } from './model';
import { scoreOfNamed, networksAt } from './samplers';
import { draw } from './draw';

const post = (m: ShardMessage, transfer: ReadonlyArray<ArrayBuffer> = []): void => parentPort?.postMessage(m, [...transfer]);
const failed = (message: string): void => post({ kind: 'failed', message });

const main = async (): Promise<void> => {
  const decoded = codec.decodeWith(ShardJob, 'shard job')(workerData);
  if (E.isLeft(decoded)) return failed(codec.renderDecodeError(decoded.left));
  const job = decoded.right;

  let backend: string;
  try {
    backend = describeBackend(await initBackend({ prefer: job.backend, quiet: true }));
  } catch (e) {
    return failed(`backend ${job.backend}: ${(e as Error).message}`);
  }

  const model = await loadScoreModel(job.checkpoint, job.weights);
  if (E.isLeft(model)) return failed(renderCheckpointError(model.left));
  let guide: ScoreModel | undefined;
  try {
    const sampler = samplerFromSpec(model.right.config.sde, job.spec);
    if (E.isLeft(sampler)) return failed(codec.renderDecodeError(sampler.left));
    const { config, state } = model.right;
    const named = job.named;
    if (named?.guide !== undefined) {
      const g = await loadGuide(config, named.guide);
      if (E.isLeft(g)) return failed(g.left);
      guide = g.right;
    }
    // The named sampler's score as this process builds it (labelled, guided or neither), else the model's own.
    const noGuide = E.left('no guide was given to this worker');
    const namedScore =
      named === undefined
        ? E.right(() => model.right.score)
        : scoreOfNamed(named.name, {
            sde: config.sde,
            score: model.right.score,
            guide: guide !== undefined ? E.right(guide.score) : noGuide,
            conditional: conditionalScoreOfState(config, state, job.weights),
            guideConditional: guide !== undefined ? conditionalScoreOfState(guide.config, guide.state) : noGuide,
          }, named.guidance);
    if (E.isLeft(namedScore)) return failed(namedScore.left);
    const score = namedScore.right(job.keys);
    const networks = named !== undefined ? networksAt(config.sde, named.name) : undefined;
    const drawn = await draw(
      job.keys,
      () => ({ sampler: sampler.right, score, ...(networks !== undefined ? { networks } : {}) }),
      {
        batch: job.keys.length,
        sampleShape: job.sampleShape,
        ...(job.dataRange !== undefined ? { dataRange: job.dataRange } : {}),
        onProgress: (p) => post({ kind: 'progress', ...p }),
      },
      `worker ${job.shard}`,
    );
    if (E.isLeft(drawn)) return failed(drawn.left.message);
    const { samples, shape, nfe, nfeTotal, seconds } = drawn.right;
    post({ kind: 'done', samples, shape: [...shape], nfe, nfeTotal, seconds, backend }, [samples.buffer as ArrayBuffer]);
  } catch (e) {
    failed(`sampling: ${(e as Error).message}`);
  } finally {
    if (guide !== undefined) disposeScoreModel(guide);
    disposeScoreModel(model.right);
  }
};

main().catch((e: unknown) => failed(`worker: ${(e as Error).stack ?? String(e)}`));
