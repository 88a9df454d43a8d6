/**
 * GalSim's conventions for the pieces of the forward model, as pure float64 functions.
 * These are the definitions the GPU kernels (WGSL, float32) and the float64 CPU reference
 * (engine/gpu/render/model64.ts) both follow. See docs/forward-model.md.
 *
 * - Exponential profile I(r) = F/(2π r0²) · exp(−r/r0); its Fourier transform (GalSim `kValue`)
 *   is F · (1 + k² r0²)^(−3/2), k in radians per arcsec (GalSim's k).
 * - Half-light radius h = EXP_HLR_OVER_R0 · r0 (root of (1 + x) e^{−x} = 1/2).
 * - Quintic interpolant (GalSim `Quintic`): kernel xval(x) with support |x| < 3 and its Fourier
 *   transform uval(u) = ∫ K(x) e^{−2πiux} dx, u in cycles per pixel.
 * - Distortion e ↔ reduced shear g: |g| = |e| / (1 + √(1 − |e|²)), |e| = 2|g| / (1 + |g|²), same
 *   direction. Shear matrix S(g) = [[1+g1, g2], [g2, 1−g1]] / √(1−|g|²) (det S = 1).
 *   `gal.shear(e).shear(g)` is the linear map A = S(g)·S(g_e) of world coordinates; a profile
 *   transformed by A has Fourier transform f̂(Aᵀ q) (det A = 1).
 *
 * 2×2 matrices are row-major tuples [m00, m01, m10, m11].
 */

/** h / r0 for an exponential profile: the root of (1 + x) e^{−x} = 1/2. */
export const EXP_HLR_OVER_R0 = 1.6783469900166605;

/** Multiply a half-light radius by this to get the scale radius r0 (= 1 / EXP_HLR_OVER_R0). */
export const HLR_TO_R0 = 1 / EXP_HLR_OVER_R0;

/** Scale radius r0 of an exponential of half-light radius `hlr` (same unit). */
export function hlrToR0(hlr: number): number {
  return hlr / EXP_HLR_OVER_R0;
}

export type Mat2 = [number, number, number, number];

/** Fourier transform of an exponential of flux `flux`, scale radius r0, at |k|² = k2. */
export function exponentialKValue(flux: number, r0: number, k2: number): number {
  const t = 1 + r0 * r0 * k2;
  return flux / (t * Math.sqrt(t));
}

/** d kValue / d r0 (useful for analytic gradients): −3 F r0 k² (1 + r0² k²)^(−5/2). */
export function exponentialKValueDr0(flux: number, r0: number, k2: number): number {
  const t = 1 + r0 * r0 * k2;
  return (-3 * flux * r0 * k2) / (t * t * Math.sqrt(t));
}

/** Surface brightness of an exponential at |x|² = r2: F/(2π r0²) · exp(−r/r0). */
export function exponentialXValue(flux: number, r0: number, r2: number): number {
  return (flux / (2 * Math.PI * r0 * r0)) * Math.exp(-Math.sqrt(r2) / r0);
}

/** sin(πu)/(πu), 1 at u = 0. */
export function sinc(u: number): number {
  if (u === 0) return 1;
  const a = Math.PI * u;
  if (Math.abs(a) < 1e-4) return 1 - (a * a) / 6;
  return Math.sin(a) / a;
}

/** GalSim's Quintic interpolation kernel, support |x| < 3. */
export function quinticXval(x: number): number {
  x = Math.abs(x);
  if (x <= 1) return 1 + (x * x * x * (-95 + x * (138 - 55 * x))) / 12;
  if (x <= 2) return ((x - 1) * (x - 2) * (-138 + x * (348 + x * (-249 + 55 * x)))) / 24;
  if (x <= 3) return ((x - 2) * (x - 3) * (x - 3) * (-54 + x * (50 - 11 * x))) / 24;
  return 0;
}

/**
 * Fourier transform of the Quintic kernel, u in cycles per pixel:
 * uval(u) = s⁶ (55 − 19π²u²) + 2 s⁵ cos(πu) (π²u² − 27), s = sinc(u)
 * (GalSim src/Interpolant.cpp; note that a version with the powers s⁵, s⁴ (docs/architecture.md, "The forward model") does not
 * reproduce GalSim's published uval(0.25) = 0.97847213).
 * uval(0) = 1 and uval''(0) = 0: the kernel's second moment vanishes.
 */
export function quinticUval(u: number): number {
  const s = sinc(u);
  const s5 = s * s * s * s * s;
  const pu2 = Math.PI * Math.PI * u * u;
  return s5 * (s * (55 - 19 * pu2) + 2 * Math.cos(Math.PI * u) * (pu2 - 27));
}

/** Distortion (e1, e2) → reduced shear (g1, g2): g = e / (1 + √(1 − |e|²)). Requires |e| < 1. */
export function distortionToShear(e1: number, e2: number): [number, number] {
  const f = 1 / (1 + Math.sqrt(1 - e1 * e1 - e2 * e2));
  return [e1 * f, e2 * f];
}

