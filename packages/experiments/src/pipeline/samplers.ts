/**
 * The named samplers of the MNIST experiments, declared once: a name and its settings give a sampler
 * specification of the solvers package that says everything (grid, step, denoising, the adaptive solver's
 * reporting intervals), so `em`, `pc`, `ode`, `edm`, `edm-sde`, `dpm` and `dpm-sde` mean the same sampler in `experiments:mnist`, in
 * `experiments:mnist-eval`, in a worker thread and on another machine.
 *
 * - `em`:  Euler–Maruyama on the reverse SDE, `steps` uniform steps;
 * - `pc`:  Euler–Maruyama ∘ one Langevin corrector step at the snr rule, `steps` steps (Song et al., ICLR 2021,
 *          Alg. 2–3), the step size from each sample's own norms ('per-sample'; the reference averages them over
 *          the batch): a sample never depends on its batch, and in 784 dimensions the norms concentrate, so the
 *          per-sample rule is as stable as the batch mean;
 * - `ode`: the probability-flow ODE by adaptive Dormand–Prince 5(4) at rtol = atol = `odeTol`, integrated over
 *          {@link ODE_INTERVALS} uniform intervals of [ε, T] (the step size carried across them), so progress is
 *          reported per interval; its one shared step size per batch couples the samples of a batch;
 * - `edm`: EDM's Heun 2nd-order sampler on the Karras grid, `fastSteps` steps (Karras et al. 2022), deterministic;
 * - `edm-sde`: the same with EDM's stochastic churn (Alg. 2): γ = √2 − 1 (the most Alg. 2 allows, S_churn/N capped)
 *          at noise levels σ ∈ [0.05, 50], S_noise = 1.003 (EDM's settings), so every step re-injects noise that
 *          corrects the model's errors, at the NFE of `edm`;
 * - `dpm`: DPM-Solver++(2M) on the log-SNR grid, `fastSteps` steps (Lu et al. 2022);
 * - `dpm-sde`: DPM-Solver++(2M) solving the reverse SDE of strength η = {@link DPM_SDE_ETA} (every step from
 *          σ ≥ {@link DPM_SDE_SIGMA_MIN} re-draws noise, more than the reverse SDE's own, which mixes away the model's
 *          errors; the steps below are probability-flow steps) on the Karras grid, 2·`fastSteps` steps, at the NFE of `edm`;
 * - `dpm-ag`: DPM-Solver++(2M) on the Karras grid, `fastSteps` steps, and `dpm-sde-ag`: DPM-Solver++(2M) on the
 *          reverse SDE of strength η = {@link DPM_SDE_AG_ETA} on the steps from σ ≥ {@link DPM_SDE_SIGMA_MIN} (the
 *          probability-flow steps below), also `fastSteps` Karras steps, both on the autoguided
 *          score s_weak + w (s − s_weak) (Karras et al. 2024; solvers' `autoguidance`), the weaker model being the
 *          run's guide (the EMA weights saved early in training, the recipe's `guide`), w = {@link AUTOGUIDANCE_WEIGHTS};
 *          two network evaluations per score evaluation, and their NFE counts network evaluations: both take
 *          2·(`fastSteps` + 1), the NFE of `edm`;
 * - the labelled samplers of a class-conditional model ({@link LABELLED_SAMPLERS}), each sample given its label y
 *          drawn from the model's class prior by its own key (models' `sampleLabels`): `dpm-sde-cond`, `dpm-sde`'s
 *          solver on s(x | y) (39 NFE); `dpm-cfg`, DPM-Solver++(2M) on the classifier-free guided score
 *          s(x | ∅) + w (s(x | y) − s(x | ∅)) (Ho & Salimans 2022), w = {@link CFG_WEIGHTS}, `fastSteps` steps at two
 *          network evaluations (40 NFE); `dpm-ag-cond`, the same solver on both guidances composed, classifier-free
 *          guidance of s(x | y) autoguided by the guide's s(x | y), at three network evaluations, on the
 *          noise levels of its guidance interval ({@link GUIDANCE_INTERVALS}) only, s(x | y) alone below and above it, and so
 *          {@link guidedSteps} steps (21 for `fastSteps` 19 ending at the presets' σ_end = 0.047: 38 NFE; 26 ending at ε = 1e-3), on the log-SNR grid (uniform in λ = −ln σ);
 *          `dpm-sde-ag-cond`, the same with reverse-SDE steps near the data ({@link DPM_SDE_AG_COND_NOISE}), which remove
 *          most of the deterministic flow's detached specks. On a class-conditional model every other sampler
 *          draws from its unconditional score s(x | ∅).
 *
 * @module pipeline/samplers
 */
