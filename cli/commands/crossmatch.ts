/**
 * `shine crossmatch A.fits B.fits --radius ARCSEC [--out M.fits] [--ra-col RA --dec-col DEC]
 *  [--unique] [--json]`: matches every source of A to its nearest source of B within the radius
 * (engine/assemble/crossmatch.ts: a 3-D k-d tree on unit vectors, O(N log M)), and reports the
 * matched fractions, the separation distribution and the B − A differences of shared numeric
 * columns. `--out` writes the pairs as a FITS table, atomically. See docs/crossmatch.md.
 */
import { UserError, type Command } from '../command.ts';
import { parseOptions } from '../args.ts';
import { openFits, writeFileAtomic } from '../../platform/node/files.ts';
import { DataError } from '../../engine/errors.ts';
import { writeFits, type ColumnSpec } from '../../engine/data/fits/write.ts';
import type { FitsTable, TableColumn } from '../../engine/data/fits/table.ts';
import { crossmatch, quantileSorted, robustStats, type CrossmatchResult, type RobustStats } from '../../engine/assemble/crossmatch.ts';

const USAGE = `usage: shine crossmatch A.fits B.fits --radius ARCSEC [options]
  --radius R        match radius in arcsec (required, > 0)
  --out M.fits      write the matched pairs as a FITS binary table
  --ra-col NAME     RA column (degrees) in both files (default: RA, RIGHT_ASCENSION, ALPHA_J2000)
  --dec-col NAME    Dec column (degrees) in both files (default: DEC, DECLINATION, DELTA_J2000)
  --hdu-a REF       HDU of A (index or EXTNAME; default: the first binary table)
  --hdu-b REF       HDU of B (same)
  --unique          one-to-one: each B source used at most once (greedy by separation)
  --json            print the report as JSON`;

const RA_NAMES = ['RA', 'RIGHT_ASCENSION', 'ALPHA_J2000'];
const DEC_NAMES = ['DEC', 'DECLINATION', 'DELTA_J2000'];

interface Catalog {
  file: string;
  hdu: number;
  table: FitsTable;
  raName: string;
  decName: string;
  ra: Float64Array;
  dec: Float64Array;
}

export interface CrossmatchReport {
  fileA: string;
  fileB: string;
  raColumns: { a: [string, string]; b: [string, string] };
  radiusArcsec: number;
  unique: boolean;
  nA: number;
  nB: number;
  invalidA: number;
  invalidB: number;
  nMatched: number;
  /** Distinct B sources matched. */
  nMatchedB: number;
  fractionA: number;
  fractionB: number;
  sepMedianArcsec: number;
  sep90Arcsec: number;
  /** B − A differences of the numeric scalar columns present in both (except the positions). */
  differences: Array<{ column: string } & RobustStats>;
  seconds: number;
  out?: string;
}

function findColumn(t: FitsTable, wanted: string | undefined, candidates: string[], file: string, hdu: number, what: string): string {
  const upper = new Map(t.names.map((n) => [n.toUpperCase(), n]));
  if (wanted !== undefined) {
    const n = upper.get(wanted.toUpperCase());
    if (!n) throw new DataError(`no ${what} column '${wanted}' (columns: ${t.names.join(', ') || 'none'})`, { file, hdu, field: wanted });
    return n;
  }
  for (const c of candidates) {
    const n = upper.get(c);
    if (n) return n;
  }
  throw new DataError(`no ${what} column found (looked for ${candidates.join(', ')}; use --${what === 'RA' ? 'ra' : 'dec'}-col); columns: ${t.names.join(', ') || 'none'}`, {
    file,
    hdu,
    field: candidates[0],
  });
}

/** A scalar numeric column as float64 (null elements → NaN); undefined if not numeric or not scalar. */
function numeric(col: TableColumn): Float64Array | undefined {
  if (col.width !== 1 || col.type === 'C' || col.type === 'M' || col.type === 'X') return undefined;
  const d = col.data;
  if (Array.isArray(d)) return undefined;
  let out: Float64Array;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) out = Float64Array.from(d, (x) => Number(x));
  else out = Float64Array.from(d as ArrayLike<number>);
  if (col.nullMask) for (let i = 0; i < out.length; i++) if (col.nullMask[i]) out[i] = NaN;
  return out;
}

