/**
 * Nuisance sources (SourceInfo.nuisance, masking.unmodelled: model): rendered, but their stamps
 * add no pixel to the likelihood. Oracles: a brute-force sum of −½ w (model − obs)² over the
 * pixels that the ordinary sources' stamps cover (rectangles filled pixel by pixel here, the model
 * rendered by the float64 reference with every source), central finite differences of that sum in
 * the nuisance source's flux; and the stamp-cover index against a brute-force rectangle test.
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeRng, makeTestScene } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64, quadrantWeights, renderModel64 } from '../../engine/gpu/render/model64.ts';
import { stampCorner } from '../../engine/model/geometry.ts';
import { stampCoverIndex } from '../../engine/scene/pixels.ts';
import { cloneParams, type ExposureSet, type SceneParams } from '../../engine/scene/types.ts';


/** −½ Σ w (model − obs)² over the pixels some visible stamp of a source in `counted` covers, and their number. */
function bruteLogL(set: ExposureSet, params: SceneParams, counted: (s: number) => boolean): { logL: number; nPixels: number } {
  const models = renderModel64({ ...set, sources: set.sources.map((s) => ({ ...s, nuisance: false })) }, params);
  let logL = 0;
  let nPixels = 0;
  set.quadrants.forEach((q, j) => {
    const cov = new Uint8Array(q.width * q.height);
    for (const pr of set.pairs) {
      if (pr.quadrant !== j || !pr.visible || !counted(pr.source)) continue;
      const n = set.sources[pr.source].stampSize;
      const cx = stampCorner(pr.x, n);
      const cy = stampCorner(pr.y, n);
      for (let y = cy; y < cy + n; y++) for (let x = cx; x < cx + n; x++) if (x >= 0 && y >= 0 && x < q.width && y < q.height) cov[y * q.width + x] = 1;
    }
    const { obs, w } = quadrantWeights(q, 0x1);
    for (let i = 0; i < cov.length; i++) {
      if (!cov[i] || w[i] === 0) continue;
      const r = models[j][i] - obs[i];
      logL += -0.5 * w[i] * r * r;
      nPixels++;
    }
  });
  return { logL, nPixels };
}

describe('nuisance sources', () => {
  it('light in the model, no pixel of their own in the likelihood (GPU and float64 reference)', async () => {
    const device = await testDevice();
    const { set, params } = makeTestScene({ seed: 11, nSources: 6 });
    // the source whose stamp covers the most pixels that no other stamp covers: the flag must remove them
    const own = set.sources.map((_, k) => bruteLogL(set, params, () => true).nPixels - bruteLogL(set, params, (s) => s !== k).nPixels);
    const k = own.indexOf(Math.max(...own));
    expect(own[k]).toBeGreaterThan(500);
    const nset: ExposureSet = { ...set, sources: set.sources.map((s, i) => (i === k ? { ...s, nuisance: true, shearBlind: true } : s)) };
    const p = cloneParams(params);
    p.g1 = 0;
    p.g2 = 0; // shear-blind and sheared render alike at g = 0: the comparison isolates the pixel set

    const brute = bruteLogL(nset, p, (s) => s !== k);
    const ref = logLikelihood64(nset, p);
    const plain = logLikelihood64(set, p);
    console.log(`nuisance source ${k}: logL brute ${brute.logL.toFixed(4)} (${brute.nPixels} px), f64 ${ref.logL.toFixed(4)} (${ref.nPixels} px), without the flag ${plain.nPixels} px`);
    expect(ref.nPixels).toBe(brute.nPixels);
    expect(plain.nPixels - ref.nPixels).toBe(own[k]);
    expect(Math.abs(ref.logL - brute.logL)).toBeLessThan(1e-9 * Math.abs(brute.logL));

    const eng = await ShearEngine.create(device, nset);
    try {
      const ev = await eng.evaluate(p);
      expect(ev.nPixels).toBe(brute.nPixels);
      expect(Math.abs(ev.logL - brute.logL) / Math.abs(brute.logL)).toBeLessThan(1e-5);
      // its light still enters the covered pixels: ∂logL/∂flux of the nuisance source against central differences of the brute sum
      const h = 1e-3 * p.flux[k];
      const a = cloneParams(p);
      const b = cloneParams(p);
      a.flux[k] += h;
      b.flux[k] -= h;
      const fd = (bruteLogL(nset, a, (s) => s !== k).logL - bruteLogL(nset, b, (s) => s !== k).logL) / (2 * h);
      console.log(`∂logL/∂flux[${k}]: gpu ${ev.gradient.flux[k].toExponential(5)}, brute fd ${fd.toExponential(5)}`);
      expect(Math.abs(fd)).toBeGreaterThan(1e-6);
      expect(Math.abs(ev.gradient.flux[k] - fd)).toBeLessThan(1e-3 * Math.abs(fd) + 1e-6);
    } finally {
      eng.destroy();
    }
  }, 180_000);

  it('stampCoverIndex answers as a brute-force test of every footprint', () => {
    const rng = makeRng(5);
    const width = 700;
    const height = 300;
    const stamps = Array.from({ length: 40 }, () => ({ cx: Math.floor(rng.range(-70, width)), cy: Math.floor(rng.range(-70, height)), n: [32, 64, 128][Math.floor(rng.range(0, 3))] }));
    const idx = stampCoverIndex(width, height, stamps);
    let inside = 0;
    let checked = 0;
    for (let t = 0; t < 20000; t++) {
      const x = rng.range(-3, width + 3);
      const y = rng.range(-3, height + 3);
      const px = Math.round(x);
      const py = Math.round(y);
      const want = px >= 0 && py >= 0 && px < width && py < height && stamps.some((s) => px >= s.cx && px < s.cx + s.n && py >= s.cy && py < s.cy + s.n);
      expect(idx.covers(x, y)).toBe(want);
      if (want) inside++;
      checked++;
    }
    expect(inside).toBeGreaterThan(0.1 * checked);
    expect(inside).toBeLessThan(0.9 * checked);
  });
});
