/**
 * Bad input: every failure is a DataError whose message names the file, the HDU and the key.
 * Fuzzing (fast-check): random mutations of valid headers and tables never hang and never throw
 * anything but DataError.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DataError } from '../../engine/errors.ts';
import { FitsFile, memorySource, parseCards, writeFits, type ByteSource } from '../../engine/data/fits/index.ts';

function base(): Uint8Array {
  return writeFits([
    { data: Float32Array.from({ length: 12 }, (_, i) => i), shape: [4, 3], cards: [['GAIN', 3.48], ['LONGSTR', 'abc '.repeat(40)]] },
    { name: 'SCI', data: Int16Array.from({ length: 20 }, (_, i) => i - 10), shape: [5, 4], bscale: 2, bzero: 1, bitpix: 16 },
    {
      kind: 'bintable',
      name: 'CAT',
      columns: [
        { name: 'ID', data: BigInt64Array.from([1n, 2n, 3n]) },
        { name: 'V', format: '2E', data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
        { name: 'S', data: ['a', 'bb', 'ccc'] },
        { name: 'N', data: Int32Array.from([1, -1, 2]), tnull: -1 },
        { name: 'F', data: [true, false, true] },
        { name: 'B', format: '5X', data: new Uint8Array(15).fill(1) },
        { name: 'I8', data: Int8Array.from([-1, 0, 1]) },
      ],
    },
  ]);
}

/** Card index (0-based) of a keyword in the header starting at `at`. */
function cardOffset(bytes: Uint8Array, key: string, from = 0): number {
  const text = new TextDecoder('latin1').decode(bytes);
  for (let o = from; o < bytes.length; o += 80) if (text.slice(o, o + 8).trimEnd() === key) return o;
  throw new Error(`no card ${key}`);
}

function setCard(bytes: Uint8Array, key: string, card: string, from = 0): Uint8Array {
  const b = bytes.slice();
  const o = cardOffset(b, key, from);
  const s = card.padEnd(80);
  for (let k = 0; k < 80; k++) b[o + k] = s.charCodeAt(k);
  return b;
}

async function openErr(bytes: Uint8Array, what?: (f: FitsFile) => Promise<unknown>): Promise<DataError> {
  try {
    const f = await FitsFile.open(memorySource(bytes, 'bad.fits'));
    if (what) await what(f);
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return e as DataError;
  }
  throw new Error('expected a DataError');
}

const SCI_HDR = 5760; // primary: 1 header block + 1 data block; the SCI header starts here

