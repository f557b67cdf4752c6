/**
 * Fused kernels of our own for the wasm backend: SIMD WebAssembly (`fused-kernels.wat`, assembled at start-up with
 * the `wabt` package) that runs over tfjs-backend-wasm's own heap, registered as tfjs kernels of the wasm backend.
 *
 * Why (issue 11): at the default MNIST width the ScoreNet's element-wise work is many small passes, each a kernel
 * call with its bookkeeping and a freshly allocated output; GroupNorm + bias + swish took ~22 kernels forward and
 * ~30 backward per block. Here each direction is one kernel, two to three passes over the activations:
 * - `ScoreSdeGroupNorm`: x [B, H, W, C] ↦ channel means m[b, c] and centred second moments (two passes), the group
 *   coefficients r = 1/√(σ_g² + ε), k = (bias − μ_g) r, scale = γ r, shift = γ k + β, then y = x·scale + shift and
 *   z = y·σ(y) if `swish` (one pass);
 * - `ScoreSdeGroupNormGrad`: dy = dz·(σ + z(1 − σ)) through the swish (y recomputed from x: nothing but x and the
 *   [B, C] coefficients is saved), S1 = Σ_hw dy and S3 = Σ_hw dy·x (one pass), the coefficients A, B, C and
 *   dbias = Σ_hw dx, then dx = dy·A + x·B + C (one pass, in place).
 * σ is 1/(1 + e^{−y}) with e^x by Cephes' expf polynomial (relative error ~1e-7, like the backend's own Sigmoid).
 * Every kernel is sequential per sample, so sample b's results never depend on the batch — except
 * `ScoreSdeConvFilterGrad`, a conv's filter gradient df[p,q,c,o] = Σ_{b,i,j} x̄[b, s·i+p, s·j+q, c]·dy[b,i,j,o] (a sum
 * over the batch) straight from NHWC x and dy, where XNNPACK needed transposes or an im2col copy and ran a badly shaped
 * conv or GEMM ({@link convFilterGradient}; conv.ts picks it per geometry). Its summation order is fixed, so its result
 * is deterministic.
 * Once ready, the module also serves some of tfjs' own kernels on wasm ({@link FUSED_OVERRIDES}, issue 11), each with the
 * bits of the kernel it replaces: `Concat` and `SplitV` in one pass of row copies (`rows_copy`; tfjs copied row by row in
 * JavaScript, wasm-kernels.ts's replacement made two passes), and the small float32 ops XNNPACK splits over its thread
 * pool however little work they hold — broadcasting `Add`/`Sub`/`Multiply`/`RealDiv` (`broadcast_op`) and matrix products
 * up to 2^20 multiply-adds (`matmul_seq`, XNNPACK's summation order) — on the calling thread, where a call used to wait
 * for a pool worker to wake (0.3–1.5 ms on a busy 2-core machine against 5–80 µs of work) — and, where the kernel thread
 * can run, `Conv2D` itself (`conv_forward`: 2 pixels × 16 outputs per SIMD micro-kernel, in XNNPACK's summation order,
 * split by images between the two threads; ScoreNet's layers at 40–50 GMAC/s against XNNPACK's 10–35, and XNNPACK's
 * worker no longer spins between calls beside our kernels) — and with it the strided transposed conv (`ScoreSdeTransposeConv`: its s² sub-pixel
 * phases summed by the same micro-kernels and stored straight into their interleaved places, one call instead of s² convs
 * and an interleaving pass).
 *
 * The module imports the backend's WebAssembly.Memory (shared in the threaded build), so a kernel reads and writes
 * tensors in place by their heap offsets, and sees the heap grow.
 *
 * A second thread (issue 11): XNNPACK's convs use the threaded build's threads, our kernels ran on the main thread alone.
 * Over a shared memory, a host-registered {@link KernelThread} (Node: `fused-thread.ts`, a worker with its own instance of
 * the module — the module has no globals and no scratch memory of its own, so two instances share nothing but the
 * tensors) takes one part of each large call: group norm forward and backward by samples (all three passes per sample
 * in one hand-over), the filter gradient by rows of df (or by outputs), convolutions by images, Adam + EMA by elements. Only independent outputs
 * are split, each computed by exactly the same operations as on one thread, so results are bit-identical with 1 or 2
 * threads (the tests compare the bits). Small calls, a browser page (no blocking wait on its main thread), a
 * single-threaded backend, or a failed worker keep everything on the calling thread; so does a machine whose cores are
 * busy, where the two parts would run one after the other (splitting pauses while it does not pay, see `judge`).
 *
 * {@link prepareFusedKernels} instantiates the module and registers everything once the wasm backend is up (`initBackend`
 * calls it); {@link fusedKernelsReady} says whether they can be used — on other backends, or if anything failed, callers keep their tfjs-op formulation (the reference
 * the tests compare these kernels with, on the cpu backend). The binary comes from the host: in Node, assembled from
 * the text at start-up (`fused-wat.ts`, which registers itself as the default); in a browser, the two binaries the site
 * build assembled the same way, fetched from the site (wabt does not ship to the page).
 *
 * @module fused-kernels
 */
import { tf } from './tf';
import { diagnostic } from './env';

type Info = tf.TensorInfo;

/** The few WebAssembly JS-API types used here (the project's TypeScript lib has no DOM/WebAssembly typings). */
interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WebAssemblyApi {
  instantiate(bytes: Uint8Array, imports: Record<string, Record<string, unknown>>): Promise<{ module: unknown; instance: { exports: Record<string, unknown> } }>;
}
const wasmApi = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

interface WasmBackend {
  getMemoryOffset(dataId: unknown): number;
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  wasm: { wasmMemory?: WasmMemory; asm?: { memory?: WasmMemory } };
}

/** The exports of fused-kernels.wat (pointers are byte offsets into the backend's heap). */
interface FusedExports {
  gn_stats(x: number, b: number, hw: number, c: number, mc: number, vc: number): void;
  gn_coeffs(mc: number, vc: number, bias: number, hasBias: number, gamma: number, beta: number, b: number, c: number, groups: number, eps: number, r: number, k: number, scale: number, shift: number): void;
  gn_apply(x: number, b: number, hw: number, c: number, scale: number, shift: number, swish: number, out: number): void;
  gn_backward_sums(dz: number, x: number, b: number, hw: number, c: number, scale: number, shift: number, swish: number, dy: number, s1: number, s3: number): void;
  gn_backward_coeffs(s1: number, s3: number, r: number, k: number, mc: number, gamma: number, b: number, c: number, groups: number, n: number, s2: number, ca: number, cb: number, cc: number, dbias: number): void;
  gn_backward_dx(dy: number, x: number, b: number, hw: number, c: number, ca: number, cb: number, cc: number, dx: number): void;
  sum_squares(g: number, n: number): number;
  normals_rows(keys: number, b: number, n: number, out: number): void;
  scale_add(x: number, z: number, c: number, n: number, out: number): void;
  euler_update(x: number, y: number, a: number, b: number, h: number, n: number, out: number): void;
  euler_update_noise(x: number, y: number, a: number, b: number, h: number, z: number, c: number, n: number, out: number): void;
  heun_error(x: number, y1: number, x1: number, y2: number, z: number, a1: number, b1: number, a2: number, b2: number, h: number, c: number,
    rtol: number, atol: number, n: number, ox2: number, om2: number): number;
  langevin_update(x: number, g: number, z: number, b: number, n: number, perSample: number, snr: number, twoAlpha: number, norms: number, out: number, om: number): void;
  interleave_phases(ptrs: number, s: number, b: number, rows: number, cols: number, cz: number, hout: number, wout: number, top: number, left: number, out: number): void;
  overlap_add(t: number, b: number, hin: number, win: number, kh: number, kw: number, cz: number, hout: number, wout: number, top: number, left: number, z: number): void;
  conv_filter_grad(x: number, dy: number, b: number, h: number, w: number, c: number, ho: number, wo: number, o: number, kh: number, kw: number, s: number,
    top: number, left: number, chunk: number, df: number, r0: number, r1: number, o0: number, o1: number): void;
  conv_forward(x: number, f: number, h: number, w: number, c: number, ho: number, wo: number, o: number, kh: number, kw: number, s: number, top: number, left: number,
    out: number, b0: number, b1: number): void;
  conv_forward_window(x: number, f: number, h: number, w: number, c: number, o: number, kh: number, kw: number, s: number, top: number, left: number,
    out: number, b0: number, b1: number, i0: number, i1: number, j0: number, j1: number, ops: number, ors: number, obs: number): void;
  rows_copy(parts: number, k: number, outer: number, big: number, into: number): void;
  matmul_seq(a: number, b: number, m: number, k: number, n: number, out: number): void;
  broadcast_op(op: number, a: number, aM: number, aN: number, b: number, bM: number, bN: number, m: number, n: number, out: number): void;
  adam_ema(g: number, p: number, m: number, v: number, e: number, n: number, clip: number, useClip: number, b1: number, c1: number, b2: number, c2: number,
    bc2: number, eps: number, step: number, d: number, cd: number, hasEma: number, op: number, om: number, ov: number, oe: number): void;
}

let exportsOf: FusedExports | undefined;
let failure: string | undefined;

/** The kernel names registered for the wasm backend. @category kernels */
export const FUSED_KERNELS = ['ScoreSdeGroupNorm', 'ScoreSdeGroupNormGrad', 'ScoreSdeAdamEma', 'ScoreSdeNormals', 'ScoreSdeOverlapAdd', 'ScoreSdeInterleavePhases', 'ScoreSdeTransposeConv', 'ScoreSdeConvFilterGrad', 'ScoreSdeEulerUpdate', 'ScoreSdeScaleAdd', 'ScoreSdeHeunError', 'ScoreSdeLangevin'] as const;

/** Whether the fused kernels can run now: assembled, and the wasm backend active. @category queries */
export const fusedKernelsReady = (): boolean => exportsOf !== undefined && tf.getBackend() === 'wasm';

/** Why the fused kernels are not available (undefined if they are, or were never asked for). @category queries */
export const fusedKernelsFailure = (): string | undefined => failure;

const backendMemory = (backend: WasmBackend): WasmMemory | undefined => backend.wasm.wasmMemory ?? backend.wasm.asm?.memory;

/**
 * The fused kernels' WebAssembly binary, with its memory import declared like the backend's memory (`shared`: the
 * threaded build's shared memory, which needs a maximum).
 * @category setup
 */
export type FusedBinary = (shared: boolean) => Promise<Uint8Array>;

let defaultBinary: FusedBinary | undefined;

/** Registers where {@link prepareFusedKernels} gets the binary when it is given none (Node: `fused-wat.ts`). @category setup */
export const registerFusedBinary = (binary: FusedBinary): void => {
  defaultBinary = binary;
};

// -------------------------------------------------------------------------------------
// kernels
// -------------------------------------------------------------------------------------

