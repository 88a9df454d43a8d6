/**
 * GPU spans per kernel per batch (engine/bench/gpu-timer.ts, docs/bench.md "GPU spans"): an
 * evaluation recorded with one compute pass per kernel and batch gives the same result bit for bit
 * as the normal one-pass evaluation, and passes every kernel of every batch through the timer
 * (counted against the engine's own batch and quadrant figures). On an adapter with
 * 'timestamp-query' the real timer reports one GPU span per pass; without it, it refuses clearly.
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, perturbParams } from '../../engine/reference/scene-builder.ts';
import { GpuKernelTimer, type KernelPasses, type KernelTimer } from '../../engine/bench/gpu-timer.ts';
import { TraceRecorder } from '../../engine/bench/trace.ts';

/** A timer without timestamps: a plain pass per kernel, labels recorded. */
function splitPasses(): KernelTimer & { labels: Array<[string, number]> } {
  const labels: Array<[string, number]> = [];
  return {
    labels,
    begin(enc: GPUCommandEncoder): KernelPasses {
      let cur: GPUComputePassEncoder | null = null;
      return {
        pass(kernel, batch) {
          cur?.end();
          labels.push([kernel, batch]);
          cur = enc.beginComputePass({ label: kernel });
          return cur;
        },
        end() {
          cur?.end();
          cur = null;
        },
      };
    },
    resolve() {},
  };
}

describe('kernel passes for GPU spans', () => {
  it('one pass per kernel and batch: bit-identical gradient, every kernel of every batch passed', async () => {
    const device = await testDevice();
    const { set, params: truth } = makeTestScene({ seed: 5, nSources: 6 });
    const params = perturbParams(truth, 3, 0.03);
    const eng = await ShearEngine.create(device, set, { maxPairsPerBatch: 3 });
    const st = eng.stats;
    expect(st.batches).toBeGreaterThan(2);
    const a = await eng.evaluate(params);
    const timer = splitPasses();
    const b = await eng.evaluateTimed(params, timer);
    expect(Object.is(b.logL, a.logL)).toBe(true);
    for (const k of Object.keys(a.gradient) as Array<keyof typeof a.gradient>) {
      const x = a.gradient[k];
      const y = b.gradient[k];
      if (typeof x === 'number') expect(Object.is(y, x), k).toBe(true);
      else if (x) expect(Array.from(y as Float64Array), k).toEqual(Array.from(x));
    }
    const count = (name: string) => timer.labels.filter(([k]) => k === name).length;
    for (const k of ['render', 'fft inverse', 'residual scatter', 'fft forward', 'adjoint']) expect(count(k), k).toBe(st.batches);
    expect(count('setup')).toBe(2 * st.batches); // forward and adjoint
    for (let bi = 0; bi < st.batches; bi++) expect(timer.labels.filter(([k, i]) => k === 'render' && i === bi)).toHaveLength(1);
    const activeQuadrants = eng.layout.quadrants.filter((q) => q.nActive > 0).length;
    expect(count('residual')).toBe(activeQuadrants);
    expect(count('accumulate')).toBeGreaterThan(0);
    expect(count('accumulate')).toBeLessThanOrEqual(st.batches);
    eng.destroy();
  });

  it("GpuKernelTimer: spans per pass with 'timestamp-query', a clear refusal without", async () => {
    const device = await testDevice();
    if (!device.features.has('timestamp-query')) {
      expect(() => new GpuKernelTimer(device)).toThrow(/no 'timestamp-query' feature/);
      return;
    }
    const { set, params } = makeTestScene({ seed: 5, nSources: 4 });
    const eng = await ShearEngine.create(device, set);
    const timer = new GpuKernelTimer(device);
    const rec = new TraceRecorder();
    await eng.evaluateTimed(params, timer);
    const r = await timer.spans(rec, performance.now());
    expect(r.kernels).toBeGreaterThan(0);
    expect(rec.spans.filter((s) => s.track === 'gpu')).toHaveLength(r.kernels);
    timer.destroy();
    eng.destroy();
  });
});
