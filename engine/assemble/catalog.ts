/**
 * Stage 3 (docs/assemble.md): every sub-tile's outputs → the unified shear catalog
 * (one row per sub-tile, exactly the §8.2 columns) and per-tile files of per-source parameters.
 *
 * Runtime-agnostic: files are read through a `AssembleReader` given by the caller (Node: cli/commands/assemble.ts).
 * A sub-tile counts when its shear, params and metadata files (metadata is written last: the
 * completion marker) exist in exactly one output folder and are valid. Anything else is a
 * problem named by file and reason; the caller decides (--allow-missing) whether to go on.
 * See docs/assemble.md.
 */
import { ShineError } from '../errors.ts';
import { FitsFile } from '../data/fits/file.ts';
import { memorySource } from '../data/fits/source.ts';
import { writeFits, type ColumnSpec } from '../data/fits/write.ts';
import type { FitsTable, TableColumn } from '../data/fits/table.ts';
import { checkSubtileId, subtileOutputNames, type SubtileId } from '../outputs/names.ts';
import { checkProductBytes } from '../outputs/validate.ts';
import { readShearRow, SHEAR_CATALOG_COLUMNS, SHEAR_EXTNAME, type SubtileShear } from '../outputs/shear.ts';
import { PARAMS_COLUMNS, PARAMS_EXTNAME } from '../outputs/params.ts';
import { asciiText, provenanceCards, type Provenance } from '../outputs/provenance.ts';

/** EXTNAME of the catalog table (HDU 1) and of the table of left-out sub-tiles (HDU 2). */
export const CATALOG_EXTNAME = 'SHEAR_CATALOG';
export const MISSING_EXTNAME = 'MISSING';

export interface AssembleReader {
  /** The bytes of a file, or null when it does not exist (other failures throw). */
  read(path: string): Promise<Uint8Array | null>;
  /** Joins a folder and a file name. */
  join(dir: string, name: string): string;
}

export interface AssembleInput {
  /** Output folders holding the sub-tile products (usually one: distributed.output_dir). */
  dirs: string[];
  /** MER tile ids (each once). */
  tiles: Array<number | bigint>;
  /** [rows, cols] of the sub-tile grid (distributed.sub_tile_grid). */
  grid: [number, number];
}

export interface SubtileProblem extends SubtileId {
  kind: 'missing' | 'invalid';
  /** The file (path) concerned. */
  file: string;
  reason: string;
}

export interface AssembledSubtile {
  shear: SubtileShear;
  shearFile: string;
  paramsFile: string;
  params: FitsTable;
}

export interface AssembleResult {
  /** Sub-tiles expected (tiles × rows × cols). */
  expected: number;
  /** Valid sub-tiles, in tile order (as given), then row, then column. */
  subtiles: AssembledSubtile[];
  /** Sub-tiles left out, with the file and the reason (one entry per sub-tile). */
  problems: SubtileProblem[];
}

function key(t: number | bigint, r: number, c: number): string {
  return `${String(t)}_${r}_${c}`;
}

async function readOptional(reader: AssembleReader, path: string): Promise<{ bytes: Uint8Array | null; error?: string }> {
  try {
    return { bytes: await reader.read(path) };
  } catch (e) {
    return { bytes: null, error: (e as Error).message };
  }
}

/**
 * Finds and validates every sub-tile's shear, params and metadata files. Throws ShineError on a
 * duplicate (the same sub-tile in two folders, or a tile listed twice); reports missing or
 * invalid sub-tiles in `problems`.
 */
