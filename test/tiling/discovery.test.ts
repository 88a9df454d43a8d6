/**
 * Quadrant discovery vs an independent brute-force oracle.
 *
 * Oracle (no polygons, no index): a quadrant meets a sub-tile's extended box when a point of the
 * box's boundary maps (sky → pixel, the WCS inverse) inside the quadrant's pixel area, or a point
 * of the quadrant's pixel boundary maps (pixel → sky → tile plane) inside the box, or the box
 * centre lies in the quadrant. Sampling is made rigorous by testing the box shrunk by δ ("surely
 * in" when a witness is found) and grown by δ ("surely out" when none is), with sampling steps
 * below δ; pairs within δ of touching are skipped (and counted, to be rare).
 */
import { describe, expect, it } from 'vitest';
import { createWcs, type Wcs } from '../../engine/data/wcs/wcs.ts';
import { angularSeparation } from '../../engine/data/wcs/sphere.ts';
import { TileGeometry, type PlaneBox } from '../../engine/tiling/geometry.ts';
import { QuadrantIndex, boxOutlineSky, discoverQuadrants, quadrantOutline, outlineOnPlane, type QuadrantRecord } from '../../engine/tiling/quadrants.ts';
import { polygonIntersectsRect } from '../../engine/tiling/polygon.ts';
import { mulberry32 as rng } from '../../engine/util/rng.ts';


const W = 2048;
const H = 2066;

/** A quadrant WCS centred at (ra, dec), rotated by `angle` degrees, 0.1″ pixels, optional TPV distortion. */
function quadWcs(ra: number, dec: number, angle: number, tpv: boolean): Wcs {
  const s = 0.1 / 3600;
  const a = (angle * Math.PI) / 180;
  const cd: [number, number, number, number] = [-s * Math.cos(a), s * Math.sin(a), s * Math.sin(a), s * Math.cos(a)];
  const base = { crpix: [W / 2 + 0.5, H / 2 + 0.5] as [number, number], crval: [ra, dec] as [number, number], cd, naxis: [W, H] as [number, number] };
  if (!tpv) return createWcs(base);
  // a mild radial + quadratic distortion (ξ' = ξ + k ξ r² + q ξ², …)
  const pv1: Record<number, number> = { 1: 1, 4: 2e-3, 7: 5e-3, 9: 5e-3 };
  const pv2: Record<number, number> = { 1: 1, 4: -1.5e-3, 7: 5e-3, 9: 5e-3 };
  return createWcs({ ...base, kind: 'TPV', pv1, pv2 });
}

interface Q {
  rec: QuadrantRecord;
  wcs: Wcs;
}

function makeQuads(geom: TileGeometry, n: number, seed: number, spread: number): Q[] {
  const r = rng(seed);
  const out: Q[] = [];
  for (let i = 0; i < n; i++) {
    const xi = (r() - 0.5) * 2 * spread;
    const eta = (r() - 0.5) * 2 * spread;
    const [ra, dec] = geom.toSky(xi, eta);
    const kind = i % 4;
    const angle = kind === 0 ? 0 : kind === 1 ? 180 : kind === 2 ? 90 : 360 * r();
    const wcs = quadWcs(ra, dec, angle, i % 3 === 0);
    out.push({
      wcs,
      rec: {
        id: `q${i}@exp0`, exposure: 'exp0', quadrant: `q${i}`, file: 'f.fits', sciHdu: `q${i}.SCI`, rmsHdu: `q${i}.RMS`, flgHdu: `q${i}.FLG`,
        width: W, height: H, outline: quadrantOutline(wcs, W, H),
      },
    });
  }
  return out;
}

/** Dense pixel-boundary samples of a quadrant on the tile plane. */
function pixelBoundaryOnPlane(geom: TileGeometry, wcs: Wcs, stepPx: number): Array<[number, number]> {
  const pts: Array<[number, number]> = [];
  const x0 = -0.5, x1 = W - 0.5, y0 = -0.5, y1 = H - 0.5;
  const push = (x: number, y: number) => {
    const [ra, dec] = wcs.pixelToSky(x, y);
    pts.push(geom.toPlane(ra, dec));
  };
  for (let x = x0; x < x1; x += stepPx) { push(x, y0); push(x, y1); }
  for (let y = y0; y < y1; y += stepPx) { push(x0, y); push(x1, y); }
  push(x1, y1);
  return pts;
}

