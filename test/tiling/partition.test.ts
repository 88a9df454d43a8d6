import { describe, expect, it } from 'vitest';
import { TileGeometry, intervalIndex } from '../../engine/tiling/geometry.ts';
import { partitionSources, partitionSourcesBruteForce } from '../../engine/tiling/partition.ts';
import { mulberry32 as rng } from '../../engine/util/rng.ts';


const MER = { tileId: 102159490, ra: 269.19, dec: -28.39, coreArcsec: 1800, extendedArcsec: 1920 };

/** The number of sub-tile cores holding (ξ, η), by testing every box (no index, no floor()). */
function coreCount(g: TileGeometry, xi: number, eta: number): number {
  let n = 0;
  for (const s of g.subTiles()) if (xi >= s.core.xi[0] && xi < s.core.xi[1] && eta >= s.core.eta[0] && eta < s.core.eta[1]) n++;
  return n;
}

describe('sub-tile grid partitions the tile core', () => {
  for (const [rows, cols] of [[4, 4], [3, 5], [7, 7], [1, 1]] as const) {
    it(`${rows} × ${cols}: random points lie in exactly one sub-tile core`, () => {
      const g = new TileGeometry(MER, { rows, cols, marginArcsec: 60 });
      const r = rng(rows * 100 + cols);
      let bad = 0;
      for (let k = 0; k < 20000; k++) {
        const xi = -900 + 1800 * r();
        const eta = -900 + 1800 * r();
        if (coreCount(g, xi, eta) !== 1) bad++;
        const cell = g.coreCell(xi, eta)!;
        const box = g.subTile(cell[0], cell[1]).core;
        if (!(xi >= box.xi[0] && xi < box.xi[1] && eta >= box.eta[0] && eta < box.eta[1])) bad++;
      }
      expect(bad).toBe(0);
    });
  }

  it('points exactly on the boundaries (and one ulp either side) lie in exactly one core', () => {
    for (const [rows, cols] of [[4, 4], [3, 7]] as const) {
      const g = new TileGeometry(MER, { rows, cols, marginArcsec: 60 });
      // boundary values computed independently of the geometry: −900 + 1800 k / n
      const xs: number[] = [];
      const ys: number[] = [];
      const ulp = (x: number, s: number) => x + s * Math.max(Math.abs(x), 1) * Number.EPSILON;
      for (let k = 0; k <= cols; k++) {
        const x = -900 + (1800 * k) / cols;
        xs.push(x, ulp(x, -1), ulp(x, 1), g.xiEdges[k]);
      }
      for (let k = 0; k <= rows; k++) {
        const y = -900 + (1800 * k) / rows;
        ys.push(y, ulp(y, -1), ulp(y, 1), g.etaEdges[k]);
      }
      for (const x of xs) {
        for (const y of ys) {
          const inside = x >= -900 && x < 900 && y >= -900 && y < 900;
          expect(coreCount(g, x, y)).toBe(inside ? 1 : 0);
          expect(g.coreCell(x, y) !== null).toBe(inside);
        }
      }
      // the core's first corner is in sub-tile (0, 0); the far edges belong to no core (half-open)
      expect(g.coreCell(-900, -900)).toEqual([0, 0]);
      expect(g.coreCell(900, 0)).toBeNull();
      expect(g.coreCell(0, 900)).toBeNull();
    }
  });

  it('orientation: column 0 is West (lowest RA), row 0 South (lowest Dec)', () => {
    const g = new TileGeometry({ ...MER, dec: 10 }, { rows: 4, cols: 4, marginArcsec: 60 });
    const sw = g.subTile(0, 0);
    const ne = g.subTile(3, 3);
    const [raSW, decSW] = g.toSky((sw.core.xi[0] + sw.core.xi[1]) / 2, (sw.core.eta[0] + sw.core.eta[1]) / 2);
    const [raNE, decNE] = g.toSky((ne.core.xi[0] + ne.core.xi[1]) / 2, (ne.core.eta[0] + ne.core.eta[1]) / 2);
    expect(raSW).toBeLessThan(MER.ra);
    expect(decSW).toBeLessThan(10);
    expect(raNE).toBeGreaterThan(MER.ra);
    expect(decNE).toBeGreaterThan(10);
  });

  it('sky ranges straddling RA = 0 are reported wrapped (lo > hi); a polar box spans all RA', () => {
    const g = new TileGeometry({ ...MER, ra: 0.05, dec: 3 }, { rows: 4, cols: 4, marginArcsec: 60 });
    const r = g.skyRange(g.core);
    expect(r.ra[0]).toBeGreaterThan(359.5);
    expect(r.ra[1]).toBeLessThan(0.5);
    // 30′ at Dec 3°: half width in RA ≈ 0.25° / cos 3°
    expect(r.ra[1] + 360 - r.ra[0]).toBeCloseTo(0.5 / Math.cos((3 * Math.PI) / 180), 3);
    const p = new TileGeometry({ ...MER, ra: 10, dec: 89.9 }, { rows: 4, cols: 4, marginArcsec: 60 });
    const pr = p.skyRange(p.core);
    expect(pr.ra).toEqual([0, 360]);
    expect(pr.dec[1]).toBe(90);
  });

  it('intervalIndex agrees with a linear scan of the edges', () => {
    const e = Float64Array.from([-3, -1.1, 0.2, 0.2000000001, 5]);
    const r = rng(5);
    for (let k = 0; k < 5000; k++) {
      const x = -4 + 10 * r();
      let want = -1;
      for (let i = 0; i < e.length - 1; i++) if (x >= e[i] && x < e[i + 1]) want = i;
      expect(intervalIndex(e, x)).toBe(want);
    }
    for (let i = 0; i < e.length; i++) expect(intervalIndex(e, e[i])).toBe(i < e.length - 1 ? i : -1);
  });
});

