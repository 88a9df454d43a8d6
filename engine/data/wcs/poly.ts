/**
 * Distortion polynomials: TPV (PVi_0 … PVi_39 on intermediate coordinates in degrees) and
 * SIP (A_p_q / B_p_q on pixel offsets from CRPIX), each with its analytic derivative.
 */

/** TPV term k = x^px · y^py, or r^pr for the radial terms (px = py = −1). */
interface TpvTerm {
  px: number;
  py: number;
  pr: number;
}

function buildTpvTerms(): TpvTerm[] {
  const t: TpvTerm[] = [];
  const mono = (deg: number) => {
    for (let j = 0; j <= deg; j++) t.push({ px: deg - j, py: j, pr: 0 });
  };
  const radial = (n: number) => t.push({ px: -1, py: -1, pr: n });
  mono(0); // 0
  mono(1); // 1, 2
  radial(1); // 3
  mono(2); // 4..6
  mono(3); // 7..10
  radial(3); // 11
  mono(4); // 12..16
  mono(5); // 17..22
  radial(5); // 23
  mono(6); // 24..30
  mono(7); // 31..38
  radial(7); // 39
  return t;
}

/** The 40 TPV terms in the order of the convention (index = PV parameter number). */
export const TPV_TERMS: readonly TpvTerm[] = buildTpvTerms();
export const TPV_NCOEF = 40;

/** Powers 0..n of a value into a preallocated array. */
function powers(out: Float64Array, x: number, n: number): void {
  out[0] = 1;
  for (let i = 1; i <= n; i++) out[i] = out[i - 1] * x;
}

const PX = new Float64Array(8);
const PY = new Float64Array(8);

/**
 * Evaluate Σ c_k term_k(a, b) and its partial derivatives with respect to a and b.
 * For TPV axis 1 call with (a, b) = (ξ, η); for axis 2 with (a, b) = (η, ξ) (the convention
 * swaps the roles of ξ and η in PV2_*). `nmax` = highest non-zero index + 1.
 */
export function evalTpvAxis(c: Float64Array, nmax: number, a: number, b: number, out: Float64Array): void {
  powers(PX, a, 7);
  powers(PY, b, 7);
  const r = Math.hypot(a, b);
  let f = 0;
  let fa = 0;
  let fb = 0;
  for (let k = 0; k < nmax; k++) {
    const ck = c[k];
    if (ck === 0) continue;
    const t = TPV_TERMS[k];
    if (t.pr > 0) {
      const n = t.pr;
      const rn = Math.pow(r, n);
      f += ck * rn;
      // d r^n / da = n r^(n−2) a ; at r = 0 the derivative of r (n = 1) is undefined: use 0.
      if (r > 0) {
        const g = n * Math.pow(r, n - 2);
        fa += ck * g * a;
        fb += ck * g * b;
      }
    } else {
      f += ck * PX[t.px] * PY[t.py];
      if (t.px > 0) fa += ck * t.px * PX[t.px - 1] * PY[t.py];
      if (t.py > 0) fb += ck * t.py * PX[t.px] * PY[t.py - 1];
    }
  }
  out[0] = f;
  out[1] = fa;
  out[2] = fb;
}

/** SIP polynomial Σ_{p+q ≤ order} coef[p][q] u^p v^q, stored dense (order+1)². */
export interface SipPoly {
  order: number;
  /** coef[p * (order + 1) + q] = A_p_q. */
  coef: Float64Array;
}

export function makeSipPoly(order: number): SipPoly {
  return { order, coef: new Float64Array((order + 1) * (order + 1)) };
}

const SU = new Float64Array(32);
const SV = new Float64Array(32);

/** Evaluate a SIP polynomial and its derivatives d/du, d/dv into out[0..2]. */
export function evalSip(poly: SipPoly, u: number, v: number, out: Float64Array): void {
  const n = poly.order;
  const su = n + 1 <= 32 ? SU : new Float64Array(n + 1);
  const sv = n + 1 <= 32 ? SV : new Float64Array(n + 1);
  powers(su, u, n);
  powers(sv, v, n);
  let f = 0;
  let fu = 0;
  let fv = 0;
  for (let p = 0; p <= n; p++) {
    for (let q = 0; q + p <= n; q++) {
      const c = poly.coef[p * (n + 1) + q];
      if (c === 0) continue;
      f += c * su[p] * sv[q];
      if (p > 0) fu += c * p * su[p - 1] * sv[q];
      if (q > 0) fv += c * q * su[p] * sv[q - 1];
    }
  }
  out[0] = f;
  out[1] = fu;
  out[2] = fv;
}
