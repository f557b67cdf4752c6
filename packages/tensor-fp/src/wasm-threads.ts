/**
 * Multi-threaded WebAssembly in Node: the threaded SIMD build of `@tensorflow/tfjs-backend-wasm`, which tfjs
 * 4.22 never selects under Node (`WASM_HAS_MULTITHREAD_SUPPORT` is hard-coded false there, tfjs issue 3830).
 *
 * What stands in the way, and what this module does about it (issue 6):
 * 1. Emscripten starts its pthread workers from a `blob:` URL, which Node's `Worker` cannot load. The worker
 *    script is written once to a temporary `.cjs` file (named by a hash of its content, written atomically),
 *    and `URL.createObjectURL` returns that path for exactly this blob (recognised by type and size; every
 *    other blob goes to the original). The worker `importScripts` the package's own unbundled
 *    `wasm-out/tfjs-backend-wasm-threaded-simd.js`.
 * 2. The flag is forced on and the thread count set before the backend initialises.
 * 3. tfjs caps XNNPACK's pool at ⌊logical cores / 2⌋ (it assumes 2 hyper-threads per core), so on a 2-core
 *    machine it would use 1 thread. While the module initialises, `os.cpus()` reports 2n entries, so the cap is
 *    the n threads asked for.
 * 4. Emscripten keeps running pthread workers referenced: the process would never exit. They are unref'd.
 * Anything that fails falls back to the single-threaded SIMD build, with a one-line reason on stderr.
 *
 * Only XNNPACK kernels (conv2d, matMul, …) use the extra threads; tfjs' element-wise kernels stay single-threaded. Our
 * own fused kernels (group norm, the conv filter gradient, Adam + EMA) get a second thread of their own over the same
 * shared memory (`fused-thread.ts`), so they too use 2 threads exactly when this build does.
 *
 * `SCORE_SDE_WASM_THREADS` chooses: unset or `auto` = one thread per core (`os.availableParallelism()`),
 * except under Jest, where tests keep the single-threaded build (each test file would otherwise start a new
 * pool of 8 workers in the same process); `off`, `0` or `1` = single-threaded; an integer n ≥ 2 = n threads
 * (at most 8, the size of the pool the build pre-creates), also under Jest.
 *
 * Importing this module registers the setup with {@link registerWasmSetup}, so `initBackend` reports e.g.
 * `wasm (SIMD, 2 threads)`.
 *
 * @module wasm-threads
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';
import * as E from 'fp-ts/Either';
import { setThreadsCount, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf';
import { registerWasmSetup } from './backend-node';

// The `os` module object itself (not an ES namespace copy): its `cpus` is what Emscripten reads.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const os = require('node:os') as typeof import('node:os');

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** What `SCORE_SDE_WASM_THREADS` asks for. @category model */
export type ThreadsRequest = { readonly kind: 'auto' } | { readonly kind: 'count'; readonly n: number };

/** The outcome of the threads setup: the count in use and, when it is 1, why. @category model */
export interface WasmThreadsStatus {
  readonly threads: number;
  readonly reason?: string;
}

/** Most threads the threaded build can use: it pre-creates a pool of 8 workers. @category constants */
export const MAX_WASM_THREADS = 8;

// -------------------------------------------------------------------------------------
// parsing and policy
// -------------------------------------------------------------------------------------

/**
 * Parses `SCORE_SDE_WASM_THREADS`: unset/empty/`auto` → auto; `off`/`0`/`1` → 1; an integer n ≥ 2 → n
 * (capped at {@link MAX_WASM_THREADS}); anything else is a Left naming the variable.
 * @category parsing
 */
export const parseThreadsRequest = (raw: string | undefined): E.Either<string, ThreadsRequest> => {
  const v = (raw ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return E.right({ kind: 'auto' });
  if (v === 'off') return E.right({ kind: 'count', n: 1 });
  const n = Number(v);
  return /^\d+$/.test(v) && Number.isSafeInteger(n)
    ? E.right({ kind: 'count', n: Math.min(Math.max(n, 1), MAX_WASM_THREADS) })
    : E.left(`SCORE_SDE_WASM_THREADS: expected auto, off or a thread count, got "${raw}"`);
};

const underJest = (): boolean => process.env['JEST_WORKER_ID'] !== undefined;

const logicalCores = (): number => (typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);

/**
 * The thread count to aim for: auto = logical cores (1 under Jest), else the count asked for, at most
 * {@link MAX_WASM_THREADS}.
 * @category policy
 */
export const plannedThreads = (req: ThreadsRequest, cores = logicalCores(), jest = underJest()): WasmThreadsStatus =>
  req.kind === 'count'
    ? { threads: req.n, ...(req.n === 1 ? { reason: 'SCORE_SDE_WASM_THREADS asks for one thread' } : {}) }
    : jest
      ? { threads: 1, reason: 'single-threaded under Jest (set SCORE_SDE_WASM_THREADS=n to override)' }
      : { threads: Math.min(Math.max(cores, 1), MAX_WASM_THREADS), ...(cores <= 1 ? { reason: 'one logical core' } : {}) };

// -------------------------------------------------------------------------------------
// the setup
// -------------------------------------------------------------------------------------

interface ThreadedFiles {
  readonly mainScript: string;
  readonly workerContents: string;
}

const threadedFiles = (): ThreadedFiles => {
  const dir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'wasm-out');
  const mainScript = path.join(dir, 'tfjs-backend-wasm-threaded-simd.js');
  const workerModule = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.js');
  if (!fs.existsSync(mainScript)) throw new Error(`missing ${mainScript}`);
  // The package's worker module exports the worker's source text as `wasmWorkerContents`.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { wasmWorkerContents } = require(workerModule) as { wasmWorkerContents?: unknown };
  if (typeof wasmWorkerContents !== 'string') throw new Error(`${workerModule} does not export wasmWorkerContents`);
  return { mainScript, workerContents: wasmWorkerContents };
};

