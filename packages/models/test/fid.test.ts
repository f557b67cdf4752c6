import * as E from 'fp-ts/Either';
import fc from 'fast-check';
import { tf, random, initBackend } from '@score-sde/tensor-fp';
import {
  type Stats,
  gaussianStats,
  gaussianStatsOfTensor,
  symmetricEigen,
  sqrtmPSD,
  matmul,
  trace,
  frechetDistance,
  frechetTerms,
  extrapolateFid,
  prefixCounts,
} from '../src/fid';
import { identity, runs } from '@score-sde/tensor-fp/testing';

const eigen = identity({
  concept: 'evaluation',
  title: 'Symmetric eigendecomposition',
  formula: String.raw`$A V = V \Lambda,\ V^\top V = I,\ \sum_i \lambda_i = \operatorname{tr} A$, and $\operatorname{eig}(Q \operatorname{diag}(\lambda) Q^\top) = \operatorname{sort}(\lambda)$`,
  source: 'cyclic Jacobi (Golub & Van Loan, Matrix Computations, §8.5): orthogonal similarity transforms',
  tolerance: 'float64 backward stability: 64 d ε ‖A‖_F for residuals and the trace, 64 d ε for orthonormality',
});

const sqrtm = identity({
  concept: 'evaluation',
  title: 'Square root of a PSD matrix',
  formula: String.raw`$\big(A^{1/2}\big)^2 = A$ for symmetric positive semi-definite $A$`,
  source: 'A^{1/2} = V Λ^{1/2} Vᵀ',
  tolerance: 'float64: 256 d ε ‖A‖_F',
});

const fidInfinity = identity({
  concept: 'evaluation',
  title: 'FID extrapolated to infinitely many samples',
  formula: String.raw`$\mathrm{FID}_n = \mathrm{FID}_\infty + b/n$: the least-squares line through the points $(1/n_k, \mathrm{FID}_{n_k})$ returns $(\mathrm{FID}_\infty, b)$ whenever the points lie on such a line`,
  source: 'Chong & Forsyth 2020 (FID∞); ordinary least squares in x = 1/n: b = Σ(x−x̄)(y−ȳ)/Σ(x−x̄)², FID∞ = ȳ − b x̄',
  tolerance: 'float64: each y_k = a + b x_k is rounded by at most 2ε(|a| + |b| x_k); the intercept is Σ w_k y_k with Σ|w_k| = Σ|1/K − x̄(x_k − x̄)/Sxx|, so 16 ε (|a| + |b| x_max) Σ|w_k| bounds its error with room for the fit\'s own rounding; the slope Σ v_k y_k, v_k = (x_k − x̄)/Sxx, likewise with Σ|v_k|',
});

const frechet = identity({
  concept: 'evaluation',
  title: 'Fréchet distance between Gaussians',
  formula: String.raw`$d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\big(\Sigma_1 + \Sigma_2 - 2(\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2})^{1/2}\big)$, $= \lVert \Delta\mu \rVert^2 + \sum_k (\sqrt{\lambda_{1k}} - \sqrt{\lambda_{2k}})^2$ for commuting covariances`,
  source: 'Dowson & Landau 1982; Heusel et al. 2017 (FID): closed forms for diagonal, commuting, rank-deficient and 2×2 covariances; d(a, a) = 0, symmetry, rotation invariance',
  tolerance: 'float64 rounding of the matrix square roots, propagated (fidTolerance in the test); √-accuracy at zero eigenvalues when rank-deficient',
});

const EPS = Number.EPSILON; // 2.2e-16, float64 unit roundoff ×2

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(`expected Right, got ${JSON.stringify(e.left)}`);
  return e.right;
};

/** Frobenius norm of a d×d matrix (or any array). */
const frob = (A: ArrayLike<number>): number => Math.sqrt(Array.from(A).reduce((s, x) => s + x * x, 0));

const transpose = (A: ArrayLike<number>, d: number): Float64Array => {
  const T = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) T[j * d + i] = A[i * d + j]!;
  return T;
};

/** A random symmetric matrix (B + Bᵀ)/2 with B ~ N(0, 1) entries, from a seed. */
const randomSymmetric = (seed: number, d: number): Float64Array => {
  const B = random.normalArray(random.key(seed), d * d);
  const A = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) A[i * d + j] = 0.5 * (B[i * d + j]! + B[j * d + i]!);
  return A;
};

