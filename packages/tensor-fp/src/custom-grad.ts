/**
 * Custom gradients whose per-input gradients are computed only when asked for.
 *
 * `tf.customGrad` computes the gradient of EVERY input as soon as a node is back-propagated, even when the
 * caller differentiates with respect to only some of them (e.g. `∇ₓ` of a network: the gradients of the
 * filters are then thrown away, and for a convolution each costs as much as the forward pass). tfjs' own
 * kernels avoid this: their gradients are thunks, one per input, and the tape calls only those on a path from
 * the differentiated tensors. {@link customGradLazy} gives a custom op the same behaviour, through the engine
 * primitive that `tf.customGrad` itself is built on (`ENGINE.runKernelFunc` with a forward function and a
 * backward function returning one thunk per input). Should that primitive ever go away, it falls back to
 * `tf.customGrad` (correct, only eager).
 *
 * @module custom-grad
 */
import { tf } from './tf';

/** The gradient thunks of a custom op, one per input, in input order. @category model */
export type GradThunks = ReadonlyArray<() => tf.Tensor>;

/**
 * What the forward function of a custom op returns: its value, and — given the upstream gradient dy and the
 * tensors saved with `save` — the thunks computing the gradient w.r.t. each input.
 * @category model
 */
export interface CustomOp {
  readonly value: tf.Tensor;
  readonly gradFunc: (dy: tf.Tensor, saved: ReadonlyArray<tf.Tensor>) => GradThunks;
}

interface KernelFuncEngine {
  runKernelFunc(params: {
    forwardFunc: (backend: unknown, save: (ts: tf.Tensor[]) => void) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, () => tf.Tensor>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor;
}

const lazyEngine = (): KernelFuncEngine | undefined => {
  const engine = tf.engine() as unknown as Partial<KernelFuncEngine>;
  return typeof engine.runKernelFunc === 'function' ? (engine as KernelFuncEngine) : undefined;
};

/**
 * `customGradLazy(f)(x₁, …, xₙ)` = the value of `f`, with ∂/∂xᵢ given by the i-th thunk of `f`'s `gradFunc`,
 * each thunk evaluated only if the tape needs the gradient of xᵢ. `f` receives the inputs and a `save`
 * function; tensors saved are kept alive for the backward pass (as in `tf.customGrad`).
 * @category combinators
 */
export const customGradLazy =
  (f: (inputs: ReadonlyArray<tf.Tensor>, save: (ts: tf.Tensor[]) => void) => CustomOp) =>
  (...inputs: tf.Tensor[]): tf.Tensor => {
    const engine = lazyEngine();
    if (engine === undefined) {
      const eager = tf.customGrad(((...args: unknown[]) => {
        const save = args[args.length - 1] as (ts: tf.Tensor[]) => void;
        const op = f(args.slice(0, -1) as tf.Tensor[], save);
        return { value: op.value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => op.gradFunc(dy, saved).map((g) => g()) };
      }) as unknown as Parameters<typeof tf.customGrad>[0]);
      return eager(...inputs);
    }
    let op: CustomOp | undefined;
    const inputMap: Record<string, tf.Tensor> = {};
    inputs.forEach((x, i) => {
      inputMap[i] = x;
    });
    return engine.runKernelFunc({
      forwardFunc: (_backend, save) => {
        op = f(inputs, save);
        return op.value;
      },
      backwardsFunc: (dy, saved) => {
        const thunks = op!.gradFunc(dy, saved);
        const out: Record<string, () => tf.Tensor> = {};
        thunks.forEach((g, i) => {
          out[i] = g;
        });
        return out;
      },
      inputs: inputMap,
    });
  };