function grow(b: PlaneBox, d: number): PlaneBox {
  return { xi: [b.xi[0] - d, b.xi[1] + d], eta: [b.eta[0] - d, b.eta[1] + d] };
}

function oracleMeets(geom: TileGeometry, wcs: Wcs, boundary: Array<[number, number]>, box: PlaneBox, stepArcsec: number): boolean {
  for (const [x, y] of boundary) if (x >= box.xi[0] && x <= box.xi[1] && y >= box.eta[0] && y <= box.eta[1]) return true;
  const inQuad = (xi: number, eta: number) => {
    const [ra, dec] = geom.toSky(xi, eta);
    const [px, py] = wcs.skyToPixel(ra, dec);
    return px >= -0.5 && px <= W - 0.5 && py >= -0.5 && py <= H - 0.5;
  };
  const [a0, a1] = box.xi;
  const [b0, b1] = box.eta;
  if (inQuad((a0 + a1) / 2, (b0 + b1) / 2)) return true;
  for (let t = a0; t <= a1; t += stepArcsec) if (inQuad(t, b0) || inQuad(t, b1)) return true;
  for (let t = b0; t <= b1; t += stepArcsec) if (inQuad(a0, t) || inQuad(a1, t)) return true;
  return false;
}

function checkAgainstOracle(geom: TileGeometry, quads: Q[]) {
  const index = new QuadrantIndex(quads.map((q) => q.rec));
  const found = discoverQuadrants(geom, index);
  const delta = 1.0; // arcsec
  let ambiguous = 0;
  let pairs = 0;
  let hits = 0;
  const mismatches: string[] = [];
  const boundaries = quads.map((q) => pixelBoundaryOnPlane(geom, q.wcs, 4)); // 0.4″ steps
  for (const st of geom.subTiles()) {
    const got = new Set(found[st.index]);
    for (let i = 0; i < quads.length; i++) {
      const bnd = boundaries[i];
      // quick reject far from the box (the boundary samples bound the quadrant)
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      for (const [x, y] of bnd) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
      const far = x1 < st.extended.xi[0] - 5 || x0 > st.extended.xi[1] + 5 || y1 < st.extended.eta[0] - 5 || y0 > st.extended.eta[1] + 5;
      pairs++;
      let want: boolean | null;
      if (far) want = false;
      else {
        const surelyIn = oracleMeets(geom, quads[i].wcs, bnd, grow(st.extended, -delta), 0.5);
        const maybe = surelyIn || oracleMeets(geom, quads[i].wcs, bnd, grow(st.extended, delta), 0.5);
        want = surelyIn ? true : maybe ? null : false;
      }
      if (want === null) { ambiguous++; continue; }
      if (want) hits++;
      if (got.has(i) !== want) mismatches.push(`quadrant ${i} sub-tile (${st.row}, ${st.col}): discovery ${got.has(i)}, oracle ${want}`);
    }
  }
  expect(mismatches).toEqual([]);
  expect(hits).toBeGreaterThan(10);
  expect(ambiguous).toBeLessThan(pairs * 0.02);
  return { found, hits, ambiguous, pairs };
}

describe('quadrant discovery equals a brute-force oracle', () => {
  it('ci-like tile (4′ core, 1′ sub-tiles, 12″ margin): rotations 0°, 90°, 180°, random; TAN and TPV', () => {
    const geom = new TileGeometry({ tileId: 1, ra: 57.9990741, dec: -51.5, coreArcsec: 240, extendedArcsec: 360 }, { rows: 4, cols: 4, marginArcsec: 12 });
    const quads = makeQuads(geom, 24, 11, 260);
    const { found } = checkAgainstOracle(geom, quads);
    // a quadrant rotated 180° is discovered somewhere
    expect(found.some((l) => l.some((i) => i % 4 === 1))).toBe(true);
  });

  it('full MER tile geometry (30′, 4 × 4, 1′ margin)', () => {
    const geom = new TileGeometry({ tileId: 2, ra: 150.1, dec: 2.2, coreArcsec: 1800, extendedArcsec: 1920 }, { rows: 4, cols: 4, marginArcsec: 60 });
    checkAgainstOracle(geom, makeQuads(geom, 40, 12, 1000));
  });

  it('a tile straddling RA = 0/360, quadrants on both sides', () => {
    const geom = new TileGeometry({ tileId: 3, ra: 0.02, dec: 0.5, coreArcsec: 240, extendedArcsec: 360 }, { rows: 4, cols: 4, marginArcsec: 12 });
    const quads = makeQuads(geom, 24, 13, 260);
    const ras = quads.flatMap((q) => q.rec.outline.map((p) => p[0]));
    expect(ras.some((x) => x > 359)).toBe(true);
    expect(ras.some((x) => x < 1)).toBe(true);
    const { found } = checkAgainstOracle(geom, quads);
    // some discovered quadrant straddles RA = 0 itself
    const straddles = (q: Q) => q.rec.outline.some((p) => p[0] > 359) && q.rec.outline.some((p) => p[0] < 1);
    expect(found.some((l) => l.some((i) => straddles(quads[i])))).toBe(true);
  });
});

