/**
 * A stochastic step begins its noise before its score evaluation and takes it after (step.ts's `noiseDuring`): where
 * tensor-fp's kernel thread runs, the normals are made in that thread's idle moments meanwhile. The draw is the same
 * either way, so a sampler's output has the same bits with the kernel thread as without it. This file opts in to the
 * threaded wasm build (Jest keeps one thread otherwise).
 */
import * as E from 'fp-ts/Either';
import { tf, initBackend, random, fused } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, ve, vp, gaussian, exactScore } from '@score-sde/sde-math';
import { type Sampler, type SamplerSpec, samplerFromSpec, sample } from '@score-sde/solvers';

const requested = process.env['SCORE_SDE_WASM_THREADS'];
process.env['SCORE_SDE_WASM_THREADS'] = '2';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

afterAll(() => {
  fused.configureKernelThread({ enabled: true, adaptive: true, minWork: fused.KERNEL_THREAD_MIN_WORK });
  if (requested === undefined) delete process.env['SCORE_SDE_WASM_THREADS'];
  else process.env['SCORE_SDE_WASM_THREADS'] = requested;
});

const SHAPE = [8, 8, 1];
const D = 64;
const means = Array.from({ length: D }, (_, i) => Math.sin(i));
const stds = Array.from({ length: D }, (_, i) => 0.3 + 0.2 * Math.cos(i));
const keys = random.split(random.key(41), 6);

/** The exact score of a Gaussian on 8×8 images, evaluated on their flattened rows. */
const imageScore = (sde: SDE): ScoreFn => {
  const flat = exactScore(sde, gaussian(means, stds));
  return (x, t) => tf.tidy(() => tf.reshape(flat(tf.reshape(x, [-1, D]), t), x.shape));
};

const build = (sde: SDE, spec: SamplerSpec): Sampler => {
  const s = samplerFromSpec(sde, spec);
  if (E.isLeft(s)) throw new Error(s.left.problems.join('; '));
  return s.right;
};

const bitsOf = async (sde: SDE, spec: SamplerSpec): Promise<Uint32Array> => {
  const r = await sample(build(sde, spec), imageScore(sde), { keys, sampleShape: SHAPE })();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  const bits = new Uint32Array(Float32Array.from(r.right.x.dataSync()).buffer);
  r.right.x.dispose();
  return bits;
};

const stochastic: ReadonlyArray<readonly [string, SDE, SamplerSpec, number]> = [
  // [name, SDE, spec, noise draws per run]
  ['euler-maruyama (VP)', vp(), { kind: 'pc', predictor: 'euler-maruyama', steps: 6 }, 6],
  ['reverse diffusion (VP)', vp(), { kind: 'pc', predictor: 'reverse-diffusion', steps: 40 }, 40],
  ['ancestral (VP)', vp(), { kind: 'pc', predictor: 'ancestral', steps: 6 }, 6],
  ['ancestral (VE)', ve(), { kind: 'pc', predictor: 'ancestral', steps: 6 }, 6],
  ['euler-maruyama + langevin (VE)', ve(), { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', steps: 6 }, 12],
  ['annealed langevin (VE)', ve(), { kind: 'pc', predictor: 'none', corrector: 'annealed-langevin', steps: 6 }, 6],
  ['dpm-solver++(2M), η = 1 (VE)', ve(), { kind: 'dpm-solver++2m', steps: 6, eta: 1 }, 6],
];

test.each(stochastic)('%s: the same bits with its noise made ahead on the kernel thread as drawn at each step on one thread', async (_name, sde, spec, draws) => {
  expect(await fused.startKernelThread()).toBe(true);
  fused.configureKernelThread({ enabled: false });
  const rows = fused.normalsAheadStatus().rows;
  const oneThread = await bitsOf(sde, spec);
  expect(fused.normalsAheadStatus().rows).toBe(rows);
  fused.configureKernelThread({ enabled: true, adaptive: false, minWork: { normals: 0 } });
  const buffers = tf.backend().numDataIds();
  const ahead = await bitsOf(sde, spec);
  // every draw went through the kernel thread's job, and left no buffer on the backend's heap (not tensors until taken)
  expect(fused.normalsAheadStatus().rows - rows).toBe(draws * keys.length);
  expect(tf.backend().numDataIds()).toBe(buffers);
  const first = ahead.findIndex((b, i) => b !== oneThread[i]);
  expect(first).toBe(-1);
  expect(ahead.length).toBe(keys.length * D);
});
