/** Reading a MER catalog from a FITS binary table (only the needed columns are decoded). */
import { DataError } from '../../errors.ts';
import type { FitsFile, HduRef } from '../fits/file.ts';
import { MER_COLUMNS, merCatalogFromColumns, requiredMerFields, type MerCatalog, type MerReadOptions } from './mer.ts';

/**
 * Reads a MER catalog. `opts.hdu`: the table HDU (default: the first binary table). Columns:
 * the core ones and those needed by `opts.selection` are required (missing → DataError naming the
 * file, HDU and column); the optional ones are read when present.
 */
export async function readMerCatalog(fits: FitsFile, opts: MerReadOptions & { hdu?: HduRef } = {}): Promise<MerCatalog> {
  let info;
  if (opts.hdu !== undefined) info = fits.hdu(opts.hdu);
  else {
    info = fits.hdus.find((h) => h.type === 'bintable');
    if (!info) throw new DataError('no binary table HDU found for the MER catalog', { file: fits.name });
  }
  const hduName = info.name || info.index;
  if (info.type !== 'bintable') {
    throw new DataError(`expected a binary table for the MER catalog, found ${info.type}`, { file: fits.name, hdu: hduName });
  }
  const h = fits.header(info.index);
  const nFields = Number(h.get('TFIELDS') ?? 0);
  const present = new Map<string, string>();
  for (let i = 1; i <= nFields; i++) {
    const t = h.get(`TTYPE${i}`);
    if (typeof t === 'string') present.set(t.trim().toUpperCase(), t.trim());
  }
  const ctx = { file: opts.file ?? fits.name, hdu: opts.hdu ?? hduName };
  for (const f of requiredMerFields(opts)) {
    const name = MER_COLUMNS[f];
    if (!present.has(name)) throw new DataError(`missing catalog column ${name}`, { ...ctx, key: name });
  }
  const wanted = Object.values(MER_COLUMNS).filter((n) => present.has(n)).map((n) => present.get(n)!);
  const table = await fits.readTable(info.index, { columns: wanted });
  const cols = new Map<string, ArrayLike<unknown>>();
  for (const n of wanted) {
    const c = table.column(n);
    if (c.repeat !== 1 && !(c.type === 'A')) {
      throw new DataError(`catalog column ${n} has ${c.repeat} values per row, expected 1`, { ...ctx, key: n });
    }
    let data = c.data as ArrayLike<unknown>;
    if (c.nullMask && !(data instanceof Float64Array || data instanceof Float32Array)) {
      // integer nulls: make them NaN so the cuts reject them
      const f = new Float64Array(data.length);
      for (let i = 0; i < f.length; i++) {
        const v = data[i];
        f[i] = c.nullMask[i] ? NaN : typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? (v ? 1 : 0) : Number(v);
      }
      if (n.toUpperCase() !== MER_COLUMNS.id) data = f;
    }
    cols.set(n.toUpperCase(), data);
  }
  return merCatalogFromColumns(cols, { ...opts, ...ctx });
}
