/**
 * The test-only fault hooks: the environment is decoded strictly (a bad variable is named), a trigger fires on the
 * arrival it names and no other, a full disk looks like Node's own ENOSPC error, a poisoned step is NaN or +∞.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as E from 'fp-ts/Either';
import { faultsFromEnv, setFaultPlan, point, pointSync, poisonAtStep } from '../src/faults';

afterEach(() => setFaultPlan(undefined));

test('the environment decodes to a plan; each malformed variable is named with its value', () => {
  expect(faultsFromEnv({})).toEqual(E.right({}));
  expect(faultsFromEnv({ SCORE_SDE_FAULT_ENOSPC: 'write:ema.bin@2', SCORE_SDE_FAULT_PAUSE: 'step:3,pointer:checkpoint', SCORE_SDE_FAULT_SIGNAL: '/tmp/s', SCORE_SDE_FAULT_NAN_STEP: '4' })).toEqual(
    E.right({
      enospc: { pattern: 'write:ema.bin', occurrence: 2 },
      pause: { at: [{ pattern: 'step:3', occurrence: 1 }, { pattern: 'pointer:checkpoint', occurrence: 1 }], signal: '/tmp/s' },
      nanStep: 4,
    }),
  );
  expect(faultsFromEnv({ SCORE_SDE_FAULT_ENOSPC: 'step:3' })).toEqual(E.left('SCORE_SDE_FAULT_ENOSPC: only write: points can run out of space, got "step:3"'));
  expect(faultsFromEnv({ SCORE_SDE_FAULT_ENOSPC: 'write:x@0' })).toEqual(E.left(expect.stringMatching(/^SCORE_SDE_FAULT_ENOSPC: expected <point>\[@k\]/)));
  expect(faultsFromEnv({ SCORE_SDE_FAULT_PAUSE: 'step:1' })).toEqual(E.left(expect.stringMatching(/^SCORE_SDE_FAULT_SIGNAL: required/)));
  expect(faultsFromEnv({ SCORE_SDE_FAULT_INF_STEP: '0' })).toEqual(E.left('SCORE_SDE_FAULT_INF_STEP: expected a step number ≥ 1, got "0"'));
});

test('ENOSPC fires at the k-th arrival at its point only, shaped like the error a full disk gives', async () => {
  setFaultPlan({ enospc: { pattern: 'write:a.bin', occurrence: 2 } });
  await expect(point('write:a.bin')).resolves.toBeUndefined();
  await expect(point('write:b.bin')).resolves.toBeUndefined();
  await expect(point('write:a.bin')).rejects.toMatchObject({ code: 'ENOSPC', errno: -28, syscall: 'write', message: expect.stringMatching(/^ENOSPC: no space left on device, write/) });
  await expect(point('write:a.bin')).resolves.toBeUndefined();
  setFaultPlan({ enospc: { pattern: 'write:*', occurrence: 1 } });
  expect(() => pointSync('write:anything')).toThrow(/ENOSPC/);
});

test('a pause writes the point into the signal file and waits until the file is removed', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pause-'));
  const signal = path.join(dir, 'signal');
  setFaultPlan({ pause: { at: [{ pattern: 'cleanup:x', occurrence: 1 }], signal } });
  let done = false;
  const paused = point('cleanup:x').then(() => (done = true));
  while (!fs.existsSync(signal)) await new Promise((r) => setTimeout(r, 5));
  expect(fs.readFileSync(signal, 'utf8').split('\n')[0]).toBe('cleanup:x');
  await new Promise((r) => setTimeout(r, 50));
  expect(done).toBe(false);
  fs.rmSync(signal);
  await paused;
  expect(done).toBe(true);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a poisoned step multiplies its batch by NaN or +∞; other steps are untouched', () => {
  setFaultPlan({ nanStep: 3, infStep: 5 });
  expect([1, 3, 5].map(poisonAtStep)).toEqual([undefined, Number.NaN, Number.POSITIVE_INFINITY]);
});
