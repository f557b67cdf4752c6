/**
 * The @example blocks of the libraries' doc comments type-check (they are imported here, through the files that
 * `npm run docs` generates from them in examples/doc; `npm run check:docs` fails when those files are stale) and run.
 */
import { initBackend, liveTensors } from '@score-sde/tensor-fp';
import { docExamples } from '../examples/doc';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

test('there is an @example for each main entry point: an SDE record, a step, pc, sample, a grid, guidance, the likelihood', () => {
  expect(docExamples.map((e) => e.symbol).sort()).toEqual(expect.arrayContaining(['vp', 'eulerMaruyama', 'pc', 'sample', 'karrasGrid', 'classifierGuidance', 'logLikelihood']));
});

test.each(docExamples.map((e) => [`${e.symbol} (${e.source})`, e] as const))('the @example of %s runs and leaks no tensor', async (_name, e) => {
  const before = liveTensors();
  await e.run();
  expect(liveTensors()).toBe(before);
});
