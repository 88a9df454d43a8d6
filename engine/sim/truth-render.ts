/**
 * The simulator's truth renderer: float64, independent of the engine (it shares no code with
 * engine/gpu/ or engine/reference/), and more exact than the engine by
 * construction, so that end-to-end tests do not commit the "inverse crime".
 *
 * For one object seen in one quadrant it computes the pixel values
 *
 *   I[n] = ∫ pix(x − n) · (object ⊗ PSF)(x) d²x      (n = 0-based pixel centres)
 *
 * exactly up to three controlled truncations:
 *  1. Fourier aliasing: the sampled image's DTFT is Σ_m Ŝ(k + 2πm); we sum the aliases m
 *     explicitly until the PSF·pixel envelope is below `aliasTol` (no band-limit assumption —
 *     the VIS PSF is undersampled, so this matters);
 *  2. the stamp holds the profile to `fluxTol` of its flux (default 1e-5; the radius comes from
 *     the exponential's or Spergel's cumulative profile, the object's shear and the PSF's widest
 *     component);
 *  3. the FFT grid is ≥ `oversample` (default 1.5, rounded up to an even 2^a 3^b 5^c) × the
 *     stamp, and at least (stamp radius + output radius + 2): the periodic copies of the profile
 *     that the inverse FFT implies lie entirely outside the returned stamp (wrap-around error
 *     below the profile's surface brightness at its own fluxTol radius, ~1e-6 of the peak for the
 *     default); test/sim checks that oversample 4 agrees with the default to 1e-9 of the peak.
 *     The engine, by contrast, renders on SHINE's fixed 64/128/256 stamps with a 2× FFT,
 *     truncating the profile and the PSF at the stamp edge.
 *
 * Continuous model in world coordinates (u, v) arcsec (+u West, +v North):
 *   exponential galaxy, FT  F (1 + r0² |Aᵀq|²)^(−3/2),  r0 = hlr / 1.6783469900166605,
 *   Spergel galaxy of index ν, FT  F (1 + r0² |Aᵀq|²)^(−(1+ν)),  r0 = hlr / c_ν (the caller's),
 *   A = S(g) · S(g_e) (intrinsic shape then shear, GalSim's gal.shear(e).shear(g));
 *   point source: FT F;
 *   PSF: analytic Gaussian mixture (./psf-model.ts), FT exp(−½ qᵀ C q) per component.
 * Pixel frame: q = J⁻ᵀ k with J the LOCAL Jacobian of the full WCS at the object's position
 * (dudx, dudy, dvdx, dvdy in arcsec/pixel). The WCS varies by ~1e-5 relative across a stamp
 * (the TPV terms are cubic with a few-pixel amplitude over 0.4°): that second-order variation is
 * neglected. Pixel response: sinc(kx/2π) · sinc(ky/2π), the 1-pixel box in the pixel frame.
 * Sub-pixel position: the phase e^{−i k'·δ} with k' = k + 2πm (aliases included).
 */
import { fft1, nextFftSize } from './fft.ts';
// The Spergel cumulative profile (K_ν, Γ), for the stamp radius only: a pure float64 module of
// special functions, tested on its own against mpmath, closed forms and quadrature
// (test/model/spergel.test.ts); none of the engine's rendering code.
import { spergelFluxRadius } from '../model/spergel.ts';
import type { PsfModel } from './psf-model.ts';

export type Jacobian = readonly [number, number, number, number];

export interface TruthObject {
  /** Total flux (ADU). */
  flux: number;
  /** 'exp' = sheared exponential, 'spergel' = sheared Spergel profile of index `nu`, 'point' = star (the PSF alone). */
  kind: 'exp' | 'spergel' | 'point';
  /** Scale radius r0 (arcsec) of the exponential or Spergel profile; ignored for points. */
  r0?: number;
  /** Spergel index ν (−0.85 … 4; 0.5 is the exponential), for kind 'spergel'. */
  nu?: number;
  /** World linear map A = S(g) S(g_e), row-major [a11, a12, a21, a22]; identity if absent. */
  A?: readonly [number, number, number, number];
}

