/**
 * Samplers as JSON: an io-ts codec for sampler specifications (errors name the field, unknown keys are rejected)
 * and the builder from a specification to a {@link Sampler} value. A specification says everything about a
 * sampler (grid, step, denoising, the adaptive solvers' reporting intervals), so the same JSON builds the same
 * sampler in any process: the experiments' named samplers, the toy check, sharded sampling in worker threads and
 * on other machines, and the benchmarks all go through {@link samplerFromSpec}.
 *
 * @module spec
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec, type DecodeError } from '@score-sde/tensor-fp';
import type { SDE } from '@score-sde/sde-math';
import { type Sampler, tweedieDenoise } from './runner';
import { type TimeGrid, DEFAULT_EPS, uniformGrid, quadraticGrid, karrasGrid, logSnrGrid } from './grid';
import { type Step, pc, none, nonePredictor } from './step';
import { eulerMaruyama, reverseDiffusion, ancestralSampling } from './predictors';
import { DEFAULT_SNR, langevin, annealedLangevin } from './correctors';
import { pfEuler, pfHeun, pfRk4, pfAdaptive } from './ode';
import { edmHeun, dpmSolverPP2M, dpmSolverPP3M } from './fast';
import { adaptiveReverse } from './adaptive-sde';
import { pid } from './controller';

// -------------------------------------------------------------------------------------
// codecs
// -------------------------------------------------------------------------------------

/** A record with required and optional fields that rejects unknown keys, each error at the field's own path. */
const strictRecord = codec.strictWithOptional;
const { oneOf } = codec;

/** Time-grid kinds. @category codecs */
export const GridKind = oneOf(['uniform', 'quadratic', 'karras', 'log-snr'] as const, 'GridKind');
export type GridKind = t.TypeOf<typeof GridKind>;

const common = { eps: codec.PositiveFinite, denoise: t.boolean };

/**
 * The adaptive solvers integrate over a uniform grid of `intervals` intervals of [ε, T] (default 1, the whole solve
 * at once), carrying step size and controller history across grid points: more intervals report progress more
 * often, at the price of steps that end on the grid points (so the NFE differs from the one-interval solve).
 */
const adaptiveCommon = { intervals: codec.PositiveInt, ...common };

/** Predictor–corrector sampler. @category codecs */
export const PCSpec = strictRecord(
  { kind: t.literal('pc'), predictor: oneOf(['euler-maruyama', 'reverse-diffusion', 'ancestral', 'none'] as const, 'Predictor'), steps: codec.PositiveInt },
  {
    corrector: oneOf(['langevin', 'annealed-langevin', 'none'] as const, 'Corrector'),
    correctorSteps: codec.NonNegativeInt,
    snr: codec.PositiveFinite,
    norm: oneOf(['batch-mean', 'per-sample'] as const, 'LangevinNorm'),
    alpha: oneOf(['ddpm', 'one'] as const, 'LangevinAlpha'),
    order: oneOf(['predictor-first', 'corrector-first'] as const, 'PCOrder'),
    grid: GridKind,
    ...common,
  },
  'PCSpec',
);

/** Fixed-step probability-flow ODE sampler. @category codecs */
export const ODESpec = strictRecord(
  { kind: t.literal('ode'), method: oneOf(['euler', 'heun', 'rk4'] as const, 'ODEMethod'), steps: codec.PositiveInt },
  { grid: GridKind, ...common },
  'ODESpec',
);

/** Adaptive Dormand–Prince 5(4) probability-flow ODE sampler. @category codecs */
export const AdaptiveODESpec = strictRecord(
  { kind: t.literal('ode-adaptive') },
  { rtol: codec.PositiveFinite, atol: codec.PositiveFinite, ...adaptiveCommon },
  'AdaptiveODESpec',
);

/**
 * EDM's Heun sampler: deterministic, or stochastic with churn γ per step (at most √2 − 1) applied where the noise level
 * lies in [sMin, sMax] (default: everywhere), the added noise scaled by sNoise (default 1; Karras et al. 2022, Alg. 2).
 * @category codecs
 */
export const EDMSpec = strictRecord(
  { kind: t.literal('edm'), steps: codec.PositiveInt },
  { gamma: codec.NonNegativeFinite, sMin: codec.NonNegativeFinite, sMax: codec.PositiveFinite, sNoise: codec.PositiveFinite, grid: GridKind, ...common },
  'EDMSpec',
);

