/**
 * Sky background per quadrant (docs/wcs-psf-catalog.md "Background"): from a BKG map HDU when given (same
 * shape as SCI), else a sigma-clipped median of the SCI pixels.
 *
 * The clipping follows astropy's `sigma_clipped_stats` (cenfunc median, stdfunc population std,
 * bounds inclusive, iterate until no pixel is clipped or `maxIters`), computed on float64. The
 * valid pixels are copied once; each iteration finds the median by quickselect (O(n), no sort),
 * the std in two passes, and compacts the kept values in place.
 */
import { DataError } from '../errors.ts';
import type { FitsFile, HduRef } from './fits/file.ts';

export interface SigmaClipOptions {
  /** Clip at median ± sigma·std (default 3). */
  sigma?: number;
  /** Maximum iterations (default 10). */
  maxIters?: number;
}

export interface ClippedStats {
  median: number;
  mean: number;
  /** Population standard deviation (ddof = 0) of the kept values. */
  std: number;
  /** Values kept after clipping. */
  n: number;
  /** Valid (finite, unmasked) values before clipping. */
  nValid: number;
  iterations: number;
  /** True when clipping stopped because nothing changed (false: hit maxIters). */
  converged: boolean;
}

/**
 * k-th smallest value (0-based) of a[lo, hi), reordering a in place: iterative quickselect with
 * Hoare partitioning (robust to many ties) and median-of-three pivots. O(n) expected.
 */
export function selectKth(a: Float64Array, k: number, lo = 0, hi = a.length): number {
  let l = lo;
  let r = hi - 1;
  while (r > l) {
    const m = (l + r) >>> 1;
    // median of three → a[m]
    if (a[m] < a[l]) swap(a, m, l);
    if (a[r] < a[l]) swap(a, r, l);
    if (a[r] < a[m]) swap(a, r, m);
    const pivot = a[m];
    let i = l;
    let j = r;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        swap(a, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) r = j;
    else if (k >= i) l = i;
    else return a[k];
  }
  return a[k];
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

/** Median of a[0, n) (numpy: mean of the two middle values for even n); reorders a. */
function medianInPlace(a: Float64Array, n: number): number {
  if (n === 0) return NaN;
  const h = n >> 1;
  const upper = selectKth(a, h, 0, n);
  if (n % 2 === 1) return upper;
  // after selection every value in [0, h) is ≤ a[h]: the lower middle is their maximum
  let lower = -Infinity;
  for (let i = 0; i < h; i++) if (a[i] > lower) lower = a[i];
  return 0.5 * (lower + upper);
}

/**
 * Sigma-clipped statistics of the values in `values[0, n)` (finite; reordered and compacted in
 * place). Each iteration: median (quickselect) and population std of the kept values, keep
 * median − σ·std ≤ v ≤ median + σ·std; stop when nothing changes or after maxIters clippings.
 */
export function sigmaClippedStatsInPlace(values: Float64Array, n: number = values.length, opts: SigmaClipOptions = {}): ClippedStats {
  const sigma = opts.sigma ?? 3;
  const maxIters = opts.maxIters ?? 10;
  const nValid = n;
  const moments = (m: number) => {
    let s = 0;
    for (let i = 0; i < m; i++) s += values[i];
    const mean = s / m;
    let ss = 0;
    for (let i = 0; i < m; i++) {
      const d = values[i] - mean;
      ss += d * d;
    }
    return { mean, std: Math.sqrt(ss / m) };
  };
  let iterations = 0;
  for (;;) {
    if (n === 0) return { median: NaN, mean: NaN, std: NaN, n: 0, nValid, iterations, converged: false };
    // statistics of the current set; they are final when the set is final
    const median = medianInPlace(values, n);
    const { mean, std } = moments(n);
    if (iterations >= maxIters) return { median, mean, std, n, nValid, iterations, converged: false };
    const lo = median - sigma * std;
    const hi = median + sigma * std;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v >= lo && v <= hi) values[k++] = v;
    }
    iterations++;
    if (k === n) return { median, mean, std, n, nValid, iterations, converged: true };
    n = k;
  }
}

export interface PixelMaskOptions {
  /** Flag map (same length as the data). */
  flags?: ArrayLike<number>;
  /** Pixels with (flags & badPixelMask) ≠ 0 are excluded (default 0xFFFFFFFF: any flag). */
  badPixelMask?: number;
}