/** A random symmetric PSD matrix BᵀB/d with B ~ N(0, 1) (d+2)×d, plus `shift`·I. */
const randomSPD = (seed: number, d: number, shift = 0): Float64Array => {
  const rows = d + 2;
  const B = random.normalArray(random.key(seed), rows * d);
  const A = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < rows; k++) s += B[k * d + i]! * B[k * d + j]!;
      A[i * d + j] = s / d + (i === j ? shift : 0);
    }
  return A;
};

/** A random orthogonal matrix: Gram–Schmidt (twice, for orthogonality to rounding) of a Gaussian matrix's columns. */
const randomOrthogonal = (seed: number, d: number): Float64Array => {
  const G = random.normalArray(random.key(seed), d * d);
  const Q = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    const col = Array.from({ length: d }, (_, i) => G[i * d + j]!);
    for (let pass = 0; pass < 2; pass++) {
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += col[i]! * Q[i * d + k]!;
        for (let i = 0; i < d; i++) col[i]! -= dot * Q[i * d + k]!;
      }
    }
    const n = Math.sqrt(col.reduce((s, x) => s + x * x, 0));
    for (let i = 0; i < d; i++) Q[i * d + j] = col[i]! / n;
  }
  return Q;
};

/** Q diag(λ) Qᵀ. */
const withSpectrum = (Q: Float64Array, lambda: ArrayLike<number>, d: number): Float64Array => {
  const D = new Float64Array(d * d);
  for (let i = 0; i < d; i++) D[i * d + i] = lambda[i]!;
  return matmul(matmul(Q, D, d), transpose(Q, d), d);
};

const diag = (lambda: ArrayLike<number>, d: number): Float64Array => {
  const D = new Float64Array(d * d);
  for (let i = 0; i < d; i++) D[i * d + i] = lambda[i]!;
  return D;
};

const stats = (mean: ArrayLike<number>, cov: Float64Array, d: number): Stats => ({ d, n: 1000, mean: Float64Array.from(mean), cov });

/** The closed form for commuting covariances (common eigenvectors): ‖μ₁ − μ₂‖² + Σᵢ (√λ₁ᵢ − √λ₂ᵢ)². */
const commutingFid = (mu1: ArrayLike<number>, mu2: ArrayLike<number>, l1: ArrayLike<number>, l2: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < mu1.length; i++) s += (mu1[i]! - mu2[i]!) ** 2 + (Math.sqrt(l1[i]!) - Math.sqrt(l2[i]!)) ** 2;
  return s;
};

/**
 * FID is computed as a difference tr Σ₁ + tr Σ₂ + ‖Δμ‖² − 2 tr(…)^{1/2}: its rounding error is absolute, a
 * modest multiple of ε·d times the size of those terms (eigen-solver backward error ~ d·ε·‖A‖, summed over d
 * eigenvalues). 1000·d·ε·scale is that bound with a wide constant and still ~1e-11 relative for d = 16.
 */
const fidTolerance = (a: Stats, b: Stats): number => {
  let dm = 0;
  for (let i = 0; i < a.d; i++) dm += (a.mean[i]! - b.mean[i]!) ** 2;
  return 1000 * a.d * EPS * (trace(a.cov, a.d) + trace(b.cov, b.d) + dm + 1);
};

const dims = fc.integer({ min: 1, max: 12 });
const seeds = fc.integer({ min: 0, max: 2 ** 31 - 1 });

