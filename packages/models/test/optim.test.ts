import { fc } from '@fast-check/jest';
import { tf, initBackend, leakedBy, fused, random } from '@score-sde/tensor-fp';
import {
  adamConfig,
  adamStep,
  initAdam,
  disposeAdam,
  learningRate,
  clipByGlobalNorm,
  globalNorm,
  emaDecayAt,
  emaUpdate,
  adamEmaStep,
  clipFactorOf,
  DEFAULT_EMA_DECAY,
  disposeRecord,
  type AdamConfig,
  type TensorRecord,
} from '../src';
import { U32 } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const warmup = identity({
  concept: 'training',
  title: 'Linear learning-rate warm-up',
  formula: String.raw`$\mathrm{lr}_n = \mathrm{lr} \cdot \min(1, n / \text{warmup})$`,
  source: 'the warm-up of the score_sde reference (optimization_manager)',
  tolerance: 'float64: 1e−18; exact without warm-up',
});

const adam = identity({
  concept: 'training',
  title: 'Adam steps equal hand-computed float64 Adam',
  formula: String.raw`$m_n = \beta_1 m_{n-1} + (1 - \beta_1) g_n,\ v_n = \beta_2 v_{n-1} + (1 - \beta_2) g_n^2,\ \theta_n = \theta_{n-1} - \mathrm{lr}_n \frac{\hat m_n}{\sqrt{\hat v_n} + \epsilon}$, with warm-up and global-norm clipping`,
  source: 'Kingma & Ba 2015, Algorithm 1; three steps',
  tolerance: 'per step u|θ| + ~20u|Δθ| with |Δθ| ≤ 40 lr: 3u(|θ| + 1) + 3·20u·40·lr; moments 12u·3 and 12u·9',
});

const adamFirstStep = identity({
  concept: 'training',
  title: 'The first Adam step is lr·sign(g)',
  formula: String.raw`$\hat m_1 = g,\ \hat v_1 = g^2 \Rightarrow \Delta\theta = \mathrm{lr}\,\frac{g}{|g| + \epsilon} = \mathrm{lr}\,\mathrm{sign}(g)\,(1 - \epsilon/|g|)$`,
  source: 'bias correction of Adam (Kingma & Ba 2015, §3)',
  tolerance: 'float32 rounding of θ (4u·3) + lr·ε/|g|',
});

const clipping = identity({
  concept: 'training',
  title: 'Global-norm clipping',
  formula: String.raw`$\lVert \mathrm{clip}_c(g) \rVert = \min(\lVert g \rVert, c)$ (up to the 10⁻⁶ guard), direction kept: $\mathrm{clip}_c(g) = g \cdot \min\big(1, c/(\lVert g \rVert + 10^{-6})\big)$`,
  source: 'Pascanu et al. 2013',
  tolerance: 'float32: 10u relative',
});

const emaDecay = identity({
  concept: 'training',
  title: 'EMA warm-up decay',
  formula: String.raw`$d_n = \min\big(d, \frac{1 + n}{10 + n}\big)$: $2/11$ after the first step, $0.999$ from step 8990`,
  source: 'the EMA warm-up of TensorFlow’s ExponentialMovingAverage with num_updates',
  tolerance: 'exact',
});

