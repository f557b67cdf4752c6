/**
 * Sampler overhead benchmark: how much wall time each sampler of `@score-sde/solvers` spends outside the score
 * network, for the MNIST ScoreNet (the experiment's default half-width config: channels 16,32,64,128, embedDim 128,
 * or the weights of a checkpoint) at batch 64 on the default backend.
 *
 *   overhead = (wall time of the run − NFE × median bare score time) / (NFE × median bare score time)
 *
 * where the bare score time is the same `ScoreFn` on a same-shaped input, timed in blocks that alternate with
 * the sampler runs (one block right before each run; the run is compared with its own block, so slow phases of
 * a shared machine hit both). A second estimate, less sensitive to load, times the score calls made inside the
 * run itself: in-run overhead = (wall − Σ time inside score calls) / Σ time inside score calls.
 *
 * Also counted, per run: tf.memory().numTensors before the run and after its result is disposed (must be equal),
 * the spread of numTensors over the steps of the loop (must be 0: no growth), and the reads to JavaScript made
 * inside the steps: `dataSync`/`arraySync`/`data`/`array` on tensors and `readSync`/`read` on the backend (the
 * latter catches kernels that read back internally), wrapped by monkeypatching in this process only.
 *
 * Run: `npm run bench -- overhead [--checkpoint DIR] [--batch 64] [--steps 50] [--rounds 3] [--bare 5] [--quick]`
 * Writes DIR/overhead.json and DIR/overhead.md (default DIR: tools/bench/out).
 *
 * @module bench/overhead
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, codec, random, fused, initBackend, describeBackend, watchReads, BACKEND_CHOICES, type Key } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, tutorial, ve } from '@score-sde/sde-math';
import { type Sampler, type SamplerSpec, type Step, DEFAULT_SNR, samplerFromSpec, sample } from '@score-sde/solvers';
import { type ScoreNetConfig, type TensorRecord, scoreNet, scoreFromNet, initScoreNet, loadCheckpoint, renderCheckpointError, emaParams, disposeTrainState } from '@score-sde/models';
import { cli, report } from '@score-sde/experiments';

// -------------------------------------------------------------------------------------
// samplers
// -------------------------------------------------------------------------------------

/** A sampler of the benchmark: a label, its spec, and the SDE it runs under ('model': the model's own SDE). */
interface Case {
  readonly name: string;
  readonly spec: SamplerSpec;
  readonly sde?: 'model' | 've';
}

/**
 * Every sampler family of the solvers package at N steps. Ancestral sampling is defined for VP and VE only: it
 * runs under VE with the same network (the timing does not depend on the SDE's coefficients).
 */
