/**
 * Fast samplers beyond the references: EDM's Heun sampler on the Karras grid (Karras et al. 2022, Alg. 2) and
 * DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) with its third-order multistep form (3M), all written for any SDE of
 * this package through its Gaussian kernel x_t = m(t) x₀ + s(t) n.
 *
 * @module fast
 */
import { tf, fused } from '@score-sde/tensor-fp';
import { type SDE, marginalMeanCoef, marginalStd, noiseLevel, timeOfNoiseLevel, posteriorMean } from '@score-sde/sde-math';
import { type Step, defineStep, addPerSampleNoise, noiseDuring } from './step';
import type { Denoised, SolverMemory } from './state';

/** c·x, without an op when c = 1 (VE and the tutorial SDE have m(t) = 1: x·1 = x exactly). */
const scaled = (x: tf.Tensor, c: number): tf.Tensor => (c === 1 ? x : tf.mul(x, c));

/** x / c, without an op when c = 1 (x / 1 = x exactly). */
const unscaled = (x: tf.Tensor, c: number): tf.Tensor => (c === 1 ? x : tf.div(x, c));

// -------------------------------------------------------------------------------------
// EDM
// -------------------------------------------------------------------------------------

/** Options of EDM's sampler: churn γ per step (EDM: S_churn/N, at most √2 − 1), its σ range, noise inflation. @category model */
export interface EdmOptions {
  /** γ of each step (0: the deterministic Heun ODE sampler). */
  readonly gamma?: number;
  /** Churn only when σ(t) ∈ [sMin, sMax] (default: always). */
  readonly sMin?: number;
  readonly sMax?: number;
  /** S_noise (default 1). */
  readonly sNoise?: number;
}

/** σ ∈ [sMin, sMax]: whether a stochastic step starting at noise level σ acts (EDM's churn, DPM-Solver++'s η). */
const inRange = (sigma: number, sMin: number, sMax: number): boolean => sigma >= sMin && sigma <= sMax;

/**
 * EDM's 2nd-order Heun sampler (Karras et al. 2022, Alg. 2) in the scaled variable x̂ = x/m(t), where the
 * probability-flow ODE reads dx̂/dσ = −σ ∇_x̂ log p(x̂; σ) = −σ m(t) s(x, t) with σ = σ(t) = s(t)/m(t):
 *   churn (if γ > 0): σ̂ = σ(1 + γ), x̂ ← x̂ + √(σ̂² − σ²) S_noise z  (at t̂ = σ⁻¹(σ̂));
 *   d = −σ̂ m(t̂) s(m(t̂) x̂, t̂),  x̂' = x̂ + (σ' − σ̂) d,
 *   d' = −σ' m(t') s(m(t') x̂', t'),  x̂'' = x̂ + (σ' − σ̂)(d + d')/2,   x_next = m(t') x̂''.
 * Two evaluations per step; meant for {@link karrasGrid}. Stochastic only when γ > 0.
 * @category edm
 */
export const edmHeun = (sde: SDE, opts: EdmOptions = {}): Step => {
  const gamma = opts.gamma ?? 0;
  if (!(gamma >= 0 && gamma <= Math.SQRT2 - 1 + 1e-12)) throw new RangeError(`edmHeun: gamma must lie in [0, √2 − 1], got ${gamma}`);
  const sMin = opts.sMin ?? 0;
  const sMax = opts.sMax ?? Infinity;
  const sNoise = opts.sNoise ?? 1;
  return defineStep(
    { name: gamma > 0 ? `edm-heun(γ=${gamma})` : 'edm-heun', kind: 'predictor', order: 2, stochastic: gamma > 0, batchCoupling: [], nfePerStep: 2 },
    (score, s, tNext) => {
      const sigma = noiseLevel(sde, s.t);
      const g = inRange(sigma, sMin, sMax) ? gamma : 0;
      const m = marginalMeanCoef(sde, s.t);
      let xHat = unscaled(s.x, m);
      let sigmaHat = sigma;
      let tHat = s.t;
      let keys = s.keys;
      if (g > 0) {
        sigmaHat = sigma * (1 + g);
        tHat = timeOfNoiseLevel(sde, sigmaHat);
        const noisy = addPerSampleNoise(s, xHat, Math.sqrt(sigmaHat ** 2 - sigma ** 2) * sNoise);
        keys = noisy.keys;
        xHat = noisy.x;
      }
      const slope = (xh: tf.Tensor, tt: number, sg: number): tf.Tensor => {
        const mt = marginalMeanCoef(sde, tt);
        return tf.mul(score(scaled(xh, mt), tt), -sg * mt);
      };
      const sigmaNext = noiseLevel(sde, tNext);
      const d = slope(xHat, tHat, sigmaHat);
      const xEuler = tf.add(xHat, tf.mul(d, sigmaNext - sigmaHat));
      const dNext = slope(xEuler, tNext, sigmaNext);
      const xNext = tf.add(xHat, tf.mul(tf.add(d, dNext), 0.5 * (sigmaNext - sigmaHat)));
      return { x: scaled(xNext, marginalMeanCoef(sde, tNext)), keys };
    },
  );
};

