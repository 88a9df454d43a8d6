/**
 * A warm start (docs/subtile.md "Starting from an earlier fit"): the fit begins at an earlier
 * run's fitted values instead of the catalog's — the sources' six parameters from PARAMS tables
 * (`params_{tile}_{row}_{col}.fits` or an assembled `params_{tile}.fits`), matched by OBJECT_ID,
 * and the sub-tile's shear from its SHEAR table. Only the start moves: the priors stay centred on
 * the catalog, so the posterior, and the optimum the fit converges to, are the cold start's.
 *
 * Why: a refit after a changed setting (the Newton polish, a mask radius, a new PSF) need not walk
 * again from the catalog to the mode — on the realistic sub-tile that walk is 358 L-BFGS
 * iterations, two hours on a software adapter. A source is started from the catalog instead when
 * the table has no finite row for it, when its catalog position moved (the row's RA/DEC is more
 * than 1 mas from the catalog's: another catalog), or when its values lie outside the support of
 * this run's priors; each count is reported. The galaxy profile's own parameters (free ν, bulge)
 * keep their usual start: the bulge-size prior is centred on it.
 */
import { ShineError } from '../errors.ts';
import type { FitsTable } from '../data/fits/table.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type SceneParams, type SourceParamName } from '../scene/types.ts';

/** One source's fitted values in a PARAMS table, with the catalog position of its row. */
export interface StartSource {
  values: Record<SourceParamName, number>;
  ra: number;
  dec: number;
  /** The file the row came from. */
  file: string;
}

export interface StartValues {
  /** The PARAMS tables read, in order (the first row of an OBJECT_ID wins). */
  files: string[];
  /** By OBJECT_ID (decimal). */
  sources: Map<string, StartSource>;
  /** The sub-tile's shear (G1, G2 of its SHEAR table), when one was read; else the catalog's start (0, 0). */
  g: [number, number] | null;
  shearFile: string | null;
}

export function emptyStartValues(): StartValues {
  return { files: [], sources: new Map(), g: null, shearFile: null };
}

const COLUMNS: Record<SourceParamName, string> = { flux: 'FLUX', hlr: 'HLR', e1: 'E1', e2: 'E2', dx: 'DX', dy: 'DY' };

/**
 * Adds the rows of a PARAMS table (docs/outputs.md) to `into`: rows whose six values and position
 * are finite; an OBJECT_ID already there keeps its first row. Returns the rows added. A table
 * without the columns is refused with the file and column named (FitsTable.column).
 */
export function addParamsTable(into: StartValues, t: FitsTable, file: string): number {
  const ids = t.column('OBJECT_ID').data as ArrayLike<bigint | number>;
  const num = (name: string) => t.column(name).data as ArrayLike<number>;
  const cols = Object.fromEntries(SOURCE_PARAM_NAMES.map((k) => [k, num(COLUMNS[k])])) as Record<SourceParamName, ArrayLike<number>>;
  const ra = num('RA');
  const dec = num('DEC');
  into.files.push(file);
  let added = 0;
  for (let i = 0; i < t.nRows; i++) {
    const id = String(ids[i]);
    if (into.sources.has(id)) continue;
    const values = Object.fromEntries(SOURCE_PARAM_NAMES.map((k) => [k, Number(cols[k][i])])) as Record<SourceParamName, number>;
    if (!SOURCE_PARAM_NAMES.every((k) => Number.isFinite(values[k])) || !Number.isFinite(ra[i]) || !Number.isFinite(dec[i])) continue;
    into.sources.set(id, { values, ra: Number(ra[i]), dec: Number(dec[i]), file });
    added++;
  }
  return added;
}

/**
 * The shear of sub-tile (tileId, row, col) in a SHEAR table (docs/outputs.md), or null when the
 * table has no such row or its G1/G2 are not finite (an empty sub-tile).
 */
