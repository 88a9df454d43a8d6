/**
 * GPU batched 2-D FFT against the float64 CPU reference (engine/gpu/fft/fft64.ts), which is
 * itself checked here against a naive O(N²) DFT and analytic transforms.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { createFft2dAsync, FFT_SIZES, COMPAT_DEFAULT_LIMITS, type Fft2dPlan } from '../../engine/gpu/fft/fft.ts';
import { fft1d, fft2d } from '../../engine/gpu/fft/fft64.ts';
import { checks } from '../../engine/gpu/fft/check.ts';
import { KERNEL_CHECKS } from '../../engine/gpu/checks.ts';
import { mulberry32 as rng } from '../../engine/util/rng.ts';


/** Interleaved complex f32 data of `count` M×M images, uniform in [−1, 1). */
function randomImages(M: number, count: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(2 * M * M * count);
  for (let i = 0; i < out.length; i++) out[i] = 2 * r() - 1;
  return out;
}

/** Float64 reference of a batch (from the f32 input values). */
function reference(data: Float32Array, M: number, count: number, inverse: boolean): Float64Array {
  const n = M * M;
  const out = new Float64Array(2 * n * count);
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < n; i++) {
      re[i] = data[2 * (b * n + i)];
      im[i] = data[2 * (b * n + i) + 1];
    }
    fft2d(re, im, M, inverse);
    for (let i = 0; i < n; i++) {
      out[2 * (b * n + i)] = re[i];
      out[2 * (b * n + i) + 1] = im[i];
    }
  }
  return out;
}

/** max |a − b| / max |b| */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let e = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    e = Math.max(e, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return e / m;
}

const GUARD = 256; // bytes of sentinel after the batch

/**
 * Uploads `data` at `byteOffset` of a fresh buffer (sentinels before and after), runs the plan
 * `passes` times in one compute pass (alternating direction list), reads everything back.
 */
async function runGpu(
  device: GPUDevice,
  plan: Fft2dPlan,
  data: Float32Array,
  count: number,
  byteOffset: number,
  dirs: boolean[],
): Promise<{ out: Float32Array; sentinelsIntact: boolean }> {
  const size = byteOffset + data.byteLength + GUARD;
  const buf = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const init = new Float32Array(size / 4).fill(12345.5);
  init.set(data, byteOffset / 4);
  device.queue.writeBuffer(buf, 0, init);
  const rb = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const inv of dirs) plan.encode(pass, buf, byteOffset, count, inv);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, rb, 0, size);
  device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const all = new Float32Array(rb.getMappedRange().slice(0));
  rb.unmap();
  rb.destroy();
  buf.destroy();
  let sentinelsIntact = true;
  for (let i = 0; i < byteOffset / 4; i++) if (all[i] !== 12345.5) sentinelsIntact = false;
  for (let i = (byteOffset + data.byteLength) / 4; i < all.length; i++) if (all[i] !== 12345.5) sentinelsIntact = false;
  return { out: all.slice(byteOffset / 4, (byteOffset + data.byteLength) / 4), sentinelsIntact };
}

const TOL = 1e-5;

