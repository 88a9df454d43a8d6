/**
 * Float64 CPU reference of the forward model and the masked Gaussian log-likelihood: the oracle
 * the GPU engine is checked against. It implements exactly the discrete algorithm of
 * docs/forward-model.md:
 *
 *   for a visible pair (source s, quadrant j), stamp N, FFT grid M = fftFactor·N, pad = (M−N)/2,
 *   corner c = (stampCorner(x, N), stampCorner(y, N)):
 *     p  = (x − cx + pad, y − cy + pad) + J⁻¹·(dx, dy)            centre on the FFT grid
 *     k  = 2π (mx, my) / M, (mx, my) = signedFreq(ix, iy)           radians / pixel
 *     q  = J⁻ᵀ k                                                    radians / arcsec
 *     Ŝ(k) = Σ_n F (1 + r0² |Aᵀ q_n|²)^(−E) · P̂(k_n) · e^{−i k_n·p},  k_n = k + 2πn, q_n = J⁻ᵀ k_n
 *     E = 3/2, r0 = hlr / 1.678… (exponential) or E = 1 + ν, r0 = hlr / c_ν (Spergel; opts.profile;
 *     ν per source from params.nu when the index is free, c_ν solved exactly, not tabulated)
 *     bulge + disk: F [(1 − f_b)(1 + r_d²|A_dᵀq_n|²)^(−3/2) + f_b (1 + r_b²|A_bᵀq_n|²)^(−(1+ν_b))]
 *     (engine/model/bulge-disk.ts)
 *     P̂(k) = Σ_{a,b} psf[b][a] e^{−i (kx (a−cP) + ky (b−cP))/q} · uval(kx/2πq) · uval(ky/2πq)
 *            · [sinc(kx/2π) sinc(ky/2π)],  zero outside [−qπ, qπ)²  (engine/model/psf-spectrum.ts)
 *     n ∈ [−N, N]², N = aliasOrdersFor(set, opts) (0 for native PSF stamps, q = 1)
 *     stamp = Re(ifft2(Ŝ))[pad .. pad+N)²  added to image pixels (cx + i, cy + j) inside the quadrant.
 *
 * The PSF transform (a direct DTFT of the stamp, an independent route from the GPU's FFT) does
 * not depend on the parameters; it is cached per PSF array, grid size and pixel-response flag.
 */
import { coverageMasks, fftPad, signedFreq, stampCorner } from '../../model/geometry.ts';
import { galaxyMatrix, matInv2, type Mat2 } from '../../model/galsim.ts';
import { spergelHlrOverR0 } from '../../model/spergel.ts';
import { profileConstants, profileLabel } from '../../model/profile.ts';
import { profileParamNames } from '../../model/profile-params.ts';
import { psfSpectra64, type PsfSpectra64 } from '../../model/psf-spectrum.ts';
import { aliasOrdersFor, psfOversamplingOf, resolveRenderOptions, validateExposureSet, validateParams } from '../../model/validate.ts';
import { sourceShear, type ExposureSet, type PairGeometry, type QuadrantData, type RenderOptions, type SceneParams } from '../../scene/types.ts';
import { SceneError } from '../../errors.ts';
import { fft1d } from '../fft/fft64.ts';
import { pixelIndex } from '../../scene/pixels.ts';

export interface Complex2D {
  /** M×M, row-major [iy][ix], FFT (not centred) ordering. */
  re: Float64Array;
  im: Float64Array;
  m: number;
}

export interface PairStamp64 {
  pair: number;
  /** Image pixel of stamp pixel (0, 0). */
  cx: number;
  cy: number;
  /** Stamp side. */
  N: number;
  /** N×N, row-major [j][i], image pixel (cx + i, cy + j). */
  stamp: Float64Array;
}

// ---------------------------------------------------------------------------------------------
// PSF transform

const psfCache = new WeakMap<object, Map<string, PsfSpectra64>>();

/**
 * P̂(k + 2πn) on the M×M FFT grid for every alias order n the render folds (engine/model/
 * psf-spectrum.ts: the stamp's direct DTFT at its own sampling 1/q, times the Quintic transform,
 * times the pixel response sinc when `pixelResponse`, band-limited to |k| < qπ). Cached per
 * (psf array, M, flag, q, N): do not modify a PSF array in place after it has been used.
 */
