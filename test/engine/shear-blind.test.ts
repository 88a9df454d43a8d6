/**
 * Shear-blind (nuisance) sources (SourceInfo.shearBlind): rendered unsheared, no share of the
 * shear gradient. Oracles: the float64 reference WITHOUT the flag at the intrinsic shape that the
 * shear turns into the flagged source's (e1, e2) (degeneracy.ts' intrinsicShape: the same image),
 * and central finite differences in g of the float64 reference with the flag.
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, perturbParams } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64 } from '../../engine/gpu/render/model64.ts';
import { intrinsicShape } from '../../engine/infer/degeneracy.ts';
import { cloneParams, type ExposureSet, type SceneParams } from '../../engine/scene/types.ts';

describe('shear-blind sources', () => {
  it('render as their unsheared shape and take no share of ∂logL/∂g (GPU and float64 reference)', async () => {
    const device = await testDevice();
    const { set, params: truth } = makeTestScene({ seed: 11, nSources: 6 });
    const params = perturbParams(truth, 5, 0.04);
    params.g1 = 0.05;
    params.g2 = -0.03;
    const blindIdx = [1, 4];
    const blindSet: ExposureSet = { ...set, sources: set.sources.map((s, k) => ({ ...s, shearBlind: blindIdx.includes(k) })) };

    // oracle 1: the same image from ordinary sources whose intrinsic shape the shear turns into (e1, e2)
    const equivalent = cloneParams(params);
    for (const k of blindIdx) [equivalent.e1[k], equivalent.e2[k]] = intrinsicShape([params.g1, params.g2], [params.e1[k], params.e2[k]]);
    const refBlind = logLikelihood64(blindSet, params).logL;
    const refEquivalent = logLikelihood64(set, equivalent).logL;
    const refSheared = logLikelihood64(set, params).logL;
    console.log(`logL blind ${refBlind.toFixed(4)}, equivalent ordinary ${refEquivalent.toFixed(4)}, the same sources sheared ${refSheared.toFixed(4)}`);
    expect(Math.abs(refBlind - refEquivalent)).toBeLessThan(1e-9 * Math.abs(refBlind));
    expect(Math.abs(refBlind - refSheared)).toBeGreaterThan(1); // the flag changes the image

    const eng = await ShearEngine.create(device, blindSet);
    const plain = await ShearEngine.create(device, set);
    const { logL, gradient } = await eng.evaluate(params);
    expect(Math.abs(logL - refBlind) / Math.abs(refBlind)).toBeLessThan(1e-5);

    // oracle 2: central differences in g of the float64 reference with the flag
    const L = (p: SceneParams) => logLikelihood64(blindSet, p).logL;
    const fd = (key: 'g1' | 'g2') => {
      const a = cloneParams(params);
      const b = cloneParams(params);
      a[key] += 1e-5;
      b[key] -= 1e-5;
      return (L(a) - L(b)) / 2e-5;
    };
    const fd1 = fd('g1');
    const fd2 = fd('g2');
    // the ordinary engine's shear gradient differs by the blind sources' share
    const full = await plain.evaluate(params);
    console.log(`∂logL/∂g blind: gpu (${gradient.g1.toExponential(5)}, ${gradient.g2.toExponential(5)}), fd (${fd1.toExponential(5)}, ${fd2.toExponential(5)}); all sheared (${full.gradient.g1.toExponential(5)}, ${full.gradient.g2.toExponential(5)})`);
    const scale = Math.max(Math.abs(fd1), Math.abs(fd2));
    expect(Math.abs(gradient.g1 - fd1)).toBeLessThan(1e-3 * scale);
    expect(Math.abs(gradient.g2 - fd2)).toBeLessThan(1e-3 * scale);
    expect(Math.abs(full.gradient.g1 - gradient.g1) + Math.abs(full.gradient.g2 - gradient.g2)).toBeGreaterThan(0.05 * scale);

    // a scene of blind sources only: the likelihood does not depend on the shear
    const allBlind: ExposureSet = { ...set, sources: set.sources.map((s) => ({ ...s, shearBlind: true })) };
    const e3 = await ShearEngine.create(device, allBlind);
    const r3 = await e3.evaluate(params);
    expect(r3.gradient.g1).toBe(0);
    expect(r3.gradient.g2).toBe(0);
    const moved = cloneParams(params);
    moved.g1 = -0.2;
    moved.g2 = 0.1;
    expect((await e3.evaluate(moved)).logL).toBe(r3.logL);
    [eng, plain, e3].forEach((e) => e.destroy());
  }, 120_000);
});
