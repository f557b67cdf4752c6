/**
 * The PyTorch twin: a ScoreNet's weights as a safetensors file with the parameter names and layouts of Yang Song's
 * score-SDE tutorial `ScoreNet` (its PyTorch `state_dict`), and back, so the same network trains in PyTorch and
 * samples, evaluates and composes here, or the other way round. `tools/torch/scorenet_twin.py` builds the PyTorch
 * side (`load_state_dict(strict=True)` accepts an exported file).
 *
 * Mapping, version {@link TORCH_MAPPING_VERSION} (project name, shape → tutorial name, shape):
 *
 *   embed.W                  [E/2]            → embed.0.W              [E/2]       GaussianFourierProjection.W (fixed)
 *   embed.dense.weight       [E, E] (in, out) → embed.1.weight         [E, E]      nn.Linear: [out, in]
 *   embed.dense.bias         [E]              → embed.1.bias           [E]
 *   convK.weight             [3, 3, in, out]  → convK.weight           [out, in, 3, 3]   nn.Conv2d: OIHW
 *   denseK.weight / .bias    [E, C] / [C]     → denseK.dense.weight / .bias   [C, E] / [C]   (the tutorial's Dense)
 *   gnormK / tgnormK .gamma, .beta  [C]       → gnormK / tgnormK .weight, .bias   [C]      nn.GroupNorm
 *   tconvK.weight            [3, 3, out, in]  → tconvK.weight          [in, out, 3, 3]   nn.ConvTranspose2d
 *   tconv1.bias              [1]              → tconv1.bias            [1]
 *
 * i.e. a linear weight is transposed, and conv and transposed-conv kernels have their axes permuted (3, 2, 0, 1); no
 * kernel is flipped (both libraries' transposed convolution is the adjoint of the same cross-correlation). The
 * tutorial's GroupNorm counts are 4, 32, 32, 32 / 32, 32, 32; at other widths both sides use gcd(count, channels).
 *
 * Parameterisation: the tutorial's `forward(x, t)` returns the score, net(x, t)/s(t); the project's `scoreNet` returns
 * the raw network net(x, c) and `scoreFromNet` applies the run's parameterisation (sde-math `parameterisation`): for
 * the tutorial's it divides by s(t), the same function of the same weights; for EDM's preconditioning the network is
 * the same module, fed c_in·x/m and c_noise = ¼ ln σ, and the PyTorch side applies the same scalings around it
 * (D = c_skip x̃ + c_out F). The header's `__metadata__` records `format`, `mapping_version`, `config` (ScoreNetConfig
 * JSON), `sde` (SDE JSON), `parameterisation` (its JSON; absent means the tutorial's), `data_range` ([lo, hi]; absent
 * means [0, 1]), and on export `weights` (ema or params) and `step`.
 *
 * @module torch-twin
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { random, codec, type DecodeError, type Key } from '@score-sde/tensor-fp';
import { SDE, Parameterisation, tutorialParameterisation } from '@score-sde/sde-math';
import { ScoreNetConfig, scoreNetSpec } from './scorenet';
import { type ParamSpec, type TensorRecord, cloneRecord, paramsFromValues, recordValues } from './params';
import { initAdam, adamConfig } from './optim';
import { type LossConfig, defaultLossConfig } from './loss';
import { DataRange, UNIT_RANGE } from './data-range';
import type { TrainConfig, TrainState } from './train-config';
import { type SafeTensor, decodeSafeTensors, encodeSafeTensors } from './safetensors';

// -------------------------------------------------------------------------------------
// the mapping
// -------------------------------------------------------------------------------------

/** The version of the name and layout mapping (in every exported file; an import refuses another). @category mapping */
export const TORCH_MAPPING_VERSION = '1';

/** The `format` metadata of the project's exports. @category mapping */
export const TORCH_FORMAT = 'score-sde-ts/scorenet-torch';

/** How a tensor's layout differs: not at all, a transposed linear weight, or a (transposed-)conv kernel permuted (3, 2, 0, 1). @category mapping */
export type TorchLayout = 'same' | 'linear' | 'kernel';

/** One parameter: its name here, its name in the tutorial's state_dict, and the layout change. @category mapping */
export interface TorchParam {
  readonly spec: ParamSpec;
  readonly torch: string;
  readonly layout: TorchLayout;
}

/** The tutorial's name of a project parameter name (see the module comment). @category mapping */
export const torchName = (name: string): string =>
  name === 'embed.W'
    ? 'embed.0.W'
    : name.startsWith('embed.dense.')
      ? name.replace('embed.dense.', 'embed.1.')
      : /^dense\d\./.test(name)
        ? name.replace(/^(dense\d)\./, '$1.dense.')
        : name.replace(/\.gamma$/, '.weight').replace(/\.beta$/, '.bias');

const layoutOf = (s: ParamSpec): TorchLayout => (s.shape.length === 4 ? 'kernel' : s.shape.length === 2 ? 'linear' : 'same');

