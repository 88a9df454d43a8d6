/**
 * Image views locked by sky position: every canvas shows the same patch of sky, North up and East
 * left, on a gnomonic projection about the sub-tile centre. Each quadrant's pixels are drawn through
 * the local linearisation of its own WCS at the view centre, so a source sits at the same canvas
 * position in every quadrant and exposure (to the WCS's non-linearity across one canvas, far below
 * a pixel for TAN/TPV quadrants). Also: source markers, the crosshair, stamps and the loss curve.
 */
import type { Wcs, TangentPlane } from '../../engine/data/wcs/index.ts';

/** Shared view: the sky point at the canvas centre (tangent-plane u = −ξ, v = η, arcsec) and screen pixels per image pixel. */
export interface ViewState {
  u: number;
  v: number;
  zoom: number;
}

/** Pixel (0-based, x, y) → screen: [L00, L01, L10, L11, t0, t1] with screen = L·(x, y) + t. */
export type Affine = [number, number, number, number, number, number];

/**
 * The affine map of a quadrant's pixels to the canvas for the current view: its WCS linearised
 * (finite differences over one pixel) at the pixel under the view centre.
 */
export function quadrantAffine(wcs: Wcs, tp: TangentPlane, pixelScale: number, v: ViewState, cw: number, ch: number, fallback: [number, number]): Affine {
  const [ra, dec] = tp.toSky(v.u, v.v);
  let [x0, y0] = wcs.skyToPixel(ra, dec);
  if (!Number.isFinite(x0) || !Number.isFinite(y0)) [x0, y0] = fallback;
  const uv = (x: number, y: number) => {
    const [r, d] = wcs.pixelToSky(x, y);
    return tp.toUV(r, d);
  };
  const p0 = uv(x0, y0);
  const px = uv(x0 + 1, y0);
  const py = uv(x0, y0 + 1);
  const J = [px[0] - p0[0], py[0] - p0[0], px[1] - p0[1], py[1] - p0[1]];
  const s = v.zoom / pixelScale;
  const L00 = s * J[0];
  const L01 = s * J[1];
  const L10 = -s * J[2];
  const L11 = -s * J[3];
  const t0 = cw / 2 + s * (p0[0] - v.u) - (L00 * x0 + L01 * y0);
  const t1 = ch / 2 - s * (p0[1] - v.v) - (L10 * x0 + L11 * y0);
  return [L00, L01, L10, L11, t0, t1];
}

export function applyAffine(a: Affine, x: number, y: number): [number, number] {
  return [a[0] * x + a[1] * y + a[4], a[2] * x + a[3] * y + a[5]];
}

export function invertAffine(a: Affine, sx: number, sy: number): [number, number] {
  const det = a[0] * a[3] - a[1] * a[2];
  const dx = sx - a[4];
  const dy = sy - a[5];
  return [(a[3] * dx - a[1] * dy) / det, (-a[2] * dx + a[0] * dy) / det];
}

/** Screen position of tangent-plane point (u, v) (identical on every canvas of the same size). */
export function uvToScreen(v: ViewState, pixelScale: number, cw: number, ch: number, u: number, vv: number): [number, number] {
  const s = v.zoom / pixelScale;
  return [cw / 2 + s * (u - v.u), ch / 2 - s * (vv - v.v)];
}

export function screenToUv(v: ViewState, pixelScale: number, cw: number, ch: number, sx: number, sy: number): [number, number] {
  const s = v.zoom / pixelScale;
  return [v.u + (sx - cw / 2) / s, v.v - (sy - ch / 2) / s];
}

export interface Mark {
  /** Index in the manifest's sources (kind 'source') or unmodelled list (kind 'unmodelled'). */
  index: number;
  kind: 'source' | 'unmodelled';
  core: boolean;
  objectId: string;
  /** 0-based pixel centre on this quadrant. */
  x: number;
  y: number;
  inside: boolean;
  /** Inside and the centre pixel enters the likelihood. */
  visible: boolean;
}

export interface Bitmap {
  image: HTMLCanvasElement;
  /** Block size it was rendered at. */
  k: number;
  /** Render generation (stretch, limits, colormap, data) it belongs to. */
  gen: number;
  /** Generation, block size and model version: a bitmap is current when its key is. */
  key: string;
  /** Block values shown (NaN: masked). */
  values: Float32Array;
  width: number;
  height: number;
}

