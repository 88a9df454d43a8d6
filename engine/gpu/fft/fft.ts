/**
 * Batched 2-D complex FFT on the GPU, sizes 64, 96, 128, 192, 256, 384 and 512 (2^k and 3·2^k), numpy conventions:
 * forward X[k] = Σ x[n] e^{−2πi k·n/M} (unnormalised), inverse e^{+2πi k·n/M} with 1/M² overall.
 *
 * Data layout: `array<vec2<f32>>` (re, im interleaved); image b of a batch at elements
 * [b·M², (b+1)·M²) after `byteOffset`, row-major [y][x]. The transform is in place: one row pass
 * and one column pass per 2-D transform, each reading and writing every element once (see
 * docs/fft.md). No scratch buffer, no uniforms: everything an encode needs is in the pipelines
 * (size, direction), the dispatch grid and the bind group's offset, so many encodes with
 * different buffers/offsets/counts can share one compute pass and one submit.
 *
 * After plan creation `encode` creates no pipeline and no buffer (see `stats`); it only creates a
 * bind group the first time it sees a (buffer, offset) pair, and caches it. Plans are made with
 * `createFft2dAsync` only (a compile error is a rejection, never a later device error).
 */
import { fftPassKernel, fftRadices } from './fft.wgsl.ts';
import { bindKernel, kernelBindGroupLayout, type Kernel } from '../kernel.ts';
import { ShineError } from '../../errors.ts';

/** 2^k and 3·2^k sizes: 96, 192, 384 let the FFT grid be 1.5 × the stamp (docs/fft.md "Sizes"). */
export const FFT_SIZES = [64, 96, 128, 192, 256, 384, 512] as const;
export type FftSize = (typeof FFT_SIZES)[number];

export interface Fft2dOptions {
  /** Complex values per invocation (4…64 for 2^k sizes, 12, 24 or 48 for 3·2^k). Default chosen per size. */
  perThread?: number;
  /** Rows per workgroup in the row pass (power of two). Default: as many as the limits allow, capped. */
  rowLines?: number;
  /** Columns per workgroup in the column pass (power of two). Default: as many as the limits allow, capped. */
  colLines?: number;
  /**
   * Cap on images per dispatch (testing the splitting logic). The plan always also respects
   * maxComputeWorkgroupsPerDimension and maxStorageBufferBindingSize.
   */
  maxImagesPerDispatch?: number;
  /**
   * Plan as if the device had (at most) these limits — e.g. the WebGPU compatibility defaults on a
   * device created with larger ones (testing the portable path).
   */
  limits?: Partial<Record<PlanLimit, number>>;
  label?: string;
}

type PlanLimit =
  | 'maxComputeInvocationsPerWorkgroup'
  | 'maxComputeWorkgroupSizeX'
  | 'maxComputeWorkgroupStorageSize'
  | 'maxComputeWorkgroupsPerDimension'
  | 'maxStorageBufferBindingSize';

/** WebGPU compatibility-mode default limits relevant to the FFT. */
export const COMPAT_DEFAULT_LIMITS: Record<PlanLimit, number> = {
  maxComputeInvocationsPerWorkgroup: 128,
  maxComputeWorkgroupSizeX: 128,
  maxComputeWorkgroupStorageSize: 16384,
  maxComputeWorkgroupsPerDimension: 65535,
  maxStorageBufferBindingSize: 134217728,
};

function planLimits(device: GPUDevice, caps: Fft2dOptions['limits']): Record<PlanLimit, number> {
  const out = {} as Record<PlanLimit, number>;
  for (const k of Object.keys(COMPAT_DEFAULT_LIMITS) as PlanLimit[]) {
    out[k] = Math.min(device.limits[k], caps?.[k] ?? Infinity);
  }
  return out;
}

export interface Fft2dStats {
  pipelinesCreated: number;
  buffersCreated: number;
  bindGroupsCreated: number;
}

export interface Fft2dPassConfig {
  perThread: number;
  lines: number;
  radices: number[];
  workgroupSize: number;
  workgroupStorageBytes: number;
}

