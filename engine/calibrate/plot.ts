/**
 * calibration.png (docs/calibrate.md), drawn with the diagnostics raster and its 5×7 font:
 *  1. the pull distribution (ĝ − g)/σ̂ of every fit (both components) against N(0, 1);
 *  2. ĝ_i − g_i of every fit with its ±σ̂ bar (component 1 blue, 2 red);
 *  3. m_1, m_2 per seed with their means over every complete set and the bootstrap band.
 * Runtime-agnostic: returns PNG bytes.
 */
import { encode } from 'fast-png';
import { Raster, textWidth, type Rect, type Rgb } from '../outputs/raster.ts';
import { usable, type CalibrationFit, type CalibrationSummary } from './stats.ts';

const BLUE: Rgb = [33, 102, 172];
const RED: Rgb = [178, 24, 43];
const LIGHT_BLUE: Rgb = [180, 205, 235];
const LIGHT_RED: Rgb = [240, 190, 190];
const GREY: Rgb = [150, 150, 150];
const LIGHT_GREY: Rgb = [225, 225, 225];
const BAR: Rgb = [120, 150, 190];
const INK: Rgb = [0, 0, 0];

/** About `n` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, n);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * p).find((s) => s >= raw) ?? 10 * p;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function tickText(v: number, step: number): string {
  if (v === 0) return '0';
  const e = Math.floor(Math.log10(Math.abs(step)) + 1e-9);
  const lead = Math.abs(step) / 10 ** e;
  const d = Math.min(8, Math.max(0, -e + (Math.abs(lead - 2.5) < 1e-6 ? 1 : 0)));
  return v.toFixed(d);
}

/** One plot panel: data ranges mapped into a pixel rectangle, with clipping. */
class Panel {
  constructor(
    readonly img: Raster,
    readonly r: Rect,
    readonly x0: number,
    readonly x1: number,
    readonly y0: number,
    readonly y1: number,
  ) {}
  px(x: number): number {
    return this.r.x + ((x - this.x0) / (this.x1 - this.x0)) * (this.r.w - 1);
  }
  py(y: number): number {
    return this.r.y + this.r.h - 1 - ((y - this.y0) / (this.y1 - this.y0)) * (this.r.h - 1);
  }
  inside(x: number, y: number): boolean {
    return x >= this.r.x && y >= this.r.y && x < this.r.x + this.r.w && y < this.r.y + this.r.h;
  }
  dot(x: number, y: number, c: Rgb): void {
    const ix = Math.round(x);
    const iy = Math.round(y);
    if (this.inside(ix, iy)) this.img.set(ix, iy, c);
  }
  /** A line in pixel coordinates (Bresenham), clipped to the panel. */
  linePx(xa: number, ya: number, xb: number, yb: number, c: Rgb): void {
    if (![xa, ya, xb, yb].every(Number.isFinite)) return;
    let x = Math.round(xa);
    let y = Math.round(ya);
    const X = Math.round(xb);
    const Y = Math.round(yb);
    const dx = Math.abs(X - x);
    const dy = -Math.abs(Y - y);
    const sx = x < X ? 1 : -1;
    const sy = y < Y ? 1 : -1;
    let err = dx + dy;
    for (let k = 0; k < 20000; k++) {
      this.dot(x, y, c);
      if (x === X && y === Y) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y += sy;
      }
    }
  }
  line(xa: number, ya: number, xb: number, yb: number, c: Rgb): void {
    this.linePx(this.px(xa), this.py(ya), this.px(xb), this.py(yb), c);
  }
  /** A filled square marker of half-size h at data (x, y). */
  marker(x: number, y: number, c: Rgb, h = 2): void {
    const cx = Math.round(this.px(x));
    const cy = Math.round(this.py(y));
    for (let dy = -h; dy <= h; dy++) for (let dx = -h; dx <= h; dx++) this.dot(cx + dx, cy + dy, c);
  }
  /** A filled data rectangle, clipped. */
  fill(xa: number, ya: number, xb: number, yb: number, c: Rgb): void {
    const l = Math.max(this.r.x, Math.round(Math.min(this.px(xa), this.px(xb))));
    const rr = Math.min(this.r.x + this.r.w, Math.round(Math.max(this.px(xa), this.px(xb))) + 1);
    const t = Math.max(this.r.y, Math.round(Math.min(this.py(ya), this.py(yb))));
    const b = Math.min(this.r.y + this.r.h, Math.round(Math.max(this.py(ya), this.py(yb))) + 1);
    if (rr > l && b > t) this.img.fillRect({ x: l, y: t, w: rr - l, h: b - t }, c);
  }
  /** Frame, ticks and tick labels, axis titles. */
  axes(xTitle: string, yTitle: string, s: number, xTicks?: Array<[number, string]>): void {
    const { img, r } = this;
    img.frame(r, INK);
    const xt = xTicks ?? (() => {
      const t = niceTicks(this.x0, this.x1, 5);
      const step = t.length > 1 ? t[1] - t[0] : 1;
      return t.map((v) => [v, tickText(v, step)] as [number, string]);
    })();
    for (const [v, label] of xt) {
      const x = Math.round(this.px(v));
      if (x < r.x || x >= r.x + r.w) continue;
      img.fillRect({ x, y: r.y + r.h, w: 1, h: 4 * s }, INK);
      img.text(x - Math.floor(textWidth(label, s) / 2), r.y + r.h + 6 * s, label, s, INK);
    }
    const yt = niceTicks(this.y0, this.y1, 5);
    const ystep = yt.length > 1 ? yt[1] - yt[0] : 1;
    for (const v of yt) {
      const y = Math.round(this.py(v));
      if (y < r.y || y >= r.y + r.h) continue;
      img.fillRect({ x: r.x - 4 * s, y, w: 4 * s, h: 1 }, INK);
      const label = tickText(v, ystep);
      img.text(r.x - 6 * s - textWidth(label, s), y - Math.floor((7 * s) / 2), label, s, INK);
    }
    img.text(r.x + Math.floor((r.w - textWidth(xTitle, s)) / 2), r.y + r.h + 18 * s, xTitle, s, INK);
    img.text(r.x, r.y - 11 * s, yTitle, s, INK);
  }
}

