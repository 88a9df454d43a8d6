/**
 * Source partition (docs/prepare.md "Geometry"): each source position goes to the core of exactly one sub-tile
 * (when inside the tile core) and to the extended set of every sub-tile whose extended area holds
 * it. A KD-tree (kdbush) over the tangent-plane positions answers one range query per sub-tile, so
 * the cost is O(N log N + output), not O(N · sub-tiles).
 */
import KDBush from 'kdbush';
import { inBox, type TileGeometry } from './geometry.ts';

export interface SubTileSources {
  row: number;
  col: number;
  /** Indices (into the input arrays) of the sources in the extended area, ascending. */
  extended: Uint32Array;
  /** 1 where extended[k] is also in this sub-tile's core. */
  core: Uint8Array;
  nCore: number;
}

export interface Partition {
  /** Tangent-plane positions (arcsec), NaN for points ≥ 90° from the tile centre. */
  xi: Float64Array;
  eta: Float64Array;
  /** Row-major sub-tile index of each source's core, −1 outside the tile core. */
  coreOf: Int32Array;
  subTiles: SubTileSources[];
}

function project(geom: TileGeometry, ra: ArrayLike<number>, dec: ArrayLike<number>) {
  const n = ra.length;
  const xi = new Float64Array(n);
  const eta = new Float64Array(n);
  const coreOf = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const [x, y] = geom.toPlane(ra[i], dec[i]);
    xi[i] = x;
    eta[i] = y;
    const cell = geom.coreCell(x, y);
    if (cell) coreOf[i] = cell[0] * geom.grid.cols + cell[1];
  }
  return { xi, eta, coreOf };
}

function finish(idx: number[], coreOf: Int32Array, sub: number, row: number, col: number): SubTileSources {
  idx.sort((a, b) => a - b);
  const extended = Uint32Array.from(idx);
  const core = new Uint8Array(extended.length);
  let nCore = 0;
  for (let k = 0; k < extended.length; k++) {
    if (coreOf[extended[k]] === sub) {
      core[k] = 1;
      nCore++;
    }
  }
  return { row, col, extended, core, nCore };
}

/** Partition with a KD-tree (the production path). */
export function partitionSources(geom: TileGeometry, ra: ArrayLike<number>, dec: ArrayLike<number>): Partition {
  if (ra.length !== dec.length) throw new Error(`ra has ${ra.length} values, dec ${dec.length}`);
  const { xi, eta, coreOf } = project(geom, ra, dec);
  const n = xi.length;
  const finiteIdx: number[] = [];
  for (let i = 0; i < n; i++) if (Number.isFinite(xi[i]) && Number.isFinite(eta[i])) finiteIdx.push(i);
  const subTiles: SubTileSources[] = [];
  let tree: KDBush | null = null;
  if (finiteIdx.length > 0) {
    tree = new KDBush(finiteIdx.length, 64, Float64Array);
    for (const i of finiteIdx) tree.add(xi[i], eta[i]);
    tree.finish();
  }
  for (const st of geom.subTiles()) {
    const box = st.extended;
    const hits: number[] = [];
    if (tree) {
      // kdbush ranges are closed: filter to the half-open extended box
      for (const k of tree.range(box.xi[0], box.eta[0], box.xi[1], box.eta[1])) {
        const i = finiteIdx[k];
        if (inBox(box, xi[i], eta[i])) hits.push(i);
      }
    }
    subTiles.push(finish(hits, coreOf, st.index, st.row, st.col));
  }
  return { xi, eta, coreOf, subTiles };
}

/** The same partition by scanning every (source, sub-tile) pair: the test oracle. */
export function partitionSourcesBruteForce(geom: TileGeometry, ra: ArrayLike<number>, dec: ArrayLike<number>): Partition {
  const { xi, eta, coreOf } = project(geom, ra, dec);
  const subTiles: SubTileSources[] = [];
  for (const st of geom.subTiles()) {
    const hits: number[] = [];
    for (let i = 0; i < xi.length; i++) {
      const x = xi[i];
      const y = eta[i];
      if (x >= st.extended.xi[0] && x < st.extended.xi[1] && y >= st.extended.eta[0] && y < st.extended.eta[1]) hits.push(i);
    }
    subTiles.push(finish(hits, coreOf, st.index, st.row, st.col));
  }
  return { xi, eta, coreOf, subTiles };
}

/**
 * Objects whose disc reaches a sub-tile's modelled area: per sub-tile, the indices (ascending) of
 * the objects whose distance on the tile plane to the extended box is at most `grow + reach[i]`
 * (`grow`: how far the modelled stamps extend beyond the extended box; `reach[i]`: the object's
 * mask radius, arcsec). A KD-tree range query on the box grown by `grow + max(reach)`, then the
 * exact distance test: O(N log N + output). Points with a non-finite plane position are skipped.
 */
export function reachingObjects(geom: TileGeometry, xi: ArrayLike<number>, eta: ArrayLike<number>, reach: ArrayLike<number>, grow: number, only?: ReadonlySet<number>): Uint32Array[] {
  const n = xi.length;
  const finiteIdx: number[] = [];
  let maxReach = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isFinite(xi[i]) && Number.isFinite(eta[i])) {
      finiteIdx.push(i);
      maxReach = Math.max(maxReach, reach[i]);
    }
  }
  let tree: KDBush | null = null;
  if (finiteIdx.length > 0) {
    tree = new KDBush(finiteIdx.length, 64, Float64Array);
    for (const i of finiteIdx) tree.add(xi[i], eta[i]);
    tree.finish();
  }
  const out: Uint32Array[] = [];
  for (const st of geom.subTiles()) {
    if (only && !only.has(st.index)) {
      out.push(new Uint32Array(0));
      continue;
    }
    const hits: number[] = [];
    if (tree) {
      const g = grow + maxReach;
      const b = st.extended;
      for (const k of tree.range(b.xi[0] - g, b.eta[0] - g, b.xi[1] + g, b.eta[1] + g)) {
        const i = finiteIdx[k];
        if (boxDistance(b, xi[i], eta[i]) <= grow + reach[i]) hits.push(i);
      }
    }
    hits.sort((a, c) => a - c);
    out.push(Uint32Array.from(hits));
  }
  return out;
}

/** Distance (arcsec) from a point to a box on the tile plane (0 inside). */
export function boxDistance(b: { xi: readonly [number, number] | number[]; eta: readonly [number, number] | number[] }, x: number, y: number): number {
  const dx = Math.max(b.xi[0] - x, 0, x - b.xi[1]);
  const dy = Math.max(b.eta[0] - y, 0, y - b.eta[1]);
  return Math.hypot(dx, dy);
}
