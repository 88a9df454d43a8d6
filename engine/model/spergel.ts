/**
 * The Spergel galaxy profile (Spergel 2010, ApJS 191, 58; GalSim `Spergel`), pure float64.
 *
 * With index ν, scale radius r0 and flux F, in GalSim's conventions (src/SBSpergel.cpp):
 *
 *   I(r) = F / (2π r0² Γ(ν+1)) · (u/2)^ν K_ν(u),   u = r / r0          (surface brightness)
 *   Ĝ(k) = F · (1 + r0² |k|²)^(−(1+ν))                                  (GalSim `kValue`)
 *   L(u) = 1 − 2 (u/2)^(ν+1) K_(ν+1)(u) / Γ(ν+1)
 *        = 1 − u^(ν+1) K_(ν+1)(u) / (2^ν Γ(ν+1))                        (flux inside r = u·r0, /F)
 *
 * K_ν is the modified Bessel function of the second kind. ν = ½ is the exponential:
 * (u/2)^½ K_½(u) = (√π/2) e^{−u} and Γ(3/2) = √π/2 reduce I to F/(2π r0²) e^{−u}, and Ĝ is
 * (1 + r0²k²)^(−3/2).
 * Smaller ν are cuspier with wider wings (ν ≈ −0.6 resembles a de Vaucouleurs profile near the
 * half-light radius); I diverges at r = 0 for ν ≤ 0 (integrably). GalSim allows −0.85 ≤ ν ≤ 4;
 * so does this module.
 *
 * The half-light radius h = c_ν · r0, where c_ν solves L(c_ν) = ½ (`spergelHlrOverR0`; GalSim's
 * `SpergelCalculateHLR`). It is solved by safeguarded Newton iterations with L'(u) =
 * u^(ν+1) K_ν(u) / (2^ν Γ(ν+1)) (from d/du[u^μ K_μ(u)] = −u^μ K_(μ−1)(u)) to ≤ 1e-14 relative,
 * and the result is limited by K and Γ (both ~1e-15): far below the 1e-8 asked for. At ν = ½ it
 * returns the exponential's EXP_HLR_OVER_R0 = 1.6783469900166605 exactly (the solver gives the same
 * number to ~1e-16), so that a Spergel ν = ½ model is bit-identical to the exponential.
 *
 * Numerics (no external library):
 * - K_ν(x) for real ν and x > 0 from the integral representation
 *     K_ν(x) = ∫_0^∞ e^{−x cosh t} cosh(νt) dt
 *   by the trapezoidal rule with step h = 1/8. The integrand is entire in t and, in the strip
 *   |Im t| < π/2, decays doubly exponentially, so the trapezoidal error falls like e^{−π²/h}
 *   (e^{−79} at h = 1/8: far below double rounding; no cancellation, every term is positive); the sum stops once terms are below 1e-18
 *   of it past the integrand's peak. This one route covers every order and argument the profile
 *   needs (orders ν and ν+1 ∈ [−0.85, 5], arguments 1e-8 … 700).
 * - Γ by the Lanczos approximation (g = 7, 9 terms), ~1e-15 relative, with reflection below ½.
 * test/model/spergel.test.ts checks K against closed forms (half-integer orders), tables
 * (K_0, K_1), Airy-function identities (orders ⅓, ⅔) and an independent power series, and c_ν
 * against a numerical integration of I(r) and GalSim's published scale radii.
 */
import { EXP_HLR_OVER_R0 } from './galsim.ts';

/** GalSim's range of the Spergel index. */
export const SPERGEL_NU_MIN = -0.85;
export const SPERGEL_NU_MAX = 4;


const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** Γ(x) for real x (not a non-positive integer). Lanczos g = 7, ~1e-15 relative. */
export function gamma(x: number): number {
  if (x < 0.5) return Math.PI / (Math.sin(Math.PI * x) * gamma(1 - x));
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (z + i);
  return Math.sqrt(2 * Math.PI) * Math.pow(t, z + 0.5) * Math.exp(-t) * a;
}

