/**
 * The fused kernels' second thread in Node (issue 11): a `worker_threads` Worker with its own instance of the fused-kernels
 * module over the wasm backend's shared memory, which runs one part of a split kernel call while the main thread runs the
 * other (`fused-kernels.ts`, `splitRun`).
 *
 * Why: XNNPACK's convs use the threaded build's 2 threads, but our own kernels (group norm, the conv filter gradient,
 * Adam + EMA) ran on the main thread alone, ~12 ms of a ~52 ms training step of the default model.
 *
 * How: one command block in a SharedArrayBuffer — Int32 slots [request, done, failed, taken, gate, wake, and the background job's] and Float64 slots for the calls
 * ([count, then per call: export index, argument count, arguments]; float64 carries every i32 and float32 argument
 * exactly). The main thread writes the calls, bumps `request` (Atomics.store + notify), runs its own part, then waits
 * for `done` to equal `request` (a short spin, then Atomics.wait). The worker sleeps in Atomics.wait between calls; no
 * message is posted per call. The module has no globals and no scratch memory of its own (every buffer is a tensor the
 * kernel call allocated), so two instances never share state beyond the disjoint outputs they write.
 *
 * Besides requests, the main thread may offer one background job of rows (`offer`: row r is one call whose arguments
 * step by r·strides, e.g. the next step's normals while a score evaluation runs). The worker runs its rows whenever it
 * has no request, one row at a time, so a request waits at most one row (~12 µs for 784 normals). Each row is claimed
 * exactly once by compare-and-swap of the slot [generation | next row] (16 bits each; the main thread closes the job with
 * row 0xffff while it writes the next one, so a stale claim fails); `settle` claims and runs on the main thread every row
 * the worker has not reached, then waits for the worker's row in progress. One word, `wake`, counts posts and offers: the
 * worker reads it before it looks for work and sleeps on it, so neither can be missed.
 *
 * Each request is taken exactly once (compare-and-swap of `taken` from request − 1 to request): by the worker, before it
 * runs it, or by the main thread when the worker has not got to it within 60 s — the main thread then runs that part
 * itself and gives the thread up, and the worker, should it get there later, leaves it alone (its caller may have freed
 * those outputs by then: a late write would land in reused heap). A request the worker has taken is waited for however
 * long it takes. (`gate` holds the worker before it takes a request: a test hook.) A call that throws on the worker sets
 * `failed` and posts the error's text, which the main thread prints (`[score-sde] the kernel thread’s call n failed: …`); a
 * request not taken in time is printed too. Either way the part is redone on the main thread and the thread given up.
 *
 * The worker is unref'd (the process exits while it waits) and started once, lazily. It is only started over a shared
 * memory (the threaded build: `SCORE_SDE_WASM_THREADS` unset/auto outside Jest, or n ≥ 2); `off`, `0`, `1` never start
 * it. Importing this module registers it with `registerKernelThread` (the package's Node entry does).
 *
 * @module fused-thread
 */
import { Worker } from 'node:worker_threads';
import { type KernelCall, type KernelThread, type KernelThreadStarter, THREAD_KERNELS, registerKernelThread } from './fused-kernels';
import { wasmThreadsStatus } from './wasm-threads';
import { diagnostic } from './env';

/** Int32 slots of the command block. */
const REQUEST = 0;
const DONE = 1;
const FAILED = 2;
/** The last request taken: by the worker to run it, or by the main thread when it gave up waiting for the worker to start it. */
const TAKEN = 3;
const GATE = 4;
/** Bumped by every post and offer: the word the worker sleeps on. */
const WAKE = 5;
/** The background job: [generation << 16 | next row to claim] (row 0xffff: closed), its row count, rows done. */
const BG_NEXT = 6;
const BG_ROWS = 7;
const BG_DONE = 8;
/** Set when a background row threw on the worker (the job is then redone on the main thread). */
const BG_FAILED = 9;
/** Bytes before the Float64 call slots, and how many there are; then the background job's slots [export, argc, args, strides]. */
const HEADER_BYTES = 64;
const CALL_SLOTS = 256;
const BG_SLOTS = 34;
/** Rows a background job may have (the 16 bits of its slot, less the closed mark). */
export const BACKGROUND_MAX_ROWS = 0xfffe;
/**
 * Polls of `done` before the main thread sleeps (~10 µs): the worker's part usually ends within µs of ours, and a longer
 * spin would take the core from the worker when both share one (a busy machine).
 */
