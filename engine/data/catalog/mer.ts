/**
 * Euclid MER catalogs (docs/architecture.md "Euclid file facts"): the columns the pipeline uses, SHINE's source selection (each
 * cut configurable, counts per cut), half-light radius from SEMIMAJOR_AXIS, µJy → ADU fluxes from
 * MAGZEROP / EXPTIME, and initial (e1, e2) from ELLIPTICITY / POSITION_ANGLE.
 *
 * The core works on in-memory columns (`merCatalogFromColumns`); `readMerCatalog` reads them from
 * a FITS binary table, decoding only the needed columns.
 */
import { DataError } from '../../errors.ts';

/** Columns read from a MER catalog. */
export const MER_COLUMNS = {
  id: 'OBJECT_ID',
  ra: 'RIGHT_ASCENSION',
  dec: 'DECLINATION',
  flux: 'FLUX_DETECTION_TOTAL',
  fluxErr: 'FLUXERR_DETECTION_TOTAL',
  fluxVisPsf: 'FLUX_VIS_PSF',
  semimajor: 'SEMIMAJOR_AXIS',
  ellipticity: 'ELLIPTICITY',
  positionAngle: 'POSITION_ANGLE',
  visDet: 'VIS_DET',
  spurious: 'SPURIOUS_FLAG',
  pointLike: 'POINT_LIKE_FLAG',
  detQuality: 'DET_QUALITY_FLAG',
  deblended: 'DEBLENDED_FLAG',
} as const;

export type MerField = keyof typeof MER_COLUMNS;

/** Always required (positions, identity, flux, size). */
const CORE_FIELDS: MerField[] = ['id', 'ra', 'dec', 'flux', 'fluxErr', 'semimajor'];

export interface MerCatalog {
  file?: string;
  hdu?: string | number;
  nRows: number;
  /** OBJECT_ID as bigint (Euclid ids exceed 2^53). */
  objectId: BigInt64Array;
  ra: Float64Array;
  dec: Float64Array;
  /** µJy. */
  flux: Float64Array;
  fluxErr: Float64Array;
  /** Pixels (MER's 0.1″ pixels). */
  semimajor: Float64Array;
  /** Optional columns: undefined when absent from the file (or not needed by the cuts). */
  fluxVisPsf?: Float64Array;
  ellipticity?: Float64Array;
  positionAngle?: Float64Array;
  visDet?: Float64Array;
  spurious?: Float64Array;
  pointLike?: Float64Array;
  /** Bit field (as float64: DET_QUALITY_FLAG fits in 53 bits). */
  detQuality?: Float64Array;
  deblended?: Float64Array;
}

/** SHINE's selection; set a cut to null / false to disable it. */
export interface SelectionConfig {
  /** Keep FLUX_DETECTION_TOTAL / FLUXERR_DETECTION_TOTAL ≥ minSnr (default 10). */
  minSnr: number | null;
  /** Keep VIS_DET = 1 (default true). */
  requireVisDet: boolean;
  /** Drop SPURIOUS_FLAG ≠ 0 (default true). */
  rejectSpurious: boolean;
  /** Drop POINT_LIKE_FLAG ≠ 0 (default true). */
  rejectPointLike: boolean;
  /** Drop rows with DET_QUALITY_FLAG & mask ≠ 0 (default 0x78C). */
  detQualityMask: number | null;
}

export const DEFAULT_SELECTION: SelectionConfig = {
  minSnr: 10,
  requireVisDet: true,
  rejectSpurious: true,
  rejectPointLike: true,
  detQualityMask: 0x78c,
};

/** Columns needed by a selection (beyond the core ones). */
export function selectionFields(cfg: SelectionConfig): MerField[] {
  const f: MerField[] = [];
  if (cfg.requireVisDet) f.push('visDet');
  if (cfg.rejectSpurious) f.push('spurious');
  if (cfg.rejectPointLike) f.push('pointLike');
  if (cfg.detQualityMask !== null && cfg.detQualityMask !== 0) f.push('detQuality');
  return f;
}

