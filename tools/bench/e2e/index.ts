/**
 * End-to-end benchmark (issue 11): the default MNIST recipe — whatever `nx run experiments:mnist` trains by
 * default (`recipe.ts`) — trained for the same number of steps on the same batches, then sampled with the same
 * sampler, in the project (wasm) and in PyTorch, in alternating rounds.
 *
 *   npm run bench -- e2e [--steps 100] [--warmup 5] [--sample-steps 50] [--samples 64] [--rounds 2]
 *                        [--threads N] [--no-torch] [--out DIR]
 *
 * Each round runs each side in a fresh process: the project's `worker.ts` (the experiment's own batching,
 * `trainStep`, and its `em` sampler) and `e2e_torch.py` (the same recipe written in PyTorch: network, SDE,
 * parameterisation, loss, Adam with warm-up and clipping, EMA, Euler–Maruyama). Both read the same IDX file and
 * the same example indices (the project's epoch permutations for the run's seed, written to a file here). Warm-up
 * steps are not timed. The PyTorch child runs with `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` removed from its
 * environment (this machine sets them for old OpenBLAS builds; they slow torch's convolutions by 20–40%); nothing
 * else is changed, and the kernels and threads torch reports are recorded.
 *
 * Reported (medians over all timed steps of all rounds, and per round): training milliseconds per step and the
 * projection to the default run's step count, sampling milliseconds per score evaluation per 64 samples, peak RSS (and
 * the project's per-phase memory), and the ratios project / PyTorch — the median of the per-round ratios (each round's
 * two processes ran back to back: the paired ratio is the robust one on a shared machine) and of the pooled medians. Writes DIR/e2e.json and DIR/e2e.md
 * (DIR = tools/bench/out). PyTorch is optional: without it the project's figures are still reported.
 *
 * @module bench/e2e
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TrainConfig } from '@score-sde/models';
import { torchEnv } from './torch-env';
import { defaultRecipe } from './recipe';
import { type Files, type Measurement, findTorch, runJson, writeInputs } from './peer';
import { intFlag, median, runMain } from '../args';

// -------------------------------------------------------------------------------------
// flags
// -------------------------------------------------------------------------------------

interface Options {
  readonly steps: number;
  readonly warmup: number;
  readonly sampleSteps: number;
  readonly samples: number;
  readonly rounds: number;
  readonly threads: number;
  readonly torch: boolean;
  readonly out: string;
  /** K ≥ 2: the project trains data-parallel (`experiments:mnist --data-parallel K`), its own process single-threaded. */
  readonly dataParallel: number;
}

const USAGE = `usage: npm run bench -- e2e [--steps 100] [--warmup 5] [--sample-steps 50] [--samples 64] [--rounds 2]
                            [--threads N] [--data-parallel K] [--no-torch] [--out DIR]

Trains the default recipe of nx run experiments:mnist for --steps timed steps (after --warmup untimed ones) and
samples --samples digits with its em sampler for --sample-steps steps, in the project and in PyTorch
(/usr/bin/python3 with torch, optional), alternating over --rounds rounds; writes e2e.json and e2e.md into DIR
(default tools/bench/out). --threads N: threads of both sides (PyTorch's, and SCORE_SDE_WASM_THREADS for the project;
default: one per core). On a busy machine, --threads 1 and the CPU ms columns give the steadier comparison.
--data-parallel K: the project trains as experiments:mnist --data-parallel K does (every batch in K parts, one per
single-threaded worker thread, its own process single-threaded; its sampling then runs on that one thread).
`;

const flag = (argv: ReadonlyArray<string>, name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};

