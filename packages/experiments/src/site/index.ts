/**
 * The static site of `experiments:web` and what its tests and benchmark share: the build, a local server, and a
 * headless Chromium that arrives with `npm ci`.
 * @module site
 */
export * from './build';
export * from './serve';
export * from './chromium';
