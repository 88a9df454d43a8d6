/**
 * The diagnostics PNG of a sub-tile, `diagnostics_{tile}_{row}_{col}.png` (docs/outputs.md): for
 * every quadrant a row of three panels — observed, model, residual χ — block-averaged so that a
 * full quadrant is about `panelWidth` pixels wide. Layout and reading guide: docs/outputs.md.
 *
 *  - observed and model share one asinh stretch per quadrant, from the observed blocks:
 *    lo = median − 2σ, hi = max(99.95th percentile, median + 10σ), softening β = σ, where
 *    σ = 1.4826 MAD (floored at 1e-4 of the range); colour = asinh((v − lo)/β) / asinh((hi − lo)/β);
 *    sequential (viridis-like) colour map;
 *  - residual panel: χ of each block, Σ(obs − model) / √Σ rms², over the unmasked pixels of the
 *    block (unit variance for pure noise at any binning), clipped to ±chiRange, blue–white–red;
 *  - masked pixels (mask ≠ 0, rms ≤ 0 or non-finite, non-finite data) are left out of the block
 *    sums; blocks with no unmasked pixel are grey (128, 128, 128) in all three panels.
 */
import { encode } from 'fast-png';
import { ShineError } from '../errors.ts';
import type { SubtileShear } from './shear.ts';
import { BLACK, diverging, MASKED, Raster, sequential, textWidth, TEXT_HEIGHT, type Rect, type Rgb } from './raster.ts';

export interface DiagnosticQuadrant {
  /** Label, e.g. the quadrant id 'EXP1.3-4.F'. */
  name: string;
  width: number;
  height: number;
  /** Pixels, row-major (x fastest), width × height; same units (and background) as the model. */
  observed: ArrayLike<number>;
  model: ArrayLike<number>;
  /** Per-pixel noise σ (same units). Give this or `weight`; without either, σ is estimated from the residual (MAD). */
  rms?: ArrayLike<number>;
  /** Inverse variance (used when `rms` is absent); 0 = masked. */
  weight?: ArrayLike<number>;
  /** Non-zero = masked (after `& maskBits` when maskBits is given). */
  mask?: ArrayLike<number>;
  maskBits?: number;
  /** Draw only this pixel range (half-open [x0, x1) × [y0, y1)); default the whole quadrant. */
  region?: { x0: number; y0: number; x1: number; y1: number };
}

/** The pixel arrays of a quadrant. */
export type DiagnosticPixels = Pick<DiagnosticQuadrant, 'observed' | 'model' | 'rms' | 'weight' | 'mask' | 'maskBits'>;

/**
 * A quadrant whose pixels are made when it is drawn (and dropped after): the image then holds one
 * quadrant's full-size arrays at a time (Stage 2 on large sub-tiles, docs/plan.md "Host memory").
 */
export interface LazyDiagnosticQuadrant extends Pick<DiagnosticQuadrant, 'name' | 'width' | 'height' | 'region'> {
  pixels: () => DiagnosticPixels;
}

export interface DiagnosticsInput {
  /** Title lines (tile, sub-tile, g1 ± err, g2 ± err, method, …). */
  title: string[];
  quadrants: Array<DiagnosticQuadrant | LazyDiagnosticQuadrant>;
}

function resolveQuadrant(q: DiagnosticQuadrant | LazyDiagnosticQuadrant, i: number): DiagnosticQuadrant {
  if (!('pixels' in q)) return q;
  const { pixels, ...rest } = q;
  const full = { ...rest, ...pixels() };
  checkQuadrant(full, i);
  return full;
}

export interface DiagnosticsOptions {
  /** Target panel width for a full quadrant (pixels). Default 512. */
  panelWidth: number;
  /** Maximum image width. Default 4096. */
  maxWidth: number;
  /** Maximum total pixels: panels shrink when many quadrants. Default 16e6. */
  maxPixels: number;
  /** χ colour range ±chiRange. Default 5. */
  chiRange: number;
  /** Font scale (1 = 5×7 pixels per glyph). Default 2. */
  textScale: number;
  /** Quadrant cells per row of the image (default: 1 for ≤ 4 quadrants, else 2). */
  columns?: number;
}

export const DEFAULT_DIAGNOSTICS_OPTIONS: DiagnosticsOptions = {
  panelWidth: 512,
  maxWidth: 4096,
  maxPixels: 16e6,
  chiRange: 5,
  textScale: 2,
};

