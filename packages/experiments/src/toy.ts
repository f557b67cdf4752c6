/**
 * `npx nx run experiments:toy -- --spec spec.json --out report.json [--samples-out samples.json]`: checks a
 * sampler on a Gaussian mixture, whose score and densities are known exactly, before any training.
 *
 * The spec (JSON, decoded with io-ts; every error names its field) gives the SDE, the mixture, the sampler (a
 * solvers `SamplerSpec`), the number of samples and the seed, and optionally points at which to estimate the
 * log-likelihood. The sampler runs with the exact score; the report compares its samples with exact samples of
 * the sampler's target p_ε (the mixture's marginal at the grid's end time ε, indistinguishable from p₀ for the
 * default ε = 1e-3).
 *
 * Report fields (stable; see {@link ToyReport}): componentFractions, mean, cov, energyDistance,
 * energyDistanceSE, nfe, seconds, logLikelihood [{ point, estimate, standardError, exact }], plus backend,
 * sampler, samples.
 *
 * @module toy
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { tf, codec, random, describeBackend, type DecodeError, type Key } from '@score-sde/tensor-fp';
import {
  SDE,
  GaussianMixture,
  exactScore,
  exactLogProb,
  marginalMixture,
  mixtureDim,
  componentPosteriorAt,
  sampleMixtureAt,
} from '@score-sde/sde-math';
import { SamplerSpec, exampleSpecs, samplerFromSpec, sample, logLikelihood, type SamplerError } from '@score-sde/solvers';
import { cli, report } from './lib';
import * as command from './lib/command';

// -------------------------------------------------------------------------------------
// spec
// -------------------------------------------------------------------------------------

const oneOf = <K extends string>(values: ReadonlyArray<K>, name: string): t.KeyofC<Record<K, null>> =>
  t.keyof(Object.fromEntries(values.map((v) => [v, null])) as Record<K, null>, name);

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
  estimator: oneOf(['exact', 'rademacher', 'gaussian'] as const, 'Estimator'),
  passes: codec.PositiveInt,
  prior: oneOf(['sde', 'exact'] as const, 'Prior'),
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
  sampler: { kind: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', steps: 500, snr: 0.16, order: 'corrector-first' },
  samples: 2000,
  seed: 0,
  likelihoodPoints: [
    [-2, 0],
    [2, 1],
  ],
} as const;

// -------------------------------------------------------------------------------------
// statistics
// -------------------------------------------------------------------------------------

/** Per-coordinate sample mean of row-major [n, D] data. @category statistics */
export const sampleMean = (x: ArrayLike<number>, D: number): Float64Array => {
  const n = x.length / D;
  const m = new Float64Array(D);
  for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) m[j] = m[j]! + x[i * D + j]! / n;
  return m;
};

/** Unbiased sample covariance (D × D) of row-major [n, D] data. @category statistics */
export const sampleCovariance = (x: ArrayLike<number>, D: number): ReadonlyArray<Float64Array> => {
  const n = x.length / D;
  const mu = sampleMean(x, D);
  const c = Array.from({ length: D }, () => new Float64Array(D));
  for (let i = 0; i < n; i++)
    for (let j = 0; j < D; j++) {
      const dj = x[i * D + j]! - mu[j]!;
      for (let k = j; k < D; k++) c[j]![k] = c[j]![k]! + (dj * (x[i * D + k]! - mu[k]!)) / (n - 1);
    }
  for (let j = 0; j < D; j++) for (let k = 0; k < j; k++) c[j]![k] = c[k]![j]!;
  return c;
};

/** Mean responsibilities (1/n) Σ_b p(k | x_b) under the mixture: an unbiased estimate of w_k for x ~ m. @category statistics */
export const componentFractions = (m: GaussianMixture, x: ArrayLike<number>): Float64Array => {
  const D = mixtureDim(m);
  const n = x.length / D;
  const f = new Float64Array(m.weights.length);
  const post = componentPosteriorAt(m);
  for (let i = 0; i < n; i++) post(Array.prototype.slice.call(x, i * D, (i + 1) * D) as number[]).forEach((r, k) => (f[k] = f[k]! + r / n));
  return f;
};

const dist = (a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number, D: number): number => {
  let s = 0;
  for (let d = 0; d < D; d++) {
    const v = a[i * D + d]! - b[j * D + d]!;
    s += v * v;
  }
  return Math.sqrt(s);
};

/**
 * Energy distance (Székely & Rizzo 2013) between samples X and Y of equal size n, as the unbiased U-statistic
 *   E = 2·mean_{i,j}‖x_i − y_j‖ − mean_{i≠j}‖x_i − x_j‖ − mean_{i≠j}‖y_i − y_j‖
 * (zero in expectation when X and Y have the same law, positive otherwise), with its jackknife standard error
 * (leaving out the pair (x_i, y_i), computed from row sums in O(n²D)).
 * @category statistics
 */
