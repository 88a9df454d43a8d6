/**
 * Runtime-agnostic random-access byte sources for the FITS reader.
 *
 * A ByteSource is anything that can report its size and hand out byte ranges: a file handle
 * (platform/node/files.ts, platform/deno/files.ts), a browser Blob/File (platform/browser/files.ts),
 * an HTTP(S) URL with range requests (./http-source.ts) or bytes in memory (here).
 *
 * Contract of `read(offset, length)`:
 *  - returns a NEW Uint8Array owned by the caller (the reader may byte-swap it in place);
 *  - returns exactly `length` bytes unless the end of the source is reached first, in which case
 *    it returns the bytes up to the end (possibly none); it never reads past what was asked for.
 */
import { Gunzip } from 'fflate';
import { DataError } from '../../errors.ts';

export interface ByteSource {
  /** A label used in error messages (file path, URL, file name). */
  readonly name: string;
  size(): Promise<number>;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

function checkRange(name: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new DataError(`invalid byte range offset=${offset} length=${length}`, { file: name });
  }
}

/** A source over bytes already in memory. `read` returns copies, so callers may mutate them. */
export function memorySource(bytes: Uint8Array, name = '<memory>'): ByteSource {
  return chunkedMemorySource([bytes], name);
}

/**
 * A source over a list of chunks that together form one byte stream (used for decompressed
 * gzip data, so that no single giant buffer has to be assembled).
 */
export function chunkedMemorySource(chunks: readonly Uint8Array[], name = '<memory>'): ByteSource {
  const starts: number[] = [];
  let total = 0;
  const parts: Uint8Array[] = [];
  for (const c of chunks) {
    if (c.length === 0) continue;
    starts.push(total);
    parts.push(c);
    total += c.length;
  }
  let closed = false;
  return {
    name,
    async size() {
      return total;
    },
    async read(offset, length) {
      if (closed) throw new DataError('read after close', { file: name });
      checkRange(name, offset, length);
      const end = Math.min(total, offset + length);
      const out = new Uint8Array(Math.max(0, end - offset));
      if (out.length === 0) return out;
      // binary search the chunk holding `offset`
      let lo = 0;
      let hi = parts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= offset) lo = mid;
        else hi = mid - 1;
      }
      let pos = offset;
      let k = lo;
      while (pos < end) {
        const part = parts[k];
        const inPart = pos - starts[k];
        const n = Math.min(part.length - inPart, end - pos);
        out.set(part.subarray(inPart, inPart + n), pos - offset);
        pos += n;
        k++;
      }
      return out;
    },
    async close() {
      closed = true;
    },
  };
}

/** Statistics kept by {@link countingSource}. */
export interface ReadStats {
  calls: number;
  bytes: number;
  ranges: Array<[offset: number, length: number]>;
}

/** Wraps a source and counts what is read through it (tests, diagnostics). */
export function countingSource(inner: ByteSource): ByteSource & { stats: ReadStats } {
  const stats: ReadStats = { calls: 0, bytes: 0, ranges: [] };
  return {
    name: inner.name,
    stats,
    size: () => inner.size(),
    async read(offset, length) {
      const b = await inner.read(offset, length);
      stats.calls++;
      stats.bytes += b.length;
      stats.ranges.push([offset, b.length]);
      return b;
    },
    close: () => inner.close(),
  };
}

/** True when the bytes start with the gzip magic number 1f 8b. */
export function isGzipMagic(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/**
 * Compressed bytes pushed to the inflater per step: enough for what is asked at the worst ratio,
 * between 16 KiB and 1 MiB, so one step never inflates far beyond the bytes asked for.
 */
const GUNZIP_MIN_CHUNK = 16 << 10;
const GUNZIP_MAX_CHUNK = 1 << 20;

/**
 * Deflate cannot expand data by more than 1032:1 (RFC 1951: a 258-byte match costs at least 2
 * bits): a FITS header declaring more bytes than this times the compressed size is a lie.
 */
export const GZIP_MAX_RATIO = 1032;

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 (gzip, PNG) of `data`, continuing from `crc` (0 to start). */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 255] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * A gzip source decompressed on demand: `read` inflates forward only as far as asked (the bytes
 * decompressed so far are kept as chunks), so a reader that stops after the last HDU it needs never
 * inflates the rest. Every member's CRC-32 and ISIZE are checked when its end is reached; a mismatch
 * is a DataError naming the file.
 */
export interface GunzipSource extends ByteSource {
  readonly gzip: true;
  /** Size of the compressed file. */
  readonly compressedSize: number;
  /** An upper bound of the decompressed size (compressed size × 1032). */
  readonly maxSize: number;
  /** Decompressed bytes produced so far. */
  produced(): number;
  /** Decompressed bytes kept in memory now (produced less what {@link forget} dropped). */
  retained(): number;
  /** True once the whole compressed stream was inflated and every member checked. */
  complete(): boolean;
  /** Drops the decompressed bytes of [offset, offset + length) (whole chunks only); reading them later is a DataError. */
  forget(offset: number, length: number): void;
}

/** True for a source made by {@link gunzipSource}. */
export function isGunzipSource(s: ByteSource): s is GunzipSource {
  return (s as Partial<GunzipSource>).gzip === true;
}