const cases = (N: number, odeTol: number): ReadonlyArray<Case> => [
  { name: 'euler-maruyama', spec: { kind: 'pc', predictor: 'euler-maruyama', steps: N } },
  { name: 'reverse-diffusion', spec: { kind: 'pc', predictor: 'reverse-diffusion', steps: N } },
  { name: 'ancestral (VE)', spec: { kind: 'pc', predictor: 'ancestral', steps: N }, sde: 've' },
  { name: 'pc: EM + langevin', spec: { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', snr: DEFAULT_SNR, steps: N } },
  { name: 'pc: RD + langevin (per-sample)', spec: { kind: 'pc', predictor: 'reverse-diffusion', corrector: 'langevin', norm: 'per-sample', order: 'corrector-first', steps: N } },
  { name: 'annealed langevin', spec: { kind: 'pc', predictor: 'none', corrector: 'annealed-langevin', steps: N } },
  { name: 'edm heun', spec: { kind: 'edm', steps: N } },
  { name: 'edm heun, churn γ=0.2', spec: { kind: 'edm', steps: N, gamma: 0.2 } },
  { name: 'dpm-solver++(2M)', spec: { kind: 'dpm-solver++2m', steps: N } },
  { name: 'pf-ode euler', spec: { kind: 'ode', method: 'euler', steps: N } },
  { name: 'pf-ode heun', spec: { kind: 'ode', method: 'heun', steps: N } },
  { name: 'pf-ode rk4', spec: { kind: 'ode', method: 'rk4', steps: N } },
  { name: `pf-ode rk45 (tol ${odeTol})`, spec: { kind: 'ode-adaptive', rtol: odeTol, atol: odeTol } },
  { name: 'adaptive sde (tol 0.01)', spec: { kind: 'adaptive-sde', rtol: 0.01, atol: 0.01 } },
  { name: 'adaptive pf-ode (tol 0.01)', spec: { kind: 'adaptive-sde', probabilityFlow: true, rtol: 0.01, atol: 0.01 } },
];

// -------------------------------------------------------------------------------------
// instrumentation
// -------------------------------------------------------------------------------------

/**
 * Reads to JavaScript, by where they happen: inside a score call (the network's own kernels: tfjs-wasm's Slice,
 * for instance, reads its input with readSync), inside a sampler step but outside the score (the sampler's own
 * reads: what the issue counts), and anywhere.
 */
interface SyncCounter {
  /** > 0 while the bench's own interleaved bare evaluations run: their reads are not counted. */
  paused: number;
  stepDepth: number;
  scoreDepth: number;
  inScore: number;
  inStep: number;
  total: number;
}

const syncs: SyncCounter = { paused: 0, stepDepth: 0, scoreDepth: 0, inScore: 0, inStep: 0, total: 0 };

/**
 * Counts reads to JavaScript (tensor and backend reads, outermost only: `watchReads` of tensor-fp), by where they
 * happen: inside a score call, inside a sampler step, or elsewhere.
 */
const instrumentReads = (): void => {
  watchReads(() => {
    if (syncs.paused > 0) return;
    syncs.total += 1;
    if (syncs.scoreDepth > 0) syncs.inScore += 1;
    else if (syncs.stepDepth > 0) syncs.inStep += 1;
  });
};

/** What a run records: score-call time and count, numTensors after every step. */
interface RunProbe {
  scoreMs: number;
  scoreCalls: number;
  readonly tensorsAfterStep: number[];
  /** Bare evaluations made between score calls of the run (excluded from its wall time). */
  readonly interleaved: number[];
  interleavedMs: number;
}

/** A bare evaluation to interleave with a run: every `every`-th score call (0: never), on its own input. */
interface Interleave {
  readonly every: number;
  readonly bare: () => number;
}

/**
 * The score, timing each call (synchronous backends: the call returns once its kernels have run); after every
 * `every`-th call, one bare evaluation on the bench's own input, whose whole duration is recorded so that it can
 * be taken out of the run's wall time (the sampler never sees it).
 */
const timedScore = (score: ScoreFn, probe: RunProbe, inter: Interleave): ScoreFn => (x, t) => {
  syncs.scoreDepth += 1;
  const t0 = performance.now();
  try {
    return score(x, t);
  } finally {
    probe.scoreMs += performance.now() - t0;
    probe.scoreCalls += 1;
    if (inter.every > 0 && probe.scoreCalls % inter.every === 0) {
      const u0 = performance.now();
      syncs.paused += 1;
      probe.interleaved.push(inter.bare());
      syncs.paused -= 1;
      probe.interleavedMs += performance.now() - u0;
    }
    syncs.scoreDepth -= 1;
  }
};

/** The step, marking reads made inside it as "in the loop" and recording numTensors after it. */
const probedStep = (step: Step, probe: RunProbe): Step => ({
  ...step,
  step: (score, state, tNext) => {
    syncs.stepDepth += 1;
    try {
      return step.step(score, state, tNext);
    } finally {
      syncs.stepDepth -= 1;
      probe.tensorsAfterStep.push(tf.memory().numTensors);
    }
  },
});

// -------------------------------------------------------------------------------------
// measuring
// -------------------------------------------------------------------------------------

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2]! : 0.5 * (s[n / 2 - 1]! + s[n / 2]!);
};

/** Milliseconds of k bare evaluations of the score on x (each result disposed at once). */
const bareBlock = (score: ScoreFn, x: tf.Tensor, k: number): number[] => Array.from({ length: k }, (_, i) => bareOnce(score, x, 0.05 + (0.9 * i) / Math.max(1, k - 1)));

/** Milliseconds of one bare evaluation at time t. */
const bareOnce = (score: ScoreFn, x: tf.Tensor, t: number): number => {
  const t0 = performance.now();
  const out = score(x, t);
  const ms = performance.now() - t0;
  out.dispose();
  return ms;
};

