/**
 * Quadrant records, the survey-scale quadrant index and quadrant discovery (docs/prepare.md "Geometry").
 *
 * A record holds what discovery needs, read from headers only: the file, the SCI/RMS/FLG HDU
 * names, the image size and the sky outline (4 corners + 4 edge midpoints of the pixel area,
 * through the quadrant's full WCS). The index keeps every record's RA/Dec bounding box in a
 * flatbush R-tree (boxes crossing RA = 0 are stored twice, shifted by 360°; boxes holding a
 * pole span all RA), so finding the quadrants near a tile is a tree query whatever the number of
 * quadrants. Discovery then projects each candidate's outline onto the tile's tangent plane and
 * tests the polygon against each sub-tile's extended area exactly.
 */
import Flatbush from 'flatbush';
import type { FitsFile } from '../data/fits/file.ts';
import { parseWcs, footprintSky, type Wcs } from '../data/wcs/wcs.ts';
import { tangentPlane } from '../data/wcs/sphere.ts';
import { DataError } from '../errors.ts';
import type { PlaneBox, TileGeometry } from './geometry.ts';
import { polygonIntersectsRect, pointInPolygon } from './polygon.ts';

export interface QuadrantRecord {
  /** "<quadrant>@<exposure>", e.g. "3-4.F@exp0" (docs/prepare.md, manifest `quadrant_ids`). */
  id: string;
  /** Exposure key ("exp0", …): the position of the DET file in the prepared exposure list. */
  exposure: string;
  /** Quadrant name "<ccd>.<quad>", e.g. "3-4.F". */
  quadrant: string;
  file: string;
  sciHdu: string;
  rmsHdu: string;
  flgHdu: string;
  width: number;
  height: number;
  /** Sky outline (deg): corners and edge midpoints of the pixel area, counter-clockwise in pixels from (−0.5, −0.5). */
  outline: Array<[number, number]>;
}

/** Outline points per edge (2: corners and edge midpoints). */
export const OUTLINE_PER_EDGE = 2;

/** The sky outline of a width × height image through its WCS. */
export function quadrantOutline(wcs: Wcs, width: number, height: number): Array<[number, number]> {
  return footprintSky(wcs, width, height, OUTLINE_PER_EDGE);
}

/**
 * Quadrant records of one VIS DET file, from its headers only (FitsFile.open reads no pixels).
 * Quadrants are the HDUs named "<name>.SCI"; "<name>.RMS" and "<name>.FLG" must exist too.
 */
export function quadrantsOfFile(fits: FitsFile, exposure: string, file = fits.name, warnings?: string[]): QuadrantRecord[] {
  const byName = new Map<string, { sci?: string; rms?: string; flg?: string }>();
  for (const h of fits.hdus) {
    const m = /^(.+)\.(SCI|RMS|FLG)$/i.exec(h.name.trim());
    if (!m) continue;
    const q = byName.get(m[1]) ?? {};
    const kind = m[2].toUpperCase();
    if (kind === 'SCI') q.sci = h.name;
    else if (kind === 'RMS') q.rms = h.name;
    else q.flg = h.name;
    byName.set(m[1], q);
  }
  const out: QuadrantRecord[] = [];
  for (const [name, q] of byName) {
    if (!q.sci) continue;
    if (!q.rms) throw new DataError(`quadrant ${name} has a SCI HDU but no ${name}.RMS`, { file, hdu: q.sci });
    if (!q.flg) throw new DataError(`quadrant ${name} has a SCI HDU but no ${name}.FLG`, { file, hdu: q.sci });
    const info = fits.hdu(q.sci);
    if (info.naxis.length !== 2) throw new DataError(`expected a 2-D image, NAXIS = ${info.naxis.length}`, { file, hdu: q.sci, key: 'NAXIS' });
    for (const other of [q.rms, q.flg]) {
      const o = fits.hdu(other);
      if (o.naxis[0] !== info.naxis[0] || o.naxis[1] !== info.naxis[1]) {
        throw new DataError(`image is ${o.naxis.join('×')}, the SCI image ${info.naxis.join('×')}`, { file, hdu: other, key: 'NAXIS1' });
      }
    }
    const [w, h] = info.naxis;
    const wcs = parseWcs(fits.header(q.sci), { file, hdu: q.sci }, { warnings });
    out.push({
      id: `${name}@${exposure}`,
      exposure,
      quadrant: name,
      file,
      sciHdu: q.sci,
      rmsHdu: q.rms,
      flgHdu: q.flg,
      width: w,
      height: h,
      outline: quadrantOutline(wcs, w, h),
    });
  }
  out.sort((a, b) => (a.quadrant < b.quadrant ? -1 : a.quadrant > b.quadrant ? 1 : 0));
  return out;
}

