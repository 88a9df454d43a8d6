/**
 * The shear table of a sub-tile, `shear_{tile}_{row}_{col}.fits` (docs/outputs.md):
 * one BINTABLE row with exactly the assembled-catalog columns, in catalog order, followed by a
 * fixed set of extra columns. See docs/outputs.md.
 */
import { ShineError } from '../errors.ts';
import { writeFits, type ColumnSpec } from '../data/fits/write.ts';
import type { FitsTable } from '../data/fits/table.ts';
import { checkSubtileId, type SubtileId } from './names.ts';
import { asciiText, provenanceCards, type Provenance } from './provenance.ts';

export type InferenceMethod = 'map' | 'vi' | 'nuts';
export const INFERENCE_METHODS: readonly InferenceMethod[] = ['map', 'vi', 'nuts'];

/** EXTNAME of the shear table HDU (HDU 1; HDU 0 is an empty primary). */
export const SHEAR_EXTNAME = 'SHEAR';

export interface SubtileShear extends SubtileId {
  /** Sub-tile core centre (deg, ICRS). */
  ra: number;
  dec: number;
  /** Reduced shear (MAP or posterior mean). */
  g1: number;
  g2: number;
  /** Marginal 1σ errors (sources marginalised). */
  g1Err: number;
  g2Err: number;
  /** Number of core sources used. */
  nSources: number;
  method: InferenceMethod;
  /** Final loss (MAP / VI) or max R̂ (NUTS). */
  convergence: number;
  /** Whether the inference met its convergence criterion. */
  converged: boolean;
  // --- extra columns (written in every file; NaN or -1 when not given) ---
  /** Marginal covariance of (g1, g2). */
  g1g2Cov?: number;
  /** Conditional errors (sources held at the MAP). */
  g1ErrConditional?: number;
  g2ErrConditional?: number;
  /** Quadrants in the ExposureSet. */
  nQuadrants?: number;
  /** Sources in the extended area (core + margin) that were modelled. */
  nSourcesExtended?: number;
  /** Optimiser iterations (MAP/VI) or draws (NUTS). */
  iterations?: number;
}

/** Posterior draws of (g1, g2) (NUTS chains, or draws from the VI guide as chain 0). */
export interface ShearSamples {
  chain: ArrayLike<number>;
  draw: ArrayLike<number>;
  g1: ArrayLike<number>;
  g2: ArrayLike<number>;
}

/** EXTNAME of the optional second table of a shear file: the posterior draws. */
export const SAMPLES_EXTNAME = 'SAMPLES';

export interface ShearColumnInfo {
  name: string;
  /** TFORM written. */
  tform: string;
  /** TZERO written (int8 columns: -128). */
  tzero?: number;
  /** numpy dtype of the value (int8 columns: astropy 5.2 returns float64 with the right values). */
  dtype: string;
  unit?: string;
  description: string;
}

/** The assembled-catalog columns, exactly (docs/outputs.md, docs/assemble.md), in order. METHOD is written as 4A. */
export const SHEAR_CATALOG_COLUMNS: readonly ShearColumnInfo[] = [
  { name: 'TILE_ID', tform: 'K', dtype: 'int64', description: 'MER tile identifier' },
  { name: 'SUBTILE_ROW', tform: 'B', tzero: -128, dtype: 'int8', description: 'sub-tile row index' },
  { name: 'SUBTILE_COL', tform: 'B', tzero: -128, dtype: 'int8', description: 'sub-tile column index' },
  { name: 'RA', tform: 'D', dtype: 'float64', unit: 'deg', description: 'sub-tile core centre RA' },
  { name: 'DEC', tform: 'D', dtype: 'float64', unit: 'deg', description: 'sub-tile core centre Dec' },
  { name: 'G1', tform: 'E', dtype: 'float32', description: 'shear component 1 (MAP or posterior mean)' },
  { name: 'G2', tform: 'E', dtype: 'float32', description: 'shear component 2' },
  { name: 'G1_ERR', tform: 'E', dtype: 'float32', description: 'marginal 1-sigma uncertainty on g1' },
  { name: 'G2_ERR', tform: 'E', dtype: 'float32', description: 'marginal 1-sigma uncertainty on g2' },
  { name: 'N_SOURCES', tform: 'J', dtype: 'int32', description: 'number of core sources used' },
  { name: 'METHOD', tform: '4A', dtype: 'str', description: 'inference method (map / vi / nuts)' },
  { name: 'CONVERGENCE', tform: 'E', dtype: 'float32', description: 'final loss (MAP/VI) or max R-hat (NUTS)' },
];

