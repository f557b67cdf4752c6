/**
 * Codecs for everything read from outside: numbers that are finite, records that reject unknown keys,
 * errors that name the field (with its full path), and JSON decoding that never throws.
 */
import fc from 'fast-check';
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { codec } from '@score-sde/tensor-fp';
import { runs } from '@score-sde/tensor-fp/testing';

const problems = <A>(r: E.Either<codec.DecodeError, A>): ReadonlyArray<string> => (E.isLeft(r) ? r.left.problems : []);

describe('numbers', () => {
  test('Finite rejects NaN and ±Infinity, and accepts every finite double', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, '1', null, undefined]) {
      expect(E.isLeft(codec.Finite.decode(bad))).toBe(true);
    }
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(codec.Finite.decode(x)).toEqual(E.right(x));
      }),
      runs(200),
    );
  });

  test('PositiveFinite accepts exactly the finite x > 0; NonNegativeFinite the finite x ≥ 0; UnitInterval [0, 1]', () => {
    fc.assert(
      fc.property(fc.double(), (x) => {
        const finite = Number.isFinite(x);
        expect(E.isRight(codec.PositiveFinite.decode(x))).toBe(finite && x > 0);
        expect(E.isRight(codec.NonNegativeFinite.decode(x))).toBe(finite && x >= 0);
        expect(E.isRight(codec.UnitInterval.decode(x))).toBe(finite && x >= 0 && x <= 1);
      }),
      runs(300),
    );
  });

  test('PositiveInt / NonNegativeInt accept exactly the safe integers ≥ 1 / ≥ 0', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.double()), (x) => {
        expect(E.isRight(codec.PositiveInt.decode(x))).toBe(Number.isSafeInteger(x) && x >= 1);
        expect(E.isRight(codec.NonNegativeInt.decode(x))).toBe(Number.isSafeInteger(x) && x >= 0);
      }),
      runs(300),
    );
    expect(E.isLeft(codec.PositiveInt.decode(2 ** 53))).toBe(true);
  });
});

describe('records', () => {
  const Sampler = codec.strict({ snr: codec.PositiveFinite, steps: codec.PositiveInt }, 'Sampler');
  const Config = codec.strict({ a: codec.strict({ b: codec.strict({ c: codec.PositiveFinite }, 'B') }, 'A'), sampler: Sampler }, 'Config');
  const decodeConfig = codec.decodeWith(Config, 'config');

  test('strict rejects unknown keys, naming each (`field: unknown key`)', () => {
    const r = codec.decodeWith(Sampler)({ snr: 0.16, steps: 10, snrr: 0.2, extra: 1 });
    expect(problems(r)).toEqual(['snrr: unknown key', 'extra: unknown key']);
  });

  test('strict: unknown keys of nested records are named with their path', () => {
    const r = decodeConfig({ a: { b: { c: 1, d: 2 } }, sampler: { snr: 1, steps: 1 } });
    expect(problems(r)).toEqual(['a.b.d: unknown key']);
  });

  test('errors name nested paths: a.b.c: expected PositiveFinite, got -1', () => {
    const r = decodeConfig({ a: { b: { c: -1 } }, sampler: { snr: 0.1, steps: 0 } });
    expect(problems(r)).toEqual(['a.b.c: expected PositiveFinite, got -1', 'sampler.steps: expected PositiveInt, got 0']);
  });

  test('a missing field is reported as missing', () => {
    expect(problems(decodeConfig({ a: { b: {} }, sampler: { snr: 0.1, steps: 3 } }))).toEqual(['a.b.c: expected PositiveFinite, got undefined (missing)']);
  });

  test('strictWithOptional accepts the optional keys, rejects unknown ones, checks both kinds', () => {
    const Opt = codec.strictWithOptional({ n: codec.PositiveInt }, { eps: codec.PositiveFinite }, 'Opt');
    expect(codec.decodeWith(Opt)({ n: 3 })).toEqual(E.right({ n: 3 }));
    expect(codec.decodeWith(Opt)({ n: 3, eps: 0.5 })).toEqual(E.right({ n: 3, eps: 0.5 }));
    expect(problems(codec.decodeWith(Opt)({ n: 3, eps: -1 }))).toEqual(['eps: expected PositiveFinite, got -1']);
    expect(problems(codec.decodeWith(Opt)({ n: 3, epsilon: 1 }))).toEqual(['epsilon: unknown key']);
  });

  test('a valid record round-trips through JSON (decode ∘ encode = id)', () => {
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e6, noNaN: true }), fc.integer({ min: 1, max: 1000 }), (snr, steps) => {
        const v = { snr, steps };
        expect(codec.decodeJson(Sampler)(JSON.stringify(Sampler.encode(v)))).toEqual(E.right(v));
      }),
      runs(50),
    );
  });
});

