/**
 * `shine doctor` checks of the batched 2-D FFT: for every size, a small random batch (seeded) at a
 * non-zero offset, forward and inverse, against the float64 reference; plus a bit-identical repeat.
 */
import type { KernelCheck, KernelCheckResult } from '../check-types.ts';
import { createFft2dAsync, FFT_SIZES, type Fft2dPlan } from './fft.ts';
import { fft2d } from './fft64.ts';
import { mulberry32 } from '../../util/rng.ts';

const TOLERANCE = 1e-5;


/** Runs one encode of `plan` on `data` (count images) at `byteOffset` and reads the images back. */
export async function runFftOnce(
  device: GPUDevice,
  plan: Fft2dPlan,
  data: Float32Array,
  count: number,
  byteOffset: number,
  inverse: boolean,
): Promise<Float32Array> {
  const size = byteOffset + count * plan.imageBytes;
  const buf = device.createBuffer({ label: 'fft-check', size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const rb = device.createBuffer({ label: 'fft-check-readback', size: count * plan.imageBytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    device.queue.writeBuffer(buf, byteOffset, data.buffer, data.byteOffset, count * plan.imageBytes);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    plan.encode(pass, buf, byteOffset, count, inverse);
    pass.end();
    enc.copyBufferToBuffer(buf, byteOffset, rb, 0, count * plan.imageBytes);
    device.queue.submit([enc.finish()]);
    await rb.mapAsync(GPUMapMode.READ);
    return new Float32Array(rb.getMappedRange().slice(0));
  } finally {
    if (rb.mapState === 'mapped') rb.unmap();
    rb.destroy();
    buf.destroy();
  }
}

/** max |gpu − f64| / max |f64| over a batch. */
function batchError(gpu: Float32Array, input: Float32Array, M: number, count: number, inverse: boolean): number {
  const n = M * M;
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  let err = 0;
  let max = 0;
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < n; i++) {
      re[i] = input[2 * (b * n + i)];
      im[i] = input[2 * (b * n + i) + 1];
    }
    fft2d(re, im, M, inverse);
    for (let i = 0; i < n; i++) {
      err = Math.max(err, Math.abs(gpu[2 * (b * n + i)] - re[i]), Math.abs(gpu[2 * (b * n + i) + 1] - im[i]));
      max = Math.max(max, Math.abs(re[i]), Math.abs(im[i]));
    }
  }
  return err / max;
}

function sizeCheck(M: number): KernelCheck {
  return {
    name: `fft2d ${M}×${M} (forward, inverse, repeat)`,
    async run(device: GPUDevice): Promise<KernelCheckResult> {
      const t0 = performance.now();
      const plan = await createFft2dAsync(device, M);
      try {
        const count = M >= 512 ? 1 : M >= 256 ? 2 : 3;
        const r = mulberry32(M * 7919);
        const data = new Float32Array(2 * M * M * count);
        for (let i = 0; i < data.length; i++) data[i] = 2 * r() - 1;
        const offset = 256;
        const fwd = await runFftOnce(device, plan, data, count, offset, false);
        const inv = await runFftOnce(device, plan, data, count, offset, true);
        const again = await runFftOnce(device, plan, data, count, 0, false);
        const eF = batchError(fwd, data, M, count, false);
        const eI = batchError(inv, data, M, count, true);
        let identical = true;
        for (let i = 0; i < fwd.length; i++) if (!Object.is(fwd[i], again[i])) identical = false;
        const maxError = Math.max(eF, eI);
        return {
          name: this.name,
          pass: maxError <= TOLERANCE && identical,
          maxError,
          tolerance: TOLERANCE,
          detail:
            `${count} image(s); forward ${eF.toExponential(2)}, inverse ${eI.toExponential(2)} of max |value|` +
            `; repeat ${identical ? 'bit-identical' : 'NOT bit-identical'}` +
            `; workgroups ${plan.rows.workgroupSize}/${plan.cols.workgroupSize} invocations`,
          ms: performance.now() - t0,
        };
      } finally {
        plan.destroy();
      }
    },
  };
}

export const checks: KernelCheck[] = FFT_SIZES.map(sizeCheck);
