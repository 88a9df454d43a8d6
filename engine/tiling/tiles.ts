/** The MER tile index: a FITS binary table with TILE_ID, RA, DEC (degrees), one row per tile. */
import type { FitsFile, HduRef } from '../data/fits/file.ts';
import { DataError } from '../errors.ts';

export interface TileEntry {
  tileId: number;
  ra: number;
  dec: number;
}

/** Reads every tile of an index (default: the first binary table). */
export async function readTileIndex(fits: FitsFile, hdu?: HduRef): Promise<TileEntry[]> {
  const info = hdu !== undefined ? fits.hdu(hdu) : fits.hdus.find((h) => h.type === 'bintable');
  if (!info) throw new DataError('no binary table in the tile index (expected columns TILE_ID, RA, DEC)', { file: fits.name });
  const ctx = { file: fits.name, hdu: info.name || info.index };
  const h = fits.header(info.index);
  const names = new Set<string>();
  for (let i = 1; i <= Number(h.get('TFIELDS') ?? 0); i++) names.add(String(h.get(`TTYPE${i}`) ?? '').trim().toUpperCase());
  for (const c of ['TILE_ID', 'RA', 'DEC']) if (!names.has(c)) throw new DataError(`missing tile index column ${c}`, { ...ctx, key: c });
  const t = await fits.readTable(info.index, { columns: ['TILE_ID', 'RA', 'DEC'] });
  const id = t.column('TILE_ID').data as ArrayLike<number | bigint>;
  const ra = t.column('RA').data as ArrayLike<number>;
  const dec = t.column('DEC').data as ArrayLike<number>;
  const out: TileEntry[] = [];
  for (let i = 0; i < t.nRows; i++) {
    const tileId = Number(id[i]);
    if (!Number.isSafeInteger(tileId)) throw new DataError(`row ${i}: TILE_ID ${String(id[i])} is not an integer`, { ...ctx, key: 'TILE_ID' });
    const r = Number(ra[i]);
    const d = Number(dec[i]);
    if (!Number.isFinite(r) || !(Math.abs(d) <= 90)) throw new DataError(`row ${i} (tile ${tileId}): invalid centre RA ${r}, DEC ${d}`, { ...ctx, key: 'RA' });
    out.push({ tileId, ra: r, dec: d });
  }
  return out;
}

/** The entry of one tile; DataError naming the file when it is absent. */
export function findTile(tiles: readonly TileEntry[], tileId: number, file?: string): TileEntry {
  const t = tiles.find((x) => x.tileId === tileId);
  if (!t) {
    const some = tiles.slice(0, 5).map((x) => x.tileId).join(', ');
    throw new DataError(`tile ${tileId} is not in the tile index (${tiles.length} tile${tiles.length === 1 ? '' : 's'}${tiles.length ? `: ${some}${tiles.length > 5 ? ', …' : ''}` : ''})`, { file });
  }
  return t;
}