// -------------------------------------------------------------------------------------
// DPM-Solver++
// -------------------------------------------------------------------------------------

/**
 * Options of DPM-Solver++(2M): η ≥ 0, the strength of the reverse SDE it solves (0: the probability-flow ODE, 1: the
 * reverse SDE), on the steps that start at a noise level σ(t) ∈ [sMin, sMax] (default: every step; the others take
 * η = 0, as EDM's churn range does). @category model
 */
export interface DpmOptions {
  /** η ≥ 0 (default 0). */
  readonly eta?: number;
  /** η only on steps starting at σ(t) ≥ sMin (default 0). */
  readonly sMin?: number;
  /** η only on steps starting at σ(t) ≤ sMax (default ∞). */
  readonly sMax?: number;
}

/**
 * DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Alg. 2, and its SDE form), with α_t = m(t), σ_t = s(t),
 * λ_t = log(α_t/σ_t) and the data prediction x̂₀(x, t) = (x + σ_t² s(x, t)) / α_t (Tweedie, `posteriorMean`). It solves
 * the reverse SDE of strength η ≥ 0,
 *   dx = [f(x, t) − ((1 + η)/2) g(t)² ∇log p_t(x)] dt + √η g(t) dw̄,
 * which has the marginals p_t for every η (η = 0: the probability-flow ODE; η = 1: the reverse SDE; η > 1 adds
 * Langevin-like mixing that corrects a learned score's errors). On a step t → t' with h = λ_{t'} − λ_t:
 *   D = x̂₀ on the first step, later D = (1 + 1/(2r)) x̂₀ − (1/(2r)) x̂₀_prev with r = h_prev/h;
 *   x' = (σ_{t'}/σ_t) e^{−ηh} x + α_{t'} (1 − e^{−(1+η)h}) D + σ_{t'} √(1 − e^{−2ηh}) z,  z ~ N(0, I),
 * the exact solution of the SDE's linear part with D held fixed (η = 1 and D = x̂₀: ancestral sampling, the Gaussian
 * posterior of x_{t'} given x_t and x₀ = D), second order through D's correction. With a range [sMin, sMax] a step
 * starting at σ(t) outside it takes η = 0: every step keeps the marginals, so any such piecewise η does too (the last
 * steps deterministic leave no fresh noise that their few, large steps cannot remove).
 * One evaluation per step; the previous data prediction is kept in the state's memory. Written for VP (the
 * paper's setting) and valid for every SDE here, whose kernels are all of the form α_t x₀ + σ_t n.
 * @category dpm-solver
 */
export const dpmSolverPP2M = (sde: SDE, opts: DpmOptions = {}): Step => dpmMultistep(sde, opts, 2);

/**
 * The weights of a data prediction's value, slope and curvature in λ over one step of the reverse SDE of strength η,
 * k = 1 + η: with D(λ_t + u) = D + u D′ + ½u² D″ held in the step t → t′ (h = λ_{t′} − λ_t),
 *   ∫₀ʰ k e^{−k(h−u)} D(λ_t + u) du = φ₁ D + φ₂ D′ + φ₃ D″,
 *   φ₁ = 1 − e^{−kh},  φ₂ = h − φ₁/k,  φ₃ = ½h² − h/k + φ₁/k².
 * @category dpm-solver
 */
export const dpmPhis = (h: number, eta: number): readonly [number, number, number] => {
  const k = 1 + eta;
  const p1 = -Math.expm1(-k * h);
  return [p1, h - p1 / k, (h * h) / 2 - h / k + p1 / (k * k)];
};

/**
 * DPM-Solver++(3M): the third-order multistep form of {@link dpmSolverPP2M} (Lu et al. 2022, "DPM-Solver++", §4;
 * the same reverse SDE of strength η ≥ 0). The data predictions of the last three steps give D and its slope D′
 * and curvature D″ in λ by the quadratic through them (Newton form, any spacing: with δ₁, δ₀ the newest and older
 * divided differences and h₁, h₂ the newest and older λ-steps, D′ = δ₁ + h₁ (δ₁ − δ₀)/(h₁ + h₂),
 * D″ = 2 (δ₁ − δ₀)/(h₁ + h₂)); the first step holds D fixed and the second takes the line through two. Then
 *   x′ = (σ_{t′}/σ_t) e^{−ηh} x + α_{t′} (φ₁ D + φ₂ D′ + φ₃ D″) + σ_{t′} √(1 − e^{−2ηh}) z   ({@link dpmPhis}),
 * exact when D is a quadratic in λ. One evaluation per step; the two previous predictions are kept in memory.
 * @category dpm-solver
 */
export const dpmSolverPP3M = (sde: SDE, opts: DpmOptions = {}): Step => dpmMultistep(sde, opts, 3);

