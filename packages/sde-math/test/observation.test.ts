/**
 * The closed-form observation likelihood p(x_0,O = y | x_t) of a diagonal Gaussian mixture (`observationLogLikelihood`):
 * it is Bayes' factor between the marginal p_t and the SDE marginal of the exact conditional p(x_0 | y), its gradient
 * turns the score into the conditional score, it is a density in y, it averages to p(y) over x_t ~ p_t, and it has the
 * right limits at t → T (uninformative x_t) and t → 0 (x_t pins x_0).
 *
 * Notation: m = m(t), σ² = s(t)², O the observed coordinates (values y), M the missing ones. For diagonal components
 * p(x_0 | y) puts a point mass at y on O and is `conditionalMixture(m, y)` on M, so its SDE marginal is
 *   p_t(x_t | y) = N(x_t,O; m y, σ² I) · p_t^cond(x_t,M),   p_t^cond = marginalMixture(sde, conditionalMixture(m, y), t).
 */
import fc from 'fast-check';
import { tf, initBackend, random, leakedBy } from '@score-sde/tensor-fp';
import {
  type GaussianMixture,
  type SDE,
  vp,
  ve,
  marginalMixture,
  marginalMeanCoef,
  marginalVariance,
  mixtureDim,
  mixtureLogProbAt,
  componentLogProbsAt,
  componentPosteriorAt,
  exactLogProbAt,
  exactScoreAt,
  exactScore,
  sampleMixtureAt,
  conditionalMixture,
  observationLogLikelihood,
  observationLogLikelihoodAt,
} from '@score-sde/sde-math';
import { EPS32, EPS64, TINY32, mixtureArb, sdeArb, timeArb } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const observationBayes = identity({
  concept: 'guidance',
  title: 'Observation likelihood is the Bayes factor of the conditional marginal',
  formula: String.raw`$\log p_t(x_t) + \log p(x_{0,O} = y \mid x_t) - \log p(y) = \log p_t(x_t \mid y)$, with $p_t(x_t \mid y) = \mathcal N(x_{t,O}; m y, s^2 I)\; p_t^{\text{cond}}(x_{t,M})$`,
  source: "Bayes' rule; for diagonal components p(x_0 | y) is a point mass at y on O and conditionalMixture(m, y) on M, whose SDE marginal is closed-form",
  tolerance: 'float64 log-sum-exps of O(K) terms of O(D) quadratics and logs (|log 2πv| ≤ 20 per coordinate): 256ε(Σ|terms| + 20D)',
});

const conditionalScore = identity({
  concept: 'guidance',
  title: 'Guided score is the conditional score',
  formula: String.raw`$\nabla_{x_t} \log p_t(x_t) + \nabla_{x_t} \log p(y \mid x_t) = \nabla_{x_t} \log p_t(x_t \mid y)$`,
  source: 'gradient of the Bayes identity above (Song et al. 2021, eq. 14 / App. I); checked by central differences of log p(y | x_t)',
  tolerance: 'Taylor remainder h²/6 · (|∂³ log p_t| + |∂³ log p_t^cond|) (cumulant bounds) + float64 rounding 16ε·size/h + 64ε(|want| + |s|)',
});

const observationFloat32 = identity({
  concept: 'guidance',
  title: 'Float32 observation likelihood and its autodiff gradient equal the float64 closed forms',
  formula: String.raw`$\log p(y \mid x_t) = \operatorname{LSE}_k\big(\log \operatorname{softmax}(\ell)_k + o_k\big)$, and $\hat s + \nabla_x \log p(y \mid x_t)$ (tf.grad) $= \nabla \log p_t(x_t \mid y)$`,
  source: 'the tensor observationLogLikelihood and exactScore against observationLogLikelihoodAt and the float64 conditional score',
  tolerance: '4× the first-order float32 bound: logits Λ_k, observation terms Ω_k = Σ(|ζ|δ/√v̂ + 4εζ²) + (|O| + 4)εΣ|½ log 2πv̂|, and the gradient terms through both softmaxes',
});