import type * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec, type DecodeError } from '@score-sde/tensor-fp';
import type { Key } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, noiseLevel, timeOfNoiseLevel } from '@score-sde/sde-math';
import { type LossConfig, trainingNoiseQuantile } from '@score-sde/models';
import { type Sampler, type SamplerSpec, type NoiseInterval, DEFAULT_SNR, DEFAULT_EPS, samplerFromSpec, autoguidance, classifierFreeGuidance, guidanceInterval, inNoiseInterval, gridOf } from '@score-sde/solvers';

/** The sampler names, in the order the experiments list them. @category vocabulary */
export const SAMPLER_NAMES = ['em', 'pc', 'ode', 'edm', 'edm-sde', 'dpm', 'dpm-sde', 'dpm-ag', 'dpm-sde-ag', 'dpm-sde-cond', 'dpm-cfg', 'dpm-ag-cond', 'dpm-sde-ag-cond'] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];

/** io-ts codec of a sampler name. @category vocabulary */
export const SamplerName: t.Type<SamplerName, SamplerName, unknown> = codec.oneOf(SAMPLER_NAMES, 'SamplerName');

/** For tables and plots. @category vocabulary */
export const SAMPLER_LABELS: Readonly<Record<SamplerName, string>> = {
  em: 'Euler–Maruyama',
  pc: 'PC (EM ∘ Langevin)',
  ode: 'PF-ODE RK45',
  edm: 'EDM Heun',
  'edm-sde': 'EDM Heun, stochastic',
  dpm: 'DPM-Solver++(2M)',
  'dpm-sde': 'DPM-Solver++(2M) SDE',
  'dpm-ag': 'DPM-Solver++(2M), autoguided',
  'dpm-sde-ag': 'DPM-Solver++(2M) SDE, autoguided',
  'dpm-sde-cond': 'DPM-Solver++(2M) SDE, given the label',
  'dpm-cfg': 'DPM-Solver++(2M), classifier-free guided',
  'dpm-ag-cond': 'DPM-Solver++(2M), given the label, autoguided and classifier-free guided',
  'dpm-sde-ag-cond': 'DPM-Solver++(2M) SDE near the data, given the label, autoguided and classifier-free guided',
};

/**
 * The guidance of `dpm-ag-cond` (autoguidance weight, CFG weight, guidance interval: {@link AUTOGUIDANCE_WEIGHTS},
 * {@link CFG_WEIGHTS}, {@link GUIDANCE_INTERVALS}, where each is chosen), which `dpm-sde-ag-cond` shares: one home, so the
 * two cannot drift apart.
 */
const AG_COND_GUIDANCE: { readonly autoguidance: number; readonly cfg: number; readonly interval: NoiseInterval } = { autoguidance: 1.75, cfg: 1.1, interval: [0.28, 5.42] };

/**
 * The autoguidance weight w of the autoguided samplers (the others: none), chosen by measurement on the quick and
 * quality presets' checkpoints (FID, project extractor, n = 1000, floor 13.7 unless stated; README, "Autoguidance").
 * `dpm` with 19 Karras steps: quick, 9 epochs, guide at 1/9, seeds 0 / 1: w = 2, 2.5, 3 gave 37.9 / 44.5, 34.9 / 43.5,
 * 35.7 / 46.6; quality (guide at 1/6) w = 2, 2.5, 3, 3.5 gave 28.2, 25.7, 25.9, 27.5; the earlier 6-epoch quick preset
 * (n = 512, floor 20.6) 48.8, 43.0, 42.0. `dpm-sde-ag` (19 steps, η = 2 on every step, 40 NFE): quick seed 0, w = 1.5, 2, 2.5, 3,
 * 3.5 gave 41.7, 30.2, 28.5, 38.8, 69.3; seed 1, w = 2, 2.5 gave 34.0, 39.3; quality w = 2, 2.5 gave 30.6, 30.0 — w = 2
 * has the best mean (31.6 against 32.6) and beyond 2.5 the stochastic sampler degrades fast. (Its earlier form, 38
 * steps at η = 4, 78 NFE, took w = 1.5: 26.8 / 30.6 on the quick seeds, 26.2 on quality.) The stochastic sampler's own
 * noise already corrects part of what guidance corrects, so it takes less; a larger w raises the confident-class rate
 * further but costs diversity (FID). `dpm-ag-cond`'s autoguidance of s(x | y) by the guide's s(x | y): see
 * {@link CFG_WEIGHTS}, which it is chosen with.
 * @category samplers
 */
