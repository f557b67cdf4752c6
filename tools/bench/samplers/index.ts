/**
 * Sampler benchmark: error versus score evaluations (NFE) for every sampler of `@score-sde/solvers`, on fixed 2-D
 * and 64-D Gaussian mixtures under VP and VE, with the exact score (so the error is the sampler's alone).
 *
 * Every sampler runs without its final denoising step (`denoise: false`: the error of the sampler up to ε is what
 * is compared). Errors: the energy distance between the samples and as many exact samples of the sampler's target p_ε (with its
 * jackknife standard error), the component-weight error Σ_k |f_k − w_k| (f_k: mean responsibility of component k
 * over the samples), and the variance error max_k |v̂_k / v_k − 1| (v̂_k: responsibility-weighted variance of
 * component k averaged over coordinates; far less noisy than the other two in 64-D, so it shows discretisation
 * bias that they cannot resolve). The "exact samples" rows give the Monte-Carlo floor: the same errors for exact
 * samples of p_ε.
 *
 * Run: `npx tsx tools/bench/samplers/index.ts [--quick] [--samples N] [--out DIR]`
 * Writes DIR/results.json, DIR/results.md (the table) and one PNG per error, each with a row of stochastic and a row
 * of deterministic samplers (default DIR: tools/bench/out/samplers).
 *
 * @module bench/samplers
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { Resvg } from '@resvg/resvg-js';
import { codec, random, initBackend, describeBackend, BACKEND_CHOICES } from '@score-sde/tensor-fp';
import { type SDE, type GaussianMixture, vp, ve, marginalMixture, sampleMixtureAt, mixtureDim, componentPosteriorAt, energyDistance, componentFractions } from '@score-sde/sde-math';
import type { SamplerSpec } from '@score-sde/solvers';
import { cli, plot, png, report, toy } from '@score-sde/experiments';

// -------------------------------------------------------------------------------------
// problems and samplers
// -------------------------------------------------------------------------------------

const iso = (weights: number[], means: number[], stds: number[], D: number): GaussianMixture => ({
  weights,
  means: means.map((m) => new Array<number>(D).fill(m)),
  stds: stds.map((s) => new Array<number>(D).fill(s)),
});

/** The fixed mixtures (the conformance suite's 2-D and 64-D ones). */
export const PROBLEMS: ReadonlyArray<{ readonly name: string; readonly data: GaussianMixture }> = [
  {
    name: '2-D',
    data: {
      weights: [0.5, 0.3, 0.2],
      means: [
        [-2, 1],
        [2, 2],
        [0, -2.5],
      ],
      stds: [
        [0.5, 0.8],
        [0.4, 0.4],
        [0.7, 0.3],
      ],
    },
  },
  { name: '64-D', data: iso([0.4, 0.6], [-1, 1], [0.5, 0.8], 64) },
];

export const SDES: ReadonlyArray<readonly [string, SDE]> = [
  ['VP', vp()],
  ['VE', ve()],
];

/** A sampler family: a name and its specs along an increasing-work sweep. */
interface Family {
  readonly name: string;
  /** Deterministic (probability-flow ODE) samplers are drawn dashed. */
  readonly ode?: boolean;
  readonly specs: (quick: boolean) => ReadonlyArray<SamplerSpec>;
  readonly applies?: (sde: SDE) => boolean;
}

/** 14 distinguishable colours (tab10 + 4), one per family. */
const COLOURS = [...plot.PALETTE, '#393b79', '#e6550d', '#31a354', '#756bb1'];

const sweep = (full: ReadonlyArray<number>, quick: ReadonlyArray<number>) => (q: boolean) => (q ? quick : full);

