/**
 * Preconditioned vs plain L-BFGS MAP on a small GPU scene with strongly different curvatures:
 * four blended sources, fluxes 1.8e3 … 1.4e4 ADU (bright ones have offset curvatures orders of
 * magnitude above the faint one's flux/size curvatures), intrinsic shapes held at the truth (so
 * the optimum is well defined and both optimisers can reach it). The oracle is the plain L-BFGS
 * optimum: the preconditioned run must reach the same loss (within the float32 noise of the
 * loss) and the same shear (within 0.1 σ̂, σ̂ the marginal Laplace error), using fewer engine
 * evaluations, preconditioner build included. A replicated engine (the hardware-GPU setting)
 * evaluates the preconditioner's columns several per call: the same MAP bit for bit, in fewer
 * engine calls.
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { countedEngine } from '../helpers/counted-engine.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { cloneParams } from '../../engine/scene/types.ts';
import { runMap } from '../../engine/infer/map.ts';
import { laplaceShear } from '../../engine/infer/laplace.ts';
import type { PriorConfig } from '../../engine/infer/priors.ts';

describe('preconditioned MAP', () => {
  it('bright + faint blend: same optimum as plain L-BFGS with fewer evaluations', async () => {
    const device = await testDevice();
    const sc = makeTestScene({
      seed: 21,
      nSources: 4,
      quadrants: [
        { width: 170, height: 170, rotationDeg: 0, name: 'a' },
        { width: 170, height: 170, rotationDeg: 180, name: 'b' },
      ],
      sourceTiers: [64],
      tiers: [64],
      fluxRange: [300, 30000],
      g1: 0.03,
      g2: -0.02,
    });
    const eng = await ShearEngine.create(device, sc.set);
    const init = cloneParams(sc.params);
    init.g1 = 0;
    init.g2 = 0;
    for (let i = 0; i < 4; i++) {
      init.dx[i] = 0;
      init.dy[i] = 0;
      init.flux[i] *= 1 + 0.2 * Math.cos(i);
      init.hlr[i] *= 1 - 0.15 * Math.sin(i + 1);
    }
    const catalog = { flux: init.flux, hlr: init.hlr };
    const priors: Partial<PriorConfig> = { e1: { type: 'fixed' }, e2: { type: 'fixed' } };
    const plain = await runMap(eng, sc.set, priors, init, { catalog, precondition: false, lbfgs: { maxIterations: 1000 } });
    const pre = await runMap(eng, sc.set, priors, init, { catalog, lbfgs: { maxIterations: 1000 } });
    const L = await laplaceShear(eng, pre.posterior, pre.params);
    const line = (n: string, m: typeof pre) =>
      `${n}: ${m.reason} after ${m.iterations} it / ${m.evaluations} evals (preconditioner ${m.preconditioner.builds} builds, ${m.preconditioner.evaluations} evals, ${m.preconditioner.colours} colours); loss ${m.finalLoss.toFixed(4)}; ĝ = (${m.params.g1.toFixed(5)}, ${m.params.g2.toFixed(5)})`;
    console.log(`${line('plain', plain)}\n${line('preconditioned', pre)}\nσ̂ = (${L.g1Err.toExponential(3)}, ${L.g2Err.toExponential(3)})`);
    expect(plain.converged, plain.message).toBe(true);
    expect(pre.converged, pre.message).toBe(true);
    expect(L.ok, L.message).toBe(true);
    expect(pre.preconditioner.builds).toBeGreaterThanOrEqual(1);
    expect(Math.abs(pre.finalLoss - plain.finalLoss)).toBeLessThan(Math.max(0.05, 1e-7 * Math.abs(plain.finalLoss)));
    expect(Math.abs(pre.params.g1 - plain.params.g1)).toBeLessThan(0.1 * L.g1Err);
    expect(Math.abs(pre.params.g2 - plain.params.g2)).toBeLessThan(0.1 * L.g2Err);
    expect(pre.evaluations).toBeLessThan(0.8 * plain.evaluations);
    eng.destroy();
  });

  it('a replicated engine batches the preconditioner columns: the same MAP bit for bit, in fewer engine calls', async () => {
    const device = await testDevice();
    const sc = makeTestScene({
      seed: 22,
      nSources: 5,
      quadrants: [{ width: 200, height: 180, rotationDeg: 0, name: 'a' }],
      sourceTiers: [64],
      tiers: [64],
      fluxRange: [800, 20000],
      g1: 0.02,
      g2: 0.01,
    });
    const single = await ShearEngine.create(device, sc.set);
    const many = await ShearEngine.create(device, sc.set, { replicas: 4 });
    const { engine: counted, count } = countedEngine(many);
    const init = cloneParams(sc.params);
    init.g1 = 0;
    init.g2 = 0;
    for (let i = 0; i < 5; i++) init.flux[i] *= 1 + 0.1 * Math.cos(i);
    const opts = { catalog: { flux: init.flux.slice(), hlr: init.hlr.slice() }, lbfgs: { maxIterations: 60 } };
    const a = await runMap(single, sc.set, {}, init, opts);
    const b = await runMap(counted, many.set, {}, init, { ...opts, batch: 4 });
    console.log(`MAP: ${a.iterations} iterations, ${a.preconditioner.builds} preconditioner build(s) of ${a.preconditioner.colours} colours; one at a time ${a.evaluations} evaluations, replicated (4): ${count.calls} engine calls for ${count.sets} parameter sets`);
    expect(a.preconditioner.builds).toBeGreaterThanOrEqual(1);
    expect(b.iterations).toBe(a.iterations);
    expect(b.lossHistory).toEqual(a.lossHistory);
    expect(b.finalLoss).toBe(a.finalLoss);
    expect(Array.from(b.theta)).toEqual(Array.from(a.theta));
    expect(b.preconditioner.evaluations).toBe(a.preconditioner.evaluations);
    // every build's columns, 4 per call; the batched build leaves the objective's cached point in
    // place, so L-BFGS does not evaluate the build point again (one evaluation fewer per build)
    expect(count.sets).toBe(a.evaluations - a.preconditioner.builds);
    expect(count.calls).toBeLessThan(a.evaluations - a.preconditioner.evaluations / 2);
    single.destroy();
    many.destroy();
  }, 300_000);
});