export const AUTOGUIDANCE_WEIGHTS: Readonly<Partial<Record<SamplerName, number>>> = {
  'dpm-ag': 2.5,
  'dpm-sde-ag': 2,
  'dpm-ag-cond': AG_COND_GUIDANCE.autoguidance,
  'dpm-sde-ag-cond': AG_COND_GUIDANCE.autoguidance,
};

/**
 * Guidance weights that replace the named samplers' own ({@link CFG_WEIGHTS}, {@link AUTOGUIDANCE_WEIGHTS}) for a run or
 * an evaluation: `cfg` for every classifier-free guided sampler drawn, `autoguidance` for every autoguided one. Samplers
 * without that kind of guidance are unaffected (a weight never adds guidance to a sampler that has none).
 * @category model
 */
export const GuidanceWeights = codec.strictWithOptional({}, { cfg: codec.PositiveFinite, autoguidance: codec.PositiveFinite }, 'GuidanceWeights');
export type GuidanceWeights = t.TypeOf<typeof GuidanceWeights>;

/**
 * The autoguidance weight of a named sampler, `overrides.autoguidance` in place of its own when given (undefined: it
 * draws with the model's own score).
 * @category samplers
 */
export const autoguidanceWeightOf = (name: SamplerName, overrides?: GuidanceWeights): number | undefined =>
  AUTOGUIDANCE_WEIGHTS[name] === undefined ? undefined : (overrides?.autoguidance ?? AUTOGUIDANCE_WEIGHTS[name]);

/**
 * The named samplers that draw each sample given its label y_b (a class-conditional model's s(x | y_b), y_b from the
 * model's class prior by the sample's own key: models' `sampleLabels`): `dpm-sde-cond`, `dpm-cfg`, `dpm-ag-cond` and
 * `dpm-sde-ag-cond`.
 * Every other sampler draws from a class-conditional model's unconditional score s(x | ∅).
 * @category samplers
 */
export const LABELLED_SAMPLERS: ReadonlyArray<SamplerName> = ['dpm-sde-cond', 'dpm-cfg', 'dpm-ag-cond', 'dpm-sde-ag-cond'];

/** Whether a named sampler draws each sample given its label. @category samplers */
export const isLabelled = (name: SamplerName): boolean => LABELLED_SAMPLERS.includes(name);

/**
 * The classifier-free guidance weight w of a labelled sampler, s(x | ∅) + w (s(x | y) − s(x | ∅)) (Ho & Salimans
 * 2022); w > 1 extrapolates away from the unconditional score. Chosen by measurement on the class-conditional quick
 * preset's checkpoint (FID at n = 1000, project extractor, floor 13.7, 19 Karras steps, 40 NFE; seed 0): w = 1.1, 1.25,
 * 1.5, 2, 3 gave 27.9, 24.0, 26.1, 44.8, 88.7 (confident 89–100%, rising with w); w = 1, the conditional score alone,
 * 33.5; seed 1 at w = 1.25: 25.6. On the reverse SDE (`dpm-sde`'s solver) guidance only costs: w = 1, 1.25, 1.5 gave
 * 20.3, 24.5, 34.5, so `dpm-sde-cond` draws with the conditional score alone, one network evaluation a step.
 *
 * `dpm-ag-cond` composes both: classifier-free guidance (weight w) of s(x | y) autoguided by the guide's s(x | y)
 * (weight w_g, {@link AUTOGUIDANCE_WEIGHTS}), on σ ∈ (0.28, 5.42] only ({@link GUIDANCE_INTERVALS}, where (w, w_g) =
 * (1.1, 1.75) was chosen, 26 steps, 39 NFE). Before the interval, guided at every step (12 steps at 3 network evaluations,
 * 39 NFE), (w, w_g) = (1.1, 1.5) was chosen. FID at n = 1000 on the
 * class-conditional quick preset's checkpoints (seeds 0 / 1) and the quality preset's, on the log-SNR grid, for
 * (w, w_g) = (1.1, 1.5): **21.4 / 22.6 / 16.9**; (1.05, 1.75) 21.7 / 23.0 / 17.3; (1.15, 1.5) 22.0 / 23.0 / 17.2;
 * (1.1, 1.75) 22.5 / 23.7 / 17.4; (1.15, 1.75) 23.5 / 24.9 / 17.7. On the Karras grid: (1.1, 1.5) 21.5 / 22.6 / 17.8;
 * (1.05, 1.5) 21.8 / 23.1 / 17.9; (1.1, 1.25) 22.9 / 24.7 / 17.8; (1.15, 1.35) 17.8 on quality; (1.05, 1.75) 21.8 /
 * 22.8 / 18.2; (1.1, 1.75) 22.2 / 23.2 / 18.3; (1.2, 1.5) 22.1 / 23.0 / 18.6; (1.2, 1.25) 22.0 / 23.4 / 18.4; (1.1, 2)
 * 24.2 / – / 19.4; at 19 steps (60 NFE) 17.4 on quality; DPM-Solver++(3M), 12 steps: 25.3. Autoguidance alone (w = 1;
 * 19 steps, 40 NFE) gave at w_g = 1.75 21.7 / 22.8 / 18.3 and at 1.5 22.5 / 23.7 / 18.2; guiding s(x | y) by the
 * guide's s(x | ∅) instead (one weaker and unlabelled model, 19 steps) 23.1 / 23.7 / 18.2 at weight 1.25 and 25.3 /
 * 26.3 / 17.3 at 1.15: the best on the quality checkpoint, the worst on the quick ones.
 * A third quick seed, measured after the choice, does not confirm it: (1.1, 1.5) gave 23.03 there, (1.05, 1.5) 22.7,
 * the others 23.4–23.8, and autoguidance alone (w_g = 1.75, 19 Karras steps) 21.8; over the three quick seeds the two
 * are even (22.35 against 22.07), on quality the composition is ahead (16.9 against 18.3).
 * @category samplers
 */
