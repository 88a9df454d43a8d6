/**
 * The per-source parameter table of a sub-tile, `params_{tile}_{row}_{col}.fits` (docs/outputs.md):
 * one row per CORE source (sources owned by this sub-tile), fitted parameters, their errors and
 * the catalog starting values. See docs/outputs.md.
 */
import { ShineError } from '../errors.ts';
import { writeFits, type ColumnSpec, type HduSpec } from '../data/fits/write.ts';
import type { FitsTable } from '../data/fits/table.ts';
import { checkSubtileId, type SubtileId } from './names.ts';
import type { CardInput } from '../data/fits/header.ts';
import { provenanceCards, type Provenance } from './provenance.ts';
import type { ProfileParamName } from '../scene/types.ts';

export const PARAMS_EXTNAME = 'PARAMS';

/** Per-source parameter names (SceneParams order). */
export const SOURCE_PARAMS = ['flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const;
export type SourceParam = (typeof SOURCE_PARAMS)[number];

const UNITS: Record<SourceParam, string | undefined> = { flux: 'adu', hlr: 'arcsec', e1: undefined, e2: undefined, dx: 'arcsec', dy: 'arcsec' };

/**
 * Columns of sources, structure of arrays (a SceneParams with catalog ids and positions added
 * fits). `indices` selects the rows to write (e.g. the core sources); all rows when omitted.
 */
export interface SourceParamsColumns {
  /** Catalog OBJECT_ID (int64: bigint, a safe integer, or a decimal string). */
  objectId: ArrayLike<bigint | number | string>;
  /** Catalog position (deg). */
  ra: ArrayLike<number>;
  dec: ArrayLike<number>;
  /** Fitted values: flux (ADU), hlr (arcsec), e1, e2 (distortion), dx, dy (arcsec on the sky). */
  flux: ArrayLike<number>;
  hlr: ArrayLike<number>;
  e1: ArrayLike<number>;
  e2: ArrayLike<number>;
  dx: ArrayLike<number>;
  dy: ArrayLike<number>;
  /** Marginal 1σ errors (Laplace); columns of absent ones are NaN. */
  errors?: Partial<Record<SourceParam, ArrayLike<number>>>;
  /** Starting values (from the catalog); columns of absent ones are NaN. */
  init?: Partial<Record<SourceParam, ArrayLike<number>>>;
  /** Quadrants in which the source was modelled (-1 when absent). */
  nQuadrants?: ArrayLike<number>;
  /** Rows to write (indices into the arrays above); default all. */
  indices?: ArrayLike<number>;
  /**
   * The galaxy profile's own parameters when the run fitted them (free Spergel ν; bulge + disk):
   * columns after N_QUADRANTS (PROFILE_PARAM_COLUMNS), each with its _ERR and INIT_ column.
   */
  profile?: Partial<Record<ProfileParamName, { value: ArrayLike<number>; err?: ArrayLike<number>; init?: ArrayLike<number> }>>;
}

/**
 * Column stems of the profile parameters (docs/outputs.md): NU (free Spergel index), BULGE_FRAC
 * (B/T), BULGE_HLR (arcsec), BULGE_E1, BULGE_E2; present only in the tables of runs whose profile
 * has them, after the PARAMS_COLUMNS (which stay first and in order).
 */
export const PROFILE_PARAM_COLUMNS: Record<ProfileParamName, { name: string; unit?: string }> = {
  nu: { name: 'NU' },
  bulgeFrac: { name: 'BULGE_FRAC' },
  bulgeHlr: { name: 'BULGE_HLR', unit: 'arcsec' },
  bulgeE1: { name: 'BULGE_E1' },
  bulgeE2: { name: 'BULGE_E2' },
};

export interface ParamsColumnInfo {
  name: string;
  tform: string;
  tzero?: number;
  unit?: string;
  description: string;
}

/** Columns of the params table, in order. */
export const PARAMS_COLUMNS: readonly ParamsColumnInfo[] = [
  { name: 'OBJECT_ID', tform: 'K', description: 'catalog OBJECT_ID' },
  { name: 'TILE_ID', tform: 'K', description: 'MER tile identifier' },
  { name: 'SUBTILE_ROW', tform: 'B', tzero: -128, description: 'sub-tile row (int8)' },
  { name: 'SUBTILE_COL', tform: 'B', tzero: -128, description: 'sub-tile column (int8)' },
  { name: 'RA', tform: 'D', unit: 'deg', description: 'catalog RA' },
  { name: 'DEC', tform: 'D', unit: 'deg', description: 'catalog Dec' },
  ...SOURCE_PARAMS.map((p) => ({ name: p.toUpperCase(), tform: 'D', unit: UNITS[p], description: `fitted ${p}` })),
  ...SOURCE_PARAMS.map((p) => ({ name: `${p.toUpperCase()}_ERR`, tform: 'E', unit: UNITS[p], description: `marginal 1-sigma error on ${p} (NaN if not computed)` })),
  ...SOURCE_PARAMS.map((p) => ({ name: `INIT_${p.toUpperCase()}`, tform: 'D', unit: UNITS[p], description: `starting value of ${p} (NaN if not given)` })),
  { name: 'N_QUADRANTS', tform: 'J', description: 'quadrants in which the source was modelled (-1 if unknown)' },
];

function toInt64(v: bigint | number | string, row: number): bigint {
  try {
    if (typeof v === 'bigint') {
      if (BigInt.asIntN(64, v) !== v) throw new Error();
      return v;
    }
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error();
      return BigInt(v);
    }
    if (!/^\s*-?\d+\s*$/.test(v)) throw new Error();
    const b = BigInt(v.trim());
    if (BigInt.asIntN(64, b) !== b) throw new Error();
    return b;
  } catch {
    throw new ShineError(`OBJECT_ID of row ${row} is not a 64-bit integer: ${String(v)}`, { field: 'objectId' });
  }
}