describe('symmetricEigen (cyclic Jacobi)', () => {
  it('A V = V Λ: every column of V is an eigenvector of A with its eigenvalue', () => {
    fc.assert(
      fc.property(seeds, dims, (seed, d) => {
        const A = randomSymmetric(seed, d);
        const { values, vectors } = symmetricEigen(A, d);
        const AV = matmul(A, vectors, d);
        let err = 0;
        for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) err = Math.max(err, Math.abs(AV[i * d + j]! - vectors[i * d + j]! * values[j]!));
        // Jacobi is backward stable: the residual is at most p(d)·ε·‖A‖_F for a low-degree p (Demmel & Veselić
        // 1992); 64·d·ε·‖A‖_F leaves a wide margin and is still ~1e-12 for d = 12.
        eigen.atMost(err, 64 * d * EPS * frob(A), 'A V = V Λ');
      }),
      runs(40),
    );
  });

  it('Vᵀ V = I: the eigenvectors are orthonormal', () => {
    fc.assert(
      fc.property(seeds, dims, (seed, d) => {
        const { vectors } = symmetricEigen(randomSymmetric(seed, d), d);
        const VtV = matmul(transpose(vectors, d), vectors, d);
        let err = 0;
        for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) err = Math.max(err, Math.abs(VtV[i * d + j]! - (i === j ? 1 : 0)));
        // V is a product of exact-rotation-up-to-rounding Givens matrices: loss of orthogonality ~ (#rotations per
        // column)·ε ≲ sweeps·d·ε; 64·d·ε covers up to 64 sweeps.
        eigen.atMost(err, 64 * d * EPS, 'Vᵀ V = I');
      }),
      runs(40),
    );
  });

  it('Σ λᵢ = tr A, and the eigenvalues come out ascending', () => {
    fc.assert(
      fc.property(seeds, dims, (seed, d) => {
        const A = randomSymmetric(seed, d);
        const { values } = symmetricEigen(A, d);
        const sum = values.reduce((s, x) => s + x, 0);
        // Rotations preserve the trace up to one rounding per diagonal update: ≤ 64·d·ε·‖A‖_F.
        eigen.atMost(Math.abs(sum - trace(A, d)), 64 * d * EPS * frob(A), 'Σ λ = tr A');
        for (let i = 1; i < d; i++) expect(values[i]!).toBeGreaterThanOrEqual(values[i - 1]!);
      }),
      runs(40),
    );
  });

  it('recovers a prescribed spectrum: eig(Q diag(λ) Qᵀ) = sort(λ)', () => {
    const d = 10;
    const lambda = [5, -3, 0, 1e-3, 2, 2, 7.5, -0.25, 11, 4];
    const { values } = symmetricEigen(withSpectrum(randomOrthogonal(7, d), lambda, d), d);
    const sorted = [...lambda].sort((x, y) => x - y);
    // Eigenvalues of a symmetric matrix are perfectly conditioned (Weyl): |Δλ| ≤ ‖ΔA‖₂, and ΔA is the rounding
    // of building Q Λ Qᵀ plus the solver's backward error, both ≤ 64·d·ε·‖A‖_F.
    const tol = 64 * d * EPS * Math.sqrt(lambda.reduce((s, x) => s + x * x, 0));
    sorted.forEach((l, i) => eigen.atMost(Math.abs(values[i]! - l), tol, 'prescribed spectrum'));
  });
});

describe('sqrtmPSD', () => {
  it('(A^{1/2})² = A for symmetric positive semi-definite A', () => {
    fc.assert(
      fc.property(seeds, dims, (seed, d) => {
        const A = randomSPD(seed, d);
        const S = sqrtmPSD(A, d);
        const S2 = matmul(S, S, d);
        const err = Math.max(...Array.from(S2, (x, i) => Math.abs(x - A[i]!)));
        // Squaring V diag(√λ) Vᵀ reproduces A up to the eigen-solver's backward error and the rounding of the
        // two products, each ≲ d·ε·‖A‖_F; 256·d·ε·‖A‖_F is a wide bound.
        sqrtm.atMost(err, 256 * d * EPS * frob(A));
      }),
      runs(40),
    );
  });

  it('clamps a rank-deficient PSD matrix: sqrtm of a rank-1 vvᵀ is vvᵀ/‖v‖ with no NaN', () => {
    const v = [1, -2, 0.5];
    const d = 3;
    const A = new Float64Array(9);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) A[i * 3 + j] = v[i]! * v[j]!;
    const n = Math.hypot(...v);
    const S = sqrtmPSD(A, d);
    // Zero eigenvalues may come out as ±O(ε‖A‖); clamped to 0, their √ contributes ≤ √(d·ε·‖A‖) ≈ 5e-8.
    S.forEach((x, i) => expect(Math.abs(x - A[i]! / n)).toBeLessThanOrEqual(Math.sqrt(64 * d * EPS * frob(A))));
  });
});