interface WasmBackendData extends WasmBackend {
  disposeData(dataId: unknown): boolean;
}

type KernelFunc = tf.KernelConfig['kernelFunc'];

/** [B, H·W, C] of an NHWC tensor. */
const dims = (x: Info): [number, number, number] => {
  const [b, h, w, c] = x.shape as [number, number, number, number];
  return [b, h * w, c];
};

/**
 * Images per chunk of the fused filter gradient: about 128 output pixels (terms of the sum) per chunk, so the
 * accumulators stay in registers over a long run while the chunk's x and dy stay in cache. At the ScoreNet's levels,
 * batch 64: 1 image of 26×26 or 12×12 outputs, 5 of 5×5, 32 of 2×2, each within 6% of the best of 1–64 images per chunk
 * (single runs, min of 15); one image of 2×2 per chunk was 1.9× slower, the whole batch of 12×12 1.7× slower.
 */
const filterGradChunk = (b: number, ho: number, wo: number): number => Math.max(1, Math.min(b, Math.floor(128 / Math.max(1, ho * wo))));

// -------------------------------------------------------------------------------------
// the kernel thread
// -------------------------------------------------------------------------------------

/** The exports a {@link KernelThread} runs: the group norm passes, the filter gradient, Adam + EMA. @category threads */
export const THREAD_KERNELS = ['gn_stats', 'gn_coeffs', 'gn_apply', 'gn_backward_sums', 'gn_backward_coeffs', 'gn_backward_dx', 'conv_filter_grad', 'conv_forward', 'conv_forward_window', 'matmul_seq', 'overlap_add', 'interleave_phases', 'normals_rows', 'scale_add', 'adam_ema'] as const;

/** One call of an export of the module: its name, then its arguments (heap byte offsets, counts, float32 scalars). @category threads */
export type KernelCall = readonly [(typeof THREAD_KERNELS)[number], ...number[]];

/**
 * A second thread running the fused kernels over the same shared memory (Node: `fused-thread.ts`, a worker with its own
 * instance of the module). {@link splitRun} posts one part of a kernel call, computes the other, then waits.
 * @category threads
 */
export interface KernelThread {
  /** Starts `calls`, in order, on the other thread and returns at once. */
  readonly post: (calls: ReadonlyArray<KernelCall>) => void;
  /** Blocks until the posted calls have run: true, or false if they failed or the thread stopped answering. */
  readonly wait: () => boolean;
  /**
   * Offers a background job of `rows` rows, row r being `call` with its arguments plus r·strides, which the thread runs
   * between requests (one job at a time: {@link KernelThread.settle} it before the next offer). Optional.
   */
  readonly offer?: (call: KernelCall, strides: ReadonlyArray<number>, rows: number) => void;
  /**
   * Runs here, by `runRow`, every row of the offered job the thread has not claimed, waits for the thread's rows, and
   * closes the job; returns how many rows ran here (a row that failed on the thread has the whole job redone here).
   */
  readonly settle?: (runRow: (row: number) => void) => number;
}

/**
 * Starts a {@link KernelThread} over the compiled module (a `WebAssembly.Module`) and the backend's shared memory, or
 * rejects with the reason it cannot. Registered by the host ({@link registerKernelThread}); a browser registers none
 * (its main thread may not block in `Atomics.wait`).
 * @category threads
 */
export type KernelThreadStarter = (wasmModule: unknown, memory: WasmMemory) => Promise<KernelThread>;

/** The kinds of split kernel calls, each with its own size below which it stays on one thread. @category threads */
export type SplitKind = 'groupNorm' | 'filterGradient' | 'conv' | 'matmul' | 'phases' | 'normals' | 'adam';

/**
 * The least work a call needs before it is split between two threads: elements of x for a group norm call, multiply-adds
 * (B·H_o·W_o·k_h·k_w·C·O) for a filter gradient, elements for Adam + EMA. A split costs ~15 µs on this thread plus the
 * sleeping worker's wake-up (~30 µs in all for a call whose parts are tiny), so it pays from calls of ~0.06 ms. Measured
 * (`npm run bench -- filter-gradient --kernel-threads`, batch 64, 2-core machine in a quiet spell, min of 15, ms, 1 → 2
 * threads): group norm forward / backward 1.10 → 0.60 / 1.33 → 0.72 at [64,26,26,16], 0.44 → 0.27 / 0.58 → 0.34 at
 * [64,12,12,32], 0.17 → 0.11 / 0.22 → 0.15 at [64,5,5,64], 0.083 → 0.070 / 0.098 → 0.081 at [64,2,2,128] (32768
 * elements); filter gradient 0.24 → 0.15 at conv1 (6.2 M multiply-adds) up to 3.14 → 1.65 at tconv2 (1.6–1.9×); Adam + EMA
 * 0.065 → 0.068 at 73728 elements, 0.123 → 0.082 at 147456.
 * @category threads
 */
export const KERNEL_THREAD_MIN_WORK: Readonly<Record<SplitKind, number>> = { groupNorm: 32768, filterGradient: 2_000_000, conv: 2_000_000, matmul: 2_000_000, phases: 65536, normals: 16384, adam: 131072 };

let threadStarter: KernelThreadStarter | undefined;
let compiled: { readonly module: unknown; readonly memory: WasmMemory } | undefined;
let thread: { readonly state: 'idle' } | { readonly state: 'starting' } | { readonly state: 'ready'; readonly t: KernelThread } | { readonly state: 'failed'; readonly reason: string } = {
  state: 'idle',
};
let threadWanted = true;
let backgroundWanted = true;
let adaptive = true;
let strikes = 0;
let pause = 0;
let pauses = 0;
let minWork: Readonly<Record<SplitKind, number>> = KERNEL_THREAD_MIN_WORK;
let splits = 0;

/** Registers how this host starts a {@link KernelThread} (Node: `fused-thread.ts`, imported by the package's Node entry). @category threads */
export const registerKernelThread = (starter: KernelThreadStarter): void => {
  threadStarter = starter;
};

/**
 * Starts the kernel thread if this process can have one: the fused kernels ready over a shared memory (the threaded wasm
 * build) and a starter registered. Resolves to whether it runs. Kernel calls start it themselves on first need and stay
 * single-threaded until it is up; tests and benchmarks await this first. Results never depend on it.
 * @category threads
 */
