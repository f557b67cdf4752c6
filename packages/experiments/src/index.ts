/**
 * @score-sde/experiments — the runnable experiments and what they share: the command-line library (flags, PNG
 * grids, plots, progress, reports), the MNIST pipeline (named samplers, the draw routine, worker threads), the
 * evaluation, and the toy check on Gaussian mixtures. Tools (the benchmarks) import it through this entry only.
 * @module experiments
 */
export * from './lib';
export * as pipeline from './pipeline';
export * as mnistEval from './eval';
export * as toy from './toy/index';
export * as site from './site';
export { mnistFlags, recipeOfFlags, type MnistFlags } from './mnist/flags';