describe('fft64 reference (oracle check)', () => {
  it('matches a naive O(N²) DFT, 1-D and 2-D, forward and inverse', () => {
    const r = rng(7);
    for (const [n, inverse] of [[64, false], [64, true], [96, false], [96, true], [3, true], [384, false]] as const) {
      const re = Float64Array.from({ length: n }, () => r() - 0.5);
      const im = Float64Array.from({ length: n }, () => r() - 0.5);
      const dr = new Float64Array(n);
      const di = new Float64Array(n);
      const s = inverse ? 1 : -1;
      for (let k = 0; k < n; k++) {
        for (let j = 0; j < n; j++) {
          const a = (s * 2 * Math.PI * ((k * j) % n)) / n;
          dr[k] += re[j] * Math.cos(a) - im[j] * Math.sin(a);
          di[k] += re[j] * Math.sin(a) + im[j] * Math.cos(a);
        }
        if (inverse) {
          dr[k] /= n;
          di[k] /= n;
        }
      }
      fft1d(re, im, n, inverse);
      for (let k = 0; k < n; k++) {
        expect(Math.abs(re[k] - dr[k])).toBeLessThan(1e-12);
        expect(Math.abs(im[k] - di[k])).toBeLessThan(1e-12);
      }
    }
    // 2-D: naive double sum on 16×16 and 24×24 (3·2^k)
    for (const M of [16, 24]) {
    const re = Float64Array.from({ length: M * M }, () => r() - 0.5);
    const im = Float64Array.from({ length: M * M }, () => r() - 0.5);
    const nr = new Float64Array(M * M);
    const ni = new Float64Array(M * M);
    for (let ky = 0; ky < M; ky++)
      for (let kx = 0; kx < M; kx++)
        for (let y = 0; y < M; y++)
          for (let x = 0; x < M; x++) {
            const a = (-2 * Math.PI * ((kx * x + ky * y) % M)) / M;
            const vr = re[y * M + x];
            const vi = im[y * M + x];
            nr[ky * M + kx] += vr * Math.cos(a) - vi * Math.sin(a);
            ni[ky * M + kx] += vr * Math.sin(a) + vi * Math.cos(a);
          }
    fft2d(re, im, M, false);
    for (let i = 0; i < M * M; i++) {
      expect(Math.abs(re[i] - nr[i])).toBeLessThan(1e-12);
      expect(Math.abs(im[i] - ni[i])).toBeLessThan(1e-12);
    }
    }
  });
});