const emaUpdateLaw = identity({
  concept: 'training',
  title: 'EMA update',
  formula: String.raw`$\mathrm{ema}_n = d_n\,\mathrm{ema}_{n-1} + (1 - d_n)\,\theta_n$ elementwise`,
  source: 'definition (Polyak averaging with decay)',
  tolerance: 'float32: 6u·5',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

/** Adam with warm-up and global-norm clipping, by hand in float64 (Kingma & Ba, Alg. 1; PyTorch's ε placement). */
const adamByHand = (cfg: AdamConfig, theta0: number[][], grads: number[][][]) => {
  let theta = theta0.map((a) => [...a]);
  let m = theta0.map((a) => a.map(() => 0));
  let v = theta0.map((a) => a.map(() => 0));
  const steps: number[] = [];
  grads.forEach((gRaw, idx) => {
    const n = idx + 1;
    const norm = Math.sqrt(gRaw.flat().reduce((s, x) => s + x * x, 0));
    const f = cfg.gradClip > 0 ? Math.min(1, cfg.gradClip / (norm + 1e-6)) : 1;
    const g = gRaw.map((a) => a.map((x) => x * f));
    m = m.map((a, k) => a.map((x, i) => cfg.beta1 * x + (1 - cfg.beta1) * g[k]![i]!));
    v = v.map((a, k) => a.map((x, i) => cfg.beta2 * x + (1 - cfg.beta2) * g[k]![i]! ** 2));
    const lr = cfg.warmup > 0 ? cfg.lr * Math.min(1, n / cfg.warmup) : cfg.lr;
    steps.push(lr);
    theta = theta.map((a, k) =>
      a.map((x, i) => x - (lr * (m[k]![i]! / (1 - cfg.beta1 ** n))) / (Math.sqrt(v[k]![i]! / (1 - cfg.beta2 ** n)) + cfg.eps)),
    );
  });
  return { theta, m, v, lrs: steps };
};

const record = (arrays: number[][]): TensorRecord => Object.fromEntries(arrays.map((a, k) => [`p${k}`, tf.tensor1d(a)]));

describe('Adam', () => {
  test('learning rate: lr_n = lr·min(1, n/warmup), constant without warm-up', () => {
    const c = adamConfig({ lr: 2e-4, warmup: 4 });
    [0.5e-4, 1e-4, 1.5e-4, 2e-4, 2e-4, 2e-4].forEach((lr, i) => warmup.lessThan(Math.abs(learningRate(c, [1, 2, 3, 4, 5, 100][i]!) - lr), 1e-18));
    warmup.equal(learningRate(adamConfig({ lr: 1e-3 }), 1), 1e-3);
  });

  test('three adamStep calls (with warm-up and clipping) equal the hand-computed float64 Adam steps', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -2, max: 2, noNaN: true, noDefaultInfinity: true }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.array(fc.float({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true }), { minLength: 5, maxLength: 5 }), { minLength: 3, maxLength: 3 }),
        fc.constantFrom(0, 1.5),
        (thetaFlat, gFlat, clip) => {
          // Two parameter tensors of sizes 2 and 1; three steps of gradients for them.
          const theta0 = [thetaFlat.slice(0, 2), thetaFlat.slice(2)].map((a) => a.map(Math.fround));
          const grads = gFlat.map((g) => [g.slice(0, 2), g.slice(2, 3)].map((a) => a.map(Math.fround)));
          const cfg = adamConfig({ lr: 1e-2, warmup: 2, gradClip: clip });
          const want = adamByHand(cfg, theta0, grads);
          let params = record(theta0);
          let state = initAdam([
            { name: 'p0', shape: [2], init: { kind: 'zeros' }, trainable: true },
            { name: 'p1', shape: [1], init: { kind: 'zeros' }, trainable: true },
          ]);
          for (const g of grads) {
            const gr = record(g);
            const r = adamStep(cfg)(params, gr, state);
            disposeRecord(gr);
            disposeRecord(params);
            disposeAdam(state);
            params = r.params;
            state = r.state;
          }
          expect(state.step).toBe(3);
          const got = [Array.from(params['p0']!.dataSync()), Array.from(params['p1']!.dataSync())];
          // Each step adds ≤ u|θ| (rounding θ) and ~20u·|Δθ| (≈ 10 float32 operations on m, v and the ratio), with
          // |Δθ| ≤ lr·|m̂|/√v̂ ≤ lr·√(1−β₂ⁿ)/(1−β₁ⁿ)·(1/√(1−β₂)) ≤ 40·lr here: 3 steps ⇒ 3u|θ| + 3·20u·40·lr.
          got.forEach((a, k) =>
            a.forEach((x, i) => {
              const bound = 3 * U32 * (Math.abs(want.theta[k]![i]!) + 1) + 3 * 20 * U32 * 40 * cfg.lr;
              adam.atMost(Math.abs(x - want.theta[k]![i]!), bound, 'θ');
            }),
          );
          // The moments: m is a convex combination of |g| ≤ 3, v of g² ≤ 9; 3 steps × 4 roundings each.
          Array.from(state.m['p0']!.dataSync()).forEach((x, i) => adam.atMost(Math.abs(x - want.m[0]![i]!), 12 * U32 * 3, 'm'));
          Array.from(state.v['p1']!.dataSync()).forEach((x, i) => adam.atMost(Math.abs(x - want.v[1]![i]!), 12 * U32 * 9, 'v'));
          disposeRecord(params);
          disposeAdam(state);
        },
      ),
      runs(25),
    );
  });

  test('the first Adam step moves every coordinate by lr·sign(g) (m̂ = g, v̂ = g²), up to ε', () => {
    const cfg = adamConfig({ lr: 1e-3 });
    const p = record([[1, -2, 3]]);
    const g = record([[0.5, -4, 1e-2]]);
    const s0 = initAdam([{ name: 'p0', shape: [3], init: { kind: 'zeros' }, trainable: true }]);
    const { params, state } = adamStep(cfg)(p, g, s0);
    const d = Array.from(params['p0']!.dataSync()).map((x, i) => [1, -2, 3][i]! - x);
    // Δθ = lr·g/(|g| + ε) = lr·sign(g)·(1 − ε/|g|): within float32 rounding of θ (u·|θ| ≤ 3u) plus ε/|g|·lr.
    [1, -1, 1].forEach((sgn, i) => adamFirstStep.atMost(Math.abs(d[i]! - sgn * 1e-3), 4 * U32 * 3 + 1e-3 * (1e-8 / 1e-2)));
    [p, g, params].forEach(disposeRecord);
    [s0, state].forEach(disposeAdam);
  });

  test('adamStep leaks no tensor beyond its result', () => {
    const p = record([[1, 2]]);
    const g = record([[0.1, 0.2]]);
    const s0 = initAdam([{ name: 'p0', shape: [2], init: { kind: 'zeros' }, trainable: true }]);
    expect(leakedBy(() => {
      const r = adamStep(adamConfig({ gradClip: 0.1 }))(p, g, s0);
      return [Object.values(r.params), Object.values(r.state.m), Object.values(r.state.v)].flat();
    })).toBe(0);
    [p, g].forEach(disposeRecord);
    disposeAdam(s0);
  });
});