export const startKernelThread = async (): Promise<boolean> => {
  if (thread.state === 'ready') return true;
  if (thread.state === 'failed' || compiled === undefined) return false;
  // Settled for good, silently, when there is nothing to start here (kernel calls then stop asking).
  const starter = threadStarter;
  if (starter === undefined) {
    thread = { state: 'failed', reason: 'no kernel thread on this host (a browser page may not block its main thread)' };
    return false;
  }
  if (!(typeof SharedArrayBuffer !== 'undefined' && compiled.memory.buffer instanceof SharedArrayBuffer)) {
    thread = { state: 'failed', reason: 'the wasm backend is single-threaded (its memory is not shared)' };
    return false;
  }
  if (thread.state === 'idle') {
    thread = { state: 'starting' };
    try {
      thread = { state: 'ready', t: await starter(compiled.module, compiled.memory) };
    } catch (e) {
      thread = { state: 'failed', reason: (e as Error).message };
      diagnostic(`[score-sde] no kernel thread (${thread.reason}); fused kernels on one thread`);
    }
  } else {
    // Someone else is starting it: poll until it is settled.
    while (thread.state === 'starting') await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return thread.state === 'ready';
};

/**
 * Uses the kernel thread (`enabled`, default true) or keeps every call on the calling thread, sets the sizes from which
 * calls are split (`minWork`), whether splitting pauses while it does not pay (`adaptive`, default true; see `judge`),
 * and whether normals may be offered to it ahead of need (`background`, default true; {@link normalsAhead}).
 * Tests split small calls and turn `adaptive` off (a busy machine must not change which calls are split); benchmarks compare
 * 1 and 2 threads in one process. The results are bit-identical either way.
 * @category threads
 */
export const configureKernelThread = (opts: { readonly enabled?: boolean; readonly minWork?: Partial<Record<SplitKind, number>>; readonly adaptive?: boolean; readonly background?: boolean }): void => {
  if (opts.enabled !== undefined) threadWanted = opts.enabled;
  if (opts.background !== undefined) backgroundWanted = opts.background;
  if (opts.adaptive !== undefined) {
    adaptive = opts.adaptive;
    strikes = 0;
    pause = 0;
  }
  if (opts.minWork !== undefined) minWork = { ...minWork, ...opts.minWork };
};

/**
 * The kernel thread's state: running or not, why not, how many calls it has shared so far, and how many times splitting
 * was paused because the other thread did not run alongside (a busy machine).
 * @category threads
 */
export const kernelThreadStatus = (): { readonly running: boolean; readonly reason?: string; readonly splitCalls: number; readonly pauses: number } =>
  thread.state === 'ready'
    ? { running: true, splitCalls: splits, pauses }
    : { running: false, ...(thread.state === 'failed' ? { reason: thread.reason } : {}), splitCalls: splits, pauses };

const runCall = (k: FusedExports, [name, ...args]: KernelCall): void => {
  (k[name] as (...a: number[]) => unknown)(...args);
};

/**
 * Runs `job` over the index range [0, n): as job(0, cut) on the kernel thread and job(cut, n) here at the same time when the
 * thread runs and `work` reaches the kind's minimum, else job(0, n) here. `job` must map disjoint ranges to calls that write
 * disjoint outputs, each output computed exactly as in job(0, n) (per sample, per block of a gradient, per element): so the
 * results are bit-identical. If the thread fails, its part is redone here and the thread is given up.
 */
const splitRun = (k: FusedExports, kind: SplitKind, work: number, n: number, job: (i0: number, i1: number) => ReadonlyArray<KernelCall>, cut = Math.floor(n / 2)): void => {
  if (threadWanted && work >= minWork[kind] && cut > 0 && cut < n) {
    if (thread.state === 'idle') void startKernelThread();
    if (thread.state === 'ready' && pause > 0) pause--;
    else if (thread.state === 'ready') {
      const t = thread.t;
      const theirs = job(0, cut);
      t.post(theirs);
      const t0 = performance.now();
      job(cut, n).forEach((c) => runCall(k, c));
      const t1 = performance.now();
      if (t.wait()) {
        splits++;
        if (adaptive) judge(t1 - t0, performance.now() - t1);
        return;
      }
      thread = { state: 'failed', reason: 'the kernel thread failed or stopped answering' };
      diagnostic(`[score-sde] ${thread.reason}; fused kernels back on one thread`);
      theirs.forEach((c) => runCall(k, c));
      return;
    }
  }
  job(0, n).forEach((c) => runCall(k, c));
};

/**
 * Whether splitting pays here and now. The worker's part is at most as large as ours, so on two free cores we wait for it
 * only its wake-up (~10–50 µs); when other processes keep the cores busy, the two parts run one after the other (seen on
 * the 2-core machine under another process's 2-thread load: two threads took exactly twice as long for twice the work) and
 * we wait about as long as our own part took. A call of at least 0.1 ms whose wait exceeds ¾ of our part (the split then
 * saves under an eighth) is a strike; 8 strikes in a row pause the splitting for the next 256 eligible calls (a dozen
 * training steps), after which it is tried again. The results are the same bits either way.
 */
const judge = (ownMs: number, waitedMs: number): void => {
  if (ownMs < 0.1) return;
  strikes = waitedMs > 0.75 * ownMs ? strikes + 1 : 0;
  if (strikes >= 8) {
    strikes = 0;
    pause = 256;
    pauses++;
  }
};

/** Where the filter gradient's outputs split in two: the middle, on a 16-output block boundary when O is a multiple of 32. */
const outputCut = (o: number): number => (o % 32 === 0 ? o / 2 : 4 * Math.floor(o / 8));

/** Bytes of one sample's rows a group norm chunk may hold, so that its passes find them in cache (L2). */
const GN_CHUNK_BYTES = 192 * 1024;
/** Chunks per part at most: each chunk's three calls take up to 41 of the kernel thread's 256 call slots (the backward pass). */
const GN_MAX_CHUNKS = 6;

/**
 * The calls of samples [s0, s1) as consecutive chunks of samples, each chunk's passes one after the other (`calls(i0,
 * i1)`), so a chunk's rows are read again from cache instead of memory. The per-sample arithmetic is the same whatever
 * the chunks: bit-identical.
 */
const inChunks = (s0: number, s1: number, sampleElems: number, calls: (i0: number, i1: number) => KernelCall[]): KernelCall[] => {
  const n = s1 - s0;
  const size = Math.max(1, Math.floor(GN_CHUNK_BYTES / (4 * sampleElems)), Math.ceil(n / GN_MAX_CHUNKS));
  const out: KernelCall[] = [];
  for (let i = s0; i < s1; i += size) out.push(...calls(i, Math.min(s1, i + size)));
  return out;
};

/** The attributes of the kernels that take a transposed conv's s² sub-pixel phases (some absent: no tap reaches them). */
interface PhaseAttrs {
  readonly s: number;
  readonly present: ReadonlyArray<boolean>;
  readonly rows: number;
  readonly cols: number;
  readonly out: ReadonlyArray<number>;
  readonly top: number;
  readonly left: number;
}

/** Optional tensors as kernel inputs `prefix`0, `prefix`1, … (the present ones, in order), and which were present. */
const presentInputs = (prefix: string, ts: ReadonlyArray<tf.Tensor | undefined>): { readonly inputs: Record<string, tf.Tensor>; readonly present: boolean[] } => {
  const inputs: Record<string, tf.Tensor> = {};
  ts.filter((t): t is tf.Tensor => t !== undefined).forEach((t, i) => (inputs[`${prefix}${i}`] = t));
  return { inputs, present: ts.map((t) => t !== undefined) };
};

/** A kernel's side of {@link presentInputs}: the list back, undefined where a tensor was absent. */
const presentOf = (inputs: Record<string, Info>, prefix: string, present: ReadonlyArray<boolean>): ReadonlyArray<Info | undefined> => {
  let next = 0;
  return present.map((here) => (here ? inputs[`${prefix}${next++}`]! : undefined));
};

const kernels: Readonly<Record<(typeof FUSED_KERNELS)[number], (k: FusedExports) => KernelFunc>> = {
  // (x, γ, β[, bias]) ↦ [z, mc, r, k, scale, shift]: statistics, coefficients, then the affine map (and swish).
  ScoreSdeGroupNorm: (k) => (args) => {
    const { x, gamma, beta, bias } = args.inputs as { x: Info; gamma: Info; beta: Info; bias?: Info };
    const { groups, eps, swish } = args.attrs as { groups: number; eps: number; swish: boolean };
    const backend = args.backend as unknown as WasmBackendData;
    const [b, hw, c] = dims(x);
    const stat = (): Info => backend.makeOutput([b, 1, 1, c], 'float32');
    const [out, mc, vc, r, kk, scale, shift] = [backend.makeOutput([...x.shape], 'float32'), stat(), stat(), stat(), stat(), stat(), stat()];
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    // Samples [i0, i1): every pass is per sample, so the batch splits between two threads with bit-identical results.
    const at = (t: Info, i0: number): number => off(t) + 4 * i0 * c;
    const px = (t: Info, i0: number): number => off(t) + 4 * i0 * hw * c;
    splitRun(k, 'groupNorm', b * hw * c, b, (p0, p1) =>
      inChunks(p0, p1, hw * c, (i0, i1): KernelCall[] => [
        ['gn_stats', px(x, i0), i1 - i0, hw, c, at(mc, i0), at(vc, i0)],
        ['gn_coeffs', at(mc, i0), at(vc, i0), bias === undefined ? 0 : at(bias, i0), bias === undefined ? 0 : 1, off(gamma), off(beta), i1 - i0, c, groups, eps,
          at(r, i0), at(kk, i0), at(scale, i0), at(shift, i0)],
        ['gn_apply', px(x, i0), i1 - i0, hw, c, at(scale, i0), at(shift, i0), swish ? 1 : 0, px(out, i0)],
      ]),
    );
    backend.disposeData(vc.dataId);
    return [out, mc, r, kk, scale, shift];
  },
  // (dz, x, γ, mc, r, k, scale, shift) ↦ [dx, S1, s2, dbias]: dy and its sums, the coefficients, dx (in place of dy).
  ScoreSdeGroupNormGrad: (k) => (args) => {
    const { dz, x, gamma, mc, r, k: kk, scale, shift } = args.inputs as Record<'dz' | 'x' | 'gamma' | 'mc' | 'r' | 'k' | 'scale' | 'shift', Info>;
    const { groups, swish } = args.attrs as { groups: number; swish: boolean };
    const backend = args.backend as unknown as WasmBackendData;
    const [b, hw, c] = dims(x);
    const stat = (): Info => backend.makeOutput([b, 1, 1, c], 'float32');
    const [dx, s1, s2, dbias, s3, ca, cb, cc] = [backend.makeOutput([...x.shape], 'float32'), stat(), stat(), stat(), stat(), stat(), stat(), stat()];
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    const at = (t: Info, i0: number): number => off(t) + 4 * i0 * c;
    const px = (t: Info, i0: number): number => off(t) + 4 * i0 * hw * c;
    splitRun(k, 'groupNorm', b * hw * c, b, (p0, p1) =>
      inChunks(p0, p1, hw * c, (i0, i1): KernelCall[] => [
        ['gn_backward_sums', px(dz, i0), px(x, i0), i1 - i0, hw, c, at(scale, i0), at(shift, i0), swish ? 1 : 0, px(dx, i0), at(s1, i0), at(s3, i0)],
        ['gn_backward_coeffs', at(s1, i0), at(s3, i0), at(r, i0), at(kk, i0), at(mc, i0), off(gamma), i1 - i0, c, groups, hw, at(s2, i0), at(ca, i0), at(cb, i0), at(cc, i0),
          at(dbias, i0)],
        ['gn_backward_dx', px(dx, i0), px(x, i0), i1 - i0, hw, c, at(ca, i0), at(cb, i0), at(cc, i0), px(dx, i0)],
      ]),
    );
    [s3, ca, cb, cc].forEach((t) => backend.disposeData(t.dataId));
    return [dx, s1, s2, dbias];
  },
  // T [B, hIn, wIn, kh·kw·cz] ↦ z [B, hOut, wOut, cz] (attrs kh, kw, hOut, wOut, top, left): see overlapAdd.
  ScoreSdeOverlapAdd: (k) => (args) => {
    const { t } = args.inputs as { t: Info };
    const a = args.attrs as { kh: number; kw: number; hOut: number; wOut: number; top: number; left: number };
    const backend = args.backend as unknown as WasmBackendData;
    const [b, hin, win, taps] = t.shape as [number, number, number, number];
    const cz = taps / (a.kh * a.kw);
    const z = backend.makeOutput([b, a.hOut, a.wOut, cz], 'float32');
    // An empty output (e.g. an empty batch) is left alone: the kernel's loops run at least once, and would write past it.
    if (b * a.hOut * a.wOut * cz === 0) return z;
    const [pt, pz] = [backend.getMemoryOffset(t.dataId), backend.getMemoryOffset(z.dataId)];
    // images [b0, b1): the same loops on their own parts of T and z (split with the kernel thread; each output summed alike)
    splitRun(k, 'phases', b * a.hOut * a.wOut * taps, b, (b0, b1) => [
      ['overlap_add', pt + 4 * b0 * hin * win * taps, b1 - b0, hin, win, a.kh, a.kw, cz, a.hOut, a.wOut, a.top, a.left, pz + 4 * b0 * a.hOut * a.wOut * cz],
    ]);
    return z;
  },
  // the s² phases (inputs p0 … p{s²−1}, a missing one = zeros) ↦ z [B, hOut, wOut, cz] (attrs: s, present, shape, top, left).
  ScoreSdeInterleavePhases: (k) => (args) => {
    const a = args.attrs as unknown as PhaseAttrs;
    const backend = args.backend as unknown as WasmBackendData & { typedArrayFromHeap(t: Info): Int32Array };
    const [b, hOut, wOut, cz] = a.out as [number, number, number, number];
    const z = backend.makeOutput([b, hOut, wOut, cz], 'float32');
    // An empty output (e.g. an empty batch) is left alone: the kernel's loops run at least once, and would write past it.
    if (b * hOut * wOut * cz === 0) return z;
    const ptrs = presentOf(args.inputs as Record<string, Info>, 'p', a.present).map((p) => (p === undefined ? 0 : backend.getMemoryOffset(p.dataId)));
    // images [b0, b1): a table of the phases' parts from image b0 (0 stays 0: a missing phase), and out's part
    const tables: Info[] = [];
    const job = (b0: number, b1: number): KernelCall[] => {
      const table = backend.makeOutput([a.s * a.s], 'int32');
      tables.push(table);
      backend.typedArrayFromHeap(table).set(ptrs.map((p) => (p === 0 ? 0 : p + 4 * b0 * a.rows * a.cols * cz)));
      return [['interleave_phases', backend.getMemoryOffset(table.dataId), a.s, b1 - b0, a.rows, a.cols, cz, hOut, wOut, a.top, a.left, backend.getMemoryOffset(z.dataId) + 4 * b0 * hOut * wOut * cz]];
    };
    splitRun(k, 'phases', b * hOut * wOut * cz, b, job);
    tables.forEach((t) => backend.disposeData(t.dataId));
    return z;
  },
  // (x, the present phase filters g0 …) ↦ z [B, hOut, wOut, cz] (attrs s, present, rows, cols, out, top, left): see
  // transposeConv. Phase (r, q) is a stride-1 conv of x padded by (t_h − 1, t_w − 1) before, rows × cols outputs, of which
  // the (a, a') with U = s·a + r − top, V = s·a' + q − left inside the output are stored at z[b, U, V]: by `conv_window`,
  // straight into place, all phases in one hand-over to the kernel thread (split by images).
  ScoreSdeTransposeConv: (k) => (args) => {
    const inputs = args.inputs as Record<string, Info>;
    const a = args.attrs as unknown as PhaseAttrs;
    const backend = args.backend as unknown as WasmBackendData & { typedArrayFromHeap(t: Info): Float32Array };
    const x = inputs['x']!;
    const [b, h, w, c] = x.shape as [number, number, number, number];
    const [, hOut, wOut, cz] = a.out as [number, number, number, number];
    const z = backend.makeOutput([b, hOut, wOut, cz], 'float32');
    if (b * hOut * wOut * cz === 0) return z;
    // a phase no tap reaches leaves its pixels zero
    if (a.present.some((here) => !here)) backend.typedArrayFromHeap(z).fill(0);
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    // the phase rows a whose output row s·a + r − top lies in [0, n): [⌈(top − r)/s⌉, ⌈(top + n − r)/s⌉) ∩ [0, rows)
    const window = (r: number, top: number, n: number, rows: number): [number, number] => [
      Math.max(0, Math.ceil((top - r) / a.s)),
      Math.min(rows, Math.ceil((top + n - r) / a.s)),
    ];
    const [ops, ors, obs] = [4 * a.s * cz, 4 * a.s * wOut * cz, 4 * hOut * wOut * cz];
    const phases = presentOf(inputs, 'g', a.present).flatMap((g, i) => {
      if (g === undefined) return [];
      const [th, tw] = g.shape as [number, number];
      const [r, q] = [Math.floor(i / a.s), i % a.s];
      const [i0, i1] = window(r, a.top, hOut, a.rows);
      const [j0, j1] = window(q, a.left, wOut, a.cols);
      if (i0 >= i1 || j0 >= j1) return [];
      // out + 4·((s·a + r − top)·wOut + (s·a' + q − left))·cz for (a, a') = (i, j): the base of (0, 0), maybe before z
      const base = off(z) + 4 * ((r - a.top) * wOut + (q - a.left)) * cz;
      return [{ g: off(g), th, tw, i0, i1, j0, j1, base }];
    });
    const work = b * a.rows * a.cols * c * cz * phases.reduce((n, p) => n + p.th * p.tw, 0);
    splitRun(k, 'conv', work, b, (b0, b1) =>
      phases.map((p): KernelCall => ['conv_forward_window', off(x), p.g, h, w, c, cz, p.th, p.tw, 1, p.th - 1, p.tw - 1, p.base, b0, b1, p.i0, p.i1, p.j0, p.j1, ops, ors, obs]),
    );
    return z;
  },
  // (x [B, H, W, C], dy [B, H_o, W_o, O]) ↦ df [kh, kw, C, O] (attrs kh, kw, s, top, left): see convFilterGradient.
  ScoreSdeConvFilterGrad: (k) => (args) => {
    const { x, dy } = args.inputs as { x: Info; dy: Info };
    const a = args.attrs as { kh: number; kw: number; s: number; top: number; left: number };
    const backend = args.backend as unknown as WasmBackendData & { typedArrayFromHeap(t: Info): Float32Array };
    const [b, h, w, c] = x.shape as [number, number, number, number];
    const [, ho, wo, o] = dy.shape as [number, number, number, number];
    const df = backend.makeOutput([a.kh, a.kw, c, o], 'float32');
    if (a.kh * a.kw * c * o === 0) return df;
    // No terms (an empty batch or output): df = 0. The kernel's loops run at least once, so it is not called.
    if (b * ho * wo === 0) {
      backend.typedArrayFromHeap(df).fill(0);
      return df;
    }
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    const call = (r0: number, r1: number, o0: number, o1: number): KernelCall =>
      ['conv_filter_grad', off(x), off(dy), b, h, w, c, ho, wo, o, a.kh, a.kw, a.s, a.top, a.left, filterGradChunk(b, ho, wo), off(df), r0, r1, o0, o1];
    // Two disjoint blocks of df, each element's sum unchanged (see the kernel): by rows (an even count first, so the worker's
    // rows pair up), or by outputs when there is a single row. (Splitting O = 16 in two halves of 8 leaves each thread the
    // kernel's narrow 4-output loops: 2.3× slower than one thread at conv1.)
    const rows = a.kh * a.kw * c;
    const byRows = rows >= 2;
    const work = b * ho * wo * rows * o;
    if (byRows) splitRun(k, 'filterGradient', work, rows, (r0, r1) => [call(r0, r1, 0, o)], 2 * Math.floor(rows / 4));
    else splitRun(k, 'filterGradient', work, o, (o0, o1) => [call(0, rows, o0, o1)], outputCut(o));
    return df;
  },
  // () ↦ z [B, ...shape]: row b = the normals of key b (attrs: keys as 2B uint32 words, shape); or x ↦ x + c·z (attr
  // scale = c): z's rows in place, then the scaled sum over them.
  ScoreSdeNormals: (k) => (args) => {
    const { keys, shape, scale } = args.attrs as { keys: ReadonlyArray<number>; shape: ReadonlyArray<number>; scale?: number };
    const { x } = args.inputs as { x?: Info };
    const backend = args.backend as unknown as WasmBackendData & { typedArrayFromHeap(t: Info): Int32Array };
    const b = keys.length / 2;
    const n = shape.reduce((x, y) => x * y, 1);
    const words = backend.makeOutput([keys.length], 'int32');
    const out = backend.makeOutput([b, ...shape], 'float32');
    backend.typedArrayFromHeap(words).set(keys);
    const [pw, po] = [backend.getMemoryOffset(words.dataId), backend.getMemoryOffset(out.dataId)];
    const px = x === undefined ? 0 : backend.getMemoryOffset(x.dataId);
    // rows [r0, r1): their own keys and rows (each row depends on its key alone), split with the kernel thread
    const rows = (r0: number, r1: number): KernelCall[] => [
      ['normals_rows', pw + 8 * r0, r1 - r0, n, po + 4 * r0 * n],
      ...(x === undefined ? [] : [['scale_add', px + 4 * r0 * n, po + 4 * r0 * n, scale!, (r1 - r0) * n, po + 4 * r0 * n] as KernelCall]),
    ];
    if (b * n > 0) splitRun(k, 'normals', b * n, b, rows);
    backend.disposeData(words.dataId);
    return out;
  },
  // (x, z) ↦ x + c·z (attr c): see scaleAdd. One pass on this thread.
  ScoreSdeScaleAdd: (k) => (args) => {
    const { x, z } = args.inputs as { x: Info; z: Info };
    const { c } = args.attrs as { c: number };
    const backend = args.backend as unknown as WasmBackendData;
    const out = backend.makeOutput([...x.shape], 'float32');
    const n = x.shape.reduce((p, q) => p * q, 1);
    if (n > 0) k.scale_add(backend.getMemoryOffset(x.dataId), backend.getMemoryOffset(z.dataId), c, n, backend.getMemoryOffset(out.dataId));
    return out;
  },
  // (x, y[, z]) ↦ x + (a·x − b·y)·h [+ c·z] (attrs a, b, h[, c]): see eulerUpdate. One pass on this thread (a few µs of work).
  ScoreSdeEulerUpdate: (k) => (args) => {
    const { x, y, z } = args.inputs as { x: Info; y: Info; z?: Info };
    const { a, b, h, c } = args.attrs as { a: number; b: number; h: number; c?: number };
    const backend = args.backend as unknown as WasmBackendData;
    const out = backend.makeOutput([...x.shape], 'float32');
    const n = x.shape.reduce((p, q) => p * q, 1);
    const [px, py, po] = [x, y, out].map((t) => backend.getMemoryOffset(t.dataId)) as [number, number, number];
    if (n > 0 && z === undefined) k.euler_update(px, py, a, b, h, n, po);
    else if (n > 0) k.euler_update_noise(px, py, a, b, h, backend.getMemoryOffset(z!.dataId), c!, n, po);
    return out;
  },
  // (x, y1, x1, y2[, z]) ↦ [x2, m2 (only with z), Σq² as a scalar]: see heunStageWithError. One pass on this thread.
  ScoreSdeHeunError: (k) => (args) => {
    const { x, y1, x1, y2, z } = args.inputs as { x: Info; y1: Info; x1: Info; y2: Info; z?: Info };
    const a = args.attrs as unknown as HeunStageScalars;
    const backend = args.backend as unknown as WasmBackendData & { typedArrayFromHeap(t: Info): Float32Array };
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    const x2 = backend.makeOutput([...x.shape], 'float32');
    const m2 = z === undefined ? undefined : backend.makeOutput([...x.shape], 'float32');
    const sum = backend.makeOutput([], 'float32');
    const n = x.shape.reduce((p, q) => p * q, 1);
    const total = n > 0 ? k.heun_error(off(x), off(y1), off(x1), off(y2), z === undefined ? 0 : off(z), a.a1, a.b1, a.a2, a.b2, a.h, a.c, a.rtol, a.atol, n, off(x2), m2 === undefined ? 0 : off(m2)) : 0;
    backend.typedArrayFromHeap(sum).set([total]);
    return m2 === undefined ? [x2, sum] : [x2, m2, sum];
  },
  // (x, g, z) ↦ [x', x̄]: one Langevin corrector step with the signal-to-noise rule (see langevinUpdate). One call on this thread.
  ScoreSdeLangevin: (k) => (args) => {
    const { x, g, z } = args.inputs as { x: Info; g: Info; z: Info };
    const { snr, twoAlpha, perSample } = args.attrs as { snr: number; twoAlpha: number; perSample: boolean };
    const backend = args.backend as unknown as WasmBackendData;
    const [b, n] = [x.shape[0] ?? 1, x.shape.slice(1).reduce((p, q) => p * q, 1)];
    const out = backend.makeOutput([...x.shape], 'float32');
    const mean = backend.makeOutput([...x.shape], 'float32');
    const norms = backend.makeOutput([2 * b], 'float32');
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    if (b * n > 0) k.langevin_update(off(x), off(g), off(z), b, n, perSample ? 1 : 0, snr, twoAlpha, off(norms), off(out), off(mean));
    backend.disposeData(norms.dataId);
    return [out, mean];
  },
  // (g, θ, m, v[, e]) ↦ [θ', m', v'[, e']]: one Adam step and the EMA update (see adamEmaStep).
  ScoreSdeAdamEma: (k) => (args) => {
    const { g, p, m, v, e } = args.inputs as { g: Info; p: Info; m: Info; v: Info; e?: Info };
    const a = args.attrs as unknown as AdamEmaScalars;
    const backend = args.backend as unknown as WasmBackendData;
    const outs = [p, m, v, ...(e !== undefined ? [e] : [])].map((t) => backend.makeOutput([...t.shape], 'float32'));
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    const [op, om, ov, oe] = outs.map(off);
    const n = p.shape.reduce((x, y) => x * y, 1);
    // Elements [i0, i1) (i0 a multiple of 4, so every element keeps its vector or scalar path): element-wise, splits freely.
    const at = (ptr: number, i0: number): number => ptr + 4 * i0;
    splitRun(k, 'adam', n, n, (i0, i1): KernelCall[] => [
      ['adam_ema', at(off(g), i0), at(off(p), i0), at(off(m), i0), at(off(v), i0), e === undefined ? 0 : at(off(e), i0), i1 - i0, a.clip, a.clip === 1 ? 0 : 1,
        a.beta1, a.oneMinusBeta1, a.beta2, a.oneMinusBeta2, a.bc2, a.eps, a.step, a.decay, a.oneMinusDecay, e === undefined ? 0 : 1,
        at(op!, i0), at(om!, i0), at(ov!, i0), oe === undefined ? 0 : at(oe, i0)],
    ], 4 * Math.floor(n / 8));
    return outs;
  },
};

// -------------------------------------------------------------------------------------
// concat and split along an inner axis
// -------------------------------------------------------------------------------------

interface HeapBackend extends WasmBackendData {
  typedArrayFromHeap(t: Info): Int32Array;
}

/** ∏ of a shape's dimensions. */
const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);

