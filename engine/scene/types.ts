/**
 * The in-memory ExposureSet: what the engine renders and compares with.
 *
 * Conventions (shared by the GPU engine, the float64 CPU reference and the simulator):
 *
 * - Pixel coordinates are 0-based: the centre of the first pixel is (0, 0); x runs along
 *   image columns (FITS NAXIS1), y along rows (NAXIS2). Images are row-major `[y][x]`.
 *   The data layer converts from the FITS convention (first pixel centre = 1.0).
 * - World coordinates (u, v) are arcsec on the tangent plane at the source, GalSim's
 *   convention: +v towards North, +u towards West (u = -ΔRA·cos δ), so that an image with
 *   North up shows East to the left. Shears (g1, g2) and intrinsic distortions (e1, e2)
 *   are defined in this (u, v) frame; offsets (dx, dy) are (Δu, Δv) in arcsec.
 * - The local Jacobian J = [[dudx, dudy], [dvdx, dvdy]] (arcsec / pixel) maps a pixel
 *   displacement to a world displacement. An image-plane Fourier transform is the world
 *   transform at q = J⁻ᵀ k (k in radians / pixel, q in radians / arcsec).
 * - PSF stamps are 21×21 (any odd size) images in the quadrant's own pixel frame
 *   (the Euclid PSF product is sampled on native detector pixels), centred on the centre
 *   pixel, normalised to unit sum. Treating them in the pixel frame is what makes
 *   CCDs rotated by 180° come out right.
 * - Each visible (source, quadrant) pair is rendered on a stamp of `stampSize` N pixels whose
 *   lower-left pixel is the fixed integer corner `stampCorner(x, N)` (engine/model/geometry.ts),
 *   on an FFT grid of M = fftFactor · N pixels.
 */
import type { GalaxyProfile } from '../model/profile.ts';

/** One CCD quadrant of one exposure, unmodified except for background subtraction. */
export interface QuadrantData {
  /** Unique name, e.g. "3-4.F@exp0". */
  name: string;
  /** NAXIS1 (columns). */
  width: number;
  /** NAXIS2 (rows). */
  height: number;
  /** Science pixels, ADU, row-major [y][x], length width·height (see `blocks`). NaN pixels are masked. */
  sci: Float32Array;
  /** RMS noise per pixel (ADU). Pixels with rms ≤ 0 or non-finite are masked. */
  rms: Float32Array;
  /** Flag bits per pixel; a pixel with (flags & badPixelMask) != 0 is masked. */
  flags: Uint32Array | Int32Array;
  /** Background in ADU subtracted from `sci` before comparison: a constant or a full map. */
  background?: number | Float32Array;
  /**
   * When present, the per-pixel arrays (sci, rms, flags) hold only these blocks' pixels,
   * block-major (engine/scene/pixels.ts: `pixelIndex`), and a background map has already been
   * subtracted from `sci` (float32; `background` is then 0); absent: the whole crop, row-major.
   */
  blocks?: ActiveBlocks;
}

/** The 16×8 pixel blocks of a crop that some visible stamp touches (engine/scene/pixels.ts). */
export interface ActiveBlocks {
  /** Blocks per row and column: ⌈width / 16⌉, ⌈height / 8⌉. */
  nbx: number;
  nby: number;
  /** Block (bx, by) at by·nbx + bx → its number among the active blocks, −1 when inactive. */
  blockIndex: Int32Array;
  /** Active block number → (bx, by), interleaved. */
  blockXY: Uint32Array;
  nActive: number;
}

/** Where a source lands in one quadrant. */
export interface PairGeometry {
  /** Index into ExposureSet.sources. */
  source: number;
  /** Index into ExposureSet.quadrants. */
  quadrant: number;
  /** Source position in the quadrant, 0-based pixels (sub-pixel kept). */
  x: number;
  y: number;
  /** Local WCS Jacobian at (x, y): [dudx, dudy, dvdx, dvdy], arcsec / pixel. */
  jacobian: [number, number, number, number];
  /** PSF stamp at (x, y), psfSize × psfSize, row-major, unit sum (null allowed only when not visible). */
  psf: Float32Array | Float64Array | null;
  /** True when the stamp footprint overlaps the quadrant (only visible pairs are rendered). */
  visible: boolean;
}

export interface SourceInfo {
  /** Catalog identifier (OBJECT_ID). */
  id: number;
  /** Stamp size N in pixels: one of the tiers (64, 128, 256 by default). */
  stampSize: number;
  /**
   * A shear-blind (nuisance) source: rendered unsheared — its (e1, e2) are its observed shape —
   * so that it models its light without informing the shear (the shear gradient has no share of
   * it). For sources the pixels cannot measure, e.g. a centre inside an unmodelled object's mask
   * (engine/exposures/masking.ts; docs/inference.md "Shear-blind sources"). Default false.
   */
  shearBlind?: boolean;
  /**
   * A nuisance source: an object the catalog selection did not keep, modelled only so that its
   * light is in the model (masking.unmodelled: model; docs/config.md). Its stamp adds no pixel to
   * the likelihood: a pixel counts only where some other source's stamp covers it, so modelling a
   * neighbour never brings in pixels whose own neighbours nobody listed. Not reported in the
   * catalog. Set together with `shearBlind`. Default false.
   */
  nuisance?: boolean;
  /**
   * A point source (a star): the PSF alone, with free flux and position only. Rendered as a
   * galaxy of half-light radius POINT_SOURCE_HLR (engine/model/geometry.ts), round, whose size,
   * shape and profile parameters are held fixed (engine/infer/posterior.ts). Set with `nuisance`
   * (masking.point_like: model; docs/inference.md "Point sources"). Default false.
   */
  pointSource?: boolean;
}

