/**
 * The ba14 ellipticity prior p(e) ∝ (1 − |e|²)² exp(−|e|²/2σ²) on the unit disc (Bernstein &
 * Armstrong 2014): its normalisation against 2-D numerical quadrature, the log density that
 * ParamSpace.logPrior returns against the definition, its gradient and full Hessian (including the
 * e1–e2 cross term that the Laplace approximation needs) against finite differences, and the
 * posterior's gradient in z. No GPU.
 */
import { describe, it, expect } from 'vitest';
import { ba14LogNorm, ba14Pair } from '../../engine/infer/priors.ts';
import { ParamSpace, Posterior, type LikelihoodEvaluator } from '../../engine/infer/posterior.ts';
import { allocParams, type SceneParams } from '../../engine/scene/types.ts';

/** ∫ over the unit disc of (1 − r²)² exp(−r²/2σ²), midpoint rule in r (polar, exact in θ). */
function numericNorm(sigma: number): number {
  const n = 200000;
  let s = 0;
  for (let i = 0; i < n; i++) {
    const r = (i + 0.5) / n;
    s += (1 - r * r) ** 2 * Math.exp((-r * r) / (2 * sigma * sigma)) * 2 * Math.PI * r;
  }
  return s / n;
}

/** log p(e1, e2) from the definition, normalised numerically. */
function logDensity(e1: number, e2: number, sigma: number, logZ: number): number {
  const q = e1 * e1 + e2 * e2;
  return 2 * Math.log(1 - q) - q / (2 * sigma * sigma) - logZ;
}

function params(n: number): SceneParams {
  const p = allocParams(n);
  for (let s = 0; s < n; s++) {
    p.flux[s] = 800 + 100 * s;
    p.hlr[s] = 0.3;
    p.e1[s] = 0.3 - 0.25 * s;
    p.e2[s] = -0.2 + 0.3 * s;
  }
  p.g1 = 0.01;
  p.g2 = -0.02;
  return p;
}

