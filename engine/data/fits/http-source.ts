/**
 * HTTP(S) byte source using range requests (`Range: bytes=a-b`, answered with 206 Partial Content).
 * Uses the global `fetch` (Node ≥ 18, Deno, browsers).
 *
 * - size(): HEAD (Content-Length, Accept-Ranges); when HEAD is refused, a GET of bytes=0-0 and its
 *   Content-Range total.
 * - read(): GET with a Range header; a 206 whose body is shorter than asked (and not at the end of
 *   the file) is a truncated body and is retried.
 * - Retries with exponential backoff on network errors, 5xx, 429 and truncated bodies.
 * - A server that ignores ranges (200 with the whole body) works too: the whole file is downloaded
 *   once and served from memory (with a warning in `warnings`), since no random access is possible.
 * - `timeoutMs`: a request is aborted (and retried) when the server sends nothing for that long —
 *   no response headers, or no body bytes — so a hung server never hangs a run.
 * - `limiter`: a shared {@link RequestLimiter} bounds the requests in flight across every source
 *   that uses it.
 *
 * On Node, platform/node/remote-cache.ts layers a resumable disk cache over the same primitives.
 */
import { DataError } from '../../errors.ts';
import type { ByteSource } from './source.ts';

export interface HttpSourceOptions {
  /** Number of retries after the first attempt (default 4). */
  retries?: number;
  /** First backoff delay in ms, doubled each retry (default 250). */
  backoffMs?: number;
  /** Extra request headers (e.g. authorisation). */
  headers?: Record<string, string>;
  /** fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** Abort a request when nothing arrives for this many ms (default 60 000; 0: never). */
  timeoutMs?: number;
  /** Bounds the requests in flight (shared between sources); default: no bound. */
  limiter?: RequestLimiter;
  /** Which redirects are followed (default 'same_host'; see {@link RedirectPolicy}). */
  redirects?: RedirectPolicy;
}

/**
 * A counting semaphore: at most `max` tasks run at once; the others wait in FIFO order.
 * `peak` records the largest number seen in flight (diagnostics, tests).
 */
export class RequestLimiter {
  readonly max: number;
  inFlight = 0;
  peak = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`RequestLimiter: max must be an integer ≥ 1, got ${max}`);
    this.max = max;
  }
  async acquire(): Promise<void> {
    if (this.inFlight < this.max) {
      this.inFlight++;
    } else {
      // the slot is handed over by release() (inFlight unchanged)
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    if (this.inFlight > this.peak) this.peak = this.inFlight;
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}

/** The largest remote file accepted (1 TiB): a server claiming more is refused before any allocation. */
export const MAX_REMOTE_BYTES = 2 ** 40;

/**
 * The size a server claims (a Content-Length or a Content-Range total, as sent): a DataError naming
 * the URL when it is beyond {@link MAX_REMOTE_BYTES} (a 10^15-byte claim is refused before anything
 * is allocated, requested or cached).
 */
export function claimedSize(text: string, url: string, header = 'Content-Length'): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n > MAX_REMOTE_BYTES) {
    throw new DataError(`the server claims a file of ${text} bytes (${header}), more than the ${MAX_REMOTE_BYTES} bytes (1 TiB) accepted: refused`, { file: url });
  }
  return n;
}

/** Raised when a request is aborted because nothing arrived for `timeoutMs`. */
export class RequestTimeout extends Error {
  override name = 'RequestTimeout';
}

/**
 * One fetch with an idle timeout: the timer runs until the response headers arrive and is reset
 * by every body chunk read through `readBody`/`streamBody`. Call `done()` (or read or cancel the
 * body) to clear it.
 */
export interface TimedResponse {
  res: Response;
  /** Reads the body, calling onChunk for each piece; resolves at the end of the body. */
  streamBody(onChunk: (chunk: Uint8Array) => void | Promise<void>): Promise<void>;
  /** Reads the whole body into one array. */
  readBody(): Promise<Uint8Array>;
  /** Discards the body. */
  cancel(): Promise<void>;
}

/**
 * Which HTTP redirects are followed (`remote.redirects`): 'same_host' (default) follows only
 * redirects to the same host name, never from https to http; 'any_host' follows redirects to other
 * hosts too, never from https to http; 'any' follows every redirect. A refused redirect is a
 * {@link RedirectRefused} (a DataError: final, never retried) naming both URLs.
 */
export type RedirectPolicy = 'same_host' | 'any_host' | 'any';
export const REDIRECT_POLICIES: readonly RedirectPolicy[] = ['same_host', 'any_host', 'any'];
/** Most redirects followed for one request. */
export const MAX_REDIRECTS = 10;

/** A redirect the policy does not allow (or a redirect loop): final, not a network error. */
export class RedirectRefused extends DataError {
  override name = 'RedirectRefused';
}

