/**
 * @score-sde/tensor-fp/testing — test support shared by every package's property tests: identities declared as data
 * whose assertions record their margins (see `identity.ts`). Not part of the library's index.
 * @module tensor-fp/testing
 */
export * from './identity';
