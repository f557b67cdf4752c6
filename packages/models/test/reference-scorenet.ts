/**
 * A float64 reference of the tutorial ScoreNet's score, net(x, t)/s(t), written from the equations in plain
 * JavaScript (NHWC, the project's weight layouts), carrying beside every value v the variance q of the error of a
 * float32 evaluation of the same network, to first order, in the probabilistic model of rounding (Higham & Mary,
 * "A new approach to probabilistic rounding error analysis", SISC 2019): every rounding multiplies its result by
 * (1 + δ), the δ independent, zero-mean, |δ| ≤ u = 2⁻²⁴, so variance ≤ u²/3; a worst-case bound r contributes r²/3.
 *
 * The worst-case (deterministic) first-order bound of this 8-layer network is useless: every group normalisation
 * multiplies it by up to |d|·e_s/s² and every convolution by Σ|w| ≈ 3, so it grows ×30 per layer (to ~10⁷ at the
 * output, measured). Random rounding errors add in quadrature instead, and the rules are:
 *
 * - a sum of n products y = Σ w_k a_k (+ b), inputs with variances q_a: q_y = Σ w_k² q_a_k + (u²/3)(n + 1)(Σ|w_k a_k| + |b|)²
 *   (each of n + 1 roundings of a partial sum no larger than Σ|w a|, any summation order);
 * - Fourier features sin/cos(2π W t): the argument (three products, π rounded) has q = (4u·|arg|)²/3·3, sin/cos add (u)²/3·4;
 * - swish z σ(z): q = swish′(z)² q_z + (6u·v)²/3 (exp, add, divide, multiply);
 * - group normalisation n = (h − μ)/s, s = √(var + ε), linearised: δn_i = Σ_j J_ij δh_j with
 *   J_ij = (δ_ij − 1/m)/s − d_i d_j/(m s³), so q_n,i = Σ_j J_ij² q_j (computed exactly from group sums), plus its own
 *   roundings: the mean (γ_{m+P} mean|h|), the centred variance (√(m+3)·u·var and Welford's 2√m·u|μ|s), √, and the
 *   affine map the project computes as x·γr + (γ(bias − μ)r + β) (4u(|h| + |μ| + 2|bias|)/s), each added as r²/3;
 * - the score out/s(t): q = q_out/s² + (12u·|score|)²/3.
 *
 * Every float32 implementation of the network (PyTorch's, the project's wasm kernels) must land within a few
 * standard deviations √q of v; the test allows 6.
 */

const U = 2 ** -24;
/** The variance of a rounding error bounded by r: r²/3 (uniform on [−r, r]). */
const rv = (r: number): number => (r * r) / 3;

/** An activation: values and error variances, NHWC [b, h, w, c] (or [b, 1, 1, c]). */
export interface Act {
  readonly v: Float64Array;
  readonly q: Float64Array;
  readonly shape: readonly [number, number, number, number];
}

const zeros = (shape: readonly [number, number, number, number]): Act => {
  const n = shape[0] * shape[1] * shape[2] * shape[3];
  return { v: new Float64Array(n), q: new Float64Array(n), shape };
};

type W = Readonly<Record<string, Float32Array>>;

/** Dense: x [b, 1, 1, in] · W [in, out] + bias. */
const dense = (x: Act, w: Float32Array, bias: Float32Array): Act => {
  const [B, , , inDim] = x.shape;
  const outDim = bias.length;
  const y = zeros([B, 1, 1, outDim]);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < outDim; o++) {
      let v = bias[o]!;
      let abs = Math.abs(bias[o]!);
      let prop = 0;
      for (let i = 0; i < inDim; i++) {
        const wi = w[i * outDim + o]!;
        v += x.v[b * inDim + i]! * wi;
        abs += Math.abs(x.v[b * inDim + i]! * wi);
        prop += wi * wi * x.q[b * inDim + i]!;
      }
      y.v[b * outDim + o] = v;
      y.q[b * outDim + o] = prop + (inDim + 1) * rv(U * abs);
    }
  return y;
};

const swish = (x: Act): Act => {
  const y = zeros(x.shape);
  for (let i = 0; i < x.v.length; i++) {
    const z = x.v[i]!;
    const sig = 1 / (1 + Math.exp(-z));
    const d = sig + z * sig * (1 - sig);
    y.v[i] = z * sig;
    y.q[i] = d * d * x.q[i]! + rv(6 * U * z * sig);
  }
  return y;
};

/** Valid convolution with stride s, kernel HWIO [3, 3, cin, cout]. */
const conv = (x: Act, w: Float32Array, cout: number, s: number): Act => {
  const [B, H, Wd, cin] = x.shape;
  const Ho = Math.floor((H - 3) / s) + 1;
  const Wo = Math.floor((Wd - 3) / s) + 1;
  const y = zeros([B, Ho, Wo, cout]);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < Ho; i++)
      for (let j = 0; j < Wo; j++)
        for (let o = 0; o < cout; o++) {
          let v = 0;
          let abs = 0;
          let prop = 0;
          for (let kh = 0; kh < 3; kh++)
            for (let kw = 0; kw < 3; kw++)
              for (let c = 0; c < cin; c++) {
                const xi = ((b * H + i * s + kh) * Wd + j * s + kw) * cin + c;
                const wk = w[((kh * 3 + kw) * cin + c) * cout + o]!;
                v += x.v[xi]! * wk;
                abs += Math.abs(x.v[xi]! * wk);
                prop += wk * wk * x.q[xi]!;
              }
          const yi = ((b * Ho + i) * Wo + j) * cout + o;
          y.v[yi] = v;
          y.q[yi] = prop + 9 * cin * rv(U * abs);
        }
  return y;
};

