/**
 * Adaptive-step reverse SDE/ODE sampler (Jolicoeur-Martineau et al. 2021, "Gotta Go Fast When Generating Data
 * with Score-Based Models", Alg. 1) with a PID step-size controller.
 *
 * On an attempted step of size h from t (t' = t − h, z ~ N(0, I), f̄ the reverse drift):
 *   Euler–Maruyama:  x₁ = x + h·(−f̄(x, t)) + g(t)√h z,
 *   improved Euler:  x₂ = x + (h/2)·(−f̄(x, t) − f̄(x₁, t')) + ½(g(t) + g(t'))√h z,
 * (same z; for the probability-flow ODE g = 0 and f̄ is the flow's drift: the Heun–Euler pair), the scaled error
 * ε = RMS((x₁ − x₂) / (atol + rtol·max(|x|, |x₂|))); accept x₂ when ε ≤ 1 (extrapolation), and adapt h with the
 * controller. A rejected step draws fresh noise (as the paper does). f̄(x, t) is reused after a rejection, so an
 * accepted step costs 2 evaluations and a rejected one 1 more.
 *
 * @module adaptive-sde
 */
import { tf } from '@score-sde/tensor-fp';
import { type SDE, diffusionCoef, probabilityFlowDrift, reverseDrift } from '@score-sde/sde-math';
import { type Step, defineStep, perSampleNoise } from './step';
import { type PIDController, pid, sdeController, stepFactor, scaledRmsNorm } from './controller';
import { solverFailure } from './ode';
import { SHARED_STEP_SIZE } from './adaptive';

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
      const drift = ode ? probabilityFlowDrift(sde, score) : reverseDrift(sde, score);
      const g = (t: number): number => (ode ? 0 : diffusionCoef(sde, t));
      let x = s.x;
      let xMean = s.x;
      let t = s.t;
      let keys = s.keys;
      let h = s.memory?.stepSize ?? opts.initialStep ?? 0.01;
      let history: readonly [number, number] = s.memory?.inverseErrors ?? [1, 1];
      let lastRejected = false;
      let f1: tf.Tensor | undefined;
      const span = Math.abs(s.t - tNext);
      for (let attempts = 0; t > tNext; attempts++) {
        if (attempts >= maxSteps) throw solverFailure({ _tag: 'TooManySteps', t, steps: attempts });
        if (h < 1e-14 * span) throw solverFailure({ _tag: 'StepSizeUnderflow', t, h });
        const remaining = t - tNext;
        const hh = h >= remaining * (1 - 1e-12) ? remaining : h;
        const tn = hh === remaining ? tNext : t - hh;
        const xNow = x;
        const fNow = f1 ?? drift(xNow, t);
        f1 = fNow;
        let z: tf.Tensor | undefined;
        if (!ode) {
          const noise = perSampleNoise({ ...s, x: xNow, keys });
          keys = noise.keys;
          z = noise.z;
        }
        const r = tf.tidy(() => {
          const w1 = z === undefined ? undefined : tf.mul(z, g(t) * Math.sqrt(hh));
          const m1 = tf.sub(xNow, tf.mul(fNow, hh));
          const x1 = w1 === undefined ? m1 : tf.add(m1, w1);
          const m2 = tf.sub(xNow, tf.mul(tf.add(fNow, drift(x1, tn)), 0.5 * hh));
          const x2 = z === undefined ? m2 : tf.add(m2, tf.mul(z, 0.5 * (g(t) + g(tn)) * Math.sqrt(hh)));
          return { x2, m2, err: scaledRmsNorm(tf.sub(x1, x2), xNow, x2, rtol, atol) };
        });
        if (z !== undefined) z.dispose();
        const err = r.err.dataSync()[0]!;
        r.err.dispose();
        const ok = Number.isFinite(err) && err <= 1;
        const factor = stepFactor(ctrl, errorOrder, err, history, ok && lastRejected);
        if (ok) {
          // Release the replaced batch (never the input's), then take the accepted one.
          if (x !== s.x) tf.dispose(x);
          if (xMean !== s.x && xMean !== x) tf.dispose(xMean);
          x = r.x2;
          xMean = r.m2; // for the ODE, m2 is x2 itself
          t = tn;
          f1.dispose();
          f1 = undefined;
          history = [err === 0 ? 1 : 1 / err, history[0]];
          lastRejected = false;
        } else {
          tf.dispose(r.x2 === r.m2 ? [r.x2] : [r.x2, r.m2]);
          lastRejected = true;
        }
        h = hh * factor;
      }
      if (f1 !== undefined) f1.dispose();
      return { x, xMean, keys, memory: { ...s.memory, stepSize: h, inverseErrors: history } };
    },
  );
};
