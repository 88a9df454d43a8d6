/**
 * Priors, bijections and the posterior's chain rule in float64, against independent oracles:
 * numerical integration (normalisation), central finite differences (gradients, Jacobians,
 * log-Jacobians) and exact round trips. No GPU.
 */
import { describe, it, expect } from 'vitest';
import {
  priorLogDensity,
  resolvePriors,
  scalarPrior,
  SHINE_DEFAULT_PRIORS,
  type ScalarPrior,
} from '../../engine/infer/priors.ts';
import {
  discForward,
  discInverse,
  discLogJac,
  discPullback,
  scalarDerivative,
  scalarForward,
  scalarInverse,
  scalarLogJac,
  type ScalarTransform,
} from '../../engine/infer/transforms.ts';
import { ParamSpace, Posterior, type LikelihoodEvaluator } from '../../engine/infer/posterior.ts';
import { allocParams, SOURCE_PARAM_NAMES, type SceneParams } from '../../engine/scene/types.ts';

const fd = (f: (x: number) => number, x: number, h: number) => (f(x + h) - f(x - h)) / (2 * h);
const rel = (a: number, b: number, floor = 1e-12) => Math.abs(a - b) / Math.max(Math.abs(b), floor);

describe('priors', () => {
  const priors: Array<[ScalarPrior, number[], [number, number]]> = [
    [{ type: 'normal', mean: 0.01, sigma: 0.05 }, [-0.1, 0, 0.03, 0.2], [-1, 1]],
    [{ type: 'lognormal', mu: Math.log(500), sigma: 0.5 }, [100, 480, 900, 3000], [1e-6, 5e4]],
    [{ type: 'lognormal', mu: Math.log(0.3), sigma: 0.3 }, [0.1, 0.3, 0.5], [1e-8, 5]],
    [{ type: 'uniform', low: -0.2, high: 0.5 }, [-0.1, 0.2, 0.45], [-0.2, 0.5]],
  ];
  it('densities integrate to 1 (trapezoid on a fine grid)', () => {
    for (const [p, , [a, b]] of priors) {
      const n = 400000;
      const h = (b - a) / n;
      let s = 0;
      for (let i = 0; i <= n; i++) {
        const w = i === 0 || i === n ? 0.5 : 1;
        const v = priorLogDensity(p, a + i * h).value;
        if (Number.isFinite(v)) s += w * Math.exp(v);
      }
      expect(Math.abs(s * h - 1), p.type).toBeLessThan(2e-3);
    }
  });
  it('first and second derivatives match finite differences', () => {
    for (const [p, xs] of priors) {
      for (const x of xs) {
        const r = priorLogDensity(p, x);
        const h = 1e-5 * Math.max(Math.abs(x), 1e-2);
        const d1 = fd((t) => priorLogDensity(p, t).value, x, h);
        const d2 = fd((t) => priorLogDensity(p, t).d1, x, h);
        expect(Math.abs(r.d1 - d1), `${p.type} d1 at ${x}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(d1)));
        expect(Math.abs(r.d2 - d2), `${p.type} d2 at ${x}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(d2)));
      }
    }
  });
  it('outside the support: −∞', () => {
    expect(priorLogDensity({ type: 'lognormal', mu: 0, sigma: 1 }, -1).value).toBe(-Infinity);
    expect(priorLogDensity({ type: 'uniform', low: 0, high: 1 }, 1.5).value).toBe(-Infinity);
  });
  it('SHINE defaults and catalog centres', () => {
    const p = resolvePriors();
    expect(p).toEqual(SHINE_DEFAULT_PRIORS);
    expect(p.g1).toEqual({ type: 'normal', mean: 0, sigma: 0.05 });
    expect(scalarPrior('flux', p.flux, 1234)).toEqual({ type: 'lognormal', mu: Math.log(1234), sigma: 0.5 });
    expect(scalarPrior('hlr', p.hlr, 0.4)).toEqual({ type: 'lognormal', mu: Math.log(0.4), sigma: 0.3 });
    expect(scalarPrior('dx', p.dx)).toEqual({ type: 'normal', mean: 0, sigma: 0.05 });
    expect(scalarPrior('e1', { type: 'fixed' })).toBeNull();
  });
  it('rejects invalid specifications with the field named', () => {
    expect(() => resolvePriors({ e1: { type: 'lognormal', sigma: 1 } })).toThrow(/priors\.e1.*lognormal/);
    expect(() => resolvePriors({ g1: { type: 'normal', sigma: 0 } })).toThrow(/priors\.g1/);
    expect(() => resolvePriors({ flux: { type: 'uniform', low: -1, high: 10 } })).toThrow(/flux/);
    expect(() => resolvePriors({ e2: { type: 'uniform', low: -1.2, high: 0.5 } })).toThrow(/inside/);
    expect(() => resolvePriors({ dx: { type: 'uniform', low: 1, high: 1 } })).toThrow(/low < high/);
    expect(() => resolvePriors({ hlr: { type: 'cauchy' } as never })).toThrow(/unknown prior type/);
    expect(() => scalarPrior('flux', { type: 'lognormal', sigma: 1 }, -3)).toThrow(/catalog value/);
  });
});

