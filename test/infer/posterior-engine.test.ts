/**
 * VI and NUTS on the GPU engine's posterior (chains / particles as replicas of the scene), on a
 * small noisy scene, against the MAP + Laplace approximation computed independently (coloured
 * finite-difference Hessian, Schur complement):
 *  - NUTS (ellipticities held fixed, so that the 4-chain run stays short on a CPU): posterior mean of
 *    (g1, g2) within 0.5 Laplace σ of the MAP, posterior sd within 25 % of the Laplace MARGINAL
 *    error (the other source parameters marginalised), R̂ ≤ 1.05, no divergences;
 *  - VI (everything free): mean field — mean within 0.5 σ of the MAP, sd within 15 % of the
 *    Laplace CONDITIONAL error 1/√H_gg (the mean-field optimum for a Gaussian posterior, far below
 *    the marginal error here: the g–e degeneracy); low rank — sd within 25 % of the MARGINAL
 *    error, and a lower −ELBO than mean field;
 *  - the shear samples are returned per chain, and every chain really used the batched engine.
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { cloneParams } from '../../engine/scene/types.ts';
import { laplaceShear, runMap } from '../../engine/infer/index.ts';
import { parseConfig } from '../../engine/config/index.ts';
import { runPosterior } from '../../engine/subtile/posterior-run.ts';

/** The independent reference: MAP (L-BFGS) and the Laplace errors (coloured FD Hessian, Schur). */
async function mapAndLaplace(engine: ShearEngine, set: Parameters<typeof runMap>[1], priors: Parameters<typeof runMap>[2], init: Parameters<typeof runMap>[3], catalog: { flux: Float64Array; hlr: Float64Array }) {
  const map = await runMap(engine, set, priors, init, { catalog });
  expect(map.converged).toBe(true);
  const lap = await laplaceShear(engine, map.posterior, map.params);
  expect(lap.ok).toBe(true);
  console.log(`MAP g1 ${map.params.g1.toFixed(5)} g2 ${map.params.g2.toFixed(5)}; Laplace marginal ${lap.g1Err.toFixed(5)} ${lap.g2Err.toFixed(5)}, conditional ${lap.g1ErrConditional.toFixed(5)} ${lap.g2ErrConditional.toFixed(5)}`);
  return { map, lap };
}

