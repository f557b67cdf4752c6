/**
 * The digits page: a checkpoint written by `experiments:mnist`, loaded from a URL or a folder picked on this computer
 * through models' `loadCheckpointFrom` (the same layout, manifest codec, checksums and messages as in Node), drawn with
 * a named sampler of the experiments (`em`, `pc`, `ode`, `edm`, `dpm`: pipeline/samplers, the quick preset's settings
 * unless changed) from the same keys as `experiments:mnist --sample-only` (pipeline/keys), with the grid redrawn after
 * every step (the denoising step by step), progress, and Cancel.
 *
 * @module web/digits
 */
import * as E from 'fp-ts/Either';
import { liveTensors } from '@score-sde/tensor-fp';
import { type ScoreFn } from '@score-sde/sde-math';
import { type Sampler, run, outputOf, samplerName, stepCount } from '@score-sde/solvers';
import {
  type LoadedCheckpoint,
  type StoreSource,
  loadCheckpointFrom,
  renderCheckpointError,
  urlSource,
  filesSource,
  emaParams,
  scoreOfRun,
  dataRangeOf,
  parameterisationOf,
  parameterCount,
  disposeTrainState,
  rangeToImages,
} from '@score-sde/models';
import { SAMPLER_NAMES, SAMPLER_LABELS, IMAGE_SHAPE, type SamplerName, namedSampler, namedSamplerSpec, networksPerScore, isLabelled, endNoiseOf } from '../../src/pipeline/samplers';

/** The samplers the page offers: it loads one checkpoint, not its guide, and draws without labels, so the guided and labelled ones are left out. */
const PAGE_SAMPLERS: ReadonlyArray<SamplerName> = SAMPLER_NAMES.filter((s) => networksPerScore(s) === 1 && !isLabelled(s));
import { sampleKeys } from '../../src/pipeline/keys';
import { quickPreset } from '../../src/pipeline/recipe';
import { byId, publish, seconds, startBackend } from './host';

const input = (id: string): HTMLInputElement => byId<HTMLInputElement>(id);
const button = (id: string): HTMLButtonElement => byId<HTMLButtonElement>(id);

/** The loaded checkpoint and the score of its EMA weights (as every experiment samples). */
interface Model {
  readonly name: string;
  readonly loaded: LoadedCheckpoint;
  readonly score: ScoreFn;
}

let model: Model | undefined;
let running: AbortController | undefined;

/** Draws images (values in [0, 1], [n, 28, 28, 1] row-major) as a grid of ⌈√n⌉ columns, black on white. */
const drawGrid = (images: Float32Array, n: number): void => {
  const canvas = byId<HTMLCanvasElement>('grid');
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  const [h, w] = IMAGE_SHAPE;
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const gap = 2;
  const img = new ImageData(cols * (w + gap) + gap, rows * (h + gap) + gap);
  img.data.fill(255);
  for (let k = 0; k < n; k++) {
    const ox = gap + (k % cols) * (w + gap);
    const oy = gap + Math.floor(k / cols) * (h + gap);
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const v = Math.round(255 * (1 - images[k * h * w + i * w + j]!));
        const p = 4 * ((oy + i) * img.width + ox + j);
        img.data[p] = v;
        img.data[p + 1] = v;
        img.data[p + 2] = v;
      }
  }
  const tile = document.createElement('canvas');
  tile.width = img.width;
  tile.height = img.height;
  tile.getContext('2d')!.putImageData(img, 0, 0);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  const scale = Math.min(canvas.width / img.width, canvas.height / img.height);
  ctx.drawImage(tile, 0, 0, img.width * scale, img.height * scale);
};