/**
 * Copies the rows of k parts into one tensor or out of it (`rows_copy` of the wat): `big` viewed as [outer, Σ n_i], part i
 * as [outer, n_i] (bytes), into = true for a concat, false for a split. One pass of 16-byte copies; the (offset, n_i) table
 * lives on the heap for the call.
 */
const copyRows = (k: FusedExports, backend: HeapBackend, parts: ReadonlyArray<Info>, rowBytes: ReadonlyArray<number>, outer: number, big: Info, into: boolean): void => {
  const table = backend.makeOutput([2 * parts.length], 'int32');
  // Offsets after every allocation: views of the heap go stale when it grows.
  backend.typedArrayFromHeap(table).set(parts.flatMap((p, i) => [backend.getMemoryOffset(p.dataId), rowBytes[i]!]));
  k.rows_copy(backend.getMemoryOffset(table.dataId), parts.length, outer, backend.getMemoryOffset(big.dataId), into ? 1 : 0);
  backend.disposeData(table.dataId);
};

/** Whether a kernel's tensors are all 4-byte numbers of one dtype (float32 or int32), so copies are 4-byte moves. */
const fourByte = (ts: ReadonlyArray<Info>): boolean => ts.every((t) => (t.dtype === 'float32' || t.dtype === 'int32') && t.dtype === ts[0]!.dtype);