/** Where a quadrant was drawn and with which stretch (for tests and tooling). */
export interface QuadrantLayout {
  name: string;
  /** Block size: each panel pixel averages factor × factor quadrant pixels. */
  factor: number;
  observed: Rect;
  model: Rect;
  residual: Rect;
  /** asinh stretch of observed and model: lo → colour 0, hi → colour 1, softening beta. */
  stretch: { lo: number; hi: number; beta: number };
  /** σ used for χ when no rms/weight was given (else undefined). */
  sigmaEstimate?: number;
  /** Fraction of pixels masked. */
  maskedFraction: number;
}

export interface DiagnosticsImage {
  width: number;
  height: number;
  /** RGB bytes. */
  rgb: Uint8Array;
  quadrants: QuadrantLayout[];
}

interface Binned {
  w: number;
  h: number;
  obs: Float64Array;
  model: Float64Array;
  chi: Float64Array;
  /** 1 = block fully masked. */
  empty: Uint8Array;
  maskedFraction: number;
  sigmaEstimate?: number;
}

function median(sorted: Float64Array): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  return n % 2 ? sorted[(n - 1) >> 1] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < sorted.length ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i];
}

function checkQuadrant(q: DiagnosticQuadrant, i: number): void {
  const field = `quadrants[${i}] (${q.name})`;
  const n = q.width * q.height;
  if (!Number.isInteger(q.width) || !Number.isInteger(q.height) || q.width <= 0 || q.height <= 0) {
    throw new ShineError(`invalid size ${q.width}×${q.height}`, { field });
  }
  for (const [k, a] of [
    ['observed', q.observed],
    ['model', q.model],
    ['rms', q.rms],
    ['weight', q.weight],
    ['mask', q.mask],
  ] as const) {
    if (a !== undefined && a.length !== n) throw new ShineError(`${k} has ${a.length} pixels, expected ${q.width}×${q.height} = ${n}`, { field });
  }
  const r = q.region;
  if (r && !(r.x0 >= 0 && r.y0 >= 0 && r.x1 <= q.width && r.y1 <= q.height && r.x0 < r.x1 && r.y0 < r.y1)) {
    throw new ShineError(`region [${r.x0}, ${r.x1}) × [${r.y0}, ${r.y1}) is empty or outside the ${q.width}×${q.height} quadrant`, { field });
  }
}

