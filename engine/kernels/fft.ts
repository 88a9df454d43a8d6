/**
 * Batched 2-D complex FFT on the GPU, sizes 64, 128, 256 and 512, numpy conventions:
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
 * bind group the first time it sees a (buffer, offset) pair, and caches it.
 */
import { fftPassShader, fftRadices, type FftPassShaderOptions } from '../../shaders/fft.wgsl.ts';
import { ShineError } from '../errors.ts';

export const FFT_SIZES = [64, 128, 256, 512] as const;
export type FftSize = (typeof FFT_SIZES)[number];

export interface Fft2dOptions {
  /** Complex values per invocation (4, 8 or 16). Default chosen per size. */
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
  /**
   * A band of rows [start, start + size) (e.g. a stamp inside its zero-padded FFT grid). With it the
   * plan also compiles pruned variants, used by `encode(…, 'window')`: a forward transform whose
   * input is zero outside these rows skips the zero rows' row transforms, and an inverse transform
   * whose output is needed only in these rows transforms only them in its last pass. Each saves
   * a quarter of the memory traffic when size = M/2.
   */
  window?: { start: number; size: number };
  /** Twiddle evaluation, see FftPassShaderOptions.twiddles. Default 'pow2' (same accuracy in the tests, fewer reads). */
  twiddles?: 'table' | 'pow2';
  label?: string;
}

/**
 * 'full': the whole M×M transform. 'window' (plan created with `window`): forward assumes the
 * input is zero outside the window's rows; inverse is exact only inside the window's rows (the
 * other rows are left holding a partial transform).
 */
export type FftMode = 'full' | 'window';

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
  /** The row window of the pruned variants, if the plan has them. */
  readonly window: { start: number; size: number; lines: number } | null;
  /** Counters of GPU objects created by this plan (pipelines and buffers only at creation). */
  readonly stats: Readonly<Fft2dStats>;
  /**
   * Records the in-place 2-D FFT of `count` consecutive M×M complex images starting at
   * `byteOffset` (a multiple of minStorageBufferOffsetAlignment, 256 by default) of `buffer`
   * (usage STORAGE). `inverse` includes the 1/M² normalisation. Forward: row pass then column
   * pass; inverse: column pass then row pass (so that 'window' can prune the last pass).
   */
  encode(pass: GPUComputePassEncoder, buffer: GPUBuffer, byteOffset: number, count: number, inverse: boolean, mode?: FftMode): void;
  /**
   * For fused kernels built by the caller (see FftPassShaderOptions.hooks): group-0 layout
   * (binding 0 = data, binding 1 = twiddles), the WGSL of one pass with this plan's configuration,
   * and the workgroup count in x of its dispatch (y = images, at most imagesPerDispatch). The
   * inverse's 1/M² scale sits in its row pass (inverse = column pass, then row pass).
   */
  readonly bindGroupLayout: GPUBindGroupLayout;
  /** The cached group-0 bind group `encode` uses for images from `byteOffset` on (≤ imagesPerDispatch of them). */
  bindGroup(buffer: GPUBuffer, byteOffset: number): GPUBindGroup;
  passShader(p: { columns: boolean; inverse: boolean; windowed?: boolean; hooks?: FftPassShaderOptions['hooks'] }): string;
  passGroups(columns: boolean, windowed?: boolean): number;
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
  window: { start: number; size: number; lines: number } | null;
  twiddles: 'table' | 'pow2';
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
    M,
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
  const perThread = opts.perThread ?? (M <= 64 ? 8 : 16);
  if (![4, 8, 16, 32, 64].includes(perThread) || perThread > M) {
    throw new ShineError(`FFT ${M}×${M}: perThread = ${perThread} must be 4, 8, 16, 32 or 64 (≤ M)`);
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
  let window: PlanSetup['window'] = null;
  if (opts.window) {
    const { start, size: n } = opts.window;
    if (!Number.isInteger(start) || !Number.isInteger(n) || start < 0 || n < 1 || start + n > M) {
      throw new ShineError(`FFT ${M}×${M}: window rows [${start}, ${start} + ${n}) must be integers inside [0, ${M})`);
    }
    // Lines per workgroup must divide both start and size.
    let lines = rows.lines;
    while (start % lines !== 0 || n % lines !== 0) lines >>= 1;
    window = { start, size: n, lines };
  }
  return { size: M, rows, cols, window, twiddles: opts.twiddles ?? 'pow2', imagesPerDispatch, label: opts.label ?? `fft2d-${M}` };
}

