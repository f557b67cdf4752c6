/**
 * `@score-sde/tensor-fp/browser` — the package for a web page: every module that runs on any host (`universal.ts`)
 * and the browser's backend chooser (webgpu → webgl → wasm → cpu). No Node built-in is reachable from here; the
 * bundle check (experiments' `test/web/bundle.test.ts`) keeps it so.
 * @module browser
 */
export * from './universal';
export * from './backend-browser';
