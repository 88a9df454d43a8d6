/**
 * FITS writing: primary HDU (empty or image), IMAGE extensions and BINTABLE extensions.
 *
 * `writeFitsChunks(hdus)` returns the byte stream as a list of chunks (one header + one data chunk
 * per HDU: no giant concatenation); `writeFits(hdus)` returns one Uint8Array.
 * The first HDU is written as the primary HDU when it is an image (or `{ kind: 'empty' }`);
 * when it is a table an empty primary HDU is inserted before it.
 */
import { DataError } from '../../errors.ts';
import { BLOCK, formatCard, normaliseCard, type CardInput, type CardSpec, type HeaderValue } from './header.ts';
import { Header } from './header.ts';
import { swapInPlace } from './image.ts';
import { parseTform } from './table.ts';
import type { ImageArray } from './image.ts';

export type Bitpix = 8 | 16 | 32 | 64 | -32 | -64;

/** Every typed array FITS images can hold (the reader's ImageArray). */
export type WritableImageArray = ImageArray;

export interface ImageHduSpec {
  kind?: 'image';
  /** EXTNAME (for the primary HDU too, if given). */
  name?: string;
  extver?: number;
  /** NAXIS1 first (width, then height). Defaults to [data.length]. */
  shape?: number[];
  data: WritableImageArray;
  /**
   * BITPIX to store. Default: from the array type (Float32 → -32, Float64 → -64, Int16 → 16,
   * Int32 → 32, BigInt64 → 64, Uint8 → 8, and the offset conventions Int8 → 8 + BZERO -128,
   * Uint16 → 16 + BZERO 32768, Uint32 → 32 + BZERO 2^31, BigUint64 → 64 + BZERO 2^63).
   * An integer BITPIX with float data quantises: stored = round((value - bzero) / bscale).
   */
  bitpix?: Bitpix;
  bscale?: number;
  bzero?: number;
  /** BLANK for integer images (pixels that are NaN are stored as BLANK when quantising). */
  blank?: number;
  cards?: CardInput[] | Header;
}

export interface EmptyHduSpec {
  kind: 'empty';
  name?: string;
  cards?: CardInput[] | Header;
}

export interface ColumnSpec {
  name: string;
  /**
   * TFORM, e.g. 'E', '441E', '20A', 'K', 'L', '16X'. Default from the data type: Float32 → E,
   * Float64 → D, Int16 → I, Int32 → J, BigInt64 → K, Uint8 → B, Int8 → B + TZERO -128,
   * Uint16 → I + TZERO 32768, Uint32 → J + TZERO 2^31, BigUint64 → K + TZERO 2^63, boolean[] → L,
   * string[] → A with the longest string's width. Repeat = data.length / nRows.
   */
  format?: string;
  /** Flat values (row-major, nRows × repeat); strings: one per row. For X: 0/1 values, one per bit. */
  data: WritableImageArray | boolean[] | string[] | number[];
  unit?: string;
  /** TDIM as [dim1, dim2, …]. */
  dim?: number[];
  tnull?: number | bigint;
  /** Elements flagged here (1) are written as TNULL (integer columns) or NaN (float columns). */
  nullMask?: Uint8Array;
  tscal?: number;
  tzero?: number;
  /** TDISPn, optional. */
  disp?: string;
}

export interface TableHduSpec {
  kind: 'bintable';
  name?: string;
  extver?: number;
  /** Row count (default: inferred from the first column). */
  nRows?: number;
  columns: ColumnSpec[];
  cards?: CardInput[] | Header;
}

export type HduSpec = ImageHduSpec | EmptyHduSpec | TableHduSpec;

/** Keywords the writer manages itself: user cards with these names are ignored. */
const STRUCTURAL = /^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|GROUPS|TFIELDS|END|BSCALE|BZERO|BLANK|EXTNAME|EXTVER|THEAP|(TTYPE|TFORM|TUNIT|TDIM|TNULL|TSCAL|TZERO|TDISP)\d+|CONTINUE)$/;