/** Why `policy` refuses a redirect from `from` to `to` (null: allowed). */
export function redirectRefusal(from: URL, to: URL, policy: RedirectPolicy): string | null {
  if (to.protocol !== 'http:' && to.protocol !== 'https:') return `it leaves http(s) (${to.protocol})`;
  if (policy === 'any') return null;
  if (from.protocol === 'https:' && to.protocol === 'http:') return 'it goes from https to http (set remote.redirects: any to allow it)';
  if (policy === 'any_host') return null;
  if (from.hostname.toLowerCase() !== to.hostname.toLowerCase()) return `it goes to another host (set remote.redirects: any_host to allow it)`;
  return null;
}

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

export async function timedFetch(doFetch: typeof fetch, url: string, init: RequestInit, timeoutMs: number, redirects?: RedirectPolicy): Promise<TimedResponse> {
  if (!redirects) return timedFetchOnce(doFetch, url, init, timeoutMs);
  // redirects followed here, one hop at a time, each checked against the policy before it is requested
  let cur = url;
  for (let hop = 0; ; hop++) {
    const t = await timedFetchOnce(doFetch, cur, { ...init, redirect: 'manual' }, timeoutMs);
    const st = t.res.status;
    if (t.res.type === 'opaqueredirect') {
      // a browser hides manual redirects: follow them there, then check where the request ended
      await t.cancel();
      const f = await timedFetchOnce(doFetch, cur, { ...init, redirect: 'follow' }, timeoutMs);
      if (f.res.redirected && f.res.url) {
        const why = redirectRefusal(new URL(cur), new URL(f.res.url), redirects);
        if (why) {
          await f.cancel();
          throw new RedirectRefused(`redirect from ${url} to ${f.res.url} refused: ${why}`, { file: url });
        }
      }
      return f;
    }
    if (!REDIRECT_STATUS.has(st)) return t;
    const loc = t.res.headers.get('location');
    await t.cancel();
    if (!loc) throw new RedirectRefused(`HTTP ${st} redirect from ${cur} without a Location header`, { file: url });
    let next: URL;
    try {
      next = new URL(loc, cur);
    } catch {
      throw new RedirectRefused(`HTTP ${st} redirect from ${cur} to an invalid URL '${loc}'`, { file: url });
    }
    const why = redirectRefusal(new URL(cur), next, redirects);
    if (why) throw new RedirectRefused(`redirect from ${cur} to ${next.href} refused: ${why}`, { file: url });
    if (hop + 1 >= MAX_REDIRECTS) throw new RedirectRefused(`more than ${MAX_REDIRECTS} redirects (last from ${cur} to ${next.href})`, { file: url });
    cur = next.href;
  }
}

async function timedFetchOnce(doFetch: typeof fetch, url: string, init: RequestInit, timeoutMs: number): Promise<TimedResponse> {
  const ctl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    if (timer !== undefined) clearTimeout(timer);
    if (timeoutMs > 0) {
      timer = setTimeout(() => ctl.abort(new RequestTimeout(`no data from the server for ${timeoutMs / 1000} s (timeout)`)), timeoutMs);
    }
  };
  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  const reason = (e: unknown): Error => {
    if (ctl.signal.aborted && ctl.signal.reason instanceof RequestTimeout) return ctl.signal.reason;
    return e instanceof Error ? e : new Error(String(e));
  };
  arm();
  let res: Response;
  try {
    res = await doFetch(url, { ...init, signal: ctl.signal });
  } catch (e) {
    disarm();
    throw reason(e);
  }
  arm();
  const streamBody = async (onChunk: (chunk: Uint8Array) => void | Promise<void>) => {
    try {
      if (!res.body) return;
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        // the consumer's time (e.g. a disk write) does not count as server silence
        disarm();
        if (value && value.length) await onChunk(value);
        arm();
      }
    } catch (e) {
      throw reason(e);
    } finally {
      disarm();
    }
  };
  return {
    res,
    streamBody,
    async readBody() {
      const parts: Uint8Array[] = [];
      let n = 0;
      await streamBody((c) => {
        parts.push(c);
        n += c.length;
      });
      if (parts.length === 1) return parts[0];
      const out = new Uint8Array(n);
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    },
    async cancel() {
      disarm();
      await res.body?.cancel().catch(() => undefined);
    },
  };
}

class RetryableError extends Error {}