export function psfSpectrum64(psf: ArrayLike<number>, psfSize: number, m: number, pixelResponse: boolean, q = 1, orders = 0): PsfSpectra64 {
  const key = `${psfSize}:${m}:${pixelResponse ? 1 : 0}:${q}:${orders}`;
  let byKey = psfCache.get(psf as object);
  if (!byKey) {
    byKey = new Map();
    psfCache.set(psf as object, byKey);
  }
  const hit = byKey.get(key);
  if (hit) return hit;
  const out = psfSpectra64(psf, psfSize, m, pixelResponse, q, orders);
  byKey.set(key, out);
  return out;
}

/** The PSF spectra a pair is rendered with, for these options. */
function pairPsf64(set: ExposureSet, pairIndex: number, M: number, opts: RenderOptions): PsfSpectra64 {
  const pr = set.pairs[pairIndex];
  return psfSpectrum64(pr.psf!, set.psfSize, M, opts.pixelResponse, psfOversamplingOf(set), aliasOrdersFor(set, opts));
}

// ---------------------------------------------------------------------------------------------
// Per-pair geometry and spectrum

export interface PairSetup64 {
  pair: number;
  source: number;
  quadrant: number;
  N: number;
  M: number;
  pad: number;
  cx: number;
  cy: number;
  /** J⁻¹, row-major. */
  jinv: Mat2;
  /** Galaxy matrix A = S(g)·S(g_e). */
  A: Mat2;
  r0: number;
  /** Exponent E of the galaxy transform (1 + r0²|q|²)^(−E): 3/2 (exponential) or 1 + ν (Spergel). */
  exponent: number;
  /** Bulge + disk: the bulge's matrix, scale radius, exponent 1 + ν_b and flux fraction (the fields above are the disk's). */
  bulge?: { A: Mat2; r0: number; exponent: number; frac: number };
  flux: number;
  /** Source centre on the FFT grid (pixels). */
  px: number;
  py: number;
}

/** Geometry of one pair for the given parameters (no validation). */
export function pairSetup64(set: ExposureSet, pairIndex: number, params: SceneParams, opts: RenderOptions): PairSetup64 {
  const pr = set.pairs[pairIndex];
  const s = pr.source;
  const N = set.sources[s].stampSize;
  const M = opts.fftFactor * N;
  const pad = fftPad(N, M);
  const cx = stampCorner(pr.x, N);
  const cy = stampCorner(pr.y, N);
  const J = pr.jacobian;
  const jinv = matInv2([J[0], J[1], J[2], J[3]]);
  const dx = params.dx[s];
  const dy = params.dy[s];
  const prof = profileConstants(opts.profile);
  const profile = opts.profile;
  const freeNu = profile?.type === 'spergel' && profile.free ? params.nu![s] : undefined;
  const [g1, g2] = sourceShear(set.sources[s], params.g1, params.g2);
  const bulge =
    profile?.type === 'bulge_disk'
      ? {
          A: galaxyMatrix(params.bulgeE1![s], params.bulgeE2![s], g1, g2),
          r0: params.bulgeHlr![s] / spergelHlrOverR0(profile.bulgeNu),
          exponent: 1 + profile.bulgeNu,
          frac: params.bulgeFrac![s],
        }
      : undefined;
  return {
    ...(bulge ? { bulge } : {}),
    pair: pairIndex,
    source: s,
    quadrant: pr.quadrant,
    N,
    M,
    pad,
    cx,
    cy,
    jinv,
    A: galaxyMatrix(params.e1[s], params.e2[s], g1, g2),
    r0: params.hlr[s] / (freeNu === undefined ? prof.hlrOverR0 : spergelHlrOverR0(freeNu)),
    exponent: freeNu === undefined ? prof.exponent : 1 + freeNu,
    flux: params.flux[s],
    px: pr.x - cx + pad + jinv[0] * dx + jinv[1] * dy,
    py: pr.y - cy + pad + jinv[2] * dx + jinv[3] * dy,
  };
}