function userCards(cards: CardInput[] | Header | undefined): CardSpec[] {
  if (!cards) return [];
  const list: CardSpec[] = cards instanceof Header ? cards.cards.map((c) => normaliseCard(c)) : cards.map(normaliseCard);
  return list.filter((c) => !STRUCTURAL.test(c.key.toUpperCase()));
}

class HeaderBuilder {
  lines: string[] = [];
  add(key: string, value?: HeaderValue, comment?: string): void {
    this.lines.push(...formatCard({ key, value, comment }));
  }
  addAll(cards: CardSpec[]): void {
    for (const c of cards) this.lines.push(...formatCard(c));
  }
  bytes(): Uint8Array {
    const text = this.lines.join('') + 'END'.padEnd(80);
    const n = Math.ceil(text.length / BLOCK) * BLOCK;
    const out = new Uint8Array(n).fill(0x20);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }
}

const TWO31 = 2147483648;
const TWO63 = 9223372036854775808;

interface ImageEncoding {
  bitpix: Bitpix;
  bscale: number;
  bzero: number | bigint;
  bytes: Uint8Array;
}

function defaultBitpix(data: WritableImageArray): { bitpix: Bitpix; bzero: number | bigint } {
  if (data instanceof Float32Array) return { bitpix: -32, bzero: 0 };
  if (data instanceof Float64Array) return { bitpix: -64, bzero: 0 };
  if (data instanceof Uint8Array) return { bitpix: 8, bzero: 0 };
  if (data instanceof Int8Array) return { bitpix: 8, bzero: -128 };
  if (data instanceof Int16Array) return { bitpix: 16, bzero: 0 };
  if (data instanceof Uint16Array) return { bitpix: 16, bzero: 32768 };
  if (data instanceof Int32Array) return { bitpix: 32, bzero: 0 };
  if (data instanceof Uint32Array) return { bitpix: 32, bzero: TWO31 };
  if (data instanceof BigInt64Array) return { bitpix: 64, bzero: 0 };
  if (data instanceof BigUint64Array) return { bitpix: 64, bzero: 9223372036854775808n };
  throw new DataError('unsupported image array type');
}

/** Big-endian encoding of a typed array (copy). */
function bigEndian(arr: ArrayBufferView & { length: number }, size: number): Uint8Array {
  const b = new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength) as ArrayBuffer);
  swapInPlace(b, size);
  return b;
}

function encodeImage(spec: ImageHduSpec, label: string): ImageEncoding {
  const data = spec.data;
  const def = defaultBitpix(data);
  const bitpix = spec.bitpix ?? def.bitpix;
  const isFloatData = data instanceof Float32Array || data instanceof Float64Array;
  const userScale = spec.bscale !== undefined || spec.bzero !== undefined;
  // 1. natural encodings: same type, default offsets
  if (!userScale && bitpix === def.bitpix) {
    const n = data.length;
    if (def.bzero === 0) return { bitpix, bscale: 1, bzero: 0, bytes: bigEndian(data, Math.abs(bitpix) / 8) };
    // offset conventions: flip the sign bit
    const size = Math.abs(bitpix) / 8;
    const b = bigEndian(data, size); // big-endian: sign bit is in the first byte of each element
    for (let i = 0; i < n; i++) b[i * size] ^= 0x80;
    return { bitpix, bscale: 1, bzero: def.bzero, bytes: b };
  }
  // 2. float output of anything
  if (bitpix === -32 || bitpix === -64) {
    const bscale = spec.bscale ?? 1;
    const bzero = spec.bzero ?? 0;
    const out = bitpix === -32 ? new Float32Array(data.length) : new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = (Number(data[i]) - bzero) / bscale;
    return { bitpix, bscale, bzero, bytes: bigEndian(out, Math.abs(bitpix) / 8) };
  }
  // 3. integer output with scaling (quantisation)
  const bscale = spec.bscale ?? 1;
  const bzero = spec.bzero ?? 0;
  if (!(bscale > 0 || bscale < 0)) throw new DataError('BSCALE must be non-zero', { hdu: label, key: 'BSCALE' });
  const ranges: Record<number, [number, number]> = { 8: [0, 255], 16: [-32768, 32767], 32: [-TWO31, TWO31 - 1], 64: [-TWO63, TWO63] };
  const [lo, hi] = ranges[bitpix];
  const n = data.length;
  const size = bitpix / 8;
  const buf = new Uint8Array(n * size);
  const view = new DataView(buf.buffer);
  for (let i = 0; i < n; i++) {
    const v = Number(data[i]);
    let q: number;
    if (Number.isNaN(v)) {
      if (spec.blank === undefined) {
        throw new DataError(`NaN pixel at index ${i} cannot be stored in an integer image without BLANK`, { hdu: label, key: 'BLANK' });
      }
      q = spec.blank;
    } else {
      q = isFloatData || bscale !== 1 ? Math.round((v - bzero) / bscale) : v - bzero;
    }
    if (!(q >= lo && q <= hi)) {
      throw new DataError(`pixel ${i} value ${v} does not fit BITPIX ${bitpix} with BSCALE ${bscale}, BZERO ${bzero}`, {
        hdu: label,
        key: 'BITPIX',
      });
    }
    if (size === 1) view.setUint8(i, q);
    else if (size === 2) view.setInt16(i * 2, q);
    else if (size === 4) view.setInt32(i * 4, q);
    else view.setBigInt64(i * 8, BigInt(q));
  }
  return { bitpix, bscale, bzero, bytes: buf };
}