export interface CutCount {
  /** Short name: 'snr', 'vis_det', 'spurious', 'point_like', 'det_quality'. */
  cut: string;
  description: string;
  /** Rows failing this cut on its own. */
  failed: number;
  /** Rows left after applying the cuts up to and including this one, in order. */
  remaining: number;
}

export interface SelectionResult {
  /** Selected row indices, ascending. */
  indices: Uint32Array;
  total: number;
  selected: number;
  cuts: CutCount[];
}

/** The cut that removes rows with a non-finite or impossible RA, Dec, flux or size (always applied). */
export const NON_FINITE_CUT = 'non_finite';
const NON_FINITE_DESCRIPTION = 'RIGHT_ASCENSION, DECLINATION (|Dec| ≤ 90), FLUX_DETECTION_TOTAL, SEMIMAJOR_AXIS (≥ 0) finite';

/** True when row i has a finite RA, a finite Dec within ±90°, a finite flux and a finite, non-negative SEMIMAJOR_AXIS. */
export function validRow(cat: MerCatalog, i: number): boolean {
  const ra = cat.ra[i];
  const dec = cat.dec[i];
  const a = cat.semimajor[i];
  return Number.isFinite(ra) && Number.isFinite(dec) && Math.abs(dec) <= 90 && Number.isFinite(cat.flux[i]) && Number.isFinite(a) && a >= 0;
}

/**
 * Apply SHINE's cuts. Rows with a non-finite RA, Dec, flux or size (or |Dec| > 90, a negative
 * SEMIMAJOR_AXIS) always fail the 'non_finite' cut (listed first, when it removes any row). Rows with non-finite SNR (FLUXERR ≤ 0, NaN) fail the SNR cut. */
export function selectSources(cat: MerCatalog, cfg: Partial<SelectionConfig> = {}): SelectionResult {
  const c: SelectionConfig = { ...DEFAULT_SELECTION, ...cfg };
  const n = cat.nRows;
  const need = (f: 'visDet' | 'spurious' | 'pointLike' | 'detQuality'): Float64Array => {
    const col = cat[f];
    if (!col) throw new DataError(`column ${MER_COLUMNS[f]} is needed by the selection but was not read`, { file: cat.file, hdu: cat.hdu, key: MER_COLUMNS[f] });
    return col;
  };
  const tests: Array<{ cut: string; description: string; pass: (i: number) => boolean; onlyWhenFailing?: boolean }> = [];
  // always on, listed only when it removes rows: a row without a usable position, flux or size
  tests.push({ cut: NON_FINITE_CUT, description: NON_FINITE_DESCRIPTION, pass: (i) => validRow(cat, i), onlyWhenFailing: true });
  if (c.minSnr !== null) {
    const m = c.minSnr;
    tests.push({
      cut: 'snr',
      description: `FLUX_DETECTION_TOTAL / FLUXERR_DETECTION_TOTAL ≥ ${m}`,
      pass: (i) => {
        const e = cat.fluxErr[i];
        const s = cat.flux[i] / e;
        return e > 0 && Number.isFinite(s) && s >= m;
      },
    });
  }
  if (c.requireVisDet) {
    const v = need('visDet');
    tests.push({ cut: 'vis_det', description: 'VIS_DET = 1', pass: (i) => v[i] === 1 });
  }
  if (c.rejectSpurious) {
    const v = need('spurious');
    tests.push({ cut: 'spurious', description: 'SPURIOUS_FLAG = 0', pass: (i) => v[i] === 0 });
  }
  if (c.rejectPointLike) {
    const v = need('pointLike');
    tests.push({ cut: 'point_like', description: 'POINT_LIKE_FLAG = 0', pass: (i) => v[i] === 0 });
  }
  if (c.detQualityMask !== null && c.detQualityMask !== 0) {
    const v = need('detQuality');
    const mask = BigInt(Math.trunc(c.detQualityMask));
    const small = c.detQualityMask <= 0x7fffffff;
    const m32 = c.detQualityMask | 0;
    tests.push({
      cut: 'det_quality',
      description: `DET_QUALITY_FLAG & 0x${c.detQualityMask.toString(16).toUpperCase()} = 0`,
      pass: (i) => {
        const q = v[i];
        if (!Number.isFinite(q)) return false;
        if (small && q >= 0 && q <= 0x7fffffff) return (q & m32) === 0;
        return (BigInt.asUintN(64, BigInt(Math.trunc(q))) & mask) === 0n;
      },
    });
  }
  const alive = new Uint8Array(n).fill(1);
  const cuts: CutCount[] = [];
  let remaining = n;
  for (const t of tests) {
    let failed = 0;
    for (let i = 0; i < n; i++) {
      if (!t.pass(i)) {
        failed++;
        if (alive[i]) {
          alive[i] = 0;
          remaining--;
        }
      }
    }
    if (!(t.onlyWhenFailing && failed === 0)) cuts.push({ cut: t.cut, description: t.description, failed, remaining });
  }
  const indices = new Uint32Array(remaining);
  let k = 0;
  for (let i = 0; i < n; i++) if (alive[i]) indices[k++] = i;
  return { indices, total: n, selected: remaining, cuts };
}

