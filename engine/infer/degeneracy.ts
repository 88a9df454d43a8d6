/**
 * The shear–ellipticity degeneracy of a circular profile, used to compute the shear rows of the
 * Laplace Hessian exactly (laplace.ts) instead of by finite differences.
 *
 * A source's image depends on (g, e) only through the observed shape ε: the profile is circular,
 * the galaxy map is A = S(g)·S(g_e) and the image depends on AAᵀ = S(g)·S(g_e)²·S(g), which has
 * unit determinant and the distortion ε. So ℓ(g, e(g, ε)) = −log L does not change with g at
 * fixed ε, and differentiating ∂ℓ/∂g_a + Σ_s ∇_{e_s}ℓ · D_s[:, a] = 0, with
 * D_s = ∂e_s/∂g |_{ε_s} (2×2), gives the likelihood's shear rows from its ellipticity rows:
 *
 *   H[x, g_a]    = −Σ_s H[x, e_s] D_s[:, a]                                  (x not e, not g)
 *   H[e_tk, g_a] = −Σ_s H[e_tk, e_s] D_s[:, a] − ∇_{e_t}ℓ · ∂D_t[:, a]/∂e_tk
 *   H[g_b, g_a]  = −Σ_s H[g_b, e_s] D_s[:, a]  − Σ_s ∇_{e_s}ℓ · ∂D_s[:, a]/∂g_b
 *
 * Why: with a flat shear prior the marginal shear precision, H_gg − H_gs H_ss⁻¹ H_sg, is what is
 * left after the likelihood parts cancel — 10³–10⁴ times smaller than each term on a `ci` or
 * `minitile` sub-tile — and finite differences of float32 gradients are not that precise (the
 * marginal error of a 2-source sub-tile moved from NaN to 0.07, 0.04, 0.013 as the steps went
 * from 10⁻³ to 3·10⁻²). Rows derived from the same ellipticity block make the cancellation exact
 * in float64, so only the priors' information (and the gradient terms) is left.
 *
 * Conventions (docs/forward-model.md): distortion e = (a² − b²)/(a² + b²) of the ellipse, the
 * shear matrix S(g) ∝ [[1 + g1, g2], [g2, 1 − g1]]; a symmetric matrix [[p, q], [q, r]] has the
 * distortion ((p − r)/(p + r), 2q/(p + r)). Float64, CPU.
 */

type V2 = [number, number];

function distortionOf(p: number, q: number, r: number): V2 {
  const t = p + r;
  return [(p - r) / t, (2 * q) / t];
}

/** S·Q·S for symmetric 2×2 S = [[s0, s1], [s1, s2]] and Q = [[q0, q1], [q1, q2]]: [p, q, r]. */
function sandwich(s0: number, s1: number, s2: number, q0: number, q1: number, q2: number): [number, number, number] {
  // T = S·Q
  const t00 = s0 * q0 + s1 * q1;
  const t01 = s0 * q1 + s1 * q2;
  const t10 = s1 * q0 + s2 * q1;
  const t11 = s1 * q1 + s2 * q2;
  return [t00 * s0 + t01 * s1, t00 * s1 + t01 * s2, t10 * s1 + t11 * s2];
}

/** Observed distortion ε of intrinsic distortion e under reduced shear g. */
export function observedShape(g: V2, e: V2): V2 {
  const [p, q, r] = sandwich(1 + g[0], g[1], 1 - g[0], 1 + e[0], e[1], 1 - e[0]);
  return distortionOf(p, q, r);
}

/** Intrinsic distortion e that shear g turns into the observed ε (the inverse of observedShape). */
export function intrinsicShape(g: V2, eps: V2): V2 {
  const [p, q, r] = sandwich(1 - g[0], -g[1], 1 + g[0], 1 + eps[0], eps[1], 1 - eps[0]);
  return distortionOf(p, q, r);
}

const H1 = 1e-6;
const H2 = 1e-4;

/** D = ∂e/∂g at fixed ε, at (g, e): D[m][a] = ∂e_m/∂g_a (central differences, float64). */
export function shearJacobian(g: V2, e: V2): [V2, V2] {
  const eps = observedShape(g, e);
  const D: [V2, V2] = [
    [0, 0],
    [0, 0],
  ];
  for (let a = 0; a < 2; a++) {
    const gp: V2 = [g[0], g[1]];
    const gm: V2 = [g[0], g[1]];
    gp[a] += H1;
    gm[a] -= H1;
    const ep = intrinsicShape(gp, eps);
    const em = intrinsicShape(gm, eps);
    D[0][a] = (ep[0] - em[0]) / (2 * H1);
    D[1][a] = (ep[1] - em[1]) / (2 * H1);
  }
  return D;
}

/**
 * Derivatives of D(g, e) with respect to e_k (dDde[k][m][a]) and g_b (dDdg[b][m][a]), central
 * differences of shearJacobian (outer step 10⁻⁴, inner 10⁻⁶: ~10⁻⁶ relative).
 */
export function shearJacobianDerivatives(g: V2, e: V2): { dDde: [V2, V2][]; dDdg: [V2, V2][] } {
  const diff = (f: (t: number) => [V2, V2]): [V2, V2] => {
    const p = f(H2);
    const m = f(-H2);
    return [
      [(p[0][0] - m[0][0]) / (2 * H2), (p[0][1] - m[0][1]) / (2 * H2)],
      [(p[1][0] - m[1][0]) / (2 * H2), (p[1][1] - m[1][1]) / (2 * H2)],
    ];
  };
  const dDde = [0, 1].map((k) => diff((t) => shearJacobian(g, k === 0 ? [e[0] + t, e[1]] : [e[0], e[1] + t])));
  const dDdg = [0, 1].map((b) => diff((t) => shearJacobian(b === 0 ? [g[0] + t, g[1]] : [g[0], g[1] + t], e)));
  return { dDde, dDdg };
}
