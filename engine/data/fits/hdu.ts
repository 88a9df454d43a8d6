/**
 * Where an HDU lies in a FITS file and what it holds: the record FitsFile's header scan produces
 * and the image and table decoders read. In a module of its own so that file.ts (which calls the
 * decoders) and image.ts / table.ts (which take this record) do not import each other.
 */
export type HduType = 'primary' | 'image' | 'bintable' | 'table' | 'unknown';

export interface HduInfo {
  index: number;
  /** EXTNAME ('' when absent; the primary HDU is also found as 'PRIMARY'). */
  name: string;
  extver?: number;
  type: HduType;
  /** The XTENSION value as written (undefined for the primary HDU). */
  xtension?: string;
  bitpix: number;
  /** NAXISn values, NAXIS1 first. */
  naxis: number[];
  pcount: number;
  gcount: number;
  headerOffset: number;
  /** Bytes of header blocks (a multiple of 2880). */
  headerSize: number;
  dataOffset: number;
  /** Bytes of data, excluding the padding to a 2880 multiple. */
  dataSize: number;
}
