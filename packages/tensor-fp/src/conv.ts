/**
 * 2-D convolutions that are fast and differentiable on every backend, written with plain `conv2d` calls.
 *
 * Conventions (as tfjs): NHWC tensors, conv filters HWIO `[k_h, k_w, C_in, C_out]`, and
 *   conv2d:           y[b,i,j,o] = Σ_{p,q,c} x̄[b, s·i+p, s·j+q, c] · f[p,q,c,o],
 * where x̄ is x padded by (top, left) = the 'same'/'valid' padding of tfjs. The transposed convolution is the
 * adjoint of conv2d with the same filter (`f` read as `[k_h, k_w, C_out_of_transpose, C_in_of_transpose]`):
 *   conv2dTranspose:  z[b, s·i+p−top, s·j+q−left, c] += x[b,i,j,o] · f[p,q,c,o].
 *
 * Why (issue 6): on the wasm backend of tfjs 4.22, `conv2dTranspose` (= `Conv2DBackpropInput`) is a scalar
 * loop with neither XNNPACK nor threads, and `Conv2DBackpropFilter` does not exist at all, so conv nets cannot
 * be trained there. Here every one of these maps is a plain (XNNPACK, multi-threaded) `conv2d`:
 * - the transposed conv splits the output by sub-pixel phase (U mod s): phase r only sees the taps
 *   p ≡ r (mod s), so it is a stride-1 valid conv of the (slightly padded) input with the flipped, sub-sampled
 *   filter (made of slices of the filter: no Reverse/StridedSlice, scalar loops on wasm); the s² phases are
 *   interleaved by concat + reshape (no zero-dilated input, no wasted MACs). The phase filters of a filter that is
 *   used again (a sampler's fixed weights) are made once and kept while it lives (`derived.ts`, issue 11): every score
 *   evaluation rebuilt them with ~16 small copy kernels, and XNNPACK, whose operators are cached by filter buffer,
 *   repacked each new phase filter. With stride 1 and one or two
 *   output channels (the ScoreNet's last layer) it is a matMul and a small overlap-add conv instead, since a
 *   conv with a single output column runs XNNPACK at a fraction of its speed;
 * - the filter gradient ∂L/∂f[p,q,c,o] = Σ_{b,i,j} x̄[b,s·i+p,s·j+q,c] · dy[b,i,j,o] is, on wasm where it is the
 *   fastest (conv1, tconv1, conv2, tconv2 and conv3 of the half-width ScoreNet: 1.2–3.3× faster than the other two), one pass of
 *   our own SIMD kernel straight from NHWC x and dy (fused-kernels.ts: no transposes, no padded or im2col copies);
 *   otherwise either a conv of x̄ with
 *   batch and channels swapped (x̄ᵀ: [C, H, W, B]) by the filter dyᵀ: [H_o, W_o, B, O] dilated by s, or one
 *   matMul Xᵀ·dy with the im2col matrix X of x̄ made by a depthwise conv with a 0/1 filter — whichever is faster
 *   for the geometry ({@link filterGradientMethod});
 * - gradients are supplied through {@link customGradLazy}, so ∇ₓ alone does not pay for filter gradients;
 * - 'same' padding is passed to `tf.conv2d` as explicit paddings: the wasm kernel's own 'same' returns zeros
 *   for some geometries (a tfjs 4.22 bug, e.g. a 2×1 filter with stride 2 on a 2×4 input).
 *
 * Every function here is batch-invariant on wasm: sample b's result is bit-identical whatever the batch.
 *
 * On the `tensorflow` backend (tfjs-node) the native kernels are used unchanged; see {@link convKernels}.
 *
 * @module conv
 */
import { tf } from './tf';
import { customGradLazy } from './custom-grad';
import { envVar } from './env';
import { derivedOnce } from './derived';
import { convFilterGradient, fusedKernelsReady, interleavePhases, overlapAdd, transposeConv, transposeConvServes } from './fused-kernels';

// -------------------------------------------------------------------------------------
// geometry
// -------------------------------------------------------------------------------------

/** Padding mode of tfjs convolutions. @category model */
export type Padding = 'valid' | 'same';

/** An NHWC shape. @category model */
export type Shape4 = readonly [number, number, number, number];

