/**
 * Speculative noise prefetch: standard normals for the NEXT sampler step drawn in a worker thread while this
 * thread evaluates the score, bit-identical to {@link random.normalPerSample} by construction.
 *
 * A stochastic sampler draws its noise as z = normalPerSample(splitEach(keys)[1], shape) and carries
 * splitEach(keys)[0], so the next draw is predictable: normalPerSample(splitEach(carry)[1], same shape).
 * {@link prefetchNormals} posts that job to one lazily started `worker_threads` Worker (unref'd: it never keeps a
 * process or Jest alive), which writes the normals into a SharedArrayBuffer and signals with Atomics.store/notify.
 * {@link normalPerSample} takes the worker's values when the job is for exactly these keys and shape and done
 * (optionally Atomics.wait-ing for it), copied into a fresh Float32Array, and otherwise draws synchronously as before.
 * (The copy costs ≈ 45 µs at 64 × 784; it keeps a tensor from aliasing the shared buffer on backends that keep the
 * array they are given, such as cpu.)
 *
 * The worker is plain JavaScript (no TypeScript loader) around the source text of random.ts's own unrolled
 * Threefry-2x32 + Box–Muller loop (`normalsInto.toString()`, `boxMullerInto.toString()`: float64 arithmetic only), checked
 * bit for bit against `random.normalArray` by the tests. Any failure (the worker cannot start or throws) switches the prefetch off for the process and
 * falls back to the synchronous draw, so results never depend on it.
 *
 * Opt-in: `SCORE_SDE_NOISE_PREFETCH=auto` (read at each call) turns it on in the main thread for batches of at least
 * 4096 normals, backing off for 10 draws after 3 late jobs in a row (steps too short for the worker to finish in),
 * and off in worker threads (sharded sampling already uses every core); `=1` forces it on; unset or `0`: off.
 * Off by default because, measured end to end on 2 cores (`npm run bench -- overhead --only euler-maruyama`, A/B
 * alternating), it took ≈ 1 ms of noise off each EM step but made the 2-thread XNNPACK convolutions of the score
 * slower by more (the worker takes a core they use): 40 EM steps at batch 64 took 2.07–2.20 s with it and
 * 1.84–1.94 s without. It pays where the machine has a core the backend leaves idle.
 *
 * @module noise-prefetch
 */
import { Worker, isMainThread } from 'node:worker_threads';
import { tf } from './tf';
import * as random from './random';
import type { Key } from './random';

// -------------------------------------------------------------------------------------
// worker source
// -------------------------------------------------------------------------------------

/**
 * The worker: for a job {seq, keys (2B uint32 words), n, data, ctrl}, row b of `data` (float32) gets the n normals of
 * key (keys[2b], keys[2b+1]) — normal 2j, 2j+1 by Box–Muller from Threefry(k, (1, j)), exactly as `normalsInto` of
 * random.ts — then ctrl[0] = seq (or ctrl[1] = seq on an error) and a notify. ctrl[2] = 1 once it is listening.
 */
