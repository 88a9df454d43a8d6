/**
 * The doctor checks of the galaxy profiles with per-source parameters (engine/gpu/render/
 * profiles-check.ts: Spergel ν free, bulge + disk, each rendered against the float64 reference and
 * differentiated against its finite differences) are registered — so Node, Deno, Chromium and
 * `shine doctor` all run them — and pass on this device.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { checks } from '../../engine/gpu/render/profiles-check.ts';
import { KERNEL_CHECKS } from '../../engine/gpu/checks.ts';

let device: GPUDevice;
beforeAll(async () => {
  device = await testDevice();
});

describe('profile kernel checks', () => {
  it('are registered and pass on this device', async () => {
    const registered = (await Promise.all(KERNEL_CHECKS.map((load) => load()))).flat().map((c) => c.name);
    expect(checks.length).toBe(5);
    for (const c of checks) {
      expect(registered).toContain(c.name);
      const r = await c.run(device);
      console.log(`check ${r.name}: max error ${r.maxError.toExponential(2)} (tolerance ${r.tolerance}) ${r.detail ?? ''} (${r.ms.toFixed(0)} ms)`);
      expect(r.pass).toBe(true);
      expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
    }
  });
});
