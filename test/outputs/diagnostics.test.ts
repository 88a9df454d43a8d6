/**
 * Diagnostics PNG: decoded with fast-png, the panels show what they should (analytic
 * expectations on synthetic quadrants), masked pixels are grey, the layout stays bounded with
 * many quadrants; the built-in font has a distinct glyph for every character it promises.
 */
import { describe, expect, it } from 'vitest';
import { decode } from 'fast-png';
import { diagnosticsPng, diagnosticsTitle, renderDiagnostics, GLYPHS, MISSING_GLYPH, glyph, type DiagnosticQuadrant } from '../../engine/outputs/index.ts';
import { Raster, diverging, sequential } from '../../engine/outputs/raster.ts';
import { mulberry32 as rng } from '../../engine/util/rng.ts';

function gauss(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

describe('font', () => {
  const required = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_@:/(),=±+ '];
  it('has every promised character, 7 rows of 5 bits', () => {
    for (const c of required) {
      expect(GLYPHS[c], c).toBeDefined();
      expect(GLYPHS[c]).toHaveLength(7);
      for (const row of GLYPHS[c]) expect(row >= 0 && row < 32 && Number.isInteger(row), c).toBe(true);
      if (c !== ' ') expect(GLYPHS[c].some((r) => r !== 0), `${c} is blank`).toBe(true);
    }
  });
  it('no two glyphs are identical, and none equals the missing-glyph box', () => {
    const seen = new Map<string, string>();
    const dups: string[] = [];
    for (const [c, g] of Object.entries(GLYPHS)) {
      const key = g.join(',');
      if (seen.has(key)) dups.push(`${seen.get(key)} = ${c}`);
      seen.set(key, c);
    }
    expect(dups).toEqual([]);
    expect(seen.has(MISSING_GLYPH.join(','))).toBe(false);
  });
  it('lower case draws as upper case; unknown characters as the box', () => {
    for (const c of 'abcxyz') expect(glyph(c)).toBe(GLYPHS[c.toUpperCase()]);
    expect(glyph('€')).toBe(MISSING_GLYPH);
  });
  it('text is drawn bit for bit at the requested scale', () => {
    const r = new Raster(40, 20);
    r.text(1, 2, 'G1', 2, [0, 0, 0]);
    for (const [k, ch] of ['G', '1'].entries()) {
      const g = GLYPHS[ch];
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++) {
          const on = (g[row] >> (4 - col)) & 1;
          for (const [dx, dy] of [[0, 0], [1, 1]]) {
            const px = r.get(1 + k * 12 + col * 2 + dx, 2 + row * 2 + dy);
            expect(px[0], `${ch} (${row},${col})`).toBe(on ? 0 : 255);
          }
        }
      }
    }
  });
});

