/**
 * The fused kernels' second thread (fused-thread.ts): every split kernel gives the same bits with the kernel thread as
 * on one thread — group norm forward and backward (split by samples), the conv filter gradient (by rows of df or by
 * output channels), Adam + EMA (by elements) — at shapes whose splits are uneven (batch 1, odd batches, channel counts
 * that are not a multiple of the split). This file opts in to the threaded build (Jest keeps one thread otherwise) and
 * splits every call, however small. Also the transposed conv's overlap-add and phase interleaving (by images), and the
 * per-sample normals (by rows), alone or added to a batch with a scale.
 */
import { execFileSync } from 'node:child_process';
import { tf, initBackend, random, conv } from '@score-sde/tensor-fp';
import { adamEmaStep, configureKernelThread, groupNormBackward, groupNormForward, kernelThreadStatus, normalsAheadStatus, startKernelThread, KERNEL_THREAD_MIN_WORK, type KernelCall } from '../src/fused-kernels';
import { startFusedKernelThread } from '../src/fused-thread';
import { fusedKernelsBinary } from '../src/fused-wat';
import { firstDifference, float32Bits, useThreadedBuild } from './helpers';

useThreadedBuild();

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

afterEach(() => configureKernelThread({ enabled: true, background: true, adaptive: true, minWork: KERNEL_THREAD_MIN_WORK }));

/** The first index where two float32 tensors differ in their bits (−1: none; the length if the lengths differ). */
const firstBitDifference = (a: tf.Tensor, b: tf.Tensor): number => firstDifference(float32Bits(a.dataSync()), float32Bits(b.dataSync()));

/**
 * Runs `f` on one thread, then with the kernel thread splitting every call; returns the index of the first differing bit
 * pattern per output (all −1 when bit-identical) and how many calls the kernel thread shared.
 */
const oneVersusTwo = (f: () => tf.Tensor[]): { diffs: number[]; shared: number } => {
  configureKernelThread({ enabled: false });
  const one = f();
  configureKernelThread({ enabled: true, adaptive: false, minWork: { groupNorm: 0, filterGradient: 0, phases: 0, conv: 0, normals: 0, adam: 0 } });
  const before = kernelThreadStatus().splitCalls;
  const two = f();
  const shared = kernelThreadStatus().splitCalls - before;
  const diffs = one.map((t, i) => firstBitDifference(t, two[i]!));
  tf.dispose([...one, ...two]);
  return { diffs, shared };
};

test('the kernel thread starts over the threaded build’s shared memory', async () => {
  expect(await startKernelThread()).toBe(true);
  expect(kernelThreadStatus().running).toBe(true);
});

describe.each([
  { B: 1, H: 4, W: 4, C: 8, groups: 2 },
  { B: 2, H: 3, W: 3, C: 4, groups: 1 },
  { B: 3, H: 5, W: 4, C: 8, groups: 2 },
  { B: 5, H: 6, W: 6, C: 12, groups: 3 },
  { B: 7, H: 2, W: 2, C: 20, groups: 5 },
  { B: 64, H: 12, W: 12, C: 32, groups: 4 },
])('group norm at $B×$H×$W×$C, $groups groups', ({ B, H, W, C, groups }) => {
  test.each([
    { bias: true, swish: true },
    { bias: false, swish: false },
  ])('forward and backward with the kernel thread are bit-identical to one thread (bias: $bias, swish: $swish)', async ({ bias, swish }) => {
    expect(await startKernelThread()).toBe(true);
    const x = random.normal(random.key(1), [B, H, W, C]) as tf.Tensor4D;
    const gamma = random.normal(random.key(2), [C]);
    const beta = random.normal(random.key(3), [C]);
    const b = bias ? random.normal(random.key(4), [B, C]) : undefined;
    const dz = random.normal(random.key(5), [B, H, W, C]);
    const { diffs, shared } = oneVersusTwo(() => {
      const f = groupNormForward(x, gamma, beta, b, groups, 1e-5, swish);
      return [f.z, f.mc, f.r, f.k, f.scale, f.shift, ...groupNormBackward(dz, x, gamma, f, groups, swish)];
    });
    expect(diffs).toEqual(diffs.map(() => -1));
    // One forward and one backward call, each split unless there is a single sample.
    expect(shared).toBe(B === 1 ? 0 : 2);
    tf.dispose([x, gamma, beta, dz, ...(b === undefined ? [] : [b])]);
  });
});

