/**
 * Controllable generation: classifier guidance with the exact noise-conditional classifier of a mixture returns
 * only the requested component, with every kind of sampler; inpainting replaces the known coordinates and, where the
 * replacement method is exact, returns the exact conditional.
 */
import * as E from 'fp-ts/Either';
import { tf, initBackend, random } from '@score-sde/tensor-fp';
import { type SDE, vp, ve, exactScore, marginalVariance, priorStd, mixtureScore, marginalMixture, marginalMeanCoef, conditionalMixture, gaussian, type GaussianMixture } from '@score-sde/sde-math';
import {
  type Sampler,
  classifierGuidance,
  mixtureClassLogLikelihood,
  logLikelihoodGradient,
  scaleScore,
  autoguidance,
  guidanceInterval,
  inpaint,
  observationOf,
  sample,
  uniformGrid,
  karrasGrid,
  logSnrGrid,
  eulerMaruyama,
  pc,
  reverseDiffusion,
  langevin,
  pfHeun,
  pfAdaptive,
  dpmSolverPP2M,
  none,
} from '@score-sde/solvers';
import { mixtures, EPS } from './conformance';
import { mixtureChecks } from './helpers';
import { identity } from '@score-sde/tensor-fp/testing';

const classGradient = identity({
  concept: 'guidance',
  title: 'Noise-conditional class gradient of a mixture',
  formula: String.raw`$\nabla_x \log p_t(k \mid x) = \nabla_x \log p_{t,k}(x) - \nabla_x \log p_t(x)$ (autodiff of the log-posterior)`,
  source: "Bayes: log p_t(k | x) = log w_k + log p_{t,k}(x) − log p_t(x); Song et al. 2021, eq. 14 (classifier guidance)",
  tolerance: 'float32 computations of terms of size ≤ |x − μ|/σ_t² ≈ 10 (rounding ≈ 1e−5): < 1e−4',
});

const guidedComponent = identity({
  concept: 'guidance',
  title: 'Classifier guidance with the exact classifier returns the requested component',
  formula: String.raw`$s(x, t) + \nabla_x \log p_t(k \mid x) = \nabla_x \log p_t(x \mid k) \Rightarrow x \sim \mathcal N(m(\varepsilon)\mu_k, \sigma_{k,\varepsilon}^2)$`,
  source: 'Song et al. 2021, eq. 14 with scale 1 and the exact noise-conditional classifier of a mixture; Euler–Maruyama, dopri5, DPM-Solver++(2M)',
  tolerance: 'Monte-Carlo: weight, per-coordinate means and variances within 5 SE against component k alone (1000 samples)',
});

const scaledScore = identity({
  concept: 'guidance',
  title: 'scaleScore multiplies the score',
  formula: String.raw`$\text{scaleScore}(s, c)(x, t) = c\, s(x, t)$`,
  source: 'definition (the guidance scale of Dhariwal & Nichol 2021 applied to a score)',
  tolerance: 'one float32 product of values ≈ 1: < 1e−6',
});

const autoguidedFlow = identity({
  concept: 'guidance',
  title: 'Autoguided probability flow of Gaussians extrapolates the variance geometrically',
  formula: String.raw`$s_w = s_{\text{weak}} + w (s - s_{\text{weak}})$ for $\mathcal N(\mu, v)$ and $\mathcal N(\mu, v_b)$ (VE): $x_\varepsilon - \mu = r\,(x_T - \mu)$, $r = \big(\tfrac{v + \sigma_\varepsilon^2}{v + \sigma_T^2}\big)^{w/2} \big(\tfrac{v_b + \sigma_\varepsilon^2}{v_b + \sigma_T^2}\big)^{(1-w)/2}$, so $\operatorname{Var} x_\varepsilon = \sigma_p^2 r^2 \to v^w v_b^{1-w}$`,
  source: 'Karras et al. 2024 (autoguidance); the guided score is linear in x with precision λ(σ²) = w/(v + σ²) + (1 − w)/(v_b + σ²), and dx/dσ² = ½ λ (x − μ) integrates in closed form',
  tolerance: 'Monte-Carlo: per-coordinate means and variances within 5 SE of the closed form (1000 samples); dopri5 and Heun (100 Karras steps) solve the linear flow far inside that',
});

