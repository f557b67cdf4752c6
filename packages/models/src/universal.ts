/**
 * The part of the models package that runs on any host (Node or a browser): the network, its parameters and score,
 * the losses, optimiser and EMA as functions, a run's configuration and state, and the reading of stored weights and
 * checkpoints from any source. The package's index (Node) and its `browser` entry both re-export it.
 * @module universal
 */
export * from './params';
export * from './scorenet';
export * from './score';
export * from './loss';
export * from './optim';
export * from './ema';
export * from './data-range';
export * from './train-config';
export * from './weights-load';
export * from './checkpoint-format';
export * from './store-source';
