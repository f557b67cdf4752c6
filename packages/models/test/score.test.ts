import { tf, random, initBackend, leakedBy } from '@score-sde/tensor-fp';
import { type SDE, vp, subvp, ve, tutorial, marginalStd, marginalMeanCoef, kernelScore, perSampleColumn, reverseDrift, probabilityFlowDrift } from '@score-sde/sde-math';
import { scoreFromNet, scoreFromNetPerSample, scoreNetConfig, initScoreNet, scoreNet, disposeRecord, type Net } from '../src';
import { bitEqual, U32 } from './helpers';
import { identity } from '@score-sde/tensor-fp/testing';

const scoreWrapper = identity({
  concept: 'training',
  title: 'The score is the network output over the marginal std',
  formula: String.raw`$s_\theta(x, t) = \mathrm{net}(x, t) / s(t)$`,
  source: 'the tutorial ScoreNet’s output scaling (Song’s score-SDE Colab)',
  tolerance: 'one division and the float32 rounding of s, plus the float64 product: 3u|net| per pixel',
});

const pointMassScore = identity({
  concept: 'training',
  title: 'The exact point-mass network is the kernel score',
  formula: String.raw`$\mathrm{scoreFromNet}(\mathrm{net}^\ast)(x, t) = \nabla \log p_{0t}(x \mid x_0) = -\frac{x - m(t)\,x_0}{s(t)^2}$`,
  source: 'net* = −(x − m x₀)/s, divided by s',
  tolerance: 'both evaluate (m x₀ − x)/s² in float32 with ≤ 4 roundings: 8u(|x| + m|x₀|)/s² per pixel',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const tiny = scoreNetConfig({ channels: [8, 16, 16, 16], embedDim: 32 });

/**
 * The network that is exact for data concentrated at one image x₀: net*(x, t) = −(x − m(t)·x₀)/s(t), so that
 * net*(x, t) / s(t) = ∇ₓ log p_0t(x | x₀) is the true score of p_t = N(m x₀, s² I).
 */
const pointMassNet =
  (sde: SDE, x0: tf.Tensor): Net =>
  (x, t) =>
    tf.tidy(() => {
      const ts = Array.from(t.dataSync());
      const m = perSampleColumn(ts.map((u) => marginalMeanCoef(sde, u)), x.rank);
      const s = perSampleColumn(ts.map((u) => marginalStd(sde, u)), x.rank);
      return tf.neg(tf.div(tf.sub(x, tf.mul(x0, m)), s));
    });

const kinds: ReadonlyArray<[string, SDE]> = [
  ['vp', vp()],
  ['subvp', subvp()],
  ['ve', ve()],
  ['tutorial', tutorial()],
];

describe.each(kinds)('score wrapper under the %s SDE', (_name, sde) => {
  test('s_θ(x, t)·s(t) = net(x, t): the score is the network output divided by the marginal std', () => {
    const p = initScoreNet(tiny, random.key(1));
    const net = scoreNet(tiny, p);
    const x = random.normal(random.key(2), [2, 28, 28, 1]);
    for (const t of [0.01, 0.5, 1]) {
      const s = marginalStd(sde, t);
      const score = scoreFromNet(sde, net)(x, t);
      const out = net(x, tf.fill([2], t));
      const sc = score.dataSync();
      const o = out.dataSync();
      // score = fl(net / fl(s)): one division and the float32 rounding of s, so |score·s − net| ≤ 2u|net| (+ u|net| for
      // the float64 product here).
      scoreWrapper.closeEach(Float64Array.from(sc, (v) => v * s), o, Float64Array.from(o, (v) => 3 * U32 * Math.abs(v)), `t = ${t}`);
      tf.dispose([score, out]);
    }
    tf.dispose(x);
    disposeRecord(p);
  });

  test('the exact point-mass network, wrapped, is the kernel score ∇ log p_0t(x | x₀) = −(x − m x₀)/s²', () => {
    const x0 = random.uniform(random.key(3), [1, 28, 28, 1]);
    const x = random.normal(random.key(4), [3, 28, 28, 1]);
    const score = scoreFromNet(sde, pointMassNet(sde, x0));
    for (const t of [0.05, 0.3, 0.8, 1]) {
      const a = score(x, t);
      const b = kernelScore(sde)(x, x0, t);
      const m = marginalMeanCoef(sde, t);
      const s2 = marginalStd(sde, t) ** 2;
      const av = a.dataSync();
      const bv = b.dataSync();
      const xv = x.dataSync();
      const x0v = x0.dataSync();
      // Both evaluate (m x₀ − x)/s² in float32 with ≤ 4 roundings each, on terms of size |x| and m|x₀|:
      // |a − b| ≤ 8u(|x| + m|x₀|)/s² per pixel.
      pointMassScore.closeEach(av, bv, Float64Array.from(av, (_, i) => (8 * U32 * (Math.abs(xv[i]!) + m * Math.abs(x0v[i % 784]!))) / s2), `t = ${t}`);
      tf.dispose([a, b]);
    }
    tf.dispose([x0, x]);
  });

  test('per-sample times equal to t give bit-identically the shared-time score, and the wrapper plugs into the reverse SDE and the flow', () => {
    const p = initScoreNet(tiny, random.key(5));
    const net = scoreNet(tiny, p);
    const x = random.normal(random.key(6), [2, 28, 28, 1]);
    const shared = scoreFromNet(sde, net)(x, 0.4);
    const perSample = scoreFromNetPerSample(sde, net)(x, [0.4, 0.4]);
    expect(bitEqual(shared, perSample)).toBe(true);
    const leaked = leakedBy(() => [reverseDrift(sde, scoreFromNet(sde, net))(x, 0.4), probabilityFlowDrift(sde, scoreFromNet(sde, net))(x, 0.4)]);
    expect(leaked).toBe(0);
    tf.dispose([x, shared, perSample]);
    disposeRecord(p);
  });
});
