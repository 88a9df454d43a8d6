/**
 * FitsFile: random-access reading of FITS files through a ByteSource.
 *
 * `FitsFile.open` reads the headers block by block (2880-byte blocks) and skips each HDU's data by
 * computing its size, so listing the HDUs of a multi-GB file reads only its headers. Image and table
 * data are read only for the HDUs asked for, in one read each.
 */
import { DataError } from '../../errors.ts';
import { BLOCK, CARD, Header, parseCards } from './header.ts';
import { isGunzipSource, maybeGunzip, type ByteSource } from './source.ts';
import { decodeImage, toFloat32, type FitsImage } from './image.ts';
import { decodeTable, type FitsTable, type ReadTableOptions } from './table.ts';

export type { HduInfo, HduType } from './hdu.ts';
import type { HduInfo, HduType } from './hdu.ts';

export interface OpenOptions {
  /** Decompress gzip sources (detected from the magic bytes 1f 8b). Default true. */
  gunzip?: boolean;
  /** Only the headers are wanted: a gzip file's data is inflated (to reach the next header) but not kept. */
  headersOnly?: boolean;
  /** Stop after this many HDUs (a gzip file is not inflated beyond them). */
  maxHdus?: number;
  /**
   * The HDUs the reader will use: the scan stops once every one of them is found, so a gzip file is
   * not inflated beyond the last one (nor a remote file's later headers requested). Each is an
   * index, an EXTNAME ('NAME' or 'NAME,EXTVER', case-insensitive; the first HDU of that name, as
   * {@link FitsFile.hdu} finds it) or a predicate (e.g. the first binary table). One that is never
   * found leaves the whole file scanned, as without this option; an HDU beyond the last needed one
   * is then not in `hdus`.
   */
  needed?: ReadonlyArray<HduRef | ((h: HduInfo) => boolean)>;
}

/** Whether `h` is the HDU `ref` names (an index, 'NAME' or 'NAME,EXTVER'; 'PRIMARY' only by that EXTNAME). */
function namedBy(h: HduInfo, ref: HduRef, extver?: number): boolean {
  if (typeof ref === 'number') return h.index === ref;
  let name = ref.trim().toUpperCase();
  let ver = extver;
  const comma = name.match(/^(.*),\s*(\d+)$/);
  if (ver === undefined && comma) {
    name = comma[1].trim();
    ver = Number(comma[2]);
  }
  return h.name.toUpperCase() === name && (ver === undefined || (h.extver ?? 1) === ver);
}

/** True once every needed HDU is among `hdus`. */
function allFound(hdus: readonly HduInfo[], needed: NonNullable<OpenOptions['needed']>): boolean {
  return needed.every((ref) => hdus.some((h) => (typeof ref === 'function' ? ref(h) : namedBy(h, ref))));
}

export type HduRef = string | number;

/** Maximum number of header blocks read in one request while looking for END. */
const MAX_HEADER_READAHEAD = 16;

export class FitsFile {
  readonly source: ByteSource;
  readonly hdus: readonly HduInfo[];
  /** Non-fatal oddities found while scanning (e.g. trailing bytes after the last HDU). */
  readonly warnings: readonly string[];
  private readonly headers: Header[];

  private constructor(source: ByteSource, hdus: HduInfo[], headers: Header[], warnings: string[]) {
    this.source = source;
    this.hdus = hdus;
    this.headers = headers;
    this.warnings = warnings;
  }

  get name(): string {
    return this.source.name;
  }