describe('bad input → DataError naming file, HDU and key', () => {
  it('sanity: the base file is valid', async () => {
    const f = await FitsFile.open(memorySource(base(), 'ok.fits'));
    expect(f.hdus.map((h) => h.name)).toEqual(['', 'SCI', 'CAT']);
    expect(f.hdu('SCI').headerOffset).toBe(SCI_HDR);
  });

  it('truncated file (inside data, inside a header, a few bytes)', async () => {
    const b = base();
    const t = f_hdu(b, 'CAT');
    let e = await openErr(b.subarray(0, t.dataOffset + 10));
    expect(e.message).toMatch(/^file bad\.fits, HDU 2 \(CAT\), key NAXIS2: file truncated/);
    e = await openErr(b.subarray(0, SCI_HDR + 500));
    expect(e.message).toMatch(/file bad\.fits, HDU 1, key END: header has no END card/);
    e = await openErr(b.subarray(0, 100));
    expect(e.message).toMatch(/file bad\.fits, HDU 0, key END/);
    e = await openErr(new Uint8Array(0));
    expect(e.message).toMatch(/bad\.fits.*empty file/);
  });

  it('a source that delivers less data than declared', async () => {
    const b = base();
    const inner = memorySource(b, 'short.fits');
    const lying: ByteSource = { ...inner, name: 'short.fits', read: async (o, n) => (await inner.read(o, n)).subarray(0, n > 2880 ? 0 : n), size: inner.size, close: inner.close };
    const f = await FitsFile.open(lying);
    await expect(f.readImage(0)).resolves.toBeDefined(); // 48 bytes: fine
    const big = writeFits([{ data: new Float32Array(2000), shape: [2000] }]);
    const inner2 = memorySource(big, 'short.fits');
    const f2 = await FitsFile.open({ ...inner2, read: async (o, n) => (await inner2.read(o, n)).subarray(0, n > 2880 ? 100 : n) });
    await expect(f2.readImage(0)).rejects.toThrow(/short\.fits, HDU 0, key NAXIS: data shorter than declared: 100 of 8000 bytes/);
  });

  it('header without END', async () => {
    // replace END of the primary header by a blank card: the data block then follows as "cards"
    const b = base();
    const o = cardOffset(b, 'END');
    b.fill(0x20, o, o + 3);
    const e = await openErr(b);
    expect(e.message).toMatch(/file bad\.fits, HDU 0/);
    expect(e.message).toMatch(/non-ASCII|END/);
  });

  it('non-ASCII byte in a header', async () => {
    const b = base();
    b[cardOffset(b, 'GAIN') + 15] = 0xe9;
    const e = await openErr(b);
    expect(e.message).toMatch(/file bad\.fits, HDU 0, key GAIN: non-ASCII or control byte 0xe9/);
  });

  it('bad NAXIS, negative NAXISn, unknown BITPIX, bad values', async () => {
    const b = base();
    let e = await openErr(setCard(b, 'NAXIS', 'NAXIS   =                   -1', SCI_HDR));
    expect(e.message).toMatch(/file bad\.fits, HDU 1, key NAXIS: invalid value -1/);
    e = await openErr(setCard(b, 'NAXIS', "NAXIS   = 'two'", SCI_HDR));
    expect(e.message).toMatch(/HDU 1, key NAXIS: invalid value "two"/);
    e = await openErr(setCard(b, 'NAXIS2', 'NAXIS2  =                   -4', SCI_HDR));
    expect(e.message).toMatch(/HDU 1, key NAXIS2: invalid value -4/);
    e = await openErr(setCard(b, 'NAXIS1', 'NAXIS1  =                  2.5', SCI_HDR));
    expect(e.message).toMatch(/HDU 1, key NAXIS1: invalid value 2\.5/);
    e = await openErr(setCard(b, 'BITPIX', 'BITPIX  =                   12', SCI_HDR));
    expect(e.message).toMatch(/HDU 1, key BITPIX: unknown BITPIX 12/);
    e = await openErr(setCard(b, 'BITPIX', 'BITPIX  = 1.0.0', SCI_HDR));
    expect(e.message).toMatch(/HDU 1, key BITPIX: unparsable value '1\.0\.0'/);
    e = await openErr(setCard(b, 'SIMPLE', 'SIMPLE  =                    F'));
    expect(e.message).toMatch(/not a FITS file/);
    e = await openErr(new TextEncoder().encode('hello world, this is not FITS'.padEnd(2880)));
    expect(e.message).toMatch(/file bad\.fits, HDU 0, key SIMPLE: not a FITS file/);
  });

  it('missing EXTNAME, missing column, wrong HDU kind, missing keyword', async () => {
    const f = await FitsFile.open(memorySource(base(), 'ok.fits'));
    expect(() => f.hdu('RMS')).toThrow(/^file ok\.fits, HDU RMS, key EXTNAME: no HDU with EXTNAME 'RMS' \(available: SCI, CAT\)$/);
    expect(() => f.hdu(7)).toThrow(/ok\.fits, HDU 7: no HDU with index 7/);
    const t = await f.readTable('CAT');
    expect(() => t.column('FLUX')).toThrow(/^file ok\.fits, HDU 2 \(CAT\), key FLUX: no column 'FLUX' \(columns: ID, V, S, N, F, B, I8\)$/);
    await expect(f.readTable('CAT', { columns: ['FLUX'] })).rejects.toThrow(/HDU 2 \(CAT\), key FLUX/);
    await expect(f.readImage('CAT')).rejects.toThrow(/HDU 2 \(CAT\), key XTENSION: HDU is a bintable, not an image/);
    await expect(f.readTable('SCI')).rejects.toThrow(/HDU 1 \(SCI\), key XTENSION/);
    expect(() => f.header('SCI').getNumber('EXPTIME')).toThrow(/^file ok\.fits, HDU 1 \(SCI\), key EXPTIME: missing header keyword$/);
  });

  it('bad table structure: TFORM, row width', async () => {
    const b = base();
    const catHdr = f_hdu(b, 'CAT').headerOffset;
    let e = await openErr(setCard(b, 'TFORM2', "TFORM2  = '2Z'", catHdr), (f) => f.readTable('CAT'));
    expect(e.message).toMatch(/HDU 2 \(CAT\), key TFORM2: unknown TFORM '2Z'/);
    e = await openErr(setCard(b, 'TFORM2', "TFORM2  = '3E'", catHdr), (f) => f.readTable('CAT'));
    expect(e.message).toMatch(/HDU 2 \(CAT\), key NAXIS1: row width \d+ does not match the sum of the TFORM widths/);
    e = await openErr(setCard(b, 'TFIELDS', 'TFIELDS =                    9', catHdr), (f) => f.readTable('CAT'));
    expect(e.message).toMatch(/HDU 2 \(CAT\), key TFORM8: missing header keyword/);
  });
});

