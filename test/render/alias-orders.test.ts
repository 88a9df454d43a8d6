/**
 * How many alias orders 'auto' folds (engine/model/validate.ts aliasOrdersFor): every order the
 * PSF model's band reaches, less those whose cells hold under `aliasTolerance` of P̂(0). Checked on
 * the simulator's ePSF: the orders left out change the float64 stamps by less than the tolerance
 * says, the ones kept by more.
 */
import { describe, it, expect } from 'vitest';
import { singleGalaxyScene } from '../helpers/alias-scene.ts';
import { aliasOrdersFor } from '../../engine/model/validate.ts';
import { renderPairStamp64 } from '../../engine/gpu/render/model64.ts';

const JAC: [number, number, number, number] = [-0.1, 0.002, 0.001, 0.1];
const gal = { flux: 1000, hlr: 0.05, e1: 0.2, e2: -0.1, g1: 0.02, g2: 0.01, x: 100.3, y: 99.7 };

function maxRelDiff(a: Float64Array, b: Float64Array): number {
  let peak = 0;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    peak = Math.max(peak, Math.abs(a[i]));
    d = Math.max(d, Math.abs(a[i] - b[i]));
  }
  return d / peak;
}

describe("alias orders: 'auto' from the PSF model's band and a tolerance", () => {
  it('native stamps 0; q = 2, 3: 1; q = 5: 2 at the default 1e-7 (the ePSF is ~1e-6 beyond 3π) but 1 at 1e-5; integers capped at the reach', () => {
    const n = (q: number, extra: object = {}) => aliasOrdersFor(singleGalaxyScene(gal, JAC, q).set, { aliasOrders: 'auto', ...extra });
    expect(n(1)).toBe(0);
    expect(n(2)).toBe(1);
    expect(n(3)).toBe(1);
    expect(n(5)).toBe(2);
    expect(n(5, { aliasTolerance: 1e-5 })).toBe(1);
    const s3 = singleGalaxyScene(gal, JAC, 3).set;
    expect(aliasOrdersFor(s3, { aliasOrders: 4 })).toBe(1);
    expect(aliasOrdersFor(s3, { aliasOrders: 0 })).toBe(0);
  });

  it('q = 5: leaving out the 2nd order (P̂ < 1e-6 of P̂(0) there) changes a galaxy stamp by < 1e-6 of the peak; leaving out the 1st by > 1e-3', () => {
    const { set, params } = singleGalaxyScene(gal, JAC, 5);
    const st = (N: number) => renderPairStamp64(set, 0, params, { aliasOrders: N }).stamp;
    const s0 = st(0);
    const s1 = st(1);
    const s2 = st(2);
    const d12 = maxRelDiff(s2, s1);
    const d01 = maxRelDiff(s2, s0);
    console.log(`q=5: |N=2 − N=1| / peak ${d12.toExponential(2)}; |N=2 − N=0| / peak ${d01.toExponential(2)}`);
    expect(d12).toBeLessThan(1e-6);
    expect(d01).toBeGreaterThan(1e-3);
  });
});
