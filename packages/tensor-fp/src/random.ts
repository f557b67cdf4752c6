/**
 * Splittable, counter-based random keys (JAX style), built on Threefry-2x32 with 20 rounds
 * (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011).
 *
 * A key is two uint32 words. Every draw is a pure function of `(key, counter)`, so
 * - the same key always gives bit-identical numbers, on every backend (numbers are made in JavaScript);
 * - `split(key, n)` gives n statistically independent keys; `foldIn(key, d)` derives a key from data;
 * - a batch keyed per sample (`normalPerSample(keys, shape)`) gives each sample the same noise whatever the
 *   batch it is drawn in.
 *
 * Counter domains keep the streams apart: first counter word 0 = split, 1 = bits, 2 = foldIn.
 *
 * @module random
 */
import * as t from 'io-ts';
import { tf } from './tf';
import { addScaledNormalsPerSample, fusedNormalsApply, normalsAhead, normalsPerSample } from './fused-kernels';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/** A random key: two unsigned 32-bit words. Plain data; JSON-serialisable. @category model */
export type Key = readonly [number, number];

const Uint32 = new t.Type<number, number, unknown>(
  'Uint32',
  (u): u is number => typeof u === 'number' && Number.isInteger(u) && u >= 0 && u <= 0xffffffff,
  (u, c) => (typeof u === 'number' && Number.isInteger(u) && u >= 0 && u <= 0xffffffff ? t.success(u) : t.failure(u, c)),
  t.identity,
);

const KeyTuple = t.readonly(t.tuple([Uint32, Uint32]), 'Key');

/**
 * io-ts codec of a key: a pair of uint32 integers. Exactly two: `t.tuple` alone would silently drop a third
 * element, so a longer array is rejected here. @category codecs
 */
export const KeyCodec: t.Type<Key, Key, unknown> = new t.Type<Key, Key, unknown>(
  'Key',
  (u): u is Key => Array.isArray(u) && u.length === 2 && KeyTuple.is(u),
  (u, c) => (Array.isArray(u) && u.length !== 2 ? t.failure(u, c, `expected a key [uint32, uint32], got an array of ${u.length}`) : KeyTuple.validate(u, c)),
  t.identity,
);

// -------------------------------------------------------------------------------------
// Threefry-2x32
// -------------------------------------------------------------------------------------

const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;
const ROT = [
  [13, 15, 26, 6],
  [17, 29, 16, 24],
] as const;

/**
 * Threefry-2x32 block cipher with 20 rounds: (key, counter) ↦ two pseudo-random uint32 words.
 * Known-answer: threefry2x32([0,0],[0,0]) = [0x6b200159, 0x99ba4efe] (Random123 test vectors).
 * @category primitives
 */
export const threefry2x32 = (key: Key, c0: number, c1: number): [number, number] => {
  const k0 = key[0] >>> 0;
  const k1 = key[1] >>> 0;
  const ks = [k0, k1, (0x1bd11bda ^ k0 ^ k1) >>> 0] as const;
  let x0 = (c0 + ks[0]) >>> 0;
  let x1 = (c1 + ks[1]) >>> 0;
  for (let block = 0; block < 5; block++) {
    const rot = ROT[block % 2]!;
    for (let r = 0; r < 4; r++) {
      x0 = (x0 + x1) >>> 0;
      x1 = rotl(x1, rot[r]!) ^ x0;
    }
    x0 = (x0 + ks[(block + 1) % 3]!) >>> 0;
    x1 = (x1 + ks[(block + 2) % 3]! + block + 1) >>> 0;
  }
  return [x0, x1];
};

// -------------------------------------------------------------------------------------
// constructors and key arithmetic
// -------------------------------------------------------------------------------------

/** A key from an integer seed (any safe integer; negative seeds wrap). @category constructors */
export const key = (seed: number): Key => {
  const s = Math.trunc(seed);
  const lo = s >>> 0;
  const hi = Math.floor(s / 0x100000000) >>> 0;
  return threefry2x32([hi, lo], 0x5eed, 0);
};

/** n independent child keys: child_i = Threefry(key, (0, i)). @category combinators */
export const split = (k: Key, n = 2): ReadonlyArray<Key> => {
  const out: Key[] = [];
  for (let i = 0; i < n; i++) out.push(threefry2x32(k, 0, i));
  return out;
};

/** Two independent child keys, as a tuple (the common case). @category combinators */
export const split2 = (k: Key): readonly [Key, Key] => [threefry2x32(k, 0, 0), threefry2x32(k, 0, 1)];

/** A key derived from a key and a uint32 datum: Threefry(key, (2, d)). @category combinators */
export const foldIn = (k: Key, data: number): Key => threefry2x32(k, 2, data >>> 0);

