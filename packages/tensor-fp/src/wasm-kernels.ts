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
 * - `Concat` of equal shapes and `SplitV` into equal parts along an inner axis go through one transpose
 *   (C++) and whole-tensor copies: tfjs copies one row at a time through a new typed-array view, so splitting a
 *   [64, 26, 26, 64] gradient along channels (the backward pass of a U-Net skip connection) took ~20 ms
 *   instead of ~3. (A JavaScript element loop is no better: typed arrays on the shared wasm heap are slow.)
 *   `SplitV` along the outermost axis (any part sizes) is one contiguous copy per part: the optimiser splits
 *   its flat [P] update back into ~30 parameter tensors, which tfjs' kernel did by copying all of x per part.
 *   Once the fused kernels are ready, `fused-kernels.ts` serves both in one pass of row copies, these as its fallback.
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

interface WasmHeapBackend extends WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(t: Info): Float32Array | Int32Array | Uint8Array;
}

const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);
const numeric = (t: Info): boolean => t.dtype === 'float32' || t.dtype === 'int32';
const sameShape = (ts: ReadonlyArray<Info>): boolean => ts.every((t) => t.shape.length === ts[0]!.shape.length && t.shape.every((d, i) => d === ts[0]!.shape[i]));

/** The wasm kernels the overrides compose (looked up when they run, after the backend's setup). */
const kernel = (name: string): KernelFunc => {
  const k = tf.getKernel(name, 'wasm');
  if (k === undefined) throw new Error(`wasm kernel ${name} is not registered`);
  return k.kernelFunc;
};

/**
 * concat of k same-shape tensors along axis a ≥ 1: with outer = ∏ shape[:a] and inner = ∏ shape[a:], stack
 * them whole ([k, outer·inner]: k contiguous copies) and transpose [k, outer, inner] → [outer, k, inner]
 * (one C++ pass), instead of a typed-array view per (outer index, input). Other cases: tfjs' kernel.
 */
const stackingConcat =
  (original: KernelFunc): KernelFunc =>
  (args) => {
    const inputs = (Array.isArray(args.inputs) ? args.inputs : Object.values(args.inputs)) as Info[];
    if (inputs.length < 2 || !inputs.every(numeric) || !sameShape(inputs) || !inputs.every((t) => t.dtype === inputs[0]!.dtype)) return original(args);
    const shape = inputs[0]!.shape;
    const axis = tf.util.parseAxisParam((args.attrs as { axis: number | number[] }).axis, shape)[0]!;
    const [outer, inner] = [sizeOf(shape.slice(0, axis)), sizeOf(shape.slice(axis))];
    if (outer === 1 || inner === 0) return original(args);
    const backend = args.backend as unknown as WasmHeapBackend;
    const flats = inputs.map((t) => kernel('Reshape')({ inputs: { x: t }, attrs: { shape: [1, outer * inner] }, backend: args.backend }) as Info);
    const stacked = original({ inputs: flats as unknown as tf.NamedTensorInfoMap, attrs: { axis: 0 }, backend: args.backend }) as Info;
    flats.forEach((f) => backend.disposeData(f.dataId));
    const k = inputs.length;
    const out = kernel('Transpose')({ inputs: { x: { ...stacked, shape: [k, outer, inner] } }, attrs: { perm: [1, 0, 2] }, backend: args.backend }) as Info;
    backend.disposeData(stacked.dataId);
    return { ...out, shape: shape.map((d, i) => (i === axis ? k * d : d)) };
  };

/**
 * split of x into k parts along axis a: along the outermost non-unit axis (outer = ∏ shape[:a] = 1) each part,
 * equal or not, is one contiguous copy (e.g. a flat vector of all parameters split back into tensors); otherwise
 * equal parts go through one transpose [outer, k, inner] → [k, outer, inner] (one C++ pass) and then one
 * contiguous copy each. (tfjs' kernel slices each part row by row, and its Slice first copies the whole input
 * out of the wasm heap.) Unequal parts along an inner axis: tfjs' kernel.
 */
const transposingSplitV =
  (original: KernelFunc): KernelFunc =>
  (args) => {
    const x = (args.inputs as { x: Info }).x;
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, ax);
    const k = sizes.length;
    const outer = sizeOf(x.shape.slice(0, ax));
    if (k < 2 || !numeric(x) || sizes.some((n) => n <= 0)) return original(args);
    const backend = args.backend as unknown as WasmHeapBackend;
    const rest = sizeOf(x.shape.slice(ax + 1));
    if (outer === 1) {
      // Along the outermost (non-unit) axis every part, equal or not, is one contiguous range of x.
      const outs = sizes.map((n) => backend.makeOutput(x.shape.map((d, i) => (i === ax ? n : d)), x.dtype));
      const src = backend.typedArrayFromHeap(x);
      let offset = 0;
      outs.forEach((o, i) => {
        const n = sizes[i]! * rest;
        backend.typedArrayFromHeap(o).set(src.subarray(offset, offset + n));
        offset += n;
      });
      return outs;
    }
    if (sizes.some((n) => n !== sizes[0])) return original(args);
    const inner = sizes[0]! * rest;
    const parts = kernel('Transpose')({ inputs: { x: { ...x, shape: [outer, k, inner] } }, attrs: { perm: [1, 0, 2] }, backend: args.backend }) as Info;
    const partShape = x.shape.map((d, i) => (i === ax ? sizes[0]! : d));
    // Each part is a contiguous range of `parts`: one copy each. (Not the Slice kernel: on wasm it first reads
    // the whole input out of the heap.) Views are taken after all allocations, which may grow the heap.
    const outs = sizes.map(() => backend.makeOutput(partShape, x.dtype));
    const src = backend.typedArrayFromHeap(parts);
    const n = outer * inner;
    outs.forEach((o, i) => backend.typedArrayFromHeap(o).set(src.subarray(i * n, (i + 1) * n)));
    backend.disposeData(parts.dataId);
    return outs;
  };

/** Which overrides are installed (for tests and the benchmark notes). @category queries */
export const wasmKernelOverrides: ReadonlyArray<string> = [
  ...(override('Identity', sharingIdentity) ? ['Identity'] : []),
  ...(override('BatchMatMul', transposingBatchMatMul) ? ['BatchMatMul'] : []),
  ...(override('Concat', stackingConcat) ? ['Concat'] : []),
  ...(override('SplitV', transposingSplitV) ? ['SplitV'] : []),
];
