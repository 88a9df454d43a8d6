/**
 * Sky cross-match of two source catalogs (issue 5 item 4): every source of A is matched to its
 * nearest source of B within a radius, through a spatial index, in O(N log M).
 *
 * Method: B is indexed by its 3-D unit vectors in a k-d tree (static, implicit, median-split,
 * cycling x/y/z). The chord |a − b| between unit vectors is a monotone function of the angle
 * (chord = 2 sin(θ/2)), so a Euclidean nearest-neighbour search in 3-D is an angular one, with no
 * special case at RA = 0/360 (no RA coordinate exists in the index) nor at the poles (no
 * cos δ factor). The tree finds candidates within a chord slightly larger than the radius; the
 * decision `separation ≤ radius` (inclusive) and the reported separation use the numerically
 * stable great-circle formula of engine/data/wcs/sphere.ts.
 *
 * `unique`: each B is used at most once; all pairs within the radius are sorted by separation
 * (ties by A index, then B index) and taken greedily.
 *
 * Runtime-agnostic (no node: imports): file reading and writing are in cli/commands/crossmatch.ts.
 */
import { angularSeparation, DEG } from '../data/wcs/sphere.ts';

export interface CrossmatchOptions {
  /** Match radius in arcsec (> 0). */
  radiusArcsec: number;
  /** One-to-one matching: each B source used at most once (greedy by separation). */
  unique?: boolean;
}

export interface CrossmatchResult {
  /** Matched pairs, in increasing A index: A row, B row, separation (arcsec). */
  aIndex: Int32Array;
  bIndex: Int32Array;
  sepArcsec: Float64Array;
  nA: number;
  nB: number;
  /** Rows whose RA or Dec is not finite, or |Dec| > 90 (never matched). */
  invalidA: number;
  invalidB: number;
}

const LEAF = 16;

/** A static 3-D k-d tree over unit vectors of (ra, dec) in degrees. */
export class SkyIndex {
  readonly ids: Int32Array;
  /** xyz of point ids[k] at coords[3k .. 3k+2] (stored in tree order). */
  readonly coords: Float64Array;
  readonly ra: ArrayLike<number>;
  readonly dec: ArrayLike<number>;
  readonly invalid: number;

  constructor(ra: ArrayLike<number>, dec: ArrayLike<number>) {
    if (ra.length !== dec.length) throw new RangeError('ra and dec lengths differ');
    this.ra = ra;
    this.dec = dec;
    const valid: number[] = [];
    for (let i = 0; i < ra.length; i++) if (validSky(ra[i], dec[i])) valid.push(i);
    this.invalid = ra.length - valid.length;
    const n = valid.length;
    this.ids = Int32Array.from(valid);
    this.coords = new Float64Array(3 * n);
    for (let k = 0; k < n; k++) setVec(this.coords, k, ra[valid[k]], dec[valid[k]]);
    build(this.ids, this.coords, 0, n - 1, 0);
  }

  /**
   * Nearest point within `radiusArcsec` of (ra, dec) (inclusive); -1 when none. Ties in
   * separation go to the lower row index.
   */
  nearest(ra: number, dec: number, radiusArcsec: number): { index: number; sep: number } {
    const best = { index: -1, sep: Infinity };
    if (!validSky(ra, dec) || this.ids.length === 0) return best;
    const q = vecOf(ra, dec);
    const r = radiusArcsec;
    // chord bound with a margin: the final decision is made on the exact angular separation
    let bound = chordOf(r) * (1 + 1e-9) + 1e-15;
    let bound2 = bound * bound;
    const { ids, coords } = this;
    const stack: number[] = [0, ids.length - 1, 0];
    while (stack.length) {
      const axis = stack.pop()!;
      const right = stack.pop()!;
      const left = stack.pop()!;
      if (right - left <= LEAF) {
        for (let k = left; k <= right; k++) {
          const d2 = dist2(coords, k, q);
          if (d2 <= bound2) {
            const id = ids[k];
            const s = angularSeparation(ra, dec, this.ra[id], this.dec[id]) * 3600;
            if (s <= r && (s < best.sep || (s === best.sep && id < best.index))) {
              best.index = id;
              best.sep = s;
              bound = chordOf(s) * (1 + 1e-9) + 1e-15;
              bound2 = bound * bound;
            }
          }
        }
        continue;
      }
      const m = (left + right) >> 1;
      const d2 = dist2(coords, m, q);
      if (d2 <= bound2) {
        const id = ids[m];
        const s = angularSeparation(ra, dec, this.ra[id], this.dec[id]) * 3600;
        if (s <= r && (s < best.sep || (s === best.sep && id < best.index))) {
          best.index = id;
          best.sep = s;
          bound = chordOf(s) * (1 + 1e-9) + 1e-15;
          bound2 = bound * bound;
        }
      }
      const diff = q[axis] - coords[3 * m + axis];
      const next = (axis + 1) % 3;
      // push the far side first so that the near side is searched first
      if (diff <= 0) {
        if (-diff <= bound) stack.push(m + 1, right, next);
        stack.push(left, m - 1, next);
      } else {
        if (diff <= bound) stack.push(left, m - 1, next);
        stack.push(m + 1, right, next);
      }
    }
    return best;
  }