const KNOWN = new Set(['steps', 'warmup', 'sample-steps', 'samples', 'rounds', 'threads', 'data-parallel', 'out', 'no-torch', 'help']);

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const unknown = argv.filter((a) => a.startsWith('--') && !KNOWN.has(a.slice(2)));
  if (unknown.length > 0) throw new Error(`unknown flag ${unknown[0]}`);
  return {
    steps: intFlag(argv, 'steps', 100),
    warmup: intFlag(argv, 'warmup', 5, 0),
    sampleSteps: intFlag(argv, 'sample-steps', 50),
    samples: intFlag(argv, 'samples', 64),
    rounds: intFlag(argv, 'rounds', 2),
    threads: intFlag(argv, 'threads', os.availableParallelism()),
    dataParallel: intFlag(argv, 'data-parallel', 1),
    torch: !argv.includes('--no-torch'),
    out: flag(argv, 'out') ?? path.join(__dirname, '..', 'out'),
  };
};

// -------------------------------------------------------------------------------------
// the two sides
// -------------------------------------------------------------------------------------


const runProject = (o: Options): Measurement =>
  runJson('the project (tools/bench/e2e/worker.ts)', process.execPath, [
    require.resolve('tsx/cli'),
    path.join(__dirname, 'worker.ts'),
    '--steps', String(o.steps),
    '--warmup', String(o.warmup),
    '--sample-steps', String(o.sampleSteps),
    '--samples', String(o.samples),
    '--data-parallel', String(o.dataParallel),
  ], { ...process.env, SCORE_SDE_WASM_THREADS: String(o.dataParallel > 1 ? 1 : o.threads) });

const runTorch = (python: string, o: Options, f: Files): Measurement =>
  runJson('the PyTorch peer (tools/bench/e2e/e2e_torch.py)', python, [
    path.join(__dirname, 'e2e_torch.py'),
    '--recipe', f.recipe,
    '--images', f.images,
    '--order', f.order,
    '--params', String(f.params),
    '--steps', String(o.steps),
    '--warmup', String(o.warmup),
    '--sample-steps', String(o.sampleSteps),
    '--samples', String(o.samples),
    '--threads', String(o.threads),
  ], torchEnv());

// -------------------------------------------------------------------------------------
// report
// -------------------------------------------------------------------------------------


/** One side's figures over all its rounds. */
export interface Side {
  readonly framework: 'tfjs' | 'pytorch';
  readonly detail: string;
  readonly rounds: number;
  readonly trainStepMs: number;
  readonly trainCpuMs: number;
  /** Per-round medians, to show the spread between rounds. */
  readonly trainStepMsByRound: ReadonlyArray<number>;
  readonly projectedTrainSeconds: number;
  readonly sampleEvalMs: number;
  readonly sampleEvalMsByRound: ReadonlyArray<number>;
  readonly peakRssMb: number;
}

const summarise = (ms: ReadonlyArray<Measurement>, defaultSteps: number, detail: string): Side => {
  const step = median(ms.flatMap((m) => m.trainStepMs));
  return {
    framework: ms[0]!.framework,
    detail,
    rounds: ms.length,
    trainStepMs: step,
    trainCpuMs: median(ms.flatMap((m) => m.trainCpuMs)),
    trainStepMsByRound: ms.map((m) => median(m.trainStepMs)),
    projectedTrainSeconds: (step * defaultSteps) / 1000,
    sampleEvalMs: median(ms.map((m) => m.sampleEvalMs)),
    sampleEvalMsByRound: ms.map((m) => m.sampleEvalMs),
    peakRssMb: Math.max(...ms.map((m) => m.peakRssMb)),
  };
};