/** Ŝ(k) of one pair on its M×M FFT grid (FFT ordering). */
export function pairSpectrum64(set: ExposureSet, pairIndex: number, params: SceneParams, optsIn: Partial<RenderOptions> = {}): Complex2D {
  const opts = resolveRenderOptions(optsIn);
  const pr = set.pairs[pairIndex];
  if (!pr.psf) throw new SceneError(`pair ${pairIndex}: no PSF stamp`, { field: `pairs[${pairIndex}].psf` });
  const g = pairSetup64(set, pairIndex, params, opts);
  return spectrumFromSetup(g, pairPsf64(set, pairIndex, g.M, opts));
}

/**
 * Σ_n F Ĝ(Aᵀ J⁻ᵀ k_n) P̂(k_n) e^{−i k_n·p}, k_n = k + 2πn, over the PSF spectra's alias orders.
 */
function spectrumFromSetup(g: PairSetup64, psf: PsfSpectra64, outBuf?: Complex2D): Complex2D {
  const M = g.M;
  const N = psf.orders;
  const O = 2 * N + 1;
  const [j00, j01, j10, j11] = g.jinv;
  const [a00, a01, a10, a11] = g.A;
  const r02 = g.r0 * g.r0;
  const E = g.exponent;
  const exp15 = E === 1.5;
  const bulge = g.bulge;
  const [b00, b01, b10, b11] = bulge ? bulge.A : [0, 0, 0, 0];
  const r02b = bulge ? bulge.r0 * bulge.r0 : 0;
  const Eb = bulge ? bulge.exponent : 0;
  const fb = bulge ? bulge.frac : 0;
  const re = outBuf ? outBuf.re : new Float64Array(M * M);
  const im = outBuf ? outBuf.im : new Float64Array(M * M);
  re.fill(0);
  im.fill(0);
  const flux = g.flux;
  const kk = new Float64Array(M);
  const phr = new Float64Array(M); // e^{−i kx px}
  const phi = new Float64Array(M);
  const pyr = new Float64Array(M); // e^{−i ky py}
  const pyi = new Float64Array(M);
  for (let oy = 0; oy < O; oy++) {
    for (let ox = 0; ox < O; ox++) {
      const slot = oy * O + ox;
      const pre = psf.re[slot];
      const pim = psf.im[slot];
      for (let i = 0; i < M; i++) {
        const kxv = (2 * Math.PI * (signedFreq(i, M) + (ox - N) * M)) / M;
        const kyv = (2 * Math.PI * (signedFreq(i, M) + (oy - N) * M)) / M;
        kk[i] = kxv;
        phr[i] = Math.cos(kxv * g.px);
        phi[i] = -Math.sin(kxv * g.px);
        pyr[i] = Math.cos(kyv * g.py);
        pyi[i] = -Math.sin(kyv * g.py);
      }
      for (let iy = 0; iy < M; iy++) {
        const ky = (2 * Math.PI * (signedFreq(iy, M) + (oy - N) * M)) / M;
        const yr = pyr[iy];
        const yi = pyi[iy];
        for (let ix = 0; ix < M; ix++) {
          const o = iy * M + ix;
          const pRe = pre[o];
          const pIm = pim[o];
          if (pRe === 0 && pIm === 0) continue;
          const kx = kk[ix];
          // q = J⁻ᵀ k
          const qu = j00 * kx + j10 * ky;
          const qv = j01 * kx + j11 * ky;
          // Aᵀ q
          const wu = a00 * qu + a10 * qv;
          const wv = a01 * qu + a11 * qv;
          const t = 1 + r02 * (wu * wu + wv * wv);
          let G = exp15 ? flux / (t * Math.sqrt(t)) : flux * Math.pow(t, -E);
          if (bulge) {
            const bu = b00 * qu + b10 * qv;
            const bv = b01 * qu + b11 * qv;
            G = (1 - fb) * G + fb * flux * Math.pow(1 + r02b * (bu * bu + bv * bv), -Eb);
          }
          // phase = e^{−i kx px} e^{−i ky py}
          const phRe = phr[ix] * yr - phi[ix] * yi;
          const phIm = phr[ix] * yi + phi[ix] * yr;
          re[o] += G * (pRe * phRe - pIm * phIm);
          im[o] += G * (pRe * phIm + pIm * phRe);
        }
      }
    }
  }
  return { re, im, m: M };
}