/** Block-averages a quadrant by `f`; χ per block from the noise-weighted residual sum. */
function bin(q: DiagnosticQuadrant, f: number): Binned {
  const r = q.region ?? { x0: 0, y0: 0, x1: q.width, y1: q.height };
  const rw = r.x1 - r.x0;
  const rh = r.y1 - r.y0;
  const w = Math.ceil(rw / f);
  const h = Math.ceil(rh / f);
  const nb = w * h;
  const sObs = new Float64Array(nb);
  const sMod = new Float64Array(nb);
  const sRes = new Float64Array(nb);
  const sVar = new Float64Array(nb);
  const cnt = new Float64Array(nb);
  const { observed, model, rms, weight, mask } = q;
  const bits = q.maskBits;
  const haveNoise = rms !== undefined || weight !== undefined;
  let masked = 0;
  const blockOfX = new Int32Array(rw);
  for (let k = 0; k < rw; k++) blockOfX[k] = Math.floor(k / f);
  for (let y = r.y0; y < r.y1; y++) {
    const by = Math.floor((y - r.y0) / f) * w;
    const rowOff = y * q.width;
    for (let x = r.x0; x < r.x1; x++) {
      const i = rowOff + x;
      const o = observed[i];
      const m = model[i];
      let v = 1;
      if (rms !== undefined) {
        const s = rms[i];
        v = s * s;
        if (!(s > 0) || !Number.isFinite(v)) v = NaN;
      } else if (weight !== undefined) {
        const wt = weight[i];
        v = wt > 0 && Number.isFinite(wt) ? 1 / wt : NaN;
      }
      const mk = mask !== undefined ? (bits !== undefined ? mask[i] & bits : mask[i]) : 0;
      if (mk !== 0 || !Number.isFinite(o) || !Number.isFinite(m) || Number.isNaN(v)) {
        masked++;
        continue;
      }
      const b = by + blockOfX[x - r.x0];
      sObs[b] += o;
      sMod[b] += m;
      sRes[b] += o - m;
      sVar[b] += v;
      cnt[b] += 1;
    }
  }
  let sigmaEstimate: number | undefined;
  if (!haveNoise) {
    // σ per pixel from the MAD of the residual (a strided sample of ~2^16 pixels)
    const n = rw * rh;
    const stride = Math.max(1, Math.floor(n / 65536));
    const vals = new Float64Array(Math.ceil(n / stride));
    let nv = 0;
    for (let k = 0; k < n; k += stride) {
      const x = r.x0 + (k % rw);
      const y = r.y0 + Math.floor(k / rw);
      const i = y * q.width + x;
      const mk = mask !== undefined ? (bits !== undefined ? mask[i] & bits : mask[i]) : 0;
      const d = observed[i] - model[i];
      if (mk === 0 && Number.isFinite(d)) vals[nv++] = d;
    }
    const s = vals.subarray(0, nv).sort();
    const med = median(s);
    const dev = new Float64Array(nv);
    for (let k = 0; k < nv; k++) dev[k] = Math.abs(s[k] - med);
    dev.sort();
    sigmaEstimate = 1.4826 * median(dev);
    if (!(sigmaEstimate > 0)) sigmaEstimate = 1;
  }
  const empty = new Uint8Array(nb);
  const chi = new Float64Array(nb);
  const s2 = sigmaEstimate !== undefined ? sigmaEstimate * sigmaEstimate : 1;
  for (let b = 0; b < nb; b++) {
    if (cnt[b] === 0) {
      empty[b] = 1;
      sObs[b] = sMod[b] = chi[b] = NaN;
      continue;
    }
    chi[b] = sRes[b] / Math.sqrt(sVar[b] * s2);
    sObs[b] /= cnt[b];
    sMod[b] /= cnt[b];
  }
  return { w, h, obs: sObs, model: sMod, chi, empty, maskedFraction: masked / (rw * rh), sigmaEstimate };
}

/** asinh stretch from the observed block values (see the file comment). */
function stretchOf(b: Binned): { lo: number; hi: number; beta: number } {
  // statistics from at most ~65536 blocks (a regular stride through the panel)
  const stride = Math.max(1, Math.floor(b.obs.length / 65536));
  const s = new Float64Array(Math.ceil(b.obs.length / stride));
  let n = 0;
  for (let i = 0; i < b.obs.length; i += stride) if (!b.empty[i]) s[n++] = b.obs[i];
  if (n < 1000 && stride > 1) {
    n = 0;
    const all = new Float64Array(b.obs.length);
    for (let i = 0; i < b.obs.length; i++) if (!b.empty[i]) all[n++] = b.obs[i];
    return stretchFrom(all, n);
  }
  return stretchFrom(s, n);
}

function stretchFrom(s: Float64Array, n: number): { lo: number; hi: number; beta: number } {
  if (n === 0) return { lo: 0, hi: 1, beta: 1 };
  const v = s.subarray(0, n).sort();
  const med = median(v);
  const dev = new Float64Array(n);
  for (let i = 0; i < n; i++) dev[i] = Math.abs(v[i] - med);
  dev.sort();
  const top = quantile(v, 0.9995);
  // σ from the MAD, floored at 1e-4 of the range (noiseless or constant images)
  const sigma = Math.max(1.4826 * median(dev), 1e-4 * (top - v[0]), 1e-30);
  const lo = med - 2 * sigma;
  let hi = Math.max(top, med + 10 * sigma);
  if (!(hi > lo)) hi = lo + 1;
  return { lo, hi, beta: sigma };
}