describe('diagnostics PNG', () => {
  const W = 2048;
  const H = 2066;
  const n = W * H;
  const RMS = 2;
  // model: a round Gaussian blob at (1500, 700); observed = model + 0.25 rms on x < 1024, exact on x ≥ 1024
  const model = new Float32Array(n);
  const observed = new Float32Array(n);
  const mask = new Uint8Array(n);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      model[i] = 200 * Math.exp(-((x - 1500) ** 2 + (y - 700) ** 2) / (2 * 15 ** 2));
      observed[i] = model[i] + (x < 1024 ? 0.25 * RMS : 0);
      if (x >= 100 && x < 600 && y >= 1500 && y < 1700) mask[i] = 4; // masked by bit 2
    }
  }
  const quad: DiagnosticQuadrant = { name: 'EXP1.3-4.F', width: W, height: H, observed, model, rms: new Float32Array(n).fill(RMS), mask, maskBits: 0x4 };
  const title = ['TILE 102018211  SUB-TILE (1, 2)  METHOD MAP', 'G1 = 0.0123 ± 0.0031   G2 = -0.0045 ± 0.0030'];
  const im = renderDiagnostics({ title, quadrants: [quad] });
  const png = diagnosticsPng({ title, quadrants: [quad] });
  const dec = decode(png);
  const L = im.quadrants[0];
  const at = (x: number, y: number) => {
    const o = (y * dec.width + x) * dec.channels;
    return [dec.data[o], dec.data[o + 1], dec.data[o + 2]];
  };
  /** Panel pixel of quadrant block (bx, by): y is flipped (pixel (0, 0) at the bottom-left). */
  const px = (panel: { x: number; y: number; h: number }, bx: number, by: number) => at(panel.x + bx, panel.y + panel.h - 1 - by);

  it('decodes to the rendered size; a 2048×2066 quadrant becomes 512×517 panels side by side', () => {
    expect(dec.width).toBe(im.width);
    expect(dec.height).toBe(im.height);
    expect(dec.channels).toBe(3);
    expect(dec.depth).toBe(8);
    expect(L.factor).toBe(4);
    for (const p of [L.observed, L.model, L.residual]) expect([p.w, p.h]).toEqual([512, 517]);
    expect(L.model.x).toBeGreaterThan(L.observed.x + 511);
    expect(L.residual.x).toBeGreaterThan(L.model.x + 511);
    expect(L.model.y).toBe(L.observed.y);
    expect(im.width).toBeLessThanOrEqual(4096);
    expect(diagnosticsPng({ title, quadrants: [quad] })).toEqual(png); // deterministic
  });

  it('residual χ: white where model = observed, Σ(o−m)/√Σrms² = 1 for a 0.25σ offset in 4×4 blocks', () => {
    const white = diverging(0.5);
    const plusOne = diverging(0.5 + 1 / 10);
    const bad: string[] = [];
    for (let by = 0; by < 516; by += 7) {
      for (let bx = 0; bx < 512; bx += 5) {
        const inMask = bx >= 25 && bx < 150 && by >= 375 && by < 425;
        if (inMask) continue;
        const want = bx >= 256 ? white : plusOne;
        const got = px(L.residual, bx, by);
        if (got.join() !== want.join() && bad.length < 5) bad.push(`(${bx},${by}) ${got} ≠ ${want}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('masked pixels are grey in all three panels, and only there', () => {
    for (const p of [L.observed, L.model, L.residual]) {
      expect(px(p, 30, 380)).toEqual([128, 128, 128]);
      expect(px(p, 149, 424)).toEqual([128, 128, 128]);
      expect(px(p, 150, 424)).not.toEqual([128, 128, 128]);
      expect(px(p, 30, 425)).not.toEqual([128, 128, 128]);
    }
    expect(L.maskedFraction).toBeCloseTo((500 * 200) / n, 10);
  });

  it('observed and model share one asinh stretch; the panels are block means, y up; the blob is where it is', () => {
    const { lo, hi, beta } = L.stretch;
    const colour = (v: number) => sequential(Math.asinh(Math.max(0, v - lo) / beta) / Math.asinh((hi - lo) / beta));
    /** float64 mean of a 4×4 block of the quadrant, computed here */
    const blockMean = (a: Float32Array, bx: number, by: number) => {
      let sum = 0;
      for (let y = 4 * by; y < 4 * by + 4; y++) for (let x = 4 * bx; x < 4 * bx + 4; x++) sum += a[y * W + x];
      return sum / 16;
    };
    const bad: string[] = [];
    for (const [bx, by] of [[375, 175], [372, 178], [380, 170], [370, 175], [10, 10], [300, 500], [200, 100], [255, 175]]) {
      for (const [name, arr, panel] of [['observed', observed, L.observed], ['model', model, L.model]] as const) {
        const want = colour(blockMean(arr, bx, by));
        const got = px(panel, bx, by);
        if (got.some((c, k) => Math.abs(c - want[k]) > 1)) bad.push(`${name} (${bx},${by}) ${got} ≠ ${want}`);
      }
    }
    expect(bad).toEqual([]);
    // the brightest pixels of the observed panel are centred on the blob (1500, 700) / 4
    let max = 0;
    for (let by = 0; by < 517; by++) for (let bx = 0; bx < 512; bx++) max = Math.max(max, px(L.observed, bx, by).reduce((a, b) => a + b));
    let sx = 0;
    let sy = 0;
    let cnt = 0;
    for (let by = 0; by < 517; by++) {
      for (let bx = 0; bx < 512; bx++) {
        if (px(L.observed, bx, by).reduce((a, b) => a + b) === max) {
          sx += bx;
          sy += by;
          cnt++;
        }
      }
    }
    expect(Math.abs(sx / cnt - 1500 / 4 + 0.375)).toBeLessThan(1);
    expect(Math.abs(sy / cnt - 700 / 4 + 0.375)).toBeLessThan(1);
    expect(lo).toBeLessThan(0);
    expect(hi).toBeGreaterThan(0.5);
  });

  it('labels are drawn above the panels', () => {
    let ink = 0;
    for (let y = L.observed.y - 20; y < L.observed.y - 2; y++) for (let x = L.observed.x; x < L.observed.x + 100; x++) if (at(x, y)[0] === 0) ink++;
    expect(ink).toBeGreaterThan(50);
  });
});

describe('diagnostics layout', () => {
  it('30 quadrants: bounded width and pixel count, panels inside the image and not overlapping', () => {
    const w = 512;
    const h = 516;
    const r = rng(1);
    const model = new Float32Array(w * h);
    const observed = Float32Array.from(model, (m) => m + 3 * gauss(r));
    const quads: DiagnosticQuadrant[] = Array.from({ length: 30 }, (_, i) => ({ name: `Q${i}`, width: w, height: h, observed, model }));
    const maxPixels = 1.5e6;
    const im = renderDiagnostics({ title: ['DEEP'], quadrants: quads }, { maxPixels, panelWidth: 256 });
    expect(im.quadrants).toHaveLength(30);
    expect(im.width).toBeLessThanOrEqual(4096);
    expect(im.width * im.height).toBeLessThanOrEqual(maxPixels);
    const rects = im.quadrants.flatMap((q) => [q.observed, q.model, q.residual]);
    for (const a of rects) {
      expect(a.x >= 0 && a.y >= 0 && a.x + a.w <= im.width && a.y + a.h <= im.height).toBe(true);
    }
    for (let i = 0; i < rects.length; i++) {
      for (let j = i + 1; j < rects.length; j++) {
        const a = rects[i];
        const b = rects[j];
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${i} ${j}`).toBe(false);
      }
    }
    // no rms given: σ from the MAD of the residual (true σ = 3)
    expect(im.quadrants[0].sigmaEstimate).toBeGreaterThan(3 * 0.97);
    expect(im.quadrants[0].sigmaEstimate).toBeLessThan(3 * 1.03);
  });

  it('standard title lines carry the sub-tile, method and shear with errors', () => {
    const t = diagnosticsTitle({ tileId: 102018211, row: 1, col: 2, ra: 0, dec: 0, g1: 0.0123, g2: -0.0045, g1Err: 0.0031, g2Err: 0.003, nSources: 12, method: 'map', convergence: -5, converged: true, nQuadrants: 4 });
    expect(t[0]).toContain('TILE 102018211  SUB-TILE (1, 2)  METHOD map  CONVERGED');
    expect(t[1]).toBe('G1 = 0.01230 ± 0.00310   G2 = -0.00450 ± 0.00300   N_SOURCES 12   QUADRANTS 4');
    for (const ch of t.join('')) expect(glyph(ch), ch).not.toBe(MISSING_GLYPH);
  });

  it('rejects arrays of the wrong size, naming the quadrant', () => {
    expect(() => renderDiagnostics({ title: [], quadrants: [{ name: 'Q7', width: 4, height: 4, observed: new Float32Array(15), model: new Float32Array(16) }] })).toThrow(/Q7.*observed has 15 pixels/);
  });
});
