/**
 * Hostile FITS files through `shine fits-info` (and the image / table readers the pipeline uses):
 * truncation at header and data, NAXIS lies, bad BITPIX, structural keywords, gzip damage and
 * decompression bombs, not-FITS files, missing files. Every file is made here (small).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fitsInfo from '../../cli/commands/fits-info.ts';
import { openFits } from '../../platform/node/files.ts';
import { writeFits } from '../../engine/data/fits/index.ts';
import { asCli, errorCase, expectClearError, record } from './harness.ts';

const G = 'fits';
let dir = '';

function base(): Uint8Array {
  return writeFits([
    { data: Float32Array.from({ length: 12 }, (_, i) => i), shape: [4, 3], cards: [['GAIN', 3.48]] },
    { name: 'SCI', data: Float32Array.from({ length: 64 * 64 }, (_, i) => Math.sin(i)), shape: [64, 64] },
    {
      kind: 'bintable',
      name: 'CAT',
      columns: [
        { name: 'ID', data: BigInt64Array.from([1n, 2n, 3n]) },
        { name: 'V', format: 'D', data: Float64Array.from([1, 2, 3]) },
      ],
    },
  ]);
}

const text = (b: Uint8Array) => new TextDecoder('latin1').decode(b);

/** Offset of the card `key` in the header starting at `from`. */
function cardAt(b: Uint8Array, key: string, from = 0): number {
  const t = text(b);
  for (let o = from; o < b.length; o += 80) if (t.slice(o, o + 8).trimEnd() === key) return o;
  throw new Error(`no card ${key}`);
}

function setCard(b: Uint8Array, key: string, card: string, from = 0): Uint8Array {
  const c = b.slice();
  const o = cardAt(c, key, from);
  const s = card.padEnd(80).slice(0, 80);
  for (let k = 0; k < 80; k++) c[o + k] = s.charCodeAt(k);
  return c;
}

const SCI = 5760; // primary header + data blocks; the SCI header starts here
const num = (key: string, v: string) => `${key.padEnd(8)}= ${v.padStart(20)}`;

