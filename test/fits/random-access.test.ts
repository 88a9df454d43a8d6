/**
 * Random access: reading one named HDU of a multi-extension file reads the header blocks (the scan)
 * and that HDU's data only — never the other HDUs' data. Checked by counting the bytes read through
 * a wrapper, for a local file (Node file handle) and over HTTP range requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FitsFile, countingSource, httpSource, writeFits, type HduSpec, type HduInfo, type ReadStats } from '../../engine/data/fits/index.ts';
import { openFileSource, writeFileAtomic } from '../../platform/node/files.ts';
import { tempDir } from './helpers.ts';

const W = 128;
const H = 96;
let path = '';
let bytes: Uint8Array;

function pixel(ext: number, i: number): number {
  return ext * 1000 + (i % 997) * 0.5;
}

beforeAll(async () => {
  const hdus: HduSpec[] = [{ kind: 'empty', cards: [['TELESCOP', 'EUCLID']] }];
  for (const q of ['1-1.E', '1-1.F', '2-3.G', '6-6.H']) {
    for (const kind of ['SCI', 'RMS']) {
      const ext = hdus.length;
      const cards: Array<[string, string | number]> = [['GAIN', 3.48]];
      // long headers for some HDUs so that headers span several blocks
      if (ext % 3 === 0) for (let k = 0; k < 80; k++) cards.push([`PV1_${k}`, k * 1e-3]);
      hdus.push({ name: `${q}.${kind}`, data: Float32Array.from({ length: W * H }, (_, i) => pixel(ext, i)), shape: [W, H], cards });
    }
  }
  hdus.push({ kind: 'bintable', name: 'CAT', columns: [{ name: 'X', data: Float64Array.from({ length: 5000 }, (_, i) => i / 3) }] });
  hdus.push({ name: 'FLG', data: Int32Array.from({ length: W * H }, (_, i) => i), shape: [W, H] });
  bytes = writeFits(hdus);
  path = join(tempDir(), 'multi.fits');
  await writeFileAtomic(path, bytes);
});

function inHeader(hdus: readonly HduInfo[], off: number, len: number): boolean {
  return hdus.some((h) => off >= h.headerOffset && off + len <= h.dataOffset);
}

function checkAccess(f: FitsFile, stats: ReadStats, scanReads: number, target: string) {
  const hdus = f.hdus;
  expect(hdus.length).toBe(11);
  // the scan read header bytes only
  for (const [off, len] of stats.ranges.slice(0, scanReads)) expect(inHeader(hdus, off, len), `scan read ${off}+${len}`).toBe(true);
  const headerBytes = hdus.reduce((a, h) => a + h.headerSize, 0);
  const scanBytes = stats.ranges.slice(0, scanReads).reduce((a, r) => a + r[1], 0);
  expect(scanBytes).toBeLessThanOrEqual(headerBytes + 80 * hdus.length); // + the 80-byte XTENSION probes
  // after the scan: exactly the target's data
  const t = f.hdu(target);
  expect(stats.ranges.slice(scanReads)).toEqual([[t.dataOffset, t.dataSize]]);
  const total = bytes.length;
  expect(stats.bytes).toBeLessThan(total / 5);
}

describe('random access', () => {
  it('local file: reads the headers and the named HDU data only', async () => {
    const src = countingSource(await openFileSource(path));
    const f = await FitsFile.open(src);
    const scanReads = src.stats.calls;
    const img = await f.readImageFloat32('2-3.G.RMS');
    const ext = f.hdu('2-3.G.RMS').index;
    expect(img.width).toBe(W);
    expect(img.height).toBe(H);
    for (const i of [0, 1, 5000, W * H - 1]) expect(img.data[i]).toBe(Math.fround(pixel(ext, i)));
    checkAccess(f, src.stats, scanReads, '2-3.G.RMS');
    expect(f.header('1-1.F.SCI').getNumber('PV1_79')).toBe(0.079);
    await f.close();
  });

  it('local file: a table reads only its rows', async () => {
    const src = countingSource(await openFileSource(path));
    const f = await FitsFile.open(src);
    const scanReads = src.stats.calls;
    const t = await f.readTable('CAT');
    expect(t.column('X').data[4999]).toBe(4999 / 3);
    checkAccess(f, src.stats, scanReads, 'CAT');
    await f.close();
  });
});

describe('HTTP range requests', () => {
  let server: Server;
  let base = '';
  let served = 0;
  let requests: string[] = [];
  let failNext = 0; // respond 503 to this many requests
  let truncateNext = 0; // send half the body for this many requests
  let ignoreRanges = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      requests.push(`${req.method} ${req.headers.range ?? ''}`);
      if (req.url === '/missing.fits') {
        res.writeHead(404).end();
        return;
      }
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end();
        return;
      }
      const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'Content-Length': body.length, ...(ignoreRanges ? {} : { 'Accept-Ranges': 'bytes' }) }).end();
        return;
      }
      if (!range || ignoreRanges) {
        served += body.length;
        res.writeHead(200, { 'Content-Length': body.length }).end(body);
        return;
      }
      const a = Number(range[1]);
      const b = Math.min(Number(range[2]), body.length - 1);
      const chunk = body.subarray(a, b + 1);
      if (truncateNext > 0) {
        truncateNext--;
        // announce the full length, send half, then drop the connection
        res.writeHead(206, { 'Content-Range': `bytes ${a}-${b}/${body.length}`, 'Content-Length': chunk.length });
        res.write(chunk.subarray(0, chunk.length >> 1));
        res.destroy();
        return;
      }
      served += chunk.length;
      res.writeHead(206, { 'Content-Range': `bytes ${a}-${b}/${body.length}`, 'Content-Length': chunk.length }).end(chunk);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it('reads the headers and the named HDU only', async () => {
    served = 0;
    requests = [];
    const src = countingSource(httpSource(`${base}/multi.fits`, { backoffMs: 1 }));
    const f = await FitsFile.open(src);
    const scanReads = src.stats.calls;
    const img = await f.readImage('6-6.H.SCI');
    const ext = f.hdu('6-6.H.SCI').index;
    expect((img.data as Float32Array)[123]).toBe(Math.fround(pixel(ext, 123)));
    checkAccess(f, src.stats, scanReads, '6-6.H.SCI');
    expect(served).toBe(src.stats.bytes); // the server sent no more than we asked for
    expect(requests.every((r) => r.startsWith('HEAD') || r.startsWith('GET bytes='))).toBe(true);
  });

  it('retries 5xx and truncated bodies with backoff', async () => {
    const f = await FitsFile.open(httpSource(`${base}/multi.fits`, { backoffMs: 1 }));
    failNext = 2;
    truncateNext = 1;
    const img = await f.readImage('1-1.E.RMS');
    const ext = f.hdu('1-1.E.RMS').index;
    expect((img.data as Float32Array)[W * H - 1]).toBe(Math.fround(pixel(ext, W * H - 1)));
    failNext = 100;
    await expect(f.readImage('1-1.E.SCI')).rejects.toThrow(/multi\.fits.*failed after 5 attempts: HTTP 503/);
    failNext = 0;
  });

  it('fails fast with a clear error on 404', async () => {
    await expect(FitsFile.open(httpSource(`${base}/missing.fits`, { backoffMs: 1 }))).rejects.toThrow(/missing\.fits.*HTTP 404/);
  });

  it('a server that ignores ranges still works (whole file downloaded once)', async () => {
    ignoreRanges = true;
    try {
      const src = httpSource(`${base}/multi.fits`, { backoffMs: 1 });
      const f = await FitsFile.open(src);
      const t = await f.readTable('CAT');
      expect(t.column('X').data[3]).toBe(1);
      expect(src.warnings.join(' ')).toMatch(/ignores range requests/);
    } finally {
      ignoreRanges = false;
    }
  });

  it('network errors (connection refused) are retried, then reported', async () => {
    await expect(FitsFile.open(httpSource('http://127.0.0.1:1/x.fits', { retries: 1, backoffMs: 1 }))).rejects.toThrow(
      /x\.fits.*failed after 2 attempts: network error/,
    );
  });
});

describe('file source', () => {
  it('reads exactly what is asked, and short at the end of the file', async () => {
    const src = await openFileSource(path);
    const size = await src.size();
    expect(size).toBe(readFileSync(path).length);
    expect(Array.from(await src.read(size - 3, 10))).toEqual(Array.from(bytes.subarray(size - 3)));
    expect((await src.read(size + 10, 5)).length).toBe(0);
    await src.close();
  });
});
