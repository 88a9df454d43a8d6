/**
 * Remote FITS over HTTP through the block cache (platform/node/remote-cache.ts), against a local
 * server with fault injection (./server.ts). Oracles: the local file read directly (bytes and
 * pixels), astropy for one pixel and one keyword, and the server's own accounting (body bytes
 * sent, requests, the most requests in flight).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, truncateSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FitsFile, countingSource, writeFits, type HduSpec } from '../../engine/data/fits/index.ts';
import { openFileSource, openFits, writeFileAtomic } from '../../platform/node/files.ts';
import { cacheEntryDir, remoteContext, remoteSettings, type RemoteSettings } from '../../platform/node/remote-cache.ts';
import { startServer, type TestServer } from './server.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const W = 400;
const H = 300;
const QUADS = ['1-1.E', '1-1.F', '1-1.G', '1-1.H', '2-3.E', '2-3.F', '2-3.G', '2-3.H'];
const BLOCK = 8192;

let server: TestServer;
let localPath = '';
let local: Uint8Array;
let small: Uint8Array;

function pix(ext: number, i: number): number {
  return ext * 1000 + ((i * 7919) % 10007) * 0.25 - 300;
}

function tmp(prefix = 'shine-remote-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Test settings: a fresh cache folder each time unless given. */
function settings(over: Partial<RemoteSettings> = {}, cacheDir: string | null = tmp()): RemoteSettings {
  return { cacheDir, concurrency: 4, retries: 3, backoffMs: 1, timeoutMs: 5000, blockSize: BLOCK, maxRequestBytes: 1 << 20, ...over };
}

function python(): string {
  if (process.env.SHINE_PYTHON) return process.env.SHINE_PYTHON;
  return '/usr/bin/python3';
}

beforeAll(async () => {
  const hdus: HduSpec[] = [{ kind: 'empty', cards: [['TELESCOP', 'EUCLID']] }];
  for (const q of QUADS) {
    for (const kind of ['SCI', 'RMS', 'FLG']) {
      const ext = hdus.length;
      const cards: Array<[string, string | number]> = [['GAIN', 3.48 + ext / 100], ['EXPTIME', 560.52]];
      for (let k = 0; k < 30; k++) cards.push([`PV1_${k}`, k * 1e-3]);
      if (kind === 'FLG') hdus.push({ name: `${q}.${kind}`, data: Int32Array.from({ length: W * H }, (_, i) => (i * 31) & 0xffff), shape: [W, H], cards });
      else hdus.push({ name: `${q}.${kind}`, data: Float32Array.from({ length: W * H }, (_, i) => pix(ext, i)), shape: [W, H], cards });
    }
  }
  hdus.push({ kind: 'bintable', name: 'CAT', columns: [{ name: 'X', data: Float64Array.from({ length: 3000 }, (_, i) => i / 3) }] });
  local = writeFits(hdus);
  small = writeFits([{ kind: 'empty', cards: [] }, { name: 'A', data: Float32Array.from({ length: 64 * 64 }, (_, i) => i), shape: [64, 64] }]);
  localPath = join(tmp(), 'det.fits');
  await writeFileAtomic(localPath, local);
  const files = new Map<string, Uint8Array>([['det.fits', local], ['small.fits', small]]);
  for (let k = 0; k < 3; k++) files.set(`copy${k}.fits`, local);
  server = await startServer(files);
});

afterAll(async () => {
  await server?.close();
});

/** The raw bytes of an HDU's data in the local file. */
async function localHdu(name: string) {
  const f = await openFits(localPath);
  const info = f.hdu(name);
  const img = await f.readImage(name);
  const hdus = f.hdus;
  await f.close();
  return { info, img, hdus, raw: local.subarray(info.dataOffset, info.dataOffset + info.dataSize) };
}