/** Transposed convolution with stride s onto [Ho, Wo], kernel [3, 3, cout, cin]: y[i·s + kh] += x[i] w[kh]. */
const tconv = (x: Act, w: Float32Array, cout: number, s: number, Ho: number, Wo: number): Act => {
  const [B, H, Wd, cin] = x.shape;
  const y = zeros([B, Ho, Wo, cout]);
  const abs = new Float64Array(y.v.length);
  for (let b = 0; b < B; b++)
    for (let i = 0; i < H; i++)
      for (let j = 0; j < Wd; j++)
        for (let kh = 0; kh < 3; kh++)
          for (let kw = 0; kw < 3; kw++) {
            const oi = i * s + kh;
            const oj = j * s + kw;
            if (oi >= Ho || oj >= Wo) continue;
            for (let o = 0; o < cout; o++)
              for (let c = 0; c < cin; c++) {
                const xi = ((b * H + i) * Wd + j) * cin + c;
                const wk = w[((kh * 3 + kw) * cout + o) * cin + c]!;
                const yi = ((b * Ho + oi) * Wo + oj) * cout + o;
                y.v[yi]! += x.v[xi]! * wk;
                abs[yi]! += Math.abs(x.v[xi]! * wk);
                y.q[yi]! += wk * wk * x.q[xi]!;
              }
          }
  for (let i = 0; i < y.q.length; i++) y.q[i]! += 9 * cin * rv(U * abs[i]!);
  return y;
};

/** h [b, h, w, c] + a per-channel bias [b, c] (the time embedding's Dense), one rounding. */
const addBias = (h: Act, bias: Act): Act => {
  const [B, H, Wd, C] = h.shape;
  const y = zeros(h.shape);
  for (let b = 0; b < B; b++)
    for (let p = 0; p < H * Wd; p++)
      for (let c = 0; c < C; c++) {
        const i = (b * H * Wd + p) * C + c;
        y.v[i] = h.v[i]! + bias.v[b * C + c]!;
        y.q[i] = h.q[i]! + bias.q[b * C + c]! + rv(U * y.v[i]!);
      }
  return y;
};

/** GN(h + bias) with γ, β (see the module comment). */
const groupNorm = (pre: Act, bias: Act, groups: number, g: Float32Array, beta: Float32Array, eps = 1e-5): Act => {
  const h = addBias(pre, bias);
  const [B, H, Wd, C] = h.shape;
  const per = C / groups;
  const m = H * Wd * per;
  const y = zeros(h.shape);
  for (let b = 0; b < B; b++)
    for (let grp = 0; grp < groups; grp++) {
      const idx: number[] = [];
      for (let p = 0; p < H * Wd; p++) for (let k = 0; k < per; k++) idx.push((b * H * Wd + p) * C + grp * per + k);
      const mean = idx.reduce((a, i) => a + h.v[i]!, 0) / m;
      const meanAbs = idx.reduce((a, i) => a + Math.abs(h.v[i]!), 0) / m;
      const variance = idx.reduce((a, i) => a + (h.v[i]! - mean) ** 2, 0) / m;
      const s = Math.sqrt(variance + eps);
      // Σ_j q_j, Σ_j d_j q_j, Σ_j d_j² q_j for the exact Σ_j J_ij² q_j.
      const [sq, sdq, sddq] = idx.reduce(([a, b1, c1], i) => [a + h.q[i]!, b1 + (h.v[i]! - mean) * h.q[i]!, c1 + (h.v[i]! - mean) ** 2 * h.q[i]!], [0, 0, 0]);
      // The statistics' own roundings: the mean, the centred variance (and Welford's term), the square root.
      const qMu = rv(Math.sqrt(m + per) * U * meanAbs);
      const qVar = rv(Math.sqrt(m + 3) * U * variance + 2 * Math.sqrt(m) * U * Math.abs(mean) * s) + (per > 1 ? rv(2 * Math.sqrt(m + per) * U * meanAbs * Math.sqrt(variance)) : 0);
      const qS = qVar / (4 * s * s) + rv(2 * U * s);
      idx.forEach((i) => {
        const c = i % C;
        const d = h.v[i]! - mean;
        const n = d / s;
        // Σ_j J_ij² q_j with J_ij = (δ_ij − 1/m)/s − d_i d_j/(m s³): expand the square around the diagonal term.
        const a = (j: number): number => 1 / (m * s) + (d * (h.v[j]! - mean)) / (m * s * s * s);
        const off = (sq + (2 * d * sdq) / (s * s) + (d * d * sddq) / (s * s * s * s)) / (m * m * s * s);
        const prop = h.q[i]! / (s * s) - (2 * a(i) * h.q[i]!) / s + off;
        const biasAbs = Math.abs(bias.v[b * C + c]!);
        const own = qMu / (s * s) + (d * d * qS) / (s * s * s * s) + rv((4 * U * (Math.abs(h.v[i]!) + Math.abs(mean) + 2 * biasAbs)) / s);
        y.v[i] = g[c]! * n + beta[c]!;
        y.q[i] = g[c]! * g[c]! * (Math.max(prop, 0) + own) + rv(3 * U * (Math.abs(g[c]! * n) + Math.abs(beta[c]!)));
      });
    }
  return y;
};

