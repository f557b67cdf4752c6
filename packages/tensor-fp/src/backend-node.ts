/**
 * The backend chooser of Node programs. Order of preference, unless `SCORE_SDE_BACKEND` says otherwise:
 * 1. `tensorflow` — `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`, if the user installed one
 *    (optional: they download libtensorflow at install time, so they are never hard dependencies);
 * 2. `wasm` — `@tensorflow/tfjs-backend-wasm`, its .wasm binaries loaded from `node_modules` (no network);
 * 3. `cpu` — `@tensorflow/tfjs-backend-cpu`, plain JavaScript, always available.
 *
 * `SCORE_SDE_BACKEND=wasm|cpu|tensorflow` forces one (and fails clearly if it cannot be had). Node only (the
 * package's index and its `node` entry); a browser chooses with `backend-browser.ts`.
 *
 * @module backend-node
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf';
import { prepareFusedKernels, startKernelThread } from './fused-kernels';
import { envVar, diagnostic } from './env';
import { type BackendChoice, type BackendError, type BackendInfo, type BackendName, BACKEND_NAMES, backendError, chooseAmong, chosenBackend, describeBackend, parseBackendName, tryCpu } from './backend';

// -------------------------------------------------------------------------------------
// individual backends
// -------------------------------------------------------------------------------------

const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

const tryTensorflow = async (): Promise<E.Either<BackendError, BackendInfo>> => {
  const reasons: string[] = [];
  for (const pkg of TFJS_NODE_PACKAGES) {
    try {
      // A dynamic require: these packages are optional peers and must not be resolved at build time.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(pkg);
      if (tf.findBackend('tensorflow') !== undefined && (await tf.setBackend('tensorflow'))) {
        await tf.ready();
        return E.right({ name: 'tensorflow', provider: pkg });
      }
      reasons.push(`${pkg} loaded but registered no 'tensorflow' backend`);
    } catch (e) {
      reasons.push(`${pkg}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return E.left(backendError(`no tfjs-node backend available (${reasons.join('; ')})`));
};

/** Directory holding the wasm binaries shipped inside the npm package. @category configuration */
export const wasmDirectory = (): string =>
  path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;

/** Hooks a faster setup of the wasm backend (e.g. threads) may install before initialisation. */
let wasmSetup: (() => Promise<number>) | undefined;

/**
 * Registers a function that prepares the wasm backend before it initialises (for instance the threaded
 * build) and returns the number of threads it enabled. Used by the performance layer; optional.
 * @category configuration
 */
export const registerWasmSetup = (setup: () => Promise<number>): void => {
  wasmSetup = setup;
};

const tryWasm = async (): Promise<E.Either<BackendError, BackendInfo>> => {
  try {
    setWasmPaths(wasmDirectory());
    const threads = wasmSetup !== undefined ? await wasmSetup() : 1;
    if (!(await tf.setBackend('wasm'))) return E.left(backendError('wasm backend failed to initialise'));
    await tf.ready();
    // Our fused SIMD kernels over the backend's heap (fused-kernels.ts); SCORE_SDE_FUSED=off keeps tfjs' ops only.
    if (envVar('SCORE_SDE_FUSED') !== 'off' && !(await prepareFusedKernels())) {
      diagnostic('[score-sde] fused wasm kernels unavailable; using tfjs ops');
    } else if (envVar('SCORE_SDE_FUSED') !== 'off') {
      // Their second thread, up before the first kernel call: a kernel call would start it too, but it only comes up when
      // the event loop turns, which a synchronous loop (a benchmark, a script's training loop) never lets it do. Resolves
      // false on the single-threaded build; the results are the same bits either way.
      await startKernelThread();
    }
    return E.right({ name: 'wasm', simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), threads });
  } catch (e) {
    return E.left(backendError(`wasm backend failed: ${(e as Error).message}`));
  }
};

const attempt: Record<BackendName, () => Promise<E.Either<BackendError, BackendInfo>>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: tryCpu,
};

// -------------------------------------------------------------------------------------
// the chooser
// -------------------------------------------------------------------------------------

/** The backend chosen so far, if any (one of Node's). @category queries */
export const currentBackend = (): BackendInfo | undefined => {
  const b = chosenBackend();
  return b !== undefined && (BACKEND_NAMES as ReadonlyArray<string>).includes(b.name) ? (b as BackendInfo) : undefined;
};

/**
 * Chooses and initialises the backend: `prefer` (or `SCORE_SDE_BACKEND`) if given, else the first of
 * tensorflow → wasm → cpu that works. Idempotent for the same request.
 * @category constructors
 */
export const chooseBackend = (prefer?: BackendChoice): TE.TaskEither<BackendError, BackendInfo> =>
  pipe(
    prefer !== undefined ? E.right(prefer) : parseBackendName(envVar('SCORE_SDE_BACKEND')),
    TE.fromEither,
    TE.chain((want) => () => chooseAmong(want, BACKEND_NAMES, (name) => attempt[name]())),
  );

/**
 * Chooses the backend and prints which one it got (`[score-sde] backend: …`) to stderr; throws on failure.
 * For the top of every command-line program.
 * @category constructors
 */
export const initBackend = async (opts: { readonly prefer?: BackendChoice; readonly quiet?: boolean } = {}): Promise<BackendInfo> => {
  const r = await chooseBackend(opts.prefer)();
  if (E.isLeft(r)) throw new Error(r.left.message);
  if (opts.quiet !== true) diagnostic(`[score-sde] backend: ${describeBackend(r.right)}`);
  return r.right;
};
