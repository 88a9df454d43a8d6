import { describe, expect, it } from 'vitest';
import { crossmatch, robustStats } from '../../engine/assemble/crossmatch.ts';
import { angularSeparation } from '../../engine/data/wcs/sphere.ts';
import { mulberry32 as rng } from '../../engine/util/rng.ts';

/** Independent oracle: haversine great-circle distance in arcsec, computed from scratch. */
function haversineArcsec(ra1: number, dec1: number, ra2: number, dec2: number): number {
  const d = Math.PI / 180;
  const s1 = Math.sin(((dec2 - dec1) * d) / 2);
  const s2 = Math.sin(((ra2 - ra1) * d) / 2);
  const h = s1 * s1 + Math.cos(dec1 * d) * Math.cos(dec2 * d) * s2 * s2;
  return (2 * Math.asin(Math.min(1, Math.sqrt(h))) * 180 * 3600) / Math.PI;
}


/** Random points in patches: around RA 0/360 at the equator, within 1 deg of both poles, and a mid-sky box. */
function patchCatalog(n: number, r: () => number): { ra: Float64Array; dec: Float64Array } {
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const kind = i % 4;
    if (kind === 0) {
      ra[i] = (360 + (r() - 0.5) * 0.02) % 360; // straddles RA = 0/360
      dec[i] = (r() - 0.5) * 0.02;
    } else if (kind === 1) {
      ra[i] = r() * 360;
      dec[i] = 90 - r() * 0.01; // within 36" of the north pole
    } else if (kind === 2) {
      ra[i] = r() * 360;
      dec[i] = -90 + r() * 0.01;
    } else {
      ra[i] = 150 + r() * 0.02;
      dec[i] = 2 + r() * 0.02;
    }
  }
  return { ra, dec };
}

