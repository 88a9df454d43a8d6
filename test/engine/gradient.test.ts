/**
 * Every gradient component of the GPU engine against central finite differences of the
 * float64 reference log-likelihood, on a blended scene with three quadrants of different
 * orientation (one rotated 180°, one flipped and skewed) and all three stamp tiers.
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, perturbParams } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64 } from '../../engine/gpu/render/model64.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type SceneParams } from '../../engine/scene/types.ts';


const STEP: Record<string, number> = { flux: 1e-4, hlr: 1e-5, e1: 1e-5, e2: 1e-5, dx: 1e-5, dy: 1e-5 };

describe('adjoint gradient vs finite differences of the float64 reference', () => {
  it('matches every component to 1e-3 relative (absolute where ~0)', async () => {
    const device = await testDevice();
    const { set, params: truth } = makeTestScene({ seed: 11, nSources: 6 });
    const tiers = new Set(set.sources.map((s) => s.stampSize));
    expect([...tiers].sort((a, b) => a - b)).toEqual([64, 128, 256]);
    const params = perturbParams(truth, 5, 0.04);
    const eng = await ShearEngine.create(device, set);
    const { logL, gradient } = await eng.evaluate(params);
    const ref = logLikelihood64(set, params).logL;
    expect(Math.abs(logL - ref) / Math.abs(ref)).toBeLessThan(1e-5);

    const L = (p: SceneParams) => logLikelihood64(set, p).logL;
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
        const f = fd((p, v) => (p[name][s] = v), (p) => p[name][s], h);
        rows.push([`${name}[${s}]`, gradient[name][s], f]);
      }
    }
    rows.push(['g1', gradient.g1, fd((p, v) => (p.g1 = v), (p) => p.g1, 1e-5)]);
    rows.push(['g2', gradient.g2, fd((p, v) => (p.g2 = v), (p) => p.g2, 1e-5)]);
    // scale for "absolute where ~0": per parameter kind, the largest |FD| of that kind
    const scale = new Map<string, number>();
    for (const [n, , f] of rows) {
      const k = n.replace(/\[.*$/, '');
      scale.set(k, Math.max(scale.get(k) ?? 0, Math.abs(f)));
    }
    let worst = 0;
    for (const [n, g, f] of rows) {
      const k = n.replace(/\[.*$/, '');
      const err = Math.abs(g - f) / Math.max(Math.abs(f), 1e-2 * scale.get(k)!);
      worst = Math.max(worst, err);
      console.log(`${n.padEnd(9)} gpu ${g.toExponential(6)}  fd ${f.toExponential(6)}  err ${err.toExponential(2)}`);
    }
    console.log('worst relative error', worst.toExponential(2));
    for (const [n, g, f] of rows) {
      const k = n.replace(/\[.*$/, '');
      expect(Math.abs(g - f), n).toBeLessThanOrEqual(1e-3 * Math.max(Math.abs(f), 1e-2 * scale.get(k)!));
    }
    eng.destroy();
  });
});