/** The mapping of a ScoreNet config: every parameter of `scoreNetSpec`, in the tutorial's state_dict order. @category mapping */
export const torchMapping = (config: ScoreNetConfig): ReadonlyArray<TorchParam> => scoreNetSpec(config).map((spec) => ({ spec, torch: torchName(spec.name), layout: layoutOf(spec) }));

/** The axes of the PyTorch tensor, as axes of ours: out[i…] = in[perm…]. */
const PERMUTATION: Readonly<Record<TorchLayout, ReadonlyArray<number>>> = { same: [0], linear: [1, 0], kernel: [3, 2, 0, 1] };

/** Row-major data of `shape` with its axes permuted: result axis k is input axis perm[k]. @category mapping */
export const permuteAxes = (data: Float32Array, shape: ReadonlyArray<number>, perm: ReadonlyArray<number>): { readonly data: Float32Array; readonly shape: ReadonlyArray<number> } => {
  if (shape.length <= 1) return { data: Float32Array.from(data), shape: [...shape] };
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(data.length);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < perm.length; k++) src += idx[k]! * inStrides[perm[k]!]!;
    out[o] = data[src]!;
    for (let k = outShape.length - 1; k >= 0; k--) {
      idx[k]! += 1;
      if (idx[k]! < outShape[k]!) break;
      idx[k] = 0;
    }
  }
  return { data: out, shape: outShape };
};

const inverse = (perm: ReadonlyArray<number>): ReadonlyArray<number> => perm.map((_, i) => perm.indexOf(i));

// -------------------------------------------------------------------------------------
// export
// -------------------------------------------------------------------------------------

/** What an export records besides the weights. @category export */
export interface TorchExportInfo {
  readonly model: ScoreNetConfig;
  readonly sde: SDE;
  readonly parameterisation: Parameterisation;
  readonly dataRange: DataRange;
  /** Which weights of the state these are. */
  readonly weights: 'ema' | 'params';
  readonly step: number;
}

/**
 * The safetensors bytes of a ScoreNet's parameters under the tutorial's names and layouts, with the metadata of the
 * module comment. The same weights always give the same bytes.
 * @category export
 */
export const exportTorch = async (params: TensorRecord, info: TorchExportInfo): Promise<Uint8Array> => {
  const mapping = torchMapping(info.model);
  const values = await recordValues(params, mapping.map((m) => m.spec.name));
  const tensors: SafeTensor[] = mapping.map((m) => {
    const p = permuteAxes(values[m.spec.name]!, m.spec.shape, PERMUTATION[m.layout]);
    return { name: m.torch, shape: p.shape, data: p.data };
  });
  return encodeSafeTensors({
    tensors,
    metadata: {
      format: TORCH_FORMAT,
      mapping_version: TORCH_MAPPING_VERSION,
      config: JSON.stringify(info.model),
      sde: JSON.stringify(info.sde),
      parameterisation: JSON.stringify(info.parameterisation),
      data_range: JSON.stringify(info.dataRange),
      weights: info.weights,
      step: String(info.step),
    },
  });
};

// -------------------------------------------------------------------------------------
// import
// -------------------------------------------------------------------------------------

/** An imported ScoreNet: its config and SDE, and its parameter values by the project's names. @category import */
export interface TorchImport {
  readonly model: ScoreNetConfig;
  readonly sde: SDE;
  readonly parameterisation: Parameterisation;
  readonly dataRange: DataRange;
  readonly values: Readonly<Record<string, Float32Array>>;
}

const fail = (what: string, problems: ReadonlyArray<string>): E.Either<DecodeError, never> => E.left({ _tag: 'DecodeError', what, problems });

/** A metadata entry decoded as JSON with `c`; Left naming `__metadata__.<key>`. */
const jsonMeta = <A>(meta: Readonly<Record<string, string>>, key: string, c: t.Type<A, unknown, unknown>, what: string): E.Either<DecodeError, A> | undefined => {
  const raw = meta[key];
  if (raw === undefined) return undefined;
  const d = codec.decodeJson(c, what)(raw);
  return E.isLeft(d) ? fail(what, d.left.problems.map((p) => `__metadata__.${key}.${p}`)) : d;
};

/**
 * The config the tensors' shapes imply, for a file without `config` metadata: channels from conv1…conv4's out
 * channels, the embedding from embed.1.weight, the Fourier scale 30 (it only initialises W, which the file holds).
 */
const configFromShapes = (byName: ReadonlyMap<string, SafeTensor>): ScoreNetConfig | undefined => {
  const out = (n: string): number | undefined => byName.get(n)?.shape[0];
  const channels = ['conv1.weight', 'conv2.weight', 'conv3.weight', 'conv4.weight'].map(out);
  const e = out('embed.1.weight');
  return channels.every((c) => c !== undefined) && e !== undefined ? { channels: channels as [number, number, number, number], embedDim: e, fourierScale: 30 } : undefined;
};