const concat = (a: Act, b: Act): Act => {
  const [B, H, Wd, Ca] = a.shape;
  const Cb = b.shape[3];
  const y = zeros([B, H, Wd, Ca + Cb]);
  for (let p = 0; p < B * H * Wd; p++) {
    for (let c = 0; c < Ca; c++) {
      y.v[p * (Ca + Cb) + c] = a.v[p * Ca + c]!;
      y.q[p * (Ca + Cb) + c] = a.q[p * Ca + c]!;
    }
    for (let c = 0; c < Cb; c++) {
      y.v[p * (Ca + Cb) + Ca + c] = b.v[p * Cb + c]!;
      y.q[p * (Ca + Cb) + Ca + c] = b.q[p * Cb + c]!;
    }
  }
  return y;
};

const fourier = (t: ReadonlyArray<number>, W: Float32Array): Act => {
  const half = W.length;
  const y = zeros([t.length, 1, 1, 2 * half]);
  t.forEach((tb, b) =>
    W.forEach((w, k) => {
      const arg = 2 * Math.PI * w * tb;
      // Three rounded products and π's rounding; sin/cos of the argument move by at most its error, and add 2u.
      const q = 4 * rv(U * arg) + rv(2 * U);
      y.v[b * 2 * half + k] = Math.sin(arg);
      y.v[b * 2 * half + half + k] = Math.cos(arg);
      y.q[b * 2 * half + k] = q;
      y.q[b * 2 * half + half + k] = q;
    }),
  );
  return y;
};

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * The score s(x, t) = net(x, t)/s(t) of the tutorial SDE dx = σ^t dw with its float32 error variance, for x
 * [B, 28, 28, 1] (row-major), times t, weights by the project's names. GroupNorm counts: the tutorial's 4, 32, 32,
 * 32 / 32, 32, 32 reduced to gcd with the channels.
 */
export const referenceScore = (p: W, channels: readonly [number, number, number, number], x: Float32Array, t: ReadonlyArray<number>, sigma: number): Act => {
  const [c1, c2, c3, c4] = channels;
  const B = t.length;
  const input: Act = { v: Float64Array.from(x), q: new Float64Array(x.length), shape: [B, 28, 28, 1] };
  const embed = swish(dense(fourier(t, p['embed.W']!), p['embed.dense.weight']!, p['embed.dense.bias']!));
  const block = (h: Act, d: string, norm: string, groups: number): Act => swish(groupNorm(h, dense(embed, p[`${d}.weight`]!, p[`${d}.bias`]!), groups, p[`${norm}.gamma`]!, p[`${norm}.beta`]!));
  const h1 = block(conv(input, p['conv1.weight']!, c1, 1), 'dense1', 'gnorm1', gcd(4, c1));
  const h2 = block(conv(h1, p['conv2.weight']!, c2, 2), 'dense2', 'gnorm2', gcd(32, c2));
  const h3 = block(conv(h2, p['conv3.weight']!, c3, 2), 'dense3', 'gnorm3', gcd(32, c3));
  const h4 = block(conv(h3, p['conv4.weight']!, c4, 2), 'dense4', 'gnorm4', gcd(32, c4));
  const d4 = block(tconv(h4, p['tconv4.weight']!, c3, 2, h3.shape[1], h3.shape[2]), 'dense5', 'tgnorm4', gcd(32, c3));
  const d3 = block(tconv(concat(d4, h3), p['tconv3.weight']!, c2, 2, h2.shape[1], h2.shape[2]), 'dense6', 'tgnorm3', gcd(32, c2));
  const d2 = block(tconv(concat(d3, h2), p['tconv2.weight']!, c1, 2, h1.shape[1], h1.shape[2]), 'dense7', 'tgnorm2', gcd(32, c1));
  const out = tconv(concat(d2, h1), p['tconv1.weight']!, 1, 1, 28, 28);
  const bias = p['tconv1.bias']![0]!;
  const score = zeros(out.shape);
  for (let b = 0; b < B; b++) {
    const s = Math.sqrt((sigma ** (2 * t[b]!) - 1) / (2 * Math.log(sigma)));
    for (let i = 0; i < 784; i++) {
      const k = b * 784 + i;
      const o = out.v[k]! + bias;
      score.v[k] = o / s;
      score.q[k] = (out.q[k]! + rv(U * o)) / (s * s) + rv((12 * U * o) / s);
    }
  }
  return score;
};