export const CFG_WEIGHTS: Readonly<Partial<Record<SamplerName, number>>> = { 'dpm-cfg': 1.25, 'dpm-ag-cond': AG_COND_GUIDANCE.cfg, 'dpm-sde-ag-cond': AG_COND_GUIDANCE.cfg };

/** The classifier-free guidance weight of a named sampler, `overrides.cfg` in place of its own when given (undefined: none). @category samplers */
export const cfgWeightOf = (name: SamplerName, overrides?: GuidanceWeights): number | undefined =>
  CFG_WEIGHTS[name] === undefined ? undefined : (overrides?.cfg ?? CFG_WEIGHTS[name]);

/**
 * The noise levels (σ_lo, σ_hi] on which a guided sampler guides (Kynkäänniemi et al. 2024; solvers' `guidanceInterval`):
 * outside them it draws with its base score alone, one network evaluation, so more steps fit in the same NFE. Absent:
 * guided at every step. `dpm-ag-cond` guides on (0.28, 5.42] (the paper's interval for EDM2, whose data have the same
 * σ_data = 0.5 as these models), with (w, w_g) = (1.1, 1.75) and 26 log-SNR steps in 39 NFE; chosen on the quick preset's
 * checkpoints (FID at n = 1000, project extractor, floor 13.67; seed 0 / seed 2, where the unlimited form gave 21.43 /
 * 23.03 and `dpm-sde-cond` 20.25 / 18.07): (0.28, 5.42] at (1.1, 1.75) 19.85 / 20.37; at (1.1, 1.5) 20.33 / 21.04;
 * (1.15, 1.75) 20.21 / 20.40; (1.05, 2) 20.39 / 20.84; (1.1, 2) 20.74 / 21.02; (1.15, 1.5) 20.08 / 20.51; (1.2, 2)
 * 22.09 / 22.35; (0.4, 5.42] 19.72 / 20.67; (0.2, 5.42] 20.22 / 20.89; (0.28, 10] 20.68 / 21.56; (0.28, 2] at (1.1, 1.5)
 * 21.77 / 22.52; (0.1, 5.42] at (1.1, 1.5) 20.06 / 21.39; without an upper end, (0.28, ∞) 20.73 / 21.61, (0.1, ∞)
 * 20.53 / 22.17; autoguidance alone on (0.28, 5.42] at w_g = 2 20.68 / 21.38; classifier-free guidance alone at w = 1.5
 * 23.35 / 24.36. The detached dots of the deterministic grids stay (seed 0, 64 digits: 41 in 21 against 46 in 21): they
 * come from the unguided flow, not from guidance ({@link DPM_SDE_AG_COND_NOISE} removes most of them).
 * `dpm-sde-ag-cond` guides on the same interval with the same weights.
 * @category samplers
 */
