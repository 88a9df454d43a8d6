/**
 * BINTABLE decoding and TFORM parsing.
 *
 * Column data is flat: a column with repeat r holds nRows * r values, row i at [i*r, (i+1)*r).
 *
 *  TFORM  element            no scaling       special TZERO (TSCAL = 1)         other TSCAL/TZERO
 *  L      logical            boolean[] (null → false + nullMask)
 *  X      bit                Uint8Array of 0/1 (repeat = number of bits)
 *  B      uint8              Uint8Array       TZERO = -128  → Int8Array         Float64Array
 *  I      int16              Int16Array       TZERO = 32768 → Uint16Array       Float64Array
 *  J      int32              Int32Array       TZERO = 2^31  → Uint32Array       Float64Array
 *  K      int64              BigInt64Array    TZERO = 2^63  → BigUint64Array    Float64Array
 *  E      float32            Float32Array                                       Float64Array
 *  D      float64            Float64Array                                       Float64Array
 *  C / M  complex            Float32Array / Float64Array of (re, im) pairs
 *  A      characters         string[] (trailing blanks/NULs trimmed; one string per row, or
 *                            several per row when TDIM splits the width)
 *  P / Q  variable length    not supported (skipped, listed in `skipped`)
 *
 * TNULL on integer columns gives `nullMask` (1 = null); with scaling, null values also become NaN.
 */
import { DataError } from '../../errors.ts';
import type { Header } from './header.ts';
import type { HduInfo } from './hdu.ts';
import type { ImageArray } from './image.ts';

export type ColumnData =
  | boolean[]
  | string[]
  | ImageArray;

export interface TableColumn {
  name: string;
  /** The TFORM as written, e.g. '441E'. */
  format: string;
  /** The TFORM type code: L X B I J K A E D C M. */
  type: string;
  /** Elements per row (for A: characters per row; for X: bits). */
  repeat: number;
  /** Values per row in `data` (repeat, except for A: strings per row; complex: 2 × repeat). */
  width: number;
  /** TDIM as [dim1, dim2, …] (dim1 fastest), if present. */
  dim?: number[];
  unit?: string;
  tscal: number;
  tzero: number;
  tnull?: number | bigint;
  data: ColumnData;
  nullMask?: Uint8Array;
}

export interface FitsTable {
  header: Header;
  nRows: number;
  columns: Map<string, TableColumn>;
  /** Column names in file order (as written; lookup by `column()` is case-insensitive). */
  names: string[];
  /** Columns that could not be decoded (e.g. variable-length arrays), with the reason. */
  skipped: Array<{ name: string; format: string; reason: string }>;
  /** A column by name (case-insensitive); throws DataError naming the file, HDU and column when missing. */
  column(name: string): TableColumn;
}

export interface ReadTableOptions {
  /** Decode only these columns (case-insensitive names). Missing names throw DataError. */
  columns?: string[];
}

export interface Tform {
  repeat: number;
  type: string;
  /** Bytes per row taken by the column. */
  bytes: number;
}

const ELEMENT_BYTES: Record<string, number> = { L: 1, B: 1, I: 2, J: 4, K: 8, A: 1, E: 4, D: 8, C: 8, M: 16, P: 8, Q: 16 };

/** Parses a TFORM like '1J', 'E', '441E', '20A', '12X', '1PE(100)'. */
export function parseTform(tform: string, ctx: { file?: string; hdu?: string | number; key: string }): Tform {
  const m = /^\s*(\d*)\s*([LXBIJKAEDCMPQ])(.*)$/i.exec(tform);
  if (!m) throw new DataError(`unknown TFORM '${tform}'`, ctx);
  const repeat = m[1] === '' ? 1 : Number(m[1]);
  if (!Number.isSafeInteger(repeat)) throw new DataError(`bad repeat count in TFORM '${tform}'`, ctx);
  const type = m[2].toUpperCase();
  const bytes = type === 'X' ? Math.ceil(repeat / 8) : repeat * ELEMENT_BYTES[type];
  return { repeat, type, bytes };
}

function parseTdim(s: string): number[] | undefined {
  const m = /^\s*\(([\d,\s]+)\)\s*$/.exec(s);
  if (!m) return undefined;
  const dims = m[1].split(',').map((x) => Number(x.trim()));
  return dims.every((d) => Number.isSafeInteger(d) && d > 0) ? dims : undefined;
}

const TWO31 = 2147483648;
const TWO63 = 9223372036854775808;

