/**
 * What every experiment command uses: PNG grids, plots, progress bars, flag parsing, reports, the command tail
 * (exit codes, Ctrl-C), folder locks, the stray-stroke and grain counts of digit images.
 * @module lib
 */
export * as png from './png';
export * as plot from './plot';
export * as progress from './progress';
export * as cli from './cli';
export * as report from './report';
export * as memory from './memory';
export * as command from './command';
export * as lock from './lock';
export * as strokes from './strokes';