// Inverse FFT plans: radix-2 with precomputed twiddles and bit reversal (an independent, faster
// float64 implementation than fft64.ts; both use numpy's conventions).
interface Plan {
  n: number;
  rev: Uint32Array;
  cos: Float64Array;
  sin: Float64Array;
}
const plans = new Map<number, Plan>();
function plan(n: number): Plan {
  let p = plans.get(n);
  if (p) return p;
  const rev = new Uint32Array(n);
  const bits = Math.round(Math.log2(n));
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) if (i & (1 << b)) r |= 1 << (bits - 1 - b);
    rev[i] = r;
  }
  const cos = new Float64Array(n / 2);
  const sin = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / n);
    sin[k] = Math.sin((2 * Math.PI * k) / n); // inverse transform: e^{+2πik/n}
  }
  p = { n, rev, cos, sin };
  plans.set(n, p);
  return p;
}

/** Unnormalised inverse DFT (e^{+2πi kn/N}) of n contiguous values at re/im[off ..]. */
function ifftUnscaled(p: Plan, re: Float64Array, im: Float64Array, off: number): void {
  const n = p.n;
  if (n & (n - 1)) {
    // a 3·2^k grid (fftFactor 1.5): fft64.ts's mixed-radix transform, whose 1/n is undone here
    fft1d(re, im, n, true, off, 1);
    for (let i = off; i < off + n; i++) {
      re[i] *= n;
      im[i] *= n;
    }
    return;
  }
  const rev = p.rev;
  for (let i = 0; i < n; i++) {
    const j = rev[i];
    if (i < j) {
      const a = off + i;
      const b = off + j;
      let t = re[a];
      re[a] = re[b];
      re[b] = t;
      t = im[a];
      im[a] = im[b];
      im[b] = t;
    }
  }
  const tc = p.cos;
  const ts = p.sin;
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1;
    const step = n / size;
    for (let start = off; start < off + n; start += size) {
      for (let k = 0; k < half; k++) {
        const wr = tc[k * step];
        const wi = ts[k * step];
        const a = start + k;
        const b = a + half;
        const xr = re[b] * wr - im[b] * wi;
        const xi = re[b] * wi + im[b] * wr;
        re[b] = re[a] - xr;
        im[b] = im[a] - xi;
        re[a] += xr;
        im[a] += xi;
      }
    }
  }
}

/**
 * ifft2(Z) (numpy normalisation 1/M²) cropped to [pad, pad + N)²: all M rows are transformed
 * along x, then only the N columns of the crop along y. Returns the real part, and the imaginary
 * part when `wantIm`. Destroys `spec`.
 */
function cropInverse(spec: Complex2D, N: number, pad: number, wantIm = false): [Float64Array, Float64Array | null] {
  const M = spec.m;
  const re = spec.re;
  const im = spec.im;
  const p = plan(M);
  for (let y = 0; y < M; y++) ifftUnscaled(p, re, im, y * M);
  const cr = new Float64Array(M);
  const ci = new Float64Array(M);
  const outRe = new Float64Array(N * N);
  const outIm = wantIm ? new Float64Array(N * N) : null;
  const scale = 1 / (M * M);
  for (let i = 0; i < N; i++) {
    const x = pad + i;
    for (let y = 0; y < M; y++) {
      cr[y] = re[y * M + x];
      ci[y] = im[y * M + x];
    }
    ifftUnscaled(p, cr, ci, 0);
    for (let j = 0; j < N; j++) outRe[j * N + i] = cr[pad + j] * scale;
    if (outIm) for (let j = 0; j < N; j++) outIm[j * N + i] = ci[pad + j] * scale;
  }
  return [outRe, outIm];
}

/** Scratch spectra per grid size (the reference is single-threaded). */
const scratch = new Map<number, Complex2D[]>();
function scratchBuffers(M: number): Complex2D[] {
  let b = scratch.get(M);
  if (!b) {
    b = [0, 1, 2].map(() => ({ re: new Float64Array(M * M), im: new Float64Array(M * M), m: M }));
    scratch.set(M, b);
  }
  return b;
}

/**
 * Render two pairs with the same grid size with one complex inverse FFT: since only Re(ifft2(X))
 * is wanted, Re(ifft2(X)) = ifft2(H) with the Hermitian part H(k) = (X(k) + conj(X(−k)))/2, and
 * ifft2(H1 + i·H2) = h1 + i·h2 with h1, h2 real.
 */