/**
 * Sigma-clipped statistics of `data`, excluding non-finite values and flagged pixels. Copies the
 * valid values once (Float64Array); `data` is not modified.
 */
export function sigmaClippedStats(data: ArrayLike<number>, opts: SigmaClipOptions & PixelMaskOptions = {}): ClippedStats {
  const flags = opts.flags;
  if (flags && flags.length !== data.length) {
    throw new DataError(`flag map has ${flags.length} pixels, data ${data.length}`);
  }
  const mask = (opts.badPixelMask ?? 0xffffffff) >>> 0;
  const buf = new Float64Array(data.length);
  let n = 0;
  const len = data.length;
  if (!flags || mask === 0) {
    for (let i = 0; i < len; i++) {
      const v = data[i];
      if (v - v === 0) buf[n++] = v; // finite
    }
  } else {
    for (let i = 0; i < len; i++) {
      const v = data[i];
      if (v - v === 0 && (flags[i] & mask) === 0) buf[n++] = v;
    }
  }
  return sigmaClippedStatsInPlace(buf, n, opts);
}

export type QuadrantBackground =
  | { kind: 'map'; map: Float32Array }
  | ({ kind: 'clipped'; value: number } & ClippedStats);

/**
 * Background of a quadrant from its SCI pixels: the sigma-clipped median (3σ, ≤ 10 iterations by
 * default). Throws DataError when no valid pixel is left.
 */
export function clippedBackground(
  sci: ArrayLike<number>,
  opts: SigmaClipOptions & PixelMaskOptions & { file?: string; hdu?: string | number } = {},
): QuadrantBackground {
  const st = sigmaClippedStats(sci, opts);
  if (st.n === 0 || !Number.isFinite(st.median)) {
    throw new DataError('no valid pixels to estimate the background from (all NaN or flagged)', { file: opts.file, hdu: opts.hdu });
  }
  return { kind: 'clipped', value: st.median, ...st };
}

/** Validate a BKG map against the SCI shape (and finiteness); returns it as Float32Array. */
export function backgroundFromMap(
  map: ArrayLike<number>,
  width: number,
  height: number,
  expected: { width: number; height: number },
  ctx: { file?: string; hdu?: string | number } = {},
): QuadrantBackground {
  if (width !== expected.width || height !== expected.height) {
    throw new DataError(`background map is ${width}×${height}, the SCI image ${expected.width}×${expected.height}`, {
      ...ctx,
      key: 'NAXIS1',
    });
  }
  if (map.length !== width * height) throw new DataError(`background map has ${map.length} pixels, expected ${width * height}`, ctx);
  const out = map instanceof Float32Array ? map : Float32Array.from(map);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) {
      throw new DataError(`background map has a non-finite value at pixel (${i % width}, ${Math.floor(i / width)}) (0-based)`, ctx);
    }
  }
  return { kind: 'map', map: out };
}

/** Read the BKG map of a quadrant (HDU named like the quadrant, e.g. "3-4.F") and validate it. */
export async function readBackgroundMap(
  fits: FitsFile,
  hdu: HduRef,
  expected: { width: number; height: number },
): Promise<QuadrantBackground> {
  const info = fits.hdu(hdu);
  const name = info.name || info.index;
  if (info.naxis.length !== 2) {
    throw new DataError(`background map must be a 2-D image, found NAXIS = ${info.naxis.length}`, { file: fits.name, hdu: name, key: 'NAXIS' });
  }
  const img = await fits.readImageFloat32(info.index);
  return backgroundFromMap(img.data, img.width, img.height, expected, { file: fits.name, hdu: name });
}

/**
 * The quadrant's background: the BKG map when a BKG file is given, else the clipped median of SCI.
 */
export async function quadrantBackground(args: {
  sci: ArrayLike<number>;
  width: number;
  height: number;
  flags?: ArrayLike<number>;
  bkgFile?: FitsFile;
  /** HDU of the quadrant in the BKG file (e.g. "3-4.F"). */
  bkgHdu?: HduRef;
  badPixelMask?: number;
  sigma?: number;
  maxIters?: number;
  file?: string;
  hdu?: string | number;
}): Promise<QuadrantBackground> {
  if (args.bkgFile) {
    if (args.bkgHdu === undefined) throw new DataError('a BKG file was given without the quadrant HDU name', { file: args.bkgFile.name });
    return readBackgroundMap(args.bkgFile, args.bkgHdu, { width: args.width, height: args.height });
  }
  return clippedBackground(args.sci, args);
}