export interface HlrOptions {
  /** arcsec per SEMIMAJOR_AXIS unit (default 0.1: MER pixels). */
  scale?: number;
  min?: number;
  max?: number;
}

/**
 * hlr″ = scale · SEMIMAJOR_AXIS clipped to [min, max] (SHINE: 0.1, 0.05, 5). Non-finite or
 * negative semi-major axes give `min` (counted in `nonFinite`).
 */
export function halfLightRadius(semimajor: ArrayLike<number>, opts: HlrOptions = {}): { hlr: Float64Array; nonFinite: number } {
  const scale = opts.scale ?? 0.1;
  const lo = opts.min ?? 0.05;
  const hi = opts.max ?? 5;
  const out = new Float64Array(semimajor.length);
  let bad = 0;
  for (let i = 0; i < out.length; i++) {
    const a = semimajor[i] * scale;
    if (!Number.isFinite(a) || a < 0) {
      bad++;
      out[i] = lo;
    } else out[i] = Math.min(Math.max(a, lo), hi);
  }
  return { hlr: out, nonFinite: bad };
}

/** Documented fallbacks when the exposure header lacks the keys. */
export const DEFAULT_MAGZEROP = 24.57;
export const DEFAULT_EXPTIME = 560.52;
/** AB magnitude of 1 µJy. */
export const AB_MAG_1UJY = 23.9;

export interface FluxConversion {
  /** ADU per µJy: 10^((MAGZEROP + 2.5 log10 EXPTIME − 23.9) / 2.5). */
  factor: number;
  magzerop: number;
  exptime: number;
  /** Messages for the user when a fallback was used. */
  warnings: string[];
}

function headerNumber(v: unknown, key: string, ctx: { file?: string; hdu?: string | number }): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && v.trim() === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : Number(String(v).trim().replace(/[dD]/, 'e'));
  if (!Number.isFinite(n)) throw new DataError(`expected a number, got ${JSON.stringify(String(v))}`, { ...ctx, key });
  return n;
}

/**
 * µJy → ADU conversion from an exposure header (MAGZEROP may be a string). Missing keys fall back
 * to MAGZEROP 24.57 / EXPTIME 560.52 s with a warning; present but unreadable or non-positive
 * EXPTIME → DataError.
 */
