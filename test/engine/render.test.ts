/**
 * The GPU forward model against the float64 reference (engine/gpu/render/model64.ts), and the
 * engine's guarantees: determinism, the visibility filter, batching, no allocation after the
 * first call, and validation before any dispatch.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, type TestScene } from '../../engine/reference/scene-builder.ts';
import { renderModel64, logLikelihood64, renderPairStamp64 } from '../../engine/gpu/render/model64.ts';
import { cloneParams } from '../../engine/scene/types.ts';
import { SceneError } from '../../engine/errors.ts';

let device: GPUDevice;
beforeAll(async () => {
  device = await testDevice();
});

/** Max |GPU − f64| per quadrant relative to the largest peak of the stamps that land there. */
function stampRelativeErrors(scene: TestScene, imgs: Float32Array[], opts: { pixelResponse?: boolean } = {}): number[] {
  const { set, params } = scene;
  const ref = renderModel64(set, params, opts);
  return set.quadrants.map((q, j) => {
    let peak = 0;
    set.pairs.forEach((p, i) => {
      if (p.quadrant !== j || !p.visible) return;
      for (const v of renderPairStamp64(set, i, params, opts).stamp) peak = Math.max(peak, Math.abs(v));
    });
    let err = 0;
    for (let i = 0; i < ref[j].length; i++) err = Math.max(err, Math.abs(ref[j][i] - imgs[j][i]));
    return err / peak;
  });
}

describe('forward model', () => {
  for (const pixelResponse of [false, true]) {
    it(`model images match float64 to 1e-5 of the stamp peak (pixelResponse=${pixelResponse})`, async () => {
      const scene = makeTestScene({ seed: 3, nSources: 6 });
      const eng = await ShearEngine.create(device, scene.set, { pixelResponse });
      const errs = stampRelativeErrors(scene, await eng.render(scene.params), { pixelResponse });
      console.log('relative errors per quadrant', errs.map((e) => e.toExponential(2)).join(' '));
      for (const e of errs) expect(e).toBeLessThan(1e-5);
      const ll = await eng.logLikelihood(scene.params);
      const ref = logLikelihood64(scene.set, scene.params, { pixelResponse });
      console.log('logL gpu', ll, 'f64', ref.logL);
      expect(Math.abs(ll - ref.logL) / Math.abs(ref.logL)).toBeLessThan(1e-5);
      eng.destroy();
    });
  }

  it('fftFactor 1, 1.5 (mixed-radix grids) and 4 also match', async () => {
    for (const fftFactor of [1, 1.5, 4]) {
      const scene = makeTestScene({ seed: 4, nSources: 4, sourceTiers: [64, 128] });
      const eng = await ShearEngine.create(device, scene.set, { fftFactor });
      const ref = renderModel64(scene.set, scene.params, { fftFactor });
      const imgs = await eng.render(scene.params);
      let peak = 0, err = 0;
      ref.forEach((r, j) => r.forEach((v, i) => { peak = Math.max(peak, Math.abs(v)); err = Math.max(err, Math.abs(v - imgs[j][i])); }));
      expect(err / peak).toBeLessThan(1e-5);
      eng.destroy();
    }
  });
});

