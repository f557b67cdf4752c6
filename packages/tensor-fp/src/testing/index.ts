/**
 * @score-sde/tensor-fp/testing — test support shared by every package's property tests: identities declared as data
 * whose assertions record their margins (see `identity.ts`), and the one fast-check configuration (seed FC_SEED,
 * FC_NUM_RUNS cases; `runs(n)`, see `fast-check.ts`). Not part of the library's index.
 * @module tensor-fp/testing
 */
export * from './identity';
export * from './fast-check';
