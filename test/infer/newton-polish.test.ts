/**
 * newtonPolish: one Newton step with the Laplace Hessian from a point near the mode. Oracle: the
 * mode found independently by L-BFGS run to a tight gradient tolerance from the catalog start.
 * From a point displaced from that mode along the soft shear–ellipticity direction (the shear
 * moved and every intrinsic ellipticity moved the opposite way, so the images barely change —
 * where a float32 loss can no longer see the offset), the polished shear must be at least 20×
 * closer to the mode; at the mode itself the step must be negligible. The sub-tile's warning when
 * a step is left untaken (polishWarning) quotes the offset from that oracle mode in σ̂.
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { laplaceScene } from '../helpers/laplace-scene.ts';
import { defaultMapStart } from '../helpers/map-start.ts';
import { cloneParams } from '../../engine/scene/types.ts';
import { runMap } from '../../engine/infer/map.ts';
import { laplaceShear, newtonPolish, polishWarning } from '../../engine/infer/laplace.ts';

describe('Newton polish of the MAP', () => {
  it('brings a point displaced along the soft shear–shape direction back to the mode', async () => {
    const device = await testDevice();
    const sc = laplaceScene({ seed: 8, fluxRange: [800, 4000], g1: 0.02, g2: -0.01 });
    const eng = await ShearEngine.create(device, sc.set);
    try {
      const { init, catalog, priors } = defaultMapStart(sc.params);
      const mode = await runMap(eng, sc.set, priors, init, { catalog, lbfgs: { maxIterations: 2000, gtol: 1e-6 } });
      const gStar = [mode.params.g1, mode.params.g2];

      // a point displaced along the soft direction: Δg = k·(+1, −0.75)·2e-3, each distortion moved by ≈ −2Δg
      const displaced = (k: number) => {
        const p = cloneParams(mode.params);
        p.g1 += 2e-3 * k;
        p.g2 -= 1.5e-3 * k;
        for (let i = 0; i < p.e1.length; i++) {
          p.e1[i] -= 4e-3 * k;
          p.e2[i] += 3e-3 * k;
        }
        return p;
      };
      const off = displaced(1);
      const lap = await laplaceShear(eng, mode.posterior, off);
      expect(lap.ok).toBe(true);
      const pol = await newtonPolish(eng, mode.posterior, off, lap);
      const before = Math.hypot(off.g1 - gStar[0], off.g2 - gStar[1]);
      const after = Math.hypot(pol.params.g1 - gStar[0], pol.params.g2 - gStar[1]);
      console.log(`mode (${gStar[0].toFixed(6)}, ${gStar[1].toFixed(6)}), ${mode.reason}; |Δg| before ${before.toExponential(2)}, after ${after.toExponential(2)}; ${pol.message}`);
      expect(pol.applied).toBe(true);
      expect(after).toBeLessThan(before / 20);

      // ten times further off: the chord iteration (up to 10 steps with the same Hessian) ends
      // at least as close as the one-step rule, and within 1 % of the offset
      const far = displaced(10);
      const lapFar = await laplaceShear(eng, mode.posterior, far);
      const one = await newtonPolish(eng, mode.posterior, far, lapFar);
      const chord = await newtonPolish(eng, mode.posterior, far, lapFar, { polishSteps: 10 });
      const dist = (p: typeof far) => Math.hypot(p.g1 - gStar[0], p.g2 - gStar[1]);
      console.log(`far: |Δg| ${dist(far).toExponential(2)}; one step ${dist(one.params).toExponential(2)} (${one.message}); chord ${dist(chord.params).toExponential(2)} (${chord.message})`);
      expect(chord.applied).toBe(true);
      expect(dist(chord.params)).toBeLessThanOrEqual(dist(one.params) * 1.0001);
      expect(dist(chord.params)).toBeLessThan(dist(far) / 100);
      expect(chord.evaluations).toBeGreaterThanOrEqual(2);

      // the sub-tile's warning (polishWarning): none after a polish that converged; when the far
      // step is not taken, it names the offset from the mode in σ̂ — checked against the true
      // offset (the oracle mode above) to 20 %. σ̂ is large on this 10-galaxy scene (the offset
      // is ~0.35σ̂): the threshold is lowered to 0.1σ̂ here, and a threshold above it stays silent
      expect(polishWarning(chord, lapFar.g1Err, lapFar.g2Err)).toBeNull();
      const refused = { ...chord, params: far, applied: false, stepG: [lapFar.newtonStepG![0], lapFar.newtonStepG![1]] as [number, number], nextStepG: null, message: 'not taken (test)' };
      const warn = polishWarning(refused, lapFar.g1Err, lapFar.g2Err, 0.1);
      const trueSigma = Math.max(Math.abs(far.g1 - gStar[0]) / lapFar.g1Err, Math.abs(far.g2 - gStar[1]) / lapFar.g2Err);
      console.log(`warning: ${warn} (true offset ${trueSigma.toFixed(2)}σ̂)`);
      expect(warn).not.toBeNull();
      const quoted = Number(/may be ([0-9.]+)σ̂ off/.exec(warn!)![1]);
      expect(Math.abs(quoted - trueSigma)).toBeLessThan(0.2 * trueSigma);
      expect(polishWarning(refused, lapFar.g1Err, lapFar.g2Err, 1.5 * quoted)).toBeNull();

      // at the mode: nothing left to do
      const lap0 = await laplaceShear(eng, mode.posterior, mode.params);
      const step0 = Math.hypot(...lap0.newtonStepG!);
      console.log(`Newton step at the mode: ${step0.toExponential(2)} (σ̂ g1 ${lap0.g1Err.toExponential(2)})`);
      expect(step0).toBeLessThan(0.02 * lap0.g1Err);
      const at0 = await newtonPolish(eng, mode.posterior, mode.params, lap0);
      expect(polishWarning(at0, lap0.g1Err, lap0.g2Err)).toBeNull();
    } finally {
      eng.destroy();
    }
  }, 240_000);
});
