/**
 * io-ts building blocks for everything read from outside (configs, flags, JSON specs, checkpoints),
 * and error reports that name the field: `sampler.snr: expected PositiveFinite, got -0.1`.
 *
 * Two io-ts traps are closed here: `t.number` accepts NaN and ±Infinity (use {@link Finite}), and
 * `t.exact`/`t.strict` silently drop unknown keys (use {@link strict}, which rejects them).
 *
 * @module codec
 */
import * as t from 'io-ts';
import * as E from 'fp-ts/Either';
import { pipe } from 'fp-ts/function';

// -------------------------------------------------------------------------------------
// numbers
// -------------------------------------------------------------------------------------

const refineNumber = (name: string, ok: (n: number) => boolean): t.Type<number, number, unknown> =>
  new t.Type<number, number, unknown>(
    name,
    (u): u is number => typeof u === 'number' && ok(u),
    (u, c) => (typeof u === 'number' && ok(u) ? t.success(u) : t.failure(u, c)),
    t.identity,
  );

/** A finite number (rejects NaN and ±Infinity). @category numbers */
export const Finite = refineNumber('Finite', Number.isFinite);
/** A finite number > 0. @category numbers */
export const PositiveFinite = refineNumber('PositiveFinite', (n) => Number.isFinite(n) && n > 0);
/** A finite number ≥ 0. @category numbers */
export const NonNegativeFinite = refineNumber('NonNegativeFinite', (n) => Number.isFinite(n) && n >= 0);
/** A number in [0, 1]. @category numbers */
export const UnitInterval = refineNumber('UnitInterval', (n) => Number.isFinite(n) && n >= 0 && n <= 1);
/** An integer ≥ 1. @category numbers */
export const PositiveInt = refineNumber('PositiveInt', (n) => Number.isSafeInteger(n) && n >= 1);
/** An integer ≥ 0. @category numbers */
export const NonNegativeInt = refineNumber('NonNegativeInt', (n) => Number.isSafeInteger(n) && n >= 0);
/** Any safe integer. @category numbers */
export const SafeInt = refineNumber('SafeInt', Number.isSafeInteger);

// -------------------------------------------------------------------------------------
// records
// -------------------------------------------------------------------------------------

/**
 * Like `t.type`, but an unknown key is an error (`sampler.snrr: unknown key`) instead of being dropped,
 * so a misspelt config key cannot vanish silently.
 * @category records
 */
export const strict = <P extends t.Props>(props: P, name: string): t.Type<t.TypeOf<t.TypeC<P>>, t.OutputOf<t.TypeC<P>>, unknown> => {
  const base = t.type(props, name);
  const known = new Set(Object.keys(props));
  return new t.Type<t.TypeOf<t.TypeC<P>>, t.OutputOf<t.TypeC<P>>, unknown>(
    name,
    base.is,
    (u, c) =>
      pipe(
        base.validate(u, c),
        E.chain((a) => {
          const extra = Object.keys(u as object).filter((k) => !known.has(k));
          return extra.length === 0
            ? t.success(a)
            : t.failures(extra.map((k) => ({ value: (u as Record<string, unknown>)[k], context: [...c, { key: k, type: t.never, actual: (u as Record<string, unknown>)[k] }], message: 'unknown key' })));
        }),
      ),
    base.encode,
  );
};

/**
 * Like `t.intersection([t.type(required), t.partial(optional)])`, rejecting unknown keys.
 * @category records
 */
export const strictWithOptional = <R extends t.Props, O extends t.Props>(
  required: R,
  optional: O,
  name: string,
): t.Type<t.TypeOf<t.TypeC<R>> & t.TypeOf<t.PartialC<O>>, t.OutputOf<t.TypeC<R>> & t.OutputOf<t.PartialC<O>>, unknown> => {
  // The two halves are validated side by side (not through t.intersection, whose member index would leak into
  // error paths as `0.field`), so every error names the field as the user wrote it.
  const req = t.type(required);
  const opt = t.partial(optional);
  const known = new Set([...Object.keys(required), ...Object.keys(optional)]);
  type A = t.TypeOf<t.TypeC<R>> & t.TypeOf<t.PartialC<O>>;
  type Out = t.OutputOf<t.TypeC<R>> & t.OutputOf<t.PartialC<O>>;
  return new t.Type<A, Out, unknown>(
    name,
    (u): u is A => req.is(u) && opt.is(u) && Object.keys(u as object).every((k) => known.has(k)),
    (u, c) => {
      if (typeof u !== 'object' || u === null || Array.isArray(u)) return t.failure(u, c);
      const a = req.validate(u, c);
      const b = opt.validate(u, c);
      const extra = Object.keys(u).filter((k) => !known.has(k));
      const errors: t.ValidationError[] = [
        ...(E.isLeft(a) ? a.left : []),
        ...(E.isLeft(b) ? b.left : []),
        ...extra.map((k) => ({ value: (u as Record<string, unknown>)[k], context: [...c, { key: k, type: t.never, actual: (u as Record<string, unknown>)[k] }], message: 'unknown key' })),
      ];
      return E.isRight(a) && E.isRight(b) && errors.length === 0 ? t.success({ ...a.right, ...b.right } as A) : t.failures(errors);
    },
    (a) => ({ ...req.encode(a), ...opt.encode(a) }) as Out,
  );
};

