/** @score-sde/experiments */
export {};
export * from './lib';
export * as mnistEval from './eval';
export * as shard from './lib/shard';