describe('frechetDistance on Gaussians with a known distance', () => {
  const vec = (d: number) => fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: d, maxLength: d });
  // Eigenvalues ≥ 0.05 keep √ Lipschitz (|d√λ/dλ| ≤ 1/(2√0.05) ≈ 2.2), so rounding is not amplified and the
  // tight bound of fidTolerance applies; the rank-deficient case is tested separately below.
  const spectrum = (d: number, min = 0.05) => fc.array(fc.double({ min, max: 5, noNaN: true }), { minLength: d, maxLength: d });
  const caseOf = fc.integer({ min: 1, max: 16 }).chain((d) => fc.tuple(fc.constant(d), vec(d), vec(d), spectrum(d), spectrum(d), seeds));
  const singularCaseOf = fc
    .integer({ min: 1, max: 16 })
    .chain((d) => fc.tuple(fc.constant(d), vec(d), vec(d), fc.array(fc.oneof(fc.constant(0), fc.double({ min: 0, max: 5, noNaN: true })), { minLength: d, maxLength: d }), spectrum(d, 0), seeds));

  it('diagonal covariances: FID = ‖μ₁ − μ₂‖² + Σᵢ (√λ₁ᵢ − √λ₂ᵢ)²', () => {
    fc.assert(
      fc.property(caseOf, ([d, m1, m2, l1, l2]) => {
        const a = stats(m1, diag(l1, d), d);
        const b = stats(m2, diag(l2, d), d);
        const expected = commutingFid(m1, m2, l1, l2);
        frechet.atMost(Math.abs(right(frechetDistance(a, b)) - expected), fidTolerance(a, b), 'closed form');
      }),
      runs(60),
    );
  });

  it('commuting covariances Σᵢ = Q diag(λᵢ) Qᵀ (a random rotation of the diagonal case): same closed form', () => {
    fc.assert(
      fc.property(caseOf, ([d, m1, m2, l1, l2, seed]) => {
        const Q = randomOrthogonal(seed, d);
        const a = stats(m1, withSpectrum(Q, l1, d), d);
        const b = stats(m2, withSpectrum(Q, l2, d), d);
        const expected = commutingFid(m1, m2, l1, l2);
        frechet.atMost(Math.abs(right(frechetDistance(a, b)) - expected), fidTolerance(a, b), 'closed form');
      }),
      runs(60),
    );
  });

  it('rank-deficient commuting covariances (zero eigenvalues): same closed form, to the accuracy √ allows at 0', () => {
    fc.assert(
      fc.property(singularCaseOf, ([d, m1, m2, l1, l2, seed]) => {
        const Q = randomOrthogonal(seed, d);
        const a = stats(m1, withSpectrum(Q, l1, d), d);
        const b = stats(m2, withSpectrum(Q, l2, d), d);
        const expected = commutingFid(m1, m2, l1, l2);
        // A zero eigenvalue is computed as some δ with |δ| ≤ 64·d·ε·scale (backward error) and √ is not Lipschitz
        // at 0: it becomes √δ. The cross term is a sum of d such square roots (of Σ₁ and then of M), each off by at
        // most √(64·d·ε)·scale, doubled in the FID: 4·d·√(64·d·ε)·(1 + scale) ≈ 1e-5 for d = 16, scale ~ 80.
        let scale = 1;
        for (let i = 0; i < d; i++) scale += l1[i]! + l2[i]! + (m1[i]! - m2[i]!) ** 2;
        frechet.atMost(Math.abs(right(frechetDistance(a, b)) - expected), 4 * d * Math.sqrt(64 * d * EPS) * scale, 'rank-deficient');
      }),
      runs(60),
    );
  });

  it('non-commuting 2×2 covariances: FID = ‖Δμ‖² + tr Σ₁ + tr Σ₂ − 2 √(tr Σ₁Σ₂ + 2 √(det Σ₁ det Σ₂))', () => {
    // For a 2×2 PSD matrix M, tr M^{1/2} = √(tr M + 2 √det M) (the eigenvalues' square roots s₁, s₂ satisfy
    // (s₁ + s₂)² = λ₁ + λ₂ + 2√(λ₁λ₂)); with M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}, tr M = tr Σ₁Σ₂ and det M = det Σ₁ det Σ₂.
    fc.assert(
      fc.property(seeds, seeds, vec(2), vec(2), (s1, s2, m1, m2) => {
        const A = randomSPD(s1, 2, 0.01);
        const B = randomSPD(s2, 2, 0.01);
        const det = (M: Float64Array) => M[0]! * M[3]! - M[1]! * M[2]!;
        const expected =
          (m1[0]! - m2[0]!) ** 2 + (m1[1]! - m2[1]!) ** 2 + trace(A, 2) + trace(B, 2) - 2 * Math.sqrt(trace(matmul(A, B, 2), 2) + 2 * Math.sqrt(det(A) * det(B)));
        const a = stats(m1, A, 2);
        const b = stats(m2, B, 2);
        frechet.atMost(Math.abs(right(frechetDistance(a, b)) - Math.max(0, expected)), fidTolerance(a, b), '2×2 non-commuting');
      }),
      runs(60),
    );
  });

  it('FID(a, a) = 0 and FID(a, b) = FID(b, a) for general (non-commuting) covariances', () => {
    // tr(Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2} = tr(Σ₂^{1/2} Σ₁ Σ₂^{1/2})^{1/2}: both are Σ of the singular values of Σ₁^{1/2} Σ₂^{1/2}.
    fc.assert(
      fc.property(seeds, seeds, fc.integer({ min: 1, max: 10 }), (s1, s2, d) => {
        const a = stats(random.normalArray(random.key(s1 + 1), d), randomSPD(s1, d), d);
        const b = stats(random.normalArray(random.key(s2 + 1), d), randomSPD(s2, d), d);
        frechet.atMost(right(frechetDistance(a, a)), fidTolerance(a, a), 'FID(a, a) = 0');
        frechet.atMost(Math.abs(right(frechetDistance(a, b)) - right(frechetDistance(b, a))), fidTolerance(a, b), 'symmetry');
      }),
      runs(30),
    );
  });

  it('reports its terms: meanTerm = ‖μ₁ − μ₂‖², meanTerm + covTerm = FID', () => {
    const a = stats([1, 2], diag([1, 4], 2), 2);
    const b = stats([0, 0], diag([4, 1], 2), 2);
    const t = right(frechetTerms(a, b));
    expect(t.meanTerm).toBe(5);
    // covTerm = (1 − 2)² + (2 − 1)² = 2 exactly up to a few roundings.
    expect(Math.abs(t.covTerm - 2)).toBeLessThanOrEqual(fidTolerance(a, b));
    expect(t.fid).toBeCloseTo(7, 12);
  });

  it('rejects statistics of different dimensions', () => {
    const r = frechetDistance(stats([0], diag([1], 1), 1), stats([0, 0], diag([1, 1], 2), 2));
    expect(E.isLeft(r) && r.left.message).toMatch(/dimensions differ \(1 vs 2\)/);
  });
});

