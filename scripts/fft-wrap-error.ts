/**
 * Wrap-around error of a smaller FFT grid (docs/bench.md "FFT size"): model images of tier-64
 * galaxies (hlr spread over the tier's whole range, the largest included) rendered by the GPU engine
 * at FFT = fftFactor × 64, against the float64 reference (engine/gpu/render/model64.ts) at FFT 256
 * (fftFactor 4: light wraps only beyond 96 px from the stamp centre). Also the float64 reference at
 * the same fftFactor, which separates wrap-around (the math) from float32 rounding (the engine).
 *
 *   npx tsx scripts/fft-wrap-error.ts [--sources 40] [--factors 1,1.5,2] [--json]
 */
import { acquireDevice } from '../platform/acquire.ts';
import { ShearEngine } from '../engine/gpu/render/engine.ts';
import { makeSyntheticScene } from '../engine/scene/synthetic.ts';
import { cloneParams } from '../engine/scene/types.ts';
import { renderModel64 } from '../engine/gpu/render/model64.ts';
import { parseOptions } from '../cli/args.ts';

const { opts } = parseOptions(process.argv.slice(2), { sources: 'integer', factors: 'string', json: 'boolean', seed: 'integer' }, 'usage: fft-wrap-error.ts [--sources N] [--factors 1,1.5,2] [--json]');
const nSources = (opts.sources as number) ?? 40;
const factors = ((opts.factors as string) ?? '1,1.5,2').split(',').map(Number);
const { set, truth } = makeSyntheticScene({ nSources, nQuadrants: 1, width: 1024, height: 1032, tier: 64, seed: (opts.seed as number) ?? 2 });
const params = cloneParams(truth);
const ref = renderModel64(set, params, { fftFactor: 4 })[0];
let peak = 0;
let sum = 0;
for (const v of ref) {
  peak = Math.max(peak, Math.abs(v));
  sum += v;
}
const acq = await acquireDevice({ quiet: true });
function compare(img: ArrayLike<number>) {
  let maxAbs = 0;
  let sumAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(img[i] - ref[i]);
    maxAbs = Math.max(maxAbs, d);
    sumAbs += d;
  }
  return { maxOverPeak: maxAbs / peak, sumAbsOverFlux: sumAbs / sum };
}
const rows: Array<Record<string, unknown>> = [];
for (const f of factors) {
  const eng = await ShearEngine.create(acq.device, set, { fftFactor: f });
  const img = (await eng.render(params))[0];
  eng.destroy();
  const r64 = renderModel64(set, params, { fftFactor: f })[0];
  rows.push({ fftFactor: f, fft: 64 * f, engine: compare(img), reference64: compare(r64) });
}
acq.release();
const hl = truth.hlr.map((h) => h / 0.1);
const res = { sources: nSources, hlrPixels: [Math.min(...hl), Math.max(...hl)], against: 'float64 reference, FFT 256', rows };
if (opts.json) console.log(JSON.stringify(res));
else {
  console.log(`${nSources} tier-64 sources, hlr ${res.hlrPixels[0].toFixed(1)}–${res.hlrPixels[1].toFixed(1)} px; against the float64 reference at FFT 256`);
  console.log('FFT   engine max|Δ|/peak  engine Σ|Δ|/flux   float64 max|Δ|/peak  float64 Σ|Δ|/flux');
  for (const r of rows as Array<{ fft: number; engine: { maxOverPeak: number; sumAbsOverFlux: number }; reference64: { maxOverPeak: number; sumAbsOverFlux: number } }>) {
    console.log(`${String(r.fft).padEnd(5)} ${r.engine.maxOverPeak.toExponential(2).padStart(18)} ${r.engine.sumAbsOverFlux.toExponential(2).padStart(17)} ${r.reference64.maxOverPeak.toExponential(2).padStart(20)} ${r.reference64.sumAbsOverFlux.toExponential(2).padStart(18)}`);
  }
}