export async function collectSubtiles(input: AssembleInput, reader: AssembleReader): Promise<AssembleResult> {
  const [nRows, nCols] = input.grid;
  if (!input.dirs.length) throw new ShineError('no output folder given');
  if (!input.tiles.length) throw new ShineError('no tile given');
  if (!(Number.isInteger(nRows) && Number.isInteger(nCols) && nRows >= 1 && nCols >= 1 && nRows <= 128 && nCols <= 128)) {
    throw new ShineError(`sub-tile grid ${nRows}×${nCols}: expected 1..128 rows and columns (int8 indices)`, { field: 'distributed.sub_tile_grid' });
  }
  const seenTiles = new Set<string>();
  for (const t of input.tiles) {
    checkSubtileId(t, 0, 0);
    if (seenTiles.has(String(t))) throw new ShineError(`tile ${String(t)} is listed twice`, { field: 'tiles' });
    seenTiles.add(String(t));
  }
  const dirs = [...new Set(input.dirs)];
  const subtiles: AssembledSubtile[] = [];
  const problems: SubtileProblem[] = [];
  for (const tileId of input.tiles) {
    for (let row = 0; row < nRows; row++) {
      for (let col = 0; col < nCols; col++) {
        const id = { tileId, row, col };
        const names = subtileOutputNames(tileId, row, col);
        // which folders hold this sub-tile (any of its products)?
        const found: Array<{ dir: string; files: Record<'shear' | 'params' | 'metadata', { path: string; bytes: Uint8Array | null; error?: string }> }> = [];
        for (const dir of dirs) {
          const files = {} as (typeof found)[number]['files'];
          for (const k of ['shear', 'params', 'metadata'] as const) {
            const path = reader.join(dir, names[k]);
            files[k] = { path, ...(await readOptional(reader, path)) };
          }
          if (Object.values(files).some((f) => f.bytes !== null || f.error)) found.push({ dir, files });
        }
        if (found.length > 1) {
          throw new ShineError(
            `duplicate sub-tile: tile ${String(tileId)} sub-tile (${row}, ${col}) is in ${found.length} output folders: ${found.map((f) => f.files.shear.path).join(' and ')}`,
            { file: found[0].files.shear.path },
          );
        }
        if (found.length === 0) {
          const where = dirs.length === 1 ? reader.join(dirs[0], names.shear) : `${names.shear} (in none of ${dirs.join(', ')})`;
          problems.push({ ...id, kind: 'missing', file: where, reason: 'no outputs (sub-tile not run?)' });
          continue;
        }
        const { files } = found[0];
        let problem: SubtileProblem | null = null;
        for (const k of ['shear', 'params', 'metadata'] as const) {
          const f = files[k];
          if (f.error) problem = { ...id, kind: 'invalid', file: f.path, reason: `cannot read: ${f.error}` };
          else if (f.bytes === null) {
            problem = {
              ...id,
              kind: 'missing',
              file: f.path,
              reason: k === 'metadata' ? 'missing: the sub-tile did not finish (metadata is written last)' : 'missing',
            };
          } else {
            const p = await checkProductBytes(k, f.bytes, id);
            // the bytes were parsed from memory: the file is named by `file` already
            if (p.length) problem = { ...id, kind: 'invalid', file: f.path, reason: p.join('; ').replace(/file <memory>, /g, '') };
          }
          if (problem) break;
        }
        if (problem) {
          problems.push(problem);
          continue;
        }
        const shearT = await (await FitsFile.open(memorySource(files.shear.bytes!, files.shear.path))).readTable(SHEAR_EXTNAME);
        const paramsT = await (await FitsFile.open(memorySource(files.params.bytes!, files.params.path))).readTable(PARAMS_EXTNAME);
        subtiles.push({ shear: readShearRow(shearT), shearFile: files.shear.path, paramsFile: files.params.path, params: paramsT });
      }
    }
  }
  // belt and braces: one row per (tile, row, col)
  const seen = new Map<string, string>();
  for (const s of subtiles) {
    const k = key(s.shear.tileId, s.shear.row, s.shear.col);
    const other = seen.get(k);
    if (other) throw new ShineError(`duplicate sub-tile: tile ${String(s.shear.tileId)} sub-tile (${s.shear.row}, ${s.shear.col}) in ${other} and ${s.shearFile}`, { file: s.shearFile });
    seen.set(k, s.shearFile);
  }
  return { expected: input.tiles.length * nRows * nCols, subtiles, problems };
}

export interface CatalogSummary {
  expected: number;
  found: number;
  missing: number;
  /** Found sub-tiles with N_SOURCES = 0. */
  empty: number;
}

export function summarize(r: AssembleResult): CatalogSummary {
  return {
    expected: r.expected,
    found: r.subtiles.length,
    missing: r.problems.length,
    empty: r.subtiles.filter((s) => s.shear.nSources === 0).length,
  };
}

function strColumn(name: string, values: string[]): ColumnSpec {
  const v = values.map(asciiText);
  return { name, format: `${Math.max(1, ...v.map((s) => s.length))}A`, data: v };
}

/**
 * FITS bytes of the unified catalog: primary HDU (summary + provenance), BINTABLE 'SHEAR_CATALOG'
 * with exactly the §8.2 columns, one row per sub-tile, and BINTABLE 'MISSING' listing every
 * left-out sub-tile with its file and reason (zero rows when none).
 */