describe.each([
  // [x shape, filter shape, stride, padding]: C·k² ≥ 16 rows split by rows (odd counts too), fewer by output channels
  { x: [1, 7, 7, 1], f: [3, 3, 1, 4], s: 1, pad: 'same' },
  { x: [3, 9, 9, 1], f: [3, 3, 1, 16], s: 1, pad: 'valid' },
  { x: [2, 9, 9, 1], f: [3, 3, 1, 12], s: 2, pad: 'same' },
  { x: [5, 9, 9, 3], f: [3, 3, 3, 20], s: 2, pad: 'valid' },
  { x: [3, 8, 8, 5], f: [3, 3, 5, 12], s: 2, pad: 'same' },
  { x: [1, 6, 5, 7], f: [2, 3, 7, 8], s: 1, pad: 'same' },
  { x: [9, 12, 12, 32], f: [3, 3, 32, 64], s: 2, pad: 'valid' },
] as const)('the conv filter gradient of x [$x] by f [$f], stride $s, $pad', ({ x: xs, f: fs, s, pad }) => {
  test('with the kernel thread is bit-identical to one thread', async () => {
    expect(await startKernelThread()).toBe(true);
    const ys = conv.conv2dOutputShape(xs, fs, s, pad);
    const x = random.normal(random.key(6), [...xs]) as tf.Tensor4D;
    const dy = random.normal(random.key(7), [...ys]) as tf.Tensor4D;
    const { diffs, shared } = oneVersusTwo(() => [conv.filterGradientFused(x, dy, fs, s, pad)]);
    expect(diffs).toEqual([-1]);
    expect(shared).toBe(1);
    tf.dispose([x, dy]);
  });
});

describe.each([
  // [x shape, transposed filter [kh, kw, C_out, C_in], stride, padding, output shape]: stride 1 with one or two outputs
  // is an overlap-add of per-pixel contributions; stride 2 with C_out a multiple of 4 one kernel that stores every sub-pixel
  // phase in place (on one thread: XNNPACK's phase convs and the interleaving), else an interleaving of the phases; odd
  // batches split unevenly
  { x: [3, 6, 6, 8], f: [3, 3, 1, 8], s: 1, pad: 'valid', out: [3, 8, 8, 1] },
  { x: [1, 5, 5, 8], f: [3, 3, 2, 8], s: 1, pad: 'same', out: [1, 5, 5, 2] },
  { x: [5, 5, 5, 8], f: [3, 3, 4, 8], s: 2, pad: 'valid', out: [5, 11, 11, 4] },
  { x: [2, 6, 6, 16], f: [3, 3, 8, 16], s: 2, pad: 'same', out: [2, 12, 12, 8] },
  { x: [3, 5, 5, 8], f: [3, 3, 2, 8], s: 2, pad: 'valid', out: [3, 11, 11, 2] },
] as const)('the transposed conv of x [$x] by f [$f], stride $s, $pad', ({ x: xs, f: fs, s, pad, out }) => {
  test('with the kernel thread (its overlap-add, phases in place or phase interleaving split by images) is bit-identical to one thread', async () => {
    expect(await startKernelThread()).toBe(true);
    const x = random.normal(random.key(13), [...xs]) as tf.Tensor4D;
    const f = random.normal(random.key(14), [...fs]) as tf.Tensor4D;
    const { diffs, shared } = oneVersusTwo(() => [conv.conv2dTranspose(x, f, [...out], s, pad)]);
    expect(diffs).toEqual([-1]);
    // one split call (the overlap-add, the phases or the interleaving) when there are two images or more
    expect(shared).toBe(xs[0] >= 2 ? 1 : 0);
    tf.dispose([x, f]);
  });
});

