/**
 * Probability-flow ODE samplers (Song et al., ICLR 2021, §4.3, eq. 13):
 *   dx/dt = f(t)x − ½ g(t)² ∇log p_t(x),
 * integrated from T down to ε by a fixed Runge–Kutta step on each grid interval, or adaptively (Dormand–Prince
 * 5(4) with rtol = atol = 1e-5 by default, as the reference's RK45). Deterministic: keys are left untouched.
 *
 * @module ode
 */
import * as E from 'fp-ts/Either';
import { type SDE, probabilityFlowDrift } from '@score-sde/sde-math';
import { type Step, defineStep } from './step';
import { type ButcherTableau, eulerTableau, heunTableau, rk4Tableau, rkStep } from './runge-kutta';
import { type AdaptiveOptions, type IntegrationError, SHARED_STEP_SIZE, integrateAdaptive } from './adaptive';

/**
 * One fixed step of an explicit Runge–Kutta method on the probability-flow ODE over [t, t_next]
 * (h = t_next − t < 0). `tableau.c.length` evaluations per step.
 * @category ode
 */
export const probabilityFlowStep = (sde: SDE, tableau: ButcherTableau): Step =>
  defineStep(
    { name: `pf-ode/${tableau.name}`, kind: 'predictor', order: tableau.order, stochastic: false, batchCoupling: [], nfePerStep: tableau.c.length },
    (score, s, tNext) => ({ x: rkStep(tableau, probabilityFlowDrift(sde, score), s.x, s.t, tNext - s.t).y }),
  );

/** Euler on the probability-flow ODE (order 1, 1 evaluation per step). @category ode */
export const pfEuler = (sde: SDE): Step => probabilityFlowStep(sde, eulerTableau);
/** Heun on the probability-flow ODE (order 2, 2 evaluations per step). @category ode */
export const pfHeun = (sde: SDE): Step => probabilityFlowStep(sde, heunTableau);
/** Classical RK4 on the probability-flow ODE (order 4, 4 evaluations per step). @category ode */
export const pfRk4 = (sde: SDE): Step => probabilityFlowStep(sde, rk4Tableau);

/** A solver failure thrown out of a step (steps return states); {@link sample} turns it into a Left. @category model */
export interface SolverFailure extends Error {
  readonly _tag: 'SolverFailure';
  readonly cause: IntegrationError;
}

/** Makes a {@link SolverFailure}. @category model */
export const solverFailure = (cause: IntegrationError): SolverFailure =>
  Object.assign(new Error(`adaptive solver failed: ${cause._tag} at t = ${cause.t}`), { _tag: 'SolverFailure' as const, cause });

/** Whether a thrown value is a {@link SolverFailure}. @category model */
export const isSolverFailure = (u: unknown): u is SolverFailure => u instanceof Error && (u as { _tag?: unknown })._tag === 'SolverFailure';

/**
 * The probability-flow ODE integrated adaptively over each grid interval (on the default grid [T, ε] that is the
 * whole solve). The proposed step size and the controller's history are carried in the state's memory, so a
 * finer grid (needed to apply a state transform such as inpainting at its points) continues the same solve.
 * @category ode
 */
export const pfAdaptive = (sde: SDE, opts: AdaptiveOptions = {}): Step =>
  defineStep(
    { name: `pf-ode/${opts.tableau?.name ?? 'dopri5'}(rtol=${opts.rtol ?? 1e-5}, atol=${opts.atol ?? 1e-5})`, kind: 'predictor', order: opts.tableau?.order ?? 5, stochastic: false, batchCoupling: [SHARED_STEP_SIZE], nfePerStep: 'adaptive' },
    (score, s, tNext) => {
      const r = integrateAdaptive(probabilityFlowDrift(sde, score), s.x, s.t, tNext, {
        ...opts,
        ...(s.memory?.stepSize !== undefined ? { initialStep: s.memory.stepSize } : {}),
        ...(s.memory?.inverseErrors !== undefined ? { inverseErrors: s.memory.inverseErrors } : {}),
      });
      if (E.isLeft(r)) throw solverFailure(r.left);
      return { x: r.right.y, memory: { ...s.memory, stepSize: r.right.nextStep, inverseErrors: r.right.inverseErrors } };
    },
  );