describe('gaussianStats', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm', quiet: true });
  });

  it('mean and unbiased covariance of a hand-computed example (Σ divides by n − 1)', () => {
    // rows (1, 2), (2, 4), (3, 0), (4, 2): μ = (2.5, 2); centred x = (−1.5, −.5, .5, 1.5), y = (0, 2, −2, 0)
    // var x = 5/3, var y = 8/3, cov = (0·−1.5 + 2·−.5 + −2·.5 + 0)/3 = −2/3.
    const s = right(gaussianStats([1, 2, 2, 4, 3, 0, 4, 2], 4, 2));
    expect(Array.from(s.mean)).toEqual([2.5, 2]);
    const expected = [5 / 3, -2 / 3, -2 / 3, 8 / 3];
    // a handful of float64 roundings on numbers ≤ 10: 16·ε·10.
    s.cov.forEach((c, i) => expect(Math.abs(c - expected[i]!)).toBeLessThanOrEqual(16 * EPS * 10));
    expect(s.n).toBe(4);
  });

  it('FID is rotation invariant: FID(stats(XQ), stats(YQ)) = FID(stats(X), stats(Y)) for sample covariances', () => {
    // Rotating features maps μ ↦ Qᵀμ and Σ ↦ Qᵀ Σ Q, which leaves every term of the distance unchanged.
    const d = 6;
    const n = 50;
    const X = random.normalArray(random.key(1), n * d);
    const Y = random.normalArray(random.key(2), n * d).map((y, i) => 0.5 * y + (i % d) * 0.1);
    const Q = randomOrthogonal(3, d);
    const rot = (Z: Float64Array) => {
      const out = new Float64Array(n * d);
      for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) out[r * d + j]! += Z[r * d + k]! * Q[k * d + j]!;
      return out;
    };
    const a = right(gaussianStats(X, n, d));
    const b = right(gaussianStats(Y, n, d));
    const plain = right(frechetDistance(a, b));
    const rotated = right(frechetDistance(right(gaussianStats(rot(X), n, d)), right(gaussianStats(rot(Y), n, d))));
    expect(plain).toBeGreaterThan(0.1);
    frechet.atMost(Math.abs(plain - rotated), fidTolerance(a, b), 'rotation invariance');
  });

  it('of a [n, d] tensor equals gaussianStats of its values', () => {
    const x = tf.tensor2d([1, 2, 2, 4, 3, 0, 4, 2], [4, 2]);
    const s = right(gaussianStatsOfTensor(x));
    const r = right(gaussianStats([1, 2, 2, 4, 3, 0, 4, 2], 4, 2));
    expect(Array.from(s.cov)).toEqual(Array.from(r.cov));
    x.dispose();
  });

  it('says what is wrong with bad input: n < 2, length ≠ n·d, non-finite features, wrong rank', () => {
    const msg = (e: E.Either<{ message: string }, unknown>) => (E.isLeft(e) ? e.left.message : 'Right');
    expect(msg(gaussianStats([1, 2], 1, 2))).toMatch(/n ≥ 2/);
    expect(msg(gaussianStats([1, 2, 3], 2, 2))).toMatch(/expected n·d = 2·2 = 4 numbers, got 3/);
    expect(msg(gaussianStats([1, 2, NaN, 4], 2, 2))).toMatch(/feature \[1, 0\] is not finite/);
    const v = tf.tensor1d([1, 2, 3]);
    expect(msg(gaussianStatsOfTensor(v))).toMatch(/expected a \[n, d\] tensor/);
    v.dispose();
  });
});