function renderTwoUnchecked(set: ExposureSet, p1: number, p2: number, params: SceneParams, opts: RenderOptions): [PairStamp64, PairStamp64] {
  const g1 = pairSetup64(set, p1, params, opts);
  const g2 = pairSetup64(set, p2, params, opts);
  const M = g1.M;
  const [b1, b2, z] = scratchBuffers(M);
  spectrumFromSetup(g1, pairPsf64(set, p1, M, opts), b1);
  spectrumFromSetup(g2, pairPsf64(set, p2, M, opts), b2);
  for (let iy = 0; iy < M; iy++) {
    const ny = iy === 0 ? 0 : M - iy;
    for (let ix = 0; ix < M; ix++) {
      const nx = ix === 0 ? 0 : M - ix;
      const o = iy * M + ix;
      const on = ny * M + nx;
      // H1 = (X1 + conj X1(−k))/2, H2 likewise; Z = H1 + i H2
      const h1r = 0.5 * (b1.re[o] + b1.re[on]);
      const h1i = 0.5 * (b1.im[o] - b1.im[on]);
      const h2r = 0.5 * (b2.re[o] + b2.re[on]);
      const h2i = 0.5 * (b2.im[o] - b2.im[on]);
      z.re[o] = h1r - h2i;
      z.im[o] = h1i + h2r;
    }
  }
  const [a, b] = cropInverse(z, g1.N, g1.pad, true);
  return [
    { pair: p1, cx: g1.cx, cy: g1.cy, N: g1.N, stamp: a },
    { pair: p2, cx: g2.cx, cy: g2.cy, N: g2.N, stamp: b! },
  ];
}

function renderPairUnchecked(set: ExposureSet, pairIndex: number, params: SceneParams, opts: RenderOptions): PairStamp64 {
  const g = pairSetup64(set, pairIndex, params, opts);
  const spec = spectrumFromSetup(g, pairPsf64(set, pairIndex, g.M, opts), scratchBuffers(g.M)[0]);
  return { pair: pairIndex, cx: g.cx, cy: g.cy, N: g.N, stamp: cropInverse(spec, g.N, g.pad)[0] };
}

/**
 * The N×N model stamp of one pair (rendered whether or not the pair is flagged visible, but it
 * needs a PSF). Validates the scene and parameters first.
 */
export function renderPairStamp64(
  set: ExposureSet,
  pairIndex: number,
  params: SceneParams,
  optsIn: Partial<RenderOptions> = {},
): PairStamp64 {
  const opts = resolveRenderOptions(optsIn);
  validateExposureSet(set, opts);
  validateParams(set, params, opts.profile);
  if (!Number.isInteger(pairIndex) || pairIndex < 0 || pairIndex >= set.pairs.length) {
    throw new SceneError(`pair index ${pairIndex} out of range [0, ${set.pairs.length})`, { field: 'pair' });
  }
  if (!set.pairs[pairIndex].psf) {
    throw new SceneError(`pair ${pairIndex}: no PSF stamp`, { field: `pairs[${pairIndex}].psf` });
  }
  return renderPairUnchecked(set, pairIndex, params, opts);
}

/** Add a stamp into a full quadrant image, dropping pixels outside the quadrant. */
export function addStamp(image: Float64Array, q: QuadrantData, st: PairStamp64): void {
  const { cx, cy, N, stamp } = st;
  const i0 = Math.max(0, -cx);
  const i1 = Math.min(N, q.width - cx);
  const j0 = Math.max(0, -cy);
  const j1 = Math.min(N, q.height - cy);
  for (let j = j0; j < j1; j++) {
    const row = (cy + j) * q.width + cx;
    for (let i = i0; i < i1; i++) image[row + i] += stamp[j * N + i];
  }
}

/** Does the N-pixel stamp of this pair overlap its quadrant? (What `visible` should say.) */
export function stampOverlapsQuadrant(pr: PairGeometry, q: QuadrantData, N: number): boolean {
  const cx = stampCorner(pr.x, N);
  const cy = stampCorner(pr.y, N);
  return cx < q.width && cx + N > 0 && cy < q.height && cy + N > 0;
}

/**
 * Model image of every quadrant (full size, row-major, zeros where no stamp lands): the sum of
 * the stamps of the visible pairs, in pair order. Validates first.
 */