/** Padding and output size of a conv along one spatial axis. @category model */
export interface AxisGeometry {
  /** Zero rows added before the input (tfjs puts the odd one after). */
  readonly before: number;
  /** Zero rows added after the input ('same' only; 'valid' pads nothing). */
  readonly after: number;
  /** Output length. */
  readonly out: number;
}

/**
 * Geometry of a conv along one axis, as tfjs computes it (input length n, kernel k, stride s):
 * 'valid': out = ⌊(n − k)/s⌋ + 1, no padding; 'same': out = ⌈n/s⌉, total padding
 * P = max(0, (out − 1)·s + k − n) split as before = ⌊P/2⌋, after = P − before.
 * @category geometry
 */
export const axisGeometry = (n: number, k: number, s: number, pad: Padding): AxisGeometry => {
  if (pad === 'valid') return { before: 0, after: 0, out: Math.floor((n - k) / s) + 1 };
  const out = Math.ceil(n / s);
  const total = Math.max(0, (out - 1) * s + k - n);
  const before = Math.floor(total / 2);
  return { before, after: total - before, out };
};

/** Output shape of `conv2d(x, f, s, pad)`: [B, H_o, W_o, C_out]. @category geometry */
export const conv2dOutputShape = (xShape: Shape4, filterShape: Shape4, s: number, pad: Padding): Shape4 => [
  xShape[0],
  axisGeometry(xShape[1], filterShape[0], s, pad).out,
  axisGeometry(xShape[2], filterShape[1], s, pad).out,
  filterShape[3],
];

const shape4 = (x: tf.Tensor): Shape4 => {
  if (x.rank !== 4) throw new Error(`conv: expected a rank-4 NHWC tensor, got shape [${x.shape.join(',')}]`);
  return x.shape as unknown as Shape4;
};

/**
 * Which kernels serve the convolutions on the current backend:
 * - `native`: tfjs' own ops and gradients — on `tensorflow` (tfjs-node), or everywhere when
 *   `SCORE_SDE_CONV=tfjs` (for comparisons; conv-filter gradients then fail on wasm, as in tfjs);
 * - `cpu`: the cpu backend's own transposed conv (its scalar loop beats its conv2d there), with the dilated-conv
 *   filter gradient (its `Conv2DBackpropFilter` is 10–25× slower on the ScoreNet's shapes);
 * - `plain-conv`: everything as plain conv2d calls (wasm, and any other backend).
 * @category configuration
 */
export type ConvKernels = 'native' | 'cpu' | 'plain-conv';

/** The kernels {@link conv2d} and {@link conv2dTranspose} use now (see {@link ConvKernels}). @category configuration */
export const convKernels = (): ConvKernels => {
  const backend = tf.getBackend();
  if (backend === 'tensorflow' || envVar('SCORE_SDE_CONV') === 'tfjs') return 'native';
  return backend === 'cpu' ? 'cpu' : 'plain-conv';
};

/**
 * `tf.conv2d` with 'same' given as explicit paddings: the wasm kernel's own 'same' (XNNPACK's TF-SAME flag)
 * returns zeros for some geometries (e.g. a 2×1 filter, stride 2, on a 2×4 input), explicit paddings do not.
 */
const plainConv2d = (x: tf.Tensor4D, f: tf.Tensor4D, s: number, pad: Padding): tf.Tensor4D => {
  if (pad === 'valid') return tf.conv2d(x, f, s, 'valid');
  const [, h, w] = shape4(x);
  const gh = axisGeometry(h, f.shape[0], s, pad);
  const gw = axisGeometry(w, f.shape[1], s, pad);
  return tf.conv2d(x, f, s, [
    [0, 0],
    [gh.before, gh.after],
    [gw.before, gw.after],
    [0, 0],
  ]);
};

// -------------------------------------------------------------------------------------
// plain-conv kernels (forward only; differentiation is supplied below)
// -------------------------------------------------------------------------------------

/** Number of taps p ∈ [0, k) with p ≡ r (mod s): M_r = ⌈(k − r)/s⌉. */
const tapsOfPhase = (k: number, s: number, r: number): number => Math.max(0, Math.ceil((k - r) / s));