export interface TruthOptions {
  /** Fraction of the flux allowed outside the stamp (default 1e-5). */
  fluxTol?: number;
  /** FFT grid size ≥ oversample × stamp side (default 1.5; see the header). */
  oversample?: number;
  /** Half-side of the returned stamp (default: the profile's own half-side, from fluxTol). */
  outHalf?: number;
  /** Aliases are summed while the PSF·pixel envelope exceeds this (default 1e-12). */
  aliasTol?: number;
  /** Multiply by the pixel response (default true: the images are pixel-integrated). */
  pixel?: boolean;
}

/** Work counters (calls, k-space evaluations, alias terms evaluated), for profiling. */
export const truthStats = { calls: 0, kPoints: 0, terms: 0, byM: new Map<number, number>() };

export interface TruthStamp {
  /** 0-based pixel of the stamp's first column / row. */
  x0: number;
  y0: number;
  /** Side (odd), pixels. */
  n: number;
  /** Row-major n×n pixel values (ADU, pixel-integrated). */
  data: Float64Array;
  /** FFT grid size used. */
  fftSize: number;
}

/** Radius (in units of r0) enclosing 1 − tol of a 2-D exponential: (1 + x) e^{−x} = tol. */
export function exponentialRadius(tol: number): number {
  let x = -Math.log(tol);
  for (let i = 0; i < 50; i++) x = -Math.log(tol) + Math.log(1 + x);
  return x;
}

function inv2(j: Jacobian): [number, number, number, number] {
  const det = j[0] * j[3] - j[1] * j[2];
  if (!(Math.abs(det) > 0)) throw new RangeError('singular Jacobian');
  return [j[3] / det, -j[1] / det, -j[2] / det, j[0] / det];
}

/** Largest singular value of a 2×2 matrix. */
function sigmaMax(a: readonly number[]): number {
  const p = a[0] * a[0] + a[1] * a[1] + a[2] * a[2] + a[3] * a[3];
  const d = Math.abs(a[0] * a[3] - a[1] * a[2]);
  return Math.sqrt((p + Math.sqrt(Math.max(0, p * p - 4 * d * d))) / 2);
}
function sigmaMin(a: readonly number[]): number {
  const p = a[0] * a[0] + a[1] * a[1] + a[2] * a[2] + a[3] * a[3];
  const d = Math.abs(a[0] * a[3] - a[1] * a[2]);
  return Math.sqrt(Math.max(0, (p - Math.sqrt(Math.max(0, p * p - 4 * d * d))) / 2));
}

/** Quadratic form Q = Jinvᵀ... : kᵀ (Ji C Jiᵀ) k, with Ji = J⁻¹ and C = [cuu cuv; cuv cvv]. */
function pixelCov(ji: readonly number[], cuu: number, cuv: number, cvv: number): [number, number, number] {
  // P = Ji C Jiᵀ
  const a = ji[0] * cuu + ji[1] * cuv;
  const b = ji[0] * cuv + ji[1] * cvv;
  const c = ji[2] * cuu + ji[3] * cuv;
  const d = ji[2] * cuv + ji[3] * cvv;
  return [a * ji[0] + b * ji[1], a * ji[2] + b * ji[3], c * ji[2] + d * ji[3]];
}

/**
 * Render one object at 0-based pixel position (x, y) with local Jacobian `jac`, convolved with
 * `psf` (the PSF at that position) and the pixel. Returns the stamp around the object.
 */
