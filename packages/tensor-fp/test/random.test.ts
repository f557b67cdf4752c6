/**
 * Laws of the counter-based keys (random.ts): determinism, independence of split/foldIn streams,
 * batch invariance of per-sample draws, and the distributions of the draws.
 *
 * Statistical tolerances: 5 standard errors for means and variances (a false alarm has probability
 * ≈ 6·10⁻⁷ per check); for uniforms, the Dvoretzky–Kiefer–Wolfowitz bound P(sup|F̂ₙ − F| > ε) ≤ 2e^{−2nε²}
 * with ε for a false-alarm probability of 10⁻⁶, and a χ² bound of mean + 5 sd of χ²_{k−1}.
 * Seeds are fixed, so the outcome is deterministic; the tolerances say how surprising a failure would be.
 */
import fc from 'fast-check';
import { tf, initBackend, random, type Key } from '@score-sde/tensor-fp';
import { moments } from './helpers';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const threefry = identity({
  concept: 'random',
  title: 'Threefry-2x32 known answers',
  formula: String.raw`$\mathrm{threefry2x32}_{20}(0, 0) = (\mathtt{6b200159}, \mathtt{99ba4efe})$, $\ \mathrm{threefry2x32}_{20}(\sim 0, \sim 0) = (\mathtt{1cb996fc}, \mathtt{bb002be7})$`,
  source: 'Salmon et al. 2011 (Random123), kat_vectors',
  tolerance: 'exact',
});

const sameKey = identity({
  concept: 'random',
  title: 'Same key, same draws',
  formula: String.raw`$\mathrm{draw}(k, n) = \mathrm{draw}(k, n)$ bit for bit (arrays and tensors); tensor normals are the float32 roundings of the float64 ones`,
  source: 'a draw is a pure function of its key (counter-based generator)',
  tolerance: 'exact',
});

const distinctKeys = identity({
  concept: 'random',
  title: 'split and foldIn give distinct keys',
  formula: String.raw`$|\{k\} \cup \mathrm{split}(k, n)| = n + 1$, $\ \mathrm{foldIn}(k, d) \ne \mathrm{foldIn}(k, d')$ for $d \ne d'$ and distinct from the split children; $\mathrm{splitEach}$ = per-key split`,
  source: 'children are Threefry outputs at distinct counters (Claessen & Pałka 2013 splittable generators; JAX PRNG design)',
  tolerance: 'exact (set sizes and keys)',
});

const perSample = identity({
  concept: 'random',
  title: 'Draws do not depend on the batch or the length',
  formula: String.raw`$\mathrm{draw}(k_{1..64})_b = \mathrm{draw}(k_b)$; $\ \mathrm{normalArray}(k, n)_{1..m} = \mathrm{normalArray}(k, m)$`,
  source: 'per-sample draws use each sample’s own key; counters run from 0 whatever the length',
  tolerance: 'exact (bit for bit)',
});

const normalMoments = identity({
  concept: 'random',
  title: 'Normal draws have the moments of N(0, 1)',
  formula: String.raw`$\mathbb E z = 0,\ \operatorname{Var} z = 1,\ \mathbb E z^4 = 3$`,
  source: 'moments of the standard normal (Var z⁴ = E z⁸ − 9 = 105 − 9 = 96)',
  tolerance: 'Monte-Carlo, n = 200,000: 5 SE with SE(mean) = 1/√n, SE(var) = √(2/(n−1)), SE(z⁴) = √(96/n)',
});

const uniformLaw = identity({
  concept: 'random',
  title: 'Uniform draws are uniform',
  formula: String.raw`$\sup_u |\hat F_n(u) - u| \le \sqrt{\ln(2/\delta)/(2n)}$, $\ \chi^2_{k-1}$ over equal bins, $\ \mathbb E\,U(a, b) = (a + b)/2$`,
  source: 'Dvoretzky–Kiefer–Wolfowitz inequality with Massart’s constant (false alarm δ = 10⁻⁶); Pearson χ²; n = 10⁶',
  tolerance: 'DKW bound; χ² below its mean k − 1 + 5 sd (sd = √(2(k−1))); the mean within 5 SE ((b − a)/√(12n))',
});

const rademacher = identity({
  concept: 'random',
  title: 'Rademacher signs are balanced',
  formula: String.raw`$v \in \{-1, 1\},\ \mathbb E v = 0$`,
  source: 'definition (the Hutchinson probes)',
  tolerance: 'Monte-Carlo: |mean| < 5 SE, SE = 1/√n',
});

