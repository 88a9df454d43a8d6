/**
 * The shear along the exact shear–shape degeneracy (engine/infer/shear-polish.ts), on CPU only:
 * sources whose observed distortions are fixed, the shear started away from the mode (where an
 * optimiser that cannot resolve the degenerate direction leaves it), against an independent
 * oracle — the intrinsic distortion from the observed one by Seitz & Schneider's (1997)
 * composition formula in complex notation (not degeneracy.ts's matrix sandwich), the ba14 log
 * density written out here, maximised over g by a nested grid.
 */
import { describe, expect, it } from 'vitest';
import { ParamSpace } from '../../engine/infer/posterior.ts';
import { shearAlongShapes } from '../../engine/infer/shear-polish.ts';
import { observedShape } from '../../engine/infer/degeneracy.ts';
import { allocParams } from '../../engine/scene/types.ts';

/** Intrinsic distortion from observed χ under reduced shear g: χ_s = (χ − 2g + g²χ*)/(1 + |g|² − 2 Re(g χ*)). */
function intrinsicSS(g: [number, number], chi: [number, number]): [number, number] {
  const [gr, gi] = g;
  const [cr, ci] = chi;
  // g² χ* with χ* = (cr, −ci)
  const g2r = gr * gr - gi * gi;
  const g2i = 2 * gr * gi;
  const nr = cr - 2 * gr + (g2r * cr + g2i * ci);
  const ni = ci - 2 * gi + (g2i * cr - g2r * ci);
  const den = 1 + gr * gr + gi * gi - 2 * (gr * cr + gi * ci);
  return [nr / den, ni / den];
}

/** ba14 up to a constant: 2 log(1 − |e|²) − |e|²/(2σ²). */
const ba14 = (e: [number, number], sigma: number) => {
  const q = e[0] * e[0] + e[1] * e[1];
  return q < 1 ? 2 * Math.log(1 - q) - q / (2 * sigma * sigma) : -Infinity;
};

const PRIORS = {
  g1: { type: 'uniform', low: -0.5, high: 0.5 },
  g2: { type: 'uniform', low: -0.5, high: 0.5 },
  e1: { type: 'ba14', sigma: 0.3 },
  e2: { type: 'ba14', sigma: 0.3 },
} as const;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function scene(n: number, seed: number, gTrue: [number, number]) {
  const r = lcg(seed);
  const p = allocParams(n);
  const eps: Array<[number, number]> = [];
  for (let s = 0; s < n; s++) {
    p.flux[s] = 1000 * (1 + r());
    p.hlr[s] = 0.2 + 0.3 * r();
    const m = 0.6 * Math.sqrt(r());
    const phi = 2 * Math.PI * r();
    eps.push(observedShape(gTrue, [m * Math.cos(phi), m * Math.sin(phi)]));
  }
  return { p, eps };
}

/** Maximum of F over g by a nested grid search (21 × 21 points, the span shrunk 5× per level). */
function gridMax(F: (g: [number, number]) => number): [number, number] {
  let best: [number, number] = [0, 0];
  let span = 0.2;
  for (let level = 0; level < 12; level++) {
    let bv = -Infinity;
    let bg = best;
    for (let i = -10; i <= 10; i++)
      for (let j = -10; j <= 10; j++) {
        const g: [number, number] = [best[0] + (span * i) / 10, best[1] + (span * j) / 10];
        const v = F(g);
        if (v > bv) {
          bv = v;
          bg = g;
        }
      }
    best = bg;
    span /= 5;
  }
  return best;
}

