/**
 * SDEs as plain, readonly, JSON-serialisable records, and the scalar coefficient functions of each.
 *
 * Every SDE here is linear with a scalar, time-only drift coefficient:
 *   dx = f(t)·x dt + g(t) dw,          t ∈ [0, T],
 * so its transition kernel is Gaussian: p_0t(x_t | x_0) = N(m(t)·x_0, s(t)² I) with
 *   m(t) = exp(∫₀ᵗ f),   s(t)² = m(t)² ∫₀ᵗ g(τ)²/m(τ)² dτ.
 *
 * Kinds (Song et al., ICLR 2021, §3.4 and App. B; tutorial = Song's Colab):
 * - `vp`     β(t) = β_min + t(β_max − β_min);  f = −β/2,  g = √β,                 m = e^{−½∫β}, s² = 1 − m²
 * - `subvp`  f = −β/2,  g = √(β(1 − e^{−2∫β})),                                    m = e^{−½∫β}, s = 1 − m²
 * - `ve`     σ(t) = σ_min (σ_max/σ_min)^t;  f = 0,  g = σ(t)√(2 ln(σ_max/σ_min)),  m = 1,  s² = σ(t)² − σ_min²
 * - `tutorial` dx = σ^t dw:  f = 0,  g = σ^t,                                       m = 1,  s² = (σ^{2t} − 1)/(2 ln σ)
 *
 * The VE variance is the exact one of the kernel (σ(t)² − σ(0)²); the reference code's σ(t)² differs from it
 * by σ_min² = 10⁻⁴, far below every tolerance, and the exact form makes s(0) = 0 hold for every kind.
 *
 * @module sde
 */
import * as t from 'io-ts';
import { codec } from '@score-sde/tensor-fp';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** Variance-preserving SDE (DDPM in continuous time). @category model */
export const VPSDE = codec.strict(
  { kind: t.literal('vp'), betaMin: codec.PositiveFinite, betaMax: codec.PositiveFinite, T: codec.PositiveFinite },
  'VPSDE',
);
export type VPSDE = t.TypeOf<typeof VPSDE>;

/** Sub-variance-preserving SDE. @category model */
export const SubVPSDE = codec.strict(
  { kind: t.literal('subvp'), betaMin: codec.PositiveFinite, betaMax: codec.PositiveFinite, T: codec.PositiveFinite },
  'SubVPSDE',
);
export type SubVPSDE = t.TypeOf<typeof SubVPSDE>;

/** Variance-exploding SDE (SMLD / NCSN in continuous time). @category model */
export const VESDE = codec.strict(
  { kind: t.literal('ve'), sigmaMin: codec.PositiveFinite, sigmaMax: codec.PositiveFinite, T: codec.PositiveFinite },
  'VESDE',
);
export type VESDE = t.TypeOf<typeof VESDE>;

/** The tutorial's SDE dx = σ^t dw (σ > 1). @category model */
export const TutorialSDE = codec.strict({ kind: t.literal('tutorial'), sigma: codec.PositiveFinite, T: codec.PositiveFinite }, 'TutorialSDE');
export type TutorialSDE = t.TypeOf<typeof TutorialSDE>;

const SDEUnion = t.union([VPSDE, SubVPSDE, VESDE, TutorialSDE], 'SDE');

const ordered = (s: t.TypeOf<typeof SDEUnion>): boolean =>
  s.kind === 'vp' || s.kind === 'subvp' ? s.betaMax > s.betaMin : s.kind === 've' ? s.sigmaMax > s.sigmaMin : s.sigma > 1;

/**
 * Any SDE record. Decoding checks each field, rejects unknown keys, and checks the parameters are ordered
 * (β_max > β_min, σ_max > σ_min, tutorial σ > 1).
 * @category model
 */