/**
 * The conv filters of the s² sub-pixel phases of a transposed conv with filter f [k_h, k_w, C_z, C_x]: phase
 * (r, q) (index r·s + q) has M_r × M_q taps (M_r = ⌈(k − r)/s⌉; undefined when 0),
 *   g[m, m', o, c] = f[r + s·(M_r − 1 − m), q + s·(M_q − 1 − m'), c, o],
 * its taps in reverse order with in/out channels swapped. Made of one transpose of f, a split into its
 * k_h·k_w contiguous [C_x, C_z] tap blocks and, per phase, a concat of its blocks along the leading axis: every
 * op is a plain copy (on wasm, Reverse/StridedSlice/Gather are scalar loops costing ~100 ms per ScoreNet
 * filter, and each Slice copies its whole input out of the heap first).
 */
const makePhaseFilters = (f: tf.Tensor4D, s: number): ReadonlyArray<tf.Tensor4D | undefined> => {
  const [kh, kw, cz, cx] = shape4(f);
  const swapped = tf.transpose(f, [0, 1, 3, 2]); // [k_h, k_w, C_x, C_z]
  // The k_h·k_w taps as [1, 1, C_x, C_z] blocks: one split along the leading axis (contiguous parts).
  const taps = s === 1 ? [] : tf.split(tf.reshape(swapped, [kh * kw, 1, cx, cz]), kh * kw, 0);
  const tap = (p: number, q: number): tf.Tensor => taps[p * kw + q]!;
  return Array.from({ length: s * s }, (_, i) => {
    const [r, q] = [Math.floor(i / s), i % s];
    const [th, tw] = [tapsOfPhase(kh, s, r), tapsOfPhase(kw, s, q)];
    if (th === 0 || tw === 0) return undefined;
    if (s === 1) return tf.reverse(swapped, [0, 1]) as tf.Tensor4D;
    const mine = Array.from({ length: th * tw }, (_, j) => tap(r + s * (th - 1 - Math.floor(j / tw)), q + s * (tw - 1 - (j % tw))));
    return tf.reshape(mine.length === 1 ? mine[0]! : tf.concat(mine, 0), [th, tw, cx, cz]) as tf.Tensor4D;
  });
};

/**
 * {@link makePhaseFilters}, made once per filter buffer and stride while the filter lives and is used again (a sampler's
 * fixed weights: `derived.ts`), so neither the copies nor XNNPACK's repacking of a new filter repeat at every call.
 */
const phaseFilters = (f: tf.Tensor4D, s: number): ReadonlyArray<tf.Tensor4D | undefined> => derivedOnce(`phase-filters/s=${s}`, f, () => makePhaseFilters(f, s));

/**
 * A stride-1 transposed conv with few output channels (C_z ≪ C_x, e.g. the ScoreNet's last layer, C_z = 1),
 * where a conv with C_z outputs makes a GEMM with C_z columns (XNNPACK: ~1 GMAC/s). Instead:
 *   T = x·F, F[o, (p, q, c)] = f[p, q, c, o]      (one matMul: each input pixel's k_h·k_w·C_z contributions)
 *   z̄[u, v, c] = Σ_{p,q} T[u − p, v − q, (p, q, c)]   (their overlap-add: a conv of T, zero-padded by k − 1,
 *                                                     with the fixed 0/1 filter E[i, j, (p, q, c'), c] =
 *                                                     [p = k_h − 1 − i, q = k_w − 1 − j, c' = c])
 * then the window [top, top + H_out) is cut out (rows past the full length k − 1 + H_in are zero).
 */
