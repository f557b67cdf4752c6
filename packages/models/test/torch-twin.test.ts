/**
 * The PyTorch twin (torch-twin.ts, safetensors.ts), without PyTorch: a committed fixture written once by
 * tools/torch/scorenet_twin.py — a small-width tutorial ScoreNet (channels 4/8/8/8, embedding 8, PyTorch's own random
 * init) and its score on two fixed inputs — is imported and reproduced here within a float32 error bound derived
 * from the network's equations (reference-scorenet.ts), which the PyTorch output meets too; export → import
 * round-trips bit for bit; the codec refuses malformed files, naming the problem.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { tf, initBackend, random } from '@score-sde/tensor-fp';
import { tutorial, tutorialParameterisation } from '@score-sde/sde-math';
import {
  type ScoreNetConfig,
  safetensors,
  importTorch,
  exportTorch,
  stateFromImport,
  torchMapping,
  permuteAxes,
  scoreNet,
  scoreNetSpec,
  scoreFromNetPerSample,
  paramsFromValues,
  recordValues,
  disposeTrainState,
  TORCH_MAPPING_VERSION,
} from '../src';
import { referenceScore } from './reference-scorenet';
import { bitEqual } from './helpers';

const FIXTURE = path.join(__dirname, 'fixtures', 'torch-twin');
const weightsBytes = fs.readFileSync(path.join(FIXTURE, 'scorenet.safetensors'));
const io = (() => {
  const f = safetensors.decodeSafeTensors(fs.readFileSync(path.join(FIXTURE, 'io.safetensors')), 'io.safetensors');
  if (E.isLeft(f)) throw new Error(f.left.problems.join('\n'));
  const get = (n: string): Float32Array => f.right.tensors.find((x) => x.name === n)!.data;
  return { x: get('x'), t: get('t'), score: get('score') };
})();

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

const imported = () => {
  const r = importTorch(weightsBytes, 'scorenet.safetensors');
  if (E.isLeft(r)) throw new Error(r.left.problems.join('\n'));
  return r.right;
};

describe('the fixture of the PyTorch peer', () => {
  test('imports: the metadata gives the small-width config and the tutorial SDE; every tutorial tensor maps onto a project parameter', () => {
    const imp = imported();
    expect(imp.model).toEqual({ channels: [4, 8, 8, 8], embedDim: 8, fourierScale: 30 });
    expect(imp.sde).toEqual(tutorial());
    expect(Object.keys(imp.values).sort()).toEqual(scoreNetSpec(imp.model).map((s) => s.name).sort());
  });

  test('s_θ(x, t) here and in PyTorch both lie within 6 standard deviations of the float32 rounding error of the float64 reference at every pixel', () => {
    const imp = imported();
    const params = paramsFromValues(scoreNetSpec(imp.model), imp.values);
    const x = tf.tensor4d(io.x, [2, 28, 28, 1]);
    const out = tf.tidy(() => scoreFromNetPerSample(imp.sde, scoreNet(imp.model, params))(x, io.t));
    const ours = Float32Array.from(out.dataSync());
    tf.dispose([x, out, ...Object.values(params)]);
    const sigma = imp.sde.kind === 'tutorial' ? imp.sde.sigma : NaN;
    const ref = referenceScore(imp.values, imp.model.channels, io.x, Array.from(io.t), sigma);
    // 6σ of the modelled float32 error (reference-scorenet.ts): exceeded with probability ~2·10⁻⁹ per pixel for a
    // Gaussian error, so over 2 × 1568 values a failure means the mapping or a kernel is wrong, not bad luck.
    const sd = Array.from(ref.q, Math.sqrt);
    const over = (got: Float32Array): ReadonlyArray<string> =>
      Array.from(got).flatMap((g, i) => (Number.isFinite(g) && Math.abs(g - ref.v[i]!) <= 6 * sd[i]! ? [] : [`pixel ${i}: ${g} vs ${ref.v[i]} ± 6·${sd[i]}`]));
    expect(over(ours).slice(0, 5)).toEqual([]);
    expect(over(io.score).slice(0, 5)).toEqual([]);
    const maxV = Math.max(...Array.from(ref.v, Math.abs));
    const maxSd = Math.max(...sd);
    const z = (got: Float32Array): number => Math.max(...Array.from(got, (g, i) => Math.abs(g - ref.v[i]!) / sd[i]!));
    process.stdout.write(`[models] torch twin: |score| ≤ ${maxV.toFixed(3)}, σ ≤ ${maxSd.toExponential(2)}, max |ours − ref|/σ = ${z(ours).toFixed(2)}, max |torch − ref|/σ = ${z(io.score).toFixed(2)}\n`);
    // The allowance is a small fraction of the values (a loose one would pass anything, a wrong kernel included).
    expect(6 * maxSd).toBeLessThan(1e-3 * maxV);
  });
});

describe('export ⇄ import', () => {
  test('import ∘ export is the identity on the weights, bit for bit, and export ∘ import on the bytes of an export', async () => {
    const imp = imported();
    const { config, state } = stateFromImport(imp, random.key(3));
    const info = { model: config.model, sde: config.sde, parameterisation: tutorialParameterisation, dataRange: [0, 1] as const, weights: 'params' as const, step: 0 };
    const bytes = await exportTorch(state.params, info);
    const back = importTorch(bytes, 'export');
    if (E.isLeft(back)) throw new Error(back.left.problems.join('\n'));
    const params = paramsFromValues(scoreNetSpec(back.right.model), back.right.values);
    expect(Object.keys(state.params).filter((n) => !bitEqual(state.params[n]!, params[n]!))).toEqual([]);
    expect(Buffer.from(await exportTorch(params, info)).equals(Buffer.from(bytes))).toBe(true);
    // The export carries the tutorial's names and layouts: the same tensors as the PyTorch file, value for value.
    const theirs = safetensors.decodeSafeTensors(weightsBytes, 'fixture');
    const ours = safetensors.decodeSafeTensors(bytes, 'export');
    if (E.isLeft(theirs) || E.isLeft(ours)) throw new Error('decode');
    expect(ours.right.tensors.map((x) => [x.name, x.shape])).toEqual(theirs.right.tensors.map((x) => [x.name, x.shape]));
    ours.right.tensors.forEach((x, i) => expect([x.name, Buffer.from(x.data.buffer).equals(Buffer.from(theirs.right.tensors[i]!.data.buffer))]).toEqual([x.name, true]));
    expect(ours.right.metadata).toMatchObject({ mapping_version: TORCH_MAPPING_VERSION, parameterisation: '{"kind":"tutorial"}', data_range: '[0,1]', sde: JSON.stringify(tutorial()) });
    tf.dispose(Object.values(params));
    disposeTrainState(state);
  });

  test('the parameterisation and the data range travel in the metadata: an EDM-preconditioned run exports and imports as one', async () => {
    const imp = imported();
    const { state } = stateFromImport(imp, random.key(4));
    const edm = { kind: 'edm' as const, sigmaData: 0.5 };
    const bytes = await exportTorch(state.params, { model: imp.model, sde: imp.sde, parameterisation: edm, dataRange: [-1, 1], weights: 'params', step: 0 });
    const back = importTorch(bytes, 'export');
    if (E.isLeft(back)) throw new Error(back.left.problems.join('\n'));
    expect([back.right.parameterisation, back.right.dataRange]).toEqual([edm, [-1, 1]]);
    const again = stateFromImport(back.right, random.key(4));
    expect([again.config.parameterisation, again.config.dataRange, again.config.loss]).toEqual([edm, [-1, 1], expect.objectContaining({ weighting: 'edm' })]);
    disposeTrainState(again.state);
    disposeTrainState(state);
  });

  test('the layout permutations: conv [3,3,in,out] → [out,in,3,3], transposed conv [3,3,out,in] → [in,out,3,3], linear [in,out] → [out,in]; each inverted by the import', () => {
    const config: ScoreNetConfig = { channels: [4, 8, 8, 8], embedDim: 8, fourierScale: 30 };
    const byName = new Map(torchMapping(config).map((m) => [m.spec.name, m] as const));
    expect([byName.get('conv2.weight')!.torch, byName.get('tconv3.weight')!.torch, byName.get('dense4.weight')!.torch, byName.get('tgnorm2.beta')!.torch, byName.get('embed.dense.weight')!.torch]).toEqual([
      'conv2.weight',
      'tconv3.weight',
      'dense4.dense.weight',
      'tgnorm2.bias',
      'embed.1.weight',
    ]);
    // A [2, 3, 4, 5] array with value = its flat index: element (a, b, c, d) lands at (d, c, a, b).
    const data = Float32Array.from({ length: 120 }, (_, i) => i);
    const p = permuteAxes(data, [2, 3, 4, 5], [3, 2, 0, 1]);
    expect(p.shape).toEqual([5, 4, 2, 3]);
    const at = (a: number, b: number, c: number, d: number): number => p.data[((d * 4 + c) * 2 + a) * 3 + b]!;
    expect([at(0, 0, 0, 1), at(1, 2, 3, 4), at(0, 1, 2, 3)]).toEqual([1, 60 + 40 + 15 + 4, 20 + 10 + 3]);
    const back = permuteAxes(p.data, p.shape, [2, 3, 1, 0]);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });
});

describe('safetensors files that are refused, naming the problem', () => {
  const good = (): Uint8Array => Uint8Array.from(weightsBytes);
  const headerLength = Number(Buffer.from(weightsBytes).readBigUInt64LE(0));
  const withHeader = (edit: (h: Record<string, unknown>) => void): Uint8Array => {
    const h = JSON.parse(Buffer.from(weightsBytes.subarray(8, 8 + headerLength)).toString('utf8')) as Record<string, unknown>;
    edit(h);
    const text = Buffer.from(JSON.stringify(h));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(text.length));
    return Buffer.concat([len, text, weightsBytes.subarray(8 + headerLength)]);
  };
  const problems = (bytes: Uint8Array): string => {
    const r = importTorch(bytes, 'w.safetensors');
    return E.isLeft(r) ? r.left.problems.join('\n') : 'accepted';
  };

  test('truncated data, a header longer than the file, a dtype other than F32, a shape that does not fit its bytes', () => {
    expect(problems(good().subarray(0, weightsBytes.length - 4))).toMatch(/\(data\): the tensors end at byte \d+, the data region has \d+/);
    const long = good();
    Buffer.from(long.buffer).writeBigUInt64LE(BigInt(weightsBytes.length), 0);
    expect(problems(long)).toMatch(/\(header\): says \d+ bytes/);
    expect(problems(withHeader((h) => ((h['conv1.weight'] as { dtype: string }).dtype = 'F16')))).toMatch(/conv1\.weight\.dtype: F16, only F32 is read/);
    expect(problems(withHeader((h) => ((h['conv1.weight'] as { shape: number[] }).shape = [4, 1, 3, 2])))).toMatch(/conv1\.weight\.data_offsets: 144 bytes, shape \[4, 1, 3, 2\] of F32 needs 96/);
    expect(problems(withHeader((h) => ((h['conv1.weight'] as Record<string, unknown>)['extra'] = 1)))).toMatch(/extra: unknown key/);
  });

  test('a tensor missing, one too many, one of the wrong shape; another mapping version; another parameterisation', () => {
    const meta = (h: Record<string, unknown>): Record<string, string> => h['__metadata__'] as Record<string, string>;
    const file = safetensors.decodeSafeTensors(weightsBytes, 'w');
    if (E.isLeft(file)) throw new Error('decode');
    const rewrite = (f: (ts: ReadonlyArray<safetensors.SafeTensor>) => ReadonlyArray<safetensors.SafeTensor>): Uint8Array => safetensors.encodeSafeTensors({ ...file.right, tensors: f(file.right.tensors) });
    expect(problems(rewrite((ts) => ts.filter((x) => x.name !== 'dense3.dense.bias')))).toMatch(/dense3\.dense\.bias: missing/);
    expect(problems(rewrite((ts) => [...ts, { name: 'marginal_prob_std.sigma', shape: [1], data: new Float32Array([25]) }]))).toMatch(/not part of the tutorial ScoreNet: marginal_prob_std\.sigma/);
    expect(problems(rewrite((ts) => ts.map((x) => (x.name === 'embed.1.weight' ? { ...x, shape: [4, 16] } : x))))).toMatch(/embed\.1\.weight: shape \[4, 16\], expected \[8, 8\]/);
    expect(problems(withHeader((h) => (meta(h)['mapping_version'] = '2')))).toMatch(/mapping_version: 2, this version reads mapping 1/);
    expect(problems(withHeader((h) => (meta(h)['parameterisation'] = '{"kind":"v-prediction"}')))).toMatch(/parameterisation\.kind: .*v-prediction/);
    expect(problems(withHeader((h) => (meta(h)['data_range'] = '[1, -1]')))).toMatch(/data_range/);
  });

  test('without metadata the shapes give the config, and the SDE must be given', () => {
    const file = safetensors.decodeSafeTensors(weightsBytes, 'w');
    if (E.isLeft(file)) throw new Error('decode');
    const bare = safetensors.encodeSafeTensors({ tensors: file.right.tensors, metadata: {} });
    expect(problems(bare)).toMatch(/__metadata__\.sde: missing/);
    const r = importTorch(bare, 'bare', tutorial());
    expect(E.isRight(r) && r.right.model).toEqual({ channels: [4, 8, 8, 8], embedDim: 8, fourierScale: 30 });
  });
});

test('recordValues of an imported state equal the file values (the state holds the PyTorch weights as they are)', async () => {
  const imp = imported();
  const { state } = stateFromImport(imp);
  const v = await recordValues(state.params);
  expect(Object.keys(imp.values).filter((n) => !Buffer.from(v[n]!.buffer).equals(Buffer.from(imp.values[n]!.buffer)))).toEqual([]);
  disposeTrainState(state);
});