export const GUIDANCE_INTERVALS: Readonly<Partial<Record<SamplerName, NoiseInterval>>> = { 'dpm-ag-cond': AG_COND_GUIDANCE.interval, 'dpm-sde-ag-cond': AG_COND_GUIDANCE.interval };

/** The guidance interval of a named sampler (undefined: it guides at every noise level, if at all). @category samplers */
export const guidanceIntervalOf = (name: SamplerName): NoiseInterval | undefined => GUIDANCE_INTERVALS[name];

/** The scores a named sampler can draw with (each Left: why there is none). @category samplers */
export interface ScoreSources {
  /** The SDE the scores are of (its noise level σ(t) places a guidance interval). */
  readonly sde: SDE;
  /** The model's own score (of a class-conditional model: with no label, the unconditional score s(x | ∅)). */
  readonly score: ScoreFn;
  /** The weaker model of the autoguided samplers. */
  readonly guide: E.Either<string, ScoreFn>;
  /** The conditional score s(x | y_b) of samples drawn with keys k_b, y_b their labels. */
  readonly conditional: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
  /** The guide's conditional score, for a labelled autoguided sampler. */
  readonly guideConditional: E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn>;
}

/**
 * The score a named sampler draws samples of keys k_b with. Its base is the model's own score, or for a labelled
 * sampler s(x | y_b); an autoguided one draws with s_weak + w (s − s_weak), the guide's score (given the same labels)
 * as the weaker model; a classifier-free guided one with s(x | ∅) + w (s(x | y_b) − s(x | ∅)); one with a guidance interval
 * guides only at the noise levels in it and draws with its base score elsewhere. Left when what it needs is missing, saying why.
 * @category samplers
 */
export const scoreOfNamed = (name: SamplerName, src: ScoreSources, weights?: GuidanceWeights): E.Either<string, (keys: ReadonlyArray<Key>) => ScoreFn> => {
  const labelled = isLabelled(name);
  if (labelled && E.isLeft(src.conditional)) return E.left(`${name} draws each digit given its label and needs a class-conditional model: ${src.conditional.left}`);
  const own = (keys: ReadonlyArray<Key>): ScoreFn => (labelled && E.isRight(src.conditional) ? src.conditional.right(keys) : src.score);
  const auto = autoguidanceWeightOf(name, weights);
  let guided = own;
  if (auto !== undefined) {
    const guide = labelled ? src.guideConditional : E.map((g: ScoreFn) => () => g)(src.guide);
    if (E.isLeft(guide)) return E.left(`${name} is autoguided and needs a guide: ${guide.left}`);
    guided = (keys) => autoguidance(own(keys), guide.right(keys), auto);
  }
  const cfg = cfgWeightOf(name, weights);
  const full = cfg === undefined ? guided : (keys: ReadonlyArray<Key>) => classifierFreeGuidance(guided(keys), src.score, cfg);
  const interval = guidanceIntervalOf(name);
  return E.right(interval === undefined || full === own ? full : (keys) => guidanceInterval(src.sde, full(keys), own(keys), interval));
};

/**
 * Network evaluations per guided score evaluation of a named sampler: 1, plus 1 when autoguided (the guide) and 1 when
 * classifier-free guided (the model without the label).
 * @category samplers
 */
export const networksPerScore = (name: SamplerName): number => 1 + (autoguidanceWeightOf(name) === undefined ? 0 : 1) + (cfgWeightOf(name) === undefined ? 0 : 1);

/**
 * Network evaluations of a named sampler's score evaluation at t: {@link networksPerScore} inside its guidance interval
 * (or everywhere, without one), 1 outside it.
 * @category samplers
 */
export const networksAt =
  (sde: SDE, name: SamplerName) =>
  (t: number): number => {
    const interval = guidanceIntervalOf(name);
    return interval === undefined || inNoiseInterval(sde, interval, t) ? networksPerScore(name) : 1;
  };

/**
 * Network evaluations of a DPM-Solver++ multistep sampler on `k` steps of a grid: it evaluates the score once at every
 * grid point, t_0 = T … t_k = ε (the last one the final denoising step; ε the end of the grid, default 1e-3), so Σ_i networksAt(t_i).
 * @category samplers
 */
export const multistepNetworkEvaluations = (sde: SDE, name: SamplerName, grid: 'karras' | 'log-snr', k: number, eps: number = DEFAULT_EPS): number => {
  const at = networksAt(sde, name);
  return Array.from(gridOf(sde, grid, k, eps)).reduce((n, t) => n + at(t), 0);
};

