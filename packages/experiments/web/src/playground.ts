/**
 * The sampler playground: an SDE record, a sampler spec and a 2-D Gaussian mixture as editable JSON, decoded by the
 * toy check's codec (`ToySpec`: the same fields, checks and messages as `experiments:toy`; errors shown under the
 * editor they belong to, naming the field), the sampler built by solvers' `samplerFromSpec`, and run with the mixture's
 * exact score: the samples move along the run (the runner's async iterator) over the contours of the exact density
 * p_t at each state's time, with the step, NFE and time; Cancel stops it. At the end, the toy checks (toy/check.ts)
 * compare the samples with exact samples of the sampler's target, each within 5 standard errors. The same spec and
 * seed give the same samples as `experiments:toy` (the same key streams).
 *
 * @module web/playground
 */
import * as E from 'fp-ts/Either';
import { codec, random, liveTensors } from '@score-sde/tensor-fp';
import { exactScore, marginalMixture, mixtureDim, type GaussianMixture } from '@score-sde/sde-math';
import { type Sampler, run, outputOf, samplerFromSpec, samplerName, stepCount, DEFAULT_SNR } from '@score-sde/solvers';
import { ToySpec } from '../../src/toy/spec';
import { toyTarget, toyKeys, conformanceChecks, holdsWithin, standardErrorsOff, type ConformanceCheck } from '../../src/toy/check';
import { byId, publish, seconds, startBackend } from './host';
import { drawFrame, viewOf } from './plot';

/** The editors, each holding one field of the spec. */
const EDITORS = ['sampler', 'sde', 'data'] as const;
type Editor = (typeof EDITORS)[number];

/** What the page starts with: the reference PC sampler on VP, and three well-separated components. */
const DEFAULTS: Record<Editor, unknown> = {
  sampler: { kind: 'pc', predictor: 'euler-maruyama', corrector: 'langevin', steps: 200, snr: DEFAULT_SNR },
  sde: { kind: 'vp', betaMin: 0.1, betaMax: 20, T: 1 },
  data: { kind: 'gaussian-mixture', weights: [0.3, 0.5, 0.2], means: [[-2, -1], [2, 0.5], [-0.5, 2.5]], stds: [0.5, [0.4, 0.8], 0.3] },
};

/** The checks hold within this many standard errors (as the toy check's test). */
const WITHIN = 5;

const text = (e: Editor): HTMLTextAreaElement => byId<HTMLTextAreaElement>(`${e}-json`);
const input = (id: string): HTMLInputElement => byId<HTMLInputElement>(id);

/** A decoded spec ready to run: the spec and its sampler. */
interface Ready {
  readonly spec: ToySpec;
  readonly sampler: Sampler;
}

/** Where a problem is shown: the editor its field belongs to, else under the run controls. */
const placeOf = (problem: string): Editor | 'run' => (EDITORS as ReadonlyArray<string>).find((e) => problem === e || problem.startsWith(`${e}.`) || problem.startsWith(`${e}:`)) as Editor | undefined ?? 'run';

/**
 * Reads the editors and decodes them with the toy spec codec, then builds the sampler. Left: the problems, each naming
 * its field (`sampler.steps: expected PositiveInt, got -3`; `data: not JSON (…)`).
 */
const readSpec = (): E.Either<ReadonlyArray<string>, Ready> => {
  const parsed: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const e of EDITORS) {
    try {
      parsed[e] = JSON.parse(text(e).value);
    } catch (err) {
      problems.push(`${e}: not JSON (${(err as Error).message})`);
    }
  }
  if (problems.length > 0) return E.left(problems);
  const decoded = codec.decodeWith(ToySpec, 'spec')({ ...parsed, samples: Number(input('samples').value), seed: Number(input('seed').value) });
  if (E.isLeft(decoded)) return E.left(decoded.left.problems);
  const spec = decoded.right;
  if (mixtureDim(spec.data) !== 2) return E.left([`data.means: the playground draws 2-D mixtures (these have dimension ${mixtureDim(spec.data)})`]);
  if (spec.samples < 3) return E.left([`samples: at least 3 (the energy distance needs them), got ${spec.samples}`]);
  const sampler = samplerFromSpec(spec.sde, spec.sampler);
  return E.isLeft(sampler) ? E.left(sampler.left.problems.map((p) => `sampler.${p}`)) : E.right({ spec, sampler: sampler.right });
};

/** Shows the problems under their editors (and marks those editors), or the composed sampler's name and spec. */
const validate = (): E.Either<ReadonlyArray<string>, Ready> => {
  const r = readSpec();
  const problems = E.isLeft(r) ? r.left : [];
  for (const place of [...EDITORS, 'run'] as const) {
    byId(`${place}-errors`).textContent = problems.filter((p) => placeOf(p) === place).join('\n');
    if (place !== 'run') text(place).classList.toggle('invalid', problems.some((p) => placeOf(p) === place));
  }
  byId('sampler-name').textContent = E.isRight(r) ? samplerName(r.right.sampler) : '—';
  byId('decoded-spec').textContent = E.isRight(r) ? JSON.stringify(r.right.spec.sampler, null, 1) : '';
  byId<HTMLButtonElement>('sample').disabled = E.isLeft(r) || running !== undefined;
  publish({ problems });
  return r;
};

