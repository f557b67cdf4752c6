/**
 * Choosing the TensorFlow.js backend: the vocabulary, the description every program prints, and the one loop that
 * tries backends in order and keeps the first that works. The hosts' own lists live beside it:
 * - Node (`backend-node.ts`, the package index): `tensorflow` (tfjs-node, if the user installed it) → `wasm` (its
 *   binaries from `node_modules`, threaded through `wasm-threads.ts`) → `cpu`; `SCORE_SDE_BACKEND` or `--backend`
 *   forces one;
 * - a browser (`backend-browser.ts`, the `browser` entry): `webgpu` → `webgl` → `wasm` (its binaries from the site)
 *   → `cpu`.
 *
 * @module backend
 */
import * as E from 'fp-ts/Either';
import '@tensorflow/tfjs-backend-cpu';
import { tf } from './tf';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** The backends this project knows how to choose in Node, in the order `auto` tries them. @category model */
export const BACKEND_NAMES = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What a user may ask for (`--backend`, `SCORE_SDE_BACKEND`): a backend, or `auto` (the first that works). @category model */
export const BACKEND_CHOICES = ['auto', ...BACKEND_NAMES] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** The backends of a browser, in the order `auto` tries them. @category model */
export const BROWSER_BACKEND_NAMES = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BrowserBackendName = (typeof BROWSER_BACKEND_NAMES)[number];

/** What a page may ask for (`?backend=`): a browser backend, or `auto`. @category model */
export const BROWSER_BACKEND_CHOICES = ['auto', ...BROWSER_BACKEND_NAMES] as const;
export type BrowserBackendChoice = (typeof BROWSER_BACKEND_CHOICES)[number];

/** Any backend a chooser of this project can get (Node's or a browser's). @category model */
export type AnyBackendName = BackendName | BrowserBackendName;

/** What the chooser got: the backend (Node's by default), and its capabilities where they matter. @category model */
export interface BackendInfo<N extends AnyBackendName = BackendName> {
  readonly name: N;
  /** For `tensorflow`: which package supplied it. */
  readonly provider?: string;
  /** For `wasm`: whether the SIMD build is in use. */
  readonly simd?: boolean;
  /** For `wasm`: the number of threads the kernels may use. */
  readonly threads?: number;
  /** For `webgl`: the WebGL version (1 or 2). */
  readonly webglVersion?: number;
  /** Why the backends tried before this one were not taken (a browser's `auto`). */
  readonly skipped?: ReadonlyArray<string>;
}

/** Why a backend could not be had. @category model */
export interface BackendError {
  readonly _tag: 'BackendError';
  readonly message: string;
}

/** A {@link BackendError}. @category constructors */
export const backendError = (message: string): BackendError => ({ _tag: 'BackendError', message });

/** Parses `SCORE_SDE_BACKEND`: undefined or empty means "choose automatically". @category parsing */
export const parseBackendName = (raw: string | undefined): E.Either<BackendError, BackendChoice> => {
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'auto') return E.right('auto');
  const v = raw.trim().toLowerCase();
  return (BACKEND_NAMES as ReadonlyArray<string>).includes(v)
    ? E.right(v as BackendName)
    : E.left(backendError(`SCORE_SDE_BACKEND: expected one of auto|${BACKEND_NAMES.join('|')}, got "${raw}"`));
};

// -------------------------------------------------------------------------------------
// display
// -------------------------------------------------------------------------------------

/** A one-line description, e.g. `wasm (SIMD, 1 thread)`, `webgl (WebGL 2)`. @category display */
export const describeBackend = (b: BackendInfo<AnyBackendName>): string => {
  switch (b.name) {
    case 'wasm':
      return `wasm (${b.simd === true ? 'SIMD' : 'no SIMD'}, ${b.threads ?? 1} thread${(b.threads ?? 1) === 1 ? '' : 's'})`;
    case 'tensorflow':
      return `tensorflow (${b.provider ?? 'tfjs-node'})`;
    case 'webgl':
      return `webgl (WebGL ${b.webglVersion ?? '?'})`;
    case 'webgpu':
      return 'webgpu';
    case 'cpu':
      return 'cpu (plain JavaScript)';
  }
};

// -------------------------------------------------------------------------------------
// the chooser
// -------------------------------------------------------------------------------------

/** One backend's attempt: its description, or why it could not be had. @category model */
export type BackendAttempt<N extends AnyBackendName = BackendName> = () => Promise<E.Either<BackendError, BackendInfo<N>>>;

let chosen: BackendInfo<AnyBackendName> | undefined;

/** The backend chosen so far by either host's chooser, if any. @category queries */
export const chosenBackend = (): BackendInfo<AnyBackendName> | undefined => chosen;

/**
 * Tries `order` with `attempt` and keeps the first backend that works (the one chosen before, when it is still active
 * and `want` is `auto` or its name). Left with every reason when none works. Shared by the hosts' choosers; with
 * `recordSkipped`, the result says why the backends before it were not taken.
 * @category constructors
 */
export const chooseAmong = async <N extends AnyBackendName>(
  want: 'auto' | N,
  order: ReadonlyArray<N>,
  attempt: (name: N) => Promise<E.Either<BackendError, BackendInfo<N>>>,
  recordSkipped = false,
): Promise<E.Either<BackendError, BackendInfo<N>>> => {
  const before = chosen;
  if (before !== undefined && (order as ReadonlyArray<string>).includes(before.name) && (want === 'auto' || want === before.name) && tf.getBackend() === before.name)
    return E.right(before as BackendInfo<N>);
  const reasons: string[] = [];
  for (const name of want === 'auto' ? order : [want]) {
    const r = await attempt(name);
    if (E.isRight(r)) {
      const got: BackendInfo<N> = recordSkipped && reasons.length > 0 ? { ...r.right, skipped: reasons } : r.right;
      chosen = got;
      return E.right(got);
    }
    reasons.push(r.left.message);
  }
  return E.left(backendError(`could not initialise backend ${want}: ${reasons.join('; ')}`));
};

/** The cpu backend (plain JavaScript), available everywhere. @category individual backends */
export const tryCpu: BackendAttempt<'cpu'> = async () =>
  (await tf.setBackend('cpu')) ? (await tf.ready(), E.right({ name: 'cpu' })) : E.left(backendError('cpu backend failed'));
