/**
 * Cooperation with Node's event loop for long synchronous tensor work.
 *
 * @module event-loop
 */

/**
 * Resolves on the next turn of the event loop, after pending I/O callbacks, timers and signal handlers
 * (`setImmediate`): `await macrotask()` between training steps or sampler steps lets a Ctrl-C handler, an abort
 * signal or a progress redraw run.
 * @category scheduling
 */
export const macrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