/** RA/Dec boxes of a sky polygon (1 box, 2 when it crosses RA = 0, full RA when it holds a pole), padded. */
export function skyBoxes(outline: ReadonlyArray<readonly [number, number]>, padFraction = 0.05): Array<[number, number, number, number]> {
  if (outline.length === 0) return [];
  const ra0 = outline[0][0];
  let lo = Infinity;
  let hi = -Infinity;
  let dlo = Infinity;
  let dhi = -Infinity;
  let sx = 0;
  let sy = 0;
  let sz = 0;
  for (const [ra, dec] of outline) {
    const d = ((((ra - ra0) % 360) + 540) % 360) - 180;
    lo = Math.min(lo, ra0 + d);
    hi = Math.max(hi, ra0 + d);
    dlo = Math.min(dlo, dec);
    dhi = Math.max(dhi, dec);
    const a = (ra * Math.PI) / 180;
    const b = (dec * Math.PI) / 180;
    sx += Math.cos(b) * Math.cos(a);
    sy += Math.cos(b) * Math.sin(a);
    sz += Math.sin(b);
  }
  // does the polygon hold a pole? test on the tangent plane at its mean direction
  const cra = (Math.atan2(sy, sx) * 180) / Math.PI;
  const cdec = (Math.atan2(sz, Math.hypot(sx, sy)) * 180) / Math.PI;
  const tp = tangentPlane(cra, cdec);
  const px: number[] = [];
  const py: number[] = [];
  for (const [ra, dec] of outline) {
    const [u, v] = tp.toUV(ra, dec);
    px.push(u);
    py.push(v);
  }
  const decPad = Math.max((dhi - dlo) * padFraction, 1e-7);
  for (const pole of [90, -90]) {
    const [u, v] = tp.toUV(0, pole);
    if (Number.isFinite(u) && pointInPolygon(u, v, px, py)) {
      return pole > 0 ? [[0, Math.max(-90, dlo - decPad), 360, 90]] : [[0, -90, 360, Math.min(90, dhi + decPad)]];
    }
  }
  const maxAbsDec = Math.min(89.999, Math.max(Math.abs(dlo), Math.abs(dhi)) + decPad);
  const raPad = Math.max((hi - lo) * padFraction, decPad / Math.cos((maxAbsDec * Math.PI) / 180));
  const d0 = Math.max(-90, dlo - decPad);
  const d1 = Math.min(90, dhi + decPad);
  let a = lo - raPad;
  let b = hi + raPad;
  if (b - a >= 360) return [[0, d0, 360, d1]];
  // bring a into [0, 360)
  const shift = Math.floor(a / 360) * 360;
  a -= shift;
  b -= shift;
  if (b <= 360) return [[a, d0, b, d1]];
  return [
    [a, d0, 360, d1],
    [0, d0, b - 360, d1],
  ];
}

/** Spatial index over quadrant records (flatbush on RA/Dec boxes). */
export class QuadrantIndex {
  readonly records: readonly QuadrantRecord[];
  private readonly tree: Flatbush | null;
  /** tree item → record index */
  private readonly owner: Int32Array;