describe('bijections', () => {
  const scalars: Array<[ScalarTransform, number[]]> = [
    [{ kind: 'identity' }, [-3, 0, 2.5]],
    [{ kind: 'exp' }, [-5, 0, 3]],
    [{ kind: 'affineSigmoid', low: -0.3, high: 2 }, [-8, -1, 0, 0.7, 6]],
    [{ kind: 'scaledTanh', radius: 0.8 }, [-3, -0.2, 0, 1.1]],
  ];
  it('scalar round trips, derivatives and log-Jacobians', () => {
    for (const [t, zs] of scalars) {
      for (const z of zs) {
        const x = scalarForward(t, z);
        expect(Math.abs(scalarInverse(t, x) - z), `${t.kind} round trip at ${z}`).toBeLessThan(1e-9 * Math.max(1, Math.abs(z)));
        const d = fd((u) => scalarForward(t, u), z, 1e-6);
        expect(rel(scalarDerivative(t, z), d, 1e-9), `${t.kind} dθ/dz at ${z}`).toBeLessThan(1e-6);
        const lj = scalarLogJac(t, z);
        expect(Math.abs(lj.value - Math.log(Math.abs(d))), `${t.kind} log|J| at ${z}`).toBeLessThan(1e-6);
        expect(Math.abs(lj.grad - fd((u) => scalarLogJac(t, u).value, z, 1e-6)), `${t.kind} dlog|J|/dz at ${z}`).toBeLessThan(1e-6);
      }
    }
  });
  it('disc map: inside the unit disc, round trip, log|det J| and its gradient vs finite differences', () => {
    const pts: Array<[number, number]> = [
      [0, 0],
      [1e-7, -2e-7],
      [3e-4, 1e-4],
      [0.2, -0.1],
      [-1.3, 0.7],
      [2.5, 2.1],
      [0.0009, -0.0006],
    ];
    for (const [z1, z2] of pts) {
      const [t1, t2] = discForward(z1, z2);
      expect(Math.hypot(t1, t2)).toBeLessThan(1);
      const [b1, b2] = discInverse(t1, t2);
      expect(Math.abs(b1 - z1) + Math.abs(b2 - z2), `round trip (${z1}, ${z2})`).toBeLessThan(1e-9 * Math.max(1, Math.hypot(z1, z2)));
      // numerical Jacobian
      const h = 1e-6;
      const f1p = discForward(z1 + h, z2);
      const f1m = discForward(z1 - h, z2);
      const f2p = discForward(z1, z2 + h);
      const f2m = discForward(z1, z2 - h);
      const J = [(f1p[0] - f1m[0]) / (2 * h), (f2p[0] - f2m[0]) / (2 * h), (f1p[1] - f1m[1]) / (2 * h), (f2p[1] - f2m[1]) / (2 * h)];
      const det = J[0] * J[3] - J[1] * J[2];
      const lj = discLogJac(z1, z2);
      expect(Math.abs(lj.value - Math.log(det)), `log|J| at (${z1}, ${z2})`).toBeLessThan(1e-7);
      const g1 = (discLogJac(z1 + h, z2).value - discLogJac(z1 - h, z2).value) / (2 * h);
      const g2 = (discLogJac(z1, z2 + h).value - discLogJac(z1, z2 - h).value) / (2 * h);
      expect(Math.abs(lj.grad[0] - g1) + Math.abs(lj.grad[1] - g2), `dlog|J|/dz at (${z1}, ${z2})`).toBeLessThan(1e-6);
      // pullback = Jᵀ G
      const G: [number, number] = [0.7, -1.9];
      const pb = discPullback(z1, z2, G[0], G[1]);
      expect(Math.abs(pb[0] - (J[0] * G[0] + J[2] * G[1])) + Math.abs(pb[1] - (J[1] * G[0] + J[3] * G[1]))).toBeLessThan(1e-7);
    }
    expect(discInverse(0, 0)).toEqual([0, 0]);
  });
});