/**
 * Steps of a guided DPM-Solver++ sampler within the NFE of EDM Heun at `fastSteps` steps, 2 (fastSteps + 1): the most k
 * with {@link multistepNetworkEvaluations} ≤ 2 (fastSteps + 1), at least 1. Guided at every step with three networks that
 * is 12 steps for fastSteps 19; `dpm-ag-cond` on its guidance interval takes 26 to ε = 1e-3, 21 to σ_end = 0.047 (more
 * of a shorter grid falls inside the interval).
 * @category samplers
 */
export const guidedSteps = (sde: SDE, name: SamplerName, grid: 'karras' | 'log-snr', fastSteps: number, eps: number = DEFAULT_EPS): number => {
  const budget = 2 * (fastSteps + 1);
  // NFE grows with k (each step adds a grid point of ≥ 1 network); bounded by the all-guided count below.
  let k = 1;
  while (k < budget && multistepNetworkEvaluations(sde, name, grid, k + 1, eps) <= budget) k++;
  return k;
};

/** MNIST images: 28 × 28, one channel (the sample shape of every draw). @category model */
export const IMAGE_SHAPE = [28, 28, 1] as const;

/**
 * What a named sampler needs to know: steps of em/pc, steps of edm/dpm, the corrector's snr, the ODE's tolerance, and
 * optionally the noise level σ_end where every named sampler stops and takes its denoising step (its spec's
 * ε = σ⁻¹(σ_end); absent: the specs' default ε = 1e-3; {@link endNoiseOf}) and guidance weights in place of the named
 * samplers' own ({@link GuidanceWeights}). One codec for the recipes' `sampling` and the evaluation's sampler options.
 * @category model
 */
export const SamplerSettings = codec.strictWithOptional(
  { steps: codec.PositiveInt, fastSteps: codec.PositiveInt, snr: codec.PositiveFinite, odeTol: codec.PositiveFinite },
  { endNoise: codec.PositiveFinite, guidance: GuidanceWeights },
  'SamplerSettings',
);
export type SamplerSettings = t.TypeOf<typeof SamplerSettings>;

/**
 * The share of a network's training noise levels below which its named samplers do not go: they stop at the
 * END_NOISE_QUANTILE-quantile σ_end of the levels it was trained on (models' `trainingNoiseQuantile`) and return
 * Tweedie's E[x₀ | x_{σ_end}]. Below it the network has seen few examples: under the presets' ln σ ~ N(−0.6, 1.2²)
 * 2% of the draws lie below σ = 0.047, and the network, barely trained there, leaves the noise it does not recognise in
 * the image (the faint background grain). Chosen by measurement (FID at n = 1000 with `experiments:mnist-eval`, and
 * background grain: pixels ≥ 2 px from any stroke pixel ≥ 64 at 10–63 of 255, over all 1000 samples) on four
 * checkpoints (quick seeds 0, 1, 2 and quality), ending at σ ≈ 0.0003 (ε = 1e-3, before) against σ_end = 0.047:
 * - `dpm-ag-cond` FID 19.85 / 20.61 / 20.37 / 16.92 against 19.53 / 20.54 / 20.49 / 16.46 (38 NFE), grain
 *   3.1 / 3.8 / 5.0 / 1.4% against 1.8 / 2.3 / 1.8 / 0.9%;
 * - `dpm-sde-cond` FID 20.25 / 20.66 / 18.07 / 16.24 against 20.01 / 20.71 / 20.12 / 16.35, grain 2.9 / 3.7 / 7.5 / 1.3%
 *   against 1.5 / 2.1 / 1.6 / 0.7%; at 79 NFE it loses (20.10 / 20.57 / 19.12 / 15.77 against 22.07 / 23.67 / 21.99 / 17.29).
 * Ending at σ = 0.028 (0.7%) gave `dpm-ag-cond` 19.12 / 20.79 / 20.71 / 16.77 and more grain (1.8 / 2.4 / 2.3 / 1.0%).
 * @category samplers
 */
export const END_NOISE_QUANTILE = 0.02;

/**
 * The end noise level of the named samplers for a network trained with `loss` on `sde`: the {@link END_NOISE_QUANTILE}
 * quantile of its training noise levels when the loss draws them from a law of σ (`noise`: log-normal, log-uniform, a
 * mixture), if that lies above the specs' default end σ(1e-3); otherwise undefined (the default ε). score_sde's
 * uniform-in-t training (no `noise`) keeps score_sde's own ε.
 * @category samplers
 */
