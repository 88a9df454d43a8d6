/**
 * Hostile servers (issue 17 items 2, 8): redirects to another host or from https to http are refused
 * unless `remote.redirects` allows them, name both URLs, and are never retried as network errors;
 * a server claiming a 10^15-byte file (in a HEAD's Content-Length, a Content-Range total or a 200's
 * Content-Length) is a data error naming the URL, with and without the block cache, before any
 * cache file is made or body read. A local HTTP server (test/remote/server.ts) answers
 * /redirect/<status>/<Location> and /claim/<how>/<bytes>/<name>.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFits } from '../../engine/data/fits/index.ts';
import { openFits } from '../../platform/node/files.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { remoteSettings, type RemoteSettings } from '../../platform/node/remote-cache.ts';
import { startServer, type TestServer } from '../remote/server.ts';
import { asCli, errorCase, record } from './harness.ts';

const G = 'remote';
let server: TestServer;
let dir = '';
let other = ''; // the same server under another host name (localhost instead of 127.0.0.1)

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shine-hostile-remote-'));
  const fits = writeFits([{ kind: 'empty', cards: [['TELESCOP', 'EUCLID']] }, { name: 'SCI', data: new Float32Array(64).fill(1), shape: [8, 8] }]);
  server = await startServer(new Map([['a.fits', fits]]));
  other = server.base.replace('127.0.0.1', 'localhost');
});
afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function settings(over: Partial<RemoteSettings> = {}, cache = true): RemoteSettings {
  return { cacheDir: cache ? mkdtempSync(join(dir, 'c-')) : null, concurrency: 2, retries: 3, backoffMs: 1, timeoutMs: 5000, blockSize: 4096, maxRequestBytes: 1 << 20, ...over };
}
const redirect = (status: number, to: string) => `${server.base}/redirect/${status}/${encodeURIComponent(to)}`;
const hits = (prefix: string) => server.requests.filter((r) => r.includes(prefix)).length;

async function open(url: string, s: RemoteSettings): Promise<void> {
  const f = await openFits(url, { remote: s });
  expect(f.hdus.length).toBe(2);
  await f.close();
}

/** Bytes under a folder (the cache: nothing may be made for a refused file). */
function bytesUnder(d: string): number {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) n += e.isDirectory() ? bytesUnder(join(d, e.name)) : statSync(join(d, e.name)).size;
  return n;
}

describe('a server claiming a 10^15-byte file: a data error naming the URL', () => {
  const ways: Array<[how: string, what: string, header: string]> = [
    ['length', "a HEAD answering Content-Length: 10^15", 'Content-Length'],
    ['range', 'HEAD refused (405), a Content-Range total of 10^15', 'Content-Range'],
    ['whole', 'HEAD refused, a GET ignoring ranges with Content-Length: 10^15', 'Content-Length'],
  ];
  for (const [how, what, header] of ways) {
    for (const cache of [true, false]) {
      const id = `huge-claim-${how}${cache ? '' : '-uncached'}`;
      it(`${id}: ${what}`, async () => {
        server.reset();
        const url = `${server.base}/claim/${how}/1000000000000000/a.fits`;
        const s = settings({}, cache);
        await errorCase(G, id, `a server claiming a 10^15-byte file: ${what}${cache ? '' : ' (remote.cache: false)'}`, () => open(url, s),
          new RegExp(`${url.replace(/[.?*+^$[\]\\(){}|-]/g, '\\$&')}.*the server claims a file of 1000000000000000 bytes \\(${header}\\), more than the 1099511627776 bytes \\(1 TiB\\) accepted: refused`));
        expect(server.requests.length).toBeLessThanOrEqual(2); // HEAD (+ one GET): never retried
        if (s.cacheDir) expect(bytesUnder(s.cacheDir)).toBe(0); // no (sparse) cache file made
      });
    }
  }
  it('huge-claim-unsafe: a Content-Range total of 10^20 (beyond 2^53)', async () => {
    // (a Content-Length that large is refused by Node's HTTP parser itself: HPE_INVALID_CONTENT_LENGTH)
    server.reset();
    const url = `${server.base}/claim/range/100000000000000000000/a.fits`;
    await errorCase(G, 'huge-claim-unsafe', 'a server claiming a 10^20-byte file in a Content-Range total (not a safe integer)', () => open(url, settings()), /the server claims a file of 100000000000000000000 bytes \(Content-Range\)/);
  });
  it('an honest server on the same routes is read (the claim is the only fault)', async () => {
    server.reset();
    await open(`${server.base}/claim/length/${server.files.get('a.fits')!.length}/a.fits`, settings());
    await open(`${server.base}/claim/range/${server.files.get('a.fits')!.length}/a.fits`, settings({}, false));
  });
});