/** Extra columns after the catalog ones (every shear file has them, in this order). */
export const SHEAR_EXTRA_COLUMNS: readonly ShearColumnInfo[] = [
  { name: 'G1G2_COV', tform: 'E', dtype: 'float32', description: 'marginal covariance of g1 and g2 (NaN if unknown)' },
  { name: 'G1_ERR_COND', tform: 'E', dtype: 'float32', description: 'conditional error on g1, sources fixed (NaN if unknown)' },
  { name: 'G2_ERR_COND', tform: 'E', dtype: 'float32', description: 'conditional error on g2, sources fixed (NaN if unknown)' },
  { name: 'N_QUADRANTS', tform: 'J', dtype: 'int32', description: 'quadrants used (-1 if unknown)' },
  { name: 'N_SOURCES_EXT', tform: 'J', dtype: 'int32', description: 'sources modelled in the extended area (-1 if unknown)' },
  { name: 'ITERATIONS', tform: 'J', dtype: 'int32', description: 'optimiser iterations or draws (-1 if unknown)' },
  { name: 'CONVERGED', tform: 'L', dtype: 'bool', description: 'convergence criterion met' },
];

export const SHEAR_COLUMNS: readonly ShearColumnInfo[] = [...SHEAR_CATALOG_COLUMNS, ...SHEAR_EXTRA_COLUMNS];

function int32OrMinus1(v: number | undefined, field: string): number {
  if (v === undefined || Number.isNaN(v)) return -1;
  if (!Number.isInteger(v) || v < -1 || v > 2147483647) throw new ShineError(`${field} must be an integer ≥ 0, got ${v}`, { field });
  return v;
}

/**
 * FITS bytes of `shear_{tile}_{row}_{col}.fits`: empty primary HDU + BINTABLE 'SHEAR' with one
 * row, and for VI / NUTS a BINTABLE 'SAMPLES' (CHAIN, DRAW, G1, G2 in float64).
 */
export function shearTable(s: SubtileShear, prov: Provenance, samples?: ShearSamples): Uint8Array {
  checkSubtileId(s.tileId, s.row, s.col);
  if (!INFERENCE_METHODS.includes(s.method)) {
    throw new ShineError(`unknown inference method '${s.method}' (expected ${INFERENCE_METHODS.join(', ')})`, { field: 'method' });
  }
  if (!Number.isInteger(s.nSources) || s.nSources < 0 || s.nSources > 2147483647) {
    throw new ShineError(`N_SOURCES must be a non-negative integer, got ${s.nSources}`, { field: 'nSources' });
  }
  const f32 = (v: number | undefined) => new Float32Array([v ?? NaN]);
  const columns: ColumnSpec[] = [
    { name: 'TILE_ID', format: 'K', data: new BigInt64Array([BigInt(s.tileId)]) },
    { name: 'SUBTILE_ROW', format: 'B', data: new Int8Array([s.row]), tzero: -128 },
    { name: 'SUBTILE_COL', format: 'B', data: new Int8Array([s.col]), tzero: -128 },
    { name: 'RA', format: 'D', data: new Float64Array([s.ra]), unit: 'deg' },
    { name: 'DEC', format: 'D', data: new Float64Array([s.dec]), unit: 'deg' },
    { name: 'G1', format: 'E', data: f32(s.g1) },
    { name: 'G2', format: 'E', data: f32(s.g2) },
    { name: 'G1_ERR', format: 'E', data: f32(s.g1Err) },
    { name: 'G2_ERR', format: 'E', data: f32(s.g2Err) },
    { name: 'N_SOURCES', format: 'J', data: new Int32Array([s.nSources]) },
    { name: 'METHOD', format: '4A', data: [s.method] },
    { name: 'CONVERGENCE', format: 'E', data: f32(s.convergence) },
    { name: 'G1G2_COV', format: 'E', data: f32(s.g1g2Cov) },
    { name: 'G1_ERR_COND', format: 'E', data: f32(s.g1ErrConditional) },
    { name: 'G2_ERR_COND', format: 'E', data: f32(s.g2ErrConditional) },
    { name: 'N_QUADRANTS', format: 'J', data: new Int32Array([int32OrMinus1(s.nQuadrants, 'nQuadrants')]) },
    { name: 'N_SOURCES_EXT', format: 'J', data: new Int32Array([int32OrMinus1(s.nSourcesExtended, 'nSourcesExtended')]) },
    { name: 'ITERATIONS', format: 'J', data: new Int32Array([int32OrMinus1(s.iterations, 'iterations')]) },
    { name: 'CONVERGED', format: 'L', data: [Boolean(s.converged)] },
  ];
  return writeFits([
    {
      kind: 'bintable',
      name: SHEAR_EXTNAME,
      nRows: 1,
      columns,
      cards: [
        { key: 'TILEID', value: s.tileId, comment: 'MER tile identifier' },
        { key: 'SUBROW', value: s.row, comment: 'sub-tile row' },
        { key: 'SUBCOL', value: s.col, comment: 'sub-tile column' },
        { key: 'METHOD', value: asciiText(s.method), comment: 'inference method' },
        ...provenanceCards(prov),
      ],
    },
    ...(samples ? [samplesHdu(samples, s.method)] : []),
  ]);
}