function fmt(v: number, d = 4): string {
  return Number.isFinite(v) ? v.toFixed(d) : 'N/A';
}

function range(values: number[], pad = 0.08, fallback: [number, number] = [-1, 1]): [number, number] {
  const v = values.filter(Number.isFinite);
  if (!v.length) return fallback;
  let lo = Math.min(...v);
  let hi = Math.max(...v);
  if (hi - lo < 1e-12) {
    const d = Math.max(Math.abs(hi) * 0.1, 1e-6);
    lo -= d;
    hi += d;
  }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

export interface PlotInput {
  fits: readonly CalibrationFit[];
  summary: CalibrationSummary;
  /** Title lines (run parameters). */
  title: string[];
}

/** Standard normal density. */
function phi(x: number): number {
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}

/** The calibration figure as an RGB raster. */
export function renderCalibration(input: PlotInput): Raster {
  const s = 2; // font scale
  const pw = 520;
  const ph = 400;
  const left = 90;
  const gap = 110;
  const top = 12 + input.title.length * 10 * s + 130;
  const width = left + 3 * pw + 2 * gap + 60;
  const height = top + ph + 70;
  const img = new Raster(width, height);
  input.title.forEach((t, i) => img.text(20, 12 + i * 10 * s, t, s, INK));
  const { fits, summary } = input;
  const rect = (k: number): Rect => ({ x: left + k * (pw + gap), y: top, w: pw, h: ph });

  // 1. pulls
  {
    const all: number[] = [];
    for (const f of fits) {
      if (!usable(f)) continue;
      if (Number.isFinite(f.g1Err) && f.g1Err > 0) all.push((f.g1 - f.gTrue1) / f.g1Err);
      if (Number.isFinite(f.g2Err) && f.g2Err > 0) all.push((f.g2 - f.gTrue2) / f.g2Err);
    }
    const lim = 5;
    const bw = 0.5;
    const nb = Math.round((2 * lim) / bw);
    const counts = new Array<number>(nb).fill(0);
    let outside = 0;
    for (const p of all) {
      const b = Math.floor((p + lim) / bw);
      if (b < 0 || b >= nb) outside++;
      else counts[b]++;
    }
    const n = all.length;
    const ymax = Math.max(1, ...counts, n * bw * phi(0)) * 1.12;
    const P = new Panel(img, rect(0), -lim, lim, 0, ymax);
    for (let b = 0; b < nb; b++) if (counts[b] > 0) P.fill(-lim + b * bw + 0.02, 0, -lim + (b + 1) * bw - 0.02, counts[b], BAR);
    let prev: [number, number] | null = null;
    for (let k = 0; k <= 200; k++) {
      const x = -lim + (2 * lim * k) / 200;
      const y = n * bw * phi(x);
      if (prev) P.line(prev[0], prev[1], x, y, RED);
      prev = [x, y];
    }
    P.line(0, 0, 0, ymax, LIGHT_GREY);
    P.axes('PULL (GHAT - G) / σ', 'FITS PER BIN', s);
    const st = summary.pulls.all;
    const r = rect(0);
    const rs = summary.pullsByRealisation.all;
    const lines = [
      `PULLS: ${n} (BOTH COMPONENTS)${outside ? `, ${outside} OUTSIDE ±${lim}` : ''}`,
      `MEAN ${fmt(st.mean, 3)}  SD ${fmt(st.sd, 3)}  ROBUST ${fmt(st.robustSd, 3)}`,
      `PER REALISATION: SD ${fmt(rs.sd, 3)} ± ${fmt(rs.sdErr, 3)} (${rs.n})`,
      'RED: N(0,1) × N × BIN',
    ];
    lines.forEach((t, i) => img.text(r.x, r.y - 52 * s + i * 10 * s - 4 * s, t, s, INK));
  }

  // 2. ĝ − g per fit
  {
    const ok = fits.filter(usable);
    const d: number[] = [];
    for (const f of ok) {
      const e1 = Number.isFinite(f.g1Err) ? f.g1Err : 0;
      const e2 = Number.isFinite(f.g2Err) ? f.g2Err : 0;
      d.push(f.g1 - f.gTrue1 - e1, f.g1 - f.gTrue1 + e1, f.g2 - f.gTrue2 - e2, f.g2 - f.gTrue2 + e2);
    }
    const [ylo, yhi] = range([...d, 0]);
    const P = new Panel(img, rect(1), -0.5, Math.max(1, ok.length) - 0.5, ylo, yhi);
    P.line(-0.5, 0, ok.length, 0, GREY);
    ok.forEach((f, i) => {
      const x1 = i - 0.15;
      const x2 = i + 0.15;
      if (Number.isFinite(f.g1Err)) P.line(x1, f.g1 - f.gTrue1 - f.g1Err, x1, f.g1 - f.gTrue1 + f.g1Err, LIGHT_BLUE);
      if (Number.isFinite(f.g2Err)) P.line(x2, f.g2 - f.gTrue2 - f.g2Err, x2, f.g2 - f.gTrue2 + f.g2Err, LIGHT_RED);
    });
    ok.forEach((f, i) => {
      P.marker(i - 0.15, f.g1 - f.gTrue1, BLUE);
      P.marker(i + 0.15, f.g2 - f.gTrue2, RED);
    });
    P.axes('FIT (SEED, SUB-TILE, SIMULATION)', 'GHAT - G', s);
    const r = rect(1);
    const lines = [`GHAT - G PER FIT: ${ok.length} FITS`, 'BLUE: G1   RED: G2   BARS: ±σ', `SHAPE NOISE NOT CANCELLED IN SINGLE FITS`];
    lines.forEach((t, i) => img.text(r.x, r.y - 52 * s + i * 10 * s - 4 * s, t, s, INK));
  }

  // 3. m per seed
  {
    const per = summary.perSeed.filter((p) => p.nComplete > 0);
    const e1 = summary.estimates.m1;
    const e2 = summary.estimates.m2;
    const vals = [...per.flatMap((p) => [p.values.m1, p.values.m2]), e1.mean, e2.mean, e1.lo, e1.hi, e2.lo, e2.hi, 0];
    const [ylo, yhi] = range(vals);
    const nx = Math.max(1, per.length);
    const P = new Panel(img, rect(2), -0.5, nx - 0.5, ylo, yhi);
    if (Number.isFinite(e1.lo)) P.fill(-0.5, e1.lo, nx - 0.5, e1.hi, LIGHT_BLUE);
    if (Number.isFinite(e2.lo)) {
      // overlap of the two bands in a mixed tint
      P.fill(-0.5, e2.lo, nx - 0.5, e2.hi, LIGHT_RED);
      if (Number.isFinite(e1.lo)) {
        const lo = Math.max(e1.lo, e2.lo);
        const hi = Math.min(e1.hi, e2.hi);
        if (hi > lo) P.fill(-0.5, lo, nx - 0.5, hi, [210, 195, 225]);
      }
    }
    P.line(-0.5, 0, nx - 0.5, 0, GREY);
    if (Number.isFinite(e1.mean)) P.line(-0.5, e1.mean, nx - 0.5, e1.mean, BLUE);
    if (Number.isFinite(e2.mean)) P.line(-0.5, e2.mean, nx - 0.5, e2.mean, RED);
    per.forEach((p, i) => {
      P.marker(i - 0.1, p.values.m1, BLUE, 3);
      P.marker(i + 0.1, p.values.m2, RED, 3);
    });
    const step = Math.max(1, Math.ceil(per.length / 10));
    const ticks: Array<[number, string]> = per.map((p, i) => [i, String(p.seed)] as [number, string]).filter((_, i) => i % step === 0);
    P.axes('SEED', 'M PER SEED', s, ticks);
    const r = rect(2);
    const band = summary.bootstrap.seeds >= 2 ? 'BAND: BOOTSTRAP 16-84%' : 'NO BAND (< 2 SEEDS)';
    const lines = [`M1 ${fmt(e1.mean)} ± ${fmt(e1.err)} (BLUE)`, `M2 ${fmt(e2.mean)} ± ${fmt(e2.err)} (RED)`, `LINE: MEAN OF ${e1.n} SETS; ${band}`];
    lines.forEach((t, i) => img.text(r.x, r.y - 52 * s + i * 10 * s - 4 * s, t, s, INK));
  }
  return img;
}

/** calibration.png bytes (8-bit RGB). */
export function calibrationPng(input: PlotInput): Uint8Array {
  const im = renderCalibration(input);
  return encode({ width: im.width, height: im.height, data: im.data, channels: 3, depth: 8 });
}
