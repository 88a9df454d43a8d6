/**
 * The app's zscale stretch (app/src/stretch.ts) against astropy.visualization.ZScaleInterval
 * (IRAF's algorithm) on the same data, through test/app/fixtures/zscale.py.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { zscaleLimits, stretchValue } from '../../app/src/stretch.ts';
import { astropyPython } from '../wcs/python.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/zscale.py', import.meta.url));

/** Seeded uniform [0, 1) (mulberry32) and Box–Muller normals. */
function rng(seed: number) {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return { u, n };
}

function datasets(): number[][] {
  const out: number[][] = [];
  // sky noise with bright sources (an astronomical image, 200 × 150, row-major)
  {
    const r = rng(1);
    const w = 200, h = 150;
    const a = new Array<number>(w * h);
    for (let i = 0; i < a.length; i++) a[i] = 100 + 5 * r.n();
    for (let s = 0; s < 30; s++) {
      const cx = r.u() * w, cy = r.u() * h, f = 50 + 2000 * r.u() ** 3, sig = 1 + 3 * r.u();
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) a[y * w + x] += f * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sig * sig));
    }
    out.push(a);
  }
  // a small array (fewer values than nSamples) with outliers
  {
    const r = rng(2);
    const a = Array.from({ length: 137 }, () => r.n());
    a[5] = 400;
    a[77] = -250;
    out.push(a);
  }
  // heavy-tailed values: most samples rejected, the fallback to the sample range
  {
    const r = rng(3);
    out.push(Array.from({ length: 5000 }, () => Math.tan(Math.PI * (r.u() - 0.5)) ** 3));
  }
  // a linear ramp and a constant
  out.push(Array.from({ length: 2500 }, (_, i) => 0.01 * i - 3));
  out.push(Array.from({ length: 64 }, () => 7.5));
  // stride that does not divide the length
  {
    const r = rng(4);
    out.push(Array.from({ length: 12345 }, () => Math.exp(r.n())));
  }
  return out;
}

describe('zscale stretch', () => {
  it('matches astropy ZScaleInterval on the same data', () => {
    const data = datasets();
    const expected = JSON.parse(execFileSync(astropyPython() ?? 'python3', [SCRIPT], { input: JSON.stringify(data), encoding: 'utf8', maxBuffer: 1 << 26 })) as Array<[number, number]>;
    expect(expected.length).toBe(data.length);
    data.forEach((a, k) => {
      const [lo, hi] = zscaleLimits(Float64Array.from(a));
      const [elo, ehi] = expected[k];
      const scale = Math.max(1e-12, Math.abs(ehi - elo), Math.abs(elo), Math.abs(ehi));
      expect(Math.abs(lo - elo) / scale, `dataset ${k} vmin ${lo} vs astropy ${elo}`).toBeLessThan(1e-9);
      expect(Math.abs(hi - ehi) / scale, `dataset ${k} vmax ${hi} vs astropy ${ehi}`).toBeLessThan(1e-9);
    });
  });

  it('asinh maps the limits to 0 and 1 and is monotone and concave', () => {
    expect(stretchValue('asinh', 2, 2, 10)).toBe(0);
    expect(stretchValue('asinh', 10, 2, 10)).toBeCloseTo(1, 12);
    // asinh(x / a) / asinh(1 / a) at the midpoint, computed independently
    expect(stretchValue('asinh', 6, 2, 10)).toBeCloseTo(Math.log(5 + Math.sqrt(26)) / Math.log(10 + Math.sqrt(101)), 12);
    expect(stretchValue('linear', 6, 2, 10)).toBe(0.5);
  });
});