/**
 * Writes the pthread worker script: inside the worker, `URL.createObjectURL` (called on the main-script blob)
 * yields the unbundled threaded build, which the tfjs worker code then `importScripts`. Content-addressed and
 * written atomically, so concurrent processes share one file; its syntax is checked before use.
 */
const writeWorkerScript = (files: ThreadedFiles): string => {
  const source =
    `"use strict";URL.createObjectURL=function(){return ${JSON.stringify(files.mainScript)};};URL.revokeObjectURL=function(){};\n` +
    // tfjs escapes newlines the same way before putting the text in a Blob.
    files.workerContents.replace(/\n/g, '\\n');
  new vm.Script(source, { filename: 'tfjs-wasm-worker.cjs' });
  const hash = crypto.createHash('sha256').update(source).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `score-sde-tfjs-wasm-worker-${hash}.cjs`);
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== source) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, source);
    fs.renameSync(tmp, file);
  }
  return file;
};

/** Makes `URL.createObjectURL(blob)` return `workerFile` for tfjs' pthread-worker blob only. */
const routeWorkerBlob = (files: ThreadedFiles, workerFile: string): void => {
  const expectedSize = Buffer.byteLength(files.workerContents.replace(/\n/g, '\\n'));
  const original = URL.createObjectURL.bind(URL) as (o: unknown) => string;
  const marked = URL.createObjectURL as unknown as { scoreSdeWorker?: boolean };
  if (marked.scoreSdeWorker === true) return;
  const routed = (o: unknown): string =>
    typeof Blob !== 'undefined' && o instanceof Blob && o.type === 'application/javascript' && o.size === expectedSize ? workerFile : original(o);
  (routed as unknown as { scoreSdeWorker: boolean }).scoreSdeWorker = true;
  URL.createObjectURL = routed as typeof URL.createObjectURL;
};

/** Runs `f` while `os.cpus()` reports `2n` cores (tfjs uses ⌊cores/2⌋ threads at most). */
const withReportedCores = async <A>(n: number, f: () => Promise<A>): Promise<A> => {
  const cpus = os.cpus;
  const real = cpus.call(os);
  const first = real[0];
  os.cpus = () => (first === undefined ? real : Array.from({ length: 2 * n }, () => first));
  try {
    return await f();
  } finally {
    os.cpus = cpus;
  }
};

interface PThreadModule {
  readonly PThread?: { readonly runningWorkers?: ReadonlyArray<{ unref?: () => void }>; readonly unusedWorkers?: ReadonlyArray<{ unref?: () => void }> };
}

/** Lets the process exit although XNNPACK's pthread workers are still waiting for work. */
const unrefWorkers = (): void => {
  const module = (tf.backend() as unknown as { wasm?: PThreadModule } | undefined)?.wasm;
  const pt = module?.PThread;
  [...(pt?.runningWorkers ?? []), ...(pt?.unusedWorkers ?? [])].forEach((w) => w.unref?.());
};

let status: WasmThreadsStatus | undefined;

/** The outcome of the last wasm threads setup (undefined before the wasm backend was initialised). @category queries */
export const wasmThreadsStatus = (): WasmThreadsStatus | undefined => status;

const fallBack = async (reason: string): Promise<number> => {
  process.stderr.write(`[score-sde] wasm threads unavailable (${reason}); using the single-threaded SIMD build\n`);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  setThreadsCount(1);
  status = { threads: 1, reason };
  return 1;
};

/**
 * Prepares and initialises the wasm backend with `SCORE_SDE_WASM_THREADS` threads (see the module note) and
 * returns the number of threads XNNPACK got; on any failure, the single-threaded SIMD build (1).
 * Registered with {@link registerWasmSetup}; `initBackend` calls it.
 * @category setup
 */
export const setupWasmThreads = async (request = process.env['SCORE_SDE_WASM_THREADS']): Promise<number> => {
  // Once initialised, the wasm module cannot change build or thread count in this process.
  if (status !== undefined) return status.threads;
  const parsed = parseThreadsRequest(request);
  if (E.isLeft(parsed)) return fallBack(parsed.left);
  const plan = plannedThreads(parsed.right);
  if (plan.threads <= 1) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    status = plan;
    return 1;
  }
  try {
    if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) return await fallBack('no WebAssembly SIMD (the threaded build needs it)');
    if (typeof SharedArrayBuffer === 'undefined') return await fallBack('no SharedArrayBuffer');
    if (typeof Blob === 'undefined') return await fallBack('no Blob in this environment');
    const files = threadedFiles();
    routeWorkerBlob(files, writeWorkerScript(files));
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    setThreadsCount(plan.threads);
    const ok = await withReportedCores(plan.threads, () => tf.setBackend('wasm'));
    if (!ok) return await fallBack('the threaded build failed to initialise');
    unrefWorkers();
    const got = getThreadsCount();
    status = got === plan.threads ? { threads: got } : { threads: got, reason: `XNNPACK gave ${got} of ${plan.threads} threads` };
    return got;
  } catch (e) {
    return fallBack((e as Error).message);
  }
};

registerWasmSetup(() => setupWasmThreads());
