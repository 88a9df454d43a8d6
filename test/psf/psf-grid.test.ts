/**
 * PSF grids on known data: stamps whose pixel values are bilinear functions of the grid index,
 * so bilinear interpolation is exactly predictable (before the unit-sum renormalisation, which
 * the oracle applies itself); grid centres; edge clamping; reading a PSF product from FITS.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PsfGrid, psfGridHeaderCards, readPsfGrid } from '../../engine/data/psf/index.ts';
import { FitsFile, memorySource, writeFits } from '../../engine/data/fits/index.ts';
import { DataError } from '../../engine/errors.ts';

const S = 21;
const N = 9;
const W = 2048;
const H = 2066;

/** Deterministic pseudo-random coefficients per stamp pixel. */
function coefs(seed: number, n: number) {
  let s = seed >>> 0;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const A = new Float64Array(n);
  const B = new Float64Array(n);
  const C = new Float64Array(n);
  const D = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    // dyadic rationals with few bits: A + B i + C j + D i j is exact in float32 for i, j < 16,
    // so the stored stamps are exactly bilinear in the grid index.
    A[k] = 1 + Math.floor(rnd() * 1024) / 1024;
    B[k] = Math.floor(rnd() * 410) / 4096;
    C[k] = Math.floor(rnd() * 410) / 4096;
    D[k] = Math.floor(rnd() * 650) / 65536;
  }
  return { A, B, C, D };
}

/** Grid image (N·S)² whose stamp (i, j) pixel k = A + B i + C j + D i j. */
function makeImage(nx = N, ny = N, s = S, seed = 7) {
  const { A, B, C, D } = coefs(seed, s * s);
  const w = nx * s;
  const img = new Float32Array(w * ny * s);
  const exact = (gx: number, gy: number) => {
    const out = new Float64Array(s * s);
    for (let k = 0; k < s * s; k++) out[k] = A[k] + B[k] * gx + C[k] * gy + D[k] * gx * gy;
    return out;
  };
  for (let j = 0; j < ny; j++)
    for (let i = 0; i < nx; i++) {
      const st = exact(i, j);
      for (let r = 0; r < s; r++)
        for (let c = 0; c < s; c++) {
          const v = st[r * s + c];
          if (Math.fround(v) !== v) throw new Error('test stamps must be exact in float32');
          img[(j * s + r) * w + i * s + c] = v;
        }
    }
  const exact32 = exact;
  return { img, width: w, height: ny * s, exact, exact32 };
}

function normalised(a: Float64Array): Float64Array {
  const s = a.reduce((x, y) => x + y, 0);
  return a.map((v) => v / s);
}