/**
 * Modified Bessel function of the second kind K_ν(x), real order ν, x > 0
 * (trapezoidal rule on ∫_0^∞ e^{−x cosh t} cosh(νt) dt, step 1/8; see the header).
 */
export function besselK(nu: number, x: number): number {
  if (!(x > 0)) throw new RangeError(`besselK: x = ${x} must be > 0`);
  const a = Math.abs(nu);
  // step: 1/8, or finer for large x where the integrand is a Gaussian of width ~1/√x near t = 0
  const h = Math.min(0.125, 0.5 / Math.sqrt(x));
  // Terms evaluated directly (no log domain: that would cost ~1e-14 at large |ν|/x). They
  // overflow only where K_ν itself exceeds the double range (|ν| ≳ 4 at x ≲ 1e-60).
  const tPeak = a > 0 ? Math.asinh(a / x) : 0; // the integrand's maximum: x sinh t ≈ |ν|
  let sum = 0.5 * Math.exp(-x);
  for (let j = 1; j < 100000; j++) {
    const t = j * h;
    const v = Math.exp(-x * Math.cosh(t)) * Math.cosh(a * t);
    sum += v;
    if (t > tPeak && (v < 1e-18 * sum || v === 0)) break;
  }
  return h * sum;
}

function checkNu(nu: number): void {
  if (!(Number.isFinite(nu) && nu >= SPERGEL_NU_MIN && nu <= SPERGEL_NU_MAX)) {
    throw new RangeError(`Spergel index nu = ${nu} must be in [${SPERGEL_NU_MIN}, ${SPERGEL_NU_MAX}] (GalSim's range)`);
  }
}

/** 1 − L(u): the fraction of a Spergel profile's flux outside r = u·r0, u^(ν+1) K_(ν+1)(u) / (2^ν Γ(ν+1)). */
export function spergelMissingFlux(nu: number, u: number): number {
  if (u <= 0) return 1;
  const v = (Math.exp((nu + 1) * Math.log(u) - nu * Math.LN2) * besselK(nu + 1, u)) / gamma(nu + 1);
  return Number.isFinite(v) ? v : 1; // u → 0 where K_(ν+1) overflows: everything is outside
}

/** L(u): the fraction of a Spergel profile's flux inside r = u·r0. */
export function spergelEnclosedFlux(nu: number, u: number): number {
  return 1 - spergelMissingFlux(nu, u);
}

/** dL/du = u^(ν+1) K_ν(u) / (2^ν Γ(ν+1)) (2π u times the unit-flux, unit-r0 profile). */
function enclosedFluxDerivative(nu: number, u: number): number {
  return Math.exp((nu + 1) * Math.log(u) - nu * Math.LN2) * besselK(nu, u) / gamma(nu + 1);
}

/**
 * Radius u (in units of r0) outside which a fraction `missing` of the flux lies: 1 − L(u) = missing
 * (missing = ½ gives the half-light radius c_ν; 1e-5 a stamp radius). Safeguarded Newton on ln u.
 */
export function spergelFluxRadius(nu: number, missing: number): number {
  checkNu(nu);
  return spergelFluxRadiusUnchecked(nu, missing);
}

function spergelFluxRadiusUnchecked(nu: number, missing: number): number {
  if (!(missing > 0 && missing < 1)) throw new RangeError(`spergelFluxRadius: missing fraction ${missing} must be in (0, 1)`);
  // bracket in u: 1 − L decreases from 1 (u → 0) to 0 (u → ∞)
  let lo = 1e-12;
  let hi = 1;
  while (spergelMissingFlux(nu, hi) > missing) {
    lo = hi;
    hi *= 2;
  }
  let u = Math.sqrt(lo * hi);
  for (let it = 0; it < 200; it++) {
    const f = spergelMissingFlux(nu, u) - missing;
    if (f > 0) lo = u;
    else hi = u;
    // Newton step in u: d(1 − L)/du = −L'(u)
    let next = u + f / enclosedFluxDerivative(nu, u);
    if (!(next > lo && next < hi)) next = Math.sqrt(lo * hi);
    if (Math.abs(next - u) <= 1e-15 * u || hi - lo <= 1e-15 * u) return next;
    u = next;
  }
  return u;
}

