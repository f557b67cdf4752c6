/**
 * The PID step-size controller term by term, against factors computed by hand from
 *   factor = safety · ε_n^{−β₁/k} · ε_{n−1}^{−β₂/k} · ε_{n−2}^{−β₃/k},  β₁ = p + i + d, β₂ = −(p + 2d), β₃ = d,
 * written with the inverse errors r = 1/ε that `stepFactor` takes: factor = safety · r_n^{β₁/k} r_{n−1}^{β₂/k} r_{n−2}^{β₃/k},
 * then clipped to [factorMin, factorMax] (Söderlind 2003; diffrax's PIDController).
 */
import { pid, sdeController, stepFactor } from '@score-sde/solvers';

/** A few float64 roundings (three powers, three products): 16 ulps of the value. */
const close = (got: number, want: number): boolean => Math.abs(got - want) <= 16 * Number.EPSILON * Math.abs(want);

const onlyP = pid({ pcoeff: 1, icoeff: 0, dcoeff: 0 });
const onlyI = pid({ pcoeff: 0, icoeff: 1, dcoeff: 0 });
const onlyD = pid({ pcoeff: 0, icoeff: 0, dcoeff: 1 });

describe('stepFactor, one term at a time (k = 1, safety 0.9)', () => {
  test('I term: 0.9 · r_n — error 1/4 gives 3.6, error 2 gives 0.45, whatever the history', () => {
    expect(close(stepFactor(onlyI, 1, 0.25), 3.6)).toBe(true);
    expect(close(stepFactor(onlyI, 1, 2), 0.45)).toBe(true);
    expect(close(stepFactor(onlyI, 1, 0.25, [1 / 7, 9]), 3.6)).toBe(true);
  });

  test('P term: 0.9 · r_n / r_{n−1} — reacts to the change of the error only', () => {
    // ε_n = 1/4, ε_{n−1} = 1/2: r = 4, 2 → 0.9 · 4 / 2 = 1.8.
    expect(close(stepFactor(onlyP, 1, 0.25, [2, 1]), 1.8)).toBe(true);
    // ε_n = 1/4, ε_{n−1} = 1/8: the error grew → 0.9 · 4 / 8 = 0.45.
    expect(close(stepFactor(onlyP, 1, 0.25, [8, 1]), 0.45)).toBe(true);
    // A constant error leaves only the safety factor; the older error r_{n−2} is not read.
    expect(close(stepFactor(onlyP, 1, 0.25, [4, 1000]), 0.9)).toBe(true);
  });

  test('D term: 0.9 · r_n r_{n−2} / r_{n−1}² — reacts to the second difference of log ε', () => {
    // r = 4, 2, 8 → 0.9 · 4 · 8 / 4 = 7.2.
    expect(close(stepFactor(onlyD, 1, 0.25, [2, 8]), 7.2)).toBe(true);
    // The slots swapped: r = 4, 8, 2 → 0.9 · 4 · 2 / 64 = 0.1125, clipped to factorMin 0.2.
    expect(stepFactor(onlyD, 1, 0.25, [8, 2])).toBe(0.2);
    // log ε linear in n (r = 4, 2, 1): no second difference → 0.9.
    expect(close(stepFactor(onlyD, 1, 0.25, [2, 1]), 0.9)).toBe(true);
  });
});

describe('stepFactor, all terms and the error order', () => {
  test('the error order k divides every exponent: I controller with k = 5 and ε = 1/32 gives 0.9 · 2', () => {
    expect(close(stepFactor(onlyI, 5, 1 / 32), 1.8)).toBe(true);
  });

  test('p = 0.1, i = 0.3, d = 0.2, k = 2: exponents 0.3, −0.25, 0.1 of r_n, r_{n−1}, r_{n−2}', () => {
    const c = pid({ pcoeff: 0.1, icoeff: 0.3, dcoeff: 0.2 });
    // r = 16, 4, 2^10 → 0.9 · 2^{1.2} · 2^{−0.5} · 2^{1} = 0.9 · 2^{1.7}.
    expect(close(stepFactor(c, 2, 1 / 16, [4, 1024]), 0.9 * 2 ** 1.7)).toBe(true);
  });

  test("sdeController is diffrax's PI controller p = 0.1, i = 0.3: 0.9 · r_n^{0.4/k} · r_{n−1}^{−0.1/k}", () => {
    const c = sdeController();
    expect([c.pcoeff, c.icoeff, c.dcoeff]).toEqual([0.1, 0.3, 0]);
    // k = 1, r = 2^5, 2^2 → 0.9 · 2^{2} · 2^{−0.2} = 0.9 · 2^{1.8}.
    expect(close(stepFactor(c, 1, 1 / 32, [4, 77]), 0.9 * 2 ** 1.8)).toBe(true);
  });
});

describe('stepFactor limits', () => {
  test('clipped to [factorMin, factorMax]; ε = 0 gives factorMax; NaN or ∞ gives factorMin', () => {
    expect(stepFactor(onlyI, 1, 1e-6)).toBe(10);
    expect(stepFactor(onlyI, 1, 1e6)).toBe(0.2);
    expect(stepFactor(onlyI, 1, 0)).toBe(10);
    expect(stepFactor(onlyI, 1, NaN)).toBe(0.2);
    expect(stepFactor(onlyI, 1, Infinity)).toBe(0.2);
    expect(stepFactor(pid({ factorMin: 0.5, factorMax: 2 }), 1, 1e-6)).toBe(2);
  });

  test('right after a rejection the step never grows: min(1, factor)', () => {
    expect(stepFactor(onlyI, 1, 0.25, [1, 1], true)).toBe(1);
    expect(close(stepFactor(onlyI, 1, 2, [1, 1], true), 0.45)).toBe(true);
  });
});