export function decodeTable(bytes: Uint8Array, header: Header, info: HduInfo, options: ReadTableOptions): FitsTable {
  const ctx = header.context;
  const rowBytes = info.naxis[0];
  const nRows = info.naxis[1];
  const tfields = header.getInt('TFIELDS');
  if (tfields < 0 || tfields > 999) throw new DataError(`invalid TFIELDS ${tfields}`, { ...ctx, key: 'TFIELDS' });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const columns = new Map<string, TableColumn>();
  const names: string[] = [];
  const skipped: FitsTable['skipped'] = [];
  const wanted = options.columns ? new Set(options.columns.map((c) => c.trim().toUpperCase())) : null;
  let colOffset = 0;
  const layout: Array<{ name: string; tform: Tform; format: string; offset: number; n: number }> = [];
  for (let n = 1; n <= tfields; n++) {
    const format = header.getString(`TFORM${n}`);
    const tform = parseTform(format, { ...ctx, key: `TFORM${n}` });
    const ttype = header.get(`TTYPE${n}`);
    const name = typeof ttype === 'string' && ttype.trim() !== '' ? ttype.trim() : `COL${n}`;
    layout.push({ name, tform, format: format.trim(), offset: colOffset, n });
    colOffset += tform.bytes;
  }
  if (colOffset !== rowBytes) {
    throw new DataError(`row width ${rowBytes} does not match the sum of the TFORM widths (${colOffset})`, {
      ...ctx,
      key: 'NAXIS1',
    });
  }
  if (wanted) {
    for (const w of wanted) {
      if (!layout.some((l) => l.name.toUpperCase() === w)) {
        throw new DataError(`no column '${w}' (columns: ${layout.map((l) => l.name).join(', ')})`, {
          ...ctx,
          key: w,
        });
      }
    }
  }
  for (const { name, tform, format, offset, n } of layout) {
    names.push(name);
    if (wanted && !wanted.has(name.toUpperCase())) continue;
    if (tform.type === 'P' || tform.type === 'Q') {
      skipped.push({ name, format, reason: 'variable-length arrays are not supported' });
      continue;
    }
    const keyCtx = { ...ctx, key: `TFORM${n}` };
    const tscal = header.getNumber(`TSCAL${n}`, 1);
    const tzero = header.getNumber(`TZERO${n}`, 0);
    if (tscal === 0) throw new DataError('TSCAL must not be 0', { ...ctx, key: `TSCAL${n}` });
    const tnullV = header.get(`TNULL${n}`);
    const tnull = (typeof tnullV === 'number' && Number.isInteger(tnullV)) || typeof tnullV === 'bigint' ? tnullV : undefined;
    const tdimV = header.get(`TDIM${n}`);
    const dim = typeof tdimV === 'string' ? parseTdim(tdimV) : undefined;
    const unitV = header.get(`TUNIT${n}`);
    const col = decodeColumn(view, nRows, rowBytes, offset, tform, tscal, tzero, tnull, dim, keyCtx);
    const column: TableColumn = {
      name,
      format,
      type: tform.type,
      repeat: tform.repeat,
      width: col.width,
      dim,
      unit: typeof unitV === 'string' ? unitV : undefined,
      tscal,
      tzero,
      tnull,
      data: col.data,
      nullMask: col.nullMask,
    };
    if (columns.has(name.toUpperCase())) continue; // duplicate TTYPE: first wins
    columns.set(name.toUpperCase(), column);
  }
  return {
    header,
    nRows,
    columns,
    names,
    skipped,
    column(name: string): TableColumn {
      const c = columns.get(name.trim().toUpperCase());
      if (!c) {
        throw new DataError(`no column '${name}' (columns: ${names.join(', ')})`, { ...ctx, key: name });
      }
      return c;
    },
  };
}