/** Split every key of a batch in two: the keys to carry on, and the keys to use now. @category combinators */
export const splitEach = (keys: ReadonlyArray<Key>): readonly [ReadonlyArray<Key>, ReadonlyArray<Key>] => {
  const carry: Key[] = [];
  const use: Key[] = [];
  for (const k of keys) {
    carry.push(threefry2x32(k, 0, 0));
    use.push(threefry2x32(k, 0, 1));
  }
  return [carry, use];
};

// -------------------------------------------------------------------------------------
// raw draws (JavaScript arrays)
// -------------------------------------------------------------------------------------

/** n uint32 words from a key: word 2j, 2j+1 = Threefry(key, (1, j)). @category draws */
export const bits = (k: Key, n: number): Uint32Array => {
  const out = new Uint32Array(n);
  for (let j = 0; 2 * j < n; j++) {
    const [a, b] = threefry2x32(k, 1, j);
    out[2 * j] = a;
    if (2 * j + 1 < n) out[2 * j + 1] = b;
  }
  return out;
};

// Module-level bindings: inside Jest's sandbox, property look-ups on the global `Math` are ~10× slower.
const { sqrt, clz32, floor, min } = Math;

/**
 * Box–Muller from two Threefry words, in float64 operations of our own (no Math.log/cos/sin), so the SIMD wasm kernel
 * `normals_rows` of fused-kernels.wat computes the very same numbers, bit for bit:
 *   u₁ = k₁·2⁻²⁵, u₂ = k₂·2⁻²⁵ with k = 2⌊w / 2⁸⌋ + 1 (odd, < 2²⁵: the open interval (0, 1)),
 *   z₀ = √(−2 ln u₁)·cos 2πu₂,  z₁ = √(−2 ln u₁)·sin 2πu₂,
 * written to out[i] and out[i + 1] (the latter only if i + 1 < n).
 * ln u₁ = (e − 25) ln 2 + ln m with k₁ = 2ᵉ m, m ∈ [√½, √2) (e from the integer k₁, exact), and
 * ln m = f − (½f² − s(½f² + R(s²))), f = m − 1, s = f/(2 + f), R the minimax series of fdlibm's log (~1 ulp).
 * 2πu₂ = (q + r)·π/2 with the quadrant q = ⌊k₂/2²³⌋ and r = (k₂ mod 2²³)·2⁻²³ (exact); sin and cos of φ = ρ·π/2,
 * ρ = min(r, 1 − r) ≤ ½, by fdlibm's kernel polynomials on |φ| ≤ π/4, then swapped and signed by r > ½ and q.
 * Self-contained but for `sqrt` and `clz32`.
 * @internal
 */
const boxMuller = (w0: number, w1: number, out: Float64Array | Float32Array, i: number, n: number): void => {
  // ln u₁
  const k1 = (((w0 >>> 8) << 1) | 1) >>> 0;
  let e = 31 - clz32(k1);
  let m = k1 / (1 << e);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    e += 1;
  }
  const E = e - 25;
  const f = m - 1;
  const s = f / (2 + f);
  const z = s * s;
  const w = z * z;
  const t1 = w * (0.3999999999940942 + w * (0.22222198432149784 + w * 0.15313837699209373));
  const t2 = z * (0.6666666666666735 + w * (0.2857142874366239 + w * (0.1818357216161805 + w * 0.14798198605116586)));
  const R = t2 + t1;
  const hfsq = 0.5 * f * f;
  const lnU = E * 0.6931471803691238 - (hfsq - (s * (hfsq + R) + E * 1.9082149292705877e-10) - f);
  const radius = sqrt(-2 * lnU);
  // sin, cos of 2πu₂
  const k2 = (((w1 >>> 8) << 1) | 1) >>> 0;
  const q = k2 >>> 23;
  const low = k2 & 0x7fffff;
  const swap = low > 0x400000;
  const phi = (swap ? 0x800000 - low : low) * 1.8725351414619643e-7;
  const p2 = phi * phi;
  const sinP = phi + phi * p2 * (-0.16666666666666632 + p2 * (0.008333333333322489 + p2 * (-0.00019841269829857949 + p2 * (0.0000027557313707070068 + p2 * (-2.5050760253406863e-8 + p2 * 1.58969099521155e-10)))));
  const cosP = 1 - 0.5 * p2 + p2 * p2 * (0.041666666666666602 + p2 * (-0.001388888888887411 + p2 * (0.00002480158728947673 + p2 * (-2.7557314351390663e-7 + p2 * (2.087572321298175e-9 + p2 * -1.1359647557788195e-11)))));
  const sr = swap ? cosP : sinP;
  const cr = swap ? sinP : cosP;
  const a = (q & 1) === 1 ? cr : sr;
  const b = (q & 1) === 1 ? sr : cr;
  const sinT = (q & 2) === 2 ? -a : a;
  const cosT = ((q ^ (q >>> 1)) & 1) === 1 ? -b : b;
  out[i] = radius * cosT;
  if (i + 1 < n) out[i + 1] = radius * sinT;
};