export interface DrawOptions {
  showSources: boolean;
  showIds: boolean;
  selected: number | null;
  crosshair: [number, number] | null;
  /** Text when there is nothing to draw. */
  placeholder: string;
  /** Outline segments in image pixels (x0, y0, x1, y1 each: outline.ts), drawn over the bitmap. */
  outline?: Float32Array | null;
}

/** Draws a bitmap (block size k) through the affine, then the markers and the crosshair. */
export function drawCanvas(c: HTMLCanvasElement, a: Affine, bm: Bitmap | null, marks: Mark[], zoom: number, o: DrawOptions): void {
  const ctx = c.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = '#111';
  ctx.fillRect(0, 0, c.width, c.height);
  if (bm) {
    const k = bm.k;
    // bitmap coordinate b covers image pixels [k·b − 0.5, k·(b+1) − 0.5)
    ctx.setTransform(k * a[0], k * a[2], k * a[1], k * a[3], a[4] - 0.5 * (a[0] + a[1]), a[5] - 0.5 * (a[2] + a[3]));
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(bm.image, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
  } else {
    ctx.fillStyle = '#778';
    ctx.font = '11px sans-serif';
    ctx.textAlign = 'center';
    o.placeholder.split('\n').forEach((line, k) => ctx.fillText(line, c.width / 2, c.height / 2 + 14 * k));
    ctx.textAlign = 'start';
  }
  if (bm && o.outline && o.outline.length) {
    // the modelled area: thin dashed cyan, in screen pixels whatever the zoom
    ctx.strokeStyle = 'rgba(77, 208, 225, 0.9)';
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    const s = o.outline;
    for (let i = 0; i < s.length; i += 4) {
      const [ax, ay] = applyAffine(a, s[i], s[i + 1]);
      const [bx, by] = applyAffine(a, s[i + 2], s[i + 3]);
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
  if (o.showSources) {
    const r = Math.max(4, Math.min(14, 2.4 * zoom));
    ctx.font = '10px sans-serif';
    for (const m of marks) {
      const [sx, sy] = applyAffine(a, m.x, m.y);
      if (sx < -r || sy < -r || sx > c.width + r || sy > c.height + r) continue;
      const sel = m.kind === 'source' && m.index === o.selected;
      ctx.lineWidth = sel ? 2.5 : 1.3;
      ctx.setLineDash(m.visible || m.kind === 'unmodelled' ? [] : [3, 3]);
      ctx.beginPath();
      if (m.kind === 'unmodelled') {
        ctx.strokeStyle = '#ff5c8a';
        const d = 0.7 * r;
        ctx.moveTo(sx - d, sy - d);
        ctx.lineTo(sx + d, sy + d);
        ctx.moveTo(sx - d, sy + d);
        ctx.lineTo(sx + d, sy - d);
      } else {
        ctx.strokeStyle = sel ? '#ffe14d' : m.core ? '#3ddc84' : '#ff9f43';
        if (m.core) ctx.arc(sx, sy, r, 0, 2 * Math.PI);
        else ctx.rect(sx - r, sy - r, 2 * r, 2 * r);
      }
      ctx.stroke();
      if (o.showIds) {
        ctx.fillStyle = ctx.strokeStyle;
        ctx.fillText(m.objectId, sx + r + 2, sy - r);
      }
    }
    ctx.setLineDash([]);
  }
  if (o.crosshair) {
    const [x, y] = o.crosshair;
    ctx.strokeStyle = 'rgba(255, 225, 77, 0.85)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x + 0.5, 0);
    ctx.lineTo(x + 0.5, c.height);
    ctx.moveTo(0, y + 0.5);
    ctx.lineTo(c.width, y + 0.5);
    ctx.stroke();
  }
}

/** A stamp from an RGBA cutout (size × size image pixels, row 0 = lowest y) with y up. */
export function drawStamp(target: HTMLCanvasElement, cut: HTMLCanvasElement): void {
  const ctx = target.getContext('2d')!;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = '#111';
  ctx.fillRect(0, 0, target.width, target.height);
  const z = target.width / cut.width;
  ctx.setTransform(z, 0, 0, -z, 0, target.height);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(cut, 0, 0);
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
  ctx.fillStyle = getComputedStyle(c).getPropertyValue('--plot-bg').trim() || '#181b20';
  ctx.fillRect(0, 0, W, H);
  const h = history.filter(Number.isFinite);
  ctx.fillStyle = getComputedStyle(c).getPropertyValue('--plot-fg').trim() || '#ccc';
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
