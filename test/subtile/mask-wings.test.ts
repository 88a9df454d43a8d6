/**
 * `masking.wing_flux_mag`: an unmodelled galaxy's disc is widened until the light its exponential
 * profile leaves outside holds less than the flux of a given AB magnitude. Oracles: the half-light
 * radius of the exponential (GalSim's hlr / r0 = 1.6783469900166605), Simpson quadrature of the
 * radial profile, and a brute-force float64 pixel sum of a rendered exponential outside the radius.
 */
import { describe, expect, it } from 'vitest';
import { exponentialWingX, maskRadiusArcsec, wingRadiusArcsec } from '../../engine/exposures/masking.ts';
import { ManifestUnmodelledSchema } from '../../engine/tiling/manifest.ts';
import { defaultConfig } from '../../engine/config/index.ts';

/** ∫_x^∞ t e^(−t) dt by composite Simpson over [x, x + 80] (the tail beyond is < 1e-33). */
function outsideFraction(x: number): number {
  const n = 20000;
  const h = 80 / n;
  const f = (t: number) => t * Math.exp(-t);
  let s = f(x) + f(x + 80);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(x + i * h);
  return (s * h) / 3;
}

describe('wing radius of an exponential', () => {
  it('q = 1/2 gives the half-light radius (GalSim hlr / r0); other q match a quadrature of the profile', () => {
    expect(exponentialWingX(0.5)).toBeCloseTo(1.6783469900166605, 12);
    for (const q of [0.2, 0.04, 1e-3, 1e-6, 1e-12]) {
      const x = exponentialWingX(q);
      expect(outsideFraction(x) / q).toBeCloseTo(1, 9);
    }
    expect(exponentialWingX(1)).toBe(0);
    expect(exponentialWingX(3)).toBe(0);
  });

  it('a rendered exponential holds the flux of wing_flux_mag outside the radius (float64 pixel sum)', () => {
    // mag 22, hlr 0.3″, wings to mag 30: outside flux 10^(−3.2) of the total
    const mag = 22;
    const hlr = 0.3;
    const r = wingRadiusArcsec(mag, hlr, 30);
    const r0 = hlr / 1.6783469900166605;
    const pix = 0.004;
    const half = Math.ceil((r + 40 * r0) / pix);
    let total = 0;
    let outside = 0;
    for (let j = -half; j <= half; j++) {
      for (let i = -half; i <= half; i++) {
        const rr = Math.hypot(i * pix, j * pix);
        const v = Math.exp(-rr / r0);
        total += v;
        if (rr > r) outside += v;
      }
    }
    const want = 10 ** (-0.4 * (30 - mag));
    console.log(`mag 22, hlr 0.3″, wings to mag 30: radius ${r.toFixed(4)}″ (${(r / hlr).toFixed(2)} hlr); pixel-summed outside fraction ${(outside / total).toExponential(4)} vs ${want.toExponential(4)}`);
    expect(outside / total / want).toBeGreaterThan(0.98);
    expect(outside / total / want).toBeLessThan(1.02);
  });

  it('widens galaxies only, never shrinks a disc, and is off when null', () => {
    const base = { ...defaultConfig().masking, wing_flux_mag: null };
    const rule = { ...base, wing_flux_mag: 30 };
    const bright = { mag: 19, semimajorArcsec: 0.76, pointLike: false };
    const faint = { mag: 27.5, semimajorArcsec: 0.3, pointLike: false };
    const star = { mag: 21, semimajorArcsec: 0.08, pointLike: true };
    expect(maskRadiusArcsec(bright, base)).toBeCloseTo(3 * 0.76, 12);
    expect(maskRadiusArcsec(bright, rule)).toBeCloseTo(wingRadiusArcsec(19, 0.76, 30), 12);
    expect(maskRadiusArcsec(bright, rule)).toBeGreaterThan(5.5);
    // a galaxy whose wings beyond 3 a are already fainter than mag 30 keeps the footprint rule
    expect(wingRadiusArcsec(27.5, 0.3, 30)).toBeLessThan(0.9);
    expect(maskRadiusArcsec(faint, rule)).toBe(maskRadiusArcsec(faint, base));
    expect(maskRadiusArcsec(star, rule)).toBe(maskRadiusArcsec(star, base));
    expect(maskRadiusArcsec({ mag: NaN, semimajorArcsec: 0.5, pointLike: false }, rule)).toBe(maskRadiusArcsec({ mag: NaN, semimajorArcsec: 0.5, pointLike: false }, base));
  });

  it('a manifest written before the rule existed reads as wing_flux_mag: null', () => {
    const old = {
      search: { beyond_extended_arcsec: 9.28, rule: { footprint_scale: 3, footprint_min_arcsec: 0.7, halo_mag_max: 22, halo_radius_arcsec: 1.5, halo_mag_ref: 20, halo_max_arcsec: 6 } },
      catalog: [],
      row: [],
      object_id: [],
      ra: [],
      dec: [],
      flux: [],
      mag: [],
      semimajor_arcsec: [],
      point_like: [],
      cut: [],
    };
    expect(ManifestUnmodelledSchema.parse(old).search.rule.wing_flux_mag).toBeNull();
  });
});
