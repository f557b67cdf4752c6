/**
 * The MNIST evaluation (`nx run experiments:mnist-eval`): FID with a self-trained classifier, bits/dim, the
 * sampler comparison, class-conditional guidance, inpainting and latent interpolation.
 * @module eval
 */
export * from './options';
export * from './flags';
export * from './common';
export * from './classifiers';
export * from './fid';
export * from './compare';
export * from './bpd';
export * from './conditional';
export * from './inpainting';
export * from './interpolation';
export * from './report';
export * from './run';
