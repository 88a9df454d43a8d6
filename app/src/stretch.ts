/**
 * Display stretches for the image views: colour limits (linear min/max with percentile clipping,
 * asinh, IRAF's zscale) and the value → [0, 1] mapping. Pure functions (no DOM): also used in Node
 * by test/app/zscale.test.ts, which compares zscaleLimits with astropy's ZScaleInterval.
 */

export type StretchName = 'linear' | 'asinh' | 'zscale';

export interface ZscaleOptions {
  /** Pixels sampled (evenly strided through the data). */
  nSamples: number;
  /** Slope divisor of the fitted line (IRAF's contrast). */
  contrast: number;
  /** Fraction of the samples that may be rejected before the fit is abandoned. */
  maxReject: number;
  /** Fewest good samples for the fit to be used. */
  minNpixels: number;
  /** Rejection threshold in standard deviations of the residuals. */
  krej: number;
  /** Rejection iterations. */
  maxIterations: number;
}

/** IRAF's (and astropy's ZScaleInterval) defaults. */
export const ZSCALE_DEFAULTS: ZscaleOptions = { nSamples: 1000, contrast: 0.25, maxReject: 0.5, minNpixels: 5, krej: 2.5, maxIterations: 5 };

/** The finite values of `data` where `mask` (when given) is non-zero, in order. */
export function finiteValues(data: ArrayLike<number>, mask?: ArrayLike<number>): Float64Array {
  let n = 0;
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (Number.isFinite(v) && (!mask || mask[i] !== 0)) out[n++] = v;
  }
  return out.subarray(0, n);
}

function median(sorted: Float64Array): number {
  const n = sorted.length;
  const h = n >> 1;
  return n % 2 ? sorted[h] : 0.5 * (sorted[h - 1] + sorted[h]);
}

/**
 * IRAF's zscale: sample the values on a regular stride, sort them, fit a straight line to the
 * sorted samples against their rank with iterative k-σ rejection (rejected samples grown by 1 % of
 * the sample count on each side), then centre limits on the median with the line's slope divided by
 * the contrast, clipped to the sample range. Falls back to the sample range when too many samples
 * are rejected. `values` must be finite (see finiteValues).
 */
export function zscaleLimits(values: ArrayLike<number>, opts: Partial<ZscaleOptions> = {}): [number, number] {
  const o = { ...ZSCALE_DEFAULTS, ...opts };
  const size = values.length;
  if (size === 0) return [0, 1];
  const stride = Math.max(1, Math.trunc(size / o.nSamples));
  const nTake = Math.min(o.nSamples, Math.ceil(size / stride));
  const s = new Float64Array(nTake);
  for (let k = 0; k < nTake; k++) s[k] = values[k * stride];
  s.sort();
  const npix = s.length;
  let vmin = s[0];
  let vmax = s[npix - 1];
  const minpix = Math.max(o.minNpixels, Math.trunc(npix * o.maxReject));
  const ngrow = Math.max(1, Math.trunc(npix * 0.01));
  let bad = new Uint8Array(npix);
  let ngood = npix;
  let lastGood = npix + 1;
  let slope = 0;
  for (let it = 0; it < o.maxIterations; it++) {
    if (ngood >= lastGood || ngood < minpix) break;
    // least-squares line through the good samples (rank x = 0..npix-1)
    let sw = 0;
    let sx = 0;
    let sy = 0;
    for (let i = 0; i < npix; i++) {
      if (bad[i]) continue;
      sw++;
      sx += i;
      sy += s[i];
    }
    const mx = sx / sw;
    const my = sy / sw;
    let sxx = 0;
    let sxy = 0;
    for (let i = 0; i < npix; i++) {
      if (bad[i]) continue;
      sxx += (i - mx) * (i - mx);
      sxy += (i - mx) * (s[i] - my);
    }
    slope = sxx > 0 ? sxy / sxx : 0;
    const icept = my - slope * mx;
    // residual spread of the good samples (population standard deviation)
    const flat = new Float64Array(npix);
    let m1 = 0;
    for (let i = 0; i < npix; i++) {
      flat[i] = s[i] - (icept + slope * i);
      if (!bad[i]) m1 += flat[i];
    }
    m1 /= sw;
    let m2 = 0;
    for (let i = 0; i < npix; i++) if (!bad[i]) m2 += (flat[i] - m1) ** 2;
    const threshold = o.krej * Math.sqrt(m2 / sw);
    for (let i = 0; i < npix; i++) if (flat[i] < -threshold || flat[i] > threshold) bad[i] = 1;
    // grow the rejected set: a centred window of ngrow samples (numpy convolve, mode 'same')
    const grown = new Uint8Array(npix);
    const hi = (ngrow - 1) >> 1;
    for (let i = 0; i < npix; i++) {
      for (let j = Math.max(0, i + hi - (ngrow - 1)); j <= Math.min(npix - 1, i + hi); j++) {
        if (bad[j]) {
          grown[i] = 1;
          break;
        }
      }
    }
    bad = grown;
    lastGood = ngood;
    ngood = 0;
    for (let i = 0; i < npix; i++) if (!bad[i]) ngood++;
  }
  if (ngood >= minpix) {
    if (o.contrast > 0) slope /= o.contrast;
    const c = Math.trunc((npix - 1) / 2);
    const med = median(s);
    vmin = Math.max(vmin, med - (c - 1) * slope);
    vmax = Math.min(vmax, med + (npix - c) * slope);
  }
  return [vmin, vmax];
}

/** The q-quantile (0..1) of finite values, by sorting a copy (linear interpolation between ranks). */
export function quantile(values: Float64Array, q: number): number {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const pos = Math.min(1, Math.max(0, q)) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(s.length - 1, lo + 1);
  return s[lo] + (pos - lo) * (s[hi] - s[lo]);
}

/**
 * Colour limits of a stretch for the given finite values: zscale → IRAF's limits; linear and
 * asinh → the 0.5 %–99.5 % (linear) or 0.5 %–99.9 % (asinh) quantiles.
 */
export function stretchLimits(stretch: StretchName, values: Float64Array): [number, number] {
  if (values.length === 0) return [0, 1];
  let lim: [number, number];
  if (stretch === 'zscale') lim = zscaleLimits(values);
  else if (stretch === 'asinh') lim = [quantile(values, 0.005), quantile(values, 0.999)];
  else lim = [quantile(values, 0.005), quantile(values, 0.995)];
  if (!(lim[1] > lim[0])) lim = [lim[0] - 0.5, lim[0] + 0.5];
  return lim;
}

/** Softening of the asinh stretch, as a fraction of the range (astropy's AsinhStretch default a = 0.1). */
export const ASINH_A = 0.1;

/** value → [0, 1] for a stretch and limits (values outside clip). */
export function stretchValue(stretch: StretchName, v: number, lo: number, hi: number): number {
  let t = (v - lo) / (hi - lo);
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  if (stretch === 'asinh') return Math.asinh(t / ASINH_A) / Math.asinh(1 / ASINH_A);
  return t;
}