/** One pass's shader. Rows: optionally only the window's rows; inverse rows carry the 1/M² scale. */
function shaderFor(s: PlanSetup, columns: boolean, inverse: boolean, windowed = false, hooks?: FftPassShaderOptions['hooks']): string {
  const c = columns ? s.cols : s.rows;
  const win = windowed ? s.window! : null;
  return fftPassShader({
    size: s.size,
    perThread: c.perThread,
    lines: win ? win.lines : c.lines,
    radices: c.radices,
    columns,
    inverse,
    scale: inverse && !columns ? 1 / (s.size * s.size) : 1,
    lineOffset: win ? win.start : 0,
    twiddles: s.twiddles,
    hooks,
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
  const bgl = device.createBindGroupLayout({
    label: `${s.label}-bgl`,
    entries: [
      { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
      { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } },
    ],
  });
  const layout = device.createPipelineLayout({ label: `${s.label}-layout`, bindGroupLayouts: [bgl] });
  // Order: rows fwd, cols fwd, rows inv, cols inv [, rows fwd window, rows inv window].
  const variants: Array<[boolean, boolean, boolean]> = [[false, false, false], [true, false, false], [false, true, false], [true, true, false]];
  if (s.window) variants.push([false, false, true], [false, true, true]);
  const descs = variants.map(([columns, inverse, windowed]) => {
    const name = `${s.label}-${columns ? 'cols' : 'rows'}-${inverse ? 'inv' : 'fwd'}${windowed ? '-window' : ''}`;
    const module = device.createShaderModule({ label: name, code: shaderFor(s, columns, inverse, windowed) });
    return { label: name, layout, compute: { module, entryPoint: 'main' } };
  });
  return { s, stats, twBuffer, bgl, descs };
}

function assemble(device: GPUDevice, prep: Prepared, pipelines: GPUComputePipeline[]): Fft2dPlan {
  const { s, stats, twBuffer, bgl } = prep;
  const [rowF, colF, rowI, colI, rowFw, rowIw] = pipelines;
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
      bg = device.createBindGroup({
        label: `${s.label}-bg@${offset}`,
        layout: bgl,
        entries: [
          { binding: 0, resource: { buffer, offset, size: Math.min(chunkBytes, fit) } },
          { binding: 1, resource: { buffer: twBuffer } },
        ],
      });
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
    window: s.window,
    stats,
    bindGroupLayout: bgl,
    bindGroup(buffer, byteOffset) {
      if (byteOffset % align !== 0) throw new ShineError(`FFT ${M}×${M}: byteOffset = ${byteOffset} must be a multiple of ${align}`);
      return bindGroup(buffer, byteOffset);
    },
    passShader({ columns, inverse, windowed = false, hooks }) {
      if (windowed && (columns || !s.window)) throw new ShineError(`FFT ${M}×${M}: only the row pass of a plan with a window has a windowed variant`);
      return shaderFor(s, columns, inverse, windowed, hooks);
    },
    passGroups(columns, windowed = false) {
      if (columns) return groupsCols;
      return windowed && s.window ? s.window.size / s.window.lines : groupsRows;
    },
    dispatchCount(count: number) {
      return 2 * Math.ceil(count / s.imagesPerDispatch);
    },
    encode(pass, buffer, byteOffset, count, inverse, mode = 'full') {
      if (mode !== 'full' && mode !== 'window') throw new ShineError(`FFT ${M}×${M}: mode '${mode}' must be 'full' or 'window'`);
      if (mode === 'window' && !s.window) throw new ShineError(`FFT ${M}×${M}: mode 'window' needs a plan created with the window option`);
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
      const win = mode === 'window';
      const rowP = win ? (inverse ? rowIw : rowFw) : inverse ? rowI : rowF;
      const rowGroups = win ? s.window!.size / s.window!.lines : groupsRows;
      const colP = inverse ? colI : colF;
      for (let first = 0; first < count; first += s.imagesPerDispatch) {
        const n = Math.min(s.imagesPerDispatch, count - first);
        pass.setBindGroup(0, bindGroup(buffer, byteOffset + first * imageBytes));
        if (inverse) {
          pass.setPipeline(colP);
          pass.dispatchWorkgroups(groupsCols, n);
        }
        pass.setPipeline(rowP);
        pass.dispatchWorkgroups(rowGroups, n);
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
 * Creates the FFT plan for M×M images (M ∈ {64, 128, 256, 512}). Pipelines are compiled
 * synchronously (createComputePipeline); a compile error surfaces as a device error — use
 * createFft2dAsync to get it as a rejection.
 */
export function createFft2d(device: GPUDevice, size: number, opts: Fft2dOptions = {}): Fft2dPlan {
  const prep = prepare(device, size, opts);
  const pipelines = prep.descs.map((d) => device.createComputePipeline(d));
  prep.stats.pipelinesCreated += pipelines.length;
  return assemble(device, prep, pipelines);
}

/** Same as createFft2d, compiling with createComputePipelineAsync (rejects on a compile error). */
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

/**
 * Micro-benchmark: median wall time (ms) of one submit holding the 2-D FFT (alternately forward and inverse) of `count`
 * M×M images (plan created and warmed up beforehand), over `repeats` runs. Includes the submit
 * and the wait for completion (onSubmittedWorkDone), as the engine would see it. `mode` 'window'
 * benchmarks the pruned variants (window rows [M/4, 3M/4) unless opts.window says otherwise).
 */
export async function benchFft(
  device: GPUDevice,
  M: number,
  count: number,
  repeats: number,
  opts: Fft2dOptions = {},
  mode: FftMode = 'full',
): Promise<number> {
  if (mode === 'window' && !opts.window) opts = { ...opts, window: { start: M / 4, size: M / 2 } };
  const plan = await createFft2dAsync(device, M, opts);
  const bytes = count * plan.imageBytes;
  const buf = device.createBuffer({ label: 'fft-bench', size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  try {
    // Small random values (the data do not change the timing; avoid overflow over repeats by alternating directions).
    const chunk = new Float32Array(Math.min(bytes, 1 << 22) / 4);
    let seed = 12345;
    for (let i = 0; i < chunk.length; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      chunk[i] = seed / 4294967296 - 0.5;
    }
    for (let off = 0; off < bytes; off += chunk.byteLength) {
      device.queue.writeBuffer(buf, off, chunk.buffer, 0, Math.min(chunk.byteLength, bytes - off));
    }
    const once = async (inverse: boolean) => {
      const t0 = performance.now();
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      plan.encode(pass, buf, 0, count, inverse, mode);
      pass.end();
      device.queue.submit([enc.finish()]);
      await device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    };
    await once(false); // warm-up (bind group, driver-side compilation)
    await once(true);
    const times: number[] = [];
    for (let i = 0; i < repeats; i++) times.push(await once(i % 2 === 1));
    times.sort((a, b) => a - b);
    const mid = times.length >> 1;
    return times.length % 2 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
  } finally {
    buf.destroy();
    plan.destroy();
  }
}
