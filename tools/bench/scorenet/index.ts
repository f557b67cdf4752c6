/**
 * ScoreNet benchmark (issue 6): forward pass and training step of the tutorial ScoreNet (1,115,297 parameters)
 * at batch 32 and 64 on every available tfjs backend, beside the same network in PyTorch when `python3-torch`
 * is installed (an optional peer, skipped with a message when absent).
 *
 *   npx tsx tools/bench/scorenet/index.ts [--backends wasm,cpu,…] [--batches 32,64] [--rounds 3]
 *                                         [--iterations 5] [--no-torch] [--quick] [--out DIR]
 *
 * Variants (`--backends`): wasm (default: plain-conv kernels, one thread per core), wasm-1thread, wasm-tfjs (tfjs
 * as shipped: its own conv kernels, 1 thread — forward only, it cannot train), cpu, tensorflow (if tfjs-node is
 * installed). Every measurement runs in a fresh process; tfjs and PyTorch alternate over `--rounds` rounds (the
 * machine's load drifts, and PyTorch's step is bimodal), and the medians are over all timed iterations of all
 * rounds. The slow `cpu` backend gets 1 round of 2 iterations.
 *
 * Writes DIR/scorenet.json (one row per framework, backend, batch: forwardMs, trainMs, iterations, peakRssMb,
 * forwardRatio/trainRatio to PyTorch (one thread per core) when it ran, plus forwardCpuMs/trainCpuMs and, for
 * single-threaded tfjs rows, forwardCpuRatio/trainCpuRatio against PyTorch with one thread: CPU time measures
 * the work done whatever else loads the machine) and DIR/scorenet.md (the table); DIR = tools/bench/out.
 *
 * @module bench/scorenet
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { VARIANTS, type Variant } from './variants';
import { torchEnv } from '../e2e/torch-env';
import { median, runMain } from '../args';

// -------------------------------------------------------------------------------------
// flags
// -------------------------------------------------------------------------------------

interface Options {
  readonly variants: ReadonlyArray<Variant>;
  readonly batches: ReadonlyArray<number>;
  readonly rounds: number;
  readonly iterations: number;
  readonly torch: boolean;
  readonly out: string;
}

const USAGE = `usage: npx tsx tools/bench/scorenet/index.ts [--backends ${Object.keys(VARIANTS).join(',')}] [--batches 32,64]
       [--rounds 3] [--iterations 5] [--no-torch] [--quick] [--out DIR]
`;

const flag = (argv: ReadonlyArray<string>, name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};

const positiveInt = (raw: string | undefined, name: string, fallback: number): number => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got "${raw}"`);
  return n;
};

const tfjsNodeInstalled = (): boolean => {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require.resolve(pkg);
      return true;
    } catch {
      /* not installed */
    }
  }
  return false;
};

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const quick = argv.includes('--quick');
  const rawVariants = flag(argv, 'backends');
  // Deduplicated, so the JSON has exactly one row per (framework, backend, batch).
  const variants = [...new Set(rawVariants?.split(',').map((s) => s.trim()) ?? Object.keys(VARIANTS).filter((v) => VARIANTS[v as Variant].byDefault))].map((v) => {
    if (!(v in VARIANTS)) throw new Error(`--backends: unknown variant "${v}" (known: ${Object.keys(VARIANTS).join(', ')})`);
    return v as Variant;
  });
  const batches = [...new Set((flag(argv, 'batches') ?? (quick ? '32' : '32,64')).split(',').map((b) => positiveInt(b, 'batches', 32)))];
  return {
    variants: variants.filter((v) => v !== 'tensorflow' || tfjsNodeInstalled() || rawVariants !== undefined),
    batches,
    rounds: positiveInt(flag(argv, 'rounds'), 'rounds', quick ? 1 : 3),
    iterations: positiveInt(flag(argv, 'iterations'), 'iterations', quick ? 2 : 5),
    torch: !argv.includes('--no-torch'),
    out: flag(argv, 'out') ?? path.join(__dirname, '..', 'out'),
  };
};

// -------------------------------------------------------------------------------------
// running measurements
// -------------------------------------------------------------------------------------

/** What a worker (tfjs or PyTorch) prints. */
interface Measurement {
  readonly backend?: string;
  readonly version?: string;
  readonly threads?: number;
  readonly forward: ReadonlyArray<number>;
  readonly train: ReadonlyArray<number> | null;
  readonly forwardCpu: ReadonlyArray<number>;
  readonly trainCpu: ReadonlyArray<number> | null;
  readonly trainError?: string;
  readonly peakRssMb: number;
  readonly params: number;
  /** PyTorch only: `torch.__config__.parallel_info()` of the child. */
  readonly parallelInfo?: string;
}

const PYTHON = '/usr/bin/python3';
const ROOT = path.join(__dirname, '..', '..', '..');

