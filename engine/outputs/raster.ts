/**
 * A minimal RGB raster for the diagnostics PNG: rectangles, text in the built-in 5×7 font, and
 * the colour maps (viridis-like sequential, blue–white–red diverging).
 */
import { glyph, GLYPH_HEIGHT, GLYPH_WIDTH } from './font.ts';

export type Rgb = readonly [number, number, number];

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export class Raster {
  readonly width: number;
  readonly height: number;
  /** RGB, 3 bytes per pixel, row-major from the top-left. */
  readonly data: Uint8Array;

  constructor(width: number, height: number, background: Rgb = [255, 255, 255]) {
    this.width = width;
    this.height = height;
    this.data = new Uint8Array(width * height * 3);
    this.fillRect({ x: 0, y: 0, w: width, h: height }, background);
  }

  set(x: number, y: number, c: Rgb): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const o = (y * this.width + x) * 3;
    this.data[o] = c[0];
    this.data[o + 1] = c[1];
    this.data[o + 2] = c[2];
  }

  get(x: number, y: number): [number, number, number] {
    const o = (y * this.width + x) * 3;
    return [this.data[o], this.data[o + 1], this.data[o + 2]];
  }

  fillRect(r: Rect, c: Rgb): void {
    const x0 = Math.max(0, r.x);
    const y0 = Math.max(0, r.y);
    const x1 = Math.min(this.width, r.x + r.w);
    const y1 = Math.min(this.height, r.y + r.h);
    for (let y = y0; y < y1; y++) {
      let o = (y * this.width + x0) * 3;
      for (let x = x0; x < x1; x++, o += 3) {
        this.data[o] = c[0];
        this.data[o + 1] = c[1];
        this.data[o + 2] = c[2];
      }
    }
  }

  /** 1-pixel outline just outside `r`. */
  frame(r: Rect, c: Rgb): void {
    this.fillRect({ x: r.x - 1, y: r.y - 1, w: r.w + 2, h: 1 }, c);
    this.fillRect({ x: r.x - 1, y: r.y + r.h, w: r.w + 2, h: 1 }, c);
    this.fillRect({ x: r.x - 1, y: r.y, w: 1, h: r.h }, c);
    this.fillRect({ x: r.x + r.w, y: r.y, w: 1, h: r.h }, c);
  }

  /**
   * Draws text with its top-left at (x, y), each font pixel a scale×scale square; characters
   * advance by 6·scale. Pixels outside `clip` (default: the raster) are not drawn.
   * Returns the x after the last character.
   */
  text(x: number, y: number, s: string, scale: number, c: Rgb, clip?: Rect): number {
    const cx0 = clip ? clip.x : 0;
    const cy0 = clip ? clip.y : 0;
    const cx1 = clip ? clip.x + clip.w : this.width;
    const cy1 = clip ? clip.y + clip.h : this.height;
    for (const ch of s) {
      const g = glyph(ch);
      for (let row = 0; row < GLYPH_HEIGHT; row++) {
        const bits = g[row];
        for (let col = 0; col < GLYPH_WIDTH; col++) {
          if (!(bits & (1 << (GLYPH_WIDTH - 1 - col)))) continue;
          for (let dy = 0; dy < scale; dy++) {
            const py = y + row * scale + dy;
            if (py < cy0 || py >= cy1) continue;
            for (let dx = 0; dx < scale; dx++) {
              const px = x + col * scale + dx;
              if (px >= cx0 && px < cx1) this.set(px, py, c);
            }
          }
        }
      }
      x += (GLYPH_WIDTH + 1) * scale;
    }
    return x;
  }
}

/** Width in pixels of `s` drawn at `scale` (without the trailing 1-pixel gap). */
export function textWidth(s: string, scale: number): number {
  const n = [...s].length;
  return n === 0 ? 0 : (n * (GLYPH_WIDTH + 1) - 1) * scale;
}

export const TEXT_HEIGHT = GLYPH_HEIGHT;

function ramp(stops: ReadonlyArray<Rgb>, t: number): Rgb {
  const u = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const f = u - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

/** Sequential map (viridis, sampled at 9 points): t in [0, 1], dark purple → yellow. */
export const SEQUENTIAL_STOPS: ReadonlyArray<Rgb> = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** Diverging map (blue – white – red, ColorBrewer RdBu reversed): t in [0, 1], 0.5 = white. */
export const DIVERGING_STOPS: ReadonlyArray<Rgb> = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [247, 247, 247],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
];

export function sequential(t: number): Rgb {
  return ramp(SEQUENTIAL_STOPS, t);
}

export function diverging(t: number): Rgb {
  return ramp(DIVERGING_STOPS, t);
}

/** Masked / no-data pixels: neutral grey, not in either colour map. */
export const MASKED: Rgb = [128, 128, 128];
export const BLACK: Rgb = [0, 0, 0];
export const WHITE: Rgb = [255, 255, 255];