const transposeFewOutputs = (x: tf.Tensor4D, f: tf.Tensor4D, outShape: Shape4, pad: Padding): tf.Tensor4D =>
  tf.tidy(() => {
    const [b, hIn, wIn, cx] = shape4(x);
    const [kh, kw, cz] = shape4(f);
    const gh = axisGeometry(outShape[1], kh, 1, pad);
    const gw = axisGeometry(outShape[2], kw, 1, pad);
    const taps = kh * kw * cz;
    const [F] = derivedOnce('few-outputs-matrix', f, () => [tf.reshape(tf.transpose(f, [3, 0, 1, 2]), [cx, taps])]);
    const T = tf.reshape(tf.matMul(tf.reshape(x, [b * hIn * wIn, cx]), F), [b, hIn, wIn, taps]);
    // On wasm the overlap-add is one pass of our own kernel (fused-kernels.ts); elsewhere the 0/1-filter conv below.
    if (fusedKernelsReady()) return overlapAdd(T as tf.Tensor4D, kh, kw, outShape[1], outShape[2], gh.before, gw.before);
    const e = new Float32Array(kh * kw * taps * cz);
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++)
        for (let c = 0; c < cz; c++) e[((i * kw + j) * taps + ((kh - 1 - i) * kw + (kw - 1 - j)) * cz + c) * cz + c] = 1;
    // full length L = H_in + k − 1; rows up to top + H_out are needed.
    const [extraH, extraW] = [Math.max(0, gh.before + outShape[1] - (hIn + kh - 1)), Math.max(0, gw.before + outShape[2] - (wIn + kw - 1))];
    // T zero-padded by k − 1 (+ the extra rows) as the conv's own explicit padding: no padded copy of T.
    const full = tf.conv2d(T as tf.Tensor4D, tf.tensor4d(e, [kh, kw, taps, cz]), 1, [
      [0, 0],
      [kh - 1, kh - 1 + extraH],
      [kw - 1, kw - 1 + extraW],
      [0, 0],
    ]);
    return tf.slice(full, [0, gh.before, gw.before, 0], [b, outShape[1], outShape[2], cz]);
  });

/** Whether {@link transposeFewOutputs} pays: stride 1 and C_z ≤ 2 with C_x ≥ 4·C_z. */
const fewOutputs = (f: tf.Tensor4D, s: number): boolean => s === 1 && f.shape[2] <= 2 && f.shape[3] >= 4 * f.shape[2];

/**
 * Transposed conv as s² stride-1 sub-pixel convs (Shi et al. 2016's sub-pixel view of a strided transposed
 * conv). In padded output coordinates U = u + top, write U = s·a + r; then z̄[s·a+r] = Σ_m x[a − m]·f[r + s·m],
 * a valid correlation of x (padded by M_r − 1 before) with the phase's taps in reverse order
 * ({@link phaseFilters}). Each phase yields `rows` = max(⌈(top + H_out)/s⌉, H_in) rows; the phases are
 * interleaved (z̄[s·a + r] ← phase r, row a) by concat along channels + reshape, and the window
 * [top, top + H_out) is cut out. Output rows no tap reaches (tfjs' 'output padding') are exact zeros.
 * No zero-dilated input: the convs do exactly the transposed conv's k_h·k_w MACs per input pixel.
 * The forward pass only (no custom gradient): use {@link conv2dTranspose} to differentiate.
 * @category kernels
 */