/**
 * The step both DPM-Solver++ multistep orders share: η checked, h = λ_{t′} − λ_t, the data prediction x̂₀ remembered
 * (with the one before it for order 3), x′ = (σ_{t′}/σ_t) e^{−ηh} x + (the order's data term) + σ_{t′} √(1 − e^{−2ηh}) z.
 * The data term: order 2, −α_{t′} expm1(−(1+η)h) D with DPM-Solver++(2M)'s corrected D; order 3, α_{t′} (φ₁ D + φ₂ D′ + φ₃ D″).
 */
const dpmMultistep = (sde: SDE, opts: DpmOptions, order: 2 | 3): Step => {
  const etaMax = opts.eta ?? 0;
  if (!(etaMax >= 0 && Number.isFinite(etaMax))) throw new RangeError(`dpmSolverPP${order}M: eta must be a finite number ≥ 0, got ${etaMax}`);
  const sMin = opts.sMin ?? 0;
  const sMax = opts.sMax ?? Infinity;
  if (!(sMin >= 0 && sMax > sMin)) throw new RangeError(`dpmSolverPP${order}M: the η range needs 0 ≤ sMin < sMax, got [${sMin}, ${sMax}]`);
  const ranged = opts.sMin !== undefined || opts.sMax !== undefined;
  /** η of the step starting at t. */
  const etaAt = (t: number): number => (inRange(noiseLevel(sde, t), sMin, sMax) ? etaMax : 0);
  const lam = (t: number): number => Math.log(marginalMeanCoef(sde, t) / marginalStd(sde, t));
  /** DPM-Solver++(2M): D = (1 + 1/(2r)) x̂₀ − (1/(2r)) x̂₀_prev, r = h_prev/h, held over the step. */
  const secondOrder = (x0: tf.Tensor, t: number, h: number, aN: number, prev: Denoised | undefined, eta: number): tf.Tensor => {
    const c = -(aN * Math.expm1(-(1 + eta) * h));
    if (prev === undefined) return tf.mul(x0, c);
    const r = (lam(t) - lam(prev.t)) / h;
    return tf.mul(tf.sub(tf.mul(x0, 1 + 1 / (2 * r)), tf.mul(prev.x0, 1 / (2 * r))), c);
  };
  /** DPM-Solver++(3M): D′ and D″ from the Newton quadratic through the last three predictions ({@link dpmPhis}). */
  const thirdOrder = (x0: tf.Tensor, t: number, h: number, aN: number, prev: Denoised | undefined, older: Denoised | undefined, eta: number): tf.Tensor => {
    const [p1, p2, p3] = dpmPhis(h, eta);
    let weighted = tf.mul(x0, p1);
    if (prev !== undefined) {
      const h1 = lam(t) - lam(prev.t);
      const d1 = tf.div(tf.sub(x0, prev.x0), h1);
      if (older === undefined) weighted = tf.add(weighted, tf.mul(d1, p2));
      else {
        const h2 = lam(prev.t) - lam(older.t);
        const curv = tf.div(tf.sub(d1, tf.div(tf.sub(prev.x0, older.x0), h2)), h1 + h2);
        // D′ = δ₁ + h₁·curv, D″ = 2·curv
        weighted = tf.add(weighted, tf.add(tf.mul(d1, p2), tf.mul(curv, p2 * h1 + 2 * p3)));
      }
    }
    return tf.mul(weighted, aN);
  };
  return defineStep(
    {
      name: etaMax > 0 ? `dpm-solver++(${order}M, η=${etaMax}${ranged ? ` for σ ∈ [${sMin}, ${sMax}]` : ''})` : `dpm-solver++(${order}M)`,
      kind: 'predictor',
      order,
      stochastic: etaMax > 0,
      batchCoupling: [],
      nfePerStep: 1,
    },
    (score, s, tNext) => {
      const eta = etaAt(s.t);
      const sg = marginalStd(sde, s.t);
      const aN = marginalMeanCoef(sde, tNext);
      const sgN = marginalStd(sde, tNext);
      const h = lam(tNext) - lam(s.t);
      const prev = s.memory?.previous;
      const update = (): { readonly mean: tf.Tensor; readonly memory: SolverMemory } => {
        const x0 = posteriorMean(sde, score)(s.x, s.t);
        const data = order === 2 ? secondOrder(x0, s.t, h, aN, prev, eta) : thirdOrder(x0, s.t, h, aN, prev, s.memory?.older, eta);
        const memory = { ...s.memory, previous: { t: s.t, x0 }, ...(order === 3 && prev !== undefined ? { older: prev } : {}) };
        return { mean: tf.add(tf.mul(s.x, (sgN / sg) * Math.exp(-eta * h)), data), memory };
      };
      if (eta === 0) {
        const { mean, memory } = update();
        return { x: mean, memory };
      }
      // the noise is made while the score is evaluated (noiseDuring)
      const { value: { mean, memory }, keys, z } = noiseDuring(s, update);
      return { x: fused.scaleAdd(mean, z, sgN * Math.sqrt(-Math.expm1(-2 * eta * h))), memory, keys };
    },
  );
};
