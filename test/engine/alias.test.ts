/**
 * Alias-complete rendering with oversampled PSF stamps (docs/forward-model.md "Aliasing"): the GPU
 * engine against the float64 reference extended the same way (forward, every tier, q = 2, 3) and
 * against central finite differences of that reference (every gradient component).
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, perturbParams } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64, renderModel64, renderPairStamp64 } from '../../engine/gpu/render/model64.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type SceneParams } from '../../engine/scene/types.ts';
import { aliasOrdersFor } from '../../engine/model/validate.ts';

let device: GPUDevice;
beforeAll(async () => {
  device = await testDevice();
});

describe('alias-complete rendering, oversampled PSF', () => {
  for (const q of [3, 2]) {
    it(`q = ${q}: model images match the float64 reference to 1e-5 of the peak, every tier`, async () => {
      // a narrow PSF (σ = 0.7 px), so that the alias orders matter
      const scene = makeTestScene({ seed: 21, nSources: 6, psfOversampling: q, psf: { sigma: 0.7 } });
      const { set, params } = scene;
      expect(aliasOrdersFor(set, { aliasOrders: 'auto' })).toBe(1);
      const eng = await ShearEngine.create(device, set);
      const imgs = await eng.render(params);
      const ref = renderModel64(set, params);
      const base = renderModel64(set, params, { aliasOrders: 0 });
      let peak = 0;
      set.pairs.forEach((p, i) => {
        if (p.visible) for (const v of renderPairStamp64(set, i, params).stamp) peak = Math.max(peak, Math.abs(v));
      });
      let err = 0;
      let aliasEffect = 0;
      ref.forEach((r, j) => r.forEach((v, i) => {
        err = Math.max(err, Math.abs(v - imgs[j][i]));
        aliasEffect = Math.max(aliasEffect, Math.abs(v - base[j][i]));
      }));
      console.log(`q=${q}: GPU vs f64 max|Δ|/peak ${(err / peak).toExponential(2)}; alias orders change the model by ${(aliasEffect / peak).toExponential(2)} of the peak`);
      expect(err / peak).toBeLessThan(1e-5);
      // the check is not vacuous: folding the orders changes the images by far more than the tolerance
      expect(aliasEffect / peak).toBeGreaterThan(1e-3);
      const ll = await eng.logLikelihood(params);
      const ll64 = logLikelihood64(set, params).logL;
      expect(Math.abs(ll - ll64) / Math.abs(ll64)).toBeLessThan(1e-5);
      eng.destroy();
    }, 300_000);
  }

  it('every gradient component matches finite differences of the float64 reference (q = 3, N = 1)', async () => {
    const { set, params: truth } = makeTestScene({ seed: 12, nSources: 4, psfOversampling: 3, psf: { sigma: 0.7 }, sourceTiers: [64, 64, 128, 64] });
    const params = perturbParams(truth, 5, 0.04);
    const eng = await ShearEngine.create(device, set);
    const { logL, gradient } = await eng.evaluate(params);
    const L = (p: SceneParams) => logLikelihood64(set, p).logL;
    expect(Math.abs(logL - L(params)) / Math.abs(L(params))).toBeLessThan(1e-5);
    const STEP: Record<string, number> = { flux: 1e-4, hlr: 1e-5, e1: 1e-5, e2: 1e-5, dx: 1e-5, dy: 1e-5 };
    const fd = (put: (p: SceneParams, v: number) => void, v0: number, h: number) => {
      const a = cloneParams(params);
      const b = cloneParams(params);
      put(a, v0 + h);
      put(b, v0 - h);
      return (L(a) - L(b)) / (2 * h);
    };
    let worst = 0;
    const rows: string[] = [];
    const check = (name: string, g: number, f: number, scale: number) => {
      const e = Math.abs(g - f) / Math.max(Math.abs(f), scale);
      worst = Math.max(worst, e);
      rows.push(`${name} gpu ${g.toExponential(4)} fd ${f.toExponential(4)} rel ${e.toExponential(1)}`);
    };
    for (const name of SOURCE_PARAM_NAMES) {
      let scale = 0;
      const fds: number[] = [];
      for (let s = 0; s < set.sources.length; s++) {
        const h = name === 'flux' ? STEP.flux * params.flux[s] : STEP[name];
        const f = fd((p, v) => (p[name][s] = v), params[name][s], h);
        fds.push(f);
        scale = Math.max(scale, Math.abs(f));
      }
      fds.forEach((f, s) => check(`${name}[${s}]`, gradient[name][s], f, 1e-3 * scale));
    }
    check('g1', gradient.g1, fd((p, v) => (p.g1 = v), params.g1, 1e-5), 1);
    check('g2', gradient.g2, fd((p, v) => (p.g2 = v), params.g2, 1e-5), 1);
    console.log(rows.join('\n'));
    console.log('worst relative error', worst.toExponential(2));
    expect(worst).toBeLessThan(1e-3);
    eng.destroy();
  }, 600_000);
});