export const SDE = new t.Type<t.TypeOf<typeof SDEUnion>, t.OutputOf<typeof SDEUnion>, unknown>(
  'SDE',
  (u): u is t.TypeOf<typeof SDEUnion> => SDEUnion.is(u) && ordered(u),
  (u, c) => {
    const r = SDEUnion.validate(u, c);
    if (r._tag === 'Left') {
      // Report against the alternative the record names by its `kind`, so errors name real fields.
      const kind = (u as { kind?: unknown } | null)?.kind;
      const byKind: Record<string, t.Decoder<unknown, unknown>> = { vp: VPSDE, subvp: SubVPSDE, ve: VESDE, tutorial: TutorialSDE };
      const alt = typeof kind === 'string' ? byKind[kind] : undefined;
      return alt !== undefined
        ? (alt.validate(u, c) as t.Validation<t.TypeOf<typeof SDEUnion>>)
        : t.failure(kind, [...c, { key: 'kind', type: t.keyof({ vp: null, subvp: null, ve: null, tutorial: null }), actual: kind }]);
    }
    if (ordered(r.right)) return r;
    // Report at the field, so the error reads `betaMax: must be greater than betaMin (…)` rather than `(root): …`.
    const [key, message] =
      r.right.kind === 'vp' || r.right.kind === 'subvp'
        ? (['betaMax', `must be greater than betaMin (${r.right.betaMin})`] as const)
        : r.right.kind === 've'
          ? (['sigmaMax', `must be greater than sigmaMin (${r.right.sigmaMin})`] as const)
          : (['sigma', 'must be greater than 1'] as const);
    const actual = (r.right as Record<string, unknown>)[key];
    return t.failure(actual, [...c, { key, type: codec.PositiveFinite, actual }], message);
  },
  t.identity,
);
export type SDE = t.TypeOf<typeof SDEUnion>;

// -------------------------------------------------------------------------------------
// constructors (defaults as in the paper / tutorial)
// -------------------------------------------------------------------------------------

/**
 * VP SDE, defaults β_min = 0.1, β_max = 20, T = 1.
 * @example
 * ```ts
 * import * as assert from 'node:assert';
 * import { vp, driftCoef, marginalMeanCoef, marginalStd } from '@score-sde/sde-math';
 *
 * const sde = vp(); // a plain JSON record: { kind: 'vp', betaMin: 0.1, betaMax: 20, T: 1 }
 * const t = 0.5;
 * const intBeta = 0.1 * t + 0.5 * (20 - 0.1) * t * t; // ∫₀ᵗ β(s) ds
 * assert.ok(Math.abs(driftCoef(sde, t) + 0.5 * (0.1 + t * (20 - 0.1))) < 1e-12); // f(t) = −½ β(t)
 * assert.ok(Math.abs(marginalMeanCoef(sde, t) - Math.exp(-0.5 * intBeta)) < 1e-12); // m(t) = e^{−½∫β}
 * assert.ok(Math.abs(marginalMeanCoef(sde, t) ** 2 + marginalStd(sde, t) ** 2 - 1) < 1e-12); // variance preserving
 * ```
 * @category constructors
 */
export const vp = (p: Partial<Omit<VPSDE, 'kind'>> = {}): VPSDE => ({ kind: 'vp', betaMin: 0.1, betaMax: 20, T: 1, ...p });
/** Sub-VP SDE, defaults β_min = 0.1, β_max = 20, T = 1. @category constructors */
export const subvp = (p: Partial<Omit<SubVPSDE, 'kind'>> = {}): SubVPSDE => ({ kind: 'subvp', betaMin: 0.1, betaMax: 20, T: 1, ...p });
/** VE SDE, defaults σ_min = 0.01, σ_max = 50, T = 1. @category constructors */
export const ve = (p: Partial<Omit<VESDE, 'kind'>> = {}): VESDE => ({ kind: 've', sigmaMin: 0.01, sigmaMax: 50, T: 1, ...p });
/** Tutorial SDE dx = σ^t dw, default σ = 25, T = 1. @category constructors */
export const tutorial = (p: Partial<Omit<TutorialSDE, 'kind'>> = {}): TutorialSDE => ({ kind: 'tutorial', sigma: 25, T: 1, ...p });