/**
 * FITS bytes of `params_{tile}_{row}_{col}.fits`: empty primary HDU + BINTABLE 'PARAMS' (the core
 * sources) and, when `margin` is given, BINTABLE 'MARGIN' with the same columns: the other sources
 * the fit modelled (margin sources a neighbouring sub-tile owns, shear-blind nuisance objects), at
 * their values in this fit — for a warm start of the same scene (docs/subtile.md) and for looking
 * at; a margin source's values of record are its own sub-tile's PARAMS row.
 */
export function paramsTable(id: SubtileId, src: SourceParamsColumns, prov: Provenance, margin?: SourceParamsColumns): Uint8Array {
  checkSubtileId(id.tileId, id.row, id.col);
  const core = paramsHdu(id, src, PARAMS_EXTNAME, 'core sources (rows)', provenanceCards(prov));
  return writeFits(margin ? [core, paramsHdu(id, margin, MARGIN_EXTNAME, 'modelled sources not owned (rows)', [])] : [core]);
}

/** The HDU of the other modelled sources in a params file (paramsTable). */
export const MARGIN_EXTNAME = 'MARGIN';

function paramsHdu(id: SubtileId, src: SourceParamsColumns, name: string, rowsComment: string, extraCards: CardInput[]): HduSpec {
  const nAll = src.objectId.length;
  const lengths: Array<[string, ArrayLike<unknown> | undefined]> = [
    ['ra', src.ra],
    ['dec', src.dec],
    ...SOURCE_PARAMS.map((p) => [p, src[p]] as [string, ArrayLike<unknown>]),
    ...SOURCE_PARAMS.map((p) => [`errors.${p}`, src.errors?.[p]] as [string, ArrayLike<unknown> | undefined]),
    ...SOURCE_PARAMS.map((p) => [`init.${p}`, src.init?.[p]] as [string, ArrayLike<unknown> | undefined]),
    ['nQuadrants', src.nQuadrants],
    ...Object.entries(src.profile ?? {}).flatMap(([k, v]) => [
      [`profile.${k}`, v!.value],
      [`profile.${k}.err`, v!.err],
      [`profile.${k}.init`, v!.init],
    ] as Array<[string, ArrayLike<unknown> | undefined]>),
  ];
  for (const [name, arr] of lengths) {
    if (arr !== undefined && arr.length !== nAll) {
      throw new ShineError(`source column ${name} has ${arr.length} entries, objectId has ${nAll}`, { field: name });
    }
  }
  const idx: number[] = src.indices ? Array.from(src.indices) : Array.from({ length: nAll }, (_, i) => i);
  for (const i of idx) {
    if (!Number.isInteger(i) || i < 0 || i >= nAll) throw new ShineError(`row index ${i} out of range 0..${nAll - 1}`, { field: 'indices' });
  }
  const n = idx.length;
  const f64 = (a: ArrayLike<number> | undefined) => {
    const out = new Float64Array(n);
    for (let k = 0; k < n; k++) out[k] = a ? a[idx[k]] : NaN;
    return out;
  };
  const f32 = (a: ArrayLike<number> | undefined) => {
    const out = new Float32Array(n);
    for (let k = 0; k < n; k++) out[k] = a ? a[idx[k]] : NaN;
    return out;
  };
  const objectId = new BigInt64Array(n);
  for (let k = 0; k < n; k++) objectId[k] = toInt64(src.objectId[idx[k]], idx[k]);
  const nq = new Int32Array(n);
  for (let k = 0; k < n; k++) {
    const v = src.nQuadrants ? src.nQuadrants[idx[k]] : -1;
    nq[k] = Number.isInteger(v) && v >= 0 ? v : -1;
  }
  const columns: ColumnSpec[] = [
    { name: 'OBJECT_ID', format: 'K', data: objectId },
    { name: 'TILE_ID', format: 'K', data: new BigInt64Array(n).fill(BigInt(id.tileId)) },
    { name: 'SUBTILE_ROW', format: 'B', data: new Int8Array(n).fill(id.row), tzero: -128 },
    { name: 'SUBTILE_COL', format: 'B', data: new Int8Array(n).fill(id.col), tzero: -128 },
    { name: 'RA', format: 'D', data: f64(src.ra), unit: 'deg' },
    { name: 'DEC', format: 'D', data: f64(src.dec), unit: 'deg' },
    ...SOURCE_PARAMS.map((p) => ({ name: p.toUpperCase(), format: 'D', data: f64(src[p]), unit: UNITS[p] })),
    ...SOURCE_PARAMS.map((p) => ({ name: `${p.toUpperCase()}_ERR`, format: 'E', data: f32(src.errors?.[p]), unit: UNITS[p] })),
    ...SOURCE_PARAMS.map((p) => ({ name: `INIT_${p.toUpperCase()}`, format: 'D', data: f64(src.init?.[p]), unit: UNITS[p] })),
    { name: 'N_QUADRANTS', format: 'J', data: nq },
    ...(Object.keys(PROFILE_PARAM_COLUMNS) as ProfileParamName[]).flatMap((k): ColumnSpec[] => {
      const v = src.profile?.[k];
      if (!v) return [];
      const { name, unit } = PROFILE_PARAM_COLUMNS[k];
      return [
        { name, format: 'D', data: f64(v.value), unit },
        { name: `${name}_ERR`, format: 'E', data: f32(v.err), unit },
        { name: `INIT_${name}`, format: 'D', data: f64(v.init), unit },
      ];
    }),
  ];
  return {
    kind: 'bintable',
    name,
    nRows: n,
    columns,
    cards: [
      { key: 'TILEID', value: id.tileId, comment: 'MER tile identifier' },
      { key: 'SUBROW', value: id.row, comment: 'sub-tile row' },
      { key: 'SUBCOL', value: id.col, comment: 'sub-tile column' },
      { key: 'NSOURCE', value: n, comment: rowsComment },
      ...extraCards,
    ],
  };
}

