/**
 * Parameterisations (Karras et al. 2022, §5, Table 1, App. B.6) written through an SDE's m(t) and s(t): the scalar
 * identities that make the network output F, the denoiser D, the score and the training target agree. All in
 * float64 on scalars, so each tolerance is a few ulps of the largest term (a relative 1e-12 covers ~10 roundings
 * of terms of size ≤ 1e4).
 */
import fc from 'fast-check';
import * as E from 'fp-ts/Either';
import {
  type Parameterisation,
  Parameterisation as ParameterisationCodec,
  tutorialParameterisation,
  edmParameterisation,
  scalings,
  scoreCoefficients,
  trainingTarget,
  marginalMeanCoef,
  marginalStd,
  noiseLevel,
} from '@score-sde/sde-math';
import { sdeArb } from './helpers';
import { identity } from '@score-sde/tensor-fp/testing';

const tweedieScore = identity({
  concept: 'training',
  title: 'The score wrapper is Tweedie solved for the score',
  formula: String.raw`$\text{skip}\cdot x + F/\text{outDivisor} = (m D - x)/s^2$ with $D = c_\text{skip}\, x/m + c_\text{out} F$, and the network input $c_\text{in}\, x/m$`,
  source: 'Karras et al. 2022, §5 and Table 1, written through m(t), s(t) (σ = s/m); Tweedie: E[x₀ | x_t] = (x + s² ∇log p_t)/m',
  tolerance: 'float64, relative 1e−12 of the largest term',
});

const targetIdentity = identity({
  concept: 'training',
  title: 'The training target makes the denoiser the clean data',
  formula: String.raw`$a x_0 - b z = \big(x_0 - c_\text{skip}(x_0 + \sigma z)\big)/c_\text{out}$, $a = (1 - c_\text{skip})/c_\text{out}$, $b = c_\text{skip}\sigma/c_\text{out}$`,
  source: 'Karras et al. 2022, eq. 8 (the effective training target of F)',
  tolerance: 'float64, relative 1e−12 of the largest term',
});

const unitVariance = identity({
  concept: 'training',
  title: 'EDM preconditioning has unit-variance input and target',
  formula: String.raw`$c_\text{in}^2(\sigma_d^2 + \sigma^2) = 1$ and $a^2 \sigma_d^2 + b^2 = 1$, $c_\text{noise} = \tfrac14 \ln \sigma$`,
  source: 'Karras et al. 2022, App. B.6 (derivation of c_in and c_out)',
  tolerance: 'float64, 1e−12',
});

const real = (min: number, max: number) => fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
const paramArb: fc.Arbitrary<Parameterisation> = fc.oneof(fc.constant(tutorialParameterisation), real(0.1, 2).map((sd) => edmParameterisation(sd)));
/** Times down to 1e-4 (σ small: where the EDM scalings matter most) and up to T = 1. */
const tArb = real(1e-4, 1);
const REL = 1e-12;


test('the score wrapper is Tweedie solved for the score: skip·x + F/outDivisor = (m D − x)/s², D = c_skip x/m + c_out F', () => {
  fc.assert(
    fc.property(sdeArb, paramArb, tArb, real(-5, 5), real(-5, 5), (sde, p, t, x, F) => {
      const m = marginalMeanCoef(sde, t);
      const s = marginalStd(sde, t);
      const c = scalings(sde, p, t);
      const k = scoreCoefficients(sde, p, t);
      const D = (c.cSkip * x) / m + c.cOut * F;
      const viaD = (m * D - x) / (s * s);
      const direct = k.skip * x + F / k.outDivisor;
      tweedieScore.close(direct, viaD, REL * Math.max(1, Math.abs(x / (s * s)) + Math.abs(F / k.outDivisor)), p.kind);
      // The network's input is c_in·x̃ = c_in·x/m.
      tweedieScore.close(k.inputScale * x, (c.cIn * x) / m, REL * Math.max(1, Math.abs(x * k.inputScale)), p.kind);
    }),
    { seed: 11, numRuns: 300 },
  );
});

test('the training target is the F that makes D the clean data: a x₀ − b z = (x₀ − c_skip (x₀ + σ z))/c_out', () => {
  fc.assert(
    fc.property(sdeArb, paramArb, tArb, real(-3, 3), real(-3, 3), (sde, p, t, x0, z) => {
      const sigma = noiseLevel(sde, t);
      const c = scalings(sde, p, t);
      const { dataCoef, noiseCoef } = trainingTarget(sde, p, t);
      const target = (x0 - c.cSkip * (x0 + sigma * z)) / c.cOut;
      targetIdentity.close(dataCoef * x0 - noiseCoef * z, target, REL * Math.max(1, Math.abs(x0 / c.cOut) + Math.abs((sigma * z) / c.cOut)), p.kind);
    }),
    { seed: 12, numRuns: 300 },
  );
});

test('tutorial: c_skip = 1, c_out = σ, c_in = m, c_noise = t, so the score is F/s(t) and the target −z', () => {
  fc.assert(
    fc.property(sdeArb, tArb, (sde, t) => {
      const c = scalings(sde, tutorialParameterisation, t);
      const k = scoreCoefficients(sde, tutorialParameterisation, t);
      expect([c.cSkip, c.cIn, c.cNoise]).toEqual([1, marginalMeanCoef(sde, t), t]);
      expect(c.cOut).toBe(noiseLevel(sde, t));
      expect([k.inputScale, k.skip, k.outDivisor]).toEqual([1, 0, marginalStd(sde, t)]);
      expect(trainingTarget(sde, tutorialParameterisation, t)).toEqual({ dataCoef: 0, noiseCoef: 1 });
    }),
    { seed: 13, numRuns: 100 },
  );
});

test('EDM: unit-variance input and target (App. B.6): c_in²(σ_d² + σ²) = 1 and a²σ_d² + b² = 1 for data of variance σ_d²', () => {
  fc.assert(
    fc.property(sdeArb, real(0.1, 2), tArb, (sde, sd, t) => {
      const p = edmParameterisation(sd);
      const sigma = noiseLevel(sde, t);
      const c = scalings(sde, p, t);
      const { dataCoef, noiseCoef } = trainingTarget(sde, p, t);
      unitVariance.close(c.cIn * c.cIn * (sd * sd + sigma * sigma), 1, REL);
      unitVariance.close(dataCoef * dataCoef * sd * sd + noiseCoef * noiseCoef, 1, REL);
      unitVariance.close(c.cNoise, 0.25 * Math.log(sigma), REL * Math.max(1, Math.abs(Math.log(sigma))));
    }),
    { seed: 14, numRuns: 200 },
  );
});

test('parameterisation records decode by kind and name the bad field', () => {
  expect(E.isRight(ParameterisationCodec.decode({ kind: 'tutorial' }))).toBe(true);
  expect(ParameterisationCodec.decode({ kind: 'edm', sigmaData: 0.5 })).toEqual(E.right({ kind: 'edm', sigmaData: 0.5 }));
  const bad = ParameterisationCodec.decode({ kind: 'edm', sigmaData: -1 });
  expect(E.isLeft(bad) && bad.left.some((e) => e.context.some((c) => c.key === 'sigmaData'))).toBe(true);
  const unknown = ParameterisationCodec.decode({ kind: 'v-prediction' });
  expect(E.isLeft(unknown) && unknown.left.some((e) => e.context.some((c) => c.key === 'kind'))).toBe(true);
  const extra = ParameterisationCodec.decode({ kind: 'tutorial', sigmaData: 0.5 });
  expect(E.isLeft(extra) && extra.left.some((e) => e.context.some((c) => c.key === 'sigmaData'))).toBe(true);
});