const hlrCache = new Map<number, number>();

/** c_ν = h / r0 of a Spergel profile of index ν: the root of L(c) = ½ (EXP_HLR_OVER_R0 at ν = ½). */
export function spergelHlrOverR0(nu: number): number {
  checkNu(nu);
  if (nu === 0.5) return EXP_HLR_OVER_R0;
  let c = hlrCache.get(nu);
  if (c === undefined) {
    c = spergelFluxRadius(nu, 0.5);
    hlrCache.set(nu, c);
  }
  return c;
}

/** Fourier transform of a Spergel profile at |k|² = k2: F (1 + r0² k²)^(−(1+ν)). */
export function spergelKValue(flux: number, r0: number, nu: number, k2: number): number {
  return flux * Math.pow(1 + r0 * r0 * k2, -(1 + nu));
}

/** Surface brightness at |x|² = r2: F / (2π r0² Γ(ν+1)) · (u/2)^ν K_ν(u), u = r/r0 (∞ at r = 0 for ν ≤ 0). */
export function spergelXValue(flux: number, r0: number, nu: number, r2: number): number {
  const u = Math.sqrt(r2) / r0;
  const norm = flux / (2 * Math.PI * r0 * r0 * gamma(nu + 1));
  if (u === 0) return nu > 0 ? (norm * gamma(nu)) / 2 : Infinity; // (u/2)^ν K_ν(u) → Γ(ν)/2
  return norm * Math.pow(u / 2, nu) * besselK(nu, u);
}

// ---------------------------------------------------------------------------------------------
// ν free: derivatives in ν

/**
 * Digamma ψ(x) = Γ'(x)/Γ(x), x > 0: upward recurrence ψ(x) = ψ(x+1) − 1/x to x ≥ 10, then the
 * asymptotic series ln x − 1/(2x) − Σ B_2k / (2k x^2k) (7 terms: < 1e-16 at x ≥ 10).
 */
export function digamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`digamma: x = ${x} must be > 0`);
  let acc = 0;
  while (x < 10) {
    acc -= 1 / x;
    x += 1;
  }
  const x2 = 1 / (x * x);
  // B2/2 = 1/12, B4/4 = −1/120, B6/6 = 1/252, B8/8 = −1/240, B10/10 = 1/132, B12/12 = −691/32760, B14/14 = 1/12
  const series = x2 * (1 / 12 - x2 * (1 / 120 - x2 * (1 / 252 - x2 * (1 / 240 - x2 * (1 / 132 - x2 * (691 / 32760 - x2 / 12))))));
  return acc + Math.log(x) - 0.5 / x - series;
}

/**
 * ∂K_ν(x)/∂ν = ∫_0^∞ e^{−x cosh t} t sinh(νt) dt (differentiating the integral representation
 * under the integral sign), by the same trapezoidal rule as besselK: the integrand is entire and
 * decays doubly exponentially in the same strip, so the error is again far below double rounding.
 */
export function besselKDerivNu(nu: number, x: number): number {
  if (!(x > 0)) throw new RangeError(`besselKDerivNu: x = ${x} must be > 0`);
  if (nu === 0) return 0; // K is even in ν
  const a = Math.abs(nu);
  const h = Math.min(0.125, 0.5 / Math.sqrt(x));
  const tPeak = Math.asinh((a + 1) / x);
  let sum = 0; // the t = 0 term is 0
  for (let j = 1; j < 100000; j++) {
    const t = j * h;
    const v = Math.exp(-x * Math.cosh(t)) * t * Math.sinh(a * t);
    sum += v;
    if (t > tPeak && (v < 1e-18 * sum || v === 0)) break;
  }
  return Math.sign(nu) * h * sum;
}