/** One timed run of a sampler. */
interface RunRecord {
  /** Wall time of the run without the interleaved bare evaluations. */
  readonly wallMs: number;
  readonly nfe: number;
  /** Bare evaluations interleaved with the run (ms). */
  readonly interleaved: ReadonlyArray<number>;
  readonly steps: number;
  readonly scoreMs: number;
  /** Reads made by the sampler's steps outside the score calls. */
  readonly syncsInLoop: number;
  /** Reads made inside the score calls (the network's kernels). */
  readonly syncsInScore: number;
  readonly syncsTotal: number;
  readonly tensorsBefore: number;
  readonly tensorsAfter: number;
  /** max − min of numTensors after each step, from the third step on (multistep memory is set up by then). */
  readonly loopGrowth: number;
}

const runOnce = async (sampler: Sampler, score: ScoreFn, keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>, inter: Interleave): Promise<RunRecord> => {
  const probe: RunProbe = { scoreMs: 0, scoreCalls: 0, tensorsAfterStep: [], interleaved: [], interleavedMs: 0 };
  const probed: Sampler = { ...sampler, step: probedStep(sampler.step, probe) };
  const before = tf.memory().numTensors;
  const s0 = { inStep: syncs.inStep, inScore: syncs.inScore, total: syncs.total };
  const t0 = performance.now();
  const r = await sample(probed, timedScore(score, probe, inter), { keys, sampleShape })();
  const wallMs = performance.now() - t0 - probe.interleavedMs;
  const s1 = { inStep: syncs.inStep - s0.inStep, inScore: syncs.inScore - s0.inScore, total: syncs.total - s0.total };
  if (E.isLeft(r)) throw new Error(`sampler failed: ${JSON.stringify(r.left)}`);
  r.right.x.dispose();
  const after = tf.memory().numTensors;
  const loop = probe.tensorsAfterStep.slice(2);
  return {
    wallMs,
    nfe: r.right.nfe,
    interleaved: probe.interleaved,
    steps: r.right.steps,
    scoreMs: probe.scoreMs,
    syncsInLoop: s1.inStep,
    syncsInScore: s1.inScore,
    syncsTotal: s1.total,
    tensorsBefore: before,
    tensorsAfter: after,
    loopGrowth: loop.length === 0 ? 0 : Math.max(...loop) - Math.min(...loop),
  };
};

/**
 * The sampler's own cost per grid step: the median over `repeats` runs of wall time / steps with a free score
 * (s(x, t) = −x, one elementwise op: the score of N(0, I)). Far less sensitive to the machine's load than the
 * overhead ratio (no network to share the cores with), and it is what the ratio divides by the network's time.
 * Also the process CPU time per step (all threads), which time slicing on a loaded machine does not inflate.
 * Fixed-step samplers only (an adaptive one would take other steps with another score).
 */
const ownCostMsPerStep = async (sampler: Sampler, keys: ReadonlyArray<Key>, sampleShape: ReadonlyArray<number>, repeats: number): Promise<{ readonly wall: number; readonly cpu: number }> => {
  const free: ScoreFn = (x) => tf.neg(x);
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < repeats + 1; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await sample(sampler, free, { keys, sampleShape })();
    const ms = performance.now() - t0;
    const c = process.cpuUsage(c0);
    if (E.isLeft(r)) throw new Error(`sampler failed with the free score: ${JSON.stringify(r.left)}`);
    r.right.x.dispose();
    if (i > 0) {
      wall.push(ms / r.right.steps);
      cpu.push((c.user + c.system) / 1000 / r.right.steps);
    }
  }
  return { wall: median(wall), cpu: median(cpu) };
};

// -------------------------------------------------------------------------------------
// main
// -------------------------------------------------------------------------------------