const observationDensity = identity({
  concept: 'guidance',
  title: 'Observation likelihood is a density in y',
  formula: String.raw`$\int p(y \mid x_t)\, dy = 1$ (1-D observation; $y \mapsto p(y \mid x_t) = \sum_k r_k \mathcal N(\hat\mu_k, \hat v_k)$)`,
  source: 'it is a mixture of the backward Gaussian kernels; trapezoid rule on ±12 √v̂ with spacing √v̂_min/4',
  tolerance: '1e−10: trapezoid error ≤ 2e^{−2π²v̂/h²} ≤ 2e−137 (Poisson summation), tails < 4e−33, float64 sum of ≤ 2·10⁵ terms ≈ 5e−11',
});

const observationAverage = identity({
  concept: 'guidance',
  title: 'Observation likelihood averages to the evidence',
  formula: String.raw`$\mathbb E_{x_t \sim p_t}\big[p(y \mid x_t)\big] = p(y)$`,
  source: 'marginalising x_t: ∫ p(y | x_t) p_t(x_t) dx_t = p(y); 20,000 draws, VP and VE, t = 0.1, 0.5',
  tolerance: 'Monte-Carlo: 5 SE of a plain mean (float32 rounding ≲ 1e−4 relative, far below the SE ≈ 1e−2 relative)',
});

const observationAtT = identity({
  concept: 'guidance',
  title: 'At t → T the observation likelihood forgets x_t',
  formula: String.raw`$m(T) \to 0 \Rightarrow \log p(y \mid x_T) = \log p(y)$`,
  source: 'VP with β_max = 2000 (m(1) ≈ 1e−217) and VE with σ_max = 1e20: μ̂ = μ, v̂ = s², p_T(k | x) = w_k to float64 resolution',
  tolerance: 'float64 log-sum-exp of 3 terms of size ≤ 20: 64ε·20',
});

const observationAt0 = identity({
  concept: 'guidance',
  title: 'At t → 0 the observation likelihood pins x_0 to x_t/m',
  formula: String.raw`$\log p(y \mid x_t) \to \log \mathcal N\big(y;\, x_{t,O}/m(t),\, s(t)^2/m(t)^2\, I\big)$ as $s(t) \to 0$`,
  source: 'with ρ = s²/(m² s_k²), the kernel of component k differs from that Gaussian by ½ log(1 + ρ) − ½((ζ − c)²(1 + ρ) − ζ²), bounded by b_k → 0',
  tolerance: 'the derived bound max(log Σ r_k e^{b_k}, −log Σ r_k e^{−b_k}) + float64 rounding; and the bound < 0.1 nats at t = 1e−5',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const LOG_2PI = Math.log(2 * Math.PI);
const logNormal = (y: number, mean: number, variance: number): number => -0.5 * ((y - mean) ** 2 / variance + Math.log(variance) + LOG_2PI);

/** A point near a mixture: around component k's mean, within ±3 of its stds. */
const pointNear = (m: GaussianMixture, k: number, u: ReadonlyArray<number>): Float64Array =>
  Float64Array.from({ length: mixtureDim(m) }, (_, j) => m.means[k]![j]! + 3 * u[j]! * m.stds[k]![j]!);

const unit = fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 3, maxLength: 3 });

/**
 * An observation problem: a mixture in D ≥ 2, the observed coordinates (0 always, 1 never, the rest at random), y near
 * a component of p_0 and x_t near a component of p_t.
 */
const problemArb = fc
  .record({ sde: sdeArb, m: mixtureArb({ minD: 2 }), t: timeArb, ky: fc.nat(), uy: unit, kx: fc.nat(), ux: unit, mask: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }) })
  .map(({ sde, m, t, ky, uy, kx, ux, mask }) => {
    const D = mixtureDim(m);
    const y0 = pointNear(m, ky % m.weights.length, uy);
    const observed = Array.from({ length: D }, (_, j) => (j === 0 || (j > 1 && mask[j]!) ? y0[j]! : null));
    const x = pointNear(marginalMixture(sde, m, t), kx % m.weights.length, ux);
    return { sde, m, t, observed, x };
  });

const indices = (observed: ReadonlyArray<number | null>, wantObserved: boolean): ReadonlyArray<number> =>
  observed.flatMap((v, j) => ((v !== null) === wantObserved ? [j] : []));

