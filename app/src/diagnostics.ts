/**
 * Diagnostic plots of a fit: the χ histogram of each quadrant against N(0, 1), the NUTS / VI traces
 * of g1 and g2 per chain, and the g1–g2 corner plot with the truth and the MAP. Plain 2D canvas.
 */

/** χ histogram bins: [-CHI_MAX, CHI_MAX] in steps of CHI_BIN, plus under/overflow counts. */
export const CHI_MAX = 5;
export const CHI_BIN = 0.25;

export interface ChiHistogram {
  edges: number[];
  counts: number[];
  under: number;
  over: number;
  n: number;
  mean: number;
  std: number;
}

/** Histogram of the finite χ values where `mask` is set. */
export function chiHistogram(chi: ArrayLike<number>, mask: ArrayLike<number>): ChiHistogram {
  const nb = Math.round((2 * CHI_MAX) / CHI_BIN);
  const counts = new Array<number>(nb).fill(0);
  let under = 0;
  let over = 0;
  let n = 0;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < chi.length; i++) {
    const v = chi[i];
    if (!mask[i] || !Number.isFinite(v)) continue;
    n++;
    s += v;
    s2 += v * v;
    if (v < -CHI_MAX) under++;
    else if (v >= CHI_MAX) over++;
    else counts[Math.min(nb - 1, Math.floor((v + CHI_MAX) / CHI_BIN))]++;
  }
  const mean = n ? s / n : NaN;
  return { edges: Array.from({ length: nb + 1 }, (_, k) => -CHI_MAX + k * CHI_BIN), counts, under, over, n, mean, std: n ? Math.sqrt(Math.max(0, s2 / n - mean * mean)) : NaN };
}

function colours(c: HTMLCanvasElement): { bg: string; fg: string } {
  const st = getComputedStyle(c);
  return { bg: st.getPropertyValue('--plot-bg').trim() || '#181b20', fg: st.getPropertyValue('--plot-fg').trim() || '#ccc' };
}

/** The histogram as a density on a log axis, with the N(0, 1) density. */
export function drawChiHistogram(c: HTMLCanvasElement, h: ChiHistogram, title: string): void {
  const ctx = c.getContext('2d')!;
  const { bg, fg } = colours(c);
  const W = c.width;
  const H = c.height;
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = fg;
  ctx.font = '10px sans-serif';
  ctx.fillText(title, 4, 11);
  ctx.fillText(`N ${h.n} · mean ${h.mean.toFixed(3)} · sd ${h.std.toFixed(3)} · |χ|>5: ${h.under + h.over}`, 4, 23);
  if (!h.n) return;
  const L = 6;
  const R = 6;
  const T = 28;
  const B = 14;
  const x = (v: number) => L + ((v + CHI_MAX) / (2 * CHI_MAX)) * (W - L - R);
  // log density from 1e-5 to 1
  const y = (d: number) => T + (H - T - B) * (1 - (Math.log10(Math.max(d, 1e-5)) + 5) / 5);
  ctx.strokeStyle = '#555';
  ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillStyle = '#4db8ff';
  h.counts.forEach((n, k) => {
    if (!n) return;
    const d = n / (h.n * CHI_BIN);
    ctx.fillRect(x(h.edges[k]), y(d), Math.max(1, x(h.edges[k + 1]) - x(h.edges[k]) - 1), H - B - y(d));
  });
  ctx.strokeStyle = '#ff9f43';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (let v = -CHI_MAX; v <= CHI_MAX + 1e-9; v += 0.05) {
    const d = Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);
    if (v === -CHI_MAX) ctx.moveTo(x(v), y(d));
    else ctx.lineTo(x(v), y(d));
  }
  ctx.stroke();
  ctx.fillStyle = fg;
  ctx.fillText('−5', L, H - 2);
  ctx.fillText('0', x(0) - 3, H - 2);
  ctx.fillText('5', W - R - 8, H - 2);
}

const CHAIN_COLOURS = ['#4db8ff', '#ff9f43', '#3ddc84', '#e06bff', '#ffe14d', '#ff5c8a'];

export interface Draws {
  chain: ArrayLike<number>;
  draw: ArrayLike<number>;
  g1: ArrayLike<number>;
  g2: ArrayLike<number>;
}