/**
 * Reads a safetensors file of the tutorial ScoreNet: its metadata (`mapping_version` must be this one if given;
 * `config` and `sde` decoded with their codecs; without `config` the shapes say it; without `sde`, `fallbackSde` is
 * used, and without either it is an error), then every tensor of the mapping, present with the tutorial's shape, and
 * nothing else. Left naming every problem.
 * @category import
 */
export const importTorch = (bytes: Uint8Array, what: string, fallbackSde?: SDE): E.Either<DecodeError, TorchImport> => {
  const file = decodeSafeTensors(bytes, what);
  if (E.isLeft(file)) return file;
  const meta = file.right.metadata;
  const version = meta['mapping_version'];
  if (version !== undefined && version !== TORCH_MAPPING_VERSION) return fail(what, [`__metadata__.mapping_version: ${version}, this version reads mapping ${TORCH_MAPPING_VERSION}`]);
  const parameterisation = jsonMeta(meta, 'parameterisation', Parameterisation, what) ?? E.right(tutorialParameterisation);
  if (E.isLeft(parameterisation)) return parameterisation;
  const dataRange = jsonMeta(meta, 'data_range', DataRange, what) ?? E.right(UNIT_RANGE);
  if (E.isLeft(dataRange)) return dataRange;
  const byName = new Map(file.right.tensors.map((x) => [x.name, x] as const));
  const config = jsonMeta(meta, 'config', ScoreNetConfig, what) ?? (configFromShapes(byName) !== undefined ? E.right(configFromShapes(byName)!) : fail(what, ['(tensors): no config metadata, and conv1…conv4 / embed.1 do not say the widths']));
  if (E.isLeft(config)) return config;
  const sde = jsonMeta(meta, 'sde', SDE, what) ?? (fallbackSde !== undefined ? E.right(fallbackSde) : fail(what, ['__metadata__.sde: missing; say which SDE the network was trained under (--sde)']));
  if (E.isLeft(sde)) return sde;
  const mapping = torchMapping(config.right);
  const problems: string[] = [];
  const values: Record<string, Float32Array> = {};
  for (const m of mapping) {
    const x = byName.get(m.torch);
    const torchShape = PERMUTATION[m.layout].map((p) => m.spec.shape[p]!);
    if (x === undefined) {
      problems.push(`${m.torch}: missing (the tutorial ScoreNet of ${JSON.stringify(config.right)} has it, shape [${torchShape.join(', ')}])`);
      continue;
    }
    if (JSON.stringify(x.shape) !== JSON.stringify(m.layout === 'same' ? m.spec.shape : torchShape)) {
      problems.push(`${m.torch}: shape [${x.shape.join(', ')}], expected [${(m.layout === 'same' ? m.spec.shape : torchShape).join(', ')}]`);
      continue;
    }
    if (!x.data.every(Number.isFinite)) problems.push(`${m.torch}: holds NaN or ±Infinity`);
    values[m.spec.name] = permuteAxes(x.data, x.shape, inverse(PERMUTATION[m.layout])).data;
  }
  const known = new Set(mapping.map((m) => m.torch));
  const extra = file.right.tensors.filter((x) => !known.has(x.name)).map((x) => x.name);
  if (extra.length > 0) problems.push(`(tensors): not part of the tutorial ScoreNet: ${extra.join(', ')}`);
  return problems.length > 0 ? fail(what, problems) : E.right({ model: config.right, sde: sde.right, parameterisation: parameterisation.right, dataRange: dataRange.right, values });
};

/**
 * A training state holding imported weights: params and EMA both the weights, Adam at step 0, the run's key from
 * `key`; with a training config for the imported network, SDE, parameterisation and data range (the loss that
 * matches the parameterisation: σ²-weighted DSM with t ~ U(ε, T) for the tutorial's, EDM's weighting and log-normal
 * noise levels for EDM's; Adam lr 1e-4, EMA 0.999, batch 64), so it can be checkpointed, sampled, evaluated, or
 * trained further.
 * @category import
 */
export const stateFromImport = (imp: TorchImport, key: Key = random.key(0)): { readonly config: TrainConfig; readonly state: TrainState } => {
  const loss: LossConfig = imp.parameterisation.kind === 'tutorial' ? defaultLossConfig : { kind: 'dsm', weighting: 'edm', eps: 1e-5, noise: { kind: 'log-normal', mean: -1.2, std: 1.2 } };
  const config: TrainConfig = {
    model: imp.model,
    sde: imp.sde,
    loss,
    optim: adamConfig(),
    emaDecay: 0.999,
    batchSize: 64,
    parameterisation: imp.parameterisation,
    dataRange: imp.dataRange,
  };
  const specs = scoreNetSpec(imp.model);
  const trainable = specs.filter((s) => s.trainable);
  const params = paramsFromValues(specs, imp.values);
  return { config, state: { params, ema: cloneRecord(params, trainable.map((s) => s.name)), adam: initAdam(trainable), step: 0, key } };
};
