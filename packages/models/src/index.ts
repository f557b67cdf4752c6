/** @score-sde/models */
export * from './params';
export * from './scorenet';
export * from './score';
export * from './loss';
export * from './optim';
export * from './ema';
export * from './data-range';
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