export const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const { sqrt, clz32 } = Math;
const boxMuller = ${random.boxMullerInto.toString()};
const normalsInto = ${random.normalsInto.toString()};
// Linux: a lower priority (nice 10) for this thread alone, so that waking it does not preempt the sampler's thread
// on a busy machine (measured: a post cost ~1 ms of the poster's wall time at nice 0 with the other core busy, ~50 µs
// at nice 10). Elsewhere, or if not permitted, it keeps the default priority.
try {
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isSafeInteger(tid) && tid > 0) require('node:os').setPriority(tid, 10);
} catch (e) {}
parentPort.on('message', (job) => {
  const ctrl = new Int32Array(job.ctrl);
  try {
    const B = job.keys.length / 2;
    const out = new Float32Array(job.data, 0, B * job.n);
    for (let b = 0; b < B; b++) normalsInto([job.keys[2 * b], job.keys[2 * b + 1]], job.n, out, b * job.n);
    Atomics.store(ctrl, 0, job.seq);
  } catch (e) {
    Atomics.store(ctrl, 1, job.seq);
  }
  Atomics.notify(ctrl, 0);
});
Atomics.store(new Int32Array(require('node:worker_threads').workerData.ctrl), 2, 1);
`;

// -------------------------------------------------------------------------------------
// state (one worker per thread; module-level because a Worker is a process resource)
// -------------------------------------------------------------------------------------

/** ctrl words: 0 = last finished job, 1 = last failed job, 2 = worker ready. */
const DONE = 0;
const FAILED = 1;
const READY = 2;

/**
 * Below this many normals per batch (≈ 0.1 ms to draw here), the default setting does not prefetch: posting a job
 * and waking the worker would cost about as much as the draw.
 */
export const MIN_PREFETCH_SIZE = 4096;

/**
 * Back-off of the default setting: after LATE_STREAK draws in a row for which the worker was not done (steps
 * shorter than the draw, e.g. a cheap analytic score), the next BACKOFF prefetches are skipped, then it tries again.
 */
const LATE_STREAK = 3;
const BACKOFF = 10;

interface Pending {
  readonly seq: number;
  readonly keys: Uint32Array;
  readonly shape: ReadonlyArray<number>;
  readonly size: number;
  readonly data: SharedArrayBuffer;
}

interface Runtime {
  readonly worker: Worker;
  readonly ctrl: Int32Array;
  data: SharedArrayBuffer;
  seq: number;
  pending: Pending | undefined;
}

let runtime: Runtime | undefined;
let broken = false;
let lateStreak = 0;
let skips = 0;
const counters = { posted: 0, hits: 0, misses: 0, late: 0, fallbacks: 0 };

const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);

/** Stops using the worker for the rest of the process (and lets it go). */
const giveUp = (): void => {
  broken = true;
  const r = runtime;
  runtime = undefined;
  if (r !== undefined) void r.worker.terminate().catch(() => undefined);
};

const start = (): Runtime | undefined => {
  if (broken) return undefined;
  if (runtime !== undefined) return runtime;
  try {
    const ctrlBuffer = new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT);
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ctrl: ctrlBuffer }, execArgv: [], stdout: false, stderr: false });
    worker.unref();
    worker.on('error', giveUp);
    worker.on('exit', () => {
      if (runtime?.worker === worker) giveUp();
    });
    runtime = { worker, ctrl: new Int32Array(ctrlBuffer), data: new SharedArrayBuffer(0), seq: 0, pending: undefined };
    return runtime;
  } catch {
    broken = true;
    return undefined;
  }
};

// -------------------------------------------------------------------------------------
// API
// -------------------------------------------------------------------------------------

/** The setting: `SCORE_SDE_NOISE_PREFETCH=1|auto` (1 also on/true); off when unset or anything else. */
const setting = (): 'off' | 'on' | 'auto' => {
  const v = process.env['SCORE_SDE_NOISE_PREFETCH'];
  return v === '1' || v === 'on' || v === 'true' ? 'on' : v === 'auto' ? 'auto' : 'off';
};

/**
 * Whether prefetching is on: `SCORE_SDE_NOISE_PREFETCH=1` forces it, `=auto` turns it on in the main thread only
 * (and for batches of at least {@link MIN_PREFETCH_SIZE} normals); unset: off; off for good after a worker failure.
 * @category prefetch
 */
export const enabled = (): boolean => {
  if (broken) return false;
  const s = setting();
  return s === 'on' || (s === 'auto' && isMainThread);
};

/**
 * Posts a job to the worker (non-blocking): the normals of normalPerSample(keys, sampleShape), to be taken by
 * {@link normalPerSample} with the same keys and shape. A later prefetch replaces it. No-op when prefetching is off.
 * @category prefetch
 */
export const prefetchNormals = (keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>): void => {
  if (!enabled() || keys.length === 0) return;
  const n = sizeOf(sampleShape);
  const size = keys.length * n;
  const auto = setting() !== 'on';
  if (auto && size < MIN_PREFETCH_SIZE) return;
  if (auto && skips > 0) {
    skips -= 1;
    return;
  }
  const r = start();
  if (r === undefined) return;
  if (r.data.byteLength < size * 4) r.data = new SharedArrayBuffer(size * 4);
  const words = new Uint32Array(2 * keys.length);
  keys.forEach((k, b) => {
    words[2 * b] = k[0];
    words[2 * b + 1] = k[1];
  });
  r.seq = (r.seq % 0x7fffffff) + 1;
  r.pending = { seq: r.seq, keys: words, shape: [...sampleShape], size, data: r.data };
  counters.posted += 1;
  r.worker.postMessage({ seq: r.seq, keys: words, n, data: r.data, ctrl: r.ctrl.buffer });
};

const matches = (p: Pending, keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>): boolean => {
  if (p.keys.length !== 2 * keys.length || p.shape.length !== sampleShape.length) return false;
  for (let i = 0; i < sampleShape.length; i++) if (p.shape[i] !== sampleShape[i]) return false;
  for (let b = 0; b < keys.length; b++) if (p.keys[2 * b] !== keys[b]![0] >>> 0 || p.keys[2 * b + 1] !== keys[b]![1] >>> 0) return false;
  return true;
};

/** Waits (Atomics.wait) up to waitMs until the job `seq` is done: 'done', 'failed', or 'late'. */
const awaitJob = (r: Runtime, seq: number, waitMs: number): 'done' | 'failed' | 'late' => {
  const deadline = performance.now() + waitMs;
  for (;;) {
    const done = Atomics.load(r.ctrl, DONE);
    if (done === seq) return 'done';
    if (Atomics.load(r.ctrl, FAILED) === seq) return 'failed';
    const left = deadline - performance.now();
    if (left <= 0) return 'late';
    Atomics.wait(r.ctrl, DONE, done, left);
  }
};

/**
 * N(0, I) noise of shape [B, ...sampleShape], sample b from keys[b] alone: bit-identical to
 * `random.normalPerSample(keys, sampleShape)`, taken from the worker when a {@link prefetchNormals} for exactly
 * these keys and shape has finished (or finishes within waitMs: by default no wait, so a late worker never makes a
 * step slower than drawing here), computed here otherwise.
 * @category prefetch
 */
export const normalPerSample = (keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>, waitMs = 0): tf.Tensor => {
  const r = runtime;
  const p = r?.pending;
  if (r === undefined || p === undefined || !enabled()) return random.normalPerSample(keys, sampleShape);
  if (!matches(p, keys, sampleShape)) {
    counters.misses += 1;
    return random.normalPerSample(keys, sampleShape);
  }
  r.pending = undefined;
  // Not listening yet (the first job after start-up): drawing here is faster than waiting for the boot.
  if (Atomics.load(r.ctrl, READY) !== 1) {
    counters.misses += 1;
    return random.normalPerSample(keys, sampleShape);
  }
  const outcome = awaitJob(r, p.seq, waitMs);
  if (outcome !== 'done') {
    // Late: drawn here (the worker's job finishes unused). Failed: the worker is not used again.
    if (outcome === 'late') {
      counters.late += 1;
      lateStreak += 1;
      if (lateStreak >= LATE_STREAK) {
        lateStreak = 0;
        skips = BACKOFF;
      }
    } else {
      counters.fallbacks += 1;
      giveUp();
    }
    return random.normalPerSample(keys, sampleShape);
  }
  counters.hits += 1;
  lateStreak = 0;
  // A copy: later jobs reuse the shared buffer, and some backends (cpu) keep the array they are given.
  const values = new Float32Array(new Float32Array(p.data, 0, p.size));
  return tf.tensor(values, [keys.length, ...sampleShape], 'float32');
};

/**
 * Waits up to waitMs (Atomics.wait) for the pending job to finish: true when it is done or nothing is pending.
 * Samplers never need it; tests use it to make the worker path deterministic.
 * @category prefetch
 */
export const settle = (waitMs: number): boolean => {
  const r = runtime;
  const p = r?.pending;
  return r === undefined || p === undefined || awaitJob(r, p.seq, waitMs) === 'done';
};

/**
 * Counts since the process started: jobs posted, draws taken from the worker (hits), draws computed here although
 * a job was pending (misses: other keys or shape, or the worker not started yet; late: the worker not done within
 * the wait), and worker failures (fallbacks).
 * @category prefetch
 */
export const stats = (): { readonly posted: number; readonly hits: number; readonly misses: number; readonly late: number; readonly fallbacks: number } => ({ ...counters });