describe('remote FITS through the block cache', () => {
  it('one quadrant HDU: identical bytes and pixels, a small fraction of the file fetched', async () => {
    server.reset();
    const s = settings();
    const url = `${server.base}/f/det.fits`;
    const f = await openFits(url, { remote: s });
    const name = '2-3.F.SCI';
    const img = await f.readImage(name);
    const raw = await f.readDataBytes(name);
    await f.close();
    const ref = await localHdu(name);
    expect(f.hdus.map((h) => [h.name, h.dataOffset, h.dataSize])).toEqual(ref.hdus.map((h) => [h.name, h.dataOffset, h.dataSize]));
    expect(Buffer.compare(Buffer.from(raw), Buffer.from(ref.raw))).toBe(0);
    expect(Array.from(img.data as Float32Array)).toEqual(Array.from(ref.img.data as Float32Array));
    // the server sent the headers (one block per HDU at most twice) and this HDU's data, not the file
    expect(server.bytesSent).toBeGreaterThanOrEqual(ref.info.dataSize);
    expect(server.bytesSent).toBeLessThan(local.length / 10);
    expect(server.requests.some((r) => /^GET .* bytes=/.test(r))).toBe(true);
    expect(server.requests.every((r) => /^(HEAD \S+|GET \S+ bytes=\d+-\d+)$/.test(r))).toBe(true);

    // astropy reads the same pixel and keyword from the local file
    const x = 123;
    const y = 201;
    const out = JSON.parse(execFileSync(python(), [join(HERE, '..', 'fixtures', 'remote', 'pixel.py'), localPath, name, String(x), String(y), 'GAIN'], { encoding: 'utf8' }));
    expect((img.data as Float32Array)[y * W + x]).toBe(out.value);
    expect(f.header(name).getNumber('GAIN')).toBeCloseTo(out.key, 12);

    // a second open reads everything from the cache: no body bytes, only the HEAD revalidation
    server.reset();
    const g = await openFits(url, { remote: s });
    const img2 = await g.readImage(name);
    await g.close();
    expect(Array.from(img2.data as Float32Array)).toEqual(Array.from(ref.img.data as Float32Array));
    expect(server.bytesSent).toBe(0);
    expect(server.requests).toEqual([`HEAD /f/det.fits`]);
    // the sparse cache file holds the remote size; the index lists only some blocks
    const dir = cacheEntryDir(s.cacheDir!, url);
    const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    expect(idx.size).toBe(local.length);
    expect(idx.blocks.length).toBeLessThan(Math.ceil(local.length / BLOCK) / 5);
  });

  it('whole file read through the cache equals the local file', async () => {
    server.reset();
    const s = settings({ maxRequestBytes: 3 * BLOCK });
    const f = await openFits(`${server.base}/f/copy0.fits`, { remote: s });
    const all = await f.source.read(0, local.length + 100);
    await f.close();
    expect(all.length).toBe(local.length);
    expect(Buffer.compare(Buffer.from(all), Buffer.from(local))).toBe(0);
    // every byte once (no block fetched twice)
    expect(server.bytesSent).toBe(local.length);
  });

  it('a download cut midway resumes: the re-run fetches only the missing blocks', async () => {
    server.reset();
    const cacheDir = tmp();
    const url = `${server.base}/f/det.fits`;
    const name = '1-1.G.RMS';
    const ref = await localHdu(name);
    const f = await openFits(url, { remote: settings({ retries: 0 }, cacheDir) });
    // the data of the HDU spans many blocks: cut the connection after ~40% of it, server then dead
    const sentBefore = server.bytesSent;
    server.faults.cutAfterBytes = Math.floor(ref.info.dataSize * 0.4);
    server.faults.deadAfterCut = true;
    await expect(f.readImage(name)).rejects.toThrow(new RegExp(`file ${url.replace(/[.]/g, '\\.')}, HDU \\d+ \\(${name.replace(/[.]/g, '\\.')}\\): GET bytes .*failed after 1 attempts`));
    await f.close();
    const firstRun = server.bytesSent - sentBefore;
    expect(firstRun).toBe(Math.floor(ref.info.dataSize * 0.4));

    // "restart" the server and re-run (a new open reads the index from disk)
    server.reset();
    const g = await openFits(url, { remote: settings({ retries: 0 }, cacheDir) });
    expect(server.bytesSent).toBe(0); // headers came from the cache
    const img = await g.readImage(name);
    await g.close();
    expect(Array.from(img.data as Float32Array)).toEqual(Array.from(ref.img.data as Float32Array));
    // blocks needed by the HDU data
    const k0 = Math.floor(ref.info.dataOffset / BLOCK);
    const k1 = Math.floor((ref.info.dataOffset + ref.info.dataSize - 1) / BLOCK);
    const spanBytes = Math.min(local.length, (k1 + 1) * BLOCK) - k0 * BLOCK;
    // the first run committed every complete block it received (the first block may be shared with the header)
    const firstStart = Math.max(k0 * BLOCK, 0);
    const committed = Math.floor((firstRun - (firstStart - k0 * BLOCK)) / BLOCK) * BLOCK;
    expect(server.bytesSent).toBeGreaterThan(0);
    expect(server.bytesSent).toBeLessThanOrEqual(spanBytes - committed + BLOCK);
    expect(server.bytesSent + firstRun).toBeLessThan(spanBytes + 2 * BLOCK);
  });

  it('retries 503s and truncated bodies with exponential backoff', async () => {
    server.reset();
    const s = settings({ retries: 4, backoffMs: 40 });
    const f = await openFits(`${server.base}/f/det.fits`, { remote: s });
    const name = '1-1.E.SCI';
    const ref = await localHdu(name);
    server.faults.fail503 = 2;
    server.faults.truncate = 1;
    const t0 = performance.now();
    const img = await f.readImage(name);
    const dt = performance.now() - t0;
    expect(Array.from(img.data as Float32Array)).toEqual(Array.from(ref.img.data as Float32Array));
    // three failed attempts → waits of 40, 80 and 160 ms
    expect(dt).toBeGreaterThanOrEqual(40 + 80 + 160 - 5);
    server.faults.fail503 = 100;
    await expect(f.readImage('2-3.H.SCI')).rejects.toThrow(/det\.fits, HDU \d+ \(2-3\.H\.SCI\): GET bytes \d+-\d+ failed after 5 attempts: HTTP 503/);
    server.faults.fail503 = 0;
    await f.close();
  });

  it('a corrupt cache block, a corrupt index and a truncated data file are detected and refetched', async () => {
    server.reset();
    const cacheDir = tmp();
    const url = `${server.base}/f/copy1.fits`;
    const name = '2-3.G.FLG';
    const ref = await localHdu(name);
    const read = async () => {
      const f = await openFits(url, { remote: settings({}, cacheDir) });
      const img = await f.readImage(name);
      await f.close();
      expect(Array.from(img.data as Int32Array)).toEqual(Array.from(ref.img.data as Int32Array));
    };
    await read();
    const dir = cacheEntryDir(cacheDir, url);
    expect(readdirSync(dir).sort()).toEqual(['data', 'index.json']);

    // flip one byte in the middle of the HDU's data in the cache file
    const at = ref.info.dataOffset + (ref.info.dataSize >> 1);
    const fd = openSync(join(dir, 'data'), 'r+');
    writeSync(fd, Buffer.from([local[at] ^ 0xff]), 0, 1, at);
    closeSync(fd);
    server.reset();
    await read();
    expect(server.bytesSent).toBe(BLOCK); // just the corrupt block

    // garbage index: the entry is rebuilt from the server
    writeFileSync(join(dir, 'index.json'), '{"version": 1, "url": ');
    server.reset();
    await read();
    expect(server.bytesSent).toBeGreaterThanOrEqual(ref.info.dataSize);

    // the data file cut short (e.g. a full disk): the blocks past its end are refetched
    truncateSync(join(dir, 'data'), ref.info.dataOffset + 3 * BLOCK);
    server.reset();
    await read();
    // blocks the re-run touches (every header, this HDU's data) that lie past the cut
    const cut = ref.info.dataOffset + 3 * BLOCK;
    const touched = new Set<number>();
    const touch = (a: number, b: number) => {
      for (let k = Math.floor(a / BLOCK); k <= Math.floor((b - 1) / BLOCK); k++) touched.add(k);
    };
    // what the FITS reader asks for, recorded on the local file
    const counted = countingSource(await openFileSource(localPath));
    const lf = await FitsFile.open(counted);
    await lf.readImage(name);
    await lf.close();
    for (const [off, len] of counted.stats.ranges) if (len > 0) touch(off, off + len);
    const lostBlocks = [...touched].filter((k) => (k + 1) * BLOCK > cut);
    const lost = lostBlocks.reduce((a, k) => a + Math.min(local.length, (k + 1) * BLOCK) - k * BLOCK, 0);
    expect(server.bytesSent).toBe(lost);
  });

  it('a changed remote file (ETag) invalidates its cache entry', async () => {
    server.reset();
    const cacheDir = tmp();
    const url = `${server.base}/f/small.fits`;
    const a = await openFits(url, { remote: settings({}, cacheDir) });
    const before = await a.readImage('A');
    await a.close();
    expect((before.data as Float32Array)[5]).toBe(5);
    // a new version of the file: same size, other pixels, other ETag
    const changed = writeFits([{ kind: 'empty', cards: [] }, { name: 'A', data: Float32Array.from({ length: 64 * 64 }, (_, i) => -i), shape: [64, 64] }]);
    expect(changed.length).toBe(small.length);
    const dir = cacheEntryDir(cacheDir, url);
    const idx = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
    idx.etag = '"v0"'; // the cache recorded an older version
    writeFileSync(join(dir, 'index.json'), JSON.stringify(idx));
    server.files.set('small.fits', changed);
    try {
      const b = await openFits(url, { remote: settings({}, cacheDir) });
      const after = await b.readImage('A');
      await b.close();
      expect((after.data as Float32Array)[5]).toBe(-5);
    } finally {
      server.files.set('small.fits', small);
    }
  });

  it('a server that ignores Range: one whole-file download, streamed into the cache', async () => {
    server.reset();
    const s = settings();
    const url = `${server.base}/norange/det.fits`;
    const f = await openFits(url, { remote: s });
    const name = '2-3.E.RMS';
    const img = await f.readImage(name);
    const t = await f.readTable('CAT');
    await f.close();
    const ref = await localHdu(name);
    expect(Array.from(img.data as Float32Array)).toEqual(Array.from(ref.img.data as Float32Array));
    expect(t.column('X').data[2999]).toBe(2999 / 3);
    // the whole body exactly once (the first ranged request's 200 answer is kept)
    expect(server.bytesSent).toBe(local.length);
    const idx = JSON.parse(readFileSync(join(cacheEntryDir(s.cacheDir!, url), 'index.json'), 'utf8'));
    expect(idx.ranges).toBe(false);
    expect(idx.blocks.length).toBe(Math.ceil(local.length / BLOCK));
    server.reset();
    const g = await openFits(url, { remote: s });
    await g.readImage('1-1.H.FLG');
    await g.close();
    expect(server.bytesSent).toBe(0);
  });

  it('never more than `concurrency` requests in flight across all open files', async () => {
    server.reset();
    server.faults.delayMs = 15;
    const s = settings({ concurrency: 3, maxRequestBytes: 2 * BLOCK });
    try {
      const files = await Promise.all([0, 1, 2].map((k) => openFits(`${server.base}/f/copy${k}.fits`, { remote: s })));
      const names = ['1-1.E.SCI', '2-3.H.RMS', '1-1.G.FLG'];
      const imgs = await Promise.all(files.flatMap((f) => names.map((n) => f.readImage(n))));
      for (const f of files) await f.close();
      const ref = await localHdu('2-3.H.RMS');
      expect(Array.from(imgs[4].data as Float32Array)).toEqual(Array.from(ref.img.data as Float32Array));
      expect(server.maxInFlight).toBeLessThanOrEqual(3);
      expect(server.maxInFlight).toBe(3); // the bound was reached (the reads did overlap)
      expect(remoteContext(s).limiter.peak).toBe(3);
    } finally {
      server.faults.delayMs = 0;
    }
  });

  it('two readers of the same blocks share the requests', async () => {
    server.reset();
    const s = settings();
    const url = `${server.base}/f/copy2.fits`;
    const [a, b] = await Promise.all([openFits(url, { remote: s }), openFits(url, { remote: s })]);
    const afterOpen = server.bytesSent;
    const name = '1-1.F.RMS';
    const [x, y] = await Promise.all([a.readDataBytes(name), b.readDataBytes(name)]);
    await Promise.all([a.close(), b.close()]);
    const ref = await localHdu(name);
    expect(Buffer.compare(Buffer.from(x), Buffer.from(ref.raw))).toBe(0);
    expect(Buffer.compare(Buffer.from(y), Buffer.from(ref.raw))).toBe(0);
    // the data blocks once (block-aligned span around the HDU data), not twice
    expect(server.bytesSent - afterOpen).toBeLessThanOrEqual(ref.info.dataSize + 2 * BLOCK);
  });

  it('random byte ranges under random faults equal the local bytes', async () => {
    server.reset();
    const s = settings({ retries: 6, maxRequestBytes: 5 * BLOCK });
    const f = await openFits(`${server.base}/f/det.fits`, { remote: s });
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 40; i++) {
      const r = rnd();
      if (r < 0.15) server.faults.fail503 = 1;
      else if (r < 0.3) server.faults.truncate = 1;
      else if (r < 0.4) server.faults.cutAfterBytes = Math.floor(rnd() * 3 * BLOCK);
      const off = Math.floor(rnd() * local.length);
      const len = Math.floor(rnd() * 12 * BLOCK);
      const got = await f.source.read(off, len);
      const want = local.subarray(off, Math.min(local.length, off + len));
      expect(got.length).toBe(want.length);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(want)), `read ${off}+${len}`).toBe(0);
      server.faults.cutAfterBytes = null;
    }
    await f.close();
  });

  it('two processes filling one cache folder at once: both read correct data, the index stays valid', async () => {
    server.reset();
    const cacheDir = tmp();
    const url = `${server.base}/f/copy0.fits`;
    const names = ['1-1.E.SCI', '2-3.G.RMS', '2-3.H.FLG'];
    const script = join(HERE, '..', 'fixtures', 'remote', 'read-remote.ts');
    const runOne = (hdus: string[]) =>
      new Promise<Record<string, string>>((resolve, reject) =>
        execFile('npx', ['--no-install', 'tsx', script, url, cacheDir, String(BLOCK), ...hdus], { cwd: join(HERE, '..', '..') }, (err, stdout, stderr) =>
          err ? reject(new Error(stderr)) : resolve(JSON.parse(stdout.trim().split('\n').pop()!)),
        ),
      );
    // one shared HDU, and one HDU that only each process reads
    const [a, b] = await Promise.all([runOne([names[0], names[1]]), runOne([names[0], names[2]])]);
    const want = async (n: string) => createHash('sha256').update((await localHdu(n)).raw).digest('hex');
    expect(a[names[0]]).toBe(await want(names[0]));
    expect(b[names[0]]).toBe(await want(names[0]));
    expect(a[names[1]]).toBe(await want(names[1]));
    expect(b[names[2]]).toBe(await want(names[2]));
    // a third reader finds the blocks of both processes in the (merged) index: no body bytes
    server.reset();
    const f = await openFits(url, { remote: settings({}, cacheDir) });
    for (const n of names) await f.readDataBytes(n);
    await f.close();
    expect(server.bytesSent).toBe(0);
  }, 60_000);

  it('errors name the URL: 404, a hung server (timeout), a body that is not FITS', async () => {
    server.reset();
    const s = settings({ retries: 1, timeoutMs: 200 });
    const missing = `${server.base}/f/nope.fits`;
    await expect(openFits(missing, { remote: s })).rejects.toThrow(`file ${missing}: not found (HTTP 404 Not Found)`);
    const hung = `${server.base}/hang/det.fits`;
    // the message says the idle timeout (0.2 s) ended both attempts: no wall-clock bound needed
    await expect(openFits(hung, { remote: s })).rejects.toThrow(`file ${hung}: HEAD failed after 2 attempts: no data from the server for 0.2 s (timeout)`);
    const html = `${server.base}/html/det.fits`;
    await expect(openFits(html, { remote: s })).rejects.toThrow(new RegExp(`file ${html.replace(/[.]/g, '\\.')}, HDU 0: not a FITS file: the server sent '<html><body><h1>Sign in`));
    // without the disk cache the same errors come from the plain ranged reader
    await expect(openFits(hung, { remote: { ...s, cacheDir: null } })).rejects.toThrow(`file ${hung}: HEAD failed after 2 attempts: no data from the server for 0.2 s (timeout)`);
  });

  it('a hang in the middle of a body is a timeout too (idle timeout, then retried)', async () => {
    server.reset();
    const s = settings({ retries: 2, timeoutMs: 300 });
    const f = await openFits(`${server.base}/f/det.fits`, { remote: s });
    const name = '1-1.F.SCI';
    const ref = await localHdu(name);
    // the next answer: half the body, then silence with the connection open → idle timeout, retry
    server.faults.stall = 1;
    const t0 = performance.now();
    const p = f.readImage(name);
    const img = await p;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(300 - 5);
    expect(Array.from(img.data as Float32Array)).toEqual(Array.from(ref.img.data as Float32Array));
    expect(server.faults.stall).toBe(0);
    await f.close();
  });

  it('settings: defaults, config-relative cache_dir and SHINE_CACHE_DIR', () => {
    const old = process.env.SHINE_CACHE_DIR;
    try {
      delete process.env.SHINE_CACHE_DIR;
      const d = remoteSettings({}, '/base');
      expect(d.cacheDir).toMatch(/shine\/remote$/);
      expect(d.concurrency).toBe(8);
      expect(d.timeoutMs).toBe(60_000);
      expect(d.blockSize).toBe(64 * 1024);
      expect(remoteSettings({ cache_dir: 'cache' }, '/base').cacheDir).toBe('/base/cache');
      expect(remoteSettings({ cache: false, cache_dir: 'cache' }, '/base').cacheDir).toBe(null);
      process.env.SHINE_CACHE_DIR = '/elsewhere/c';
      expect(remoteSettings({ cache_dir: 'cache' }, '/base').cacheDir).toBe('/elsewhere/c');
    } finally {
      if (old === undefined) delete process.env.SHINE_CACHE_DIR;
      else process.env.SHINE_CACHE_DIR = old;
    }
  });
});