/** {@link boxMuller}, exported for the tests that check it against Math's log, cos and sin. @internal */
export const boxMullerInto = boxMuller;

/** A uint32 word to a float in the open interval (0, 1): u = (⌊w / 2⁸⌋ + ½) / 2²⁴. */
const toOpenUnit = (w: number): number => ((w >>> 8) + 0.5) / 16777216;

/** n uniforms on the open interval (0, 1), as float64. @category draws */
export const uniformArray = (k: Key, n: number): Float64Array => {
  const w = bits(k, n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = toOpenUnit(w[i]!);
  return out;
};

/**
 * Writes n standard normals of key k into out[offset…offset+n) (a Float64Array, or a Float32Array, which rounds each
 * value as `Float32Array.from` would): normal 2j and 2j+1 by Box–Muller ({@link boxMuller}) from the words
 * Threefry(k, (1, j)). The 20 rounds of {@link threefry2x32} are unrolled here on local integers (no array per block:
 * 2–3× faster, bit-identical; the known-answer tests of `normalArray` check that).
 * @internal
 */
export const normalsInto = (k: Key, n: number, out: Float64Array | Float32Array, offset: number): void => {
  const k0 = k[0] | 0;
  const k1 = k[1] | 0;
  const k2 = 0x1bd11bda ^ k0 ^ k1;
  for (let j = 0; 2 * j < n; j++) {
    let x0 = (1 + k0) | 0;
    let x1 = (j + k1) | 0;
    // 5 blocks of 4 rounds (rotations 13, 15, 26, 6 and 17, 29, 16, 24 alternate), a key injection after each.
    x0 = (x0 + x1) | 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
    x0 = (x0 + k1) | 0; x1 = (x1 + k2 + 1) | 0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 17) | (x1 >>> 15)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 29) | (x1 >>> 3)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 16) | (x1 >>> 16)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 24) | (x1 >>> 8)) ^ x0;
    x0 = (x0 + k2) | 0; x1 = (x1 + k0 + 2) | 0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
    x0 = (x0 + k0) | 0; x1 = (x1 + k1 + 3) | 0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 17) | (x1 >>> 15)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 29) | (x1 >>> 3)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 16) | (x1 >>> 16)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 24) | (x1 >>> 8)) ^ x0;
    x0 = (x0 + k1) | 0; x1 = (x1 + k2 + 4) | 0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 13) | (x1 >>> 19)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 15) | (x1 >>> 17)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 26) | (x1 >>> 6)) ^ x0;
    x0 = (x0 + x1) | 0; x1 = ((x1 << 6) | (x1 >>> 26)) ^ x0;
    x0 = (x0 + k2) | 0; x1 = (x1 + k0 + 5) | 0;
    boxMuller(x0, x1, out, offset + 2 * j, offset + n);
  }
};

/**
 * n standard normals by Box–Muller: with u₁, u₂ ~ U(0,1), z = √(−2 ln u₁)·(cos 2πu₂, sin 2πu₂).
 * Normal 2j and 2j+1 come from counter j, so a prefix of the stream does not depend on n.
 * @category draws
 */
export const normalArray = (k: Key, n: number): Float64Array => {
  const out = new Float64Array(n);
  normalsInto(k, n, out, 0);
  return out;
};

/** A uniform integer in {0, …, n−1} from one word (multiply-shift; bias < n/2³²). @category draws */
export const randomInt = (k: Key, n: number): number => Math.floor((bits(k, 1)[0]! / 0x100000000) * n);

/** A uniformly random permutation of {0, …, n−1} (Fisher–Yates driven by the key). @category draws */
export const permutation = (k: Key, n: number): Int32Array => {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const u = uniformArray(k, n);
  for (let i = n - 1; i > 0; i--) {
    const j = min(i, floor(u[i]! * (i + 1)));
    const tmp = p[i]!;
    p[i] = p[j]!;
    p[j] = tmp;
  }
  return p;
};

// -------------------------------------------------------------------------------------
// tensors
// -------------------------------------------------------------------------------------

const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);

/** A float32 tensor of standard normals N(0, I) with the given shape. @category tensors */
export const normal = (k: Key, shape: ReadonlyArray<number>): tf.Tensor =>
  tf.tensor(Float32Array.from(normalArray(k, sizeOf(shape))), [...shape], 'float32');

