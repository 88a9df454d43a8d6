/** Shared by the page and the worker: acquire the browser device, summarize it, a tiny compute check. */
import { acquireDevice, type AcquiredDevice } from '../../platform/acquire.ts';
import type { LimitsMode } from '../../platform/device-select.ts';
import type { DeviceSummary } from './protocol.ts';

export async function acquire(adapter: string, limits: LimitsMode): Promise<AcquiredDevice> {
  return acquireDevice({ adapter, limits }); // the runtime-detecting entry point, as the app uses it
}

export function summary(a: AcquiredDevice): DeviceSummary {
  return {
    label: a.label,
    name: a.name,
    backend: a.backend,
    featureLevel: a.featureLevel,
    software: a.software,
    limitsMode: a.limitsMode,
    isFallbackAdapter: a.info.isFallbackAdapter,
    description: a.info.description,
  };
}

/**
 * y[i] = fma(a, x[i], b) for pseudo-random x, compared with the float64 CPU value; returns
 * max |gpu - cpu| / max |cpu|. Small, so the worker path is checked without re-running everything.
 */
export async function tinyComputeCheck(device: GPUDevice): Promise<number> {
  const n = 4096;
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = (s / 2 ** 32) * 2 - 1;
  }
  const a = 1.75;
  const b = -0.25;
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < arrayLength(&x)) { y[g.x] = fma(${a}, x[g.x], ${b}); }
}`,
  });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const xb = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const yb = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const rb = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(xb, 0, x);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: xb } },
        { binding: 1, resource: { buffer: yb } },
      ],
    }),
  );
  pass.dispatchWorkgroups(n / 64);
  pass.end();
  enc.copyBufferToBuffer(yb, 0, rb, 0, n * 4);
  device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const y = new Float32Array(rb.getMappedRange().slice(0));
  rb.unmap();
  let err = 0;
  let peak = 0;
  for (let i = 0; i < n; i++) {
    const ref = a * x[i] + b;
    err = Math.max(err, Math.abs(y[i] - ref));
    peak = Math.max(peak, Math.abs(ref));
  }
  xb.destroy();
  yb.destroy();
  rb.destroy();
  return err / peak;
}
