/**
 * Broadcasting Add / Sub / Multiply / RealDiv on wasm by the fused module (`broadcast_op`): the same bits as the XNNPACK
 * kernels they replace and as the cpu backend (one exactly rounded float32 operation per element), for every 2-D
 * broadcast pattern, with NaN, ±∞, ±0 and subnormals among the values (a NaN as NaN, whatever its sign and payload).
 */
import fc from 'fast-check';
import { tf, initBackend } from '@score-sde/tensor-fp';
import { broadcast2d, configureFusedOverrides } from '../src/fused-kernels';
import { onCpu } from './helpers';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

afterEach(() => configureFusedOverrides({ enabled: true }));

const specials = [NaN, Infinity, -Infinity, 0, -0, 1e-40, -3e-39, 3.4e38, 1];
const valuesOf = (n: number, seed: number): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => ((i * 7 + seed) % 11 === 0 ? specials[(i + seed) % specials.length]! : Math.sin(seed * 3.7 + i * 1.9) * 10 ** ((i % 7) - 3)));
/** Bits, every NaN as 0x7fc00000: wasm leaves a computed NaN's sign and payload nondeterministic (see fused-matmul.test.ts). */
const bits = (x: Float32Array): number[] =>
  Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length), (v) => ((v & 0x7f800000) === 0x7f800000 && (v & 0x7fffff) !== 0 ? 0x7fc00000 : v));

const OPS = { add: tf.add, sub: tf.sub, mul: tf.mul, div: tf.div } as const;

/** Two shapes of a 2-D broadcast: the output [.., M-axes, .., N-axes] with each operand full or 1 along each. */
const pattern = fc
  .record({
    lead: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 2 }),
    rows: fc.integer({ min: 2, max: 9 }),
    cols: fc.integer({ min: 2, max: 19 }),
    roles: fc.constantFrom(['both', 'cols'], ['cols', 'both'], ['both', 'rows'], ['rows', 'both'], ['rows', 'cols'], ['cols', 'rows']),
    dropLeading: fc.boolean(),
    op: fc.constantFrom(...(Object.keys(OPS) as Array<keyof typeof OPS>)),
    seed: fc.nat(1000),
  })
  .map(({ lead, rows, cols, roles, dropLeading, op, seed }) => {
    const shapeOf = (role: string): number[] => {
      const s = [...lead.map(() => 1), role === 'cols' ? 1 : rows, role === 'rows' ? 1 : cols];
      // A row-vector operand may drop its leading unit axes ([N] rather than [1, N]).
      return dropLeading && role === 'cols' ? [cols] : s;
    };
    return { a: shapeOf(roles[0]!), b: shapeOf(roles[1]!), op, seed };
  });

test('broadcast2d: the 2-D views of the ScoreNet broadcasts, and none for same shapes, scalars or three runs', () => {
  expect(broadcast2d([64, 16], [16])).toEqual({ m: 64, n: 16, a: [16, 1], b: [0, 1] });
  expect(broadcast2d([64, 1], [1, 64])).toEqual({ m: 64, n: 64, a: [1, 0], b: [0, 1] });
  expect(broadcast2d([64, 28, 28, 1], [64, 1, 1, 1])).toEqual({ m: 64, n: 784, a: [784, 1], b: [1, 0] });
  expect([broadcast2d([64, 16], [64, 16]), broadcast2d([64, 16], [1]), broadcast2d([4, 1, 3], [1, 5, 3])]).toEqual([undefined, undefined, undefined]);
});

test('a ⊕ b has the bits of the kernel it replaces and of the cpu backend, for every 2-D broadcast pattern', async () => {
  const cases = fc.sample(pattern, { numRuns: 150, seed: 11 });
  const inputs = cases.map(({ a, b, seed }) => [valuesOf(a.reduce((x, y) => x * y, 1), seed), valuesOf(b.reduce((x, y) => x * y, 1), seed + 1)] as const);
  const run = (): number[][] => cases.map(({ a, b, op }, i) => tf.tidy(() => bits(OPS[op](tf.tensor(inputs[i]![0], a), tf.tensor(inputs[i]![1], b)).dataSync() as Float32Array)));
  const ours = run();
  configureFusedOverrides({ enabled: false });
  const theirs = run();
  const cpu = await onCpu(run);
  cases.forEach((c, i) => {
    expect([c, ours[i]]).toEqual([c, theirs[i]]);
    expect([c, ours[i]]).toEqual([c, cpu[i]]);
  });
});

test('the ScoreNet bias add [64, 16] + [16] and per-sample scaling [64, 28, 28, 1] · [64, 1, 1, 1]: the same bits as XNNPACK', () => {
  const shapes: ReadonlyArray<readonly [number[], number[]]> = [
    [[64, 16], [16]],
    [[64, 28, 28, 1], [64, 1, 1, 1]],
  ];
  for (const [sa, sb] of shapes) {
    const [a, b] = [valuesOf(sa.reduce((x, y) => x * y, 1), 1), valuesOf(sb.reduce((x, y) => x * y, 1), 2)];
    const both = (): number[][] => (['add', 'mul'] as const).map((op) => tf.tidy(() => bits(OPS[op](tf.tensor(a, sa), tf.tensor(b, sb)).dataSync() as Float32Array)));
    const ours = both();
    configureFusedOverrides({ enabled: false });
    expect(ours).toEqual(both());
    configureFusedOverrides({ enabled: true });
  }
});