describe('shear along the shear–shape degeneracy', () => {
  it('finds the maximum of Σ log p_e(e(g)) over g with every observed shape kept (nested grid, Seitz–Schneider)', () => {
    const sigma = 0.3;
    const { p, eps } = scene(40, 7, [0.03, -0.02]);
    // the point an optimiser left: the shear off the mode, shapes consistent with the observed ones
    const gStart: [number, number] = [-0.01, 0.015];
    p.g1 = gStart[0];
    p.g2 = gStart[1];
    eps.forEach((c, s) => {
      [p.e1[s], p.e2[s]] = intrinsicSS(gStart, c);
    });
    // the pipeline's default estimator: flat shear, ba14 ellipticities (docs/inference.md)
    const space = new ParamSpace(PRIORS, p);
    const theta = space.pack(p);
    const r = shearAlongShapes(space, theta);
    expect(r.applies).toBe(true);
    expect(r.gain).toBeGreaterThan(0);
    const out = space.unpack(r.theta);
    // oracle: nested grid search of the same objective, written independently
    const F = (g: [number, number]) => eps.reduce((acc, c) => acc + ba14(intrinsicSS(g, c), sigma), 0);
    const best = gridMax(F);
    console.log(`shear-polish: start (${gStart.join(', ')}) → (${out.g1.toFixed(8)}, ${out.g2.toFixed(8)}); grid oracle (${best[0].toFixed(8)}, ${best[1].toFixed(8)}); ${r.message}`);
    expect(Math.abs(out.g1 - best[0])).toBeLessThan(1e-6);
    expect(Math.abs(out.g2 - best[1])).toBeLessThan(1e-6);
    // every observed shape is kept, and the shapes are the oracle's intrinsic ones
    eps.forEach((c, s) => {
      const o = observedShape([out.g1, out.g2], [out.e1[s], out.e2[s]]);
      expect(Math.abs(o[0] - c[0])).toBeLessThan(1e-12);
      expect(Math.abs(o[1] - c[1])).toBeLessThan(1e-12);
      const e = intrinsicSS([out.g1, out.g2], c);
      expect(Math.abs(out.e1[s] - e[0])).toBeLessThan(1e-12);
    });
    // nothing else moved
    for (const k of ['flux', 'hlr', 'dx', 'dy'] as const) expect(Array.from(out[k])).toEqual(Array.from(p[k]));
    // the log prior rose by the reported gain
    expect(space.logPrior(r.theta).value - space.logPrior(theta).value).toBeCloseTo(r.gain, 9);
    // from the mode it stays put
    const again = shearAlongShapes(space, r.theta);
    expect(Math.hypot(...again.stepG)).toBeLessThan(1e-7);
  });

  it('leaves shear-blind sources out: their shapes stay, the maximum is over the others (grid oracle)', () => {
    const sigma = 0.3;
    const { p, eps } = scene(30, 9, [0.03, -0.02]);
    const gStart: [number, number] = [0.01, 0.0];
    p.g1 = gStart[0];
    p.g2 = gStart[1];
    eps.forEach((c, s) => {
      [p.e1[s], p.e2[s]] = intrinsicSS(gStart, c);
    });
    const blind = eps.map((_, s) => s % 3 === 0);
    const space = new ParamSpace(PRIORS, p, undefined, blind);
    const r = shearAlongShapes(space, space.pack(p));
    expect(r.applies).toBe(true);
    const out = space.unpack(r.theta);
    // oracle: grid search of Σ over the shear-measuring sources only (a blind source's prior term is constant in g)
    const F = (g: [number, number]) => eps.reduce((acc, c, s) => acc + (blind[s] ? 0 : ba14(intrinsicSS(g, c), sigma)), 0);
    const best = gridMax(F);
    expect(Math.abs(out.g1 - best[0])).toBeLessThan(1e-6);
    expect(Math.abs(out.g2 - best[1])).toBeLessThan(1e-6);
    eps.forEach((c, s) => {
      if (blind[s]) {
        expect([out.e1[s], out.e2[s]]).toEqual([p.e1[s], p.e2[s]]);
      } else {
        const o = observedShape([out.g1, out.g2], [out.e1[s], out.e2[s]]);
        expect(Math.abs(o[0] - c[0]) + Math.abs(o[1] - c[1])).toBeLessThan(1e-12);
      }
    });
  });

  it('does not apply when a source ellipticity or the shear is fixed', () => {
    const { p } = scene(5, 3, [0, 0]);
    const fixedE = new ParamSpace({ ...PRIORS, e1: { type: 'fixed', value: 0 } }, p);
    const a = shearAlongShapes(fixedE, fixedE.pack(p));
    expect(a.applies).toBe(false);
    expect(a.message).toMatch(/ellipticity of source 0 is not free: moving the shear would change the image/);
    const fixedG = new ParamSpace({ ...PRIORS, g1: { type: 'fixed', value: 0 }, g2: { type: 'fixed', value: 0 } }, p);
    expect(shearAlongShapes(fixedG, fixedG.pack(p)).message).toBe('the shear is fixed');
  });
});