const runJson = (cmd: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv): Measurement => {
  const r = spawnSync(cmd, [...args], { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  if (r.status !== 0 || line === '') throw new Error(`${path.basename(args[1] ?? args[0] ?? cmd)} failed (${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(line) as Measurement;
};

const torchAvailable = (): string | undefined => {
  if (!fs.existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', env: torchEnv() });
  return r.status === 0 ? undefined : 'python3-torch is not installed (apt-get install python3-torch libopenblas0-openmp)';
};

/** Slow variants get one round of at most 2 timed iterations after 1 warm-up. */
const budget = (variant: Variant | 'pytorch', o: Options): { rounds: number; iterations: number; warmup: number } =>
  variant === 'cpu' ? { rounds: 1, iterations: Math.min(2, o.iterations), warmup: 1 } : { rounds: o.rounds, iterations: o.iterations, warmup: 2 };

const runTfjs = (variant: Variant, batch: number, o: Options): Measurement => {
  const b = budget(variant, o);
  const env = { ...process.env, ...VARIANTS[variant].env };
  return runJson(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, 'worker.ts'), '--variant', variant, '--batch', String(batch), '--iterations', String(b.iterations), '--warmup', String(b.warmup)], env);
};

/** PyTorch's child process runs without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (see `torchEnv`); it reports its kernels and threads. */
const runTorch = (batch: number, threads: number, o: Options): Measurement =>
  runJson(PYTHON, [path.join(__dirname, 'scorenet_torch.py'), '--batch', String(batch), '--iterations', String(o.iterations), '--threads', String(threads)], torchEnv());

/** PyTorch with one thread per core (the reference of the ratios) and with one thread (for CPU-time ratios). */
const TORCH_THREADS = [os.availableParallelism(), 1] as const;

// -------------------------------------------------------------------------------------
// aggregation and report
// -------------------------------------------------------------------------------------

/** A row of tools/bench/out/scorenet.json. */
export interface Row {
  readonly framework: 'tfjs' | 'pytorch';
  readonly backend: string;
  readonly batch: number;
  readonly forwardMs: number;
  readonly trainMs: number | null;
  readonly iterations: number;
  readonly peakRssMb: number;
  readonly forwardRatio?: number;
  readonly trainRatio?: number;
  /** Median CPU milliseconds of the process (all threads): robust to other load for single-threaded runs. */
  readonly forwardCpuMs: number;
  readonly trainCpuMs: number | null;
  /** Single-threaded rows: CPU time / PyTorch's with 1 thread (per-core efficiency, robust to load). */
  readonly forwardCpuRatio?: number;
  readonly trainCpuRatio?: number;
  readonly detail?: string;
}


interface Merged {
  readonly forward: number;
  readonly train: number | null;
  readonly forwardCpu: number;
  readonly trainCpu: number | null;
  readonly iterations: number;
  readonly peakRssMb: number;
  readonly last: Measurement;
}

/** Medians over all iterations of all rounds. */
const merge = (ms: ReadonlyArray<Measurement>): Merged => {
  const trained = ms.every((m) => m.train !== null && m.trainCpu !== null);
  return {
    forward: median(ms.flatMap((m) => m.forward)),
    train: trained ? median(ms.flatMap((m) => m.train!)) : null,
    forwardCpu: median(ms.flatMap((m) => m.forwardCpu)),
    trainCpu: trained ? median(ms.flatMap((m) => m.trainCpu!)) : null,
    iterations: ms.reduce((n, m) => n + m.forward.length, 0),
    peakRssMb: Math.max(...ms.map((m) => m.peakRssMb)),
    last: ms[ms.length - 1]!,
  };
};

const fmt = (x: number | null | undefined, digits = 0): string => (x === null || x === undefined ? '—' : x.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

const table = (rows: ReadonlyArray<Row>): string =>
  [
    '| framework | backend | batch | forward ms | train step ms | forward ×PyTorch | train ×PyTorch | forward CPU ms | train CPU ms | CPU ×PyTorch-1thread (fwd / train) | iterations | peak RSS MB |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.framework} | ${r.backend} | ${r.batch} | ${fmt(r.forwardMs, 1)} | ${fmt(r.trainMs, 1)} | ${fmt(r.forwardRatio, 2)} | ${fmt(r.trainRatio, 2)} | ` +
        `${fmt(r.forwardCpuMs, 1)} | ${fmt(r.trainCpuMs, 1)} | ${r.forwardCpuRatio === undefined ? '—' : `${fmt(r.forwardCpuRatio, 2)} / ${fmt(r.trainCpuRatio, 2)}`} | ${r.iterations} | ${fmt(r.peakRssMb)} |`,
    ),
  ].join('\n');

// -------------------------------------------------------------------------------------
// main
// -------------------------------------------------------------------------------------

const main = (): number => {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const o = parseOptions(argv);
  const noTorch = o.torch ? torchAvailable() : '--no-torch';
  if (noTorch !== undefined) process.stderr.write(`[bench] PyTorch peer skipped: ${noTorch}\n`);
  const rows: Row[] = [];
  for (const batch of o.batches) {
    const tfjs = new Map<Variant, Measurement[]>(o.variants.map((v) => [v, []]));
    const torch = new Map<number, Measurement[]>(TORCH_THREADS.map((t) => [t, []]));
    const failed = new Map<Variant, string>();
    for (let round = 0; round < o.rounds; round++) {
      const torchFirst = round % 2 === 1;
      const doTorch = (): void => {
        if (noTorch !== undefined) return;
        for (const threads of TORCH_THREADS) {
          process.stderr.write(`[bench] batch ${batch}, round ${round + 1}/${o.rounds}: pytorch, ${threads} thread(s)\n`);
          torch.get(threads)!.push(runTorch(batch, threads, o));
        }
      };
      if (torchFirst) doTorch();
      for (const v of o.variants) {
        if (round >= budget(v, o).rounds || failed.has(v)) continue;
        process.stderr.write(`[bench] batch ${batch}, round ${round + 1}/${o.rounds}: tfjs ${v}\n`);
        try {
          tfjs.get(v)!.push(runTfjs(v, batch, o));
        } catch (e) {
          failed.set(v, (e as Error).message);
          process.stderr.write(`[bench] tfjs ${v} skipped: ${(e as Error).message}\n`);
        }
      }
      if (!torchFirst) doTorch();
    }
    const [allCores, oneThread] = TORCH_THREADS.map((t) => (torch.get(t)!.length > 0 ? merge(torch.get(t)!) : undefined));
    TORCH_THREADS.forEach((threads, i) => {
      const m = [allCores, oneThread][i];
      if (m === undefined) return;
      rows.push({
        framework: 'pytorch',
        backend: i === 0 ? 'cpu' : 'cpu-1thread',
        batch,
        forwardMs: m.forward,
        trainMs: m.train,
        forwardCpuMs: m.forwardCpu,
        trainCpuMs: m.trainCpu,
        iterations: m.iterations,
        peakRssMb: m.peakRssMb,
        detail: `torch ${m.last.version}, ${m.last.threads} thread${threads === 1 ? '' : 's'}, OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset${m.last.parallelInfo !== undefined ? `; ${m.last.parallelInfo.replace(/\s+/g, ' ').trim()}` : ''}`,
      });
    });
    for (const v of o.variants) {
      const ms = tfjs.get(v)!;
      if (ms.length === 0) continue;
      const m = merge(ms);
      const singleThreaded = /\(SIMD, 1 thread\)|cpu \(plain/.test(m.last.backend ?? '');
      rows.push({
        framework: 'tfjs',
        backend: v,
        batch,
        forwardMs: m.forward,
        trainMs: m.train,
        forwardCpuMs: m.forwardCpu,
        trainCpuMs: m.trainCpu,
        iterations: m.iterations,
        peakRssMb: m.peakRssMb,
        ...(allCores !== undefined ? { forwardRatio: m.forward / allCores.forward } : {}),
        ...(allCores !== undefined && allCores.train !== null && m.train !== null ? { trainRatio: m.train / allCores.train } : {}),
        ...(singleThreaded && oneThread !== undefined ? { forwardCpuRatio: m.forwardCpu / oneThread.forwardCpu } : {}),
        ...(singleThreaded && oneThread !== undefined && oneThread.trainCpu !== null && m.trainCpu !== null ? { trainCpuRatio: m.trainCpu / oneThread.trainCpu } : {}),
        detail: `${m.last.backend ?? v}${m.last.trainError !== undefined ? `; training: ${m.last.trainError}` : ''}`,
      });
    }
  }
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'scorenet.json'), JSON.stringify(rows, null, 2) + '\n');
  const notes = rows.filter((r) => r.detail !== undefined).map((r) => `- ${r.framework} ${r.backend} (batch ${r.batch}): ${r.detail}`);
  const md = [
    `# ScoreNet benchmark (tutorial ScoreNet, ${(1115297).toLocaleString('en')} parameters)`,
    '',
    `Medians in milliseconds; ${os.cpus().length} logical cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, ` +
      `load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')}.` +
      (noTorch !== undefined ? ` PyTorch peer skipped: ${noTorch}.` : ''),
    '',
    'Wall-clock ratios are against PyTorch with one thread per core. CPU ms are the process\'s CPU time (all threads); for',
    'single-threaded runs they measure the work done whatever else loads the machine, and the CPU ratio compares',
    'them with PyTorch restricted to one thread.',
    '',
    table(rows),
    '',
    ...notes,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(o.out, 'scorenet.md'), md);
  process.stdout.write(md);
  return 0;
};

runMain(main, USAGE);