function samplesHdu(x: ShearSamples, method: InferenceMethod) {
  const n = x.g1.length;
  for (const [k, a] of [['chain', x.chain], ['draw', x.draw], ['g2', x.g2]] as const) {
    if (a.length !== n) throw new ShineError(`samples: ${k} has ${a.length} entries, g1 has ${n}`, { field: `samples.${k}` });
  }
  const nChains = n ? Math.max(...Array.from(x.chain)) + 1 : 0;
  return {
    kind: 'bintable' as const,
    name: SAMPLES_EXTNAME,
    nRows: n,
    columns: [
      { name: 'CHAIN', format: 'I', data: Int16Array.from(x.chain) },
      { name: 'DRAW', format: 'J', data: Int32Array.from(x.draw) },
      { name: 'G1', format: 'D', data: Float64Array.from(x.g1) },
      { name: 'G2', format: 'D', data: Float64Array.from(x.g2) },
    ] as ColumnSpec[],
    cards: [
      { key: 'METHOD', value: asciiText(method), comment: 'nuts: chains after warm-up; vi: guide draws' },
      { key: 'NCHAINS', value: nChains, comment: 'number of chains' },
    ],
  };
}

/** The values of a shear table row as read back (extra columns when present). */
export function readShearRow(t: FitsTable, row = 0): SubtileShear {
  const num = (name: string) => Number((t.column(name).data as ArrayLike<number | bigint>)[row]);
  const opt = (name: string) => (t.columns.has(name) ? num(name) : undefined);
  const optInt = (name: string) => {
    const v = opt(name);
    return v === undefined || v < 0 ? undefined : v;
  };
  const tileRaw = (t.column('TILE_ID').data as BigInt64Array)[row];
  return {
    tileId: typeof tileRaw === 'bigint' && tileRaw <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(tileRaw) : tileRaw,
    row: num('SUBTILE_ROW'),
    col: num('SUBTILE_COL'),
    ra: num('RA'),
    dec: num('DEC'),
    g1: num('G1'),
    g2: num('G2'),
    g1Err: num('G1_ERR'),
    g2Err: num('G2_ERR'),
    nSources: num('N_SOURCES'),
    method: (t.column('METHOD').data as string[])[row] as InferenceMethod,
    convergence: num('CONVERGENCE'),
    converged: t.columns.has('CONVERGED') ? Boolean((t.column('CONVERGED').data as boolean[])[row]) : false,
    g1g2Cov: opt('G1G2_COV'),
    g1ErrConditional: opt('G1_ERR_COND'),
    g2ErrConditional: opt('G2_ERR_COND'),
    nQuadrants: optInt('N_QUADRANTS'),
    nSourcesExtended: optInt('N_SOURCES_EXT'),
    iterations: optInt('ITERATIONS'),
  };
}

/**
 * Problems with a decoded shear table (empty list: valid): the catalog columns present in order
 * with their TFORM/TZERO, exactly one row, a known METHOD, and (when given) the expected sub-tile.
 */
export function checkShearTable(t: FitsTable, expected?: SubtileId): string[] {
  const problems: string[] = [];
  SHEAR_CATALOG_COLUMNS.forEach((c, i) => {
    if (t.names[i]?.toUpperCase() !== c.name) {
      problems.push(`column ${i + 1} is ${t.names[i] ?? 'missing'}, expected ${c.name}`);
      return;
    }
    const col = t.columns.get(c.name);
    if (!col) return;
    const type = c.tform.replace(/^\d+/, '');
    if (col.type !== type) problems.push(`column ${c.name} has TFORM ${col.format}, expected ${c.tform}`);
    if ((c.tzero ?? 0) !== col.tzero) problems.push(`column ${c.name} has TZERO ${col.tzero}, expected ${c.tzero ?? 0}`);
  });
  if (t.nRows !== 1) problems.push(`${t.nRows} rows, expected 1`);
  if (problems.length) return problems;
  const r = readShearRow(t);
  if (!INFERENCE_METHODS.includes(r.method)) problems.push(`METHOD '${r.method}' is not one of ${INFERENCE_METHODS.join(', ')}`);
  if (expected) {
    if (String(r.tileId) !== String(expected.tileId) || r.row !== expected.row || r.col !== expected.col) {
      problems.push(`holds tile ${r.tileId} sub-tile (${r.row}, ${r.col}), expected tile ${expected.tileId} sub-tile (${expected.row}, ${expected.col})`);
    }
  }
  return problems;
}
