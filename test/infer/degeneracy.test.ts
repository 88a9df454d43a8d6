/**
 * The shear–ellipticity degeneracy behind the Laplace approximation's derived shear rows
 * (engine/infer/degeneracy.ts): the observed-shape composition against the galaxy map the model
 * renders (GalSim's shear(e).shear(g)), its inverse, the invariance of the float64 reference
 * likelihood along (g + δ, e(g + δ, ε)), and the marginal shear errors under a flat shear prior
 * — stable against the finite-difference steps with derived rows, not without them.
 */
import { describe, it, expect } from 'vitest';
import { galaxyMatrix } from '../../engine/model/galsim.ts';
import { intrinsicShape, observedShape, shearJacobian } from '../../engine/infer/degeneracy.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64 } from '../../engine/gpu/render/model64.ts';
import { cloneParams } from '../../engine/scene/types.ts';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { Posterior } from '../../engine/infer/posterior.ts';
import { laplaceShear } from '../../engine/infer/laplace.ts';

/** Distortion of AAᵀ for the model's galaxy map A (row-major 2×2). */
function modelShape(e1: number, e2: number, g1: number, g2: number): [number, number] {
  const A = galaxyMatrix(e1, e2, g1, g2);
  const p = A[0] * A[0] + A[1] * A[1];
  const q = A[0] * A[2] + A[1] * A[3];
  const r = A[2] * A[2] + A[3] * A[3];
  return [(p - r) / (p + r), (2 * q) / (p + r)];
}