export const transposeByPhases = (x: tf.Tensor4D, f: tf.Tensor4D, outShape: Shape4, s: number, pad: Padding): tf.Tensor4D =>
  fewOutputs(f, s) ? transposeFewOutputs(x, f, outShape, pad) : tf.tidy(() => {
    const [b, hIn, wIn] = shape4(x);
    const [kh, kw, cz] = shape4(f);
    const gh = axisGeometry(outShape[1], kh, s, pad);
    const gw = axisGeometry(outShape[2], kw, s, pad);
    const rowsH = Math.max(Math.ceil((gh.before + outShape[1]) / s), hIn);
    const rowsW = Math.max(Math.ceil((gw.before + outShape[2]) / s), wIn);
    const filters = phaseFilters(f, s);
    const phaseConv = (g: tf.Tensor4D): tf.Tensor4D => {
      const [th, tw] = [g.shape[0], g.shape[1]];
      // valid conv of x padded by (M − 1, rows − H_in): H_in + rows − H_in = rows outputs. The padding is the
      // conv's own (XNNPACK reads zeros for it): a tf.pad would copy x once per phase.
      const padding: [[number, number], [number, number], [number, number], [number, number]] = [
        [0, 0],
        [th - 1, rowsH - hIn],
        [tw - 1, rowsW - wIn],
        [0, 0],
      ];
      return padding.some(([u, v]) => u + v > 0) ? tf.conv2d(x, g, 1, padding) : tf.conv2d(x, g, 1, 'valid');
    };
    // On wasm with the kernel thread, one kernel sums every phase where Conv2D would and stores it in place; else the
    // interleaving (and the window) is one pass of our own kernel (fused-kernels.ts).
    if (x.dtype === 'float32' && f.dtype === 'float32' && transposeConvServes(cz)) return transposeConv(x, filters, s, rowsH, rowsW, outShape, gh.before, gw.before);
    if (fusedKernelsReady()) {
      return interleavePhases(filters.map((g) => (g === undefined ? undefined : phaseConv(g))), s, rowsH, rowsW, outShape, gh.before, gw.before);
    }
    const phase = (g: tf.Tensor4D | undefined): tf.Tensor4D => (g === undefined ? tf.zeros([b, rowsH, rowsW, cz]) : phaseConv(g));
    // Interleave: columns by concatenating phases along channels ([…, a', (q, C)] → reshape […, s·a' + q, C]),
    // rows likewise one level up. (A 6-D transpose instead is ~15× slower on wasm: only ranks ≤ 4 are fast.)
    const rowsOfPhase = (r: number): tf.Tensor => {
      const cols = Array.from({ length: s }, (_, q) => phase(filters[r * s + q]));
      return tf.reshape(s === 1 ? cols[0]! : tf.concat(cols, 3), [b, rowsH, 1, s * rowsW * cz]);
    };
    const rowBlocks = Array.from({ length: s }, (_, r) => rowsOfPhase(r));
    const full = tf.reshape(s === 1 ? rowBlocks[0]! : tf.concat(rowBlocks, 2), [b, s * rowsH, s * rowsW, cz]) as tf.Tensor4D;
    const exact = gh.before === 0 && gw.before === 0 && s * rowsH === outShape[1] && s * rowsW === outShape[2];
    return exact ? full : tf.slice(full, [0, gh.before, gw.before, 0], [b, outShape[1], outShape[2], cz]);
  });

/**
 * ∂L/∂f of y = conv2d(x, f, s, pad) given dy = ∂L/∂y, as a dilated convolution:
 *   df[p,q,c,o] = Σ_{b,i,j} x̄[b, s·i+p, s·j+q, c] · dy[b,i,j,o]
 * = conv2d(x̄ᵀ, dyᵀ, stride 1, dilation s)[c,p,q,o] with x̄ᵀ = x̄ as [C,H,W,B] and dyᵀ = dy as [H_o,W_o,B,O];
 * the result (cut to k_h × k_w: rows of x̄ no output reads are dropped) is put back to HWIO.
 * As a GEMM this has only C·k_h·k_w rows against a long reduction of B·H_o·W_o: it suits many input channels
 * over a large image (the ScoreNet's 26×26 and 12×12 levels with 32 channels).
 * @category kernels
 */
export const filterGradientDilated = (x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: Shape4, s: number, pad: Padding): tf.Tensor4D =>
  tf.tidy(() => {
    const [, h, w] = shape4(x);
    const [kh, kw, c, o] = filterShape;
    const gh = axisGeometry(h, kh, s, pad);
    const gw = axisGeometry(w, kw, s, pad);
    const xt = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D;
    const padded = gh.before + gh.after + gw.before + gw.after > 0 ? tf.pad(xt, [[0, 0], [gh.before, gh.after], [gw.before, gw.after], [0, 0]]) : xt;
    const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
    const full = tf.conv2d(padded, dyt, 1, 'valid', 'NHWC', [s, s]);
    const cut = full.shape[1] === kh && full.shape[2] === kw ? full : tf.slice(full, [0, 0, 0, 0], [c, kh, kw, o]);
    return tf.transpose(cut, [1, 2, 0, 3]) as tf.Tensor4D;
  });

