/**
 * The out-of-memory fallback (docs/plan.md): a GPU out-of-memory error while the engine is built
 * or while it evaluates makes it re-plan smaller (smaller batches, then recomputed PSF spectra),
 * say so, and carry on — with results bit-identical to an undisturbed engine:
 *  - mid-build: the n-th buffer allocation (half-way through the build) reports out of memory;
 *    every buffer of the failed attempt is released (the live bytes are exactly the new plan's);
 *  - mid-fit: the 4th GPU call of a MAP fit reports out of memory; the fit ends where the
 *    undisturbed fit ends (parameters, loss history, iterations);
 *  - nothing smaller left: the error says so.
 */
import { describe, expect, it } from 'vitest';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { estimateEngineBytes, GpuOutOfMemoryError } from '../../engine/scene/memory.ts';
import { GpuResources } from '../../engine/gpu/resources.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { cloneParams, type SceneParams } from '../../engine/scene/types.ts';
import { runMap } from '../../engine/infer/map.ts';
import { testDevice } from '../helpers/device.ts';
import { expectSameMapFit } from '../helpers/same-map.ts';

const FIELDS = ['flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const;
const hex = (a: ArrayLike<number>) => Buffer.from(Float64Array.from(a).buffer).toString('hex');

/** GpuResources whose `at`-th buffer allocation (counted from 1) reports a GPU out-of-memory error. */
class OomAt extends GpuResources {
  count = 0;
  constructor(
    device: GPUDevice,
    readonly at: number,
  ) {
    super(device);
  }
  override buffer(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    if (++this.count === this.at) throw new GpuOutOfMemoryError(`test: allocation #${this.at} (${label}, ${size} B)`);
    return super.buffer(label, size, usage);
  }
}

function sameEvaluation(a: { logL: number; gradient: SceneParams }, b: { logL: number; gradient: SceneParams }): void {
  expect(b.logL).toBe(a.logL);
  for (const f of FIELDS) expect(hex(b.gradient[f])).toBe(hex(a.gradient[f]));
  expect(b.gradient.g1).toBe(a.gradient.g1);
  expect(b.gradient.g2).toBe(a.gradient.g2);
}

describe('out-of-memory fallback', () => {
  it('mid-build: re-plans smaller, says so, releases the failed attempt, same results', async () => {
    const device = await testDevice();
    const { set, params } = makeTestScene({ seed: 8, nSources: 10, tiers: [64, 128] });
    const ref = await ShearEngine.create(device, set);
    const refEval = await ref.evaluate(params);
    const refImg = await ref.render(params);
    const nBuffers = ref.stats.buffersCreated;
    ref.destroy();
    const res = new OomAt(device, Math.floor(nBuffers / 2));
    const said: string[] = [];
    const eng = await ShearEngine.create(device, set, { resources: res, onReplan: (m) => said.push(m) });
    try {
      console.log(said.join('\n'));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/^GPU out of memory while building the engine \(test: allocation #\d+ .*\): re-planned from PSF spectra kept, \d+ pairs per batch at most \([\d.]+ \w+\) to PSF spectra (kept|recomputed), \d+ pairs per batch at most \([\d.]+ \w+\); the results do not change$/);
      expect(eng.replans).toEqual(said);
      const o = eng.options;
      expect(o.psfSpectra === 'recompute' || (o.maxPairsPerBatch ?? Infinity) < Math.max(...eng.layout.batches.map((b) => b.count)) * 2).toBe(true);
      // the failed attempt's buffers are all gone: what is alive is exactly what the new plan keeps
      const est = estimateEngineBytes(set, { psfSpectra: o.psfSpectra, maxPairsPerBatch: o.maxPairsPerBatch }, device.limits);
      expect(res.liveBytes).toBe(est.resident);
      sameEvaluation(refEval, await eng.evaluate(params));
      const img = await eng.render(params);
      img.forEach((m, j) => expect(Buffer.from(m.buffer).equals(Buffer.from(refImg[j].buffer))).toBe(true));
    } finally {
      eng.destroy();
    }
  });

  it('mid-fit: the 4th GPU call reports out of memory; the MAP fit ends exactly where the undisturbed one does', async () => {
    const device = await testDevice();
    const sc = makeTestScene({ seed: 21, nSources: 4, quadrants: [{ width: 170, height: 170, rotationDeg: 0, name: 'a' }, { width: 170, height: 170, rotationDeg: 180, name: 'b' }], sourceTiers: [64], tiers: [64], fluxRange: [1500, 3000] });
    const init = cloneParams(sc.params);
    init.g1 = 0;
    init.g2 = 0;
    for (let i = 0; i < init.flux.length; i++) init.flux[i] *= 1 + 0.1 * Math.cos(i);
    const catalog = { flux: sc.params.flux, hlr: sc.params.hlr };
    const opts = { catalog, lbfgs: { maxIterations: 15 } };
    const a = await ShearEngine.create(device, sc.set);
    const said: string[] = [];
    const b = await ShearEngine.create(device, sc.set, { onReplan: (m) => said.push(m), faults: { oomAfterCall: (i) => i === 3 } });
    try {
      const ma = await runMap(a, sc.set, {}, init, opts);
      const mb = await runMap(b, sc.set, {}, init, opts);
      console.log(said.join('\n'));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(/^GPU out of memory while evaluating \(reported by a test hook\): re-planned from .* to .*; the results do not change$/);
      expect(b.replans).toEqual(said);
      expectSameMapFit(ma, mb);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  it('nothing smaller left: the out-of-memory error says so', async () => {
    const device = await testDevice();
    const { set, params } = makeTestScene({ seed: 9, nSources: 3, tiers: [64] });
    const said: string[] = [];
    // every call reports out of memory: the engine steps down to its smallest plan, then gives up
    const eng = await ShearEngine.create(device, set, { onReplan: (m) => said.push(m), faults: { oomAfterCall: () => true } });
    try {
      const err = await eng.evaluate(params).then(
        () => null,
        (e) => e,
      );
      expect(err).toBeInstanceOf(GpuOutOfMemoryError);
      expect(err.message).toMatch(/with the smallest plan \(PSF spectra recomputed, 2 pairs per batch at most, [\d.]+ \w+\): nothing smaller to try/);
      console.log([...said, err.message].join('\n'));
      expect(said.length).toBeGreaterThanOrEqual(1);
      expect(said[said.length - 1]).toMatch(/to PSF spectra recomputed/);
    } finally {
      eng.destroy();
    }
  });
});
