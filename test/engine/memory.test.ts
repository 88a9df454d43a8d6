/**
 * GPU memory planned before use (issue 17 item 10) and a build that fails cleans up (item 12):
 *  - estimateEngineBytes(set, options) against the engine's own stats.peakGpuBytes (after create
 *    and after a render), on scenes with several tiers, forced batches, replicas and q = 3 PSFs;
 *  - a scene over the budget is refused before any buffer is made, naming need and limit;
 *  - a build that throws (a test hook, a rejected pipeline, a validation error) destroys every
 *    buffer it made — the live bytes of its GpuResources return to 0 and the device has no live
 *    buffer left — and the error reported is the original one.
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { defaultGpuBudget, estimateEngineBytes } from '../../engine/scene/memory.ts';
import { GpuResources } from '../../engine/gpu/resources.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { DataError } from '../../engine/errors.ts';

/** A device whose createBuffer / destroy are counted (every buffer, FFT twiddles included). */
function countingDevice(device: GPUDevice, patch: { failPipeline?: RegExp; badBuffer?: RegExp } = {}): { device: GPUDevice; live: Set<GPUBuffer> } {
  const live = new Set<GPUBuffer>();
  const over: Partial<GPUDevice> = {};
  const d = new Proxy(device, {
    get(target, prop) {
      if (prop in over) return over[prop as keyof GPUDevice];
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  over.createBuffer = (desc: GPUBufferDescriptor) => {
    // a usage WebGPU refuses (MAP_READ with STORAGE): a validation error inside the build's scope
    const bad = patch.badBuffer && patch.badBuffer.test(desc.label ?? '');
    const b = device.createBuffer(bad ? { ...desc, usage: desc.usage | GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE } : desc);
    live.add(b);
    const destroy = b.destroy.bind(b);
    b.destroy = () => {
      live.delete(b);
      destroy();
    };
    return b;
  };
  over.createComputePipelineAsync = async (desc: GPUComputePipelineDescriptor) => {
    if (patch.failPipeline && patch.failPipeline.test(desc.label ?? '')) throw new Error(`test: pipeline ${desc.label} rejected`);
    return device.createComputePipelineAsync(desc);
  };
  return { device: d, live };
}

describe('estimateEngineBytes matches the engine', () => {
  const scenes: Array<[string, Parameters<typeof makeTestScene>[0], Record<string, unknown>]> = [
    ['three tiers', { seed: 3, nSources: 6 }, {}],
    ['forced batches', { seed: 4, nSources: 7 }, { maxPairsPerBatch: 2 }],
    ['replicas 3', { seed: 5, nSources: 4 }, { replicas: 3 }],
    ['q = 3, one alias order', { seed: 6, nSources: 3, tiers: [64], psfOversampling: 3 }, { aliasOrders: 1 }],
  ];
  for (const [name, so, eo] of scenes) {
    it(name, async () => {
      const device = await testDevice();
      const { set, params } = makeTestScene(so);
      const est = estimateEngineBytes(set, eo, device.limits);
      const eng = await ShearEngine.create(device, set, eo);
      const afterCreate = eng.stats.peakGpuBytes;
      const buffersAfterCreate = eng.stats.buffersCreated;
      await eng.render(params);
      const afterRender = eng.stats.peakGpuBytes;
      // every buffer is made by create: render (the first call included) allocates none
      expect(eng.stats.buffersCreated).toBe(buffersAfterCreate);
      eng.destroy();
      console.log(`${name}: estimate build ${est.build} peak ${est.peak}; engine ${afterCreate} / ${afterRender}`);
      expect(Math.abs(est.peak - afterCreate) / afterCreate).toBeLessThan(0.1);
      // the accounting follows the engine's buffers one by one: exact; every buffer (the model
      // read-back included) is made by create, so render reaches no new peak
      expect(est.peak).toBe(afterCreate);
      expect(afterRender).toBe(afterCreate);
    });
  }
});

describe('the budget', () => {
  it('a scene over maxGpuBytes is refused before any buffer is made, naming need, breakdown and limit', async () => {
    const device = await testDevice();
    const { set } = makeTestScene({ seed: 3, nSources: 6 });
    const need = estimateEngineBytes(set, {}, device.limits).peak;
    const res = new GpuResources(device);
    const err = (await ShearEngine.create(device, set, { maxGpuBytes: need - 1, resources: res }).catch((e) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/the scene \(6 sources, \d+ quadrants, \d+ rendered pairs\) needs [\d.]+ (MiB|KiB) of GPU memory \(PSF spectra [\d.]+ \w+, .*FFT work .*\), more than the budget of [\d.]+ (MiB|KiB): refused before allocating/);
    expect(res.buffersCreated).toBe(0);
    // just enough: built as before
    const eng = await ShearEngine.create(device, set, { maxGpuBytes: need });
    eng.destroy();
  });
  it('the default budget is 8 × maxBufferSize, at least 4 GiB', () => {
    expect(defaultGpuBudget({ maxBufferSize: 256 * 2 ** 20 })).toBe(4 * 2 ** 30);
    expect(defaultGpuBudget({ maxBufferSize: 2 ** 32 })).toBe(2 ** 35);
  });
});

describe('a failed build cleans up and reports the original error', () => {
  for (const at of ['buffers', 'images', 'pipelines', 'spectra']) {
    it(`a throw after step '${at}'`, async () => {
      const base = await testDevice();
      const { device, live } = countingDevice(base);
      const { set } = makeTestScene({ seed: 3, nSources: 6 });
      const res = new GpuResources(device);
      const original = new DataError(`test failure at ${at}`, { file: 'x.fits' });
      const err = await ShearEngine.create(device, set, { resources: res, onBuildStep: (s) => { if (s === at) throw original; } }).catch((e) => e);
      expect(err).toBe(original);
      expect(res.buffersCreated).toBeGreaterThan(0);
      expect(res.liveBytes).toBe(0);
      expect(live.size).toBe(0); // FFT twiddles too
    });
  }
  it('a rejected pipeline', async () => {
    const base = await testDevice();
    const { device, live } = countingDevice(base, { failPipeline: /^render-128$/ });
    const { set } = makeTestScene({ seed: 3, nSources: 6 });
    const res = new GpuResources(device);
    const err = (await ShearEngine.create(device, set, { resources: res }).catch((e) => e)) as Error;
    expect(err.message).toMatch(/^pipeline render-128 failed: test: pipeline render-128 rejected/);
    expect(res.liveBytes).toBe(0);
    expect(live.size).toBe(0);
  });
  it('a validation error inside the build scope', async () => {
    const base = await testDevice();
    const { device, live } = countingDevice(base, { badBuffer: /^psf-spectra-/ });
    const { set } = makeTestScene({ seed: 3, nSources: 6 });
    const res = new GpuResources(device);
    const err = (await ShearEngine.create(device, set, { resources: res }).catch((e) => e)) as Error;
    expect(err.message).toMatch(/^the GPU refused the engine's buffers or pipelines \(validation error\): /);
    expect(res.liveBytes).toBe(0);
    expect(live.size).toBe(0);
    // the device still works
    const eng = await ShearEngine.create(base, set);
    eng.destroy();
  });
});