let running: AbortController | undefined;

/** JSON with one key per line and arrays of numbers (and of such arrays) on one line. */
const compactJson = (v: unknown): string =>
  JSON.stringify(v, null, 2).replace(/\[[-\d.eE+,\s\[\]]*\]/g, (arr) => arr.replace(/\s+/g, ' ').replace(/\[ /g, '[').replace(/ \]/g, ']'));

/** Shows the checks as a table: estimate, target, SE, how many SE off, and whether it holds. */
const showChecks = (checks: ReadonlyArray<ConformanceCheck>): void => {
  const rows = checks.map((c) => {
    const z = standardErrorsOff(c);
    const ok = holdsWithin(WITHIN)(c);
    return `<tr><td>${c.name}</td><td>${c.estimate.toFixed(4)}</td><td>${c.target.toFixed(4)}</td><td>${c.standardError.toExponential(2)}</td><td class="${ok ? 'good' : 'bad'}">${z.toFixed(2)} ${ok ? '✓' : '✗'}</td></tr>`;
  });
  byId('checks').innerHTML = `<tr><th>check</th><th>samples</th><th>target</th><th>SE</th><th>|Δ|/SE (≤ ${WITHIN})</th></tr>${rows.join('')}`;
};

/** Runs the decoded spec: the animation, then the checks. */
const sampleNow = async (ready: Ready): Promise<void> => {
  const { spec, sampler } = ready;
  const data: GaussianMixture = spec.data;
  const abort = new AbortController();
  running = abort;
  byId<HTMLButtonElement>('cancel').disabled = false;
  byId<HTMLButtonElement>('sample').disabled = true;
  byId('checks').innerHTML = '';
  const canvas = byId<HTMLCanvasElement>('plot');
  const status = byId('status');
  const total = stepCount(sampler);
  const keys = random.split(toyKeys(spec.seed).sampler, spec.samples);
  const started = performance.now();
  let lastDraw = -Infinity;
  let step = -1;
  let nfe = 0;
  let t = sampler.grid[0]!;
  let x: Float32Array = new Float32Array(0);
  publish({ status: 'running', sampler: samplerName(sampler), checks: undefined, samples: undefined });
  try {
    for await (const s of run(sampler, exactScore(spec.sde, data), { keys, sampleShape: [2], signal: abort.signal })) {
      step += 1;
      nfe = s.nfe;
      t = s.t;
      const now = performance.now();
      if (step === 0 || step === total || now - lastDraw > 30) {
        x = outputOf(s).dataSync() as Float32Array;
        const pt = marginalMixture(spec.sde, data, Math.max(t, 0));
        drawFrame(canvas, pt, viewOf(pt, data), x, `t = ${t.toPrecision(3)}`);
        lastDraw = performance.now();
        status.textContent = `step ${step}/${total} · NFE ${nfe} · ${seconds(lastDraw - started)}`;
      }
    }
  } catch (e) {
    status.textContent = `failed: ${(e as Error).message}`;
    publish({ status: 'failed', error: (e as Error).message });
    return finish();
  }
  const ms = performance.now() - started;
  if (step < total) {
    status.textContent = `cancelled at step ${Math.max(step, 0)}/${total} (t = ${t.toPrecision(3)}) · NFE ${nfe} · ${seconds(ms)}`;
    publish({ status: 'cancelled', step, nfe, seconds: ms / 1000 });
    return finish();
  }
  const samples = Float64Array.from(x);
  const target = toyTarget(spec.sde, data, sampler);
  const checks = conformanceChecks(target, samples, target.reference(random.split(toyKeys(spec.seed).reference, spec.samples)), 2);
  showChecks(checks);
  const held = checks.every(holdsWithin(WITHIN));
  status.textContent = `done: ${spec.samples} samples · ${total} steps · NFE ${nfe} · ${seconds(ms)} · ${held ? `every check within ${WITHIN} SE` : `a check is off by more than ${WITHIN} SE`}`;
  publish({ status: 'done', nfe, seconds: ms / 1000, samples: Array.from(samples), checks, liveTensors: liveTensors() });
  return finish();
};

const finish = (): void => {
  running = undefined;
  byId<HTMLButtonElement>('cancel').disabled = true;
  validate();
};

const main = async (): Promise<void> => {
  for (const e of EDITORS) {
    text(e).value = compactJson(DEFAULTS[e]);
    text(e).addEventListener('input', () => validate());
  }
  input('samples').addEventListener('input', () => validate());
  input('seed').addEventListener('input', () => validate());
  byId<HTMLButtonElement>('sample').disabled = true;
  const backend = await startBackend();
  if (E.isLeft(backend)) return;
  byId('sample').addEventListener('click', () => {
    const r = validate();
    if (E.isRight(r) && running === undefined) void sampleNow(r.right);
  });
  byId('cancel').addEventListener('click', () => running?.abort());
  const r = validate();
  if (E.isRight(r)) {
    const pt = marginalMixture(r.right.spec.sde, r.right.spec.data, 0);
    drawFrame(byId<HTMLCanvasElement>('plot'), pt, viewOf(pt, r.right.spec.data), [], 't = 0 (the data)');
  }
  publish({ status: 'idle', ready: true });
};

void main();