function padTo(bytes: Uint8Array, fill: number): Uint8Array {
  const n = Math.ceil(bytes.length / BLOCK) * BLOCK;
  if (n === bytes.length) return bytes;
  const out = new Uint8Array(n);
  out.set(bytes);
  if (fill !== 0) out.fill(fill, bytes.length);
  return out;
}

function writeImageHdu(spec: ImageHduSpec | EmptyHduSpec, primary: boolean, label: string): Uint8Array[] {
  const h = new HeaderBuilder();
  if (primary) h.add('SIMPLE', true, 'conforms to FITS standard');
  else h.add('XTENSION', 'IMAGE', 'image extension');
  if (spec.kind === 'empty') {
    h.add('BITPIX', 8, 'array data type');
    h.add('NAXIS', 0, 'number of array dimensions');
    if (primary) h.add('EXTEND', true);
    else {
      h.add('PCOUNT', 0);
      h.add('GCOUNT', 1);
    }
    if (spec.name) h.add('EXTNAME', spec.name, 'extension name');
    h.addAll(userCards(spec.cards));
    return [h.bytes()];
  }
  const shape = spec.shape ?? [spec.data.length];
  const nPix = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || nPix !== spec.data.length) {
    throw new DataError(`image shape [${shape.join(', ')}] does not match ${spec.data.length} pixels`, { hdu: label, key: 'NAXIS' });
  }
  const enc = encodeImage(spec, label);
  h.add('BITPIX', enc.bitpix, 'array data type');
  h.add('NAXIS', shape.length, 'number of array dimensions');
  shape.forEach((d, i) => h.add(`NAXIS${i + 1}`, d));
  if (primary) h.add('EXTEND', true);
  else {
    h.add('PCOUNT', 0, 'number of parameters');
    h.add('GCOUNT', 1, 'number of groups');
  }
  if (enc.bitpix > 0 && spec.blank !== undefined) h.add('BLANK', spec.blank);
  if (enc.bscale !== 1 || enc.bzero !== 0) {
    h.add('BSCALE', enc.bscale);
    h.add('BZERO', typeof enc.bzero === 'bigint' ? enc.bzero : enc.bzero);
  }
  if (spec.name) h.add('EXTNAME', spec.name, 'extension name');
  if (spec.extver !== undefined) h.add('EXTVER', spec.extver);
  h.addAll(userCards(spec.cards));
  return [h.bytes(), padTo(enc.bytes, 0)];
}

interface EncodedColumn {
  name: string;
  tform: string;
  repeat: number;
  type: string;
  bytesPerRow: number;
  tscal: number;
  tzero: number | bigint;
  tnull?: number | bigint;
  unit?: string;
  dim?: number[];
  disp?: string;
  write(view: DataView, rowStart: number, row: number): void;
}

