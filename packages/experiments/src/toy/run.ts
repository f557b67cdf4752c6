/**
 * Running a toy check: the sampler of the spec with the exact score of its Gaussian mixture, its samples compared
 * by sde-math's sample statistics with exact samples of the sampler's target — p_ε (the mixture's marginal at the
 * grid's end time ε) pushed through the exact Tweedie denoiser x ↦ E[x₀ | x_ε = x] when the sampler denoises (the
 * default), p_ε itself with `"denoise": false` — and log-likelihood estimates next to the exact log-density.
 *
 * @module toy/run
 */
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { tf, codec, random, type DecodeError, type Key } from '@score-sde/tensor-fp';
import { exactScore, exactLogProb, mixtureDim, sampleMean, sampleCovariance, energyDistance, componentFractions } from '@score-sde/sde-math';
import { samplerFromSpec, sample, samplerName, logLikelihood, type SamplerError } from '@score-sde/solvers';
import { report } from '../lib';
import type { ToySpec } from './spec';
import { toyTarget, toyKeys } from './check';

// -------------------------------------------------------------------------------------
// running
// -------------------------------------------------------------------------------------

/** One log-likelihood estimate against the exact log p_ε. @category report */
export interface LikelihoodEntry {
  readonly point: ReadonlyArray<number>;
  readonly estimate: number;
  readonly standardError: number;
  readonly exact: number;
}

/**
 * The toy report. Stable fields: `componentFractions` (mean responsibility of each component over the samples,
 * which estimates its weight), `mean` and `cov` (sample mean and unbiased covariance), `energyDistance` and
 * `energyDistanceSE` (between the samples and as many exact samples of the target), `nfe` (score evaluations), `seconds`
 * (wall time of sampling), `logLikelihood` (per point: estimate and standard error in nats, exact log p_ε at the
 * likelihood's ε = 1e-5); and `backend`, `sampler` (the sampler's name: step → final step), `samples`.
 * @category report
 */
export interface ToyReport {
  readonly componentFractions: ReadonlyArray<number>;
  readonly mean: ReadonlyArray<number>;
  readonly cov: ReadonlyArray<ReadonlyArray<number>>;
  readonly energyDistance: number;
  readonly energyDistanceSE: number;
  readonly nfe: number;
  readonly seconds: number;
  readonly logLikelihood: ReadonlyArray<LikelihoodEntry>;
  readonly backend: string;
  readonly sampler: string;
  readonly samples: number;
}

/** A toy run's result: the report and the raw samples (row-major [n, D]). @category report */
export interface ToyResult {
  readonly report: ToyReport;
  readonly samples: ReadonlyArray<ReadonlyArray<number>>;
}

/** Why a toy run failed. @category errors */
export type ToyError =
  | DecodeError
  | { readonly _tag: 'SamplerFailed'; readonly error: SamplerError }
  | { readonly _tag: 'LikelihoodFailed'; readonly message: string }
  | report.IoError;

/** A one-line account of an error. @category errors */
export const renderToyError = (e: ToyError): string =>
  e._tag === 'DecodeError'
    ? codec.renderDecodeError(e)
    : e._tag === 'SamplerFailed'
      ? `sampler failed: ${JSON.stringify(e.error)}`
      : e._tag === 'LikelihoodFailed'
        ? `likelihood failed: ${e.message}`
        : report.renderIoError(e);

/**
 * Runs a decoded spec: samples with the exact score, compares with exact samples of its target, estimates the
 * log-likelihoods. Leaves no tensor behind.
 * @category running
 */
export const runToy = (spec: ToySpec, backend = 'unknown'): TE.TaskEither<ToyError, ToyResult> =>
  pipe(
    TE.fromEither(samplerFromSpec(spec.sde, spec.sampler)),
    TE.chainW((sampler) => async () => {
      const m = spec.data;
      const D = mixtureDim(m);
      const keys = toyKeys(spec.seed);
      const t0 = process.hrtime.bigint();
      const r = await sample(sampler, exactScore(spec.sde, m), { keys: random.split(keys.sampler, spec.samples), sampleShape: [D] })();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (E.isLeft(r)) return E.left<ToyError>({ _tag: 'SamplerFailed', error: r.left });
      const x = Float64Array.from(r.right.x.dataSync());
      r.right.x.dispose();
      // The target: p_ε at the grid's end ε, pushed through the exact Tweedie denoiser when the sampler denoises.
      const target = toyTarget(spec.sde, m, sampler);
      const reference = target.reference(random.split(keys.reference, spec.samples));
      const components = target.components;
      const ed = energyDistance(x, reference, D);
      const lik = likelihoods(spec, keys.likelihood);
      if (E.isLeft(lik)) return lik;
      const rep: ToyReport = {
        componentFractions: Array.from(componentFractions(components, x)),
        mean: Array.from(sampleMean(x, D)),
        cov: sampleCovariance(x, D).map((row) => Array.from(row)),
        energyDistance: ed.estimate,
        energyDistanceSE: ed.standardError,
        nfe: r.right.nfe,
        seconds,
        logLikelihood: lik.right,
        backend,
        sampler: samplerName(sampler),
        samples: spec.samples,
      };
      const rows = Array.from({ length: spec.samples }, (_, i) => Array.from(x.subarray(i * D, (i + 1) * D)));
      return E.right({ report: rep, samples: rows });
    }),
  );

/** The log-likelihood estimates at the spec's points. */
const likelihoods = (spec: ToySpec, key: Key): E.Either<ToyError, ReadonlyArray<LikelihoodEntry>> => {
  const pts = spec.likelihoodPoints ?? [];
  if (pts.length === 0) return E.right([]);
  const m = spec.data;
  const D = mixtureDim(m);
  const estimator = spec.likelihood?.estimator ?? (D <= 16 ? 'exact' : 'rademacher');
  const passes = estimator === 'exact' ? 1 : spec.likelihood?.passes ?? 10;
  const x = tf.tensor2d(pts.map((p) => [...p]), [pts.length, D]);
  const r = logLikelihood(spec.sde, exactScore(spec.sde, m), x, {
    estimator,
    passes,
    keys: random.split(key, pts.length),
    ...(spec.likelihood?.prior === 'exact' ? { priorLogProb: (z: tf.Tensor) => exactLogProb(spec.sde, m)(z, spec.sde.T) } : {}),
  });
  const exactT = exactLogProb(spec.sde, m)(x, 1e-5);
  const exact = exactT.dataSync();
  tf.dispose([x, exactT]);
  if (E.isLeft(r)) return E.left({ _tag: 'LikelihoodFailed', message: `${r.left._tag} at t = ${r.left.t}` });
  return E.right(pts.map((p, i) => ({ point: p, estimate: r.right.logp[i]!, standardError: r.right.standardError[i]!, exact: exact[i]! })));
};
