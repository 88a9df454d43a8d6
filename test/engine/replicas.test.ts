/**
 * Replicated engine (chains / VI particles as a GPU batch dimension): each replica's logL agrees
 * with the float64 reference for its own parameters (different shears and source parameters per
 * replica), its gradient agrees with finite differences of the reference, and every result is
 * bit-identical to a single-scene engine's `evaluate` of the same parameters; a partial batch
 * (fewer sets than replicas) gives the same numbers too. The layout of a replicated scene holds
 * each quadrant's observed pixels once: its replicas share one QuadrantLayout, equal to the
 * single scene's.
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, perturbParams } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64 } from '../../engine/gpu/render/model64.ts';
import { cloneParams, DEFAULT_RENDER_OPTIONS, type SceneParams } from '../../engine/scene/types.ts';
import { buildLayout } from '../../engine/scene/layout.ts';
import { replicateSet } from '../../engine/scene/replicate.ts';


describe('replicated engine (evaluateMany)', () => {
  it('each replica matches the float64 reference, FD of g1/g2, and a single engine bit for bit', async () => {
    const device = await testDevice();
    const { set, params: truth } = makeTestScene({ seed: 21, nSources: 4 });
    const sets = [perturbParams(truth, 1, 0.08), perturbParams(truth, 2, 0.08), perturbParams(truth, 3, 0.08)];
    const single = await ShearEngine.create(device, set);
    const many = await ShearEngine.create(device, set, { replicas: 3 });
    expect(many.replicas).toBe(3);
    expect(many.stats.pairs).toBe(single.stats.pairs);
    const batch = await many.evaluateMany(sets);
    const partial = await many.evaluateMany(sets.slice(0, 2));
    for (let r = 0; r < 3; r++) {
      const one = await single.evaluate(sets[r]);
      const ref = logLikelihood64(set, sets[r]).logL;
      console.log(`replica ${r}: g = (${sets[r].g1.toFixed(4)}, ${sets[r].g2.toFixed(4)}) logL ${batch[r].logL} ref ${ref}`);
      expect(Math.abs(batch[r].logL - ref) / Math.abs(ref)).toBeLessThan(1e-5);
      expect(batch[r].logL).toBe(one.logL);
      expect(Array.from(batch[r].gradient.flux)).toEqual(Array.from(one.gradient.flux));
      expect(Array.from(batch[r].gradient.e2)).toEqual(Array.from(one.gradient.e2));
      expect(batch[r].gradient.g1).toBe(one.gradient.g1);
      expect(batch[r].gradient.g2).toBe(one.gradient.g2);
      if (r < 2) {
        expect(partial[r].logL).toBe(one.logL);
        expect(partial[r].gradient.g2).toBe(one.gradient.g2);
      }
      // shear gradient of this replica vs central FD of the float64 reference
      for (const k of ['g1', 'g2'] as const) {
        const a = cloneParams(sets[r]);
        const b = cloneParams(sets[r]);
        a[k] += 1e-5;
        b[k] -= 1e-5;
        const fd = (logLikelihood64(set, a).logL - logLikelihood64(set, b).logL) / 2e-5;
        expect(Math.abs(batch[r].gradient[k] - fd)).toBeLessThan(1e-3 * Math.abs(fd) + 1e-6);
      }
    }
    // replicas really differ (a replica reading another's shear would fail above; check spread)
    expect(new Set(batch.map((e) => e.logL)).size).toBe(3);
    await expect(many.evaluateMany([...sets, sets[0]])).rejects.toThrow(/4 parameter sets for an engine of 3/);
    single.destroy();
    many.destroy();
  });

  it("the replicas of a quadrant share one layout (observed pixels and weights made once), equal to the single scene's", () => {
    const { set } = makeTestScene({ seed: 5, nSources: 6 });
    const limits = { maxBindingBytes: 2 ** 27 };
    const one = buildLayout(set, DEFAULT_RENDER_OPTIONS, limits);
    const four = buildLayout(replicateSet(set, 4), DEFAULT_RENDER_OPTIONS, limits);
    const nq = set.quadrants.length;
    expect(four.quadrants.length).toBe(4 * nq);
    expect(new Set(four.quadrants).size).toBe(nq);
    for (let r = 0; r < 4; r++)
      for (let j = 0; j < nq; j++) {
        const a = one.quadrants[j];
        const b = four.quadrants[r * nq + j];
        expect(b).toBe(four.quadrants[j]);
        expect(b.nActive).toBe(a.nActive);
        expect(b.nPixels).toBe(a.nPixels);
        expect(Array.from(b.blockXY)).toEqual(Array.from(a.blockXY));
        expect(b.obsW).toEqual(a.obsW);
      }
    expect(four.batches.length).toBe(4 * one.batches.length);
    // a quadrant with the same pixel arrays but other stamps is not shared
    const moved = replicateSet(set, 2);
    const p = moved.pairs.find((x) => x.quadrant >= nq && x.visible)!;
    p.x += 40;
    const two = buildLayout(moved, DEFAULT_RENDER_OPTIONS, limits);
    expect(two.quadrants[p.quadrant]).not.toBe(two.quadrants[p.quadrant - nq]);
  });
});

