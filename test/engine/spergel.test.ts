/**
 * The Spergel profile on the GPU (RenderOptions.profile = {type: 'spergel', nu}): model images and
 * log-likelihood against the float64 reference for ν = −0.6, 0.5, 2, ν = 0.5 bit-identical to the
 * exponential, every gradient component against central finite differences of the float64
 * log-likelihood, the alias-complete path (PSF q = 3), and the validation of profile.nu.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, perturbParams, type TestSceneOptions } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64, renderModel64, renderPairStamp64 } from '../../engine/gpu/render/model64.ts';
import { resolveRenderOptions } from '../../engine/model/validate.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type RenderOptions, type SceneParams } from '../../engine/scene/types.ts';
import { SceneError } from '../../engine/errors.ts';

let device: GPUDevice;
beforeAll(async () => {
  device = await testDevice();
});

const spergel = (nu: number): RenderOptions['profile'] => ({ type: 'spergel', nu });

/** Max |GPU − f64| over all quadrants relative to the largest stamp peak, and logL of both. */
async function compare(scene: TestSceneOptions, opts: Partial<RenderOptions>) {
  const { set, params } = makeTestScene({ ...scene, render: opts });
  const eng = await ShearEngine.create(device, set, opts);
  try {
    const imgs = await eng.render(params);
    const ref = renderModel64(set, params, opts);
    let peak = 0;
    set.pairs.forEach((p, i) => {
      if (!p.visible) return;
      for (const v of renderPairStamp64(set, i, params, opts).stamp) peak = Math.max(peak, Math.abs(v));
    });
    let err = 0;
    ref.forEach((r, j) => r.forEach((v, i) => (err = Math.max(err, Math.abs(v - imgs[j][i])))));
    const ll = await eng.logLikelihood(params);
    const ll64 = logLikelihood64(set, params, opts).logL;
    return { rel: err / peak, ll, ll64, imgs };
  } finally {
    eng.destroy();
  }
}

describe('Spergel profile: GPU vs float64', () => {
  const SCENE: TestSceneOptions = { seed: 31, nSources: 5 };
  for (const nu of [-0.6, 0.5, 2]) {
    it(`ν = ${nu}: model images ≤ 1e-5 of the peak, logL ≤ 1e-5 relative`, async () => {
      const r = await compare(SCENE, { profile: spergel(nu) });
      console.log(`spergel nu=${nu}: max |gpu − f64| / peak ${r.rel.toExponential(2)}, logL gpu ${r.ll} f64 ${r.ll64} rel ${(Math.abs(r.ll - r.ll64) / Math.abs(r.ll64)).toExponential(2)}`);
      expect(r.rel).toBeLessThan(1e-5);
      expect(Math.abs(r.ll - r.ll64) / Math.abs(r.ll64)).toBeLessThan(1e-5);
    });
  }

  it('alias-complete path (PSF q = 3, one alias order), ν = −0.6 and 2', async () => {
    for (const nu of [-0.6, 2]) {
      const r = await compare({ seed: 24, nSources: 3, sourceTiers: [64, 64, 128], psfOversampling: 3, psf: { sigma: 0.7 } }, { profile: spergel(nu) });
      console.log(`spergel nu=${nu}, q=3 N=1: max |gpu − f64| / peak ${r.rel.toExponential(2)}, logL rel ${(Math.abs(r.ll - r.ll64) / Math.abs(r.ll64)).toExponential(2)}`);
      expect(r.rel).toBeLessThan(1e-5);
      expect(Math.abs(r.ll - r.ll64) / Math.abs(r.ll64)).toBeLessThan(1e-5);
    }
  });

  it('ν = 0.5 is bit-identical to the exponential (GPU and float64)', async () => {
    const { set, params } = makeTestScene(SCENE);
    const a = await ShearEngine.create(device, set);
    const b = await ShearEngine.create(device, set, { profile: spergel(0.5) });
    try {
      const ia = await a.render(params);
      const ib = await b.render(params);
      ia.forEach((img, j) => expect(Array.from(ib[j])).toEqual(Array.from(img)));
      const ea = await a.evaluate(params);
      const eb = await b.evaluate(params);
      expect(eb.logL).toBe(ea.logL);
      expect(Array.from(eb.gradient.hlr)).toEqual(Array.from(ea.gradient.hlr));
      expect(eb.gradient.g1).toBe(ea.gradient.g1);
    } finally {
      a.destroy();
      b.destroy();
    }
    const ra = renderModel64(set, params);
    const rb = renderModel64(set, params, { profile: spergel(0.5) });
    ra.forEach((img, j) => expect(Array.from(rb[j])).toEqual(Array.from(img)));
    // and a different ν does change the model (the stamp cache keys on the profile)
    const rc = renderModel64(set, params, { profile: spergel(0.4) });
    expect(rc.some((img, j) => img.some((v, i) => v !== ra[j][i]))).toBe(true);
  });

  it('profile.nu is validated with a clear SceneError', async () => {
    for (const bad of [5, -0.9, NaN, '0.3']) {
      expect(() => resolveRenderOptions({ profile: { type: 'spergel', nu: bad as number } })).toThrow(SceneError);
      expect(() => resolveRenderOptions({ profile: { type: 'spergel', nu: bad as number } })).toThrow(/profile\.nu/);
      try {
        resolveRenderOptions({ profile: { type: 'spergel', nu: bad as number } });
      } catch (e) {
        expect((e as SceneError).context.field).toBe('profile.nu');
      }
    }
    expect(() => resolveRenderOptions({ profile: { type: 'sersic' } as unknown as RenderOptions['profile'] })).toThrow(/profile must be/);
    expect(resolveRenderOptions({}).profile).toEqual({ type: 'exponential' });
    const { set } = makeTestScene({ seed: 2, nSources: 2 });
    await expect(ShearEngine.create(device, set, { profile: spergel(4.5) })).rejects.toThrow(/profile\.nu/);
  });
});

