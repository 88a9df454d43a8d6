/**
 * Spherical helpers shared by the WCS, the tiling and the simulator.
 *
 * Conventions (engine/scene/types.ts): world (u, v) in arcsec on a tangent plane, +v towards
 * North, +u towards West, i.e. u = −ΔRA·cos δ, v = ΔDec near the tangent point. Angles in degrees
 * unless a name says otherwise.
 */

export const DEG = Math.PI / 180;
export const ARCSEC_PER_RAD = (180 / Math.PI) * 3600;

export type Vec3 = [number, number, number];

/** Unit vector of (ra, dec) in degrees. */
export function skyToVec(ra: number, dec: number): Vec3 {
  const a = ra * DEG;
  const d = dec * DEG;
  const cd = Math.cos(d);
  return [cd * Math.cos(a), cd * Math.sin(a), Math.sin(d)];
}

/** (ra, dec) in degrees of a (not necessarily unit) vector; ra in [0, 360). */
export function vecToSky(w: Vec3): [number, number] {
  let ra = Math.atan2(w[1], w[0]) / DEG;
  if (ra < 0) ra += 360;
  if (ra >= 360) ra -= 360;
  const dec = Math.atan2(w[2], Math.hypot(w[0], w[1])) / DEG;
  return [ra, dec];
}

/** Local East (increasing RA) and North unit vectors at (ra, dec). */
export function eastNorth(ra: number, dec: number): [Vec3, Vec3] {
  const a = ra * DEG;
  const d = dec * DEG;
  const sa = Math.sin(a);
  const ca = Math.cos(a);
  const sd = Math.sin(d);
  const cd = Math.cos(d);
  return [
    [-sa, ca, 0],
    [-sd * ca, -sd * sa, cd],
  ];
}

/** Normalise RA into [0, 360). */
export function wrapRa(ra: number): number {
  let r = ra % 360;
  if (r < 0) r += 360;
  if (r >= 360) r -= 360;
  return r;
}

/** Great-circle distance in degrees (numerically stable for tiny and large separations). */
export function angularSeparation(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const a = skyToVec(ra1, dec1);
  const b = skyToVec(ra2, dec2);
  const cx = a[1] * b[2] - a[2] * b[1];
  const cy = a[2] * b[0] - a[0] * b[2];
  const cz = a[0] * b[1] - a[1] * b[0];
  const dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  return Math.atan2(Math.hypot(cx, cy, cz), dot) / DEG;
}

/**
 * Gnomonic (TAN) projection about (ra0, dec0) with the engine's (u, v) convention, in arcsec:
 * u = −ξ, v = η where (ξ, η) are the standard coordinates (ξ towards East).
 */
export interface TangentPlane {
  readonly ra0: number;
  readonly dec0: number;
  /** Sky (deg) → (u, v) arcsec. Returns [NaN, NaN] for points 90° or more from the centre. */
  toUV(ra: number, dec: number): [number, number];
  /** (u, v) arcsec → sky (deg), ra in [0, 360). */
  toSky(u: number, v: number): [number, number];
  /** Jacobian of toUV with respect to (ra, dec) in degrees: [du/dra, du/ddec, dv/dra, dv/ddec] (arcsec/deg). */
  jacobianSky(ra: number, dec: number): [number, number, number, number];
}

export function tangentPlane(ra0: number, dec0: number): TangentPlane {
  const c = skyToVec(ra0, dec0);
  const [e, n] = eastNorth(ra0, dec0);
  return {
    ra0,
    dec0,
    toUV(ra: number, dec: number): [number, number] {
      const s = skyToVec(ra, dec);
      const z = s[0] * c[0] + s[1] * c[1] + s[2] * c[2];
      if (!(z > 0)) return [NaN, NaN];
      const xi = (s[0] * e[0] + s[1] * e[1] + s[2] * e[2]) / z;
      const eta = (s[0] * n[0] + s[1] * n[1] + s[2] * n[2]) / z;
      return [-xi * ARCSEC_PER_RAD, eta * ARCSEC_PER_RAD];
    },
    toSky(u: number, v: number): [number, number] {
      const xi = -u / ARCSEC_PER_RAD;
      const eta = v / ARCSEC_PER_RAD;
      return vecToSky([
        c[0] + xi * e[0] + eta * n[0],
        c[1] + xi * e[1] + eta * n[1],
        c[2] + xi * e[2] + eta * n[2],
      ]);
    },
    jacobianSky(ra: number, dec: number): [number, number, number, number] {
      const s = skyToVec(ra, dec);
      const [es, ns] = eastNorth(ra, dec);
      const cd = Math.cos(dec * DEG);
      // ds/dra = cosδ·E·DEG, ds/ddec = N·DEG
      const dsa: Vec3 = [es[0] * cd * DEG, es[1] * cd * DEG, es[2] * cd * DEG];
      const dsd: Vec3 = [ns[0] * DEG, ns[1] * DEG, ns[2] * DEG];
      const z = s[0] * c[0] + s[1] * c[1] + s[2] * c[2];
      const se = s[0] * e[0] + s[1] * e[1] + s[2] * e[2];
      const sn = s[0] * n[0] + s[1] * n[1] + s[2] * n[2];
      const d = (ds: Vec3): [number, number] => {
        const dz = ds[0] * c[0] + ds[1] * c[1] + ds[2] * c[2];
        const de = ds[0] * e[0] + ds[1] * e[1] + ds[2] * e[2];
        const dn = ds[0] * n[0] + ds[1] * n[1] + ds[2] * n[2];
        return [(de * z - se * dz) / (z * z), (dn * z - sn * dz) / (z * z)];
      };
      const [dxa, dya] = d(dsa);
      const [dxd, dyd] = d(dsd);
      return [-dxa * ARCSEC_PER_RAD, -dxd * ARCSEC_PER_RAD, dya * ARCSEC_PER_RAD, dyd * ARCSEC_PER_RAD];
    },
  };
}
