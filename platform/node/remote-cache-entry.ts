/**
 * One cached remote file on Node: the block cache entry (sparse data file + index.json), its
 * reads, fetches, CRC checks and the index lock. The layout and the crash-safety rules are in
 * remote-cache.ts's header and docs/remote-data.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { DataError } from '../../engine/errors.ts';
import type { TimedResponse } from '../../engine/data/fits/http-source.ts';
import { waitLock } from './lock.ts';
import { errText, probe, RangesIgnored, Retryable, send, withRetries, type Identity, type RemoteContext } from './remote-http.ts';

/** The cache folder of one URL. */
export function cacheEntryDir(cacheDir: string, url: string): string {
  const h = createHash('sha256').update(url).digest('hex');
  return join(cacheDir, h.slice(0, 2), h);
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (node:zlib's when available)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  const native = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(b) >>> 0;
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// cache entries

interface IndexFile {
  version: 1;
  url: string;
  size: number;
  etag: string | null;
  lastModified: string | null;
  blockSize: number;
  ranges: boolean | null;
  blocks: Array<[number, number]>;
}

async function readIndex(path: string): Promise<IndexFile | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return null;
  }
  try {
    const j = JSON.parse(text) as IndexFile;
    if (j.version !== 1 || typeof j.url !== 'string' || !Number.isSafeInteger(j.size) || !Number.isSafeInteger(j.blockSize) || !Array.isArray(j.blocks)) return null;
    for (const b of j.blocks) if (!Array.isArray(b) || !Number.isSafeInteger(b[0]) || !Number.isSafeInteger(b[1])) return null;
    return j;
  } catch {
    return null; // corrupt index: the entry is rebuilt
  }
}

function sameIdentity(a: { size: number; etag: string | null; lastModified: string | null }, b: typeof a): boolean {
  if (a.size !== b.size) return false;
  if (a.etag && b.etag) return a.etag === b.etag;
  if (a.etag || b.etag) return false;
  return (a.lastModified ?? '') === (b.lastModified ?? '');
}

/** One cached remote file, shared by every source of its URL within a context. */
export class CacheEntry {
  readonly url: string;
  readonly dir: string;
  readonly id: Identity;
  readonly blockSize: number;
  readonly nBlocks: number;
  /** Present blocks → CRC-32. */
  readonly blocks = new Map<number, number>();
  /** Blocks whose CRC was checked (or which were written) in this process. */
  private readonly verified = new Set<number>();
  private readonly inflight = new Map<number, Promise<void>>();
  private fh: FileHandle;
  private refs = 0;
  private saving: Promise<void> | null = null;
  private dirty = false;
  private whole: Promise<void> | null = null;
  private readonly ctx: RemoteContext;
  /** Set by the FITS layer: the HDU holding a byte offset (for error messages). */
  locate?: (offset: number) => string | number | undefined;

  private constructor(ctx: RemoteContext, url: string, dir: string, id: Identity, fh: FileHandle) {
    this.ctx = ctx;
    this.url = url;
    this.dir = dir;
    this.id = id;
    this.fh = fh;
    this.blockSize = ctx.settings.blockSize;
    this.nBlocks = Math.ceil(id.size / this.blockSize);
  }