const permutation = identity({
  concept: 'random',
  title: 'Random permutations are uniform',
  formula: String.raw`$\mathrm{permutation}(k, n)$ is a permutation of $0..n-1$ and $\Pr(\pi_0 = i) = 1/n$`,
  source: 'Fisher–Yates shuffle with uniform draws',
  tolerance: 'exact for the permutation; χ² of position 0 over 20,000 trials below k − 1 + 5 sd',
});

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const seedArb = fc.integer({ min: -(2 ** 40), max: 2 ** 40 });
const keyArb = seedArb.map(random.key);
const keyId = (k: Key): string => `${k[0]}:${k[1]}`;

describe('Threefry-2x32 known answers (Random123 kat_vectors)', () => {
  test('threefry2x32_20(key = 0, ctr = 0) = (0x6b200159, 0x99ba4efe)', () => {
    threefry.equal(random.threefry2x32([0, 0], 0, 0), [0x6b200159, 0x99ba4efe]);
  });
  test('threefry2x32_20(key = ~0, ctr = ~0) = (0x1cb996fc, 0xbb002be7)', () => {
    threefry.equal(random.threefry2x32([0xffffffff, 0xffffffff], 0xffffffff, 0xffffffff), [0x1cb996fc, 0xbb002be7]);
  });
});

describe('keys', () => {
  test('same key ⇒ bit-identical draws (arrays and tensors)', () => {
    fc.assert(
      fc.property(keyArb, fc.integer({ min: 1, max: 50 }), (k, n) => {
        sameKey.equal(random.normalArray(k, n), random.normalArray(k, n));
        sameKey.equal(random.uniformArray(k, n), random.uniformArray(k, n));
        sameKey.equal(random.bits(k, n), random.bits(k, n));
        const [a, b] = [random.normal(k, [n]), random.normal(k, [n])];
        sameKey.equal(Array.from(a.dataSync()), Array.from(b.dataSync()));
        tf.dispose([a, b]);
      }),
      runs(30),
    );
  });

  test('split(k, n) gives n distinct children, all distinct from k; split2 = the first two', () => {
    fc.assert(
      fc.property(keyArb, fc.integer({ min: 2, max: 64 }), (k, n) => {
        const children = random.split(k, n);
        distinctKeys.equal(new Set([keyId(k), ...children.map(keyId)]).size, n + 1);
        distinctKeys.equal(random.split2(k), [children[0], children[1]]);
      }),
      runs(50),
    );
  });

  test('foldIn is deterministic, and distinct data give distinct keys (also distinct from split children)', () => {
    fc.assert(
      fc.property(keyArb, fc.uniqueArray(fc.nat({ max: 0xffffffff }), { minLength: 2, maxLength: 20 }), (k, data) => {
        distinctKeys.equal(data.map((d) => random.foldIn(k, d)), data.map((d) => random.foldIn(k, d)));
        const folded = data.map((d) => keyId(random.foldIn(k, d)));
        const children = random.split(k, data.length).map(keyId);
        distinctKeys.equal(new Set([...folded, ...children]).size, 2 * data.length);
      }),
      runs(50),
    );
  });

  test('different seeds give different keys and different streams', () => {
    fc.assert(
      fc.property(fc.uniqueArray(seedArb, { minLength: 2, maxLength: 10 }), (seeds) => {
        const keys = seeds.map(random.key);
        distinctKeys.equal(new Set(keys.map(keyId)).size, seeds.length);
        distinctKeys.equal(new Set(keys.map((k) => random.bits(k, 2).join(':'))).size, seeds.length);
      }),
      runs(50),
    );
  });

  test('splitEach(keys) = per key (split(k)[0], split(k)[1])', () => {
    fc.assert(
      fc.property(fc.array(keyArb, { minLength: 1, maxLength: 8 }), (keys) => {
        const [carry, use] = random.splitEach(keys);
        distinctKeys.equal(carry, keys.map((k) => random.split(k, 2)[0]));
        distinctKeys.equal(use, keys.map((k) => random.split(k, 2)[1]));
      }),
      runs(30),
    );
  });

  test('KeyCodec round-trips keys through JSON and rejects non-uint32 words', () => {
    fc.assert(
      fc.property(keyArb, (k) => {
        const back = random.KeyCodec.decode(JSON.parse(JSON.stringify(k)));
        expect(back).toEqual({ _tag: 'Right', right: k });
      }),
      runs(30),
    );
    for (const bad of [[1], [1, 2, 3], [-1, 0], [0, 2 ** 32], [0.5, 1], ['1', 2], null]) {
      expect(random.KeyCodec.decode(bad)._tag).toBe('Left');
    }
  });
});

