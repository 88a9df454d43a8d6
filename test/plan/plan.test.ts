/**
 * The memory plan (engine/plan/plan.ts, docs/plan.md) on fabricated devices and real scenes:
 *  - property test: for random scenes and devices (tiny maxBufferSize, small and huge budgets),
 *    every plan returned fits its GPU budget, binding limit and host budget; a refusal happens only
 *    when the smallest choice does not fit, and names what is needed and what is there;
 *  - the plan's GPU figure bounds the bytes the engine really allocates (GpuResources' own count,
 *    stats.peakGpuBytes) for the choice it made, on scenes with several tiers, replicas and q = 3.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { makePlan, planGpuBytes, PlanError, type PlanDevice, type PlanScene } from '../../engine/plan/plan.ts';
import { planSceneFromSet } from '../../engine/plan/scene.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { testDevice } from '../helpers/device.ts';
import { parseConfig } from '../../engine/config/index.ts';
import { LAPLACE_REPLICAS, replicasFor } from '../../engine/subtile/posterior-run.ts';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

const sceneArb: fc.Arbitrary<PlanScene> = fc
  .record({
    nq: fc.integer({ min: 1, max: 12 }),
    sources: fc.integer({ min: 1, max: 5000 }),
    tiers: fc.subarray([32, 64, 128, 256], { minLength: 1 }),
    pairsPer: fc.integer({ min: 1, max: 3000 }),
    q: fc.constantFrom(1, 2, 3),
    replicasWanted: fc.integer({ min: 1, max: 16 }),
    side: fc.integer({ min: 64, max: 4200 }),
    pixels: fc.constantFrom('active-blocks' as const, 'crop' as const),
  })
  .map(({ nq, sources, tiers, pairsPer, q, replicasWanted, side, pixels }) => {
    const groups = [];
    for (let j = 0; j < nq; j++)
      for (const n of tiers) groups.push({ quadrant: j, m: 2 * n, n, count: pairsPer, blockEntries: pairsPer * (n / 16 + 1) * (n / 8 + 1) });
    const nb = Math.ceil(side / 16) * Math.ceil(side / 8);
    return {
      sources,
      quadrants: Array.from({ length: nq }, () => ({ width: side, height: side, activeBlocks: nb })),
      groups,
      psfSize: 21 * q + (q % 2 === 0 ? 1 : 0),
      psfOversampling: q,
      aliasOrders: Math.ceil((q - 1) / 2),
      method: replicasWanted > 1 ? 'nuts' : 'map',
      replicasWanted,
      diagnostics: true,
      pixels,
    } satisfies PlanScene;
  });

const deviceArb: fc.Arbitrary<PlanDevice> = fc.record({
  maxBufferSize: fc.constantFrom(1 * MiB, 16 * MiB, 128 * MiB, 256 * MiB, 2 * GiB, 64 * GiB),
  maxStorageBufferBindingSize: fc.constantFrom(1 * MiB, 128 * MiB, 2 * GiB - 4),
  gpuBudgetBytes: fc.constantFrom(8 * MiB, 256 * MiB, 2 * GiB, 16 * GiB, 1024 * GiB),
  hostBudgetBytes: fc.constantFrom(64 * MiB, 4 * GiB, 256 * GiB),
  cores: fc.integer({ min: 1, max: 128 }),
  software: fc.boolean(),
});

describe('makePlan on fabricated devices', () => {
  it('every plan it returns fits its budgets; it refuses only when the smallest choice does not fit', () => {
    let plans = 0;
    let refusals = 0;
    fc.assert(
      fc.property(sceneArb, deviceArb, (scene, device) => {
        const maxBinding = Math.min(device.maxBufferSize, device.maxStorageBufferBindingSize);
        try {
          const p = makePlan(scene, device);
          plans++;
          // recomputed independently of the plan's own bookkeeping
          const again = planGpuBytes(scene, p, maxBinding);
          expect(again.peak).toBe(p.gpu.peak);
          expect(p.gpu.peak).toBeLessThanOrEqual(device.gpuBudgetBytes);
          expect(p.gpu.largestBuffer).toBeLessThanOrEqual(maxBinding);
          expect(p.host.total).toBeLessThanOrEqual(device.hostBudgetBytes);
          expect(p.replicasPerCall).toBeGreaterThanOrEqual(1);
          expect(p.replicasPerCall).toBeLessThanOrEqual(scene.replicasWanted);
          expect(p.maxPairsPerBatch % 2).toBe(0);
          expect(p.subtilesPerGpu * p.gpu.peak).toBeLessThanOrEqual(Math.max(device.gpuBudgetBytes, p.gpu.peak));
          if (device.software) expect(p.host.gpu).toBe(p.gpu.peak);
        } catch (e) {
          if (!(e instanceof PlanError)) throw e;
          refusals++;
          // the smallest choice (recomputed spectra, 2 pairs per batch, one parameter set) does not fit
          const small = planGpuBytes(scene, { psf: 'recompute', maxPairsPerBatch: 2, replicasPerCall: 1 }, maxBinding);
          const fitsGpu = small.peak <= device.gpuBudgetBytes && small.largestBuffer <= maxBinding;
          const hostNeed = makeHost(scene, small.peak, device.software);
          expect(fitsGpu && hostNeed <= device.hostBudgetBytes).toBe(false);
          expect(e.message).toMatch(/needs/);
          expect(e.message).toMatch(/GiB|MiB|KiB| B\b/);
        }
      }),
      { numRuns: 200, seed: 13 },
    );
    // both outcomes are exercised
    expect(plans).toBeGreaterThan(20);
    expect(refusals).toBeGreaterThan(20);
  });

  it('a huge budget keeps the spectra with the largest batches; a small one recomputes them; a tiny maxBufferSize is refused naming the buffer', () => {
    const scene: PlanScene = {
      sources: 3000,
      quadrants: Array.from({ length: 52 }, () => ({ width: 2100, height: 2100, activeBlocks: 20000 })),
      groups: Array.from({ length: 52 }, (_, j) => [
        { quadrant: j, m: 128, n: 64, count: 120, blockEntries: 120 * 45 },
        { quadrant: j, m: 256, n: 128, count: 30, blockEntries: 30 * 153 },
      ]).flat(),
      psfSize: 63,
      psfOversampling: 3,
      aliasOrders: 1,
      method: 'nuts',
      replicasWanted: 4,
      diagnostics: true,
    };
    const dev = (over: Partial<PlanDevice>): PlanDevice => ({ maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 4 * GiB, gpuBudgetBytes: 80 * GiB, hostBudgetBytes: 256 * GiB, cores: 64, software: false, ...over });
    const big = makePlan(scene, dev({}));
    expect(big.psf).toBe('keep');
    expect(big.replicasPerCall).toBe(4);
    const keepNeed = big.gpu.psfSpectra;
    // a budget below the kept spectra alone: they are recomputed
    const small = makePlan(scene, dev({ gpuBudgetBytes: Math.floor(keepNeed / 2) }));
    expect(small.psf).toBe('recompute');
    expect(small.gpu.peak).toBeLessThanOrEqual(keepNeed / 2);
    expect(small.notes.join(' ')).toMatch(/rebuilds its spectra/);
    // no room at all
    expect(() => makePlan(scene, dev({ gpuBudgetBytes: 1 * MiB }))).toThrow(/needs at least .* of GPU memory .* the budget is 1\.0 MiB/);
    // one quadrant's pixels do not fit one buffer
    expect(() => makePlan(scene, dev({ maxBufferSize: 1 * MiB }))).toThrow(/needs one buffer of .* the adapter allows 1\.0 MiB/);
  });
});

describe('parameter sets per engine call', () => {
  it('NUTS chains, VI particles; MAP batches its Laplace columns on a hardware adapter only (device.laplace_replicas)', () => {
    const cfg = (y: string) => parseConfig(y);
    expect(replicasFor(cfg('inference: {method: nuts, nuts: {chains: 6}}'), true)).toBe(6);
    expect(replicasFor(cfg('inference: {method: vi, vi: {particles: 3}}'), false)).toBe(3);
    expect(replicasFor(cfg(''), true)).toBe(1);
    expect(replicasFor(cfg(''), false)).toBe(LAPLACE_REPLICAS);
    expect(replicasFor(cfg('inference: {methods: {map: {laplace: false}}}'), false)).toBe(1);
    expect(replicasFor(cfg('device: {laplace_replicas: 3}'), true)).toBe(3);
    expect(() => cfg('device: {laplace_replicas: 0}')).toThrow(/laplace_replicas/);
    // the plan halves them to fit, and says so in the MAP's words
    const scene: PlanScene = {
      sources: 300,
      quadrants: Array.from({ length: 8 }, () => ({ width: 2100, height: 2100, activeBlocks: 20000 })),
      groups: Array.from({ length: 8 }, (_, j) => ({ quadrant: j, m: 128, n: 64, count: 60, blockEntries: 60 * 45 })),
      psfSize: 21,
      psfOversampling: 1,
      aliasOrders: 0,
      method: 'map',
      replicasWanted: 8,
      diagnostics: true,
    };
    const dev: PlanDevice = { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 4 * GiB, gpuBudgetBytes: 80 * GiB, hostBudgetBytes: 256 * GiB, cores: 64, software: false };
    expect(makePlan(scene, dev).replicasPerCall).toBe(8);
    const one = makePlan({ ...scene, replicasWanted: 1 }, dev).gpu.peak;
    const tight = makePlan(scene, { ...dev, gpuBudgetBytes: Math.floor(2.5 * one) });
    expect(tight.replicasPerCall).toBeLessThan(8);
    expect(tight.gpu.peak).toBeLessThanOrEqual(2.5 * one);
    expect(tight.notes.join(' ')).toMatch(/8 parameter sets \(Laplace columns\) do not fit at once/);
  });
});

describe('the plan bounds what the engine allocates', () => {
  const scenes: Array<[string, Parameters<typeof makeTestScene>[0], { replicas?: number; aliasOrders?: number }]> = [
    ['three tiers', { seed: 3, nSources: 6 }, {}],
    ['replicas 3', { seed: 5, nSources: 4 }, { replicas: 3 }],
    ['q = 3, one alias order', { seed: 6, nSources: 3, tiers: [64], psfOversampling: 3 }, { aliasOrders: 1 }],
  ];
  for (const [name, so, eo] of scenes) {
    it(name, async () => {
      const device = await testDevice();
      const { set, params } = makeTestScene(so);
      const scene = planSceneFromSet(set, { aliasOrders: eo.aliasOrders ?? 'auto', replicasWanted: eo.replicas ?? 1, method: (eo.replicas ?? 1) > 1 ? 'vi' : 'map' });
      const plan = makePlan(scene, { maxBufferSize: device.limits.maxBufferSize, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize, gpuBudgetBytes: 64 * GiB, hostBudgetBytes: 64 * GiB, cores: 2, software: true });
      const eng = await ShearEngine.create(device, set, { ...eo, replicas: plan.replicasPerCall, maxPairsPerBatch: plan.maxPairsPerBatch });
      await eng.render(params);
      const real = eng.stats.peakGpuBytes;
      eng.destroy();
      console.log(`${name}: plan ${plan.gpu.peak} B, engine ${real} B`);
      expect(plan.gpu.peak).toBeGreaterThanOrEqual(real);
      // and not a loose bound: the block lists are the only over-count
      expect(plan.gpu.peak).toBeLessThan(1.25 * real);
    });
  }
});

function makeHost(scene: PlanScene, gpuPeak: number, software: boolean): number {
  // the plan's host figure recomputed from its definition (docs/plan.md "Host memory"):
  //  - pixels 'crop': 16 B per crop pixel, and 10 B of diagnostics per crop pixel;
  //  - pixels 'active-blocks' (default): 12 B per active-block pixel plus one whole crop (16 B) while
  //    loading; diagnostics 4 B per active-block pixel, plus 16 B per pixel of one crop at a time;
  //  - always 8 B per active-block pixel, 1 B coverage per pixel of one crop, and the GPU bytes when software
  const crop = scene.pixels === 'crop';
  let t = 0;
  let largest = 0;
  for (const q of scene.quadrants) {
    const a = q.width * q.height;
    const act = Math.min(q.activeBlocks, Math.ceil(q.width / 16) * Math.ceil(q.height / 8)) * 128;
    largest = Math.max(largest, a);
    t += (crop ? 16 * a : 12 * act) + act * 8 + (scene.diagnostics ? (crop ? 10 * a : 4 * act) : 0);
  }
  t += largest;
  if (!crop) t += 16 * largest + (scene.diagnostics ? 16 * largest : 0);
  return t + (software ? gpuPeak : 0);
}