describe('crossmatch', () => {
  it('finds the same nearest neighbour as an O(N·M) brute force (RA wrap, both poles)', () => {
    const r = rng(1);
    const A = patchCatalog(2000, r);
    const B = patchCatalog(2000, r);
    const radius = 20; // arcsec: many multi-candidate cases in these dense patches
    const res = crossmatch(A.ra, A.dec, B.ra, B.dec, { radiusArcsec: radius });
    const got = new Map<number, number>();
    for (let k = 0; k < res.aIndex.length; k++) got.set(res.aIndex[k], res.bIndex[k]);
    let matched = 0;
    let wrapPairs = 0;
    for (let i = 0; i < A.ra.length; i++) {
      let best = -1;
      let bestSep = Infinity;
      for (let j = 0; j < B.ra.length; j++) {
        const s = haversineArcsec(A.ra[i], A.dec[i], B.ra[j], B.dec[j]);
        if (s < bestSep) {
          bestSep = s;
          best = j;
        }
      }
      // skip ambiguous near-boundary / near-tie cases at the oracle's precision
      if (Math.abs(bestSep - radius) < 1e-6) continue;
      if (bestSep <= radius) {
        matched++;
        expect(got.get(i)).toBe(best);
        const k = res.aIndex.indexOf(i);
        expect(res.sepArcsec[k]).toBeCloseTo(bestSep, 6);
        if (Math.abs(A.ra[i] - B.ra[best]) > 180) wrapPairs++;
      } else expect(got.has(i)).toBe(false);
    }
    expect(matched).toBeGreaterThan(500);
    expect(wrapPairs).toBeGreaterThan(10); // pairs across RA = 0/360 were exercised
  });

  it('is inclusive at the radius and exclusive just beyond it', () => {
    const radius = 0.3;
    const dec0 = 89.99; // near the pole, where RA differences are large
    const step = radius / 3600;
    // B sources: one just inside, one just outside, along Dec and along a great circle through the pole
    const raA = [10, 200, 359.99999];
    const decA = [dec0, -45, 0];
    const raB = [10, 200, 359.99999 + (radius * (1 - 1e-6)) / 3600 - 360];
    const decB = [dec0 + step * (1 - 1e-6), -45 + step * (1 + 1e-6), 0];
    const res = crossmatch(raA, decA, raB, decB, { radiusArcsec: radius });
    expect(Array.from(res.aIndex)).toEqual([0, 2]);
    expect(Array.from(res.bIndex)).toEqual([0, 2]);
    for (let k = 0; k < res.aIndex.length; k++) {
      const i = res.aIndex[k];
      expect(res.sepArcsec[k]).toBeCloseTo(haversineArcsec(raA[i], decA[i], raB[i], decB[i]), 9);
    }
    // a B at exactly the radius (as the great-circle formula of sphere.ts computes it) is accepted
    const exactR = angularSeparation(0, 0, 0, step) * 3600;
    expect(crossmatch([0], [0], [0], [step], { radiusArcsec: exactR }).aIndex.length).toBe(1);
    // across the north pole: A and B on opposite meridians, 0.99 r apart through the pole
    const pole = crossmatch([0], [90 - 0.4 * step], [180], [90 - 0.59 * step], { radiusArcsec: radius });
    expect(Array.from(pole.bIndex)).toEqual([0]);
    expect(crossmatch([0], [90 - 0.4 * step], [180], [90 - 0.61 * step], { radiusArcsec: radius }).aIndex.length).toBe(0);
    expect(pole.sepArcsec[0]).toBeCloseTo(0.99 * radius, 9);
  });

  it('--unique uses each B once, greedily by separation', () => {
    // two A sources near one B: the closer one wins; the other falls back to its next B
    const raA = [0, 1 / 3600];
    const decA = [0, 0];
    const raB = [0.4 / 3600, 1.9 / 3600];
    const decB = [0, 0];
    const many = crossmatch(raA, decA, raB, decB, { radiusArcsec: 1 });
    expect(Array.from(many.bIndex)).toEqual([0, 0]);
    const one = crossmatch(raA, decA, raB, decB, { radiusArcsec: 1 });
    const uniq = crossmatch(raA, decA, raB, decB, { radiusArcsec: 1, unique: true });
    expect(one.aIndex.length).toBe(2);
    expect(Array.from(uniq.aIndex)).toEqual([0, 1]);
    expect(Array.from(uniq.bIndex)).toEqual([0, 1]);
    expect(uniq.sepArcsec[1]).toBeCloseTo(0.9, 9);
  });

  it('--unique equals a brute-force greedy assignment over all pairs', () => {
    const r = rng(5);
    const A = patchCatalog(800, r);
    const B = patchCatalog(600, r);
    const radius = 30;
    const pairs: Array<[number, number, number]> = [];
    for (let i = 0; i < A.ra.length; i++)
      for (let j = 0; j < B.ra.length; j++) {
        const s = haversineArcsec(A.ra[i], A.dec[i], B.ra[j], B.dec[j]);
        if (s <= radius) pairs.push([s, i, j]);
      }
    pairs.sort((x, y) => x[0] - y[0] || x[1] - y[1] || x[2] - y[2]);
    const usedA = new Set<number>();
    const usedB = new Set<number>();
    const want = new Map<number, number>();
    for (const [, i, j] of pairs) {
      if (usedA.has(i) || usedB.has(j)) continue;
      usedA.add(i);
      usedB.add(j);
      want.set(i, j);
    }
    const res = crossmatch(A.ra, A.dec, B.ra, B.dec, { radiusArcsec: radius, unique: true });
    const got = new Map<number, number>();
    for (let k = 0; k < res.aIndex.length; k++) got.set(res.aIndex[k], res.bIndex[k]);
    expect(new Set(res.bIndex).size).toBe(res.bIndex.length);
    expect(want.size).toBeGreaterThan(300);
    expect(got).toEqual(want);
  });

  it('robust statistics match direct definitions', () => {
    const v = [1, 2, 3, 4, 100, NaN];
    const s = robustStats(v);
    expect(s.n).toBe(5);
    expect(s.median).toBe(3);
    // deviations 2,1,0,1,97 → median 1
    expect(s.scatter).toBeCloseTo(1.4826, 12);
  });

  it('matches 200k × 200k quickly', () => {
    const r = rng(7);
    const n = 200_000;
    const raA = new Float64Array(n);
    const decA = new Float64Array(n);
    const raB = new Float64Array(n);
    const decB = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      // a 0.7 deg × 0.7 deg field straddling RA = 0, B = A displaced by ~0.1"
      raA[i] = (360 + (r() - 0.5) * 0.7) % 360;
      decA[i] = -30 + r() * 0.7;
      raB[i] = (raA[i] + (r() - 0.5) * 0.2 / 3600 + 360) % 360;
      decB[i] = decA[i] + (r() - 0.5) * 0.2 / 3600;
    }
    const t0 = performance.now();
    const res = crossmatch(raA, decA, raB, decB, { radiusArcsec: 0.3 });
    const dt = (performance.now() - t0) / 1000;
    console.log(`crossmatch 200k x 200k: ${dt.toFixed(2)} s, ${res.aIndex.length} matches`);
    expect(res.aIndex.length).toBeGreaterThan(0.95 * n);
  });
});
