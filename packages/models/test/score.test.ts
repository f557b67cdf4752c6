import { tf, random, initBackend, leakedBy } from '@score-sde/tensor-fp';
import { type SDE, vp, subvp, ve, tutorial, marginalStd, marginalMeanCoef, kernelScore, perSampleColumn, reverseDrift, probabilityFlowDrift } from '@score-sde/sde-math';
import { scoreFromNet, scoreFromNetPerSample, scoreNetConfig, initScoreNet, scoreNet, disposeRecord, type Net } from '../src';
import { bitEqual, U32 } from './helpers';

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
      let worst = 0;
      o.forEach((v, i) => (worst = Math.max(worst, Math.abs(sc[i]! * s - v) - 3 * U32 * Math.abs(v))));
      expect(worst).toBeLessThanOrEqual(0);
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
      let worst = 0;
      av.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - bv[i]!) - (8 * U32 * (Math.abs(xv[i]!) + m * Math.abs(x0v[i % 784]!))) / s2)));
      expect(worst).toBeLessThanOrEqual(0);
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
