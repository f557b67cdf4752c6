/**
 * `@score-sde/models/browser` — the models package for a web page: everything that runs on any host
 * (`universal.ts`), including a checkpoint's loading from a URL or a picked folder with the checks and messages of
 * Node. No Node built-in is reachable from here; the bundle check (experiments' `test/web/bundle.test.ts`) keeps it so.
 * @module browser
 */
export * from './universal';
