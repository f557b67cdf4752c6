/**
 * Fuzzing what the commands read from files, end to end: toy spec files (arbitrary JSON, arbitrary text, mutations
 * of a valid spec), sampler specs (arbitrary records of the spec's own keys), checkpoints with a mutated manifest,
 * CURRENT pointer or weights (through `experiments:mnist --sample-only`), classifier directories, and IDX files.
 * Never an escaped exception or a stack trace; a refusal names the file and the field or byte count at fault.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import { codec, random } from '@score-sde/tensor-fp';
import { vp, ve, subvp, tutorial } from '@score-sde/sde-math';
import { SamplerSpec, samplerFromSpec, isDecreasing } from '@score-sde/solvers';
import { tensorFiles, parseIdxImages, parseIdxLabels, encodeIdxImages, encodeIdxLabels, readIdxImages, classifier, renderStoreError } from '@score-sde/models';
import { mnistMain } from '../../src/mnist';
import { toyMain } from '../../src/toy';
import { FIELD_PROBLEM, SMALL_TOY, broken, invoke, sandbox, useCheckpointFixture } from './harness';
import { runs } from '@score-sde/tensor-fp/testing';

const fixture = useCheckpointFixture();

// -------------------------------------------------------------------------------------
// JSON mutations
// -------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a node of a JSON value (the root is []). */
const pathsOf = (v: Json, at: ReadonlyArray<string | number> = []): ReadonlyArray<ReadonlyArray<string | number>> =>
  v !== null && typeof v === 'object'
    ? [at, ...(Array.isArray(v) ? v.flatMap((x, i) => pathsOf(x, [...at, i])) : Object.entries(v).flatMap(([k, x]) => pathsOf(x, [...at, k])))]
    : [at];

/** A JSON edit at a path: replace the node, delete it (from its object or array), or add an unknown key beside it. */
type Edit = { readonly kind: 'replace'; readonly value: Json } | { readonly kind: 'delete' } | { readonly kind: 'add'; readonly key: string; readonly value: Json };

const editAt = (v: Json, at: ReadonlyArray<string | number>, e: Edit): Json => {
  if (at.length === 0) return e.kind === 'replace' ? e.value : e.kind === 'add' && v !== null && typeof v === 'object' && !Array.isArray(v) ? { ...v, [e.key]: e.value } : v;
  const [head, ...rest] = at;
  if (Array.isArray(v)) {
    const i = head as number;
    if (rest.length === 0 && e.kind === 'delete') return v.filter((_, j) => j !== i);
    return v.map((x, j) => (j === i ? editAt(x, rest, e) : x));
  }
  if (v !== null && typeof v === 'object') {
    const k = head as string;
    if (rest.length === 0 && e.kind === 'delete') return Object.fromEntries(Object.entries(v).filter(([key]) => key !== k));
    return { ...v, [k]: editAt(v[k]!, rest, e) };
  }
  return v;
};

/** Small values only where a number sets the amount of work (samples, steps, passes): odd ones, or ≤ 3. */
const COST_KEYS = new Set(['samples', 'steps', 'passes', 'correctorSteps']);
const smallOrOdd: fc.Arbitrary<Json> = fc.constantFrom(-1, 0, 1, 2, 3, 2.5, 1e-300, -0, '3', null, true, [], {}, 9007199254740993, 1e300);

const editArb = (costly: boolean): fc.Arbitrary<Edit> =>
  fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), value: costly ? smallOrOdd : (fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>) }),
    fc.constant({ kind: 'delete' as const }),
    fc.record({ kind: fc.constant('add' as const), key: fc.string({ maxLength: 6 }), value: fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json> }),
  );

/** Up to three random edits of a JSON document. */
const mutatedJson = (base: Json): fc.Arbitrary<Json> =>
  fc.array(fc.tuple(fc.nat(), fc.boolean(), fc.nat()), { minLength: 1, maxLength: 3 }).chain((picks) =>
    fc.tuple(...picks.map(([, , seed]) => fc.tuple(editArb(false), editArb(true), fc.constant(seed)))).map((edits) =>
      edits.reduce<Json>((doc, [free, costly, seed]) => {
        const paths = pathsOf(doc);
        const at = paths[seed % paths.length]!;
        return editAt(doc, at, COST_KEYS.has(String(at[at.length - 1])) ? costly : free);
      }, base),
    ),
  );

// -------------------------------------------------------------------------------------
// toy spec files
// -------------------------------------------------------------------------------------

