/**
 * laplaceMarginalShear: the mode of the Laplace approximation of the shear's marginal posterior,
 * one Newton step from the MAP with ∇C, C(g) = −½ log det H_θθ(g, θ̂(g)), by central differences
 * at the LINEAR RESPONSE of the conditional mode θ̂(g).
 *
 * Oracle: C at the conditional modes found independently — the sources refitted by L-BFGS to a
 * tight gradient tolerance with the shear FIXED at ĝ ± δ — and its log det from the eigenvalues of
 * the dense source Hessian (not a Cholesky), differenced over the same δ. The step must then be
 * Σ_g ∇C with the Laplace covariance. A faint scene makes the priors' share (and so the step) large.
 * C is a sum over the overlap components: the largest component's own ∇C (`largest[0]`) must match
 * the same difference of its own block's eigenvalue log det at the refitted modes.
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { defaultMapStart } from '../helpers/map-start.ts';
import { cloneParams } from '../../engine/scene/types.ts';
import { runMap } from '../../engine/infer/map.ts';
import { laplaceShear, type SparseHessian } from '../../engine/infer/laplace.ts';
import { laplaceMarginalShear } from '../../engine/infer/laplace-marginal.ts';
import { symEigen } from '../../engine/util/linalg.ts';
import type { PriorConfig } from '../../engine/infer/priors.ts';

/** log det of the source block (of the sources `only`, default all), dense, from its eigenvalues. */
function logDetByEigen(H: SparseHessian, only?: readonly number[]): number {
  const P = H.kinds.length;
  const list = only ?? Array.from({ length: H.nSources }, (_, s) => s);
  const at = new Map(list.map((s, i) => [s, i]));
  const D = list.length * P;
  const A = new Float64Array(D * D);
  H.neighbours.forEach((nb, s) =>
    nb.forEach((t, bi) => {
      const i = at.get(s);
      const j = at.get(t);
      if (i === undefined || j === undefined) return;
      const b = H.blocks[s][bi];
      for (let l = 0; l < P; l++) for (let k = 0; k < P; k++) A[(i * P + l) * D + j * P + k] = b[l * P + k];
    }),
  );
  const { values } = symEigen(A, D);
  let sum = 0;
  for (const v of values) {
    expect(v).toBeGreaterThan(0);
    sum += Math.log(v);
  }
  return sum;
}

describe('Laplace-marginal shear', () => {
  it('∇C from the linear response agrees with C at refitted conditional modes; the step is Σ_g ∇C', async () => {
    const device = await testDevice();
    const sc = makeTestScene({
      seed: 11,
      nSources: 10,
      blended: false,
      spreadArcsec: 28,
      quadrants: [
        // wide enough that the sources fall into several overlap components (the shares below)
        { width: 640, height: 640, rotationDeg: 0, name: 'a' },
        { width: 640, height: 640, rotationDeg: 90, name: 'b' },
      ],
      sourceTiers: [64],
      tiers: [64],
      fluxRange: [500, 1500],
      g1: 0.02,
      g2: -0.01,
    });
    const eng = await ShearEngine.create(device, sc.set);
    try {
      const { init, catalog, priors } = defaultMapStart(sc.params);
      const mode = await runMap(eng, sc.set, priors, init, { catalog, lbfgs: { maxIterations: 2000, gtol: 1e-6 } });
      const lap = await laplaceShear(eng, mode.posterior, mode.params);
      expect(lap.ok).toBe(true);
      const lm = await laplaceMarginalShear(eng, mode.posterior, mode.params, lap);
      console.log(`MAP (${mode.params.g1.toFixed(5)}, ${mode.params.g2.toFixed(5)}) ± (${lap.g1Err.toExponential(2)}, ${lap.g2Err.toExponential(2)}); ${lm.message}`);
      expect(lm.applied).toBe(true);

      const oracle: number[] = [];
      // the largest component's own ∇C, from the same refitted modes (C is a sum over components)
      const top = lm.largest[0];
      const topOracle: number[] = [];
      for (const a of [0, 1]) {
        const c: number[] = [];
        const cTop: number[] = [];
        for (const sign of [-1, 1]) {
          const g: [number, number] = [mode.params.g1, mode.params.g2];
          g[a] += sign * lm.delta[a];
          const from = cloneParams(mode.params);
          from.g1 = g[0];
          from.g2 = g[1];
          const fixed: Partial<PriorConfig> = { ...priors, g1: { type: 'fixed', value: g[0] }, g2: { type: 'fixed', value: g[1] } };
          const cond = await runMap(eng, sc.set, fixed, from, { catalog, lbfgs: { maxIterations: 2000, gtol: 1e-6 } });
          const h = await laplaceShear(eng, cond.posterior, cond.params);
          c.push(-0.5 * logDetByEigen(h.hessian));
          cTop.push(-0.5 * logDetByEigen(h.hessian, top.sources));
        }
        oracle.push((c[1] - c[0]) / (2 * lm.delta[a]));
        topOracle.push((cTop[1] - cTop[0]) / (2 * lm.delta[a]));
      }
      console.log(`∇C: linear response (${lm.gradC.map((v) => v.toFixed(4)).join(', ')}), refitted conditional modes (${oracle.map((v) => v.toFixed(4)).join(', ')})`);
      // a gradient well above the agreement asked for (so the check means something), and agreement
      // to 10 % (the float32 noise of the finite-difference Hessians and the O(δ²) difference
      // between the linear response and the refitted modes: ~5 % here)
      const big = Math.max(Math.abs(oracle[0]), Math.abs(oracle[1]));
      expect(big).toBeGreaterThan(0.1);
      for (const a of [0, 1]) expect(Math.abs(lm.gradC[a] - oracle[a])).toBeLessThan(0.1 * big + 0.005);
      // the components' shares: sorted by size, disjoint, the largest one's ∇C as the oracle's
      console.log(`largest components: ${lm.largest.map((q) => `[${q.sources.join(' ')}] (${q.gradC.map((v) => v.toFixed(4)).join(', ')})`).join('; ')}; oracle for the first (${topOracle.map((v) => v.toFixed(4)).join(', ')})`);
      expect(lm.largest.length).toBeGreaterThan(1);
      lm.largest.slice(1).forEach((q, i) => expect(Math.hypot(...q.gradC)).toBeLessThanOrEqual(Math.hypot(...lm.largest[i].gradC)));
      expect(new Set(lm.largest.flatMap((q) => q.sources)).size).toBe(lm.largest.reduce((n, q) => n + q.sources.length, 0));
      const bigTop = Math.max(...topOracle.map(Math.abs));
      for (const a of [0, 1]) expect(Math.abs(top.gradC[a] - topOracle[a])).toBeLessThan(0.1 * bigTop + 0.005);
      // the step is exactly Σ_g ∇C
      const cov = lap.covariance;
      expect(lm.stepG[0]).toBeCloseTo(cov[0] * lm.gradC[0] + cov[1] * lm.gradC[1], 12);
      expect(lm.stepG[1]).toBeCloseTo(cov[2] * lm.gradC[0] + cov[3] * lm.gradC[1], 12);
      expect(lm.g[0]).toBeCloseTo(mode.params.g1 + lm.stepG[0], 12);
    } finally {
      eng.destroy();
    }
  }, 400_000);
});
