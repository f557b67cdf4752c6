/**
 * The tfjs configurations the ScoreNet benchmark can measure: a backend plus the environment that selects
 * threads and convolution kernels (see `wasm-threads.ts` and `conv.ts` of tensor-fp).
 *
 * @module bench/scorenet/variants
 */

/** A measured configuration. */
export interface VariantSpec {
  readonly backend: 'wasm' | 'cpu' | 'tensorflow';
  readonly env: Readonly<Record<string, string>>;
  readonly describe: string;
  /** Measured unless `--backends` says otherwise. */
  readonly byDefault: boolean;
}

export const VARIANTS = {
  wasm: { backend: 'wasm', env: {}, describe: 'the default: plain-conv kernels, threads = cores', byDefault: true },
  'wasm-1thread': { backend: 'wasm', env: { SCORE_SDE_WASM_THREADS: '1' }, describe: 'plain-conv kernels, 1 thread', byDefault: false },
  'wasm-tfjs': {
    backend: 'wasm',
    env: { SCORE_SDE_WASM_THREADS: '1', SCORE_SDE_CONV: 'tfjs' },
    describe: 'tfjs 4.22 as shipped: its own conv kernels, 1 thread (no conv filter gradient: no training)',
    byDefault: false,
  },
  cpu: { backend: 'cpu', env: {}, describe: 'plain JavaScript', byDefault: true },
  tensorflow: { backend: 'tensorflow', env: {}, describe: 'tfjs-node (libtensorflow), when installed', byDefault: true },
} as const satisfies Record<string, VariantSpec>;

export type Variant = keyof typeof VARIANTS;
