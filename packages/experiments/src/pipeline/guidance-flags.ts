/**
 * `--cfg-weight` and `--autoguidance-weight`, the flags of `experiments:mnist` and `experiments:mnist-eval` that replace
 * the guided samplers' own weights ({@link CFG_WEIGHTS}, {@link AUTOGUIDANCE_WEIGHTS}), and the {@link GuidanceWeights}
 * they stand for. Node-only (it uses the command-line module), so the pipeline's index does not re-export it: the
 * browser bundle takes pipeline/samplers without it.
 *
 * @module pipeline/guidance-flags
 */
import { codec } from '@score-sde/tensor-fp';
import { cli } from '../lib';
import { AUTOGUIDANCE_WEIGHTS, CFG_WEIGHTS, type GuidanceWeights } from './samplers';

const listed = (weights: Readonly<Partial<Record<string, number>>>): string =>
  Object.entries(weights)
    .map(([n, w]) => `${n} ${w}`)
    .join(', ');

/**
 * The two weight flags, each optional and positive; `role` says what the samplers do in the command ('drawn',
 * 'compared').
 * @category flags
 */
export const guidanceWeightFlags = (role: string) =>
  ({
    cfgWeight: cli.optional(
      cli.numberFlag(codec.PositiveFinite, {
        description: `classifier-free guidance weight w of the guided samplers ${role}, s(x | ∅) + w (s(x | y) − s(x | ∅)), in place of their own (${listed(CFG_WEIGHTS)})`,
      }),
    ),
    autoguidanceWeight: cli.optional(
      cli.numberFlag(codec.PositiveFinite, {
        description: `autoguidance weight w_g of the autoguided samplers ${role}, s_guide + w_g (s − s_guide), in place of their own (${listed(AUTOGUIDANCE_WEIGHTS)})`,
      }),
    ),
  }) as const;

/**
 * Weights `own` with the flags' given ones in place: {...own, cfg?, autoguidance?}; nothing at all gives no `guidance`
 * field (so a recipe or a comparison without guidance is written as before).
 * @category flags
 */
export const guidanceWithFlags = (
  own: GuidanceWeights | undefined,
  flags: { readonly cfgWeight?: number; readonly autoguidanceWeight?: number },
): { readonly guidance?: GuidanceWeights } => {
  const g = { ...own, ...(flags.cfgWeight !== undefined ? { cfg: flags.cfgWeight } : {}), ...(flags.autoguidanceWeight !== undefined ? { autoguidance: flags.autoguidanceWeight } : {}) };
  return Object.keys(g).length === 0 ? {} : { guidance: g };
};
