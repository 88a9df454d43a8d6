import { createKernelPipeline, type Kernel, type KernelPipeline } from './kernel.ts';

/**
 * Tracks what the engine creates on the device, so benchmarks and tests can check that after
 * warm-up no pipeline is created and no large buffer allocated, and report peak GPU bytes.
 */
export class GpuResources {
  pipelinesCreated = 0;
  buffersCreated = 0;
  liveBytes = 0;
  peakBytes = 0;
  compileMs = 0;
  private readonly sizes = new Map<GPUBuffer, number>();

  constructor(private dev: GPUDevice) {}

  get device(): GPUDevice {
    return this.dev;
  }

  /** After a lost device: every buffer released (they died with it) and new ones made on `device`. */
  rebind(device: GPUDevice): void {
    this.destroyAll();
    this.dev = device;
  }

  buffer(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    // WebGPU needs sizes that are multiples of 4; keep at least 16 bytes (uniform minimum).
    const bytes = Math.max(16, Math.ceil(size / 4) * 4);
    const b = this.dev.createBuffer({ label, size: bytes, usage });
    this.buffersCreated++;
    this.sizes.set(b, bytes);
    this.liveBytes += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return b;
  }

  /** A buffer filled with `data` at creation (mappedAtCreation, no staging copy). */
  bufferWithData(label: string, data: ArrayBufferView, usage: GPUBufferUsageFlags): GPUBuffer {
    const b = this.buffer(label, data.byteLength, usage);
    this.dev.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  }

  release(b: GPUBuffer): void {
    const s = this.sizes.get(b);
    if (s === undefined) return;
    this.sizes.delete(b);
    this.liveBytes -= s;
    b.destroy();
  }

  /** Compiles a kernel descriptor's pipeline with its explicit layout (engine/gpu/kernel.ts), counted. */
  async kernel<N extends string>(kernel: Kernel<N>): Promise<KernelPipeline<N>> {
    const t0 = performance.now();
    const p = await createKernelPipeline(this.dev, kernel);
    this.pipelinesCreated++;
    this.compileMs += performance.now() - t0;
    return p;
  }

  destroyAll(): void {
    for (const b of [...this.sizes.keys()]) this.release(b);
  }
}
