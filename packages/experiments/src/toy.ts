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
import * as E from 'fp-ts/Either';
import * as TE from 'fp-ts/TaskEither';
import { pipe } from 'fp-ts/function';
import { codec, describeBackend, BACKEND_CHOICES } from '@score-sde/tensor-fp';
import { exampleSpecs } from '@score-sde/solvers';
import { cli, command, report } from './lib';
import { ToySpec, EXAMPLE_SPEC } from './toy/spec';
import { type ToyError, runToy, renderToyError } from './toy/run';

// -------------------------------------------------------------------------------------
// command line
// -------------------------------------------------------------------------------------

/** The flags of the toy command. @category command line */
export const toyFlags = {
  spec: cli.stringFlag({ description: 'the JSON spec file (see the schema below)' }),
  out: cli.stringFlag({ description: 'where to write the JSON report' }),
  samplesOut: cli.optional(cli.stringFlag({ description: 'also write the raw samples here (a JSON array of arrays)' })),
  backend: cli.oneOfFlag(BACKEND_CHOICES, { default: 'auto', description: 'TensorFlow.js backend (overrides SCORE_SDE_BACKEND)' }),
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
  const cio: command.CommandIO = { err: io.log, out: (t) => io.log(t.replace(/\n$/, '')) };
  const parsed = command.parseCommandFlags(toyFlags, argv, { usage: USAGE, description: TOY_DESCRIPTION, extra: TOY_SCHEMA }, cio);
  if (E.isLeft(parsed)) return parsed.left;
  const flags = parsed.right;
  const backend = await command.prepare('toy', { prefer: flags.backend, quiet: true }, cio);
  if (E.isLeft(backend)) return backend.left;
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

if (require.main === module) command.runMain('toy', toyMain);
