/**
 * Step-size control as a value: a PID controller on the scaled error (Söderlind 2003; the form of diffrax's
 * `PIDController`), and the error norm it reads.
 *
 * With ε_n the RMS error of step n scaled by atol + rtol·max(|y_n|, |y_{n+1}|) (accept when ε_n ≤ 1) and k the
 * error order of the method, the next step is h_{n+1} = h_n · clip(safety · ε_n^{−β₁/k} ε_{n−1}^{−β₂/k} ε_{n−2}^{−β₃/k},
 * factorMin, factorMax), β₁ = p + i + d, β₂ = −(p + 2d), β₃ = d. p = d = 0, i = 1 is the classical I controller
 * (Hairer et al., Solving ODEs I, §II.4: h ← h · min(10, max(0.2, 0.9 ε^{−1/k}))).
 *
 * @module controller
 */
import { fused } from '@score-sde/tensor-fp';

/** PID coefficients and limits. @category model */
export interface PIDController {
  readonly pcoeff: number;
  readonly icoeff: number;
  readonly dcoeff: number;
  readonly safety: number;
  readonly factorMin: number;
  readonly factorMax: number;
}

/** A PID controller; defaults: the I controller (p = d = 0, i = 1), safety 0.9, factor in [0.2, 10]. @category constructors */
export const pid = (opts: Partial<PIDController> = {}): PIDController => ({
  pcoeff: 0,
  icoeff: 1,
  dcoeff: 0,
  safety: 0.9,
  factorMin: 0.2,
  factorMax: 10,
  ...opts,
});

/** The insensitive PI controller diffrax recommends for SDEs: p = 0.1, i = 0.3. @category constructors */
export const sdeController = (): PIDController => pid({ pcoeff: 0.1, icoeff: 0.3 });

/**
 * The step factor after a step with scaled error `err` (inverse errors of the two previous accepted steps in
 * `previous`, 1 when unknown). Never grows right after a rejection (`afterRejection`). An error of 0 gives
 * factorMax; a non-finite error gives factorMin.
 * @category control
 */
export const stepFactor = (
  c: PIDController,
  errorOrder: number,
  err: number,
  previous: readonly [number, number] = [1, 1],
  afterRejection = false,
): number => {
  if (!Number.isFinite(err)) return c.factorMin;
  const inv = err === 0 ? Infinity : 1 / err;
  const b1 = (c.pcoeff + c.icoeff + c.dcoeff) / errorOrder;
  const b2 = -(c.pcoeff + 2 * c.dcoeff) / errorOrder;
  const b3 = c.dcoeff / errorOrder;
  const raw = c.safety * inv ** b1 * previous[0] ** b2 * previous[1] ** b3;
  const f = Math.min(c.factorMax, Math.max(c.factorMin, Number.isNaN(raw) ? c.factorMax : raw));
  return afterRejection ? Math.min(1, f) : f;
};

/**
 * RMS norm of an error scaled by the tolerance: √(mean((e / (atol + rtol·max(|y0|, |y1|)))²)) over all elements
 * (tensor-fp's `fused.scaledRmsNorm`, whose fused Heun stage computes the same in one pass). Returns a scalar tensor.
 * @category control
 */
export const scaledRmsNorm = fused.scaledRmsNorm;
