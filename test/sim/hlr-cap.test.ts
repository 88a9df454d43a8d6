/**
 * The `minitile` preset's size cap (Preset.hlrMax, revision 2): its galaxies are drawn as before
 * and their half-light radius clipped afterwards, so positions, magnitudes and shapes are those of
 * the uncapped scene bit for bit and only the large galaxies shrink; and at the cap every galaxy's
 * catalog size up to 3σ of the simulator's size noise needs no stamp beyond the preset's only
 * tier (stampNeed, engine/model/geometry.ts) — which is why the cap is 0.5″.
 */
import { describe, expect, it } from 'vitest';
import { drawScene, shearField } from '../../engine/sim/scene.ts';
import { PRESETS, presetRevision } from '../../engine/sim/presets.ts';
import { stampNeed } from '../../engine/model/geometry.ts';

describe('minitile: galaxies of hlr ≤ 0.5″ (Preset.hlrMax)', () => {
  const p = PRESETS.minitile;
  const cfg = { region: [-70, 70, -70, 70] as [number, number, number, number], magMax: p.magMax, n24: 70, starDensity: 4, tileCore: p.tileCore, grid: p.grid };
  const toSky = (u: number, v: number): [number, number] => [u / 3600, v / 3600];
  const shear = shearField(3, p.grid, [0.02, -0.01], false);

  it('clips sizes after the draw: every other property identical, only the large galaxies change', () => {
    const free = drawScene(3, cfg, shear, toSky);
    const capped = drawScene(3, { ...cfg, hlrMax: p.hlrMax }, shear, toSky);
    expect(capped.length).toBe(free.length);
    let clipped = 0;
    free.forEach((o, i) => {
      const c = capped[i];
      expect([c.u, c.v, c.mag, c.e1, c.e2, c.isStar, c.g1, c.g2]).toEqual([o.u, o.v, o.mag, o.e1, o.e2, o.isStar, o.g1, o.g2]);
      expect(c.hlr).toBe(Math.min(o.hlr, 0.5));
      if (o.hlr > 0.5) clipped++;
    });
    // mag ≤ 23 galaxies are large: the cap bites on a good part of them
    expect(clipped).toBeGreaterThan(5);
  });

  it('the cap keeps the catalog size within the 64-px tier; the preset is revision 2', () => {
    expect(p.stampTiers).toEqual([64]);
    expect(p.hlrMax).toBe(0.5);
    // catalog semi-major axis = √(hlr² + 0.08²) · exp(0.1 z) at high S/N (engine/sim/simulate.ts)
    const catalogHlr3sigma = Math.hypot(p.hlrMax!, 0.08) * Math.exp(0.3);
    expect(stampNeed(catalogHlr3sigma / 0.1)).toBeLessThanOrEqual(64);
    expect(stampNeed(Math.hypot(0.75, 0.08) / 0.1)).toBeGreaterThan(64); // revision 1 drew up to 3″
    expect(presetRevision(p)).toBe(2);
    expect(presetRevision(PRESETS.ci)).toBe(1);
  });
});
