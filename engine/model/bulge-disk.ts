/**
 * The bulge + disk galaxy profile (RenderOptions.profile = {type: 'bulge_disk', bulgeNu}), pure
 * float64. docs/forward-model.md "Bulge + disk" has the derivation.
 *
 * Two components with a shared centre (dx, dy) and the shared shear (g1, g2):
 *   disk   an exponential of half-light radius h_d = `hlr`, distortion (e1, e2)
 *   bulge  a Spergel profile of fixed index ν_b (`bulgeNu`, default −0.6), half-light radius
 *          h_b = `bulgeHlr`, distortion (`bulgeE1`, `bulgeE2`)
 *   flux   F = `flux` in total, a fraction f_b = `bulgeFrac` ∈ [0, 1] of it in the bulge
 *
 * Fourier transform at world frequency q (radians / arcsec), A_c = S(g)·S(g(e_c)) per component:
 *   Ĝ(q) = F [ (1 − f_b) (1 + r_d² |A_dᵀ q|²)^(−3/2) + f_b (1 + r_b² |A_bᵀ q|²)^(−(1+ν_b)) ]
 *   r_d = h_d / 1.6783469900166605,   r_b = h_b / c(ν_b)   (engine/model/spergel.ts)
 *
 * Why a Spergel bulge: a de Vaucouleurs (Sérsic n = 4) profile has no closed-form Fourier
 * transform, while the Spergel family does, and Spergel (2010, ApJS 191, 58) shows that ν ≈ −0.6
 * reproduces the de Vaucouleurs profile over the radii that hold most of the light (the same
 * profile the existing Spergel module notes); its cusp and wide wings are what a fit with an
 * exponential misses. ν_b is fixed per run (config `gal.profile.bulge_nu`), within GalSim's
 * [−0.85, 4].
 *
 * Each component's total flux is exact (Ĝ(0) = F), so f_b is the bulge-to-total flux ratio B/T.
 * The half-light radius of the sum is not a parameter: the components keep their own.
 */
import { EXP_HLR_OVER_R0, galaxyMatrix } from './galsim.ts';
import { spergelHlrOverR0 } from './spergel.ts';

export interface BulgeDiskProfile {
  type: 'bulge_disk';
  /** Spergel index of the bulge (default −0.6, de Vaucouleurs-like). */
  bulgeNu: number;
}

/** The default bulge index: Spergel ν = −0.6 ≈ de Vaucouleurs. */
export const DEFAULT_BULGE_NU = -0.6;

/** The per-source parameters a bulge + disk adds, in SceneParams order (and the params product's column stems). */
export const BULGE_PARAM_NAMES = ['bulgeFrac', 'bulgeHlr', 'bulgeE1', 'bulgeE2'] as const;
export type BulgeParamName = (typeof BULGE_PARAM_NAMES)[number];

/** One source's bulge + disk parameters (flux, hlr, e1, e2 are the total flux and the disk's size and shape). */
export interface BulgeDiskSource {
  flux: number;
  hlr: number;
  e1: number;
  e2: number;
  bulgeFrac: number;
  bulgeHlr: number;
  bulgeE1: number;
  bulgeE2: number;
}

/**
 * Ĝ at world frequency (qu, qv) of a sheared bulge + disk (the formula of the header): the float64
 * definition the float64 reference and the GPU kernels follow.
 */
export function bulgeDiskKValue(src: BulgeDiskSource, bulgeNu: number, g1: number, g2: number, qu: number, qv: number): number {
  const disk = componentKValue(src.hlr / EXP_HLR_OVER_R0, 1.5, galaxyMatrix(src.e1, src.e2, g1, g2), qu, qv);
  const bulge = componentKValue(src.bulgeHlr / spergelHlrOverR0(bulgeNu), 1 + bulgeNu, galaxyMatrix(src.bulgeE1, src.bulgeE2, g1, g2), qu, qv);
  return src.flux * ((1 - src.bulgeFrac) * disk + src.bulgeFrac * bulge);
}

function componentKValue(r0: number, exponent: number, A: [number, number, number, number], qu: number, qv: number): number {
  const wu = A[0] * qu + A[2] * qv;
  const wv = A[1] * qu + A[3] * qv;
  return Math.pow(1 + r0 * r0 * (wu * wu + wv * wv), -exponent);
}