const SPIN = 2000;
/** How long the main thread waits for the worker's part before giving up on it (then it redoes that part itself). */
const TIMEOUT_MS = 60_000;

/** The worker's program (CommonJS, evaluated): instantiate, say ready, then serve command blocks forever. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, sab, names } = workerData;
const instance = new WebAssembly.Instance(module, { env: { memory } });
const fns = names.map((n) => instance.exports[n]);
const ctrl = new Int32Array(sab, 0, ${HEADER_BYTES / 4});
const slots = new Float64Array(sab, ${HEADER_BYTES}, ${CALL_SLOTS});
const bg = new Float64Array(sab, ${HEADER_BYTES + 8 * CALL_SLOTS}, ${BG_SLOTS});
// Claims and runs one row of the background job, if one is left: false when there is none.
const backgroundRow = () => {
  for (;;) {
    const w = Atomics.load(ctrl, ${BG_NEXT});
    const row = w & 0xffff;
    if (row === 0xffff || row >= Atomics.load(ctrl, ${BG_ROWS})) return false;
    if (Atomics.compareExchange(ctrl, ${BG_NEXT}, w, (w + 1) | 0) !== w) continue;
    const argc = bg[1];
    const args = new Array(argc);
    for (let i = 0; i < argc; i++) args[i] = bg[2 + i] + row * bg[2 + argc + i];
    try {
      fns[bg[0]](...args);
    } catch (e) {
      // Said to the main thread, which redoes the whole job at settle (each row is its own).
      Atomics.store(ctrl, ${BG_FAILED}, 1);
      parentPort.postMessage({ failure: 'background row ' + row + ': ' + String((e && e.stack) || e), request: seen });
    }
    Atomics.add(ctrl, ${BG_DONE}, 1);
    Atomics.notify(ctrl, ${BG_DONE});
    return true;
  }
};
// The request count is read before 'ready' is said: a call posted right after the main thread hears it must find
// the count changed, not be taken for the one already seen (that race left a call unserved until the timeout).
let seen = Atomics.load(ctrl, ${REQUEST});
parentPort.postMessage('ready');
for (;;) {
  // Only a new request wakes the worker for good: a wake-up with the count unchanged is the late notify of a request it
  // already ran (the main thread stores the count, and may be preempted before it notifies; the worker, finding the
  // count changed, runs the request without that notify, then sleeps and receives it). Taking that for a request failed
  // the CAS below and marked the current call failed, and the main thread gave its kernel thread up.
  // Between requests it runs background rows; with none, it sleeps on the wake count read before it looked (a post or
  // an offer after that read changes it, and the wait returns at once).
  for (;;) {
    const wake = Atomics.load(ctrl, ${WAKE});
    if (Atomics.load(ctrl, ${REQUEST}) !== seen) break;
    if (backgroundRow()) continue;
    Atomics.wait(ctrl, ${WAKE}, wake);
  }
  seen = Atomics.load(ctrl, ${REQUEST});
  // Tests hold the worker here (a thread that has not got to a request yet).
  while (Atomics.load(ctrl, ${GATE}) !== 0) Atomics.wait(ctrl, ${GATE}, 1);
  // Take the request, unless the main thread took it first (it timed out, ran the part itself, and its outputs may be
  // freed by now): then it is left alone.
  let failed = 0;
  const was = Atomics.compareExchange(ctrl, ${TAKEN}, (seen - 1) | 0, seen);
  if (was !== ((seen - 1) | 0)) {
    failed = 1;
    parentPort.postMessage({ failure: 'left alone: the last request taken was ' + was, request: seen });
  } else try {
    let at = 1;
    for (let c = 0, n = slots[0]; c < n; c++) {
      const f = fns[slots[at]];
      const argc = slots[at + 1];
      const args = Array.from(slots.subarray(at + 2, at + 2 + argc));
      f(...args);
      at += 2 + argc;
    }
  } catch (e) {
    failed = 1;
    // Said to the main thread, which prints it: the call is redone there, and the thread given up.
    parentPort.postMessage({ failure: String((e && e.stack) || e), request: seen });
  }
  Atomics.store(ctrl, ${FAILED}, failed);
  Atomics.store(ctrl, ${DONE}, seen);
  Atomics.notify(ctrl, ${DONE});
}
`;

/** Encodes calls into the Float64 slots: [count, (export index, argument count, ...arguments)*]. */
const encode = (slots: Float64Array, calls: ReadonlyArray<KernelCall>): void => {
  let at = 1;
  for (const [name, ...args] of calls) {
    if (at + 2 + args.length > CALL_SLOTS) throw new Error(`fused-thread: ${calls.length} calls do not fit the command block`);
    slots[at] = THREAD_KERNELS.indexOf(name);
    slots[at + 1] = args.length;
    slots.set(args, at + 2);
    at += 2 + args.length;
  }
  slots[0] = calls.length;
};

