/**
 * Celestial WCS for Euclid VIS quadrants: TAN, TPV (TAN + PV polynomial on the intermediate
 * coordinates, the Euclid VIS convention) and TAN-SIP.
 *
 * Pixel convention of this API: 0-based (centre of the first pixel = (0, 0)), x along NAXIS1.
 * Headers use the FITS convention (first pixel centre = 1.0): CRPIX is kept as in the header and
 * `fitsToZeroBased` / `zeroBasedToFits` convert user-facing coordinates.
 *
 * World: (ra, dec) in degrees; local Jacobians in the engine's (u, v) convention (arcsec,
 * +u West = −ΔRA·cos δ, +v North) on the tangent plane at the source's own sky position.
 */
import { DataError } from '../../errors.ts';
import { evalSip, evalTpvAxis, makeSipPoly, TPV_NCOEF, type SipPoly } from './poly.ts';
import { ARCSEC_PER_RAD, DEG, eastNorth, skyToVec, vecToSky, type Vec3 } from './sphere.ts';

export type WcsKind = 'TAN' | 'TPV' | 'TAN-SIP';

/** [dudx, dudy, dvdx, dvdy] in arcsec / pixel. */
export type Jacobian = [number, number, number, number];

/** SIP coefficients as nested arrays: a[p][q] = A_p_q (missing entries are 0). */
export interface SipParams {
  a: number[][];
  b: number[][];
  /** Inverse polynomials AP_p_q / BP_p_q: used only as the first guess of the inverse. */
  ap?: number[][];
  bp?: number[][];
}

/** Everything that defines a WCS; all values as they would be written in the FITS header. */
export interface WcsParams {
  /** Default: 'TPV' when pv1/pv2 are given, 'TAN-SIP' when sip is given, else 'TAN'. */
  kind?: WcsKind;
  /** CRPIX1, CRPIX2 in the FITS convention (first pixel centre = 1.0). */
  crpix: [number, number];
  /** CRVAL1, CRVAL2 = (ra, dec) of the tangent point, degrees. */
  crval: [number, number];
  /** CD1_1, CD1_2, CD2_1, CD2_2 in degrees / pixel. */
  cd: [number, number, number, number];
  /** TPV coefficients PV1_k (index k = 0..39). Missing entries default to 0, except PV1_1 = 1. */
  pv1?: ArrayLike<number> | Record<number, number>;
  /** TPV coefficients PV2_k. Missing entries default to 0, except PV2_1 = 1. */
  pv2?: ArrayLike<number> | Record<number, number>;
  sip?: SipParams;
  /** LONPOLE (degrees); default 180 (0 when CRVAL2 = 90). */
  lonpole?: number;
  /** Image size (NAXIS1, NAXIS2) when known. */
  naxis?: [number, number];
  /** RADESYS (informational; default ICRS). */
  radesys?: string;
}

/** Minimal header access so the WCS does not depend on a particular FITS reader. */
export interface HeaderLike {
  get(key: string): unknown;
}

export interface SourceContext {
  file?: string;
  hdu?: string | number;
}

export interface InverseResult {
  x: number;
  y: number;
  converged: boolean;
  iterations: number;
}

/** Convert a FITS 1-based pixel coordinate to the engine's 0-based one. */
export function fitsToZeroBased(p: number): number {
  return p - 1;
}

/** Convert a 0-based pixel coordinate to FITS 1-based. */
export function zeroBasedToFits(p: number): number {
  return p + 1;
}

/** Convergence of the inverse (pixels). */
export const INVERSE_TOLERANCE_PX = 1e-10;
const MAX_NEWTON_ITER = 100;

function toCoefArray(src: ArrayLike<number> | Record<number, number> | undefined, one: boolean): Float64Array {
  const c = new Float64Array(TPV_NCOEF);
  if (one) c[1] = 1;
  if (!src) return c;
  if (typeof (src as ArrayLike<number>).length === 'number') {
    const a = src as ArrayLike<number>;
    for (let i = 0; i < Math.min(a.length, TPV_NCOEF); i++) c[i] = a[i] ?? 0;
  } else {
    for (const [k, v] of Object.entries(src as Record<number, number>)) {
      const i = Number(k);
      if (Number.isInteger(i) && i >= 0 && i < TPV_NCOEF) c[i] = v;
    }
  }
  return c;
}

function sipFromNested(a: number[][] | undefined): SipPoly | undefined {
  if (!a) return undefined;
  let order = 0;
  for (let p = 0; p < a.length; p++) {
    const row = a[p] ?? [];
    for (let q = 0; q < row.length; q++) if (row[q]) order = Math.max(order, p + q);
  }
  order = Math.max(order, a.length - 1);
  const poly = makeSipPoly(order);
  for (let p = 0; p < a.length; p++) {
    const row = a[p] ?? [];
    for (let q = 0; q < row.length && p + q <= order; q++) poly.coef[p * (order + 1) + q] = row[q] ?? 0;
  }
  return poly;
}

