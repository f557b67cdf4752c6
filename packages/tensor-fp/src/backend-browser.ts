/**
 * The backend chooser of a web page: the first of webgpu → webgl → wasm → cpu that works (or the one a page asks for,
 * e.g. `?backend=wasm`), and why the ones before it were not taken.
 * - `webgpu`: `@tensorflow/tfjs-backend-webgpu`, where the browser has WebGPU and an adapter;
 * - `webgl`: tfjs' WebGL backend, taken only where it renders float32 textures (a float16-only context would change
 *   the samples far beyond float32 rounding) and, when choosing automatically, only on a GPU: a software renderer
 *   (SwiftShader, llvmpipe: a browser without a usable GPU) is many times slower than wasm, so `auto` skips it;
 * - `wasm`: `@tensorflow/tfjs-backend-wasm` with its binaries served by the site (`wasmPaths`), SIMD where the
 *   browser has it, and threaded when the page is cross-origin isolated (SharedArrayBuffer); the project's fused
 *   kernels when the site gives their binary;
 * - `cpu`: plain JavaScript.
 * Runs on any host (it names no Node global), but only a browser has the first three.
 *
 * @module backend-browser
 */
import * as E from 'fp-ts/Either';
import '@tensorflow/tfjs-backend-webgpu';
import { setWasmPaths, setThreadsCount, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf';
import { type FusedBinary, prepareFusedKernels, fusedKernelsFailure } from './fused-kernels';
import {
  type BackendError,
  type BackendInfo,
  type BrowserBackendChoice,
  type BrowserBackendName,
  BROWSER_BACKEND_CHOICES,
  BROWSER_BACKEND_NAMES,
  backendError,
  chooseAmong,
  chosenBackend,
  tryCpu,
} from './backend';

/** Where the wasm backend finds what the site serves. @category model */
export interface BrowserBackendOptions {
  /** URL prefix (ending in `/`) of the wasm backend's `.wasm` files. */
  readonly wasmPaths: string;
  /** The fused kernels' binary (the site's); absent: tfjs' own ops only. */
  readonly fusedKernels?: FusedBinary;
  /** Threads of the wasm backend on a cross-origin isolated page (default: the browser's logical cores, at most 8). */
  readonly threads?: number;
}

interface GpuNavigator {
  readonly gpu?: { requestAdapter(): Promise<unknown> };
  readonly hardwareConcurrency?: number;
}

const browserNavigator = (): GpuNavigator | undefined => (globalThis as { navigator?: GpuNavigator }).navigator;

/** Whether SharedArrayBuffer can be used (a cross-origin isolated page), which the threaded wasm build needs. */
const isolated = (): boolean => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true && typeof SharedArrayBuffer !== 'undefined';

const caught = async (name: string, f: () => Promise<E.Either<BackendError, BackendInfo<BrowserBackendName>>>): Promise<E.Either<BackendError, BackendInfo<BrowserBackendName>>> => {
  try {
    return await f();
  } catch (e) {
    return E.left(backendError(`${name}: ${(e as Error).message}`));
  }
};

const tryWebgpu = (): Promise<E.Either<BackendError, BackendInfo<BrowserBackendName>>> =>
  caught('webgpu', async () => {
    const gpu = browserNavigator()?.gpu;
    if (gpu === undefined) return E.left(backendError('webgpu: this browser has no WebGPU'));
    if ((await gpu.requestAdapter()) === null) return E.left(backendError('webgpu: no adapter'));
    if (!(await tf.setBackend('webgpu'))) return E.left(backendError('webgpu: failed to initialise'));
    await tf.ready();
    return E.right({ name: 'webgpu' });
  });

/** The few WebGL calls that read the renderer's name. */
interface GlContext {
  getExtension(name: 'WEBGL_debug_renderer_info'): { readonly UNMASKED_RENDERER_WEBGL: number } | null;
  getParameter(p: number): unknown;
}

/** The name of the renderer behind tfjs' WebGL backend ('' when the browser does not say). */
const webglRenderer = (): string => {
  const gl = (tf.backend() as unknown as { gpgpu?: { gl?: GlContext } }).gpgpu?.gl;
  const info = gl?.getExtension('WEBGL_debug_renderer_info');
  return gl !== undefined && info !== null && info !== undefined ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : '';
};

/** Whether a WebGL renderer is a CPU emulation of a GPU. @category individual backends */
export const isSoftwareRenderer = (renderer: string): boolean => /swiftshader|llvmpipe|softpipe|software/i.test(renderer);

const tryWebgl = (onlyHardware: boolean): Promise<E.Either<BackendError, BackendInfo<BrowserBackendName>>> =>
  caught('webgl', async () => {
    if (!(await tf.setBackend('webgl'))) return E.left(backendError('webgl: no WebGL context'));
    await tf.ready();
    if (!tf.env().getBool('WEBGL_RENDER_FLOAT32_CAPABLE')) return E.left(backendError('webgl: renders float16 only'));
    const renderer = webglRenderer();
    if (onlyHardware && isSoftwareRenderer(renderer)) {
      tf.removeBackend('webgl');
      return E.left(backendError(`webgl: a software renderer (${renderer.slice(0, 80)}), slower than wasm`));
    }
    return E.right({ name: 'webgl', webglVersion: tf.env().getNumber('WEBGL_VERSION') });
  });

/**
 * Runs `f` while `navigator.hardwareConcurrency` reports 2n: tfjs' wasm module caps XNNPACK's pool at half the logical
 * cores (it assumes two hyper-threads per core), so on a 2-core machine it would use 1 thread (as in Node:
 * wasm-threads.ts).
 */
const withReportedCores = async <A>(n: number, f: () => Promise<A>): Promise<A> => {
  const nav = browserNavigator();
  if (nav === undefined) return f();
  Object.defineProperty(nav, 'hardwareConcurrency', { value: 2 * n, configurable: true });
  try {
    return await f();
  } finally {
    delete (nav as { hardwareConcurrency?: number }).hardwareConcurrency;
  }
};

const tryWasm = (o: BrowserBackendOptions): Promise<E.Either<BackendError, BackendInfo<BrowserBackendName>>> =>
  caught('wasm', async () => {
    setWasmPaths(o.wasmPaths);
    const wanted = Math.min(8, Math.max(1, o.threads ?? browserNavigator()?.hardwareConcurrency ?? 1));
    if (isolated()) setThreadsCount(wanted);
    if (!(await withReportedCores(wanted, () => tf.setBackend('wasm')))) return E.left(backendError('wasm: failed to initialise'));
    await tf.ready();
    if (o.fusedKernels !== undefined && !(await prepareFusedKernels(o.fusedKernels))) console.warn(`[score-sde] fused wasm kernels unavailable (${fusedKernelsFailure()}); using tfjs ops`);
    const threaded = (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) === true;
    return E.right({ name: 'wasm', simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT'), threads: threaded ? getThreadsCount() : 1 });
  });

/** The backend a page chose, if any. @category queries */
export const currentBrowserBackend = (): BackendInfo<BrowserBackendName> | undefined => {
  const b = chosenBackend();
  return b !== undefined && (BROWSER_BACKEND_NAMES as ReadonlyArray<string>).includes(b.name) ? (b as BackendInfo<BrowserBackendName>) : undefined;
};

/** Parses a page's backend request (`?backend=`): absent or empty means `auto`. @category parsing */
export const parseBrowserBackend = (raw: string | null | undefined): E.Either<BackendError, BrowserBackendChoice> => {
  const v = (raw ?? '').trim().toLowerCase();
  if (v === '') return E.right('auto');
  return (BROWSER_BACKEND_CHOICES as ReadonlyArray<string>).includes(v)
    ? E.right(v as BrowserBackendChoice)
    : E.left(backendError(`backend: expected one of ${BROWSER_BACKEND_CHOICES.join('|')}, got "${raw}"`));
};

/**
 * Chooses and initialises a browser backend: `prefer`, else the first of webgpu → webgl (on a GPU) → wasm → cpu that works. The
 * result names the backend (and, for `auto`, why the ones before it were skipped); Left with every reason when none
 * works.
 * @category constructors
 */
export const chooseBrowserBackend = (prefer: BrowserBackendChoice, o: BrowserBackendOptions): Promise<E.Either<BackendError, BackendInfo<BrowserBackendName>>> => {
  const attempt: Record<BrowserBackendName, () => Promise<E.Either<BackendError, BackendInfo<BrowserBackendName>>>> = {
    webgpu: tryWebgpu,
    webgl: () => tryWebgl(prefer === 'auto'),
    wasm: () => tryWasm(o),
    cpu: tryCpu,
  };
  return chooseAmong(prefer, BROWSER_BACKEND_NAMES, (name) => attempt[name](), true);
};
