/**
 * The toy check's spec as an io-ts codec: `{ sde, data, sampler, samples, seed, likelihoodPoints?, likelihood? }`,
 * every field decoded (unknown keys rejected, at every level), errors naming the field.
 *
 * @module toy/spec
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { pipe } from 'fp-ts/function';
import { codec } from '@score-sde/tensor-fp';
import { SDE, GaussianMixture, mixtureDim } from '@score-sde/sde-math';
import { SamplerSpec, DEFAULT_SNR } from '@score-sde/solvers';

// -------------------------------------------------------------------------------------
// spec
// -------------------------------------------------------------------------------------

/** A row of stds: one per coordinate, or one number for every coordinate of the component. */
const StdRow = t.union([codec.PositiveFinite, t.array(codec.PositiveFinite)], 'StdRow');

const DataFields = codec.strict(
  { kind: t.literal('gaussian-mixture'), weights: t.array(codec.PositiveFinite), means: t.array(t.array(codec.Finite)), stds: t.array(StdRow) },
  'Data',
);

/**
 * The data distribution: `{ kind: "gaussian-mixture", weights, means, stds }`, K weights summing to 1, K mean rows
 * of dimension D, K std rows (each a D-vector, or one number for an isotropic component). Checked by sde-math's
 * `GaussianMixture` codec after the numbers are expanded, so shape errors name `data.means.1` and so on.
 * @category spec
 */
export const ToyData = new t.Type<GaussianMixture, unknown, unknown>(
  'Data',
  (u): u is GaussianMixture => GaussianMixture.is(u),
  (u, c) =>
    pipe(
      DataFields.validate(u, c),
      E.chain((d) => {
        const D = d.means[0]?.length ?? 0;
        const stds = d.stds.map((row) => (typeof row === 'number' ? new Array<number>(D).fill(row) : row));
        return GaussianMixture.validate({ weights: d.weights, means: d.means, stds }, c);
      }),
    ),
  t.identity,
);

/** Options of the log-likelihood estimates. */
const LikelihoodOptions = t.partial({
  estimator: codec.oneOf(['exact', 'rademacher', 'gaussian'] as const, 'Estimator'),
  passes: codec.PositiveInt,
  prior: codec.oneOf(['sde', 'exact'] as const, 'Prior'),
});

const ToySpecFields = t.type({ sde: SDE, data: ToyData, sampler: SamplerSpec, samples: codec.PositiveInt, seed: codec.SafeInt });
const ToySpecOptional = t.partial({ likelihoodPoints: t.array(t.array(codec.Finite)), likelihood: LikelihoodOptions });
const KNOWN = new Set(['sde', 'data', 'sampler', 'samples', 'seed', 'likelihoodPoints', 'likelihood']);

/** A toy run: `{ sde, data, sampler, samples, seed, likelihoodPoints?, likelihood? }`. @category spec */
export type ToySpec = t.TypeOf<typeof ToySpecFields> & t.TypeOf<typeof ToySpecOptional>;

/**
 * The spec codec: every field decoded (unknown keys rejected, at every level), and the likelihood points checked to
 * have the mixture's dimension. Errors read `data.weights: must sum to 1 …`, `sampler.steps: expected PositiveInt`.
 * @category spec
 */
export const ToySpec = new t.Type<ToySpec, unknown, unknown>(
  'ToySpec',
  (u): u is ToySpec => ToySpecFields.is(u) && ToySpecOptional.is(u),
  (u, c) => {
    if (typeof u !== 'object' || u === null || Array.isArray(u)) return t.failure(u, c);
    const a = ToySpecFields.validate(u, c);
    const b = ToySpecOptional.validate(u, c);
    const rec = u as Record<string, unknown>;
    const extra = Object.keys(rec).filter((k) => !KNOWN.has(k));
    const lik = rec['likelihood'];
    const likExtra =
      typeof lik === 'object' && lik !== null
        ? Object.keys(lik).filter((k) => !['estimator', 'passes', 'prior'].includes(k)).map((k) => ['likelihood', k] as const)
        : [];
    const errors: t.ValidationError[] = [
      ...(E.isLeft(a) ? a.left : []),
      ...(E.isLeft(b) ? b.left : []),
      ...[...extra.map((k) => [k] as const), ...likExtra].map((p) => ({
        value: undefined,
        context: [...c, ...p.map((key) => ({ key, type: t.never, actual: undefined }))],
        message: 'unknown key',
      })),
    ];
    if (E.isRight(a) && E.isRight(b)) {
      const D = mixtureDim(a.right.data);
      (b.right.likelihoodPoints ?? []).forEach((p, i) => {
        if (p.length !== D) errors.push({ value: p, context: [...c, { key: 'likelihoodPoints', type: t.unknown, actual: p }, { key: String(i), type: t.unknown, actual: p }], message: `must have the mixture's dimension ${D} (has ${p.length})` });
      });
    }
    if (errors.length > 0 || E.isLeft(a) || E.isLeft(b)) return t.failures(errors);
    // t.partial returns its whole input when nothing changed: take only the optional fields from it.
    return t.success({ ...a.right, ...(b.right.likelihoodPoints !== undefined ? { likelihoodPoints: b.right.likelihoodPoints } : {}), ...(b.right.likelihood !== undefined ? { likelihood: b.right.likelihood } : {}) });
  },
  t.identity,
);

/** An example spec (shown by `--help`). @category spec */
export const EXAMPLE_SPEC = {
  sde: { kind: 'vp', betaMin: 0.1, betaMax: 20, T: 1 },
  data: { kind: 'gaussian-mixture', weights: [0.3, 0.7], means: [[-2, 0], [2, 1]], stds: [0.5, [0.4, 0.8]] },
  sampler: { kind: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', steps: 500, snr: DEFAULT_SNR, order: 'corrector-first' },
  samples: 2000,
  seed: 0,
  likelihoodPoints: [
    [-2, 0],
    [2, 1],
  ],
} as const;
