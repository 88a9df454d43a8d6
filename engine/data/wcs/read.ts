/** WCS of an HDU of an open FITS file. */
import type { FitsFile, HduRef } from '../fits/file.ts';
import { parseWcs, type Wcs } from './wcs.ts';

/** Parses the celestial WCS of HDU `hdu` (errors name the file, HDU and key). */
export function readWcs(fits: FitsFile, hdu: HduRef): Wcs {
  const info = fits.hdu(hdu);
  return parseWcs(fits.header(info.index), { file: fits.name, hdu: info.name || info.index });
}
