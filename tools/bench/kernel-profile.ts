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

/** One unprofiled run of a function: its wall time and the time spent inside the backend's kernels during it, ms. */
export interface SplitRun {
  readonly wall: number;
  readonly inKernels: number;
  readonly kernels: number;
}

/**
 * Runs `f` `n` times unprofiled, timing each outermost kernel call of the active backend (its registered `kernelFunc`,
 * wrapped for the duration; kernels a kernel calls count as its own time), so that each run's time outside kernels is its
 * wall − its own kernel time. (The profile's per-kernel minima over several runs against a median wall, the previous
 * estimate, count every kernel's run-to-run spread as time outside kernels.)
 */
export const splitRuns = (f: () => void, n: number): ReadonlyArray<SplitRun> => {
  const configs = tf.getKernelsForBackend(tf.getBackend());
  const originals = configs.map((c) => c.kernelFunc);
  let depth = 0;
  let inKernels = 0;
  let kernels = 0;
  configs.forEach((c, i) => {
    const original = originals[i]!;
    (c as { kernelFunc: tf.KernelConfig['kernelFunc'] }).kernelFunc = (args) => {
      if (depth > 0) return original(args);
      depth++;
      kernels++;
      const t0 = performance.now();
      try {
        return original(args);
      } finally {
        inKernels += performance.now() - t0;
        depth--;
      }
    };
  });
  try {
    return Array.from({ length: n }, () => {
      [inKernels, kernels] = [0, 0];
      const t0 = performance.now();
      f();
      return { wall: performance.now() - t0, inKernels, kernels };
    });
  } finally {
    configs.forEach((c, i) => ((c as { kernelFunc: tf.KernelConfig['kernelFunc'] }).kernelFunc = originals[i]!));
  }
};