export const FAMILIES: ReadonlyArray<Family> = [
  { name: 'euler-maruyama', specs: (q) => sweep([25, 50, 100, 200, 500, 1000], [25, 100])(q).map((steps) => ({ kind: 'pc', predictor: 'euler-maruyama', steps })) },
  { name: 'reverse-diffusion', specs: (q) => sweep([25, 50, 100, 200, 500, 1000], [25, 100])(q).map((steps) => ({ kind: 'pc', predictor: 'reverse-diffusion', steps })) },
  {
    name: 'ancestral',
    applies: (sde) => sde.kind === 'vp' || sde.kind === 've',
    specs: (q) => sweep([25, 50, 100, 200, 500, 1000], [25, 100])(q).map((steps) => ({ kind: 'pc', predictor: 'ancestral', steps })),
  },
  {
    name: 'pc (langevin ▸ reverse-diffusion)',
    specs: (q) => sweep([25, 50, 100, 250, 500], [25, 100])(q).map((steps) => ({ kind: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', steps, order: 'corrector-first' })),
  },
  { name: 'pf-ode euler (karras)', ode: true, specs: (q) => sweep([10, 25, 50, 100, 250, 500], [10, 50])(q).map((steps) => ({ kind: 'ode', method: 'euler', steps, grid: 'karras' })) },
  { name: 'pf-ode heun (karras)', ode: true, specs: (q) => sweep([5, 10, 25, 50, 100], [5, 25])(q).map((steps) => ({ kind: 'ode', method: 'heun', steps, grid: 'karras' })) },
  { name: 'pf-ode rk4 (karras)', ode: true, specs: (q) => sweep([3, 5, 10, 25], [3, 10])(q).map((steps) => ({ kind: 'ode', method: 'rk4', steps, grid: 'karras' })) },
  { name: 'pf-ode dopri5', ode: true, specs: (q) => sweep([1e-2, 1e-3, 1e-4, 1e-5], [1e-2, 1e-4])(q).map((tol) => ({ kind: 'ode-adaptive', rtol: tol, atol: tol })) },
  { name: 'edm heun', ode: true, specs: (q) => sweep([5, 10, 20, 40, 80], [5, 20])(q).map((steps) => ({ kind: 'edm', steps })) },
  { name: 'edm heun, churn γ = 0.1', specs: (q) => sweep([10, 20, 40, 80], [10, 40])(q).map((steps) => ({ kind: 'edm', steps, gamma: 0.1 })) },
  { name: 'dpm-solver++(2M)', ode: true, specs: (q) => sweep([5, 10, 20, 40, 80], [5, 20])(q).map((steps) => ({ kind: 'dpm-solver++2m', steps })) },
  { name: 'dpm-solver++(3M)', ode: true, specs: (q) => sweep([5, 10, 20, 40, 80], [5, 20])(q).map((steps) => ({ kind: 'dpm-solver++3m', steps })) },
  { name: 'adaptive sde (PI)', specs: (q) => sweep([0.1, 0.05, 0.02, 0.01], [0.1, 0.02])(q).map((tol) => ({ kind: 'adaptive-sde', rtol: tol, atol: tol })) },
  { name: 'adaptive pf-ode (heun–euler)', ode: true, specs: (q) => sweep([0.1, 0.03, 0.01, 0.001], [0.1, 0.01])(q).map((tol) => ({ kind: 'adaptive-sde', probabilityFlow: true, rtol: tol, atol: tol })) },
];

// -------------------------------------------------------------------------------------
// running
// -------------------------------------------------------------------------------------

/** One measured point. */
export interface BenchRow {
  readonly problem: string;
  readonly sde: string;
  readonly sampler: string;
  readonly setting: string;
  readonly nfe: number;
  readonly energyDistance: number;
  readonly energyDistanceSE: number;
  readonly weightError: number;
  readonly varianceError: number;
  readonly seconds: number;
}

const settingOf = (s: SamplerSpec): string =>
  'steps' in s ? `${s.steps} steps` : `tol ${(s as { rtol?: number }).rtol ?? 1e-5}`;

const weightError = (fractions: ReadonlyArray<number>, weights: ReadonlyArray<number>): number => fractions.reduce((a, f, k) => a + Math.abs(f - weights[k]!), 0);

/**
 * max_k |v̂_k / v_k − 1| with v̂_k = Σ_b r_k(x_b) Σ_j (x_bj − μ_kj)² / (D Σ_b r_k(x_b)) and v_k the coordinate-averaged
 * variance of component k of `target` (responsibilities r_k under `target`).
 */
export const varianceError = (target: GaussianMixture, x: ArrayLike<number>): number => {
  const D = mixtureDim(target);
  const n = x.length / D;
  const K = target.weights.length;
  const num = new Float64Array(K);
  const den = new Float64Array(K);
  const post = componentPosteriorAt(target);
  for (let b = 0; b < n; b++) {
    const row = Array.prototype.slice.call(x, b * D, (b + 1) * D) as number[];
    post(row).forEach((r, k) => {
      let q = 0;
      for (let j = 0; j < D; j++) q += (row[j]! - target.means[k]![j]!) ** 2;
      num[k] = num[k]! + (r * q) / D;
      den[k] = den[k]! + r;
    });
  }
  return Math.max(...target.stds.map((row, k) => Math.abs(num[k]! / den[k]! / (row.reduce((a, s) => a + s * s, 0) / D) - 1)));
};

/** The Monte-Carlo floor: the errors of exact samples of p_ε against other exact samples. */
const floorRow = (problem: string, sdeName: string, sde: SDE, data: GaussianMixture, n: number, seed: number): BenchRow => {
  const target = marginalMixture(sde, data, 1e-3);
  const D = mixtureDim(data);
  const a = sampleMixtureAt(target)(random.split(random.key(seed + 1), n)).x;
  const b = sampleMixtureAt(target)(random.split(random.key(seed + 2), n)).x;
  const ed = energyDistance(a, b, D);
  return {
    problem,
    sde: sdeName,
    sampler: 'exact samples (MC floor)',
    setting: '',
    nfe: 0,
    energyDistance: ed.estimate,
    energyDistanceSE: ed.standardError,
    weightError: weightError(Array.from(componentFractions(target, a)), data.weights),
    varianceError: varianceError(target, a),
    seconds: 0,
  };
};

const METRIC_LABEL = { energyDistance: 'energy distance (at least its SE)', weightError: 'Σ_k |f_k − w_k|', varianceError: 'max_k |v̂_k / v_k − 1|' } as const;

/** Stacks PNGs vertically (SVG with embedded images, rendered by resvg). */
const stackVertically = (pngs: ReadonlyArray<Uint8Array>): E.Either<png.ImageError, Buffer> => {
  const sizes: Array<{ width: number; height: number }> = [];
  for (const p of pngs) {
    const s = png.pngSize(p);
    if (E.isLeft(s)) return s;
    sizes.push(s.right);
  }
  const W = Math.max(...sizes.map((s) => s.width));
  const H = sizes.reduce((a, s) => a + s.height, 0);
  let y = 0;
  const images = pngs.map((p, i) => {
    const el = `<image x="0" y="${y}" width="${sizes[i]!.width}" height="${sizes[i]!.height}" href="data:image/png;base64,${Buffer.from(p).toString('base64')}"/>`;
    y += sizes[i]!.height;
    return el;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="${W}" height="${H}" fill="white"/>${images.join('')}</svg>`;
  return E.right(new Resvg(svg, { fitTo: { mode: 'original' } }).render().asPng());
};

/**
 * One figure per error: a row of panels for the stochastic samplers and one for the deterministic ones, a panel per
 * (problem, SDE), error against NFE on log–log axes, with the Monte-Carlo floor dashed.
 */
const errorFigure = (rows: ReadonlyArray<BenchRow>, metric: keyof typeof METRIC_LABEL): E.Either<png.ImageError, Buffer> => {
  const value = (r: BenchRow): number =>
    metric === 'energyDistance' ? Math.max(r.energyDistance, r.energyDistanceSE) : Math.max(r[metric], 1e-4);
  const row = (ode: boolean): E.Either<png.ImageError, Buffer> =>
    plot.panelFigure(
      PROBLEMS.flatMap(({ name: problem }) =>
        SDES.map(([sdeName]) => {
          const mine = rows.filter((r) => r.problem === problem && r.sde === sdeName);
          const floor = mine.find((r) => r.nfe === 0);
          const fams = FAMILIES.filter((f) => (f.ode === true) === ode && mine.some((r) => r.sampler === f.name));
          const maxNfe = Math.max(...mine.map((r) => r.nfe));
          const series: plot.Series[] = fams.map((f) => ({
            name: f.name,
            points: mine.filter((r) => r.sampler === f.name).map((r) => [r.nfe, value(r)] as const),
            color: COLOURS[FAMILIES.indexOf(f) % COLOURS.length]!,
          }));
          if (floor !== undefined) series.push({ name: 'exact samples (MC floor)', points: [[1, value(floor)], [maxNfe, value(floor)]], dashed: true, color: '#000', markers: false });
          return {
            png: plot.linePlotPng({ title: `${problem}, ${sdeName}`, xLabel: 'NFE', yLabel: METRIC_LABEL[metric], series, logX: true, logY: true, width: 620, height: 440, legend: 'bottom-left' }),
            caption: `${problem} mixture, ${sdeName}: ${ode ? 'deterministic' : 'stochastic'} samplers`,
          };
        }),
      ),
      { title: ode ? undefined : `${METRIC_LABEL[metric]} versus NFE, exact score` },
    );
  const a = row(false);
  const b = row(true);
  return E.isLeft(a) ? a : E.isLeft(b) ? b : stackVertically([a.right, b.right]);
};

const benchFlags = {
  out: cli.stringFlag({ description: 'output folder', default: path.join('tools', 'bench', 'out', 'samplers') }),
  samples: cli.numberFlag(codec.NonNegativeInt, { description: 'samples per run (0: 2000 in 2-D, 500 in 64-D; --quick: 300)', default: 0 }),
  quick: cli.booleanFlag({ description: 'two settings per sampler and 300 samples (a smoke run)', default: false }),
  seed: cli.numberFlag(codec.SafeInt, { description: 'seed of every run', default: 0 }),
  backend: cli.oneOfFlag(BACKEND_CHOICES, { default: 'auto', description: 'TensorFlow.js backend' }),
} as const;

const main = async (): Promise<number> => {
  const flags = cli.parseFlagsOrExit(benchFlags, process.argv.slice(2), 'npx tsx tools/bench/samplers/index.ts [flags]', 'Error versus NFE of every sampler on fixed Gaussian mixtures with the exact score.');
  const backend = await initBackend({ prefer: flags.backend });
  const rows: BenchRow[] = [];
  for (const { name: problem, data } of PROBLEMS) {
    const n = flags.samples > 0 ? flags.samples : flags.quick ? 300 : problem === '64-D' ? 500 : 2000;
    for (const [sdeName, sde] of SDES) {
      rows.push(floorRow(problem, sdeName, sde, data, n, flags.seed));
      for (const fam of FAMILIES) {
        if (fam.applies !== undefined && !fam.applies(sde)) continue;
        // The grid's part of each sampler, stopped at ε (`denoise: false`): the target is p_ε itself.
        for (const sampler of fam.specs(flags.quick).map((s): SamplerSpec => ({ ...s, denoise: false }))) {
          const spec: toy.ToySpec = { sde, data, sampler, samples: n, seed: flags.seed };
          const r = await toy.runToy(spec, describeBackend(backend))();
          if (E.isLeft(r)) {
            process.stderr.write(`${problem} ${sdeName} ${fam.name} ${settingOf(sampler)}: ${JSON.stringify(r.left)}\n`);
            continue;
          }
          const rep = r.right.report;
          const row: BenchRow = {
            problem,
            sde: sdeName,
            sampler: fam.name,
            setting: settingOf(sampler),
            nfe: rep.nfe,
            energyDistance: rep.energyDistance,
            energyDistanceSE: rep.energyDistanceSE,
            weightError: weightError(rep.componentFractions, data.weights),
            varianceError: varianceError(marginalMixture(sde, data, 1e-3), r.right.samples.flat()),
            seconds: rep.seconds,
          };
          rows.push(row);
          process.stderr.write(`${problem} ${sdeName} ${fam.name} ${row.setting}: nfe ${row.nfe}, ED ${row.energyDistance.toExponential(2)} ± ${row.energyDistanceSE.toExponential(1)}, weight error ${row.weightError.toFixed(3)}, variance error ${row.varianceError.toFixed(3)}, ${row.seconds.toFixed(1)} s\n`);
        }
      }
    }
  }
  const out = path.resolve(flags.out);
  fs.mkdirSync(out, { recursive: true });
  const md = [
    '# Sampler benchmark: error versus NFE (exact score)',
    '',
    `Backend: ${describeBackend(backend)}. Samples per run: ${flags.samples > 0 ? flags.samples : flags.quick ? 300 : '2000 (2-D), 500 (64-D)'}; seed ${flags.seed}.`,
    'Energy distance between the samples and as many exact samples of p_ε (± jackknife SE); weight error Σ_k |f_k − w_k|;',
    'variance error max_k |v̂_k/v_k − 1| (component variances averaged over coordinates). The "exact samples" rows are the',
    'Monte-Carlo floor: below it, differences are noise. Seconds are wall time of sampling only.',
    '',
    report.markdownTable(
      rows.map((r) => ({ ...r, energyDistance: r.energyDistance, energyDistanceSE: r.energyDistanceSE })),
      {
        columns: ['problem', 'sde', 'sampler', 'setting', 'nfe', 'energyDistance', 'energyDistanceSE', 'weightError', 'varianceError', 'seconds'],
        headers: { energyDistance: 'energy distance', energyDistanceSE: '± SE', weightError: 'weight error', varianceError: 'variance error', seconds: 's' },
      },
    ),
  ].join('\n');
  fs.writeFileSync(path.join(out, 'results.md'), `${md}\n`);
  fs.writeFileSync(path.join(out, 'results.json'), report.toReportJson(rows));
  for (const [metric, file] of [
    ['energyDistance', 'energy-distance-vs-nfe.png'],
    ['weightError', 'weight-error-vs-nfe.png'],
    ['varianceError', 'variance-error-vs-nfe.png'],
  ] as const) {
    const fig = errorFigure(rows, metric);
    if (E.isRight(fig)) fs.writeFileSync(path.join(out, file), fig.right);
    else process.stderr.write(`${file}: ${fig.left.message}\n`);
  }
  process.stderr.write(`wrote ${path.join(out, 'results.md')}, results.json and three *-vs-nfe.png\n`);
  return 0;
};

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`bench/samplers: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