/** Compact number for labels: 4 significant digits. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(2).replace('e+', 'E').replace('e', 'E');
  return Number(v.toPrecision(4)).toString();
}

interface Plan {
  factors: number[];
  sizes: Array<{ w: number; h: number }>;
  columns: number;
  cellW: number;
}

/** Renders the diagnostics image (RGB raster and layout); `diagnosticsPng` encodes it. */
export function renderDiagnostics(input: DiagnosticsInput, options: Partial<DiagnosticsOptions> = {}): DiagnosticsImage {
  const opt = { ...DEFAULT_DIAGNOSTICS_OPTIONS, ...options };
  const quads = input.quadrants;
  quads.forEach((q, i) => {
    if (!('pixels' in q)) checkQuadrant(q, i);
  });
  const S = Math.max(1, Math.round(opt.textScale));
  const lineH = (TEXT_HEIGHT + 3) * S;
  const margin = 6 * S;
  const gap = 3 * S;
  const nq = quads.length;
  const regionSize = (q: DiagnosticQuadrant | LazyDiagnosticQuadrant) => (q.region ? { w: q.region.x1 - q.region.x0, h: q.region.y1 - q.region.y0 } : { w: q.width, h: q.height });
  const cellHeader = 2 * lineH; // quadrant line + panel-name line
  const titleH = (input.title.length + 2) * lineH + margin; // title lines + legend (2 lines)
  const legendLine = `RESIDUAL CHI = SUM(OBS - MODEL)/SQRT(SUM RMS^2) PER BLOCK:  -${fmt(opt.chiRange)} `;
  const barW = 100 * S;
  const legendW = textWidth(legendLine, S) + barW + textWidth(` +${fmt(opt.chiRange)}   MASKED `, S) + 8 * S;
  const longestTitle = Math.max(0, ...input.title.map((t) => textWidth(t, S)));
  /** The title and legend lines fit in this width (up to maxWidth). */
  const minWidth = Math.min(opt.maxWidth, Math.max(longestTitle, legendW) + 2 * margin);

  const plan = (target: number): Plan => {
    const factors = quads.map((q) => {
      const { w, h } = regionSize(q);
      return Math.max(1, Math.ceil(Math.max(w, h) / (1.25 * target)));
    });
    const sizes = quads.map((q, i) => {
      const { w, h } = regionSize(q);
      return { w: Math.ceil(w / factors[i]), h: Math.ceil(h / factors[i]) };
    });
    const pw = Math.max(0, ...sizes.map((s) => s.w));
    const cellW = 3 * pw + 2 * gap;
    // default: 1 cell per row up to 4 quadrants, else 2 — or more when small cells fit the title width
    const fit = Math.floor((minWidth - margin) / (cellW + margin));
    const columns = Math.max(1, Math.min(nq || 1, opt.columns ?? Math.max(nq <= 4 ? 1 : 2, fit)));
    return { factors, sizes, columns, cellW };
  };
  const totalSize = (p: Plan) => {
    const rows = Math.ceil(nq / p.columns);
    let h = titleH;
    for (let r = 0; r < rows; r++) {
      let rowH = 0;
      for (let c = 0; c < p.columns; c++) {
        const i = r * p.columns + c;
        if (i < nq) rowH = Math.max(rowH, p.sizes[i].h);
      }
      h += cellHeader + rowH + margin;
    }
    const w = Math.max(minWidth, p.columns * p.cellW + (p.columns + 1) * margin);
    return { w, h };
  };
  let target = Math.max(16, opt.panelWidth);
  let p = plan(target);
  for (let iter = 0; iter < 40; iter++) {
    const { w, h } = totalSize(p);
    if ((w <= opt.maxWidth && w * h <= opt.maxPixels) || target <= 16) break;
    const shrink = Math.min(opt.maxWidth / w, Math.sqrt(opt.maxPixels / (w * h)), 0.95);
    target = Math.max(16, Math.floor(target * shrink));
    p = plan(target);
  }
  const size = totalSize(p);
  const width = size.w;
  const height = size.h;
  const img = new Raster(width, height);

  // title
  let y = margin;
  for (const line of input.title) {
    img.text(margin, y, line, S, BLACK);
    y += lineH;
  }
  // legend: χ bar and masked swatch; sequential bar
  {
    let x = img.text(margin, y, legendLine, S, BLACK);
    for (let k = 0; k < barW; k++) img.fillRect({ x: x + k, y, w: 1, h: TEXT_HEIGHT * S }, diverging(k / (barW - 1)));
    x = img.text(x + barW + S, y, ` +${fmt(opt.chiRange)}   MASKED `, S, BLACK);
    img.fillRect({ x, y, w: 8 * S, h: TEXT_HEIGHT * S }, MASKED);
    y += lineH;
    x = img.text(margin, y, 'OBSERVED, MODEL: ASINH STRETCH LO ', S, BLACK);
    for (let k = 0; k < barW; k++) img.fillRect({ x: x + k, y, w: 1, h: TEXT_HEIGHT * S }, sequential(k / (barW - 1)));
    img.text(x + barW + S, y, ' HI (PER QUADRANT, SHARED)', S, BLACK);
    y += lineH;
  }
  y = titleH;

  const layouts: QuadrantLayout[] = [];
  const rows = Math.ceil(nq / p.columns);
  for (let r = 0; r < rows; r++) {
    let rowH = 0;
    for (let c = 0; c < p.columns; c++) {
      const i = r * p.columns + c;
      if (i >= nq) continue;
      rowH = Math.max(rowH, p.sizes[i].h);
      const q = resolveQuadrant(quads[i], i);
      const f = p.factors[i];
      const b = bin(q, f);
      const st = stretchOf(b);
      const x0 = margin + c * (p.cellW + margin);
      const cellClip: Rect = { x: x0, y, w: p.cellW, h: lineH };
      const head = `${q.name}  ASINH ${fmt(st.lo)}..${fmt(st.hi)}  BIN ${f}x${f}  MASKED ${(100 * b.maskedFraction).toFixed(1)}%` + (b.sigmaEstimate !== undefined ? `  σ(MAD) ${fmt(b.sigmaEstimate)}` : '');
      // small cells (many quadrants): the quadrant line in the 1× font if it does not fit
      img.text(x0, y, head, textWidth(head, S) <= p.cellW ? S : 1, BLACK, cellClip);
      const panels: Rect[] = [0, 1, 2].map((k) => ({ x: x0 + k * (p.sizes[i].w + gap), y: y + cellHeader, w: b.w, h: b.h }));
      const names = ['OBSERVED', 'MODEL', `RESIDUAL CHI ±${fmt(opt.chiRange)}`];
      panels.forEach((pr, k) => img.text(pr.x, y + lineH, names[k], S, BLACK, { x: pr.x, y: y + lineH, w: Math.max(pr.w, 1), h: lineH }));
      const norm = Math.asinh((st.hi - st.lo) / st.beta);
      const toColour = (v: number): Rgb => sequential(Math.asinh(Math.max(0, v - st.lo) / st.beta) / norm);
      // panel rows are drawn with y up (FITS convention: pixel (0, 0) at the bottom-left)
      for (let by = 0; by < b.h; by++) {
        const py = b.h - 1 - by;
        for (let bx = 0; bx < b.w; bx++) {
          const k = by * b.w + bx;
          if (b.empty[k]) {
            for (const pr of panels) img.set(pr.x + bx, pr.y + py, MASKED);
            continue;
          }
          img.set(panels[0].x + bx, panels[0].y + py, toColour(b.obs[k]));
          img.set(panels[1].x + bx, panels[1].y + py, toColour(b.model[k]));
          img.set(panels[2].x + bx, panels[2].y + py, diverging(0.5 + b.chi[k] / (2 * opt.chiRange)));
        }
      }
      layouts.push({ name: q.name, factor: f, observed: panels[0], model: panels[1], residual: panels[2], stretch: st, sigmaEstimate: b.sigmaEstimate, maskedFraction: b.maskedFraction });
    }
    y += cellHeader + rowH + margin;
  }
  return { width, height, rgb: img.data, quadrants: layouts };
}

/** PNG bytes of the diagnostics image (8-bit RGB). */
export function diagnosticsPng(input: DiagnosticsInput, options: Partial<DiagnosticsOptions> = {}): Uint8Array {
  const im = renderDiagnostics(input, options);
  return encode({ width: im.width, height: im.height, data: im.rgb, channels: 3, depth: 8 });
}

/** Standard title lines for a sub-tile's diagnostics image (append your own lines as needed). */
export function diagnosticsTitle(s: SubtileShear): string[] {
  const e = (v: number) => (Number.isFinite(v) ? v.toFixed(5) : String(v));
  return [
    `TILE ${String(s.tileId)}  SUB-TILE (${s.row}, ${s.col})  METHOD ${s.method}  ${s.converged ? 'CONVERGED' : 'NOT CONVERGED'}  CONVERGENCE ${fmt(s.convergence)}` +
      (s.iterations !== undefined ? `  ITERATIONS ${s.iterations}` : ''),
    `G1 = ${e(s.g1)} ± ${e(s.g1Err)}   G2 = ${e(s.g2)} ± ${e(s.g2Err)}   N_SOURCES ${s.nSources}` + (s.nQuadrants !== undefined ? `   QUADRANTS ${s.nQuadrants}` : ''),
  ];
}