export function shearCatalogFits(r: AssembleResult, prov: Provenance): Uint8Array {
  const rows = r.subtiles.map((s) => s.shear);
  const n = rows.length;
  const f32 = (f: (s: SubtileShear) => number) => Float32Array.from(rows, f);
  const f64 = (f: (s: SubtileShear) => number) => Float64Array.from(rows, f);
  const columns: ColumnSpec[] = [
    { name: 'TILE_ID', format: 'K', data: BigInt64Array.from(rows, (s) => BigInt(s.tileId)) },
    { name: 'SUBTILE_ROW', format: 'B', tzero: -128, data: Int8Array.from(rows, (s) => s.row) },
    { name: 'SUBTILE_COL', format: 'B', tzero: -128, data: Int8Array.from(rows, (s) => s.col) },
    { name: 'RA', format: 'D', unit: 'deg', data: f64((s) => s.ra) },
    { name: 'DEC', format: 'D', unit: 'deg', data: f64((s) => s.dec) },
    { name: 'G1', format: 'E', data: f32((s) => s.g1) },
    { name: 'G2', format: 'E', data: f32((s) => s.g2) },
    { name: 'G1_ERR', format: 'E', data: f32((s) => s.g1Err) },
    { name: 'G2_ERR', format: 'E', data: f32((s) => s.g2Err) },
    { name: 'N_SOURCES', format: 'J', data: Int32Array.from(rows, (s) => s.nSources) },
    { name: 'METHOD', format: '4A', data: rows.map((s) => s.method) },
    { name: 'CONVERGENCE', format: 'E', data: f32((s) => s.convergence) },
  ];
  // the contract: exactly the catalog columns of engine/outputs, in order
  columns.forEach((c, i) => {
    const want = SHEAR_CATALOG_COLUMNS[i];
    if (c.name !== want.name || c.format !== want.tform || (c.tzero ?? 0) !== (want.tzero ?? 0)) throw new Error(`catalog column ${i + 1} ${c.name} does not match SHEAR_CATALOG_COLUMNS`);
  });
  const sum = summarize(r);
  const summaryCards = [
    { key: 'NTILES', value: new Set(rows.map((s) => String(s.tileId)).concat(r.problems.map((p) => String(p.tileId)))).size, comment: 'tiles assembled' },
    { key: 'NEXPECT', value: sum.expected, comment: 'sub-tiles expected (tiles x grid)' },
    { key: 'NFOUND', value: sum.found, comment: 'sub-tiles in this catalog' },
    { key: 'NMISSING', value: sum.missing, comment: `sub-tiles left out (listed in HDU ${MISSING_EXTNAME})` },
    { key: 'NEMPTY', value: sum.empty, comment: 'sub-tiles with N_SOURCES = 0' },
  ];
  const p = r.problems;
  return writeFits([
    { kind: 'empty', cards: [...summaryCards, ...provenanceCards(prov)] },
    { kind: 'bintable', name: CATALOG_EXTNAME, nRows: n, columns, cards: [...summaryCards, ...provenanceCards(prov)] },
    {
      kind: 'bintable',
      name: MISSING_EXTNAME,
      nRows: p.length,
      columns: [
        { name: 'TILE_ID', format: 'K', data: BigInt64Array.from(p, (x) => BigInt(x.tileId)) },
        { name: 'SUBTILE_ROW', format: 'B', tzero: -128, data: Int8Array.from(p, (x) => x.row) },
        { name: 'SUBTILE_COL', format: 'B', tzero: -128, data: Int8Array.from(p, (x) => x.col) },
        strColumn('STATUS', p.map((x) => x.kind)),
        strColumn('FILE', p.map((x) => x.file)),
        strColumn('REASON', p.map((x) => x.reason)),
      ],
      cards: [{ key: 'NMISSING', value: p.length, comment: 'sub-tiles left out of the catalog' }],
    },
  ]);
}

function concatColumn(parts: TableColumn[], n: number): ColumnSpec['data'] {
  const first = parts[0].data;
  if (Array.isArray(first)) return parts.flatMap((p) => p.data as unknown[]) as string[];
  const Ctor = (first as unknown as { constructor: new (n: number) => Float64Array }).constructor;
  const out = new Ctor(n);
  let o = 0;
  for (const p of parts) {
    out.set(p.data as unknown as Float64Array, o);
    o += (p.data as ArrayLike<unknown>).length;
  }
  return out as ColumnSpec['data'];
}

