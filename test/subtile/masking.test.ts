/**
 * Masked unmodelled objects leave the likelihood exactly as flagged pixels do: the engine's logL
 * with the unmodelled-object bit in its mask equals the float64 reference's logL over the pixels
 * a brute-force disc test leaves (there marked unusable through rms = 0, the flags untouched); the
 * per-quadrant χ² of the metadata equals −2 × the reference's per-quadrant logL, over the engine's
 * pixel count; a modelled source centre inside a disc is counted and warned about.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64 } from '../../engine/gpu/render/model64.ts';
import type { ExposureSet, QuadrantData } from '../../engine/scene/types.ts';
import { applyUnmodelledMask, maskRadiusArcsec, UNMODELLED_FLAG_BIT, type PixelProjection, type UnmodelledList } from '../../engine/exposures/masking.ts';
import { quadrantChi2 } from '../../engine/subtile/quadrant-chi2.ts';
import { defaultConfig } from '../../engine/config/index.ts';

let device: GPUDevice;
beforeAll(async () => {
  device = await testDevice();
});

/** A flat sky for the test scene: "ra, dec" are the world (u, v) in arcsec; pixel = origin + J⁻¹ (u, v). */
function flatProjection(set: ExposureSet, world: Array<[number, number]>, j: number): PixelProjection {
  const pr = set.pairs.find((p) => p.quadrant === j)!;
  const [a, b, c, d] = pr.jacobian;
  const det = a * d - b * c;
  const inv = [d / det, -b / det, -c / det, a / det];
  const [u0, v0] = world[pr.source];
  const ox = pr.x - (inv[0] * u0 + inv[1] * v0);
  const oy = pr.y - (inv[2] * u0 + inv[3] * v0);
  return {
    skyToPixel: (u, v) => [ox + inv[0] * u + inv[1] * v, oy + inv[2] * u + inv[3] * v],
    localJacobian: () => [a, b, c, d],
  };
}

