/**
 * Group 1 — the closed-form marginal coefficients solve the moment ODEs of dx = f(t)·x dt + g(t) dw:
 *   dm/dt = f(t)·m,  m(0) = 1;      dv/dt = 2 f(t)·v + g(t)²,  v(0) = 0    (v = s(t)²).
 * (Itô: d E x = f E x dt; d Var x = (2 f Var x + g²) dt for a linear SDE started from a point mass.)
 */
import fc from 'fast-check';
import { type SDE, driftCoef, diffusionCoef, marginalMeanCoef, marginalVariance } from '@score-sde/sde-math';
import { identity, type Identity, runs } from '@score-sde/tensor-fp/testing';
import { EPS64, arbsByKind, timeArb } from './helpers';

const CENTRAL_DIFFERENCES =
  'central differences at h and h/2: the step-halving difference |D_h − D_{h/2}| (3× the leading truncation term) + float64 rounding 3δ/h of the quotients (δ = 64·41·ε·max|F|) + 8ε|rhs|';

const meanOde = identity({
  concept: 'sde',
  title: 'Mean coefficient ODE',
  formula: String.raw`$\frac{dm}{dt} = f(t)\,m(t),\quad m(0) = 1$`,
  source: 'Itô on the linear SDE dx = f(t) x dt + g(t) dw: d E[x] = f(t) E[x] dt (Särkkä & Solin 2019, eq. 5.50, as used in Song et al. 2021, App. B)',
  tolerance: CENTRAL_DIFFERENCES,
});

const varianceOde = identity({
  concept: 'sde',
  title: 'Marginal variance ODE',
  formula: String.raw`$\frac{dv}{dt} = 2 f(t)\,v(t) + g(t)^2,\quad v = s(t)^2,\ v(0) = 0$`,
  source: 'Itô on a linear SDE from a point mass: d Var[x] = (2 f Var[x] + g²) dt (Särkkä & Solin 2019, eq. 5.51, as used in Song et al. 2021, App. B)',
  tolerance: CENTRAL_DIFFERENCES,
});

const initialConditions = identity({
  concept: 'sde',
  title: 'Initial conditions of the marginal coefficients',
  formula: String.raw`$m(0) = 1,\quad s(0)^2 = 0$`,
  source: 'x(0) = x_0 exactly: with the two moment ODEs they determine m and s² uniquely',
  tolerance: 'exact (float64 equality)',
});

/**
 * Checks F'(t) = rhs(t) by central differences D_h = (F(t+h) − F(t−h))/2h, with a tolerance made of:
 * - truncation: D_h = F' + h²/6 F''' + O(h⁴), so D_h − D_{h/2} = (h²/8) F''' + O(h⁴) while D_{h/2} − F' = (h²/24) F''' + O(h⁴).
 *   Comparing F' with D_{h/2} and allowing |D_h − D_{h/2}| leaves a factor 3 over the leading truncation term,
 *   room for the O(h⁴) terms (h = 10⁻³ is ≥ 30× smaller than the time scale 1/β_max of every F here).
 * - rounding: each F(t) is a few float64 operations ending in an exp/expm1 whose argument a (|a| ≤ 40 here: ∫β ≤ 31,
 *   2 ln(σ_max/σ_min) ≤ 19, 2 ln σ ≤ 8) multiplies the argument's relative error, so |δF| ≤ 64ε(1 + |a|)|F| ≤ δ with
 *   δ = 64·41·ε·max|F|; the quotients carry ≤ 2δ/h (D_{h/2}) and 2δ/(2h) (D_h), i.e. ≤ 3δ/h in total, and the
 *   right-hand side itself ≤ 8ε|rhs|.
 */
const checkDerivative = (law: Identity, F: (t: number) => number, rhs: number, t: number, h = 1e-3): void => {
  const D = (hh: number) => (F(t + hh) - F(t - hh)) / (2 * hh);
  const Dh = D(h);
  const Dh2 = D(h / 2);
  const maxF = Math.max(...[t - h, t - h / 2, t + h / 2, t + h].map((s) => Math.abs(F(s))));
  const delta = 64 * 41 * EPS64 * maxF;
  law.atMost(Math.abs(Dh2 - rhs), Math.abs(Dh - Dh2) + (3 * delta) / h + 8 * EPS64 * Math.abs(rhs));
};

describe.each(Object.entries(arbsByKind))('moment ODEs (group 1): %s', (_kind, arb) => {
  test('dm/dt = f(t)·m (central differences, truncation by step halving, float64 rounding)', () => {
    fc.assert(
      fc.property(arb, timeArb, (sde: SDE, t) => {
        checkDerivative(meanOde, (s) => marginalMeanCoef(sde, s), driftCoef(sde, t) * marginalMeanCoef(sde, t), t);
      }),
      runs(200),
    );
  });

  test('dv/dt = 2 f(t)·v + g(t)² for v = s(t)² (central differences, truncation by step halving, float64 rounding)', () => {
    fc.assert(
      fc.property(arb, timeArb, (sde: SDE, t) => {
        checkDerivative(varianceOde, (s) => marginalVariance(sde, s), 2 * driftCoef(sde, t) * marginalVariance(sde, t) + diffusionCoef(sde, t) ** 2, t);
      }),
      runs(200),
    );
  });

  test('initial conditions m(0) = 1 and s(0)² = 0 (with the ODEs, they determine m and s² uniquely)', () => {
    fc.assert(
      fc.property(arb, (sde: SDE) => {
        initialConditions.equal(marginalMeanCoef(sde, 0), 1);
        initialConditions.equal(marginalVariance(sde, 0), 0);
      }),
      runs(50),
    );
  });
});
