/**
 * The worker of {@link sampleSharded} (started as a `worker_threads` Worker through tsx): decodes its job,
 * initialises its backend, loads the checkpoint, builds the sampler from its JSON spec, samples its shard of
 * keys and posts the final batch (x̄ when denoising, as the in-process run keeps it) with the NFE. Every
 * failure is posted as a `failed` message with a readable reason; nothing is thrown across the boundary.
 *
 * @module shard-worker
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as E from 'fp-ts/Either';
import { codec, initBackend, describeBackend } from '@score-sde/tensor-fp';
import { samplerFromSpec, run, stepCount, outputOf, type Sampler } from '@score-sde/solvers';
import { loadCheckpoint, renderCheckpointError, disposeTrainState, emaParams, scoreOfRun } from '@score-sde/models';
import { ShardJob, type ShardMessage } from './shard';

const post = (m: ShardMessage, transfer: ReadonlyArray<ArrayBuffer> = []): void => parentPort?.postMessage(m, [...transfer]);
const failed = (message: string): void => post({ kind: 'failed', message });

/** The sampler of the job: the spec's, for the checkpoint's SDE, with the job's grid when it gives one. */
const samplerOf = (job: ShardJob, sde: Parameters<typeof samplerFromSpec>[0]): E.Either<string, Sampler> => {
  const built = samplerFromSpec(sde, job.spec);
  if (E.isLeft(built)) return E.left(codec.renderDecodeError(built.left));
  return E.right(job.grid !== undefined ? { ...built.right, grid: job.grid } : built.right);
};

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

  const loaded = await loadCheckpoint(job.checkpoint)();
  if (E.isLeft(loaded)) return failed(renderCheckpointError(loaded.left));
  const { config, state } = loaded.right;
  try {
    const sampler = samplerOf(job, config.sde);
    if (E.isLeft(sampler)) return failed(sampler.left);
    const score = scoreOfRun(config, job.weights === 'ema' ? emaParams(state) : state.params);
    const steps = stepCount(sampler.right);
    const started = Date.now();
    let step = -1;
    let nfe = 0;
    let last: Float32Array | undefined;
    for await (const s of run(sampler.right, score, { keys: job.keys, sampleShape: job.sampleShape })) {
      step += 1;
      nfe = s.nfe;
      if (step > 0) post({ kind: 'step', step, steps, nfe });
      // Read the batch only at the end of the grid (a state is valid until the iterator advances).
      if (step === steps) last = new Float32Array(outputOf(s).dataSync());
    }
    if (last === undefined) return failed(`the sampler stopped after ${step} of ${steps} steps`);
    post({ kind: 'done', samples: last, shape: [job.keys.length, ...job.sampleShape], nfe, seconds: (Date.now() - started) / 1000, backend }, [last.buffer as ArrayBuffer]);
  } catch (e) {
    failed(`sampling: ${(e as Error).message}`);
  } finally {
    disposeTrainState(state);
  }
};

main().catch((e: unknown) => failed(`worker: ${(e as Error).stack ?? String(e)}`));
