/**
 * The fused kernels' binary in Node: `fused-kernels.wat` read from beside this file and assembled with the `wabt`
 * npm package, its memory import declared like the backend's memory. Importing this module registers it as the
 * default binary of `prepareFusedKernels`; the site build (`experiments:web`) writes the same two binaries
 * ({@link fusedKernelsBinary} with shared = false and true) for the browser.
 *
 * @module fused-wat
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { registerFusedBinary } from './fused-kernels';

/** The module's text with the memory import declared like the backend's memory (shared needs a maximum). */
const watSource = (shared: boolean): string =>
  fs
    .readFileSync(path.join(__dirname, 'fused-kernels.wat'), 'utf8')
    .replace('__MEMORY__', shared ? '(memory 1 65536 shared)' : '(memory 1)')
    // wabt's parser miscounts multi-byte characters (seen in comments): the maths in comments goes as '?'.
    .replace(/[^\x00-\x7f]/g, '?');

const assemble = async (source: string): Promise<Uint8Array> => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wabtFactory = require('wabt') as () => Promise<{
    parseWat(name: string, text: string, features: Record<string, boolean>): { toBinary(o: Record<string, boolean>): { buffer: Uint8Array }; destroy(): void };
  }>;
  const wabt = await wabtFactory();
  const parsed = wabt.parseWat('fused-kernels.wat', source, { simd: true, threads: true, bulk_memory: true });
  try {
    return parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
};

/**
 * The fused kernels as a WebAssembly binary: `fused-kernels.wat` with its memory import declared shared (the threaded
 * build's memory) or not, assembled by wabt.
 * @category setup
 */
export const fusedKernelsBinary = (shared: boolean): Promise<Uint8Array> => assemble(watSource(shared));

registerFusedBinary(fusedKernelsBinary);
