/**
 * Group 7 — codecs: valid records round-trip through JSON; malformed ones are rejected as `Left` naming the
 * field, never by an exception.
 */
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import { SDE, GaussianMixture, mixture, gaussian } from '@score-sde/sde-math';
import { mixtureArb, sdeArb } from './helpers';
import { runs } from '@score-sde/tensor-fp/testing';

const decodeSDE = codec.decodeWith(SDE);
const decodeMixture = codec.decodeWith(GaussianMixture);

/** The decode error's text (problems joined), or fails the test if decoding succeeded. */
const problemsOf = <A>(r: E.Either<codec.DecodeError, A>): string => {
  if (E.isRight(r)) throw new Error(`expected a Left, got Right ${JSON.stringify(r.right)}`);
  expect(r.left.problems.length).toBeGreaterThan(0);
  return r.left.problems.join('\n');
};

/** Any SDE record whose ordering also holds at the JSON level (not only in the arbitraries' ranges). */
const anySdeArb = fc.oneof(
  sdeArb,
  fc
    .tuple(fc.double({ min: 1e-6, max: 1e3, noNaN: true }), fc.double({ min: 1e-6, max: 1e3, noNaN: true }), fc.double({ min: 1e-3, max: 10, noNaN: true }))
    .filter(([a, b]) => a < b)
    .map(([a, b, T]): SDE => ({ kind: 'vp', betaMin: a, betaMax: b, T })),
);

describe('SDE codec (group 7)', () => {
  test('decode(JSON.parse(JSON.stringify(sde))) = Right(sde) for every valid SDE record', () => {
    fc.assert(
      fc.property(anySdeArb, (sde) => {
        expect(decodeSDE(JSON.parse(JSON.stringify(sde)))).toEqual(E.right(sde));
        expect(SDE.is(sde)).toBe(true);
      }),
      runs(200),
    );
  });

  test('arbitrary values (fc.anything, fc.jsonValue) decode to Left or to a valid SDE, never throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.jsonValue()), (u) => {
        const r = decodeSDE(u);
        if (E.isRight(r)) expect(SDE.is(r.right)).toBe(true);
        else expect(r.left.problems.length).toBeGreaterThan(0);
      }),
      runs(300),
    );
  });

  const mutations: ReadonlyArray<readonly [string, (s: Record<string, unknown>) => Record<string, unknown>, (s: SDE) => string]> = [
    ['wrong kind', (s) => ({ ...s, kind: 'vpp' }), () => 'kind'],
    ['kind missing', ({ kind: _k, ...rest }) => rest, () => 'kind'],
    ['extra key', (s) => ({ ...s, betaMn: 0.1 }), () => 'betaMn'],
    ['T = NaN', (s) => ({ ...s, T: NaN }), () => 'T'],
    ['T negative', (s) => ({ ...s, T: -1 }), () => 'T'],
    ['T a string', (s) => ({ ...s, T: '1' }), () => 'T'],
    ['T missing', ({ T: _T, ...rest }) => rest, () => 'T'],
  ];

  test.each(mutations)('mutation "%s" is rejected as Left naming the field', (_name, mutate, field) => {
    fc.assert(
      fc.property(sdeArb, (sde) => {
        expect(problemsOf(decodeSDE(mutate({ ...sde })))).toContain(field(sde));
      }),
      runs(40),
    );
  });

  test('each parameter mutated to NaN, ±Infinity, 0, negative, null or missing is rejected as Left naming it', () => {
    const bad = fc.constantFrom<unknown>(NaN, Infinity, -Infinity, 0, -0.5, null, undefined, 'x');
    fc.assert(
      fc.property(sdeArb, bad, fc.nat(), (sde, v, which) => {
        const params = Object.keys(sde).filter((k) => k !== 'kind');
        const field = params[which % params.length]!;
        const mutated: Record<string, unknown> = { ...sde, [field]: v };
        if (v === undefined) delete mutated[field];
        expect(problemsOf(decodeSDE(mutated))).toContain(field);
      }),
      runs(200),
    );
  });

  test('unordered parameters are rejected naming the field: betaMax < betaMin, sigmaMax < sigmaMin, tutorial σ ≤ 1', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.01, max: 50, noNaN: true }), fc.double({ min: 0.01, max: 50, noNaN: true }), (a, b) => {
        const [lo, hi] = a < b ? [a, b] : [b, a];
        expect(problemsOf(decodeSDE({ kind: 'vp', betaMin: hi, betaMax: lo, T: 1 }))).toMatch(/betaMax.*betaMin/);
        expect(problemsOf(decodeSDE({ kind: 'subvp', betaMin: hi, betaMax: lo, T: 1 }))).toMatch(/betaMax.*betaMin/);
        expect(problemsOf(decodeSDE({ kind: 've', sigmaMin: hi, sigmaMax: lo, T: 1 }))).toMatch(/sigmaMax.*sigmaMin/);
        expect(problemsOf(decodeSDE({ kind: 'tutorial', sigma: Math.min(lo, 1), T: 1 }))).toContain('sigma');
      }),
      runs(50),
    );
  });
});