describe('source partition', () => {
  it('a source near a sub-tile corner is in 4 extended sets and 1 core', () => {
    const g = new TileGeometry(MER, { rows: 4, cols: 4, marginArcsec: 60 });
    // the corner shared by sub-tiles (1,1), (1,2), (2,1), (2,2) is at ξ = 0, η = 0; move 5″ into (2, 2)
    const [ra, dec] = g.toSky(5, 5);
    const p = partitionSources(g, [ra], [dec]);
    const inExt = p.subTiles.filter((s) => s.extended.length === 1).map((s) => [s.row, s.col]);
    expect(inExt).toEqual([[1, 1], [1, 2], [2, 1], [2, 2]]);
    const inCore = p.subTiles.filter((s) => s.nCore === 1).map((s) => [s.row, s.col]);
    expect(inCore).toEqual([[2, 2]]);
    // an edge-midpoint source: 2 extended sets; a central one: 1
    const [ra2, dec2] = g.toSky(-225, 3);
    const [ra3, dec3] = g.toSky(-225, -225);
    const p2 = partitionSources(g, [ra2, ra3], [dec2, dec3]);
    expect(p2.subTiles.filter((s) => s.extended.includes(0)).map((s) => [s.row, s.col])).toEqual([[1, 1], [2, 1]]);
    expect(p2.subTiles.filter((s) => s.extended.includes(1)).map((s) => [s.row, s.col])).toEqual([[1, 1]]);
  });

  for (const centre of [[269.19, -28.39], [0.03, 1.2], [359.98, -60], [120, 88.5]] as const) {
    it(`KD-tree partition equals the brute-force scan (tile at ${centre.join(', ')})`, () => {
      const g = new TileGeometry({ ...MER, ra: centre[0], dec: centre[1] }, { rows: 4, cols: 4, marginArcsec: 60 });
      const r = rng(Math.round(centre[0] * 1000));
      const n = 30000;
      const ra = new Float64Array(n);
      const dec = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        // positions over the extended tile and beyond, some exactly on sub-tile edges
        let xi = -1100 + 2200 * r();
        let eta = -1100 + 2200 * r();
        if (i % 50 === 0) xi = g.xiEdges[i % 5];
        if (i % 70 === 0) eta = g.etaEdges[(i / 70) % 5] - 60;
        [ra[i], dec[i]] = g.toSky(xi, eta);
      }
      const fast = partitionSources(g, ra, dec);
      const slow = partitionSourcesBruteForce(g, ra, dec);
      let total = 0;
      for (let s = 0; s < 16; s++) {
        expect(Array.from(fast.subTiles[s].extended)).toEqual(Array.from(slow.subTiles[s].extended));
        expect(Array.from(fast.subTiles[s].core)).toEqual(Array.from(slow.subTiles[s].core));
        total += fast.subTiles[s].nCore;
      }
      // every source inside the tile core is in exactly one core set
      let inCore = 0;
      for (let i = 0; i < n; i++) {
        const [xi, eta] = g.toPlane(ra[i], dec[i]);
        if (xi >= -900 && xi < 900 && eta >= -900 && eta < 900) inCore++;
      }
      expect(total).toBe(inCore);
    });
  }

  it('200k sources on an 8 × 8 grid: core fraction as expected', () => {
    const g = new TileGeometry(MER, { rows: 8, cols: 8, marginArcsec: 60 });
    const r = rng(9);
    const n = 200000;
    const ra = new Float64Array(n);
    const dec = new Float64Array(n);
    for (let i = 0; i < n; i++) [ra[i], dec[i]] = g.toSky(-1000 + 2000 * r(), -1000 + 2000 * r());
    const p = partitionSources(g, ra, dec);
    let core = 0;
    let ext = 0;
    for (const s of p.subTiles) {
      core += s.nCore;
      ext += s.extended.length;
    }
    // fraction of the 2000″ square in the 1800″ core ≈ 0.81; extended overhead ≈ (225+120)²/225² per sub-tile (interior)
    expect(core / n).toBeGreaterThan(0.8);
    expect(core / n).toBeLessThan(0.82);
    expect(ext).toBeGreaterThan(core);
  });
});