function inferFormat(data: ColumnSpec['data']): { type: string; tzero: number | bigint } {
  if (data instanceof Float32Array) return { type: 'E', tzero: 0 };
  if (data instanceof Float64Array) return { type: 'D', tzero: 0 };
  if (data instanceof Uint8Array) return { type: 'B', tzero: 0 };
  if (data instanceof Int8Array) return { type: 'B', tzero: -128 };
  if (data instanceof Int16Array) return { type: 'I', tzero: 0 };
  if (data instanceof Uint16Array) return { type: 'I', tzero: 32768 };
  if (data instanceof Int32Array) return { type: 'J', tzero: 0 };
  if (data instanceof Uint32Array) return { type: 'J', tzero: TWO31 };
  if (data instanceof BigInt64Array) return { type: 'K', tzero: 0 };
  if (data instanceof BigUint64Array) return { type: 'K', tzero: 9223372036854775808n };
  if (Array.isArray(data) && data.length > 0 && typeof data[0] === 'string') return { type: 'A', tzero: 0 };
  if (Array.isArray(data) && data.length > 0 && typeof data[0] === 'boolean') return { type: 'L', tzero: 0 };
  if (Array.isArray(data)) return { type: 'D', tzero: 0 };
  throw new DataError('cannot infer a TFORM for this column data');
}