/** A float32 tensor of uniforms on (lo, hi). @category tensors */
export const uniform = (k: Key, shape: ReadonlyArray<number>, lo = 0, hi = 1): tf.Tensor =>
  tf.tensor(Float32Array.from(uniformArray(k, sizeOf(shape)), (u) => lo + (hi - lo) * u), [...shape], 'float32');

/** A float32 tensor of Rademacher signs ±1 with probability ½ each. @category tensors */
export const rademacher = (k: Key, shape: ReadonlyArray<number>): tf.Tensor => {
  const w = bits(k, sizeOf(shape));
  return tf.tensor(Float32Array.from(w, (x) => (x >>> 31 === 1 ? 1 : -1)), [...shape], 'float32');
};

/** Per-sample draws: row b of the result is `draw(keys[b], sampleSize)`, whatever the batch. */
const perSample = (
  draw: (k: Key, n: number) => ArrayLike<number>,
  keys: ReadonlyArray<Key>,
  sampleShape: ReadonlyArray<number>,
): tf.Tensor => {
  const n = sizeOf(sampleShape);
  const out = new Float32Array(keys.length * n);
  keys.forEach((k, b) => out.set(draw(k, n), b * n));
  return tf.tensor(out, [keys.length, ...sampleShape], 'float32');
};

/**
 * N(0, I) noise of shape [B, ...sampleShape], sample b drawn from keys[b] alone (written straight into float32). On
 * wasm the fused SIMD kernel makes the same numbers, bit for bit, in place on the heap (sample sizes a multiple of 8).
 * @category tensors
 */
export const normalPerSample = (keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>): tf.Tensor => {
  if (keys.length > 0 && fusedNormalsApply(sampleShape)) return normalsPerSample(keys, sampleShape);
  const n = sizeOf(sampleShape);
  const out = new Float32Array(keys.length * n);
  keys.forEach((k, b) => normalsInto(k, n, out, b * n));
  return tf.tensor(out, [keys.length, ...sampleShape], 'float32');
};

/** Normals begun before they are needed ({@link normalPerSampleAhead}). Take or dispose them exactly once. @category tensors */
export interface PendingNormals {
  /** The normals, a tensor of the current scope (the same bits as normalPerSample(keys, sampleShape)). */
  readonly take: () => tf.Tensor;
  /** Drops them unused (after a throw between the start and the take). */
  readonly dispose: () => void;
}

/**
 * normalPerSample(keys, sampleShape), begun now and finished at `take`: where the fused kernels' second thread runs
 * (Node, threaded wasm), its rows are made in that thread's idle moments while this one goes on — a stochastic step
 * starts its noise before its score evaluation and takes it after. Elsewhere the normals are drawn at `take`. The same
 * bits either way, and whichever thread makes which row.
 * @category tensors
 */
export const normalPerSampleAhead = (keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>): PendingNormals => {
  const ahead = keys.length > 0 && fusedNormalsApply(sampleShape) ? normalsAhead(keys, sampleShape) : undefined;
  if (ahead !== undefined) return ahead;
  let used = false;
  const once = (): void => {
    if (used) throw new Error('normalPerSampleAhead: taken or disposed twice');
    used = true;
  };
  return {
    take: () => {
      once();
      return normalPerSample(keys, sampleShape);
    },
    dispose: once,
  };
};

/**
 * x + c·z with z = normalPerSample(keys, x's sample shape): the noise term of a stochastic step, with the bits of
 * tf.add(x, tf.mul(z, c)); on wasm one fused kernel (no z tensor, no two more passes). @category tensors
 */
export const addNormalPerSample = (x: tf.Tensor, keys: ReadonlyArray<Key>, c: number): tf.Tensor => {
  const sampleShape = x.shape.slice(1);
  if (keys.length > 0 && keys.length === x.shape[0] && x.dtype === 'float32' && fusedNormalsApply(sampleShape)) return addScaledNormalsPerSample(x, keys, c);
  return tf.tidy(() => tf.add(x, tf.mul(normalPerSample(keys, sampleShape), c)));
};

/** U(0,1) noise of shape [B, ...sampleShape], sample b drawn from keys[b] alone. @category tensors */
export const uniformPerSample = (keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>): tf.Tensor =>
  perSample(uniformArray, keys, sampleShape);

/** Rademacher (±1) noise of shape [B, ...sampleShape], sample b drawn from keys[b] alone. @category tensors */
export const rademacherPerSample = (keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>): tf.Tensor =>
  perSample((k, n) => Float32Array.from(bits(k, n), (x) => (x >>> 31 === 1 ? 1 : -1)), keys, sampleShape);
