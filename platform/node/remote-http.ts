/**
 * The request layer of remote (http/https) files on Node: per-settings contexts (one request
 * limiter and one set of counters per distinct settings), requests with an idle timeout and the
 * redirect policy, retries with exponential backoff, and the probe of a file's size and
 * validators. The block cache (remote-cache-entry.ts) and the sources (remote-cache.ts) build on
 * it; docs/remote-data.md describes the behaviour.
 */
import { DataError } from '../../engine/errors.ts';
import { claimedSize, MAX_REMOTE_BYTES, RequestLimiter, RequestTimeout, timedFetch, type TimedResponse } from '../../engine/data/fits/http-source.ts';
import type { RemoteSettings } from './remote-settings.ts';

// ---------------------------------------------------------------------------------------------
// contexts: one limiter (and one set of open cache entries) per distinct settings

export interface RemoteStats {
  /** HTTP requests sent (each attempt counts). */
  requests: number;
  /** Body bytes received. */
  bytesReceived: number;
  /** Blocks served from the cache without a request. */
  cacheHits: number;
  /** Cached blocks found corrupt (CRC or length) and fetched again. */
  corruptBlocks: number;
}

export interface RemoteContext {
  readonly settings: RemoteSettings;
  readonly limiter: RequestLimiter;
  readonly stats: RemoteStats;
}

const contexts = new Map<string, RemoteContext>();

/**
 * The context for these settings: sources opened with equal settings share one limiter, so at
 * most `concurrency` requests are in flight across all of them.
 */
export function remoteContext(settings: RemoteSettings): RemoteContext {
  const key = JSON.stringify({ ...settings, fetch: settings.fetch ? fetchId(settings.fetch) : null });
  let ctx = contexts.get(key);
  if (!ctx) {
    ctx = {
      settings,
      limiter: new RequestLimiter(settings.concurrency),
      stats: { requests: 0, bytesReceived: 0, cacheHits: 0, corruptBlocks: 0 },
    };
    contexts.set(key, ctx);
  }
  return ctx;
}

const fetchIds = new WeakMap<object, number>();
let nextFetchId = 1;
function fetchId(f: object): number {
  let id = fetchIds.get(f);
  if (id === undefined) fetchIds.set(f, (id = nextFetchId++));
  return id;
}

export function isRemoteUrl(p: string): boolean {
  return /^https?:\/\//i.test(p);
}

// ---------------------------------------------------------------------------------------------
// requests

/** A failure worth another attempt (network error, timeout, 5xx, 429, cut body). */
export class Retryable extends Error {}
/** A range request was answered with the whole file: switch to whole-file mode. */
export class RangesIgnored extends Error {}

export interface Identity {
  size: number;
  etag: string | null;
  lastModified: string | null;
  /** true: 206 seen; false: the server ignores ranges; null: unknown yet. */
  ranges: boolean | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

function httpError(status: number, statusText: string): string {
  const what = status === 404 ? 'not found' : status === 403 ? 'access denied' : status === 401 ? 'authentication required' : status === 416 ? 'range not satisfiable' : 'request refused';
  return `${what} (HTTP ${status}${statusText ? ` ${statusText}` : ''})`;
}

export async function send(ctx: RemoteContext, url: string, init: RequestInit): Promise<TimedResponse> {
  const s = ctx.settings;
  ctx.stats.requests++;
  let t: TimedResponse;
  try {
    t = await timedFetch(s.fetch ?? globalThis.fetch, url, { ...init, headers: { 'Accept-Encoding': 'identity', ...(s.headers ?? {}), ...((init.headers as Record<string, string>) ?? {}) } }, s.timeoutMs, s.redirects ?? 'same_host');
  } catch (e) {
    if (e instanceof DataError) throw e; // a refused redirect: final, not a network error
    if (e instanceof RequestTimeout) throw new Retryable(e.message);
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Retryable(`network error: ${errText(e)}${cause?.code ? ` (${cause.code})` : cause?.message ? ` (${cause.message})` : ''}`);
  }
  const st = t.res.status;
  if (st >= 500 || st === 429 || st === 408) {
    await t.cancel();
    throw new Retryable(`HTTP ${st}${t.res.statusText ? ` ${t.res.statusText}` : ''}`);
  }
  if (st >= 400) {
    await t.cancel();
    throw new DataError(httpError(st, t.res.statusText), { file: url });
  }
  return t;
}

/** Runs `attempt` with retries and exponential backoff; DataErrors are final. */
export async function withRetries<T>(ctx: RemoteContext, url: string, what: string, attempt: () => Promise<T>, hdu?: () => string | number | undefined): Promise<T> {
  const { retries, backoffMs } = ctx.settings;
  let last: unknown;
  for (let k = 0; k <= retries; k++) {
    // exponential backoff, stretched by up to 25 % at random so that many clients do not retry in step
    if (k > 0) await sleep(backoffMs * 2 ** (k - 1) * (1 + 0.25 * Math.random()));
    try {
      return await attempt();
    } catch (e) {
      if (e instanceof DataError || e instanceof RangesIgnored) throw e;
      last = e;
    }
  }
  throw new DataError(`${what} failed after ${retries + 1} attempts: ${errText(last)}`, { file: url, hdu: hdu?.() });
}

export { MAX_REMOTE_BYTES };

/** Size and validators of a remote file: HEAD, else a GET of bytes 0-0. */
export async function probe(ctx: RemoteContext, url: string): Promise<Identity> {
  const id = await probeOnce(ctx, url);
  if (!Number.isSafeInteger(id.size) || id.size > MAX_REMOTE_BYTES) {
    throw new DataError(`the server claims a file of ${id.size} bytes, more than the ${MAX_REMOTE_BYTES} bytes (1 TiB) accepted: refused`, { file: url });
  }
  return id;
}

async function probeOnce(ctx: RemoteContext, url: string): Promise<Identity> {
  return withRetries(ctx, url, 'HEAD', () =>
    ctx.limiter.run(async () => {
      let head: TimedResponse | null = null;
      try {
        head = await send(ctx, url, { method: 'HEAD' });
      } catch (e) {
        // some servers (presigned GET URLs) refuse HEAD: fall back to a ranged GET
        if (!(e instanceof DataError && /HTTP 40[35]/.test(e.message))) throw e;
      }
      if (head) {
        await head.cancel();
        const h = head.res.headers;
        const len = h.get('content-length');
        if (len !== null && /^\d+$/.test(len) && !h.get('content-encoding')) {
          const ar = (h.get('accept-ranges') ?? '').toLowerCase();
          return { size: claimedSize(len, url), etag: h.get('etag'), lastModified: h.get('last-modified'), ranges: ar === 'none' ? false : null };
        }
      }
      const r = await send(ctx, url, { headers: { Range: 'bytes=0-0' } });
      await r.cancel();
      const h = r.res.headers;
      if (r.res.status === 206) {
        const m = /\/(\d+)\s*$/.exec(h.get('content-range') ?? '');
        if (m) return { size: claimedSize(m[1], url, 'Content-Range'), etag: h.get('etag'), lastModified: h.get('last-modified'), ranges: true };
      }
      const len = h.get('content-length');
      if (r.res.status === 200 && len !== null && /^\d+$/.test(len)) {
        return { size: claimedSize(len, url), etag: h.get('etag'), lastModified: h.get('last-modified'), ranges: false };
      }
      throw new DataError(`cannot determine the size of the remote file (HTTP ${r.res.status}, no Content-Length or Content-Range)`, { file: url });
    }),
  );
}