function sipToNested(poly: SipPoly): number[][] {
  const n = poly.order;
  const out: number[][] = [];
  for (let p = 0; p <= n; p++) {
    const row: number[] = [];
    for (let q = 0; q + p <= n; q++) row.push(poly.coef[p * (n + 1) + q]);
    out.push(row);
  }
  return out;
}

function lastNonZero(c: Float64Array): number {
  for (let i = c.length - 1; i >= 0; i--) if (c[i] !== 0) return i + 1;
  return 0;
}

export class Wcs {
  readonly kind: WcsKind;
  readonly crpix: [number, number];
  readonly crval: [number, number];
  readonly cd: [number, number, number, number];
  readonly lonpole: number;
  readonly naxis?: [number, number];
  readonly radesys: string;
  /** TPV coefficients (length 40), only for kind TPV. */
  readonly pv1: Float64Array;
  readonly pv2: Float64Array;
  private readonly n1: number;
  private readonly n2: number;
  private readonly sipA?: SipPoly;
  private readonly sipB?: SipPoly;
  private readonly sipAP?: SipPoly;
  private readonly sipBP?: SipPoly;
  private readonly cdInv: [number, number, number, number];
  /** Rotation: native vector (−η, ξ, 1) [radians] → celestial direction. Columns m0, m1, m2. */
  private readonly m0: Vec3;
  private readonly m1: Vec3;
  private readonly m2: Vec3;
  private readonly buf = new Float64Array(6);
  private readonly pbuf = new Float64Array(3);
  private readonly qbuf = new Float64Array(3);

  constructor(p: WcsParams) {
    const kind: WcsKind = p.kind ?? (p.pv1 || p.pv2 ? 'TPV' : p.sip ? 'TAN-SIP' : 'TAN');
    this.kind = kind;
    this.crpix = [p.crpix[0], p.crpix[1]];
    this.crval = [p.crval[0], p.crval[1]];
    this.cd = [p.cd[0], p.cd[1], p.cd[2], p.cd[3]];
    this.naxis = p.naxis ? [p.naxis[0], p.naxis[1]] : undefined;
    this.radesys = p.radesys ?? 'ICRS';
    for (const v of [...this.crpix, ...this.crval, ...this.cd]) {
      if (!Number.isFinite(v)) throw new DataError(`WCS parameter is not finite (${v})`, { key: 'CRPIX/CRVAL/CD' });
    }
    const det = this.cd[0] * this.cd[3] - this.cd[1] * this.cd[2];
    if (!(Math.abs(det) > 0) || !Number.isFinite(det)) {
      throw new DataError('CD matrix is singular', { key: 'CD1_1' });
    }
    this.cdInv = [this.cd[3] / det, -this.cd[1] / det, -this.cd[2] / det, this.cd[0] / det];
    this.lonpole = p.lonpole ?? (this.crval[1] >= 90 ? 0 : 180);
    this.pv1 = toCoefArray(kind === 'TPV' ? p.pv1 : undefined, true);
    this.pv2 = toCoefArray(kind === 'TPV' ? p.pv2 : undefined, true);
    this.n1 = lastNonZero(this.pv1);
    this.n2 = lastNonZero(this.pv2);
    if (kind === 'TAN-SIP') {
      if (!p.sip) throw new DataError('TAN-SIP WCS without SIP coefficients', { key: 'A_ORDER' });
      this.sipA = sipFromNested(p.sip.a);
      this.sipB = sipFromNested(p.sip.b);
      this.sipAP = sipFromNested(p.sip.ap);
      this.sipBP = sipFromNested(p.sip.bp);
    }
    // Native frame basis: native (1,0,0) ↦ −North, (0,1,0) ↦ East, (0,0,1) ↦ tangent point,
    // for LONPOLE = 180; a different LONPOLE rotates the native longitudes by β = 180° − φp.
    const c = skyToVec(this.crval[0], this.crval[1]);
    const [e, n] = eastNorth(this.crval[0], this.crval[1]);
    const b0: Vec3 = [-n[0], -n[1], -n[2]];
    const beta = (180 - this.lonpole) * DEG;
    const cb = Math.cos(beta);
    const sb = Math.sin(beta);
    this.m0 = [b0[0] * cb + e[0] * sb, b0[1] * cb + e[1] * sb, b0[2] * cb + e[2] * sb];
    this.m1 = [-b0[0] * sb + e[0] * cb, -b0[1] * sb + e[1] * cb, -b0[2] * sb + e[2] * cb];
    this.m2 = c;
  }

