/**
 * The VIS focal plane and its WCS, as the simulator builds them.
 *
 * Layout (docs/architecture.md "Euclid file facts"): 6 × 6 CCDs "r-c" (r = row 1..6 from the bottom, c = column 1..6 from the
 * left, in focal-plane coordinates), each 2 × 2 quadrants of 2048 × 2066 pixels (NAXIS1 × NAXIS2)
 * at 0.1″, with gaps of 127 px (12.7″) between CCD columns and 644 px (64.4″) between CCD rows.
 * For CCD columns 1–3 the quadrants sit E bottom-left, F bottom-right, G top-right, H top-left,
 * every quadrant's pixel axes parallel to the focal-plane axes (x → right, y → up). CCDs of
 * columns 4–6 are rotated by 180°: their quadrant layout and pixel axes are reversed in x and y
 * (E top-right, …; x → left, y → down). Focal-plane size 25211 × 27012 px ≈ 0.70° × 0.75°.
 *
 * Focal-plane coordinates (X, Y) are pixels from the focal-plane centre. With the instrument
 * position angle θ they map to world offsets from the pointing centre
 *   (u, v) = 0.1″ · R(θ) (X, Y)         (+u West, +v North: θ = 0 puts North up, East left),
 * and to FITS intermediate coordinates x = −u/3600, y = v/3600 (degrees; x towards East).
 * The TPV distortion acts on those intermediate coordinates with the same PV coefficients for
 * every quadrant of the pointing (CRVAL = pointing centre, CRPIX = where the focal-plane centre
 * would fall in that quadrant's pixel grid): a radial cubic term plus small quadratic terms,
 * ≈ 4 px at the field corners (Euclid VIS: a few pixels).
 */
import { createTpvWcs, type Wcs } from '../data/wcs/index.ts';
import { tangentPlane } from '../data/wcs/index.ts';

export const QUAD_W = 2048;
export const QUAD_H = 2066;
export const PIXEL_SCALE = 0.1;
export const GAP_X = 127;
export const GAP_Y = 644;
export const CCD_W = 2 * QUAD_W;
export const CCD_H = 2 * QUAD_H;
export const FP_W = 6 * CCD_W + 5 * GAP_X;
export const FP_H = 6 * CCD_H + 5 * GAP_Y;

/** TPV coefficients (PV1_k, PV2_k for k = 0..10), degrees. */
export const RADIAL_K = 9e-4;
export const PV1: readonly number[] = [0, 1, 0, 0, 1.0e-4, -0.5e-4, 0.3e-4, RADIAL_K, 0, RADIAL_K, 0];
export const PV2: readonly number[] = [0, 1, 0, 0, -0.6e-4, 0.8e-4, 0.2e-4, RADIAL_K, 0, RADIAL_K, 0];

export type QuadId = 'E' | 'F' | 'G' | 'H';

export interface QuadrantGeom {
  /** "r-c". */
  ccd: string;
  row: number;
  col: number;
  quad: QuadId;
  /** CCD column ≥ 4: rotated 180°. */
  rotated: boolean;
  /** Focal-plane position of 0-based pixel (0, 0): X = ax + sx·x, Y = ay + sy·y. */
  ax: number;
  ay: number;
  sx: 1 | -1;
  sy: 1 | -1;
}

const QUAD_OFFSETS: Record<QuadId, [number, number]> = { E: [0, 0], F: [QUAD_W, 0], G: [QUAD_W, QUAD_H], H: [0, QUAD_H] };