/** A stand-in likelihood: a coupled quadratic in every parameter (no GPU). */
function quadraticLikelihood(centre: SceneParams): LikelihoodEvaluator & { logL(p: SceneParams): number } {
  const w: Record<string, number> = { flux: 1e-5, hlr: 40, e1: 30, e2: 25, dx: 200, dy: 150 };
  const logL = (p: SceneParams) => {
    let s = -0.5 * 900 * ((p.g1 - centre.g1) ** 2 + (p.g2 - centre.g2) ** 2) - 50 * (p.g1 - centre.g1) * (p.e1[0] - centre.e1[0]);
    for (const k of SOURCE_PARAM_NAMES) for (let i = 0; i < p.flux.length; i++) s -= 0.5 * w[k] * (p[k][i] - centre[k][i]) ** 2;
    return s;
  };
  return {
    logL,
    async evaluate(p: SceneParams) {
      const g = allocParams(p.flux.length);
      g.g1 = -900 * (p.g1 - centre.g1) - 50 * (p.e1[0] - centre.e1[0]);
      g.g2 = -900 * (p.g2 - centre.g2);
      for (const k of SOURCE_PARAM_NAMES) for (let i = 0; i < p.flux.length; i++) g[k][i] = -w[k] * (p[k][i] - centre[k][i]);
      g.e1[0] -= 50 * (p.g1 - centre.g1);
      return { logL: logL(p), gradient: g };
    },
  };
}

function someParams(n: number): SceneParams {
  const p = allocParams(n);
  p.g1 = 0.02;
  p.g2 = -0.01;
  for (let i = 0; i < n; i++) {
    p.flux[i] = 800 + 300 * i;
    p.hlr[i] = 0.2 + 0.05 * i;
    p.e1[i] = 0.1 - 0.07 * i;
    p.e2[i] = -0.2 + 0.05 * i;
    p.dx[i] = 0.01 * i;
    p.dy[i] = -0.02 + 0.01 * i;
  }
  return p;
}

