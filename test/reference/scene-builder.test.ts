/** The seeded test-scene factory delivers what the engine tests rely on. */
import { describe, expect, it } from 'vitest';
import { chooseTier, stampCorner } from '../../engine/model/geometry.ts';
import { makeRng, makeTestScene } from '../../engine/reference/scene-builder.ts';
import { validateExposureSet, validateParams } from '../../engine/model/validate.ts';

describe('makeRng', () => {
  it('is deterministic and its normals have mean 0 and variance 1', () => {
    const a = makeRng(42);
    const b = makeRng(42);
    for (let i = 0; i < 10; i++) expect(a.uniform()).toBe(b.uniform());
    const r = makeRng(7);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = r.normal();
      s += v;
      s2 += v * v;
    }
    // 5σ bounds: σ(mean) = 1/√n, σ(var) ≈ √(2/n)
    expect(Math.abs(s / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(s2 / n - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
  });
});

describe('makeTestScene', () => {
  const { set, params, jacobians } = makeTestScene({ seed: 4 });

  it('is valid, deterministic, and covers tiers, orientations, blends and invisible pairs', () => {
    validateExposureSet(set);
    validateParams(set, params);
    const again = makeTestScene({ seed: 4 });
    expect(again.set.quadrants[1].sci).toEqual(set.quadrants[1].sci);
    // tiers chosen by the SHINE rule from hlr in pixels
    expect(new Set(set.sources.map((s) => s.stampSize))).toEqual(new Set([64, 128, 256]));
    set.sources.forEach((s, i) => expect(chooseTier(params.hlr[i] / 0.1)).toBe(s.stampSize));
    // a 180° quadrant and a parity-flipped one
    expect(jacobians[1][0]).toBeCloseTo(-0.1, 12);
    expect(jacobians[1][3]).toBeCloseTo(-0.1, 12);
    expect(jacobians[2][0] * jacobians[2][3] - jacobians[2][1] * jacobians[2][2]).toBeLessThan(0);
    // visibility flag = stamp footprint overlaps the quadrant; at least one invisible pair
    let invisible = 0;
    for (const pr of set.pairs) {
      const q = set.quadrants[pr.quadrant];
      const N = set.sources[pr.source].stampSize;
      const cx = stampCorner(pr.x, N);
      const cy = stampCorner(pr.y, N);
      expect(pr.visible).toBe(cx < q.width && cx + N > 0 && cy < q.height && cy + N > 0);
      if (!pr.visible) invisible++;
      // sub-pixel positions
      expect(Math.abs(pr.x - Math.round(pr.x))).toBeGreaterThan(0);
    }
    expect(invisible).toBeGreaterThan(0);
    // blended: in quadrant 0, the 64-px stamps of the two smallest sources overlap others' stamps
    const q0 = set.pairs.filter((p) => p.quadrant === 0 && p.visible);
    let overlaps = 0;
    for (let a = 0; a < q0.length; a++)
      for (let b = a + 1; b < q0.length; b++) {
        const d = Math.max(Math.abs(q0[a].x - q0[b].x), Math.abs(q0[a].y - q0[b].y));
        if (d < 3 * (params.hlr[q0[a].source] + params.hlr[q0[b].source]) / 0.1) overlaps++;
      }
    expect(overlaps).toBeGreaterThan(0);
    // PSFs have unit sum; the data have flagged and NaN pixels
    for (const pr of set.pairs) if (pr.psf) expect(Array.from(pr.psf).reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12);
    const sci = set.quadrants[0].sci;
    expect(sci.some((v) => Number.isNaN(v))).toBe(true);
    expect(set.quadrants[0].flags.some((v) => (v & 1) !== 0)).toBe(true);
  });
});
