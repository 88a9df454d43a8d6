/**
 * Image → RGBA for the views, without the DOM (it runs in ./render-worker.ts, so a stretch or
 * colormap change never freezes the page): block means when zoomed out, shared colour limits,
 * colormaps. Also used in Node by test/app/render.test.ts (block means against NumPy).
 */
import { finiteValues, stretchLimits, stretchValue, zscaleLimits, type StretchName } from './stretch.ts';

export type Panel = 'observed' | 'model' | 'residual';
export const PANELS: Panel[] = ['observed', 'model', 'residual'];
export type ImageCmap = 'grey' | 'viridis' | 'heat';
export type ChiCmap = 'diverging' | 'grey';

/** Colour of masked pixels (not in the likelihood) and of blocks with no unmasked pixel. */
export const MASKED_RGB: [number, number, number] = [40, 70, 80];

/**
 * Mean of each k × k block over the pixels where `mask` is set and the value is finite (NaN where
 * a block has none). Blocks at the right and top edges hold the pixels that remain (fewer than k).
 * Output: ceil(w/k) × ceil(h/k), row-major like the input.
 */
export function blockMean(values: ArrayLike<number>, mask: ArrayLike<number>, w: number, h: number, k: number): { data: Float32Array; width: number; height: number; counts: Uint32Array } {
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`block size must be an integer >= 1, got ${k}`);
  const bw = Math.ceil(w / k);
  const bh = Math.ceil(h / k);
  const sum = new Float64Array(bw * bh);
  const n = new Uint32Array(bw * bh);
  for (let y = 0; y < h; y++) {
    const by = ((y / k) | 0) * bw;
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = values[i];
      if (!mask[i] || !Number.isFinite(v)) continue;
      const b = by + ((x / k) | 0);
      sum[b] += v;
      n[b]++;
    }
  }
  const data = new Float32Array(bw * bh);
  for (let b = 0; b < data.length; b++) data[b] = n[b] ? sum[b] / n[b] : NaN;
  return { data, width: bw, height: bh, counts: n };
}

/** Viridis at 9 evenly spaced points (matplotlib's published values), interpolated linearly. */
const VIRIDIS: Array<[number, number, number]> = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141], [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];
/** Black → red → yellow → white (a "heat" / DS9-like colormap). */
const HEAT: Array<[number, number, number]> = [[0, 0, 0], [128, 0, 0], [255, 64, 0], [255, 192, 0], [255, 255, 255]];

function table(t: number, tab: Array<[number, number, number]>): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (tab.length - 1);
  const i = Math.min(tab.length - 2, Math.floor(x));
  const f = x - i;
  const a = tab[i];
  const b = tab[i + 1];
  return [Math.round(a[0] + f * (b[0] - a[0])), Math.round(a[1] + f * (b[1] - a[1])), Math.round(a[2] + f * (b[2] - a[2]))];
}

/** t ∈ [0, 1] → RGB for an image colormap. */
export function imageRgb(cmap: ImageCmap, t: number): [number, number, number] {
  if (cmap === 'viridis') return table(t, VIRIDIS);
  if (cmap === 'heat') return table(t, HEAT);
  const g = Math.round(255 * Math.min(1, Math.max(0, t)));
  return [g, g, g];
}

/** Blue – white – red for χ (t = 0.5 is χ = 0), or grey. */
export function chiRgb(cmap: ChiCmap, t: number): [number, number, number] {
  if (cmap === 'grey') return imageRgb('grey', t);
  if (t < 0.5) {
    const u = Math.max(0, t) / 0.5;
    return [Math.round(40 + 215 * u), Math.round(80 + 175 * u), 255];
  }
  const u = (Math.min(1, t) - 0.5) / 0.5;
  return [255, Math.round(255 - 200 * u), Math.round(255 - 215 * u)];
}

export interface Limits {
  /** Observed and model share these. */
  image: [number, number];
  /** Residual χ: symmetric. */
  chi: [number, number];
  /** Which came from the user rather than the stretch. */
  manual: { image: boolean; chi: boolean };
}

const POOL_MAX = 4_000_000;

