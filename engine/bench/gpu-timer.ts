/**
 * GPU spans per kernel per batch (docs/bench.md "GPU spans"). The engine records the kernels of an
 * evaluation into compute passes it asks a `KernelPasses` for: normally one shared pass per
 * direction (`sharedPasses`), or — for a timed evaluation — one pass per kernel and batch, each with
 * `timestampWrites` at its beginning and end (`GpuKernelTimer`, needs the 'timestamp-query'
 * feature; core WebGPU has no timestamps inside a pass). Results are bit-identical either way:
 * the same dispatches in the same order, only the pass boundaries differ.
 */
import { BufferUsage, MapModeRead } from '../gpu/usage.ts';
import type { TraceSink } from './trace.ts';

export interface KernelPasses {
  /** The pass `kernel` of batch `batch` (−1: per quadrant or once) records into. */
  pass(kernel: string, batch: number, detail?: Record<string, unknown>): GPUComputePassEncoder;
  /** Ends the open pass (before copies on the encoder, or at the end). */
  end(): void;
}

/** Every kernel into one pass, begun on first use (the engine's normal path). */
export function sharedPasses(enc: GPUCommandEncoder, label: string): KernelPasses {
  let p: GPUComputePassEncoder | null = null;
  return {
    pass: () => (p ??= enc.beginComputePass({ label })),
    end() {
      p?.end();
      p = null;
    },
  };
}

/** What a timed evaluation needs from a timer. */
export interface KernelTimer {
  /** Passes for one evaluation's kernels (called once per evaluation, before recording). */
  begin(enc: GPUCommandEncoder): KernelPasses;
  /** Records the copies that bring the timestamps back (after the last pass ended). */
  resolve(enc: GPUCommandEncoder): void;
}

const TIMESTAMP_BYTES = 8;
/** WebGPU's largest query set. */
const MAX_QUERIES = 4096;

interface Slot {
  kernel: string;
  batch: number;
  detail?: Record<string, unknown>;
}

/**
 * One pass per kernel and batch with timestamp writes; `spans` reads them back and reports them
 * on the trace's GPU track. At most 2048 passes are timed per evaluation (the query-set limit);
 * further kernels still run, untimed, and `spans` says how many.
 */
export class GpuKernelTimer implements KernelTimer {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuf: GPUBuffer;
  private readonly readBuf: GPUBuffer;
  private readonly capacity: number;
  private slots: Slot[] = [];
  private untimed = 0;

  constructor(private readonly device: GPUDevice, passes = MAX_QUERIES / 2) {
    if (!device.features.has('timestamp-query')) throw new Error("GpuKernelTimer: the device has no 'timestamp-query' feature (request it when the adapter offers it)");
    this.capacity = Math.max(1, Math.min(passes, MAX_QUERIES / 2));
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2 * this.capacity });
    const bytes = 2 * this.capacity * TIMESTAMP_BYTES;
    // QUERY_RESOLVE = 0x200 (spec value; GPUBufferUsage may not exist before a device does)
    this.resolveBuf = device.createBuffer({ label: 'kernel-timestamps', size: bytes, usage: 0x200 | BufferUsage.COPY_SRC });
    this.readBuf = device.createBuffer({ label: 'kernel-timestamps-read', size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
  }

  begin(enc: GPUCommandEncoder): KernelPasses {
    this.slots = [];
    this.untimed = 0;
    let cur: GPUComputePassEncoder | null = null;
    return {
      pass: (kernel, batch, detail) => {
        cur?.end();
        const i = this.slots.length;
        if (i < this.capacity) {
          this.slots.push({ kernel, batch, ...(detail ? { detail } : {}) });
          cur = enc.beginComputePass({ label: `${kernel} #${batch}`, timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
        } else {
          this.untimed++;
          cur = enc.beginComputePass({ label: `${kernel} #${batch}` });
        }
        return cur;
      },
      end: () => {
        cur?.end();
        cur = null;
      },
    };
  }

  resolve(enc: GPUCommandEncoder): void {
    const n = 2 * this.slots.length;
    if (!n) return;
    enc.resolveQuerySet(this.querySet, 0, n, this.resolveBuf, 0);
    enc.copyBufferToBuffer(this.resolveBuf, 0, this.readBuf, 0, n * TIMESTAMP_BYTES);
  }

  /**
   * Reads the last timed evaluation's timestamps (after its submit completed) and reports one span
   * per kernel and batch (category 'kernel', track 'gpu'). GPU time has its own origin: the first
   * timestamp is placed at `hostStartMs` (the host clock just before the submit), so the GPU track
   * lines up with the CPU spans to within the submit latency. Returns the spans' total (ms).
   */
  async spans(sink: TraceSink, hostStartMs: number): Promise<{ kernels: number; untimed: number; gpuMs: number }> {
    const n = this.slots.length;
    if (!n) return { kernels: 0, untimed: this.untimed, gpuMs: 0 };
    await this.readBuf.mapAsync(MapModeRead, 0, 2 * n * TIMESTAMP_BYTES);
    const ts = new BigUint64Array(this.readBuf.getMappedRange(0, 2 * n * TIMESTAMP_BYTES).slice(0));
    this.readBuf.unmap();
    let t0 = ts[0];
    for (let i = 0; i < 2 * n; i += 2) if (ts[i] < t0) t0 = ts[i];
    let total = 0;
    this.slots.forEach((s, i) => {
      const b = ts[2 * i];
      const e = ts[2 * i + 1];
      const durMs = e > b ? Number(e - b) / 1e6 : 0;
      total += durMs;
      sink.span({ name: s.kernel, cat: 'kernel', startMs: hostStartMs + Number(b - t0) / 1e6, durMs, track: 'gpu', args: { batch: s.batch, ...s.detail } });
    });
    if (this.untimed) sink.note('gpu_spans_untimed', { kernels: this.untimed, reason: `more than ${this.capacity} passes in one evaluation` });
    return { kernels: n, untimed: this.untimed, gpuMs: total };
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolveBuf.destroy();
    this.readBuf.destroy();
  }
}
