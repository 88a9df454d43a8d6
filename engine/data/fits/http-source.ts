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
}

class RetryableError extends Error {}

export function httpSource(url: string, options: HttpSourceOptions = {}): ByteSource & { warnings: string[] } {
  const retries = options.retries ?? 4;
  const backoff = options.backoffMs ?? 250;
  const doFetch = options.fetch ?? globalThis.fetch;
  const extra = options.headers ?? {};
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

  async function request(init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await doFetch(url, init);
    } catch (e) {
      throw new RetryableError(`network error: ${(e as Error).message ?? String(e)}`);
    }
    if (res.status >= 500 || res.status === 429) {
      await res.body?.cancel().catch(() => undefined);
      throw new RetryableError(`HTTP ${res.status}`);
    }
    if (res.status >= 400) {
      await res.body?.cancel().catch(() => undefined);
      throw new DataError(`HTTP ${res.status} ${res.statusText}`.trim(), { file });
    }
    return res;
  }

  async function body(res: Response): Promise<Uint8Array> {
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      throw new RetryableError(`body interrupted: ${(e as Error).message ?? String(e)}`);
    }
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
        return Number(len);
      }
      const r = await request({ headers: { ...extra, Range: 'bytes=0-0' } });
      if (r.status === 206) {
        const cr = r.headers.get('content-range') ?? '';
        await r.body?.cancel().catch(() => undefined);
        const m = /\/(\d+)\s*$/.exec(cr);
        if (m) return Number(m[1]);
        throw new DataError(`cannot determine the size (Content-Range '${cr}')`, { file });
      }
      whole = await body(r);
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
        const b = await body(res);
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