  /** The parameters that rebuild this WCS (and that `wcsHeaderCards` writes). */
  toParams(): WcsParams {
    const p: WcsParams = {
      kind: this.kind,
      crpix: [...this.crpix],
      crval: [...this.crval],
      cd: [...this.cd],
      lonpole: this.lonpole,
      radesys: this.radesys,
    };
    if (this.naxis) p.naxis = [...this.naxis];
    if (this.kind === 'TPV') {
      p.pv1 = Array.from(this.pv1);
      p.pv2 = Array.from(this.pv2);
    }
    if (this.kind === 'TAN-SIP') {
      p.sip = { a: sipToNested(this.sipA!), b: sipToNested(this.sipB!) };
      if (this.sipAP) p.sip.ap = sipToNested(this.sipAP);
      if (this.sipBP) p.sip.bp = sipToNested(this.sipBP);
    }
    return p;
  }

  /**
   * 0-based pixel → intermediate world coordinates (ξ, η) in degrees after distortion, and the
   * derivative matrix d(ξ, η)/d(x, y) (deg / pixel). Writes [ξ, η, dξ/dx, dξ/dy, dη/dx, dη/dy].
   */
  pixelToIntermediate(x: number, y: number, out: Float64Array = new Float64Array(6)): Float64Array {
    const dx = x + 1 - this.crpix[0];
    const dy = y + 1 - this.crpix[1];
    const [c11, c12, c21, c22] = this.cd;
    if (this.kind === 'TPV') {
      const xl = c11 * dx + c12 * dy;
      const yl = c21 * dx + c22 * dy;
      const p = this.pbuf;
      const q = this.qbuf;
      evalTpvAxis(this.pv1, this.n1, xl, yl, p); // ξ' and d/dξ, d/dη
      evalTpvAxis(this.pv2, this.n2, yl, xl, q); // η' and d/dη, d/dξ
      const a11 = p[1];
      const a12 = p[2];
      const a21 = q[2];
      const a22 = q[1];
      out[0] = p[0];
      out[1] = q[0];
      out[2] = a11 * c11 + a12 * c21;
      out[3] = a11 * c12 + a12 * c22;
      out[4] = a21 * c11 + a22 * c21;
      out[5] = a21 * c12 + a22 * c22;
    } else if (this.kind === 'TAN-SIP') {
      const p = this.pbuf;
      const q = this.qbuf;
      evalSip(this.sipA!, dx, dy, p);
      evalSip(this.sipB!, dx, dy, q);
      const U = dx + p[0];
      const V = dy + q[0];
      const d11 = 1 + p[1];
      const d12 = p[2];
      const d21 = q[1];
      const d22 = 1 + q[2];
      out[0] = c11 * U + c12 * V;
      out[1] = c21 * U + c22 * V;
      out[2] = c11 * d11 + c12 * d21;
      out[3] = c11 * d12 + c12 * d22;
      out[4] = c21 * d11 + c22 * d21;
      out[5] = c21 * d12 + c22 * d22;
    } else {
      out[0] = c11 * dx + c12 * dy;
      out[1] = c21 * dx + c22 * dy;
      out[2] = c11;
      out[3] = c12;
      out[4] = c21;
      out[5] = c22;
    }
    return out;
  }

  /** Celestial direction (not normalised) of intermediate coordinates (degrees). */
  private direction(xi: number, eta: number): Vec3 {
    const xr = xi * DEG;
    const yr = eta * DEG;
    const { m0, m1, m2 } = this;
    return [
      -yr * m0[0] + xr * m1[0] + m2[0],
      -yr * m0[1] + xr * m1[1] + m2[1],
      -yr * m0[2] + xr * m1[2] + m2[2],
    ];
  }

  /** Intermediate (ξ, η) in degrees → (ra, dec) in degrees (TAN deprojection). */
  intermediateToSky(xi: number, eta: number): [number, number] {
    return vecToSky(this.direction(xi, eta));
  }

  /** (ra, dec) → intermediate (ξ, η) in degrees; NaN for points 90° or more from CRVAL. */
  skyToIntermediate(ra: number, dec: number): [number, number] {
    const s = skyToVec(ra, dec);
    const { m0, m1, m2 } = this;
    const n0 = s[0] * m0[0] + s[1] * m0[1] + s[2] * m0[2];
    const n1 = s[0] * m1[0] + s[1] * m1[1] + s[2] * m1[2];
    const n2 = s[0] * m2[0] + s[1] * m2[1] + s[2] * m2[2];
    if (!(n2 > 0)) return [NaN, NaN];
    return [n1 / n2 / DEG, -n0 / n2 / DEG];
  }

  /** 0-based pixel → (ra, dec) degrees, ra in [0, 360). */
  pixelToSky(x: number, y: number): [number, number] {
    const b = this.pixelToIntermediate(x, y, this.buf);
    return this.intermediateToSky(b[0], b[1]);
  }