/** Finite masked values of several arrays pooled (evenly strided beyond POOL_MAX values in all). */
function pool(arrs: Array<{ v: ArrayLike<number>; m: ArrayLike<number> }>): Float64Array {
  const total = arrs.reduce((s, a) => s + a.v.length, 0);
  const stride = Math.max(1, Math.ceil(total / POOL_MAX));
  const parts = arrs.map((a) => {
    if (stride === 1) return finiteValues(a.v, a.m);
    const v = new Float64Array(Math.ceil(a.v.length / stride));
    const m = new Uint8Array(v.length);
    for (let i = 0, k = 0; i < a.v.length; i += stride, k++) {
      v[k] = a.v[i];
      m[k] = a.m[i] ? 1 : 0;
    }
    return finiteValues(v, m);
  });
  const all = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all;
}

/**
 * Colour limits shared by every quadrant: the stretch's limits of the unmasked observed pixels
 * (observed and model use them), and ±5 for χ (zscale: symmetric zscale limits of χ). Manual
 * limits replace either.
 */
export function sharedLimits(
  quads: Array<{ observed: ArrayLike<number>; mask: ArrayLike<number>; chi: ArrayLike<number> | null }>,
  stretch: StretchName,
  manual: { image?: [number, number] | null; chi?: number | null } = {},
): Limits {
  let image: [number, number];
  if (manual.image) image = manual.image;
  else image = stretchLimits(stretch, pool(quads.map((q) => ({ v: q.observed, m: q.mask }))));
  let chi: [number, number] = [-5, 5];
  if (manual.chi) chi = [-manual.chi, manual.chi];
  else if (stretch === 'zscale') {
    const withChi = quads.filter((q) => q.chi);
    const c = pool(withChi.map((q) => ({ v: q.chi!, m: q.mask })));
    if (c.length) {
      const [lo, hi] = zscaleLimits(c);
      const L = Math.max(Math.abs(lo), Math.abs(hi), 1e-3);
      chi = [-L, L];
    }
  }
  return { image, chi, manual: { image: !!manual.image, chi: !!manual.chi } };
}

export interface RenderRequest {
  panel: Panel;
  /** Block size: 1 (native) or k (k × k means). */
  k: number;
  stretch: StretchName;
  imageCmap: ImageCmap;
  chiCmap: ChiCmap;
  limits: Limits;
}

/** The RGBA bitmap of one panel (and the block values it shows: means; for χ, Σχ/√n). */
export function renderRgba(values: ArrayLike<number>, mask: ArrayLike<number>, w: number, h: number, r: RenderRequest): { rgba: Uint8ClampedArray; width: number; height: number; values: Float32Array } {
  const b = r.k === 1 ? { data: Float32Array.from(values, (v, i) => (mask[i] ? v : NaN)), width: w, height: h } : blockMean(values, mask, w, h, r.k);
  if (r.k > 1 && r.panel === 'residual') {
    // a block of χ is shown as its χ, Σχ/√n = mean·√n: N(0, 1) for a correct model whatever the
    // block size, so the χ colour scale keeps its meaning and a faint residual spread over the block
    // stands out instead of averaging away
    const n = (b as { counts: Uint32Array }).counts;
    for (let i = 0; i < b.data.length; i++) b.data[i] *= Math.sqrt(n[i]);
  }
  const rgba = new Uint8ClampedArray(b.width * b.height * 4);
  const [lo, hi] = r.panel === 'residual' ? r.limits.chi : r.limits.image;
  for (let i = 0; i < b.data.length; i++) {
    const v = b.data[i];
    let rgb: [number, number, number];
    if (!Number.isFinite(v)) rgb = MASKED_RGB;
    else if (r.panel === 'residual') rgb = chiRgb(r.chiCmap, stretchValue('linear', v, lo, hi));
    else rgb = imageRgb(r.imageCmap, stretchValue(r.stretch, v, lo, hi));
    rgba[4 * i] = rgb[0];
    rgba[4 * i + 1] = rgb[1];
    rgba[4 * i + 2] = rgb[2];
    rgba[4 * i + 3] = 255;
  }
  return { rgba, width: b.width, height: b.height, values: b.data };
}

/** χ = (obs − model)/rms where the mask is set, NaN elsewhere. */
export function residualChi(observed: ArrayLike<number>, model: ArrayLike<number>, rms: ArrayLike<number>, mask: ArrayLike<number>): Float32Array {
  const out = new Float32Array(observed.length);
  for (let i = 0; i < out.length; i++) out[i] = mask[i] ? (observed[i] - model[i]) / rms[i] : NaN;
  return out;
}
