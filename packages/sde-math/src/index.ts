/**
 * @score-sde/sde-math — SDEs as data, and pure functions over them.
 * @module sde-math
 */
export * from './sde';
export * from './dynamics';
export * from './noise-level';
export * from './parameterisation';
export * from './mixture';
export * from './gaussian-flow';
export * from './sample-statistics';