export function renderModel64(set: ExposureSet, params: SceneParams, optsIn: Partial<RenderOptions> = {}): Float64Array[] {
  const opts = resolveRenderOptions(optsIn);
  validateExposureSet(set, opts);
  validateParams(set, params, opts.profile);
  return renderModelUnchecked(set, params, opts);
}

interface CachedStamp {
  key: string;
  psf: unknown;
  stamp: PairStamp64;
}
/**
 * Last stamp rendered for each pair, keyed by every input it depends on (the source's parameters,
 * the shear, position, Jacobian, PSF array identity, stamp size and render options, the profile included): a stamp is
 * re-rendered only when one of them changed, so finite differences that move one source re-render
 * only that source's pairs. Results agree with or without the cache to rounding (~1e-16 of the
 * peak: the two-pairs-per-FFT path mixes a stamp with whichever partner it is transformed with).
 */
const stampCache = new WeakMap<ExposureSet, Map<number, CachedStamp>>();

function stampKey(set: ExposureSet, p: number, params: SceneParams, opts: RenderOptions): string {
  const pr = set.pairs[p];
  const s = pr.source;
  const J = pr.jacobian;
  return [
    params.flux[s], params.hlr[s], params.e1[s], params.e2[s], params.dx[s], params.dy[s], ...sourceShear(set.sources[s], params.g1, params.g2),
    pr.x, pr.y, J[0], J[1], J[2], J[3], set.sources[s].stampSize, set.psfSize, opts.fftFactor, opts.pixelResponse ? 1 : 0,
    psfOversamplingOf(set), aliasOrdersFor(set, opts), profileLabel(opts.profile),
    ...profileParamNames(opts.profile).map((k) => params[k]![s]),
  ].join(',');
}

/** Forget cached stamps (of one set, or of all sets that are still referenced elsewhere). */
export function clearModel64Cache(set?: ExposureSet): void {
  if (set) stampCache.delete(set);
}

/** Model stamps of every visible pair (index = pair index; undefined for invisible pairs). */
function renderStampsUnchecked(set: ExposureSet, params: SceneParams, opts: RenderOptions): PairStamp64[] {
  let cache = stampCache.get(set);
  if (!cache) {
    cache = new Map();
    stampCache.set(set, cache);
  }
  const stamps: PairStamp64[] = new Array(set.pairs.length);
  const keys: string[] = new Array(set.pairs.length);
  // render the missing ones two at a time per grid size
  const byM = new Map<number, number[]>();
  set.pairs.forEach((pr, p) => {
    if (!pr.visible) return;
    const key = stampKey(set, p, params, opts);
    keys[p] = key;
    const hit = cache!.get(p);
    if (hit && hit.key === key && hit.psf === pr.psf) {
      stamps[p] = hit.stamp;
      return;
    }
    const M = opts.fftFactor * set.sources[pr.source].stampSize;
    const list = byM.get(M) ?? [];
    list.push(p);
    byM.set(M, list);
  });
  for (const list of byM.values()) {
    let i = 0;
    for (; i + 1 < list.length; i += 2) {
      const [a, b] = renderTwoUnchecked(set, list[i], list[i + 1], params, opts);
      stamps[list[i]] = a;
      stamps[list[i + 1]] = b;
    }
    if (i < list.length) stamps[list[i]] = renderPairUnchecked(set, list[i], params, opts);
    for (const p of list) cache.set(p, { key: keys[p], psf: set.pairs[p].psf, stamp: stamps[p] });
  }
  return stamps;
}

function renderModelUnchecked(set: ExposureSet, params: SceneParams, opts: RenderOptions): Float64Array[] {
  const images = set.quadrants.map((q) => new Float64Array(q.width * q.height));
  const stamps = renderStampsUnchecked(set, params, opts);
  // accumulate in pair order
  set.pairs.forEach((pr, p) => {
    if (pr.visible) addStamp(images[pr.quadrant], set.quadrants[pr.quadrant], stamps[p]);
  });
  return images;
}

// ---------------------------------------------------------------------------------------------
// Data, weights, coverage, likelihood

export interface QuadrantWeights {
  /** sci − background, 0 where masked. */
  obs: Float64Array;
  /** 1/rms² where usable, 0 where masked (flags & badPixelMask, non-finite sci/rms/background, rms ≤ 0). */
  w: Float64Array;
}

const weightCache = new WeakMap<QuadrantData, { key: unknown[]; value: QuadrantWeights }>();

