/**
 * Times of the three conv filter-gradient kernels of conv.ts at the ScoreNet's filter-gradient geometries (half width,
 * channels 16, 32, 64, 128; batch 64 unless `--batch`), on wasm with the default threads: each method's minimum wall
 * time over `--runs` calls (the machine is shared: minima filter out preemption), the output read back.
 *
 *   npm run bench -- filter-gradient [--runs 15] [--batch 64] [--wide] [--kernel-threads] [--out tools/bench/out]
 *
 * `--wide` adds the full-width ScoreNet (channels 32, 64, 128, 256) and a few other output counts. The table goes to
 * standard output and to `<out>/filter-gradient.md`; the `picked` column is what `conv.filterGradientMethod` chooses.
 *
 * `--kernel-threads` instead times our own kernels on 1 and on 2 threads (the fused kernels' second thread,
 * `fused-thread.ts`; needs the threaded build, i.e. `SCORE_SDE_WASM_THREADS` unset or ≥ 2): the fused filter gradient at the
 * same geometries, the group norm forward and backward kernels at the ScoreNet's 7 group norms, and Adam + EMA at a few
 * parameter sizes, every call split (whatever its size), the two settings alternating call by call so that load from
 * other processes hits both alike → `<out>/kernel-threads.md`.
 *
 * @module bench/filter-gradient
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, initBackend, describeBackend, random, conv, fused } from '@score-sde/tensor-fp';
import { arg, intFlag } from '../args';

const USAGE = 'usage: npm run bench -- filter-gradient [--runs 15] [--batch 64] [--wide] [--kernel-threads] [--out tools/bench/out]\n';

type S4 = readonly [number, number, number, number];

/** [name, x shape, filter shape, stride]: every conv is 3×3 'valid'; a transposed conv's filter gradient is that of the conv z → x. */
const geometries = (b: number, ch: readonly [number, number, number, number]): ReadonlyArray<readonly [string, S4, S4, number]> => [
  ['conv1', [b, 28, 28, 1], [3, 3, 1, ch[0]], 1],
  ['tconv1', [b, 28, 28, 1], [3, 3, 1, 2 * ch[0]], 1],
  ['conv2', [b, 26, 26, ch[0]], [3, 3, ch[0], ch[1]], 2],
  ['tconv2', [b, 26, 26, ch[0]], [3, 3, ch[0], 2 * ch[1]], 2],
  ['conv3', [b, 12, 12, ch[1]], [3, 3, ch[1], ch[2]], 2],
  ['tconv3', [b, 12, 12, ch[1]], [3, 3, ch[1], 2 * ch[2]], 2],
  ['conv4 / tconv4', [b, 5, 5, ch[2]], [3, 3, ch[2], ch[3]], 2],
];

/** [name, x shape, groups] of the half-width ScoreNet's group norms (encoder, then decoder). */
const groupNorms = (b: number): ReadonlyArray<readonly [string, S4, number]> => [
  ['gnorm1', [b, 26, 26, 16], 4],
  ['gnorm2', [b, 12, 12, 32], 32],
  ['gnorm3', [b, 5, 5, 64], 32],
  ['gnorm4', [b, 2, 2, 128], 32],
  ['tgnorm4', [b, 5, 5, 64], 32],
  ['tgnorm3', [b, 12, 12, 32], 32],
  ['tgnorm2', [b, 26, 26, 16], 16],
];

/** Min-of-`runs` milliseconds of `f` on 1 and on 2 kernel threads, alternating call by call (two warm-up rounds). */
const oneAndTwo = (runs: number, f: () => tf.Tensor | tf.Tensor[]): [number, number] => {
  const best: [number, number] = [Infinity, Infinity];
  for (let r = 0; r < runs + 2; r++) {
    for (const [i, enabled] of [false, true].entries()) {
      fused.configureKernelThread({ enabled });
      const t0 = performance.now();
      const out = f();
      const ms = performance.now() - t0;
      tf.dispose(out);
      if (r >= 2) best[i] = Math.min(best[i]!, ms);
    }
  }
  fused.configureKernelThread({ enabled: true });
  return best;
};

