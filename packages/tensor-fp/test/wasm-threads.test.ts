/**
 * Multi-threaded wasm in Node: the request parsing and thread policy, and — in child processes, since Jest
 * keeps tests single-threaded — that a command-line program gets 2 threads, computes the same convolution,
 * exits on its own, and falls back to one thread with a message when the request is invalid.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, initBackend, random, nn, parseThreadsRequest, plannedThreads, MAX_WASM_THREADS } from '@score-sde/tensor-fp';

interface ChildResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

const CHILD = path.join(__dirname, 'fixtures', 'threads-child.ts');
const ROOT = path.join(__dirname, '..', '..', '..');

/** Runs the child with SCORE_SDE_WASM_THREADS = threads; a child that does not exit within 110 s is killed (a hang). */
const runChild = (threads: string): Promise<ChildResult> =>
  new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, SCORE_SDE_WASM_THREADS: threads };
    delete env['JEST_WORKER_ID'];
    execFile(process.execPath, ['--import', 'tsx', CHILD], { cwd: ROOT, env, timeout: 110_000 }, (err, stdout, stderr) =>
      resolve({ stdout, stderr, code: err === null ? 0 : typeof err.code === 'number' ? err.code : null }),
    );
  });

describe('SCORE_SDE_WASM_THREADS', () => {
  test('parses auto/empty, off/0/1, counts (capped at 8), and names the variable when it is wrong', () => {
    expect(parseThreadsRequest(undefined)).toEqual(E.right({ kind: 'auto' }));
    expect(parseThreadsRequest(' Auto ')).toEqual(E.right({ kind: 'auto' }));
    expect(parseThreadsRequest('off')).toEqual(E.right({ kind: 'count', n: 1 }));
    expect(parseThreadsRequest('0')).toEqual(E.right({ kind: 'count', n: 1 }));
    expect(parseThreadsRequest('2')).toEqual(E.right({ kind: 'count', n: 2 }));
    expect(parseThreadsRequest('64')).toEqual(E.right({ kind: 'count', n: MAX_WASM_THREADS }));
    expect(parseThreadsRequest('two')).toEqual(E.left('SCORE_SDE_WASM_THREADS: expected auto, off or a thread count, got "two"'));
    expect(E.isLeft(parseThreadsRequest('1.5'))).toBe(true);
  });

  test('auto = one thread per core outside Jest (at most 8), one thread under Jest; explicit counts are kept', () => {
    expect(plannedThreads({ kind: 'auto' }, 2, false)).toEqual({ threads: 2 });
    expect(plannedThreads({ kind: 'auto' }, 16, false)).toEqual({ threads: 8 });
    expect(plannedThreads({ kind: 'auto' }, 1, false).threads).toBe(1);
    expect(plannedThreads({ kind: 'auto' }, 4, true).threads).toBe(1);
    expect(plannedThreads({ kind: 'count', n: 2 }, 4, true)).toEqual({ threads: 2 });
  });
});

describe('a command-line process (child)', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
  });

  test('gets wasm (SIMD, 2 threads) and the fused kernels\' thread, equals the single-threaded conv, exits; an invalid request falls back to 1 thread and says so', async () => {
    const [two, bad] = await Promise.all([runChild('2'), runChild('lots')]);
    // Both exited by themselves (a hang would be killed by the timeout and have code null).
    expect([two.code, bad.code]).toEqual([0, 0]);
    expect(two.stderr).toMatch(/\[score-sde\] backend: wasm \(SIMD, 2 threads\)/);
    const got = JSON.parse(two.stdout) as { info: { threads: number }; status: { threads: number }; kernelThread: { running: boolean; reason?: string }; conv: number[] };
    expect([got.info.threads, got.status.threads]).toEqual([2, 2]);
    // The kernel thread ran and shared the group norm (unless it paused on a busy machine), and did not keep the child alive.
    // (its stderr beside it: on a failure it says why the thread did not run)
    expect({ ...got.kernelThread, stderr: two.stderr }).toMatchObject({ running: true });
    const single = JSON.parse(bad.stdout) as { kernelThread: { running: boolean } };
    expect(single.kernelThread.running).toBe(false);
    // The same conv here, single-threaded: XNNPACK splits the work by output tiles, not inside a sum, so the
    // two builds give bit-identical results.
    const x = random.normal(random.key(1), [2, 12, 12, 8]) as tf.Tensor4D;
    const f = random.normal(random.key(2), [3, 3, 8, 16]) as tf.Tensor4D;
    const y = nn.conv2d(x, f, 2, 'valid');
    expect(got.conv).toEqual(Array.from(y.dataSync()));
    tf.dispose([x, f, y]);

    expect(bad.stderr).toMatch(/wasm threads unavailable \(SCORE_SDE_WASM_THREADS: expected auto, off or a thread count, got "lots"\)/);
    expect(bad.stderr).toMatch(/backend: wasm \(SIMD, 1 thread\)/);
  });
});