/** Runs toy on a spec file with the given text; the outcome must keep every promise; returns it. */
const toyOn = async (text: string): Promise<{ code: number | 'threw'; stderr: string }> => {
  const cwd = sandbox('toy-spec');
  try {
    fs.writeFileSync(path.join(cwd, 'spec.json'), text);
    const o = await invoke((a) => toyMain(a), ['--spec', 'spec.json', '--out', 'out/report.json', '--backend', 'wasm'], cwd);
    fs.rmSync(path.join(cwd, 'spec.json'));
    const problems = broken('toy', o, cwd);
    if (problems.length > 0) throw new Error(`spec ${text.slice(0, 300)}:\n${problems.join('\n')}`);
    return { code: o.code, stderr: o.stderr };
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
};

/** A spec refused with exit 2 names each bad field: `invalid spec spec.json:` then `  <field path>: <problem>` lines. */
const namesFields = (stderr: string): boolean => {
  const lines = stderr.split('\n');
  const at = lines.findIndex((l) => l.startsWith('invalid spec spec.json:'));
  const fields = lines.slice(at + 1).filter((l) => l.startsWith('  '));
  return at >= 0 && fields.length > 0 && fields.every((l) => FIELD_PROBLEM.test(l.slice(2)));
};

test('toy: a spec file of arbitrary JSON or text is refused (exit 2) naming each bad field', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)), fc.string({ maxLength: 40 })), async (text) => {
      const o = await toyOn(text);
      return o.code === 2 && namesFields(o.stderr);
    }),
    runs(40),
  );
});

test('toy: any mutation of a valid spec runs (exit 0), fails with a message (exit 1), or is refused naming the field (exit 2)', async () => {
  const alternatives: ReadonlyArray<Json> = [
    { kind: 'pc', predictor: 'ancestral', corrector: 'langevin', steps: 5 },
    { kind: 'ode', method: 'rk4', steps: 3, grid: 'log-snr' },
    { kind: 'edm', steps: 3, gamma: 0.4 },
    { kind: 'ode-adaptive', rtol: 1e-2, atol: 1e-2 },
    { kind: 'adaptive-sde', rtol: 0.1, atol: 0.1, dcoeff: 0.2 },
  ];
  const spec = fc.oneof(
    mutatedJson(SMALL_TOY as unknown as Json),
    fc.constantFrom(...alternatives).chain((sampler) => mutatedJson({ ...(SMALL_TOY as unknown as Record<string, Json>), sampler })),
    fc.constantFrom(vp(), subvp(), tutorial()).map((sde) => ({ ...(SMALL_TOY as unknown as Record<string, Json>), sde: sde as unknown as Json })),
  );
  await fc.assert(
    fc.asyncProperty(spec, async (doc) => {
      const o = await toyOn(JSON.stringify(doc));
      return o.code !== 2 || namesFields(o.stderr) || /^error: /m.test(o.stderr);
    }),
    runs(40),
  );
});

// -------------------------------------------------------------------------------------
// sampler specs
// -------------------------------------------------------------------------------------

test('sampler specs: any record of the spec keys decodes or names its fields, and builds a sampler or names why not, for every SDE', () => {
  const kinds = ['pc', 'ode', 'ode-adaptive', 'edm', 'dpm-solver++2m', 'adaptive-sde', 'langevin', 7, null];
  const keys = ['predictor', 'corrector', 'steps', 'correctorSteps', 'snr', 'norm', 'alpha', 'order', 'grid', 'eps', 'denoise', 'method', 'rtol', 'atol', 'gamma', 'probabilityFlow', 'pcoeff', 'icoeff', 'dcoeff'];
  const value = fc.oneof(
    fc.constantFrom('euler-maruyama', 'reverse-diffusion', 'ancestral', 'none', 'langevin', 'annealed-langevin', 'batch-mean', 'per-sample', 'ddpm', 'one', 'corrector-first', 'uniform', 'karras', 'log-snr', 'quadratic', 'euler', 'heun', 'rk4'),
    fc.integer({ min: -5, max: 200 }),
    fc.constantFrom(0, 1e-3, 0.5, 0.999, 1, 1.5, 1e9, 2 ** 53, Number.MAX_VALUE, -1e-3, Number.NaN, Number.POSITIVE_INFINITY),
    fc.jsonValue({ maxDepth: 1 }),
  );
  const spec = fc.record({ kind: fc.constantFrom(...kinds), fields: fc.dictionary(fc.constantFrom(...keys, 'stepz'), value, { maxKeys: 6 }) }).map(({ kind, fields }) => ({ kind, ...fields }));
  const sdes = [vp(), subvp(), ve(), tutorial()];
  fc.assert(
    fc.property(spec, (u) => {
      const d = codec.decodeWith(SamplerSpec, 'sampler')(u);
      if (E.isLeft(d)) return d.left.problems.length > 0 && d.left.problems.every((p) => FIELD_PROBLEM.test(p));
      return sdes.every((sde) => {
        const built = samplerFromSpec(sde, d.right);
        return E.isLeft(built) ? built.left.problems.every((p) => /^\w+: \S/.test(p)) : isDecreasing(built.right.grid);
      });
    }),
    runs(400),
  );
});

