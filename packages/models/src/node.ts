/**
 * `@score-sde/models/node` — the Node-only parts: training (its fault points), the weights store on the file system
 * (saving, loading directories), checkpoints and classifiers saved and loaded as directories, MNIST's IDX files, the
 * PyTorch twin's safetensors files, FID, and the test-only fault hooks. The package index re-exports it.
 * @module node
 */
export * from './train';
export * from './train-loop';
export * from './weights-store';
export * from './checkpoint';
export * from './mnist';
export * as safetensors from './safetensors';
export * from './torch-twin';
export * as fid from './fid';
export * as classifier from './classifier/index';
export * as tensorFiles from './tensor-files';
export * as faults from './faults';