  /** FITS 1-based pixel → (ra, dec). */
  pixelToSkyFits(x: number, y: number): [number, number] {
    return this.pixelToSky(x - 1, y - 1);
  }

  /** (ra, dec) → 0-based pixel; [NaN, NaN] when the point is not on the projection's hemisphere
   *  or the iteration does not converge (see `skyToPixelDetailed`). */
  skyToPixel(ra: number, dec: number): [number, number] {
    const r = this.skyToPixelDetailed(ra, dec);
    return r.converged ? [r.x, r.y] : [NaN, NaN];
  }

  /** (ra, dec) → FITS 1-based pixel. */
  skyToPixelFits(ra: number, dec: number): [number, number] {
    const [x, y] = this.skyToPixel(ra, dec);
    return [x + 1, y + 1];
  }

  /** First guess of the inverse from the linear part (and SIP's AP/BP when present). */
  private initialGuess(xi: number, eta: number): [number, number] {
    let txi = xi;
    let teta = eta;
    if (this.kind === 'TPV') {
      // Invert the affine part of the polynomial: ξ' ≈ PV1_0 + PV1_1 ξ + PV1_2 η, η' ≈ PV2_0 + PV2_2 ξ + PV2_1 η.
      const a = this.pv1[1];
      const b = this.pv1[2];
      const c = this.pv2[2];
      const d = this.pv2[1];
      const det = a * d - b * c;
      if (Math.abs(det) > 1e-12) {
        const r0 = xi - this.pv1[0];
        const r1 = eta - this.pv2[0];
        txi = (d * r0 - b * r1) / det;
        teta = (-c * r0 + a * r1) / det;
      }
    }
    const [i11, i12, i21, i22] = this.cdInv;
    let u = i11 * txi + i12 * teta;
    let v = i21 * txi + i22 * teta;
    if (this.kind === 'TAN-SIP' && this.sipAP && this.sipBP) {
      const p = this.pbuf;
      const q = this.qbuf;
      evalSip(this.sipAP, u, v, p);
      evalSip(this.sipBP, u, v, q);
      if (Number.isFinite(p[0]) && Number.isFinite(q[0])) {
        u += p[0];
        v += q[0];
      }
    }
    return [u + this.crpix[0] - 1, v + this.crpix[1] - 1];
  }

  /**
   * Iterative inverse: damped Newton in pixel space with the analytic Jacobian, started from the
   * linear (or AP/BP) guess, converged when the step is below 1e-10 px.
   */
  skyToPixelDetailed(ra: number, dec: number): InverseResult {
    const [txi, teta] = this.skyToIntermediate(ra, dec);
    if (!Number.isFinite(txi) || !Number.isFinite(teta)) return { x: NaN, y: NaN, converged: false, iterations: 0 };
    let [x, y] = this.initialGuess(txi, teta);
    const b = this.buf;
    this.pixelToIntermediate(x, y, b);
    let fx = b[0] - txi;
    let fy = b[1] - teta;
    let norm = Math.hypot(fx, fy);
    for (let it = 1; it <= MAX_NEWTON_ITER; it++) {
      const det = b[2] * b[5] - b[3] * b[4];
      if (!(Math.abs(det) > 0) || !Number.isFinite(det)) break;
      const sx = (b[5] * fx - b[3] * fy) / det;
      const sy = (-b[4] * fx + b[2] * fy) / det;
      const stepLen = Math.hypot(sx, sy);
      if (!Number.isFinite(stepLen)) break;
      let lambda = 1;
      let nx = x - sx;
      let ny = y - sy;
      this.pixelToIntermediate(nx, ny, b);
      let gx = b[0] - txi;
      let gy = b[1] - teta;
      let gnorm = Math.hypot(gx, gy);
      // Backtracking only far from the solution (near it, round-off would stall the search).
      while (stepLen * lambda > 1e-6 && !(gnorm < norm) && lambda > 1e-6) {
        lambda *= 0.5;
        nx = x - lambda * sx;
        ny = y - lambda * sy;
        this.pixelToIntermediate(nx, ny, b);
        gx = b[0] - txi;
        gy = b[1] - teta;
        gnorm = Math.hypot(gx, gy);
      }
      x = nx;
      y = ny;
      fx = gx;
      fy = gy;
      norm = gnorm;
      if (stepLen * lambda <= INVERSE_TOLERANCE_PX) {
        return { x, y, converged: Number.isFinite(x) && Number.isFinite(y), iterations: it };
      }
    }
    return { x, y, converged: false, iterations: MAX_NEWTON_ITER };
  }