function f_hdu(bytes: Uint8Array, name: string) {
  // locate an HDU by scanning with the reader itself on a valid file
  let info: { headerOffset: number; dataOffset: number } | undefined;
  const text = new TextDecoder('latin1').decode(bytes);
  for (let o = 0; o < bytes.length; o += 2880) {
    if (text.startsWith('XTENSION', o)) {
      const block = text.slice(o, o + 2880 * 4);
      const end = block.search(/END {77}/);
      if (block.slice(0, end).includes(`EXTNAME = '${name}`)) {
        info = { headerOffset: o, dataOffset: o + Math.ceil((end + 80) / 2880) * 2880 };
        break;
      }
    }
  }
  if (!info) throw new Error(`no ${name}`);
  return info;
}

// ---------------------------------------------------------------------------------------------
// Fuzzing

/** Opens and reads every HDU: must finish, and fail (if at all) with a DataError. */
async function exercise(bytes: Uint8Array): Promise<void> {
  try {
    const f = await FitsFile.open(memorySource(bytes, 'fuzz.fits'));
    for (const h of f.hdus) {
      const hdr = f.header(h.index);
      hdr.keys().forEach((k) => hdr.get(k));
      try {
        if (h.type === 'bintable') {
          const t = await f.readTable(h.index);
          for (const n of t.names) if (t.columns.has(n.toUpperCase())) t.column(n);
        } else if (h.naxis.length > 0) {
          await f.readImageFloat32(h.index);
        }
      } catch (e) {
        if (!(e instanceof DataError)) throw e;
      }
    }
  } catch (e) {
    if (!(e instanceof DataError)) throw e;
  }
}

const HEADER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ='&/().,+-EDTF_";

