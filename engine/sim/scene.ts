/**
 * The simulated sky: galaxies and stars with Euclid-depth distributions, the shear field, and
 * the MER-like catalog "measurements" of them. Positions live on the tangent plane at the tile
 * centre, (u, v) arcsec (+u West, +v North); the shear field is constant per sub-tile.
 *
 * Sub-tile indexing (truth/shear.fits): the tile core [−C/2, C/2]² is cut into n × n cells on the
 * tile's tangent plane; SUBTILE_COL counts along ξ = −u (East, increasing RA) and SUBTILE_ROW
 * along v (North, increasing Dec), both from 0.
 */
import { Rng } from './rng.ts';
import { distortionToShear, matMul, shearMatrix } from './psf-model.ts';

export const HLR_TO_R0 = 1.6783469900166605;

/** Photometric constants of a VIS exposure (header values). */
export const VIS = {
  gain: 3.48, // e-/ADU
  exptime: 560.52, // s
  magzerop: 24.57, // AB mag for 1 ADU/s
  rdnoise: 4.5, // e-
  saturate: 60000, // ADU
  skyMag: 22.3, // AB mag / arcsec² (ecliptic-latitude average, VIS band)
};

/** ADU per µJy for an exposure: 10^((MAGZEROP + 2.5 log10 EXPTIME − 23.9) / 2.5). */
export function aduPerMicroJy(magzerop = VIS.magzerop, exptime = VIS.exptime): number {
  return 10 ** ((magzerop + 2.5 * Math.log10(exptime) - 23.9) / 2.5);
}
export function magToMicroJy(m: number): number {
  return 10 ** ((23.9 - m) / 2.5);
}
/** Sky level in ADU per 0.1″ pixel. */
export function skyAduPerPixel(): number {
  return magToMicroJy(VIS.skyMag) * 0.01 * aduPerMicroJy();
}

export interface SceneConfig {
  /** Region to populate on the tile tangent plane (arcsec): [umin, umax, vmin, vmax]. */
  region: [number, number, number, number];
  /** Galaxies brighter than this magnitude are drawn. */
  magMax: number;
  /** Galaxy counts: N(< m) = n24 · 10^(0.3 (m − 24)) per arcmin². */
  n24: number;
  /** Stars per arcmin² (16.5 < m < 25). */
  starDensity: number;
  /** Tile core side (arcsec) and sub-tile grid. */
  tileCore: number;
  grid: number;
  /** Largest galaxy half-light radius (arcsec; default 3). Clipped after the draw: the stream is unchanged. */
  hlrMax?: number;
  /**
   * Rotate every galaxy's intrinsic shape by 90°: (e1, e2) → (−e1, −e2) after the draw, so the
   * scene stream — and every other object property — is unchanged (shape-noise cancellation).
   * The same as `ellipticityRotationDeg: 90` (which takes precedence when given).
   */
  rotateEllipticities?: boolean;
  /**
   * Rotate every galaxy's intrinsic shape by θ degrees in position angle after the draw:
   * (e1 + i·e2) → (e1 + i·e2)·exp(2iθ) (rotateEllipticity). Nothing else changes.
   */
  ellipticityRotationDeg?: number;
}

/**
 * A position-angle rotation reduced to [0, 180) degrees: distortion is spin-2, so a turn by 180°
 * is the identity (−90 → 90, 225 → 45).
 */
export function normalizeRotationDeg(deg: number): number {
  return (((deg % 180) + 180) % 180) + 0;
}

/**
 * An intrinsic distortion (e1, e2) rotated by θ degrees in position angle: (e1 + i·e2)·exp(2iθ).
 * The multiples of 45° are exact (no rounding): 0° → (e1, e2), 45° → (−e2, e1), 90° →
 * (−e1, −e2), 135° → (e2, −e1); any other angle by cos/sin of 2θ.
 */
export function rotateEllipticity(e1: number, e2: number, deg: number): [number, number] {
  const t = normalizeRotationDeg(deg);
  if (t === 0) return [e1, e2];
  if (t === 45) return [-e2, e1];
  if (t === 90) return [-e1, -e2];
  if (t === 135) return [e2, -e1];
  const a = (2 * t * Math.PI) / 180;
  const c = Math.cos(a);
  const s = Math.sin(a);
  return [e1 * c - e2 * s, e1 * s + e2 * c];
}

export interface SkyObject {
  id: number;
  u: number;
  v: number;
  ra: number;
  dec: number;
  isStar: boolean;
  mag: number;
  fluxUJy: number;
  fluxAdu: number;
  /** Intrinsic half-light radius (arcsec; 0 for stars). */
  hlr: number;
  /** Intrinsic distortion. */
  e1: number;
  e2: number;
  /** Applied reduced shear (its sub-tile's). */
  g1: number;
  g2: number;
  subRow: number;
  subCol: number;
}

export interface ShearCell {
  row: number;
  col: number;
  g1: number;
  g2: number;
}

