/**
 * The PSF model's Fourier transform on a stamp's FFT grid, alias orders included (float64).
 *
 * A PSF stamp p[b][a] (P×P, odd P, centre c = (P−1)/2, unit sum) samples the PSF every 1/q
 * detector pixel. The continuous PSF model is GalSim's InterpolatedImage with a Quintic
 * interpolant at the stamp's own scale:
 *
 *   PSF(x) = Σ_{a,b} p[b][a] q² K(q x − (a − c)) K(q y − (b − c))
 *   P̂(k)  = Σ_{a,b} p[b][a] e^{−i (kx (a−c) + ky (b−c)) / q} · uval(kx / 2πq) · uval(ky / 2πq)
 *
 * (k in radians per detector pixel), times the pixel response sinc(kx/2π)·sinc(ky/2π) when the
 * stamps do not already include it. Beyond |k| = qπ (the PSF sampling's own Nyquist frequency)
 * the interpolated model only repeats the stamp's spectrum through the interpolant's side lobes —
 * it carries no information about the PSF — so the model is band-limited there:
 * P̂(k) = 0 unless −qπ ≤ kx < qπ and −qπ ≤ ky < qπ (half-open, so that every frequency of the
 * detector grid's alias cells is counted once). With q = 1 this is exactly the engine's historical
 * band limit at the detector's Nyquist frequency.
 *
 * A stamp of N pixels is rendered on an M-point FFT grid; the detector samples the continuous
 * image at pixel centres, so the stamp's DFT is the sum of the continuous spectrum over alias
 * orders, Σ_n Ŝ(k + 2πn). `psfSpectra64` returns P̂ at k_n = 2π(m + n·M)/M for every base
 * frequency m of the grid and every order n ∈ [−N, N]² — (2N+1)² spectra of M² values.
 */
import { signedFreq } from './geometry.ts';
import { quinticUval, sinc } from './galsim.ts';

export interface PsfSpectra64 {
  /** FFT grid size. */
  m: number;
  /** Alias orders N: spectra for n ∈ [−N, N]² (2N+1 per axis). */
  orders: number;
  /** (2N+1)² spectra, index (ny + N)·(2N+1) + (nx + N); each M×M row-major [iy][ix], FFT ordering. */
  re: Float64Array[];
  im: Float64Array[];
}

/**
 * Per-axis window of alias order n on an M-point grid for PSF oversampling q: the Quintic
 * transform at the stamp's scale, times the pixel sinc when asked, zero outside [−qπ, qπ).
 * Index i ↔ frequency m + n·M with m = signedFreq(i, M).
 */
export function psfWindow64(m: number, n: number, q: number, pixelResponse: boolean): Float64Array {
  const w = new Float64Array(m);
  const half = (q * m) / 2;
  for (let i = 0; i < m; i++) {
    const mf = signedFreq(i, m) + n * m;
    if (mf < -half || mf >= half) continue;
    w[i] = quinticUval(mf / (q * m)) * (pixelResponse ? sinc(mf / m) : 1);
  }
  return w;
}

/**
 * P̂(k + 2πn) on the M×M grid for every order n ∈ [−N, N]² (see the header). A separable direct
 * DTFT: P·L·P + L²·P complex products for L = (2N+1)·M frequencies per axis, skipping frequencies
 * outside the PSF model's band.
 */
export function psfSpectra64(psf: ArrayLike<number>, psfSize: number, m: number, pixelResponse: boolean, q = 1, orders = 0): PsfSpectra64 {
  const P = psfSize;
  const cP = (P - 1) / 2;
  const O = 2 * orders + 1;
  const L = O * m;
  // per-axis frequencies t ∈ [0, L): order n = ⌊t/M⌋ − N, base index i = t mod M
  const win = new Float64Array(L);
  const er = new Float64Array(L * P);
  const ei = new Float64Array(L * P);
  const live: number[] = [];
  for (let o = 0; o < O; o++) {
    const w = psfWindow64(m, o - orders, q, pixelResponse);
    for (let i = 0; i < m; i++) {
      const t = o * m + i;
      win[t] = w[i];
      if (w[i] === 0) continue;
      live.push(t);
      const k = (2 * Math.PI * (signedFreq(i, m) + (o - orders) * m)) / m / q;
      for (let a = 0; a < P; a++) {
        er[t * P + a] = Math.cos(k * (a - cP));
        ei[t * P + a] = -Math.sin(k * (a - cP));
      }
    }
  }
  // T[b][t] = Σ_a psf[b][a] E[t][a]
  const tr = new Float64Array(P * L);
  const ti = new Float64Array(P * L);
  for (let b = 0; b < P; b++) {
    for (const t of live) {
      let sr = 0;
      let si = 0;
      for (let a = 0; a < P; a++) {
        const v = psf[b * P + a];
        sr += v * er[t * P + a];
        si += v * ei[t * P + a];
      }
      tr[b * L + t] = sr;
      ti[b * L + t] = si;
    }
  }
  const re: Float64Array[] = [];
  const im: Float64Array[] = [];
  for (let o = 0; o < O * O; o++) {
    re.push(new Float64Array(m * m));
    im.push(new Float64Array(m * m));
  }
  for (const ty of live) {
    const oy = Math.floor(ty / m);
    const iy = ty % m;
    for (const tx of live) {
      const ox = Math.floor(tx / m);
      const ix = tx % m;
      let sr = 0;
      let si = 0;
      for (let b = 0; b < P; b++) {
        const cr = er[ty * P + b];
        const ci = ei[ty * P + b];
        const xr = tr[b * L + tx];
        const xi = ti[b * L + tx];
        sr += cr * xr - ci * xi;
        si += cr * xi + ci * xr;
      }
      const w = win[tx] * win[ty];
      const slot = oy * O + ox;
      re[slot][iy * m + ix] = sr * w;
      im[slot][iy * m + ix] = si * w;
    }
  }
  return { m, orders, re, im };
}