/**
 * concat(x_1, …, x_k; axis) in one pass of row copies: with outer = ∏ shape[:axis] and n_i = ∏ x_i.shape[axis:], row o of
 * the output is the rows o of x_1, …, x_k one after the other. (tfjs 4.22's kernel copies one row at a time through a new
 * typed-array view in JavaScript; wasm-kernels.ts's stack-and-transpose made two passes: 1.3 ms for the ScoreNet's
 * [64,26,26,16] skip concat, issue 11.) Other dtypes, empty outputs: the previous kernel.
 */
const rowsConcat =
  (k: FusedExports, previous: KernelFunc): KernelFunc =>
  (args) => {
    const inputs = (Array.isArray(args.inputs) ? args.inputs : Object.values(args.inputs)) as Info[];
    if (!overridesOn || inputs.length < 2 || !fourByte(inputs)) return previous(args);
    const shape = inputs[0]!.shape;
    const axis = tf.util.parseAxisParam((args.attrs as { axis: number | number[] }).axis, shape)[0]!;
    const outShape = tf.backend_util.computeOutShape(inputs.map((t) => t.shape), axis);
    const outer = sizeOf(shape.slice(0, axis));
    if (sizeOf(outShape) === 0) return previous(args);
    const backend = args.backend as unknown as HeapBackend;
    const out = backend.makeOutput(outShape, inputs[0]!.dtype);
    copyRows(k, backend, inputs, inputs.map((t) => 4 * sizeOf(t.shape.slice(axis))), outer, out, true);
    return out;
  };

/** split(x; sizes, axis) in one pass of row copies, the inverse of {@link rowsConcat} (concat's gradient). Other cases: the previous kernel. */
const rowsSplit =
  (k: FusedExports, previous: KernelFunc): KernelFunc =>
  (args) => {
    const x = (args.inputs as { x: Info }).x;
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
    if (!overridesOn || sizes.length < 2 || !fourByte([x]) || sizeOf(x.shape) === 0 || sizes.some((n) => n < 0)) return previous(args);
    const backend = args.backend as unknown as HeapBackend;
    const rest = sizeOf(x.shape.slice(ax + 1));
    const outs = sizes.map((n) => backend.makeOutput(x.shape.map((d, i) => (i === ax ? n : d)), x.dtype));
    copyRows(k, backend, outs, sizes.map((n) => 4 * n * rest), sizeOf(x.shape.slice(0, ax)), x, false);
    return outs;
  };

// -------------------------------------------------------------------------------------
// broadcasting binary ops
// -------------------------------------------------------------------------------------

/** An operand's element strides over the rows and columns of a 2-D broadcast. */
type Strides2 = readonly [number, number];

/** A broadcast a ⊕ b seen as out [M, N]: out[m, n] = a[m·a₀ + n·a₁] ⊕ b[m·b₀ + n·b₁]. @category kernels */
export interface Broadcast2d {
  readonly m: number;
  readonly n: number;
  readonly a: Strides2;
  readonly b: Strides2;
}

/**
 * The 2-D view of a broadcast between shapes a and b, when it has one with each operand varying along the rows, the
 * columns, or both, and neither operand the whole output nor a single value (those XNNPACK runs inline): the output's
 * non-unit axes grouped into runs where both operands keep the same role (a full axis or a broadcast one) must make exactly
 * two runs, M (outer) and N (inner). E.g. [64, 16] + [16]: M = 64, N = 16, a (16, 1), b (0, 1); [64, 1] · [1, 64]: a (1, 0),
 * b (0, 1). Otherwise undefined.
 * @category kernels
 */
export const broadcast2d = (aShape: ReadonlyArray<number>, bShape: ReadonlyArray<number>): Broadcast2d | undefined => {
  const out = tf.backend_util.assertAndGetBroadcastShape([...aShape], [...bShape]);
  const r = out.length;
  const padded = (s: ReadonlyArray<number>): number[] => [...Array.from({ length: r - s.length }, () => 1), ...s];
  const [pa, pb] = [padded(aShape), padded(bShape)];
  const runs: Array<{ fa: boolean; fb: boolean; size: number }> = [];
  out.forEach((d, i) => {
    if (d === 1) return;
    const [fa, fb] = [pa[i] === d, pb[i] === d];
    const last = runs[runs.length - 1];
    if (last !== undefined && last.fa === fa && last.fb === fb) last.size *= d;
    else runs.push({ fa, fb, size: d });
  });
  if (runs.length !== 2) return undefined;
  const [rows, cols] = runs as [(typeof runs)[0], (typeof runs)[0]];
  const strides = (full: (run: typeof rows) => boolean): Strides2 => [full(rows) ? (full(cols) ? cols.size : 1) : 0, full(cols) ? 1 : 0];
  return { m: rows.size, n: cols.size, a: strides((run) => run.fa), b: strides((run) => run.fb) };
};

/** The largest output the broadcast kernel takes (larger ones keep XNNPACK's threads). */
const BROADCAST_MAX = 1 << 20;

const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;

/**
 * a ⊕ b (⊕ = +, −, ·, /) for float32 operands whose broadcast has a 2-D view ({@link broadcast2d}), e.g. a Dense layer's
 * bias [64, 16] + [16], in one single-threaded SIMD pass (`broadcast_op`). XNNPACK splits such an op over its thread pool
 * even for a thousand elements, and the call then waits for a worker to wake (≈0.5 ms on a busy 2-core machine against
 * 5 µs for the same op on same-shape operands, issue 11). Each element is the same single IEEE float32 operation, so the
 * bits are XNNPACK's. Other cases: the previous kernel.
 */
const broadcastBinary =
  (k: FusedExports, op: number, previous: KernelFunc): KernelFunc =>
  (args) => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    if (!overridesOn || a.dtype !== 'float32' || b.dtype !== 'float32') return previous(args);
    const view = broadcast2d(a.shape, b.shape);
    if (view === undefined || view.m * view.n > BROADCAST_MAX) return previous(args);
    const backend = args.backend as unknown as HeapBackend;
    const out = backend.makeOutput(tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape), 'float32');
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    k.broadcast_op(op, off(a), 4 * view.a[0], 4 * view.a[1], off(b), 4 * view.b[0], 4 * view.b[1], view.m, view.n, off(out));
    return out;
  };

// -------------------------------------------------------------------------------------
// small matrix products
// -------------------------------------------------------------------------------------

/**
 * The most multiply-adds a product may have for the single-threaded kernel; larger ones are split by rows with the
 * kernel thread where it runs, else they keep XNNPACK's threads.
 */
export const SMALL_MATMUL_MAX = 1 << 20;

/** Whether the overrides that need the kernel thread (on one thread XNNPACK's two would be faster) serve now. */
const threadServes = (): boolean => overridesOn && threadWanted && threadStarter !== undefined && thread.state !== 'failed';

/**
 * a·b (or with a or b transposed) for one float32 matrix each (a [M, K], b [K, N], or with leading dimensions of 1) and at most {@link SMALL_MATMUL_MAX} multiply-adds (the
 * ScoreNet's Dense layers: [64, 128]·[128, 16 … 128]) — or any size where the kernel thread runs, split by rows between
 * the two threads — by `matmul_seq`: out[m, n] = Σ_k a[m, k]·b[k, n] summed in order
 * from +0, each product and sum rounded to float32 — the order XNNPACK's GEMM sums in (fused-matmul.test.ts compares the
 * bits), single-threaded: XNNPACK splits even these over its thread pool and then waits for a worker (0.5–0.8 ms a call
 * on a busy 2-core machine, issue 11). A transposed operand is copied transposed first. Batches of matrices (tfjs sums
 * those in blocks of 48), other dtypes, larger products: the previous kernel.
 */