  /**
   * Opens a FITS file: scans every header (not the data). Gzip sources are inflated on demand
   * (CRC-32 and ISIZE checked), never beyond the end of the last HDU: a header declaring more data
   * than the compressed file can hold is an error before anything is inflated or allocated.
   */
  static async open(source: ByteSource, options: OpenOptions = {}): Promise<FitsFile> {
    const src = options.gunzip === false ? source : await maybeGunzip(source);
    const file = src.name;
    const gz = isGunzipSource(src) ? src : null;
    // a gzip stream's size is known only once inflated: read until the data ends instead
    const size = gz ? Infinity : await src.size();
    if (size === 0 || (gz && (await src.read(0, 1)).length === 0)) throw new DataError(`empty file (0 bytes${gz ? ' after decompression' : ''})`, { file });
    const hdus: HduInfo[] = [];
    const headers: Header[] = [];
    const warnings: string[] = [];
    const maxHdus = options.maxHdus ?? Infinity;
    const needed = options.needed?.length ? options.needed : null;
    let stopped = false; // every needed HDU found: the rest of the file is not read
    let offset = 0;
    while (offset < size && hdus.length < maxHdus && !stopped) {
      const index = hdus.length;
      if (index > 0) {
        // anything after the last HDU that is not an extension header is ignored (as astropy does)
        const probe = await src.read(offset, Math.min(CARD, size - offset));
        if (gz && probe.length === 0) break;
        const text = asciiOrNull(probe);
        if (text === null || !text.startsWith('XTENSION=')) {
          if (!isAllZeroOrBlank(probe)) {
            warnings.push(
              gz
                ? `the data after HDU ${index - 1} is not a FITS extension and was ignored (not decompressed)`
                : `${size - offset} bytes after HDU ${index - 1} are not a FITS extension and were ignored`,
            );
          }
          break;
        }
      }
      const { cards, headerSize } = await readHeaderBlocks(src, offset, size, index);
      const ctx = { file, hdu: index };
      const header = new Header(cards, ctx);
      const info = describeHdu(header, index, offset, headerSize);
      header.context.hdu = info.name ? `${index} (${info.name})` : index;
      const dataEnd = info.dataOffset + info.dataSize;
      const key = info.naxis.length ? `NAXIS${info.naxis.length}` : 'NAXIS';
      if (gz && dataEnd > gz.maxSize) {
        throw new DataError(
          `header declares ${info.dataSize} bytes of data, more than a ${gz.compressedSize}-byte gzip file can hold (at most ${gz.maxSize} bytes inflated)`,
          { file, hdu: header.context.hdu, key },
        );
      }
      if (gz && info.dataSize > 0) {
        // inflate through the data in steps; headers-only opens drop it as it comes
        const STEP = 64 << 20;
        for (let pos = info.dataOffset; pos < dataEnd; pos += STEP) {
          const to = Math.min(pos + STEP, dataEnd);
          const got = await src.read(to - 1, 1);
          if (got.length === 0) break;
          if (options.headersOnly) gz.forget(info.dataOffset, to - info.dataOffset);
        }
      }
      const present = gz ? gz.produced() : size;
      if (dataEnd > present) {
        throw new DataError(
          `file truncated: data of ${info.dataSize} bytes declared, only ${Math.max(0, present - info.dataOffset)} present`,
          { file, hdu: header.context.hdu, key },
        );
      }
      hdus.push(info);
      headers.push(header);
      offset = info.dataOffset + padded(info.dataSize);
      if (needed && allFound(hdus, needed)) stopped = true;
    }
    if (gz && !gz.complete() && hdus.length < maxHdus && !stopped && !warnings.length) {
      warnings.push(`the gzip stream goes on after HDU ${hdus.length - 1} (not FITS data): it was not decompressed and its CRC-32 not checked`);
    }
    return new FitsFile(src, hdus, headers, warnings);
  }

  /** Finds an HDU by index, by EXTNAME (case-insensitive; 'PRIMARY' is HDU 0), or 'NAME,EXTVER'. */
  hdu(ref: HduRef, extver?: number): HduInfo {
    if (typeof ref === 'number') {
      const h = this.hdus[ref];
      if (!Number.isInteger(ref) || !h) {
        throw new DataError(`no HDU with index ${ref} (the file has ${this.hdus.length} HDUs)`, {
          file: this.name,
          hdu: ref,
        });
      }
      return h;
    }
    let name = ref.trim().toUpperCase();
    let ver = extver;
    const comma = name.match(/^(.*),\s*(\d+)$/);
    if (ver === undefined && comma) {
      name = comma[1].trim();
      ver = Number(comma[2]);
    }
    if (name === 'PRIMARY' && ver === undefined && !this.hdus.some((h) => h.name.toUpperCase() === 'PRIMARY')) {
      return this.hdus[0];
    }
    const found = this.hdus.find(
      (h) => h.name.toUpperCase() === name && (ver === undefined || (h.extver ?? 1) === ver),
    );
    if (!found) {
      const names = this.hdus.map((h) => h.name).filter(Boolean);
      const list = names.length <= 12 ? names.join(', ') : `${names.slice(0, 12).join(', ')}, … (${names.length} named)`;
      throw new DataError(`no HDU with EXTNAME '${ref}'${ver !== undefined ? ` and EXTVER ${ver}` : ''} (available: ${list || 'none'})`, {
        file: this.name,
        hdu: ref,
        key: 'EXTNAME',
      });
    }
    return found;
  }

  header(ref: HduRef): Header {
    return this.headers[this.hdu(ref).index];
  }

  /** Reads the data bytes of an HDU (exactly dataSize bytes; no padding). */
  async readDataBytes(ref: HduRef): Promise<Uint8Array> {
    const info = this.hdu(ref);
    if (info.dataSize === 0) return new Uint8Array(0);
    const bytes = await this.source.read(info.dataOffset, info.dataSize);
    if (bytes.length !== info.dataSize) {
      throw new DataError(`data shorter than declared: ${bytes.length} of ${info.dataSize} bytes`, {
        file: this.name,
        hdu: this.headers[info.index].context.hdu,
        key: 'NAXIS',
      });
    }
    return bytes;
  }

