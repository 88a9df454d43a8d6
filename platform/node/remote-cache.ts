/**
 * Remote FITS files (http/https URLs) on Node: ranged reads through a resumable local block cache.
 *
 * Layout of one cache entry (folder `<cache_dir>/<sha256(url)[0..2]>/<sha256(url)>/`):
 *  - `data`: a sparse file of the remote file's size; block k holds bytes [k·B, (k+1)·B);
 *  - `index.json`: `{version, url, size, etag, lastModified, blockSize, ranges, blocks: [[k, crc32], …]}`
 *    — which blocks are present and their CRC-32. It is replaced atomically (temp file + rename)
 *    and only after the blocks it lists were written and flushed (fdatasync), so a crash leaves an
 *    index that lists fewer blocks than are on disk, never more.
 *
 * A read fetches only the blocks it needs that are missing (contiguous runs coalesced into one
 * `Range` request, at most `maxRequestBytes` each), writing each block as soon as it has fully
 * arrived; an interrupted response keeps the blocks it delivered and the retry asks only for the
 * rest, so a re-run after a crash or a cut connection fetches only the missing blocks. Blocks
 * read back from the cache are checked against their CRC (and the data file's length), and a bad
 * one is dropped and fetched again, never used. A changed remote file (size, ETag or
 * Last-Modified differ from the index) invalidates the entry.
 *
 * Servers that ignore `Range` (answer 200 with the whole body) are handled by a whole-file
 * download streamed block by block into the cache (nothing is held in memory).
 *
 * Every request — across all open remote files sharing a context — goes through one
 * RequestLimiter (`concurrency`), has an idle timeout (`timeoutS`), and is retried with
 * exponential backoff (`retries`, `backoffMs`) on network errors, timeouts, 5xx/429 and short
 * bodies. 4xx answers fail at once, and so does a redirect the `redirects` policy refuses (to another
 * host, or from https to http, unless allowed): it names both URLs. Errors are DataErrors naming the URL (and the HDU when the
 * FITS layer has told the source where its HDUs are, see `locate`).
 *
 * Modules: remote-settings.ts (the configuration's `remote` section → settings), remote-http.ts
 * (contexts, requests, retries, probe), remote-cache-entry.ts (one cached file), this file (the
 * ByteSource over a URL, and the public names).
 */
import { DataError } from '../../engine/errors.ts';
import type { ByteSource } from '../../engine/data/fits/source.ts';
import { probe, remoteContext, type RemoteContext } from './remote-http.ts';
import { CacheEntry } from './remote-cache-entry.ts';
import type { RemoteSettings } from './remote-settings.ts';

export { defaultCacheDir, REMOTE_DEFAULTS, remoteSettings, type RemoteConfig, type RemoteSettings } from './remote-settings.ts';
export { isRemoteUrl, MAX_REMOTE_BYTES, remoteContext, type RemoteContext, type RemoteStats } from './remote-http.ts';
export { CacheEntry, cacheEntryDir, crc32, indexLock } from './remote-cache-entry.ts';

// ---------------------------------------------------------------------------------------------
// sources

/** A ByteSource over a URL through the block cache of `ctx`. */
export interface RemoteSource extends ByteSource {
  /** Tells the source which HDU holds a byte offset (error messages). */
  setLocator(locate: (offset: number) => string | number | undefined): void;
}

/** Open cache entries per context, by URL (shared by every source of the same URL). */
const openEntries = new WeakMap<RemoteContext, Map<string, Promise<CacheEntry>>>();

export async function openCachedSource(url: string, ctx: RemoteContext): Promise<RemoteSource> {
  if (!ctx.settings.cacheDir) throw new Error('internal: openCachedSource without a cache folder');
  let entries = openEntries.get(ctx);
  if (!entries) openEntries.set(ctx, (entries = new Map()));
  const open = entries;
  let p = open.get(url);
  if (!p) {
    p = CacheEntry.open(ctx, url);
    open.set(url, p);
    p.catch(() => open.delete(url));
  }
  const entry = await p;
  entry.acquire();
  let closed = false;
  return {
    name: url,
    async size() {
      return entry.id.size;
    },
    async read(offset, length) {
      if (closed) throw new DataError('read after close', { file: url });
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new DataError(`invalid byte range offset=${offset} length=${length}`, { file: url });
      }
      const end = Math.min(entry.id.size, offset + length);
      if (end <= offset) return new Uint8Array(0);
      const b = await entry.read(offset, end);
      return b.byteOffset === 0 && b.length === b.buffer.byteLength ? b : b.slice();
    },
    setLocator(locate) {
      entry.locate = locate;
    },
    async close() {
      if (closed) return;
      closed = true;
      await entry.release(() => {
        if (open.get(url) === p) open.delete(url);
      });
    },
  };
}

/** The size and validators of a remote file (one HEAD request), e.g. to key caches of derived data. */
export async function remoteIdentity(url: string, settings: RemoteSettings): Promise<{ size: number; etag: string | null; lastModified: string | null }> {
  const { size, etag, lastModified } = await probe(remoteContext(settings), url);
  return { size, etag, lastModified };
}