const smallMatMul =
  (k: FusedExports, previous: KernelFunc): KernelFunc =>
  (args) => {
    const { a, b } = args.inputs as { a: Info; b: Info };
    const { transposeA, transposeB } = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    // One matrix each: rank 2, or leading dimensions of 1 (tf.matMul passes 2-D operands as they are).
    const single = (t: Info): boolean => t.shape.length >= 2 && t.shape.slice(0, -2).every((d) => d === 1);
    if (!overridesOn || a.dtype !== 'float32' || b.dtype !== 'float32' || !single(a) || !single(b) || a.shape.length !== b.shape.length) return previous(args);
    const [ra, ca] = a.shape.slice(-2) as [number, number];
    const [rb, cb] = b.shape.slice(-2) as [number, number];
    const [m, kk] = transposeA === true ? [ca, ra] : [ra, ca];
    const n = transposeB === true ? rb : cb;
    const big = m * kk * n > SMALL_MATMUL_MAX;
    if (big && !threadServes()) return previous(args);
    const backend = args.backend as unknown as HeapBackend;
    // A transposed operand is transposed first (a copy, as wasm-kernels.ts does for XNNPACK), then multiplied plainly.
    const transpose = (t: Info, rows: number, cols: number): Info =>
      kernel('Transpose')({ inputs: { x: { ...t, shape: [rows, cols] } }, attrs: { perm: [1, 0] }, backend: args.backend }) as Info;
    const [a2, b2] = [transposeA === true ? transpose(a, ra, ca) : a, transposeB === true ? transpose(b, rb, cb) : b];
    const out = backend.makeOutput([...a.shape.slice(0, -2), m, n], 'float32');
    if (m * n > 0) {
      const [pa, pb, po] = [backend.getMemoryOffset(a2.dataId), backend.getMemoryOffset(b2.dataId), backend.getMemoryOffset(out.dataId)];
      // rows [r0, r1) are the same call on the rows' own parts of a and out: each element summed as on one thread
      if (big) splitRun(k, 'matmul', m * kk * n, m, (r0, r1) => [['matmul_seq', pa + 4 * r0 * kk, pb, r1 - r0, kk, n, po + 4 * r0 * n]]);
      else k.matmul_seq(pa, pb, m, kk, n, po);
    }
    if (a2 !== a) backend.disposeData(a2.dataId);
    if (b2 !== b) backend.disposeData(b2.dataId);
    return out;
  };

// -------------------------------------------------------------------------------------
// convolutions
// -------------------------------------------------------------------------------------

/**
 * tfjs' `Conv2D` (float32, NHWC, dilation 1, one stride for both axes, O a multiple of 4) by `conv_forward`:
 *   y[b, i, j, o] = Σ_{p,q,c} x̄[b, s·i + p, s·j + q, c] · f[p, q, c, o]   (x̄: x padded by (top, left), zero outside),
 * a SIMD micro-kernel of 2 pixels × 16 outputs summing in XNNPACK's order (taps p, q, then channels c, from +0: the same
 * bits, compared in the tests), split by images between this thread and the kernel thread (disjoint outputs, each sum the
 * same either way). XNNPACK's Conv2D ran ScoreNet's small layers at 10–35 GMAC/s on 2 threads and its worker spun for
 * the next call beside our kernels (issue 11). Without the kernel thread, or in any other case: the previous kernel.
 */
const directConv =
  (k: FusedExports, previous: KernelFunc): KernelFunc =>
  (args) => {
    // Only where the kernel thread can run (on one thread XNNPACK's two would be faster).
    if (!threadServes()) return previous(args);
    const { x, filter } = args.inputs as { x: Info; filter: Info };
    const a = args.attrs as { strides: number | [number, number]; pad: unknown; dataFormat?: string; dilations?: number | [number, number]; dimRoundingMode?: string };
    const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);
    const [sh, sw] = pair(a.strides, 1);
    const [dh, dw] = pair(a.dilations, 1);
    if (x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4 || (a.dataFormat !== undefined && a.dataFormat !== 'NHWC') || dh !== 1 || dw !== 1 || sh !== sw)
      return previous(args);
    const [b, h, w, c] = x.shape as [number, number, number, number];
    const [kh, kw, , o] = filter.shape as [number, number, number, number];
    if (o % 4 !== 0) return previous(args);
    const info = tf.backend_util.computeConv2DInfo(
      [b, h, w, c],
      [kh, kw, c, o],
      [sh, sw],
      [1, 1],
      a.pad as Parameters<typeof tf.backend_util.computeConv2DInfo>[4],
      a.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    );
    const backend = args.backend as unknown as HeapBackend;
    const { outHeight: ho, outWidth: wo } = info;
    const out = backend.makeOutput([b, ho, wo, o], 'float32');
    if (b * ho * wo * o === 0) return out;
    // no taps (C = 0): every output is the empty sum +0 (all-zero bits, whatever the view's type)
    if (kh * kw * c === 0) {
      backend.typedArrayFromHeap(out).fill(0);
      return out;
    }
    const off = (t: Info): number => backend.getMemoryOffset(t.dataId);
    const call = (b0: number, b1: number): KernelCall => ['conv_forward', off(x), off(filter), h, w, c, ho, wo, o, kh, kw, sh, info.padInfo.top, info.padInfo.left, off(out), b0, b1];
    splitRun(k, 'conv', b * ho * wo * kh * kw * c * o, b, (b0, b1) => [call(b0, b1)]);
    return out;
  };

/** A wasm kernel looked up when it runs (after the backend's setup). */
const kernel = (name: string): KernelFunc => {
  const found = tf.getKernel(name, 'wasm');
  if (found === undefined) throw new Error(`wasm kernel ${name} is not registered`);
  return found.kernelFunc;
};

/** Re-registers the wasm kernel `name` as `make(current kernelFunc)`, keeping its setup and dispose hooks. */
const overrideKernel = (name: string, make: (previous: KernelFunc) => KernelFunc): void => {
  const current = tf.getKernel(name, 'wasm');
  if (current === undefined) return;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...current, kernelFunc: make(current.kernelFunc) });
};

/** The tfjs kernels of the wasm backend that the fused module serves in place of the previous ones (the same bits). @category kernels */
export const FUSED_OVERRIDES = ['Concat', 'SplitV', 'Add', 'Sub', 'Multiply', 'RealDiv', 'BatchMatMul', 'Conv2D'] as const;

let overridesOn = true;
/**
 * Serves {@link FUSED_OVERRIDES} by the fused module (`enabled`, default) or by the kernels they replaced: for tests, which
 * compare the bits of both, and benchmarks. @category kernels
 */
export const configureFusedOverrides = (opts: { readonly enabled: boolean }): void => {
  overridesOn = opts.enabled;
};

/**
 * Instantiates the fused kernels' binary (`binary`, or the registered default) against the active wasm backend's
 * memory and registers the kernels (once; later calls return the first outcome). Returns whether they are ready; on
 * failure the reason is kept ({@link fusedKernelsFailure}) and callers use their tfjs-op formulations.
 * @category setup
 */
export const prepareFusedKernels = async (binary: FusedBinary | undefined = defaultBinary): Promise<boolean> => {
  if (exportsOf !== undefined || failure !== undefined) return exportsOf !== undefined;
  try {
    if (binary === undefined) throw new Error('no binary of the fused kernels was given');
    if (tf.getBackend() !== 'wasm') throw new Error(`the active backend is ${tf.getBackend()}, not wasm`);
    const memory = backendMemory(tf.backend() as unknown as WasmBackend);
    if (memory === undefined) throw new Error("the wasm backend's memory is not reachable");
    const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    const made = await wasmApi.instantiate(await binary(shared), { env: { memory } });
    const k = made.instance.exports as unknown as FusedExports;
    compiled = { module: made.module, memory };
    for (const name of FUSED_KERNELS) {
      if (tf.getKernel(name, 'wasm') === undefined) tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernels[name](k) });
    }
    overrideKernel('Concat', (previous) => rowsConcat(k, previous));
    overrideKernel('SplitV', (previous) => rowsSplit(k, previous));
    Object.entries(BINARY_OPS).forEach(([name, op]) => overrideKernel(name, (previous) => broadcastBinary(k, op, previous)));
    overrideKernel('BatchMatMul', (previous) => smallMatMul(k, previous));
    overrideKernel('Conv2D', (previous) => directConv(k, previous));
    exportsOf = k;
    return true;
  } catch (e) {
    failure = (e as Error).message;
    return false;
  }
};

// -------------------------------------------------------------------------------------
// calls
// -------------------------------------------------------------------------------------

const run = (name: (typeof FUSED_KERNELS)[number], inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): tf.Tensor | tf.Tensor[] =>
  tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];

/** What {@link groupNormForward} returns: the output and what its gradient needs ([B, 1, 1, C] each but z). @category fused */
export interface GroupNormForward {
  readonly z: tf.Tensor4D;
  readonly mc: tf.Tensor4D;
  readonly r: tf.Tensor4D;
  readonly k: tf.Tensor4D;
  readonly scale: tf.Tensor4D;
  readonly shift: tf.Tensor4D;
}

/**
 * z = [swish](GN_{γ,β}(x + bias)) for x [B, H, W, C] (C a multiple of 4, G | C), with the channel means mc, r = 1/σ_g,
 * k = (bias − μ_g)·r, scale = γ r and shift = γ k + β (see group-norm.ts for the formulas): one kernel.
 * @category fused
 */
export const groupNormForward = (x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, bias: tf.Tensor | undefined, groups: number, eps: number, swish: boolean): GroupNormForward => {
  const [z, mc, r, k, scale, shift] = run('ScoreSdeGroupNorm', bias === undefined ? { x, gamma, beta } : { x, gamma, beta, bias }, { groups, eps, swish }) as tf.Tensor4D[];
  return { z: z!, mc: mc!, r: r!, k: k!, scale: scale!, shift: shift! };
};

/**
 * The gradient of {@link groupNormForward} given dz: [dx, S1 = Σ_hw dy, s2 = Σ_hw dy·x̂, dbias = Σ_hw dx] (dy = dz through
 * the swish), so dβ = Σ_b S1 and dγ = Σ_b s2: one kernel.
 * @category fused
 */
export const groupNormBackward = (dz: tf.Tensor, x: tf.Tensor4D, gamma: tf.Tensor, f: Omit<GroupNormForward, 'z'>, groups: number, swish: boolean): [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D] =>
  run('ScoreSdeGroupNormGrad', { dz, x, gamma, mc: f.mc, r: f.r, k: f.k, scale: f.scale, shift: f.shift }, { groups, swish }) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];

/**
 * The scalars of one Adam + EMA step, each used as a float32 (as tfjs turns a number operand into a float32 scalar):
 *   g ← g·clip (skipped when clip = 1),  m ← m·β₁ + g·(1 − β₁),  v ← v·β₂ + g²·(1 − β₂),
 *   θ ← θ − (m / (√(v / bc₂) + ε))·step,  e ← e·decay + θ·(1 − decay),
 * with step = lr_n / bc₁, bc_i = 1 − β_iⁿ (the caller's formulas, optim.ts and ema.ts).
 * @category fused
 */