function encodeColumn(spec: ColumnSpec, nRows: number, label: string): EncodedColumn {
  const ctx = { hdu: label, key: spec.name };
  const inferred = spec.format ? undefined : inferFormat(spec.data);
  let type: string;
  let repeat: number;
  const data = spec.data;
  if (spec.format) {
    const t = parseTform(spec.format, ctx);
    type = t.type;
    repeat = t.repeat;
  } else {
    type = inferred!.type;
    if (type === 'A') {
      const strs = data as string[];
      repeat = Math.max(1, ...strs.map((s) => s.length));
    } else {
      repeat = nRows === 0 ? 1 : data.length / nRows;
      if (!Number.isInteger(repeat)) throw new DataError(`column has ${data.length} values, not a multiple of the ${nRows} rows`, ctx);
    }
  }
  if (type === 'P' || type === 'Q') throw new DataError('variable-length array columns cannot be written', ctx);
  const count = type === 'A' ? nRows : nRows * repeat;
  const dataLen = (data as { length: number }).length;
  if (!Number.isInteger(repeat) || dataLen !== count) {
    throw new DataError(`column has ${dataLen} values, expected ${count} (${nRows} rows × repeat ${type === 'A' ? 1 : repeat})`, ctx);
  }
  const tscal = spec.tscal ?? 1;
  let tzero: number | bigint = spec.tzero ?? inferred?.tzero ?? 0;
  if (spec.tzero === undefined && spec.format && inferred === undefined) {
    // explicit format with offset-convention arrays: keep their natural TZERO
    try {
      const f = inferFormat(data);
      if (f.type === type) tzero = f.tzero;
    } catch {
      /* plain arrays */
    }
  }
  const tz = Number(tzero);
  const scaled = tscal !== 1 || tz !== 0;
  const mask = spec.nullMask;
  const bytes = type === 'X' ? Math.ceil(repeat / 8) : repeat * ({ L: 1, B: 1, I: 2, J: 4, K: 8, A: 1, E: 4, D: 8, C: 8, M: 16 } as Record<string, number>)[type];
  const base = {
    name: spec.name,
    tform: repeat === 1 ? type : `${repeat}${type}`,
    repeat,
    type,
    bytesPerRow: bytes,
    tscal,
    tzero,
    tnull: spec.tnull,
    unit: spec.unit,
    dim: spec.dim,
    disp: spec.disp,
  };
  const num = (i: number): number => Number((data as ArrayLike<number | bigint>)[i]);
  const isFloatData = data instanceof Float32Array || data instanceof Float64Array || Array.isArray(data);
  const intRanges: Record<string, [number, number]> = { B: [0, 255], I: [-32768, 32767], J: [-TWO31, TWO31 - 1] };
  switch (type) {
    case 'A': {
      const strs = data as string[];
      for (const s of strs) {
        if (typeof s !== 'string') throw new DataError('string column holds a non-string', ctx);
        for (let k = 0; k < s.length; k++) {
          const c = s.charCodeAt(k);
          if (c < 0x20 || c > 0x7e) throw new DataError(`string '${s}' is not printable ASCII`, ctx);
        }
        if (s.length > repeat) throw new DataError(`string '${s}' longer than the column width ${repeat}`, ctx);
      }
      return {
        ...base,
        write(view, at, row) {
          const s = strs[row];
          for (let k = 0; k < repeat; k++) view.setUint8(at + k, k < s.length ? s.charCodeAt(k) : 0); // NUL-padded, as astropy writes
        },
      };
    }
    case 'L': {
      const b = data as boolean[];
      return {
        ...base,
        write(view, at, row) {
          for (let k = 0; k < repeat; k++) {
            const j = row * repeat + k;
            view.setUint8(at + k, mask && mask[j] ? 0 : b[j] ? 0x54 : 0x46);
          }
        },
      };
    }
    case 'X':
      return {
        ...base,
        write(view, at, row) {
          for (let k = 0; k < repeat; k++) {
            if (num(row * repeat + k)) view.setUint8(at + (k >> 3), view.getUint8(at + (k >> 3)) | (0x80 >> (k & 7)));
          }
        },
      };
    case 'E':
    case 'D':
    case 'C':
    case 'M': {
      if (type === 'C' || type === 'M') {
        if (dataLen !== 2 * count && dataLen !== count) throw new DataError('complex column needs (re, im) pairs', ctx);
      }
      const n = type === 'C' || type === 'M' ? repeat * 2 : repeat;
      const size = type === 'E' || type === 'C' ? 4 : 8;
      return {
        ...base,
        write(view, at, row) {
          for (let k = 0; k < n; k++) {
            const j = row * n + k;
            let v = mask && mask[j] ? NaN : num(j);
            if (scaled) v = (v - tz) / tscal;
            if (size === 4) view.setFloat32(at + 4 * k, v);
            else view.setFloat64(at + 8 * k, v);
          }
        },
      };
    }
    case 'B':
    case 'I':
    case 'J': {
      const [lo, hi] = intRanges[type];
      const size = type === 'B' ? 1 : type === 'I' ? 2 : 4;
      const tnull = spec.tnull === undefined ? undefined : Number(spec.tnull);
      if (mask && tnull === undefined) throw new DataError('nullMask given without tnull', ctx);
      return {
        ...base,
        write(view, at, row) {
          for (let k = 0; k < repeat; k++) {
            const j = row * repeat + k;
            const v = num(j);
            let q: number;
            if ((mask && mask[j]) || (Number.isNaN(v) && tnull !== undefined)) q = tnull!;
            else q = isFloatData || scaled ? Math.round((v - tz) / tscal) : v - tz;
            if (!(q >= lo && q <= hi)) {
              throw new DataError(`row ${row}: value ${v} does not fit TFORM ${type} (TSCAL ${tscal}, TZERO ${tz})`, ctx);
            }
            if (size === 1) view.setUint8(at + k, q);
            else if (size === 2) view.setInt16(at + 2 * k, q);
            else view.setInt32(at + 4 * k, q);
          }
        },
      };
    }
    case 'K': {
      const tnull = spec.tnull === undefined ? undefined : BigInt(spec.tnull);
      if (mask && tnull === undefined) throw new DataError('nullMask given without tnull', ctx);
      const bigData = data instanceof BigInt64Array || data instanceof BigUint64Array;
      const tzBig = typeof tzero === 'bigint' ? tzero : BigInt(Math.round(tz));
      return {
        ...base,
        write(view, at, row) {
          for (let k = 0; k < repeat; k++) {
            const j = row * repeat + k;
            let q: bigint;
            if (mask && mask[j]) q = tnull!;
            else if (bigData && tscal === 1) q = (data as BigInt64Array | BigUint64Array)[j] - tzBig;
            else {
              const v = num(j);
              if (Number.isNaN(v) && tnull !== undefined) q = tnull;
              else {
                const r = Math.round((v - tz) / tscal);
                if (!Number.isSafeInteger(r) && Math.abs(r) >= 2 ** 63) throw new DataError(`row ${row}: value ${v} does not fit TFORM K`, ctx);
                q = BigInt(r);
              }
            }
            view.setBigInt64(at + 8 * k, BigInt.asIntN(64, q));
          }
        },
      };
    }
  }
  throw new DataError(`unsupported TFORM '${spec.format}'`, ctx);
}