  /** Every point within `radiusArcsec` of (ra, dec) (inclusive): calls fn(row, sepArcsec). */
  within(ra: number, dec: number, radiusArcsec: number, fn: (index: number, sep: number) => void): void {
    if (!validSky(ra, dec) || this.ids.length === 0) return;
    const q = vecOf(ra, dec);
    const bound = chordOf(radiusArcsec) * (1 + 1e-9) + 1e-15;
    const bound2 = bound * bound;
    const { ids, coords } = this;
    const stack: number[] = [0, ids.length - 1, 0];
    const test = (k: number): void => {
      if (dist2(coords, k, q) <= bound2) {
        const id = ids[k];
        const s = angularSeparation(ra, dec, this.ra[id], this.dec[id]) * 3600;
        if (s <= radiusArcsec) fn(id, s);
      }
    };
    while (stack.length) {
      const axis = stack.pop()!;
      const right = stack.pop()!;
      const left = stack.pop()!;
      if (right - left <= LEAF) {
        for (let k = left; k <= right; k++) test(k);
        continue;
      }
      const m = (left + right) >> 1;
      test(m);
      const diff = q[axis] - coords[3 * m + axis];
      const next = (axis + 1) % 3;
      if (diff - bound <= 0) stack.push(left, m - 1, next);
      if (diff + bound >= 0) stack.push(m + 1, right, next);
    }
  }
}

/** Matches every source of A to its nearest B within the radius (or one-to-one with `unique`). */
export function crossmatch(
  raA: ArrayLike<number>,
  decA: ArrayLike<number>,
  raB: ArrayLike<number>,
  decB: ArrayLike<number>,
  options: CrossmatchOptions,
): CrossmatchResult {
  const r = options.radiusArcsec;
  if (!(r > 0) || !Number.isFinite(r)) throw new RangeError(`radius must be a positive number of arcsec, got ${r}`);
  if (r > 180 * 3600) throw new RangeError(`radius ${r} arcsec exceeds 180 degrees`);
  if (raA.length !== decA.length) throw new RangeError('A: ra and dec lengths differ');
  const index = new SkyIndex(raB, decB);
  let invalidA = 0;
  for (let i = 0; i < raA.length; i++) if (!validSky(raA[i], decA[i])) invalidA++;
  const a: number[] = [];
  const b: number[] = [];
  const s: number[] = [];
  if (!options.unique) {
    for (let i = 0; i < raA.length; i++) {
      const hit = index.nearest(raA[i], decA[i], r);
      if (hit.index >= 0) {
        a.push(i);
        b.push(hit.index);
        s.push(hit.sep);
      }
    }
  } else {
    const pa: number[] = [];
    const pb: number[] = [];
    const ps: number[] = [];
    for (let i = 0; i < raA.length; i++) {
      index.within(raA[i], decA[i], r, (j, sep) => {
        pa.push(i);
        pb.push(j);
        ps.push(sep);
      });
    }
    const order = Array.from({ length: pa.length }, (_, k) => k);
    order.sort((x, y) => ps[x] - ps[y] || pa[x] - pa[y] || pb[x] - pb[y]);
    const usedA = new Uint8Array(raA.length);
    const usedB = new Uint8Array(raB.length);
    const chosen: number[] = [];
    for (const k of order) {
      if (usedA[pa[k]] || usedB[pb[k]]) continue;
      usedA[pa[k]] = 1;
      usedB[pb[k]] = 1;
      chosen.push(k);
    }
    chosen.sort((x, y) => pa[x] - pa[y]);
    for (const k of chosen) {
      a.push(pa[k]);
      b.push(pb[k]);
      s.push(ps[k]);
    }
  }
  return {
    aIndex: Int32Array.from(a),
    bIndex: Int32Array.from(b),
    sepArcsec: Float64Array.from(s),
    nA: raA.length,
    nB: raB.length,
    invalidA,
    invalidB: index.invalid,
  };
}