export interface AdamEmaScalars {
  readonly clip: number;
  readonly beta1: number;
  readonly oneMinusBeta1: number;
  readonly beta2: number;
  readonly oneMinusBeta2: number;
  readonly bc2: number;
  readonly eps: number;
  readonly step: number;
  readonly decay: number;
  readonly oneMinusDecay: number;
}

/**
 * One Adam step (and the EMA update, when `e` is given) of one parameter tensor, element-wise in one pass:
 * [θ', m', v'] or [θ', m', v', e'] (see {@link AdamEmaScalars}). New tensors; the inputs are untouched.
 * @category fused
 */
export const adamEmaStep = (g: tf.Tensor, p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, e: tf.Tensor | undefined, scalars: AdamEmaScalars): tf.Tensor[] =>
  run('ScoreSdeAdamEma', e === undefined ? { g, p, m, v } : { g, p, m, v, e }, { ...scalars }) as tf.Tensor[];

/**
 * N(0, I) noise [B, ...shape], row b the normals of keys[b] — bit for bit `random.normalPerSample` (the SIMD wasm kernel
 * runs random.ts's Threefry-2x32 and float64 Box–Muller, 4 counters at a time), made in place on the heap. Needs
 * ∏ shape to be a multiple of 8 ({@link fusedNormalsApply}).
 * @category fused
 */
export const normalsPerSample = (keys: ReadonlyArray<readonly [number, number]>, shape: ReadonlyArray<number>): tf.Tensor =>
  run('ScoreSdeNormals', {}, { keys: keys.flatMap((k) => [k[0] | 0, k[1] | 0]), shape: [...shape] }) as tf.Tensor;

/**
 * x + c·z with z = {@link normalsPerSample}(keys, x's sample shape), in one kernel: each row's normals are made in place
 * in the output and scaled onto x's row there, with the bits of tf.add(x, tf.mul(z, c)) (c rounded to float32, as a
 * scalar tensor is). Check {@link fusedNormalsApply} first. @category fused
 */
export const addScaledNormalsPerSample = (x: tf.Tensor, keys: ReadonlyArray<readonly [number, number]>, c: number): tf.Tensor =>
  run('ScoreSdeNormals', { x }, { keys: keys.flatMap((k) => [k[0] | 0, k[1] | 0]), shape: x.shape.slice(1), scale: c }) as tf.Tensor;

/** Normals on offer to the kernel thread: made between its requests, finished by {@link NormalsAhead.take}. @category fused */
export interface NormalsAhead {
  /** Makes the rows the thread has not reached, waits for its row in progress; the normals, a tensor of the current scope. */
  readonly take: () => tf.Tensor;
  /** Finishes the job as take does, then frees the normals (for a caller that no longer needs them, e.g. after a throw). */
  readonly dispose: () => void;
}

let aheadPending = false;
let aheadRowsHere = 0;
let aheadRows = 0;

/**
 * {@link normalsPerSample}(keys, shape) begun now and finished at `take`: offered to the kernel thread as a background job
 * of rows (row b = the normals of keys[b], its own key alone), which the thread runs in its idle moments while this
 * thread goes on — a score evaluation leaves the thread idle between its split kernel calls for several times the
 * 0.4 ms these take. What it has not reached is made here at `take`: the same bits whoever makes a row. Undefined
 * when there is no thread to offer it to (or a job is already on offer, or the shape does not suit the kernel: ∏ shape a
 * multiple of 8); callers then draw the normals when they need them. Take or dispose it exactly once.
 * @category fused
 */
export const normalsAhead = (keys: ReadonlyArray<readonly [number, number]>, shape: ReadonlyArray<number>): NormalsAhead | undefined => {
  const k = exportsOf;
  const b = keys.length;
  const n = shape.reduce((p, q) => p * q, 1);
  if (k === undefined || !fusedKernelsReady() || aheadPending || !threadWanted || !backgroundWanted || thread.state !== 'ready' || pause > 0) return undefined;
  const t = thread.t;
  if (t.offer === undefined || t.settle === undefined || b < 1 || b > 0xfffe || n === 0 || n % 8 !== 0 || b * n < minWork.normals) return undefined;
  const backend = tf.backend() as unknown as WasmBackendData & { typedArrayFromHeap(t: Info): Int32Array };
  const words = backend.makeOutput([2 * b], 'int32');
  const out = backend.makeOutput([b, ...shape], 'float32');
  backend.typedArrayFromHeap(words).set(keys.flatMap((key) => [key[0] | 0, key[1] | 0]));
  const [pw, po] = [backend.getMemoryOffset(words.dataId), backend.getMemoryOffset(out.dataId)];
  t.offer(['normals_rows', pw, 1, n, po], [8, 0, 0, 4 * n], b);
  aheadPending = true;
  let settled = false;
  // Finishes the job; if that throws (a row trapped here), the normals are freed too, as nobody will own them.
  const settle = (): void => {
    if (settled) throw new Error('normalsAhead: taken or disposed twice');
    settled = true;
    try {
      aheadRowsHere += t.settle!((r) => k.normals_rows(pw + 8 * r, 1, n, po + 4 * r * n));
      aheadRows += b;
    } catch (e) {
      backend.disposeData(out.dataId);
      throw e;
    } finally {
      aheadPending = false;
      backend.disposeData(words.dataId);
    }
  };
  return {
    take: () => {
      settle();
      return tf.engine().makeTensorFromTensorInfo(out);
    },
    dispose: () => {
      settle();
      backend.disposeData(out.dataId);
    },
  };
};

/** Rows of the normals made ahead so far, and how many of them this thread made at take (the rest: the kernel thread). @category threads */
export const normalsAheadStatus = (): { readonly rows: number; readonly rowsHere: number } => ({ rows: aheadRows, rowsHere: aheadRowsHere });

/**
 * x + c·z for float32 x, z of one shape, with the bits of tf.add(x, tf.mul(z, c)) (c rounded to float32, as a scalar
 * tensor is): one pass on wasm instead of two kernels. The noise term of a stochastic step. @category fused
 */
export const scaleAdd = (x: tf.Tensor, z: tf.Tensor, c: number): tf.Tensor =>
  fusedKernelsReady() && sameFloatShape([x, z]) ? (run('ScoreSdeScaleAdd', { x, z }, { c }) as tf.Tensor) : tf.tidy(() => tf.add(x, tf.mul(z, c)));

/** Whether tensors are float32 of one shape whose size is a multiple of 4 (the element-wise kernels' vector width). */
const sameFloatShape = (ts: ReadonlyArray<tf.Tensor>): boolean =>
  ts.every((t) => t.dtype === 'float32' && tf.util.arraysEqual(t.shape, ts[0]!.shape)) && tf.util.sizeFromShape(ts[0]!.shape) % 4 === 0;

/**
 * x + (a·x − b·y)·h for float32 x, y of one shape, each operation rounded to float32 (a, b, h too, as scalar tensors
 * are): the bits of tf.add(x, tf.mul(tf.sub(tf.mul(x, a), tf.mul(y, b)), h)), in one pass on wasm instead of five
 * kernels. It is the Euler step x + f̄ h of a drift f̄ = a·x − b·y linear in x and y (the reverse SDE's f(t)x − g(t)² s).
 * With `noise` {z, c} it adds c·z to that in the same pass (the bits of tf.add(·, tf.mul(z, c))): an Euler–Maruyama step.
 * @category fused
 */
export const eulerUpdate = (x: tf.Tensor, y: tf.Tensor, a: number, b: number, h: number, noise?: { readonly z: tf.Tensor; readonly c: number }): tf.Tensor =>
  fusedKernelsReady() && sameFloatShape(noise === undefined ? [x, y] : [x, y, noise.z])
    ? (run('ScoreSdeEulerUpdate', noise === undefined ? { x, y } : { x, y, z: noise.z }, noise === undefined ? { a, b, h } : { a, b, h, c: noise.c }) as tf.Tensor)
    : tf.tidy(() => {
        const m = tf.add(x, tf.mul(tf.sub(tf.mul(x, a), tf.mul(y, b)), h));
        return noise === undefined ? m : tf.add(m, tf.mul(noise.z, noise.c));
      });

/** The scalars of {@link heunStageWithError}. @category fused */
export interface HeunStageScalars {
  /** The drift f = a·x − b·y at the first stage (x, y₁) and at the second (x₁, y₂). */
  readonly a1: number;
  readonly b1: number;
  readonly a2: number;
  readonly b2: number;
  /** The step's weight on the summed drifts (h/2 for a step of size h). */
  readonly h: number;
  /** The noise's scale (ignored without noise). */
  readonly c: number;
  readonly rtol: number;
  readonly atol: number;
}

/** What {@link heunStageWithError} returns: the new state, its mean (x₂ itself without noise) and the scaled RMS error. @category fused */
export interface HeunStage {
  readonly x2: tf.Tensor;
  readonly m2: tf.Tensor;
  /** RMS((x₁ − x₂) / (atol + rtol·max(|x|, |x₂|))), a float32 value (read back: the step-size decision needs it). */
  readonly err: number;
}

/**
 * RMS norm of an error scaled by the tolerance: √(mean((e / (atol + rtol·max(|y0|, |y1|)))²)) over all elements
 * (the batch is one system, as in scipy's solve_ivp and score_sde's likelihood). Returns a scalar tensor.
 * @category fused
 */
export const scaledRmsNorm = (e: tf.Tensor, y0: tf.Tensor, y1: tf.Tensor, rtol: number, atol: number): tf.Scalar =>
  tf.tidy(() => tf.sqrt(tf.mean(tf.square(tf.div(e, tf.add(atol, tf.mul(tf.maximum(tf.abs(y0), tf.abs(y1)), rtol)))))) as tf.Scalar);

/**
 * The improved-Euler stage of an adaptive Heun–Euler pair with its error, for a drift f(x, y) = a·x − b·y linear in
 * the state and the score y:
 *   m₂ = x − (f(x, y₁; a₁, b₁) + f(x₁, y₂; a₂, b₂))·h,   x₂ = m₂ + c·z (x₂ = m₂ without z),
 *   ε = √(mean(((x₁ − x₂) / (atol + rtol·max(|x|, |x₂|)))²)),
 * every operation rounded to float32 in the order of the tf ops it replaces (the fallback, off wasm), the mean summed in
 * index order as tfjs-wasm's Mean does: the same bits, in one pass on wasm instead of about twenty kernels.
 * @category fused
 */
