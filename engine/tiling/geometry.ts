/**
 * MER tile footprint and sub-tile grid (docs/prepare.md "Geometry"). Runtime-agnostic.
 *
 * Frame: the gnomonic tangent plane at the tile centre, standard coordinates in arcsec
 *   ξ (xi)  = −u, towards East (increasing RA),
 *   η (eta) =  v, towards North (increasing Dec),
 * where (u, v) is the engine's world convention (engine/data/wcs/sphere.ts, u towards West).
 *
 * Tile core: ξ, η ∈ [−C/2, C/2) (C = core side). Sub-tile grid rows × cols: column c covers
 * ξ ∈ [ξ_c, ξ_{c+1}), row r covers η ∈ [η_r, η_{r+1}), with ξ_0 = η_0 = −C/2 and
 * ξ_cols = η_rows = +C/2 exactly. Row 0 is the southernmost, column 0 the westernmost (lowest RA).
 * All intervals are half-open, so the sub-tile cores PARTITION the tile core: every point of the
 * core lies in exactly one sub-tile core (membership is decided by comparing against the same
 * stored edge values, never by recomputing them). Extended area of a sub-tile: its core grown by
 * the margin m on every side, [ξ_c − m, ξ_{c+1} + m) × [η_r − m, η_{r+1} + m).
 */
import { tangentPlane, wrapRa, type TangentPlane } from '../data/wcs/sphere.ts';
import { SceneError } from '../errors.ts';

/** An axis-aligned box on the tile's tangent plane (arcsec): xi ∈ [xi[0], xi[1]), eta ∈ [eta[0], eta[1]). */
export interface PlaneBox {
  xi: [number, number];
  eta: [number, number];
}

export interface SubTileBox {
  row: number;
  col: number;
  /** Row-major index row · cols + col. */
  index: number;
  core: PlaneBox;
  extended: PlaneBox;
}

export interface TileSpec {
  tileId: number;
  /** Tile centre (deg): the tangent point. */
  ra: number;
  dec: number;
  /** Core and extended side (arcsec). */
  coreArcsec: number;
  extendedArcsec: number;
}

export interface GridSpec {
  rows: number;
  cols: number;
  /** Sub-tile margin (arcsec). */
  marginArcsec: number;
}

/** A sky range: ra = [lo, hi] (deg; lo > hi when the range straddles RA = 0), dec = [lo, hi]. */
export interface SkyRange {
  ra: [number, number];
  dec: [number, number];
}

function edges(half: number, n: number): Float64Array {
  const e = new Float64Array(n + 1);
  for (let k = 0; k <= n; k++) e[k] = -half + (2 * half * k) / n;
  e[0] = -half;
  e[n] = half;
  return e;
}

/** Index k with e[k] ≤ x < e[k + 1], or −1 when x is outside [e[0], e[n]). */
export function intervalIndex(e: Float64Array, x: number): number {
  const n = e.length - 1;
  if (!(x >= e[0] && x < e[n])) return -1;
  let k = Math.floor(((x - e[0]) / (e[n] - e[0])) * n);
  if (k < 0) k = 0;
  if (k > n - 1) k = n - 1;
  while (k > 0 && x < e[k]) k--;
  while (k < n - 1 && x >= e[k + 1]) k++;
  return k;
}

export class TileGeometry {
  readonly tile: TileSpec;
  readonly grid: GridSpec;
  readonly plane: TangentPlane;
  /** Column edges along ξ (cols + 1) and row edges along η (rows + 1), arcsec. */
  readonly xiEdges: Float64Array;
  readonly etaEdges: Float64Array;
  readonly core: PlaneBox;
  readonly extended: PlaneBox;

