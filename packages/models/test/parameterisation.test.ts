/**
 * The network through its parameterisation (sde-math `parameterisation`, models `score.ts` and `loss.ts`): the
 * score wrapper and the denoising loss, for the tutorial convention and EDM's preconditioning, against oracles
 * computed independently (in float64, from the draws the loss made).
 */
import { tf, random, initBackend } from '@score-sde/tensor-fp';
import {
  type SDE,
  type Parameterisation,
  vp,
  ve,
  tutorial,
  tutorialParameterisation,
  edmParameterisation,
  scalings,
  scoreCoefficients,
  marginalMeanCoef,
  marginalStd,
  diffusionCoef,
  kernelScore,
  timeOfNoiseLevel,
  perSampleColumn,
} from '@score-sde/sde-math';
import { scoreFromNet, dsmLoss, dsmDraws, type Net, type Weighting, type NoiseLevelDistribution } from '../src';
import { U32 } from './helpers';
import { identity } from '@score-sde/tensor-fp/testing';

const wrapperIsKernelScore = identity({
  concept: 'training',
  title: 'The wrapped exact point-mass network is the kernel score, for every parameterisation',
  formula: String.raw`$F^*(u) = (x_0 - c_\text{skip}\tilde x)/c_\text{out}$, $\tilde x = u/c_\text{in}$ $\Rightarrow$ $s_\theta(x, t) = -(x - m x_0)/s^2$, and the network sees $c_\text{noise}(t)$`,
  source: 'data concentrated at x₀ has D = x₀ exactly; Tweedie solved for the score (sde-math parameterisation)',
  tolerance: 'float32: each side a sum of terms made with ≤ 8 roundings: 16u times the sum of the terms’ sizes',
});

const lossIsWeightedDSM = identity({
  concept: 'training',
  title: 'The DSM loss in F-space is the weighted score-matching loss',
  formula: String.raw`$\operatorname{mean}_b w(t_b) \sum \lVert F - F^* \rVert^2 = \operatorname{mean}_b \lambda(t_b) \sum \lVert s_\theta(x_t, t_b) - \nabla \log p_{0t}(x_t \mid x_0)\rVert^2$, $w = \lambda c_\text{out}^2/(m^2\sigma^4)$, $\lambda \in \{s^2, g^2, m^2\sigma^4/c_\text{out}^2\}$`,
  source: 'Song et al. 2021 eq. 7 (λ = s², g²) and Karras et al. 2022 eq. 8 (λ_D = 1/c_out²), rewritten through s_θ = skip·x + F/outDivisor',
  tolerance: 'float32: ≤ 6 roundings per residual term (12u squared) plus a sum of B·n terms (B·n·u), relative to an upper bound of the loss',
});

