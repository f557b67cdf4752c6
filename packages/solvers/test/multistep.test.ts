/**
 * DPM-Solver++'s multistep steps against closed forms: with a data prediction that is a polynomial in λ = log(α/σ)
 * (independent of x), the probability-flow ODE's step t → t′ has the exact solution
 *   x′ = (σ′/σ) x + σ′ ∫_λ^{λ′} e^l D(l) dl,   ∫ e^l (a + b l + c l²) dl = e^l (a + b (l − 1) + c (l² − 2l + 2)),
 * which the third-order multistep step must reproduce from its two remembered predictions, and the second-order one
 * (the line through two) when D is linear.
 */
import { tf, initBackend, random } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, vp, ve, marginalMeanCoef, marginalStd } from '@score-sde/sde-math';
import { type SamplerState, dpmSolverPP3M, disposeState } from '@score-sde/solvers';
import { identity } from '@score-sde/tensor-fp/testing';

const exactness = identity({
  concept: 'steps',
  title: 'DPM-Solver++(3M) is exact for a data prediction quadratic in λ',
  formula: String.raw`$\hat x_0 = a + b\lambda + c\lambda^2 \Rightarrow x' = \tfrac{\sigma'}{\sigma} x + \sigma' \big[e^{l}(a + b(l-1) + c(l^2 - 2l + 2))\big]_{\lambda}^{\lambda'}$ (its two remembered predictions give D′ and D″ exactly); the first steps: exact for constant, then linear D`,
  source: 'Lu et al. 2022 (DPM-Solver++): the exponential integrator of the data-prediction ODE with D expanded to second order in λ',
  tolerance: 'float32 rounding of terms of size ≤ ~10: 2e−5 relative to the largest term',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const lam = (sde: SDE, t: number): number => Math.log(marginalMeanCoef(sde, t) / marginalStd(sde, t));

/** The score whose data prediction is the polynomial D(λ_t) = Σ_k coef[k] λ_t^k in every coordinate: s = (α D − x)/σ². */
const polynomialScore =
  (sde: SDE, coef: ReadonlyArray<number>): ScoreFn =>
  (x, t) =>
    tf.tidy(() => {
      const l = lam(sde, t);
      const d = coef.reduce((acc, c, k) => acc + c * l ** k, 0);
      const a = marginalMeanCoef(sde, t);
      const s2 = marginalStd(sde, t) ** 2;
      return tf.div(tf.sub(tf.fill(x.shape, a * d), x), s2);
    });

/** The exact solution of the probability-flow ODE from (t, x) to t′ for that score (a quadratic at most). */
const exactStep = (sde: SDE, coef: ReadonlyArray<number>, x: number, t: number, tNext: number): number => {
  const [a = 0, b = 0, c = 0] = coef;
  const F = (l: number): number => Math.exp(l) * (a + b * (l - 1) + c * (l * l - 2 * l + 2));
  const sN = marginalStd(sde, tNext);
  return (sN / marginalStd(sde, t)) * x + sN * (F(lam(sde, tNext)) - F(lam(sde, t)));
};

const D = (sde: SDE, coef: ReadonlyArray<number>, t: number): number => coef.reduce((acc, c, k) => acc + c * lam(sde, t) ** k, 0);

describe('DPM-Solver++(3M) against the closed form', () => {
  for (const [label, sde] of [
    ['VP', vp()],
    ['VE', ve()],
  ] as const) {
    // Times of the remembered predictions (older, previous), the current one and the next, unevenly spaced in λ.
    const [tOlder, tPrev, t, tNext] = [0.62, 0.5, 0.41, 0.3];
    const coef = [0.3, -0.7, 0.25];
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<number>, ReadonlyArray<number>]> = [
      ['quadratic D, two remembered predictions', coef, [tOlder, tPrev]],
      ['linear D, one remembered prediction', coef.slice(0, 2), [tPrev]],
      ['constant D, no memory (the first step)', coef.slice(0, 1), []],
    ];
    test.each(cases)(`${label}: %s — one step equals the exact solution`, (_name, c, remembered) => {
      const x0 = [-1.5, 0.2, 2.0];
      const x = tf.tensor2d(x0.map((v) => [v]));
      const predictions = remembered.map((tm) => ({ t: tm, x0: tf.fill([3, 1], D(sde, c, tm)) }));
      const memory = predictions.length === 2 ? { older: predictions[0]!, previous: predictions[1]! } : predictions.length === 1 ? { previous: predictions[0]! } : undefined;
      const state: SamplerState = { x, xMean: x, t, nfe: 0, keys: random.split(random.key(0), 3), ...(memory !== undefined ? { memory } : {}) };
      const next = dpmSolverPP3M(sde).step(polynomialScore(sde, c), state, tNext);
      const got = next.x.dataSync();
      x0.forEach((v, i) => {
        const want = exactStep(sde, c, v, t, tNext);
        exactness.lessThan(Math.abs(got[i]! - want), 2e-5 * Math.max(1, Math.abs(want), Math.abs(v)), `${label}, x = ${v}`);
      });
      // The step remembers its own prediction and the previous one.
      expect([next.memory?.previous?.t, next.memory?.older?.t]).toEqual([t, remembered[remembered.length - 1]]);
      disposeState(next);
      tf.dispose([x, ...predictions.map((p) => p.x0)]);
    });
  }
});