/** Shear per sub-tile: uniform in the disc |g| ≤ 0.05 from the seed's own stream, or fixed. */
export function shearField(seed: number, grid: number, fixed: [number, number] | null, flip: boolean): ShearCell[] {
  const rng = new Rng(seed, 'shear');
  const out: ShearCell[] = [];
  for (let row = 0; row < grid; row++) {
    for (let col = 0; col < grid; col++) {
      let g1: number, g2: number;
      const r = 0.05 * Math.sqrt(rng.uniform());
      const t = 2 * Math.PI * rng.uniform();
      if (fixed) [g1, g2] = fixed;
      else { g1 = r * Math.cos(t); g2 = r * Math.sin(t); }
      if (flip) { g1 = -g1; g2 = -g2; }
      out.push({ row, col, g1, g2 });
    }
  }
  return out;
}

/** Sub-tile (row, col) of a tangent-plane position, clamped to the grid. */
export function subTileOf(u: number, v: number, tileCore: number, grid: number): [number, number] {
  const cell = tileCore / grid;
  const xi = -u;
  const col = Math.min(grid - 1, Math.max(0, Math.floor((xi + tileCore / 2) / cell)));
  const row = Math.min(grid - 1, Math.max(0, Math.floor((v + tileCore / 2) / cell)));
  return [row, col];
}

function poissonCount(rng: Rng, mean: number): number {
  return rng.poisson(mean);
}

/** Draw m from p(m) ∝ 10^(slope·m) on [lo, hi]. */
function drawMag(rng: Rng, slope: number, lo: number, hi: number): number {
  const u = rng.uniform();
  return hi + Math.log10(u + (1 - u) * 10 ** (slope * (lo - hi))) / slope;
}

/**
 * Draw the objects. The scene stream does not depend on the shear, so `--shear` and
 * `--flip-shear` change only the applied (g1, g2), and `rotateEllipticities` /
 * `ellipticityRotationDeg` only the orientation of the galaxies' intrinsic (e1, e2) (the same
 * deviates are drawn).
 */
export function drawScene(seed: number, cfg: SceneConfig, shear: ShearCell[], toSky: (u: number, v: number) => [number, number]): SkyObject[] {
  const rng = new Rng(seed, 'scene');
  const [u0, u1, v0, v1] = cfg.region;
  const area = ((u1 - u0) * (v1 - v0)) / 3600;
  const mLo = 18;
  const nGal = poissonCount(rng, area * cfg.n24 * (10 ** (0.3 * (cfg.magMax - 24)) - 10 ** (0.3 * (mLo - 24))));
  const nStar = poissonCount(rng, area * cfg.starDensity);
  const conv = aduPerMicroJy();
  const rotDeg = normalizeRotationDeg(cfg.ellipticityRotationDeg ?? (cfg.rotateEllipticities ? 90 : 0));
  const objs: SkyObject[] = [];
  const cellOf = (u: number, v: number) => {
    const [row, col] = subTileOf(u, v, cfg.tileCore, cfg.grid);
    return shear[row * cfg.grid + col];
  };
  for (let i = 0; i < nGal + nStar; i++) {
    const isStar = i >= nGal;
    const u = rng.range(u0, u1);
    const v = rng.range(v0, v1);
    const mag = isStar ? drawMag(rng, 0.15, 16.5, 25) : drawMag(rng, 0.3, mLo, cfg.magMax);
    let hlr = 0, e1 = 0, e2 = 0;
    if (!isStar) {
      // size: lognormal around a magnitude-dependent median (brighter = larger)
      const med = 0.3 * 10 ** (-0.1 * (mag - 24));
      hlr = Math.min(cfg.hlrMax ?? 3, Math.max(0.05, med * Math.exp(0.35 * rng.normal())));
      // intrinsic distortion: σ = 0.26 per component, |e| < 0.9
      do { e1 = 0.26 * rng.normal(); e2 = 0.26 * rng.normal(); } while (e1 * e1 + e2 * e2 >= 0.81);
      // rotation of the intrinsic shape by θ: distortion is spin-2, so e → e·exp(2iθ) (90°: e → −e)
      if (rotDeg !== 0) [e1, e2] = rotateEllipticity(e1, e2, rotDeg);
    }
    const cell = cellOf(u, v);
    const [ra, dec] = toSky(u, v);
    const fluxUJy = magToMicroJy(mag);
    objs.push({
      id: i + 1, u, v, ra, dec, isStar, mag, fluxUJy, fluxAdu: fluxUJy * conv, hlr, e1, e2,
      g1: isStar ? 0 : cell.g1, g2: isStar ? 0 : cell.g2, subRow: cell.row, subCol: cell.col,
    });
  }
  return objs;
}

/** World linear map A = S(g) · S(g_e) of a galaxy. */
export function galaxyMap(o: SkyObject): [number, number, number, number] {
  const [ge1, ge2] = distortionToShear(o.e1, o.e2);
  return matMul(shearMatrix(o.g1, o.g2), shearMatrix(ge1, ge2));
}
