/** @score-sde/experiments */
export {};
export * from './lib';
export * as mnistEval from './eval';
