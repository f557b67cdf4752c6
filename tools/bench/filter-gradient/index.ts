/**
 * Times of the three conv filter-gradient kernels of conv.ts at the ScoreNet's filter-gradient geometries (half width,
 * channels 16, 32, 64, 128; batch 64 unless `--batch`), on wasm with the default threads: each method's minimum wall
 * time over `--runs` calls (the machine is shared: minima filter out preemption), the output read back.
 *
 *   npm run bench -- filter-gradient [--runs 15] [--batch 64] [--wide] [--out tools/bench/out]
 *
 * `--wide` adds the full-width ScoreNet (channels 32, 64, 128, 256) and a few other output counts. The table goes to
 * standard output and to `<out>/filter-gradient.md`; the `picked` column is what `conv.filterGradientMethod` chooses.
 *
 * @module bench/filter-gradient
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf, initBackend, describeBackend, random, conv } from '@score-sde/tensor-fp';
import { arg, intFlag } from '../args';

const USAGE = 'usage: npm run bench -- filter-gradient [--runs 15] [--batch 64] [--wide] [--out tools/bench/out]\n';

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
  const out = arg('out', path.join('tools', 'bench', 'out'));
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'filter-gradient.md'), `${lines.join('\n')}\n`);
};

if (process.argv.includes('--help') || process.argv.includes('-h')) process.stdout.write(USAGE);
else
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  });