export const endNoiseOf = (sde: SDE, loss: LossConfig): number | undefined => {
  if (loss.kind !== 'dsm' || loss.noise === undefined) return undefined;
  const end = trainingNoiseQuantile(sde, loss.eps, loss.noise, END_NOISE_QUANTILE);
  return end > noiseLevel(sde, DEFAULT_EPS) ? end : undefined;
};

/** The spec fields that make a named sampler stop at σ_end: ε = σ⁻¹(σ_end) (none without one). */
const endOf = (sde: SDE, s: SamplerSettings): { readonly eps?: number } => (s.endNoise === undefined ? {} : { eps: timeOfNoiseLevel(sde, s.endNoise) });

/** The defaults of both MNIST commands. @category model */
export const DEFAULT_SAMPLER_SETTINGS: SamplerSettings = { steps: 500, fastSteps: 40, snr: DEFAULT_SNR, odeTol: 1e-5 };

/** Uniform intervals of [ε, T] over which the adaptive ODE sampler reports progress. @category model */
export const ODE_INTERVALS = 20;

/**
 * η of `dpm-sde`, chosen by measurement (FID at n = 1000, project extractor, 38 Karras steps): on the quick preset's
 * checkpoint η = 1, 2, 3, 4, 5, 8, 12 gave 55.9, 49.3, 45.8, 43.2, 42.0, 48.6, 52.8; on the quality preset's η = 1, 3,
 * 4, 6 gave 30.7, 30.3, 32.2, 34.5 (a better model needs less correction). 4 is within 3 FID of the best of both.
 * @category samplers
 */
export const DPM_SDE_ETA = 4;

/**
 * η of `dpm-sde-ag`, chosen by measurement with its weight (FID at n = 1000, project extractor, 19 Karras steps, 40
 * NFE): on the quick preset's checkpoint (9 epochs, seed 0) η = 1, 2, 4 gave 31.9, 30.2, 36.9 at w = 2, and η = 1,
 * 1.5, 2, 3, 4 gave 31.5, 29.9, 28.5, 33.2, 38.1 at w = 2.5; seed 1 at w = 2: η = 1.5, 2 gave 32.8, 34.0; quality at
 * w = 2: 32.1, 30.6. Guidance already sharpens what a larger η would correct: half of `dpm-sde`'s η, at half its steps.
 * @category samplers
 */
export const DPM_SDE_AG_ETA = 2;

/**
 * The noise level below which `dpm-sde` and `dpm-sde-ag` take probability-flow steps (η = 0): the noise their last,
 * large steps inject is not removed again and shows as grain in the background. On the quick preset's 9-epoch
 * checkpoint (seed 0, 64 digits) the background pixels (≥ 2 pixels from any stroke pixel ≥ 64) at 10–63 of 255 of
 * `dpm-sde-ag` were 5.7% with η on every step, 1.5% from σ ≥ 0.2 and 1.4% with η = 0 (MNIST: 2.7% of all pixels at
 * 10–63). FID at n = 1000, η everywhere against from σ ≥ 0.2: `dpm-sde-ag` (seeds 0 / 1, quality, 6-epoch) 30.2 / 34.0 /
 * 30.6 / 42.0 against 28.3 / 32.4 / 29.6 / 40.9, and from 0.05, 0.5, 1, 2 at seed 0 29.1, 30.3, 34.1, 40.4; `dpm-sde`
 * (seeds 0 / 1, quality) 37.5 / 44.1 / 32.2 against 35.6 / 42.5 / 30.9, from 0.05 at seed 0 37.0.
 * @category samplers
 */
export const DPM_SDE_SIGMA_MIN = 0.2;