/**
 * ∂L/∂f of y = conv2d(x, f, s, pad) as one matrix product with the im2col matrix of x̄:
 *   X[(b,i,j), (c,p,q)] = x̄[b, s·i+p, s·j+q, c],   df[(c,p,q), o] = Σ_{(b,i,j)} X[(b,i,j), (c,p,q)] · dy[(b,i,j), o],
 * i.e. df = Xᵀ·DY, reordered to HWIO. X is built without gathers or strided slices: it is the depthwise conv of
 * x̄ (stride s) with the fixed 0/1 filter E[p', q', c, (p,q)] = [p' = p, q' = q], whose channel multiplier
 * k_h·k_w copies each tap into its own output channel (c·k_h·k_w + p·k_w + q, tfjs' depthwise order). Every
 * product of the sum is exact-input float32, so it equals {@link filterGradientDilated} up to summation order.
 * A GEMM with C·k_h·k_w rows and O columns over B·H_o·W_o: it suits few input channels (the first and last
 * layers, C = 1, where the dilated conv has only 9 rows) and small images.
 * @category kernels
 */
export const filterGradientIm2col = (x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: Shape4, s: number, pad: Padding): tf.Tensor4D =>
  tf.tidy(() => {
    const [, h, w] = shape4(x);
    const [b, ho, wo] = shape4(dy);
    const [kh, kw, c, o] = filterShape;
    const gh = axisGeometry(h, kh, s, pad);
    const gw = axisGeometry(w, kw, s, pad);
    const taps = kh * kw;
    const e = new Float32Array(taps * c * taps);
    for (let t = 0; t < taps; t++) for (let ch = 0; ch < c; ch++) e[(t * c + ch) * taps + t] = 1;
    const padded = gh.before + gh.after + gw.before + gw.after > 0 ? tf.pad(x, [[0, 0], [gh.before, gh.after], [gw.before, gw.after], [0, 0]]) : x;
    // The valid depthwise conv of x̄ has ⌊(H̄ − k)/s⌋ + 1 = H_o rows (the geometry of the forward conv).
    const cols = tf.depthwiseConv2d(padded as tf.Tensor4D, tf.tensor4d(e, [kh, kw, c, taps]), s, 'valid');
    const m = b * ho * wo;
    const df = tf.matMul(tf.reshape(cols, [m, c * taps]), tf.reshape(dy, [m, o]), true, false); // [(c,p,q), o]
    return tf.transpose(tf.reshape(df, [c, kh, kw, o]), [1, 2, 0, 3]) as tf.Tensor4D;
  });

/**
 * ∂L/∂f of y = conv2d(x, f, s, pad) in one pass of our own wasm SIMD kernel, straight from NHWC x and dy:
 *   df[p,q,c,o] = Σ_{b,i,j} x̄[b, s·i+p, s·j+q, c] · dy[b,i,j,o]
 * with x̄'s padding never materialised (the kernel visits, per tap, only the (i, j) whose input pixel lies inside x)
 * and no transpose or im2col copy ({@link convFilterGradient} of fused-kernels.ts). Wasm only, O a multiple of 4
 * ({@link filterGradientMethod} checks both); large calls are shared with the fused kernels' second thread (issue 11:
 * by rows of df, bit-identical to one thread). Every product is exact-input float32, so it equals
 * {@link filterGradientDilated} and {@link filterGradientIm2col} up to summation order.
 * @category kernels
 */
export const filterGradientFused = (x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: Shape4, s: number, pad: Padding): tf.Tensor4D => {
  const xShape = shape4(x);
  const [, h, w] = xShape;
  const [kh, kw] = filterShape;
  const expected = conv2dOutputShape(xShape, filterShape, s, pad);
  if (xShape[3] !== filterShape[2] || shape4(dy).some((d, i) => d !== expected[i])) {
    throw new Error(
      `filterGradientFused: the conv of x [${xShape.join(',')}] by a filter [${filterShape.join(',')}] (stride ${s}, '${pad}') has output [${expected.join(',')}], ` +
        `not dy's shape [${dy.shape.join(',')}]`,
    );
  }
  return convFilterGradient(x, dy, kh, kw, s, axisGeometry(h, kh, s, pad).before, axisGeometry(w, kw, s, pad).before);
};

/**
 * The three ways of computing a conv filter gradient ({@link filterGradientDilated}, {@link filterGradientIm2col},
 * {@link filterGradientFused}).
 * @category configuration
 */
export type FilterGradientMethod = 'dilated' | 'im2col' | 'fused';

