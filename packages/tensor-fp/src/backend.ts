/**
 * The one place that chooses the TensorFlow.js backend.
 *
 * Order of preference, unless `SCORE_SDE_BACKEND` says otherwise:
 * 1. `tensorflow` — `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`, if the user installed one
 *    (optional: they download libtensorflow at install time, so they are never hard dependencies);
 * 2. `wasm` — `@tensorflow/tfjs-backend-wasm`, its .wasm binaries loaded from `node_modules` (no network);
 * 3. `cpu` — `@tensorflow/tfjs-backend-cpu`, plain JavaScript, always available.
 *
 * `SCORE_SDE_BACKEND=wasm|cpu|tensorflow` forces one (and fails clearly if it cannot be had).
 *
 * @module backend
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf';
import { prepareFusedKernels } from './fused-kernels';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** The backends this project knows how to choose, in the order `auto` tries them. @category model */
export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What a user may ask for (`--backend`, `SCORE_SDE_BACKEND`): a backend, or `auto` (the first that works). @category model */
export const BACKEND_CHOICES = ['auto', ...BACKEND_NAMES] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** What the chooser got: the backend, and its capabilities where they matter. @category model */
export interface BackendInfo {
  readonly name: BackendName;
  /** For `tensorflow`: which package supplied it. */
  readonly provider?: string;
  /** For `wasm`: whether the SIMD build is in use. */
  readonly simd?: boolean;
  /** For `wasm`: the number of threads the kernels may use. */
  readonly threads?: number;
}

/** Why a backend could not be had. @category model */
export interface BackendError {
  readonly _tag: 'BackendError';
  readonly message: string;
}

const backendError = (message: string): BackendError => ({ _tag: 'BackendError', message });

/** Parses `SCORE_SDE_BACKEND`: undefined or empty means "choose automatically". @category parsing */
export const parseBackendName = (raw: string | undefined): E.Either<BackendError, BackendChoice> => {
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'auto') return E.right('auto');
  const v = raw.trim().toLowerCase();
  return (BACKEND_NAMES as ReadonlyArray<string>).includes(v)
    ? E.right(v as BackendName)
    : E.left(backendError(`SCORE_SDE_BACKEND: expected one of auto|${BACKEND_NAMES.join('|')}, got "${raw}"`));
};

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

/** Directory holding the wasm binaries shipped inside the npm package. */
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
    if (process.env['SCORE_SDE_FUSED'] !== 'off' && !(await prepareFusedKernels())) {
      process.stderr.write('[score-sde] fused wasm kernels unavailable; using tfjs ops\n');
    }
    return E.right({ name: 'wasm', simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), threads });
  } catch (e) {
    return E.left(backendError(`wasm backend failed: ${(e as Error).message}`));
  }
};

const tryCpu = async (): Promise<E.Either<BackendError, BackendInfo>> =>
  (await tf.setBackend('cpu')) ? (await tf.ready(), E.right({ name: 'cpu' })) : E.left(backendError('cpu backend failed'));

const attempt: Record<BackendName, () => Promise<E.Either<BackendError, BackendInfo>>> = {
  tensorflow: tryTensorflow,
  wasm: tryWasm,
  cpu: tryCpu,
};

// -------------------------------------------------------------------------------------
// the chooser
// -------------------------------------------------------------------------------------

/** A one-line description, e.g. `wasm (SIMD, 1 thread)`. @category display */
export const describeBackend = (b: BackendInfo): string =>
  b.name === 'wasm'
    ? `wasm (${b.simd === true ? 'SIMD' : 'no SIMD'}, ${b.threads ?? 1} thread${(b.threads ?? 1) === 1 ? '' : 's'})`
    : b.name === 'tensorflow'
      ? `tensorflow (${b.provider ?? 'tfjs-node'})`
      : 'cpu (plain JavaScript)';

let chosen: BackendInfo | undefined;

/** The backend chosen so far, if any. @category queries */
export const currentBackend = (): BackendInfo | undefined => chosen;

/**
 * Chooses and initialises the backend: `prefer` (or `SCORE_SDE_BACKEND`) if given, else the first of
 * tensorflow → wasm → cpu that works. Idempotent for the same request.
 * @category constructors
 */
export const chooseBackend = (prefer?: BackendChoice): TE.TaskEither<BackendError, BackendInfo> =>
  pipe(
    prefer !== undefined ? E.right(prefer) : parseBackendName(process.env['SCORE_SDE_BACKEND']),
    TE.fromEither,
    TE.chain((want) => async (): Promise<E.Either<BackendError, BackendInfo>> => {
      if (chosen !== undefined && (want === 'auto' || want === chosen.name) && tf.getBackend() === chosen.name) {
        return E.right(chosen);
      }
      const order: ReadonlyArray<BackendName> = want === 'auto' ? BACKEND_NAMES : [want];
      const reasons: string[] = [];
      for (const name of order) {
        const r = await attempt[name]();
        if (E.isRight(r)) {
          chosen = r.right;
          return r;
        }
        reasons.push(r.left.message);
      }
      return E.left(backendError(`could not initialise backend ${want}: ${reasons.join('; ')}`));
    }),
  );

/**
 * Chooses the backend and prints which one it got (`[score-sde] backend: …`) to stderr; throws on failure.
 * For the top of every command-line program.
 * @category constructors
 */
export const initBackend = async (opts: { readonly prefer?: BackendChoice; readonly quiet?: boolean } = {}): Promise<BackendInfo> => {
  const r = await chooseBackend(opts.prefer)();
  if (E.isLeft(r)) throw new Error(r.left.message);
  if (opts.quiet !== true) process.stderr.write(`[score-sde] backend: ${describeBackend(r.right)}\n`);
  return r.right;
};
