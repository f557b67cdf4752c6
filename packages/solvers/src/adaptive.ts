/**
 * Adaptive integration of a tensor ODE dy/dt = F(y, t) from t0 to t1 (either direction) with an embedded
 * Runge–Kutta pair, by default Dormand–Prince 5(4) with rtol = atol = 1e-5, the RMS error norm and the
 * I controller (safety 0.9, factors 0.2–10), as scipy's `solve_ivp(method='RK45')` that score_sde uses.
 *
 * The step-size decision needs each error norm in JavaScript: one scalar read per attempted step.
 *
 * @module adaptive
 */
import * as E from 'fp-ts/Either';
import { tf } from '@score-sde/tensor-fp';
import { type EmbeddedTableau, type VectorField, dopri5Tableau, rkStep } from './runge-kutta';
import { type PIDController, pid, stepFactor, scaledRmsNorm } from './controller';
import { countingScore } from './step';

// -------------------------------------------------------------------------------------
// model
// -------------------------------------------------------------------------------------

/**
 * The batch coupling of every adaptive step (see `Step.batchCoupling`): one step size for the whole batch, chosen
 * from an error norm over all of it, so a sample's path depends on the other samples of its batch.
 * @category model
 */
export const SHARED_STEP_SIZE = 'one step size for the whole batch, chosen from an error norm over all of it';

/** Options of an adaptive solve. @category model */
export interface AdaptiveOptions {
  readonly rtol?: number;
  readonly atol?: number;
  readonly tableau?: EmbeddedTableau;
  readonly controller?: PIDController;
  /** Maximum number of attempted steps before failing (default 10 000). */
  readonly maxSteps?: number;
  /** First step size |h₀|; chosen by Hairer's rule when absent. */
  readonly initialStep?: number;
  /** Inverse scaled errors of the two previous accepted steps (PID history), to continue a solve. */
  readonly inverseErrors?: readonly [number, number];
}

/** The end of an adaptive solve: y(t1), the work done, and what to continue with. @category model */
export interface AdaptiveSolution {
  readonly y: tf.Tensor;
  readonly nfe: number;
  readonly accepted: number;
  readonly rejected: number;
  /** The step size the controller proposes next (|h|). */
  readonly nextStep: number;
  readonly inverseErrors: readonly [number, number];
}

/** Why an adaptive solve failed. @category model */
export type IntegrationError =
  | { readonly _tag: 'TooManySteps'; readonly t: number; readonly steps: number }
  | { readonly _tag: 'StepSizeUnderflow'; readonly t: number; readonly h: number };

// -------------------------------------------------------------------------------------
// initial step
// -------------------------------------------------------------------------------------

const readScalar = (x: tf.Tensor): number => x.dataSync()[0]!;

/**
 * Hairer's initial step (Solving ODEs I, §II.4, as scipy's `select_initial_step`), with sc = atol + rtol|y0|:
 * d0 = ‖y0/sc‖, d1 = ‖F0/sc‖, h0 = min(0.01 d0/d1, |t1 − t0|) (1e-6 if either is < 1e-5; the cap keeps the probe
 * inside the interval, as scipy ≥ 1.11 does); one Euler step y1 = y0 + h0 F0,
 * d2 = ‖(F(y1) − F0)/sc‖ / h0, h1 = (0.01 / max(d1, d2))^{1/k} (or max(1e-6, 1e-3 h0) if both ≤ 1e-15);
 * h = min(100 h0, h1, |t1 − t0|). One evaluation of F. Returns |h|.
 * @category control
 */
export const initialStepSize = (
  F: VectorField,
  y0: tf.Tensor,
  f0: tf.Tensor,
  t0: number,
  t1: number,
  errorOrder: number,
  rtol: number,
  atol: number,
): number =>
  tf.tidy(() => {
    const dir = Math.sign(t1 - t0);
    const sc = tf.add(atol, tf.mul(tf.abs(y0), rtol));
    const rms = (v: tf.Tensor): number => readScalar(tf.sqrt(tf.mean(tf.square(tf.div(v, sc)))));
    const d0 = rms(y0);
    const d1 = rms(f0);
    const h0 = Math.min(d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1, Math.abs(t1 - t0));
    const f1 = F(tf.add(y0, tf.mul(f0, dir * h0)), t0 + dir * h0);
    const d2 = rms(tf.sub(f1, f0)) / h0;
    const h1 = Math.max(d1, d2) <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : (0.01 / Math.max(d1, d2)) ** (1 / errorOrder);
    return Math.min(100 * h0, h1, Math.abs(t1 - t0));
  });