describe('decodeJson never throws', () => {
  const Sampler = codec.strict({ snr: codec.PositiveFinite, steps: codec.PositiveInt }, 'Sampler');

  test('bad JSON text is a Left naming the root, not a throw', () => {
    const r = codec.decodeJson(Sampler, 'sampler')('{"snr": 0.1,');
    expect(E.isLeft(r) && r.left.problems[0]).toMatch(/^\(root\): not valid JSON/);
    expect(E.isLeft(r) && codec.renderDecodeError(r.left)).toMatch(/^invalid sampler:\n {2}\(root\): not valid JSON/);
  });

  test('over arbitrary strings: decodeJson returns an Either and never throws', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const r = codec.decodeJson(Sampler)(s);
        expect(E.isLeft(r) || E.isRight(r)).toBe(true);
      }),
      runs(300),
    );
  });

  test('over arbitrary JSON values: never throws, and every Left has at least one problem naming a field or the root', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const r = codec.decodeJson(Sampler)(text);
        if (E.isLeft(r)) {
          expect(r.left.problems.length).toBeGreaterThan(0);
          r.left.problems.forEach((p) => expect(p).toMatch(/^(\(root\)|snr|steps|[^:]+): /));
        } else {
          expect(Sampler.is(r.right)).toBe(true);
        }
      }),
      runs(300),
    );
  });

  test('over arbitrary JSON objects with the right keys mixed in: accepted iff both fields are valid and nothing else is present', () => {
    const value = fc.oneof(fc.double(), fc.integer(), fc.string(), fc.constant(null), fc.boolean());
    fc.assert(
      fc.property(fc.dictionary(fc.string(), value), value, value, (rest, snr, steps) => {
        const obj = { ...rest, snr, steps };
        const r = codec.decodeJson(Sampler)(JSON.stringify(obj));
        const ok =
          Object.keys(obj).every((k) => k === 'snr' || k === 'steps') &&
          E.isRight(codec.PositiveFinite.decode(JSON.parse(JSON.stringify(snr)))) &&
          E.isRight(codec.PositiveInt.decode(JSON.parse(JSON.stringify(steps))));
        expect(E.isRight(r)).toBe(ok);
      }),
      runs(200),
    );
  });

  test('t.number would accept NaN (the trap Finite closes)', () => {
    expect(E.isRight(t.number.decode(Number.NaN))).toBe(true);
    expect(E.isLeft(codec.Finite.decode(Number.NaN))).toBe(true);
  });
});

describe('paths of odd keys', () => {
  test('a key that is not a plain name (empty, spaces, dots, quotes) is quoted, so the error still names it', () => {
    const C = codec.strict({ data: codec.strict({ a: t.number }, 'Data') }, 'C');
    expect(problems(codec.decodeWith(C, 'c')({ data: { a: 1, ' ': 2, 'x.y': 3, '"': 4, '': 5 } }))).toEqual([
      'data." ": unknown key',
      'data."x.y": unknown key',
      'data."\\"": unknown key',
      'data."": unknown key',
    ]);
  });
});
