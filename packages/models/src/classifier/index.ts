/**
 * The MNIST classifiers (clean: the FID feature extractor and judge; noise-conditional: the guide), one module per
 * concept: architecture, training, guidance, evaluation, store.
 * @module classifier
 */
export * from './architecture';
export * from './training';
export * from './guidance';
export * from './evaluation';
export * from './store';