/**
 * The stochastic stretch of `dpm-sde-ag-cond`: `dpm-ag-cond`'s solver, grid and guided score, with reverse-SDE steps of
 * strength η on the noise levels [sMin, sMax] (probability-flow steps elsewhere). The deterministic flow of these models
 * leaves detached specks beside the strokes (lib/strokes: a quarter of `dpm-ag-cond`'s digits have more than one ink
 * component against 2.5% of real digits); they form on σ ∈ [0.1, 1] (more steps do not remove them: 26.0% at 21
 * and at 43 steps), where re-drawn noise lets the score correct them. Chosen by measurement (quick preset's
 * checkpoint, seed 0, n = 1000, FID with the project's extractor, floor 13.67; stray-stroke rate; grain): `dpm-ag-cond`
 * 19.53, 26.0%, 1.80%; η = 2 on [0.2, ∞) 24.34, 11.9%; on [1, ∞) 24.89, 21.1%; on [0.2, 2] 19.46, 13.4%; on [0.2, 1]
 * 19.27, 14.5%; η = 3, 4 there 19.47, 19.79 (13.3, 11.6%); η = 2 on [0.1, 1] 19.31, 11.2%; η = 4 on [0.1, 0.5] 19.45,
 * 11.4%; on [0.1, 0.7] 18.92, 10.6%, 1.47%; η = 6, 8 there 18.90, 18.93 (9.7, 9.6%); η = 4 on [0, 0.7] 19.05, 9.5%, 1.12%.
 * Checked at sampling seed 1 (whose floor is 15.40) and on the quality preset's checkpoint (its CFG weight 1.2; floor 13.67): `dpm-ag-cond`
 * 18.76 / 17.60 (stray 26.7 / 21.8%, confident 93.7 / 96.5%); η = 4 on [0.1, 0.7] **17.33 / 16.59** (11.5 / 6.9%, 93.0 /
 * 97.0%); η = 4 on [0, 0.7] 17.55 / 16.91 (10.6 / 6.8%; grain 1.12 / 0.34% against 1.50 / 0.71%); η = 8 on [0.1, 0.7]
 * 17.30 / 16.73 (10.5 / 6.3%). Real digits: 2.5% stray, 0.00% grain. After the choice, on the quick preset trained at seed 1:
 * `dpm-ag-cond` 20.54 (23.0%), η = 4 on [0.1, 0.7] 18.39 (9.9%, grain 2.13%), on [0, 0.7] 18.57 (9.3%, 1.86%).
 * @category samplers
 */
export const DPM_SDE_AG_COND_NOISE = { eta: 4, sMin: 0.1, sMax: 0.7 } as const;

/** The specification of a named sampler, ending at the settings' σ_end when they give one. @category samplers */
export const namedSamplerSpec = (sde: SDE, name: SamplerName, s: SamplerSettings): SamplerSpec => ({ ...namedSamplerBody(sde, name, s), ...endOf(sde, s) }) as SamplerSpec;

const namedSamplerBody = (sde: SDE, name: SamplerName, s: SamplerSettings): SamplerSpec => {
  switch (name) {
    case 'em':
      return { kind: 'pc', predictor: 'euler-maruyama', corrector: 'none', steps: s.steps };
    case 'pc':
      return { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', correctorSteps: 1, snr: s.snr, norm: 'per-sample', steps: s.steps };
    case 'ode':
      return { kind: 'ode-adaptive', rtol: s.odeTol, atol: s.odeTol, intervals: ODE_INTERVALS };
    case 'edm':
      return { kind: 'edm', steps: s.fastSteps };
    case 'edm-sde':
      return { kind: 'edm', steps: s.fastSteps, gamma: Math.SQRT2 - 1, sMin: 0.05, sMax: 50, sNoise: 1.003 };
    case 'dpm':
      return { kind: 'dpm-solver++2m', steps: s.fastSteps };
    case 'dpm-sde':
      return { kind: 'dpm-solver++2m', steps: 2 * s.fastSteps, eta: DPM_SDE_ETA, sMin: DPM_SDE_SIGMA_MIN, grid: 'karras' };
    case 'dpm-sde-ag':
      return { kind: 'dpm-solver++2m', steps: s.fastSteps, eta: DPM_SDE_AG_ETA, sMin: DPM_SDE_SIGMA_MIN, grid: 'karras' };
    case 'dpm-ag':
    case 'dpm-cfg':
      return { kind: 'dpm-solver++2m', steps: s.fastSteps, grid: 'karras' };
    case 'dpm-ag-cond':
      return { kind: 'dpm-solver++2m', steps: guidedSteps(sde, name, 'log-snr', s.fastSteps, endOf(sde, s).eps), grid: 'log-snr' };
    case 'dpm-sde-ag-cond':
      return { ...namedSamplerBody(sde, 'dpm-ag-cond', s), ...DPM_SDE_AG_COND_NOISE };
    case 'dpm-sde-cond':
      return { kind: 'dpm-solver++2m', steps: 2 * s.fastSteps, eta: DPM_SDE_ETA, sMin: DPM_SDE_SIGMA_MIN, grid: 'karras' };
  }
};

/** The sampler a name stands for, for an SDE (Left naming the problem when the combination is not defined). @category samplers */
export const namedSampler = (sde: SDE, name: SamplerName, s: SamplerSettings): E.Either<DecodeError, Sampler> => samplerFromSpec(sde, namedSamplerSpec(sde, name, s));

