/**
 * The README's "Compose your own sampler" example type-checks (it is imported here) and runs.
 */
import { initBackend, liveTensors } from '@score-sde/tensor-fp';
import { composeExample } from '../examples/compose';

beforeAll(async () => {
  await initBackend({ prefer: 'wasm', quiet: true });
});

test('the compose example runs: Heun ▸ 2 × Langevin on 40 Karras intervals costs 40 × (2 + 2) evaluations and one more for the final Tweedie step', async () => {
  const before = liveTensors();
  const r = await composeExample(200);
  expect(r.nfe).toBe(40 * 4 + 1);
  expect(Number.isFinite(r.imputedMean)).toBe(true);
  expect(r.exactMean).toBeCloseTo(2, 6);
  expect(liveTensors()).toBe(before);
});