export function renderTruth(obj: TruthObject, psf: PsfModel, x: number, y: number, jac: Jacobian, options: TruthOptions = {}): TruthStamp {
  const fluxTol = options.fluxTol ?? 1e-5;
  const oversample = options.oversample ?? 1.5;
  const aliasTol = options.aliasTol ?? 1e-12;
  const usePixel = options.pixel ?? true;
  const ji = inv2(jac);
  const A = obj.A ?? [1, 0, 0, 1];

  // --- stamp radius (pixels) -------------------------------------------------------------------
  // Flux budget: fluxTol/2 for the PSF (each Gaussian component c of weight w_c loses
  // w_c·e^{−R²/2λ_max} beyond R) and fluxTol/2 for the object; the convolution then loses at
  // most fluxTol beyond the sum of the two radii.
  let psfR = 0; // world arcsec
  for (const c of psf.components) {
    const lmax = (c.cuu + c.cvv) / 2 + Math.sqrt(((c.cuu - c.cvv) / 2) ** 2 + c.cuv * c.cuv);
    const ratio = (psf.components.length * c.weight) / (fluxTol / 2);
    if (ratio > 1) psfR = Math.max(psfR, Math.sqrt(2 * Math.log(ratio) * lmax));
  }
  let galR = 0;
  if (obj.kind === 'exp') {
    if (!(obj.r0! > 0)) throw new RangeError('exponential needs r0 > 0');
    galR = exponentialRadius(fluxTol / 2) * obj.r0! * sigmaMax(A);
  } else if (obj.kind === 'spergel') {
    if (!(obj.r0! > 0)) throw new RangeError('Spergel profile needs r0 > 0');
    if (typeof obj.nu !== 'number') throw new RangeError('Spergel profile needs nu');
    galR = spergelFluxRadius(obj.nu, fluxTol / 2) * obj.r0! * sigmaMax(A);
  }
  const rPix = (galR + psfR) / sigmaMin(jac) + 2;
  const half = Math.ceil(rPix);
  const n = 2 * half + 1;
  const outHalf = options.outHalf ?? half;
  // wrap-free: a periodic copy (support radius `half`) never reaches the output stamp
  const m = nextFftSize(Math.max(oversample * n, outHalf + half + 2));

  // --- k-space quadratic forms in the pixel frame ----------------------------------------------
  // galaxy: |Aᵀ J⁻ᵀ k|² = kᵀ (J⁻¹ A Aᵀ J⁻ᵀ) k
  const aat: [number, number, number] = [A[0] * A[0] + A[1] * A[1], A[0] * A[2] + A[1] * A[3], A[2] * A[2] + A[3] * A[3]];
  const r02 = obj.kind === 'exp' || obj.kind === 'spergel' ? obj.r0! * obj.r0! : 0;
  const g = pixelCov(ji, aat[0] * r02, aat[1] * r02, aat[2] * r02);
  const comps = psf.components.map((c) => ({ w: c.weight, p: pixelCov(ji, c.cuu, c.cuv, c.cvv) }));
  // alias range: narrowest PSF component in k (= widest... no: the smallest real-space σ gives
  // the widest k envelope)
  let sig2min = Infinity;
  for (const c of comps) {
    const [a, b, d] = c.p;
    const lmin = (a + d) / 2 - Math.sqrt(((a - d) / 2) ** 2 + b * b);
    sig2min = Math.min(sig2min, lmin);
  }
  let mmax = 0;
  for (;;) {
    const kEdge = (2 * (mmax + 1) - 1) * Math.PI; // nearest |k| of the next alias cell
    let env = Math.exp(-0.5 * sig2min * kEdge * kEdge);
    if (usePixel) env *= 2 / kEdge;
    if (env < aliasTol || mmax > 64) break;
    mmax++;
  }

  const ix = Math.round(x);
  const iy = Math.round(y);
  const dx = x - ix;
  const dy = y - iy;
  const { re, im } = scratch(m);
  const dk = (2 * Math.PI) / m;
  const twoPi = 2 * Math.PI;
  const flux = obj.flux;
  const isExp = obj.kind === 'exp';
  const isSpergel = obj.kind === 'spergel';
  const negExponent = -(1 + (obj.nu ?? 0.5));
  const nc = comps.length;
  const cw = new Float64Array(nc), ca = new Float64Array(nc), cb = new Float64Array(nc), cd = new Float64Array(nc);
  comps.forEach((c, i) => { cw[i] = c.w; ca[i] = c.p[0]; cb[i] = c.p[1]; cd[i] = c.p[2]; });

  // Per-alias factors that do not depend on k: the phase e^{−i 2π m δ} and the sign (−1)^m of
  // sin((k + 2πm)/2) = (−1)^m sin(k/2).
  const na = 2 * mmax + 1;
  const axr = new Float64Array(na), axi = new Float64Array(na), ayr = new Float64Array(na), ayi = new Float64Array(na);
  const sgn = new Float64Array(na);
  for (let t = 0; t < na; t++) {
    const mm = t - mmax;
    axr[t] = Math.cos(-twoPi * mm * dx); axi[t] = Math.sin(-twoPi * mm * dx);
    ayr[t] = Math.cos(-twoPi * mm * dy); ayi[t] = Math.sin(-twoPi * mm * dy);
    sgn[t] = mm % 2 === 0 ? 1 : -1;
  }
  // A PSF component c is summed where w_c-weighted it exceeds aliasTol·w_c, i.e. where its
  // quadratic form q_c ≤ cutoff; elsewhere it is < 1e-12 of its weight.
  const cutoff = -2 * Math.log(aliasTol);

  // Columns in signed order: s = 0..m−1 ↔ k0 = (s − m/2)·dk (monotone), FFT index (s + m/2) mod m.
  const h2 = m / 2;
  const SX = new Float64Array(m * na);
  const bxr = new Float64Array(m), bxi = new Float64Array(m);
  for (let s2 = 0; s2 < m; s2++) {
    const k0 = (s2 - h2) * dk;
    const sh = Math.sin(k0 / 2);
    for (let t = 0; t < na; t++) {
      const k = k0 + twoPi * (t - mmax);
      SX[s2 * na + t] = !usePixel ? 1 : k === 0 ? 1 : (sgn[t] * sh) / (k / 2);
    }
    bxr[s2] = Math.cos(-k0 * dx);
    bxi[s2] = Math.sin(-k0 * dx);
  }
  const g0 = g[0], g1 = 2 * g[1], g2 = g[2];
  const stepC = new Float64Array(nc);
  for (let c = 0; c < nc; c++) stepC[c] = Math.exp(-ca[c] * dk * dk);
  const rowRe = new Float64Array(m), rowIm = new Float64Array(m), psum = new Float64Array(m);

  // Hermitian symmetry: the image is real, S(−k) = conj S(k); compute rows 0..m/2, mirror the rest.
  let terms = 0;
  for (let j = 0; j <= h2; j++) {
    const ky0 = (j < h2 ? j : j - m) * dk;
    rowRe.fill(0);
    rowIm.fill(0);
    for (let ty = 0; ty < na; ty++) {
      const ky = ky0 + twoPi * (ty - mmax);
      const sy = usePixel ? (ky === 0 ? 1 : (sgn[ty] * Math.sin(ky0 / 2)) / (ky / 2)) : 1;
      const ga = 1 + g2 * ky * ky, gb = g1 * ky;
      for (let tx = 0; tx < na; tx++) {
        const mxk = twoPi * (tx - mmax);
        // PSF sum P(kx) = Σ_c w_c e^{−q_c/2}, each component over its own interval, by recurrence:
        // E(kx + dk) = E(kx)·R(kx), R(kx + dk) = R(kx)·e^{−a dk²}
        let lo = m, hi = -1;
        for (let c = 0; c < nc; c++) {
          const A2 = ca[c], B = 2 * cb[c] * ky, C = cd[c] * ky * ky - cutoff;
          const disc = B * B - 4 * A2 * C;
          if (disc < 0) continue;
          const r = Math.sqrt(disc);
          const s0 = Math.max(0, Math.ceil((-B - r) / (2 * A2) / dk - mxk / dk + h2));
          const s1 = Math.min(m - 1, Math.floor((-B + r) / (2 * A2) / dk - mxk / dk + h2));
          if (s0 > s1) continue;
          if (lo > hi) { for (let t = s0; t <= s1; t++) psum[t] = 0; lo = s0; hi = s1; }
          else {
            for (let t = s0; t < lo; t++) psum[t] = 0;
            for (let t = hi + 1; t <= s1; t++) psum[t] = 0;
            lo = Math.min(lo, s0); hi = Math.max(hi, s1);
          }
          const kx = (s0 - h2) * dk + mxk;
          let E = Math.exp(-0.5 * (A2 * kx * kx + B * kx + cd[c] * ky * ky));
          let R = Math.exp(-0.5 * ((2 * A2 * kx + B) * dk + A2 * dk * dk));
          const step = stepC[c], w = cw[c];
          for (let t = s0; t <= s1; t++) {
            psum[t] += w * E;
            E *= R;
            R *= step;
          }
        }
        if (lo > hi) continue;
        terms += hi - lo + 1;
        const pr = flux * sy * (axr[tx] * ayr[ty] - axi[tx] * ayi[ty]);
        const pi = flux * sy * (axr[tx] * ayi[ty] + axi[tx] * ayr[ty]);
        let kx = (lo - h2) * dk + mxk;
        for (let t = lo; t <= hi; t++, kx += dk) {
          let v = psum[t] * SX[t * na + tx];
          if (isExp) {
            const q = ga + g0 * kx * kx + gb * kx;
            v /= q * Math.sqrt(q);
          } else if (isSpergel) {
            v *= Math.pow(ga + g0 * kx * kx + gb * kx, negExponent);
          }
          rowRe[t] += v * pr;
          rowIm[t] += v * pi;
        }
      }
    }
    // common phase e^{−i(kx0 dx + ky0 dy)}, then store (and mirror)
    const byr = Math.cos(-ky0 * dy), byi = Math.sin(-ky0 * dy);
    const mirrorRow = (m - j) % m;
    for (let t = 0; t < m; t++) {
      const pr = bxr[t] * byr - bxi[t] * byi, pi = bxr[t] * byi + bxi[t] * byr;
      const vr = rowRe[t] * pr - rowIm[t] * pi, vi = rowRe[t] * pi + rowIm[t] * pr;
      const i = (t + h2) % m;
      re[j * m + i] = vr;
      im[j * m + i] = vi;
      if (mirrorRow !== j) {
        const mi = (m - i) % m;
        re[mirrorRow * m + mi] = vr;
        im[mirrorRow * m + mi] = -vi;
      }
    }
  }
  truthStats.terms += terms;
  truthStats.calls++;
  truthStats.kPoints += m * m;
  truthStats.byM.set(m, (truthStats.byM.get(m) ?? 0) + 1);
  // inverse 2-D FFT: every column, then only the rows the output stamp needs
  inverseColumnsThenRows(re, im, m, outHalf);
  const no = 2 * outHalf + 1;
  const data = new Float64Array(no * no);
  for (let b = -outHalf; b <= outHalf; b++) {
    const row = ((b % m) + m) % m;
    for (let a = -outHalf; a <= outHalf; a++) {
      const col = ((a % m) + m) % m;
      data[(b + outHalf) * no + (a + outHalf)] = re[row * m + col];
    }
  }
  return { x0: ix - outHalf, y0: iy - outHalf, n: no, data, fftSize: m };
}

