/**
 * Scenes too large for the GPU, and builds that fail (issue 17 items 10, 12): refused before
 * anything is allocated, naming the need (with its breakdown) and the limit; a build that throws
 * leaves no GPU buffer behind and reports its original error.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import bench from '../../cli/commands/bench.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { GpuResources } from '../../engine/gpu/resources.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { DataError } from '../../engine/errors.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { testDevice } from '../helpers/device.ts';
import { errorCase } from './harness.ts';

const G = 'gpu';
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'shine-hostile-gpu-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('GPU memory is planned before it is used', () => {
  it('bench-5000x8-tier256: the issue’s bench scene is refused in seconds, before it is built', async () => {
    const t0 = performance.now();
    const rss0 = process.memoryUsage().rss;
    // the issue's scene at its FFT grid (2 × the stamp, the default then): 40,000 × 512² complex = 78.13 GiB
    await errorCase(G, 'bench-5000x8-tier256', 'shine bench --sources 5000 --quadrants 8 --tier 256 --fft-factor 2 (grew to 8 GB)', () => bench.run(['--sources', '5000', '--quadrants', '8', '--tier', '256', '--fft-factor', '2', '--json']),
      /the bench scene \(5000 sources × 8 quadrants of 2048×2066, tier 256: 40000 pairs\) needs at least [\d.]+ GiB of GPU memory \(PSF spectra 78\.13 GiB, FFT work [\d.]+ GiB\), more than the budget of [\d.]+ GiB.*refused before building it/);
    expect(performance.now() - t0).toBeLessThan(30_000);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(512 * 2 ** 20);
  });
  it('bench-host-memory: a quadrant size no host can hold', async () => {
    await errorCase(G, 'bench-host-memory', 'shine bench --size 200000x200000 --sources 1 --quadrants 1', () => bench.run(['--sources', '1', '--quadrants', '1', '--size', '200000x200000', '--json']),
      /the bench scene .* needs about [\d.]+ GiB of host memory, more than half of this machine's/);
  });
  it('engine-over-budget: ShearEngine.create with maxGpuBytes below the need', async () => {
    const device = await testDevice();
    const { set } = makeTestScene({ seed: 3, nSources: 6 });
    const res = new GpuResources(device);
    await errorCase(G, 'engine-over-budget', 'a scene needing more than EngineOptions.maxGpuBytes (1 MiB)', async () => void (await ShearEngine.create(device, set, { maxGpuBytes: 2 ** 20, resources: res })),
      /needs [\d.]+ MiB of GPU memory \(PSF spectra [\d.]+ \w+, PSF build scratch .*\), more than the budget of 1\.0 MiB: refused before allocating/);
    expect(res.buffersCreated).toBe(0);
  });
  it('config-memory-budget: device.memory_budget_gb: -2', async () => {
    const p = join(dir, 'c-budget.yaml');
    writeFileSync(p, 'device:\n  memory_budget_gb: -2\n');
    await errorCase(G, 'config-memory-budget', 'device.memory_budget_gb: -2', async () => void (await loadConfig(p)), /c-budget\.yaml: device\.memory_budget_gb: expected number > 0/);
  });
});

describe('a failed engine build cleans up and reports the original error', () => {
  it('build-fails-midway: an error half-way through the build', async () => {
    const device = await testDevice();
    const { set } = makeTestScene({ seed: 3, nSources: 6 });
    const res = new GpuResources(device);
    await errorCase(G, 'build-fails-midway', 'an error after the PSF spectra were computed (EngineOptions.onBuildStep)', async () =>
      void (await ShearEngine.create(device, set, { resources: res, onBuildStep: (s) => { if (s === 'spectra') throw new DataError('PSF stamp unreadable', { file: 'psf.fits', hdu: 3 }); } })),
      /^shine: file psf\.fits, HDU 3: PSF stamp unreadable$/);
    expect(res.buffersCreated).toBeGreaterThan(10);
    expect(res.liveBytes).toBe(0);
  });
  it('build-gpu-validation: a validation error inside the build scope', async () => {
    const base = await testDevice();
    const { set } = makeTestScene({ seed: 3, nSources: 6 });
    // a device whose PSF spectra buffers are requested with a usage WebGPU refuses
    const device = new Proxy(base, {
      get(target, prop) {
        if (prop === 'createBuffer') {
          return (d: GPUBufferDescriptor) => target.createBuffer(/^psf-spectra-/.test(d.label ?? '') ? { ...d, usage: d.usage | GPUBufferUsage.MAP_READ } : d);
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const res = new GpuResources(device);
    await errorCase(G, 'build-gpu-validation', 'the GPU refusing a buffer during the build (validation scope)', async () => void (await ShearEngine.create(device, set, { resources: res })),
      /^shine: the GPU refused the engine's buffers or pipelines \(validation error\): /);
    expect(res.liveBytes).toBe(0);
  });
});