describe('redirects: refused unless remote.redirects allows them, never retried', () => {
  for (const cache of [true, false]) {
    const tag = cache ? '' : '-uncached';
    it(`redirect-other-host${tag}: to another host is refused naming both URLs, asked once`, async () => {
      server.reset();
      const url = redirect(302, `${other}/f/a.fits`);
      await errorCase(G, `redirect-other-host${tag}`, `a 302 to another host${cache ? '' : ' (remote.cache: false)'}`, () => open(url, settings({}, cache)),
        new RegExp(`redirect from ${url.replace(/[.?*+^$[\]\\(){}|-]/g, '\\$&')} to ${other.replace(/[.]/g, '\\.')}/f/a\\.fits refused: it goes to another host`));
      expect(hits('/redirect/')).toBe(1); // not retried
      expect(hits('GET /f/') + hits('HEAD /f/')).toBe(0); // the other host was never asked
    });
  }
  it('redirect-https-to-http: an https URL redirected to http is refused', async () => {
    // no TLS server here: a fetch that answers the https URL with a 301 to plain http
    let calls = 0;
    const fake: typeof fetch = async (input) => {
      calls++;
      const u = String(input);
      if (u.startsWith('https://')) return new Response(null, { status: 301, headers: { Location: `${server.base}/f/a.fits` } });
      return fetch(input);
    };
    await errorCase(G, 'redirect-https-to-http', 'a 301 from https to http on the same host', () => open('https://127.0.0.1/a.fits', settings({ fetch: fake, redirects: 'any_host' })),
      /redirect from https:\/\/127\.0\.0\.1\/a\.fits to http:\/\/127\.0\.0\.1:\d+\/f\/a\.fits refused: it goes from https to http/);
    expect(calls).toBe(1);
  });
  it('redirect-loop: a redirect to itself ends after 10 hops', async () => {
    server.reset();
    const self = `${server.base}/redirect/307/`;
    // each hop points to the next one; 12 nested levels
    let url = `${server.base}/f/a.fits`;
    for (let k = 0; k < 12; k++) url = `${self}${encodeURIComponent(url)}`;
    await errorCase(G, 'redirect-loop', 'a chain of 12 redirects', () => open(url, settings()), /more than 10 redirects/);
    expect(hits('/redirect/')).toBe(10);
  });
  it('redirect-no-location: a 302 without Location', async () => {
    const fake: typeof fetch = async () => new Response(null, { status: 302 });
    await errorCase(G, 'redirect-no-location', 'a 302 without a Location header', () => open('http://127.0.0.1/x.fits', settings({ fetch: fake })), /HTTP 302 redirect from http:\/\/127\.0\.0\.1\/x\.fits without a Location header/);
  });
  it('redirect-scheme: a redirect to file:///etc/passwd', async () => {
    server.reset();
    await errorCase(G, 'redirect-scheme', 'a 302 to file:///etc/passwd', () => open(redirect(302, 'file:///etc/passwd'), settings()), /to file:\/\/\/etc\/passwd refused: it leaves http\(s\) \(file:\)/);
  });
  it('redirect-config-bad: remote.redirects: yes', async () => {
    const p = join(dir, 'c-redirects.yaml');
    writeFileSync(p, 'remote:\n  redirects: yes\n');
    await errorCase(G, 'redirect-config-bad', 'remote.redirects: yes (not a policy)', async () => void (await loadConfig(p)), /c-redirects\.yaml: remote\.redirects: expected one of "same_host", "any_host", "any", got the string "yes"/);
  });

  it('redirect-same-host: a redirect on the same host is followed', async () => {
    record(G, 'redirect-same-host', 'a 302 to another path on the same host', 'handled');
    server.reset();
    const r = await asCli(() => open(redirect(302, `${server.base}/f/a.fits`), settings()));
    expect(r.code, r.stderr).toBe(0);
  });
  it('redirect-other-host-allowed: remote.redirects: any_host follows it', async () => {
    record(G, 'redirect-other-host-allowed', 'a 302 to another host with remote.redirects: any_host', 'handled');
    server.reset();
    const r = await asCli(() => open(redirect(302, `${other}/f/a.fits`), settings({ redirects: 'any_host' })));
    expect(r.code, r.stderr).toBe(0);
    expect(hits('/f/a.fits')).toBeGreaterThan(0);
  });
  it('the configuration field reaches the settings', async () => {
    const p = join(dir, 'c-any.yaml');
    writeFileSync(p, 'remote:\n  redirects: any_host\n');
    const c = await loadConfig(p);
    expect(remoteSettings(c.remote, dir).redirects).toBe('any_host');
    expect(remoteSettings({}, dir).redirects).toBe('same_host');
  });
});
