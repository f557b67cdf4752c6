/**
 * What the MNIST commands share, so that `mnist/` (training and sampling) and `eval/` (the evaluation) never import
 * each other: the named samplers, the random streams, the one draw routine (in process and over worker threads),
 * the score model of a checkpoint, the evaluation's part names, and the error type.
 *
 * @module pipeline
 */
export * from './messages';
export * from './keys';
export * from './parts';
export * from './samplers';
export * from './model';
export * from './draw';
export * from './workers';
export * from './train-workers';
export * from './recipe';
export * from './shards';