/**
 * FITS bytes of `params_{tile}.fits`: the PARAMS rows of the tile's sub-tiles concatenated (core
 * sources only). OBJECT_IDs must be unique across the tile (a source in two sub-tiles' cores is an
 * error naming both files). `leftOut` sub-tiles (--allow-missing) are counted in the header.
 */
export function tileParamsFits(tileId: number | bigint, subtiles: readonly AssembledSubtile[], prov: Provenance, leftOut = 0): Uint8Array {
  const mine = subtiles.filter((s) => String(s.shear.tileId) === String(tileId));
  const owner = new Map<bigint, string>();
  for (const s of mine) {
    const ids = s.params.column('OBJECT_ID').data as BigInt64Array;
    for (const id of ids) {
      const other = owner.get(id);
      if (other !== undefined) {
        throw new ShineError(`OBJECT_ID ${id} appears twice in tile ${String(tileId)}: ${other === s.paramsFile ? `twice in ${other}` : `in ${other} and ${s.paramsFile}`}`, { file: s.paramsFile, field: 'OBJECT_ID' });
      }
      owner.set(id, s.paramsFile);
    }
  }
  const n = mine.reduce((a, s) => a + s.params.nRows, 0);
  const columns: ColumnSpec[] = PARAMS_COLUMNS.map((c) => {
    if (!mine.length) {
      const data =
        c.tform === 'K' ? new BigInt64Array(0) : c.tform === 'B' ? new Int8Array(0) : c.tform === 'J' ? new Int32Array(0) : c.tform === 'E' ? new Float32Array(0) : new Float64Array(0);
      return { name: c.name, format: c.tform, data, ...(c.tzero !== undefined ? { tzero: c.tzero } : {}), ...(c.unit ? { unit: c.unit } : {}) };
    }
    const parts = mine.map((s) => s.params.column(c.name));
    const p0 = parts[0];
    return { name: c.name, format: p0.format, data: concatColumn(parts, n), ...(p0.tzero ? { tzero: p0.tzero } : {}), ...(p0.unit ? { unit: p0.unit } : {}) };
  });
  // the profile's own columns (NU, BULGE_* with _ERR and INIT_, engine/outputs/params.ts) follow
  // PARAMS_COLUMNS when the sub-tiles have them; every sub-tile of the tile must have the same set
  const standard = new Set(PARAMS_COLUMNS.map((c) => c.name.toUpperCase()));
  const extras = mine.length ? mine[0].params.names.filter((name) => !standard.has(name.toUpperCase())) : [];
  for (const s of mine) {
    const own = s.params.names.filter((name) => !standard.has(name.toUpperCase()));
    if (own.join(',') !== extras.join(',')) {
      throw new ShineError(
        `params files of tile ${String(tileId)} have different profile columns: ${mine[0].paramsFile} [${extras.join(', ') || 'none'}], ${s.paramsFile} [${own.join(', ') || 'none'}] (sub-tiles fitted with different gal.profile)`,
        { file: s.paramsFile },
      );
    }
  }
  for (const name of extras) {
    const parts = mine.map((s) => s.params.column(name));
    const p0 = parts[0];
    columns.push({ name, format: p0.format, data: concatColumn(parts, n), ...(p0.tzero ? { tzero: p0.tzero } : {}), ...(p0.unit ? { unit: p0.unit } : {}) });
  }
  return writeFits([
    { kind: 'empty' },
    {
      kind: 'bintable',
      name: PARAMS_EXTNAME,
      nRows: n,
      columns,
      cards: [
        { key: 'TILEID', value: typeof tileId === 'bigint' ? String(tileId) : tileId, comment: 'MER tile identifier' },
        { key: 'NSOURCE', value: n, comment: 'core sources (rows)' },
        { key: 'NSUBTILE', value: mine.length, comment: 'sub-tiles concatenated' },
        { key: 'NMISSING', value: leftOut, comment: 'sub-tiles of this tile left out (--allow-missing)' },
        ...provenanceCards(prov),
      ],
    },
  ]);
}

/** `params_{tile}.fits`. */
export function tileParamsName(tileId: number | bigint): string {
  checkSubtileId(tileId, 0, 0);
  return `params_${String(tileId)}.fits`;
}