export const energyDistance = (x: ArrayLike<number>, y: ArrayLike<number>, D: number): { readonly estimate: number; readonly standardError: number } => {
  const n = x.length / D;
  if (y.length / D !== n || n < 3) throw new RangeError(`energyDistance: needs two samples of the same size ≥ 3 (got ${n} and ${y.length / D})`);
  const rowXY = new Float64Array(n); // Σ_j ‖x_i − y_j‖
  const colXY = new Float64Array(n); // Σ_i ‖x_i − y_j‖
  const rowXX = new Float64Array(n);
  const rowYY = new Float64Array(n);
  const diag = new Float64Array(n); // ‖x_i − y_i‖
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const d = dist(x, i, y, j, D);
      rowXY[i] = rowXY[i]! + d;
      colXY[j] = colXY[j]! + d;
      if (i === j) diag[i] = d;
      if (j > i) {
        const dx = dist(x, i, x, j, D);
        const dy = dist(y, i, y, j, D);
        rowXX[i] = rowXX[i]! + dx;
        rowXX[j] = rowXX[j]! + dx;
        rowYY[i] = rowYY[i]! + dy;
        rowYY[j] = rowYY[j]! + dy;
      }
    }
  const sum = (a: Float64Array): number => a.reduce((s, v) => s + v, 0);
  const SA = sum(rowXY);
  const SX = sum(rowXX); // = 2 Σ_{i<j}
  const SY = sum(rowYY);
  const ed = (a: number, sx: number, sy: number, m: number): number => (2 * a) / (m * m) - sx / (m * (m - 1)) - sy / (m * (m - 1));
  const estimate = ed(SA, SX, SY, n);
  const loo = Float64Array.from({ length: n }, (_, i) => ed(SA - rowXY[i]! - colXY[i]! + diag[i]!, SX - 2 * rowXX[i]!, SY - 2 * rowYY[i]!, n - 1));
  const mean = sum(loo) / n;
  const standardError = Math.sqrt(((n - 1) / n) * loo.reduce((s, v) => s + (v - mean) ** 2, 0));
  return { estimate, standardError };
};

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
 * `energyDistanceSE` (between the samples and as many exact samples of p_ε), `nfe` (score evaluations), `seconds`
 * (wall time of sampling), `logLikelihood` (per point: estimate and standard error in nats, exact log p_ε at the
 * likelihood's ε = 1e-5); and `backend`, `sampler` (the step's name), `samples`.
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

/** Key streams of a run: samples, exact reference samples, likelihood probes. */
const streams = (seed: number): { readonly sampler: Key; readonly reference: Key; readonly likelihood: Key } => {
  const [a, b, c] = random.split(random.key(seed), 3);
  return { sampler: a!, reference: b!, likelihood: c! };
};

/**
 * Runs a decoded spec: samples with the exact score, compares with exact samples of p_ε, estimates the
 * log-likelihoods. Leaves no tensor behind.
 * @category running
 */