const exactNetZeroLoss = identity({
  concept: 'training',
  title: 'The exact network has zero DSM loss',
  formula: String.raw`$F = F^* \Rightarrow L = 0$ for data concentrated at $x_0$, log-normal noise levels, EDM weighting`,
  source: 'the target F* = (x₀ − c_skip x̃)/c_out is what the exact denoiser D = x₀ needs',
  tolerance: 'float32: per pixel (32 + 4|ln σ|)u (|x₀| + c_skip|x̃|)/c_out, squared and averaged',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const sdes: ReadonlyArray<readonly [string, SDE]> = [
  ['vp', vp()],
  ['ve', ve()],
  ['tutorial', tutorial()],
];
const params: ReadonlyArray<readonly [string, Parameterisation]> = [
  ['tutorial', tutorialParameterisation],
  ['edm (σ_d = 0.5)', edmParameterisation(0.5)],
];

/**
 * The network that is exact for data concentrated at one image x₀, at a fixed time t: its denoiser is D = x₀, so
 * F*(u) = (x₀ − c_skip x̃)/c_out with x̃ = u/c_in the scaled state its input u = c_in x̃ stands for.
 */
const pointMassNet =
  (sde: SDE, p: Parameterisation, t: number, x0: tf.Tensor, seen: number[]): Net =>
  (u, c) =>
    tf.tidy(() => {
      seen.push(...c.dataSync());
      const s = scalings(sde, p, t);
      return tf.div(tf.sub(x0, tf.mul(tf.div(u, s.cIn), s.cSkip)), s.cOut);
    });

describe.each(sdes)('under the %s SDE', (_n, sde) => {
  describe.each(params)('with the %s parameterisation', (_p, p) => {
    test('the wrapped exact point-mass network is the kernel score −(x − m x₀)/s², and the network sees c_noise', () => {
      const x0 = random.uniform(random.key(3), [1, 28, 28, 1]);
      const x = random.normal(random.key(4), [2, 28, 28, 1]);
      for (const t of [0.01, 0.3, 1]) {
        const seen: number[] = [];
        const a = scoreFromNet(sde, pointMassNet(sde, p, t, x0, seen), p)(x, t);
        const b = kernelScore(sde)(x, x0, t);
        const m = marginalMeanCoef(sde, t);
        const s2 = marginalStd(sde, t) ** 2;
        const k = scoreCoefficients(sde, p, t);
        const [av, bv, xv, x0v] = [a.dataSync(), b.dataSync(), x.dataSync(), x0.dataSync()];
        // Each side is a sum of terms of sizes |x|/s², m|x₀|/s² (kernel) and |skip·x|, |F/outDivisor| (wrapper, F of
        // size (|x₀| + c_skip|x|/(m c_in))/c_out), each made with ≤ 8 float32 roundings: |a − b| ≤ 16u Σ terms.
        const sc = scalings(sde, p, t);
        let worst = 0;
        av.forEach((v, i) => {
          const xi = Math.abs(xv[i]!);
          const x0i = Math.abs(x0v[i % 784]!);
          const F = (x0i + (sc.cSkip * xi * k.inputScale) / sc.cIn) / sc.cOut;
          const terms = (xi + m * x0i) / s2 + Math.abs(k.skip) * xi + F / k.outDivisor;
          worst = Math.max(worst, Math.abs(v - bv[i]!) / (16 * U32 * terms));
        });
        // worst = max over pixels of |a − b| / (16u Σ terms): at most 1.
        wrapperIsKernelScore.atMost(worst, 1, { SDE: sde.kind, parameterisation: p.kind });
        // The time input is c_noise(t) for every sample (tutorial: t; EDM: ¼ ln σ), rounded to float32 once.
        expect(seen).toEqual([Math.fround(k.noiseInput), Math.fround(k.noiseInput)]);
        tf.dispose([a, b]);
      }
      tf.dispose([x0, x]);
    });
  });
});

const weightings: ReadonlyArray<Weighting> = ['sigma2', 'likelihood', 'edm'];
const noises: ReadonlyArray<NoiseLevelDistribution> = [{ kind: 'uniform-t' }, { kind: 'log-normal', mean: -1.2, std: 1.2 }];

describe.each(sdes)('the DSM loss under the %s SDE', (_n, sde) => {
  describe.each(params)('with the %s parameterisation', (_p, p) => {
    for (const weighting of weightings)
      for (const noise of noises)
        test(`${weighting} weighting, ${noise.kind} noise levels: L = mean_b λ(t_b) Σ ‖s_θ(x_t, t_b) − ∇log p_0t(x_t | x₀)‖² (λ = s², g², 1/c_out² in D-space)`, () => {
          const B = 8;
          const shape = [4, 4, 1];
          const x0 = random.uniform(random.key(21), [B, ...shape]);
          const G = random.normal(random.key(22), [B, ...shape]);
          const constantNet: Net = () => tf.clone(G);
          const key = random.key(23);
          const eps = 1e-5;
          const loss = dsmLoss(sde, { weighting, eps, noise, parameterisation: p })(constantNet, x0, key);
          const L = loss.dataSync()[0]!;
          // The reference, in float64 from the same draws: s_θ = skip·x + G/outDivisor, ∇log p_0t = −z/s, and
          // λ = s², g², or m²σ⁴/c_out² (EDM weighting: unit weight on F, i.e. λ_D = 1/c_out² on D = x₀ + …).
          const { ts, noise: z } = dsmDraws(sde, eps, key, B, shape, noise);
          const [zv, x0v, Gv] = [z.dataSync(), x0.dataSync(), G.dataSync()];
          const n = zv.length / B;
          let ref = 0;
          let upper = 0;
          ts.forEach((t, b) => {
            const m = marginalMeanCoef(sde, t);
            const s = marginalStd(sde, t);
            const sigma = s / m;
            const k = scoreCoefficients(sde, p, t);
            const c = scalings(sde, p, t);
            const lambda = weighting === 'sigma2' ? s * s : weighting === 'likelihood' ? diffusionCoef(sde, t) ** 2 : (m * m * sigma ** 4) / (c.cOut * c.cOut);
            let acc = 0;
            let mag = 0;
            for (let i = 0; i < n; i++) {
              const x = m * x0v[b * n + i]! + s * zv[b * n + i]!;
              const r = k.skip * x + Gv[b * n + i]! / k.outDivisor + zv[b * n + i]! / s;
              acc += r * r;
              // The float32 residual F − a x₀ + b z in F-units: its terms' sizes, scaled back to score units.
              const scale = c.cOut / (m * sigma * sigma);
              mag += ((Math.abs(Gv[b * n + i]!) + Math.abs(x0v[b * n + i]! * (1 - c.cSkip)) / c.cOut + Math.abs((zv[b * n + i]! * c.cSkip * sigma) / c.cOut)) * scale) ** 2;
            }
            ref += (lambda * acc) / B;
            upper += (lambda * mag) / B;
          });
          // float32: ≤ 6 roundings per residual term (relative to its terms' sizes, squared: 2·6u) and a sum of
          // B·n terms (≤ B·n·u of the total), bounded through `upper` ≥ every term's size.
          lossIsWeightedDSM.close(L, ref, (12 + B * n) * U32 * upper, { SDE: sde.kind, parameterisation: p.kind, weighting, noise: noise.kind });
          tf.dispose([loss, x0, G, z]);
        });
  });
});

/**
 * The exact network for data concentrated at x₀, reading its noise level from its own input c_noise (tutorial: the
 * time t; EDM: σ = e^{4c}): F*(u, c) = (x₀ − c_skip x̃)/c_out with x̃ = u/c_in.
 */
const pointMassNetOfNoise =
  (sde: SDE, p: Parameterisation, x0: tf.Tensor): Net =>
  (u, c) =>
    tf.tidy(() => {
      const times = Array.from(c.dataSync(), (v) => (p.kind === 'tutorial' ? v : timeOfNoiseLevel(sde, Math.exp(4 * v))));
      const col = (f: (s: ReturnType<typeof scalings>) => number) => perSampleColumn(times.map((t) => f(scalings(sde, p, t))), u.rank);
      return tf.div(tf.sub(x0, tf.mul(tf.div(u, col((s) => s.cIn)), col((s) => s.cSkip))), col((s) => s.cOut));
    });

describe.each(sdes)('the DSM loss of the exact network under the %s SDE', (_n, sde) => {
  describe.each(params)('with the %s parameterisation', (_p, p) => {
    test('is zero up to float32 rounding: the network sees c_in x_t/m and c_noise, and its target is (x₀ − c_skip x̃)/c_out', () => {
      const B = 8;
      const x0 = tf.tile(random.uniform(random.key(31), [1, 4, 4, 1]), [B, 1, 1, 1]);
      const key = random.key(32);
      const noise: NoiseLevelDistribution = { kind: 'log-normal', mean: -1.2, std: 1.2 };
      const loss = dsmLoss(sde, { weighting: 'edm', eps: 1e-5, noise, parameterisation: p })(pointMassNetOfNoise(sde, p, x0), x0, key);
      // Per pixel |F − F*| ≤ K u (|x₀| + c_skip|x̃|)/c_out: ≤ 16 float32 roundings on both sides, and the float32 noise
      // input's relative error carried into the coefficients (elasticity ≤ 2 in σ for EDM: 2|ln σ|u; the tutorial
      // network reads t, whose σ(t) has elasticity ≤ 7 here): K = 32 + 4|ln σ|. The loss (weight 1) ≤ mean_b Σ bound².
      const { ts, noise: z } = dsmDraws(sde, 1e-5, key, B, [4, 4, 1], noise);
      const [zv, x0v] = [z.dataSync(), x0.dataSync()];
      let bound = 0;
      ts.forEach((t, b) => {
        const sigma = marginalStd(sde, t) / marginalMeanCoef(sde, t);
        const c = scalings(sde, p, t);
        const K = 32 + 4 * Math.abs(Math.log(sigma));
        for (let i = 0; i < 16; i++) {
          const xt = Math.abs(x0v[b * 16 + i]!) + sigma * Math.abs(zv[b * 16 + i]!);
          bound += (K * U32 * ((Math.abs(x0v[b * 16 + i]!) + c.cSkip * xt) / c.cOut)) ** 2 / B;
        }
      });
      const L = loss.dataSync()[0]!;
      exactNetZeroLoss.atMost(L, bound, { SDE: sde.kind, parameterisation: p.kind });
      tf.dispose([loss, x0, z]);
    });
  });
});
