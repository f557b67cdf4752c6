/**
 * The one import of TensorFlow.js core for the whole workspace.
 *
 * `@tensorflow/tfjs-core` alone registers no gradients; importing it from here guarantees that every
 * gradient (`tf.grad`, `tf.variableGrads`) is registered before any package differentiates anything.
 *
 * @module tf
 */
import * as tf from '@tensorflow/tfjs-core';
// The union package's CommonJS bundle registers every gradient (and the chained ops) into tfjs-core's
// global registries; the tfjs-core bundle alone registers none.
import '@tensorflow/tfjs';

export { tf };
export type Tensor = tf.Tensor;
export type Rank = tf.Rank;
