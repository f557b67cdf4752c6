/**
 * @score-sde/tensor-fp — the typed, functional layer over TensorFlow.js.
 * @module tensor-fp
 */
export { tf } from './tf';
export type { Tensor, Rank } from './tf';
export * as random from './random';
export type { Key } from './random';
export * as codec from './codec';
export type { DecodeError } from './codec';
export * from './backend';
export * from './memory';
export * from './event-loop';
export * as nn from './nn';
export * from './wasm-threads';
export { wasmKernelOverrides } from './wasm-kernels';
export * as conv from './conv';
export * from './shape';
export { customGradLazy } from './custom-grad';
export type { CustomOp, GradThunks } from './custom-grad';
export * as fused from './fused-kernels';