export const heunStageWithError = (x: tf.Tensor, y1: tf.Tensor, x1: tf.Tensor, y2: tf.Tensor, z: tf.Tensor | undefined, s: HeunStageScalars): HeunStage => {
  if (fusedKernelsReady() && sameFloatShape(z === undefined ? [x, y1, x1, y2] : [x, y1, x1, y2, z])) {
    const outs = run('ScoreSdeHeunError', { x, y1, x1, y2, ...(z === undefined ? {} : { z }) }, { ...s }) as tf.Tensor[];
    const n = tf.util.sizeFromShape(x.shape);
    const [x2, m2, sum] = z === undefined ? [outs[0]!, outs[0]!, outs[1]!] : [outs[0]!, outs[1]!, outs[2]!];
    const err = Math.fround(Math.sqrt(Math.fround(sum.dataSync()[0]! / n)));
    sum.dispose();
    return { x2, m2, err };
  }
  const r = tf.tidy(() => {
    const drift = (u: tf.Tensor, y: tf.Tensor, a: number, b: number): tf.Tensor => tf.sub(tf.mul(u, a), tf.mul(y, b));
    const m2 = tf.sub(x, tf.mul(tf.add(drift(x, y1, s.a1, s.b1), drift(x1, y2, s.a2, s.b2)), s.h));
    const x2 = z === undefined ? m2 : tf.add(m2, tf.mul(z, s.c));
    return { x2, m2, err: scaledRmsNorm(tf.sub(x1, x2), x, x2, s.rtol, s.atol) };
  });
  const err = r.err.dataSync()[0]!;
  r.err.dispose();
  return { x2: r.x2, m2: r.m2, err };
};

/**
 * Euclidean norm of each sample of a batch, ‖x_b‖ = √(Σ_j x_bj²): [B]. Written as sqrt ∘ sum ∘ square rather than
 * `tf.norm`, which computes |x|² with a `pow` kernel (15–45× slower on wasm at [64, 784]: tools/bench/overhead).
 * @category fused
 */
export const rowNorms = (x: tf.Tensor): tf.Tensor => tf.tidy(() => tf.sqrt(tf.sum(tf.square(tf.reshape(x, [x.shape[0]!, -1])), 1)));

/**
 * One Langevin corrector step with the signal-to-noise rule (Song et al. 2021, Alg. 5) from the score g = s(x, t) and
 * the noise z of a batch x [B, …]:
 *   ε = 2α (r ‖z‖ / ‖g‖)²,   x̄ = x + ε g,   x' = x̄ + √(2ε) z,
 * with the norms per sample (`perSample`) or their means over the batch. Returns [x', x̄]. Every operation rounded to
 * float32 in the order of the tf ops of the fallback (off wasm), the squares and the norms summed in index order as
 * tfjs-wasm's Sum and Mean do: the same bits, in one pass on wasm instead of about twenty kernels.
 * @category fused
 */
export const langevinUpdate = (x: tf.Tensor, g: tf.Tensor, z: tf.Tensor, o: { readonly snr: number; readonly twoAlpha: number; readonly perSample: boolean }): readonly [tf.Tensor, tf.Tensor] => {
  if (fusedKernelsReady() && x.rank >= 2 && sameFloatShape([x, g, z]) && tf.util.sizeFromShape(x.shape.slice(1)) % 4 === 0) {
    const [out, mean] = run('ScoreSdeLangevin', { x, g, z }, { ...o }) as tf.Tensor[];
    return [out!, mean!];
  }
  return tf.tidy(() => {
    const B = x.shape[0]!;
    const ratio = o.perSample ? tf.div(rowNorms(z), rowNorms(g)) : tf.div(tf.mean(rowNorms(z)), tf.mean(rowNorms(g)));
    const eps = tf.reshape(tf.mul(tf.square(tf.mul(ratio, o.snr)), o.twoAlpha), o.perSample ? [B, ...new Array<number>(x.rank - 1).fill(1)] : []);
    const xMean = tf.add(x, tf.mul(eps, g));
    return [tf.add(xMean, tf.mul(tf.sqrt(tf.mul(eps, 2)), z)), xMean] as const;
  });
};

/** Whether {@link normalsPerSample} can make a batch of this sample shape now: wasm, ready, ∏ shape a positive multiple of 8. @category fused */
export const fusedNormalsApply = (shape: ReadonlyArray<number>): boolean => {
  const n = shape.reduce((x, y) => x * y, 1);
  return fusedKernelsReady() && n > 0 && n % 8 === 0;
};

/**
 * The output of a stride-s transposed conv from its s² sub-pixel phases (conv.ts, `transposeByPhases`): phase r·s + q
 * ([B, rows, cols, C_z], or undefined for a phase no tap reaches: zeros) fills the pixels U ≡ r, V ≡ q (mod s) of the
 * padded output, z[b, u, v, c] = phase[(U mod s)·s + (V mod s)][b, ⌊U/s⌋, ⌊V/s⌋, c] with U = u + top, V = v + left —
 * one pass, instead of concatenating phases along channels twice and cutting the window out. Forward only.
 * @category fused
 */
export const interleavePhases = (
  phases: ReadonlyArray<tf.Tensor4D | undefined>,
  s: number,
  rows: number,
  cols: number,
  out: readonly [number, number, number, number],
  top: number,
  left: number,
): tf.Tensor4D => {
  const { inputs, present } = presentInputs('p', phases);
  return run('ScoreSdeInterleavePhases', inputs, { s, present, rows, cols, out: [...out], top, left }) as tf.Tensor4D;
};

/**
 * Whether {@link transposeConv} serves a transposed conv with C_z outputs now: the fused kernels and the kernel thread
 * (where `Conv2D` is `conv_forward` too) and C_z a multiple of 4. @category fused
 */
export const transposeConvServes = (cz: number): boolean => fusedKernelsReady() && threadServes() && cz % 4 === 0;

/**
 * A strided transposed conv from its s² sub-pixel phase filters (conv.ts, `transposeByPhases`): phase (r, q) with filter
 * g [t_h, t_w, C_x, C_z] is the stride-1 conv of x padded by (t_h − 1, t_w − 1) before, `rows` × `cols` outputs, whose
 * output (a, a') is z[b, s·a + r − top, s·a' + q − left] where that lies inside z [B, H_out, W_out, C_z]; a missing phase
 * (no tap) leaves zeros. One kernel: each phase summed by `conv_forward`'s micro-kernels in its order (the bits of the
 * phase convs it replaces) and stored straight into place, without per-phase outputs and an interleaving pass.
 * Forward only (conv.ts's transposed conv has its own gradients). Check {@link transposeConvServes} first.
 * @category fused
 */
export const transposeConv = (
  x: tf.Tensor4D,
  filters: ReadonlyArray<tf.Tensor4D | undefined>,
  s: number,
  rows: number,
  cols: number,
  out: readonly [number, number, number, number],
  top: number,
  left: number,
): tf.Tensor4D => {
  const { inputs, present } = presentInputs('g', filters);
  return run('ScoreSdeTransposeConv', { ...inputs, x }, { s, present, rows, cols, out: [...out], top, left }) as tf.Tensor4D;
};

/**
 * The overlap-add of a stride-1 transposed conv's per-pixel contributions T [B, H_in, W_in, k_h·k_w·C_z] (T = x·F, see
 * conv.ts): z[b, u, v, c] = Σ_{p, q} T[b, u + top − p, v + left − q, (p·k_w + q)·C_z + c] over the taps that land inside
 * T, for z [B, H_out, W_out, C_z] — one pass, where a conv with a 0/1 filter and C_z outputs ran XNNPACK at its worst.
 * Forward only (the transposed conv has its own gradients).
 * @category fused
 */
export const overlapAdd = (t: tf.Tensor4D, kh: number, kw: number, hOut: number, wOut: number, top: number, left: number): tf.Tensor4D =>
  run('ScoreSdeOverlapAdd', { t }, { kh, kw, hOut, wOut, top, left }) as tf.Tensor4D;

/**
 * The filter gradient of y = conv2d(x, f, s) for a kh × kw filter, x [B, H, W, C] padded by (top, left) before (and zeros
 * wherever a tap falls outside x), dy = ∂L/∂y [B, H_o, W_o, O]:
 *   df[p, q, c, o] = Σ_{b, i, j} x̄[b, s·i + p, s·j + q, c] · dy[b, i, j, o],   x̄[b, u, v, c] = x[b, u − top, v − left, c],
 * as df [kh, kw, C, O] (HWIO), in one pass of our own SIMD kernel straight from NHWC x and dy (no transposes, no im2col
 * copy): 4 outputs o per lane group, 2 channels × 16 outputs of one tap accumulated in registers over a chunk of images,
 * only the (i, j) where the tap lands inside x visited. Large calls split df's rows (or outputs) with the kernel thread
 * ({@link startKernelThread}), bit-identically. Needs O a multiple of 4
 * (conv.ts's `filterGradientMethod` checks it). The kernel only reads inside x and dy (i < H_o, j < W_o and the tap inside x);
 * that dy has the conv's output size is the caller's to check (conv.ts's `filterGradientFused` does). Forward only (a
 * gradient itself).
 * @category fused
 */
export const convFilterGradient = (x: tf.Tensor4D, dy: tf.Tensor4D, kh: number, kw: number, s: number, top: number, left: number): tf.Tensor4D => {
  const ints = [kh, kw, s, top, left].every(Number.isInteger);
  if (!ints || kh < 1 || kw < 1 || s < 1 || x.rank !== 4 || dy.rank !== 4 || x.dtype !== 'float32' || dy.dtype !== 'float32' || dy.shape[0] !== x.shape[0] || dy.shape[3]! % 4 !== 0) {
    throw new Error(
      `convFilterGradient: expected float32 x [B,H,W,C] and dy [B,H_o,W_o,O] with O a multiple of 4, a kh × kw ≥ 1 × 1 filter and an integer stride ≥ 1; ` +
        `got x [${x.shape.join(',')}] ${x.dtype}, dy [${dy.shape.join(',')}] ${dy.dtype}, ${kh} × ${kw}, stride ${s}, padding (${top}, ${left})`,
    );
  }
  return run('ScoreSdeConvFilterGrad', { x, dy }, { kh, kw, s, top, left }) as tf.Tensor4D;
};

/**
 * Σ_k Σ t_k² over float32 tensors on the wasm backend, read straight from the heap (4 float32 partial sums per
 * tensor, the tensors' sums added in float64): the squared global norm, with no kernel and no copy.
 * @category fused
 */
export const sumOfSquares = (ts: ReadonlyArray<tf.Tensor>): number => {
  if (exportsOf === undefined) throw new Error('sumOfSquares: the fused kernels are not ready');
  const backend = tf.backend() as unknown as WasmBackend;
  return ts.reduce((acc, t) => acc + exportsOf!.sum_squares(backend.getMemoryOffset(t.dataId), t.size), 0);
};

/** Whether the fused GroupNorm kernels apply to a [B, H, W, C] tensor now: wasm, ready, C a multiple of 4. @category fused */
export const fusedGroupNormApplies = (x: tf.Tensor): boolean => fusedKernelsReady() && x.rank === 4 && x.shape[3]! % 4 === 0 && x.dtype === 'float32' && x.size > 0;