describe('gradient clipping', () => {
  test('global-norm clipping: ‖clip_c(g)‖ = min(‖g‖, c) and the direction is kept', () => {
    fc.assert(
      fc.property(
        // Hundredths in [−10, 10] (no subnormal squares, whose float32 underflow is not what is tested here).
        fc.array(fc.integer({ min: -1000, max: 1000 }).map((i) => i / 100), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 1, max: 2000 }).map((i) => i / 100),
        (g, c) => {
          const gr = record([g.slice(0, 3), g.slice(3)]);
          const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
          const clipped = clipByGlobalNorm(c)(gr);
          const n2 = globalNorm(clipped);
          const got = n2.dataSync()[0]!;
          // factor = c/(‖g‖ + 1e-6): the clipped norm is c·‖g‖/(‖g‖ + 1e-6), float32 to ~10u relative.
          const want = norm * Math.min(1, c / (norm + 1e-6));
          clipping.atMost(Math.abs(got - want), 10 * U32 * want, 'norm');
          const f = Math.min(1, c / (norm + 1e-6));
          const flat = [...clipped['p0']!.dataSync(), ...clipped['p1']!.dataSync()];
          flat.forEach((x, i) => clipping.atMost(Math.abs(x - f * g[i]!), 10 * U32 * Math.abs(g[i]!), 'direction'));
          [gr, clipped].forEach(disposeRecord);
          n2.dispose();
        },
      ),
      runs(50),
    );
  });
});

