/**
 * Node file access for the FITS layer: random-access file sources (fs file handles), opening a
 * local path or an http(s) URL as a FitsFile, and an atomic file writer.
 */
import { open, rename, unlink, mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DataError } from '../../engine/errors.ts';
import { FitsFile, type OpenOptions } from '../../engine/data/fits/file.ts';
import { httpSource, type HttpSourceOptions } from '../../engine/data/fits/http-source.ts';
import type { ByteSource } from '../../engine/data/fits/source.ts';

function fileError(path: string, e: unknown): DataError {
  const err = e as NodeJS.ErrnoException;
  const reason =
    err?.code === 'ENOENT' ? 'no such file' : err?.code === 'EACCES' ? 'permission denied' : err?.code === 'EISDIR' ? 'is a directory' : (err?.message ?? String(e));
  return new DataError(`cannot open: ${reason}`, { file: path });
}

/** A random-access source over a local file (one fs FileHandle; reads with positional pread). */
export async function openFileSource(path: string): Promise<ByteSource> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fileError(path, e);
  }
  const st = await fh.stat();
  if (st.isDirectory()) {
    await fh.close();
    throw new DataError('cannot open: is a directory', { file: path });
  }
  let closed = false;
  return {
    name: path,
    async size() {
      return (await fh.stat()).size;
    },
    async read(offset, length) {
      if (closed) throw new DataError('read after close', { file: path });
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new DataError(`invalid byte range offset=${offset} length=${length}`, { file: path });
      }
      const out = new Uint8Array(length);
      let got = 0;
      // fs reads are capped at 2 GiB per call: loop
      while (got < length) {
        const n = Math.min(length - got, 1 << 30);
        const { bytesRead } = await fh.read(out, got, n, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === length ? out : out.subarray(0, got);
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

/** Opens a byte source for a local path or an http(s):// URL. */
export async function openSource(pathOrUrl: string, http?: HttpSourceOptions): Promise<ByteSource> {
  if (/^https?:\/\//i.test(pathOrUrl)) return httpSource(pathOrUrl, http);
  return openFileSource(pathOrUrl);
}

/** Opens a FITS file (local path or http(s) URL; gzip detected from the magic bytes). */
export async function openFits(pathOrUrl: string, options: OpenOptions & { http?: HttpSourceOptions } = {}): Promise<FitsFile> {
  const src = await openSource(pathOrUrl, options.http);
  try {
    return await FitsFile.open(src, options);
  } catch (e) {
    await src.close().catch(() => undefined);
    throw e;
  }
}

/**
 * Writes a file atomically: the bytes go to a temporary file in the same directory, which is
 * fsync'ed and then renamed over `path`, so readers see the old file or the complete new one.
 * The directory is created if needed.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | readonly Uint8Array[]): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const chunks = bytes instanceof Uint8Array ? [bytes] : bytes;
  const fh = await open(tmp, 'wx');
  try {
    for (const c of chunks) {
      let o = 0;
      while (o < c.length) {
        const { bytesWritten } = await fh.write(c, o, Math.min(c.length - o, 1 << 30));
        o += bytesWritten;
      }
    }
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  // make the rename durable (best effort: directories cannot be fsync'ed on every platform)
  try {
    const d = await open(dir, 'r');
    await d.sync().catch(() => undefined);
    await d.close();
  } catch {
    /* ignore */
  }
}