/** Reduced shear (g1, g2) → distortion (e1, e2): e = 2g / (1 + |g|²). */
export function shearToDistortion(g1: number, g2: number): [number, number] {
  const f = 2 / (1 + g1 * g1 + g2 * g2);
  return [g1 * f, g2 * f];
}

/**
 * Jacobian of distortionToShear: [[∂g1/∂e1, ∂g1/∂e2], [∂g2/∂e1, ∂g2/∂e2]] (row-major).
 * With c = √(1 − |e|²) and f = 1/(1 + c): ∂f/∂e_i = f² e_i / c.
 */
export function distortionToShearJacobian(e1: number, e2: number): Mat2 {
  const c = Math.sqrt(1 - e1 * e1 - e2 * e2);
  const f = 1 / (1 + c);
  const h = (f * f) / c;
  return [f + e1 * e1 * h, e1 * e2 * h, e1 * e2 * h, f + e2 * e2 * h];
}

/** S(g) = [[1+g1, g2], [g2, 1−g1]] / √(1−|g|²). Requires |g| < 1. */
export function shearMatrix(g1: number, g2: number): Mat2 {
  const n = 1 / Math.sqrt(1 - g1 * g1 - g2 * g2);
  return [(1 + g1) * n, g2 * n, g2 * n, (1 - g1) * n];
}

/** [∂S/∂g1, ∂S/∂g2]. With n = (1−|g|²)^(−1/2): ∂n/∂g_i = g_i n³. */
export function shearMatrixDerivatives(g1: number, g2: number): [Mat2, Mat2] {
  const n = 1 / Math.sqrt(1 - g1 * g1 - g2 * g2);
  const n3 = n * n * n;
  const d1: Mat2 = [n + (1 + g1) * g1 * n3, g2 * g1 * n3, g2 * g1 * n3, -n + (1 - g1) * g1 * n3];
  const d2: Mat2 = [(1 + g1) * g2 * n3, n + g2 * g2 * n3, n + g2 * g2 * n3, (1 - g1) * g2 * n3];
  return [d1, d2];
}

export function matMul2(a: Mat2, b: Mat2): Mat2 {
  return [
    a[0] * b[0] + a[1] * b[2],
    a[0] * b[1] + a[1] * b[3],
    a[2] * b[0] + a[3] * b[2],
    a[2] * b[1] + a[3] * b[3],
  ];
}

export function matInv2(a: Mat2): Mat2 {
  const det = a[0] * a[3] - a[1] * a[2];
  return [a[3] / det, -a[1] / det, -a[2] / det, a[0] / det];
}

export function matTranspose2(a: Mat2): Mat2 {
  return [a[0], a[2], a[1], a[3]];
}

/**
 * The galaxy's linear map A = S(g)·S(g_e), g_e = distortionToShear(e): GalSim's
 * `Exponential(...).shear(e1=e1, e2=e2).shear(g1=g1, g2=g2)`. Requires |e| < 1, |g| < 1.
 */
export function galaxyMatrix(e1: number, e2: number, g1: number, g2: number): Mat2 {
  const [ge1, ge2] = distortionToShear(e1, e2);
  return matMul2(shearMatrix(g1, g2), shearMatrix(ge1, ge2));
}

/**
 * Analytic derivatives of A = S(g)·S(g_e(e)) with respect to (e1, e2, g1, g2), in that order.
 */
export function galaxyMatrixDerivatives(e1: number, e2: number, g1: number, g2: number): [Mat2, Mat2, Mat2, Mat2] {
  const [ge1, ge2] = distortionToShear(e1, e2);
  const Sg = shearMatrix(g1, g2);
  const Se = shearMatrix(ge1, ge2);
  const [dSe1, dSe2] = shearMatrixDerivatives(ge1, ge2);
  const [dSg1, dSg2] = shearMatrixDerivatives(g1, g2);
  const Jg = distortionToShearJacobian(e1, e2);
  const lin = (a: Mat2, ca: number, b: Mat2, cb: number): Mat2 => [
    a[0] * ca + b[0] * cb,
    a[1] * ca + b[1] * cb,
    a[2] * ca + b[2] * cb,
    a[3] * ca + b[3] * cb,
  ];
  // ∂S_e/∂e1 = ∂S/∂ge1·∂ge1/∂e1 + ∂S/∂ge2·∂ge2/∂e1
  const dSe_de1 = lin(dSe1, Jg[0], dSe2, Jg[2]);
  const dSe_de2 = lin(dSe1, Jg[1], dSe2, Jg[3]);
  return [matMul2(Sg, dSe_de1), matMul2(Sg, dSe_de2), matMul2(dSg1, Se), matMul2(dSg2, Se)];
}
