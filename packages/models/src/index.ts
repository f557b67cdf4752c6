/**
 * @score-sde/models, for Node: everything that runs on any host (`universal.ts`) and the Node-only parts (`node.ts`).
 * A browser bundle imports `@score-sde/models/browser`.
 * @module models
 */
export * from './universal';
export * from './node';
