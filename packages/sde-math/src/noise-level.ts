/**
 * Noise levels of an SDE record. Every SDE here has a Gaussian kernel N(m(t) x₀, s(t)² I), i.e.
 *   x_t = m(t)(x₀ + σ(t) n),   σ(t) = s(t) / m(t)          (Karras et al. 2022, "EDM", §2 and Table 1),
 * with log signal-to-noise ratio λ(t) = log(m²/s²) = −2 log σ(t) (Kingma et al. 2021; Lu et al. 2022), and σ(t)
 * is strictly increasing, so t ↦ σ(t) has the closed-form inverse {@link timeOfNoiseLevel}. Samplers space their
 * grids in σ or λ; training draws noise levels in σ (EDM's log-normal) and maps them to times.
 *
 * @module noise-level
 */
import { type SDE, marginalMeanCoef, marginalStd } from './sde';

// -------------------------------------------------------------------------------------
// noise level
// -------------------------------------------------------------------------------------

/** Noise level σ(t) = s(t) / m(t) (EDM's σ: x_t / m(t) = x₀ + σ(t) n). @category noise level */
export const noiseLevel = (sde: SDE, t: number): number => marginalStd(sde, t) / marginalMeanCoef(sde, t);

/** Log signal-to-noise ratio λ(t) = log(m(t)² / s(t)²) = −2 log σ(t). @category noise level */
export const logSnr = (sde: SDE, t: number): number => -2 * Math.log(noiseLevel(sde, t));

/** The t ≥ 0 with ∫₀ᵗ β = B for β(t) = β_min + t(β_max − β_min): the positive root of a quadratic. */
const timeOfBetaIntegral = (betaMin: number, betaMax: number, B: number): number => {
  const d = betaMax - betaMin;
  // β_min t + ½ d t² = B  ⇒  t = 2B / (β_min + √(β_min² + 2 d B))  (cancellation-free form of the root).
  return (2 * B) / (betaMin + Math.sqrt(betaMin * betaMin + 2 * d * B));
};

/**
 * Inverse of {@link noiseLevel}: the time t with σ(t) = σ, in closed form:
 * - VP:     1/m² − 1 = σ²  ⇒ ∫₀ᵗβ = log(1 + σ²);
 * - sub-VP: s = 1 − m², σ = (1 − m²)/m  ⇒ m = 2/(σ + √(σ² + 4)), ∫₀ᵗβ = −2 log m;
 * - VE:     σ² = σ_min²((σ_max/σ_min)^{2t} − 1)  ⇒ t = log(1 + σ²/σ_min²) / (2 log(σ_max/σ_min));
 * - tutorial: σ² = (a^{2t} − 1)/(2 log a)  ⇒ t = log(1 + 2σ² log a) / (2 log a).
 * Defined for every σ ≥ 0 (times beyond T extend the schedule, as EDM's churn may ask).
 * @category noise level
 */
export const timeOfNoiseLevel = (sde: SDE, sigma: number): number => {
  switch (sde.kind) {
    case 'vp':
      return timeOfBetaIntegral(sde.betaMin, sde.betaMax, Math.log1p(sigma * sigma));
    case 'subvp': {
      const m = 2 / (sigma + Math.sqrt(sigma * sigma + 4));
      return timeOfBetaIntegral(sde.betaMin, sde.betaMax, -2 * Math.log(m));
    }
    case 've':
      return Math.log1p((sigma * sigma) / (sde.sigmaMin * sde.sigmaMin)) / (2 * Math.log(sde.sigmaMax / sde.sigmaMin));
    case 'tutorial': {
      const la = Math.log(sde.sigma);
      return Math.log1p(2 * sigma * sigma * la) / (2 * la);
    }
  }
};