export interface Fft2dPlan {
  readonly size: FftSize;
  /** Bytes of one M×M complex image (M²·8). */
  readonly imageBytes: number;
  /** Images per dispatch (one bind group range); larger batches are split into several dispatches. */
  readonly imagesPerDispatch: number;
  readonly rows: Fft2dPassConfig;
  readonly cols: Fft2dPassConfig;
  /** Counters of GPU objects created by this plan (pipelines and buffers only at creation). */
  readonly stats: Readonly<Fft2dStats>;
  /**
   * Records the in-place 2-D FFT of `count` consecutive M×M complex images starting at
   * `byteOffset` (a multiple of minStorageBufferOffsetAlignment, 256 by default) of `buffer`
   * (usage STORAGE). `inverse` includes the 1/M² normalisation. Forward: row pass then column
   * pass; inverse: column pass then row pass (the 1/M² scale sits in the inverse's row pass).
   */
  encode(pass: GPUComputePassEncoder, buffer: GPUBuffer, byteOffset: number, count: number, inverse: boolean): void;
  /** Number of dispatches `encode` records for `count` images (2 per chunk). */
  dispatchCount(count: number): number;
  /** Frees the twiddle buffer and forgets cached bind groups. */
  destroy(): void;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

function floorPow2(n: number): number {
  return n < 1 ? 0 : 2 ** Math.floor(Math.log2(n));
}

interface PlanSetup {
  size: FftSize;
  rows: Fft2dPassConfig;
  cols: Fft2dPassConfig;
  imagesPerDispatch: number;
  label: string;
}

function passConfig(
  lim: Record<PlanLimit, number>,
  M: number,
  perThread: number,
  wantLines: number | undefined,
  defaultCap: number,
  which: string,
): Fft2dPassConfig {
  const maxInv = Math.min(lim.maxComputeInvocationsPerWorkgroup, lim.maxComputeWorkgroupSizeX);
  const maxWs = lim.maxComputeWorkgroupStorageSize;
  const T = M / perThread;
  const radices = fftRadices(M, perThread);
  const rowBytes = M * 8;
  const needsShared = radices.length > 1;
  const maxLines = Math.min(
    floorPow2(maxInv / T),
    needsShared ? floorPow2(maxWs / rowBytes) : M,
    M & -M, // lines per workgroup divide M (M = 3·2^k: at most 2^k)
  );
  if (maxLines < 1) {
    throw new ShineError(
      `FFT ${M}×${M}: the device allows ${maxInv} invocations and ${maxWs} bytes of workgroup storage per workgroup; ` +
        `one ${M}-point line needs ${T} invocations and ${rowBytes} bytes (try a larger perThread)`,
    );
  }
  let lines: number;
  if (wantLines !== undefined) {
    if (!isPow2(wantLines) || wantLines > maxLines) {
      throw new ShineError(`FFT ${M}×${M}: ${which} = ${wantLines} must be a power of two ≤ ${maxLines} on this device`);
    }
    lines = wantLines;
  } else {
    lines = Math.min(maxLines, defaultCap);
  }
  return {
    perThread,
    lines,
    radices,
    workgroupSize: lines * T,
    workgroupStorageBytes: needsShared ? lines * rowBytes : 0,
  };
}

function setup(device: GPUDevice, size: number, opts: Fft2dOptions): PlanSetup {
  if (!(FFT_SIZES as readonly number[]).includes(size)) {
    throw new ShineError(`FFT size ${size} is not supported: the GPU FFT handles ${FFT_SIZES.join(', ')} (M×M images)`);
  }
  const M = size as FftSize;
  const mixed = M % 3 === 0;
  const perThread = opts.perThread ?? (mixed ? 24 : M <= 64 ? 8 : 16);
  const allowed = mixed ? [12, 24, 48] : [4, 8, 16, 32, 64];
  if (!allowed.includes(perThread) || perThread > M || M % perThread !== 0) {
    throw new ShineError(`FFT ${M}×${M}: perThread = ${perThread} must be one of ${allowed.join(', ')} (dividing M)`);
  }
  const lim = planLimits(device, opts.limits);
  const rows = passConfig(lim, M, perThread, opts.rowLines, 8, 'rowLines');
  const cols = passConfig(lim, M, perThread, opts.colLines, 16, 'colLines');
  const imageBytes = M * M * 8;
  let imagesPerDispatch = Math.min(
    lim.maxComputeWorkgroupsPerDimension,
    Math.floor(lim.maxStorageBufferBindingSize / imageBytes),
  );
  if (opts.maxImagesPerDispatch !== undefined) {
    if (!Number.isInteger(opts.maxImagesPerDispatch) || opts.maxImagesPerDispatch < 1) {
      throw new ShineError(`FFT: maxImagesPerDispatch = ${opts.maxImagesPerDispatch} must be a positive integer`);
    }
    imagesPerDispatch = Math.min(imagesPerDispatch, opts.maxImagesPerDispatch);
  }
  if (imagesPerDispatch < 1) {
    throw new ShineError(
      `FFT ${M}×${M}: one image (${imageBytes} bytes) exceeds this device's maxStorageBufferBindingSize (${lim.maxStorageBufferBindingSize})`,
    );
  }
  return { size: M, rows, cols, imagesPerDispatch, label: opts.label ?? `fft2d-${M}` };
}

/** One pass's kernel; the inverse's row pass (its last) carries the 1/M² scale. */
function kernelFor(s: PlanSetup, columns: boolean, inverse: boolean) {
  const c = columns ? s.cols : s.rows;
  return fftPassKernel({
    name: `${s.label}-${columns ? 'cols' : 'rows'}-${inverse ? 'inv' : 'fwd'}`,
    size: s.size,
    perThread: c.perThread,
    lines: c.lines,
    radices: c.radices,
    columns,
    inverse,
    scale: inverse && !columns ? 1 / (s.size * s.size) : 1,
  });
}

/** Twiddles e^{−2πi m/M}, m < M, computed in float64 and rounded once to f32. */
export function fftTwiddles(M: number): Float32Array {
  const tw = new Float32Array(2 * M);
  for (let m = 0; m < M; m++) {
    // float64 cos/sin (error ~1e-16) rounded once to f32.
    const ang = (-2 * Math.PI * m) / M;
    tw[2 * m] = Math.cos(ang);
    tw[2 * m + 1] = Math.sin(ang);
  }
  // Exactly representable values: 0, ±1 at quarter turns (cos(π/2) ≠ 0 in float64).
  for (let m = 0; m < M; m += M / 4) {
    const q = (4 * m) / M;
    tw[2 * m] = [1, 0, -1, 0][q];
    tw[2 * m + 1] = [0, -1, 0, 1][q];
  }
  return tw;
}

interface Prepared {
  s: PlanSetup;
  stats: Fft2dStats;
  twBuffer: GPUBuffer;
  bgl: GPUBindGroupLayout;
  /** The four passes share their bindings (data, tw), hence one layout. */
  kernel: Kernel<'data' | 'tw'>;
  descs: GPUComputePipelineDescriptor[];
}

/** Everything but the pipelines: twiddle buffer, layouts, shader modules. */
function prepare(device: GPUDevice, size: number, opts: Fft2dOptions): Prepared {
  const s = setup(device, size, opts);
  const stats: Fft2dStats = { pipelinesCreated: 0, buffersCreated: 0, bindGroupsCreated: 0 };
  const tw = fftTwiddles(s.size);
  const twBuffer = device.createBuffer({
    label: `${s.label}-twiddles`,
    size: tw.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    mappedAtCreation: true,
  });
  new Float32Array(twBuffer.getMappedRange()).set(tw);
  twBuffer.unmap();
  stats.buffersCreated++;
  // Order: rows fwd, cols fwd, rows inv, cols inv.
  const variants: Array<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];
  const kernels = variants.map(([columns, inverse]) => kernelFor(s, columns, inverse));
  const bgl = kernelBindGroupLayout(device, kernels[0]);
  const layout = device.createPipelineLayout({ label: `${s.label}-layout`, bindGroupLayouts: [bgl] });
  const descs = kernels.map((k) => {
    const module = device.createShaderModule({ label: k.name, code: k.code });
    return { label: k.name, layout, compute: { module, entryPoint: 'main' } };
  });
  return { s, stats, twBuffer, bgl, kernel: kernels[0], descs };
}

