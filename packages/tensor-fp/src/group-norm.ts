/**
 * Group normalisation (Wu & He 2018) with an analytic gradient, optionally fused with the per-sample channel
 * bias before it and the swish after it — the ScoreNet block swish(GN(h + Dense(embed))).
 *
 * Why: on wasm every element-wise op is a pass over memory with a freshly allocated output, and autograd
 * through GN's ~10 ops makes ~25 such passes backwards (issue 6: GN was ~20% of the forward). Here:
 * - statistics are per channel, then per group: with n = H·W, the channel means m_c = Σ_hw x / n and
 *   centred second moments v_c = Σ_hw (x − m_c)² / n (two passes, as exact as `tf.moments`; channel means by
 *   a global average pool), and by the law of total variance
 *     μ_g = mean_{c∈g} (m_c + bias_c),   σ_g² = mean_{c∈g} [v_c + (m_c + bias_c − μ_g)²];
 * - the output is one per-channel affine map of x: with r = 1/√(σ_g² + ε) and k_c = (bias_c − μ_g)·r,
 *     x̂ = x·r + k_c,   y = γ_c·x̂ + β_c = x·(γ_c r) + (γ_c k_c + β_c),   optionally z = swish(y) = y·σ(y);
 * - the gradient (dy = dz·(σ + z·(1 − σ)) through the swish) is the textbook one,
 *     dβ_c = Σ_{b,hw} dy,   dγ_c = Σ_{b,hw} dy·x̂,
 *     dx = r·(γ_c dy − mean_g(γ dy) − x̂·mean_g(γ dy·x̂)),   dbias_{b,c} = Σ_hw dx,
 *   written as dx = dy·A_c + x·B_c + C_c from the channel sums S1 = Σ_hw dy and S3 = Σ_hw dy·x
 *   (Σ_hw dy·x̂ = r·S3 + k·S1): 3 passes for the sums and 4 for dx, each per-input gradient computed only
 *   when asked for ({@link customGradLazy}).
 * On wasm (channels a multiple of 4) the passes over the activations are our own fused kernels
 * (`fused-kernels.ts`): the channel statistics in one kernel, the affine map and swish in one, and backwards
 * dy with S1, S3 in one and dx in one; only x is saved (y and σ(y) are recomputed from it). The small per-channel
 * algebra in between stays in tfjs ops, the same formulas as the tfjs-op path used on other backends. Every pass is per
 * sample, so with the threaded build a large batch is split by samples between two threads (`fused-thread.ts`), with
 * bit-identical results.
 *
 * @module group-norm
 */
import { tf } from './tf';
import { customGradLazy } from './custom-grad';
import { fusedGroupNormApplies, groupNormBackward, groupNormForward } from './fused-kernels';

/**
 * Channel means of [B, H, W, C] as a global average pool: [B, 1, 1, C]. (XNNPACK's pooling is ~10× faster on
 * wasm than Sum over the spatial axes, which transposes first; a batched matMul with ones would be faster too
 * but blocks differently for different B, so sample b's result would depend on the batch.)
 */
const channelMeans = (x: tf.Tensor4D): tf.Tensor4D => tf.avgPool(x, [x.shape[1], x.shape[2]], 1, 'valid');

/** The mean over each group's channels of a [B, 1, 1, C] statistic, repeated for every channel of the group. */
const groupMean = (v: tf.Tensor, b: number, groups: number, perGroup: number): tf.Tensor4D =>
  tf.reshape(tf.mul(tf.mean(tf.reshape(v, [b, groups, perGroup]), 2, true), tf.ones([1, 1, perGroup])), [b, 1, 1, groups * perGroup]) as tf.Tensor4D;

/** Options of {@link groupNormFused}. */
export interface GroupNormOptions {
  /** A per-sample channel bias added before normalising: [B, C] or [B, 1, 1, C]. */
  readonly bias?: tf.Tensor;
  /** Apply swish(y) = y·σ(y) after the affine map. */
  readonly swish?: boolean;
  /** ε of √(σ² + ε); default 1e-5 (PyTorch's). */
  readonly eps?: number;
}

/**
 * z = [swish](GN_{γ,β}(x + bias)) for x [B, H, W, C] with `groups` groups (see the module note for the
 * formulas); differentiable w.r.t. x, γ, β and the bias, with analytic gradients.
 * @category normalisation
 */