test.each([1, 2, 5, 64])('the N(0, I) rows of %i keys (split by rows: each row from its own key) are bit-identical with the kernel thread', async (b) => {
  expect(await startKernelThread()).toBe(true);
  const keys = Array.from({ length: b }, (_, i) => random.foldIn(random.key(21), i));
  const { diffs, shared } = oneVersusTwo(() => [random.normalPerSample(keys, [28, 28, 1])]);
  expect(diffs).toEqual([-1]);
  expect(shared).toBe(b >= 2 ? 1 : 0);
});

test.each([1, 2, 5, 64])('x + c·z with the N(0, I) rows of %i keys (split by rows, each part its normals then its scaled sum) is bit-identical with the kernel thread', async (b) => {
  expect(await startKernelThread()).toBe(true);
  const keys = Array.from({ length: b }, (_, i) => random.foldIn(random.key(22), i));
  const x = random.normal(random.key(23), [b, 28, 28, 1]);
  const { diffs, shared } = oneVersusTwo(() => [random.addNormalPerSample(x, keys, 0.37)]);
  expect(diffs).toEqual([-1]);
  expect(shared).toBe(b >= 2 ? 1 : 0);
  x.dispose();
});

describe.each([
  { n: 8, ema: true, clip: 1 },
  { n: 4099, ema: true, clip: 0.5 },
  { n: 1003, ema: false, clip: 0.25 },
  { n: 100_003, ema: true, clip: 1 },
])('Adam + EMA on $n elements (EMA: $ema, clip $clip)', ({ n, ema, clip }) => {
  test('with the kernel thread is bit-identical to one thread', async () => {
    expect(await startKernelThread()).toBe(true);
    const t = (k: number): tf.Tensor => random.normal(random.key(k), [n]);
    const [g, p, m, e] = [t(8), t(9), t(10), t(12)];
    const v = tf.abs(t(11));
    const scalars = { clip, beta1: 0.9, oneMinusBeta1: 0.1, beta2: 0.999, oneMinusBeta2: 0.001, bc2: 0.3, eps: 1e-8, step: 0.01, decay: 0.99, oneMinusDecay: 0.01 };
    const { diffs, shared } = oneVersusTwo(() => adamEmaStep(g, p, m, v, ema ? e : undefined, scalars));
    expect(diffs).toEqual(diffs.map(() => -1));
    expect(diffs.length).toBe(ema ? 4 : 3);
    expect(shared).toBe(1);
    tf.dispose([g, p, m, v, e]);
  });
});

test('calls below the measured minimum work stay on one thread', async () => {
  expect(await startKernelThread()).toBe(true);
  const x = random.normal(random.key(13), [2, 4, 4, 8]) as tf.Tensor4D;
  const [gamma, beta] = [tf.ones([8]), tf.zeros([8])];
  const before = kernelThreadStatus().splitCalls;
  const f = groupNormForward(x, gamma, beta, undefined, 2, 1e-5, true);
  expect(kernelThreadStatus().splitCalls).toBe(before);
  tf.dispose([x, gamma, beta, f.z, f.mc, f.r, f.k, f.scale, f.shift]);
});

/** The WebAssembly JS API this file uses (the project's TypeScript lib has no WebAssembly typings). */
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => { readonly buffer: SharedArrayBuffer };
  Module: new (bytes: Uint8Array) => unknown;
}

test('a part the main thread gave up on (timed out) is never run by the worker afterwards, and the next one is', async () => {
  // The fused module over a small shared memory of its own; a 1 ms timeout; the worker held back from the request until
  // after the main thread has given up on it (as a worker kept off busy cores), then released.
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const memory = new wasm.Memory({ initial: 1, maximum: 16, shared: true });
  const t = await startFusedKernelThread(new wasm.Module(await fusedKernelsBinary(true)), memory, 1);
  const heap = new Float32Array(memory.buffer);
  heap.set([1, 2, 3, 4], 0); // x [1, 1, 1, 4] at byte 0; its channel means go to byte 64, the variances to byte 128
  const statsAt = (mc: number, vc: number): KernelCall => ['gn_stats', 0, 1, 1, 4, mc, vc];
  t.hold(true);
  t.post([statsAt(64, 128)]);
  expect(t.wait()).toBe(false);
  t.hold(false);
  t.drain();
  // The main thread redoes a part it gave up on, and its caller may free those outputs: the worker must not write them.
  expect(Array.from(heap.subarray(16, 20))).toEqual([0, 0, 0, 0]);
  // The worker still takes and runs the next request (drained here: no 1 ms timeout to beat).
  t.post([statsAt(192, 256)]);
  t.drain();
  expect(Array.from(heap.subarray(48, 52))).toEqual([1, 2, 3, 4]);
});