// -------------------------------------------------------------------------------------
// solve
// -------------------------------------------------------------------------------------

/**
 * Integrates dy/dt = F(y, t) from t0 to t1 adaptively. Each attempt computes y' and the error estimate e of the
 * embedded pair; ε = RMS(e / (atol + rtol·max(|y|, |y'|))); the step is accepted when ε ≤ 1 and the next size
 * follows the controller. FSAL pairs reuse their last stage. The result's `y` is a new tensor (owned by the
 * caller); `y0` is not disposed. Returns Left on too many steps or a step size below 1e-14·|t1 − t0|.
 * @category solve
 */
export const integrateAdaptive = (
  F: VectorField,
  y0: tf.Tensor,
  t0: number,
  t1: number,
  opts: AdaptiveOptions = {},
): E.Either<IntegrationError, AdaptiveSolution> => {
  const rtol = opts.rtol ?? 1e-5;
  const atol = opts.atol ?? 1e-5;
  const tab = opts.tableau ?? dopri5Tableau;
  const ctrl = opts.controller ?? pid();
  const maxSteps = opts.maxSteps ?? 10000;
  const span = Math.abs(t1 - t0);
  const dir = Math.sign(t1 - t0);
  if (span === 0) return E.right({ y: tf.clone(y0), nfe: 0, accepted: 0, rejected: 0, nextStep: opts.initialStep ?? 0, inverseErrors: opts.inverseErrors ?? [1, 1] });

  const { score: counted, calls } = countingScore(F);
  let y = tf.clone(y0);
  let t = t0;
  let k1: tf.Tensor | undefined = tf.tidy(() => counted(y, t));
  let h = opts.initialStep ?? initialStepSize(counted, y, k1, t0, t1, tab.errorOrder, rtol, atol);
  let history: readonly [number, number] = opts.inverseErrors ?? [1, 1];
  let accepted = 0;
  let rejected = 0;
  let lastRejected = false;
  const release = (): void => {
    tf.dispose(y);
    if (k1 !== undefined) tf.dispose(k1);
  };

  while (dir * (t1 - t) > 0) {
    if (accepted + rejected >= maxSteps) {
      release();
      return E.left({ _tag: 'TooManySteps', t, steps: accepted + rejected });
    }
    if (h < 1e-14 * span) {
      release();
      return E.left({ _tag: 'StepSizeUnderflow', t, h });
    }
    // Land exactly on t1 when the remaining interval is (almost) within reach.
    const remaining = Math.abs(t1 - t);
    const hh = h >= remaining * (1 - 1e-12) ? remaining : h;
    const tNew = hh === remaining ? t1 : t + dir * hh;
    const k1Now: tf.Tensor = k1 ?? tf.tidy(() => counted(y, t));
    k1 = k1Now;
    const attempt = tf.tidy(() => {
      const r = rkStep(tab, counted, y, t, dir * hh, k1Now);
      const err = scaledRmsNorm(r.error!, y, r.y, rtol, atol);
      const last = r.stages[r.stages.length - 1]!;
      return { y: r.y, err, last };
    });
    const err = readScalar(attempt.err);
    tf.dispose(attempt.err);
    const ok = Number.isFinite(err) && err <= 1;
    const factor = stepFactor(ctrl, tab.errorOrder, err, history, ok && lastRejected);
    if (ok) {
      tf.dispose(y);
      y = attempt.y;
      t = tNew;
      const fsal = tab.fsal === true;
      tf.dispose(k1);
      k1 = fsal ? attempt.last : undefined;
      if (!fsal) tf.dispose(attempt.last);
      history = [err === 0 ? 1 : 1 / err, history[0]];
      accepted += 1;
      lastRejected = false;
    } else {
      tf.dispose([attempt.y, attempt.last]);
      rejected += 1;
      lastRejected = true;
    }
    h = hh * factor;
  }
  if (k1 !== undefined) tf.dispose(k1);
  return E.right({ y, nfe: calls(), accepted, rejected, nextStep: h, inverseErrors: history });
};