describe('shear–ellipticity degeneracy', () => {
  const cases: Array<[[number, number], [number, number]]> = [
    [[0.03, -0.02], [0.4, 0.1]],
    [[-0.05, 0.04], [-0.2, 0.6]],
    [[0.1, 0.0], [0.0, -0.85]],
  ];
  it('observedShape is the distortion of the galaxy map the model renders; intrinsicShape inverts it', () => {
    for (const [g, e] of cases) {
      const m = modelShape(e[0], e[1], g[0], g[1]);
      const o = observedShape(g, e);
      expect(Math.abs(o[0] - m[0]) + Math.abs(o[1] - m[1])).toBeLessThan(1e-13);
      const back = intrinsicShape(g, o);
      expect(Math.abs(back[0] - e[0]) + Math.abs(back[1] - e[1])).toBeLessThan(1e-13);
      // D = ∂e/∂g at fixed ε: moving g by δ and e by Dδ keeps the observed shape (to O(δ²))
      const D = shearJacobian(g, e);
      const d = 1e-5;
      const o2 = observedShape([g[0] + d, g[1] - d], [e[0] + D[0][0] * d - D[0][1] * d, e[1] + D[1][0] * d - D[1][1] * d]);
      expect(Math.abs(o2[0] - o[0]) + Math.abs(o2[1] - o[1])).toBeLessThan(1e-9);
    }
  });
  it('the float64 reference likelihood does not change along (g + δ, e(g + δ, ε)), and does along g alone', () => {
    const sc = makeTestScene({ seed: 11, nSources: 4, blended: true, quadrants: [{ width: 160, height: 160, rotationDeg: 30, name: 'a' }], sourceTiers: [64], tiers: [64] });
    const p0 = cloneParams(sc.params);
    p0.g1 = 0.02;
    p0.g2 = -0.01;
    const L0 = logLikelihood64(sc.set, p0).logL;
    const moved = cloneParams(p0);
    moved.g1 += 0.03;
    moved.g2 += 0.02;
    const gAlone = logLikelihood64(sc.set, moved).logL - L0;
    for (let s = 0; s < p0.e1.length; s++) {
      const eps = observedShape([p0.g1, p0.g2], [p0.e1[s], p0.e2[s]]);
      [moved.e1[s], moved.e2[s]] = intrinsicShape([moved.g1, moved.g2], eps);
    }
    const along = logLikelihood64(sc.set, moved).logL - L0;
    console.log(`ΔlogL: g alone ${gAlone.toExponential(3)}, along the degenerate curve ${along.toExponential(3)}`);
    expect(Math.abs(gAlone)).toBeGreaterThan(1);
    expect(Math.abs(along)).toBeLessThan(1e-6 * Math.abs(gAlone));
  });
  it('flat shear prior: marginal errors do not depend on the finite-difference steps with derived shear rows', async () => {
    const device = await testDevice();
    const sc = makeTestScene({ seed: 5, nSources: 3, blended: false, quadrants: [{ width: 200, height: 200, rotationDeg: 0, name: 'a' }, { width: 200, height: 200, rotationDeg: 90, name: 'b' }], sourceTiers: [64], tiers: [64], fluxRange: [1500, 3000] });
    const eng = await ShearEngine.create(device, sc.set);
    const flat = { g1: { type: 'uniform' as const, low: -0.5, high: 0.5 }, g2: { type: 'uniform' as const, low: -0.5, high: 0.5 }, e1: { type: 'ba14' as const, sigma: 0.3 }, e2: { type: 'ba14' as const, sigma: 0.3 } };
    const post = new Posterior(eng, flat, sc.params, {});
    const run = async (step: number, derive: boolean) => laplaceShear(eng, post, sc.params, { deriveShearRows: derive, steps: { flux: step, hlr: step, e: step, offset: step, g: step } });
    const a = await run(1e-3, true);
    const b = await run(1e-2, true);
    console.log(`derived rows: G1_ERR ${a.g1Err.toExponential(5)} (steps 1e-3) ${b.g1Err.toExponential(5)} (1e-2); conditional ${a.g1ErrConditional.toExponential(3)}`);
    expect(a.ok && b.ok).toBe(true);
    expect(Math.abs(a.g1Err - b.g1Err) / a.g1Err).toBeLessThan(1e-3);
    expect(Math.abs(a.g2Err - b.g2Err) / a.g2Err).toBeLessThan(1e-3);
    // the marginal error is shape-noise sized (three sources, ba14 σ = 0.3): far above the conditional
    expect(a.g1Err).toBeGreaterThan(10 * a.g1ErrConditional);
    eng.destroy();
  });
  it('boxShearPrior: a uniform shear prior adds its variance\'s inverse 12/w² to the marginal precision; a Gaussian one is unchanged', async () => {
    const device = await testDevice();
    const sc = makeTestScene({ seed: 5, nSources: 3, blended: false, quadrants: [{ width: 200, height: 200, rotationDeg: 0, name: 'a' }, { width: 200, height: 200, rotationDeg: 90, name: 'b' }], sourceTiers: [64], tiers: [64], fluxRange: [1500, 3000] });
    const eng = await ShearEngine.create(device, sc.set);
    const e = { e1: { type: 'ba14' as const, sigma: 0.3 }, e2: { type: 'ba14' as const, sigma: 0.3 } };
    // a box of width 0.6: precision 12 / 0.36 = 33.3 per component
    const box = new Posterior(eng, { g1: { type: 'uniform' as const, low: -0.3, high: 0.3 }, g2: { type: 'uniform' as const, low: -0.3, high: 0.3 }, ...e }, sc.params, {});
    const bare = await laplaceShear(eng, box, sc.params, {});
    const boxed = await laplaceShear(eng, box, sc.params, { boxShearPrior: true });
    expect(bare.ok && boxed.ok).toBe(true);
    // precision = inverse of the 2×2 covariance, by hand
    const prec = (c: Float64Array) => {
      const det = c[0] * c[3] - c[1] * c[2];
      return [c[3] / det, -c[1] / det, -c[2] / det, c[0] / det];
    };
    const pb = prec(bare.covariance);
    const pp = prec(boxed.covariance);
    const want = 12 / 0.36;
    console.log(`box prior: precision ${pb[0].toFixed(3)} → ${pp[0].toFixed(3)} (g1), ${pb[3].toFixed(3)} → ${pp[3].toFixed(3)} (g2); G1_ERR ${bare.g1Err.toExponential(4)} → ${boxed.g1Err.toExponential(4)}`);
    expect(Math.abs(pp[0] - pb[0] - want)).toBeLessThan(1e-6 * pp[0]);
    expect(Math.abs(pp[3] - pb[3] - want)).toBeLessThan(1e-6 * pp[3]);
    expect(Math.abs(pp[1] - pb[1])).toBeLessThan(1e-6 * Math.sqrt(pp[0] * pp[3]));
    expect(boxed.g1Err).toBeLessThan(bare.g1Err);
    // no direction wider than the box's own standard deviation, 0.6/√12
    expect(boxed.g1Err).toBeLessThan(0.6 / Math.sqrt(12));
    // a Gaussian shear prior's curvature is in H_gg already: the option changes nothing
    const gauss = new Posterior(eng, { g1: { type: 'normal' as const, mean: 0, sigma: 0.05 }, g2: { type: 'normal' as const, mean: 0, sigma: 0.05 }, ...e }, sc.params, {});
    const g0 = await laplaceShear(eng, gauss, sc.params, {});
    const g1 = await laplaceShear(eng, gauss, sc.params, { boxShearPrior: true });
    expect(Array.from(g1.covariance)).toEqual(Array.from(g0.covariance));
    eng.destroy();
  });
  it('shear-blind sources: the derived shear rows (no degeneracy term for them) match the finite-difference rows', async () => {
    const device = await testDevice();
    const sc = makeTestScene({ seed: 11, nSources: 4, blended: true, quadrants: [{ width: 160, height: 160, rotationDeg: 30, name: 'a' }, { width: 160, height: 160, rotationDeg: 100, name: 'b' }], sourceTiers: [64], tiers: [64] });
    const p0 = cloneParams(sc.params);
    p0.g1 = 0.02;
    p0.g2 = -0.01;
    const flat = { g1: { type: 'uniform' as const, low: -0.5, high: 0.5 }, g2: { type: 'uniform' as const, low: -0.5, high: 0.5 }, e1: { type: 'ba14' as const, sigma: 0.3 }, e2: { type: 'ba14' as const, sigma: 0.3 } };
    const rows = async (blind: number[]) => {
      const set = { ...sc.set, sources: sc.set.sources.map((x, k) => ({ ...x, shearBlind: blind.includes(k) })) };
      const eng = await ShearEngine.create(device, set);
      const post = new Posterior(eng, flat, p0, {});
      expect(Array.from(post.space.shearBlind)).toEqual(set.sources.map((x) => (x.shearBlind ? 1 : 0)));
      const r = await laplaceShear(eng, post, p0, { deriveShearRows: true });
      eng.destroy();
      const H = r.hessian;
      expect(H.shearRows).toBe('derived');
      // worst difference between derived and measured (finite-difference) H_θg, relative to the largest entry
      let worst = 0;
      let big = 0;
      H.sg.forEach((col, ai) => col.forEach((v, i) => {
        big = Math.max(big, Math.abs(H.measured!.sg[ai][i]));
        worst = Math.max(worst, Math.abs(v - H.measured!.sg[ai][i]));
      }));
      return { rel: worst / big, gg: H.gg[0], ggMeasured: H.measured!.gg[0] };
    };
    const none = await rows([]);
    const blind = await rows([1, 3]);
    console.log(`derived vs measured H_θg: worst ${none.rel.toExponential(2)} of the largest (no blind source), ${blind.rel.toExponential(2)} (sources 1 and 3 shear-blind); H_g1g1 ${blind.gg.toExponential(4)} vs ${blind.ggMeasured.toExponential(4)}`);
    expect(blind.rel).toBeLessThan(Math.max(3 * none.rel, 1e-2));
    // the marginal-free curvature in g falls when half the sources stop measuring it
    expect(blind.ggMeasured).toBeLessThan(0.9 * none.ggMeasured);
  });
});