function file(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

const info = (p: string) => () => fitsInfo.run([p]);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'shine-hostile-fits-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('hostile FITS files → one clear line naming file, HDU and key', () => {
  it('sanity: the base file lists its 3 HDUs', async () => {
    const r = await asCli(info(file('ok.fits', base())));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3 HDUs/);
  });

  const b = base();
  const cases: Array<[id: string, what: string, make: () => Uint8Array | string, re: RegExp]> = [
    ['trunc-primary-header', 'truncated inside the primary header (100 bytes)', () => b.subarray(0, 100), /HDU 0, key END: header has no END card/],
    ['trunc-primary-data', 'truncated inside the primary data', () => b.subarray(0, 2880 + 20), /HDU 0, key NAXIS2: file truncated/],
    ['trunc-ext-header', 'truncated inside an extension header', () => b.subarray(0, SCI + 500), /HDU 1, key END: header has no END card/],
    ['trunc-ext-data', 'truncated inside image data', () => b.subarray(0, SCI + 2880 + 1000), /HDU 1 \(SCI\), key NAXIS2: file truncated/],
    ['trunc-table-data', 'truncated inside table data', () => b.subarray(0, b.length - 2880 + 10), /HDU 2 \(CAT\), key NAXIS2: file truncated: data of 48 bytes declared, only 10/],
    ['trunc-block-boundary', 'cut at a block boundary before the data', () => b.subarray(0, SCI + 2880), /HDU 1 \(SCI\).*file truncated/],
    ['empty-file', 'an empty (0-byte) file', () => new Uint8Array(0), /empty file/],
    ['naxis1-lie', 'NAXIS1 larger than the data', () => setCard(b, 'NAXIS1', num('NAXIS1', '6400'), SCI), /HDU 1 \(SCI\), key NAXIS2: file truncated/],
    ['naxis2-huge', 'NAXIS2 = 10^12 (a 4 TB image in a small file)', () => setCard(b, 'NAXIS2', num('NAXIS2', '1000000000000'), SCI), /HDU 1 \(SCI\), key NAXIS2: file truncated: data of 256000000000000 bytes declared/],
    ['naxis-overflow', 'NAXIS1 × NAXIS2 overflowing 2^53', () => setCard(setCard(b, 'NAXIS1', num('NAXIS1', '9000000000000000'), SCI), 'NAXIS2', num('NAXIS2', '9000000000000000'), SCI), /HDU 1.*key NAXIS: data size overflows/],
    ['naxis-negative', 'NAXIS1 = −5', () => setCard(b, 'NAXIS1', num('NAXIS1', '-5'), SCI), /HDU 1, key NAXIS1: invalid value -5/],
    ['naxis-float', 'NAXIS2 = 2.5', () => setCard(b, 'NAXIS2', num('NAXIS2', '2.5'), SCI), /HDU 1, key NAXIS2: invalid value 2\.5/],
    ['naxis-string', "NAXIS = 'two'", () => setCard(b, 'NAXIS', `NAXIS   = 'two'`, SCI), /HDU 1, key NAXIS: invalid value "two"/],
    ['naxis-1000', 'NAXIS = 1000', () => setCard(b, 'NAXIS', num('NAXIS', '1000'), SCI), /HDU 1, key NAXIS: invalid value 1000/],
    ['naxisn-missing', 'NAXIS2 card missing', () => setCard(b, 'NAXIS2', 'COMMENT gone', SCI), /HDU 1, key NAXIS2: missing mandatory keyword/],
    ['bitpix-7', 'BITPIX = 7', () => setCard(b, 'BITPIX', num('BITPIX', '7'), SCI), /HDU 1, key BITPIX: unknown BITPIX 7/],
    ['bitpix-0', 'BITPIX = 0', () => setCard(b, 'BITPIX', num('BITPIX', '0')), /HDU 0, key BITPIX: unknown BITPIX 0/],
    ['bitpix-string', "BITPIX = 'E'", () => setCard(b, 'BITPIX', `BITPIX  = 'E'`), /HDU 0, key BITPIX: invalid value "E"/],
    ['bitpix-missing', 'BITPIX card missing', () => setCard(b, 'BITPIX', 'COMMENT gone', SCI), /HDU 1, key BITPIX: missing mandatory keyword/],
    ['bitpix-1000', 'BITPIX = 1000', () => setCard(b, 'BITPIX', num('BITPIX', '1000'), SCI), /HDU 1, key BITPIX: invalid value 1000/],
    ['simple-missing', 'the first card is not SIMPLE', () => setCard(b, 'SIMPLE', num('SIMPLY', 'T')), /HDU 0, key SIMPLE: not a FITS file/],
    ['simple-false', 'SIMPLE = F', () => setCard(b, 'SIMPLE', num('SIMPLE', 'F')), /HDU 0, key SIMPLE: not a FITS file/],
    ['html-page', 'an HTML error page named .fits', () => '<html><body>404 Not Found</body></html>'.padEnd(3000), /HDU 0, key SIMPLE: not a FITS file/],
    ['random-bytes', 'random bytes', () => Uint8Array.from({ length: 5000 }, (_, i) => (i * 7919 + 13) & 255), /not a FITS file|corrupt/],
    ['end-missing', 'no END card in the last header', () => setCard(b, 'END', 'COMMENT no end', b.length - 2880 * 2), /HDU 2, key END: header has no END card/],
    ['pcount-negative', 'PCOUNT = −1 in an extension', () => setCard(b, 'PCOUNT', num('PCOUNT', '-1'), SCI), /HDU 1, key PCOUNT: invalid value -1/],
    ['gcount-missing', 'GCOUNT card missing in an extension', () => setCard(b, 'GCOUNT', 'COMMENT gone', SCI), /HDU 1, key GCOUNT: missing mandatory keyword/],
    ['bintable-bitpix', 'BINTABLE with BITPIX = 16', () => setCard(b, 'BITPIX', num('BITPIX', '16'), b.length - 2880 * 2), /HDU 2.*key BITPIX: BINTABLE must have BITPIX = 8/],
    ['tform-bad', "TFORM1 = 'Q9Z'", () => setCard(b, 'TFORM1', `TFORM1  = 'Z'`, b.length - 2880 * 2), /HDU 2.*key TFORM1/],
    ['non-ascii-header', 'a non-ASCII byte in a header value', () => {
      const c = b.slice();
      c[cardAt(c, 'GAIN') + 25] = 0xe9;
      return c;
    }, /HDU 0, key GAIN: non-ASCII or control byte 0xe9/],
  ];
  for (const [id, what, make, re] of cases) {
    it(`${id}: ${what}`, async () => {
      const p = file(`${id}.fits`, make());
      await errorCase(G, id, what, info(p), new RegExp(`file ${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*(${re.source})|(${re.source})`));
    });
  }

  it('missing-file: a path that does not exist', async () => {
    await errorCase(G, 'missing-file', 'a FITS path that does not exist', info(join(dir, 'nope.fits')), /nope\.fits.*(no such file|ENOENT|cannot)/);
  });
  it('directory: a folder given as a FITS file', async () => {
    mkdirSync(join(dir, 'adir.fits'), { recursive: true });
    await errorCase(G, 'directory', 'a folder where a FITS file is expected', info(join(dir, 'adir.fits')), /adir\.fits.*(directory|EISDIR|not a file)/i);
  });
  it('read-image-of-table: reading a table HDU as an image', async () => {
    const p = file('img-of-table.fits', base());
    await errorCase(G, 'read-image-of-table', 'a binary table read where an image is expected', async () => {
      const f = await openFits(p);
      await f.readImage('CAT');
    }, /HDU 2 \(CAT\), key XTENSION: HDU is a bintable, not an image/);
  });
  it('missing-extname: an HDU name that is not in the file', async () => {
    const p = file('no-extname.fits', base());
    await errorCase(G, 'missing-extname', 'an EXTNAME asked for that the file lacks', async () => {
      const f = await openFits(p);
      await f.readImage('3-4.F.SCI');
    }, /HDU 3-4\.F\.SCI, key EXTNAME: no HDU with EXTNAME '3-4\.F\.SCI' \(available: SCI, CAT\)/);
  });
});