describe('PsfGrid', () => {
  const { img, width, height, exact } = makeImage();
  const grid = new PsfGrid(img, width, height);

  it('layout: 189×189 → 9×9 stamps of 21×21; stampAt returns the stored stamp', () => {
    expect(grid.nx).toBe(9);
    expect(grid.ny).toBe(9);
    expect(grid.stampSize).toBe(21);
    const st = grid.stampAt(3, 5);
    const ex = exact(3, 5);
    for (let k = 0; k < S * S; k++) expect(st[k]).toBe(Math.fround(ex[k]));
    expect(() => grid.stampAt(9, 0)).toThrow(RangeError);
  });

  it('grid centres at (i + ½)/9 of the quadrant size (0-based pixel centres: −½)', () => {
    const pos = grid.gridPositions();
    expect(pos.length).toBe(81);
    for (const p of pos) {
      expect(p.x).toBeCloseTo(((p.i + 0.5) / 9) * W - 0.5, 12);
      expect(p.y).toBeCloseTo(((p.j + 0.5) / 9) * H - 0.5, 12);
    }
    expect(pos[0].x).toBeCloseTo(2048 / 18 - 0.5, 12);
    expect(pos[80].y).toBeCloseTo((8.5 / 9) * 2066 - 0.5, 12);
  });

  it('a position exactly on a grid centre returns that stamp normalised', () => {
    for (const [i, j] of [
      [0, 0],
      [4, 7],
      [8, 8],
      [8, 0],
    ]) {
      const p = grid.interpolate(grid.gridX(i), grid.gridY(j));
      const ex = normalised(Float64Array.from(grid.stampAt(i, j)));
      for (let k = 0; k < S * S; k++) expect(Math.abs(p[k] - ex[k])).toBeLessThan(1e-15);
    }
  });

  it('bilinear between centres equals the analytic bilinear field, renormalised (property test)', () => {
    const { exact32 } = makeImage();
    fc.assert(
      fc.property(fc.double({ min: -0.5, max: W - 0.5, noNaN: true }), fc.double({ min: -0.5, max: H - 0.5, noNaN: true }), (x, y) => {
        const p = grid.interpolate(x, y);
        const gx = Math.min(Math.max(((x + 0.5) / W) * 9 - 0.5, 0), 8);
        const gy = Math.min(Math.max(((y + 0.5) / H) * 9 - 0.5, 0), 8);
        const ex = normalised(exact32(gx, gy));
        let sum = 0;
        for (let k = 0; k < S * S; k++) {
          expect(Math.abs(p[k] - ex[k])).toBeLessThan(1e-12);
          sum += p[k];
        }
        expect(Math.abs(sum - 1)).toBeLessThan(1e-12);
      }),
      { numRuns: 200 },
    );
  });

  it('clamps outside the outermost grid centres (corners and beyond the quadrant)', () => {
    const corner = normalised(Float64Array.from(grid.stampAt(0, 0)));
    for (const [x, y] of [
      [0, 0],
      [-0.5, -0.5],
      [-500, -1e4],
      [grid.gridX(0) - 1, grid.gridY(0) - 30],
    ]) {
      const p = grid.interpolate(x, y);
      for (let k = 0; k < S * S; k++) expect(Math.abs(p[k] - corner[k])).toBeLessThan(1e-15);
    }
    // along the top edge: x interpolates, y clamps to row 8
    const { exact32 } = makeImage();
    const x = 1000;
    const gx = ((x + 0.5) / W) * 9 - 0.5;
    const p = grid.interpolate(x, 5000);
    const ex = normalised(exact32(gx, 8));
    for (let k = 0; k < S * S; k++) expect(Math.abs(p[k] - ex[k])).toBeLessThan(1e-12);
  });

  it('other grid and stamp sizes (from options), single-cell grids, and bad shapes', () => {
    const { img: im2, width: w2, height: h2, exact32: ex2 } = makeImage(4, 3, 11, 3);
    const g = new PsfGrid(im2, w2, h2, { stampSize: 11, quadrantWidth: 1000, quadrantHeight: 600 });
    expect([g.nx, g.ny]).toEqual([4, 3]);
    const x = 437.2;
    const y = 301.9;
    const p = g.interpolate(x, y);
    const ex = normalised(ex2(((x + 0.5) / 1000) * 4 - 0.5, ((y + 0.5) / 600) * 3 - 0.5));
    for (let k = 0; k < 121; k++) expect(Math.abs(p[k] - ex[k])).toBeLessThan(1e-12);
    const single = new PsfGrid(new Float32Array(9).fill(2), 3, 3, { stampSize: 3 });
    expect(Array.from(single.interpolate(10, 10))).toEqual(new Array(9).fill(1 / 9));
    expect(() => new PsfGrid(new Float32Array(190 * 189), 190, 189)).toThrow(DataError);
    const bad = new Float32Array(189 * 189).fill(1);
    bad[5] = NaN;
    expect(() => new PsfGrid(bad, 189, 189, { file: 'psf.fits', hdu: '3-4.F' })).toThrow(/psf\.fits.*3-4\.F.*non-finite/);
  });
});

describe('readPsfGrid', () => {
  it('reads one quadrant HDU of a multi-HDU PSF product, with and without grid header keys', async () => {
    const a = makeImage(N, N, S, 11);
    const b = makeImage(N, N, S, 12);
    const c = makeImage(3, 3, 15, 13);
    const bytes = writeFits([
      { kind: 'empty' },
      { name: '3-4.E', data: a.img, shape: [a.width, a.height] },
      { name: '3-4.F', data: b.img, shape: [b.width, b.height] },
      {
        name: '1-1.G',
        data: c.img,
        shape: [c.width, c.height],
        cards: psfGridHeaderCards({ nx: 3, ny: 3, stampSize: 15, quadrantWidth: 2048, quadrantHeight: 2066 }),
      },
    ]);
    const fits = await FitsFile.open(memorySource(bytes, 'psf.fits'));
    const g = await readPsfGrid(fits, '3-4.F');
    expect(g.nx).toBe(9);
    const x = 1234.5;
    const y = 77.25;
    const p = g.interpolate(x, y);
    const ex = normalised(b.exact32(((x + 0.5) / W) * 9 - 0.5, Math.max(((y + 0.5) / H) * 9 - 0.5, 0)));
    for (let k = 0; k < S * S; k++) expect(Math.abs(p[k] - ex[k])).toBeLessThan(1e-12);
    const g3 = await readPsfGrid(fits, '1-1.G');
    expect([g3.nx, g3.ny, g3.stampSize]).toEqual([3, 3, 15]);
    await expect(readPsfGrid(fits, '9-9.H')).rejects.toThrow(/psf\.fits.*9-9\.H/);
  });
});
