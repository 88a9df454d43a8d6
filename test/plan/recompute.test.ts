/**
 * PSF spectra recomputed per evaluation (EngineOptions.psfSpectra = 'recompute', docs/plan.md):
 *  - under a forced small plan (recompute, 2 pairs per batch) logL, every gradient component and
 *    the rendered model are bit-identical to the default plan (spectra kept, largest batches), on
 *    scenes with two tiers, q = 3 PSFs with an alias order, and replicas (evaluateMany);
 *  - the GPU bytes memory.ts computes for recompute mode are exactly what the engine allocates
 *    (GpuResources' count), the plan bounds them, and they are below the kept spectra's when the
 *    spectra dominate.
 */
import { describe, expect, it } from 'vitest';
import { ShearEngine, type EngineOptions } from '../../engine/gpu/render/engine.ts';
import { estimateEngineBytes } from '../../engine/scene/memory.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { cloneParams, type SceneParams } from '../../engine/scene/types.ts';
import { makePlan } from '../../engine/plan/plan.ts';
import { planSceneFromSet } from '../../engine/plan/scene.ts';
import { testDevice } from '../helpers/device.ts';

const FIELDS = ['flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const;

function bits(a: ArrayLike<number>): string {
  return Buffer.from(Float64Array.from(a).buffer).toString('hex');
}

function perturbed(p: SceneParams, k: number): SceneParams {
  const q = cloneParams(p);
  for (let s = 0; s < q.flux.length; s++) {
    q.e1[s] += 0.01 * k;
    q.dx[s] -= 0.02 * k;
  }
  q.g1 += 0.003 * k;
  return q;
}

describe('recompute mode is bit-identical to kept spectra', () => {
  const scenes: Array<[string, Parameters<typeof makeTestScene>[0], Partial<EngineOptions>]> = [
    ['two tiers', { seed: 3, nSources: 10, tiers: [64, 128] }, {}],
    ['q = 3, one alias order', { seed: 6, nSources: 4, tiers: [64], psfOversampling: 3 }, { aliasOrders: 1 }],
    ['replicas 3 (evaluateMany)', { seed: 5, nSources: 6, tiers: [64] }, { replicas: 3 }],
  ];
  for (const [name, so, eo] of scenes) {
    it(name, async () => {
      const device = await testDevice();
      const { set, params } = makeTestScene(so);
      const keep = await ShearEngine.create(device, set, eo);
      const small = await ShearEngine.create(device, set, { ...eo, psfSpectra: 'recompute', maxPairsPerBatch: 2 });
      try {
        expect(small.stats.batches).toBeGreaterThan(keep.stats.batches);
        const k = eo.replicas ?? 1;
        const list = Array.from({ length: k }, (_, i) => perturbed(params, i));
        // twice: the shared spectra buffer is rebuilt before each use, whatever was there before
        for (let round = 0; round < 2; round++) {
          const a = await keep.evaluateMany(list);
          const b = await small.evaluateMany(list);
          for (let r = 0; r < k; r++) {
            expect(b[r].logL).toBe(a[r].logL);
            expect(Number.isFinite(a[r].logL)).toBe(true);
            for (const f of FIELDS) expect(bits(b[r].gradient[f])).toBe(bits(a[r].gradient[f]));
            expect(b[r].gradient.g1).toBe(a[r].gradient.g1);
            expect(b[r].gradient.g2).toBe(a[r].gradient.g2);
          }
        }
        const ma = await keep.render(params);
        const mb = await small.render(params);
        ma.forEach((img, j) => expect(Buffer.from(mb[j].buffer).equals(Buffer.from(img.buffer))).toBe(true));
        // something was rendered (the comparison is not between two empty images)
        expect(ma.some((img) => img.some((v) => v !== 0))).toBe(true);
      } finally {
        keep.destroy();
        small.destroy();
      }
    });
  }
});

describe('recompute mode memory', () => {
  it('memory.ts counts exactly what the engine allocates; the plan bounds it; it is below the kept spectra', async () => {
    const device = await testDevice();
    const { set, params } = makeTestScene({ seed: 7, nSources: 6, tiers: [64, 128], psfOversampling: 3 });
    const eo = { aliasOrders: 1 as const };
    const keepEst = estimateEngineBytes(set, eo, device.limits);
    const recEst = estimateEngineBytes(set, { ...eo, psfSpectra: 'recompute' }, device.limits);
    const eng = await ShearEngine.create(device, set, { ...eo, psfSpectra: 'recompute' });
    await eng.render(params);
    const real = eng.stats.peakGpuBytes;
    eng.destroy();
    console.log(`recompute: estimate ${recEst.peak} B, engine ${real} B; kept spectra: ${keepEst.peak} B`);
    expect(recEst.peak).toBe(real);
    expect(recEst.peak).toBeLessThan(keepEst.peak);
    const scene = planSceneFromSet(set, eo);
    const plan = makePlan(scene, { maxBufferSize: device.limits.maxBufferSize, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize, gpuBudgetBytes: 2 ** 36, hostBudgetBytes: 2 ** 36, cores: 2, software: false }, { psf: 'recompute' });
    expect(plan.gpu.peak).toBeGreaterThanOrEqual(real);
    expect(plan.gpu.peak).toBeLessThan(1.25 * real);
  });
});
