import * as E from 'fp-ts/Either';
import { tf, random, codec, initBackend, leakedBy, type Key } from '@score-sde/tensor-fp';
import {
  type SDE,
  vp,
  subvp,
  ve,
  tutorial,
  marginalStd,
  marginalMeanCoef,
  diffusionCoef,
  perSampleColumn,
  ddpmBetas,
  noiseLevel,
} from '@score-sde/sde-math';
import {
  LossConfig,
  dsmLoss,
  ddpmLoss,
  smldLoss,
  dsmDraws,
  trainingNoiseQuantile,
  discreteDraws,
  ddpmLevels,
  smldLevels,
  lossFn,
  type Net,
  type NoiseLevels,
  type NoiseLevelDistribution,
} from '../src';
import { U32 } from './helpers';
import { identity, type Identity } from '@score-sde/tensor-fp/testing';

const lossDraws = identity({
  concept: 'training',
  title: 'Loss draws are uniform',
  formula: String.raw`$t \sim U(\varepsilon, T)$: $\mathbb E t = (\varepsilon + T)/2$; discrete labels $i \sim U\{0..N-1\}$: $\mathbb E i = (N - 1)/2$`,
  source: 'the time sampling of denoising score matching (Song et al. 2021, eq. 7) and of DDPM/SMLD training',
  tolerance: 'Monte-Carlo: 5 SE with SE = (T − ε)/√(12n), resp. √((N² − 1)/12/n)',
});

const logLevelLaw = identity({
  concept: 'training',
  title: 'Log-uniform and mixed noise levels have their laws',
  formula: String.raw`$\ln\sigma \sim U(\ln a, \ln b)$: $\mathbb E \ln\sigma = (\ln a + \ln b)/2$; a mixture $\sum_i w_i p_i / \sum_i w_i$ draws part $i$ with probability $w_i/\sum w$ and has $\mathbb E\ln\sigma = \sum_i w_i \mathbb E_i \ln\sigma / \sum w$`,
  source: 'the training noise levels of the loss (log-uniform: the likelihood weighting of the small levels in σ)',
  tolerance: 'Monte-Carlo: 5 SE, SE = (ln b − ln a)/√(12n), √(p(1 − p)/n) for the share, √(Var/n) with the mixture’s variance',
});

const trainedFraction = identity({
  concept: 'training',
  title: 'A fraction q of the training noise levels lies below their q-quantile',
  formula: String.raw`$\sigma_q = \min\{\sigma \ge \sigma(\varepsilon) : F(\sigma) \ge q\}$ with $F$ the law's distribution function in $\sigma$ (log-normal $\Phi((\ln\sigma - \mu)/s)$, log-uniform, uniform in $t$, mixtures $\sum_i w_i F_i / \sum w$): $P(\sigma_{\text{train}} \le \sigma_q) = q$; log-normal: $\sigma_q = e^{\mu + s\,\Phi^{-1}(q)}$`,
  source: 'the end noise level of the named samplers: where the network has seen a fraction q of its training',
  tolerance: 'Monte-Carlo: 5 SE, SE = √(q(1 − q)/n); the closed form to 1e-12 relative (bisection to float64 resolution)',
});

const ddpmLevelsLaw = identity({
  concept: 'training',
  title: 'DDPM noise levels are the VP marginals at their times',
  formula: String.raw`$\mathrm{mean}_i^2 = \bar\alpha_i = \prod_{j \le i}(1 - \beta_j),\ \mathrm{std}_i^2 = 1 - \bar\alpha_i,\ m(t_i) = \mathrm{mean}_i,\ s(t_i) = \mathrm{std}_i$`,
  source: 'Ho et al. 2020, eq. 4; Song et al. 2021, App. B (DDPM as the discretised VP SDE)',
  tolerance: 'float64: a product of 1000 factors against a sum of log1p: relative 1e−12 (each ~1000·2⁻⁵³), 1e−10 through the time inverse',
});

const smldLevelsLaw = identity({
  concept: 'training',
  title: 'SMLD noise levels are the VE marginals at their times',
  formula: String.raw`$\sigma_i = \sigma_{\min}(\sigma_{\max}/\sigma_{\min})^{i/(N-1)},\ s(t_i) = \sigma_i,\ \mathrm{mean}_i = 1$`,
  source: 'Song & Ermon 2019 geometric noise levels; Song et al. 2021, eq. 8–9',
  tolerance: 'float64: relative 1e−12, 1e−10 through the time inverse; the mean exactly 1',
});