/** Traces of one parameter, one line per chain. */
export function drawTrace(c: HTMLCanvasElement, s: Draws, which: 'g1' | 'g2', truth: number | null): void {
  const ctx = c.getContext('2d')!;
  const { bg, fg } = colours(c);
  const W = c.width;
  const H = c.height;
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, W, H);
  const v = s[which];
  const n = v.length;
  if (!n) return;
  let lo = Infinity;
  let hi = -Infinity;
  let dmax = 0;
  for (let i = 0; i < n; i++) {
    lo = Math.min(lo, v[i]);
    hi = Math.max(hi, v[i]);
    dmax = Math.max(dmax, s.draw[i]);
  }
  if (truth !== null) {
    lo = Math.min(lo, truth);
    hi = Math.max(hi, truth);
  }
  const pad = 0.05 * (hi - lo || 1);
  lo -= pad;
  hi += pad;
  const L = 40;
  const T = 14;
  const B = 12;
  const px = (d: number) => L + (d / Math.max(1, dmax)) * (W - L - 6);
  const py = (g: number) => T + (H - T - B) * (1 - (g - lo) / (hi - lo));
  ctx.fillStyle = fg;
  ctx.font = '10px sans-serif';
  ctx.fillText(`${which} per chain (draws after warm-up)`, L, 10);
  ctx.fillText(hi.toFixed(3), 2, T + 8);
  ctx.fillText(lo.toFixed(3), 2, H - B);
  // the axes, for the tests: a draw (d, g) is at (px(d), py(g)), chain k in colours[k]
  c.dataset.axes = JSON.stringify({ L, T, right: W - 6, bottom: H - B, dmax: Math.max(1, dmax), lo, hi });
  c.dataset.colours = JSON.stringify(CHAIN_COLOURS);
  const chains = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const k = s.chain[i];
    if (!chains.has(k)) chains.set(k, []);
    chains.get(k)!.push(i);
  }
  ctx.lineWidth = 1;
  for (const [k, idx] of chains) {
    ctx.strokeStyle = CHAIN_COLOURS[k % CHAIN_COLOURS.length];
    ctx.beginPath();
    idx.forEach((i, m) => (m ? ctx.lineTo(px(s.draw[i]), py(v[i])) : ctx.moveTo(px(s.draw[i]), py(v[i]))));
    ctx.stroke();
  }
  if (truth !== null) {
    ctx.strokeStyle = '#ff5c8a';
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(L, py(truth));
    ctx.lineTo(W - 6, py(truth));
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

/** g1–g2 scatter of the draws, with the truth (red +) and the MAP (yellow ○) when known. */
export function drawCorner(c: HTMLCanvasElement, s: Draws, truth: { g1: number; g2: number } | null, map: { g1: number; g2: number } | null): void {
  const ctx = c.getContext('2d')!;
  const { bg, fg } = colours(c);
  const W = c.width;
  const H = c.height;
  ctx.fillStyle = bg;
  ctx.fillRect(0, 0, W, H);
  const n = s.g1.length;
  if (!n) return;
  const xs = [...Array.from(s.g1), ...(truth ? [truth.g1] : []), ...(map ? [map.g1] : [])];
  const ys = [...Array.from(s.g2), ...(truth ? [truth.g2] : []), ...(map ? [map.g2] : [])];
  const span = (a: number[]) => {
    const lo = Math.min(...a);
    const hi = Math.max(...a);
    const p = 0.08 * (hi - lo || 1);
    return [lo - p, hi + p];
  };
  const [x0, x1] = span(xs);
  const [y0, y1] = span(ys);
  const L = 40;
  const T = 14;
  const B = 18;
  const px = (g: number) => L + ((g - x0) / (x1 - x0)) * (W - L - 6);
  const py = (g: number) => T + (H - T - B) * (1 - (g - y0) / (y1 - y0));
  // the axes, for the tests: a draw (g1, g2) is at (px(g1), py(g2))
  c.dataset.axes = JSON.stringify({ L, T, right: W - 6, bottom: H - B, x0, x1, y0, y1 });
  ctx.fillStyle = fg;
  ctx.font = '10px sans-serif';
  ctx.fillText('g2 vs g1 (draws; + truth, ○ MAP)', L, 10);
  ctx.fillText(`${x0.toFixed(3)} … ${x1.toFixed(3)}`, L, H - 4);
  ctx.fillText(y1.toFixed(3), 2, T + 8);
  ctx.fillText(y0.toFixed(3), 2, H - B);
  ctx.fillStyle = 'rgba(77, 184, 255, 0.35)';
  for (let i = 0; i < n; i++) ctx.fillRect(px(s.g1[i]) - 1, py(s.g2[i]) - 1, 2, 2);
  if (map) {
    ctx.strokeStyle = '#ffe14d';
    ctx.beginPath();
    ctx.arc(px(map.g1), py(map.g2), 5, 0, 2 * Math.PI);
    ctx.stroke();
  }
  if (truth) {
    ctx.strokeStyle = '#ff5c8a';
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(px(truth.g1) - 6, py(truth.g2));
    ctx.lineTo(px(truth.g1) + 6, py(truth.g2));
    ctx.moveTo(px(truth.g1), py(truth.g2) - 6);
    ctx.lineTo(px(truth.g1), py(truth.g2) + 6);
    ctx.stroke();
    ctx.lineWidth = 1;
  }
}
