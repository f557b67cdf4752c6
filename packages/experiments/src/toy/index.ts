/**
 * The toy check (`experiments:toy`): a sampler run with the exact score of a Gaussian mixture, its samples compared
 * with the exact distribution.
 * @module toy
 */
export * from './spec';
export * from './run';
export * from './check';
