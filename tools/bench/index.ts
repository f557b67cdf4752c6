/**
 * `npm run bench -- <name> [flags]`: the workspace benchmarks. Speed and memory are measured here, never in tests.
 *
 *   samplers   error (energy distance, component-weight error) versus NFE of every sampler on fixed 2-D and 64-D
 *              Gaussian mixtures under VP and VE (exact scores) → tools/bench/out/samplers.{md,json,png}
 *   scorenet   ScoreNet forward and training-step milliseconds at batch 32 and 64 on every available backend, and
 *              the same network in PyTorch when python3-torch is installed → tools/bench/out/scorenet.{md,json}
 *   overhead   per-step overhead of every sampler over the bare ScoreNet evaluations (MNIST ScoreNet, batch 64),
 *              reads to JavaScript per step and tensor growth → tools/bench/out/overhead.{md,json}
 *   recipes    the recipe study: candidate training recipes trained for the same wall-clock budget on the real
 *              MNIST images, FID / confident-class rate / bits/dim → tools/bench/out/recipes.{md,json,png}
 *   e2e        the default recipe of `nx run experiments:mnist` trained for the same steps on the same batches and
 *              sampled with the same sampler in the project and in PyTorch, alternating rounds: seconds per step,
 *              ms per score evaluation, peak RSS and memory per phase → tools/bench/out/e2e.{md,json}
 *   filter-gradient  the conv filter-gradient kernels (dilated, im2col, fused) per ScoreNet geometry, min of N calls
 *              → tools/bench/out/filter-gradient.md
 *   web        64 digits with the default fast sampler in the digits page (headless Chromium) and in Node, alternating
 *              rounds per thread count, and the page's time to its first frame → tools/bench/out/web.{md,json}
 *
 * Each benchmark takes `--help`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const BENCHES: Readonly<Record<string, string>> = {
  samplers: 'error versus NFE of every sampler on Gaussian mixtures with exact scores',
  scorenet: 'ScoreNet forward / training-step milliseconds per backend, beside PyTorch when installed',
  overhead: 'per-step overhead of every sampler over the bare score evaluations, syncs per step, tensor growth',
  recipes: 'the recipe study: candidate training recipes at equal wall-clock budgets, judged by FID, confident-class rate and bits/dim',
  e2e: 'the default MNIST recipe trained and sampled end to end, beside the same recipe in PyTorch when installed',
  web: '64 digits with the default fast sampler in headless Chromium (the digits page) against Node, and the time to the first frame',
  'filter-gradient': 'the three conv filter-gradient kernels (dilated conv, im2col GEMM, fused wasm) at the ScoreNet geometries',
};

const usage = (): string =>
  ['usage: npm run bench -- <name> [flags]', '', ...Object.entries(BENCHES).map(([k, v]) => `  ${k.padEnd(10)} ${v}`), ''].join('\n');

const main = (): number => {
  const [name, ...rest] = process.argv.slice(2).filter((a) => a !== '--');
  if (name === undefined || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (!(name in BENCHES)) {
    process.stderr.write(`unknown benchmark "${name}"\n${usage()}`);
    return 2;
  }
  const entry = path.join(__dirname, name, 'index.ts');
  if (!fs.existsSync(entry)) {
    process.stderr.write(`benchmark ${name} has no entry ${entry}\n`);
    return 2;
  }
  const r = spawnSync(process.execPath, [require.resolve('tsx/cli'), entry, ...rest], { stdio: 'inherit' });
  return r.status ?? 1;
};

process.exit(main());