// -------------------------------------------------------------------------------------
// checkpoints
// -------------------------------------------------------------------------------------

/** A copy of the fixture checkpoint with one kind of damage. */
type Damage =
  | { readonly kind: 'manifest'; readonly doc: Json }
  | { readonly kind: 'manifest-text'; readonly cut: number; readonly junk: string }
  | { readonly kind: 'current'; readonly text: string | undefined }
  | { readonly kind: 'bin'; readonly file: string; readonly at: number; readonly truncate: boolean };

const damaged = (dir: string, d: Damage): void => {
  const at = path.join(dir, fs.readFileSync(path.join(dir, 'CURRENT'), 'utf8').trim());
  const manifest = path.join(at, 'manifest.json');
  switch (d.kind) {
    case 'manifest':
      fs.writeFileSync(manifest, JSON.stringify(d.doc));
      return;
    case 'manifest-text': {
      const text = fs.readFileSync(manifest, 'utf8');
      fs.writeFileSync(manifest, text.slice(0, d.cut % (text.length + 1)) + d.junk);
      return;
    }
    case 'current':
      if (d.text === undefined) fs.rmSync(path.join(dir, 'CURRENT'));
      else fs.writeFileSync(path.join(dir, 'CURRENT'), d.text);
      return;
    case 'bin': {
      const p = path.join(at, d.file);
      const b = fs.readFileSync(p);
      const i = d.at % b.length;
      fs.writeFileSync(p, d.truncate ? b.subarray(0, i) : Buffer.from(b.map((x, j) => (j === i ? x ^ 0x40 : x))));
    }
  }
};

test('experiments:mnist --sample-only on a damaged checkpoint: samples (a harmless edit) or exit 1 naming the checkpoint and what is wrong', async () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(fixture.checkpoint(), fs.readFileSync(path.join(fixture.checkpoint(), 'CURRENT'), 'utf8').trim(), 'manifest.json'), 'utf8')) as Json;
  const damage: fc.Arbitrary<Damage> = fc.oneof(
    { weight: 4, arbitrary: mutatedJson(manifest).map((doc) => ({ kind: 'manifest' as const, doc })) },
    fc.record({ kind: fc.constant('manifest-text' as const), cut: fc.nat(), junk: fc.string({ maxLength: 4 }) }),
    fc.record({ kind: fc.constant('current' as const), text: fc.option(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('../checkpoint', 'step-0.00000000', '')), { nil: undefined }) }),
    fc.record({ kind: fc.constant('bin' as const), file: fc.constantFrom('params.bin', 'ema.bin', 'adam-m.bin', 'adam-v.bin'), at: fc.nat(), truncate: fc.boolean() }),
  );
  await fc.assert(
    fc.asyncProperty(damage, async (d) => {
      const cwd = sandbox('ckpt');
      try {
        const dir = path.join(cwd, 'checkpoint');
        fs.cpSync(fixture.checkpoint(), dir, { recursive: true });
        damaged(dir, d);
        const o = await invoke(mnistMain, ['--sample-only', dir, '--samplers', 'em', '--steps', '2', '--num-samples', '2', '--backend', 'wasm', '--quiet', '--out', 'so'], cwd);
        const problems = broken('mnist', o, cwd);
        if (problems.length > 0) throw new Error(`${JSON.stringify(d).slice(0, 400)}:\n${problems.join('\n')}`);
        return o.code === 0 || (o.code === 1 && o.stderr.includes(`mnist: --sample-only: checkpoint ${dir}: `));
      } finally {
        fs.rmSync(cwd, { recursive: true, force: true });
      }
    }),
    runs(40),
  );
});

