/**
 * FFT grids of 1.5 × the stamp (fftFactor 1.5: 96, 192, 384 points, the mixed-radix FFT of
 * engine/gpu/fft/fft.ts): the engine against the float64 reference on the same grid (model images,
 * logL, every gradient component against central finite differences of the reference), and the
 * wrap-around error of the smaller grid against the reference on a 4× grid, measured and bounded
 * (docs/bench.md "FFT size").
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, perturbParams } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64, renderModel64 } from '../../engine/gpu/render/model64.ts';
import { makeSyntheticScene } from '../../engine/scene/synthetic.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type SceneParams } from '../../engine/scene/types.ts';

function maxErrOverPeak(ref: Float64Array[], imgs: ArrayLike<number>[]): number {
  let peak = 0;
  let err = 0;
  ref.forEach((r, j) =>
    r.forEach((v, i) => {
      peak = Math.max(peak, Math.abs(v));
      err = Math.max(err, Math.abs(v - imgs[j][i]));
    }),
  );
  return err / peak;
}

describe('fftFactor 1.5 (mixed-radix grids)', () => {
  it('model images, logL and every gradient component match the float64 reference on the same grid', async () => {
    const device = await testDevice();
    const { set, params: truth } = makeTestScene({ seed: 21, nSources: 4, sourceTiers: [64, 128] });
    const opts = { fftFactor: 1.5 };
    const eng = await ShearEngine.create(device, set, opts);
    expect(eng.stats.fftSizes).toEqual([96, 192]);
    const imgs = await eng.render(truth);
    const e = maxErrOverPeak(renderModel64(set, truth, opts), imgs);
    console.log(`fftFactor 1.5: model images ${e.toExponential(2)} of the peak`);
    expect(e).toBeLessThan(1e-5);

    const params = perturbParams(truth, 5, 0.04);
    const { logL, gradient } = await eng.evaluate(params);
    const L = (p: SceneParams) => logLikelihood64(set, p, opts).logL;
    expect(Math.abs(logL - L(params)) / Math.abs(L(params))).toBeLessThan(1e-5);
    const fd = (put: (p: SceneParams, v: number) => void, get: (p: SceneParams) => number, h: number) => {
      const a = cloneParams(params);
      const b = cloneParams(params);
      put(a, get(params) + h);
      put(b, get(params) - h);
      return (L(a) - L(b)) / (2 * h);
    };
    const rows: Array<[string, number, number]> = [];
    for (const name of SOURCE_PARAM_NAMES) {
      for (let s = 0; s < set.sources.length; s++) {
        const h = name === 'flux' ? 1e-4 * params.flux[s] : 1e-5;
        rows.push([`${name}[${s}]`, gradient[name][s], fd((p, v) => (p[name][s] = v), (p) => p[name][s], h)]);
      }
    }
    rows.push(['g1', gradient.g1, fd((p, v) => (p.g1 = v), (p) => p.g1, 1e-5)]);
    rows.push(['g2', gradient.g2, fd((p, v) => (p.g2 = v), (p) => p.g2, 1e-5)]);
    const scale = new Map<string, number>();
    for (const [n, , f] of rows) scale.set(n.replace(/\[.*$/, ''), Math.max(scale.get(n.replace(/\[.*$/, '')) ?? 0, Math.abs(f)));
    let worst = 0;
    for (const [n, g, f] of rows) worst = Math.max(worst, Math.abs(g - f) / Math.max(Math.abs(f), 1e-2 * scale.get(n.replace(/\[.*$/, ''))!));
    console.log(`fftFactor 1.5: worst gradient error ${worst.toExponential(2)} (relative; absolute where ~0)`);
    expect(worst).toBeLessThan(1e-3);
    eng.destroy();
  });

  it('wrap-around of the 96-point grid for tier-64 galaxies: measured against a 256-point float64 grid, between the 64- and 128-point grids', async () => {
    const device = await testDevice();
    // hlr over the whole tier-64 range (the largest included): the most light beyond the stamp
    const { set, truth } = makeSyntheticScene({ nSources: 24, nQuadrants: 1, width: 768, height: 776, tier: 64, seed: 2 });
    const wide = renderModel64(set, truth, { fftFactor: 4 });
    const err: Record<string, number> = {};
    for (const f of [1, 1.5, 2]) {
      const eng = await ShearEngine.create(device, set, { fftFactor: f });
      err[f] = maxErrOverPeak(wide, await eng.render(truth));
      eng.destroy();
    }
    console.log(`wrap-around vs FFT 256: FFT 64 ${err[1].toExponential(2)}, 96 ${err[1.5].toExponential(2)}, 128 ${err[2].toExponential(2)} of the peak`);
    expect(err[1.5]).toBeLessThan(2e-4);
    expect(err[1.5]).toBeLessThan(err[1]);
    expect(err[2]).toBeLessThan(err[1.5]);
  });
});