/** The 144 quadrants, in the order r, c, E..H. */
export function focalPlane(): QuadrantGeom[] {
  const out: QuadrantGeom[] = [];
  for (let row = 1; row <= 6; row++) {
    for (let col = 1; col <= 6; col++) {
      const x0 = -FP_W / 2 + (col - 1) * (CCD_W + GAP_X);
      const y0 = -FP_H / 2 + (row - 1) * (CCD_H + GAP_Y);
      const rotated = col >= 4;
      for (const quad of ['E', 'F', 'G', 'H'] as QuadId[]) {
        const [qx, qy] = QUAD_OFFSETS[quad];
        const g: QuadrantGeom = rotated
          ? { ccd: `${row}-${col}`, row, col, quad, rotated, ax: x0 + CCD_W - qx - 0.5, ay: y0 + CCD_H - qy - 0.5, sx: -1, sy: -1 }
          : { ccd: `${row}-${col}`, row, col, quad, rotated, ax: x0 + qx + 0.5, ay: y0 + qy + 0.5, sx: 1, sy: 1 };
        out.push(g);
      }
    }
  }
  return out;
}

/** Focal-plane rectangle [xmin, xmax] × [ymin, ymax] covered by a quadrant (pixel edges). */
export function quadrantFpBox(q: QuadrantGeom): [number, number, number, number] {
  const xa = q.ax - 0.5 * q.sx, xb = q.ax + q.sx * (QUAD_W - 0.5);
  const ya = q.ay - 0.5 * q.sy, yb = q.ay + q.sy * (QUAD_H - 0.5);
  return [Math.min(xa, xb), Math.max(xa, xb), Math.min(ya, yb), Math.max(ya, yb)];
}

export interface Pointing {
  /** Focal-plane centre on the sky (deg) = CRVAL of every quadrant. */
  ra: number;
  dec: number;
  /** Instrument position angle θ (deg). */
  pa: number;
}

/** World offsets (u, v) arcsec from the pointing centre of focal-plane pixel coordinates. */
export function fpToUV(p: Pointing, X: number, Y: number): [number, number] {
  const t = (p.pa * Math.PI) / 180;
  const c = Math.cos(t), s = Math.sin(t);
  return [PIXEL_SCALE * (c * X - s * Y), PIXEL_SCALE * (s * X + c * Y)];
}

export function uvToFp(p: Pointing, u: number, v: number): [number, number] {
  const t = (p.pa * Math.PI) / 180;
  const c = Math.cos(t), s = Math.sin(t);
  return [(c * u + s * v) / PIXEL_SCALE, (-s * u + c * v) / PIXEL_SCALE];
}

/**
 * The TPV WCS of a quadrant (or of a crop of it starting at 0-based pixel (cx0, cy0), size
 * w × h), for a pointing.
 */
export function quadrantWcs(q: QuadrantGeom, p: Pointing, cx0 = 0, cy0 = 0, w = QUAD_W, h = QUAD_H): Wcs {
  const t = (p.pa * Math.PI) / 180;
  const c = Math.cos(t), s = Math.sin(t);
  const k = PIXEL_SCALE / 3600;
  // x_int = −u/3600, y_int = v/3600 with (u, v) = 0.1 R(θ) (X, Y), X = ax + sx·x (x 0-based).
  const cd: [number, number, number, number] = [-k * c * q.sx, k * s * q.sy, k * s * q.sx, k * c * q.sy];
  // X = 0 ⇔ x = −ax/sx (0-based) ⇒ CRPIX1 = 1 − ax/sx − cx0
  const crpix: [number, number] = [1 - q.ax / q.sx - cx0, 1 - q.ay / q.sy - cy0];
  return createTpvWcs({ crpix, crval: [p.ra, p.dec], cd, pv1: [...PV1], pv2: [...PV2], naxis: [w, h] });
}

/** Euclid-like dither pattern: offsets (u, v) arcsec of the 4 exposures of a pointing. */
export const DITHERS: ReadonlyArray<[number, number]> = [
  [0, 0],
  [100, 50],
  [0, 100],
  [-100, 50],
];

/** Pointing of dither d around a nominal centre (ra0, dec0). */
export function ditherPointing(ra0: number, dec0: number, pa: number, d: number): Pointing {
  const [du, dv] = DITHERS[d];
  const [ra, dec] = tangentPlane(ra0, dec0).toSky(du, dv);
  return { ra, dec, pa };
}