test('classifier directories with a mutated manifest or weights: loaded, or refused naming the directory and the problem', async () => {
  const config = classifier.classifierConfig({ imageSize: 8, channels: [2, 4, 4], featureDim: 4 });
  const training: classifier.ClassifierTraining = { steps: 3, epochs: 1, batchSize: 8, lr: 1e-3, trainImages: 24, seed: 0, seconds: 0.5, finalLoss: 2.3, testImages: 10, testAccuracy: 0.1 };
  const dir = path.join(fixture.dir(), 'clf');
  const params = classifier.initClassifier(config, random.key(1));
  const saved = await classifier.saveClassifier(dir, config, params, training);
  classifier.disposeParams(params);
  if (E.isLeft(saved)) throw new Error(renderStoreError(saved.left));
  const stored = async (d: string): Promise<string> => {
    const at = await tensorFiles.storedDirectory(d);
    if (E.isLeft(at)) throw new Error(at.left.message);
    return at.right;
  };
  const manifest = JSON.parse(fs.readFileSync(path.join(await stored(dir), 'manifest.json'), 'utf8')) as Json;
  await fc.assert(
    fc.asyncProperty(fc.oneof(mutatedJson(manifest).map((doc) => ({ doc })), fc.record({ at: fc.nat(), truncate: fc.boolean() })), async (d) => {
      const copy = sandbox('clf');
      try {
        fs.cpSync(dir, copy, { recursive: true });
        const v = await stored(copy);
        if ('doc' in d) fs.writeFileSync(path.join(v, 'manifest.json'), JSON.stringify(d.doc));
        else {
          const b = fs.readFileSync(path.join(v, 'params.bin'));
          const i = d.at % b.length;
          fs.writeFileSync(path.join(v, 'params.bin'), d.truncate ? b.subarray(0, i) : Buffer.from(b.map((x, j) => (j === i ? x ^ 1 : x))));
        }
        const r = await classifier.loadClassifier(copy);
        if (E.isRight(r)) {
          classifier.disposeParams(r.right.params);
          return true;
        }
        return renderStoreError(r.left).includes(copy);
      } finally {
        fs.rmSync(copy, { recursive: true, force: true });
      }
    }),
    runs(60),
  );
});

// -------------------------------------------------------------------------------------
// IDX files
// -------------------------------------------------------------------------------------

test('IDX image and label files with flipped, cut or added bytes: decoded consistently, or refused naming the file and the byte counts', async () => {
  const images = encodeIdxImages({ count: 3, rows: 4, cols: 5, pixels: Uint8Array.from({ length: 60 }, (_, i) => (i * 37) % 256) });
  const labels = encodeIdxLabels(Uint8Array.from([3, 1, 4]));
  const dir = sandbox('idx');
  const edits = fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('add' as const), bytes: fc.uint8Array({ maxLength: 8 }) }),
    ),
    { minLength: 1, maxLength: 3 },
  );
  const edit = (b: Uint8Array, es: ReadonlyArray<{ kind: string; at?: number; bits?: number; bytes?: Uint8Array }>): Uint8Array =>
    es.reduce((x, e) => (e.kind === 'flip' ? x.map((v, i) => (i === e.at! % Math.max(1, x.length) ? v ^ e.bits! : v)) : e.kind === 'cut' ? x.subarray(0, e.at! % (x.length + 1)) : Uint8Array.from([...x, ...e.bytes!])), b);
  try {
    await fc.assert(
      fc.asyncProperty(edits, edits, async (ei, el) => {
        const bi = edit(images, ei);
        const bl = edit(labels, el);
        const pi = parseIdxImages(bi, 'images.idx');
        const pl = parseIdxLabels(bl, 'labels.idx');
        const okImages = E.isRight(pi) ? bi.length === 16 + pi.right.count * pi.right.rows * pi.right.cols : pi.left.file === 'images.idx' && pi.left.message.length > 0;
        const okLabels = E.isRight(pl) ? bl.length === 8 + pl.right.length : pl.left.file === 'labels.idx' && pl.left.message.length > 0;
        // The same through a file on disk.
        const file = path.join(dir, 'x.idx');
        fs.writeFileSync(file, bi);
        const read = await readIdxImages(file)();
        const sameAsParse = E.isRight(read) === E.isRight(pi) && (E.isRight(read) || read.left.file === file);
        return okImages && okLabels && sameAsParse;
      }),
      runs(300),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