describe('GPU batched 2-D FFT', () => {
  let device: GPUDevice;
  const plans = new Map<number, Fft2dPlan>();
  beforeAll(async () => {
    device = await testDevice();
    for (const M of FFT_SIZES) plans.set(M, await createFft2dAsync(device, M));
  });

  for (const M of FFT_SIZES) {
    const count = M === 512 ? 2 : M === 256 ? 3 : 5;
    it(`M=${M}: forward and inverse of ${count} random images at a non-zero offset match float64`, async () => {
      const plan = plans.get(M)!;
      const data = randomImages(M, count, M);
      const offset = 3 * 256;
      for (const inverse of [false, true]) {
        const { out, sentinelsIntact } = await runGpu(device, plan, data, count, offset, [inverse]);
        const ref = reference(data, M, count, inverse);
        const err = relErr(out, ref);
        console.log(`M=${M} count=${count} ${inverse ? 'inverse' : 'forward'}: max|gpu−f64|/max|f64| = ${err.toExponential(2)}`);
        expect(sentinelsIntact).toBe(true);
        expect(err).toBeLessThan(TOL);
      }
    });
  }

  it('a delta at (x0, y0) transforms to the analytic phase ramp, and back (M=128)', async () => {
    const M = 128;
    const plan = plans.get(M)!;
    const x0 = 37;
    const y0 = 101;
    const data = new Float32Array(2 * M * M);
    data[2 * (y0 * M + x0)] = 1;
    const { out } = await runGpu(device, plan, data, 1, 0, [false]);
    const ana = new Float64Array(2 * M * M);
    for (let ky = 0; ky < M; ky++)
      for (let kx = 0; kx < M; kx++) {
        const a = (-2 * Math.PI * ((kx * x0 + ky * y0) % M)) / M;
        ana[2 * (ky * M + kx)] = Math.cos(a);
        ana[2 * (ky * M + kx) + 1] = Math.sin(a);
      }
    const err = relErr(out, ana);
    console.log(`delta M=${M}: max|gpu−analytic| = ${err.toExponential(2)}`);
    expect(err).toBeLessThan(TOL);
    const back = await runGpu(device, plan, Float32Array.from(ana), 1, 0, [true]);
    expect(relErr(back.out, data)).toBeLessThan(TOL);
  });

  it('shifted Gaussian batch (all sizes, forward + inverse in one pass = round trip) matches float64', async () => {
    for (const M of FFT_SIZES) {
      const plan = plans.get(M)!;
      const count = 2;
      const data = new Float32Array(2 * M * M * count);
      for (let b = 0; b < count; b++) {
        const cx = M / 2 + 3.3 * (b + 1);
        const cy = M / 2 - 7.1 * (b + 1);
        const sig = M / (10 + 5 * b);
        for (let y = 0; y < M; y++)
          for (let x = 0; x < M; x++) data[2 * (b * M * M + y * M + x)] = Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sig * sig));
      }
      const fwd = await runGpu(device, plan, data, count, 0, [false]);
      const errF = relErr(fwd.out, reference(data, M, count, false));
      const rt = await runGpu(device, plan, data, count, 256, [false, true]);
      const errR = relErr(rt.out, data);
      console.log(`gaussian M=${M}: forward ${errF.toExponential(2)}, round trip ${errR.toExponential(2)}`);
      expect(errF).toBeLessThan(TOL);
      expect(errR).toBeLessThan(TOL);
      expect(rt.sentinelsIntact).toBe(true);
    }
  });

  it('two runs are bit-identical', async () => {
    const M = 256;
    const data = randomImages(M, 2, 99);
    const a = await runGpu(device, plans.get(M)!, data, 2, 0, [false]);
    const b = await runGpu(device, plans.get(M)!, data, 2, 512, [false]);
    expect(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer))).toBe(true);
  });

  it('splits large batches into several dispatches (artificial cap) with identical results', async () => {
    const M = 64;
    const count = 7;
    const split = await createFft2dAsync(device, M, { maxImagesPerDispatch: 3 });
    expect(split.dispatchCount(count)).toBe(6);
    expect(plans.get(M)!.dispatchCount(count)).toBe(2);
    const data = randomImages(M, count, 5);
    const a = await runGpu(device, split, data, count, 256, [false]);
    const b = await runGpu(device, plans.get(M)!, data, count, 256, [false]);
    expect(a.sentinelsIntact).toBe(true);
    expect(relErr(a.out, reference(data, M, count, false))).toBeLessThan(TOL);
    expect(Buffer.from(a.out.buffer).equals(Buffer.from(b.out.buffer))).toBe(true);
    // natural cap: one binding holds at most maxStorageBufferBindingSize bytes
    expect(plans.get(512)!.imagesPerDispatch).toBe(
      Math.min(65535, Math.floor(device.limits.maxStorageBufferBindingSize / (512 * 512 * 8))),
    );
    split.destroy();
  });

  it('works under the WebGPU compatibility default limits (128 invocations, 16 KiB)', async () => {
    for (const M of FFT_SIZES) {
      const plan = await createFft2dAsync(device, M, { limits: COMPAT_DEFAULT_LIMITS });
      for (const c of [plan.rows, plan.cols]) {
        expect(c.workgroupSize).toBeLessThanOrEqual(128);
        expect(c.workgroupStorageBytes).toBeLessThanOrEqual(16384);
      }
      const count = 2;
      const data = randomImages(M, count, 1000 + M);
      const { out } = await runGpu(device, plan, data, count, 0, [true]);
      const err = relErr(out, reference(data, M, count, true));
      console.log(`compat limits M=${M} rows ${JSON.stringify(plan.rows)} cols ${JSON.stringify(plan.cols)}: ${err.toExponential(2)}`);
      expect(err).toBeLessThan(TOL);
      plan.destroy();
    }
  });

  it('many encodes with different buffers, offsets and counts share one pass; encode creates no pipeline or buffer', async () => {
    const M = 64;
    const plan = await createFft2dAsync(device, M);
    expect(plan.stats.pipelinesCreated).toBe(4);
    expect(plan.stats.buffersCreated).toBe(1);
    const img = M * M * 8;
    const total = 9;
    const data = randomImages(M, total, 77);
    const buf = device.createBuffer({ size: total * img, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    device.queue.writeBuffer(buf, 0, data);
    const rb = device.createBuffer({ size: total * img, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    // images 0–1 forward, 2–6 inverse, 7 forward then inverse, 8 untouched; twice to exercise the bind-group cache
    for (let rep = 0; rep < 2; rep++) {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      plan.encode(pass, buf, 0, 2, false);
      plan.encode(pass, buf, 2 * img, 5, true);
      plan.encode(pass, buf, 7 * img, 1, false);
      plan.encode(pass, buf, 7 * img, 1, true);
      plan.encode(pass, buf, 8 * img, 0, true);
      pass.end();
      device.queue.submit([enc.finish()]);
      if (rep === 0) {
        const e2 = device.createCommandEncoder();
        e2.copyBufferToBuffer(buf, 0, rb, 0, total * img);
        device.queue.submit([e2.finish()]);
        await rb.mapAsync(GPUMapMode.READ);
        const out = new Float32Array(rb.getMappedRange().slice(0));
        rb.unmap();
        const n = 2 * M * M;
        expect(relErr(out.subarray(0, 2 * n), reference(data.subarray(0, 2 * n), M, 2, false))).toBeLessThan(TOL);
        expect(relErr(out.subarray(2 * n, 7 * n), reference(data.subarray(2 * n, 7 * n), M, 5, true))).toBeLessThan(TOL);
        expect(relErr(out.subarray(7 * n, 8 * n), data.subarray(7 * n, 8 * n))).toBeLessThan(TOL);
        expect(Array.from(out.subarray(8 * n))).toEqual(Array.from(data.subarray(8 * n)));
      }
    }
    await device.queue.onSubmittedWorkDone();
    expect(plan.stats.pipelinesCreated).toBe(4);
    expect(plan.stats.buffersCreated).toBe(1);
    expect(plan.stats.bindGroupsCreated).toBe(3); // offsets 0, 2·img, 7·img (count 0 binds nothing)
    buf.destroy();
    rb.destroy();
    plan.destroy();
  });

  it('the doctor checks (engine/gpu/fft/check.ts) are registered and pass on this device', async () => {
    const registered = (await Promise.all(KERNEL_CHECKS.map((load) => load()))).flat().map((c) => c.name);
    for (const c of checks) {
      expect(registered).toContain(c.name);
      const r = await c.run(device);
      console.log(`check ${r.name}: ${r.detail} (${r.ms.toFixed(0)} ms)`);
      expect(r.pass).toBe(true);
      expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
    }
  });

  it('rejects unsupported sizes and bad arguments with clear errors', async () => {
    await expect(createFft2dAsync(device, 100)).rejects.toThrow(/FFT size 100 is not supported.*64, 96, 128, 192, 256, 384, 512/);
    await expect(createFft2dAsync(device, 96, { perThread: 16 })).rejects.toThrow(/perThread = 16 must be one of 12, 24, 48/);
    await expect(createFft2dAsync(device, 1024)).rejects.toThrow(/not supported/);
    const plan = plans.get(64)!;
    const buf = device.createBuffer({ label: 'small', size: 2 * 64 * 64 * 8, usage: GPUBufferUsage.STORAGE });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    expect(() => plan.encode(pass, buf, 100, 1, false)).toThrow(/byteOffset = 100 must be a non-negative multiple of/);
    expect(() => plan.encode(pass, buf, 0, 3, false)).toThrow(/3 images from byte 0 need 98304 bytes but buffer 'small' has 65536/);
    expect(() => plan.encode(pass, buf, 0, 1.5, false)).toThrow(/count = 1.5/);
    pass.end();
    enc.finish();
    buf.destroy();
  });
});