const benchFlags = {
  checkpoint: cli.optional(cli.stringFlag({ description: 'checkpoint directory to take the ScoreNet (EMA weights) and SDE from (default: random init of --net, tutorial SDE)' })),
  net: cli.oneOfFlag(['mnist', 'tutorial'], {
    default: 'mnist',
    description: "without --checkpoint: the MNIST experiment's half-width ScoreNet (channels 16,32,64,128, embedDim 128) or the tutorial's (32,64,128,256, 256: the 1.1M-parameter network of the scorenet bench)",
  }),
  batch: cli.numberFlag(codec.PositiveInt, { description: 'batch size', default: 64 }),
  steps: cli.numberFlag(codec.PositiveInt, { description: 'steps N of the fixed-step samplers', default: 50 }),
  rounds: cli.numberFlag(codec.PositiveInt, { description: 'rounds (each: a bare block and a run per sampler)', default: 3 }),
  bare: cli.numberFlag(codec.PositiveInt, { description: 'bare score evaluations in the block before each run', default: 5 }),
  interleave: cli.numberFlag(codec.NonNegativeInt, { description: 'also one bare evaluation after every k-th score call of a run, its time taken out of the run (0: none)', default: 4 }),
  odeTol: cli.numberFlag(codec.PositiveFinite, { description: 'rtol = atol of the RK45 probability-flow sampler', default: 1e-3 }),
  only: cli.optional(cli.stringFlag({ description: 'run only the samplers whose name contains this text' })),
  quick: cli.booleanFlag({ description: 'smoke run: 10 steps, 1 round, 3 bare evaluations', default: false }),
  ownOnly: cli.booleanFlag({ description: "only the samplers' own cost per step with a free score (no network; seconds)", default: false }),
  noiseAtStep: cli.booleanFlag({
    description: "draw each stochastic step's normals when the step needs them instead of offering them to the kernel thread before its score evaluation (the form before stop 35; the same samples)",
    default: false,
  }),
  out: cli.stringFlag({ description: 'output folder', default: path.join('tools', 'bench', 'out') }),
  backend: cli.oneOfFlag(BACKEND_CHOICES, { default: 'auto', description: 'TensorFlow.js backend' }),
} as const;

/** The network, its SDE and a release function: from a checkpoint, or the `--net` config at random init. */
const loadModel = async (dir: string | undefined, net: 'mnist' | 'tutorial'): Promise<{ net: ScoreNetConfig; params: TensorRecord; sde: SDE; source: string; release: () => void }> => {
  if (dir === undefined) {
    const config: ScoreNetConfig = net === 'tutorial' ? { channels: [32, 64, 128, 256], embedDim: 256, fourierScale: 30 } : { channels: [16, 32, 64, 128], embedDim: 128, fourierScale: 30 };
    const params = initScoreNet(config, random.key(0));
    return { net: config, params, sde: tutorial(), source: 'random init', release: () => tf.dispose(Object.values(params)) };
  }
  const loaded = await loadCheckpoint(dir)();
  if (E.isLeft(loaded)) throw new Error(`--checkpoint: ${renderCheckpointError(loaded.left)}`);
  const { state, config } = loaded.right;
  return { net: config.model, params: emaParams(state), sde: config.sde, source: `checkpoint ${dir}`, release: () => disposeTrainState(state) };
};

/** Where the stochastic steps' normals were made: offered to the kernel thread ahead of the score, or at the step. */
const noiseAheadLine = (atStep: boolean, before: { readonly rows: number; readonly rowsHere: number }): string => {
  const now = fused.normalsAheadStatus();
  const [rows, rowsHere] = [now.rows - before.rows, now.rowsHere - before.rowsHere];
  const thread = fused.kernelThreadStatus();
  if (atStep) return "Stochastic steps' normals: drawn when the step needs them (--noise-at-step).";
  if (!thread.running) return `Stochastic steps' normals: drawn when the step needs them (no kernel thread: ${thread.reason ?? 'not running'}).`;
  const share = rows === 0 ? 'none offered' : `${(100 * (1 - rowsHere / rows)).toFixed(1)}% of ${rows} rows made by the kernel thread during the timed runs' score evaluations, the rest at the step`;
  return `Stochastic steps' normals: offered to the kernel thread before each score evaluation (random.normalPerSampleAhead): ${share}.`;
};