  /**
   * Local Jacobian [dudx, dudy, dvdx, dvdy] (arcsec / pixel) at 0-based (x, y), on the tangent
   * plane at that pixel's own sky position; +u West, +v North. Analytic.
   */
  localJacobian(x: number, y: number): Jacobian {
    const b = this.pixelToIntermediate(x, y, this.buf);
    const w = this.direction(b[0], b[1]);
    const wn = Math.hypot(w[0], w[1], w[2]);
    const [ra, dec] = vecToSky(w);
    const [E, N] = eastNorth(ra, dec);
    const { m0, m1 } = this;
    // dw/dξ = m1·DEG, dw/dη = −m0·DEG; d(unit)/dq · E = (dw/dq · E) / |w|.
    const k = (DEG * ARCSEC_PER_RAD) / wn;
    const e1 = m1[0] * E[0] + m1[1] * E[1] + m1[2] * E[2];
    const n1 = m1[0] * N[0] + m1[1] * N[1] + m1[2] * N[2];
    const e0 = m0[0] * E[0] + m0[1] * E[1] + m0[2] * E[2];
    const n0 = m0[0] * N[0] + m0[1] * N[1] + m0[2] * N[2];
    const duDxi = -e1 * k;
    const duDeta = e0 * k;
    const dvDxi = n1 * k;
    const dvDeta = -n0 * k;
    return [
      duDxi * b[2] + duDeta * b[4],
      duDxi * b[3] + duDeta * b[5],
      dvDxi * b[2] + dvDeta * b[4],
      dvDxi * b[3] + dvDeta * b[5],
    ];
  }

  /** Vectorised pixelToSky (0-based). */
  pixelToSkyArrays(xs: ArrayLike<number>, ys: ArrayLike<number>): { ra: Float64Array; dec: Float64Array } {
    const n = xs.length;
    const ra = new Float64Array(n);
    const dec = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = this.pixelToSky(xs[i], ys[i]);
      ra[i] = r[0];
      dec[i] = r[1];
    }
    return { ra, dec };
  }

  /** Vectorised skyToPixel (0-based; NaN where not converged). */
  skyToPixelArrays(ras: ArrayLike<number>, decs: ArrayLike<number>): { x: Float64Array; y: Float64Array } {
    const n = ras.length;
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = this.skyToPixel(ras[i], decs[i]);
      x[i] = r[0];
      y[i] = r[1];
    }
    return { x, y };
  }
}

/** Build a TPV WCS from parameters (crpix FITS 1-based, cd deg/px, pv1/pv2 coefficients). */
export function createTpvWcs(p: Omit<WcsParams, 'kind' | 'sip'>): Wcs {
  return new Wcs({ ...p, kind: 'TPV' });
}

/** Build a WCS of any kind from parameters. */
export function createWcs(p: WcsParams): Wcs {
  return new Wcs(p);
}

// ---------------------------------------------------------------------------------------------
// Header parsing

function num(h: HeaderLike, key: string, ctx: SourceContext): number | undefined {
  const v = h.get(key);
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    const t = v.trim().replace(/[dD]/, 'e');
    const n = Number(t);
    if (t !== '' && Number.isFinite(n)) return n;
  }
  throw new DataError(`expected a finite number, got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`, { ...ctx, key });
}

function requireNum(h: HeaderLike, key: string, ctx: SourceContext): number {
  const v = num(h, key, ctx);
  if (v === undefined) throw new DataError('missing WCS keyword', { ...ctx, key });
  if (!Number.isFinite(v)) throw new DataError(`WCS keyword is not finite (${v})`, { ...ctx, key });
  return v;
}

function str(h: HeaderLike, key: string): string | undefined {
  const v = h.get(key);
  if (v === undefined || v === null) return undefined;
  return String(v).trim();
}

function readSip(h: HeaderLike, letter: string, ctx: SourceContext, required: boolean): number[][] | undefined {
  const order = num(h, `${letter}_ORDER`, ctx);
  if (order === undefined) {
    if (required) throw new DataError('TAN-SIP header without the SIP order', { ...ctx, key: `${letter}_ORDER` });
    return undefined;
  }
  if (!Number.isInteger(order) || order < 0 || order > 20) {
    throw new DataError(`SIP order must be an integer in 0..20, got ${order}`, { ...ctx, key: `${letter}_ORDER` });
  }
  const out: number[][] = [];
  for (let p = 0; p <= order; p++) {
    const row: number[] = [];
    for (let q = 0; p + q <= order; q++) row.push(num(h, `${letter}_${p}_${q}`, ctx) ?? 0);
    out.push(row);
  }
  return out;
}

/**
 * Parse the celestial WCS of an image header. Supports CTYPE RA---TAN, RA---TPV, RA---TAN-SIP
 * (and DEC--*), CD or PC + CDELT (or CDELT + CROTA2), LONPOLE. Throws DataError naming the
 * file / HDU / key for anything missing or unsupported.
 */