/** The marginal of the mixture on the coordinates `js`. */
const marginalOn = (m: GaussianMixture, js: ReadonlyArray<number>): GaussianMixture => ({
  weights: m.weights,
  means: m.means.map((r) => js.map((j) => r[j]!)),
  stds: m.stds.map((r) => js.map((j) => r[j]!)),
});

/** log p_t(x_t | y) = Σ_{j∈O} log N(x_tj; m y_j, σ²) + log p_t^cond(x_t,M), float64 (see the module comment). */
const conditionalLogProbAt = (sde: SDE, m: GaussianMixture, observed: ReadonlyArray<number | null>, x: ArrayLike<number>, t: number): number => {
  const a = marginalMeanCoef(sde, t);
  const v = marginalVariance(sde, t);
  const obsPart = indices(observed, true).reduce((acc, j) => acc + logNormal(x[j]!, a * observed[j]!, v), 0);
  return obsPart + exactLogProbAt(sde, conditionalMixture(m, observed))(indices(observed, false).map((j) => x[j]!), t);
};

/** ∇ log p_t(x_t | y): −(x_tj − m y_j)/σ² on O, the score of p_t^cond on M, float64. */
const conditionalScoreAt = (sde: SDE, m: GaussianMixture, observed: ReadonlyArray<number | null>, x: ArrayLike<number>, t: number): Float64Array => {
  const a = marginalMeanCoef(sde, t);
  const v = marginalVariance(sde, t);
  const miss = indices(observed, false);
  const sM = exactScoreAt(sde, conditionalMixture(m, observed))(miss.map((j) => x[j]!), t);
  const out = Float64Array.from(observed, (yj, j) => (yj === null ? 0 : -(x[j]! - a * yj) / v));
  miss.forEach((j, i) => (out[j] = sM[i]!));
  return out;
};

/**
 * Bound on |∂_j³ log p| of a diagonal mixture p over [x − h e_j, x + h e_j]: log p = log Σ_k exp φ_k with φ_k quadratic,
 * so along e_j its third derivative is 3 Cov_r(φ', φ'') + κ₃,r(φ') under the responsibilities r, with |φ'_k| ≤ A :=
 * max_k (|x_j − μ_kj| + h)/s_kj², |φ''_k| ≤ Bm := max_k 1/s_kj²: |Cov| ≤ A·Bm and |κ₃| ≤ (2A)³.
 */
const thirdDerivativeBound = (m: GaussianMixture, x: ArrayLike<number>, j: number, h: number): number => {
  let A = 0;
  let Bm = 0;
  m.means.forEach((mu, k) => {
    const v = m.stds[k]![j]! ** 2;
    A = Math.max(A, (Math.abs(x[j]! - mu[j]!) + h) / v);
    Bm = Math.max(Bm, 1 / v);
  });
  return 3 * A * Bm + 8 * A ** 3;
};

/** The backward kernel of the task statement, written out: μ̂ = μ + m s²(x − mμ)/(m²s² + σ²), v̂ = s²σ²/(m²s² + σ²). */
const kernelOf = (a: number, v: number, mu: number, s: number, x: number) => {
  const d = a * a * s * s + v;
  return { muHat: mu + (a * s * s * (x - a * mu)) / d, vHat: (s * s * v) / d, gain: (a * s * s) / d, offset: (mu * v) / d };
};