test('a call that fails on the worker is reported as failed, and the worker’s error is printed', async () => {
  // x at a byte offset past the end of the memory: the worker's call traps (out of bounds).
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const memory = new wasm.Memory({ initial: 1, maximum: 16, shared: true });
  const t = await startFusedKernelThread(new wasm.Module(await fusedKernelsBinary(true)), memory, 5000);
  const lines: string[] = [];
  const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    t.post([['gn_stats', 4 * 65536, 1, 1, 4, 64, 128]]);
    expect(t.wait()).toBe(false);
    // The worker's message arrives on the event loop.
    for (let i = 0; i < 200 && !lines.some((l) => l.includes('failed:')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(lines.find((l) => l.includes('the kernel thread’s call 1 failed:'))).toMatch(/out of bounds/);
  } finally {
    write.mockRestore();
  }
});

test('a program whose only pending work is awaiting the kernel thread’s start does not exit before it has started', () => {
  // Run as its own process: the worker used to be unref'd before its first message, so Node, seeing nothing else to wait
  // for, exited (with status 0) in the middle of `await startKernelThread()`.
  const program = [
    "const tfp = require('@score-sde/tensor-fp');",
    '(async () => {',
    "  await tfp.initBackend({ prefer: 'wasm', quiet: true });",
    '  const started = await tfp.fused.startKernelThread();',
    "  process.stdout.write('started ' + started + '\\n');",
    '})();',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', program], {
    cwd: __dirname,
    env: { ...process.env, SCORE_SDE_WASM_THREADS: '2' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  expect(out).toContain('started true');
});

test('a wake-up without a new request (a late notify of one already run) is no call: nothing fails, the next call runs', async () => {
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const memory = new wasm.Memory({ initial: 1, maximum: 16, shared: true });
  const t = await startFusedKernelThread(new wasm.Module(await fusedKernelsBinary(true)), memory, 5000);
  const heap = new Float32Array(memory.buffer);
  heap.set([1, 2, 3, 4], 0);
  const lines: string[] = [];
  const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    for (let i = 0; i < 20; i++) {
      t.post([['gn_stats', 0, 1, 1, 4, 64, 128]]);
      expect(t.wait()).toBe(true);
      // The notify of the request just run, arriving after the worker went back to sleep.
      t.nudge();
      await new Promise((r) => setTimeout(r, 5));
    }
    t.post([['gn_stats', 0, 1, 1, 4, 192, 256]]);
    expect(t.wait()).toBe(true);
    expect(Array.from(heap.subarray(48, 52))).toEqual([1, 2, 3, 4]);
    await new Promise((r) => setTimeout(r, 50));
    expect(lines.filter((l) => l.includes('kernel thread'))).toEqual([]);
  } finally {
    write.mockRestore();
  }
});

describe('normals made ahead (random.normalPerSampleAhead: rows offered to the kernel thread, the rest made at take)', () => {
  const gnInBetween = (): void => {
    // split kernel calls while the job is on offer, as a score evaluation makes them
    const x = random.normal(random.key(31), [4, 8, 8, 8]) as tf.Tensor4D;
    const [gamma, beta] = [tf.ones([8]), tf.zeros([8])];
    const f = groupNormForward(x, gamma, beta, undefined, 2, 1e-5, true);
    tf.dispose([x, gamma, beta, f.z, f.mc, f.r, f.k, f.scale, f.shift]);
  };

  test.each([1, 2, 5, 64])('normalPerSampleAhead(keys, shape).take() = normalPerSample(keys, shape) bit for bit, for %i keys, with split calls in between', async (b) => {
    expect(await startKernelThread()).toBe(true);
    const keys = Array.from({ length: b }, (_, i) => random.foldIn(random.key(24), i));
    configureKernelThread({ enabled: false });
    const ref = random.normalPerSample(keys, [28, 28, 1]);
    configureKernelThread({ enabled: true, adaptive: false, minWork: { groupNorm: 0, normals: 0 } });
    const [rows, split] = [normalsAheadStatus().rows, kernelThreadStatus().splitCalls];
    const [tensors, buffers] = [tf.memory().numTensors, tf.backend().numDataIds()];
    const pending = random.normalPerSampleAhead(keys, [28, 28, 1]);
    gnInBetween();
    const z = pending.take();
    expect(firstBitDifference(z, ref)).toBe(-1);
    // it went through the kernel thread's job (not the draw at take), and the group norm was split meanwhile
    expect(normalsAheadStatus().rows - rows).toBe(b);
    expect(kernelThreadStatus().splitCalls - split).toBe(1);
    // the normals are one tensor of the current scope; the key words' heap buffer is freed
    expect([tf.memory().numTensors, tf.backend().numDataIds()]).toEqual([tensors + 1, buffers + 1]);
    expect(() => pending.take()).toThrow(/twice/);
    tf.dispose([z, ref]);
  });

  test('normals dropped unused (after a throw) free their memory and let the next job be offered', async () => {
    expect(await startKernelThread()).toBe(true);
    configureKernelThread({ enabled: true, adaptive: false, minWork: { normals: 0 } });
    const keys = [random.key(25), random.key(26)];
    // the job's buffers live on the backend's heap before they become a tensor: count the backend's buffers
    const [tensors, buffers] = [tf.memory().numTensors, tf.backend().numDataIds()];
    const rows = normalsAheadStatus().rows;
    random.normalPerSampleAhead(keys, [16]).dispose();
    expect([tf.memory().numTensors, tf.backend().numDataIds()]).toEqual([tensors, buffers]);
    const z = random.normalPerSampleAhead(keys, [16]).take();
    expect(normalsAheadStatus().rows - rows).toBe(4);
    configureKernelThread({ enabled: false });
    const ref = random.normalPerSample(keys, [16]);
    expect(firstBitDifference(z, ref)).toBe(-1);
    tf.dispose([z, ref]);
  });

  test.each([
    ['without the kernel thread', { enabled: false }],
    ['with background jobs turned off', { enabled: true, background: false }],
  ] as const)('%s the normals are drawn at take, with the same bits', async (_name, off) => {
    expect(await startKernelThread()).toBe(true);
    const keys = [random.key(27), random.key(28), random.key(29)];
    configureKernelThread(off);
    const rows = normalsAheadStatus().rows;
    const z = random.normalPerSampleAhead(keys, [28, 28, 1]).take();
    expect(normalsAheadStatus().rows).toBe(rows);
    configureKernelThread({ enabled: true, background: true, adaptive: false, minWork: { normals: 0 } });
    const ref = random.normalPerSampleAhead(keys, [28, 28, 1]).take();
    expect(normalsAheadStatus().rows - rows).toBe(3);
    expect(firstBitDifference(z, ref)).toBe(-1);
    tf.dispose([z, ref]);
  });
});

describe('a background job on a kernel thread of its own (offer / settle)', () => {
  // keys [rows, 2] int32 at byte 0, rows of n normals from byte 4096, the reference rows from byte 65536 (4 pages in all)
  const [n, KEYS, OUT, REF] = [16, 0, 4096, 65536];
  const job = (rows: number, out = OUT): [KernelCall, number[], number] => [['normals_rows', KEYS, 1, n, out], [8, 0, 0, 4 * n], rows];
  /**
   * The fused module over a small shared memory, its worker, and an instance of the module on this thread, with the keys
   * of `rows` rows and their reference normals written; `runHere(r)` makes row r on this thread and records it in `made`.
   */
  const setUp = async (rows: number) => {
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi & { Instance: new (m: unknown, i: unknown) => { exports: Record<string, (...a: number[]) => void> } } }).WebAssembly;
    const memory = new wasm.Memory({ initial: 4, maximum: 16, shared: true });
    const module = new wasm.Module(await fusedKernelsBinary(true));
    const t = await startFusedKernelThread(module, memory, 5000);
    const here = new wasm.Instance(module, { env: { memory } }).exports;
    const heap = new Float32Array(memory.buffer);
    new Int32Array(heap.buffer, KEYS, 2 * rows).set(Array.from({ length: 2 * rows }, (_, i) => (i * 2654435761) | 0));
    here['normals_rows']!(KEYS, rows, n, REF);
    const made: number[] = [];
    const runHere = (r: number): void => {
      made.push(r);
      here['normals_rows']!(KEYS + 8 * r, 1, n, OUT + 4 * r * n);
    };
    return { t, heap, made, runHere };
  };

  /** The first float32 where the job's rows differ from the reference rows in their bits (−1: none). */
  const rowsVersusReference = (heap: Float32Array, rows: number): number =>
    firstDifference(float32Bits(heap.subarray(OUT / 4, OUT / 4 + rows * n)), float32Bits(heap.subarray(REF / 4, REF / 4 + rows * n)));
  /** Waits (up to 10 s) until the worker has done every offered row, then settles: the rows made here (0 expected). */
  const settleAfterWorker = async (t: Awaited<ReturnType<typeof startFusedKernelThread>>): Promise<number> => {
    for (let i = 0; i < 1000 && t.backgroundLeft() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.backgroundLeft()).toBe(0);
    return t.settle(() => {
      throw new Error('no row is left for this thread');
    });
  };

  test('an idle worker makes every offered row; settle then makes none here', async () => {
    const rows = 40;
    const { t, heap } = await setUp(rows);
    t.offer(...job(rows));
    expect(await settleAfterWorker(t)).toBe(0);
    expect(rowsVersusReference(heap, rows)).toBe(-1);
  });

  test('rows a held worker has not reached are made at settle, each once, and the next job is the worker’s again', async () => {
    const rows = 6;
    const { t, heap, made, runHere } = await setUp(rows);
    // the worker is held before a request, so it reaches no background row
    t.hold(true);
    t.post([['normals_rows', KEYS, 1, n, 200000]]);
    t.offer(...job(rows));
    expect(t.settle(runHere)).toBe(rows);
    expect(made).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rowsVersusReference(heap, rows)).toBe(-1);
    t.hold(false);
    t.drain();
    // the released worker runs its request, then the next job's rows (none of the closed one's)
    heap.fill(0, OUT / 4, OUT / 4 + rows * n);
    t.offer(...job(rows));
    expect(await settleAfterWorker(t)).toBe(0);
    expect(rowsVersusReference(heap, rows)).toBe(-1);
  });

  test('rows raced for by the worker and settle are each made by one of them: every row right, the counts adding up', async () => {
    const rows = 400;
    const { t, heap, made, runHere } = await setUp(rows);
    for (let round = 0; round < 20; round++) {
      heap.fill(0, OUT / 4, OUT / 4 + rows * n);
      made.length = 0;
      t.offer(...job(rows));
      const own = t.settle(runHere);
      // this thread made each of its rows once, and the worker the rest
      expect(own).toBe(made.length);
      expect(new Set(made).size).toBe(made.length);
      expect(t.backgroundLeft()).toBe(0);
      expect(rowsVersusReference(heap, rows)).toBe(-1);
    }
  });

  test('a row that fails on the worker has the whole job redone at settle, and the worker’s error is printed', async () => {
    const { t } = await setUp(3);
    const lines: string[] = [];
    const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      // outputs past the end of the memory: the worker's rows trap
      t.offer(['normals_rows', KEYS, 1, n, 16 * 65536 + 64], [8, 0, 0, 4 * n], 3);
      for (let i = 0; i < 1000 && t.backgroundLeft() > 0; i++) await new Promise((r) => setTimeout(r, 10));
      const made: number[] = [];
      expect(t.settle((r) => made.push(r))).toBe(3);
      expect(made).toEqual([0, 1, 2]);
      for (let i = 0; i < 200 && !lines.some((l) => l.includes('background row')); i++) await new Promise((r) => setTimeout(r, 10));
      expect(lines.find((l) => l.includes('background row'))).toMatch(/out of bounds/);
    } finally {
      write.mockRestore();
    }
  });
});