const STEP: Record<string, number> = { flux: 1e-4, hlr: 1e-5, e1: 1e-5, e2: 1e-5, dx: 1e-5, dy: 1e-5 };

/** Worst |gpu − fd| / max(|fd|, 1e-2 · largest |fd| of that kind) over every component. */
async function gradientCheck(scene: TestSceneOptions, opts: Partial<RenderOptions>, label: string): Promise<number> {
  const { set, params: truth } = makeTestScene({ ...scene, render: opts });
  const params = perturbParams(truth, 5, 0.04);
  const eng = await ShearEngine.create(device, set, opts);
  try {
    const { gradient } = await eng.evaluate(params);
    const L = (p: SceneParams) => logLikelihood64(set, p, opts).logL;
    const fd = (set1: (p: SceneParams, v: number) => void, get: (p: SceneParams) => number, h: number) => {
      const a = cloneParams(params);
      const b = cloneParams(params);
      set1(a, get(params) + h);
      set1(b, get(params) - h);
      return (L(a) - L(b)) / (2 * h);
    };
    const rows: Array<[string, number, number]> = [];
    for (const name of SOURCE_PARAM_NAMES) {
      for (let s = 0; s < set.sources.length; s++) {
        const h = name === 'flux' ? STEP.flux * params.flux[s] : STEP[name];
        rows.push([`${name}[${s}]`, gradient[name][s], fd((p, v) => (p[name][s] = v), (p) => p[name][s], h)]);
      }
    }
    rows.push(['g1', gradient.g1, fd((p, v) => (p.g1 = v), (p) => p.g1, 1e-5)]);
    rows.push(['g2', gradient.g2, fd((p, v) => (p.g2 = v), (p) => p.g2, 1e-5)]);
    const scale = new Map<string, number>();
    for (const [n, , f] of rows) {
      const k = n.replace(/\[.*$/, '');
      scale.set(k, Math.max(scale.get(k) ?? 0, Math.abs(f)));
    }
    let worst = 0;
    let worstName = '';
    for (const [n, g, f] of rows) {
      const k = n.replace(/\[.*$/, '');
      const err = Math.abs(g - f) / Math.max(Math.abs(f), 1e-2 * scale.get(k)!);
      if (err > worst) [worst, worstName] = [err, n];
      expect(Math.abs(g - f), `${label} ${n}: gpu ${g} fd ${f}`).toBeLessThanOrEqual(1e-3 * Math.max(Math.abs(f), 1e-2 * scale.get(k)!));
    }
    const hlr0 = rows.find((r) => r[0] === 'hlr[0]')!;
    console.log(`${label}: ${rows.length} components, worst relative error ${worst.toExponential(2)} (${worstName}); hlr[0] gpu ${hlr0[1].toExponential(6)} fd ${hlr0[2].toExponential(6)}`);
    return worst;
  } finally {
    eng.destroy();
  }
}

describe('Spergel profile: adjoint gradient vs finite differences of the float64 reference', () => {
  for (const nu of [-0.6, 0.5, 2]) {
    it(`ν = ${nu}: every component to 1e-3 relative (absolute where ~0)`, async () => {
      await gradientCheck({ seed: 11, nSources: 4, sourceTiers: [64, 128] }, { profile: spergel(nu) }, `spergel nu=${nu}`);
    });
  }
  it('alias-complete path (PSF q = 3), ν = −0.6 and 2', async () => {
    for (const nu of [-0.6, 2]) {
      await gradientCheck({ seed: 24, nSources: 3, sourceTiers: [64, 64, 128], psfOversampling: 3, psf: { sigma: 0.7 } }, { profile: spergel(nu) }, `spergel nu=${nu} q=3`);
    }
  });
});