export async function gunzipSource(source: ByteSource): Promise<GunzipSource> {
  const file = source.name;
  const csize = await source.size();
  let starts: number[] = [];
  let lens: number[] = [];
  let parts: Array<Uint8Array | null> = [];
  let total = 0;
  let inOffset = 0; // compressed bytes pushed
  let done = false;
  let closed = false;
  // per-member running check
  let memberCrc = 0;
  let memberLen = 0;
  const pendingTrailers: Array<{ at: number; crc: number; len: number }> = [];
  const gz = new Gunzip((data) => {
    if (data.length === 0) return;
    memberCrc = crc32(data, memberCrc);
    memberLen = (memberLen + data.length) >>> 0;
    starts.push(total);
    lens.push(data.length);
    parts.push(data);
    total += data.length;
  });
  gz.onmember = (offset: number) => {
    // a new member starts at `offset`: the previous one's trailer is the 8 bytes before it
    pendingTrailers.push({ at: offset - 8, crc: memberCrc, len: memberLen });
    memberCrc = 0;
    memberLen = 0;
  };
  const corrupt = (why: string) => new DataError(`corrupt gzip data: ${why}`, { file });
  const checkTrailer = async (t: { at: number; crc: number; len: number }, member: string) => {
    const b = await source.read(t.at, 8);
    if (t.at < 0 || b.length !== 8) throw corrupt(`${member} has no CRC-32/ISIZE trailer (truncated file)`);
    const crc = (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
    const isize = (b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24)) >>> 0;
    if (crc !== t.crc) throw corrupt(`${member}: CRC-32 mismatch (stored 0x${crc.toString(16).padStart(8, '0')}, data 0x${t.crc.toString(16).padStart(8, '0')}): the compressed bytes were altered`);
    if (isize !== t.len) throw corrupt(`${member}: ISIZE mismatch (stored ${isize} bytes, inflated ${t.len} mod 2^32)`);
  };
  let members = 1;
  const step = async (want: number): Promise<void> => {
    if (done) return;
    const chunk = Math.min(GUNZIP_MAX_CHUNK, Math.max(GUNZIP_MIN_CHUNK, Math.ceil(want / GZIP_MAX_RATIO)));
    const n = Math.min(chunk, csize - inOffset);
    const buf = n > 0 ? await source.read(inOffset, n) : new Uint8Array(0);
    if (n > 0 && buf.length === 0) throw corrupt(`the file ended at byte ${inOffset} of ${csize}`);
    inOffset += buf.length;
    const last = inOffset >= csize;
    try {
      gz.push(buf, last);
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw corrupt(`${(e as Error).message ?? String(e)} (truncated or damaged file)`);
    }
    while (pendingTrailers.length) {
      await checkTrailer(pendingTrailers.shift()!, `member ${members}`);
      members++;
    }
    if (total > csize * GZIP_MAX_RATIO + (1 << 20)) throw corrupt(`more than ${GZIP_MAX_RATIO}× expansion (not a valid deflate stream)`);
    if (last) {
      done = true;
      await checkTrailer({ at: csize - 8, crc: memberCrc, len: memberLen }, `member ${members}`);
    }
  };
  const ensure = async (end: number) => {
    while (!done && total < end) await step(end - total);
  };
  const out: GunzipSource = {
    name: file,
    gzip: true,
    compressedSize: csize,
    maxSize: csize * GZIP_MAX_RATIO,
    produced: () => total,
    retained: () => parts.reduce((a, p) => a + (p ? p.length : 0), 0),
    complete: () => done,
    async size() {
      await ensure(Infinity);
      return total;
    },
    async read(offset, length) {
      if (closed) throw new DataError('read after close', { file });
      checkRange(file, offset, length);
      await ensure(offset + length);
      const end = Math.min(total, offset + length);
      const res = new Uint8Array(Math.max(0, end - offset));
      if (res.length === 0) return res;
      let lo = 0;
      let hi = parts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (starts[mid] <= offset) lo = mid;
        else hi = mid - 1;
      }
      let pos = offset;
      let k = lo;
      while (pos < end) {
        const part = parts[k];
        if (!part) throw new DataError(`bytes ${starts[k]}… of the decompressed file were not kept (opened for its headers only)`, { file });
        const inPart = pos - starts[k];
        const m = Math.min(lens[k] - inPart, end - pos);
        res.set(part.subarray(inPart, inPart + m), pos - offset);
        pos += m;
        k++;
      }
      return res;
    },
    forget(offset, length) {
      const end = offset + length;
      const ns: number[] = [];
      const nl: number[] = [];
      const np: Array<Uint8Array | null> = [];
      const add = (st: number, len: number, p: Uint8Array | null) => {
        if (len <= 0) return;
        ns.push(st);
        nl.push(len);
        np.push(p);
      };
      for (let k = 0; k < parts.length; k++) {
        const p = parts[k];
        const s0 = starts[k];
        const e0 = s0 + lens[k];
        if (!p || e0 <= offset || s0 >= end) {
          add(s0, lens[k], p);
          continue;
        }
        // keep the parts outside [offset, end) (copied, so that the dropped bytes are freed)
        const a = Math.max(s0, offset);
        const b = Math.min(e0, end);
        add(s0, a - s0, p.slice(0, a - s0));
        add(a, b - a, null);
        add(b, e0 - b, p.slice(b - s0));
      }
      starts = ns;
      lens = nl;
      parts = np;
    },
    async close() {
      closed = true;
      parts = [];
      starts = [];
      lens = [];
      await source.close();
    },
  };
  if (csize < 18) throw corrupt(`${csize} bytes is shorter than the smallest gzip member (18 bytes)`);
  return out;
}

/** Returns the source itself, or a gzip source decompressed on demand when it starts with the gzip magic. */
export async function maybeGunzip(source: ByteSource): Promise<ByteSource> {
  const head = await source.read(0, 2);
  if (!isGzipMagic(head)) return source;
  return gunzipSource(source);
}
