/**
 * How a network's raw output F becomes a denoiser and a score: the preconditioning of Karras et al. 2022 ("EDM",
 * §5 and Table 1) written through an SDE record's kernel x_t = m(t)(x₀ + σ(t) n), σ = s/m (`noise-level`):
 *
 *   x̃ = x / m(t)                                               (the scaled state, x₀ plus noise of std σ)
 *   D(x; t) = c_skip x̃ + c_out F(c_in x̃, c_noise)             (the denoiser, ≈ E[x₀ | x_t = x])
 *   ∇ log p_t(x) = (m D − x) / s² = ((c_skip − 1) x̃ + c_out F) / (m σ²)     (Tweedie's formula, solved for the score)
 *
 * Two parameterisations are records of data (stored in training configs and checkpoints):
 * - `tutorial` (Song's tutorial and score_sde: s_θ = F(x, t) / s(t)): c_skip = 1, c_out = σ, c_in = m, c_noise = t.
 *   The network predicts −n (ε-prediction with F = −ε̂), a unit-scale target at every t.
 * - `edm` with the data's standard deviation σ_d: c_skip = σ_d²/(σ² + σ_d²), c_out = σ σ_d/√(σ² + σ_d²),
 *   c_in = 1/√(σ² + σ_d²), c_noise = ¼ ln σ. Input and target have unit variance at every σ, and D → x̃ as σ → 0,
 *   so the model is well conditioned exactly where a raw-score regression is not.
 *
 * Training targets (denoising score matching in D-space, x̃ = x₀ + σ z): F should match
 *   F* = (x₀ − c_skip x̃) / c_out = a x₀ − b z,   a = (1 − c_skip)/c_out,   b = c_skip σ / c_out,
 * (tutorial: a = 0, b = 1, F* = −z; EDM: a = σ/(σ_d √(σ²+σ_d²)), b = σ_d/√(σ²+σ_d²)).
 *
 * @module parameterisation
 */
import * as t from 'io-ts';
import { codec } from '@score-sde/tensor-fp';
import { type SDE, marginalMeanCoef, marginalStd } from './sde';
import { noiseLevel } from './noise-level';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** s_θ(x, t) = F(x, t)/s(t): the tutorial's and score_sde's network output convention. @category model */
export const TutorialParameterisation = codec.strict({ kind: t.literal('tutorial') }, 'TutorialParameterisation');
export type TutorialParameterisation = t.TypeOf<typeof TutorialParameterisation>;

/** EDM's preconditioning with the data standard deviation σ_d. @category model */
export const EDMParameterisation = codec.strict({ kind: t.literal('edm'), sigmaData: codec.PositiveFinite }, 'EDMParameterisation');
export type EDMParameterisation = t.TypeOf<typeof EDMParameterisation>;

/** Any parameterisation, decoded by its `kind` (errors name the fields of that kind). @category model */
export const Parameterisation = codec.byKind('Parameterisation', { tutorial: TutorialParameterisation, edm: EDMParameterisation });
export type Parameterisation = TutorialParameterisation | EDMParameterisation;

/** The tutorial's convention (the default, and what every checkpoint without a parameterisation used). @category constructors */
export const tutorialParameterisation: Parameterisation = { kind: 'tutorial' };

/** EDM's preconditioning; σ_d = 0.5 is EDM's value for images in [−1, 1]. @category constructors */
export const edmParameterisation = (sigmaData = 0.5): Parameterisation => ({ kind: 'edm', sigmaData });

/** The four scalings at one time: D = c_skip x̃ + c_out F(c_in x̃, c_noise), x̃ = x/m. @category model */
export interface Scalings {
  readonly cSkip: number;
  readonly cOut: number;
  readonly cIn: number;
  readonly cNoise: number;
}

// -------------------------------------------------------------------------------------
// scalings
// -------------------------------------------------------------------------------------

/**
 * c_skip, c_out, c_in, c_noise at time t (module comment): tutorial (1, σ, m, t); EDM
 * (σ_d²/(σ²+σ_d²), σσ_d/√(σ²+σ_d²), 1/√(σ²+σ_d²), ¼ ln σ) with σ = s(t)/m(t).
 * @category scalings
 */
export const scalings = (sde: SDE, p: Parameterisation, t: number): Scalings => {
  const sigma = noiseLevel(sde, t);
  if (p.kind === 'tutorial') return { cSkip: 1, cOut: sigma, cIn: marginalMeanCoef(sde, t), cNoise: t };
  const sd2 = p.sigmaData * p.sigmaData;
  const r = Math.sqrt(sigma * sigma + sd2);
  return { cSkip: sd2 / (sigma * sigma + sd2), cOut: (sigma * p.sigmaData) / r, cIn: 1 / r, cNoise: 0.25 * Math.log(sigma) };
};

/**
 * The score as an affine map of the state and the network output, at time t:
 *   ∇ log p_t(x) = skip·x + F(inputScale·x, c_noise) / outDivisor,
 *   inputScale = c_in/m,  skip = (c_skip − 1)/(m² σ²),  outDivisor = m σ²/c_out
 * (EDM: skip = −1/(m²(σ² + σ_d²))).
 * (tutorial: inputScale = 1, skip = 0, outDivisor = m σ = s(t), i.e. F/s exactly.)
 * @category scalings
 */
export const scoreCoefficients = (
  sde: SDE,
  p: Parameterisation,
  t: number,
): { readonly inputScale: number; readonly noiseInput: number; readonly skip: number; readonly outDivisor: number } => {
  const m = marginalMeanCoef(sde, t);
  const sigma = noiseLevel(sde, t);
  const c = scalings(sde, p, t);
  return {
    inputScale: p.kind === 'tutorial' ? 1 : c.cIn / m,
    noiseInput: c.cNoise,
    // (c_skip − 1)/(m²σ²) = −1/(m²(σ² + σ_d²)) for EDM, written without the cancellation at small σ.
    skip: p.kind === 'tutorial' ? 0 : -1 / (m * m * (sigma * sigma + p.sigmaData * p.sigmaData)),
    outDivisor: p.kind === 'tutorial' ? marginalStd(sde, t) : (m * sigma * sigma) / c.cOut,
  };
};

/**
 * The regression target of F at noise level σ(t) as a combination of the clean data and the noise:
 * F* = a x₀ − b z with a = (1 − c_skip)/c_out and b = c_skip σ/c_out (module comment; tutorial: a = 0, b = 1).
 * @category scalings
 */
export const trainingTarget = (sde: SDE, p: Parameterisation, t: number): { readonly dataCoef: number; readonly noiseCoef: number } => {
  if (p.kind === 'tutorial') return { dataCoef: 0, noiseCoef: 1 };
  const sigma = noiseLevel(sde, t);
  const c = scalings(sde, p, t);
  return { dataCoef: (1 - c.cSkip) / c.cOut, noiseCoef: (c.cSkip * sigma) / c.cOut };
};