export function httpSource(url: string, options: HttpSourceOptions = {}): ByteSource & { warnings: string[] } {
  const retries = options.retries ?? 4;
  const backoff = options.backoffMs ?? 250;
  const doFetch = options.fetch ?? globalThis.fetch;
  const extra = options.headers ?? {};
  const timeoutMs = options.timeoutMs ?? 60_000;
  const limiter = options.limiter;
  const redirects = options.redirects ?? 'same_host';
  const warnings: string[] = [];
  let knownSize: number | undefined;
  let whole: Uint8Array | undefined; // when the server ignores ranges
  let closed = false;
  const file = url;

  async function withRetries<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let lastErr: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, backoff * 2 ** (attempt - 1)));
      try {
        return await fn();
      } catch (e) {
        if (e instanceof DataError) throw e;
        lastErr = e;
      }
    }
    const msg = lastErr instanceof Error ? lastErr.message : String(lastErr);
    throw new DataError(`${what} failed after ${retries + 1} attempts: ${msg}`, { file });
  }

  /** One request (under the limiter) whose body is read in full; bodies map to Response-like results. */
  async function request(init: RequestInit): Promise<{ status: number; headers: Headers; bytes: () => Uint8Array }> {
    const run = async () => {
      let t: TimedResponse;
      try {
        t = await timedFetch(doFetch, url, init, timeoutMs, redirects);
      } catch (e) {
        if (e instanceof DataError) throw e; // a refused redirect: final
        if (e instanceof RequestTimeout) throw new RetryableError(e.message);
        throw new RetryableError(`network error: ${(e as Error).message ?? String(e)}`);
      }
      const res = t.res;
      if (res.status >= 500 || res.status === 429) {
        await t.cancel();
        throw new RetryableError(`HTTP ${res.status}`);
      }
      if (res.status >= 400) {
        await t.cancel();
        throw new DataError(`HTTP ${res.status} ${res.statusText}`.trim(), { file });
      }
      let b: Uint8Array = new Uint8Array(0);
      if (init.method !== 'HEAD') {
        // a whole body is read into memory: refuse an absurd one before reading it
        const len = res.headers.get('content-length');
        if (res.status === 200 && len !== null && /^\d+$/.test(len)) {
          try {
            claimedSize(len, file);
          } catch (e) {
            await t.cancel();
            throw e;
          }
        }
        try {
          b = await t.readBody();
        } catch (e) {
          if (e instanceof RequestTimeout) throw new RetryableError(e.message);
          throw new RetryableError(`body interrupted: ${(e as Error).message ?? String(e)}`);
        }
      } else await t.cancel();
      return { status: res.status, headers: res.headers, bytes: () => b };
    };
    return limiter ? limiter.run(run) : run();
  }

  async function size(): Promise<number> {
    if (knownSize !== undefined) return knownSize;
    const s = await withRetries('HEAD', async () => {
      const res = await request({ method: 'HEAD', headers: extra }).catch((e) => {
        if (e instanceof DataError && /HTTP 40[35]/.test(e.message)) return null; // HEAD not allowed: try a range GET
        throw e;
      });
      const len = res?.headers.get('content-length');
      if (res && len !== null && len !== undefined && /^\d+$/.test(len) && res.headers.get('content-encoding') === null) {
        if ((res.headers.get('accept-ranges') ?? '').toLowerCase() !== 'bytes') {
          warnings.push('server does not advertise Accept-Ranges: bytes; range requests may be ignored');
        }
        return claimedSize(len, file);
      }
      const r = await request({ headers: { ...extra, Range: 'bytes=0-0' } });
      if (r.status === 206) {
        const cr = r.headers.get('content-range') ?? '';
        const m = /\/(\d+)\s*$/.exec(cr);
        if (m) return claimedSize(m[1], file, 'Content-Range');
        throw new DataError(`cannot determine the size (Content-Range '${cr}')`, { file });
      }
      whole = r.bytes();
      warnings.push('server ignores range requests: the whole file was downloaded');
      return whole.length;
    });
    knownSize = s;
    return s;
  }

  return {
    name: url,
    warnings,
    size,
    async read(offset, length) {
      if (closed) throw new DataError('read after close', { file });
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new DataError(`invalid byte range offset=${offset} length=${length}`, { file });
      }
      const total = await size();
      const end = Math.min(total, offset + length);
      if (end <= offset) return new Uint8Array(0);
      if (whole) return whole.slice(offset, end);
      return withRetries(`GET bytes ${offset}-${end - 1}`, async () => {
        const res = await request({ headers: { ...extra, Range: `bytes=${offset}-${end - 1}` } });
        const b = res.bytes();
        if (res.status === 200) {
          // range ignored: the full body came back
          if (b.length !== total) throw new RetryableError(`truncated body (${b.length} of ${total} bytes)`);
          whole = b;
          warnings.push('server ignores range requests: the whole file was downloaded');
          return b.slice(offset, end);
        }
        if (res.status !== 206) throw new DataError(`unexpected HTTP status ${res.status} for a range request`, { file });
        const cr = res.headers.get('content-range');
        if (cr) {
          const m = /bytes\s+(\d+)-(\d+)\//.exec(cr);
          if (m && Number(m[1]) !== offset) throw new RetryableError(`server returned range ${cr} for bytes ${offset}-${end - 1}`);
        }
        if (b.length < end - offset) throw new RetryableError(`truncated body (${b.length} of ${end - offset} bytes)`);
        return b.length === end - offset ? b : b.slice(0, end - offset);
      });
    },
    async close() {
      closed = true;
      whole = undefined;
    },
  };
}