export function fluxConversion(
  header: { get(key: string): unknown },
  ctx: { file?: string; hdu?: string | number } = {},
  defaults: { magzerop?: number; exptime?: number } = {},
): FluxConversion {
  const warnings: string[] = [];
  const where = [ctx.file, ctx.hdu !== undefined ? `HDU ${ctx.hdu}` : ''].filter(Boolean).join(', ');
  let zp = headerNumber(header.get('MAGZEROP'), 'MAGZEROP', ctx);
  if (zp === undefined) {
    zp = defaults.magzerop ?? DEFAULT_MAGZEROP;
    warnings.push(`${where ? where + ': ' : ''}MAGZEROP missing, using ${zp}`);
  }
  let t = headerNumber(header.get('EXPTIME'), 'EXPTIME', ctx);
  if (t === undefined) {
    t = defaults.exptime ?? DEFAULT_EXPTIME;
    warnings.push(`${where ? where + ': ' : ''}EXPTIME missing, using ${t} s`);
  }
  if (!(t > 0)) throw new DataError(`EXPTIME must be positive, got ${t}`, { ...ctx, key: 'EXPTIME' });
  return { factor: microJanskyToAduFactor(zp, t), magzerop: zp, exptime: t, warnings };
}

/** ADU per µJy for a zero point (mag for 1 ADU/s) and exposure time (s). */
export function microJanskyToAduFactor(magzerop: number, exptime: number): number {
  return Math.pow(10, (magzerop + 2.5 * Math.log10(exptime) - AB_MAG_1UJY) / 2.5);
}

export type EllipticityDefinition = '1-b/a' | 'distortion' | 'shear';
export type PositionAngleConvention = 'east-of-north' | 'from-u-axis';

/**
 * Initial (e1, e2) distortions in the (u, v) frame from ELLIPTICITY and POSITION_ANGLE (degrees).
 * `definition`: what ELLIPTICITY means — '1-b/a' (SExtractor/MER, default), 'distortion'
 * (a²−b²)/(a²+b²), or 'shear' (a−b)/(a+b). `angle`: 'east-of-north' (astronomical PA, default:
 * the major axis at PA θ points along (u, v) = (−sin θ, cos θ)) or 'from-u-axis' (counter-clockwise
 * from +u). Non-finite inputs give (0, 0).
 */
export function ellipticityToE1E2(
  ellipticity: ArrayLike<number>,
  positionAngle: ArrayLike<number>,
  opts: { definition?: EllipticityDefinition; angle?: PositionAngleConvention } = {},
): { e1: Float64Array; e2: Float64Array } {
  const def = opts.definition ?? '1-b/a';
  const conv = opts.angle ?? 'east-of-north';
  const n = ellipticity.length;
  const e1 = new Float64Array(n);
  const e2 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const e = ellipticity[i];
    const pa = positionAngle[i];
    if (!Number.isFinite(e) || !Number.isFinite(pa)) continue;
    let d: number;
    if (def === '1-b/a') {
      const q = Math.min(Math.max(1 - e, 0), 1);
      d = (1 - q * q) / (1 + q * q);
    } else if (def === 'shear') {
      const g = Math.min(Math.max(e, 0), 1);
      d = (2 * g) / (1 + g * g);
    } else d = Math.min(Math.max(e, 0), 1);
    // keep strictly inside the unit disc
    d = Math.min(d, 0.99);
    const beta = conv === 'east-of-north' ? ((90 + pa) * Math.PI) / 180 : (pa * Math.PI) / 180;
    e1[i] = d * Math.cos(2 * beta);
    e2[i] = d * Math.sin(2 * beta);
  }
  return { e1, e2 };
}

// -------------------------------------------------------------------------------------------
// Building from columns

/** In-memory columns: name → values (numbers, bigints or booleans). */
export type ColumnMap = Map<string, ArrayLike<unknown>> | Record<string, ArrayLike<unknown>>;

function lookup(cols: ColumnMap, name: string): ArrayLike<unknown> | undefined {
  if (cols instanceof Map) {
    for (const [k, v] of cols) if (k.toUpperCase() === name) return v;
    return undefined;
  }
  for (const k of Object.keys(cols)) if (k.toUpperCase() === name) return cols[k];
  return undefined;
}

