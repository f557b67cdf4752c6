/**
 * Jest set-up file (jest.preset.cjs `setupFilesAfterEnv`): every test file's fast-check runs with the seed FC_SEED
 * (default 42) and, when FC_NUM_RUNS is set, that many cases per property. See
 * `packages/tensor-fp/src/testing/fast-check.ts`.
 */
import fc from 'fast-check';
import { globalParameters, readFastCheckEnv, useFastCheckEnv } from '@score-sde/tensor-fp/testing';

const env = readFastCheckEnv(process.env);
useFastCheckEnv(env);
fc.configureGlobal(globalParameters(env));