  /** Reads an image HDU (primary or IMAGE extension), applying BSCALE/BZERO (see FitsImage). */
  async readImage(ref: HduRef): Promise<FitsImage> {
    const info = this.hdu(ref);
    const header = this.headers[info.index];
    if (info.type !== 'primary' && info.type !== 'image') {
      throw new DataError(`HDU is a ${info.type}, not an image`, { file: this.name, hdu: header.context.hdu, key: 'XTENSION' });
    }
    if (info.naxis.length === 0) {
      throw new DataError('HDU has no image data (NAXIS = 0)', { file: this.name, hdu: header.context.hdu, key: 'NAXIS' });
    }
    const bytes = await this.readDataBytes(info.index);
    return decodeImage(bytes, header, info);
  }

  /** Reads an image as Float32Array pixels (any BITPIX, scaled; BLANK → NaN). */
  async readImageFloat32(ref: HduRef): Promise<FitsImage & { data: Float32Array }> {
    const img = await this.readImage(ref);
    return { ...img, data: toFloat32(img) };
  }

  /** Reads a BINTABLE extension. */
  async readTable(ref: HduRef, options: ReadTableOptions = {}): Promise<FitsTable> {
    const info = this.hdu(ref);
    const header = this.headers[info.index];
    if (info.type !== 'bintable') {
      throw new DataError(`HDU is ${info.type === 'table' ? 'an ASCII table (not supported)' : `a ${info.type}`}, not a binary table`, {
        file: this.name,
        hdu: header.context.hdu,
        key: 'XTENSION',
      });
    }
    // Read only the main table (NAXIS1 * NAXIS2), not the heap.
    const rowBytes = info.naxis[0] ?? 0;
    const nRows = info.naxis[1] ?? 0;
    const mainSize = rowBytes * nRows;
    let bytes: Uint8Array = new Uint8Array(0);
    if (mainSize > 0) {
      bytes = await this.source.read(info.dataOffset, mainSize);
      if (bytes.length !== mainSize) {
        throw new DataError(`data shorter than declared: ${bytes.length} of ${mainSize} bytes`, {
          file: this.name,
          hdu: header.context.hdu,
          key: 'NAXIS2',
        });
      }
    }
    return decodeTable(bytes, header, info, options);
  }

  async close(): Promise<void> {
    await this.source.close();
  }
}

function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

function asciiOrNull(b: Uint8Array): string | null {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    if (b[i] < 0x20 || b[i] > 0x7e) return null;
    s += String.fromCharCode(b[i]);
  }
  return s;
}

function isAllZeroOrBlank(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0 && b[i] !== 0x20) return false;
  return true;
}

/** Reads header blocks from `offset` until the END card; returns the cards and the header size. */
async function readHeaderBlocks(
  src: ByteSource,
  offset: number,
  size: number,
  index: number,
): Promise<{ cards: ReturnType<typeof parseCards>; headerSize: number }> {
  const file = src.name;
  const parts: Uint8Array[] = [];
  let total = 0;
  let nBlocks = 1;
  for (;;) {
    const want = Math.min(nBlocks * BLOCK, size - (offset + total));
    if (want <= 0) {
      throw new DataError('header has no END card before the end of the file (truncated or corrupt file)', {
        file,
        hdu: index,
        key: 'END',
      });
    }
    const chunk = await src.read(offset + total, want);
    // scan the new cards for END
    const whole = chunk.length - (chunk.length % CARD);
    for (let c = 0; c < whole; c += CARD) {
      if (isEndCard(chunk, c)) {
        parts.push(chunk.subarray(0, c));
        const headerBytes = concat(parts, total + c);
        const headerSize = padded(total + c + CARD);
        if (index === 0) checkFirstCard(headerBytes, file);
        return { cards: parseCards(headerBytes, { file, hdu: index }), headerSize };
      }
    }
    if (total === 0 && index === 0) checkFirstCard(chunk, file);
    if (chunk.length < want || chunk.length % BLOCK !== 0) {
      throw new DataError('header has no END card before the end of the file (truncated or corrupt file)', {
        file,
        hdu: index,
        key: 'END',
      });
    }
    parts.push(chunk);
    total += chunk.length;
    // guard against absurd headers in corrupt files: 10^5 blocks = 288 MB of header
    if (total > 100_000 * BLOCK) {
      throw new DataError('header longer than 288 MB without an END card (corrupt file)', { file, hdu: index, key: 'END' });
    }
    nBlocks = Math.min(nBlocks * 2, MAX_HEADER_READAHEAD);
  }
}

