/**
 * Cheaper kernels for the wasm backend, registered in place of tfjs 4.22's own (issue 6: "if a lever needs a
 * new kernel, register it for the backend rather than forking tfjs"). Each gives bit-identical results.
 *
 * - `Identity` shares the input's buffer (refcounted, as the wasm `Reshape` and the cpu backend's `Identity`
 *   do) instead of copying it. tfjs clones every tensor it saves for backprop, so on wasm each saved
 *   activation was a full copy; no kernel writes into its inputs, so sharing is safe.
 * - `BatchMatMul` with `transposeA`/`transposeB` transposes the operand first (XNNPACK) and multiplies without
 *   flags: wasm's transposed matMul paths are 4–8× slower than the plain one, and tfjs' matMul gradient uses
 *   them for both ∂/∂a and ∂/∂b (every Dense layer's backward pass).
 *
 * Imported for its effect by the package index, before any backend is initialised.
 *
 * @module wasm-kernels
 */
import '@tensorflow/tfjs-backend-wasm';
import { tf } from './tf';

type KernelFunc = tf.KernelConfig['kernelFunc'];
type Info = tf.TensorInfo;

interface WasmBackendLike {
  incRef(dataId: unknown): void;
  disposeData(dataId: unknown): boolean;
}

/** Re-registers `name` for wasm with `make(original)`, keeping the original's setup and dispose hooks. */
const override = (name: string, make: (original: KernelFunc) => KernelFunc): boolean => {
  const original = tf.getKernel(name, 'wasm');
  if (original === undefined) return false;
  tf.unregisterKernel(name, 'wasm');
  tf.registerKernel({ ...original, kernelFunc: make(original.kernelFunc) });
  return true;
};

/** Identity(x) = x, sharing x's buffer. @category kernels */
const sharingIdentity =
  (original: KernelFunc): KernelFunc =>
  (args) => {
    const x = (args.inputs as { x: Info }).x;
    if (x.dtype === 'string') return original(args);
    (args.backend as unknown as WasmBackendLike).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };

/** a·b with transposes done by the Transpose kernel: (aᵀ)·b = transpose(a)·b, a·(bᵀ) = a·transpose(b). */
const transposingBatchMatMul =
  (original: KernelFunc): KernelFunc =>
  (args) => {
    const attrs = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    const transpose = tf.getKernel('Transpose', 'wasm');
    if ((attrs.transposeA !== true && attrs.transposeB !== true) || transpose === undefined) return original(args);
    const { a, b } = args.inputs as { a: Info; b: Info };
    const backend = args.backend as unknown as WasmBackendLike;
    const swapLast = (t: Info): Info => {
      const r = t.shape.length;
      const perm = [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];
      return transpose.kernelFunc({ inputs: { x: t }, attrs: { perm }, backend: args.backend }) as Info;
    };
    const a2 = attrs.transposeA === true ? swapLast(a) : a;
    const b2 = attrs.transposeB === true ? swapLast(b) : b;
    try {
      return original({ ...args, inputs: { a: a2, b: b2 }, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
    } finally {
      if (a2 !== a) backend.disposeData(a2.dataId);
      if (b2 !== b) backend.disposeData(b2.dataId);
    }
  };

/** Which overrides are installed (for tests and the benchmark notes). @category queries */
export const wasmKernelOverrides: ReadonlyArray<string> = [
  ...(override('Identity', sharingIdentity) ? ['Identity'] : []),
  ...(override('BatchMatMul', transposingBatchMatMul) ? ['BatchMatMul'] : []),
];