/**
 * The fastest filter-gradient kernel for a geometry on wasm (measured per ScoreNet layer at batch 64, issues 6 and 11,
 * and for the fused kernel below), with n = B·H_o·W_o the length of the reduction:
 * - {@link filterGradientFused} when our fused kernels are ready (`fused`, by default {@link fusedKernelsReady}), O is a
 *   multiple of 4, and n > 4096 or C·O ≤ 2048. Its single thread runs at ~25–30 GMAC/s whatever the shape; XNNPACK's two
 *   threads run the dilated conv (9·C output rows, a long reduction) and the im2col GEMM (dy repacked, X transposed and
 *   built by a depthwise conv on every call) far below that on the long reductions of the 28×28/26×26 level, and the GEMM
 *   only overtakes it on the short reductions of the 12×12 → 5×5 and 5×5 → 2×2 levels once C·O reaches 4096. Measured,
 *   batch 64, 2 threads, quiet machine, the best of 3 runs of min-of-15 calls, ms, dilated / im2col / fused (`npm run
 *   bench -- filter-gradient --wide`), at the half-width ScoreNet's filter gradients:
 *   conv1 [3,3,1,16] 2.20 / 0.67 / 0.24, tconv1 [3,3,1,32] 4.29 / 0.82 / 0.48, conv2 [3,3,16,32] 4.83 / 10.83 / 1.45,
 *   tconv2 [3,3,16,64] 9.23 / 11.77 / 3.18, conv3 [3,3,32,64] 1.99 / 1.33 / 1.12 — fused; tconv3 [3,3,32,128]
 *   3.36 / 1.96 / 2.40 and conv4, tconv4 [3,3,64,128] 0.81 / 0.99 / 0.87 — not. At full width (channels 32–256): conv1,
 *   conv2, tconv2 1.6–2.2× faster fused, tconv1 1.15 / 1.10 (im2col / fused), and conv3, tconv3, conv4 1.3–1.6× slower
 *   (C·O ≥ 8192); at the 26×26 level with O = 4, 8, 12, 20, 1.8–3.1× faster. (Under load from other processes the
 *   single-threaded kernel wins everywhere, as XNNPACK loses its second thread; the rule follows the quiet figures.)
 *   With the fused kernels' second thread (issue 11) the fused kernel is 1.6–1.9× faster still, and would win at tconv3
 *   and conv4 / tconv4 too (2.41 → 1.26 and 0.85 → 0.47 ms); the rule deliberately does not look at that thread: the
 *   methods sum in different orders, and a gradient's bits must not depend on the thread count or on whether the lazily
 *   started thread is up yet.
 * - Otherwise: the im2col GEMM when n ≤ 4096, the dilated conv otherwise. The GEMM's second operand dy [n, O] is
 *   repacked by XNNPACK on every call and its first one transposed (wasm has no transposed GEMM), which costs more than
 *   the dilated conv saves once the reduction is long: the 12×12 → 5×5 and 5×5 → 2×2 levels (n = 1600 and 256) are
 *   35–45% faster as GEMMs, the 28×28 and 26×26 ones (43264 and 9216) slower — except with one or two input channels
 *   (the first layer, and the last transposed conv's filter gradient): the dilated conv then has only k_h·k_w·C output
 *   rows, XNNPACK's worst shape, and the GEMM was 2–6× faster at batch 64 (issue 11: 3.3 → 1.6–2.0 ms and 5.4–7.2 →
 *   0.9–2.4 ms, min of 15, 2 threads).
 * @category configuration
 */
export const filterGradientMethod = (filterShape: Shape4, dyShape: Shape4, fused: boolean = fusedKernelsReady()): FilterGradientMethod => {
  const n = dyShape[0] * dyShape[1] * dyShape[2];
  const [, , c, o] = filterShape;
  if (fused && o % 4 === 0 && (n > 4096 || c * o <= 2048)) return 'fused';
  return n <= 4096 || c <= 2 ? 'im2col' : 'dilated';
};

/** ∂L/∂f of y = conv2d(x, f, s, pad) given dy, by the method {@link filterGradientMethod} picks. */
const filterGradient = (x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: Shape4, s: number, pad: Padding): tf.Tensor4D => {
  const method = filterGradientMethod(filterShape, shape4(dy));
  if (method === 'fused') return filterGradientFused(x, dy, filterShape, s, pad);
  return method === 'im2col' ? filterGradientIm2col(x, dy, filterShape, s, pad) : filterGradientDilated(x, dy, filterShape, s, pad);
};

