/**
 * Image views: per quadrant observed / model / residual χ canvases with one shared, synchronised
 * pan and zoom, source markers, stamps of a selected source, and the loss curve.
 */
import type { QuadrantImages } from '../../engine/subtile/run.ts';
import { finiteValues, stretchLimits, stretchValue, zscaleLimits, type StretchName } from './stretch.ts';
import type { SourceMark } from './api.ts';

export type Panel = 'observed' | 'model' | 'residual';
export const PANELS: Panel[] = ['observed', 'model', 'residual'];

/** Colour of masked pixels (not in the likelihood). */
const MASKED: [number, number, number] = [40, 70, 80];

/** χ = (obs − model)/rms where the mask is set, NaN elsewhere. */
export function residualChi(q: QuadrantImages): Float32Array {
  const out = new Float32Array(q.observed.length);
  for (let i = 0; i < out.length; i++) out[i] = q.mask[i] ? (q.observed[i] - q.model[i]) / q.rms[i] : NaN;
  return out;
}

export interface Limits {
  /** Observed and model share these. */
  image: [number, number];
  /** Residual χ: symmetric. */
  chi: [number, number];
}

const POOL_MAX = 4_000_000;

function strided(a: ArrayLike<number>, stride: number): ArrayLike<number> {
  if (stride === 1) return a;
  const out = new Float64Array(Math.ceil(a.length / stride));
  for (let i = 0, k = 0; i < a.length; i += stride, k++) out[k] = a[i];
  return out;
}

/** Shared colour limits over every quadrant (observed pixels for the images, χ for the residual). */
export function sharedLimits(quads: QuadrantImages[], chis: Float32Array[], stretch: StretchName): Limits {
  const pool = (arrs: Array<{ v: ArrayLike<number>; m: ArrayLike<number> }>) => {
    // every pixel up to POOL_MAX values in all; beyond, an even stride (the quantiles of millions of
    // pixels do not need all of them, and the page must not stall)
    const total = arrs.reduce((s, a) => s + a.v.length, 0);
    const stride = Math.max(1, Math.ceil(total / POOL_MAX));
    const parts = arrs.map((a) => finiteValues(strided(a.v, stride), strided(a.m, stride)));
    const all = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    return all;
  };
  const obs = pool(quads.map((q) => ({ v: q.observed, m: q.mask })));
  const image = stretchLimits(stretch, obs);
  let chi: [number, number] = [-5, 5];
  if (stretch === 'zscale') {
    const c = pool(chis.map((v, j) => ({ v, m: quads[j].mask })));
    if (c.length) {
      const [lo, hi] = zscaleLimits(c);
      const L = Math.max(Math.abs(lo), Math.abs(hi), 1e-3);
      chi = [-L, L];
    }
  }
  return { image, chi };
}

function greyRgb(t: number): [number, number, number] {
  const g = Math.round(255 * t);
  return [g, g, g];
}

/** Blue – white – red for χ (t = 0.5 is χ = 0). */
function divergingRgb(t: number): [number, number, number] {
  if (t < 0.5) {
    const u = t / 0.5;
    return [Math.round(40 + 215 * u), Math.round(80 + 175 * u), 255];
  }
  const u = (t - 0.5) / 0.5;
  return [255, Math.round(255 - 200 * u), Math.round(255 - 215 * u)];
}

