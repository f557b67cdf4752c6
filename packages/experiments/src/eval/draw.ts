/**
 * Drawing many samples with a sampler, in chunks, with one progress bar. Sample b uses key keys[b] whatever the
 * chunking, so every sampler of a comparison sees the same prior draws and the same noise streams (common
 * random numbers). For samplers that treat samples independently (EM, EDM, DPM-Solver++) a sample does not depend
 * on `--sample-batch` at all; PC (its Langevin step size uses the batch-mean gradient norm, as the reference
 * does) and the adaptive ODE (one step size per batch) couple the samples of a chunk slightly.
 *
 * @module eval/draw
 */
import * as E from 'fp-ts/Either';
import { tf, type Key } from '@score-sde/tensor-fp';
import type { ScoreFn } from '@score-sde/sde-math';
import { type Sampler, run, stepCount, outputOf } from '@score-sde/solvers';
import { progress } from '../lib';
import { type EvalError, fail } from './common';

/** What one chunk of samples [start, start + size) is drawn with; `release` frees what the setup made. @category model */
export interface ChunkSetup {
  readonly sampler: Sampler;
  readonly score: ScoreFn;
  readonly release?: () => void;
}

/** Drawn samples: x [N, 28, 28, 1] clipped to [0, 1] (owned by the caller), mean score evaluations per sample path, seconds. @category model */
export interface Drawn {
  readonly x: tf.Tensor;
  readonly nfe: number;
  readonly seconds: number;
}

/** Options of {@link drawInChunks}. @category model */
export interface DrawOptions {
  readonly batch: number;
  readonly label: string;
  readonly quiet: boolean;
  readonly sampleShape?: ReadonlyArray<number>;
}

/**
 * Draws keys.length samples, chunk by chunk: chunk [s, s + m) runs `setup(s, m)`'s sampler on its score from the
 * prior with keys[s … s + m), and keeps the output of its last state (the denoised x̂₀, or x̄ at ε for `final: none`). The
 * result is clipped to the data range [0, 1]. NFE is the score evaluations of one chunk's solve, averaged over
 * chunks weighted by their size (the same for every chunk of a fixed-step sampler). Left when a solve fails.
 * @category drawing
 */
export const drawInChunks = async (keys: ReadonlyArray<Key>, setup: (start: number, size: number) => ChunkSetup, o: DrawOptions): Promise<E.Either<EvalError, Drawn>> => {
  const n = keys.length;
  const started = Date.now();
  const parts: tf.Tensor[] = [];
  let nfeSum = 0;
  let bar: progress.Progress | undefined;
  const chunks = Math.ceil(n / o.batch);
  try {
    for (let start = 0; start < n; start += o.batch) {
      const size = Math.min(o.batch, n - start);
      const s = setup(start, size);
      try {
        bar ??= progress.withProgress(o.label, chunks * stepCount(s.sampler), { quiet: o.quiet });
        let last: tf.Tensor | undefined;
        let nfe = 0;
        let first = true;
        // Adaptive solvers take many evaluations per grid interval: show the running count between ticks.
        let calls = 0;
        const counted: ScoreFn = (x, t) => {
          calls += 1;
          if (calls % 5 === 0) bar?.tick(0, { nfe: calls });
          return s.score(x, t);
        };
        for await (const st of run(s.sampler, counted, { keys: keys.slice(start, start + size), sampleShape: o.sampleShape ?? [28, 28, 1] })) {
          nfe = st.nfe;
          if (!first) bar.tick(1, { nfe });
          first = false;
          last?.dispose();
          last = tf.clone(outputOf(st));
        }
        if (last === undefined) {
          tf.dispose(parts);
          return fail(`${o.label}: produced no samples`);
        }
        parts.push(tf.tidy(() => tf.clipByValue(last!, 0, 1)));
        last.dispose();
        nfeSum += nfe * size;
      } finally {
        s.release?.();
      }
    }
  } catch (e) {
    tf.dispose(parts);
    return fail(`${o.label}: ${(e as Error).message}`);
  } finally {
    bar?.stop();
  }
  const x = parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  if (parts.length > 1) tf.dispose(parts);
  return E.right({ x, nfe: nfeSum / n, seconds: (Date.now() - started) / 1000 });
};