const scratchBuffers = new Map<number, { re: Float64Array; im: Float64Array }>();
/** Reused k-space buffers per FFT size (every element is overwritten before use). */
function scratch(m: number): { re: Float64Array; im: Float64Array } {
  let b = scratchBuffers.get(m);
  if (!b) {
    if (scratchBuffers.size > 16) scratchBuffers.clear();
    b = { re: new Float64Array(m * m), im: new Float64Array(m * m) };
    scratchBuffers.set(m, b);
  }
  return b;
}

function inverseColumnsThenRows(re: Float64Array, im: Float64Array, m: number, outHalf: number): void {
  const cr = new Float64Array(m), ci = new Float64Array(m);
  for (let x = 0; x < m; x++) {
    for (let y = 0; y < m; y++) { cr[y] = re[y * m + x]; ci[y] = im[y * m + x]; }
    fft1(cr, ci, true);
    for (let y = 0; y < m; y++) { re[y * m + x] = cr[y]; im[y * m + x] = ci[y]; }
  }
  const rows = new Set<number>();
  for (let b = -outHalf; b <= outHalf; b++) rows.add(((b % m) + m) % m);
  for (const y of rows) fft1(re.subarray(y * m, (y + 1) * m), im.subarray(y * m, (y + 1) * m), true);
}

/** Add a stamp into an image (row-major width×height), clipping at the edges. */
export function addStamp(image: Float64Array | Float32Array, width: number, height: number, s: TruthStamp): void {
  for (let b = 0; b < s.n; b++) {
    const y = s.y0 + b;
    if (y < 0 || y >= height) continue;
    for (let a = 0; a < s.n; a++) {
      const x = s.x0 + a;
      if (x < 0 || x >= width) continue;
      image[y * width + x] += s.data[b * s.n + a];
    }
  }
}
