/**
 * Memory readings of the running process, for reports: resident set size now and at its peak, and the tensors
 * TensorFlow.js holds. The wasm heap only grows, so the peak RSS is what a machine must have; a tensor count that
 * rises from one epoch (or sampler) to the next is a leak.
 *
 * @module lib/memory
 */
import { tf } from '@score-sde/tensor-fp';

/** One reading: RSS now and the process's peak RSS (MiB), live tensors and their bytes (MiB). @category model */
export interface MemoryReading {
  readonly rssMb: number;
  readonly peakRssMb: number;
  readonly tensors: number;
  readonly tensorMb: number;
}

const MB = 1024 * 1024;
const round1 = (v: number): number => Math.round(v * 10) / 10;

/**
 * Reads memory now: rss = process.memoryUsage().rss, peak = getrusage's ru_maxrss (KiB on Linux), tensors =
 * tf.memory().numTensors. Values in MiB, rounded to 0.1.
 * @category reading
 */
export const readMemory = (): MemoryReading => {
  const m = tf.memory();
  return {
    rssMb: round1(process.memoryUsage().rss / MB),
    peakRssMb: round1(process.resourceUsage().maxRSS / 1024),
    tensors: m.numTensors,
    tensorMb: round1(m.numBytes / MB),
  };
};

/** `RSS 812.3 MB (peak 1,650.0 MB), 57 tensors (4.4 MB)`. @category reading */
export const describeMemory = (r: MemoryReading): string =>
  `RSS ${r.rssMb.toLocaleString('en')} MB (peak ${r.peakRssMb.toLocaleString('en')} MB), ${r.tensors} tensors (${r.tensorMb} MB)`;
