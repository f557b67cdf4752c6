/**
 * Group 5 — the Gaussian-mixture oracle: closed-form scores are gradients of the closed-form log-densities,
 * the float32 tensor versions agree with the float64 ones, sampling and conditioning follow their definitions.
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
  mixtureMean,
  mixtureVariance,
  mixtureLogProb,
  mixtureLogProbAt,
  mixtureScore,
  mixtureScoreAt,
  componentPosterior,
  componentPosteriorAt,
  exactLogProb,
  exactLogProbAt,
  exactScore,
  exactScoreAt,
  sampleMixture,
  sampleMixtureAt,
  conditionalMixture,
  gaussian,
} from '@score-sde/sde-math';
import { EPS32, EPS64, TINY32, mixtureArb, sdeArb, timeArb } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const scoreIsGradient = identity({
  concept: 'mixture',
  title: 'Mixture score is the gradient of the mixture log-density',
  formula: String.raw`$\nabla_x \log p_t(x) = \sum_k r_k(x)\, \frac{m(t)\mu_k - x}{\sigma_{k,t}^2}$, with $p_t = \sum_k w_k \mathcal N(m(t)\mu_k, \sigma_{k,t}^2)$, $\sigma_{k,t}^2 = m(t)^2 s_k^2 + s(t)^2$`,
  source: 'a Gaussian mixture convolved with the Gaussian kernel p_0t stays a mixture; checked against central differences of log p_t (float64, all kinds, random t and x)',
  tolerance: 'Taylor remainder h²/6 · max|∂³ log p| (bounded by the cumulants 3 Cov_r(φ′, φ″) + κ₃ of the component quadratics φ_k) + float64 rounding 8ε(|f| + 1)/(2h)',
});

const scoreFloat32 = identity({
  concept: 'mixture',
  title: 'Float32 mixture score equals the float64 one',
  formula: String.raw`$\big|\hat s_{32}(x, t) - \nabla_x \log p_t(x)\big| \le$ the first-order float32 rounding bound`,
  source: 'the tensor exactScore and the float64 exactScoreAt compute the same closed form',
  tolerance: '4× the first-order bound: component scores 4(ε(|x| + |μ|) + 2⁻¹²⁶)/s², logits Λ_k = (D + 4)ε(½Σz² + |c_k|) + Σ 2|z| ε(|x| + |μ|)/s moving responsibilities by 2 max Λ · r_k, and Kε max|a| for the sum',
});

const logProbFloat32 = identity({
  concept: 'mixture',
  title: 'Float32 mixture log-density and responsibilities equal the float64 ones',
  formula: String.raw`$\log p(x) = \operatorname{LSE}_k\big(\log w_k + \log \mathcal N(x; \mu_k, s_k^2)\big),\quad r_k = \operatorname{softmax}_k(\cdot),\ \sum_k r_k = 1$`,
  source: 'definitions of the mixture density and of the posterior p(k | x)',
  tolerance: 'logits < 30 formed with relative error (D + 4)ε: 64ε(|log p| + 30) for log p; 2·64ε·30 + 4ε per responsibility; 8ε for their sum',
});

const logSumExp = identity({
  concept: 'mixture',
  title: 'Log-sum-exp is stable far from the data',
  formula: String.raw`$\log p(x) = \ell_{\max} + \log \sum_k e^{\ell_k - \ell_{\max}}$ stays finite where every $e^{\ell_k}$ underflows ($x = 100$, means $\pm 1$, $s = 0.1$)`,
  source: 'shifting by the largest logit before exponentiating',
  tolerance: 'float32 relative error 16ε of |log p| ≈ 4.9·10⁵ and of the score −9900',
});

const marginalMoments = identity({
  concept: 'mixture',
  title: 'Marginal mixture moments',
  formula: String.raw`$\mathbb E_t[x] = m(t)\,\mathbb E_0[x],\quad \operatorname{Var}_t[x] = m(t)^2 \operatorname{Var}_0[x] + s(t)^2$`,
  source: 'x_t = m(t) x_0 + s(t) z with z independent of x_0',
  tolerance: 'float64 algebra: 64ε·3 for the mean, 64ε(13 + v) for the variance (a difference E x² − (E x)² of terms ≤ 13 + v)',
});

const sampleInvariance = identity({
  concept: 'mixture',
  title: 'Mixture sample b depends on keys[b] only',
  formula: String.raw`$\text{sample}(k_1, \dots, k_B)_b = \text{sample}(k_b)$; tensor rows are the float64 rows rounded to float32`,
  source: 'each sample draws its component and noise from its own key (counter-based randomness)',
  tolerance: 'exact (bit for bit)',
});

const sampling = identity({
  concept: 'mixture',
  title: 'Mixture sampling frequencies and component moments',
  formula: String.raw`$\Pr(k) = w_k,\quad x \mid k \sim \mathcal N(\mu_k, s_k^2)$`,
  source: 'definition of the mixture; 20,000 draws',
  tolerance: 'Monte-Carlo 5 SE: frequency SE = √(w(1 − w)/N) (binomial); within a component SE(mean) = s/√n, SE(var) = s²√(2/(n − 1))',
});

const bayes = identity({
  concept: 'mixture',
  title: 'Conditional mixture is Bayes',
  formula: String.raw`$\log p(x_M \mid x_O) = \log p(x) - \log p_O(x_O)$ for the conditional mixture with weights $\propto w_k\,\mathcal N(x_O; \mu_{k,O}, s_{k,O}^2)$`,
  source: "Bayes' rule for a diagonal mixture: components factorise over coordinates",
  tolerance: 'float64 sums of O(D + K) terms of size < 40: 256ε·40',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

/** A point near the marginal p_t: around component k's mean, within ±3 of its marginal stds. */
const pointNear = (m: GaussianMixture, k: number, u: ReadonlyArray<number>): Float64Array =>
  Float64Array.from({ length: mixtureDim(m) }, (_, j) => m.means[k]![j]! + 3 * u[j]! * m.stds[k]![j]!);