const fmt = (x: number | undefined, digits = 1): string => (x === undefined || !Number.isFinite(x) ? '—' : x.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

/**
 * Ratios project / PyTorch: of the medians over all timed steps of all rounds, and per round (the two processes of a
 * round ran back to back, so a paired ratio cancels most of the load's drift on a shared machine); `train`/`sample`
 * are the medians of the per-round ratios.
 */
const ratiosOf = (project: Side, peer: Side): Ratios => {
  const paired = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number[] => a.slice(0, Math.min(a.length, b.length)).map((v, i) => v / b[i]!);
  const trainByRound = paired(project.trainStepMsByRound, peer.trainStepMsByRound);
  const sampleByRound = paired(project.sampleEvalMsByRound, peer.sampleEvalMsByRound);
  return {
    train: median(trainByRound),
    sample: median(sampleByRound),
    trainByRound,
    sampleByRound,
    trainPooled: project.trainStepMs / peer.trainStepMs,
    samplePooled: project.sampleEvalMs / peer.sampleEvalMs,
    peakRss: project.peakRssMb / peer.peakRssMb,
  };
};

const markdown = (
  o: Options,
  f: Files,
  sides: ReadonlyArray<Side>,
  ratios: Ratios | undefined,
  phases: Measurement['phases'],
  torchNote: string,
  torchInfo: string | undefined,
  train: TrainConfig,
): string => {
  return [
    '# End-to-end benchmark: the default MNIST recipe, project vs PyTorch',
    '',
    `${os.cpus().length} logical cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, load average at the end ` +
      `${os.loadavg().map((l) => l.toFixed(1)).join(' / ')}. ${o.rounds} alternating rounds; per round ${o.warmup} untimed + ${o.steps} timed training ` +
      `steps of batch ${train.batchSize}, then ${o.sampleSteps} Euler–Maruyama steps for ${o.samples} samples. ${torchNote}`,
    '',
    ...(o.dataParallel > 1
      ? [`The project trains data-parallel (\`--data-parallel ${o.dataParallel}\`): every batch in ${o.dataParallel} parts, one per single-threaded worker thread, its own process single-threaded (so its sampling ran on one thread).`, '']
      : []),
    `Recipe (the defaults of \`nx run experiments:mnist\`${f.labelsDropped ? ', without their class-conditional label table: the PyTorch peer has none, and the table costs one row lookup and one add of the embedding per step' : ''}): \`${JSON.stringify(train)}\`; ${f.params.toLocaleString('en')} parameters; the default run is ${f.defaultSteps} steps.`,
    '',
    '| | train ms/step | train CPU ms/step | per round (ms/step) | default run, projected s | sampling ms / eval / 64 samples | per round | peak RSS MB |',
    '|---|---:|---:|---|---:|---:|---|---:|',
    ...sides.map(
      (s) =>
        `| ${s.framework} (${s.detail}) | ${fmt(s.trainStepMs)} | ${fmt(s.trainCpuMs)} | ${s.trainStepMsByRound.map((v) => fmt(v)).join(' / ')} | ${fmt(s.projectedTrainSeconds, 0)} | ` +
        `${fmt(s.sampleEvalMs, 2)} | ${s.sampleEvalMsByRound.map((v) => fmt(v, 2)).join(' / ')} | ${fmt(s.peakRssMb, 0)} |`,
    ),
    ...(os.loadavg()[0]! > os.cpus().length
      ? ['', `**The machine was busy** (load average ${os.loadavg()[0]!.toFixed(1)} on ${os.cpus().length} cores): PyTorch's OpenMP threads spin-wait under contention, so its wall times and these ratios are unreliable; compare the CPU columns, or rerun on a quiet machine (or with --threads 1).`]
      : []),
    ...(ratios !== undefined
      ? [
          '',
          `Ratios project / PyTorch, the median of the per-round (paired) ratios: training **${fmt(ratios.train, 2)}×** ` +
            `(rounds: ${ratios.trainByRound.map((r) => fmt(r, 2)).join(', ')}), sampling **${fmt(ratios.sample, 2)}×** ` +
            `(rounds: ${ratios.sampleByRound.map((r) => fmt(r, 2)).join(', ')}); of the pooled medians: ${fmt(ratios.trainPooled, 2)}× and ` +
            `${fmt(ratios.samplePooled, 2)}×; peak RSS ${fmt(ratios.peakRss, 2)}× (targets: ≤ 1.5, ≤ 1.5, the project's peak ≤ 1 GB).`,
        ]
      : []),
    '',
    '## The project\'s memory by phase (last round)',
    '',
    '| phase | RSS MB | peak RSS so far MB | wasm heap MB |',
    '|---|---:|---:|---:|',
    ...(phases ?? []).map((p) => `| ${p.phase} | ${p.rssMb} | ${p.peakRssMb} | ${p.heapMb ?? '—'} |`),
    '',
    ...(torchInfo !== undefined ? ['## PyTorch\'s kernels and threads', '', '```', torchInfo.trim(), '```', ''] : []),
  ].join('\n');
};

interface Ratios {
  readonly train: number;
  readonly sample: number;
  readonly trainByRound: ReadonlyArray<number>;
  readonly sampleByRound: ReadonlyArray<number>;
  readonly trainPooled: number;
  readonly samplePooled: number;
  readonly peakRss: number;
}

// -------------------------------------------------------------------------------------
// main
// -------------------------------------------------------------------------------------

const main = async (): Promise<number> => {
  const argv = process.argv.slice(2).filter((a) => a !== '--');
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const o = parseOptions(argv);
  const files = await writeInputs(o.warmup + o.steps, path.join(o.out, 'e2e-inputs'));
  const { train } = await defaultRecipe();
  const torch = o.torch ? findTorch() : { missing: '--no-torch' };
  const torchNote = 'python' in torch ? `PyTorch: ${torch.python}, ${o.threads} threads, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in its process.` : `PyTorch peer skipped: ${torch.missing}.`;
  if ('missing' in torch) process.stderr.write(`[bench] ${torchNote}\n`);
  const project: Measurement[] = [];
  const peer: Measurement[] = [];
  let peerError: string | undefined;
  for (let round = 0; round < o.rounds; round++) {
    const doTorch = (): void => {
      if (!('python' in torch) || peerError !== undefined) return;
      process.stderr.write(`[bench] round ${round + 1}/${o.rounds}: pytorch\n`);
      try {
        peer.push(runTorch(torch.python, o, files));
      } catch (e) {
        peerError = (e as Error).message;
        process.stderr.write(`[bench] PyTorch peer failed, reporting the project alone: ${peerError}\n`);
      }
    };
    if (round % 2 === 1) doTorch();
    process.stderr.write(`[bench] round ${round + 1}/${o.rounds}: project\n`);
    project.push(runProject(o));
    if (round % 2 === 0) doTorch();
  }
  const sides: Side[] = [summarise(project, files.defaultSteps, project[0]!.backend ?? 'tfjs')];
  const last = peer[peer.length - 1];
  if (peer.length > 0) sides.push(summarise(peer, files.defaultSteps, `torch ${last!.version}, ${last!.threads} threads`));
  const ratios = sides.length === 2 ? ratiosOf(sides[0]!, sides[1]!) : undefined;
  const note = peerError !== undefined ? `PyTorch peer failed: ${peerError}.` : torchNote;
  const torchInfo = last !== undefined ? `${last.parallelInfo ?? ''}\n${last.config ?? ''}\nenvironment of the child: ${JSON.stringify(last.env)}` : undefined;
  const phases = project[project.length - 1]!.phases;
  fs.mkdirSync(o.out, { recursive: true });
  const json = { options: o, recipe: train, params: files.params, defaultSteps: files.defaultSteps, labelsDropped: files.labelsDropped, sides, ratios, phases, note, torchInfo, loadAverage: os.loadavg() };
  fs.writeFileSync(path.join(o.out, 'e2e.json'), JSON.stringify(json, null, 2) + '\n');
  const md = markdown(o, files, sides, ratios, phases, note, torchInfo, train);
  fs.writeFileSync(path.join(o.out, 'e2e.md'), md);
  process.stdout.write(md);
  return 0;
};

runMain(main, USAGE);
