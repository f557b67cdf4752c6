/**
 * `@score-sde/tensor-fp/node` — the Node-only parts: the backend chooser of Node programs (tfjs-node → wasm from
 * `node_modules` → cpu, `SCORE_SDE_BACKEND`), the threaded wasm build started from a file (`wasm-threads.ts`), and the
 * fused kernels assembled from their text with wabt (`fused-wat.ts`) and their second thread (`fused-thread.ts`). The package
 * index re-exports it.
 * @module node
 */
export * from './backend-node';
export * from './wasm-threads';
export { fusedKernelsBinary } from './fused-wat';
export { startFusedKernelThread } from './fused-thread';