/** Problems with a decoded params table (empty: valid): the columns in order and, when given, the sub-tile. */
export function checkParamsTable(t: FitsTable, expected?: SubtileId): string[] {
  const problems: string[] = [];
  PARAMS_COLUMNS.forEach((c, i) => {
    if (t.names[i]?.toUpperCase() !== c.name) problems.push(`column ${i + 1} is ${t.names[i] ?? 'missing'}, expected ${c.name}`);
  });
  if (problems.length || !expected) return problems;
  const hdr = t.header;
  const tile = hdr.get('TILEID');
  if (String(tile) !== String(expected.tileId) || hdr.get('SUBROW') !== expected.row || hdr.get('SUBCOL') !== expected.col) {
    problems.push(`header names tile ${String(tile)} sub-tile (${String(hdr.get('SUBROW'))}, ${String(hdr.get('SUBCOL'))}), expected tile ${expected.tileId} sub-tile (${expected.row}, ${expected.col})`);
  }
  const tiles = t.column('TILE_ID').data as BigInt64Array;
  const rows = t.column('SUBTILE_ROW').data as ArrayLike<number>;
  const cols = t.column('SUBTILE_COL').data as ArrayLike<number>;
  for (let i = 0; i < t.nRows; i++) {
    if (String(tiles[i]) !== String(expected.tileId) || Number(rows[i]) !== expected.row || Number(cols[i]) !== expected.col) {
      problems.push(`row ${i} names tile ${tiles[i]} sub-tile (${rows[i]}, ${cols[i]})`);
      break;
    }
  }
  return problems;
}
