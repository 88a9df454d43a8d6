/**
 * Files written by writeFits must pass astropy's verify('exception') and read back in astropy with
 * the values we meant to write (computed independently here), and our reader must agree.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { writeFits, FitsFile, memorySource, type HduSpec } from '../../engine/data/fits/index.ts';
import { writeFileAtomic, openFits } from '../../platform/node/files.ts';
import { expectFloat32Ulps, expectValues, runPython, tempDir, type Enc } from './helpers.ts';

interface AstropyHdu {
  index: number;
  name: string;
  type: string;
  header: Record<string, Enc>;
  comments: string[];
  history: string[];
  data?: { dtype: string; shape: number[]; values: Enc[] };
  columns?: Record<string, { dtype: string; shape: number[]; values: Enc[]; format: string }>;
  nrows?: number;
}

async function astropyRead(hdus: HduSpec[], name: string): Promise<{ path: string; hdus: AstropyHdu[] }> {
  const dir = tempDir();
  const path = join(dir, name);
  await writeFileAtomic(path, writeFits(hdus));
  const out = runPython('read_written.py', [path]);
  return { path, hdus: JSON.parse(out).hdus };
}

const LONG_TEXT = 'The quick brown fox jumps over the lazy dog; '.repeat(6).trim();
const QUOTE_TEXT = "it's a 'quoted' value";

describe('writeFits → astropy', () => {
  it('images of every element type, quantised images, header cards of every kind', async () => {
    const w = 5;
    const h = 3;
    const n = w * h;
    const ramp = (f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
    const u8 = Uint8Array.from(ramp((i) => (i * 37) % 256));
    u8[0] = 0;
    u8[1] = 255;
    const i8 = Int8Array.from(ramp((i) => ((i * 29) % 256) - 128));
    i8[0] = -128;
    i8[1] = 127;
    const i16 = Int16Array.from(ramp((i) => i * 4099 - 32768));
    i16[1] = 32767;
    const u16 = Uint16Array.from(ramp((i) => i * 4681));
    u16[1] = 65535;
    const i32 = Int32Array.from(ramp((i) => i * 268435455 - 2147483648));
    i32[1] = 2147483647;
    const u32 = Uint32Array.from(ramp((i) => i * 286331153));
    u32[1] = 4294967295;
    const i64 = BigInt64Array.from(ramp((i) => i).map((i) => BigInt(i) * 658812288346769700n - 9223372036854775808n));
    i64[1] = 9223372036854775807n;
    const u64 = BigUint64Array.from(ramp((i) => i).map((i) => BigInt(i) * 1317624576693539401n));
    u64[1] = 18446744073709551615n;
    const f32 = Float32Array.from(ramp((i) => Math.sin(i) * 1e3));
    f32[0] = NaN;
    f32[1] = -Infinity;
    f32[2] = 1e-40;
    const f64 = Float64Array.from(ramp((i) => Math.cos(i) * 1e200));
    f64[0] = NaN;
    f64[1] = 5e-324;
    const q = Float64Array.from(ramp((i) => Math.sin(i) * 100));
    q[4] = NaN;
    const hdus: HduSpec[] = [
      {
        data: f32,
        shape: [w, h],
        cards: [
          ['OBJECT', QUOTE_TEXT, 'with quotes'],
          ['LONGSTR', LONG_TEXT, 'a long string'],
          ['GAIN', 3.48, 'e-/ADU'],
          ['EXPTIME', 560.52],
          ['TINY', 1.5e-300],
          ['HUGE', -2.5e300],
          ['THIRD', 1 / 3],
          ['INTKEY', -42],
          ['BIGKEY', 12345678901234567890n],
          ['FLAGT', true],
          ['FLAGF', false],
          ['EMPTY', ''],
          ['UNDEF', null, 'undefined value'],
          ['MAGZEROP', '24.57'],
          { key: 'COMMENT', comment: 'a comment card' },
          { key: 'HISTORY', comment: 'written by shine-webgpu tests' },
          ['ESO DET CHIP NAME', 'CCD-44'],
        ],
      },
      { name: 'U8', data: u8, shape: [w, h] },
      { name: 'I8', data: i8, shape: [w, h] },
      { name: 'I16', data: i16, shape: [w, h] },
      { name: 'U16', data: u16, shape: [w, h] },
      { name: 'I32', data: i32, shape: [w, h] },
      { name: 'U32', data: u32, shape: [w, h] },
      { name: 'I64', data: i64, shape: [w, h] },
      { name: 'U64', data: u64, shape: [w, h] },
      { name: 'F64', data: f64, shape: [w, h], extver: 2 },
      { name: 'Q16', data: q, shape: [w, h], bitpix: 16, bscale: 0.01, bzero: 5, blank: -32768 },
      { name: 'Q32', data: q, shape: [n], bitpix: 32, bscale: 1e-6, bzero: -1, blank: -2147483648 },
      { name: 'Q8', data: Float64Array.from(ramp((i) => i * 0.25 - 1)), shape: [w, h], bitpix: 8, bscale: 0.25, bzero: -1 },
      { name: 'ASF32', data: i16, shape: [w, h], bitpix: -32 },
      { kind: 'empty', name: 'NODATA', cards: [['NOTE', 'an extension without data']] },
    ];
    const { path, hdus: got } = await astropyRead(hdus, 'images.fits');
    expect(got.map((x) => x.name)).toEqual(['', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F64', 'Q16', 'Q32', 'Q8', 'ASF32', 'NODATA']);
    const byName = (s: string) => got.find((x) => x.name === s)!;
    const asEnc = (a: ArrayLike<number | bigint>) =>
      Array.from(a as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? v.toString() : Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v));
    // exact element values and the element types astropy chose
    const cases: Array<[string, ArrayLike<number | bigint>, string]> = [
      ['U8', u8, '|u1'],
      ['I8', i8, '|i1'],
      ['I16', i16, '>i2'],
      ['U16', u16, '<u2'],
      ['I32', i32, '>i4'],
      ['U32', u32, '<u4'],
      ['I64', i64, '>i8'],
      ['U64', u64, '<u8'],
      ['F64', f64, '>f8'],
      ['ASF32', Float32Array.from(i16), '>f4'],
    ];
    for (const [name, arr, dtype] of cases) {
      const e = byName(name).data!;
      expect(e.dtype, name).toBe(dtype);
      expect(e.shape, name).toEqual([h, w]);
      expectValues(asEnc(arr), e.values, name);
    }
    expect(got[0].data!.dtype).toBe('>f4');
    expectValues(asEnc(f32), got[0].data!.values, 'primary');
    // quantised: value = round((v - bzero)/bscale)*bscale + bzero, NaN → BLANK → NaN
    const quant = (v: number, bscale: number, bzero: number) => (Number.isNaN(v) ? NaN : Math.round((v - bzero) / bscale) * bscale + bzero);
    const q16 = byName('Q16').data!;
    expect(q16.dtype).toBe('<f4'); // astropy: float32 for scaled BITPIX 16
    // astropy scales in float32 arithmetic (two roundings); we round the exact value once
    const want16 = Array.from(q, (v) => Math.fround(quant(v, 0.01, 5)));
    expectFloat32Ulps(q16.values, want16, 2, 'Q16 (astropy)');
    const q32 = byName('Q32').data!;
    expect(q32.dtype).toBe('<f8');
    expectValues(Array.from(q, (v) => quant(v, 1e-6, -1)), q32.values, 'Q32');
    expectValues(ramp((i) => i * 0.25 - 1), byName('Q8').data!.values, 'Q8');
    expect(byName('Q16').header.BLANK).toBe(-32768);
    expect(byName('F64').header.EXTVER).toBe(2);
    expect(byName('NODATA').data).toBeUndefined();
    expect(byName('NODATA').header.NOTE).toBe('an extension without data');
    // header cards as astropy reads them
    const ph = got[0].header;
    expect(ph.OBJECT).toBe(QUOTE_TEXT);
    expect(ph.LONGSTR).toBe(LONG_TEXT);
    expect([ph.GAIN, ph.EXPTIME, ph.TINY, ph.HUGE, ph.THIRD, ph.INTKEY]).toEqual([3.48, 560.52, 1.5e-300, -2.5e300, 1 / 3, -42]);
    expect(ph.BIGKEY).toBe('12345678901234567890');
    expect([ph.FLAGT, ph.FLAGF, ph.EMPTY, ph.UNDEF, ph.MAGZEROP]).toEqual([true, false, '', null, '24.57']);
    expect(ph['ESO DET CHIP NAME']).toBe('CCD-44');
    expect(got[0].comments).toEqual(['a comment card']);
    expect(got[0].history).toEqual(['written by shine-webgpu tests']);
    // our reader agrees with astropy on everything
    const f = await openFits(path);
    for (const e of got) {
      if (!e.data) continue;
      const img = await f.readImage(e.index);
      if (e.name === 'Q16') expectValues(img.data as Float32Array, want16, 'ours Q16 (correctly rounded)');
      else expectValues(img.data as ArrayLike<unknown>, e.data.values, `ours ${e.name}`);
    }
    expect(f.header(0).getString('LONGSTR')).toBe(LONG_TEXT);
    expect(f.header(0).get('BIGKEY')).toBe(12345678901234567890n);
    await f.close();
  });

  it('binary tables with every TFORM, arrays, TNULL, TSCAL/TZERO, unsigned and int8 (B + TZERO -128)', async () => {
    const nRows = 4;
    const psf = Float32Array.from({ length: nRows * 441 }, (_, i) => Math.sin(i) / 7);
    const scaledIn = [0.0, 1.23, -4.56, 7.89];
    const hdus: HduSpec[] = [
      {
        kind: 'bintable',
        name: 'SHEAR',
        cards: [['TILE', 102018211]],
        columns: [
          { name: 'TILE_ID', data: BigInt64Array.from([102018211n, 102018212n, -1n, 9223372036854775807n]) },
          { name: 'SUBTILE_ROW', data: Int8Array.from([0, 3, -128, 127]) },
          { name: 'SUBTILE_COL', format: 'B', tzero: -128, data: [1, 2, -5, 100] },
          { name: 'RA', data: Float64Array.from([57.9990741, 0, 359.9999999999, -1e-300]), unit: 'deg' },
          { name: 'G1', data: Float32Array.from([0.01, -0.02, NaN, 1e-40]) },
          { name: 'N_SOURCES', data: Int32Array.from([10, -2147483648, 2147483647, 0]) },
          { name: 'SHORT', data: Int16Array.from([-32768, -1, 1, 32767]) },
          { name: 'BYTE', data: Uint8Array.from([0, 1, 128, 255]) },
          { name: 'U16', data: Uint16Array.from([0, 1, 32768, 65535]) },
          { name: 'U32', data: Uint32Array.from([0, 1, 2147483648, 4294967295]) },
          { name: 'U64', data: BigUint64Array.from([0n, 1n, 9223372036854775808n, 18446744073709551615n]) },
          { name: 'METHOD', data: ['MAP', 'HMC', '', "O'Brien x"] },
          { name: 'OK', data: [true, false, true, false] },
          { name: 'BITS', format: '10X', data: Array.from({ length: nRows * 10 }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0) },
          { name: 'PSF', format: '441E', data: psf, dim: [21, 21] },
          { name: 'IVEC', format: '3J', data: Int32Array.from({ length: nRows * 3 }, (_, i) => i * 1000 - 5000) },
          { name: 'NULLJ', data: Int32Array.from([5, 0, 7, 0]), tnull: -999, nullMask: Uint8Array.from([0, 1, 0, 1]) },
          { name: 'SCALED', format: 'I', tscal: 0.01, tzero: 5, data: scaledIn },
          { name: 'CONV', format: 'E', data: [1, 0.5, 0.25, 0.125] },
          { name: 'LARR', format: '2L', data: [true, true, false, true, false, false, true, false] },
        ],
      },
    ];
    const { path, hdus: got } = await astropyRead(hdus, 'table.fits');
    expect(got[0].type).toBe('PrimaryHDU');
    const t = got[1];
    expect(t.name).toBe('SHEAR');
    expect(t.nrows).toBe(nRows);
    const c = t.columns!;
    expect(Object.keys(c)).toEqual(hdus[0].kind === 'bintable' ? hdus[0].columns.map((x) => x.name) : []);
    expectValues(['102018211', '102018212', '-1', '9223372036854775807'], c.TILE_ID.values, 'TILE_ID');
    expect(c.SUBTILE_ROW.format).toBe('B');
    expect(c.PSF.format).toBe('441E');
    expect(t.header.TZERO2).toBe(-128);
    expectValues([0, 3, -128, 127], c.SUBTILE_ROW.values, 'SUBTILE_ROW (astropy float64)');
    expectValues([1, 2, -5, 100], c.SUBTILE_COL.values, 'SUBTILE_COL');
    expectValues([57.9990741, 0, 359.9999999999, -1e-300], c.RA.values, 'RA');
    expectValues([Math.fround(0.01), Math.fround(-0.02), NaN, Math.fround(1e-40)], c.G1.values, 'G1');
    expectValues([10, -2147483648, 2147483647, 0], c.N_SOURCES.values, 'N_SOURCES');
    expectValues([-32768, -1, 1, 32767], c.SHORT.values, 'SHORT');
    expectValues([0, 1, 128, 255], c.BYTE.values, 'BYTE');
    expect(c.U16.dtype).toBe('<u2');
    expectValues([0, 1, 32768, 65535], c.U16.values, 'U16');
    expect(c.U32.dtype).toBe('<u4');
    expectValues([0, 1, 2147483648, 4294967295], c.U32.values, 'U32');
    expect(c.U64.dtype).toBe('<u8');
    expectValues(['0', '1', '9223372036854775808', '18446744073709551615'], c.U64.values, 'U64');
    expectValues(['MAP', 'HMC', '', "O'Brien x"], c.METHOD.values, 'METHOD');
    expectValues([true, false, true, false], c.OK.values, 'OK');
    expectValues(Array.from({ length: nRows * 10 }, (_, i) => (i * 7) % 3 === 0), c.BITS.values, 'BITS');
    expect(c.PSF.shape).toEqual([nRows, 21, 21]);
    expectValues(Array.from(psf), c.PSF.values, 'PSF');
    expect(c.IVEC.shape).toEqual([nRows, 3]);
    expectValues(Array.from({ length: nRows * 3 }, (_, i) => i * 1000 - 5000), c.IVEC.values, 'IVEC');
    expect(t.header.TNULL17).toBe(-999);
    expectValues([5, -999, 7, -999], c.NULLJ.values, 'NULLJ raw');
    expectValues(scaledIn.map((v) => Math.round((v - 5) / 0.01) * 0.01 + 5), c.SCALED.values, 'SCALED');
    expectValues([1, 0.5, 0.25, 0.125], c.CONV.values, 'CONV');
    expectValues([true, true, false, true, false, false, true, false], c.LARR.values, 'LARR');
    expect(t.header.TUNIT4).toBe('deg');
    expect(t.header.TILE).toBe(102018211);
    // our reader agrees
    const f = await openFits(path);
    const ours = await f.readTable('SHEAR');
    for (const [name, e] of Object.entries(c)) {
      expectValues(ours.column(name).data as ArrayLike<unknown>, e.values, `ours ${name}`);
    }
    expect(Array.from(ours.column('NULLJ').nullMask!)).toEqual([0, 1, 0, 1]);
    expect(ours.column('SUBTILE_ROW').data).toBeInstanceOf(Int8Array);
    expect(ours.column('PSF').dim).toEqual([21, 21]);
    await f.close();
  });

  it('a table HDU given first gets an empty primary HDU; empty tables are valid', async () => {
    const { hdus: got } = await astropyRead(
      [
        { kind: 'bintable', name: 'EMPTY', columns: [{ name: 'X', format: 'D', data: new Float64Array(0) }], nRows: 0 },
        { kind: 'bintable', name: 'NOCOLS', columns: [] },
      ],
      'empty.fits',
    );
    expect(got.map((x) => [x.type, x.name, x.nrows])).toEqual([
      ['PrimaryHDU', '', undefined],
      ['BinTableHDU', 'EMPTY', 0],
      ['BinTableHDU', 'NOCOLS', 0],
    ]);
  });
});

describe('writeFits structure', () => {
  it('every HDU is a multiple of 2880 bytes; header cards are 80 printable ASCII characters', () => {
    const bytes = writeFits([{ data: new Float32Array(7), shape: [7] }, { kind: 'bintable', columns: [{ name: 'A', data: ['x'] }] }]);
    expect(bytes.length % 2880).toBe(0);
    const text = new TextDecoder('latin1').decode(bytes.subarray(0, 2880));
    expect(text.slice(0, 30)).toBe('SIMPLE  =                    T');
    expect(/^[\x20-\x7e]*$/.test(text)).toBe(true);
  });
  it('rejects values that cannot be stored', () => {
    expect(() => writeFits([{ data: Float64Array.from([1, 40000]), bitpix: 16, shape: [2] }])).toThrow(/does not fit BITPIX 16/);
    expect(() => writeFits([{ data: Float64Array.from([NaN]), bitpix: 16, shape: [1] }])).toThrow(/BLANK/);
    expect(() => writeFits([{ data: new Float32Array(6), shape: [4, 2] }])).toThrow(/shape/);
    expect(() => writeFits([{ data: new Float32Array(1), cards: [['GAIN', NaN]] }])).toThrow(/key GAIN/);
    expect(() => writeFits([{ data: new Float32Array(1), cards: [['NAME', 'é']] }])).toThrow(/ASCII/);
    expect(() => writeFits([{ kind: 'bintable', columns: [{ name: 'A', data: Int8Array.from([1, 2]) }, { name: 'B', data: Int8Array.from([1]) }] }])).toThrow(
      /key B.*not a multiple of the 2 rows/,
    );
  });
  it('memorySource reads what writeFits wrote', async () => {
    const f = await FitsFile.open(memorySource(writeFits([{ data: Int16Array.from([1, -2, 3]), shape: [3] }]), 'mem.fits'));
    expect(Array.from((await f.readImage(0)).data as Int16Array)).toEqual([1, -2, 3]);
  });
});

describe('writeFileAtomic', () => {
  it('writes the bytes (chunks too) and leaves no temporary file behind', async () => {
    const dir = tempDir();
    const p = join(dir, 'sub', 'x.fits');
    await writeFileAtomic(p, [Uint8Array.from([1, 2]), Uint8Array.from([3])]);
    expect(Array.from(readFileSync(p))).toEqual([1, 2, 3]);
    await writeFileAtomic(p, Uint8Array.from([9]));
    expect(Array.from(readFileSync(p))).toEqual([9]);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['x.fits']);
  });
});