async function loadCatalog(file: string, hduRef: string | undefined, raCol: string | undefined, decCol: string | undefined): Promise<Catalog> {
  let f;
  try {
    // the scan stops at the table read (a gzip catalog is not inflated beyond it)
    f = await openFits(file, { needed: [hduRef === undefined ? (h) => h.type === 'bintable' : /^\d+$/.test(hduRef) ? Number(hduRef) : hduRef] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err?.code === 'ENOENT') throw new DataError('no such file', { file });
    throw e;
  }
  try {
    let hdu: number;
    if (hduRef !== undefined) {
      hdu = f.hdu(/^\d+$/.test(hduRef) ? Number(hduRef) : hduRef).index;
    } else {
      const t = f.hdus.find((h) => h.type === 'bintable');
      if (!t) throw new DataError(`no binary table HDU (HDUs: ${f.hdus.map((h) => `${h.index} ${h.type}`).join(', ')}); a source catalog is needed`, { file });
      hdu = t.index;
    }
    const table = await f.readTable(hdu);
    const raName = findColumn(table, raCol, RA_NAMES, file, hdu, 'RA');
    const decName = findColumn(table, decCol, DEC_NAMES, file, hdu, 'Dec');
    const ra = numeric(table.column(raName));
    const dec = numeric(table.column(decName));
    if (!ra) throw new DataError(`column is not a scalar numeric column (TFORM ${table.column(raName).format})`, { file, hdu, field: raName });
    if (!dec) throw new DataError(`column is not a scalar numeric column (TFORM ${table.column(decName).format})`, { file, hdu, field: decName });
    for (let i = 0; i < dec.length; i++) {
      if (Math.abs(dec[i]) > 90) throw new DataError(`row ${i}: declination ${dec[i]} outside [-90, 90] (degrees expected)`, { file, hdu, field: decName });
    }
    return { file, hdu, table, raName, decName, ra, dec };
  } finally {
    await f.close();
  }
}

function gatherColumn(col: TableColumn, rows: Int32Array, name: string): ColumnSpec | undefined {
  const n = rows.length;
  const w = col.width;
  const d = col.data;
  const base: Partial<ColumnSpec> = {};
  if (col.unit) base.unit = col.unit;
  if (col.dim) base.dim = col.dim;
  if (col.type === 'C' || col.type === 'M') return undefined;
  if (Array.isArray(d)) {
    if (w !== 1) return undefined;
    if (typeof d[0] === 'boolean' || col.type === 'L') {
      const b = d as boolean[];
      return { name, data: Array.from(rows, (r) => b[r]), format: 'L', ...(col.unit ? { unit: col.unit } : {}) };
    }
    const s = d as string[];
    return { name, data: Array.from(rows, (r) => s[r]), format: `${Math.max(1, col.repeat)}A`, ...(col.unit ? { unit: col.unit } : {}) };
  }
  const Ctor = d.constructor as new (len: number) => typeof d;
  const out = new Ctor(n * w);
  for (let k = 0; k < n; k++) {
    const r = rows[k];
    for (let j = 0; j < w; j++) (out as unknown as { [i: number]: number | bigint })[k * w + j] = d[r * w + j];
  }
  const spec: ColumnSpec = { name, data: out as ColumnSpec['data'], ...base };
  if (col.type === 'X') spec.format = `${col.repeat}X`;
  else if (n === 0 && w !== 1) {
    const code = d instanceof Float32Array ? 'E' : d instanceof Float64Array ? 'D' : d instanceof Int16Array ? 'I' : d instanceof Int32Array ? 'J' : d instanceof BigInt64Array ? 'K' : undefined;
    if (!code) return undefined;
    spec.format = `${w}${code}`;
  }
  const scaled = d instanceof Float64Array && col.type !== 'D';
  if (col.nullMask && col.tnull !== undefined && !scaled) {
    const m = new Uint8Array(n * w);
    for (let k = 0; k < n; k++) for (let j = 0; j < w; j++) m[k * w + j] = col.nullMask[rows[k] * w + j];
    spec.nullMask = m;
    spec.tnull = col.tnull;
  }
  return spec;
}

function matchTable(a: Catalog, b: Catalog, res: CrossmatchResult, radius: number, unique: boolean, warn: string[]): Uint8Array {
  const columns: ColumnSpec[] = [
    { name: 'INDEX_A', data: res.aIndex },
    { name: 'INDEX_B', data: res.bIndex },
    { name: 'SEP_ARCSEC', data: res.sepArcsec, unit: 'arcsec' },
  ];
  for (const [prefix, cat, rows] of [
    ['A_', a, res.aIndex],
    ['B_', b, res.bIndex],
  ] as const) {
    for (const n of cat.table.names) {
      const spec = gatherColumn(cat.table.column(n), rows, prefix + n);
      if (spec) columns.push(spec);
      else warn.push(`${cat.file}: column ${n} (TFORM ${cat.table.column(n).format}) not copied to the output`);
    }
  }
  return writeFits([
    { kind: 'empty' },
    {
      kind: 'bintable',
      name: 'MATCHES',
      nRows: res.aIndex.length,
      columns,
      cards: [
        { key: 'RADIUS', value: radius, comment: 'match radius [arcsec]' },
        { key: 'UNIQUE', value: unique, comment: 'one-to-one matching (greedy by separation)' },
        { key: 'NROWS_A', value: res.nA, comment: 'rows in catalog A' },
        { key: 'NROWS_B', value: res.nB, comment: 'rows in catalog B' },
        { key: 'COMMENT', value: 'INDEX_A, INDEX_B: 0-based row numbers in the input tables' },
      ],
    },
  ]);
}

function buildReport(a: Catalog, b: Catalog, res: CrossmatchResult, radius: number, unique: boolean, seconds: number): CrossmatchReport {
  const nMatched = res.aIndex.length;
  const usedB = new Uint8Array(res.nB);
  for (const j of res.bIndex) usedB[j] = 1;
  let nMatchedB = 0;
  for (const u of usedB) nMatchedB += u;
  const seps = Float64Array.from(res.sepArcsec).sort();
  const skip = new Set([a.raName, a.decName, b.raName, b.decName].map((s) => s.toUpperCase()));
  const bNames = new Map(b.table.names.map((n) => [n.toUpperCase(), n]));
  const differences: CrossmatchReport['differences'] = [];
  for (const n of a.table.names) {
    const key = n.toUpperCase();
    const nb = bNames.get(key);
    if (!nb || skip.has(key)) continue;
    const va = numeric(a.table.column(n));
    const vb = numeric(b.table.column(nb));
    if (!va || !vb) continue;
    const diff = new Float64Array(nMatched);
    for (let k = 0; k < nMatched; k++) diff[k] = vb[res.bIndex[k]] - va[res.aIndex[k]];
    differences.push({ column: n, ...robustStats(diff) });
  }
  return {
    fileA: a.file,
    fileB: b.file,
    raColumns: { a: [a.raName, a.decName], b: [b.raName, b.decName] },
    radiusArcsec: radius,
    unique,
    nA: res.nA,
    nB: res.nB,
    invalidA: res.invalidA,
    invalidB: res.invalidB,
    nMatched,
    nMatchedB,
    fractionA: res.nA ? nMatched / res.nA : NaN,
    fractionB: res.nB ? nMatchedB / res.nB : NaN,
    sepMedianArcsec: quantileSorted(seps, 0.5),
    sep90Arcsec: quantileSorted(seps, 0.9),
    differences,
    seconds,
  };
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(4) : x.toFixed(4);
}

function text(r: CrossmatchReport): string {
  const lines = [
    `A: ${r.fileA} (${r.nA} sources, columns ${r.raColumns.a.join('/')})${r.invalidA ? `, ${r.invalidA} without valid coordinates` : ''}`,
    `B: ${r.fileB} (${r.nB} sources, columns ${r.raColumns.b.join('/')})${r.invalidB ? `, ${r.invalidB} without valid coordinates` : ''}`,
    `radius ${r.radiusArcsec}"${r.unique ? ', one-to-one' : ', nearest B for each A'}: ${r.nMatched} pairs in ${r.seconds.toFixed(2)} s`,
    `matched: ${(100 * r.fractionA).toFixed(2)} % of A, ${(100 * r.fractionB).toFixed(2)} % of B (${r.nMatchedB} distinct B)`,
    `separation: median ${fmt(r.sepMedianArcsec)}", 90 % ${fmt(r.sep90Arcsec)}"`,
  ];
  if (r.differences.length) {
    lines.push('', `${'B − A'.padEnd(16)} ${'n'.padStart(8)} ${'median'.padStart(12)} ${'1.4826·MAD'.padStart(12)}`);
    for (const d of r.differences) lines.push(`${d.column.padEnd(16)} ${String(d.n).padStart(8)} ${fmt(d.median).padStart(12)} ${fmt(d.scatter).padStart(12)}`);
  }
  if (r.out) lines.push('', `wrote ${r.out}`);
  return lines.join('\n');
}

const command: Command = {
  summary: 'match two source catalogs on the sky (nearest within a radius) and compare their columns',
  async run(argv) {
    const { opts, positional } = parseOptions(
      argv,
      { radius: 'number', out: 'string', 'ra-col': 'string', 'dec-col': 'string', 'hdu-a': 'string', 'hdu-b': 'string', unique: 'boolean', json: 'boolean', help: 'boolean' },
      USAGE,
    );
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    if (positional.length !== 2) throw new UserError(`expected two catalogs, got ${positional.length}\n${USAGE}`);
    if (opts.radius === undefined) throw new UserError(`--radius is required\n${USAGE}`);
    const radius = opts.radius as number;
    if (!(radius > 0) || radius > 180 * 3600) throw new UserError(`--radius must be in (0, 648000] arcsec, got ${radius}`);
    const unique = opts.unique === true;
    const raCol = opts['ra-col'] as string | undefined;
    const decCol = opts['dec-col'] as string | undefined;
    const a = await loadCatalog(positional[0], opts['hdu-a'] as string | undefined, raCol, decCol);
    const b = await loadCatalog(positional[1], opts['hdu-b'] as string | undefined, raCol, decCol);
    const t0 = performance.now();
    const res = crossmatch(a.ra, a.dec, b.ra, b.dec, { radiusArcsec: radius, unique });
    const seconds = (performance.now() - t0) / 1000;
    const report = buildReport(a, b, res, radius, unique, seconds);
    const warn: string[] = [];
    if (opts.out !== undefined) {
      const out = opts.out as string;
      await writeFileAtomic(out, matchTable(a, b, res, radius, unique, warn));
      report.out = out;
    }
    for (const w of warn) console.error(`shine crossmatch: warning: ${w}`);
    console.log(opts.json ? JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) : text(report));
    return 0;
  },
};

export default command;