describe('per-sample draws are batch-invariant', () => {
  test.each([
    ['normalPerSample', random.normalPerSample],
    ['uniformPerSample', random.uniformPerSample],
    ['rademacherPerSample', random.rademacherPerSample],
  ] as const)('%s: sample b is bit-identical in a batch of 1 and in a batch of 64', (_name, draw) => {
    fc.assert(
      fc.property(keyArb, fc.integer({ min: 0, max: 63 }), (k, b) => {
        const keys = random.split(k, 64);
        const sampleShape = [3, 4, 1];
        const [big, one] = [draw(keys, sampleShape), draw([keys[b]!], sampleShape)];
        expect(big.shape).toEqual([64, 3, 4, 1]);
        const row = Array.from(big.dataSync().subarray(b * 12, (b + 1) * 12));
        perSample.equal(row, Array.from(one.dataSync()));
        tf.dispose([big, one]);
      }),
      runs(20),
    );
  });

  test('a prefix of normalArray(k, n) equals normalArray(k, m) for m < n (draws do not depend on the length)', () => {
    fc.assert(
      fc.property(keyArb, fc.integer({ min: 1, max: 300 }), fc.integer({ min: 0, max: 300 }), (k, m, extra) => {
        const n = m + 1 + extra;
        perSample.equal(random.normalArray(k, n).subarray(0, m), random.normalArray(k, m));
        perSample.equal(random.uniformArray(k, n).subarray(0, m), random.uniformArray(k, m));
      }),
      runs(50),
    );
  });
});

