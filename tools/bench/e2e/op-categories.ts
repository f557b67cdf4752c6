/**
 * Kernel categories for comparing where a step's time goes in the project and in PyTorch (`profile.ts --peer`); the
 * PyTorch peer sums its ops into the same names (`op_category` in `e2e_torch.py`).
 *
 * - convolutions and matrix products: every convolution forward and backward (transposed ones included, with the
 *   phase interleave and overlap-add that ours take, as PyTorch's take im2col/col2im) and the dense layers' products;
 * - group norm and swish: the fused group norm + swish and its gradient (PyTorch: group norm, sigmoid and their
 *   gradients; its swish product x·σ(x) is an `aten::mul`, counted with the element-wise ops);
 * - concat, split and copies;
 * - optimiser (Adam, clipping, EMA);
 * - element-wise and other kernels: the rest;
 * and, beside them, the wall time outside every kernel (the framework's bookkeeping and the host language).
 *
 * @module bench/e2e/op-categories
 */
import type { KernelCall } from '../kernel-profile';

/** The categories, in table order. */
export const OP_CATEGORIES = [
  'convolutions and matrix products',
  'group norm and swish',
  'concat, split and copies',
  'optimiser (Adam, clipping, EMA)',
  'element-wise and other ops',
] as const;
export type OpCategory = (typeof OP_CATEGORIES)[number];

const BY_KERNEL: Readonly<Record<string, OpCategory>> = {
  Conv2D: 'convolutions and matrix products',
  Conv2DBackpropInput: 'convolutions and matrix products',
  Conv2DBackpropFilter: 'convolutions and matrix products',
  ScoreSdeConvFilterGrad: 'convolutions and matrix products',
  DepthwiseConv2dNative: 'convolutions and matrix products',
  BatchMatMul: 'convolutions and matrix products',
  _FusedMatMul: 'convolutions and matrix products',
  ScoreSdeInterleavePhases: 'convolutions and matrix products',
  ScoreSdeOverlapAdd: 'convolutions and matrix products',
  ScoreSdeGroupNorm: 'group norm and swish',
  ScoreSdeGroupNormGrad: 'group norm and swish',
  Sigmoid: 'group norm and swish',
  AvgPool: 'group norm and swish',
  Concat: 'concat, split and copies',
  SplitV: 'concat, split and copies',
  Slice: 'concat, split and copies',
  Pad: 'concat, split and copies',
  Tile: 'concat, split and copies',
  ScoreSdeAdamEma: 'optimiser (Adam, clipping, EMA)',
};

/** The category of one of our kernels (by its registered name). */
export const categoryOfKernel = (name: string): OpCategory => BY_KERNEL[name] ?? 'element-wise and other ops';

/** Kernel milliseconds summed by category. */
export const categorySums = (calls: ReadonlyArray<KernelCall>): Readonly<Record<OpCategory, number>> => {
  const sums = Object.fromEntries(OP_CATEGORIES.map((c) => [c, 0])) as Record<OpCategory, number>;
  calls.forEach((k) => (sums[categoryOfKernel(k.name)] += k.ms));
  return sums;
};