export function shearFromTable(t: FitsTable, id: { tileId: number; row: number; col: number }): [number, number] | null {
  const tile = t.column('TILE_ID').data as ArrayLike<bigint | number>;
  const r = t.column('SUBTILE_ROW').data as ArrayLike<number>;
  const c = t.column('SUBTILE_COL').data as ArrayLike<number>;
  const g1 = t.column('G1').data as ArrayLike<number>;
  const g2 = t.column('G2').data as ArrayLike<number>;
  for (let i = 0; i < t.nRows; i++) {
    if (String(tile[i]) !== String(id.tileId) || Number(r[i]) !== id.row || Number(c[i]) !== id.col) continue;
    const g: [number, number] = [Number(g1[i]), Number(g2[i])];
    return g.every(Number.isFinite) ? g : null;
  }
  return null;
}

/** What a warm start used (the metadata's `inference.start`, docs/outputs.md). */
export interface StartReport {
  files: string[];
  shearFile: string | null;
  /** Sources started from a table row. */
  sources: number;
  /** Sources in the fit (modelled, core and margin). */
  of: number;
  /** Rows left unused because the catalog position differs by more than MOVED_ARCSEC. */
  moved: number;
  /** Rows left unused because a value lies outside the support of this run's priors. */
  outsideSupport: number;
  /** Whether the shear started from the SHEAR table ('table'), or from the catalog start (0, 0). */
  shear: 'table' | 'catalog';
}

/** What a point source does not take from a row (engine/infer/posterior.ts holds them fixed at the start's values). */
const POINT_FIXED: ReadonlySet<SourceParamName> = new Set<SourceParamName>(['hlr', 'e1', 'e2']);

/** Rows whose RA/DEC differ from the catalog's by more than this (arcsec) belong to another catalog. */
export const MOVED_ARCSEC = 1e-3;

function separationArcsec(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const d = Math.PI / 180;
  const s = Math.sin(((dec2 - dec1) * d) / 2) ** 2 + Math.cos(dec1 * d) * Math.cos(dec2 * d) * Math.sin(((ra2 - ra1) * d) / 2) ** 2;
  return (2 * Math.asin(Math.min(1, Math.sqrt(s)))) / d * 3600;
}

/**
 * The starting parameters: `init` (the catalog start) with each source found in `start` by its
 * OBJECT_ID set to the table's values, and the shear set to the table's; `outside` (ParamSpace.
 * outsideSupport under this run's priors) sends the sources, or the shear, whose values it refuses
 * back to the catalog start. A point source (`pointSource`: the PSF alone) takes only its flux and
 * offsets: its size and shape are not parameters but the values `init` holds them at.
 */
export function applyStart(
  init: SceneParams,
  sources: ReadonlyArray<{ objectId: string; ra: number; dec: number; pointSource?: boolean }>,
  start: StartValues,
  outside: (p: SceneParams) => { sources: Set<number>; shear: boolean },
): { params: SceneParams; report: StartReport } {
  if (sources.length !== init.flux.length) throw new ShineError(`warm start: ${sources.length} source keys for ${init.flux.length} sources`, { field: 'start' });
  const p = cloneParams(init);
  let moved = 0;
  const used: number[] = [];
  sources.forEach((s, i) => {
    const row = start.sources.get(s.objectId);
    if (!row) return;
    if (separationArcsec(row.ra, row.dec, s.ra, s.dec) > MOVED_ARCSEC) {
      moved++;
      return;
    }
    for (const k of SOURCE_PARAM_NAMES) if (!s.pointSource || !POINT_FIXED.has(k)) p[k][i] = row.values[k];
    used.push(i);
  });
  let shear: 'table' | 'catalog' = 'catalog';
  if (start.g) {
    p.g1 = start.g[0];
    p.g2 = start.g[1];
    shear = 'table';
  }
  const bad = outside(p);
  for (const i of bad.sources) for (const k of SOURCE_PARAM_NAMES) p[k][i] = init[k][i];
  if (bad.shear) {
    p.g1 = init.g1;
    p.g2 = init.g2;
    shear = 'catalog';
  }
  const outsideSupport = used.filter((i) => bad.sources.has(i)).length;
  return {
    params: p,
    report: { files: start.files, shearFile: shear === 'table' ? start.shearFile : null, sources: used.length - outsideSupport, of: sources.length, moved, outsideSupport, shear },
  };
}
