/**
 * Node file access for the FITS layer: random-access file sources (fs file handles), opening a
 * local path or an http(s) URL as a FitsFile, and an atomic file writer.
 *
 * URLs go through the resumable block cache of ./remote-cache.ts (docs/remote-data.md): pass
 * `remote: remoteSettings(cfg.remote, cfg.source.dir)` to apply the configuration's `remote`
 * section; without it the defaults apply (cache in $SHINE_CACHE_DIR or ~/.cache/shine/remote).
 */
import { open, rename, unlink, mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DataError } from '../../engine/errors.ts';
import { FitsFile, type OpenOptions } from '../../engine/data/fits/file.ts';
import { httpSource, type HttpSourceOptions } from '../../engine/data/fits/http-source.ts';
import type { ByteSource } from '../../engine/data/fits/source.ts';
import { isRemoteUrl, openCachedSource, remoteContext, remoteSettings, type RemoteSettings, type RemoteSource } from './remote-cache.ts';

export { remoteSettings, type RemoteSettings } from './remote-cache.ts';

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

/** Options of {@link openSource} / {@link openFits} for URLs. */
export interface RemoteOpenOptions {
  /** Remote access settings (cache, concurrency, retries, timeout); default `remoteSettings()`. */
  remote?: RemoteSettings;
  /** Legacy: plain ranged reads without the disk cache, with these options. */
  http?: HttpSourceOptions;
}

/**
 * Opens a byte source for a local path or an http(s):// URL. URLs are read through the block
 * cache (when `remote.cacheDir` is set) or with plain ranged requests; all URL sources opened
 * with equal settings share one bound on the requests in flight.
 */
export async function openSource(pathOrUrl: string, options: RemoteOpenOptions = {}): Promise<ByteSource> {
  if (!isRemoteUrl(pathOrUrl)) return openFileSource(pathOrUrl);
  if (options.http) return httpSource(pathOrUrl, options.http);
  const settings = options.remote ?? remoteSettings();
  const ctx = remoteContext(settings);
  if (settings.cacheDir) return openCachedSource(pathOrUrl, ctx);
  return httpSource(pathOrUrl, {
    retries: settings.retries,
    backoffMs: settings.backoffMs,
    timeoutMs: settings.timeoutMs,
    headers: settings.headers,
    fetch: settings.fetch,
    limiter: ctx.limiter,
    redirects: settings.redirects,
  });
}

/** Opens a FITS file (local path or http(s) URL; gzip detected from the magic bytes). */
export async function openFits(pathOrUrl: string, options: OpenOptions & RemoteOpenOptions = {}): Promise<FitsFile> {
  const src = await openSource(pathOrUrl, options);
  let f: FitsFile;
  try {
    f = await FitsFile.open(src, options);
  } catch (e) {
    let err = e;
    if (e instanceof DataError && isRemoteUrl(pathOrUrl) && e.context.key === 'SIMPLE') {
      // say what came instead (an HTML error page, a JSON message, …)
      const head = await src.read(0, 80).catch(() => new Uint8Array(0));
      const text = Array.from(head, (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : ' ')).join('').replace(/\s+/g, ' ').trim();
      err = new DataError(`not a FITS file: the server sent ${text ? `'${text.slice(0, 60)}${text.length > 60 ? '…' : ''}'` : 'non-text bytes'} instead of a FITS header`, { file: pathOrUrl, hdu: 0 });
    }
    await src.close().catch(() => undefined);
    throw err;
  }
  const remote = src as Partial<RemoteSource>;
  if (remote.setLocator && f.source === src) {
    const hdus = f.hdus;
    remote.setLocator((offset) => {
      const h = hdus.find((x) => offset >= x.headerOffset && offset < x.dataOffset + Math.max(x.dataSize, 1));
      return h ? (h.name ? `${h.index} (${h.name})` : h.index) : undefined;
    });
  }
  return f;
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
