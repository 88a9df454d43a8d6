/**
 * A local HTTP file server for the remote-data tests (node:http on 127.0.0.1, random port) with
 * fault injection and server-side accounting (body bytes sent, requests, requests in flight).
 *
 * Routes: /f/<name> (ranges honoured), /norange/<name> (Range ignored: 200 with the whole body,
 * no Accept-Ranges), /hang/<name> (never answers), /html/<name> (200 with an HTML page),
 * /redirect/<status>/<url-encoded Location> (a redirect), /claim/<how>/<bytes>/<name> (a server lying
 * about the size: how = 'length': HEAD answers Content-Length <bytes>; 'range': HEAD refused (405),
 * ranged GETs answer Content-Range totals of <bytes>; 'whole': HEAD refused, GETs ignore ranges and
 * answer 200 with Content-Length <bytes>, send the real body and drop the connection), anything
 * else 404.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface Faults {
  /** Answer this many GET/HEAD requests with 503 (then serve normally). */
  fail503: number;
  /** Send half of the body of this many ranged GETs, then drop the connection. */
  truncate: number;
  /** Send half of the body of this many ranged GETs, then stall (connection left open, no more bytes). */
  stall: number;
  /** Drop the connection once this many more body bytes have been sent (counted over all responses; one cut); null: off. */
  cutAfterBytes: number | null;
  /** Once a cut happened, destroy every later request at once (a dead server). */
  deadAfterCut: boolean;
  /** Delay before each GET answer (ms), to make requests overlap. */
  delayMs: number;
}

export interface TestServer {
  base: string;
  files: Map<string, Uint8Array>;
  faults: Faults;
  /** Body bytes sent (what the client received), per route kind. */
  bytesSent: number;
  requests: string[];
  inFlight: number;
  maxInFlight: number;
  dead: boolean;
  reset(): void;
  close(): Promise<void>;
}

export async function startServer(files: Map<string, Uint8Array>): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const st: TestServer = {
    base: '',
    files,
    faults: { fail503: 0, truncate: 0, stall: 0, cutAfterBytes: null, deadAfterCut: false, delayMs: 0 },
    bytesSent: 0,
    requests: [],
    inFlight: 0,
    maxInFlight: 0,
    dead: false,
    reset() {
      st.faults = { fail503: 0, truncate: 0, stall: 0, cutAfterBytes: null, deadAfterCut: false, delayMs: 0 };
      st.bytesSent = 0;
      st.requests = [];
      st.maxInFlight = 0;
      st.dead = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };

  /** Writes `body` honouring the cut budget; returns false when the connection was dropped. */
  const send = (res: ServerResponse, body: Uint8Array): void => {
    const f = st.faults;
    if (f.cutAfterBytes !== null && body.length > f.cutAfterBytes) {
      const n = f.cutAfterBytes;
      f.cutAfterBytes = null; // one cut
      st.bytesSent += n;
      res.write(Buffer.from(body.buffer, body.byteOffset, n), () => {
        if (f.deadAfterCut) st.dead = true;
        res.destroy();
      });
      return;
    }
    if (f.cutAfterBytes !== null) f.cutAfterBytes -= body.length;
    st.bytesSent += body.length;
    res.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    st.requests.push(`${req.method} ${url} ${req.headers.range ?? ''}`.trim());
    if (st.dead) {
      res.destroy();
      return;
    }
    // /redirect/<status>/<url-encoded Location>: a redirect to anywhere
    const rd = /^\/redirect\/(\d{3})\/(.+)$/.exec(url);
    if (rd) {
      res.writeHead(Number(rd[1]), { Location: decodeURIComponent(rd[2]), 'Content-Length': 0 }).end();
      return;
    }
    // /claim/<how>/<bytes>/<name>: the size claimed is a lie
    const cl = /^\/claim\/(length|range|whole)\/(\d+)\/([^?]+)$/.exec(url);
    if (cl) {
      const [, how, claim, name] = cl;
      const data = files.get(name);
      if (!data) return void res.writeHead(404).end();
      if (req.method === 'HEAD') {
        if (how === 'length') res.writeHead(200, { 'Content-Length': claim, 'Accept-Ranges': 'bytes' }).end();
        else res.writeHead(405).end();
        return;
      }
      const rg = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (how === 'whole' || !rg) {
        res.writeHead(200, { 'Content-Length': claim });
        st.bytesSent += data.length;
        res.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength), () => res.destroy());
        return;
      }
      const a = Number(rg[1]);
      const b = Math.min(rg[2] === '' ? data.length - 1 : Number(rg[2]), data.length - 1);
      const chunk = data.subarray(a, b + 1);
      res.writeHead(206, { 'Content-Range': `bytes ${a}-${b}/${claim}`, 'Content-Length': chunk.length, 'Accept-Ranges': 'bytes' });
      return void send(res, chunk);
    }
    const m = /^\/(f|norange|hang|html)\/([^?]+)/.exec(url);
    const kind = m?.[1];
    const body = m ? files.get(m[2]) : undefined;
    if (kind === 'hang') return; // never answer
    if (kind === 'html') {
      const page = new TextEncoder().encode('<html><body><h1>Sign in</h1>please log in to continue</body></html>\n'.repeat(40));
      res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Length': page.length });
      if (req.method === 'HEAD') return void res.end();
      return void send(res, page);
    }
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    if (st.faults.fail503 > 0) {
      st.faults.fail503--;
      res.writeHead(503, { 'Content-Type': 'text/plain' }).end('slow down');
      return;
    }
    const common = { ETag: '"v1"', 'Last-Modified': 'Mon, 02 Nov 2026 10:00:00 GMT', ...(kind === 'f' ? { 'Accept-Ranges': 'bytes' } : {}) };
    if (req.method === 'HEAD') {
      res.writeHead(200, { ...common, 'Content-Length': body.length }).end();
      return;
    }
    if (st.faults.delayMs) await new Promise((r) => setTimeout(r, st.faults.delayMs));
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!range || kind === 'norange') {
      res.writeHead(200, { ...common, 'Content-Length': body.length });
      return void send(res, body);
    }
    const a = Number(range[1]);
    const b = Math.min(range[2] === '' ? body.length - 1 : Number(range[2]), body.length - 1);
    if (a >= body.length || b < a) {
      res.writeHead(416, { 'Content-Range': `bytes */${body.length}` }).end();
      return;
    }
    const chunk = body.subarray(a, b + 1);
    res.writeHead(206, { ...common, 'Content-Range': `bytes ${a}-${b}/${body.length}`, 'Content-Length': chunk.length });
    if (st.faults.stall > 0) {
      st.faults.stall--;
      const half = chunk.length >> 1;
      st.bytesSent += half;
      res.write(Buffer.from(chunk.buffer, chunk.byteOffset, half)); // …and nothing more
      return;
    }
    if (st.faults.truncate > 0) {
      st.faults.truncate--;
      const half = chunk.length >> 1;
      st.bytesSent += half;
      res.write(Buffer.from(chunk.buffer, chunk.byteOffset, half), () => res.destroy());
      return;
    }
    send(res, chunk);
  };

  const server: Server = createServer((req, res) => {
    st.inFlight++;
    st.maxInFlight = Math.max(st.maxInFlight, st.inFlight);
    let done = false;
    const fin = () => {
      if (!done) {
        done = true;
        st.inFlight--;
      }
    };
    res.on('close', fin);
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  st.base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return st;
}
