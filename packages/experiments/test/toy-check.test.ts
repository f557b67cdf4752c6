/**
 * The toy checks (toy/check.ts, shared by `experiments:toy` and the web playground) hold for exact samples of the
 * target and catch samples that are off: a shifted mean, a wrong spread, a wrong weight.
 */
import { random } from '@score-sde/tensor-fp';
import { vp, type GaussianMixture } from '@score-sde/sde-math';
import { samplerFromSpec } from '@score-sde/solvers';
import * as E from 'fp-ts/Either';
import { toyTarget, conformanceChecks, holdsWithin, standardErrorsOff } from '../src/toy/index';

const data: GaussianMixture = { weights: [0.3, 0.7], means: [[-2, 0], [2, 1]], stds: [[0.5, 0.5], [0.4, 0.8]] };
const sde = vp();
const n = 1000;

const targetOf = (denoise: boolean): ReturnType<typeof toyTarget> => {
  const s = samplerFromSpec(sde, { kind: 'edm', steps: 20, denoise });
  if (E.isLeft(s)) throw new Error('spec');
  return toyTarget(sde, data, s.right);
};

describe.each([true, false])('denoise %s', (denoise) => {
  const target = targetOf(denoise);
  const reference = target.reference(random.split(random.key(1), n));

  test('exact samples of the target hold every check within 5 SE', () => {
    const x = target.reference(random.split(random.key(2), n));
    const checks = conformanceChecks(target, x, reference, 2);
    expect(checks.map((c) => c.name)).toEqual(['fraction 0', 'fraction 1', 'mean 0', 'mean 1', 'second moment 0', 'second moment 1', 'energy distance']);
    checks.forEach((c) => expect(standardErrorsOff(c)).toBeLessThanOrEqual(5));
  });

  test.each([
    // Coordinate 0 has sd ≈ 1.9, so its mean's SE at n = 1000 is ≈ 0.06: a shift of 0.6 is ≈ 10 SE.
    ['shifted by 0.6 in x₀', 'mean 0', (x: Float64Array) => x.map((v, i) => (i % 2 === 0 ? v + 0.6 : v))],
    ['spread 1.3× about the mean', 'second moment 1', (x: Float64Array) => x.map((v, i) => target.mean[i % 2]! + 1.3 * (v - target.mean[i % 2]!))],
  ] as const)('samples %s fail the %s check (and the energy distance) by more than 5 SE', (_label, check, damage) => {
    const x = damage(target.reference(random.split(random.key(2), n)));
    const checks = conformanceChecks(target, x, reference, 2);
    const c = checks.find((k) => k.name === check)!;
    expect(holdsWithin(5)(c)).toBe(false);
    expect(holdsWithin(5)(checks.find((k) => k.name === 'energy distance')!)).toBe(false);
  });

  test('samples with the weights swapped (0.7, 0.3) fail the fraction checks', () => {
    const other = { ...data, weights: [0.7, 0.3] };
    const s = samplerFromSpec(sde, { kind: 'edm', steps: 20, denoise });
    if (E.isLeft(s)) throw new Error('spec');
    const x = toyTarget(sde, other, s.right).reference(random.split(random.key(2), n));
    expect(holdsWithin(5)(conformanceChecks(target, x, reference, 2).find((k) => k.name === 'fraction 0')!)).toBe(false);
  });

  test('a NaN never holds', () => {
    expect(holdsWithin(5)({ name: 'x', estimate: NaN, target: 0, standardError: 1 })).toBe(false);
    expect(holdsWithin(5)({ name: 'x', estimate: 0, target: 0, standardError: NaN })).toBe(false);
  });
});