function isEndCard(b: Uint8Array, at: number): boolean {
  if (b[at] !== 0x45 || b[at + 1] !== 0x4e || b[at + 2] !== 0x44) return false; // 'END'
  for (let k = 3; k < CARD; k++) if (b[at + k] !== 0x20) return false;
  return true;
}

function checkFirstCard(b: Uint8Array, file: string): void {
  const first = String.fromCharCode(...b.subarray(0, Math.min(30, b.length)));
  if (!/^SIMPLE  = +T/.test(first)) {
    throw new DataError('not a FITS file (the first card is not SIMPLE = T)', { file, hdu: 0, key: 'SIMPLE' });
  }
}

function concat(parts: Uint8Array[], n: number): Uint8Array {
  if (parts.length === 1) return parts[0].subarray(0, n);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p.subarray(0, n - o), o);
    o += p.length;
    if (o >= n) break;
  }
  return out;
}

const BITPIXES = new Set([8, 16, 32, 64, -32, -64]);

function structuralInt(header: Header, key: string, min: number, max: number): number {
  const v = header.get(key);
  if (v === undefined || v === null) throw new DataError('missing mandatory keyword', { ...header.context, key });
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const what = typeof v === 'bigint' ? v.toString() : JSON.stringify(v);
    throw new DataError(`invalid value ${what} (expected an integer in [${min}, ${max}])`, { ...header.context, key });
  }
  return v;
}

function describeHdu(header: Header, index: number, headerOffset: number, headerSize: number): HduInfo {
  const ctx = header.context;
  let type: HduType = 'primary';
  let xtension: string | undefined;
  const first = header.cards[0];
  if (index === 0) {
    if (!first || first.key !== 'SIMPLE') throw new DataError('first keyword must be SIMPLE', { ...ctx, key: 'SIMPLE' });
  } else {
    if (!first || first.key !== 'XTENSION' || typeof first.value !== 'string') {
      throw new DataError('extension header must start with XTENSION', { ...ctx, key: 'XTENSION' });
    }
    xtension = first.value.trim();
    const x = xtension.toUpperCase();
    type = x === 'IMAGE' ? 'image' : x === 'BINTABLE' ? 'bintable' : x === 'TABLE' ? 'table' : 'unknown';
  }
  const bitpix = structuralInt(header, 'BITPIX', -64, 64);
  if (!BITPIXES.has(bitpix)) {
    throw new DataError(`unknown BITPIX ${bitpix} (expected 8, 16, 32, 64, -32 or -64)`, { ...ctx, key: 'BITPIX' });
  }
  const nAxis = structuralInt(header, 'NAXIS', 0, 999);
  const naxis: number[] = [];
  for (let i = 1; i <= nAxis; i++) naxis.push(structuralInt(header, `NAXIS${i}`, 0, Number.MAX_SAFE_INTEGER));
  const pcount = index === 0 ? header.getInt('PCOUNT', 0) : structuralInt(header, 'PCOUNT', 0, Number.MAX_SAFE_INTEGER);
  const gcount = index === 0 ? header.getInt('GCOUNT', 1) : structuralInt(header, 'GCOUNT', 0, Number.MAX_SAFE_INTEGER);
  if (pcount < 0 || gcount < 0) throw new DataError('negative PCOUNT/GCOUNT', { ...ctx, key: pcount < 0 ? 'PCOUNT' : 'GCOUNT' });
  if (type === 'bintable' && bitpix !== 8) throw new DataError('BINTABLE must have BITPIX = 8', { ...ctx, key: 'BITPIX' });
  if (type === 'bintable' && nAxis !== 2) throw new DataError('BINTABLE must have NAXIS = 2', { ...ctx, key: 'NAXIS' });
  // data size = |BITPIX|/8 * GCOUNT * (PCOUNT + NAXIS1*...*NAXISn); random groups skip NAXIS1 = 0
  let dataSize = 0;
  if (nAxis > 0) {
    const groups = index === 0 && header.get('GROUPS') === true && naxis[0] === 0;
    let prod = 1;
    for (let i = groups ? 1 : 0; i < nAxis; i++) prod *= naxis[i];
    dataSize = (Math.abs(bitpix) / 8) * gcount * (pcount + prod);
    if (!Number.isSafeInteger(dataSize)) throw new DataError('data size overflows', { ...ctx, key: 'NAXIS' });
  }
  const extname = header.get('EXTNAME');
  const extver = header.get('EXTVER');
  return {
    index,
    name: typeof extname === 'string' ? extname.trim() : '',
    extver: typeof extver === 'number' ? extver : undefined,
    type,
    xtension,
    bitpix,
    naxis,
    pcount,
    gcount,
    headerOffset,
    headerSize,
    dataOffset: headerOffset + headerSize,
    dataSize,
  };
}