const main = async (): Promise<number> => {
  const flags = cli.parseFlagsOrExit(benchFlags, process.argv.slice(2), 'npm run bench -- overhead [flags]', 'Per-step overhead of every sampler over the bare score evaluations.');
  const steps = flags.quick ? 10 : flags.steps;
  const rounds = flags.quick ? 1 : flags.rounds;
  const bareK = flags.quick ? 3 : flags.bare;
  const info = await initBackend({ prefer: flags.backend, quiet: true });
  await fused.startKernelThread();
  fused.configureKernelThread({ background: !flags.noiseAtStep });
  instrumentReads();
  const model = await loadModel(flags.checkpoint, flags.net);
  const net = scoreNet(model.net, model.params);
  const scores: Record<'model' | 've', ScoreFn> = { model: scoreFromNet(model.sde, net), ve: scoreFromNet(ve(), net) };
  const sdes: Record<'model' | 've', SDE> = { model: model.sde, ve: ve() };
  const sampleShape = [28, 28, 1] as const;
  const keys = Array.from({ length: flags.batch }, (_, b) => random.foldIn(random.key(7), b));
  const x = random.normal(random.key(1), [flags.batch, ...sampleShape]);

  const all = cases(steps, flags.odeTol).filter((c) => flags.only === undefined || c.name.includes(flags.only));
  const built = all.map((c) => {
    const s = samplerFromSpec(sdes[c.sde ?? 'model'], c.spec);
    if (E.isLeft(s)) throw new Error(`${c.name}: ${s.left.problems.join('; ')}`);
    return { c, sampler: s.right, score: scores[c.sde ?? 'model'] };
  });

  const log = (l: string): boolean => process.stderr.write(`${l}\n`);
  log(`backend: ${describeBackend(info)}; model: ${model.source}, channels ${model.net.channels.join(',')}, embedDim ${model.net.embedDim}; SDE ${model.sde.kind}; batch ${flags.batch}, N = ${steps}, ${rounds} round(s)`);

  // The samplers' own cost per step, with a free score (fixed-step samplers).
  const own = new Map<string, { readonly wall: number; readonly cpu: number }>();
  for (const b of built) {
    if (b.sampler.grid.length <= 2) continue;
    own.set(b.c.name, await ownCostMsPerStep(b.sampler, keys, sampleShape, 5));
    log(`own cost  ${b.c.name.padEnd(32)} ${own.get(b.c.name)!.wall.toFixed(2)} ms/step wall, ${own.get(b.c.name)!.cpu.toFixed(2)} ms/step CPU (free score)`);
  }
  if (flags.ownOnly) {
    const rows = [...own.entries()].map(([sampler, ms]) => ({ sampler, 'own wall ms/step': Number(ms.wall.toFixed(3)), 'own CPU ms/step': Number(ms.cpu.toFixed(3)) }));
    fs.mkdirSync(flags.out, { recursive: true });
    fs.writeFileSync(path.join(flags.out, 'overhead-own.json'), report.toReportJson({ backend: describeBackend(info), batch: flags.batch, steps, rows }));
    process.stdout.write(`${report.markdownTable(rows)}\n`);
    tf.dispose(x);
    model.release();
    return 0;
  }

  // Warm-up: a few bare evaluations and a 3-step run of each fixed-step sampler (kernels compiled, JIT settled;
  // the adaptive ones integrate [T, ε] in one grid step and use the same kernels).
  bareBlock(scores.model, x, 3);
  for (const b of built) {
    if (b.sampler.grid.length <= 4) continue;
    const short = { ...b.sampler, grid: [...b.sampler.grid.slice(0, 3), b.sampler.grid[b.sampler.grid.length - 1]!] };
    await runOnce(short, b.score, keys, sampleShape, { every: 0, bare: () => 0 });
  }

  const records = built.map(() => [] as Array<RunRecord & { readonly bareMs: number; readonly bareMeanMs: number }>);
  // the normals offered ahead during the timed runs only (not the free-score runs, which leave the thread no idle time)
  const aheadBefore = fused.normalsAheadStatus();
  const bareAll: number[] = [];
  const bareBlockMedians: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [i, b] of built.entries()) {
      const block = bareBlock(b.score, x, bareK);
      let u = 0;
      const inter: Interleave = { every: flags.interleave, bare: () => bareOnce(b.score, x, 0.05 + 0.9 * ((u++ * 0.618034) % 1)) };
      const rec = await runOnce(b.sampler, b.score, keys, sampleShape, inter);
      const bares = [...block, ...rec.interleaved];
      bareAll.push(...bares);
      const bareMs = median(bares);
      const bareMeanMs = bares.reduce((p, q) => p + q, 0) / bares.length;
      bareBlockMedians.push(bareMs);
      records[i]!.push({ ...rec, bareMs, bareMeanMs });
      const ov = (rec.wallMs - rec.nfe * bareMs) / (rec.nfe * bareMs);
      log(
        `round ${r + 1}/${rounds}  ${b.c.name.padEnd(32)} NFE ${String(rec.nfe).padStart(4)}  wall ${(rec.wallMs / 1000).toFixed(2)} s  bare ${bareMs.toFixed(1)} ms  overhead ${(100 * ov).toFixed(1)}%  in-run ${((100 * (rec.wallMs - rec.scoreMs)) / rec.scoreMs).toFixed(1)}%  syncs in loop ${rec.syncsInLoop}  tensors ${rec.tensorsBefore}→${rec.tensorsAfter} (loop spread ${rec.loopGrowth})`,
      );
    }
  }

  const rows = built.map((b, i) => {
    const rs = records[i]!;
    const overheads = rs.map((r) => (r.wallMs - r.nfe * r.bareMs) / (r.nfe * r.bareMs));
    const overMeans = rs.map((r) => (r.wallMs - r.nfe * r.bareMeanMs) / (r.nfe * r.bareMeanMs));
    const inRun = rs.map((r) => (r.wallMs - r.scoreMs) / r.scoreMs);
    const outside = rs.map((r) => (r.wallMs - r.scoreMs) / r.steps);
    return {
      sampler: b.c.name,
      spec: b.c.spec,
      nfe: median(rs.map((r) => r.nfe)),
      steps: median(rs.map((r) => r.steps)),
      wallS: median(rs.map((r) => r.wallMs)) / 1000,
      bareScoreS: median(rs.map((r) => r.bareMs)) / 1000,
      overheadPct: 100 * median(overheads),
      overheadRangePct: [100 * Math.min(...overheads), 100 * Math.max(...overheads)],
      overheadOverMeanPct: 100 * median(overMeans),
      inRunOverheadPct: 100 * median(inRun),
      inRunRangePct: [100 * Math.min(...inRun), 100 * Math.max(...inRun)],
      outsideScoreMsPerStep: median(outside),
      ownMsPerStep: own.get(b.c.name)?.wall ?? null,
      ownCpuMsPerStep: own.get(b.c.name)?.cpu ?? null,
      syncsPerStep: median(rs.map((r) => r.syncsInLoop / r.steps)),
      syncsInLoop: median(rs.map((r) => r.syncsInLoop)),
      syncsOutsideLoop: median(rs.map((r) => r.syncsTotal - r.syncsInLoop - r.syncsInScore)),
      kernelReadsPerNfe: median(rs.map((r) => r.syncsInScore / r.nfe)),
      tensorsBefore: rs.map((r) => r.tensorsBefore),
      tensorsAfter: rs.map((r) => r.tensorsAfter),
      tensorGrowth: Math.max(...rs.map((r) => r.tensorsAfter - r.tensorsBefore)),
      loopSpread: Math.max(...rs.map((r) => r.loopGrowth)),
      rounds: rs.map((r) => ({ wallMs: r.wallMs, nfe: r.nfe, bareMs: r.bareMs, scoreMs: r.scoreMs })),
    };
  });

  const bareMedian = median(bareAll);
  const sortedBare = [...bareAll].sort((a, b) => a - b);
  const q = (p: number): number => sortedBare[Math.min(sortedBare.length - 1, Math.floor(p * sortedBare.length))]!;
  const noise = {
    bareMedianMs: bareMedian,
    bareIqrMs: [q(0.25), q(0.75)],
    bareBlockMedianRangeMs: [Math.min(...bareBlockMedians), Math.max(...bareBlockMedians)],
    bareBlockMedianRelSpreadPct: (100 * (Math.max(...bareBlockMedians) - Math.min(...bareBlockMedians))) / bareMedian,
    evaluations: bareAll.length,
    loadAverage: (await import('node:os')).loadavg(),
  };
  const meta = {
    backend: describeBackend(info),
    model: model.source,
    channels: model.net.channels,
    embedDim: model.net.embedDim,
    sde: model.sde,
    batch: flags.batch,
    steps,
    rounds,
    bareEvaluationsPerBlock: bareK,
    interleaveEvery: flags.interleave,
    date: new Date().toISOString(),
  };

  const out = flags.out;
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'overhead.json'), report.toReportJson({ meta, noise, rows }));
  const pct = (v: number): string => `${v.toFixed(1)}%`;
  const range = (r: ReadonlyArray<number>): string => `${r[0]!.toFixed(1)} … ${r[1]!.toFixed(1)}`;
  const table = report.markdownTable(
    rows.map((r) => ({
      sampler: r.sampler,
      NFE: r.nfe,
      'wall s': Number(r.wallS.toFixed(2)),
      'bare score s': Number(r.bareScoreS.toFixed(4)),
      'overhead %': pct(r.overheadPct),
      'range over rounds': range(r.overheadRangePct),
      'over bare mean %': pct(r.overheadOverMeanPct),
      'in-run overhead %': pct(r.inRunOverheadPct),
      'ms outside score / step': Number(r.outsideScoreMsPerStep.toFixed(2)),
      'own ms / step (free score)': r.ownMsPerStep === null ? 'n/a' : Number(r.ownMsPerStep.toFixed(2)),
      'own CPU ms / step': r.ownCpuMsPerStep === null ? 'n/a' : Number(r.ownCpuMsPerStep.toFixed(2)),
      'syncs/step': Number(r.syncsPerStep.toFixed(2)),
      'kernel reads / NFE': Number(r.kernelReadsPerNfe.toFixed(2)),
      'tensor growth': r.tensorGrowth,
      'loop spread': r.loopSpread,
    })),
  );
  const md = [
    '# Sampler overhead over the bare score evaluations',
    '',
    `${meta.backend}; ScoreNet channels ${meta.channels.join(',')}, embedDim ${meta.embedDim} (${meta.model}); SDE ${model.sde.kind}; batch ${meta.batch}; N = ${steps}; ${rounds} round(s); ${meta.date}. Command: \`npm run bench -- overhead ${process.argv.slice(2).join(' ')}\`.`,
    '',
    `overhead = (wall − NFE × bare) / (NFE × bare), bare = median of the bare evaluations of the run: ${bareK} right before it and one after every ${flags.interleave}-th score call of the run (their time taken out of its wall time), so both see the same load; median over rounds, range = min … max over rounds.`,
    "over bare mean = the same with the mean of those bare evaluations instead of their median: a run pays the mean of its evaluations, slow ones included, so the median measure also counts the host's slow evaluations as the sampler's (median over rounds).",
    'in-run overhead = (wall − time inside the score calls of the run) / that time (insensitive to load changes between the block and the run).',
    'syncs/step = reads to JavaScript (dataSync, arraySync, data, array, backend readSync/read) made by the sampler inside its steps, outside the score calls, per grid step (the adaptive samplers integrate the whole interval [T, ε] in one grid step: one read per attempted step, the error norm the step-size decision needs).',
    "kernel reads / NFE = backend reads inside one score call: tfjs-wasm's Slice kernel reads its input with readSync (a heap copy, no device sync); part of the bare time too.",
    "own ms / step = the sampler's wall time per grid step with a free score s(x, t) = −x (median of 5 runs): its own cost, without the network (fixed-step samplers); own CPU ms / step = the process CPU time (all threads) per step of those runs, less sensitive to load.",
    'tensor growth = numTensors after the run (result disposed) − before; loop spread = max − min of numTensors after each step from the third on.',
    '',
    table,
    '',
    noiseAheadLine(flags.noiseAtStep, aheadBefore),
    '',
    `Noise: bare evaluation median ${bareMedian.toFixed(1)} ms over ${bareAll.length} evaluations (IQR ${noise.bareIqrMs[0]!.toFixed(1)} … ${noise.bareIqrMs[1]!.toFixed(1)} ms); per-run bare medians ${range(noise.bareBlockMedianRangeMs)} ms (spread ${noise.bareBlockMedianRelSpreadPct.toFixed(1)}% of the median); load average at the end ${noise.loadAverage.map((v) => v.toFixed(2)).join(', ')} on ${(await import('node:os')).cpus().length} cores.`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(out, 'overhead.md'), md);
  process.stdout.write(`${md}\n`);
  tf.dispose(x);
  model.release();
  return 0;
};

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
