/** Planar polygon helpers for quadrant discovery: polygon ∩ axis-aligned rectangle. */
import type { PlaneBox } from './geometry.ts';

/** Even–odd point-in-polygon (points on the boundary may go either way). */
export function pointInPolygon(x: number, y: number, px: ArrayLike<number>, py: ArrayLike<number>): boolean {
  let inside = false;
  const n = px.length;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const yi = py[i];
    const yj = py[j];
    if (yi > y !== yj > y) {
      const xCross = px[i] + ((y - yi) * (px[j] - px[i])) / (yj - yi);
      if (x < xCross) inside = !inside;
    }
  }
  return inside;
}

/** True when the segment (x0,y0)–(x1,y1) meets the closed rectangle (Liang–Barsky clipping). */
export function segmentIntersectsRect(x0: number, y0: number, x1: number, y1: number, r: PlaneBox): boolean {
  let t0 = 0;
  let t1 = 1;
  const dx = x1 - x0;
  const dy = y1 - y0;
  const clip = (p: number, q: number): boolean => {
    if (p === 0) return q >= 0;
    const t = q / p;
    if (p < 0) {
      if (t > t1) return false;
      if (t > t0) t0 = t;
    } else {
      if (t < t0) return false;
      if (t < t1) t1 = t;
    }
    return true;
  };
  return clip(-dx, x0 - r.xi[0]) && clip(dx, r.xi[1] - x0) && clip(-dy, y0 - r.eta[0]) && clip(dy, r.eta[1] - y0) && t0 <= t1;
}

/**
 * True when a simple polygon (vertices in order, either orientation) and a closed rectangle
 * share at least one point: an edge of the polygon meets the rectangle, or the rectangle lies
 * entirely inside the polygon.
 */
export function polygonIntersectsRect(px: ArrayLike<number>, py: ArrayLike<number>, r: PlaneBox): boolean {
  const n = px.length;
  if (n === 0) return false;
  let minX = Infinity;
  let maxX = -Infinity;
  let minY = Infinity;
  let maxY = -Infinity;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(px[i]) || !Number.isFinite(py[i])) return false;
    minX = Math.min(minX, px[i]);
    maxX = Math.max(maxX, px[i]);
    minY = Math.min(minY, py[i]);
    maxY = Math.max(maxY, py[i]);
  }
  if (maxX < r.xi[0] || minX > r.xi[1] || maxY < r.eta[0] || minY > r.eta[1]) return false;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    if (segmentIntersectsRect(px[j], py[j], px[i], py[i], r)) return true;
  }
  // no edge touches the rectangle: either disjoint or the rectangle is inside the polygon
  return pointInPolygon((r.xi[0] + r.xi[1]) / 2, (r.eta[0] + r.eta[1]) / 2, px, py);
}