describe('FID against the number of samples', () => {
  it('FID_n = FID∞ + b/n: the least-squares line in 1/n returns (FID∞, b) exactly for points on such a line', () => {
    fc.assert(
      fc.property(
        // FIDs and their 1/n slopes at the scales they take (0, or 1e-6 … 500 and 1e-3 … 1e5 in size): subnormal values
        // would round absolutely, outside the relative bound below
        fc.oneof(fc.constant(0), fc.double({ min: 1e-6, max: 500, noNaN: true })),
        fc.oneof(fc.constant(0), fc.double({ min: 1e-3, max: 1e5, noNaN: true }), fc.double({ min: -1e5, max: -1e-3, noNaN: true })),
        fc.uniqueArray(fc.integer({ min: 50, max: 50_000 }), { minLength: 2, maxLength: 8 }),
        (a, b, ns) => {
          const xs = ns.map((n) => 1 / n);
          const r = extrapolateFid(ns.map((n, k) => ({ n, fid: a + b * xs[k]! })));
          expect(E.isRight(r)).toBe(true);
          if (E.isLeft(r)) return;
          const xBar = xs.reduce((s, x) => s + x, 0) / xs.length;
          const sxx = xs.reduce((s, x) => s + (x - xBar) ** 2, 0);
          const weights = xs.reduce((s, x) => s + Math.abs(1 / xs.length - (xBar * (x - xBar)) / sxx), 0);
          const slopeWeights = xs.reduce((s, x) => s + Math.abs(x - xBar), 0) / sxx;
          const xMax = Math.max(...xs);
          const delta = 16 * Number.EPSILON * (Math.abs(a) + Math.abs(b) * xMax);
          fidInfinity.close(r.right.fidInfinity, a, delta * weights);
          fidInfinity.close(r.right.slope, b, delta * slopeWeights);
        },
      ),
      runs(200),
    );
  });

  it('needs two distinct n and finite FIDs, and says so', () => {
    const msg = (e: E.Either<{ message: string }, unknown>) => (E.isLeft(e) ? e.left.message : 'Right');
    expect(msg(extrapolateFid([{ n: 1000, fid: 3 }]))).toMatch(/two or more distinct n/);
    expect(msg(extrapolateFid([{ n: 1000, fid: 3 }, { n: 1000, fid: 4 }]))).toMatch(/two or more distinct n, got 2 point\(s\) at n = 1000/);
    expect(msg(extrapolateFid([{ n: 1000, fid: NaN }, { n: 2000, fid: 4 }]))).toMatch(/finite FID/);
  });

  it('the nested counts: n·{1/4, 1/3, 1/2, 2/3, 1} rounded, each ≥ 16d, n among them, or none when fewer than two qualify', () => {
    expect(prefixCounts(10_000, 128)).toEqual([2500, 3333, 5000, 6667, 10_000]);
    expect(prefixCounts(5000, 128)).toEqual([2500, 3333, 5000]);
    expect(prefixCounts(3072, 128)).toEqual([2048, 3072]);
    expect(prefixCounts(3071, 128)).toEqual([]);
    expect(prefixCounts(1000, 128)).toEqual([]);
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 100_000 }), fc.integer({ min: 1, max: 512 }), (n, d) => {
        const ks = prefixCounts(n, d);
        if (ks.length === 0) return;
        expect(ks.length).toBeGreaterThanOrEqual(2);
        expect(ks[ks.length - 1]).toBe(n);
        ks.forEach((k, i) => {
          expect(k).toBeGreaterThanOrEqual(16 * d);
          if (i > 0) expect(k).toBeGreaterThan(ks[i - 1]!);
        });
      }),
      runs(200),
    );
  });
});