describe('engine guarantees', () => {
  it('two runs and two engines are bit-identical', async () => {
    const { set, params } = makeTestScene({ seed: 7, nSources: 6 });
    const a = await ShearEngine.create(device, set);
    const b = await ShearEngine.create(device, set);
    const r1 = await a.evaluate(params);
    const r2 = await a.evaluate(params);
    const r3 = await b.evaluate(params);
    for (const r of [r2, r3]) {
      expect(r.logL).toBe(r1.logL);
      expect(r.gradient.g1).toBe(r1.gradient.g1);
      expect(r.gradient.g2).toBe(r1.gradient.g2);
      expect(Array.from(r.gradient.flux)).toEqual(Array.from(r1.gradient.flux));
      expect(Array.from(r.gradient.e1)).toEqual(Array.from(r1.gradient.e1));
    }
    const m1 = await a.render(params);
    const m2 = await b.render(params);
    m1.forEach((m, j) => expect(Buffer.from(m.buffer).equals(Buffer.from(m2[j].buffer))).toBe(true));
    a.destroy();
    b.destroy();
  });

  it('visibility-filtered, unfiltered and two-pairs-per-batch model images are identical', async () => {
    const quadrants = [
      { width: 300, height: 300, rotationDeg: 0, origin: [150.3, 140.7] as [number, number] },
      { width: 300, height: 300, rotationDeg: 180, origin: [160.2, 150.6] as [number, number] },
      // far from the sources: only invisible pairs
      { width: 120, height: 100, rotationDeg: 90, origin: [700, -500] as [number, number] },
    ];
    const { set, params } = makeTestScene({ seed: 9, nSources: 8, sourceTiers: [64, 128], includeInvisiblePairs: true, quadrants });
    const invisible = set.pairs.filter((p) => !p.visible).length;
    expect(invisible).toBeGreaterThan(0);
    // unfiltered rendering needs a PSF for every pair: give invisible pairs one
    const psf = set.pairs.find((p) => p.psf)!.psf!;
    for (const p of set.pairs) if (!p.psf) p.psf = psf;
    const filtered = await ShearEngine.create(device, set);
    const unfiltered = await ShearEngine.create(device, set, { includeInvisible: true });
    const single = await ShearEngine.create(device, set, { maxPairsPerBatch: 2 });
    expect(unfiltered.stats.pairs).toBe(filtered.stats.pairs + invisible);
    expect(single.stats.batches).toBeGreaterThan(filtered.stats.batches);
    const a = await filtered.render(params);
    const b = await unfiltered.render(params);
    const c = await single.render(params);
    a.forEach((m, j) => {
      expect(Buffer.from(m.buffer).equals(Buffer.from(b[j].buffer))).toBe(true);
      expect(Buffer.from(m.buffer).equals(Buffer.from(c[j].buffer))).toBe(true);
    });
    const ea = await filtered.evaluate(params);
    const ec = await single.evaluate(params);
    expect(ec.logL).toBe(ea.logL);
    expect(Array.from(ec.gradient.hlr)).toEqual(Array.from(ea.gradient.hlr));
    for (const e of [filtered, unfiltered, single]) e.destroy();
  });

  it('creates no pipeline and allocates no buffer after the first call', async () => {
    const { set, params } = makeTestScene({ seed: 2, nSources: 4 });
    const eng = await ShearEngine.create(device, set);
    await eng.evaluate(params);
    await eng.render(params);
    const before = eng.stats;
    const p2 = cloneParams(params);
    p2.g1 += 0.01;
    await eng.evaluate(p2);
    await eng.render(p2);
    await eng.logLikelihood(p2);
    expect(eng.stats.pipelinesCreated).toBe(before.pipelinesCreated);
    expect(eng.stats.buffersCreated).toBe(before.buffersCreated);
    eng.destroy();
  });
});

describe('validation before any dispatch', () => {
  const cases: Array<[string, (p: ReturnType<typeof cloneParams>) => void, RegExp]> = [
    ['NaN flux', (p) => (p.flux[1] = NaN), /flux/],
    ['hlr ≤ 0', (p) => (p.hlr[0] = 0), /hlr/],
    ['|e| ≥ 1', (p) => { p.e1[2] = 0.8; p.e2[2] = 0.7; }, /e1|e2|\|e\|/],
    ['|g| ≥ 1', (p) => { p.g1 = 1; }, /g1|g2|\|g\|/],
  ];
  for (const [name, mutate, re] of cases) {
    it(`rejects ${name}`, async () => {
      const { set, params } = makeTestScene({ seed: 1, nSources: 3, sourceTiers: [64] });
      const eng = await ShearEngine.create(device, set);
      const p = cloneParams(params);
      mutate(p);
      await expect(eng.evaluate(p)).rejects.toThrow(SceneError);
      await expect(eng.evaluate(p)).rejects.toThrow(re);
      // still usable afterwards
      expect(Number.isFinite((await eng.evaluate(params)).logL)).toBe(true);
      eng.destroy();
    });
  }

  it('rejects inconsistent scenes: mismatched image sizes, a visible pair with no PSF', async () => {
    const s1 = makeTestScene({ seed: 1, nSources: 2, sourceTiers: [64] });
    s1.set.quadrants[0].rms = new Float32Array(10);
    await expect(ShearEngine.create(device, s1.set)).rejects.toThrow(/rms/);
    const s2 = makeTestScene({ seed: 1, nSources: 2, sourceTiers: [64] });
    s2.set.pairs.find((p) => p.visible)!.psf = null;
    await expect(ShearEngine.create(device, s2.set)).rejects.toThrow(/PSF|psf/);
  });
});
