/**
 * The environment of a PyTorch peer process: this process's, less `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE`. This
 * machine sets them (a workaround for older OpenBLAS builds); with them set, torch's convolutions ran 20–40% slower
 * here, which flatters every ratio (issue 11). Only the peer's child process is changed: never tests or CI.
 *
 * @module bench/e2e/torch-env
 */

/** Variables removed from the PyTorch child's environment. */
export const TORCH_UNSET = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;

/** A copy of `env` without {@link TORCH_UNSET}. */
export const torchEnv = (env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv => {
  const out = { ...env };
  TORCH_UNSET.forEach((k) => delete out[k]);
  return out;
};