function toFloat64(a: ArrayLike<unknown>): Float64Array {
  if (a instanceof Float64Array) return a;
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    out[i] = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? (v ? 1 : 0) : NaN;
  }
  return out;
}

function toBigInt64(a: ArrayLike<unknown>): BigInt64Array {
  if (a instanceof BigInt64Array) return a;
  const out = new BigInt64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    out[i] = typeof v === 'bigint' ? BigInt.asIntN(64, v) : typeof v === 'number' && Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
  }
  return out;
}

export interface MerReadOptions {
  /** Cuts that will be applied: their columns become required. Default SHINE's. */
  selection?: Partial<SelectionConfig>;
  /** Further columns to require (field names). */
  require?: MerField[];
  file?: string;
  hdu?: string | number;
}

/** Fields required for `opts` (core + selection + extra). */
export function requiredMerFields(opts: MerReadOptions = {}): MerField[] {
  const sel: SelectionConfig = { ...DEFAULT_SELECTION, ...(opts.selection ?? {}) };
  return [...new Set<MerField>([...CORE_FIELDS, ...selectionFields(sel), ...(opts.require ?? [])])];
}

/** Build a MerCatalog from in-memory columns; a missing required column → DataError naming it. */
export function merCatalogFromColumns(cols: ColumnMap, opts: MerReadOptions = {}): MerCatalog {
  const ctx = { file: opts.file, hdu: opts.hdu };
  const required = new Set(requiredMerFields(opts));
  const got: Partial<Record<MerField, ArrayLike<unknown>>> = {};
  let nRows = -1;
  for (const f of Object.keys(MER_COLUMNS) as MerField[]) {
    const name = MER_COLUMNS[f];
    const col = lookup(cols, name);
    if (!col) {
      if (required.has(f)) throw new DataError(`missing catalog column ${name}`, { ...ctx, key: name });
      continue;
    }
    if (nRows < 0) nRows = col.length;
    else if (col.length !== nRows) {
      throw new DataError(`column ${name} has ${col.length} rows, expected ${nRows}`, { ...ctx, key: name });
    }
    got[f] = col;
  }
  const cat: MerCatalog = {
    file: opts.file,
    hdu: opts.hdu,
    nRows: Math.max(nRows, 0),
    objectId: toBigInt64(got.id!),
    ra: toFloat64(got.ra!),
    dec: toFloat64(got.dec!),
    flux: toFloat64(got.flux!),
    fluxErr: toFloat64(got.fluxErr!),
    semimajor: toFloat64(got.semimajor!),
  };
  for (const f of ['fluxVisPsf', 'ellipticity', 'positionAngle', 'visDet', 'spurious', 'pointLike', 'detQuality', 'deblended'] as const) {
    if (got[f]) cat[f] = toFloat64(got[f]!);
  }
  return cat;
}

/** Select rows of a catalog (all columns), e.g. with SelectionResult.indices. */
export function subsetCatalog(cat: MerCatalog, indices: ArrayLike<number>): MerCatalog {
  const pick = (a: Float64Array) => {
    const o = new Float64Array(indices.length);
    for (let i = 0; i < indices.length; i++) o[i] = a[indices[i]];
    return o;
  };
  const ids = new BigInt64Array(indices.length);
  for (let i = 0; i < indices.length; i++) ids[i] = cat.objectId[indices[i]];
  const out: MerCatalog = {
    file: cat.file,
    hdu: cat.hdu,
    nRows: indices.length,
    objectId: ids,
    ra: pick(cat.ra),
    dec: pick(cat.dec),
    flux: pick(cat.flux),
    fluxErr: pick(cat.fluxErr),
    semimajor: pick(cat.semimajor),
  };
  for (const f of ['fluxVisPsf', 'ellipticity', 'positionAngle', 'visDet', 'spurious', 'pointLike', 'detQuality', 'deblended'] as const) {
    const a = cat[f];
    if (a) out[f] = pick(a);
  }
  return out;
}