const intervalFlow = identity({
  concept: 'guidance',
  title: 'Autoguidance on a noise interval extrapolates the variance over that interval only',
  formula: String.raw`$s_I = s_w$ for $\sigma \in (\sigma_{lo}, \sigma_{hi}]$, else $s$; for $\mathcal N(\mu, v)$, $\mathcal N(\mu, v_b)$ (VE): $x_\varepsilon - \mu = r\,(x_T - \mu)$ with $r = f_1(\sigma_T^2 \to \sigma_{hi}^2)\, f_w(\sigma_{hi}^2 \to \sigma_{lo}^2)\, f_1(\sigma_{lo}^2 \to \sigma_\varepsilon^2)$, $f_w(a \to b) = \big(\tfrac{v + b}{v + a}\big)^{w/2} \big(\tfrac{v_b + b}{v_b + a}\big)^{(1-w)/2}$`,
  source: 'Kynkäänniemi et al. 2024 (guidance interval); the guided precision is piecewise constant in w over σ², and each piece of dx/dσ² = ½ λ (x − μ) integrates in closed form',
  tolerance: 'Monte-Carlo: per-coordinate means and variances within 5 SE of the closed form (1000 samples); dopri5 steps across the two jumps of the score by its error control',
});

const autoguidedIdentity = identity({
  concept: 'guidance',
  title: 'Autoguidance by the model itself, or at w = 1, is the model',
  formula: String.raw`$s_{\text{weak}} = s \Rightarrow s_w = s$ and $s_1 = s$, bit for bit (b + w·(a − b) with a − b = 0, and 1·(a − b) = a − b; the last sum is then a, up to one rounding at w = 1)`,
  source: 'definition',
  tolerance: 'exact when the weak score is the model; one float32 rounding of b + (a − b) at w = 1 (< 1e−6 relative)',
});

const replacementKnown = identity({
  concept: 'guidance',
  title: 'Inpainting keeps the known coordinates at m(ε)·y',
  formula: String.raw`$\bar x_{\varepsilon,O} = m(\varepsilon)\, y$`,
  source: 'inpainting by replacement (Song et al. 2021, App. I.2): the denoised known coordinates are the mean of p_0ε(· | y)',
  tolerance: 'float32 rounding of the product: < 1e−6 (|y| = 0.8), < 1e−5 (|y| = 2.5)',
});

const replacementExact = identity({
  concept: 'guidance',
  title: 'Inpainting by replacement is exact for independent coordinates',
  formula: String.raw`$p_0 = \mathcal N(\mu, \operatorname{diag} s^2) \Rightarrow x_M \sim p(x_M \mid x_O = y) = p(x_M)$ at ε`,
  source: 'with a diagonal Gaussian the unknown coordinates follow their own reverse dynamics',
  tolerance: 'Monte-Carlo: 5 SE (1000 samples), four samplers, VP and VE',
});