describe('EMA', () => {
  test('the warm-up decay is d_n = min(decay, (1+n)/(10+n)): 2/11 after the first step, 0.999 from step 8990 on', () => {
    emaDecay.equal(emaDecayAt(DEFAULT_EMA_DECAY, 1), 2 / 11);
    emaDecay.equal(emaDecayAt(DEFAULT_EMA_DECAY, 100), 101 / 110);
    // (1+n)/(10+n) ≥ 0.999 ⇔ n ≥ 8990.
    expect(emaDecayAt(DEFAULT_EMA_DECAY, 8989)).toBeLessThan(0.999);
    emaDecay.equal(emaDecayAt(DEFAULT_EMA_DECAY, 8990), 0.999);
    emaDecay.equal(emaDecayAt(0.5, 3), 4 / 13);
    emaDecay.equal(emaDecayAt(0.5, 20), 0.5);
  });

  test('emaUpdate(decay)(ema, θ, n) = d_n·ema + (1 − d_n)·θ, elementwise', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -5, max: 5, noNaN: true, noDefaultInfinity: true }), { minLength: 3, maxLength: 3 }),
        fc.array(fc.float({ min: -5, max: 5, noNaN: true, noDefaultInfinity: true }), { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 1, max: 20000 }),
        (e, th, n) => {
          const ema = record([e]);
          const params = { ...record([th]), extra: tf.scalar(1) };
          const out = emaUpdate(0.999)(ema, params, n);
          expect(Object.keys(out)).toEqual(['p0']);
          const d = Math.min(0.999, (1 + n) / (10 + n));
          // Two products and a sum in float32 of terms ≤ 5 in size: ≤ 4u·5 (and the float32 rounding of d, 1−d: 2u·5).
          Array.from(out['p0']!.dataSync()).forEach((x, i) => emaUpdateLaw.atMost(Math.abs(x - (d * e[i]! + (1 - d) * th[i]!)), 6 * U32 * 5));
          [ema, params, out].forEach(disposeRecord);
        },
      ),
      runs(50),
    );
  });
});

const powerEma = identity({
  concept: 'training',
  title: 'The power-function EMA weights the past by the growth of k^(γ+1)',
  formula: String.raw`$d_n = (1 - 1/n)^{\gamma+1} \Rightarrow \text{ema}_n = \sum_{k=1}^n \frac{k^{\gamma+1} - (k-1)^{\gamma+1}}{n^{\gamma+1}}\,\theta_k$`,
  source: 'Karras et al. 2024 (EDM2) §3.1; the product Π_{j>k} d_j = (k/n)^{γ+1} telescopes',
  tolerance: 'float32: n updates of ≤ 6 roundings of terms ≤ 5 (6·n·u·5)',
});

const earlyPowerEma = identity({
  concept: 'training',
  title: 'A power EMA with another exponent early restarts the power weights after S steps',
  formula: String.raw`$\gamma_n = \gamma_0\ (n \le S),\ \gamma\ (n > S) \Rightarrow \text{ema}_n = \text{ema}^{(\gamma_0)}_{\min(n,S)}\,\big(\tfrac{S}{n}\big)^{\gamma+1}_{n>S} + \sum_{k=S+1}^n \frac{k^{\gamma+1} - (k-1)^{\gamma+1}}{n^{\gamma+1}}\,\theta_k$`,
  source: 'the power EMA of Karras et al. 2024 (EDM2) §3.1 over steps S+1…n; Π_{j=S+1}^n (1 − 1/j)^{γ+1} = (S/n)^{γ+1}',
  tolerance: 'float32: n updates of ≤ 6 roundings of terms ≤ 5 (6·n·u·5)',
});

