/**
 * Image decoding: big-endian bytes → the natural typed array, with BSCALE/BZERO applied.
 *
 *  BITPIX  no scaling        BZERO special case (BSCALE = 1)      other scaling
 *  8       Uint8Array        BZERO = -128  → Int8Array            Float32Array
 *  16      Int16Array        BZERO = 32768 → Uint16Array          Float32Array
 *  32      Int32Array        BZERO = 2^31  → Uint32Array          Float64Array
 *  64      BigInt64Array     BZERO = 2^63  → BigUint64Array       Float64Array
 *  -32     Float32Array                                           Float32Array
 *  -64     Float64Array                                           Float64Array
 *
 * (the same element types astropy returns). With scaling, integer pixels equal to BLANK become NaN.
 */
import { DataError } from '../../errors.ts';
import type { Header } from './header.ts';
import type { HduInfo } from './hdu.ts';

export type ImageArray =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

export interface FitsImage {
  header: Header;
  /** NAXISn, NAXIS1 first (NAXIS1 = width, the fastest-varying axis). */
  shape: number[];
  width: number;
  /** NAXIS2 (1 for a 1-D image). */
  height: number;
  /** Row-major pixels: data[x + width * y] for 2-D images (0-based x, y). */
  data: ImageArray;
  bitpix: number;
  bscale: number;
  bzero: number;
  /** BLANK (integer images only), if present. */
  blank?: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Swaps byte order in place for elements of `size` bytes (2, 4 or 8). `bytes` must start at offset 0 mod 8 of its buffer or be copied. */
export function swapInPlace(bytes: Uint8Array, size: number): void {
  if (!LITTLE_ENDIAN || size === 1) return;
  const n = bytes.length / size;
  if (size === 2) {
    if (bytes.byteOffset % 2 === 0) {
      const u = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const x = u[i];
        u[i] = ((x & 0xff) << 8) | (x >>> 8);
      }
    } else {
      for (let i = 0; i < bytes.length; i += 2) {
        const t = bytes[i];
        bytes[i] = bytes[i + 1];
        bytes[i + 1] = t;
      }
    }
  } else if (size === 4) {
    if (bytes.byteOffset % 4 === 0) {
      const u = new Uint32Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) {
        const x = u[i];
        u[i] = (x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24);
      }
    } else {
      for (let i = 0; i < bytes.length; i += 4) {
        const a = bytes[i];
        const b = bytes[i + 1];
        bytes[i] = bytes[i + 3];
        bytes[i + 1] = bytes[i + 2];
        bytes[i + 2] = b;
        bytes[i + 3] = a;
      }
    }
  } else if (size === 8) {
    if (bytes.byteOffset % 4 === 0) {
      const u = new Uint32Array(bytes.buffer, bytes.byteOffset, n * 2);
      for (let i = 0; i < 2 * n; i += 2) {
        const x = u[i];
        const y = u[i + 1];
        u[i] = (y >>> 24) | ((y >>> 8) & 0xff00) | ((y & 0xff00) << 8) | (y << 24);
        u[i + 1] = (x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24);
      }
    } else {
      for (let i = 0; i < bytes.length; i += 8) {
        for (let k = 0; k < 4; k++) {
          const t = bytes[i + k];
          bytes[i + k] = bytes[i + 7 - k];
          bytes[i + 7 - k] = t;
        }
      }
    }
  } else {
    throw new Error(`bad element size ${size}`);
  }
}

/** Big-endian bytes → native typed array of the BITPIX type (the bytes are swapped in place / reused). */
export function rawPixels(bytes: Uint8Array, bitpix: number): Exclude<ImageArray, Int8Array | Uint16Array | Uint32Array | BigUint64Array> {
  const size = Math.abs(bitpix) / 8;
  let b = bytes;
  if (b.byteOffset % size !== 0) b = b.slice();
  swapInPlace(b, size);
  const n = b.length / size;
  switch (bitpix) {
    case 8:
      return b;
    case 16:
      return new Int16Array(b.buffer, b.byteOffset, n);
    case 32:
      return new Int32Array(b.buffer, b.byteOffset, n);
    case 64:
      return new BigInt64Array(b.buffer, b.byteOffset, n);
    case -32:
      return new Float32Array(b.buffer, b.byteOffset, n);
    case -64:
      return new Float64Array(b.buffer, b.byteOffset, n);
  }
  throw new Error(`bad BITPIX ${bitpix}`);
}