describe('observation likelihood of a mixture', () => {
  test('Bayes: log p_t(x_t) + log p(y | x_t) − log p(y) = log p_t(x_t | y) (float64, all kinds, random t, x_t, y, mask)', () => {
    fc.assert(
      fc.property(problemArb, ({ sde, m, t, observed, x }) => {
        const obs = indices(observed, true);
        const logPt = exactLogProbAt(sde, m)(x, t);
        const logLik = observationLogLikelihoodAt(sde, m, observed)(x, t);
        const logPy = mixtureLogProbAt(marginalOn(m, obs))(obs.map((j) => observed[j]!));
        const rhs = conditionalLogProbAt(sde, m, observed, x, t);
        // Both sides are float64 log-sum-exps of O(K) terms, each a sum of O(D) quadratics and logs whose sizes are
        // bounded by the evaluated log-densities plus the log-normalisers (|log(2π v)| ≤ 20 per coordinate here, with
        // variances ≥ 1e-5 at t ≥ 0.05): rounding ≤ 256 ε₆₄ · (Σ |terms| + 20 D).
        const scale = Math.abs(logPt) + Math.abs(logLik) + Math.abs(logPy) + Math.abs(rhs) + 20 * observed.length;
        observationBayes.atMost(Math.abs(logPt + logLik - logPy - rhs), 256 * EPS64 * scale);
      }),
      runs(80),
    );
  });

  test('∇ log p_t(x_t) + ∇ log p(y | x_t) = ∇ log p_t(x_t | y): central finite differences of log p(y | x_t) (float64)', () => {
    fc.assert(
      fc.property(problemArb, ({ sde, m, t, observed, x }) => {
        const mt = marginalMixture(sde, m, t);
        const miss = indices(observed, false);
        const condT = marginalMixture(sde, conditionalMixture(m, observed), t);
        const f = observationLogLikelihoodAt(sde, m, observed);
        const want = conditionalScoreAt(sde, m, observed, x, t);
        const sPt = exactScoreAt(sde, m)(x, t);
        const h = 1e-3 * Math.min(...mt.stds.flat());
        for (let j = 0; j < x.length; j++) {
          const xp = Float64Array.from(x);
          const xm = Float64Array.from(x);
          xp[j] = x[j]! + h;
          xm[j] = x[j]! - h;
          const fp = f(xp, t);
          const fm = f(xm, t);
          const fd = (fp - fm) / (2 * h);
          // log p(y | x_t) = log p_t(x_t | y) − log p_t(x_t) + log p(y): along e_j its third derivative is bounded by
          // that of the mixture p_t plus, on a missing coordinate, that of p_t^cond (on an observed one log p_t(· | y)
          // is quadratic). Central difference truncation ≤ h²/6 · max|f'''|. Each evaluation is a difference of two
          // log-sum-exps of size ≲ |log p_t| + |f| + 10 D, rounded to ≲ 16 ε₆₄ of that, divided by 2h; the closed-form
          // scores are float64 sums of K terms (≤ 64 ε₆₄ relative).
          const i = miss.indexOf(j);
          const third = thirdDerivativeBound(mt, x, j, h) + (i >= 0 ? thirdDerivativeBound(condT, miss.map((jj) => x[jj]!), i, h) : 0);
          const size = 2 * Math.abs(exactLogProbAt(sde, m)(x, t)) + Math.abs(fp) + Math.abs(fm) + 10 * x.length;
          const tol = (h * h * third) / 6 + (16 * EPS64 * size) / h + 64 * EPS64 * (Math.abs(want[j]!) + Math.abs(sPt[j]!));
          conditionalScore.atMost(Math.abs(sPt[j]! + fd - want[j]!), tol);
        }
      }),
      runs(50),
    );
  });

  test('tensor (float32) log p(y | x_t) and the guided score exactScore + tf.grad = the float64 values, within float32 rounding', () => {
    fc.assert(
      fc.property(problemArb, ({ sde, m, t, observed, x }) => {
        const D = x.length;
        const x32 = Float32Array.from(x);
        const [lik, guided] = tf.tidy(() => {
          const xt = tf.tensor2d(x32, [1, D]);
          const logLik = observationLogLikelihood(sde, m, observed);
          const g = tf.grad((xx: tf.Tensor) => tf.sum(logLik(xx, t)))(xt);
          return [logLik(xt, t).dataSync()[0]!, tf.add(exactScore(sde, m)(xt, t), g).dataSync()];
        });
        const lik64 = observationLogLikelihoodAt(sde, m, observed)(x32, t);
        const want = conditionalScoreAt(sde, m, observed, x32, t);
        // Rounding model (ε = 2⁻²⁴), as in mixture-score.test.ts. The logits ℓ_k = log w_k + log N_k,t(x) carry
        // Λ_k = (D + 4)ε(½ Σ z² + |c_k|) + Σ_j 2|z_kj| ε(|x_j| + |μ_kj|)/s_kj. The observation terms o_k = Σ_{j∈O}
        // −½ ζ_kj² − ½ log(2π v̂_kj), ζ = (y − μ̂)/√v̂, with y − μ̂ = y − gain·x − offset formed with absolute error
        // δ_kj ≤ 4ε(|y| + |gain x| + |offset|), carry Ω_k = Σ_j (|ζ| δ/√v̂ + 4ε ζ²) + (|O| + 4)ε Σ_j |½ log(2π v̂)|.
        // The value, LSE_k(logSoftmax(ℓ)_k + o_k) = LSE(ℓ + o) − LSE(ℓ), is then off by ≤ max(Λ + Ω) + max Λ + 4ε(|LSE(ℓ+o)| + |LSE(ℓ)|).
        // The gradient terms ∂_j ℓ_k = −(x_j − mμ_kj)/σ_kj² and ∂_j o_k = gain ζ/√v̂ are formed with errors
        // 4(ε(|x_j| + |mμ_kj|) + 2⁻¹²⁶)/σ_kj² and gain(δ + 4ε|y − μ̂|)/v̂; the responsibilities of the two softmaxes
        // (and of exactScore) move by ≤ 2 max(Λ + Ω) r and 2 max Λ r; the sums over K add ≤ 3Kε max|term|.
        // We allow 4× these first-order bounds for second-order terms.
        const a = marginalMeanCoef(sde, t);
        const v = marginalVariance(sde, t);
        const mt = marginalMixture(sde, m, t);
        const obs = indices(observed, true);
        const logits = componentLogProbsAt(mt)(x32);
        let lam = 0;
        let lamOmega = 0;
        let joint = -Infinity;
        const gradTerm = new Float64Array(D);
        const gradErr = new Float64Array(D);
        m.weights.forEach((w, k) => {
          let q = 0;
          let zTerm = 0;
          let c = -Math.log(w) + 0.5 * D * LOG_2PI;
          for (let j = 0; j < D; j++) {
            const st = mt.stds[k]![j]!;
            const z = (x32[j]! - mt.means[k]![j]!) / st;
            q += z * z;
            zTerm += (2 * Math.abs(z) * EPS32 * (Math.abs(x32[j]!) + Math.abs(mt.means[k]![j]!))) / st;
            c += Math.log(st);
            gradTerm[j] = Math.max(gradTerm[j]!, Math.abs(z) / st);
            gradErr[j] = Math.max(gradErr[j]!, (4 * (EPS32 * (Math.abs(x32[j]!) + Math.abs(mt.means[k]![j]!)) + TINY32)) / st ** 2);
          }
          const lamK = (D + 4) * EPS32 * (0.5 * q + Math.abs(c)) + zTerm;
          let omega = 0;
          let logNorms = 0;
          let o = 0;
          obs.forEach((j) => {
            const y = observed[j]!;
            const { muHat, vHat, gain, offset } = kernelOf(a, v, m.means[k]![j]!, m.stds[k]![j]!, x32[j]!);
            const delta = 4 * EPS32 * (Math.abs(y) + Math.abs(gain * x32[j]!) + Math.abs(offset));
            const zeta = (y - muHat) / Math.sqrt(vHat);
            omega += (Math.abs(zeta) * delta) / Math.sqrt(vHat) + 4 * EPS32 * zeta * zeta;
            logNorms += Math.abs(0.5 * (Math.log(vHat) + LOG_2PI));
            o += -0.5 * zeta * zeta - 0.5 * (Math.log(vHat) + LOG_2PI);
            gradTerm[j] = Math.max(gradTerm[j]!, (gain * Math.abs(zeta)) / Math.sqrt(vHat) + Math.abs(x32[j]! - mt.means[k]![j]!) / mt.stds[k]![j]! ** 2);
            gradErr[j] = gradErr[j]! + (gain * (delta + 4 * EPS32 * Math.abs(y - muHat))) / vHat;
          });
          omega += (obs.length + 4) * EPS32 * logNorms;
          lam = Math.max(lam, lamK);
          lamOmega = Math.max(lamOmega, lamK + omega);
          joint = Math.max(joint, logits[k]! + o);
        });
        const lseL = mixtureLogProbAt(mt)(x32);
        const valueTol = 4 * (lamOmega + lam + 4 * EPS32 * (Math.abs(joint) + Math.abs(lseL) + Math.abs(lik64)));
        observationFloat32.atMost(Math.abs(lik - lik64), valueTol);
        for (let j = 0; j < D; j++) {
          const tol = 4 * (2 * gradErr[j]! + 2 * lamOmega * gradTerm[j]! + 4 * lam * gradTerm[j]! + 3 * m.weights.length * EPS32 * gradTerm[j]!);
          observationFloat32.atMost(Math.abs(guided[j]! - want[j]!), tol);
        }
      }),
      runs(60),
    );
  });

  test('∫ p(y | x_t) dy = 1 over a 1-D observation (trapezoid rule on a fine grid, VP and VE, t from 1e-3 to 1)', () => {
    const m: GaussianMixture = { weights: [0.5, 0.3, 0.2], means: [[-2, 1], [2, 2], [0, -2.5]], stds: [[0.5, 0.8], [0.4, 0.4], [0.7, 0.3]] };
    for (const sde of [vp(), ve()]) {
      for (const t of [1e-3, 0.05, 0.3, 1]) {
        for (const x of [
          [-1, 0.5],
          [1.2, -2],
        ]) {
          const xt = x.map((xi) => xi * Math.sqrt(marginalMeanCoef(sde, t) ** 2 + marginalVariance(sde, t)));
          const a = marginalMeanCoef(sde, t);
          const v = marginalVariance(sde, t);
          // y ↦ p(y | x_t) is the Gaussian mixture Σ_k r_k N(μ̂_k, v̂_k). The trapezoid rule with spacing h ≤ √v̂_min/4
          // on ±12 √v̂_max around the extreme μ̂ integrates each Gaussian with error ≤ 2 exp(−2π² v̂/h²) ≤ 2e−137
          // (Poisson summation) and misses a tail mass ≤ 2Φ(−12) < 4e−33; the sum of ≤ 2·10⁵ float64 terms rounds to
          // ≤ 2·10⁵ ε₆₄ ≈ 5e−11.
          const ks = m.means.map((mu, k) => kernelOf(a, v, mu[0]!, m.stds[k]![0]!, xt[0]!));
          const sdMin = Math.sqrt(Math.min(...ks.map((q) => q.vHat)));
          const sdMax = Math.sqrt(Math.max(...ks.map((q) => q.vHat)));
          const lo = Math.min(...ks.map((q) => q.muHat)) - 12 * sdMax;
          const hi = Math.max(...ks.map((q) => q.muHat)) + 12 * sdMax;
          const n = Math.ceil((hi - lo) / (sdMin / 4));
          const step = (hi - lo) / n;
          let integral = 0;
          for (let i = 0; i <= n; i++) {
            const y = lo + i * step;
            integral += (i === 0 || i === n ? 0.5 : 1) * Math.exp(observationLogLikelihoodAt(sde, m, [y, null])(xt, t));
          }
          integral *= step;
          expect(n).toBeLessThanOrEqual(2e5);
          observationDensity.atMost(Math.abs(integral - 1), 1e-10);
        }
      }
    }
  });

  test('E_{x_t ~ p_t}[p(y | x_t)] = p(y): Monte-Carlo with the tensor version (VP and VE, 5 SE)', () => {
    const m: GaussianMixture = { weights: [0.5, 0.3, 0.2], means: [[-2, 1], [2, 2], [0, -2.5]], stds: [[0.5, 0.8], [0.4, 0.4], [0.7, 0.3]] };
    const observed = [-1, null];
    const py = Math.exp(mixtureLogProbAt(marginalOn(m, [0]))([-1]));
    const n = 20000;
    for (const sde of [vp(), ve()]) {
      for (const t of [0.1, 0.5]) {
        const { x } = sampleMixtureAt(marginalMixture(sde, m, t))(random.split(random.key(3), n));
        const lik = tf.tidy(() => tf.exp(observationLogLikelihood(sde, m, observed)(tf.tensor2d(Float32Array.from(x), [n, 2]), t)).dataSync());
        let s = 0;
        for (let i = 0; i < n; i++) s += lik[i]!;
        const mean = s / n;
        let q = 0;
        for (let i = 0; i < n; i++) q += (lik[i]! - mean) ** 2;
        const se = Math.sqrt(q / (n - 1) / n);
        // ∫ p(y | x_t) p_t(x_t) dx_t = p(y): a plain mean of n i.i.d. values, so 5 standard errors (float32 rounding of
        // the values, ≲ 1e−4 relative, is far below the SE ≈ 1e−2 relative).
        observationAverage.withinSE(mean, py, se, { z: 5 }, `${sde.kind}, t = ${t}`);
      }
    }
  });

  test('t → T: when m(T) is below float64 resolution, x_T says nothing and log p(y | x_T) = log p(y) (VP β_max = 2000, VE σ_max = 1e20)', () => {
    const m: GaussianMixture = { weights: [0.5, 0.3, 0.2], means: [[-2, 1, 0.5], [2, 2, -1], [0, -2.5, 1]], stds: [[0.5, 0.8, 1], [0.4, 0.4, 0.6], [0.7, 0.3, 0.5]] };
    const observed = [-1, null, 0.7];
    const logPy = mixtureLogProbAt(marginalOn(m, [0, 2]))([-1, 0.7]);
    // VP: m(1) = e^{−500.05} ≈ 1e−217, σ² = 1 − m² = 1 in float64: μ̂ = μ, v̂ = s², p_T(k | x) = w_k to rounding.
    // VE: m = 1, σ = 1e20 and x_T ~ σ: μ̂ − μ = s² x/(s² + σ²) ≲ 1e−20 and p_T(k | x) − w_k ~ x μ/σ² ≲ 1e−19, both
    // below float64 resolution of terms of size 1.
    for (const sde of [vp({ betaMax: 2000 }), ve({ sigmaMax: 1e20 })]) {
      const sT = Math.sqrt(marginalVariance(sde, 1));
      for (const u of [
        [0.3, -1.2, 2],
        [-2.5, 0.1, 0.7],
      ]) {
        const got = observationLogLikelihoodAt(sde, m, observed)(
          u.map((ui) => ui * sT),
          1,
        );
        // Rounding of a log-sum-exp of 3 terms of size ≤ 20 (the quadratics and logs of the observed coordinates): ≤ 64 ε₆₄ · 20.
        observationAtT.atMost(Math.abs(got - logPy), 64 * EPS64 * 20);
      }
    }
  });

  test('t → 0: x_t pins x_0 whatever the component, p(y | x_t) → N(y; x_t,O/m, σ²/m² I), within the derived bound', () => {
    // With ρ = σ²/(m² s²), e = (m μ − x)/(m s) and y = x/m + (σ/m) ζ, the kernel of component k is μ̂ = x/m + (σ/m) c,
    // c = √ρ e/(1 + ρ), v̂ = (σ²/m²)/(1 + ρ), so log N(y; μ̂, v̂) − log N(y; x/m, σ²/m²) = ½ log(1 + ρ) − ½((ζ − c)²(1 + ρ) − ζ²),
    // of size ≤ δ_kj := ½ρ + |ζ||c| + ½c² + ½ρ(|ζ| + |c|)². log p(y | x_t) is log Σ_k p_t(k | x_t) exp(Σ_j ·) of these
    // differences Δ_k = Σ_{j∈O} (·) plus log N(y; x/m, σ²/m²): with b_k = Σ_{j∈O} δ_kj it is within
    // [log Σ_k r_k e^{−b_k}, log Σ_k r_k e^{b_k}] of that Gaussian, r_k = p_t(k | x_t), and b_k → 0 as σ(t) → 0.
    const m: GaussianMixture = { weights: [0.5, 0.3, 0.2], means: [[-2, 1, 0.5], [2, 2, -1], [0, -2.5, 1]], stds: [[0.5, 0.8, 1], [0.4, 0.4, 0.6], [0.7, 0.3, 0.5]] };
    fc.assert(
      fc.property(
        fc.constantFrom<SDE>(vp(), ve()),
        fc.constantFrom(1e-2, 1e-3, 1e-4, 1e-5),
        fc.nat(),
        unit,
        fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 2, maxLength: 2 }),
        (sde, t, kx, ux, zeta) => {
          const a = marginalMeanCoef(sde, t);
          const v = marginalVariance(sde, t);
          const x = pointNear(marginalMixture(sde, m, t), kx % 3, ux);
          const obs = [0, 2];
          const y = obs.map((j, i) => x[j]! / a + (Math.sqrt(v) / a) * zeta[i]!);
          const observed = [y[0]!, null, y[1]!];
          const got = observationLogLikelihoodAt(sde, m, observed)(x, t);
          const gaussianKernel = obs.reduce((acc, j, i) => acc + logNormal(y[i]!, x[j]! / a, v / (a * a)), 0);
          const r = componentPosteriorAt(marginalMixture(sde, m, t))(x);
          let up = 0;
          let down = 0;
          m.weights.forEach((_, k) => {
            let b = 0;
            obs.forEach((j, i) => {
              const s = m.stds[k]![j]!;
              const rho = v / (a * a * s * s);
              const e = (a * m.means[k]![j]! - x[j]!) / (a * s);
              const c = (Math.sqrt(rho) * Math.abs(e)) / (1 + rho);
              const z = Math.abs(zeta[i]!);
              b += 0.5 * rho + z * c + 0.5 * c * c + 0.5 * rho * (z + c) ** 2;
            });
            up += r[k]! * Math.exp(b);
            down += r[k]! * Math.exp(-b);
          });
          // log Σ_k r_k e^{Δ_k} with |Δ_k| ≤ b_k lies in [log Σ r_k e^{−b_k}, log Σ r_k e^{b_k}].
          const bound = Math.max(Math.log(up), -Math.log(down));
          // Float64 rounding: y − μ̂ is formed from numbers of size ≤ |y| + |x/m| + |μ| ≤ 20 and divided by √v̂ ≥ σ/(2m),
          // so each ζ² carries ≤ 16 ε₆₄ · 20 (|ζ| + 1) · 2m/σ; plus the log-sum-exps of terms of size ≤ 20 + |log v̂|.
          const rounding = 2 * 16 * EPS64 * 20 * (4 + 1) * ((2 * a) / Math.sqrt(v)) + 256 * EPS64 * (20 + Math.abs(Math.log(v)));
          observationAt0.atMost(Math.abs(got - gaussianKernel), bound + rounding);
          // And the limit is approached: at t = 1e−5 the bound is below 0.1 nats (σ(t) ≤ 1.4e−4, so √ρ ≤ 1e−3 · 3 here).
          if (t === 1e-5) expect(bound).toBeLessThan(0.1);
        },
      ),
      runs(60),
    );
  });

  test('edge cases: nothing observed gives log 1 = 0; a wrong length or a non-finite value is a RangeError; no tensor leaks', () => {
    const m: GaussianMixture = { weights: [0.4, 0.6], means: [[0, 1], [2, -1]], stds: [[1, 0.5], [0.3, 0.7]] };
    const x = tf.tensor2d([
      [0.2, 0.4],
      [1.5, -0.8],
      [3, 3],
    ]);
    const zeros = tf.tidy(() => observationLogLikelihood(vp(), m, [null, null])(x, 0.4).dataSync());
    expect(Array.from(zeros)).toEqual([0, 0, 0]);
    expect(observationLogLikelihoodAt(vp(), m, [null, null])([0.2, 0.4], 0.4)).toBe(0);
    expect(() => observationLogLikelihood(vp(), m, [1])).toThrow(/length 1, mixture dimension is 2/);
    expect(() => observationLogLikelihoodAt(vp(), m, [1, Number.NaN])).toThrow(/observed\.1 is not finite/);
    const f = observationLogLikelihood(ve(), m, [0.5, null]);
    expect(leakedBy(() => f(x, 0.3))).toBe(0);
    expect(leakedBy(() => tf.grad((xx: tf.Tensor) => tf.sum(f(xx, 0.3)))(x))).toBe(0);
    x.dispose();
  });
});
