/**
 * The worker of {@link startTrainWorkers} (a `worker_threads` Worker started through tsx): decodes its job,
 * initialises its backend, says `ready`, then answers each part request with models' `partGradient` of that part
 * (the weights written into its own variables first) and its loss. Every failure is posted as `failed` with a
 * readable reason; nothing is thrown across the boundary.
 *
 * @module pipeline/train-worker
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as E from 'fp-ts/Either';
import { tf, codec, initBackend, describeBackend } from '@score-sde/tensor-fp';
import { scoreNetSpec, sizeOfShape, paramsFromValues, recordFromValues, assignParams, partGradient, disposeRecord, type Params } from '@score-sde/models';
import { TrainWorkerJob, PartRequest, type TrainWorkerMessage } from './train-workers';

const post = (m: TrainWorkerMessage, transfer: ReadonlyArray<ArrayBuffer> = []): void => parentPort?.postMessage(m, [...transfer]);
const failed = (message: string): void => post({ kind: 'failed', message });

const main = async (): Promise<void> => {
  const decoded = codec.decodeWith(TrainWorkerJob, 'train worker job')(workerData);
  if (E.isLeft(decoded)) return failed(codec.renderDecodeError(decoded.left));
  const job = decoded.right;
  try {
    post({ kind: 'ready', backend: describeBackend(await initBackend({ prefer: job.backend, quiet: true })) });
  } catch (e) {
    return failed(`backend ${job.backend}: ${(e as Error).message}`);
  }
  const specs = scoreNetSpec(job.config.model);
  const gradient = partGradient(job.config);
  let params: Params | undefined;
  parentPort?.on('message', (m: unknown) => {
    const r = codec.decodeWith(PartRequest, 'part request')(m);
    if (E.isLeft(r)) return failed(codec.renderDecodeError(r.left));
    const req = r.right;
    try {
      const missing = specs.find((s) => req.params[s.name]?.length !== sizeOfShape(s.shape));
      if (missing !== undefined) return failed(`part request ${req.id}: the weights of ${missing.name} are missing or of the wrong size`);
      if (params === undefined) params = paramsFromValues(specs, req.params);
      else assignParams(params, recordFromValues(specs, req.params));
      const x0 = tf.tensor(req.x0, req.shape, 'float32');
      const g = gradient(params, x0, req.labels, req.key, { start: req.start, end: req.end });
      x0.dispose();
      if (E.isLeft(g)) return failed(g.left.message);
      const grads = Object.fromEntries(Object.entries(g.right.grads).map(([n, v]) => [n, v.dataSync() as Float32Array]));
      disposeRecord(g.right.grads);
      post({ kind: 'gradient', id: req.id, grads, loss: g.right.loss }, Object.values(grads).map((a) => a.buffer as ArrayBuffer));
    } catch (e) {
      failed(`part request ${req.id}: ${(e as Error).stack ?? String(e)}`);
    }
  });
};

main().catch((e: unknown) => failed(`train worker: ${(e as Error).stack ?? String(e)}`));