/**
 * The per-axis factors of the GPU's polyphase PSF spectrum (engine/gpu/psf/psf.wgsl.ts), row-major
 * [order o][phase r][frequency i], interleaved (re, im): T = w_n(i) · e^{−2πi (m + nM) r / (qM)},
 * n = o − N, m = signedFreq(i, M), in float64 then rounded to float32 (the phase's integer
 * numerator is reduced mod qM first, so the argument is exact).
 */
export function psfOrderTable(m: number, q: number, orders: number, pixelResponse: boolean): Float32Array {
  const O = 2 * orders + 1;
  const out = new Float32Array(O * q * m * 2);
  for (let o = 0; o < O; o++) {
    const w = psfWindow64(m, o - orders, q, pixelResponse);
    for (let r = 0; r < q; r++) {
      for (let i = 0; i < m; i++) {
        const mf = signedFreq(i, m) + (o - orders) * m;
        const t = (((mf * r) % (q * m)) + q * m) % (q * m);
        const a = (-2 * Math.PI * t) / (q * m);
        const j = 2 * ((o * q + r) * m + i);
        out[j] = w[i] * Math.cos(a);
        out[j + 1] = w[i] * Math.sin(a);
      }
    }
  }
  return out;
}

const bandCache = new WeakMap<object, Map<string, Float64Array>>();

/**
 * How far the PSF model reaches beyond each alias cell: out[N] = max |P̂(k)| / |P̂(0)| over
 * frequencies with (2N+1)π ≤ |k|∞ < qπ (the part of the model's band that alias orders beyond N
 * would fold in), for N = 0 … ceil((q−1)/2) − 1; sampled on a grid of `samples`² points over the
 * band (direct DTFT, float64). Cached per PSF array.
 */
export function psfBandBeyond(psf: ArrayLike<number>, psfSize: number, q: number, pixelResponse: boolean, samples = 96): Float64Array {
  const reach = Math.ceil((q - 1) / 2);
  const key = `${psfSize}:${q}:${pixelResponse ? 1 : 0}:${samples}`;
  let byKey = bandCache.get(psf as object);
  if (!byKey) bandCache.set(psf as object, (byKey = new Map()));
  const hit = byKey.get(key);
  if (hit) return hit;
  const P = psfSize;
  const cP = (P - 1) / 2;
  // k on a grid over [−qπ, qπ)² per axis; factor tables per axis
  const ks = new Float64Array(samples);
  const er = new Float64Array(samples * P);
  const ei = new Float64Array(samples * P);
  const win = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const k = -q * Math.PI + (2 * q * Math.PI * (i + 0.5)) / samples;
    ks[i] = k;
    win[i] = quinticUval(k / (2 * Math.PI * q)) * (pixelResponse ? sinc(k / (2 * Math.PI)) : 1);
    for (let a = 0; a < P; a++) {
      er[i * P + a] = Math.cos((k * (a - cP)) / q);
      ei[i * P + a] = -Math.sin((k * (a - cP)) / q);
    }
  }
  const tr = new Float64Array(P * samples);
  const ti = new Float64Array(P * samples);
  for (let b = 0; b < P; b++) {
    for (let i = 0; i < samples; i++) {
      let sr = 0;
      let si = 0;
      for (let a = 0; a < P; a++) {
        sr += psf[b * P + a] * er[i * P + a];
        si += psf[b * P + a] * ei[i * P + a];
      }
      tr[b * samples + i] = sr;
      ti[b * samples + i] = si;
    }
  }
  let p0 = 0;
  for (let j = 0; j < P * P; j++) p0 += psf[j];
  const out = new Float64Array(reach);
  for (let iy = 0; iy < samples; iy++) {
    for (let ix = 0; ix < samples; ix++) {
      const kinf = Math.max(Math.abs(ks[ix]), Math.abs(ks[iy]));
      let sr = 0;
      let si = 0;
      for (let b = 0; b < P; b++) {
        const cr = er[iy * P + b];
        const ci = ei[iy * P + b];
        sr += cr * tr[b * samples + ix] - ci * ti[b * samples + ix];
        si += cr * ti[b * samples + ix] + ci * tr[b * samples + ix];
      }
      const v = (Math.hypot(sr, si) * Math.abs(win[ix] * win[iy])) / Math.abs(p0);
      for (let n = 0; n < reach; n++) if (kinf >= (2 * n + 1) * Math.PI && v > out[n]) out[n] = v;
    }
  }
  byKey.set(key, out);
  return out;
}