/**
 * A {@link KernelThread} with four test hooks: `hold` keeps the worker from getting to a posted request (it waits before
 * taking it) until released, like a worker that other processes keep off the cores; `drain` blocks until the worker
 * is through with the last request (ran it or left it), without a timeout; `nudge` wakes it with no new request;
 * `backgroundLeft` counts the offered rows not yet done.
 * @category threads
 */
export interface TestableKernelThread extends KernelThread {
  readonly hold: (held: boolean) => void;
  readonly drain: () => void;
  /** Wakes the worker with no new request (as a post's notify that comes after the worker has already run it). */
  readonly nudge: () => void;
  readonly offer: NonNullable<KernelThread['offer']>;
  readonly settle: NonNullable<KernelThread['settle']>;
  /** Rows of the offered background job not yet done (0 when none is offered). */
  readonly backgroundLeft: () => number;
}

/**
 * Starts the worker over the compiled fused-kernels module and the backend's shared memory; resolves once it has
 * instantiated the module, rejects (with the reason) if the wasm backend is single-threaded, `Atomics.wait` is missing, or
 * the worker fails to start within 60 s (a new isolate that compiles the module can take tens of seconds on cores
 * that other processes keep busy; the kernels run on one thread meanwhile).
 * @category threads
 */
export const startFusedKernelThread = (module: unknown, memory: Parameters<KernelThreadStarter>[1], timeoutMs = TIMEOUT_MS): Promise<TestableKernelThread> =>
  new Promise<TestableKernelThread>((resolve, reject) => {
    const threads = wasmThreadsStatus()?.threads ?? 1;
    if (threads < 2) return reject(new Error(`the wasm backend has ${threads} thread`));
    if (typeof Atomics.wait !== 'function') return reject(new Error('no Atomics.wait'));
    const sab = new SharedArrayBuffer(HEADER_BYTES + 8 * CALL_SLOTS + 8 * BG_SLOTS);
    const ctrl = new Int32Array(sab, 0, HEADER_BYTES / 4);
    const slots = new Float64Array(sab, HEADER_BYTES, CALL_SLOTS);
    const bg = new Float64Array(sab, HEADER_BYTES + 8 * CALL_SLOTS, BG_SLOTS);
    let worker: Worker;
    try {
      // execArgv: [] — the worker runs plain JavaScript and needs none of the parent's loaders (tsx's `--import` costs seconds).
      worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { module, memory, sab, names: [...THREAD_KERNELS] } });
    } catch (e) {
      return reject(e as Error);
    }
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error('the kernel worker did not start within 60 s'));
    }, 60_000);
    timer.unref();
    worker.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    worker.on('message', (m: { readonly failure?: string; readonly request?: number } | string) => {
      if (typeof m === 'object' && m.failure !== undefined) diagnostic(`[score-sde] the kernel thread’s call ${m.request ?? '?'} failed: ${m.failure}`);
    });
    worker.once('message', () => {
      clearTimeout(timer);
      // Once started, and after the listeners (adding one refs the worker again): the process may exit while the worker
      // waits. Not before: a program whose only pending work is awaiting this start would exit in the middle of it.
      worker.unref();
      let seq = Atomics.load(ctrl, REQUEST);
      let generation = 0;
      let backgroundRows = 0;
      const wake = (): void => {
        Atomics.add(ctrl, WAKE, 1);
        Atomics.notify(ctrl, WAKE);
      };
      resolve({
        post: (calls) => {
          encode(slots, calls);
          seq = (seq + 1) | 0;
          Atomics.store(ctrl, REQUEST, seq);
          wake();
        },
        offer: (call, strides, rows) => {
          const [name, ...args] = call;
          if (!(rows >= 1 && rows <= BACKGROUND_MAX_ROWS)) throw new RangeError(`fused-thread: a background job has 1…${BACKGROUND_MAX_ROWS} rows, not ${rows}`);
          if (strides.length !== args.length || 2 + 2 * args.length > BG_SLOTS) throw new RangeError(`fused-thread: ${args.length} arguments with ${strides.length} strides do not fit a background job`);
          generation = (generation + 1) & 0xffff;
          // Closed while it is written: a claim read from the previous job fails its compare-and-swap.
          Atomics.store(ctrl, BG_NEXT, (generation << 16) | 0xffff);
          bg[0] = THREAD_KERNELS.indexOf(name);
          bg[1] = args.length;
          bg.set(args, 2);
          bg.set(strides, 2 + args.length);
          Atomics.store(ctrl, BG_FAILED, 0);
          Atomics.store(ctrl, BG_DONE, 0);
          Atomics.store(ctrl, BG_ROWS, rows);
          Atomics.store(ctrl, BG_NEXT, generation << 16);
          backgroundRows = rows;
          wake();
        },
        settle: (runRow) => {
          if (backgroundRows === 0) return 0;
          const rows = backgroundRows;
          let own = 0;
          for (;;) {
            const w = Atomics.load(ctrl, BG_NEXT);
            const row = w & 0xffff;
            if (row === 0xffff || row >= rows) break;
            if (Atomics.compareExchange(ctrl, BG_NEXT, w, (w + 1) | 0) !== w) continue;
            runRow(row);
            own++;
            Atomics.add(ctrl, BG_DONE, 1);
          }
          // The worker's row in progress (µs on a free core; however long it takes, as its outputs are the caller's).
          for (let i = 0; i < SPIN && Atomics.load(ctrl, BG_DONE) !== rows; i++);
          for (let d = Atomics.load(ctrl, BG_DONE); d !== rows; d = Atomics.load(ctrl, BG_DONE)) Atomics.wait(ctrl, BG_DONE, d);
          Atomics.store(ctrl, BG_NEXT, (generation << 16) | 0xffff);
          backgroundRows = 0;
          if (Atomics.load(ctrl, BG_FAILED) !== 0) {
            for (let r = 0; r < rows; r++) runRow(r);
            return rows;
          }
          return own;
        },
        wait: () => {
          for (let i = 0; i < SPIN; i++) if (Atomics.load(ctrl, DONE) === seq) return Atomics.load(ctrl, FAILED) === 0;
          const deadline = Date.now() + timeoutMs;
          for (let d = Atomics.load(ctrl, DONE); d !== seq; d = Atomics.load(ctrl, DONE)) {
            const left = deadline - Date.now();
            if (left <= 0) {
              // The worker has not taken the request yet: take it back (it then never runs it). If it has, it is running:
              // wait for it however long (giving up now would let it write outputs after their caller freed them).
              if (Atomics.compareExchange(ctrl, TAKEN, (seq - 1) | 0, seq) === ((seq - 1) | 0)) {
                diagnostic(`[score-sde] the kernel thread did not take call ${seq} within ${timeoutMs / 1000} s`);
                return false;
              }
              for (let e = Atomics.load(ctrl, DONE); e !== seq; e = Atomics.load(ctrl, DONE)) Atomics.wait(ctrl, DONE, e);
              break;
            }
            Atomics.wait(ctrl, DONE, d, left);
          }
          return Atomics.load(ctrl, FAILED) === 0;
        },
        nudge: () => void Atomics.notify(ctrl, WAKE),
        backgroundLeft: () => (backgroundRows === 0 ? 0 : backgroundRows - Atomics.load(ctrl, BG_DONE)),
        hold: (held) => {
          Atomics.store(ctrl, GATE, held ? 1 : 0);
          Atomics.notify(ctrl, GATE);
        },
        drain: () => {
          for (let d = Atomics.load(ctrl, DONE); d !== seq; d = Atomics.load(ctrl, DONE)) Atomics.wait(ctrl, DONE, d);
        },
      });
    });
  });

registerKernelThread((module, memory) => startFusedKernelThread(module, memory));
