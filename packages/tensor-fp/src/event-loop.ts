/**
 * Cooperation with the host's event loop for long synchronous tensor work.
 *
 * @module event-loop
 */

type Schedule = (f: () => void) => unknown;

/** Resolvers waiting for the browser's message-channel turn, in order (one channel for every waiter). */
const waiting: Array<() => void> = [];
let channel: { readonly post: () => void } | undefined;

/** A macrotask without a timer's clamping: a MessageChannel message (browsers, which have no setImmediate). */
const viaMessage = (resolve: () => void): void => {
  if (channel === undefined) {
    // The ports as both hosts' typings agree on them (DOM: onmessage; Node: an EventTarget-like port).
    const c = new MessageChannel() as unknown as { port1: { onmessage: (() => void) | null }; port2: { postMessage(m: null): void } };
    c.port1.onmessage = () => waiting.shift()?.();
    channel = { post: () => c.port2.postMessage(null) };
  }
  waiting.push(resolve);
  channel.post();
};

/**
 * Resolves on the next turn of the event loop, after pending I/O callbacks, timers and signal handlers
 * (`setImmediate` in Node, looked up at each call; a MessageChannel message in a browser): `await macrotask()` between
 * training steps or sampler steps lets a Ctrl-C handler, an abort signal, a progress redraw or a click run.
 * @category scheduling
 */
export const macrotask = (): Promise<void> =>
  new Promise((resolve) => {
    const immediate = (globalThis as { setImmediate?: Schedule }).setImmediate;
    if (immediate !== undefined) immediate(resolve);
    else viaMessage(resolve);
  });