describe('unmodelled-object mask in the likelihood', () => {
  it('engine logL with the mask = float64 reference logL over the unmasked pixels; χ² per quadrant = −2 logL64', async () => {
    const { set, params, world } = makeTestScene({ seed: 11, nSources: 6 });
    const masking = { ...defaultConfig().masking, footprint_scale: 1, footprint_min_arcsec: 0 };
    // four unmodelled objects: two footprints beside the sources, one on source 1's centre, a bright star
    const [s0u, s0v] = world[0];
    const [s1u, s1v] = world[1];
    const list: UnmodelledList = {
      search: { beyond_extended_arcsec: 9.28, rule: { ...masking } },
      object_id: ['1', '2', '3', '4'],
      ra: [s0u + 1.1, s0u - 0.9, s1u, 3.5],
      dec: [s0v + 0.4, s0v - 1.2, s1v, -2.5],
      mag: [24, 25, 23.5, 19],
      semimajor_arcsec: [0.8, 0.45, 0.3, 0.05],
      point_like: [false, false, false, true],
      cut: ['snr', 'snr', 'det_quality', 'point_like'],
    };
    const radii = list.ra.map((_, k) => maskRadiusArcsec({ mag: list.mag[k], semimajorArcsec: list.semimajor_arcsec[k], pointLike: list.point_like[k] }, masking));
    expect(radii[3]).toBeCloseTo(1.5 * 10 ** 0.2, 12); // the halo of a mag-19 star
    const wcs = set.quadrants.map((_, j) => flatProjection(set, world, j));
    const baseMask = 0x1;
    const unmaskedFlags = set.quadrants.map((q) => q.flags.slice());
    const r = applyUnmodelledMask({ quadrants: set.quadrants, wcs, pairs: set.pairs, sourceName: (k) => `src${k}` }, list, masking, baseMask);
    expect(r.engineMask).toBe((baseMask | UNMODELLED_FLAG_BIT) >>> 0);
    expect(r.summary.masked).toBe(4);
    expect(r.summary.covered_source_centres).toBeGreaterThanOrEqual(1);
    expect(r.warnings.join('\n')).toMatch(/modelled source\(s\) have their centre inside an unmodelled object's mask \(.*src1.*; they are fitted shear-blind \(masking.covered_centres\)/);
    // which ones: a source is covered when its centre pixel is inside some disc (brute force below)
    expect(r.summary.covered_sources).toContain(1);
    expect(r.summary.covered_sources.length).toBe(r.summary.covered_source_centres);

    // brute force over every pixel: |J (p − c)| ≤ r; the reference marks those pixels with rms = 0
    const refQuadrants: QuadrantData[] = set.quadrants.map((q, j) => {
      const rms = q.rms.slice();
      const J = wcs[j].localJacobian(0, 0);
      let n = 0;
      let wrong = 0;
      let touched = 0;
      for (let y = 0; y < q.height; y++) {
        for (let x = 0; x < q.width; x++) {
          const inside = list.ra.some((u, k) => {
            const [cx, cy] = wcs[j].skyToPixel(u, list.dec[k]);
            const du = J[0] * (x - cx) + J[1] * (y - cy);
            const dv = J[2] * (x - cx) + J[3] * (y - cy);
            return Math.hypot(du, dv) <= radii[k];
          });
          const i = y * q.width + x;
          if (((q.flags[i] & UNMODELLED_FLAG_BIT) !== 0) !== inside) wrong++;
          if ((q.flags[i] & ~UNMODELLED_FLAG_BIT) !== unmaskedFlags[j][i]) touched++; // other bits untouched
          if (inside) {
            rms[i] = 0;
            n++;
          }
        }
      }
      expect(wrong, q.name).toBe(0);
      expect(touched, q.name).toBe(0);
      expect(n).toBe(r.summary.pixels[j]);
      return { ...q, rms, flags: unmaskedFlags[j] };
    });
    expect(r.summary.pixels.reduce((a, b) => a + b, 0)).toBeGreaterThan(500);
    const refSet: ExposureSet = { ...set, quadrants: refQuadrants };
    const ref = logLikelihood64(refSet, params, { badPixelMask: baseMask });
    const refUnmasked = logLikelihood64({ ...set, quadrants: set.quadrants.map((q, j) => ({ ...q, flags: unmaskedFlags[j] })) }, params, { badPixelMask: baseMask });

    const eng = await ShearEngine.create(device, set, { badPixelMask: r.engineMask });
    try {
      const ev = await eng.evaluate(params);
      console.log(`logL engine ${ev.logL.toFixed(4)} (${ev.nPixels} px), f64 masked ${ref.logL.toFixed(4)} (${ref.nPixels} px), f64 unmasked ${refUnmasked.logL.toFixed(4)} (${refUnmasked.nPixels} px)`);
      expect(ev.nPixels).toBe(ref.nPixels);
      expect(ref.nPixels).toBeLessThan(refUnmasked.nPixels - 500);
      expect(Math.abs(ev.logL - ref.logL) / Math.abs(ref.logL)).toBeLessThan(1e-5);
      // the χ² of the metadata: −2 × the reference's per-quadrant logL, over the engine's pixels
      const chi2 = quadrantChi2(set, await eng.render(params), r.engineMask, UNMODELLED_FLAG_BIT);
      chi2.forEach((c, j) => {
        expect(c.n_pixels).toBe(eng.layout.quadrants[j].nPixels);
        expect(Math.abs(c.chi2 + 2 * ref.perQuadrant[j]) / c.chi2).toBeLessThan(1e-5);
        expect(c.chi2_per_pixel).toBeCloseTo(c.chi2 / c.n_pixels, 12);
        expect(c.masked_unmodelled_all).toBe(r.summary.pixels[j]);
      });
      expect(chi2.reduce((a, c) => a + c.n_pixels, 0)).toBe(ref.nPixels);
      // masked_unmodelled: exactly the likelihood pixels the mask took away
      expect(chi2.reduce((a, c) => a + c.masked_unmodelled, 0)).toBe(refUnmasked.nPixels - ref.nPixels);
    } finally {
      eng.destroy();
    }
  }, 120_000);

  it('masking.unmodelled: none leaves flags and mask alone', () => {
    const { set, world } = makeTestScene({ seed: 12, nSources: 3 });
    const before = set.quadrants.map((q) => q.flags.slice());
    const list: UnmodelledList = {
      search: { beyond_extended_arcsec: 9.28, rule: { ...defaultConfig().masking } },
      object_id: ['1'],
      ra: [world[0][0]],
      dec: [world[0][1]],
      mag: [18],
      semimajor_arcsec: [0.1],
      point_like: [true],
      cut: ['point_like'],
    };
    const r = applyUnmodelledMask(
      { quadrants: set.quadrants, wcs: set.quadrants.map((_, j) => flatProjection(set, world, j)), pairs: set.pairs, sourceName: String },
      list,
      { ...defaultConfig().masking, unmodelled: 'none' },
      0x1,
    );
    expect(r.engineMask).toBe(0x1);
    expect(r.summary.mode).toBe('none');
    expect(r.warnings).toEqual([]);
    set.quadrants.forEach((q, j) => expect(Array.from(q.flags)).toEqual(Array.from(before[j])));
  });
});
