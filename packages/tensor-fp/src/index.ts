/**
 * @score-sde/tensor-fp — the typed, functional layer over TensorFlow.js, for Node: every module of the package
 * (`universal.ts`) and the Node-only parts (`node.ts`). A browser bundle imports `@score-sde/tensor-fp/browser`.
 * @module tensor-fp
 */
export * from './universal';
export * from './node';