  constructor(records: readonly QuadrantRecord[]) {
    this.records = records;
    const boxes: Array<[number, [number, number, number, number]]> = [];
    records.forEach((r, i) => {
      for (const b of skyBoxes(r.outline)) boxes.push([i, b]);
    });
    this.owner = new Int32Array(boxes.length);
    if (boxes.length === 0) {
      this.tree = null;
      return;
    }
    const tree = new Flatbush(boxes.length);
    for (const [i, b] of boxes) this.owner[tree.add(b[0], b[1], b[2], b[3])] = i;
    tree.finish();
    this.tree = tree;
  }

  /** Record indices whose sky box meets the sky box(es) of `outline` (ascending, unique). */
  candidates(outline: ReadonlyArray<readonly [number, number]>): number[] {
    if (!this.tree) return [];
    const set = new Set<number>();
    for (const b of skyBoxes(outline)) for (const k of this.tree.search(b[0], b[1], b[2], b[3])) set.add(this.owner[k]);
    return [...set].sort((a, b) => a - b);
  }
}

/** The outline (sky) of a tangent-plane box, sampled along its edges. */
export function boxOutlineSky(geom: TileGeometry, box: PlaneBox, perEdge = 16): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const [x0, x1] = box.xi;
  const [y0, y1] = box.eta;
  for (let i = 0; i < perEdge; i++) out.push(geom.toSky(x0 + ((x1 - x0) * i) / perEdge, y0));
  for (let i = 0; i < perEdge; i++) out.push(geom.toSky(x1, y0 + ((y1 - y0) * i) / perEdge));
  for (let i = 0; i < perEdge; i++) out.push(geom.toSky(x1 - ((x1 - x0) * i) / perEdge, y1));
  for (let i = 0; i < perEdge; i++) out.push(geom.toSky(x0, y1 - ((y1 - y0) * i) / perEdge));
  return out;
}

/** A record's outline on the tile plane (ξ, η arcsec); null when a point is ≥ 90° away. */
export function outlineOnPlane(geom: TileGeometry, r: QuadrantRecord): { xi: Float64Array; eta: Float64Array } | null {
  const xi = new Float64Array(r.outline.length);
  const eta = new Float64Array(r.outline.length);
  for (let k = 0; k < r.outline.length; k++) {
    const [x, y] = geom.toPlane(r.outline[k][0], r.outline[k][1]);
    if (!Number.isFinite(x) || !Number.isFinite(y)) return null;
    xi[k] = x;
    eta[k] = y;
  }
  return { xi, eta };
}

/**
 * For each sub-tile (row-major), the indices of the records whose outline meets its extended
 * area. Candidates come from the index (tile-level query), then a flatbush over their
 * tangent-plane boxes, then the exact polygon–rectangle test.
 */
export function discoverQuadrants(geom: TileGeometry, index: QuadrantIndex): number[][] {
  const subTiles = geom.subTiles();
  const result: number[][] = subTiles.map(() => []);
  const cand = index.candidates(boxOutlineSky(geom, geom.allExtended()));
  const polys: Array<{ rec: number; xi: Float64Array; eta: Float64Array }> = [];
  for (const i of cand) {
    const p = outlineOnPlane(geom, index.records[i]);
    if (p) polys.push({ rec: i, ...p });
  }
  if (polys.length === 0) return result;
  const tree = new Flatbush(polys.length);
  for (const p of polys) {
    let x0 = Infinity;
    let x1 = -Infinity;
    let y0 = Infinity;
    let y1 = -Infinity;
    for (let k = 0; k < p.xi.length; k++) {
      x0 = Math.min(x0, p.xi[k]);
      x1 = Math.max(x1, p.xi[k]);
      y0 = Math.min(y0, p.eta[k]);
      y1 = Math.max(y1, p.eta[k]);
    }
    tree.add(x0, y0, x1, y1);
  }
  tree.finish();
  for (const st of subTiles) {
    const box = st.extended;
    const hits: number[] = [];
    for (const k of tree.search(box.xi[0], box.eta[0], box.xi[1], box.eta[1])) {
      const p = polys[k];
      if (polygonIntersectsRect(p.xi, p.eta, box)) hits.push(p.rec);
    }
    result[st.index] = hits.sort((a, b) => a - b);
  }
  return result;
}