function assemble(device: GPUDevice, prep: Prepared, pipelines: GPUComputePipeline[]): Fft2dPlan {
  const { s, stats, twBuffer, bgl, kernel } = prep;
  const [rowF, colF, rowI, colI] = pipelines;
  const M = s.size;
  const imageBytes = M * M * 8;
  const cache = new WeakMap<GPUBuffer, Map<number, GPUBindGroup>>();
  const align = device.limits.minStorageBufferOffsetAlignment;
  const chunkBytes = s.imagesPerDispatch * imageBytes;

  const bindGroup = (buffer: GPUBuffer, offset: number): GPUBindGroup => {
    let m = cache.get(buffer);
    if (!m) {
      m = new Map();
      cache.set(buffer, m);
    }
    let bg = m.get(offset);
    if (!bg) {
      // Bound range: up to one full chunk of whole images, whatever count a later encode asks for.
      const fit = Math.floor((buffer.size - offset) / imageBytes) * imageBytes;
      bg = bindKernel(device, kernel, bgl, { data: { buffer, offset, size: Math.min(chunkBytes, fit) }, tw: twBuffer }, `${s.label}-bg@${offset}`);
      stats.bindGroupsCreated++;
      m.set(offset, bg);
    }
    return bg;
  };

  const groupsRows = M / s.rows.lines;
  const groupsCols = M / s.cols.lines;

  return {
    size: M,
    imageBytes,
    imagesPerDispatch: s.imagesPerDispatch,
    rows: s.rows,
    cols: s.cols,
    stats,
    dispatchCount(count: number) {
      return 2 * Math.ceil(count / s.imagesPerDispatch);
    },
    encode(pass, buffer, byteOffset, count, inverse) {
      if (!Number.isInteger(count) || count < 0) throw new ShineError(`FFT ${M}×${M}: count = ${count} must be a non-negative integer`);
      if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset % align !== 0) {
        throw new ShineError(`FFT ${M}×${M}: byteOffset = ${byteOffset} must be a non-negative multiple of ${align}`);
      }
      if (count === 0) return;
      const name = buffer.label ? ` '${buffer.label}'` : '';
      if ((buffer.usage & GPUBufferUsage.STORAGE) === 0) {
        throw new ShineError(`FFT ${M}×${M}: buffer${name} lacks STORAGE usage`);
      }
      const end = byteOffset + count * imageBytes;
      if (end > buffer.size) {
        throw new ShineError(`FFT ${M}×${M}: ${count} images from byte ${byteOffset} need ${end} bytes but buffer${name} has ${buffer.size}`);
      }
      const rowP = inverse ? rowI : rowF;
      const colP = inverse ? colI : colF;
      for (let first = 0; first < count; first += s.imagesPerDispatch) {
        const n = Math.min(s.imagesPerDispatch, count - first);
        pass.setBindGroup(0, bindGroup(buffer, byteOffset + first * imageBytes));
        if (inverse) {
          pass.setPipeline(colP);
          pass.dispatchWorkgroups(groupsCols, n);
        }
        pass.setPipeline(rowP);
        pass.dispatchWorkgroups(groupsRows, n);
        if (!inverse) {
          pass.setPipeline(colP);
          pass.dispatchWorkgroups(groupsCols, n);
        }
      }
    },
    destroy() {
      twBuffer.destroy();
    },
  };
}

/**
 * Creates the FFT plan for M×M images (M ∈ FFT_SIZES), compiling its four pipelines with
 * createComputePipelineAsync: a compile error rejects, and leaves no buffer behind.
 */
export async function createFft2dAsync(device: GPUDevice, size: number, opts: Fft2dOptions = {}): Promise<Fft2dPlan> {
  const prep = prepare(device, size, opts);
  let pipelines: GPUComputePipeline[];
  try {
    pipelines = await Promise.all(prep.descs.map((d) => device.createComputePipelineAsync(d)));
  } catch (e) {
    prep.twBuffer.destroy(); // a rejected pipeline leaves no buffer behind
    throw e;
  }
  prep.stats.pipelinesCreated += pipelines.length;
  return assemble(device, prep, pipelines);
}