/**
 * DPM-Solver++(2M): the probability-flow ODE solver, or with `eta` > 0 the solver of the reverse SDE of strength η (1:
 * the reverse SDE itself), η on the steps starting at σ ∈ [sMin, sMax] (default: all; see `dpmSolverPP2M`).
 * @category codecs
 */
export const DPMSolverSpec = strictRecord(
  { kind: t.literal('dpm-solver++2m'), steps: codec.PositiveInt },
  { eta: codec.NonNegativeFinite, sMin: codec.NonNegativeFinite, sMax: codec.PositiveFinite, grid: GridKind, ...common },
  'DPMSolverSpec',
);

/** DPM-Solver++(3M): the third-order multistep form, the same fields (see `dpmSolverPP3M`). @category codecs */
export const DPMSolver3MSpec = strictRecord(
  { kind: t.literal('dpm-solver++3m'), steps: codec.PositiveInt },
  { eta: codec.NonNegativeFinite, sMin: codec.NonNegativeFinite, sMax: codec.PositiveFinite, grid: GridKind, ...common },
  'DPMSolver3MSpec',
);

/** Adaptive reverse SDE (or probability-flow ODE) with a PID controller. @category codecs */
export const AdaptiveSDESpec = strictRecord(
  { kind: t.literal('adaptive-sde') },
  {
    rtol: codec.PositiveFinite,
    atol: codec.PositiveFinite,
    probabilityFlow: t.boolean,
    pcoeff: codec.NonNegativeFinite,
    icoeff: codec.NonNegativeFinite,
    dcoeff: codec.NonNegativeFinite,
    ...adaptiveCommon,
  },
  'AdaptiveSDESpec',
);

const members = { pc: PCSpec, ode: ODESpec, 'ode-adaptive': AdaptiveODESpec, edm: EDMSpec, 'dpm-solver++2m': DPMSolverSpec, 'dpm-solver++3m': DPMSolver3MSpec, 'adaptive-sde': AdaptiveSDESpec } as const;
const SamplerSpecUnion = t.union([PCSpec, ODESpec, AdaptiveODESpec, EDMSpec, DPMSolverSpec, DPMSolver3MSpec, AdaptiveSDESpec], 'SamplerSpec');
export type SamplerSpec = t.TypeOf<typeof SamplerSpecUnion>;

/**
 * Any sampler specification, dispatched on `kind` (so errors name the fields of the kind the record says it is):
 * `pc`, `ode`, `ode-adaptive`, `edm`, `dpm-solver++2m`, `dpm-solver++3m`, `adaptive-sde`.
 * @category codecs
 */
export const SamplerSpec = new t.Type<SamplerSpec, unknown, unknown>(
  'SamplerSpec',
  SamplerSpecUnion.is,
  (u, c) => {
    const kind = (u as { kind?: unknown } | null)?.kind;
    const member = typeof kind === 'string' && Object.prototype.hasOwnProperty.call(members, kind) ? members[kind as keyof typeof members] : undefined;
    return member !== undefined
      ? (member.validate(u, c) as t.Validation<SamplerSpec>)
      : t.failure(kind, [...c, { key: 'kind', type: oneOf(Object.keys(members) as ReadonlyArray<keyof typeof members>, 'SamplerKind'), actual: kind }]);
  },
  t.identity,
);