const kernelThreads = async (runs: number, b: number, cases: ReadonlyArray<readonly [string, S4, S4, number]>): Promise<string[]> => {
  if (!(await fused.startKernelThread())) {
    throw new Error(`--kernel-threads: no kernel thread (${fused.kernelThreadStatus().reason ?? 'the wasm backend is single-threaded: SCORE_SDE_WASM_THREADS must be unset or ≥ 2'})`);
  }
  // Every call split, so the table shows the crossover too (the default minima are fused.KERNEL_THREAD_MIN_WORK).
  fused.configureKernelThread({ adaptive: false, minWork: { groupNorm: 0, filterGradient: 0, adam: 0 } });
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    console.log(line);
  };
  const row = (name: string, shape: string, work: number, [one, two]: [number, number]): void =>
    say(`| ${name} | ${shape} | ${work} | ${one.toFixed(3)} | ${two.toFixed(3)} | ${(one / two).toFixed(2)}× |`);
  say('| kernel | shape | work | 1 thread | 2 threads | speed-up |');
  say('|---|---|---:|---:|---:|---:|');
  for (const [name, xs, fs, s] of cases) {
    const ys = conv.conv2dOutputShape(xs, fs, s, 'valid');
    const x = random.normal(random.key(1), [...xs]) as tf.Tensor4D;
    const dy = random.normal(random.key(2), [...ys]) as tf.Tensor4D;
    row(`filter gradient ${name}`, `x [${xs.join(',')}], f [${fs.join(',')}]`, ys[0] * ys[1] * ys[2] * fs[0] * fs[1] * fs[2] * fs[3], oneAndTwo(runs, () => conv.filterGradientFused(x, dy, fs, s, 'valid')));
    tf.dispose([x, dy]);
  }
  for (const [name, xs, groups] of groupNorms(b)) {
    const c = xs[3];
    const x = random.normal(random.key(3), [...xs]) as tf.Tensor4D;
    const [gamma, beta, bias] = [random.normal(random.key(4), [c]), random.normal(random.key(5), [c]), random.normal(random.key(6), [xs[0], c])];
    const dz = random.normal(random.key(7), [...xs]);
    const f = fused.groupNormForward(x, gamma, beta, bias, groups, 1e-5, true);
    const work = xs.reduce((p, q) => p * q, 1);
    row(`group norm forward ${name}`, `[${xs.join(',')}], ${groups} groups`, work, oneAndTwo(runs, () => Object.values(fused.groupNormForward(x, gamma, beta, bias, groups, 1e-5, true))));
    row(`group norm backward ${name}`, `[${xs.join(',')}], ${groups} groups`, work, oneAndTwo(runs, () => fused.groupNormBackward(dz, x, gamma, f, groups, true)));
    tf.dispose([x, gamma, beta, bias, dz, ...Object.values(f)]);
  }
  for (const n of [4608, 18432, 73728, 147456]) {
    const t = (k: number): tf.Tensor => random.normal(random.key(k), [n]);
    const [g, p, m, e, v] = [t(8), t(9), t(10), t(11), tf.abs(t(12))];
    const scalars = { clip: 0.5, beta1: 0.9, oneMinusBeta1: 0.1, beta2: 0.999, oneMinusBeta2: 0.001, bc2: 0.3, eps: 1e-8, step: 0.01, decay: 0.99, oneMinusDecay: 0.01 };
    row('Adam + EMA', `${n} parameters`, n, oneAndTwo(runs, () => fused.adamEmaStep(g, p, m, v, e, scalars)));
    tf.dispose([g, p, m, v, e]);
  }
  fused.configureKernelThread({ adaptive: true, minWork: fused.KERNEL_THREAD_MIN_WORK });
  return lines;
};

const main = async (): Promise<void> => {
  const info = await initBackend({ prefer: 'wasm', quiet: true });
  const runs = intFlag(process.argv, 'runs', 15);
  const b = intFlag(process.argv, 'batch', 64);
  const wide = process.argv.includes('--wide');
  const cases = [
    ...geometries(b, [16, 32, 64, 128]),
    ...(wide
      ? [
          ...geometries(b, [32, 64, 128, 256]).map(([n, ...r]) => [`${n} (full width)`, ...r] as const),
          ...[4, 8, 12, 20].map((o) => [`conv2 with O = ${o}`, [b, 26, 26, 16], [3, 3, 16, o], 2] as const),
        ]
      : []),
  ];
  const out = arg('out', path.join('tools', 'bench', 'out'));
  if (process.argv.includes('--kernel-threads')) {
    const head = [
      `# Our own wasm kernels on 1 and 2 threads`,
      '',
      `${describeBackend(info)}; batch ${b}; min of ${runs} calls each, the two settings alternating, ms; every call split (work: elements, or multiply-adds for the filter gradient). ` +
        `Command: \`npm run bench -- filter-gradient --kernel-threads${wide ? ' --wide' : ''}\`.`,
      '',
    ];
    head.forEach((l) => console.log(l));
    const rows = await kernelThreads(runs, b, cases);
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'kernel-threads.md'), `${[...head, ...rows].join('\n')}\n`);
    return;
  }
  const lines = [
    `# Conv filter-gradient kernels at the ScoreNet's geometries`,
    '',
    `${describeBackend(info)}; batch ${b}; min of ${runs} calls, ms. Command: \`npm run bench -- filter-gradient${wide ? ' --wide' : ''}\`.`,
    '',
    '| geometry | x | filter | dilated | im2col | fused | picked |',
    '|---|---|---|---:|---:|---:|---|',
  ];
  const say = (line: string): void => {
    lines.push(line);
    console.log(line);
  };
  lines.forEach((l) => console.log(l));
  for (const [name, xs, fs, s] of cases) {
    const ys = conv.conv2dOutputShape(xs, fs, s, 'valid');
    const x = random.normal(random.key(1), [...xs]) as tf.Tensor4D;
    const dy = random.normal(random.key(2), [...ys]) as tf.Tensor4D;
    const time = (f: typeof conv.filterGradientFused): number => {
      let best = Infinity;
      for (let r = 0; r < runs + 2; r++) {
        const t0 = performance.now();
        const df = f(x, dy, fs, s, 'valid');
        df.dataSync();
        const ms = performance.now() - t0;
        df.dispose();
        if (r >= 2) best = Math.min(best, ms); // two warm-up calls
      }
      return best;
    };
    const t = [conv.filterGradientDilated, conv.filterGradientIm2col, conv.filterGradientFused].map(time);
    say(`| ${name} | [${xs.join(',')}] | [${fs.join(',')}] | ${t.map((v) => v.toFixed(2)).join(' | ')} | ${conv.filterGradientMethod(fs, ys)} |`);
    tf.dispose([x, dy]);
  }
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'filter-gradient.md'), `${lines.join('\n')}\n`);
};

if (process.argv.includes('--help') || process.argv.includes('-h')) process.stdout.write(USAGE);
else
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  });
