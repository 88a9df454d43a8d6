/**
 * Per-kernel wall time of one gradient evaluation on the current adapter, without timestamp
 * queries: each kernel family of every batch is submitted on its own and waited for (median of
 * repeats), for profiling on software adapters (docs/bench.md "Profiling without timestamps").
 *
 *   npx tsx scripts/profile-kernels.ts [--sources 250] [--quadrants 4] [--tier 64] [--fft-factor 2] [--repeats 5]
 */
import { acquireDevice } from '../platform/acquire.ts';
import { ShearEngine } from '../engine/gpu/render/engine.ts';
import { makeSyntheticScene } from '../engine/scene/synthetic.ts';
import { cloneParams } from '../engine/scene/types.ts';
import { parseOptions } from '../cli/args.ts';

const { opts } = parseOptions(process.argv.slice(2), { sources: 'integer', quadrants: 'integer', tier: 'integer', 'fft-factor': 'number', repeats: 'integer', json: 'boolean' }, 'usage: profile-kernels.ts [--sources N] [--quadrants M] [--tier T] [--fft-factor F] [--repeats R] [--json]');
const nSources = (opts.sources as number) ?? 250;
const nQuadrants = (opts.quadrants as number) ?? 4;
const tier = (opts.tier as number) ?? 64;
const fftFactor = (opts['fft-factor'] as number) ?? 2;
const repeats = (opts.repeats as number) ?? 5;
const acq = await acquireDevice({ quiet: true });
const dev = acq.device;
const { set, truth } = makeSyntheticScene({ nSources, nQuadrants, width: 2048, height: 2066, tier, seed: 1 });
const eng = await ShearEngine.create(dev, set, { fftFactor });
const params = cloneParams(truth);
await eng.evaluate(params);
// private members, read for profiling only
const e = eng as unknown as Record<string, any>;
const batches = e.batches as any[];
const sizes = e.sizes as Map<number, any>;
const quads = e.quads as any[];
const wg = e.workgroupSize() as number;
async function time(fn: (pass: GPUComputePassEncoder, enc: GPUCommandEncoder) => void): Promise<number> {
  const ts: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const t0 = performance.now();
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    fn(pass, enc);
    pass.end();
    dev.queue.submit([enc.finish()]);
    await dev.queue.onSubmittedWorkDone();
    if (r) ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1];
}
const out: Record<string, number> = {};
out.empty = await time(() => {});
out.setup = await time((p) => batches.forEach((b) => { const sp = sizes.get(b.m); p.setPipeline(sp.setup); p.setBindGroup(0, b.bgSetup); p.dispatchWorkgroups(b.count); }));
out.render = await time((p) => batches.forEach((b) => { const sp = sizes.get(b.m); p.setPipeline(sp.render); p.setBindGroup(0, b.bgRender); p.dispatchWorkgroups(Math.ceil((b.m * b.m) / wg), Math.ceil(b.count / 2)); }));
out.fftInverse = await time((p) => batches.forEach((b) => sizes.get(b.m).fft.encode(p, sizes.get(b.m).work, 0, Math.ceil(b.count / 2), true)));
out.accumulate = await time((p) => batches.forEach((b) => { if (!b.bgAccumulate) return; const sp = sizes.get(b.m); p.setPipeline(sp.accumulate); p.setBindGroup(0, b.bgAccumulate); const n = b.nTouched; if (n <= 65535) p.dispatchWorkgroups(n); else p.dispatchWorkgroups(65535, Math.ceil(n / 65535)); }));
out.residual = await time((p) => quads.forEach((q) => { if (!q.bgResidual) return; p.setPipeline(e.residual); p.setBindGroup(0, q.bgResidual); p.dispatchWorkgroups(Math.ceil(q.nActive / wg)); }));
out.scatter = await time((p) => batches.forEach((b) => { const sp = sizes.get(b.m); p.setPipeline(sp.scatter); p.setBindGroup(0, b.bgScatter); p.dispatchWorkgroups(Math.ceil((b.m * b.m) / wg), Math.ceil(b.count / 2)); }));
out.fftForward = await time((p) => batches.forEach((b) => sizes.get(b.m).fft.encode(p, sizes.get(b.m).work, 0, Math.ceil(b.count / 2), false)));
out.adjoint = await time((p) => batches.forEach((b) => { const sp = sizes.get(b.m); p.setPipeline(sp.adjoint); p.setBindGroup(0, b.bgAdjoint); p.dispatchWorkgroups(b.count); }));
const g: number[] = [];
for (let r = 0; r <= repeats; r++) { const t0 = performance.now(); await eng.evaluate(params); if (r) g.push(performance.now() - t0); }
g.sort((a, b) => a - b);
out.gradient = g[g.length >> 1];
const st = eng.stats;
eng.destroy();
acq.release();
const res = { adapter: acq.label, pairs: st.pairs, batches: st.batches, fftSizes: st.fftSizes, activeBlocks: st.activeBlocks, ms: out };
if (opts.json) console.log(JSON.stringify(res));
else {
  console.log(`${acq.label}: ${st.pairs} pairs, ${st.batches} batches, FFT ${st.fftSizes.join('/')}, ${st.activeBlocks} active blocks`);
  for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(12)} ${v.toFixed(1)} ms`);
}