/** Example specifications, one per kind (for `--help` texts and tests). @category codecs */
export const exampleSpecs: ReadonlyArray<SamplerSpec> = [
  { kind: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', steps: 500, snr: DEFAULT_SNR, order: 'corrector-first' },
  { kind: 'ode', method: 'heun', steps: 50, grid: 'karras' },
  { kind: 'ode-adaptive', rtol: 1e-5, atol: 1e-5 },
  { kind: 'edm', steps: 40, gamma: 0 },
  { kind: 'dpm-solver++2m', steps: 30 },
  { kind: 'dpm-solver++3m', steps: 30 },
  { kind: 'adaptive-sde', rtol: 0.01, atol: 0.01 },
];

// -------------------------------------------------------------------------------------
// building
// -------------------------------------------------------------------------------------

/** A time grid of a kind. @category building */
export const gridOf = (sde: SDE, kind: GridKind, n: number, eps: number = DEFAULT_EPS): TimeGrid =>
  kind === 'uniform' ? uniformGrid(sde, n, eps) : kind === 'quadratic' ? quadraticGrid(sde, n, eps) : kind === 'karras' ? karrasGrid(sde, n, eps) : logSnrGrid(sde, n, eps);

const specError = (problem: string): DecodeError => ({ _tag: 'DecodeError', what: 'sampler', problems: [problem] });

/** The most time steps a spec may ask for (10⁷: a grid of 80 MB of float64 times). @category building */
export const MAX_STEPS = 10_000_000;

/**
 * The α of a pc spec's Langevin corrector, as the DDPM chain length N the corrector reads it from (correctors.ts:
 * α_i = 1 − β_i of the N-step chain at the state's time on VP), or undefined for α = 1.
 *
 * score_sde's Langevin and annealed-Langevin correctors take α_i = 1 − β_i on VP (β_i = β(t_i)/N, the DDPM
 * discretisation of its N sampling steps) and α = 1 otherwise. A pc spec follows the reference by default where the
 * two agree on what the steps are — VP on the uniform grid, whose N intervals are the chain's N steps — and uses
 * α = 1 elsewhere; `"alpha": "one"` chooses α = 1 explicitly, `"alpha": "ddpm"` asks for the reference and is refused
 * off VP or off the uniform grid. α_i > 0 needs every β_i < 1, i.e. N > β_max: fewer steps are refused (naming
 * `steps`) rather than sampled with a negative step size.
 * @category building
 */
export const langevinAlphaSteps = (sde: SDE, spec: SamplerSpec & { readonly kind: 'pc' }): E.Either<DecodeError, number | undefined> => {
  const grid = spec.grid ?? 'uniform';
  const corrects = spec.corrector !== undefined && spec.corrector !== 'none' && (spec.correctorSteps ?? 1) > 0;
  const alpha = spec.alpha ?? (sde.kind === 'vp' && grid === 'uniform' ? 'ddpm' : 'one');
  if (!corrects || alpha === 'one') return E.right(undefined);
  if (sde.kind !== 'vp') return E.left(specError(`alpha: "ddpm" (α = 1 − β_i) needs a VP SDE (got ${sde.kind}); use "one"`));
  if (grid !== 'uniform') return E.left(specError(`alpha: "ddpm" (α = 1 − β_i) needs the uniform grid, whose steps are the DDPM chain's (got ${grid}); use "one"`));
  // The largest β_i is β_max/N (ddpmBetas): compared in closed form, not through its float64 rounding.
  if (!(spec.steps > sde.betaMax))
    return E.left(
      specError(`steps: Langevin's α = 1 − β_i needs β_i = β(t)/N < 1, i.e. more than β_max = ${sde.betaMax} steps (got ${spec.steps}); give more steps or "alpha": "one"`),
    );
  return E.right(spec.steps);
};

/** A noise-level range of a stochastic step (EDM's churn, DPM-Solver++'s η) holds when it is unset or sMin < sMax. */
const rangeHolds = (r: { readonly sMin?: number; readonly sMax?: number }): boolean => r.sMin === undefined || r.sMax === undefined || r.sMin < r.sMax;

/**
 * The sampler a specification describes, for an SDE. Left (naming the field) when the combination is not defined:
 * ancestral sampling needs VP or VE, `eps` must be below T, `steps` at most {@link MAX_STEPS}.
 * @category building
 */
export const samplerFromSpec = (sde: SDE, spec: SamplerSpec): E.Either<DecodeError, Sampler> => {
  const eps = spec.eps ?? DEFAULT_EPS;
  // A grid is an array of steps + 1 times: beyond this it cannot be allocated (and no sampler needs it).
  if ('steps' in spec && spec.steps > MAX_STEPS) return E.left(specError(`steps: at most ${MAX_STEPS.toLocaleString('en')} (got ${spec.steps})`));
  if (!(eps < sde.T)) return E.left(specError(`eps: must be below T = ${sde.T} (got ${eps})`));
  // `denoise` (default true): end with Tweedie's denoiser from ε to t = 0; false stops at ε.
  const final = (spec.denoise ?? true) ? tweedieDenoise(sde) : none;
  const make = (grid: TimeGrid, step: Step): E.Either<DecodeError, Sampler> => E.right({ sde, grid, step, final });
  switch (spec.kind) {
    case 'pc': {
      const N = spec.steps;
      let predictor: Step;
      if (spec.predictor === 'ancestral') {
        if (sde.kind !== 'vp' && sde.kind !== 've') return E.left(specError(`predictor: ancestral sampling needs a VP or VE SDE (got ${sde.kind})`));
        predictor = ancestralSampling(sde);
      } else predictor = spec.predictor === 'euler-maruyama' ? eulerMaruyama(sde) : spec.predictor === 'reverse-diffusion' ? reverseDiffusion(sde, N) : nonePredictor;
      const snr = spec.snr ?? DEFAULT_SNR;
      const alphaSteps = langevinAlphaSteps(sde, spec);
      if (E.isLeft(alphaSteps)) return alphaSteps;
      const alphaOf = alphaSteps.right === undefined ? {} : { N: alphaSteps.right };
      const corrector =
        spec.corrector === 'langevin'
          ? langevin(sde, { snr, norm: spec.norm ?? 'batch-mean', ...alphaOf })
          : spec.corrector === 'annealed-langevin'
            ? annealedLangevin(sde, { snr, ...alphaOf })
            : none;
      return make(gridOf(sde, spec.grid ?? 'uniform', N, eps), pc(predictor, corrector, corrector === none ? 0 : spec.correctorSteps ?? 1, { order: spec.order ?? 'predictor-first' }));
    }
    case 'ode':
      return make(gridOf(sde, spec.grid ?? 'karras', spec.steps, eps), spec.method === 'euler' ? pfEuler(sde) : spec.method === 'heun' ? pfHeun(sde) : pfRk4(sde));
    case 'ode-adaptive':
      return make(uniformGrid(sde, spec.intervals ?? 1, eps), pfAdaptive(sde, { rtol: spec.rtol ?? 1e-5, atol: spec.atol ?? 1e-5 }));
    case 'edm':
      if ((spec.gamma ?? 0) > Math.SQRT2 - 1) return E.left(specError(`gamma: must be at most √2 − 1 ≈ 0.414 (got ${spec.gamma})`));
      if (!rangeHolds(spec)) return E.left(specError(`sMax: must be above sMin = ${spec.sMin} (got ${spec.sMax})`));
      return make(
        gridOf(sde, spec.grid ?? 'karras', spec.steps, eps),
        edmHeun(sde, {
          gamma: spec.gamma ?? 0,
          ...(spec.sMin !== undefined ? { sMin: spec.sMin } : {}),
          ...(spec.sMax !== undefined ? { sMax: spec.sMax } : {}),
          ...(spec.sNoise !== undefined ? { sNoise: spec.sNoise } : {}),
        }),
      );
    case 'dpm-solver++2m':
    case 'dpm-solver++3m': {
      if (!rangeHolds(spec)) return E.left(specError(`sMax: must be above sMin = ${spec.sMin} (got ${spec.sMax})`));
      const opts = { eta: spec.eta ?? 0, ...(spec.sMin !== undefined ? { sMin: spec.sMin } : {}), ...(spec.sMax !== undefined ? { sMax: spec.sMax } : {}) };
      return make(gridOf(sde, spec.grid ?? 'log-snr', spec.steps, eps), spec.kind === 'dpm-solver++2m' ? dpmSolverPP2M(sde, opts) : dpmSolverPP3M(sde, opts));
    }
    case 'adaptive-sde': {
      const ode = spec.probabilityFlow ?? false;
      const gains = spec.pcoeff !== undefined || spec.icoeff !== undefined || spec.dcoeff !== undefined;
      const base = ode ? pid() : pid({ pcoeff: 0.1, icoeff: 0.3 });
      const controller = gains ? { ...base, pcoeff: spec.pcoeff ?? base.pcoeff, icoeff: spec.icoeff ?? base.icoeff, dcoeff: spec.dcoeff ?? base.dcoeff } : base;
      return make(uniformGrid(sde, spec.intervals ?? 1, eps), adaptiveReverse(sde, { probabilityFlow: ode, rtol: spec.rtol ?? 1e-2, atol: spec.atol ?? 1e-2, controller }));
    }
  }
};