// -------------------------------------------------------------------------------------
// differentiable convolutions
// -------------------------------------------------------------------------------------

/**
 * y = conv2d(x, f, s, pad) (NHWC, HWIO filter), the forward pass being tfjs' own `conv2d`; gradients:
 *   ∂L/∂x = conv2dTranspose(dy, f, shape(x), s, pad)  (sub-pixel phases, itself differentiable),
 *   ∂L/∂f = Σ_{b,i,j} x̄[b,s·i+p,s·j+q,c] · dy[b,i,j,o] by the kernel {@link filterGradientMethod} picks (see the
 *   module note), each computed only when needed.
 * Numerically equal to `tf.conv2d` and its gradients up to float32 summation order.
 * @category convolution
 */
export const conv2d = (x: tf.Tensor4D, f: tf.Tensor4D, s: number, pad: Padding): tf.Tensor4D => {
  if (convKernels() === 'native') return tf.conv2d(x, f, s, pad);
  const xShape = shape4(x);
  const fShape = shape4(f);
  return customGradLazy(([xi, fi], save) => {
    save([xi!, fi!]);
    return {
      value: plainConv2d(xi as tf.Tensor4D, fi as tf.Tensor4D, s, pad),
      gradFunc: (dy, [xs, fs]) => [
        () => conv2dTranspose(dy as tf.Tensor4D, fs as tf.Tensor4D, xShape, s, pad),
        () => filterGradient(xs as tf.Tensor4D, dy as tf.Tensor4D, fShape, s, pad),
      ],
    };
  })(x, f) as tf.Tensor4D;
};

/**
 * z = conv2dTranspose(x, f, outShape, s, pad): the adjoint of conv2d(·, f, s, pad) from `outShape` to
 * shape(x) (filter `[k_h, k_w, C_z, C_x]`; output padding is expressed by `outShape`), computed as s²
 * sub-pixel convs; gradients:
 *   ∂L/∂x = conv2d(dz, f, s, pad),   ∂L/∂f[p,q,c,o] = Σ dz̄[b, s·i+p, s·j+q, c] · x[b,i,j,o]
 * (the filter gradient of conv2d with input dz and output gradient x), each computed only when needed.
 * Numerically equal to `tf.conv2dTranspose` and its gradients up to float32 summation order.
 * @category convolution
 */
export const conv2dTranspose = (x: tf.Tensor4D, f: tf.Tensor4D, outShape: Shape4, s: number, pad: Padding): tf.Tensor4D => {
  const kernels = convKernels();
  if (kernels === 'native') return tf.conv2dTranspose(x, f, [...outShape], s, pad);
  const xShape = shape4(x);
  const fShape = shape4(f);
  const expected = conv2dOutputShape(outShape, fShape, s, pad);
  if (expected[1] !== xShape[1] || expected[2] !== xShape[2] || fShape[3] !== xShape[3] || fShape[2] !== outShape[3] || outShape[0] !== xShape[0]) {
    throw new Error(
      `conv2dTranspose: output shape [${outShape.join(',')}] with filter [${fShape.join(',')}], stride ${s}, '${pad}' ` +
        `maps back to [${expected.join(',')}], not to the input shape [${xShape.join(',')}]`,
    );
  }
  return customGradLazy(([xi, fi], save) => {
    save([xi!, fi!]);
    return {
      value:
        kernels === 'cpu'
          ? tf.conv2dTranspose(xi as tf.Tensor4D, fi as tf.Tensor4D, [...outShape], s, pad)
          : transposeByPhases(xi as tf.Tensor4D, fi as tf.Tensor4D, outShape, s, pad),
      gradFunc: (dz, [xs, fs]) => [
        () => conv2d(dz as tf.Tensor4D, fs as tf.Tensor4D, s, pad),
        () => filterGradient(dz as tf.Tensor4D, xs as tf.Tensor4D, fShape, s, pad),
      ],
    };
  })(x, f) as tf.Tensor4D;
};
