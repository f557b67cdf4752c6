// ESLint for the whole workspace (flat config): typescript-eslint's recommended rules, plus the house rules that
// keep code functional and honest. Run per package by the Nx `lint` target, or `npx eslint packages tools`.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/out/**', '**/dist/**', '**/.*.ts', '**/*.tmp.ts', '**/*.cjs', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // Randomness comes from tensor-fp keys only.
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Use tensor-fp random keys (random.key, split, foldIn).' }],
      'no-var': 'error',
      'prefer-const': 'error',
      eqeqeq: ['error', 'always'],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // Tests may use focused helpers and non-null assertions freely.
    files: ['**/test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);