export interface ParseWcsOptions {
  /**
   * A TAN header that carries PV1_k / PV2_k distortion keys (SCAMP's old convention): 'tpv'
   * (default) reads it as TPV, 'ignore' drops the PV keys (plain TAN), 'error' throws.
   * (astropy/wcslib refuse such headers.)
   */
  tanWithPv?: 'tpv' | 'ignore' | 'error';
  /** Receives warnings (CD keys missing and taken as 0, …), each naming the file, HDU and key. */
  warnings?: string[];
}

const fmtArcsec = (x: number) => x.toPrecision(3);

export function parseWcs(h: HeaderLike, ctx: SourceContext = {}, options: ParseWcsOptions = {}): Wcs {
  const c1 = str(h, 'CTYPE1');
  const c2 = str(h, 'CTYPE2');
  if (c1 === undefined) throw new DataError('missing WCS keyword', { ...ctx, key: 'CTYPE1' });
  if (c2 === undefined) throw new DataError('missing WCS keyword', { ...ctx, key: 'CTYPE2' });
  const m1 = /^RA--?-?-?([A-Z]{3})(-SIP)?$/.exec(c1.toUpperCase().replace(/\s+$/, ''));
  const m2 = /^DEC-?-?-?([A-Z]{3})(-SIP)?$/.exec(c2.toUpperCase().replace(/\s+$/, ''));
  if (!m1 || !m2) {
    throw new DataError(
      `unsupported CTYPE pair '${c1}', '${c2}' (supported: RA---TAN, RA---TPV, RA---TAN-SIP with DEC--… on axis 2)`,
      { ...ctx, key: !m1 ? 'CTYPE1' : 'CTYPE2' },
    );
  }
  const proj = m1[1];
  const sip = !!m1[2];
  if (proj !== m2[1] || sip !== !!m2[2]) {
    throw new DataError(`CTYPE1 '${c1}' and CTYPE2 '${c2}' disagree`, { ...ctx, key: 'CTYPE2' });
  }
  let kind: WcsKind;
  if (proj === 'TAN') {
    kind = sip ? 'TAN-SIP' : 'TAN';
    if (!sip) {
      let pvKey: string | undefined;
      for (let k = 0; k < TPV_NCOEF && !pvKey; k++) {
        for (const ax of [1, 2]) if (!pvKey && h.get(`PV${ax}_${k}`) !== undefined && h.get(`PV${ax}_${k}`) !== null) pvKey = `PV${ax}_${k}`;
      }
      const mode = options.tanWithPv ?? 'tpv';
      if (pvKey && mode === 'tpv') kind = 'TPV';
      else if (pvKey && mode === 'error') {
        throw new DataError(`CTYPE1 '${c1}' (TAN) with TPV-like distortion keys; use RA---TPV, or choose how to read it`, {
          ...ctx,
          key: pvKey,
        });
      }
    }
  }
  else if (proj === 'TPV' && !sip) kind = 'TPV';
  else throw new DataError(`unsupported projection '${c1}'`, { ...ctx, key: 'CTYPE1' });

  const crpix: [number, number] = [requireNum(h, 'CRPIX1', ctx), requireNum(h, 'CRPIX2', ctx)];
  const crval: [number, number] = [requireNum(h, 'CRVAL1', ctx), requireNum(h, 'CRVAL2', ctx)];
  for (const ax of [1, 2]) {
    const u = str(h, `CUNIT${ax}`);
    if (u !== undefined && u !== '' && u.toLowerCase() !== 'deg') {
      throw new DataError(`unsupported unit '${u}' (expected deg)`, { ...ctx, key: `CUNIT${ax}` });
    }
  }
  let cd: [number, number, number, number];
  const cdKeys = ['CD1_1', 'CD1_2', 'CD2_1', 'CD2_2'];
  const cdVals = cdKeys.map((k) => num(h, k, ctx));
  if (cdVals.some((v) => v !== undefined)) {
    cd = cdVals.map((v) => v ?? 0) as [number, number, number, number];
    const missing = cdKeys.filter((_, i) => cdVals[i] === undefined);
    if (missing.length) {
      // the FITS standard (WCS paper I §2.1.2) takes a missing CDi_j as 0: allowed, but say so
      const det = cd[0] * cd[3] - cd[1] * cd[2];
      if (!(Math.abs(det) > 0)) {
        throw new DataError(`CD matrix is singular: ${missing.join(', ')} missing (taken as 0, as the FITS standard says)`, { ...ctx, key: missing[0] });
      }
      const s1 = Math.hypot(cd[0], cd[2]) * 3600;
      const s2 = Math.hypot(cd[1], cd[3]) * 3600;
      const angle = (Math.acos(Math.min(1, Math.abs(cd[0] * cd[1] + cd[2] * cd[3]) / (Math.hypot(cd[0], cd[2]) * Math.hypot(cd[1], cd[3])))) * 180) / Math.PI;
      const distorted = Math.max(s1, s2) / Math.min(s1, s2) > 1.1 || angle < 80;
      const where = [ctx.file !== undefined ? `file ${ctx.file}` : '', ctx.hdu !== undefined ? `HDU ${ctx.hdu}` : '', `key ${missing[0]}`].filter(Boolean).join(', ');
      options.warnings?.push(
        `${where}: ${missing.join(', ')} missing, taken as 0 (FITS standard)` +
          (distorted ? `; the footprint is distorted: pixel axes ${fmtArcsec(s1)}″ and ${fmtArcsec(s2)}″ long at ${angle.toFixed(1)}° — check the header` : ''),
      );
    }
  } else {
    const cdelt1 = num(h, 'CDELT1', ctx);
    const cdelt2 = num(h, 'CDELT2', ctx);
    if (cdelt1 === undefined || cdelt2 === undefined) {
      throw new DataError('missing WCS keyword (neither CD nor CDELT given)', {
        ...ctx,
        key: cdelt1 === undefined ? 'CD1_1' : 'CDELT2',
      });
    }
    const pcVals = ['PC1_1', 'PC1_2', 'PC2_1', 'PC2_2'].map((k) => num(h, k, ctx));
    const crota = num(h, 'CROTA2', ctx);
    if (pcVals.some((v) => v !== undefined)) {
      const [p11, p12, p21, p22] = [pcVals[0] ?? 1, pcVals[1] ?? 0, pcVals[2] ?? 0, pcVals[3] ?? 1];
      cd = [cdelt1 * p11, cdelt1 * p12, cdelt2 * p21, cdelt2 * p22];
    } else if (crota !== undefined) {
      const r = crota * DEG;
      cd = [cdelt1 * Math.cos(r), -cdelt2 * Math.sin(r), cdelt1 * Math.sin(r), cdelt2 * Math.cos(r)];
    } else {
      cd = [cdelt1, 0, 0, cdelt2];
    }
  }
  const params: WcsParams = { kind, crpix, crval, cd };
  const lonpole = num(h, 'LONPOLE', ctx);
  if (lonpole !== undefined) params.lonpole = lonpole;
  const radesys = str(h, 'RADESYS') ?? str(h, 'RADECSYS');
  if (radesys) params.radesys = radesys;
  const n1 = num(h, 'NAXIS1', ctx);
  const n2 = num(h, 'NAXIS2', ctx);
  if (n1 !== undefined && n2 !== undefined) params.naxis = [n1, n2];
  if (kind === 'TPV') {
    const pv1: Record<number, number> = {};
    const pv2: Record<number, number> = {};
    for (let k = 0; k < TPV_NCOEF; k++) {
      const a = num(h, `PV1_${k}`, ctx);
      const b = num(h, `PV2_${k}`, ctx);
      if (a !== undefined) pv1[k] = a;
      if (b !== undefined) pv2[k] = b;
    }
    params.pv1 = pv1;
    params.pv2 = pv2;
  }
  if (kind === 'TAN-SIP') {
    params.sip = {
      a: readSip(h, 'A', ctx, true)!,
      b: readSip(h, 'B', ctx, true)!,
      ap: readSip(h, 'AP', ctx, false),
      bp: readSip(h, 'BP', ctx, false),
    };
  }
  try {
    return new Wcs(params);
  } catch (e) {
    if (e instanceof DataError) throw new DataError(e.message.replace(/^key [^:]*: /, ''), { ...ctx, key: e.context.key });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Header emission

export type HeaderCard = [key: string, value: number | string, comment: string];

/**
 * Header cards that describe `wcs` (CTYPE, CRPIX, CRVAL, CD, LONPOLE, RADESYS, and the PV or
 * SIP coefficients). TPV writes PV1_0..PV1_10 and PV2_0..PV2_10 (the Euclid VIS layout) plus any
 * higher non-zero coefficient.
 */
export function wcsHeaderCards(wcs: Wcs): HeaderCard[] {
  const suffix = wcs.kind === 'TPV' ? 'TPV' : wcs.kind === 'TAN-SIP' ? 'TAN-SIP' : 'TAN';
  const cards: HeaderCard[] = [
    ['WCSAXES', 2, 'number of WCS axes'],
    ['CTYPE1', `RA---${suffix}`, 'right ascension, gnomonic projection'],
    ['CTYPE2', `DEC--${suffix}`, 'declination, gnomonic projection'],
    ['CUNIT1', 'deg', ''],
    ['CUNIT2', 'deg', ''],
    ['CRPIX1', wcs.crpix[0], 'reference pixel (FITS convention)'],
    ['CRPIX2', wcs.crpix[1], 'reference pixel (FITS convention)'],
    ['CRVAL1', wcs.crval[0], '[deg] RA of the tangent point'],
    ['CRVAL2', wcs.crval[1], '[deg] Dec of the tangent point'],
    ['CD1_1', wcs.cd[0], '[deg/pixel]'],
    ['CD1_2', wcs.cd[1], '[deg/pixel]'],
    ['CD2_1', wcs.cd[2], '[deg/pixel]'],
    ['CD2_2', wcs.cd[3], '[deg/pixel]'],
    ['LONPOLE', wcs.lonpole, '[deg] native longitude of the celestial pole'],
    ['RADESYS', wcs.radesys, 'reference frame'],
  ];
  if (wcs.radesys === 'FK5' || wcs.radesys === 'FK4') cards.push(['EQUINOX', wcs.radesys === 'FK5' ? 2000 : 1950, '']);
  if (wcs.kind === 'TPV') {
    for (const [axis, c] of [
      [1, wcs.pv1],
      [2, wcs.pv2],
    ] as const) {
      const n = Math.max(11, lastNonZero(c));
      for (let k = 0; k < n; k++) cards.push([`PV${axis}_${k}`, c[k], 'TPV distortion coefficient']);
    }
  }
  if (wcs.kind === 'TAN-SIP') {
    const sip = wcs.toParams().sip!;
    const emit = (letter: string, a: number[][] | undefined) => {
      if (!a) return;
      const order = a.length - 1;
      cards.push([`${letter}_ORDER`, order, 'SIP polynomial order']);
      for (let p = 0; p <= order; p++) {
        for (let q = 0; p + q <= order; q++) {
          const v = a[p]?.[q] ?? 0;
          if (v !== 0) cards.push([`${letter}_${p}_${q}`, v, 'SIP coefficient']);
        }
      }
    };
    emit('A', sip.a);
    emit('B', sip.b);
    emit('AP', sip.ap);
    emit('BP', sip.bp);
  }
  return cards;
}

/** Alias for TPV WCSs (same output as wcsHeaderCards). */
export function tpvHeaderCards(wcs: Wcs): HeaderCard[] {
  if (wcs.kind !== 'TPV') throw new DataError(`tpvHeaderCards needs a TPV WCS, got ${wcs.kind}`);
  return wcsHeaderCards(wcs);
}

/** A HeaderLike over a plain object or a list of cards (tests, simulator). */
export function headerFromCards(cards: Iterable<readonly [string, unknown, ...unknown[]]> | Record<string, unknown>): HeaderLike {
  const m = new Map<string, unknown>();
  if (Symbol.iterator in (cards as object)) {
    for (const c of cards as Iterable<readonly [string, unknown]>) m.set(c[0].toUpperCase(), c[1]);
  } else {
    for (const [k, v] of Object.entries(cards as Record<string, unknown>)) m.set(k.toUpperCase(), v);
  }
  return { get: (k: string) => m.get(k.toUpperCase()) };
}

// ---------------------------------------------------------------------------------------------
// Footprints

/**
 * Sky positions of the four outer corners of a width × height image (pixel edges, i.e. 0-based
 * (−0.5, −0.5), (w − 0.5, −0.5), (w − 0.5, h − 0.5), (−0.5, h − 0.5)), in that order.
 */
export function quadrantCornersSky(wcs: Wcs, width: number, height: number): Array<[number, number]> {
  return [
    wcs.pixelToSky(-0.5, -0.5),
    wcs.pixelToSky(width - 0.5, -0.5),
    wcs.pixelToSky(width - 0.5, height - 0.5),
    wcs.pixelToSky(-0.5, height - 0.5),
  ];
}

/**
 * Sky polygon of the image outline with `perEdge` points along each edge (counter-clockwise in
 * pixel space, starting at the (−0.5, −0.5) corner); catches curvature from the distortion.
 */
export function footprintSky(wcs: Wcs, width: number, height: number, perEdge = 4): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const x0 = -0.5;
  const y0 = -0.5;
  const x1 = width - 0.5;
  const y1 = height - 0.5;
  const n = Math.max(1, Math.floor(perEdge));
  for (let i = 0; i < n; i++) out.push(wcs.pixelToSky(x0 + ((x1 - x0) * i) / n, y0));
  for (let i = 0; i < n; i++) out.push(wcs.pixelToSky(x1, y0 + ((y1 - y0) * i) / n));
  for (let i = 0; i < n; i++) out.push(wcs.pixelToSky(x1 - ((x1 - x0) * i) / n, y1));
  for (let i = 0; i < n; i++) out.push(wcs.pixelToSky(x0, y1 - ((y1 - y0) * i) / n));
  return out;
}