export const groupNormFused = (x: tf.Tensor4D, groups: number, gamma: tf.Tensor, beta: tf.Tensor, opts: GroupNormOptions = {}): tf.Tensor4D => {
  const [b, h, w, c] = x.shape;
  if (c % groups !== 0) throw new Error(`groupNorm: ${groups} groups do not divide ${c} channels`);
  if (gamma.size !== c || beta.size !== c) throw new Error(`groupNorm: γ and β need ${c} values, got ${gamma.size} and ${beta.size}`);
  if (opts.bias !== undefined && opts.bias.size !== b * c) throw new Error(`groupNorm: the bias needs [${b}, ${c}] values, got shape [${opts.bias.shape.join(', ')}]`);
  const [n, perGroup, eps, withSwish] = [h * w, c / groups, opts.eps ?? 1e-5, opts.swish === true];
  const inputs = opts.bias === undefined ? [x, gamma, beta] : [x, gamma, beta, opts.bias];
  if (fusedGroupNormApplies(x)) return groupNormByKernels(inputs, groups, eps, withSwish, opts.bias);
  return customGradLazy(([xi, gi, bi, biasIn], save) => {
    const x4 = xi as tf.Tensor4D;
    const g4 = tf.reshape(gi!, [1, 1, 1, c]);
    const b4 = tf.reshape(bi!, [1, 1, 1, c]);
    const bias4 = biasIn === undefined ? undefined : tf.reshape(biasIn, [b, 1, 1, c]);
    // statistics
    const mc = channelMeans(x4);
    const vc = channelMeans(tf.squaredDifference(x4, mc) as tf.Tensor4D);
    const mu0 = bias4 === undefined ? mc : tf.add(mc, bias4);
    const mu = groupMean(mu0, b, groups, perGroup);
    const r = tf.rsqrt(tf.add(groupMean(tf.add(vc, tf.square(tf.sub(mu0, mu))), b, groups, perGroup), eps));
    const k = tf.mul(bias4 === undefined ? tf.neg(mu) : tf.sub(bias4, mu), r);
    // y = x·(γ r) + (γ k + β), optionally z = y·σ(y)
    const y = tf.add(tf.mul(x4, tf.mul(g4, r)), tf.add(tf.mul(g4, k), b4));
    const s = withSwish ? tf.sigmoid(y) : undefined;
    const out = s === undefined ? y : tf.mul(y, s);
    save(s === undefined ? [xi!, gi!, r, k, mc] : [xi!, gi!, r, k, mc, s, out]);
    return {
      value: out,
      gradFunc: (dz, saved) => {
        const [xs, gs, rs, ks, mcs, ss, zs] = saved as tf.Tensor[];
        // through the swish: dy = dz·(σ + z·(1 − σ))
        const dy = (ss === undefined ? dz : tf.mul(dz, tf.add(ss, tf.mul(zs!, tf.sub(1, ss))))) as tf.Tensor4D;
        const s1 = tf.mul(channelMeans(dy), n); // Σ_hw dy
        const s2 = tf.add(tf.mul(rs!, tf.mul(channelMeans(tf.mul(dy, xs!) as tf.Tensor4D), n)), tf.mul(ks!, s1)); // Σ_hw dy·x̂
        const gv = tf.reshape(gs!, [1, 1, 1, c]);
        const m1 = tf.div(groupMean(tf.mul(gv, s1), b, groups, perGroup), n); // mean_g(γ dy)
        const m2 = tf.div(groupMean(tf.mul(gv, s2), b, groups, perGroup), n); // mean_g(γ dy·x̂)
        // dx = r(γ dy − m1 − x̂ m2) = dy·A + x·B + C with A = rγ, B = −r² m2, C = −r(k m2 + m1)
        const A = tf.mul(rs!, gv);
        const B = tf.neg(tf.mul(tf.square(rs!), m2));
        const C = tf.neg(tf.mul(rs!, tf.add(tf.mul(ks!, m2), m1)));
        const dx = (): tf.Tensor => tf.add(tf.add(tf.mul(dy, A), tf.mul(xs!, B)), C);
        const dGamma = (): tf.Tensor => tf.reshape(tf.sum(s2, [0, 1, 2]), gamma.shape);
        const dBeta = (): tf.Tensor => tf.reshape(tf.sum(s1, [0, 1, 2]), beta.shape);
        // Σ_hw dx = A·S1 + B·Σ_hw x + n·C, with Σ_hw x = n·m_c
        const dBias = (): tf.Tensor => tf.reshape(tf.add(tf.add(tf.mul(A, s1), tf.mul(B, tf.mul(mcs!, n))), tf.mul(C, n)), opts.bias!.shape);
        return biasIn === undefined ? [dx, dGamma, dBeta] : [dx, dGamma, dBeta, dBias];
      },
    };
  })(...inputs) as tf.Tensor4D;
};

/**
 * {@link groupNormFused} by the fused wasm kernels: one kernel forwards (statistics, coefficients, affine map, swish),
 * one backwards (dx and the sums of dγ, dβ, dbias); the same formulas (module note). Only x and the [B, 1, 1, C]
 * coefficients are saved. The backward kernel runs once for all inputs' gradients; the thunks pick its outputs.
 */
const groupNormByKernels = (inputs: ReadonlyArray<tf.Tensor>, groups: number, eps: number, withSwish: boolean, bias: tf.Tensor | undefined): tf.Tensor4D =>
  customGradLazy(([xi, gi, bi, biasIn], save) => {
    const f = groupNormForward(xi as tf.Tensor4D, gi!, bi!, biasIn, groups, eps, withSwish);
    save([xi!, gi!, f.mc, f.r, f.k, f.scale, f.shift]);
    return {
      value: f.z,
      gradFunc: (dz, saved) => {
        const [xs, gs, mc, r, k, scale, shift] = saved as tf.Tensor4D[];
        const [dx, s1, s2, dbias] = groupNormBackward(dz, xs!, gs!, { mc: mc!, r: r!, k: k!, scale: scale!, shift: shift! }, groups, withSwish);
        const dGamma = (): tf.Tensor => tf.reshape(tf.sum(s2, [0, 1, 2]), gi!.shape);
        const dBeta = (): tf.Tensor => tf.reshape(tf.sum(s1, [0, 1, 2]), bi!.shape);
        return biasIn === undefined ? [() => dx, dGamma, dBeta] : [() => dx, dGamma, dBeta, () => tf.reshape(dbias, bias!.shape)];
      },
    };
  })(...inputs) as tf.Tensor4D;

/**
 * swish(x) = x·σ(x) with the analytic gradient dx = dy·(σ + z·(1 − σ)), z = swish(x) (4 passes instead of
 * autograd's 6).
 * @category activations
 */
export const swishWithGrad = (x: tf.Tensor): tf.Tensor =>
  customGradLazy(([xi], save) => {
    const s = tf.sigmoid(xi!);
    const z = tf.mul(xi!, s);
    save([s, z]);
    return { value: z, gradFunc: (dz, [ss, zs]) => [() => tf.mul(dz, tf.add(ss!, tf.mul(zs!, tf.sub(1, ss!))))] };
  })(x);
