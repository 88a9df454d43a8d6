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

/** Compressed bytes are read in chunks of this size when decompressing. */
const GUNZIP_READ_CHUNK = 4 << 20;

/**
 * Decompresses a gzip source into an in-memory source, streaming: the compressed file is read in
 * 4 MiB chunks and the output is kept as the list of chunks fflate emits (no single giant
 * intermediate copy). Gzip has no random access, so the whole stream is decompressed once.
 * Multi-member gzip files (concatenated streams) are supported.
 */
export async function gunzipSource(source: ByteSource): Promise<ByteSource> {
  const size = await source.size();
  const chunks: Uint8Array[] = [];
  let failure: unknown = null;
  const gz = new Gunzip((data) => {
    chunks.push(data);
  });
  let offset = 0;
  try {
    while (offset < size) {
      const n = Math.min(GUNZIP_READ_CHUNK, size - offset);
      const buf = await source.read(offset, n);
      if (buf.length === 0) break;
      offset += buf.length;
      gz.push(buf, offset >= size);
    }
    if (size === 0) gz.push(new Uint8Array(0), true);
  } catch (e) {
    failure = e;
  }
  if (failure) {
    if (failure instanceof DataError) throw failure;
    throw new DataError(`corrupt or truncated gzip stream (${(failure as Error).message ?? String(failure)})`, {
      file: source.name,
    });
  }
  return chunkedMemorySource(chunks, source.name);
}

/** Returns the source itself, or a decompressed in-memory source when it starts with the gzip magic. */
export async function maybeGunzip(source: ByteSource): Promise<ByteSource> {
  const head = await source.read(0, 2);
  if (!isGzipMagic(head)) return source;
  const out = await gunzipSource(source);
  await source.close();
  return out;
}