/** The sampler the controls ask for, for the loaded model's SDE (Left: why it cannot be built). */
const chosenSampler = (m: Model): E.Either<string, { readonly name: SamplerName; readonly sampler: Sampler }> => {
  const name = byId<HTMLSelectElement>('sampler').value as SamplerName;
  if (!PAGE_SAMPLERS.includes(name)) return E.left(`${name} is autoguided: it needs the run's guide, which this page does not load`);
  const steps = Number(input('steps').value);
  const fastSteps = Number(input('fast-steps').value);
  if (!Number.isSafeInteger(steps) || steps < 1) return E.left(`steps: expected a positive integer, got ${input('steps').value}`);
  if (!Number.isSafeInteger(fastSteps) || fastSteps < 1) return E.left(`fast steps: expected a positive integer, got ${input('fast-steps').value}`);
  // the samplers stop where the loaded network's training stops (as the commands' do)
  const end = endNoiseOf(m.loaded.config.sde, m.loaded.config.loss);
  const settings = { ...quickPreset.sampling, steps, fastSteps, ...(end !== undefined ? { endNoise: end } : {}) };
  const sampler = namedSampler(m.loaded.config.sde, name, settings);
  byId('sampler-spec').textContent = JSON.stringify(namedSamplerSpec(m.loaded.config.sde, name, settings), null, 1);
  return E.isLeft(sampler) ? E.left(sampler.left.problems.join('; ')) : E.right({ name, sampler: sampler.right });
};

/** Enables Sample when a model is loaded and the controls make a sampler; shows the sampler's name. */
const refresh = (): void => {
  const s = model === undefined ? undefined : chosenSampler(model);
  byId('run-errors').textContent = s !== undefined && E.isLeft(s) ? s.left : '';
  byId('sampler-name').textContent = s !== undefined && E.isRight(s) ? samplerName(s.right.sampler) : '—';
  button('sample').disabled = running !== undefined || s === undefined || E.isLeft(s);
};

/** Loads a checkpoint from a source; shows its summary, or the same message Node gives. */
const load = async (source: StoreSource): Promise<void> => {
  byId('load-errors').textContent = '';
  byId('checkpoint-summary').textContent = `loading ${source.dir} …`;
  publish({ loading: source.dir, loadError: undefined, checkpoint: undefined });
  const r = await loadCheckpointFrom(source)();
  if (E.isLeft(r)) {
    const message = renderCheckpointError(r.left);
    byId('load-errors').textContent = message;
    byId('checkpoint-summary').textContent = model === undefined ? 'no checkpoint loaded' : byId('checkpoint-summary').textContent;
    publish({ loading: undefined, loadError: message });
    return refresh();
  }
  if (model !== undefined) disposeTrainState(model.loaded.state);
  const c = r.right.config;
  model = { name: source.dir, loaded: r.right, score: scoreOfRun(c, emaParams(r.right.state)) };
  byId('checkpoint-summary').textContent = [
    `${source.dir}: step ${r.right.state.step}`,
    `network: channels ${c.model.channels.join('/')}, embedding ${c.model.embedDim} (${parameterCount(c.model).toLocaleString('en')} parameters)`,
    `SDE: ${JSON.stringify(c.sde)}`,
    `parameterisation: ${JSON.stringify(parameterisationOf(c))}, data in [${dataRangeOf(c).join(', ')}]`,
  ].join('\n');
  publish({ loading: undefined, checkpoint: { dir: source.dir, step: r.right.state.step, config: c }, liveTensors: liveTensors() });
  refresh();
};