export interface RobustStats {
  n: number;
  median: number;
  /** 1.4826 × median absolute deviation. */
  scatter: number;
}

/** Median and 1.4826·MAD of the finite values (NaN when none). */
export function robustStats(values: ArrayLike<number>): RobustStats {
  const v: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) v.push(values[i]);
  if (v.length === 0) return { n: 0, median: NaN, scatter: NaN };
  const med = quantileSorted(Float64Array.from(v).sort(), 0.5);
  const dev = Float64Array.from(v, (x) => Math.abs(x - med)).sort();
  return { n: v.length, median: med, scatter: 1.4826 * quantileSorted(dev, 0.5) };
}

/** Linear-interpolated quantile (numpy's default) of sorted values; NaN when empty. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const p = q * (n - 1);
  const lo = Math.floor(p);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (p - lo) * (sorted[hi] - sorted[lo]);
}

function validSky(ra: number, dec: number): boolean {
  return Number.isFinite(ra) && Number.isFinite(dec) && dec >= -90 && dec <= 90;
}

function vecOf(ra: number, dec: number): [number, number, number] {
  const a = ra * DEG;
  const d = dec * DEG;
  const cd = Math.cos(d);
  return [cd * Math.cos(a), cd * Math.sin(a), Math.sin(d)];
}

function setVec(out: Float64Array, k: number, ra: number, dec: number): void {
  const v = vecOf(ra, dec);
  out[3 * k] = v[0];
  out[3 * k + 1] = v[1];
  out[3 * k + 2] = v[2];
}

function chordOf(arcsec: number): number {
  return 2 * Math.sin(Math.min(arcsec / 3600, 180) * DEG * 0.5);
}

function dist2(c: Float64Array, k: number, q: readonly number[]): number {
  const dx = c[3 * k] - q[0];
  const dy = c[3 * k + 1] - q[1];
  const dz = c[3 * k + 2] - q[2];
  return dx * dx + dy * dy + dz * dz;
}

/** Median-split build (as kdbush, in 3-D): node m = (left+right)>>1 splits on `axis`. */
function build(ids: Int32Array, coords: Float64Array, left: number, right: number, axis: number): void {
  if (right - left <= LEAF) return;
  const m = (left + right) >> 1;
  select(ids, coords, m, left, right, axis);
  const next = (axis + 1) % 3;
  build(ids, coords, left, m - 1, next);
  build(ids, coords, m + 1, right, next);
}

/** Floyd–Rivest-free quickselect (Hoare partition around the middle element). */
function select(ids: Int32Array, coords: Float64Array, k: number, left: number, right: number, axis: number): void {
  while (right > left) {
    const pivot = coords[3 * ((left + right) >> 1) + axis];
    let i = left;
    let j = right;
    while (i <= j) {
      while (coords[3 * i + axis] < pivot) i++;
      while (coords[3 * j + axis] > pivot) j--;
      if (i <= j) {
        swap(ids, coords, i, j);
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return;
  }
}

function swap(ids: Int32Array, c: Float64Array, i: number, j: number): void {
  const t = ids[i];
  ids[i] = ids[j];
  ids[j] = t;
  for (let a = 0; a < 3; a++) {
    const x = c[3 * i + a];
    c[3 * i + a] = c[3 * j + a];
    c[3 * j + a] = x;
  }
}
