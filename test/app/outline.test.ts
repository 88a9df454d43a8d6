/**
 * The modelled-area outline (app/src/outline.ts) against the mask it outlines: rasterised back by
 * ray casting (even–odd rule, an independent point-in-polygon test over the segments) it gives
 * the mask exactly, along rows and along columns; a rectangle is four segments.
 */
import { describe, it, expect } from 'vitest';
import { mulberry32 as rng } from '../../engine/util/rng.ts';
import { maskOutline } from '../../app/src/outline.ts';


/** Inside by casting a ray from the pixel centre towards +x (vertical segments crossed) or +y (horizontal ones). */
function inside(seg: Float32Array, px: number, py: number, axis: 'x' | 'y'): boolean {
  let n = 0;
  for (let i = 0; i < seg.length; i += 4) {
    const [x0, y0, x1, y1] = [seg[i], seg[i + 1], seg[i + 2], seg[i + 3]];
    if (axis === 'x' && x0 === x1 && x0 > px && Math.min(y0, y1) < py && py < Math.max(y0, y1)) n++;
    if (axis === 'y' && y0 === y1 && y0 > py && Math.min(x0, x1) < px && px < Math.max(x0, x1)) n++;
  }
  return n % 2 === 1;
}

describe('modelled-area outline', () => {
  it('a rectangle is four segments on its pixel edges; an empty mask has none', () => {
    const w = 10;
    const h = 8;
    const m = new Uint8Array(w * h);
    for (let y = 2; y < 5; y++) for (let x = 3; x < 9; x++) m[y * w + x] = 1;
    const s = maskOutline(m, w, h);
    expect(s.length / 4).toBe(4);
    const xs = new Set<number>();
    const ys = new Set<number>();
    for (let i = 0; i < s.length; i += 2) {
      xs.add(s[i]);
      ys.add(s[i + 1]);
    }
    expect([...xs].sort((a, b) => a - b)).toEqual([2.5, 8.5]);
    expect([...ys].sort((a, b) => a - b)).toEqual([1.5, 4.5]);
    expect(maskOutline(new Uint8Array(w * h), w, h).length).toBe(0);
  });

  it('unions of overlapping stamps with holes and edge contact: the segments rasterise back to the mask', () => {
    const u = rng(11);
    for (let trial = 0; trial < 25; trial++) {
      const w = 20 + Math.floor(u() * 40);
      const h = 15 + Math.floor(u() * 40);
      const m = new Uint8Array(w * h);
      for (let k = 0, n = 1 + Math.floor(u() * 8); k < n; k++) {
        const sw = 2 + Math.floor(u() * 20);
        const sh = 2 + Math.floor(u() * 20);
        const x0 = Math.floor(u() * w) - 5;
        const y0 = Math.floor(u() * h) - 5;
        for (let y = Math.max(0, y0); y < Math.min(h, y0 + sh); y++) for (let x = Math.max(0, x0); x < Math.min(w, x0 + sw); x++) m[y * w + x] = 1;
      }
      // a few holes (masked pixels inside the area)
      for (let k = 0; k < 5; k++) m[Math.floor(u() * w * h)] = 0;
      const s = maskOutline(m, w, h);
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          expect(inside(s, x, y, 'x')).toBe(m[y * w + x] === 1);
          expect(inside(s, x, y, 'y')).toBe(m[y * w + x] === 1);
        }
    }
  });
});