describe('ba14 ellipticity prior', () => {
  it('normalisation: closed form (and its small-a series) against 2-D quadrature', () => {
    for (const sigma of [0.05, 0.2, 0.3, 1, 3, 10, 100]) {
      const z = numericNorm(sigma);
      expect(Math.abs(ba14LogNorm(sigma) - Math.log(z)), `σ = ${sigma}`).toBeLessThan(1e-8);
    }
  });
  it('ParamSpace.logPrior on a ba14 pair equals the definition; gradient and Hessian (with the cross term) match finite differences', () => {
    const sigma = 0.3;
    const init = params(2);
    const sp = new ParamSpace({ e1: { type: 'ba14', sigma }, e2: { type: 'ba14', sigma }, g1: { type: 'uniform', low: -0.5, high: 0.5 }, g2: { type: 'uniform', low: -0.5, high: 0.5 } }, init);
    const th = sp.pack(init);
    const logZ = Math.log(numericNorm(sigma));
    const lp = sp.logPrior(th);
    // the other factors (flux, hlr, offsets, shear): SHINE's separable priors, from their definitions
    let others = 2 * -Math.log(1); // uniform shear on [−0.5, 0.5]: log 1 = 0
    for (let s = 0; s < 2; s++) {
      const lf = Math.log(init.flux[s]);
      const lh = Math.log(init.hlr[s]);
      others += -lf - 0.5 * Math.log(2 * Math.PI) - Math.log(0.5); // lognormal at its own centre
      others += -lh - 0.5 * Math.log(2 * Math.PI) - Math.log(0.3);
      for (const d of [init.dx[s], init.dy[s]]) others += -0.5 * (d / 0.05) ** 2 - Math.log(0.05) - 0.5 * Math.log(2 * Math.PI);
      others += logDensity(init.e1[s], init.e2[s], sigma, logZ);
    }
    expect(Math.abs(lp.value - others)).toBeLessThan(1e-8);
    const h = 1e-6;
    for (let i = 0; i < th.length; i++) {
      const tp = th.slice();
      const tm = th.slice();
      tp[i] += h;
      tm[i] -= h;
      const a = sp.logPrior(tp);
      const b = sp.logPrior(tm);
      const d1 = (a.value - b.value) / (2 * h);
      expect(Math.abs(lp.grad[i] - d1), `∂/∂${sp.name(i)}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(d1)));
      const d2 = (a.grad[i] - b.grad[i]) / (2 * h);
      expect(Math.abs(lp.hessDiag[i] - d2), `∂²/∂${sp.name(i)}²`).toBeLessThan(1e-4 * Math.max(1, Math.abs(d2)));
      for (let j = 0; j < th.length; j++) {
        if (j === i) continue;
        const dij = (a.grad[j] - b.grad[j]) / (2 * h);
        const pair = lp.hessPairs.find(([p, q]) => p === Math.min(i, j) && q === Math.max(i, j));
        const v = pair ? pair[2] : 0;
        expect(Math.abs(v - dij), `∂²/∂${sp.name(i)}∂${sp.name(j)}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(dij)));
      }
    }
    // the cross term exists and is not small here
    expect(lp.hessPairs.length).toBe(2);
    expect(Math.abs(lp.hessPairs[0][2])).toBeGreaterThan(0.1);
  });
  it('vanishes at the disc edge: −∞ at and beyond |e| = 1, and a barrier that grows like 4·|z| in the unconstrained space', () => {
    expect(ba14Pair(0.8, 0.6, 0.3).value).toBe(-Infinity);
    expect(ba14Pair(1.2, 0, 0.3).value).toBe(-Infinity);
    const sp = new ParamSpace({ e1: { type: 'ba14', sigma: 0.3 }, e2: { type: 'ba14', sigma: 0.3 }, ellipticityMax: 1 }, params(1));
    const at = (r: number) => {
      const z = sp.inverse(sp.pack(sp.base));
      const i1 = sp.sourceIndex[2];
      const i2 = sp.sourceIndex[3];
      z[i1] = r;
      z[i2] = 0;
      return sp.logPrior(sp.forward(z)).value;
    };
    // log(1 − tanh² r)² = 2 log sech² r → −4r + const: the slope approaches −4
    const slope = (at(8) - at(6)) / 2;
    expect(slope).toBeLessThan(-3.9);
    expect(slope).toBeGreaterThan(-4.1 - 1 / (2 * 0.09) * 0.01);
  });
  it('default ellipticity_max 0.99: every z maps inside |e| < 0.99 (never where the float32 shear matrix is singular), the prior finite', () => {
    const sp = new ParamSpace({ e1: { type: 'ba14', sigma: 0.3 }, e2: { type: 'ba14', sigma: 0.3 } }, params(1));
    const i1 = sp.sourceIndex[2];
    const i2 = sp.sourceIndex[3];
    for (const r of [1, 5, 10, 20, 40, 1e3]) {
      const z = sp.inverse(sp.pack(sp.base));
      z[i1] = r * 0.6;
      z[i2] = -r * 0.8;
      const th = sp.forward(z);
      const e = Math.hypot(th[i1], th[i2]);
      expect(e).toBeLessThanOrEqual(0.99);
      // 1 − |e|² as float32 stays ≥ 1 − 0.99² (the renderer's 1/√(1 − |g|²) finite)
      expect(Math.fround(1 - Math.fround(e) ** 2)).toBeGreaterThan(0.0198);
      expect(Number.isFinite(sp.logPrior(th).value)).toBe(true);
    }
    expect(() => sp.inverse(Float64Array.from(sp.pack(sp.base), (v, i) => (i === i1 ? 0.995 : i === i2 ? 0 : v)))).toThrow(/modulus must be < 0.99/);
    expect(() => new ParamSpace({ ellipticityMax: 1.5 }, params(1))).toThrow(/ellipticity_max = 1.5 must be in \(0, 1\]/);
  });
  it('one component fixed: the pair term uses the fixed value', () => {
    const init = params(1);
    const sp = new ParamSpace({ e1: { type: 'ba14', sigma: 0.25 }, e2: { type: 'fixed', value: 0.4 } }, init);
    const th = sp.pack(sp.base);
    const i1 = sp.sourceIndex[2];
    const lp = sp.logPrior(th);
    const h = 1e-6;
    const tp = th.slice();
    const tm = th.slice();
    tp[i1] += h;
    tm[i1] -= h;
    const d1 = (sp.logPrior(tp).value - sp.logPrior(tm).value) / (2 * h);
    // analytic from the definition with e2 = 0.4 held
    const e1 = init.e1[0];
    const expected = (-4 * e1) / (1 - e1 * e1 - 0.16) - e1 / 0.0625;
    expect(Math.abs(lp.grad[i1] - expected)).toBeLessThan(1e-9);
    expect(Math.abs(d1 - expected)).toBeLessThan(1e-5);
    expect(() => new ParamSpace({ e1: { type: 'ba14', sigma: 0.3 }, e2: { type: 'normal', sigma: 0.3 } }, init)).toThrow(/same prior type/);
    expect(() => new ParamSpace({ flux: { type: 'ba14', sigma: 0.3 } as never }, init)).toThrow(/prior on the ellipticity/);
  });
  it('posterior gradient in z (with and without log|J|) matches finite differences', async () => {
    const init = params(2);
    // a smooth stand-in likelihood: a quadratic in every parameter around a centre
    const centre = params(2);
    centre.e1[0] = 0.5;
    const like: LikelihoodEvaluator = {
      async evaluate(p: SceneParams) {
        const gradient = allocParams(2);
        let logL = -0.5 * ((p.g1 - 0.02) / 0.01) ** 2 - 0.5 * ((p.g2 + 0.01) / 0.01) ** 2;
        gradient.g1 = -(p.g1 - 0.02) / 1e-4;
        gradient.g2 = -(p.g2 + 0.01) / 1e-4;
        for (let s = 0; s < 2; s++)
          for (const k of ['e1', 'e2'] as const) {
            logL += -0.5 * ((p[k][s] - centre[k][s]) / 0.1) ** 2;
            gradient[k][s] = -(p[k][s] - centre[k][s]) / 0.01;
          }
        return { logL, gradient };
      },
    };
    for (const jacobian of [true, false]) {
      const post = new Posterior(like, { e1: { type: 'ba14', sigma: 0.3 }, e2: { type: 'ba14', sigma: 0.3 }, g1: { type: 'uniform', low: -0.5, high: 0.5 }, g2: { type: 'uniform', low: -0.5, high: 0.5 } }, init, { jacobian });
      const z = post.space.inverse(post.space.pack(init));
      for (let i = 0; i < z.length; i++) z[i] += 0.03 * Math.cos(2 * i);
      const r = await post.logDensity(z);
      for (let i = 0; i < z.length; i++) {
        const zp = z.slice();
        const zm = z.slice();
        zp[i] += 1e-6;
        zm[i] -= 1e-6;
        const d = ((await post.logDensity(zp)).value - (await post.logDensity(zm)).value) / 2e-6;
        expect(Math.abs(r.grad[i] - d), `jac=${jacobian} ${post.space.name(i)}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(d)));
      }
    }
  });
});