const pointArb = fc.tuple(fc.nat(), fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 3, maxLength: 3 }));

/**
 * Bound on |∂_j³ log p| over the segment [x − h e_j, x + h e_j]. log p = log Σ_k exp φ_k with φ_k quadratic, so
 * along e_j its derivatives are cumulants of φ' under the responsibilities r:
 *   (log p)''' = 3 Cov_r(φ', φ'') + κ₃,r(φ'),
 * with |φ'_k| ≤ A := max_k (|x_j − μ_kj| + h)/s_kj² and |φ''_k| = 1/s_kj² ≤ Bm, so |Cov| ≤ A·Bm and |κ₃| ≤ (2A)³.
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

describe('mixture scores (group 5)', () => {
  test('∇ log p_t = central finite difference of log p_t (float64, all kinds, random t and x)', () => {
    fc.assert(
      fc.property(sdeArb, mixtureArb(), timeArb, pointArb, (sde: SDE, m0, t, [k, u]) => {
        const mt = marginalMixture(sde, m0, t);
        const x = pointNear(mt, k % m0.weights.length, u);
        const score = exactScoreAt(sde, m0)(x, t);
        const logp = exactLogProbAt(sde, m0);
        const minStd = Math.min(...mt.stds.flat());
        const h = 1e-3 * minStd;
        for (let j = 0; j < x.length; j++) {
          const xp = Float64Array.from(x);
          const xm = Float64Array.from(x);
          xp[j] = x[j]! + h;
          xm[j] = x[j]! - h;
          const fp = logp(xp, t);
          const fm = logp(xm, t);
          const fd = (fp - fm) / (2 * h);
          // Central difference: (f(x+h) − f(x−h))/2h = f'(x) + h²/6 f'''(ξ) (Taylor with remainder), so the truncation
          // error is ≤ h²/6 · max|f'''| on the segment (bounded above); each log p evaluation carries a rounding error
          // ≲ 8ε₆₄(|f| + 1) (a sum of O(D) terms of the size of f), which the difference divides by 2h.
          const tol = (h * h * thirdDerivativeBound(mt, x, j, h)) / 6 + (8 * EPS64 * (Math.abs(fp) + Math.abs(fm) + 2)) / (2 * h);
          scoreIsGradient.atMost(Math.abs(score[j]! - fd), tol);
        }
      }),
      runs(60),
    );
  });

  test('tensor exactScore (float32) = float64 exactScoreAt within float32 rounding', () => {
    fc.assert(
      fc.property(sdeArb, mixtureArb(), timeArb, pointArb, (sde: SDE, m0, t, [k, u]) => {
        const mt = marginalMixture(sde, m0, t);
        const x32 = Float32Array.from(pointNear(mt, k % m0.weights.length, u));
        const D = x32.length;
        const got = tf.tidy(() => exactScore(sde, m0)(tf.tensor2d(x32, [1, D]), t).dataSync());
        // Reference at the float32-rounded input, so only the arithmetic's rounding is measured.
        const want = exactScoreAt(sde, m0)(x32, t);
        // Rounding model (unit roundoff ε = 2⁻²⁴): each component score a_kj = (μ_kj − x_j)/s_kj² is formed with
        // absolute error ≤ 4(ε(|x_j| + |μ_kj|) + 2⁻¹²⁶)/s_kj² (2⁻¹²⁶: a value below float32's normal range, e.g. a
        // subnormal double mean, is flushed with that absolute error; rounding of μ, 1/s², the difference and the product); the
        // logits ℓ_k = −½ Σ_j z_kj² − c_k carry ≤ (D + 4)ε(½ Σ z² + |c_k|) + Σ_j 2|z_kj| ε(|x_j| + |μ_kj|)/s_kj =: Λ_k,
        // which moves each responsibility by ≤ 2 max Λ · r_k, hence the score by ≤ 2 max Λ · max_k |a_kj|.
        // The final sum over K adds ≤ Kε max|a|. We allow 4× this first-order bound for second-order terms.
        const LOG2PI = Math.log(2 * Math.PI);
        for (let j = 0; j < D; j++) {
          let aMax = 0;
          let aErr = 0;
          let lam = 0;
          mt.means.forEach((mu, kk) => {
            const s = mt.stds[kk]!;
            let q = 0;
            let zTerm = 0;
            let c = -Math.log(mt.weights[kk]!) + 0.5 * D * LOG2PI;
            for (let i = 0; i < D; i++) {
              const z = (x32[i]! - mu[i]!) / s[i]!;
              q += z * z;
              zTerm += (2 * Math.abs(z) * EPS32 * (Math.abs(x32[i]!) + Math.abs(mu[i]!))) / s[i]!;
              c += Math.log(s[i]!);
            }
            lam = Math.max(lam, (D + 4) * EPS32 * (0.5 * q + Math.abs(c)) + zTerm);
            aMax = Math.max(aMax, Math.abs(mu[j]! - x32[j]!) / s[j]! ** 2);
            aErr = Math.max(aErr, (4 * (EPS32 * (Math.abs(x32[j]!) + Math.abs(mu[j]!)) + TINY32)) / s[j]! ** 2);
          });
          const tol = 4 * (aErr + 2 * lam * aMax + mt.weights.length * EPS32 * aMax);
          scoreFloat32.atMost(Math.abs(got[j]! - want[j]!), tol);
        }
      }),
      runs(60),
    );
  });

  test('tensor mixtureLogProb and componentPosterior (float32) = float64 versions; responsibilities sum to 1', () => {
    fc.assert(
      fc.property(mixtureArb(), pointArb, (m, [k, u]) => {
        const x32 = Float32Array.from(pointNear(m, k % m.weights.length, u));
        const D = x32.length;
        const [lp, post] = tf.tidy(() => {
          const x = tf.tensor2d(x32, [1, D]);
          return [mixtureLogProb(m)(x).dataSync(), componentPosterior(m)(x).dataSync()];
        });
        const lp64 = mixtureLogProbAt(m)(x32);
        // log p is a log-sum-exp of logits of size ≤ ½Σz² + |c| ≤ ½·D·36 + D·|log 0.2| + D + |log 0.05| < 30 here; each is
        // formed with relative error ≤ (D + 4)ε, and the log-sum-exp adds ≤ 4ε|log p| + Kε: bound 64ε(|log p| + 30).
        logProbFloat32.atMost(Math.abs(lp[0]! - lp64), 64 * EPS32 * (Math.abs(lp64) + 30));
        const post64 = componentPosteriorAt(m)(x32);
        // Responsibilities move by ≤ 2 max Λ r_k ≤ 2·64ε·30 (same logit error as above) plus ε·K for the normalisation.
        post64.forEach((r, kk) => logProbFloat32.atMost(Math.abs(post[kk]! - r), 2 * 64 * EPS32 * 30 + 4 * EPS32));
        // Σ_k r_k = 1 up to K roundings of the softmax normalisation.
        logProbFloat32.atMost(Math.abs(Array.from(post).reduce((a, b) => a + b, 0) - 1), 8 * EPS32);
      }),
      runs(40),
    );
  });

  test('log-sum-exp is stable far from the data: log p(x) finite and = float64 value, where exp(logits) underflows', () => {
    // At x = 100 from means at ±1 with s = 0.1, the logits are ≈ −5·10⁵: exp underflows to 0 in float32 and float64,
    // so a log-sum-exp that does not subtract the max gives −∞ (and a score of NaN).
    const m: GaussianMixture = { weights: [0.3, 0.7], means: [[-1], [1]], stds: [[0.1], [0.1]] };
    const [lp, sc] = tf.tidy(() => {
      const x = tf.tensor2d([100], [1, 1]);
      return [mixtureLogProb(m)(x).dataSync()[0]!, mixtureScore(m)(x).dataSync()[0]!];
    });
    const lp64 = mixtureLogProbAt(m)([100]);
    expect(Number.isFinite(lp)).toBe(true);
    // |log p| ≈ 4.9·10⁵ is a difference of float32 terms of that size: relative error ≤ 16ε.
    logSumExp.atMost(Math.abs(lp - lp64), 16 * EPS32 * Math.abs(lp64));
    // The score is dominated by the nearest component: (1 − 100)/0.01 = −9900, float32 relative error ≤ 16ε.
    logSumExp.atMost(Math.abs(sc - mixtureScoreAt(m)([100])[0]!), 16 * EPS32 * 9900);
  });

  test('marginalMixture moments: E_t x = m(t) E_0 x and Var_t x = m(t)² Var_0 x + s(t)²', () => {
    fc.assert(
      fc.property(sdeArb, mixtureArb(), timeArb, (sde, m0, t) => {
        const mt = marginalMixture(sde, m0, t);
        const a = marginalMeanCoef(sde, t);
        const v = marginalVariance(sde, t);
        const [mu0, var0, mut, vart] = [mixtureMean(m0), mixtureVariance(m0), mixtureMean(mt), mixtureVariance(mt)];
        // Exact algebra in float64; the variances are differences E x² − (E x)² of terms ≤ 9 + 4 + v, so rounding ≤ 64ε(13 + v).
        mu0.forEach((mu, j) => {
          marginalMoments.atMost(Math.abs(mut[j]! - a * mu), 64 * EPS64 * 3);
          marginalMoments.atMost(Math.abs(vart[j]! - (a * a * var0[j]! + v)), 64 * EPS64 * (13 + v));
        });
      }),
      runs(50),
    );
  });

  test('exactScore accepts [B, …] with per-sample size D and keeps the shape', () => {
    const m = gaussian([0, 1, 2, 3], [1, 1, 1, 1]);
    const shape = tf.tidy(() => exactScore(vp(), m)(tf.zeros([2, 2, 2, 1]), 0.5).shape);
    expect(shape).toEqual([2, 2, 2, 1]);
    expect(() => tf.tidy(() => exactScore(vp(), m)(tf.zeros([2, 3]), 0.5))).toThrow(/dimension 4/);
  });

  test('tensor functions leak no tensors', () => {
    const m: GaussianMixture = { weights: [0.5, 0.5], means: [[0, 1], [2, 3]], stds: [[1, 1], [0.5, 0.5]] };
    const x = tf.ones([3, 2]);
    for (const f of [
      () => mixtureLogProb(m)(x),
      () => mixtureScore(m)(x),
      () => componentPosterior(m)(x),
      () => exactScore(ve(), m)(x, 0.3),
      () => exactLogProb(ve(), m)(x, 0.3),
      () => sampleMixture(m)(random.split(random.key(1), 3)).x,
    ])
      expect(leakedBy(f)).toBe(0);
    x.dispose();
  });
});

describe('sampling and conditioning', () => {
  test('sampleMixture: sample b depends on keys[b] only, and tensor rows = float64 rows rounded', () => {
    const m: GaussianMixture = { weights: [0.2, 0.8], means: [[0, 1], [2, 3]], stds: [[1, 1], [0.5, 0.5]] };
    const keys = random.split(random.key(7), 5);
    const all = sampleMixtureAt(m)(keys);
    const one = sampleMixtureAt(m)([keys[3]!]);
    sampleInvariance.equal(one.component[0], all.component[3]);
    sampleInvariance.equal(Array.from(one.x), Array.from(all.x.subarray(6, 8)));
    const { x, component } = sampleMixture(m)(keys);
    sampleInvariance.equal(Array.from(x.dataSync()), Array.from(Float32Array.from(all.x)));
    sampleInvariance.equal(Array.from(component), Array.from(all.component));
    x.dispose();
  });

  test('sampleMixture frequencies, component means and variances within 5 standard errors', () => {
    const m: GaussianMixture = { weights: [0.25, 0.75], means: [[-2], [3]], stds: [[0.5], [2]] };
    const N = 20000;
    const { x, component } = sampleMixtureAt(m)(random.split(random.key(11), N));
    [0, 1].forEach((k) => {
      const xs = Array.from(x).filter((_, i) => component[i] === k);
      const n = xs.length;
      const w = m.weights[k]!;
      // Frequency of component k ~ Binomial(N, w)/N: SE = √(w(1 − w)/N).
      sampling.withinSE(n / N, w, Math.sqrt((w * (1 - w)) / N), { z: 5 }, `frequency[${k}]`);
      const mean = xs.reduce((a, b) => a + b, 0) / n;
      const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
      const v = m.stds[k]![0]! ** 2;
      // Within component k the draws are N(μ_k, s_k²): SE(mean) = s_k/√n, SE(variance) = s_k² √(2/(n − 1)).
      sampling.withinSE(mean, m.means[k]![0]!, Math.sqrt(v / n), { z: 5 }, `mean[${k}]`);
      sampling.withinSE(variance, v, v * Math.sqrt(2 / (n - 1)), { z: 5 }, `variance[${k}]`);
    });
  });

  test('conditionalMixture is Bayes: log p(x_M | x_O) = log p(x) − log p_O(x_O)', () => {
    fc.assert(
      fc.property(
        mixtureArb({ minD: 2 }),
        pointArb,
        fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        (m, [k, u], mask) => {
          const D = mixtureDim(m);
          const x = pointNear(m, k % m.weights.length, u);
          // At least one observed and one missing coordinate.
          const isObs = Array.from({ length: D }, (_, j) => (j === 0 ? true : j === 1 ? false : mask[j]!));
          const obsIdx = isObs.flatMap((o, j) => (o ? [j] : []));
          const missIdx = isObs.flatMap((o, j) => (o ? [] : [j]));
          const cond = conditionalMixture(
            m,
            isObs.map((o, j) => (o ? x[j]! : null)),
          );
          const marginalObs: GaussianMixture = {
            weights: m.weights,
            means: m.means.map((r) => obsIdx.map((j) => r[j]!)),
            stds: m.stds.map((r) => obsIdx.map((j) => r[j]!)),
          };
          expect(mixtureDim(cond)).toBe(missIdx.length);
          expect(Math.abs(cond.weights.reduce((a, b) => a + b, 0) - 1)).toBeLessThanOrEqual(1e-12);
          const lhs = mixtureLogProbAt(cond)(missIdx.map((j) => x[j]!));
          const rhs = mixtureLogProbAt(m)(x) - mixtureLogProbAt(marginalObs)(obsIdx.map((j) => x[j]!));
          // Float64 sums of O(D + K) terms of size < 40 each (see the log-density bound above): rounding ≤ 256 ε₆₄ · 40.
          bayes.atMost(Math.abs(lhs - rhs), 256 * EPS64 * 40);
        },
      ),
      runs(60),
    );
  });
});