describe('VI and NUTS on the engine posterior', () => {
  const scene = () =>
    makeTestScene({
      seed: 8,
      nSources: 3,
      blended: false,
      quadrants: [
        { width: 160, height: 160, rotationDeg: 0, name: 'a' },
        { width: 160, height: 160, rotationDeg: 90, name: 'b' },
      ],
      sourceTiers: [64],
      tiers: [64],
      fluxRange: [400, 900],
    });

  it('NUTS: 4 chains in one GPU batch agree with MAP + Laplace (marginal sd)', async () => {
    const device = await testDevice();
    const { set, params: truth } = scene();
    const engine = await ShearEngine.create(device, set, { replicas: 4 });
    let calls = 0;
    const counting = {
      replicas: engine.replicas,
      evaluate: (p: typeof truth) => engine.evaluate(p),
      evaluateMany: (l: readonly (typeof truth)[]) => {
        calls++;
        return engine.evaluateMany(l);
      },
    };
    const priors = {
      g1: { type: 'normal' as const, mean: 0, sigma: 0.2 },
      g2: { type: 'normal' as const, mean: 0, sigma: 0.2 },
      e1: { type: 'fixed' as const },
      e2: { type: 'fixed' as const },
    };
    const init = cloneParams(truth);
    const catalog = { flux: truth.flux.slice(), hlr: truth.hlr.slice() };
    const { map, lap } = await mapAndLaplace(engine, set, priors, init, catalog);

    const nutsCfg = parseConfig('inference: {method: nuts, seed: 3, nuts: {warmup: 100, samples: 100, chains: 4, max_tree_depth: 6}}');
    const nuts = await runPosterior(counting, nutsCfg, priors, { params: map.params, hessian: lap.hessian }, { catalog });
    const d = nuts.diagnostics;
    console.log(`NUTS g1 ${nuts.g1.toFixed(5)} ± ${nuts.g1Err.toFixed(5)}, g2 ${nuts.g2.toFixed(5)} ± ${nuts.g2Err.toFixed(5)}; R̂ ${d.rhatG1.toFixed(4)} ${d.rhatG2.toFixed(4)} max ${d.maxRhat.toFixed(4)} (${d.maxRhatParam}); ESS ${d.essBulkG1.toFixed(0)} ${d.essBulkG2.toFixed(0)}; divergences ${d.divergences}; depth ${d.meanTreeDepth.toFixed(2)}; ${nuts.evaluations} evaluations in ${calls} batched calls; ${(d.samplerMs / 1000).toFixed(1)} s, ${d.msPerEssG1.toFixed(1)} ms per ESS`);
    expect(d.chains).toBe(4);
    expect(nuts.samples.g1.length).toBe(400);
    expect(Array.from(new Set(Array.from(nuts.samples.chain)))).toEqual([0, 1, 2, 3]);
    expect(calls).toBeGreaterThan(0);
    expect(nuts.evaluations / calls).toBeGreaterThan(3); // chains really evaluated together
    expect(d.divergences).toBe(0);
    expect(d.maxRhat).toBeLessThan(1.05);
    expect(Math.abs(nuts.g1 - map.params.g1)).toBeLessThan(0.5 * lap.g1Err);
    expect(Math.abs(nuts.g2 - map.params.g2)).toBeLessThan(0.5 * lap.g2Err);
    expect(nuts.g1Err / lap.g1Err).toBeGreaterThan(0.75);
    expect(nuts.g1Err / lap.g1Err).toBeLessThan(1.33);
    expect(nuts.g2Err / lap.g2Err).toBeGreaterThan(0.75);
    expect(nuts.g2Err / lap.g2Err).toBeLessThan(1.33);
    expect(nuts.convergence).toBe(d.maxRhat);
    engine.destroy();
  });

  it('VI: mean-field (conditional sd) and low-rank (marginal sd) guides, particles batched, agree with MAP + Laplace', async () => {
    const device = await testDevice();
    const { set, params: truth } = scene();
    const engine = await ShearEngine.create(device, set, { replicas: 4 });
    const priors = { g1: { type: 'normal' as const, mean: 0, sigma: 0.2 }, g2: { type: 'normal' as const, mean: 0, sigma: 0.2 } };
    const catalog = { flux: truth.flux.slice(), hlr: truth.hlr.slice() };
    const { map, lap } = await mapAndLaplace(engine, set, priors, cloneParams(truth), catalog);
    const viCfg = parseConfig('inference: {method: vi, seed: 3, vi: {steps: 600, particles: 4, num_samples: 2000}}');
    const vi = await runPosterior(engine, viCfg, priors, { params: map.params, hessian: lap.hessian }, { catalog });
    console.log(`VI g1 ${vi.g1.toFixed(5)} ± ${vi.g1Err.toFixed(5)}, g2 ${vi.g2.toFixed(5)} ± ${vi.g2Err.toFixed(5)}; −ELBO ${vi.convergence.toFixed(3)}; ${vi.reason}`);
    expect(Math.abs(vi.g1 - map.params.g1)).toBeLessThan(0.5 * lap.g1Err);
    expect(Math.abs(vi.g2 - map.params.g2)).toBeLessThan(0.5 * lap.g2Err);
    expect(Math.abs(vi.g1Err / lap.g1ErrConditional - 1)).toBeLessThan(0.15);
    expect(Math.abs(vi.g2Err / lap.g2ErrConditional - 1)).toBeLessThan(0.15);
    expect(Number.isFinite(vi.convergence)).toBe(true);

    // low-rank guide: carries the g–e correlation, so its widths approach the MARGINAL errors
    const lrCfg = parseConfig('inference: {method: vi, seed: 4, vi: {guide: low_rank, rank: 8, steps: 1000, lr: 0.05, particles: 4, num_samples: 4000}}');
    const lr = await runPosterior(engine, lrCfg, priors, { params: map.params, hessian: lap.hessian }, { catalog });
    console.log(`VI low-rank g1 ${lr.g1.toFixed(5)} ± ${lr.g1Err.toFixed(5)}, g2 ${lr.g2.toFixed(5)} ± ${lr.g2Err.toFixed(5)}; −ELBO ${lr.convergence.toFixed(3)} (mean field ${vi.convergence.toFixed(3)})`);
    expect(lr.convergence).toBeLessThan(vi.convergence); // a better guide: lower −ELBO
    expect(Math.abs(lr.g1 - map.params.g1)).toBeLessThan(0.5 * lap.g1Err);
    expect(Math.abs(lr.g2 - map.params.g2)).toBeLessThan(0.5 * lap.g2Err);
    expect(lr.g1Err / lap.g1Err).toBeGreaterThan(0.75);
    expect(lr.g1Err / lap.g1Err).toBeLessThan(1.33);
    expect(lr.g2Err / lap.g2Err).toBeGreaterThan(0.75);
    expect(lr.g2Err / lap.g2Err).toBeLessThan(1.33);
    engine.destroy();
  });

  it('refuses a dense mass matrix, naming the field', async () => {
    const device = await testDevice();
    const { set, params } = makeTestScene({ seed: 2, nSources: 1, sourceTiers: [64], tiers: [64] });
    const engine = await ShearEngine.create(device, set);
    const start = { params, hessian: null };
    const catalog = { flux: params.flux, hlr: params.hlr };
    await expect(runPosterior(engine, parseConfig('inference: {method: nuts, nuts: {dense_mass: true}}'), {}, start, { catalog })).rejects.toThrow(/inference\.nuts\.dense_mass/);
    engine.destroy();
  });
});
