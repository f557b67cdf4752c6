/**
 * The fused kernels that write their output in loops that run at least once (the transposed conv's overlap-add,
 * sub-pixel interleaving and phases stored in place) given an empty batch: the output is empty, and nothing outside it is written. (They wrote a
 * whole sample into the zero-size output: past its heap region, into the next tensor or the allocator's own headers,
 * after which a later malloc or free of the wasm heap trapped with its lock held and the next free spun forever.)
 * In a file of its own: a heap corrupted here would hang whatever test ran after it in the same process.
 */
import { tf, initBackend } from '@score-sde/tensor-fp';
import { interleavePhases, overlapAdd, transposeConv } from '../src/fused-kernels';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

test.each([
  { kernel: 'overlapAdd', run: (): tf.Tensor => overlapAdd(tf.zeros([0, 7, 7, 9]) as tf.Tensor4D, 3, 3, 7, 7, 1, 1), shape: [0, 7, 7, 1] },
  {
    kernel: 'interleavePhases',
    run: (): tf.Tensor => interleavePhases([0, 1, 2, 3].map(() => tf.zeros([0, 4, 4, 8]) as tf.Tensor4D), 2, 4, 4, [0, 8, 8, 8], 0, 0),
    shape: [0, 8, 8, 8],
  },
  {
    kernel: 'transposeConv',
    run: (): tf.Tensor => transposeConv(tf.zeros([0, 4, 4, 3]) as tf.Tensor4D, [0, 1, 2, 3].map(() => tf.zeros([2, 2, 3, 8]) as tf.Tensor4D), 2, 5, 5, [0, 9, 9, 8], 1, 1),
    shape: [0, 9, 9, 8],
  },
])('$kernel of an empty batch gives an empty output and leaves every other tensor as it was', ({ run, shape }) => {
  // Small tensors with holes between them, where the (smallest) heap regions of an empty output and its inputs land.
  const pairs = Array.from({ length: 256 }, () => [tf.fill([4], 7.5), tf.fill([4], 7.5)] as const);
  const live = pairs.map(([a]) => a);
  tf.dispose(pairs.map(([, b]) => b));
  const z = tf.tidy(run);
  const changed = live.filter((t) => Array.from(t.dataSync()).some((v) => v !== 7.5)).length;
  expect([z.shape, changed]).toEqual([shape, 0]);
  tf.dispose([z, ...live]);
});