describe('posterior in the unconstrained space', () => {
  const configs = {
    shine: {},
    mixed: {
      g2: { type: 'fixed' as const },
      flux: { type: 'uniform' as const, low: 10, high: 5000 },
      hlr: { type: 'normal' as const, sigma: 0.1 },
      e1: { type: 'uniform' as const, low: -0.6, high: 0.6 },
      e2: { type: 'uniform' as const, low: -0.5, high: 0.7 },
      dy: { type: 'uniform' as const, low: -0.3, high: 0.2 },
    },
    oneDiscFixed: { e2: { type: 'fixed' as const, value: 0.3 }, g1: { type: 'uniform' as const, low: -0.5, high: 0.5 }, g2: { type: 'fixed' as const, value: 0.1 } },
    // ellipticities in a smaller disc (|e| < 0.5): θ = 0.5·tanh(|z|)·ẑ, log|J| + 2 log 0.5
    ellipticityDisc: { ellipticityMax: 0.5, e1: { type: 'normal' as const, sigma: 0.3 }, e2: { type: 'normal' as const, sigma: 0.3 } },
    oneDiscFixedSmall: { ellipticityMax: 0.5, e2: { type: 'fixed' as const, value: 0.3 } },
  };
  for (const [label, cfg] of Object.entries(configs)) {
    it(`${label}: pack/unpack and z round trips; log density gradient vs finite differences (with and without log|J|)`, async () => {
      const n = 3;
      const init = someParams(n);
      const centre = someParams(n);
      centre.g1 += 0.01;
      centre.flux[1] *= 1.1;
      const like = quadraticLikelihood(centre);
      const catalog = { flux: Float64Array.from([900, 1000, 1600]), hlr: Float64Array.from([0.25, 0.25, 0.3]) };
      for (const jacobian of [true, false]) {
        const post = new Posterior(like, cfg, init, { catalog, jacobian });
        const sp = post.space;
        const th = sp.pack(sp.base);
        const back = sp.unpack(th);
        expect(sp.pack(back)).toEqual(th);
        const z = sp.inverse(th);
        const th2 = sp.forward(z);
        for (let i = 0; i < th.length; i++) expect(Math.abs(th2[i] - th[i]), sp.name(i)).toBeLessThan(1e-12 * Math.max(1, Math.abs(th[i])));
        // move away from the start so nothing is at a special point
        for (let i = 0; i < z.length; i++) z[i] += 0.05 * Math.sin(3 * i + 1);
        const r = await post.logDensity(z);
        // oracle value: logL + Σ log prior + Σ log|J| recomputed from the definitions
        const thz = sp.forward(z);
        const p = sp.unpack(thz);
        let expected = like.logL(p);
        sp.entries.forEach((e, i) => (expected += priorLogDensity(e.prior, thz[i]).value));
        if (jacobian) expected += sp.logJacobian(z).value;
        expect(Math.abs(r.value - expected)).toBeLessThan(1e-9 * Math.abs(expected));
        for (let i = 0; i < z.length; i++) {
          const h = 1e-6;
          const zp = z.slice();
          const zm = z.slice();
          zp[i] += h;
          zm[i] -= h;
          const d = ((await post.logDensity(zp)).value - (await post.logDensity(zm)).value) / (2 * h);
          expect(Math.abs(r.grad[i] - d), `${label} jac=${jacobian} ∂/∂z ${sp.name(i)}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(d)));
        }
        // the Jacobian term equals log|det dθ/dz| of the whole map (numerical, dense)
        if (jacobian) {
          const d = z.length;
          const M = new Float64Array(d * d);
          for (let j = 0; j < d; j++) {
            const zp = z.slice();
            const zm = z.slice();
            zp[j] += 1e-6;
            zm[j] -= 1e-6;
            const a = sp.forward(zp);
            const b = sp.forward(zm);
            for (let i = 0; i < d; i++) M[i * d + j] = (a[i] - b[i]) / 2e-6;
          }
          expect(Math.abs(sp.logJacobian(z).value - logAbsDet(M, d))).toBeLessThan(1e-5);
        }
      }
    });
  }
  it('fixed parameters: held at the prior value or the initial value, excluded from the vector', () => {
    const init = someParams(2);
    const sp = new ParamSpace({ g2: { type: 'fixed', value: 0.05 }, dx: { type: 'fixed' }, dy: { type: 'fixed', value: 0 } }, init);
    expect(sp.dim).toBe(1 + 2 * 4);
    expect(sp.gIndex).toEqual([0, -1]);
    const p = sp.unpack(sp.pack(sp.base));
    expect(p.g2).toBe(0.05);
    expect(Array.from(p.dx)).toEqual(Array.from(init.dx));
    expect(Array.from(p.dy)).toEqual([0, 0]);
  });
  it('clear errors: mixed prior types in a disc pair, uniform box outside the disc, initial value outside the support', () => {
    const init = someParams(1);
    expect(() => new ParamSpace({ e1: { type: 'uniform', low: -0.5, high: 0.5 } }, init)).toThrow(/same prior type/);
    expect(() => new ParamSpace({ e1: { type: 'uniform', low: -0.9, high: 0.9 }, e2: { type: 'uniform', low: -0.9, high: 0.9 } }, init)).toThrow(/must lie inside the disc \|·\| < 0.99/);
    const sp = new ParamSpace({ flux: { type: 'uniform', low: 1000, high: 2000 } }, init);
    expect(() => sp.inverse(sp.pack(sp.base))).toThrow(/flux\[0\] = 800 is outside/);
  });
  it('values outside a prior support or rejected by the scene validation give −∞', async () => {
    const init = someParams(1);
    const like = quadraticLikelihood(init);
    const evaluator = {
      async evaluate(p: SceneParams) {
        const { validateParams } = await import('../../engine/model/validate.ts');
        validateParams({ sources: [{ id: 1, stampSize: 64 }], quadrants: [], pairs: [], psfSize: 21 }, p);
        return like.evaluate(p);
      },
    };
    const post = new Posterior(evaluator, { g1: { type: 'normal', sigma: 5 } }, init);
    const bad = post.space.pack(init);
    bad[post.space.gIndex[0]] = 2; // |g| > 1: the engine's validation rejects it
    const r = await post.logDensityConstrained(bad);
    expect(r.value).toBe(-Infinity);
    expect(r.grad.every(Number.isNaN)).toBe(true);
    const neg = post.space.pack(init);
    neg[post.space.sourceIndex[0]] = -5; // flux < 0 under the lognormal prior
    expect((await post.logDensityConstrained(neg)).value).toBe(-Infinity);
    expect(Number.isFinite((await post.logDensityConstrained(post.space.pack(init))).value)).toBe(true);
  });
});

function logAbsDet(a: Float64Array, n: number): number {
  const m = a.slice();
  let s = 0;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    if (p !== c) for (let k = 0; k < n; k++) [m[c * n + k], m[p * n + k]] = [m[p * n + k], m[c * n + k]];
    const d = m[c * n + c];
    s += Math.log(Math.abs(d));
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c] / d;
      for (let k = c; k < n; k++) m[r * n + k] -= f * m[c * n + k];
    }
  }
  return s;
}
