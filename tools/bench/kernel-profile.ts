/**
 * Kernel times of a function, for the profiling scripts of the benchmarks.
 *
 * @module bench/kernel-profile
 */
import { tf } from '@score-sde/tensor-fp';

/** One kernel call of a profile: kernel name, input shapes, milliseconds. */
export interface KernelCall {
  readonly name: string;
  readonly shapes: string;
  readonly ms: number;
}

/**
 * The kernel calls of `f` under `tf.profile`, each call's time the minimum over `n` profiled runs (the sequence of calls
 * is the same every run), which filters out preemption by other processes on a shared machine; and the wall medians.
 */
export const kernelCalls = async (f: () => void, n: number): Promise<{ readonly calls: ReadonlyArray<KernelCall>; readonly walls: ReadonlyArray<number> }> => {
  const runs: Array<ReadonlyArray<KernelCall>> = [];
  const walls: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const prof = await tf.profile(() => f());
    walls.push(performance.now() - t0);
    runs.push(
      prof.kernels
        .filter((k) => k.name !== 'unnamed scope')
        .map((k) => ({ name: k.name, shapes: k.inputShapes.map((sh) => `[${(sh ?? []).join(',')}]`).join(' '), ms: typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0 })),
    );
  }
  return { calls: runs[0]!.map((k, i) => ({ ...k, ms: Math.min(...runs.map((r) => r[i]?.ms ?? Infinity)) })), walls };
};
