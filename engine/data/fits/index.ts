/**
 * FITS I/O (runtime-agnostic). File access lives in platform/{node,deno,browser}/files.ts;
 * HTTP(S) range requests in ./http-source.ts. See docs/fits.md.
 */
export { FitsFile, type HduInfo, type HduType, type HduRef, type OpenOptions } from './file.ts';
export {
  Header,
  parseCards,
  formatCard,
  formatNumber,
  BLOCK,
  type HeaderValue,
  type HeaderCard,
  type HeaderContext,
  type CardSpec,
  type CardInput,
} from './header.ts';
export {
  memorySource,
  chunkedMemorySource,
  countingSource,
  gunzipSource,
  isGunzipSource,
  crc32,
  GZIP_MAX_RATIO,
  type GunzipSource,
  maybeGunzip,
  isGzipMagic,
  type ByteSource,
  type ReadStats,
} from './source.ts';
export { httpSource, type HttpSourceOptions } from './http-source.ts';
export { decodeImage, toFloat32, type FitsImage, type ImageArray } from './image.ts';
export { parseTform, type FitsTable, type TableColumn, type ColumnData, type ReadTableOptions } from './table.ts';
export {
  writeFits,
  writeFitsChunks,
  type HduSpec,
  type ImageHduSpec,
  type EmptyHduSpec,
  type TableHduSpec,
  type ColumnSpec,
  type Bitpix,
  type WritableImageArray,
} from './write.ts';