const cosine = identity({
  concept: 'training',
  title: 'Warm-up then cosine decay of the learning rate',
  formula: String.raw`$\mathrm{lr}_n = \mathrm{lr}\cdot\min(1, n/W)\cdot\big(f + (1-f)\tfrac12(1 + \cos \pi u)\big)$, $u = \mathrm{clamp}\big((n - W)/(S - W), 0, 1\big)$`,
  source: 'Loshchilov & Hutter 2017 (SGDR) without restarts, after a linear warm-up',
  tolerance: 'float64: 1e−15 at the end points and the midpoint; monotone after warm-up',
});

describe('power-function EMA (Karras et al. 2024, §3.1)', () => {
  test('d_n = (1 − 1/n)^{γ+1}, so after n steps ema = Σ_k (k^{γ+1} − (k−1)^{γ+1}) θ_k / n^{γ+1} (weights ∝ the growth of k^{γ+1}, summing to 1)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 12, noNaN: true, noDefaultInfinity: true }),
        fc.array(fc.float({ min: -5, max: 5, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 40 }),
        (gamma, thetas) => {
          const ema = { kind: 'power' as const, gamma };
          expect(emaDecayAt(ema, 1)).toBe(0);
          let e: TensorRecord = record([[thetas[0]!]]);
          thetas.forEach((th, k) => {
            const next = emaUpdate(ema)(e, record([[th]]), k + 1);
            disposeRecord(e);
            e = next;
          });
          const n = thetas.length;
          const exact = thetas.reduce((a, th, i) => a + ((Math.pow(i + 1, gamma + 1) - Math.pow(i, gamma + 1)) / Math.pow(n, gamma + 1)) * th, 0);
          // n updates, each ≤ 6 float32 roundings of terms ≤ 5 in size (the error of an average does not grow by more
          // than each step's own: the decays are ≤ 1).
          powerEma.close(e['p0']!.dataSync()[0]!, exact, 6 * n * U32 * 5);
          disposeRecord(e);
        },
      ),
      { seed: 7, numRuns: 40 },
    );
  });
});

describe('power-function EMA with an early exponent (the guide\'s EMA)', () => {
  test('d_n = (1 − 1/n)^{γ₀+1} for n ≤ S and (1 − 1/n)^{γ+1} after: ema_n is the power EMA of γ₀ up to S, then (S/n)^{γ+1} ema_S + Σ_{k>S} (k^{γ+1} − (k−1)^{γ+1}) θ_k / n^{γ+1}', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 12, noNaN: true, noDefaultInfinity: true }),
        fc.double({ min: 0, max: 40, noNaN: true, noDefaultInfinity: true }),
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.float({ min: -5, max: 5, noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 40 }),
        (gamma, gamma0, S, thetas) => {
          const ema = { kind: 'power' as const, gamma, early: { steps: S, gamma: gamma0 } };
          const weights = (g: number, from: number, n: number): number =>
            thetas.slice(from, n).reduce((a, th, i) => a + ((Math.pow(from + i + 1, g + 1) - Math.pow(from + i, g + 1)) / Math.pow(n, g + 1)) * th, 0);
          let e: TensorRecord = record([[thetas[0]!]]);
          thetas.forEach((th, k) => {
            const next = emaUpdate(ema)(e, record([[th]]), k + 1);
            disposeRecord(e);
            e = next;
            const n = k + 1;
            const atS = weights(gamma0, 0, Math.min(n, S));
            const exact = n <= S ? atS : Math.pow(S / n, gamma + 1) * atS + weights(gamma, S, n);
            earlyPowerEma.close(e['p0']!.dataSync()[0]!, exact, 6 * n * U32 * 5);
          });
          disposeRecord(e);
        },
      ),
      { seed: 17, numRuns: 40 },
    );
  });
});

