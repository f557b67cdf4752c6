/** @score-sde/models */
export * from './params';
export * from './scorenet';
export * from './score';
export * from './loss';
export * from './optim';
export * from './ema';
export * from './train';
export * from './checkpoint';
export * from './mnist';
export * as fid from './fid';
export * as classifier from './classifier';
export * as tensorFiles from './tensor-files';
export * as faults from './faults';