/** Renders values to an offscreen canvas at native resolution (row 0 first; the view flips y). */
export function renderBitmap(values: ArrayLike<number>, mask: ArrayLike<number>, w: number, h: number, panel: Panel, stretch: StretchName, lim: Limits): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = w;
  c.height = h;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(w, h);
  const d = img.data;
  const [lo, hi] = panel === 'residual' ? lim.chi : lim.image;
  for (let i = 0; i < w * h; i++) {
    const v = values[i];
    let rgb: [number, number, number];
    if (!mask[i] || !Number.isFinite(v)) rgb = MASKED;
    else if (panel === 'residual') rgb = divergingRgb(stretchValue('linear', v, lo, hi));
    else rgb = greyRgb(stretchValue(stretch, v, lo, hi));
    d[4 * i] = rgb[0];
    d[4 * i + 1] = rgb[1];
    d[4 * i + 2] = rgb[2];
    d[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

/** Shared pan/zoom: screen pixels per image pixel, and the image point at the canvas centre as an offset from each image's centre. */
export interface ViewState {
  zoom: number;
  dx: number;
  dy: number;
}

export interface QuadrantView {
  name: string;
  width: number;
  height: number;
  bitmaps: Record<Panel, HTMLCanvasElement>;
  canvases: Record<Panel, HTMLCanvasElement>;
  marks: SourceMark[];
}

export interface DrawOptions {
  showSources: boolean;
  core: (index: number) => boolean;
  selected: number | null;
}

/** Image point (0-based pixel coordinates, y up) at the canvas centre. */
function centre(q: { width: number; height: number }, v: ViewState): [number, number] {
  return [q.width / 2 + v.dx, q.height / 2 + v.dy];
}

/** Screen position of image point (x, y) (pixel centres at integer + 0.5 in bitmap coordinates). */
export function toScreen(q: { width: number; height: number }, v: ViewState, cw: number, ch: number, x: number, y: number): [number, number] {
  const [cx, cy] = centre(q, v);
  return [cw / 2 + v.zoom * (x + 0.5 - cx), ch / 2 - v.zoom * (y + 0.5 - cy)];
}

export function toImage(q: { width: number; height: number }, v: ViewState, cw: number, ch: number, sx: number, sy: number): [number, number] {
  const [cx, cy] = centre(q, v);
  return [(sx - cw / 2) / v.zoom + cx - 0.5, -(sy - ch / 2) / v.zoom + cy - 0.5];
}

export function drawQuadrant(q: QuadrantView, v: ViewState, o: DrawOptions): void {
  for (const p of PANELS) {
    const c = q.canvases[p];
    const ctx = c.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#111';
    ctx.fillRect(0, 0, c.width, c.height);
    const [cx, cy] = centre(q, v);
    // bitmap row r holds image y = r; flip so y grows upwards
    ctx.setTransform(v.zoom, 0, 0, -v.zoom, c.width / 2 - v.zoom * cx, c.height / 2 + v.zoom * cy);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(q.bitmaps[p], 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (!o.showSources) continue;
    const r = Math.max(4, Math.min(14, 0.6 * v.zoom * 4));
    for (const m of q.marks) {
      const [sx, sy] = toScreen(q, v, c.width, c.height, m.x, m.y);
      if (sx < -r || sy < -r || sx > c.width + r || sy > c.height + r) continue;
      const core = o.core(m.index);
      ctx.lineWidth = m.index === o.selected ? 2.5 : 1.3;
      ctx.strokeStyle = m.index === o.selected ? '#ffe14d' : core ? '#3ddc84' : '#ff9f43';
      ctx.setLineDash(m.visible ? [] : [3, 3]);
      ctx.beginPath();
      if (core) ctx.arc(sx, sy, r, 0, 2 * Math.PI);
      else ctx.rect(sx - r, sy - r, 2 * r, 2 * r);
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }
}

/** A stamp (size × size image pixels) around (x, y), scaled by `scale`, from a bitmap. */
export function drawStamp(target: HTMLCanvasElement, bitmap: HTMLCanvasElement, x: number, y: number, size: number): void {
  const ctx = target.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = '#111';
  ctx.fillRect(0, 0, target.width, target.height);
  const z = target.width / size;
  // same flip as the main views: image (x, y) at the stamp centre
  ctx.setTransform(z, 0, 0, -z, target.width / 2 - z * (x + 0.5), target.height / 2 + z * (y + 0.5));
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bitmap, 0, 0);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.strokeStyle = 'rgba(255,225,77,0.8)';
  ctx.beginPath();
  ctx.moveTo(target.width / 2 - 4, target.height / 2);
  ctx.lineTo(target.width / 2 + 4, target.height / 2);
  ctx.moveTo(target.width / 2, target.height / 2 - 4);
  ctx.lineTo(target.width / 2, target.height / 2 + 4);
  ctx.stroke();
}

/** Loss over iterations: loss − min + 1 on a log axis (the loss is −log posterior, large and nearly flat). */
export function drawLoss(c: HTMLCanvasElement, history: number[], label: string): void {
  const ctx = c.getContext('2d')!;
  const W = c.width;
  const H = c.height;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = '#181b20';
  ctx.fillRect(0, 0, W, H);
  const h = history.filter(Number.isFinite);
  ctx.fillStyle = '#ccc';
  ctx.font = '11px sans-serif';
  if (h.length < 1) {
    ctx.fillText('no iterations', 10, 20);
    return;
  }
  const mn = Math.min(...h);
  const ys = h.map((v) => Math.log10(v - mn + 1));
  const ymax = Math.max(1e-9, ...ys);
  const L = 48;
  const R = 10;
  const T = 12;
  const B = 26;
  ctx.strokeStyle = '#555';
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillText(`${label}: loss − min + 1 (log₁₀), min ${mn.toFixed(2)}`, L, H - 6);
  for (let k = 0; k <= Math.ceil(ymax); k++) {
    const py = T + (H - T - B) * (1 - k / Math.max(ymax, 1));
    if (py < T - 1) break;
    ctx.fillText(`1e${k}`, 6, py + 4);
  }
  ctx.fillText(`${h.length - 1}`, W - R - 16, H - B + 12);
  ctx.strokeStyle = '#4db8ff';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ys.forEach((y, i) => {
    const px = L + ((W - L - R) * i) / Math.max(1, ys.length - 1);
    const py = T + (H - T - B) * (1 - y / Math.max(ymax, 1));
    if (i === 0) ctx.moveTo(px, py);
    else ctx.lineTo(px, py);
  });
  ctx.stroke();
}