/**
 * A union of records told apart by their `kind` field, decoded by the member its `kind` names, so errors name that
 * member's fields (`loss.weighting: expected …`), and an unknown kind is reported at `kind` with the known ones:
 * byKind('NoiseLevels', { 'uniform-t': A, 'log-normal': B }) decodes A | B.
 * @category records
 */
export const byKind = <M extends Readonly<Record<string, t.Mixed>>>(name: string, members: M): t.Type<t.TypeOf<M[keyof M]>, t.OutputOf<M[keyof M]>, unknown> => {
  type A = t.TypeOf<M[keyof M]>;
  const kinds = Object.keys(members);
  const kindType = t.keyof(Object.fromEntries(kinds.map((k) => [k, null])) as Record<string, null>, `${name}Kind`);
  const memberOf = (u: unknown): t.Mixed | undefined => {
    const kind = (u as { kind?: unknown } | null)?.kind;
    return typeof kind === 'string' && Object.prototype.hasOwnProperty.call(members, kind) ? members[kind] : undefined;
  };
  return new t.Type<A, t.OutputOf<M[keyof M]>, unknown>(
    name,
    (u): u is A => memberOf(u)?.is(u) === true,
    (u, c) => {
      const member = memberOf(u);
      if (member !== undefined) return member.validate(u, c) as t.Validation<A>;
      const kind = (u as { kind?: unknown } | null)?.kind;
      return t.failure(kind, [...c, { key: 'kind', type: kindType, actual: kind }]);
    },
    (a) => (memberOf(a)?.encode(a) ?? a) as t.OutputOf<M[keyof M]>,
  );
};

// -------------------------------------------------------------------------------------
// words
// -------------------------------------------------------------------------------------

/**
 * A codec of one word out of a fixed vocabulary, named `name` in errors: `oneOf(['em', 'pc'], 'Sampler')` accepts
 * exactly 'em' and 'pc' (`sampler: expected Sampler, got "xyz"`). Declare a vocabulary once as a tuple and derive
 * its codec with this.
 * @category words
 */
export const oneOf = <K extends string>(values: ReadonlyArray<K>, name: string): t.KeyofC<Record<K, null>> =>
  t.keyof(Object.fromEntries(values.map((v) => [v, null])) as Record<K, null>, name);

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/** A decoding failure: one line per problem, each naming the field. @category errors */
export interface DecodeError {
  readonly _tag: 'DecodeError';
  readonly what: string;
  readonly problems: ReadonlyArray<string>;
}

const show = (u: unknown): string => {
  if (u === undefined) return 'undefined (missing)';
  if (typeof u === 'number') return Number.isNaN(u) ? 'NaN' : String(u);
  try {
    const s = JSON.stringify(u);
    return s === undefined ? String(u) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return String(u);
  }
};

/** A path segment as written: a plain key or index as it is, anything else (empty, spaces, dots, quotes) as a JSON string. */
const showKey = (k: string): string => (/^[A-Za-z_$][\w$]*$|^\d+$/.test(k) ? k : JSON.stringify(k));

/**
 * Formats one io-ts error as `path.to.field: expected Type, got value` (odd keys quoted: `data." ": unknown key`). Union alternatives and intersection
 * members are dropped from the path so it reads as the user wrote the JSON.
 * @category errors
 */
export const formatValidationError = (e: t.ValidationError): string => {
  const keys = e.context
    .slice(1)
    .filter((c, i, all) => {
      const parent = all[i - 1]?.type ?? e.context[0]?.type;
      const parentTag = (parent as unknown as { _tag?: string } | undefined)?._tag;
      return !(parentTag === 'UnionType' || parentTag === 'IntersectionType');
    })
    // An empty key is io-ts's own for entries without one, except in an unknown-key entry (type never): a real "" key.
    .filter((c) => c.key !== '' || c.type === t.never)
    .map((c) => c.key);
  const where = keys.length === 0 ? '(root)' : keys.map(showKey).join('.');
  if (e.message !== undefined) return `${where}: ${e.message}`;
  const last = e.context[e.context.length - 1];
  return `${where}: expected ${last?.type.name ?? 'unknown'}, got ${show(e.value)}`;
};

/** Decodes `u` with `codec`, returning an Either with a readable error naming each bad field. @category decoding */
export const decodeWith =
  <A, O>(codec: t.Type<A, O, unknown>, what = codec.name) =>
  (u: unknown): E.Either<DecodeError, A> =>
    pipe(
      codec.decode(u),
      E.mapLeft((errors) => ({
        _tag: 'DecodeError' as const,
        what,
        problems: [...new Set(errors.map(formatValidationError))],
      })),
    );

/** Renders a decode error for a human: `invalid <what>:\n  field: expected …`. @category errors */
export const renderDecodeError = (e: DecodeError): string => `invalid ${e.what}:\n${e.problems.map((p) => `  ${p}`).join('\n')}`;

/** Parses JSON text and decodes it; a syntax error is reported as a DecodeError too. @category decoding */
export const decodeJson =
  <A, O>(codec: t.Type<A, O, unknown>, what = codec.name) =>
  (text: string): E.Either<DecodeError, A> =>
    pipe(
      E.tryCatch(
        () => JSON.parse(text) as unknown,
        (err): DecodeError => ({ _tag: 'DecodeError', what, problems: [`(root): not valid JSON (${(err as Error).message})`] }),
      ),
      E.chain(decodeWith(codec, what)),
    );