describe('gzip: integrity and bombs', () => {
  const gz = () => gzipSync(base());

  it('sanity: a .fits.gz lists its HDUs and reads the same pixels', async () => {
    const r = await asCli(info(file('ok.fits.gz', gz())));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3 HDUs/);
  });

  const gcases: Array<[id: string, what: string, make: () => Uint8Array, re: RegExp]> = [
    ['gz-flipped-64', '64 flipped bytes in the middle of the deflate data', () => {
      const g = gz();
      const mid = g.length >> 1;
      for (let k = 0; k < 64; k++) g[mid - 32 + k] ^= 0x5a;
      return g;
    }, /corrupt gzip data/],
    ['gz-flipped-1', 'one flipped bit in the deflate data', () => {
      const g = gz();
      g[(g.length >> 1) + 3] ^= 0x01;
      return g;
    }, /corrupt gzip data/],
    ['gz-crc', 'the stored CRC-32 altered', () => {
      const g = gz();
      g[g.length - 8] ^= 0xff;
      return g;
    }, /corrupt gzip data: member 1: CRC-32 mismatch/],
    ['gz-isize', 'the stored ISIZE altered', () => {
      const g = gz();
      g[g.length - 3] ^= 0x01;
      return g;
    }, /corrupt gzip data: member 1: ISIZE mismatch/],
    ['gz-truncated', 'a .fits.gz cut in half', () => gz().subarray(0, gz().length >> 1), /corrupt gzip data/],
    ['gz-no-trailer', 'a .fits.gz without its 8-byte trailer', () => gz().subarray(0, gz().length - 8), /corrupt gzip data/],
    ['gz-header-only', 'only the 10-byte gzip header', () => gz().subarray(0, 10), /corrupt gzip data/],
    ['gz-bad-method', 'a gzip header with an unknown method', () => {
      const g = gz();
      g[2] = 7;
      return g;
    }, /corrupt gzip data/],
    ['gz-second-member-bad', 'a damaged second member of a 2-member file', () => {
      const a = gzipSync(base().subarray(0, 5760));
      const c = gzipSync(base().subarray(5760));
      c[c.length - 6] ^= 0x10;
      const g = new Uint8Array(a.length + c.length);
      g.set(a);
      g.set(c, a.length);
      return g;
    }, /corrupt gzip data: member 2: CRC-32 mismatch/],
    ['gz-bomb-header-lie', 'a tiny .fits.gz whose header declares 2 GB of data', () => {
      const h = setCard(setCard(base().subarray(0, 2880), 'NAXIS1', num('NAXIS1', '65536')), 'NAXIS2', num('NAXIS2', '8192'));
      return gzipSync(h);
    }, /HDU 0, key NAXIS2: header declares 2147483648 bytes of data, more than a \d+-byte gzip file can hold/],
    ['gz-bomb-ratio', 'a 4 kB .fits.gz declaring 40 MB (holding 4 MB of zeros)', () => {
      const h = setCard(setCard(base().subarray(0, 2880), 'NAXIS1', num('NAXIS1', '1000')), 'NAXIS2', num('NAXIS2', '10000'));
      const all = new Uint8Array(2880 + (4 << 20));
      all.set(h);
      return gzipSync(all);
    }, /HDU 0, key NAXIS2: header declares 40000000 bytes of data, more than a \d+-byte gzip file can hold/],
    ['gz-short-data', 'a .fits.gz declaring 8 MB of data holding 1 MB', () => {
      const h = setCard(setCard(base().subarray(0, 2880), 'NAXIS1', num('NAXIS1', '1024')), 'NAXIS2', num('NAXIS2', '2048'));
      const all = new Uint8Array(2880 + (1 << 20));
      let x = 12345;
      for (let i = 2880; i < all.length; i++) all[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      all.set(h);
      return gzipSync(all);
    }, /HDU 0, key NAXIS2: file truncated: data of 8388608 bytes declared, only 1048576 present/],
  ];
  for (const [id, what, make, re] of gcases) {
    it(`${id}: ${what}`, async () => {
      await errorCase(G, id, what, info(file(`${id}.fits.gz`, make())), re);
    });
  }

  it('gz-trailing-zeros: 64 MB of zeros after the last HDU are neither inflated nor kept (reported)', async () => {
    record(G, 'gz-trailing-zeros', 'a valid .fits.gz followed (inside the stream) by 64 MB of zeros', 'cut');
    const fits = base();
    const all = new Uint8Array(fits.length + (64 << 20));
    all.set(fits);
    const p = file('trailing.fits.gz', gzipSync(all));
    const r = await asCli(info(p));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3 HDUs/);
    expect(r.stdout).toMatch(/warning: the gzip stream goes on after HDU 2 .*not decompressed/);
    const f = await openFits(p);
    const src = f.source as unknown as { produced(): number };
    expect(src.produced()).toBeLessThan(fits.length + (20 << 20)); // stopped near the end of the FITS data
    await f.close();
  });

  it('gz-trailing-junk: non-FITS bytes after the last HDU inside the stream are reported and ignored', async () => {
    record(G, 'gz-trailing-junk', 'a valid .fits.gz whose stream goes on with text after the last HDU', 'cut');
    const fits = base();
    const junk = new TextEncoder().encode('this is not FITS '.repeat(200));
    const all = new Uint8Array(fits.length + junk.length);
    all.set(fits);
    all.set(junk, fits.length);
    const r = await asCli(info(file('junk.fits.gz', gzipSync(all))));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/warning: the data after HDU 2 is not a FITS extension and was ignored/);
  });

  it('plain-trailing-junk: non-FITS bytes after the last HDU of a plain file are reported and ignored', async () => {
    record(G, 'plain-trailing-junk', 'a valid .fits followed by 3000 bytes of text', 'cut');
    const fits = base();
    const all = new Uint8Array(fits.length + 3000).fill(0x41);
    all.set(fits);
    const r = await asCli(info(file('junk.fits', all)));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/warning: 3000 bytes after HDU 2 are not a FITS extension and were ignored/);
  });

  it('gz-headers-only: fits-info on a 256 MB-inflating .fits.gz keeps no data in memory', async () => {
    record(G, 'gz-headers-only', 'fits-info on a .fits.gz whose image inflates to 256 MB (valid)', 'handled');
    const h = setCard(setCard(base().subarray(0, 2880), 'NAXIS1', num('NAXIS1', '16384')), 'NAXIS2', num('NAXIS2', '4096'));
    const all = new Uint8Array(2880 + 16384 * 4096 * 4);
    all.set(h);
    const p = file('big.fits.gz', gzipSync(all, { level: 1 }));
    const before = process.memoryUsage().arrayBuffers;
    const r = await asCli(info(p));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/16384 × 4096/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(200 << 20);
  }, 60_000);

  it('xtension-missing: an extension without XTENSION is reported and ignored', async () => {
    record(G, 'xtension-missing', 'an extension header whose XTENSION card is misspelt', 'cut');
    const r = await asCli(info(file('xtension-missing.fits', setCard(base(), 'XTENSION', num('XTENSIOX', "'IMAGE'"), SCI))));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/1 HDU\b/);
    expect(r.stdout).toMatch(/warning: \d+ bytes after HDU 0 are not a FITS extension and were ignored/);
  });

  it('gz-read-after-headers-only: data of a headers-only open is not silently zeros', async () => {
    const big = writeFits([{ data: new Float32Array(1024 * 1024), shape: [1024, 1024] }]);
    const p = file('ho.fits.gz', gzipSync(big));
    await errorCase(G, 'gz-read-after-headers-only', 'pixels asked for from a file opened for its headers only', async () => {
      const f = await openFits(p, { headersOnly: true });
      await f.readImage(0);
    }, /ho\.fits\.gz: bytes \d+… of the decompressed file were not kept/);
  });
});

describe('every case of this file is in a first-two class or a valid input', () => {
  it('registers its cases', () => {
    expectClearError({ code: 1, stderr: 'shine: file x: ok', stdout: '' }, /file x/);
  });
});