const zeroLoss = identity({
  concept: 'training',
  title: 'The exact score of a point mass has zero loss',
  formula: String.raw`$\mathbb E\,\lambda(t)\,\big\lVert s_\theta(x_t, t) - \nabla \log p_{0t}(x_t \mid x_0)\big\rVert^2 = 0$ for $s_\theta = -(x - m x_0)/s^2$ (DSM, both weightings); DDPM ε-prediction and SMLD likewise`,
  source: 'Vincent 2011 (denoising score matching); Song et al. 2021, eq. 7; Ho et al. 2020, eq. 14; Song & Ermon 2019',
  tolerance: 'the loss is a float32 residual of the cancellation m x₀ + s z − m x₀: the derived per-sample rounding bound (pointMassBound)',
});

const zeroNetLoss = identity({
  concept: 'training',
  title: 'The zero network’s loss is the noise energy',
  formula: String.raw`$\mathcal L(0) = \operatorname{mean}_b \lambda(t_b)\,\lVert z_b \rVert^2 / s(t_b)^2$: $\operatorname{mean}_b \lVert z_b\rVert^2$ for $\lambda = s^2$, $\operatorname{mean}_b (g^2/s^2)(t_b)\lVert z_b\rVert^2$ for $\lambda = g^2$`,
  source: 'the DSM target is −z/s; DDPM and SMLD losses likewise give mean ‖z‖²',
  tolerance: 'float32 sums of D = 784 squares and the weights: (D + 4)u relative',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const D = 28 * 28;

/** The network that is exact for data concentrated at x₀: net*(x, t) = −(x − m(t)x₀)/s(t) (so net* = −z exactly). */
const pointMassNet =
  (sde: SDE, x0: tf.Tensor): Net =>
  (x, t) =>
    tf.tidy(() => {
      const ts = Array.from(t.dataSync());
      const m = perSampleColumn(ts.map((u) => marginalMeanCoef(sde, u)), x.rank);
      const s = perSampleColumn(ts.map((u) => marginalStd(sde, u)), x.rank);
      return tf.neg(tf.div(tf.sub(x, tf.mul(x0, m)), s));
    });

const zeroNet: Net = (x) => tf.zerosLike(x);

/**
 * Float32 bound on the point-mass loss: the oracle reproduces z up to the rounding of
 * x_t = fl(fl(m x₀) + fl(s z)), the subtraction, the division and the loss's own ≤ 3 operations, so per pixel
 * |net* + z| ≤ u(6|z| + 2m|x₀|/s) (2m|x₀|/s: the cancellation of m x₀, and a 1-ulp difference between the
 * oracle's m(t) and the loss's discrete mean). Loss bound = 2·mean_b w_b Σ_pixels (that)² (2: second-order slack).
 */
const pointMassBound = (x0: Float32Array, noise: Float32Array, m: ArrayLike<number>, s: ArrayLike<number>, w: ArrayLike<number>): number => {
  const B = s.length;
  let total = 0;
  for (let b = 0; b < B; b++) {
    let acc = 0;
    for (let i = 0; i < D; i++) {
      const e = U32 * (6 * Math.abs(noise[b * D + i]!) + (2 * m[b]! * Math.abs(x0[b * D + i]!)) / s[b]!);
      acc += e * e;
    }
    total += w[b]! * acc;
  }
  return (2 * total) / B;
};

const kinds: ReadonlyArray<[string, SDE]> = [
  ['vp', vp()],
  ['subvp', subvp()],
  ['ve', ve()],
  ['tutorial', tutorial()],
];

describe('loss draws', () => {
  test('sample b draws its time and noise from split(key, B)[b] alone: the first draws agree in a batch of 2 and of 5', () => {
    const sde = tutorial();
    const a = dsmDraws(sde, 1e-5, random.key(1), 2, [3]);
    const b = dsmDraws(sde, 1e-5, random.key(1), 5, [3]);
    expect(Array.from(b.ts.slice(0, 2))).toEqual(Array.from(a.ts));
    expect(Array.from(b.noise.dataSync().slice(0, 6))).toEqual(Array.from(a.noise.dataSync()));
    tf.dispose([a.noise, b.noise]);
  });

  test('t ~ U(ε, T): every draw lies in (ε, T) and the mean is (ε + T)/2 within 5 standard errors', () => {
    const sde = vp();
    const n = 4000;
    const { ts, noise } = dsmDraws(sde, 1e-5, random.key(2), n, [1]);
    noise.dispose();
    expect(ts.every((t) => t > 1e-5 && t < 1)).toBe(true);
    const mean = ts.reduce((a, t) => a + t, 0) / n;
    // Var U(ε, 1) = (1 − ε)²/12: SE = (1 − ε)/√(12 n).
    lossDraws.withinSE(mean, (1 + 1e-5) / 2, (1 - 1e-5) / Math.sqrt(12 * n), { z: 5, strict: true }, 't');
  });

  test('ln σ ~ U(ln a, ln b): every level lies in [a, b] and E ln σ = (ln a + ln b)/2 within 5 standard errors', () => {
    const sde = ve();
    const n = 4000;
    const [a, b] = [0.02, 40];
    const { ts, noise } = dsmDraws(sde, 1e-5, random.key(4), n, [1], { kind: 'log-uniform', min: a, max: b });
    noise.dispose();
    const logs = Array.from(ts, (t) => Math.log(noiseLevel(sde, t)));
    // σ → t → σ in float64: 1e-9 relative covers the round trip.
    expect(logs.every((l) => l >= Math.log(a) - 1e-9 && l <= Math.log(b) + 1e-9)).toBe(true);
    const mean = logs.reduce((s, l) => s + l, 0) / n;
    const width = Math.log(b) - Math.log(a);
    logLevelLaw.withinSE(mean, (Math.log(a) + Math.log(b)) / 2, width / Math.sqrt(12 * n), { z: 5, strict: true }, 'log-uniform');
  });

  test('a mixture picks part i with probability w_i / Σ w: its share of levels and E ln σ = Σ w_i E_i ln σ / Σ w within 5 SE', () => {
    const sde = ve();
    const n = 4000;
    const [a, b] = [0.01, 0.1];
    const [mu, sd] = [1, 0.5];
    const { ts, noise } = dsmDraws(sde, 1e-5, random.key(5), n, [1], {
      kind: 'mixture',
      parts: [
        { weight: 1, noise: { kind: 'log-uniform', min: a, max: b } },
        { weight: 3, noise: { kind: 'log-normal', mean: mu, std: sd } },
      ],
    });
    noise.dispose();
    const logs = Array.from(ts, (t) => Math.log(noiseLevel(sde, t)));
    // The log-normal part puts P(ln σ ≤ ln b) = Φ((ln 0.1 − 1)/0.5) ≈ 2e−11 below b: the share below b is the first part's, 1/4.
    const share = logs.filter((l) => l <= Math.log(b) + 1e-9).length / n;
    logLevelLaw.withinSE(share, 1 / 4, Math.sqrt((1 / 4) * (3 / 4) / n), { z: 5, strict: true }, 'share of the log-uniform part');
    // Moments of the mixture: m1 = Σ w_i μ_i, Var = Σ w_i (v_i + μ_i²) − m1² (w normalised).
    const [m1, v1] = [(Math.log(a) + Math.log(b)) / 2, (Math.log(b) - Math.log(a)) ** 2 / 12];
    const mean = 0.25 * m1 + 0.75 * mu;
    const variance = 0.25 * (v1 + m1 * m1) + 0.75 * (sd * sd + mu * mu) - mean * mean;
    const est = logs.reduce((s, l) => s + l, 0) / n;
    logLevelLaw.withinSE(est, mean, Math.sqrt(variance / n), { z: 5, strict: true }, 'E ln σ');
  });

  test('a fraction q of the draws of every law lies at or below its q-quantile σ_q: |#{σ_b ≤ σ_q}/n − q| ≤ 5 √(q(1 − q)/n)', () => {
    const n = 4000;
    const laws: ReadonlyArray<readonly [SDE, NoiseLevelDistribution]> = [
      [vp(), { kind: 'uniform-t' }],
      [ve(), { kind: 'log-normal', mean: -0.6, std: 1.2 }],
      [ve(), { kind: 'log-uniform', min: 0.002, max: 0.2 }],
      [ve(), { kind: 'mixture', parts: [{ weight: 0.8, noise: { kind: 'log-normal', mean: -0.6, std: 1.2 } }, { weight: 0.2, noise: { kind: 'log-uniform', min: 0.002, max: 0.2 } }] }],
    ];
    laws.forEach(([sde, law], i) => {
      const { ts, noise } = dsmDraws(sde, 1e-5, random.key(40 + i), n, [1], law);
      noise.dispose();
      for (const q of [0.02, 0.5]) {
        const sq = trainingNoiseQuantile(sde, 1e-5, law, q);
        // σ → t → σ round trip: 1e-9 relative
        const below = Array.from(ts).filter((t) => noiseLevel(sde, t) <= sq * (1 + 1e-9)).length / n;
        trainedFraction.withinSE(below, q, Math.sqrt((q * (1 - q)) / n), { z: 5, strict: true }, `${law.kind} q = ${q}`);
      }
    });
  });

  test('log-normal levels: σ_q = exp(μ + s Φ⁻¹(q)) (Φ⁻¹(0.025) = −1.959963984540054), and the clip at ε: σ_q = σ(ε) when F(σ(ε)) ≥ q', () => {
    const sq = trainingNoiseQuantile(ve(), 1e-5, { kind: 'log-normal', mean: -0.6, std: 1.2 }, 0.025);
    const exact = Math.exp(-0.6 - 1.2 * 1.959963984540054);
    trainedFraction.close(sq, exact, 1e-12 * exact, 'log-normal 2.5%');
    // a law with half its log-mass below σ(ε) (t clipped at ε = 0.3) puts that mass on σ(ε): its quartile is σ(ε)
    const sde = ve();
    const floor = noiseLevel(sde, 0.3);
    expect(trainingNoiseQuantile(sde, 0.3, { kind: 'log-uniform', min: floor / 100, max: floor * 100 }, 0.25)).toBe(floor);
    expect(() => trainingNoiseQuantile(sde, 1e-5, { kind: 'uniform-t' }, 1)).toThrow(RangeError);
  });

  test('discrete labels ~ U{0..N−1}: all in range, mean (N−1)/2 within 5 standard errors', () => {
    const N = 1000;
    const n = 4000;
    const { labels, noise } = discreteDraws(N, random.key(3), n, [1]);
    noise.dispose();
    expect(labels.every((i) => i >= 0 && i < N && Number.isInteger(i))).toBe(true);
    const mean = labels.reduce((a, i) => a + i, 0) / n;
    lossDraws.withinSE(mean, (N - 1) / 2, Math.sqrt((N * N - 1) / 12 / n), { z: 5, strict: true }, 'label');
  });
});

describe('discrete noise levels', () => {
  test('DDPM: mean_i² = ᾱ_i = ∏_{j≤i}(1 − β_j), std_i² = 1 − ᾱ_i, and the time t_i has m(t_i) = mean_i, s(t_i) = std_i', () => {
    const sde = vp();
    const N = 1000;
    const lv = ddpmLevels(sde, N);
    const betas = ddpmBetas(sde, N);
    let alphaBar = 1;
    for (let i = 0; i < N; i++) {
      alphaBar *= 1 - betas[i]!;
      // float64: the product of 1000 factors vs the sum of log1p's, relative 1e-12 (each ~1000·2⁻⁵³ ≈ 1e-13).
      ddpmLevelsLaw.lessThan(Math.abs(lv.mean[i]! ** 2 - alphaBar), 1e-12 * alphaBar);
      ddpmLevelsLaw.lessThan(Math.abs(lv.std[i]! ** 2 - (1 - alphaBar)), 1e-12);
      ddpmLevelsLaw.lessThan(Math.abs(marginalMeanCoef(sde, lv.time[i]!) - lv.mean[i]!), 1e-12 * lv.mean[i]!);
      ddpmLevelsLaw.lessThan(Math.abs(marginalStd(sde, lv.time[i]!) - lv.std[i]!), 1e-10 * lv.std[i]!);
    }
  });

  test('SMLD: std_i = σ_min(σ_max/σ_min)^{i/(N−1)} and the time t_i has s(t_i) = σ_i', () => {
    const sde = ve();
    const N = 100;
    const lv = smldLevels(sde, N);
    for (let i = 0; i < N; i++) {
      const sig = sde.sigmaMin * Math.pow(sde.sigmaMax / sde.sigmaMin, i / (N - 1));
      smldLevelsLaw.lessThan(Math.abs(lv.std[i]! - sig), 1e-12 * sig);
      smldLevelsLaw.lessThan(Math.abs(marginalStd(sde, lv.time[i]!) - sig), 1e-10 * sig);
      smldLevelsLaw.equal(lv.mean[i], 1);
    }
  });
});

describe.each(kinds)('continuous DSM under the %s SDE', (_n, sde) => {
  let x0: tf.Tensor;
  beforeAll(() => {
    x0 = random.uniform(random.key(10), [4, 28, 28, 1]);
  });
  afterAll(() => x0.dispose());

  test.each(['sigma2', 'likelihood'] as const)('λ = %s: the exact score of a point mass has zero loss (to float32 rounding)', (weighting) => {
    const x0b = tf.tile(tf.slice(x0, [0, 0, 0, 0], [1, 28, 28, 1]), [4, 1, 1, 1]);
    const key = random.key(11);
    const L = dsmLoss(sde, { weighting })(pointMassNet(sde, x0b), x0b, key);
    const { ts, noise } = dsmDraws(sde, 1e-5, key, 4, [28, 28, 1]);
    const m = Array.from(ts, (t) => marginalMeanCoef(sde, t));
    const s = Array.from(ts, (t) => marginalStd(sde, t));
    const w = Array.from(ts, (t) => (weighting === 'likelihood' ? (diffusionCoef(sde, t) / marginalStd(sde, t)) ** 2 : 1));
    zeroLoss.atMost(L.dataSync()[0]!, pointMassBound(x0b.dataSync() as Float32Array, noise.dataSync() as Float32Array, m, s, w), `dsm, λ = ${weighting}`);
    tf.dispose([x0b, L, noise]);
  });

  test('the zero network has loss mean_b ‖z_b‖² (λ = s²) and mean_b (g²/s²)(t_b)‖z_b‖² (λ = g²)', () => {
    const key = random.key(12);
    const { ts, noise } = dsmDraws(sde, 1e-5, key, 4, [28, 28, 1]);
    const z = Float32Array.from(noise.dataSync());
    const sq = [0, 1, 2, 3].map((b) => z.slice(b * D, (b + 1) * D).reduce((a, v) => a + v * v, 0));
    const w = Array.from(ts, (t) => (diffusionCoef(sde, t) / marginalStd(sde, t)) ** 2);
    const refS = sq.reduce((a, v) => a + v, 0) / 4;
    const refG = sq.reduce((a, v, b) => a + w[b]! * v, 0) / 4;
    const Ls = dsmLoss(sde)(zeroNet, x0, key).dataSync()[0]!;
    const Lg = dsmLoss(sde, { weighting: 'likelihood' })(zeroNet, x0, key).dataSync()[0]!;
    // float32 sums of D = 784 squares (relative ≤ D·u) and the float32 weights (2u).
    zeroNetLoss.atMost(Math.abs(Ls - refS), (D + 4) * U32 * refS, 'dsm, λ = s²');
    zeroNetLoss.atMost(Math.abs(Lg - refG), (D + 4) * U32 * refG, 'dsm, λ = g²');
    noise.dispose();
  });

  test('the loss leaks no tensor', () => {
    expect(leakedBy(() => dsmLoss(sde)(zeroNet, x0, random.key(1)))).toBe(0);
  });
});

describe('discrete losses', () => {
  let x0: tf.Tensor;
  beforeAll(() => {
    x0 = tf.tidy(() => tf.tile(random.uniform(random.key(20), [1, 28, 28, 1]), [6, 1, 1, 1]));
  });
  afterAll(() => x0.dispose());

  const check = (law: Identity, name: string, sde: SDE, loss: (net: Net, x: tf.Tensor, k: Key) => tf.Scalar, lv: NoiseLevels, N: number) => {
    const key = random.key(21);
    const L = loss(pointMassNet(sde, x0), x0, key);
    const { labels, noise } = discreteDraws(N, key, 6, [28, 28, 1]);
    const m = Array.from(labels, (i) => lv.mean[i]!);
    const s = Array.from(labels, (i) => lv.std[i]!);
    const bound = pointMassBound(x0.dataSync() as Float32Array, noise.dataSync() as Float32Array, m, s, [1, 1, 1, 1, 1, 1]);
    law.atMost(L.dataSync()[0]!, bound, name);
    expect(leakedBy(() => loss(zeroNet, x0, key))).toBe(0);
    tf.dispose([L, noise]);
  };

  test('DDPM ε-prediction: the exact point-mass network (ε̂ = −net* = z) has zero loss, because s(t_i) = √(1−ᾱ_i)', () => {
    const sde = vp();
    check(zeroLoss, 'ddpm', sde, ddpmLoss(sde, 1000), ddpmLevels(sde, 1000), 1000);
  });

  test('SMLD: the exact point-mass network has zero loss, because s(t_i) = σ_i', () => {
    const sde = ve();
    check(zeroLoss, 'smld', sde, smldLoss(sde, 1000), smldLevels(sde, 1000), 1000);
  });

  test('the zero network has DDPM and SMLD loss mean_b ‖z_b‖²', () => {
    for (const [sde, loss] of [
      [vp(), ddpmLoss(vp(), 10)],
      [ve(), smldLoss(ve(), 10)],
    ] as const) {
      void sde;
      const key = random.key(22);
      const { noise } = discreteDraws(10, key, 6, [28, 28, 1]);
      const z = Float32Array.from(noise.dataSync());
      const ref = z.reduce((a, v) => a + v * v, 0) / 6;
      const L = loss(zeroNet, x0, key).dataSync()[0]!;
      zeroNetLoss.atMost(Math.abs(L - ref), (D + 4) * U32 * ref, sde.kind);
      noise.dispose();
    }
  });
});

describe('loss configs', () => {
  test('lossFn accepts DSM for every SDE and refuses DDPM without VP and SMLD without VE, naming the fields', () => {
    for (const [, sde] of kinds) expect(E.isRight(lossFn(sde, { kind: 'dsm', weighting: 'sigma2', eps: 1e-5 }))).toBe(true);
    expect(E.isRight(lossFn(vp(), { kind: 'ddpm', N: 1000 }))).toBe(true);
    expect(E.isRight(lossFn(ve(), { kind: 'smld', N: 1000 }))).toBe(true);
    const bad1 = lossFn(subvp(), { kind: 'ddpm', N: 1000 });
    expect(E.isLeft(bad1) && bad1.left.message).toBe("loss.kind: 'ddpm' needs a VP SDE, got sde.kind 'subvp'");
    const bad2 = lossFn(tutorial(), { kind: 'smld', N: 10 });
    expect(E.isLeft(bad2) && bad2.left.message).toBe("loss.kind: 'smld' needs a VE SDE, got sde.kind 'tutorial'");
  });

  test('LossConfig decoding names the bad field of the kind given, and rejects unknown kinds and keys', () => {
    const decode = codec.decodeWith(LossConfig);
    expect(decode({ kind: 'dsm', weighting: 'likelihood', eps: 1e-5 })).toEqual(E.right({ kind: 'dsm', weighting: 'likelihood', eps: 1e-5 }));
    const w = decode({ kind: 'dsm', weighting: 'sigma', eps: 1e-5 });
    expect(E.isLeft(w) && w.left.problems).toEqual(['weighting: expected Weighting, got "sigma"']);
    const n = decode({ kind: 'ddpm', N: 0 });
    expect(E.isLeft(n) && n.left.problems).toEqual(['N: expected PositiveInt, got 0']);
    const k = decode({ kind: 'sliced' });
    expect(E.isLeft(k) && k.left.problems.join()).toMatch(/^kind: expected/);
    const lu = decode({ kind: 'dsm', weighting: 'edm', eps: 1e-5, noise: { kind: 'log-uniform', min: 80, max: 0.002 } });
    expect(E.isLeft(lu) && lu.left.problems).toEqual(['noise.max: must exceed min (80), got 0.002']);
    const empty = decode({ kind: 'dsm', weighting: 'edm', eps: 1e-5, noise: { kind: 'mixture', parts: [] } });
    expect(E.isLeft(empty) && empty.left.problems).toEqual(['noise.parts: expected NonEmptyArray<NoiseMixturePart>, got []']);
    const w0 = decode({ kind: 'dsm', weighting: 'edm', eps: 1e-5, noise: { kind: 'mixture', parts: [{ weight: 0, noise: { kind: 'uniform-t' } }] } });
    expect(E.isLeft(w0) && w0.left.problems).toEqual(['noise.parts.0.weight: expected PositiveFinite, got 0']);
    const nested = decode({ kind: 'dsm', weighting: 'edm', eps: 1e-5, noise: { kind: 'mixture', parts: [{ weight: 1, noise: { kind: 'mixture', parts: [] } }] } });
    expect(E.isLeft(nested) && nested.left.problems.join()).toMatch(/^noise\.parts\.0\.noise\.kind: expected/);
    const extra = decode({ kind: 'smld', N: 10, sigma: 1 });
    expect(E.isLeft(extra) && extra.left.problems).toEqual(['sigma: unknown key']);
  });
});
