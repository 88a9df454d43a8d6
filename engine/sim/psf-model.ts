/**
 * The simulator's continuous PSF: an analytic model with an analytic Fourier transform, so the
 * truth images need no interpolation. It is a sum of three concentric elliptical Gaussians
 * (a core, a shoulder and a faint wide halo, like a diffraction-limited PSF convolved with
 * jitter and charge diffusion), defined in WORLD coordinates (u, v) in arcsec. Its size and
 * ellipticity vary smoothly with the position in the focal plane (fpU, fpV: arcsec from the
 * focal-plane centre along the world axes; every exposure of a pointing shares the same focal
 * plane orientation on the sky).
 *
 * Optical PSF without the pixel: FWHM 0.129″ at the field centre, ≈ 0.15″ at the corners;
 * convolved with the 0.1″ pixel: 0.150″ at the centre, 0.168″ at the corners (Euclid VIS ≈ 0.16″).
 * The pixel response is NOT part of this model: the renderers multiply by sinc·sinc.
 */

/** Covariance [cuu, cuv, cvv] in arcsec², with its weight (weights sum to 1). */
export interface GaussComponent {
  weight: number;
  cuu: number;
  cuv: number;
  cvv: number;
}

export interface PsfModel {
  components: GaussComponent[];
}

/** Core width σ (arcsec) at the field centre, and the shape of the 3-component mixture. */
export const PSF_SIGMA0 = 0.052;
export const PSF_MIXTURE: ReadonlyArray<{ weight: number; scale: number }> = [
  { weight: 0.72, scale: 1.0 },
  { weight: 0.22, scale: 2.0 },
  { weight: 0.06, scale: 5.0 },
];
/** Normalisation radius of the focal-plane variation (arcsec, ≈ half the VIS field width). */
export const FP_RADIUS = 1300;

/** Reduced-shear matrix S(g) = [[1+g1, g2], [g2, 1−g1]] / √(1−|g|²) (GalSim). */
export function shearMatrix(g1: number, g2: number): [number, number, number, number] {
  const gg = g1 * g1 + g2 * g2;
  if (!(gg < 1)) throw new RangeError(`|g| must be < 1, got (${g1}, ${g2})`);
  const s = 1 / Math.sqrt(1 - gg);
  return [(1 + g1) * s, g2 * s, g2 * s, (1 - g1) * s];
}

/** Distortion e → reduced shear g = e / (1 + √(1 − |e|²)) (GalSim). */
export function distortionToShear(e1: number, e2: number): [number, number] {
  const ee = e1 * e1 + e2 * e2;
  if (!(ee < 1)) throw new RangeError(`|e| must be < 1, got (${e1}, ${e2})`);
  const f = 1 / (1 + Math.sqrt(1 - ee));
  return [e1 * f, e2 * f];
}

export function matMul(a: readonly number[], b: readonly number[]): [number, number, number, number] {
  return [a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3], a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3]];
}

/** PSF size scale and reduced-shear ellipticity at a focal-plane position (arcsec). */
export function psfVariation(fpU: number, fpV: number): { scale: number; g1: number; g2: number } {
  const x = fpU / FP_RADIUS;
  const y = fpV / FP_RADIUS;
  const r2 = x * x + y * y;
  const scale = 1 + 0.08 * r2 + 0.02 * x - 0.015 * y;
  // astigmatism-like pattern: tangential ellipticity growing with radius, plus a constant term
  const g1 = 0.015 + 0.035 * (x * x - y * y) + 0.005 * y;
  const g2 = -0.008 + 0.035 * (2 * x * y) + 0.004 * x;
  return { scale, g1, g2 };
}

/** The PSF at a focal-plane position (arcsec from the focal-plane centre, world axes). */
export function psfAt(fpU: number, fpV: number): PsfModel {
  const { scale, g1, g2 } = psfVariation(fpU, fpV);
  const s = shearMatrix(g1, g2);
  // S is symmetric: S Sᵀ = S²
  const ss = matMul(s, s);
  const components = PSF_MIXTURE.map(({ weight, scale: k }) => {
    const sig2 = (PSF_SIGMA0 * scale * k) ** 2;
    return { weight, cuu: sig2 * ss[0], cuv: sig2 * ss[1], cvv: sig2 * ss[3] };
  });
  return { components };
}

/** Fourier transform of the unit-flux PSF at world frequency (qu, qv) in rad/arcsec. */
export function psfFourier(psf: PsfModel, qu: number, qv: number): number {
  let s = 0;
  for (const c of psf.components) s += c.weight * Math.exp(-0.5 * (c.cuu * qu * qu + 2 * c.cuv * qu * qv + c.cvv * qv * qv));
  return s;
}

/** PSF surface brightness at world offset (u, v) arcsec (unit flux). */
export function psfValue(psf: PsfModel, u: number, v: number): number {
  let s = 0;
  for (const c of psf.components) {
    const det = c.cuu * c.cvv - c.cuv * c.cuv;
    const q = (c.cvv * u * u - 2 * c.cuv * u * v + c.cuu * v * v) / det;
    s += (c.weight * Math.exp(-0.5 * q)) / (2 * Math.PI * Math.sqrt(det));
  }
  return s;
}

/** Second-moment matrix of the PSF (world, arcsec²): Σ wᵢ Cᵢ. */
export function psfMoments(psf: PsfModel): [number, number, number] {
  let a = 0, b = 0, c = 0;
  for (const k of psf.components) { a += k.weight * k.cuu; b += k.weight * k.cuv; c += k.weight * k.cvv; }
  return [a, b, c];
}

/** Full width at half maximum of the PSF along +u (arcsec), by bisection. */
export function psfFwhm(psf: PsfModel): number {
  const half = psfValue(psf, 0, 0) / 2;
  let lo = 0, hi = 2;
  for (let i = 0; i < 80; i++) {
    const mid = (lo + hi) / 2;
    if (psfValue(psf, mid, 0) > half) lo = mid; else hi = mid;
  }
  return 2 * lo;
}
