/**
 * The worker of {@link drawInWorkers} (started as a `worker_threads` Worker through tsx): decodes its job,
 * initialises its backend, loads the checkpoint, builds the sampler from its JSON spec, and runs the one draw
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
import { loadScoreModel, disposeScoreModel, conditionalScoreOfState } from './model';
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
  try {
    const sampler = samplerFromSpec(model.right.config.sde, job.spec);
    if (E.isLeft(sampler)) return failed(codec.renderDecodeError(sampler.left));
    const conditional = conditionalScoreOfState(model.right.config, model.right.state, job.weights);
    if (job.labelled === true && E.isLeft(conditional)) return failed(conditional.left);
    const score = job.labelled === true && E.isRight(conditional) ? conditional.right(job.keys) : model.right.score;
    const drawn = await draw(
      job.keys,
      () => ({ sampler: sampler.right, score }),
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
    disposeScoreModel(model.right);
  }
};

main().catch((e: unknown) => failed(`worker: ${(e as Error).stack ?? String(e)}`));
