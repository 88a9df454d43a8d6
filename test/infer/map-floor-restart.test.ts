/**
 * A precision-floor (or failed line search) stop of the MAP's L-BFGS is tested by rebuilding the
 * preconditioner where it stopped and going on (engine/infer/map.ts
 * MapPreconditionOptions.floorRestarts). On a small GPU scene started far from its optimum
 * (fluxes ×0.3, sizes ×1.6, round shapes, offsets 0.2″), 6 sources over two decades of flux: the
 * same fit without restarts (the rule before 2026-12-07) is the oracle it must beat. Without them
 * L-BFGS stopped at the precision floor 0.30 nats above where the restarted fit ended (the loss's
 * float32 rounding here is ~10⁻³ nats), i.e. the stop was not the floor; with them the loss must
 * end lower by more than the stall tolerance, the restarts stay within the number asked, and each
 * is one more preconditioner build. A restart needs a stretch of at least floorRestartAfter
 * iterations on one preconditioner: with that above every stretch, the fit is the one without.
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { cloneParams } from '../../engine/scene/types.ts';
import { runMap } from '../../engine/infer/map.ts';

describe('MAP: restarts after a precision-floor stop', () => {
  it('rebuilding the preconditioner where L-BFGS stopped finds the decrease the stale one missed', async () => {
    const device = await testDevice();
    const sc = makeTestScene({
      seed: 5,
      nSources: 6,
      quadrants: [
        { width: 200, height: 200, rotationDeg: 0, name: 'a' },
        { width: 200, height: 200, rotationDeg: 90, name: 'b' },
      ],
      sourceTiers: [64],
      tiers: [64],
      fluxRange: [300, 30000],
      g1: 0.02,
      g2: -0.01,
    });
    const eng = await ShearEngine.create(device, sc.set);
    const init = cloneParams(sc.params);
    init.g1 = 0;
    init.g2 = 0;
    for (let i = 0; i < init.flux.length; i++) {
      init.flux[i] *= 0.3;
      init.hlr[i] *= 1.6;
      init.e1[i] = 0;
      init.e2[i] = 0;
      init.dx[i] = 0.2;
      init.dy[i] = -0.2;
    }
    const catalog = { flux: sc.params.flux, hlr: sc.params.hlr };
    const opts = { catalog, lbfgs: { maxIterations: 2000 } };
    const before = await runMap(eng, sc.set, {}, init, { ...opts, precondition: { floorRestarts: 0 } });
    const now = await runMap(eng, sc.set, {}, init, opts);
    const line = (n: string, m: typeof now) => `${n}: ${m.reason} after ${m.iterations} it / ${m.evaluations} evals, ${m.preconditioner.builds} builds (${m.preconditioner.floorRestarts} after a stop); loss ${m.finalLoss.toFixed(4)}; ĝ = (${m.params.g1.toFixed(5)}, ${m.params.g2.toFixed(5)})`;
    console.log(`${line('no restarts (before)', before)}\n${line('restarts ≤ 3 (default)', now)}`);
    const tol = Math.max(1e-3, 1e-8 * Math.abs(before.finalLoss)); // the stall tolerance (MAP_LBFGS_DEFAULTS)
    expect(before.reason).toBe('precision-floor');
    expect(before.preconditioner.floorRestarts).toBe(0);
    expect(now.converged, now.message).toBe(true);
    expect(now.preconditioner.floorRestarts).toBeGreaterThanOrEqual(1);
    expect(now.preconditioner.floorRestarts).toBeLessThanOrEqual(3);
    expect(now.preconditioner.builds).toBe(before.preconditioner.builds + now.preconditioner.floorRestarts);
    expect(before.finalLoss - now.finalLoss).toBeGreaterThan(10 * tol);
    // the gate: a floor met within floorRestartAfter iterations of a build stands (here every
    // stretch is shorter than 5000), and the fit is the one without restarts, bit for bit
    const gated = await runMap(eng, sc.set, {}, init, { ...opts, precondition: { floorRestartAfter: 5000 } });
    expect(gated.preconditioner.floorRestarts).toBe(0);
    expect(gated.iterations).toBe(before.iterations);
    expect(gated.finalLoss).toBe(before.finalLoss);
  }, 600_000);
});
