/**
 * Latent interpolation through the probability-flow ODE (Song et al., ICLR 2021, §4.3): the flow maps data x(ε)
 * to latents x(T) bijectively, so two test digits are encoded (RK45 forward), their latents interpolated
 * spherically, slerp(z₀, z₁; α) = sin((1−α)θ)/sin θ · z₀ + sin(αθ)/sin θ · z₁, and each interpolant decoded
 * (RK45 backward), between the samplers' ε = 10⁻³ and T. The decodings at α = 0 and 1 are reconstructions of the
 * two digits: decode ∘ encode is the identity for the exact flow, so their distance to the originals measures how
 * well the flow is solved and inverted in float32 — a flow that squeezes a digit's neighbourhood into a tiny
 * set of latents (an undertrained score can) cannot be inverted there, and the reconstruction error shows it.
 *
 * @module eval/interpolation
 */
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, random, type Key } from '@score-sde/tensor-fp';
import type { SDE, ScoreFn } from '@score-sde/sde-math';
import { DEFAULT_EPS, encode, decode, interpolateLatents } from '@score-sde/solvers';
import { type MnistData, imageBatch, imagesToRange, rangeToImages } from '@score-sde/models';
import { png, report } from '../lib';
import { type ExperimentError, fail } from '../pipeline';
import type { InterpolationOptions } from './options';

/** The interpolation figure. @category model */
export interface InterpolationResult {
  /** Test-set indices of the two digits. */
  readonly indices: readonly [number, number];
  readonly labels: readonly [number, number];
  readonly frames: number;
  readonly tol: number;
  readonly nfeEncode: number;
  readonly nfeDecode: number;
  /** max over pixels of |decode(encode(x)) − x| (after clipping to [0, 1]), for digit a and digit b. */
  readonly reconstructionMaxAbs: readonly [number, number];
  readonly seconds: number;
  readonly png: string;
}

/**
 * Two test digits of different classes chosen by the key: a = the first of a random permutation of the first
 * min(N, 1000) test images, b = the next one in that order with another label.
 * @category interpolation
 */
export const pickPair = (test: MnistData, key: Key): readonly [number, number] => {
  const perm = random.permutation(key, Math.min(test.count, 1000));
  const a = perm[0]!;
  const b = Array.from(perm).find((i) => test.labels[i] !== test.labels[a]) ?? perm[Math.min(1, perm.length - 1)]!;
  return [a, b];
};

/**
 * Encodes the pair, decodes `frames` slerp interpolants of their latents (α = j/(frames − 1)), and writes
 * `interpolation.png`: original a, the decoded frames, original b. Left when an ODE solve fails.
 * @category interpolation
 */
export const runInterpolation = async (
  sde: SDE,
  score: ScoreFn,
  test: MnistData,
  o: InterpolationOptions & { readonly key: Key; readonly out: string; readonly log: (line: string) => void; readonly dataRange: readonly [number, number] },
): Promise<E.Either<ExperimentError, InterpolationResult>> => {
  if (o.frames < 2) return fail(`--frames: need at least 2 frames (the two ends), got ${o.frames}`);
  if (test.count < 2) return fail('interpolation: needs at least 2 test images (raise --test-subset)');
  const started = Date.now();
  const [a, b] = pickPair(test, o.key);
  const x = imageBatch(test, [a, b]);
  const opts = { rtol: o.tol, atol: o.tol, eps: DEFAULT_EPS };
  const inModel = imagesToRange(o.dataRange, x);
  const z = encode(sde, score, inModel, opts);
  if (inModel !== x) inModel.dispose();
  if (E.isLeft(z)) {
    x.dispose();
    return fail(`interpolation: encoding failed (${z.left._tag} at t = ${z.left.t}); raise --ode-tol`);
  }
  const latents = tf.tidy(() => {
    const frames = interpolateLatents(tf.slice(z.right.x, 0, 1), tf.slice(z.right.x, 1, 1), o.frames - 1);
    return tf.concat([...frames], 0);
  });
  z.right.x.dispose();
  const decoded = decode(sde, score, latents, opts);
  latents.dispose();
  if (E.isLeft(decoded)) {
    x.dispose();
    return fail(`interpolation: decoding failed (${decoded.left._tag} at t = ${decoded.left.t}); raise --ode-tol`);
  }
  const strip = tf.tidy(() => tf.concat([tf.slice(x, 0, 1), rangeToImages(o.dataRange, decoded.right.x), tf.slice(x, 1, 1)], 0));
  const reconstructionMaxAbs = tf.tidy(() => {
    const ends = tf.concat([tf.slice(strip, 1, 1), tf.slice(strip, o.frames, 1)], 0);
    const m = tf.max(tf.reshape(tf.abs(tf.sub(ends, x)), [2, -1]), 1).dataSync();
    return [m[0]!, m[1]!] as const;
  });
  decoded.right.x.dispose();
  x.dispose();
  const grid = png.imageGrid(strip, o.frames + 2, { scale: 3 });
  strip.dispose();
  if (E.isLeft(grid)) return fail(`interpolation.png: ${grid.left.message}`);
  const file = 'interpolation.png';
  const w = await png.writePng(path.join(o.out, file), grid.right)();
  if (E.isLeft(w)) return fail(`${file}: ${report.renderIoError(w.left)}`);
  const result: InterpolationResult = {
    indices: [a, b],
    labels: [test.labels[a]!, test.labels[b]!],
    frames: o.frames,
    tol: o.tol,
    nfeEncode: z.right.nfe,
    nfeDecode: decoded.right.nfe,
    reconstructionMaxAbs,
    seconds: (Date.now() - started) / 1000,
    png: file,
  };
  o.log(
    `interpolation: test digits #${a} (${result.labels[0]}) → #${b} (${result.labels[1]}), ${o.frames} frames, NFE ${z.right.nfe} to encode + ${decoded.right.nfe} to decode, ` +
      `reconstruction max |Δ| ${reconstructionMaxAbs.map((v) => v.toPrecision(3)).join(' and ')} → ${path.join(o.out, file)}`,
  );
  return E.right(result);
};
