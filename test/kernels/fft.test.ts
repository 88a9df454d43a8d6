/**
 * GPU batched 2-D FFT against the float64 CPU reference (engine/reference/fft64.ts), which is
 * itself checked here against a naive O(N²) DFT and analytic transforms.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { createFft2d, createFft2dAsync, FFT_SIZES, COMPAT_DEFAULT_LIMITS, type Fft2dPlan } from '../../engine/kernels/fft.ts';
import { fft1d, fft2d } from '../../engine/reference/fft64.ts';
import { checks } from '../../engine/kernels/checks/fft.ts';
import { KERNEL_CHECKS } from '../../engine/kernels/checks.ts';
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
  mode: 'full' | 'window' = 'full',
): Promise<{ out: Float32Array; sentinelsIntact: boolean }> {
  const size = byteOffset + data.byteLength + GUARD;
  const buf = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const init = new Float32Array(size / 4).fill(12345.5);
  init.set(data, byteOffset / 4);
  device.queue.writeBuffer(buf, 0, init);
  const rb = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const inv of dirs) plan.encode(pass, buf, byteOffset, count, inv, mode);
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
    for (const inverse of [false, true]) {
      const n = 64;
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
    // 2-D: naive double sum on 16×16
    const M = 16;
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
    const split = createFft2d(device, M, { maxImagesPerDispatch: 3 });
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
      const plan = createFft2d(device, M, { limits: COMPAT_DEFAULT_LIMITS });
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

  it("twiddles 'table' (every twiddle read from the table; the default 'pow2' multiplies some) is within tolerance", async () => {
    for (const M of [128, 512]) {
      const plan = createFft2d(device, M, { twiddles: 'table' });
      const count = 1;
      const data = randomImages(M, count, 4242 + M);
      for (const inverse of [false, true]) {
        const { out } = await runGpu(device, plan, data, count, 0, [inverse]);
        const err = relErr(out, reference(data, M, count, inverse));
        console.log(`table twiddles M=${M} ${inverse ? 'inverse' : 'forward'}: ${err.toExponential(2)}`);
        expect(err).toBeLessThan(TOL);
      }
      plan.destroy();
    }
  });

  it('many encodes with different buffers, offsets and counts share one pass; encode creates no pipeline or buffer', async () => {
    const M = 64;
    const plan = createFft2d(device, M);
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

  it("'window' mode: pruned forward of a zero-padded stamp and pruned inverse cropped to the window", async () => {
    for (const [M, start, size] of [[128, 32, 64], [64, 6, 20], [256, 64, 128]] as const) {
      const plan = createFft2d(device, M, { window: { start, size } });
      expect(plan.stats.pipelinesCreated).toBe(6);
      const count = 3;
      const data = randomImages(M, count, 31 + M);
      // zero outside the window in both directions (a stamp in its zero-padded grid)
      for (let b = 0; b < count; b++)
        for (let y = 0; y < M; y++)
          for (let x = 0; x < M; x++)
            if (y < start || y >= start + size || x < start || x >= start + size) {
              data[2 * (b * M * M + y * M + x)] = 0;
              data[2 * (b * M * M + y * M + x) + 1] = 0;
            }
      const fwd = await runGpu(device, plan, data, count, 256, [false], 'window');
      const errF = relErr(fwd.out, reference(data, M, count, false));
      // pruned inverse of a full random spectrum, compared only inside the window's rows
      const spec = randomImages(M, count, 77 + M);
      const inv = await runGpu(device, plan, spec, count, 0, [true], 'window');
      const ref = reference(spec, M, count, true);
      const rows = (a: ArrayLike<number>) => {
        const out: number[] = [];
        for (let b = 0; b < count; b++) for (let i = 2 * (b * M * M + start * M); i < 2 * (b * M * M + (start + size) * M); i++) out.push(a[i]);
        return out;
      };
      const errI = relErr(rows(inv.out), rows(ref));
      console.log(`window M=${M} rows [${start}, ${start + size}) lines ${plan.window!.lines}: forward ${errF.toExponential(2)}, inverse ${errI.toExponential(2)}`);
      expect(errF).toBeLessThan(TOL);
      expect(errI).toBeLessThan(TOL);
      expect(fwd.sentinelsIntact && inv.sentinelsIntact).toBe(true);
      plan.destroy();
    }
    expect(() => createFft2d(device, 64, { window: { start: 40, size: 30 } })).toThrow(/window rows \[40, 40 \+ 30\) must be integers inside \[0, 64\)/);
    const plain = plans.get(64)!;
    const buf = device.createBuffer({ size: 64 * 64 * 8, usage: GPUBufferUsage.STORAGE });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    expect(() => plain.encode(pass, buf, 0, 1, false, 'window')).toThrow(/needs a plan created with the window option/);
    pass.end();
    enc.finish();
    buf.destroy();
  });

  it('fusion hooks: spectrum rendered in the column pass, windowed row pass stores the cropped real part', async () => {
    // Inverse of the analytic spectrum e^{−2πi(kx·x0 + ky·y0)/M} of a unit delta at (x0, y0):
    // the column pass computes the spectrum in fft_load; the windowed row pass writes Re into a
    // cropped S×S f32 stamp buffer with fft_store. Oracle: the delta itself.
    const M = 128;
    const start = 32;
    const S = 64;
    const plan = createFft2d(device, M, { window: { start, size: S } });
    const pos = [[40, 33], [95, 90], [64, 64]]; // (x0, y0) inside the window
    const count = pos.length;
    const prelude = `
@group(1) @binding(0) var<storage, read> delta: array<vec2<u32>>;
@group(1) @binding(1) var<storage, read_write> stamps: array<f32>;
fn fft_load(img: u32, x: u32, y: u32) -> vec2<f32> {
  let d = delta[img];
  let m = (x * d.x + y * d.y) % ${M}u; // exact phase index
  let a = -6.283185307179586 * f32(m) / ${M}.0;
  return vec2<f32>(cos(a), sin(a));
}
fn fft_store(img: u32, x: u32, y: u32, v: vec2<f32>) {
  if (x >= ${start}u && x < ${start + S}u) {
    stamps[img * ${S * S}u + (y - ${start}u) * ${S}u + (x - ${start}u)] = v.x;
  }
}`;
    const userBgl = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
      ],
    });
    const layout = device.createPipelineLayout({ bindGroupLayouts: [plan.bindGroupLayout, userBgl] });
    const mk = (columns: boolean, windowed: boolean, hooks: { load?: boolean; store?: boolean }) =>
      device.createComputePipelineAsync({
        layout,
        compute: { module: device.createShaderModule({ code: plan.passShader({ columns, inverse: true, windowed, hooks: { prelude, ...hooks } }) }), entryPoint: 'main' },
      });
    const colP = await mk(true, false, { load: true });
    const rowP = await mk(false, true, { store: true });
    const work = device.createBuffer({ size: count * plan.imageBytes, usage: GPUBufferUsage.STORAGE });
    const dl = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(dl, 0, Uint32Array.from(pos.flat()));
    const stampBytes = count * S * S * 4;
    const st = device.createBuffer({ size: stampBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const rb = device.createBuffer({ size: stampBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const bg1 = device.createBindGroup({ layout: userBgl, entries: [{ binding: 0, resource: { buffer: dl } }, { binding: 1, resource: { buffer: st } }] });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setBindGroup(0, plan.bindGroup(work, 0));
    pass.setBindGroup(1, bg1);
    pass.setPipeline(colP);
    pass.dispatchWorkgroups(plan.passGroups(true), count);
    pass.setPipeline(rowP);
    pass.dispatchWorkgroups(plan.passGroups(false, true), count);
    pass.end();
    enc.copyBufferToBuffer(st, 0, rb, 0, stampBytes);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(rb.getMappedRange().slice(0));
    rb.unmap();
    const expected = new Float64Array(count * S * S);
    pos.forEach(([x0, y0], b) => (expected[b * S * S + (y0 - start) * S + (x0 - start)] = 1));
    const err = relErr(out, expected);
    console.log(`fused render→inverse→crop M=${M}: max error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(TOL);
    for (const b of [work, dl, st, rb]) b.destroy();
    plan.destroy();
  });

  it('the doctor checks (engine/kernels/checks/fft.ts) are registered and pass on this device', async () => {
    const registered = (await Promise.all(KERNEL_CHECKS.map((load) => load()))).flat().map((c) => c.name);
    for (const c of checks) {
      expect(registered).toContain(c.name);
      const r = await c.run(device);
      console.log(`check ${r.name}: ${r.detail} (${r.ms.toFixed(0)} ms)`);
      expect(r.pass).toBe(true);
      expect(r.maxError).toBeLessThanOrEqual(r.tolerance);
    }
  });

  it('rejects unsupported sizes and bad arguments with clear errors', () => {
    expect(() => createFft2d(device, 100)).toThrow(/FFT size 100 is not supported.*64, 128, 256, 512/);
    expect(() => createFft2d(device, 1024)).toThrow(/not supported/);
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