// -------------------------------------------------------------------------------------
// scalar coefficients
// -------------------------------------------------------------------------------------

type VPLike = VPSDE | SubVPSDE;

/** β(t) = β_min + t(β_max − β_min). */
const beta = (s: VPLike, t: number): number => s.betaMin + t * (s.betaMax - s.betaMin);
/** ∫₀ᵗ β = β_min t + ½ t² (β_max − β_min). */
const betaIntegral = (s: VPLike, t: number): number => s.betaMin * t + 0.5 * t * t * (s.betaMax - s.betaMin);
/** σ(t) = σ_min (σ_max/σ_min)^t. */
const veSigma = (s: VESDE, t: number): number => s.sigmaMin * Math.pow(s.sigmaMax / s.sigmaMin, t);

/** Drift coefficient f(t) of dx = f(t)·x dt + g(t) dw. @category coefficients */
export const driftCoef = (s: SDE, t: number): number => (s.kind === 'vp' || s.kind === 'subvp' ? -0.5 * beta(s, t) : 0);

/** Diffusion coefficient g(t). @category coefficients */
export const diffusionCoef = (s: SDE, t: number): number => {
  switch (s.kind) {
    case 'vp':
      return Math.sqrt(beta(s, t));
    case 'subvp':
      return Math.sqrt(beta(s, t) * -Math.expm1(-2 * betaIntegral(s, t)));
    case 've':
      return veSigma(s, t) * Math.sqrt(2 * Math.log(s.sigmaMax / s.sigmaMin));
    case 'tutorial':
      return Math.pow(s.sigma, t);
  }
};

/** log m(t) = ∫₀ᵗ f: the log of the marginal mean coefficient. @category coefficients */
export const logMeanCoef = (s: SDE, t: number): number => (s.kind === 'vp' || s.kind === 'subvp' ? -0.5 * betaIntegral(s, t) : 0);

/** m(t): p_0t(x_t | x_0) has mean m(t)·x_0. @category coefficients */
export const marginalMeanCoef = (s: SDE, t: number): number => Math.exp(logMeanCoef(s, t));

/** s(t)²: p_0t(x_t | x_0) has covariance s(t)² I. @category coefficients */
export const marginalVariance = (s: SDE, t: number): number => {
  switch (s.kind) {
    case 'vp':
      return -Math.expm1(-betaIntegral(s, t));
    case 'subvp':
      return Math.pow(-Math.expm1(-betaIntegral(s, t)), 2);
    case 've':
      return s.sigmaMin * s.sigmaMin * Math.expm1(2 * t * Math.log(s.sigmaMax / s.sigmaMin));
    case 'tutorial':
      return Math.expm1(2 * t * Math.log(s.sigma)) / (2 * Math.log(s.sigma));
  }
};

/** s(t) = √(s(t)²), the marginal standard deviation. @category coefficients */
export const marginalStd = (s: SDE, t: number): number => Math.sqrt(marginalVariance(s, t));

/** Standard deviation of the prior p_T the samplers start from: 1 for VP/sub-VP, s(T) otherwise (reference code: σ_max). @category coefficients */
export const priorStd = (s: SDE): number => (s.kind === 'vp' || s.kind === 'subvp' ? 1 : s.kind === 've' ? s.sigmaMax : marginalStd(s, s.T));

/** Whether the SDE is one of the variance-preserving family (VP, sub-VP). @category guards */
export const isVPLike = (s: SDE): s is VPLike => s.kind === 'vp' || s.kind === 'subvp';

/** β(t) of a VP-like SDE. @category coefficients */
export const betaOf = beta;

/** σ(t) = σ_min (σ_max/σ_min)^t of a VE SDE (the noise level of SMLD). @category coefficients */
export const veSigmaOf = veSigma;
