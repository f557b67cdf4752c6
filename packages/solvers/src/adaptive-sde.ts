/**
 * Adaptive-step reverse SDE/ODE sampler (Jolicoeur-Martineau et al. 2021, "Gotta Go Fast When Generating Data
 * with Score-Based Models", Alg. 1) with a PID step-size controller.
 *
 * On an attempted step of size h from t (t' = t − h, z ~ N(0, I), f̄ the reverse drift):
 *   Euler–Maruyama:  x₁ = x + h·(−f̄(x, t)) + g(t)√h z,
 *   improved Euler:  x₂ = x + (h/2)·(−f̄(x, t) − f̄(x₁, t')) + ½(g(t) + g(t'))√h z,
 * (same z; for the probability-flow ODE g = 0 and f̄ is the flow's drift: the Heun–Euler pair), the scaled error
 * ε = RMS((x₁ − x₂) / (atol + rtol·max(|x|, |x₂|))); accept x₂ when ε ≤ 1 (extrapolation), and adapt h with the
 * controller. A rejected step draws fresh noise (as the paper does). The score at (x, t) is reused after a rejection, so an
 * accepted step costs 2 evaluations and a rejected one 1 more. f̄ = f(t)x − g(t)² s (½ g² for the flow) is linear in x
 * and s, so each stage is one fused pass on wasm (tensor-fp's eulerUpdate with noise, then heunStageWithError, which
 * also returns ε), with the bits of the tf ops (sde-math's reverseDrift, then the formulas above) it replaces.
 *
 * @module adaptive-sde
 */
import { tf, fused } from '@score-sde/tensor-fp';
import { type SDE, type ScoreFn, diffusionCoef, reverseDriftCoefs } from '@score-sde/sde-math';
import { type Step, defineStep, perSampleNoise } from './step';
import { type PIDController, pid, sdeController, stepFactor } from './controller';
import { solverFailure } from './ode';
import { SHARED_STEP_SIZE } from './adaptive';

/** s(x, t) as a tensor the step owns (its intermediates released; a copy if the score returned x itself). */
const ownScore = (score: ScoreFn, x: tf.Tensor, t: number): tf.Tensor => tf.tidy(() => {
  const y = score(x, t);
  return y === x ? tf.clone(y) : y;
});

/** Options of the adaptive reverse sampler. @category model */
export interface AdaptiveSdeOptions {
  /** Integrate the probability-flow ODE instead of the reverse SDE (default false). */
  readonly probabilityFlow?: boolean;
  /** Relative tolerance (default 1e-2). */
  readonly rtol?: number;
  /** Absolute tolerance (default 1e-2). */
  readonly atol?: number;
  /** Step-size controller (default: the PI controller p = 0.1, i = 0.3 for the SDE, the I controller for the ODE). */
  readonly controller?: PIDController;
  /** First step size (default 0.01, diffrax's choice for SDEs). */
  readonly initialStep?: number;
  /** Maximum attempted steps per grid interval (default 10 000). */
  readonly maxSteps?: number;
}

/**
 * The adaptive reverse SDE (or probability-flow ODE) over each grid interval; use it on the grid [T, ε]
 * (`uniformGrid(sde, 1, ε)`). Error order 1.5 for the SDE pair (strong order 1 with additive noise, plus ½, as
 * diffrax), 2 for the ODE pair. Step size and controller history are kept in the state's memory.
 * @category adaptive
 */
export const adaptiveReverse = (sde: SDE, opts: AdaptiveSdeOptions = {}): Step => {
  const ode = opts.probabilityFlow ?? false;
  const rtol = opts.rtol ?? 1e-2;
  const atol = opts.atol ?? 1e-2;
  const ctrl = opts.controller ?? (ode ? pid() : sdeController());
  const errorOrder = ode ? 2 : 1.5;
  const maxSteps = opts.maxSteps ?? 10000;
  return defineStep(
    { name: `adaptive-${ode ? 'ode' : 'sde'}(rtol=${rtol}, atol=${atol})`, kind: 'predictor', order: ode ? 2 : 1, stochastic: !ode, batchCoupling: [SHARED_STEP_SIZE], nfePerStep: 'adaptive' },
    (score, s, tNext) => {
      // f̄(x, t) = a(t)·x − b(t)·s(x, t), the coefficients of sde-math's reverseDrift (probabilityFlowDrift for the flow)
      const coefs = (t: number): { readonly a: number; readonly b: number } => reverseDriftCoefs(sde, t, ode);
      const g = (t: number): number => (ode ? 0 : diffusionCoef(sde, t));
      let x = s.x;
      let xMean = s.x;
      let t = s.t;
      let keys = s.keys;
      let h = s.memory?.stepSize ?? opts.initialStep ?? 0.01;
      let history: readonly [number, number] = s.memory?.inverseErrors ?? [1, 1];
      let lastRejected = false;
      let s1: tf.Tensor | undefined;
      const span = Math.abs(s.t - tNext);
      for (let attempts = 0; t > tNext; attempts++) {
        if (attempts >= maxSteps) throw solverFailure({ _tag: 'TooManySteps', t, steps: attempts });
        if (h < 1e-14 * span) throw solverFailure({ _tag: 'StepSizeUnderflow', t, h });
        const remaining = t - tNext;
        const hh = h >= remaining * (1 - 1e-12) ? remaining : h;
        const tn = hh === remaining ? tNext : t - hh;
        const xNow = x;
        const sNow = s1 ?? ownScore(score, xNow, t);
        s1 = sNow;
        let z: tf.Tensor | undefined;
        if (!ode) {
          const noise = perSampleNoise({ ...s, x: xNow, keys });
          keys = noise.keys;
          z = noise.z;
        }
        // x₁ = x − f̄(x, t)·h + g(t)√h z  (x + f̄·(−h): the same bits as x − f̄·h)
        const [f1, f2] = [coefs(t), coefs(tn)];
        const x1 = fused.eulerUpdate(xNow, sNow, f1.a, f1.b, -hh, z === undefined ? undefined : { z, c: g(t) * Math.sqrt(hh) });
        const s2 = ownScore(score, x1, tn);
        const r = fused.heunStageWithError(xNow, sNow, x1, s2, z, { a1: f1.a, b1: f1.b, a2: f2.a, b2: f2.b, h: 0.5 * hh, c: 0.5 * (g(t) + g(tn)) * Math.sqrt(hh), rtol, atol });
        tf.dispose(z === undefined ? [x1, s2] : [x1, s2, z]);
        const err = r.err;
        const ok = Number.isFinite(err) && err <= 1;
        const factor = stepFactor(ctrl, errorOrder, err, history, ok && lastRejected);
        if (ok) {
          // Release the replaced batch (never the input's), then take the accepted one.
          if (x !== s.x) tf.dispose(x);
          if (xMean !== s.x && xMean !== x) tf.dispose(xMean);
          x = r.x2;
          xMean = r.m2; // for the ODE, m2 is x2 itself
          t = tn;
          s1.dispose();
          s1 = undefined;
          history = [err === 0 ? 1 : 1 / err, history[0]];
          lastRejected = false;
        } else {
          tf.dispose(r.x2 === r.m2 ? [r.x2] : [r.x2, r.m2]);
          lastRejected = true;
        }
        h = hh * factor;
      }
      if (s1 !== undefined) s1.dispose();
      return { x, xMean, keys, memory: { ...s.memory, stepSize: h, inverseErrors: history } };
    },
  );
};