describe('fuzz (fast-check)', () => {
  const valid = base();
  const headerEnds: Array<[number, number]> = [];
  {
    // header regions of the valid file (cards only)
    const text = new TextDecoder('latin1').decode(valid);
    let o = 0;
    while (o < valid.length) {
      const end = text.indexOf('END'.padEnd(80), o);
      headerEnds.push([o, end + 80]);
      const hdrEnd = Math.ceil((end + 80) / 2880) * 2880;
      // skip data: read NAXISn from our own reader is circular; use the known layout instead
      const next = text.indexOf('XTENSION=', hdrEnd);
      if (next < 0) break;
      o = next - (next % 2880);
    }
  }
  const headerPos = fc.integer({ min: 0, max: headerEnds.length - 1 }).chain((h) =>
    fc.integer({ min: headerEnds[h][0], max: headerEnds[h][1] - 1 }),
  );

  it('header mutations: random characters in value fields, whole-card rewrites, random bytes, truncation', async () => {
    const mutation = fc.oneof(
      // overwrite a few characters of a header with FITS-like characters
      fc.record({ kind: fc.constant('chars' as const), at: headerPos, text: fc.string({ unit: fc.constantFrom(...HEADER_CHARS), minLength: 1, maxLength: 30 }) }),
      // rewrite the value field (columns 11-80) of a card
      fc.record({
        kind: fc.constant('value' as const),
        at: headerPos,
        text: fc.oneof(
          fc.integer({ min: -(2 ** 40), max: 2 ** 40 }).map(String),
          fc.constantFrom('-1', '0', '999', '1000', '2.5', "'abc'", "'", "''", "'&'", 'T', 'F', '', '1E400', '9223372036854775808', '(1,2)', '/ x'),
          fc.string({ unit: fc.constantFrom(...HEADER_CHARS), maxLength: 70 }),
        ),
      }),
      // random bytes anywhere (header or data)
      fc.record({ kind: fc.constant('bytes' as const), at: fc.integer({ min: 0, max: valid.length - 1 }), text: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.integer({ min: 0, max: valid.length }), text: fc.constant('') }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (muts) => {
        let b: Uint8Array = valid.slice();
        for (const m of muts) {
          if (m.kind === 'truncate') b = b.subarray(0, Math.min(m.at, b.length));
          else if (m.kind === 'bytes') b.set((m.text as Uint8Array).subarray(0, Math.max(0, b.length - m.at)), Math.min(m.at, b.length));
          else {
            const at = m.kind === 'value' ? m.at - (m.at % 80) + 10 : m.at;
            const s = m.kind === 'value' ? (m.text as string).padEnd(70) : (m.text as string);
            for (let k = 0; k < s.length && at + k < b.length; k++) b[at + k] = s.charCodeAt(k);
          }
        }
        await exercise(b);
      }),
      { numRuns: 1500, seed: 20240513 },
    );
  });

  it('table mutations: structural keywords of the table set to random values', async () => {
    const catHdr = f_hdu(valid, 'CAT').headerOffset;
    const keys = ['NAXIS1', 'NAXIS2', 'PCOUNT', 'TFIELDS', 'TFORM1', 'TFORM2', 'TFORM3', 'TFORM6', 'TNULL4', 'TZERO7', 'TSCAL7', 'TTYPE2', 'GCOUNT'];
    const value = fc.oneof(
      fc.integer({ min: -5, max: 5000 }).map(String),
      fc.constantFrom("'1K'", "'2E'", "'3A'", "'0E'", "'E'", "'1PE(3)'", "'100000000000E'", "'-1J'", "'X'", "'99X'", "'L'", "'2M'", "'1C'", "'D'", '2.5', "'x'", '1E10', '-128', '9223372036854775808'),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.constantFrom(...keys), value), { minLength: 1, maxLength: 3 }), async (edits) => {
        let b: Uint8Array = valid.slice();
        for (const [k, v] of edits) {
          // only keys present in the CAT header are rewritten
          try {
            b = setCard(b, k, `${k.padEnd(8)}= ${v.padStart(20)}`, catHdr);
          } catch {
            /* key absent */
          }
        }
        await exercise(b);
      }),
      { numRuns: 800, seed: 7 },
    );
  });

  it('parseCards on arbitrary printable text never throws anything but DataError', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: fc.constantFrom(...HEADER_CHARS, 'x', "'", ' ', ' ', ' '), minLength: 80, maxLength: 80 }), { maxLength: 40 }), (cards) => {
        const bytes = new TextEncoder().encode(cards.join(''));
        try {
          parseCards(bytes, { file: 'f' });
        } catch (e) {
          if (!(e instanceof DataError)) throw e;
        }
      }),
      { numRuns: 2000, seed: 3 },
    );
  });
});
