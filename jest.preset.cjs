// Shared Jest configuration: every package tests its TypeScript sources directly (no build step),
// resolving workspace packages to their src/index.ts.
const path = require('node:path');

module.exports = (name) => ({
  displayName: name,
  rootDir: path.join(__dirname, 'packages', name),
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: path.join(__dirname, 'tsconfig.jest.json'), diagnostics: false }],
  },
  moduleNameMapper: {
    '^@score-sde/tensor-fp/testing$': path.join(__dirname, 'packages/tensor-fp/src/testing/index.ts'),
    '^@score-sde/(tensor-fp|sde-math|solvers|models)/(browser|node)$': path.join(__dirname, 'packages/$1/src/$2.ts'),
    '^@score-sde/(tensor-fp|sde-math|solvers|models|experiments)$': path.join(__dirname, 'packages/$1/src/index.ts'),
  },
  // One fast-check configuration: seed FC_SEED (default 42), FC_NUM_RUNS cases per property when set. After the
  // framework is installed: it loads @score-sde/tensor-fp/testing, whose margin recorder needs Jest's afterAll.
  setupFilesAfterEnv: [path.join(__dirname, 'tools/test-support/fast-check-setup.ts')],
  testTimeout: 120000,
  slowTestThreshold: 30,
});
