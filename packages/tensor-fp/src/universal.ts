/**
 * The part of tensor-fp that runs on any host (Node or a browser): no Node built-in, no Node global. The package's
 * index (Node) and its `browser` entry both re-export it, each with its host's backend chooser.
 * @module universal
 */
export { tf } from './tf';
export type { Tensor, Rank } from './tf';
export * as random from './random';
export type { Key } from './random';
export * as codec from './codec';
export type { DecodeError } from './codec';
export * from './backend';
export * from './env';
export * from './memory';
export * from './event-loop';
export * as nn from './nn';
export { wasmKernelOverrides } from './wasm-kernels';
export * as conv from './conv';
export * from './shape';
export { customGradLazy } from './custom-grad';
export type { CustomOp, GradThunks } from './custom-grad';
export * as fused from './fused-kernels';
export { derivedOnce, configureDerived, derivedTensorCount } from './derived';
export type { Derivation } from './derived';