describe('distributions', () => {
  const N = 200_000;

  test('normals: mean 0 and variance 1 within 5 standard errors (SE(mean) = 1/√n, SE(var) = √(2/(n−1)))', () => {
    for (const seed of [1, 2, 3]) {
      const { mean, variance, n } = moments(random.normalArray(random.key(seed), N));
      normalMoments.withinSE(mean, 0, 1 / Math.sqrt(n), { z: 5, strict: true }, `mean, seed ${seed}`);
      normalMoments.withinSE(variance, 1, Math.sqrt(2 / (n - 1)), { z: 5, strict: true }, `variance, seed ${seed}`);
    }
  });

  test('normals: E z⁴ = 3 within 5 SE (Var z⁴ = E z⁸ − 9 = 105 − 9 = 96), so the tails are Gaussian too', () => {
    const z = random.normalArray(random.key(4), N);
    let s = 0;
    for (let i = 0; i < z.length; i++) s += z[i]! ** 4;
    normalMoments.withinSE(s / N, 3, Math.sqrt(96 / N), { z: 5, strict: true }, 'E z⁴');
  });

  test('normal tensor draws are the float32 roundings of normalArray', () => {
    const k = random.key(5);
    const t = random.normal(k, [10, 10]);
    sameKey.equal(Array.from(t.dataSync()), Array.from(Float32Array.from(random.normalArray(k, 100))));
    tf.dispose(t);
  });

  test('uniforms lie in the open interval (0, 1) and pass the DKW bound sup|F̂ₙ − F| ≤ √(ln(2/10⁻⁶)/(2n)), n = 10⁶', () => {
    // n = 10⁶ resolves CDF errors down to 0.0027 (a bias u ↦ u^1.01 has sup error 0.0037).
    const N = 1_000_000;
    const u = Float64Array.from(random.uniformArray(random.key(6), N)).sort();
    expect(u[0]!).toBeGreaterThan(0);
    expect(u[N - 1]!).toBeLessThan(1);
    let d = 0;
    for (let i = 0; i < N; i++) d = Math.max(d, Math.abs((i + 1) / N - u[i]!), Math.abs(u[i]! - i / N));
    uniformLaw.lessThan(d, Math.sqrt(Math.log(2 / 1e-6) / (2 * N)), 'DKW');
  });

  test('uniforms: χ² over k = 100 equal bins below (k−1) + 5·√(2(k−1)) (mean + 5 sd of χ²_{k−1}), n = 10⁶', () => {
    const [k, N] = [100, 1_000_000];
    const counts = new Array<number>(k).fill(0);
    for (const x of random.uniformArray(random.key(7), N)) counts[Math.floor(x * k)]! += 1;
    const expected = N / k;
    const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    uniformLaw.withinSE(chi2, k - 1, Math.sqrt(2 * (k - 1)), { z: 5, strict: true, oneSided: true }, 'χ², 100 bins');
  });

  test('uniform(k, shape, lo, hi) lies in (lo, hi) with mean (lo + hi)/2 within 5 SE ((hi − lo)/√(12n))', () => {
    const [lo, hi, n] = [-2, 3, 50_000];
    const t = random.uniform(random.key(8), [n], lo, hi);
    const v = t.dataSync();
    expect(Math.min(...v)).toBeGreaterThan(lo);
    expect(Math.max(...v)).toBeLessThan(hi);
    uniformLaw.withinSE(moments(v).mean, (lo + hi) / 2, (hi - lo) / Math.sqrt(12 * n), { z: 5, strict: true }, 'mean on (−2, 3)');
    tf.dispose(t);
  });

  test('Rademacher signs are ±1 and balanced: |mean| < 5/√n', () => {
    const t = random.rademacherPerSample(random.split(random.key(9), 100), [1000]);
    const v = t.dataSync();
    expect(v.every((x) => x === 1 || x === -1)).toBe(true);
    rademacher.withinSE(moments(v).mean, 0, 1 / Math.sqrt(v.length), { z: 5, strict: true });
    tf.dispose(t);
  });

  test('permutation(k, n) is a permutation, and position 0 is uniform over n values (χ² bound as above)', () => {
    fc.assert(
      fc.property(keyArb, fc.integer({ min: 1, max: 200 }), (k, n) => {
        permutation.equal(Array.from(random.permutation(k, n)).sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
      }),
      runs(30),
    );
    const [n, trials] = [10, 20_000];
    const counts = new Array<number>(n).fill(0);
    random.split(random.key(10), trials).forEach((k) => (counts[random.permutation(k, n)[0]!]! += 1));
    const chi2 = counts.reduce((acc, c) => acc + (c - trials / n) ** 2 / (trials / n), 0);
    permutation.withinSE(chi2, n - 1, Math.sqrt(2 * (n - 1)), { z: 5, strict: true, oneSided: true });
  });
});

describe('Box–Muller in float64 arithmetic of our own (so the wasm kernel can match it bit for bit)', () => {
  /** The textbook formula with Math.log/cos/sin on the same uniforms u = (⌊w/2⁸⌋ + ½)/2²⁴. */
  const textbook = (w0: number, w1: number): [number, number] => {
    const u1 = ((w0 >>> 8) + 0.5) / 16777216;
    const u2 = ((w1 >>> 8) + 0.5) / 16777216;
    const r = Math.sqrt(-2 * Math.log(u1));
    return [r * Math.cos(2 * Math.PI * u2), r * Math.sin(2 * Math.PI * u2)];
  };
  // ln, sin, cos each within ~1 ulp (fdlibm's minimax series), 2πu₂ within 1 ulp in both: a few 1e-16 relative to the
  // radius (≤ √(2·25 ln 2) ≈ 5.9), far below float32's 6e-8.
  const close = (w0: number, w1: number): boolean => {
    const got = new Float64Array(2);
    random.boxMullerInto(w0, w1, got, 0, 2);
    const [c, s] = textbook(w0, w1);
    return Math.abs(got[0]! - c) <= 1e-14 * (1 + Math.abs(c)) && Math.abs(got[1]! - s) <= 1e-14 * (1 + Math.abs(s));
  };

  test('equals √(−2 ln u₁)·(cos 2πu₂, sin 2πu₂) within 1e-14 for any words', () => {
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), close), { seed: 3, numRuns: 20000 });
  });

  test('at the edges: u₁ and u₂ at their extremes, every quadrant and both sides of each octant boundary', () => {
    const words = [0, 0xff, 0x100, 0xffffffff, 0x7fffffff, 0x80000000];
    // k₂ = 2⌊w/2⁸⌋ + 1 = (q << 23) | low (odd): w = ((k₂ − 1)/2)·2⁸, for low just around 0, ½ and 1 of the quadrant.
    const quadrants = [0, 1, 2, 3].flatMap((q) => [1, 0x3fffff, 0x400001, 0x7fffff].map((low) => ((((q << 23) | low) - 1) / 2) * 256));
    words.forEach((w0) => [...words, ...quadrants].forEach((w1) => expect([w0, w1, close(w0, w1)]).toEqual([w0, w1, true])));
  });
});