const replacementInformative = identity({
  concept: 'guidance',
  title: 'Inpainting by replacement is biased for an informative mixture',
  formula: String.raw`replacement's weights of $x_M$ for the 2-D mixture with $x_0 = -1$ observed: $\hat w_0 - w_0 > 5\,\mathrm{SE}$ and $w_2 - \hat w_2 > 5\,\mathrm{SE}$, against the exact $p_\varepsilon(x_M \mid x_{0,O} = y)$ weights $(0.57, 0, 0.43)$`,
  source: 'the unknown coordinates follow ∇ log p_t(x_M | x_O,t), not ∇ log p_t(x_M | x_O,0 = y) (cf. Trippe et al. 2022): about (0.78, 0, 0.22). The exact route is observation guidance (conditional.test.ts)',
  tolerance: 'Monte-Carlo (2000 samples): each of the two biases must exceed 5 SE (measured about 20 SE); the margin recorded is 5 SE / bias. An exact replacement method would fail it',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const samplersFor = (sde: SDE): ReadonlyArray<readonly [string, Sampler]> => [
  ['euler-maruyama (N = 200)', { sde, grid: uniformGrid(sde, 200, EPS), step: eulerMaruyama(sde) }],
  ['pf-ode dopri5', { sde, grid: uniformGrid(sde, 1, EPS), step: pfAdaptive(sde) }],
  ['dpm-solver++(2M) (N = 100)', { sde, grid: logSnrGrid(sde, 100, EPS), step: dpmSolverPP2M(sde) }],
];

const draw = async (sampler: Sampler, score: Parameters<typeof sample>[1], n: number, D: number): Promise<tf.Tensor> => {
  const r = await sample(sampler, score, { keys: random.split(random.key(5), n), sampleShape: [D] })();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right.x;
};

describe('classifier guidance', () => {
  test('∇ log p_t(k | x) by autodiff equals the analytic s_k(x, t) − s(x, t) of the mixture', () => {
    const sde = vp();
    const m = mixtures['2-D'];
    const x = tf.tensor2d([
      [0.3, -0.2],
      [-1.5, 1.2],
      [2.2, 1.7],
    ]);
    for (const t of [0.1, 0.5]) {
      for (let k = 0; k < 3; k++) {
        const got = logLikelihoodGradient(mixtureClassLogLikelihood(sde, m, k))(x, t);
        const mt = marginalMixture(sde, m, t);
        const analytic = tf.tidy(() => tf.sub(mixtureScore({ weights: [1], means: [mt.means[k]!], stds: [mt.stds[k]!] })(x), mixtureScore(mt)(x)));
        // Both are float32 computations of terms of size ≤ |x − μ|/σ_t² ≈ 10: rounding ≤ ~1e-5.
        classGradient.lessThan(tf.max(tf.abs(tf.sub(got, analytic))).dataSync()[0]!, 1e-4);
        tf.dispose([got, analytic]);
      }
    }
    x.dispose();
  });

  for (const [label, sde] of [
    ['VP', vp()],
    ['VE', ve()],
  ] as const) {
    for (const [name, sampler] of samplersFor(sde)) {
      test.each([0, 2])(`${label}, ${name}: guided by the exact p_t(y = %i | x) with scale 1, it returns only that component (5 SE)`, async (k) => {
        const m = mixtures['2-D'];
        const x = await draw(sampler, classifierGuidance(exactScore(sde, m), mixtureClassLogLikelihood(sde, m, k), 1), 1000, 2);
        // s + ∇log p_t(k | x) = ∇log p_t(x | k): the target is component k alone (at ε).
        const target = marginalMixture(sde, gaussian(m.means[k]!, m.stds[k]!), EPS);
        guidedComponent.allWithinSE(mixtureChecks(target, x, { perCoordinate: true }), 5, { sampler: name, SDE: label, class: String(k) });
        x.dispose();
      });
    }
  }

  // Gaussian data models of different variances per coordinate: the guided flow ends at the closed form.
  const goodStds = [0.5, 1.0, 0.3, 1.5];
  const weakStds = [1.0, 2.0, 0.9, 1.5];
  const mu = [1, -0.5, 0, 2];
  for (const w of [1.5, 3]) {
    for (const [name, base] of [
      ['pf-ode dopri5', (sde: SDE) => ({ grid: uniformGrid(sde, 1, EPS), step: pfAdaptive(sde) })],
      ['pf-ode heun (N = 100 Karras)', (sde: SDE) => ({ grid: karrasGrid(sde, 100, EPS), step: pfHeun(sde) })],
    ] as const) {
      test(`VE, ${name}: the autoguided flow of N(μ, v) away from N(μ, v_b) with w = ${w} ends at Var = σ_p² r² (5 SE)`, async () => {
        const sde = ve();
        const guided = autoguidance(exactScore(sde, gaussian(mu, goodStds)), exactScore(sde, gaussian(mu, weakStds)), w);
        const x = await draw({ sde, ...base(sde), final: none }, guided, 1000, 4);
        const [sE, sT] = [marginalVariance(sde, EPS), marginalVariance(sde, sde.T)];
        const r = goodStds.map((g, i) => {
          const [v, vb] = [g * g, weakStds[i]! * weakStds[i]!];
          return Math.exp(0.5 * (w * Math.log((v + sE) / (v + sT)) + (1 - w) * Math.log((vb + sE) / (vb + sT))));
        });
        const target = gaussian(
          mu.map((m, i) => m * (1 - r[i]!)),
          r.map((ri) => priorStd(sde) * ri),
        );
        autoguidedFlow.allWithinSE(mixtureChecks(target, x, { perCoordinate: true }), 5, { sampler: name, w: String(w) });
        x.dispose();
      });
    }
  }

  // The same Gaussians, guided on σ ∈ (0.5, 3] only: the flow's factor is the guided one over that σ² segment alone.
  for (const w of [1.5, 3]) {
    test(`VE, pf-ode dopri5: autoguidance at w = ${w} on σ ∈ (0.5, 3] only ends at Var = σ_p² r², r guided over that interval alone (5 SE)`, async () => {
      const sde = ve();
      const [lo, hi] = [0.5, 3];
      const plain = exactScore(sde, gaussian(mu, goodStds));
      const guided = guidanceInterval(sde, autoguidance(plain, exactScore(sde, gaussian(mu, weakStds)), w), plain, [lo, hi]);
      const x = await draw({ sde, grid: uniformGrid(sde, 1, EPS), step: pfAdaptive(sde), final: none }, guided, 1000, 4);
      const [sE, sT] = [marginalVariance(sde, EPS), marginalVariance(sde, sde.T)];
      // f_w(a → b): the factor of x − μ from σ² = a down to σ² = b under the guided precision at weight w.
      const factor = (v: number, vb: number, ww: number, a: number, b: number): number => Math.exp(0.5 * (ww * Math.log((v + b) / (v + a)) + (1 - ww) * Math.log((vb + b) / (vb + a))));
      const r = goodStds.map((g, i) => {
        const [v, vb] = [g * g, weakStds[i]! * weakStds[i]!];
        return factor(v, vb, 1, sT, hi * hi) * factor(v, vb, w, hi * hi, lo * lo) * factor(v, vb, 1, lo * lo, sE);
      });
      const target = gaussian(
        mu.map((m, i) => m * (1 - r[i]!)),
        r.map((ri) => priorStd(sde) * ri),
      );
      intervalFlow.allWithinSE(mixtureChecks(target, x, { perCoordinate: true }), 5, { w: String(w) });
      x.dispose();
    });
  }

  test('autoguidance by the model itself, or with w = 1, returns the model’s score', () => {
    const sde = ve();
    const s = exactScore(sde, mixtures['2-D']);
    const weak = exactScore(sde, gaussian([0, 0], [2, 2]));
    const x = tf.tensor2d([
      [0.4, -1],
      [2.5, 0.3],
    ]);
    const a = s(x, 0.3);
    const self = autoguidance(s, s, 2.5)(x, 0.3);
    const one = autoguidance(s, weak, 1)(x, 0.3);
    autoguidedIdentity.lessThan(tf.max(tf.abs(tf.sub(self, a))).dataSync()[0]!, Number.MIN_VALUE);
    autoguidedIdentity.lessThan(tf.max(tf.abs(tf.sub(one, a))).dataSync()[0]!, 1e-6 * (1 + tf.max(tf.abs(a)).dataSync()[0]!));
    tf.dispose([x, a, self, one]);
  });

  test('scaleScore multiplies the score', () => {
    const s = scaleScore(exactScore(vp(), mixtures['1-D']), 2.5);
    const x = tf.tensor2d([[0.4], [-1]]);
    const a = s(x, 0.3);
    const b = exactScore(vp(), mixtures['1-D'])(x, 0.3);
    scaledScore.lessThan(tf.max(tf.abs(tf.sub(a, tf.mul(b, 2.5)))).dataSync()[0]!, 1e-6);
    tf.dispose([x, a, b]);
  });
});

describe('inpainting by replacement', () => {
  // Replacement is exact when the missing coordinates are independent of the known ones (a diagonal Gaussian): the
  // unknown coordinates then follow their own reverse dynamics, and p(x_M | x_O) is their marginal. The samplers stop
  // at ε (`final: none`), where the identity is stated.
  const data = gaussian([1, -2, 0.5, 3], [0.4, 0.7, 1.1, 0.3]);
  const observed = [0.8, null, null, 2.5];
  for (const [label, sde] of [
    ['VP', vp()],
    ['VE', ve()],
  ] as const) {
    const cases: ReadonlyArray<readonly [string, Omit<Sampler, 'sde'>]> = [
      ['euler-maruyama (N = 200)', { grid: uniformGrid(sde, 200, EPS), step: eulerMaruyama(sde), final: none }],
      ['pc: langevin ▸ reverse-diffusion (N = 200)', { grid: uniformGrid(sde, 200, EPS), step: pc(reverseDiffusion(sde, 200), langevin(sde), 1, { order: 'corrector-first' }), final: none }],
      ['pf-ode heun (N = 100 Karras)', { grid: karrasGrid(sde, 100, EPS), step: pfHeun(sde), final: none }],
      ['pf-ode dopri5 on a 50-interval grid', { grid: uniformGrid(sde, 50, EPS), step: pfAdaptive(sde), final: none }],
    ];
    for (const [name, base] of cases) {
      test(`${label}, ${name}: known coordinates end at m(ε)·y and the missing ones follow the exact conditional (5 SE)`, async () => {
        const obs = observationOf(observed);
        const x = await draw({ ...base, sde, transform: inpaint(sde, obs) }, exactScore(sde, data), 1000, 4);
        tf.dispose([obs.observed, obs.mask]);
        const v = x.arraySync() as number[][];
        const mEps = marginalMeanCoef(sde, EPS);
        // x̄ of the known coordinates is m(ε)·y exactly, up to float32 rounding of the product.
        v.forEach((row) => {
          replacementKnown.lessThan(Math.abs(row[0]! - mEps * 0.8), 1e-6, `${label}, ${name}`);
          replacementKnown.lessThan(Math.abs(row[3]! - mEps * 2.5), 1e-5, `${label}, ${name}`);
        });
        const missing = tf.tensor2d(v.map((row) => [row[1]!, row[2]!]));
        const target = marginalMixture(sde, conditionalMixture(data, observed), EPS);
        replacementExact.allWithinSE(mixtureChecks(target, missing, { perCoordinate: true }), 5, { sampler: name, SDE: label });
        tf.dispose([x, missing]);
      });
    }
  }

  // Known limitation, kept visible: when the missing coordinates carry information about the mixture component, the
  // replacement method is biased — the known coordinates are fresh draws from p_0t(· | y), so the unknown ones follow
  // ∇log p_t(x_M | x_O,t) rather than ∇log p_t(x_M | x_O,0 = y) (cf. Trippe et al. 2022, SMCDiff). On this 2-D mixture with
  // x₀ = −1 observed, the exact conditional weights are (0.57, 0, 0.43) (conditionalMixture); replacement gives about
  // (0.78, 0, 0.22) (measured here with 2000 samples): it over-weights component 0 and under-weights component 2.
  // The test asserts that bias, direction and size: each of the two weights is off from the exact one by more than
  // 5 SE, the way it was measured. An exact method would fail it; the exact route (the guided score
  // exactConditionalScore = exactScore + ∇ log p(x_0,O = y | x_t), tested in conditional.test.ts) changes the score,
  // not the transform, so this test documents that replacement itself is approximate.
  test('VP, euler-maruyama: replacement over-weights component 0 and under-weights component 2 of an informative mixture (known bias, > 5 SE each)', async () => {
    const sde = vp();
    const m: GaussianMixture = mixtures['2-D'];
    const obs2 = observationOf([-1, null]);
    const x = await draw({ sde, grid: uniformGrid(sde, 200, EPS), step: eulerMaruyama(sde), transform: inpaint(sde, obs2) }, exactScore(sde, m), 2000, 2);
    const missing = tf.slice(x, [0, 1], [-1, 1]);
    const target = marginalMixture(sde, conditionalMixture(m, [-1, null]), EPS);
    const weight = (k: number) => mixtureChecks(target, missing).find((c) => c.name === `weight[${k}]`);
    const [w0, w2] = [weight(0)!, weight(2)!];
    const w1 = weight(1);
    tf.dispose([x, missing, obs2.observed, obs2.mask]);
    // The exact conditional gives component 1 (mean x₀ = 2, 6 SDs from −1) a weight below 1e-9, so it has no check.
    expect(w1).toBeUndefined();
    replacementInformative.lessThan(5 * w0.se, w0.estimate - w0.target, 'component 0 over-weighted');
    replacementInformative.lessThan(5 * w2.se, w2.target - w2.estimate, 'component 2 under-weighted');
  });
});