describe('cosine learning-rate schedule', () => {
  test('lr_n = lr·min(1, n/W)·(f + (1 − f)·½(1 + cos πu)): lr at the end of warm-up, lr·(1+f)/2 half-way, lr·f from S on, decreasing after warm-up', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 5000 }), fc.double({ min: 0, max: 1, noNaN: true }), (W, extra, f) => {
        const S = W + 2 * extra;
        const cfg = adamConfig({ lr: 2e-3, warmup: W, schedule: { kind: 'cosine', steps: S, floor: f } });
        if (W > 0) cosine.close(learningRate(cfg, W), 2e-3, 1e-15);
        cosine.close(learningRate(cfg, W + extra), 2e-3 * (f + (1 - f) / 2), 1e-15);
        cosine.close(learningRate(cfg, S), 2e-3 * f, 1e-15);
        cosine.close(learningRate(cfg, S + 100), 2e-3 * f, 1e-15);
        for (let n = Math.max(W, 1); n < S; n += Math.max(1, Math.floor(extra / 7))) expect(learningRate(cfg, n + 1)).toBeLessThanOrEqual(learningRate(cfg, n));
      }),
      { seed: 8, numRuns: 100 },
    );
  });
});

describe('the fused Adam + EMA step (wasm)', () => {
  test('adamEmaStep ≡ adamStep then emaUpdate, bit for bit, given the tensor global norm (any sizes, clipping or not, any step)', () => {
    expect(fused.fusedKernelsReady()).toBe(true);
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 11 }), { minLength: 1, maxLength: 4 }),
        fc.constantFrom(0, 0.05, 100),
        fc.integer({ min: 0, max: 300 }),
        fc.nat(1000),
        (sizes, clip, step, seed) => {
          const cfg = adamConfig({ lr: 3e-3, warmup: 100, gradClip: clip });
          const draw = (k: number, scale: number): TensorRecord =>
            Object.fromEntries(sizes.map((n, i) => [`p${i}`, tf.mul(random.normal(random.key(seed * 97 + k * 13 + i), [n]), scale)]));
          const [params, grads, m, ema] = [draw(1, 1), draw(2, 0.3), draw(3, 0.01), draw(4, 1)];
          const v = Object.fromEntries(Object.entries(draw(5, 0.01)).map(([k, t]) => [k, tf.square(t)]));
          const state = { step, m, v };
          const norm = tf.tidy(() => globalNorm(grads).dataSync()[0]!);
          const a = adamEmaStep(cfg)(params, grads, state, ema, norm, emaDecayAt(0.999, step + 1));
          const b = adamStep(cfg)(params, grads, state);
          const e = emaUpdate(0.999)(ema, b.params, b.state.step);
          const same = (x: TensorRecord, y: TensorRecord): boolean =>
            Object.keys(y).every((k) => Array.from(x[k]!.dataSync()).join() === Array.from(y[k]!.dataSync()).join());
          const ok = a.state.step === b.state.step && same(a.params, b.params) && same(a.state.m, b.state.m) && same(a.state.v, b.state.v) && same(a.ema, e);
          [params, grads, m, v, ema, a.params, a.ema, b.params, e].forEach(disposeRecord);
          disposeAdam(a.state);
          disposeAdam(b.state);
          return ok;
        },
      ),
      { seed: 11, numRuns: 40 },
    );
  });

  test('clipFactorOf(c, ‖g‖) = min(1, c / (‖g‖ + 1e-6)) in float32, 1 without clipping', () => {
    expect(clipFactorOf(0, 5)).toBe(1);
    expect(clipFactorOf(1, 0.5)).toBe(1);
    expect(clipFactorOf(1, 4)).toBe(Math.fround(1 / Math.fround(4 + Math.fround(1e-6))));
  });

  test('the sum of squares off the heap is Σ g² within the float32 summation bound', () => {
    const ts = [random.normal(random.key(1), [1001]), random.normal(random.key(2), [3])];
    const exact = ts.reduce((s, t) => s + Array.from(t.dataSync()).reduce((a, x) => a + x * x, 0), 0);
    // 4 partial sums of ≤ 251 terms, then 4 more additions: γ_256 relative (every term is positive).
    expect(Math.abs(fused.sumOfSquares(ts) - exact)).toBeLessThanOrEqual(((256 * U32) / (1 - 256 * U32)) * exact);
    tf.dispose(ts);
  });
});