  static async open(ctx: RemoteContext, url: string): Promise<CacheEntry> {
    const cacheDir = ctx.settings.cacheDir!;
    const id = await probe(ctx, url);
    const dir = cacheEntryDir(cacheDir, url);
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new DataError(`cannot create the cache folder: ${errText(e)}`, { file: dir });
    }
    const dataPath = join(dir, 'data');
    const old = await readIndex(join(dir, 'index.json'));
    const reuse = !!old && old.url === url && old.blockSize === ctx.settings.blockSize && sameIdentity(old, id);
    let fh: FileHandle;
    try {
      fh = await open(dataPath, 'r+').catch(async (e) => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return open(dataPath, 'w+');
        throw e;
      });
    } catch (e) {
      throw new DataError(`cannot open the cache file: ${errText(e)}`, { file: dataPath });
    }
    const entry = new CacheEntry(ctx, url, dir, { ...id, ranges: id.ranges ?? (reuse ? old!.ranges : null) }, fh);
    const onDisk = (await fh.stat()).size;
    if (reuse) {
      for (const [k, crc] of old!.blocks) {
        // a block the (possibly truncated) data file does not fully hold is not present
        if (k >= 0 && k < entry.nBlocks && entry.blockEnd(k) <= onDisk) entry.blocks.set(k, crc);
      }
    } else if (old && onDisk > 0) {
      // another version of the remote file (or another block size): drop the stale bytes. Without
      // a readable index the content is left alone (another process may be creating the entry):
      // only blocks listed with their CRC are ever used.
      await fh.truncate(0);
    }
    if (onDisk !== id.size || !reuse) {
      try {
        await fh.truncate(id.size); // sparse: unwritten blocks take no space
      } catch (e) {
        await fh.close().catch(() => undefined);
        throw new DataError(`cannot make a ${id.size}-byte cache file for it in ${dataPath}: ${errText(e)}`, { file: url });
      }
    }
    if (!reuse) await entry.saveIndex();
    return entry;
  }

  blockStart(k: number): number {
    return k * this.blockSize;
  }
  blockEnd(k: number): number {
    return Math.min(this.id.size, (k + 1) * this.blockSize);
  }

  acquire(): void {
    this.refs++;
  }
  /**
   * Drops a reference; the data file is closed with the last one. `onIdle` runs synchronously at
   * that moment (before any await), so that a concurrent open creates a new entry instead of
   * taking this closing one.
   */
  async release(onIdle?: () => void): Promise<void> {
    this.refs--;
    if (this.refs > 0) return;
    onIdle?.();
    await this.flush();
    await this.fh.close().catch(() => undefined);
  }

  /** Waits for pending index writes (a failed index write only means refetching later). */
  async flush(): Promise<void> {
    while (this.saving) await this.saving.catch(() => undefined);
  }

  private scheduleSave(): void {
    this.dirty = true;
    if (this.saving) return;
    this.saving = (async () => {
      try {
        while (this.dirty) {
          this.dirty = false;
          await this.saveIndex();
        }
      } finally {
        this.saving = null;
      }
    })();
    this.saving.catch(() => undefined);
  }

  /**
   * Flushes the data file, then replaces index.json atomically, merging the blocks other processes
   * recorded (under index.lock, so that two processes do not drop each other's blocks).
   */
  private async saveIndex(): Promise<void> {
    await this.fh.datasync();
    const unlock = await indexLock(join(this.dir, 'index.lock'));
    try {
      await this.mergeAndWriteIndex();
    } finally {
      await unlock();
    }
  }

  private async mergeAndWriteIndex(): Promise<void> {
    const path = join(this.dir, 'index.json');
    const merged = new Map(this.blocks);
    const other = await readIndex(path);
    if (other && other.url === this.url && other.blockSize === this.blockSize && sameIdentity(other, this.id)) {
      for (const [k, crc] of other.blocks) if (!merged.has(k) && k < this.nBlocks) merged.set(k, crc);
    }
    const idx: IndexFile = {
      version: 1,
      url: this.url,
      size: this.id.size,
      etag: this.id.etag,
      lastModified: this.id.lastModified,
      blockSize: this.blockSize,
      ranges: this.id.ranges,
      blocks: [...merged].sort((a, b) => a[0] - b[0]),
    };
    const tmp = join(this.dir, `.index.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await writeFileFully(tmp, new TextEncoder().encode(JSON.stringify(idx)));
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw new DataError(`cannot write the cache index: ${errText(e)}`, { file: path });
    }
  }

  private async writeBlock(k: number, bytes: Uint8Array): Promise<void> {
    if (bytes.length !== this.blockEnd(k) - this.blockStart(k)) throw new Error(`internal: block ${k} has ${bytes.length} bytes`);
    let o = 0;
    try {
      while (o < bytes.length) {
        const { bytesWritten } = await this.fh.write(bytes, o, bytes.length - o, this.blockStart(k) + o);
        o += bytesWritten;
      }
    } catch (e) {
      throw new DataError(`cannot write the cache file: ${errText(e)}`, { file: join(this.dir, 'data') });
    }
    this.blocks.set(k, crc32(bytes));
    this.verified.add(k);
  }

  /**
   * Streams a response body that starts at byte `start` into the cache, writing every block that
   * fully arrives (also when the body is cut short). Returns the number of bytes received.
   */
  /** A whole-file (200) answer streamed into the cache; a cut or short body is retryable. */
  private async receiveWhole(t: TimedResponse): Promise<void> {
    let got: number;
    try {
      got = await this.streamInto(t, 0, this.id.size);
    } catch (e) {
      if (e instanceof Retryable || e instanceof DataError) throw e;
      throw new Retryable(`response cut short: ${errText(e)}`);
    }
    if (got < this.id.size) throw new Retryable(`truncated body (${got} of ${this.id.size} bytes)`);
  }

  private async streamInto(t: TimedResponse, start: number, end: number): Promise<number> {
    const B = this.blockSize;
    let pos = start; // absolute offset of the next byte
    let k = Math.floor(start / B);
    let buf = new Uint8Array(this.blockEnd(k) - this.blockStart(k));
    let fill = 0;
    let wrote = 0;
    try {
      await t.streamBody(async (chunk) => {
        this.ctx.stats.bytesReceived += chunk.length;
        let c = 0;
        while (c < chunk.length) {
          if (pos >= end) throw new Retryable(`the server sent more than the ${end - start} bytes asked for`);
          const n = Math.min(chunk.length - c, buf.length - fill, end - pos);
          buf.set(chunk.subarray(c, c + n), fill);
          fill += n;
          c += n;
          pos += n;
          if (fill === buf.length) {
            if (!this.blocks.has(k)) {
              await this.writeBlock(k, buf);
              wrote++;
            }
            k++;
            if (k < this.nBlocks && pos < end) {
              buf = new Uint8Array(this.blockEnd(k) - this.blockStart(k));
              fill = 0;
            }
          }
        }
      });
    } finally {
      if (wrote) this.scheduleSave();
    }
    return pos - start;
  }

  /** Fetches blocks [k0, k1] (some may already be present) with one ranged GET. */
  private async fetchOnce(k0: number, k1: number): Promise<void> {
    const a = this.blockStart(k0);
    const b = this.blockEnd(k1);
    await this.ctx.limiter.run(async () => {
      const t = await send(this.ctx, this.url, { headers: { Range: `bytes=${a}-${b - 1}` } });
      const h = t.res.headers;
      if (t.res.status === 200) {
        // the server ignores ranges: this answer is the whole file; keep it (streamed to the cache)
        this.id.ranges = false;
        await this.receiveWhole(t);
        return;
      }
      if (t.res.status !== 206) {
        await t.cancel();
        throw new DataError(`unexpected HTTP status ${t.res.status} for a range request`, { file: this.url });
      }
      const cr = h.get('content-range') ?? '';
      const m = /bytes\s+(\d+)-(\d+)\/(\d+|\*)/i.exec(cr);
      if (m && m[3] !== '*' && Number(m[3]) !== this.id.size) {
        await t.cancel();
        throw new DataError(
          `the remote file changed while reading (size ${this.id.size} → ${m[3]}); run again to refetch it`,
          { file: this.url },
        );
      }
      const etag = h.get('etag');
      if (etag && this.id.etag && etag !== this.id.etag) {
        await t.cancel();
        throw new DataError(`the remote file changed while reading (ETag ${this.id.etag} → ${etag}); run again to refetch it`, { file: this.url });
      }
      if (m && (Number(m[1]) !== a || Number(m[2]) !== b - 1)) {
        await t.cancel();
        throw new Retryable(`the server answered bytes ${m[1]}-${m[2]} to a request for ${a}-${b - 1}`);
      }
      this.id.ranges = true;
      let got: number;
      try {
        got = await this.streamInto(t, a, b);
      } catch (e) {
        if (e instanceof Retryable || e instanceof DataError) throw e;
        throw new Retryable(`response cut short: ${errText(e)}`);
      }
      if (got < b - a) throw new Retryable(`truncated body (${got} of ${b - a} bytes)`);
    });
  }

  /** Whole-file mode (server without ranges): one GET streamed into the cache; retried from the start. */
  private downloadWhole(): Promise<void> {
    if (!this.whole) {
      this.id.ranges = false;
      this.whole = withRetries(this.ctx, this.url, 'GET (whole file; the server ignores ranges)', () =>
        this.ctx.limiter.run(async () => {
          const t = await send(this.ctx, this.url, {});
          if (t.res.status !== 200) {
            await t.cancel();
            throw new DataError(`unexpected HTTP status ${t.res.status}`, { file: this.url });
          }
          await this.receiveWhole(t);
        }),
      );
      this.whole.catch(() => {
        this.whole = null;
      });
    }
    return this.whole;
  }

  /** Fetches one run of blocks with retries; each retry asks only for the blocks still missing. */
  private async fetchRun(k0: number, k1: number): Promise<void> {
    const missing = () => {
      let s = -1;
      let e = -1;
      for (let k = k0; k <= k1; k++) {
        if (!this.blocks.has(k)) {
          if (s < 0) s = k;
          e = k;
        }
      }
      return [s, e] as const;
    };
    const where = () => this.locate?.(this.blockStart(k0));
    try {
      await withRetries(
        this.ctx,
        this.url,
        `GET bytes ${this.blockStart(k0)}-${this.blockEnd(k1) - 1}`,
        async () => {
          const [s, e] = missing();
          if (s < 0) return;
          if (this.id.ranges === false) throw new RangesIgnored();
          await this.fetchOnce(s, e);
        },
        where,
      );
    } catch (e) {
      if (!(e instanceof RangesIgnored)) {
        const prefix = `file ${this.url}: `;
        if (e instanceof DataError && e.context.hdu === undefined && where() !== undefined && e.message.startsWith(prefix)) {
          throw new DataError(e.message.slice(prefix.length), { ...e.context, hdu: where() });
        }
        throw e;
      }
      await this.downloadWhole();
    }
  }

  /** Makes blocks [k0, k1] present, fetching the missing ones (runs of at most maxRequestBytes). */
  async ensure(k0: number, k1: number): Promise<void> {
    const waits: Promise<void>[] = [];
    const maxBlocks = Math.max(1, Math.floor(this.ctx.settings.maxRequestBytes / this.blockSize));
    let runStart = -1;
    const flushRun = (end: number) => {
      if (runStart < 0) return;
      const s = runStart;
      runStart = -1;
      const p = this.fetchRun(s, end).finally(() => {
        for (let k = s; k <= end; k++) if (this.inflight.get(k) === p) this.inflight.delete(k);
      });
      for (let k = s; k <= end; k++) this.inflight.set(k, p);
      waits.push(p);
    };
    for (let k = k0; k <= k1; k++) {
      const pending = this.inflight.get(k);
      if (this.blocks.has(k) || pending) {
        flushRun(k - 1);
        if (pending && !waits.includes(pending)) waits.push(pending);
        continue;
      }
      if (runStart < 0) runStart = k;
      if (k - runStart + 1 >= maxBlocks) flushRun(k);
    }
    flushRun(k1);
    const results = await Promise.allSettled(waits);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** Reads [offset, end) from the cache, fetching missing blocks and refetching corrupt ones. */
  async read(offset: number, end: number): Promise<Uint8Array> {
    const B = this.blockSize;
    const k0 = Math.floor(offset / B);
    const k1 = Math.floor((end - 1) / B);
    for (let round = 0; ; round++) {
      await this.ensure(k0, k1);
      const a = this.blockStart(k0);
      const b = this.blockEnd(k1);
      const span = new Uint8Array(b - a);
      let got = 0;
      while (got < span.length) {
        const { bytesRead } = await this.fh.read(span, got, span.length - got, a + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      const bad: number[] = [];
      for (let k = k0; k <= k1; k++) {
        const s = this.blockStart(k) - a;
        const e = this.blockEnd(k) - a;
        if (e > got) {
          bad.push(k); // the data file is shorter than the index says (truncated cache)
          continue;
        }
        if (this.verified.has(k)) continue;
        const crc = this.blocks.get(k);
        if (crc === undefined || crc32(span.subarray(s, e)) !== crc) bad.push(k);
        else {
          this.verified.add(k);
          this.ctx.stats.cacheHits++;
        }
      }
      if (bad.length === 0) return span.subarray(offset - a, end - a);
      if (round >= 2) throw new DataError(`cached blocks keep failing their checksum after refetching (blocks ${bad.join(', ')})`, { file: this.url, hdu: this.locate?.(offset) });
      this.ctx.stats.corruptBlocks += bad.length;
      for (const k of bad) {
        this.blocks.delete(k);
        this.verified.delete(k);
      }
      this.scheduleSave();
    }
  }
}

/**
 * The index lock: a cross-process mutex (platform/node/lock.ts) — exclusive creation of `path`
 * holding the owner's pid, host and token. A lock older than 30 s (or of a dead pid on this host)
 * is broken as stale; a holder releases only a lock that still holds its token, so a slow holder
 * whose lock was broken never deletes its successor's; a waiter never goes on without the lock
 * (after 120 s it fails, and the index is not written: its blocks are only fetched again later).
 */
export async function indexLock(path: string, opts: { staleMs?: number; maxWaitMs?: number } = {}): Promise<() => Promise<boolean>> {
  const l = await waitLock(path, { what: 'cache index', ...opts });
  return () => l.release();
}

async function writeFileFully(path: string, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'wx');
  try {
    let o = 0;
    while (o < bytes.length) o += (await fh.write(bytes, o, bytes.length - o)).bytesWritten;
    await fh.sync();
  } finally {
    await fh.close();
  }
}
