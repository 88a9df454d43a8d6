/** Reading PSF grids from a FITS PSF product (one HDU per quadrant). */
import { DataError } from '../../errors.ts';
import type { FitsFile, HduRef } from '../fits/file.ts';
import { PsfGrid, psfGridOptionsFromHeader, type PsfGridOptions } from './grid.ts';

/**
 * Reads the PSF grid of one quadrant (`hdu` = the quadrant's name, e.g. "3-4.F", or an index).
 * Only that HDU's data is read. Grid and stamp sizes: explicit options, else the optional header
 * keys (PSFGRDNX, PSFGRDNY, PSFSTAMP, PSFQUADW, PSFQUADH), else 21-pixel stamps and a
 * 2048 × 2066 quadrant. The sampling of the stamps (PSF-model pixels per detector pixel,
 * `grid.oversampling`): `opts.oversampling` (an override), else the header key PSFOVERS, else 1;
 * anything but a positive integer is a DataError naming the file, the HDU and the key.
 */
export async function readPsfGrid(fits: FitsFile, hdu: HduRef, opts: PsfGridOptions = {}): Promise<PsfGrid> {
  const info = fits.hdu(hdu);
  const name = info.name || info.index;
  if (info.type !== 'image' && info.type !== 'primary') {
    throw new DataError(`expected an image HDU for the PSF grid, found ${info.type}`, { file: fits.name, hdu: name });
  }
  if (info.naxis.length !== 2) {
    throw new DataError(`PSF grid must be a 2-D image, found NAXIS = ${info.naxis.length}`, {
      file: fits.name,
      hdu: name,
      key: 'NAXIS',
    });
  }
  const o = psfGridOptionsFromHeader(fits.header(info.index), { file: fits.name, hdu: name, ...opts });
  const img = await fits.readImage(info.index);
  const d = img.data;
  const pixels: ArrayLike<number> =
    d instanceof BigInt64Array || d instanceof BigUint64Array ? Float64Array.from(d, (v) => Number(v)) : d;
  return new PsfGrid(pixels, img.width, img.height, o);
}