describe('survey-scale quadrant index', () => {
  it('30k quadrants (uniform + clustered at tiles, poles, RA = 0): tile queries find every overlapping quadrant (vs a full scan)', () => {
    const r = rng(21);
    const recs: QuadrantRecord[] = [];
    const n = 30000;
    const tiles: Array<[number, number]> = [[0.0, -29.9], [359.99, -29.8], [12, 89.9], [200, -89.95], [45, 10], [300, -45]];
    for (let i = 0; i < n; i++) {
      // half uniform on the sphere, half within ~1° of the test tiles
      let ra = 360 * r();
      let dec = (Math.asin(2 * r() - 1) * 180) / Math.PI;
      if (i % 2 === 1) {
        const t = tiles[(i >> 1) % tiles.length];
        const g = new TileGeometry({ tileId: 0, ra: t[0], dec: t[1], coreArcsec: 1, extendedArcsec: 1 }, { rows: 1, cols: 1, marginArcsec: 0 });
        [ra, dec] = g.toSky((r() - 0.5) * 7200, (r() - 0.5) * 7200);
      }
      if (i === 40) { ra = 12; dec = 90; }
      if (i === 42) { ra = 200; dec = -89.99; }
      const wcs = quadWcs(((ra % 360) + 360) % 360, dec, 360 * r(), false);
      recs.push({ id: `${i}`, exposure: 'exp0', quadrant: `${i}`, file: '', sciHdu: '', rmsHdu: '', flgHdu: '', width: W, height: H, outline: quadrantOutline(wcs, W, H) });
    }
    const t0 = performance.now();
    const index = new QuadrantIndex(recs);
    const tBuild = performance.now() - t0;
    for (let k = 0; k < 6; k++) tiles.push([360 * r(), (Math.asin(2 * r() - 1) * 180) / Math.PI]);
    for (const [ra, dec] of tiles) {
      const geom = new TileGeometry({ tileId: 9, ra, dec, coreArcsec: 1800, extendedArcsec: 1920 }, { rows: 4, cols: 4, marginArcsec: 60 });
      const area = geom.allExtended();
      const cand = new Set(index.candidates(boxOutlineSky(geom, area, 64)));
      // full scan: every record whose plane outline meets the tile's extended area
      const truth: number[] = [];
      for (let i = 0; i < n; i++) {
        // cheap, safe pre-filter: a quadrant (diagonal < 0.1°) farther than 1° from the centre cannot meet a 32′ tile
        if (angularSeparation(ra, dec, recs[i].outline[0][0], recs[i].outline[0][1]) > 1) continue;
        const p = outlineOnPlane(geom, recs[i]);
        if (p && polygonIntersectsRect(p.xi, p.eta, area)) truth.push(i);
      }
      for (const i of truth) expect(cand.has(i), `tile (${ra}, ${dec}) misses quadrant ${i}`).toBe(true);
      // and the discovery result is the exact subset
      const found = new Set(discoverQuadrants(geom, index).flat());
      const truthSet = new Set(truth);
      for (const i of found) expect(truthSet.has(i)).toBe(true);
      if (tiles.indexOf(tiles.find((t) => t[0] === ra && t[1] === dec)!) < 6) expect(truth.length).toBeGreaterThan(50);
      // the index keeps the candidate list small (no full scan)
      expect(cand.size).toBeLessThan(truth.length * 3 + 50);
    }
    console.log(`QuadrantIndex of ${n} quadrants built in ${tBuild.toFixed(0)} ms`);
  });
});