function writeTableHdu(spec: TableHduSpec, label: string): Uint8Array[] {
  const first = spec.columns[0];
  let nRows = spec.nRows;
  if (nRows === undefined) {
    if (!first) nRows = 0;
    else if (first.format) {
      const t = parseTform(first.format, { hdu: label, key: first.name });
      nRows = t.type === 'A' ? first.data.length : t.repeat === 0 ? 0 : first.data.length / (t.type === 'C' || t.type === 'M' ? 2 * t.repeat : t.repeat);
    } else if (Array.isArray(first.data) && typeof first.data[0] === 'string') nRows = first.data.length;
    else nRows = first.data.length;
  }
  if (!Number.isSafeInteger(nRows) || nRows < 0) throw new DataError(`bad row count ${nRows}`, { hdu: label, key: 'NAXIS2' });
  const cols = spec.columns.map((c) => encodeColumn(c, nRows!, label));
  const rowBytes = cols.reduce((a, c) => a + c.bytesPerRow, 0);
  const h = new HeaderBuilder();
  h.add('XTENSION', 'BINTABLE', 'binary table extension');
  h.add('BITPIX', 8, 'array data type');
  h.add('NAXIS', 2, 'number of array dimensions');
  h.add('NAXIS1', rowBytes, 'length of dimension 1');
  h.add('NAXIS2', nRows, 'length of dimension 2');
  h.add('PCOUNT', 0, 'number of group parameters');
  h.add('GCOUNT', 1, 'number of groups');
  h.add('TFIELDS', cols.length, 'number of table fields');
  cols.forEach((c, i) => {
    const n = i + 1;
    h.add(`TTYPE${n}`, c.name);
    h.add(`TFORM${n}`, c.tform);
    if (c.unit) h.add(`TUNIT${n}`, c.unit);
    if (c.tnull !== undefined) h.add(`TNULL${n}`, c.tnull);
    if (c.tscal !== 1 || Number(c.tzero) !== 0) {
      h.add(`TSCAL${n}`, c.tscal);
      h.add(`TZERO${n}`, c.tzero);
    }
    if (c.dim) h.add(`TDIM${n}`, `(${c.dim.join(',')})`);
    if (c.disp) h.add(`TDISP${n}`, c.disp);
  });
  if (spec.name) h.add('EXTNAME', spec.name, 'extension name');
  if (spec.extver !== undefined) h.add('EXTVER', spec.extver);
  h.addAll(userCards(spec.cards));
  const body = new Uint8Array(Math.ceil((rowBytes * nRows) / BLOCK) * BLOCK);
  const view = new DataView(body.buffer);
  const offsets: number[] = [];
  let o = 0;
  for (const c of cols) {
    offsets.push(o);
    o += c.bytesPerRow;
  }
  for (let r = 0; r < nRows; r++) {
    const rowStart = r * rowBytes;
    for (let k = 0; k < cols.length; k++) cols[k].write(view, rowStart + offsets[k], r);
  }
  return [h.bytes(), body];
}

/** Encodes HDUs as a FITS byte stream, as a list of chunks (each a multiple of 2880 bytes). */
export function writeFitsChunks(hdus: HduSpec[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const list = hdus.slice();
  if (list.length === 0 || list[0].kind === 'bintable') list.unshift({ kind: 'empty' });
  list.forEach((spec, i) => {
    const label = spec.name ? `${i} (${spec.name})` : String(i);
    if (spec.kind === 'bintable') {
      if (i === 0) throw new DataError('the primary HDU cannot be a table', { hdu: 0 });
      out.push(...writeTableHdu(spec, label));
    } else {
      out.push(...writeImageHdu(spec, i === 0, label));
    }
  });
  return out;
}

/** Encodes HDUs as one FITS byte array. */
export function writeFits(hdus: HduSpec[]): Uint8Array {
  const chunks = writeFitsChunks(hdus);
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