/** Observed image and inverse-variance weights of one quadrant (cached per arrays and mask). */
export function quadrantWeights(q: QuadrantData, badPixelMask: number): QuadrantWeights {
  const key = [q.sci, q.rms, q.flags, q.background, badPixelMask, q.width, q.height];
  const hit = weightCache.get(q);
  if (hit && hit.key.every((v, i) => v === key[i])) return hit.value;
  const n = q.width * q.height;
  const obs = new Float64Array(n);
  const w = new Float64Array(n);
  const bg = q.background;
  for (let d = 0; d < n; d++) {
    // a compact quadrant keeps only its active blocks: the pixels it lacks carry no weight
    const i = q.blocks ? pixelIndex(q, d % q.width, Math.floor(d / q.width)) : d;
    if (i < 0) continue;
    const b = bg === undefined ? 0 : typeof bg === 'number' ? bg : bg[i];
    const o = q.sci[i] - b;
    const r = q.rms[i];
    if ((q.flags[i] & badPixelMask) !== 0 || !Number.isFinite(o) || !Number.isFinite(r) || !(r > 0)) continue;
    obs[d] = o;
    w[d] = 1 / (r * r);
  }
  const value = { obs, w };
  weightCache.set(q, { key, value });
  return value;
}

/** Per quadrant, 1 where at least one visible stamp covers the pixel (shared with the χ² of Stage 2). */
export { coverageMasks } from '../../model/geometry.ts';

export interface LogLikelihood64 {
  /** −½ Σ w (model − obs)² over covered pixels. */
  logL: number;
  /** Covered pixels with w > 0 (the pixels that enter the sum). */
  nPixels: number;
  /** Per-quadrant contributions. */
  perQuadrant: number[];
}

/**
 * The masked Gaussian log-likelihood −½ Σ w (model − obs)², summed (Neumaier-compensated) over
 * the pixels covered by at least one visible stamp. Pixels no stamp covers contribute the
 * parameter-independent constant −½ Σ w obs², which is left out.
 */
export function logLikelihood64(set: ExposureSet, params: SceneParams, optsIn: Partial<RenderOptions> = {}): LogLikelihood64 {
  const opts = resolveRenderOptions(optsIn);
  validateExposureSet(set, opts);
  validateParams(set, params, opts.profile);
  const models = renderModelUnchecked(set, params, opts);
  const cov = coverageMasks(set);
  let total = 0;
  let comp = 0;
  let nPixels = 0;
  const perQuadrant: number[] = [];
  set.quadrants.forEach((q, j) => {
    const { obs, w } = quadrantWeights(q, opts.badPixelMask);
    const model = models[j];
    const c = cov[j];
    let s = 0;
    let cs = 0;
    for (let i = 0; i < model.length; i++) {
      if (!c[i] || w[i] === 0) continue;
      const r = model[i] - obs[i];
      const term = -0.5 * w[i] * r * r;
      const t = s + term;
      cs += Math.abs(s) >= Math.abs(term) ? s - t + term : term - t + s;
      s = t;
      nPixels++;
    }
    const qv = s + cs;
    perQuadrant.push(qv);
    const t = total + qv;
    comp += Math.abs(total) >= Math.abs(qv) ? total - t + qv : qv - t + total;
    total = t;
  });
  return { logL: total + comp, nPixels, perQuadrant };
}

/**
 * Weighted residual images R = w·(model − obs) on covered pixels (0 elsewhere), per quadrant:
 * the quantity whose FFT drives the adjoint (d logL / d model = −R).
 */
export function residualImages64(set: ExposureSet, params: SceneParams, optsIn: Partial<RenderOptions> = {}): Float64Array[] {
  const opts = resolveRenderOptions(optsIn);
  validateExposureSet(set, opts);
  validateParams(set, params, opts.profile);
  const models = renderModelUnchecked(set, params, opts);
  const cov = coverageMasks(set);
  return set.quadrants.map((q, j) => {
    const { obs, w } = quadrantWeights(q, opts.badPixelMask);
    const out = new Float64Array(q.width * q.height);
    const m = models[j];
    for (let i = 0; i < out.length; i++) if (cov[j][i] && w[i] !== 0) out[i] = w[i] * (m[i] - obs[i]);
    return out;
  });
}