describe('GaussianMixture codec (group 7)', () => {
  test('decode(JSON.parse(JSON.stringify(m))) = Right(m) for every valid mixture', () => {
    fc.assert(
      fc.property(mixtureArb(), (m) => {
        const json = JSON.stringify(m);
        const r = decodeMixture(JSON.parse(json));
        // Same record up to JSON's own −0 → 0 (fast-check generates −0; JSON cannot carry it): compare the texts.
        expect(E.isRight(r) && JSON.stringify(r.right)).toBe(json);
        expect(mixture(m.weights, m.means, m.stds)).toEqual(E.right(m));
        expect(GaussianMixture.is(m)).toBe(true);
      }),
      runs(100),
    );
    expect(E.isRight(decodeMixture(gaussian([0, 1], [1, 2])))).toBe(true);
  });

  test('arbitrary values (fc.anything, fc.jsonValue) decode to Left or to a valid mixture, never throw', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.jsonValue()), (u) => {
        const r = decodeMixture(u);
        if (E.isRight(r)) expect(GaussianMixture.is(r.right)).toBe(true);
        else expect(r.left.problems.length).toBeGreaterThan(0);
      }),
      runs(300),
    );
  });

  const clone = (m: GaussianMixture) => JSON.parse(JSON.stringify(m)) as { weights: unknown[]; means: unknown[][]; stds: unknown[][] } & Record<string, unknown>;

  const mutations: ReadonlyArray<readonly [string, (m: ReturnType<typeof clone>) => unknown, RegExp]> = [
    ['weights scaled by 1.01 (not normalised)', (m) => ({ ...m, weights: m.weights.map((w) => (w as number) * 1.01) }), /^weights: must sum to 1/m],
    ['no components', () => ({ weights: [], means: [], stds: [] }), /^weights: must have at least one component/m],
    ['a weight negative', (m) => ({ ...m, weights: [-0.5, ...m.weights.slice(1)] }), /^weights\.0: expected PositiveFinite/m],
    ['a mean NaN', (m) => ({ ...m, means: [[NaN, ...m.means[0]!.slice(1)], ...m.means.slice(1)] }), /^means\.0\.0: expected Finite, got NaN/m],
    ['a std zero', (m) => ({ ...m, stds: [[0, ...m.stds[0]!.slice(1)], ...m.stds.slice(1)] }), /^stds\.0\.0: expected PositiveFinite/m],
    ['one mean row too long', (m) => ({ ...m, means: [...m.means.slice(0, -1), [...m.means[m.means.length - 1]!, 0]] }), /^means\.\d+: must have dimension|^stds\.\d+: must have dimension/m],
    ['a std row too short', (m) => ({ ...m, stds: [...m.stds.slice(0, -1), m.stds[m.stds.length - 1]!.slice(1)] }), /^stds\.\d+: must have dimension/m],
    ['a std row missing', (m) => ({ ...m, stds: m.stds.slice(1) }), /^stds: must have one row per component/m],
    ['a mean row extra', (m) => ({ ...m, means: [...m.means, m.means[0]] }), /^means: must have one row per component/m],
    ['extra key', (m) => ({ ...m, covariance: [] }), /^covariance: unknown key/m],
    ['weights missing', ({ weights: _w, ...rest }) => rest, /^weights: expected/m],
    ['stds a string', (m) => ({ ...m, stds: 'wide' }), /^stds: expected/m],
  ];

  test.each(mutations)('mutation "%s" is rejected as Left naming the field', (_name, mutate, pattern) => {
    fc.assert(
      fc.property(mixtureArb(), (m) => {
        expect(problemsOf(decodeMixture(mutate(clone(m))))).toMatch(pattern);
      }),
      runs(30),
    );
  });
});
