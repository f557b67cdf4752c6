/**
 * The named samplers of the MNIST experiment, as sampler specifications of the solvers package:
 * - `em`:  Euler–Maruyama on the reverse SDE, `steps` uniform steps, final denoising;
 * - `pc`:  Euler–Maruyama ∘ one Langevin corrector step (snr rule), `steps` steps (Song et al., Alg. 2–3), with
 *          the step size from each sample's own norms ('per-sample'; the reference averages them over the batch), so
 *          a sample never depends on its batch: batching and sharding over workers leave every digit unchanged, and
 *          in 784 dimensions the norms concentrate, so the per-sample rule is as stable as the batch mean;
 * - `ode`: the probability-flow ODE with adaptive Dormand–Prince 5(4) at rtol = atol = `odeTol`;
 * - `edm`: EDM's Heun 2nd-order sampler on the Karras grid (Karras et al. 2022);
 * - `dpm`: DPM-Solver++(2M) on the log-SNR grid (Lu et al. 2022) — VP / sub-VP only.
 *
 * @module mnist/samplers
 */
import * as E from 'fp-ts/Either';
import { type DecodeError } from '@score-sde/tensor-fp';
import type { SDE } from '@score-sde/sde-math';
import { type Sampler, type SamplerSpec, samplerFromSpec, gridOf } from '@score-sde/solvers';
import type { MnistSamplerName } from './flags';

/** What a named sampler needs to know. @category model */
export interface SamplerSettings {
  readonly steps: number;
  readonly fastSteps: number;
  readonly snr: number;
  readonly odeTol: number;
}

/**
 * The specification of a named sampler. The adaptive ODE is given a 20-interval grid: the solver carries its
 * step size across grid points, so the solve is the same while progress can be reported per interval.
 * @category samplers
 */
export const mnistSamplerSpec = (name: MnistSamplerName, s: SamplerSettings): SamplerSpec => {
  switch (name) {
    case 'em':
      return { kind: 'pc', predictor: 'euler-maruyama', corrector: 'none', steps: s.steps };
    case 'pc':
      return { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', correctorSteps: 1, snr: s.snr, norm: 'per-sample', steps: s.steps };
    case 'ode':
      return { kind: 'ode-adaptive', rtol: s.odeTol, atol: s.odeTol };
    case 'edm':
      return { kind: 'edm', steps: s.fastSteps };
    case 'dpm':
      return { kind: 'dpm-solver++2m', steps: s.fastSteps };
  }
};

/** The sampler value of a named sampler for an SDE (Left when the combination is not defined). @category samplers */
export const mnistSampler = (sde: SDE, name: MnistSamplerName, s: SamplerSettings): E.Either<DecodeError, Sampler> => {
  const spec = mnistSamplerSpec(name, s);
  const built = samplerFromSpec(sde, spec);
  if (name !== 'ode' || E.isLeft(built)) return built;
  const grid = gridOf(sde, 'uniform', 20, built.right.grid[built.right.grid.length - 1]!);
  return E.right({ ...built.right, grid });
};