/** The shear a source is rendered with: the sub-tile's, or none for a shear-blind source. */
export function sourceShear(src: SourceInfo, g1: number, g2: number): [number, number] {
  return src.shearBlind ? [0, 0] : [g1, g2];
}

export interface ExposureSet {
  quadrants: QuadrantData[];
  sources: SourceInfo[];
  pairs: PairGeometry[];
  /** Side of the PSF stamps in PSF-model pixels (odd; 21 for a native Euclid stamp). */
  psfSize: number;
  /**
   * PSF-model pixels per detector pixel along each axis (integer ≥ 1; default 1 = native
   * sampling). With q > 1 the stamps sample the PSF every 1/q detector pixel, centre (psfSize−1)/2
   * at the source position, unit sum; the engine then models the PSF up to |k| = qπ per detector
   * pixel and folds the alias orders that band reaches (docs/forward-model.md "Aliasing").
   */
  psfOversampling?: number;
}

export interface RenderOptions {
  /**
   * FFT grid size = fftFactor · stamp size. The engine's own default is 2 (its kernel tests and
   * float64 reference); the pipeline passes `stamps.fft_factor`, whose default is 1.5.
   */
  fftFactor: number;
  /** Multiply by the pixel response sinc(kx/2π)·sinc(ky/2π) (GalSim "auto"). Default false:
   *  Euclid PSFs already include the pixel (config `psf_includes_pixel: true`). */
  pixelResponse: boolean;
  /** Flag bits that mask a pixel (SHINE default 0x1). */
  badPixelMask: number;
  /**
   * Alias orders N folded into each stamp spectrum: Σ over n ∈ [−N, N]² of Ŝ(k + 2πn).
   * 'auto' (default): every order the PSF model's band |k| < qπ reaches — at most ceil((q − 1)/2)
   * for PSF oversampling q, fewer where the PSF is below `aliasTolerance` there (0 for native PSF
   * stamps: band-limited at the detector's Nyquist frequency).
   * An explicit N larger than that adds nothing (the PSF model is zero beyond qπ).
   */
  aliasOrders: number | 'auto';
  /**
   * With aliasOrders 'auto': orders whose cells hold less than this fraction of P̂(0) anywhere
   * (on sampled PSFs) are left out (default 1e-7, below float32 rounding of the stamps).
   */
  aliasTolerance: number;
  /**
   * Galaxy light profile of every source (default exponential): `{ type: 'spergel', nu }` renders
   * F (1 + r0²|q|²)^(−(1+ν)) with r0 = hlr / c_ν, −0.85 ≤ ν ≤ 4 (engine/model/spergel.ts;
   * ν = 0.5 is the exponential).
   */
  profile?: GalaxyProfile;
}

export const DEFAULT_RENDER_OPTIONS: RenderOptions = {
  fftFactor: 2,
  pixelResponse: false,
  badPixelMask: 0x1,
  aliasOrders: 'auto',
  aliasTolerance: 1e-7,
  profile: { type: 'exponential' },
};

/**
 * Parameters of a sub-tile, structure of arrays, float64 on the CPU side.
 * flux in ADU, hlr in arcsec, (e1, e2) distortion, (dx, dy) arcsec on the sky (u, v),
 * (g1, g2) reduced shear of the sub-tile.
 */
export interface SceneParams {
  g1: number;
  g2: number;
  flux: Float64Array;
  hlr: Float64Array;
  e1: Float64Array;
  e2: Float64Array;
  dx: Float64Array;
  dy: Float64Array;
  /** Spergel index ν per source: present exactly when the profile is {type: 'spergel', free: true}. */
  nu?: Float64Array;
  /**
   * Bulge + disk (profile {type: 'bulge_disk'}; engine/model/bulge-disk.ts): bulge flux fraction
   * B/T ∈ [0, 1], bulge half-light radius (arcsec) and distortion; flux is the total, hlr and
   * (e1, e2) the disk's. Present exactly when the profile is bulge + disk.
   */
  bulgeFrac?: Float64Array;
  bulgeHlr?: Float64Array;
  bulgeE1?: Float64Array;
  bulgeE2?: Float64Array;
}

/** Per-source parameters some profiles add (SceneParams' optional arrays). */
export const PROFILE_PARAM_NAMES = ['nu', 'bulgeFrac', 'bulgeHlr', 'bulgeE1', 'bulgeE2'] as const;
export type ProfileParamName = (typeof PROFILE_PARAM_NAMES)[number];

/** d logL / d parameter, same layout as SceneParams. */
export type SceneGradient = SceneParams;

/** Names of the per-source parameters, in the order used in packed arrays. */
export const SOURCE_PARAM_NAMES = ['flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const;
export type SourceParamName = (typeof SOURCE_PARAM_NAMES)[number];

export function allocParams(nSources: number): SceneParams {
  return {
    g1: 0,
    g2: 0,
    flux: new Float64Array(nSources),
    hlr: new Float64Array(nSources),
    e1: new Float64Array(nSources),
    e2: new Float64Array(nSources),
    dx: new Float64Array(nSources),
    dy: new Float64Array(nSources),
  };
}

export function cloneParams(p: SceneParams): SceneParams {
  const extra: Partial<Record<ProfileParamName, Float64Array>> = {};
  for (const k of PROFILE_PARAM_NAMES) if (p[k]) extra[k] = p[k]!.slice();
  return {
    ...extra,
    g1: p.g1,
    g2: p.g2,
    flux: p.flux.slice(),
    hlr: p.hlr.slice(),
    e1: p.e1.slice(),
    e2: p.e2.slice(),
    dx: p.dx.slice(),
    dy: p.dy.slice(),
  };
}