/** Draws the grid along the run: after every step the current state, mapped to images; at the end the samples. */
const sampleNow = async (m: Model): Promise<void> => {
  const chosen = chosenSampler(m);
  if (E.isLeft(chosen)) return;
  const { sampler } = chosen.right;
  const n = Math.max(1, Math.min(256, Number(input('samples').value) | 0));
  const seed = Number(input('seed').value) | 0;
  const range = dataRangeOf(m.loaded.config);
  const total = stepCount(sampler);
  const abort = new AbortController();
  running = abort;
  button('cancel').disabled = false;
  refresh();
  const progress = byId<HTMLProgressElement>('progress');
  const status = byId('status');
  progress.max = total;
  progress.value = 0;
  const started = performance.now();
  let firstFrame: number | undefined;
  let firstStep: number | undefined;
  let step = -1;
  let nfe = 0;
  let images: Float32Array = new Float32Array(0);
  // `?frames=none` draws only the samples (the benchmark's sampling-only figure); by default every step is drawn.
  const everyStep = new URLSearchParams(location.search).get('frames') !== 'none';
  publish({ status: 'running', sampler: samplerName(sampler), samples: undefined });
  try {
    for await (const s of run(sampler, m.score, { keys: sampleKeys(seed, 0, n), sampleShape: IMAGE_SHAPE, signal: abort.signal })) {
      step += 1;
      nfe = s.nfe;
      if (!everyStep && step > 0 && step < total) continue;
      const shown = rangeToImages(range, outputOf(s));
      images = shown.dataSync() as Float32Array;
      shown.dispose();
      drawGrid(images, n);
      const now = performance.now() - started;
      if (step === 0) firstFrame = now;
      if (step === 1) firstStep = now;
      progress.value = step;
      status.textContent = `step ${step}/${total} · NFE ${nfe} · t = ${s.t.toPrecision(3)} · ${seconds(now)}`;
      // Let the browser paint the new grid before the next step's work.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  } catch (e) {
    status.textContent = `failed: ${(e as Error).message}`;
    publish({ status: 'failed', error: (e as Error).message });
    return finish();
  }
  const ms = performance.now() - started;
  const timing = { seconds: ms / 1000, firstFrameMs: firstFrame, firstStepMs: firstStep, nfe, step };
  if (step < total) {
    status.textContent = `cancelled at step ${Math.max(step, 0)}/${total} · NFE ${nfe} · ${seconds(ms)}`;
    publish({ status: 'cancelled', ...timing });
    return finish();
  }
  status.textContent = `done: ${n} samples · ${total} steps · NFE ${nfe} · ${seconds(ms)} (first frame after ${seconds(firstFrame ?? 0)})`;
  publish({ status: 'done', ...timing, samples: Array.from(images), liveTensors: liveTensors() });
  return finish();
};

const finish = (): void => {
  running = undefined;
  button('cancel').disabled = true;
  refresh();
};

const main = async (): Promise<void> => {
  const select = byId<HTMLSelectElement>('sampler');
  select.innerHTML = PAGE_SAMPLERS.map((s) => `<option value="${s}">${s}: ${SAMPLER_LABELS[s]}</option>`).join('');
  // the preset's first sampler the page can draw, else the best one it can: dpm-sde
  select.value = quickPreset.samplers.find((s) => PAGE_SAMPLERS.includes(s)) ?? 'dpm-sde';
  input('steps').value = String(quickPreset.sampling.steps);
  input('fast-steps').value = String(quickPreset.sampling.fastSteps);
  for (const id of ['sampler', 'steps', 'fast-steps']) byId(id).addEventListener('input', refresh);
  const backend = await startBackend();
  if (E.isLeft(backend)) return;
  fetch('checkpoints/index.json')
    .then((r) => (r.ok ? r.json() : []))
    .then((list: ReadonlyArray<{ readonly name: string; readonly url: string }>) => {
      byId('bundled').innerHTML = list.map((c) => `<option value="${c.url}">${c.name}</option>`).join('');
      if (input('checkpoint-url').value === '' && list[0] !== undefined) input('checkpoint-url').value = list[0].url;
    })
    .catch(() => undefined);
  byId('load-url').addEventListener('click', () => {
    const url = input('checkpoint-url').value.trim();
    if (url !== '') void load(urlSource(url));
  });
  input('checkpoint-folder').addEventListener('change', () => {
    const files = Array.from(input('checkpoint-folder').files ?? []);
    const source = filesSource(files);
    if (E.isLeft(source)) byId('load-errors').textContent = `folder: ${source.left}`;
    else void load(source.right);
  });
  byId('sample').addEventListener('click', () => {
    if (model !== undefined && running === undefined) void sampleNow(model);
  });
  byId('cancel').addEventListener('click', () => running?.abort());
  const given = new URLSearchParams(location.search).get('checkpoint');
  if (given !== null) {
    input('checkpoint-url').value = given;
    await load(urlSource(given));
  }
  publish({ ready: true, status: 'idle' });
};

void main();