  constructor(tile: TileSpec, grid: GridSpec) {
    for (const [k, v] of [['rows', grid.rows], ['cols', grid.cols]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new SceneError(`sub-tile grid ${k} must be a positive integer, got ${v}`, { field: 'distributed.sub_tile_grid' });
    }
    if (!(tile.coreArcsec > 0)) throw new SceneError(`tile core must be > 0, got ${tile.coreArcsec}`, { field: 'tile.core_arcmin' });
    if (!(grid.marginArcsec >= 0)) throw new SceneError(`margin must be ≥ 0, got ${grid.marginArcsec}`, { field: 'distributed.sub_tile_margin' });
    if (!(Number.isFinite(tile.ra) && Math.abs(tile.dec) <= 90)) throw new SceneError(`invalid tile centre (${tile.ra}, ${tile.dec})`, { field: 'tile' });
    this.tile = { ...tile };
    this.grid = { ...grid };
    this.plane = tangentPlane(tile.ra, tile.dec);
    const half = tile.coreArcsec / 2;
    this.xiEdges = edges(half, grid.cols);
    this.etaEdges = edges(half, grid.rows);
    this.core = { xi: [-half, half], eta: [-half, half] };
    const eh = tile.extendedArcsec / 2;
    this.extended = { xi: [-eh, eh], eta: [-eh, eh] };
  }

  get nSubTiles(): number {
    return this.grid.rows * this.grid.cols;
  }

  /** Sky (deg) → (ξ, η) arcsec on the tile plane; NaN for points ≥ 90° away. */
  toPlane(ra: number, dec: number): [number, number] {
    const [u, v] = this.plane.toUV(ra, dec);
    return [-u, v];
  }

  /** (ξ, η) arcsec → sky (deg). */
  toSky(xi: number, eta: number): [number, number] {
    return this.plane.toSky(-xi, eta);
  }

  /** The sub-tile whose core holds (ξ, η): [row, col], or null outside the tile core. */
  coreCell(xi: number, eta: number): [number, number] | null {
    const c = intervalIndex(this.xiEdges, xi);
    const r = intervalIndex(this.etaEdges, eta);
    return c < 0 || r < 0 ? null : [r, c];
  }

  subTile(row: number, col: number): SubTileBox {
    if (!Number.isInteger(row) || row < 0 || row >= this.grid.rows || !Number.isInteger(col) || col < 0 || col >= this.grid.cols) {
      throw new SceneError(`sub-tile (${row}, ${col}) is outside the ${this.grid.rows} × ${this.grid.cols} grid`, { field: 'sub_tile' });
    }
    const m = this.grid.marginArcsec;
    const core: PlaneBox = { xi: [this.xiEdges[col], this.xiEdges[col + 1]], eta: [this.etaEdges[row], this.etaEdges[row + 1]] };
    return {
      row,
      col,
      index: row * this.grid.cols + col,
      core,
      extended: { xi: [core.xi[0] - m, core.xi[1] + m], eta: [core.eta[0] - m, core.eta[1] + m] },
    };
  }

  subTiles(): SubTileBox[] {
    const out: SubTileBox[] = [];
    for (let r = 0; r < this.grid.rows; r++) for (let c = 0; c < this.grid.cols; c++) out.push(this.subTile(r, c));
    return out;
  }

  /** The area covered by all sub-tile extended areas: the tile core grown by the margin. */
  allExtended(): PlaneBox {
    const m = this.grid.marginArcsec;
    return { xi: [this.core.xi[0] - m, this.core.xi[1] + m], eta: [this.core.eta[0] - m, this.core.eta[1] + m] };
  }

  /**
   * The RA / Dec range of a plane box (sampled densely along its edges, plus the poles when
   * inside). RA is unwrapped about the tile centre; lo > hi when the box straddles RA = 0, and
   * [0, 360] when it holds a pole.
   */
  skyRange(box: PlaneBox, perEdge = 64): SkyRange {
    let raMin = Infinity;
    let raMax = -Infinity;
    let decMin = Infinity;
    let decMax = -Infinity;
    const ra0 = this.tile.ra;
    const add = (xi: number, eta: number) => {
      const [ra, dec] = this.toSky(xi, eta);
      const d = ((((ra - ra0) % 360) + 540) % 360) - 180;
      raMin = Math.min(raMin, ra0 + d);
      raMax = Math.max(raMax, ra0 + d);
      decMin = Math.min(decMin, dec);
      decMax = Math.max(decMax, dec);
    };
    const [x0, x1] = box.xi;
    const [y0, y1] = box.eta;
    for (let i = 0; i <= perEdge; i++) {
      const t = i / perEdge;
      add(x0 + (x1 - x0) * t, y0);
      add(x0 + (x1 - x0) * t, y1);
      add(x0, y0 + (y1 - y0) * t);
      add(x1, y0 + (y1 - y0) * t);
    }
    for (const pole of [90, -90]) {
      const [pxi, peta] = this.toPlane(0, pole);
      if (pxi >= x0 && pxi <= x1 && peta >= y0 && peta <= y1) {
        return { ra: [0, 360], dec: pole > 0 ? [decMin, 90] : [-90, decMax] };
      }
    }
    if (raMax - raMin >= 360) return { ra: [0, 360], dec: [decMin, decMax] };
    return { ra: [wrapRa(raMin), wrapRa(raMax)], dec: [decMin, decMax] };
  }
}

/** True when (ξ, η) lies in the half-open box. */
export function inBox(box: PlaneBox, xi: number, eta: number): boolean {
  return xi >= box.xi[0] && xi < box.xi[1] && eta >= box.eta[0] && eta < box.eta[1];
}
