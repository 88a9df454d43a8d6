/**
 * The app's block means (app/src/render.ts, drawn when zoomed out) against NumPy's on the same data
 * (test/app/fixtures/block_mean.py): partial edge blocks, masked and NaN pixels, fully masked blocks;
 * zoomed-out χ blocks as Σχ/√n.
 */
import { describe, it, expect } from 'vitest';
import { mulberry32 as rng } from '../../engine/util/rng.ts';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { blockMean, renderRgba, sharedLimits } from '../../app/src/render.ts';
import { astropyPython } from '../wcs/python.ts';

const SCRIPT = fileURLToPath(new URL('./fixtures/block_mean.py', import.meta.url));


describe('block means (zoomed-out views)', () => {
  it('equal NumPy block means over the unmasked pixels, with partial edge blocks', () => {
    const py = astropyPython();
    if (!py) throw new Error('python3 with numpy not found (set SHINE_PYTHON)');
    const cases: Array<{ values: Array<number | null>; mask: number[]; width: number; height: number; k: number; f32: Float32Array; m8: Uint8Array }> = [];
    const u = rng(5);
    for (const [w, h, k] of [[37, 23, 1], [37, 23, 2], [37, 23, 5], [64, 64, 8], [10, 7, 10], [9, 31, 4]] as const) {
      const f32 = new Float32Array(w * h);
      const m8 = new Uint8Array(w * h);
      for (let i = 0; i < w * h; i++) {
        f32[i] = 100 * (u() - 0.3) + (u() < 0.02 ? 1e4 : 0);
        if (u() < 0.03) f32[i] = NaN;
        m8[i] = u() < 0.15 ? 0 : 1;
      }
      // a fully masked block
      for (let y = 0; y < Math.min(h, k); y++) for (let x = 0; x < Math.min(w, k); x++) m8[y * w + x] = 0;
      cases.push({ values: Array.from(f32, (v) => (Number.isFinite(v) ? v : null)), mask: Array.from(m8), width: w, height: h, k, f32, m8 });
    }
    const ref = JSON.parse(execFileSync(py, [SCRIPT], { input: JSON.stringify(cases.map(({ f32: _f, m8: _m, ...c }) => c)), encoding: 'utf8' })) as Array<{ width: number; height: number; values: Array<number | null>; counts: number[] }>;
    cases.forEach((c, j) => {
      const b = blockMean(c.f32, c.m8, c.width, c.height, c.k);
      expect([b.width, b.height]).toEqual([ref[j].width, ref[j].height]);
      ref[j].values.forEach((v, i) => {
        if (v === null) expect(Number.isNaN(b.data[i])).toBe(true);
        else expect(b.data[i]).toBeCloseTo(v, 3);
      });
      // the bitmap has one RGBA pixel per block; masked blocks get the masked colour
      const lim = sharedLimits([{ observed: c.f32, mask: c.m8, chi: null }], 'linear');
      const r = renderRgba(c.f32, c.m8, c.width, c.height, { panel: 'observed', k: c.k, stretch: 'linear', imageCmap: 'grey', chiCmap: 'diverging', limits: lim });
      expect(r.rgba.length).toBe(4 * b.width * b.height);
      expect([r.rgba[0], r.rgba[1], r.rgba[2]]).toEqual([40, 70, 80]);
      // χ panels show each block's χ, Σχ/√n = mean·√n
      const rc = renderRgba(c.f32, c.m8, c.width, c.height, { panel: 'residual', k: c.k, stretch: 'linear', imageCmap: 'grey', chiCmap: 'diverging', limits: lim });
      ref[j].values.forEach((v, i) => {
        if (v !== null) expect(rc.values[i]).toBeCloseTo(c.k > 1 ? v * Math.sqrt(ref[j].counts[i]) : v, 2);
      });
    });
  });

  it('refuses a block size that is not a positive integer', () => {
    expect(() => blockMean(new Float32Array(4), new Uint8Array(4), 2, 2, 0)).toThrow(/block size/);
    expect(() => blockMean(new Float32Array(4), new Uint8Array(4), 2, 2, 1.5)).toThrow(/block size/);
  });
});