export function decodeImage(bytes: Uint8Array, header: Header, info: HduInfo): FitsImage {
  const ctx = header.context;
  const bitpix = info.bitpix;
  const bscale = header.getNumber('BSCALE', 1);
  const bzero = header.getNumber('BZERO', 0);
  if (bscale === 0) throw new DataError('BSCALE must not be 0', { ...ctx, key: 'BSCALE' });
  const blankV = header.get('BLANK');
  const blank = bitpix > 0 && typeof blankV === 'number' ? blankV : undefined;
  const shape = info.naxis.slice();
  const nPix = shape.reduce((a, b) => a * b, 1);
  const raw = rawPixels(bytes.length === nPix * (Math.abs(bitpix) / 8) ? bytes : bytes.subarray(0, nPix * (Math.abs(bitpix) / 8)), bitpix);
  const base = { header, shape, width: shape[0] ?? 0, height: shape.length > 1 ? shape[1] : 1, bitpix, bscale, bzero, blank };
  if (bscale === 1 && bzero === 0) return { ...base, data: raw };
  if (bscale === 1) {
    // unsigned / signed-byte conventions: reinterpret the bits (flip the sign bit)
    if (bitpix === 8 && bzero === -128) {
      const u = raw as Uint8Array;
      for (let i = 0; i < u.length; i++) u[i] ^= 0x80;
      return { ...base, data: new Int8Array(u.buffer, u.byteOffset, u.length) };
    }
    if (bitpix === 16 && bzero === 32768) {
      const u = new Uint16Array(raw.buffer, raw.byteOffset, raw.length);
      for (let i = 0; i < u.length; i++) u[i] ^= 0x8000;
      return { ...base, data: u };
    }
    if (bitpix === 32 && bzero === 2147483648) {
      const u = new Uint32Array(raw.buffer, raw.byteOffset, raw.length);
      for (let i = 0; i < u.length; i++) u[i] = (u[i] ^ 0x80000000) >>> 0;
      return { ...base, data: u };
    }
    if (bitpix === 64 && bzero === 9223372036854775808) {
      // BZERO is parsed as a bigint 2^63 (beyond 2^53); getNumber gives 2^63 exactly as a double
      const u = new BigUint64Array(raw.buffer, raw.byteOffset, raw.length);
      const flip = 1n << 63n;
      for (let i = 0; i < u.length; i++) u[i] ^= flip;
      return { ...base, data: u };
    }
  }
  // general linear scaling
  if (bitpix === -32) {
    const f = raw as Float32Array;
    for (let i = 0; i < f.length; i++) f[i] = f[i] * bscale + bzero;
    return { ...base, data: f };
  }
  if (bitpix === -64) {
    const f = raw as Float64Array;
    for (let i = 0; i < f.length; i++) f[i] = f[i] * bscale + bzero;
    return { ...base, data: f };
  }
  const out = bitpix === 8 || bitpix === 16 ? new Float32Array(raw.length) : new Float64Array(raw.length);
  if (bitpix === 64) {
    const r = raw as BigInt64Array;
    const bb = blank !== undefined ? BigInt(blank) : undefined;
    for (let i = 0; i < r.length; i++) out[i] = r[i] === bb ? NaN : Number(r[i]) * bscale + bzero;
  } else {
    const r = raw as Uint8Array | Int16Array | Int32Array;
    for (let i = 0; i < r.length; i++) {
      const v = r[i];
      out[i] = v === blank ? NaN : v * bscale + bzero;
    }
  }
  return { ...base, data: out };
}

/** Converts any decoded image to Float32Array pixels (returns the array itself when already float32). */
export function toFloat32(img: FitsImage): Float32Array {
  const d = img.data;
  if (d instanceof Float32Array) return d;
  const out = new Float32Array(d.length);
  const blank = img.bscale === 1 && img.bzero === 0 ? img.blank : undefined;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) {
    const bb = blank !== undefined ? BigInt(blank) : undefined;
    for (let i = 0; i < d.length; i++) out[i] = d[i] === bb ? NaN : Number(d[i]);
  } else {
    for (let i = 0; i < d.length; i++) {
      const v = d[i];
      out[i] = v === blank ? NaN : v;
    }
  }
  return out;
}