function decodeColumn(
  view: DataView,
  nRows: number,
  rowBytes: number,
  offset: number,
  tform: Tform,
  tscal: number,
  tzero: number,
  tnull: number | bigint | undefined,
  dim: number[] | undefined,
  ctx: { file?: string; hdu?: string | number; key: string },
): { data: ColumnData; width: number; nullMask?: Uint8Array } {
  const r = tform.repeat;
  const total = nRows * r;
  const scaled = tscal !== 1 || tzero !== 0;
  switch (tform.type) {
    case 'A': {
      // one string per row, or split by TDIM's first axis
      const w = dim && dim[0] > 0 && dim[0] < r && r % dim[0] === 0 ? dim[0] : r;
      const per = r === 0 ? 0 : r / w;
      const out: string[] = new Array(nRows * per);
      for (let i = 0; i < nRows; i++) {
        const base = i * rowBytes + offset;
        for (let k = 0; k < per; k++) out[i * per + k] = readString(view, base + k * w, w);
      }
      return { data: out, width: per };
    }
    case 'L': {
      const out: boolean[] = new Array(total);
      let mask: Uint8Array | undefined;
      for (let i = 0; i < nRows; i++) {
        const base = i * rowBytes + offset;
        for (let k = 0; k < r; k++) {
          const b = view.getUint8(base + k);
          out[i * r + k] = b === 0x54; // 'T'
          if (b !== 0x54 && b !== 0x46) {
            mask ??= new Uint8Array(total);
            mask[i * r + k] = 1;
          }
        }
      }
      return { data: out, width: r, nullMask: mask };
    }
    case 'X': {
      const out = new Uint8Array(total);
      for (let i = 0; i < nRows; i++) {
        const base = i * rowBytes + offset;
        for (let k = 0; k < r; k++) out[i * r + k] = (view.getUint8(base + (k >> 3)) >> (7 - (k & 7))) & 1;
      }
      return { data: out, width: r };
    }
    case 'E':
    case 'D':
    case 'C':
    case 'M': {
      const isF = tform.type === 'E' || tform.type === 'C';
      const n = tform.type === 'C' || tform.type === 'M' ? 2 * r : r;
      const size = isF ? 4 : 8;
      const out = isF && !scaled ? new Float32Array(nRows * n) : new Float64Array(nRows * n);
      for (let i = 0; i < nRows; i++) {
        const base = i * rowBytes + offset;
        for (let k = 0; k < n; k++) {
          const v = isF ? view.getFloat32(base + k * size) : view.getFloat64(base + k * size);
          out[i * n + k] = scaled ? v * tscal + tzero : v;
        }
      }
      return { data: out, width: n };
    }
    case 'B':
    case 'I':
    case 'J': {
      const size = ELEMENT_BYTES[tform.type];
      const get =
        size === 1 ? (o: number) => view.getUint8(o) : size === 2 ? (o: number) => view.getInt16(o) : (o: number) => view.getInt32(o);
      const nullV = typeof tnull === 'bigint' ? Number(tnull) : tnull;
      let mask: Uint8Array | undefined;
      let out: Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float64Array;
      let mode: 'raw' | 'shift' | 'scale' = 'raw';
      if (!scaled) out = size === 1 ? new Uint8Array(total) : size === 2 ? new Int16Array(total) : new Int32Array(total);
      else if (tscal === 1 && size === 1 && tzero === -128) (out = new Int8Array(total)), (mode = 'shift');
      else if (tscal === 1 && size === 2 && tzero === 32768) (out = new Uint16Array(total)), (mode = 'shift');
      else if (tscal === 1 && size === 4 && tzero === TWO31) (out = new Uint32Array(total)), (mode = 'shift');
      else (out = new Float64Array(total)), (mode = 'scale');
      for (let i = 0; i < nRows; i++) {
        const base = i * rowBytes + offset;
        for (let k = 0; k < r; k++) {
          const v = get(base + k * size);
          const j = i * r + k;
          const isNull = v === nullV;
          if (isNull) {
            mask ??= new Uint8Array(total);
            mask[j] = 1;
          }
          out[j] = mode === 'raw' ? v : mode === 'shift' ? v + tzero : isNull ? NaN : v * tscal + tzero;
        }
      }
      return { data: out, width: r, nullMask: mask };
    }
    case 'K': {
      const nullV = tnull === undefined ? undefined : BigInt(tnull);
      let mask: Uint8Array | undefined;
      if (!scaled || (tscal === 1 && tzero === TWO63)) {
        const signed = new BigInt64Array(total);
        for (let i = 0; i < nRows; i++) {
          const base = i * rowBytes + offset;
          for (let k = 0; k < r; k++) {
            const v = view.getBigInt64(base + k * 8);
            signed[i * r + k] = v;
            if (v === nullV) {
              mask ??= new Uint8Array(total);
              mask[i * r + k] = 1;
            }
          }
        }
        if (!scaled) return { data: signed, width: r, nullMask: mask };
        const u = new BigUint64Array(signed.buffer);
        const flip = 1n << 63n;
        for (let j = 0; j < total; j++) u[j] ^= flip;
        return { data: u, width: r, nullMask: mask };
      }
      const out = new Float64Array(total);
      for (let i = 0; i < nRows; i++) {
        const base = i * rowBytes + offset;
        for (let k = 0; k < r; k++) {
          const v = view.getBigInt64(base + k * 8);
          const j = i * r + k;
          if (v === nullV) {
            mask ??= new Uint8Array(total);
            mask[j] = 1;
            out[j] = NaN;
          } else out[j] = Number(v) * tscal + tzero;
        }
      }
      return { data: out, width: r, nullMask: mask };
    }
  }
  throw new DataError(`unsupported TFORM type '${tform.type}'`, ctx);
}

function readString(view: DataView, at: number, w: number): string {
  let s = '';
  for (let k = 0; k < w; k++) {
    const b = view.getUint8(at + k);
    if (b === 0) break;
    s += String.fromCharCode(b);
  }
  return s.replace(/ +$/, '');
}