/**
 * dc_ν/dν, exactly, by the implicit function theorem on M(ν, c) = ½ with
 * M(ν, u) = u^(ν+1) K_(ν+1)(u) / (2^ν Γ(ν+1)) (the flux fraction outside u·r0):
 *   ∂M/∂ν = M·(ln u − ln 2 − ψ(ν+1)) + u^(ν+1) ∂_μK_μ(u)|_(μ=ν+1) / (2^ν Γ(ν+1)),
 *   ∂M/∂u = −u^(ν+1) K_ν(u) / (2^ν Γ(ν+1)),
 *   dc/dν = −(∂M/∂ν) / (∂M/∂u).
 */
export function spergelHlrOverR0Derivative(nu: number): number {
  return hlrDerivativeAt(nu, spergelHlrOverR0(nu));
}

function hlrDerivativeAt(nu: number, c: number): number {
  const pre = Math.exp((nu + 1) * Math.log(c) - nu * Math.LN2) / gamma(nu + 1);
  const M = pre * besselK(nu + 1, c);
  const dMdnu = M * (Math.log(c) - Math.LN2 - digamma(nu + 1)) + pre * besselKDerivNu(nu + 1, c);
  const dMdu = -pre * besselK(nu, c);
  return -dMdnu / dMdu;
}

/**
 * The c_ν table is uniform in s = ln(1 + ν), of y = ln c_ν: c_ν falls roughly like (1 + ν)² as
 * ν → −1, so y(s) is nearly linear there and a cubic Hermite interpolant is accurate over the whole
 * range (it is not, in ν and c directly: 1e-6 near ν = −0.85). Step 1/128: 450 nodes.
 */
const TABLE_STEP = 1 / 128;
const S_MIN = Math.log(1 + SPERGEL_NU_MIN);
const S_MAX = Math.log(1 + SPERGEL_NU_MAX);
let table: { y: Float64Array; dy: Float64Array } | null = null;

function hlrTable(): { y: Float64Array; dy: Float64Array } {
  if (table) return table;
  const n = Math.ceil((S_MAX - S_MIN) / TABLE_STEP) + 1;
  const y = new Float64Array(n);
  const dy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    // nodes past ν = 4 (the last one) only bracket the range: the solver accepts them
    const nu = Math.exp(S_MIN + i * TABLE_STEP) - 1;
    const c = spergelFluxRadiusUnchecked(nu, 0.5);
    y[i] = Math.log(c);
    // dy/ds = (dc/dν / c)·(1 + ν)
    dy[i] = (hlrDerivativeAt(nu, c) / c) * (1 + nu);
  }
  table = { y, dy };
  return table;
}

/**
 * c_ν = h / r0 and its derivative dc/dν for a free Spergel index, from a table of the exact
 * solution (the root of L(c) = ½, as spergelHlrOverR0) and its exact derivative
 * (spergelHlrOverR0Derivative) joined by cubic Hermite interpolation of ln c_ν in ln(1 + ν):
 * c to ~1e-11 relative (test/model/spergel-nu.test.ts measures it against the direct solve and
 * against mpmath), and `dc` is the exact derivative of the interpolant, so the gradient in ν is
 * that of the very c_ν the renderer uses. The table (450 solves) is built on first use, ~0.1 s.
 */
export function spergelHlrOverR0Table(nu: number): { c: number; dc: number } {
  checkNu(nu);
  const { y, dy } = hlrTable();
  const s = Math.log(1 + nu);
  const x = (s - S_MIN) / TABLE_STEP;
  const i = Math.max(0, Math.min(y.length - 2, Math.floor(x)));
  const t = x - i;
  const h = TABLE_STEP;
  const t2 = t * t;
  const t3 = t2 * t;
  const val = (2 * t3 - 3 * t2 + 1) * y[i] + (t3 - 2 * t2 + t) * h * dy[i] + (-2 * t3 + 3 * t2) * y[i + 1] + (t3 - t2) * h * dy[i + 1];
  // dy/ds of the interpolant, then dc/dν = c · dy/ds / (1 + ν)
  const dval = ((6 * t2 - 6 * t) * y[i] + (3 * t2 - 4 * t + 1) * h * dy[i] + (-6 * t2 + 6 * t) * y[i + 1] + (3 * t2 - 2 * t) * h * dy[i + 1]) / h;
  const c = Math.exp(val);
  return { c, dc: (c * dval) / (1 + nu) };
}
