/**
 * `experiments:mnist --eval <parts>`: the evaluation of `experiments:mnist-eval` on the checkpoint the run just wrote,
 * into `<out>/eval`, with the run's sampler settings and seed carried over. The options are built directly (no
 * command line in between): the evaluation's defaults, and from the run `--eval` (the parts), `--eval-samples` (the
 * comparison's n), the recipe's em/pc steps and snr (every em/pc sampler) and end noise level (every sampler), the
 * likelihood's start for the recipe's SDE and data range (eval/flags `bpdStartOf`), the recipe's guidance weights (every
 * guided sampler of the comparison), `--seed` and `--quiet`.
 *
 * @module run-evaluation
 */
import * as path from 'node:path';
import type { MnistFlags } from './mnist/flags';
import { type Recipe, samplerSettingsOf } from './pipeline';
import { type EvaluationOptions, DEFAULT_EVALUATION, defaultComparedSamplers } from './eval/options';
import { bpdStartOf } from './eval/flags';

/** Where the evaluation of a run writes: `<out>/eval`. @category config */
export const evalDirOf = (out: string): string => path.join(out, 'eval');

/** The evaluation options of a run with flags `f` and output folder `out` (see the module comment). @category config */
export const evaluationOptionsOfRun = (f: MnistFlags, recipe: Recipe, out: string): EvaluationOptions => {
  const D = DEFAULT_EVALUATION;
  const { steps, snr, endNoise, guidance } = samplerSettingsOf(recipe);
  const end = endNoise !== undefined ? { endNoise } : {};
  const sampler = { ...D.conditional.sampler, steps, snr, ...end };
  return {
    ...D,
    checkpoint: path.join(out, 'checkpoint'),
    parts: D.parts.filter((p) => f.eval.includes(p)),
    seed: f.seed,
    quiet: f.quiet,
    // a class-conditional run's evaluation compares its labelled samplers too
    samplers: { ...D.samplers, samplers: defaultComparedSamplers(recipe.conditional !== undefined), samples: f.evalSamples, steps, snr, ...end, ...(guidance !== undefined ? { guidance } : {}) },
    bpd: { ...D.bpd, eps: bpdStartOf({ sde: recipe.sde, dataRange: recipe.dataRange }, D.bpd.cells) },
    conditional: { ...D.conditional, sampler },
    inpainting: { ...D.inpainting, sampler },
  };
};