export const runToy = (spec: ToySpec, backend = 'unknown'): TE.TaskEither<ToyError, ToyResult> =>
  pipe(
    TE.fromEither(samplerFromSpec(spec.sde, spec.sampler)),
    TE.chainW((sampler) => async () => {
      const m = spec.data;
      const D = mixtureDim(m);
      const keys = streams(spec.seed);
      const t0 = process.hrtime.bigint();
      const r = await sample(sampler, exactScore(spec.sde, m), { keys: random.split(keys.sampler, spec.samples), sampleShape: [D] })();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (E.isLeft(r)) return E.left<ToyError>({ _tag: 'SamplerFailed', error: r.left });
      const x = Float64Array.from(r.right.x.dataSync());
      r.right.x.dispose();
      const eps = sampler.grid[sampler.grid.length - 1]!;
      const reference = sampleMixtureAt(marginalMixture(spec.sde, m, eps))(random.split(keys.reference, spec.samples)).x;
      const ed = energyDistance(x, reference, D);
      const lik = likelihoods(spec, keys.likelihood);
      if (E.isLeft(lik)) return lik;
      const rep: ToyReport = {
        componentFractions: Array.from(componentFractions(marginalMixture(spec.sde, m, eps), x)),
        mean: Array.from(sampleMean(x, D)),
        cov: sampleCovariance(x, D).map((row) => Array.from(row)),
        energyDistance: ed.estimate,
        energyDistanceSE: ed.standardError,
        nfe: r.right.nfe,
        seconds,
        logLikelihood: lik.right,
        backend,
        sampler: sampler.step.name,
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

// -------------------------------------------------------------------------------------
// command line
// -------------------------------------------------------------------------------------

/** The flags of the toy command. @category command line */
export const toyFlags = {
  spec: cli.stringFlag({ description: 'the JSON spec file (see the schema below)' }),
  out: cli.stringFlag({ description: 'where to write the JSON report' }),
  samplesOut: cli.optional(cli.stringFlag({ description: 'also write the raw samples here (a JSON array of arrays)' })),
  backend: cli.oneOfFlag(['auto', 'wasm', 'cpu', 'tensorflow'], { default: 'auto', description: 'TensorFlow.js backend (overrides SCORE_SDE_BACKEND)' }),
} as const;

const USAGE = 'npx nx run experiments:toy -- --spec spec.json --out report.json [--samples-out samples.json]';

/** The help's description. @category command line */
export const TOY_DESCRIPTION =
  'Runs a sampler with the exact score of a Gaussian mixture and reports how close its samples are to the exact distribution: a check of a new sampler on a known distribution before training anything.';

/** The spec schema and an example, printed after the flags by --help (not re-wrapped). @category command line */
export const TOY_SCHEMA = [
  'Spec schema (unknown keys are errors; every error names its field):',
  '  sde: {kind:"vp"|"subvp", betaMin, betaMax, T} | {kind:"ve", sigmaMin, sigmaMax, T} | {kind:"tutorial", sigma, T}',
  '  data: {kind:"gaussian-mixture", weights:[K], means:[K][D], stds:[K] of number or [D]} (weights sum to 1)',
  '  sampler: one of',
  ...exampleSpecs.map((s) => `    ${JSON.stringify(s)}`),
  '    (pc: predictor euler-maruyama|reverse-diffusion|ancestral|none, corrector langevin|annealed-langevin|none,',
  '     correctorSteps, snr, norm batch-mean|per-sample, order predictor-first|corrector-first, alpha ddpm|one',
  '     (Langevin\'s α: "ddpm" = 1 − β_i of the N-step DDPM chain as score_sde, the default on VP with the uniform',
  '     grid, which then needs steps > betaMax; "one" = 1, the default elsewhere); every kind but',
  '     the adaptive ones takes grid uniform|quadratic|karras|log-snr; all take eps (default 1e-3) and denoise)',
  '  samples: number of samples; seed: integer',
  '  likelihoodPoints (optional): [[D numbers], …]; likelihood (optional): {estimator: exact|rademacher|gaussian,',
  '     passes, prior: sde|exact} (default: exact divergence for D ≤ 16, else 10 Rademacher passes; the SDE prior)',
  '',
  'Report: componentFractions, mean, cov, energyDistance, energyDistanceSE, nfe, seconds,',
  '  logLikelihood [{point, estimate, standardError, exact}], backend, sampler, samples.',
  '',
  'Example spec:',
  JSON.stringify(EXAMPLE_SPEC),
].join('\n');

const readSpec = (file: string): TE.TaskEither<ToyError, ToySpec> =>
  pipe(
    TE.tryCatch(
      () => fs.promises.readFile(file, 'utf8'),
      (e): ToyError => report.ioError(file, e),
    ),
    TE.chainEitherKW((text) => codec.decodeJson(ToySpec, `spec ${path.basename(file)}`)(text)),
  );

/**
 * The command: parse flags, read and decode the spec, run, write the report (and samples). Returns the exit code
 * (lib/command): 0 done, 1 failure while running (backend, sampler, likelihood, writing), 2 bad flags or a spec
 * file that cannot be read or decoded.
 * @category command line
 */
export const toyMain = async (argv: ReadonlyArray<string>, io: { readonly log: (s: string) => void } = { log: (s) => process.stderr.write(`${s}\n`) }): Promise<number> => {
  const parsed = command.parseCommandFlags(toyFlags, argv, { usage: USAGE, description: TOY_DESCRIPTION, extra: TOY_SCHEMA }, { err: io.log, out: (t) => io.log(t.replace(/\n$/, '')) });
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const env = command.checkEnvironment();
  if (E.isLeft(env)) {
    io.log(`error: ${env.left}`);
    return command.EXIT.usage;
  }
  const backend = await command.chooseBackend({ prefer: flags.backend, quiet: true });
  if (E.isLeft(backend)) {
    io.log(`toy: --backend ${flags.backend}: ${backend.left}`);
    return command.EXIT.failed;
  }
  io.log(`[score-sde] backend: ${describeBackend(backend.right)}`);
  const spec = await readSpec(flags.spec)();
  if (E.isLeft(spec)) {
    io.log(spec.left._tag === 'IoError' ? `error: --spec: cannot read ${renderToyError(spec.left)}` : renderToyError(spec.left));
    return command.EXIT.usage;
  }
  const result = await pipe(
    runToy(spec.right, describeBackend(backend.right)),
    TE.chainFirstW((r) => report.writeJson(path.resolve(flags.out), r.report)),
    TE.chainFirstW((r) => (flags.samplesOut === undefined ? TE.right(undefined) : report.writeJson(path.resolve(flags.samplesOut), r.samples))),
  )();
  if (E.isLeft(result)) {
    io.log(renderToyError(result.left));
    return result.left._tag === 'DecodeError' ? command.EXIT.usage : command.EXIT.failed;
  }
  const rep = result.right.report;
  io.log(
    `${rep.sampler}: nfe ${rep.nfe}, ${rep.seconds.toFixed(2)} s, energy distance ${rep.energyDistance.toExponential(2)} ± ${rep.energyDistanceSE.toExponential(2)}, ` +
      `component fractions [${rep.componentFractions.map((f) => f.toFixed(3)).join(', ')}] (weights [${spec.right.data.weights.join(', ')}])`,
  );
  io.log(`report: ${path.resolve(flags.out)}`);
  return command.EXIT.ok;
};

if (require.main === module) command.runCommand('toy', toyMain);
