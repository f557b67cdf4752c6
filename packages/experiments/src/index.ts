/** @score-sde/experiments */
export {};
export * from './lib';
