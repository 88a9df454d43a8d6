/**
 * The shear engine: an ExposureSet uploaded once, then `evaluate(params)` → {logL, gradient}
 * and `render(params)` → model images, on any GPUDevice (docs/forward-model.md, docs/architecture.md).
 *
 * Everything is created in `ShearEngine.create`: pipelines, buffers, bind groups, the PSF
 * spectra (q² polyphase FFTs per visible pair, combined into the (2N+1)² alias-order spectra
 * of docs/forward-model.md "Aliasing", kept). Later calls only write the parameters
 * (a few floats per source), record dispatches and read back per-block χ² partial sums and
 * per-pair gradients, which are summed in float64 on the CPU in a fixed order: two runs are
 * bit-identical, and the sums over millions of pixels stay accurate.
 */
import { createFft2dAsync, type Fft2dPlan } from '../fft/fft.ts';
import { aliasOrdersFor, psfOversamplingOf, resolveRenderOptions, validateExposureSet, validateParams } from '../../model/validate.ts';
import { psfOrderTable } from '../../model/psf-spectrum.ts';
import { PSF_CHUNK, psfCombineKernel, psfPolyPlaceKernel, type PsfCombineKernel, type PsfPlaceKernel } from '../psf/psf.wgsl.ts';
import {
  accumulateKernel,
  adjointReduceKernel,
  BATCH,
  BLOCK_H,
  BLOCK_PIXELS,
  BLOCK_W,
  CSR_INFO,
  GRADIENT_RECORDS,
  kspaceRenderKernel,
  PAIR,
  pairSetupKernel,
  phaseEntries,
  profileLayout,
  type ProfileLayout,
  RESID_INFO,
  SOURCE_RECORDS,
  residScatterKernel,
  residualKernel,
} from './render.wgsl.ts';
import type { KernelPipeline } from '../kernel.ts';
import { ShineError } from '../../errors.ts';
import { GpuResources } from '../resources.ts';
import { sharedPasses, type KernelPasses, type KernelTimer } from '../../bench/gpu-timer.ts';
import { BufferUsage, MapModeRead } from '../usage.ts';
import { buildLayout, type BatchLayout, type SceneLayout } from '../../scene/layout.ts';
import { defaultGpuBudget, estimateEngineBytes, formatBytes, GpuOutOfMemoryError, gpuMemoryError, layoutGpuBytes, maxBindingBytes, smallerChoice, type PsfSpectraMode } from '../../scene/memory.ts';
import { replicateSet } from '../../scene/replicate.ts';
import { describeLoss, GpuDeviceLostError, knownLoss, lostDevice, watchDevice } from '../device-lost.ts';
import { allocParams, sourceShear, type ExposureSet, type RenderOptions, type SceneGradient, type SceneParams } from '../../scene/types.ts';
import { fftPad, signedFreq } from '../../model/geometry.ts';
import { spergelHlrOverR0Table } from '../../model/spergel.ts';

export interface EngineOptions extends RenderOptions {
  /** Render invisible pairs too (only to validate the visibility filter). */
  includeInvisible: boolean;
  /** Cap on pairs per batch (tests force several batches with it); memory limits apply anyway. */
  maxPairsPerBatch?: number;
  /** Upper bound on one work buffer (bytes); default: the device's storage-binding limit. */
  maxBatchBytes?: number;
  /**
   * Number of parameter sets evaluated together by `evaluateMany` (MCMC chains, VI particles):
   * the scene is replicated on the GPU (replicate.ts), sharing the PSF spectra. Default 1.
   */
  replicas: number;
  /**
   * GPU memory budget (bytes): a scene whose buffers (estimated before anything is allocated,
   * engine/scene/memory.ts) need more is refused with a SceneError naming the need, its breakdown
   * and this limit. Default: `defaultGpuBudget(device.limits)` (8 × maxBufferSize, at least 4 GiB).
   */
  maxGpuBytes?: number;
  /** Tracker of the engine's GPU buffers (tests pass their own to watch the live bytes). */
  resources?: GpuResources;
  /** Test hook: called at each build step ('buffers', 'images', 'pipelines', 'spectra'); a throw fails the build there. */
  onBuildStep?: (step: string) => void;
  /**
   * PSF spectra kept from the build ('keep', default) or rebuilt per batch at every evaluation
   * ('recompute': only the PSF stamps stay resident; same results bit for bit; docs/plan.md).
   */
  psfSpectra?: PsfSpectraMode;
  /**
   * Called when a GPU out-of-memory error (build or evaluation) made the engine re-plan smaller
   * (smaller batches, then recomputed PSF spectra) and carry on; the message says from what to what.
   */
  onReplan?: (message: string) => void;
  /**
   * A new device when this one is lost (docs/plan.md "A lost device"): the engine rebuilds itself
   * on it — same scene, same plan, so the same results bit for bit — says so through `onReplan`,
   * and repeats the call that failed. Without it a lost device ends the call with a
   * GpuDeviceLostError naming the reason.
   */
  recoverDevice?: (lost: GPUDeviceLostInfo) => Promise<GPUDevice>;
  /** New devices taken before a further loss is an error (default 3: a device that keeps failing is broken). */
  maxDeviceRecoveries?: number;
  /**
   * Test hooks, by GPU call (evaluate, logLikelihood, render; counted from 0): `oomAfterCall(i)`
   * true makes call i report out of memory; `loseDeviceAtCall(i)` true destroys the device just
   * before call i (a real loss: WebGPU then fails every call on it).
   */
  faults?: { oomAfterCall?: (call: number) => boolean; loseDeviceAtCall?: (call: number) => boolean };
}

export interface Evaluation {
  /** −½ Σ w (model − obs)² over the pixels covered by some visible stamp. */
  logL: number;
  gradient: SceneGradient;
  /** Pixels entering the likelihood. */
  nPixels: number;
}

export interface EngineStats {
  /** Rendered (visible) pairs and batches of the scene (one replica). */
  pairs: number;
  batches: number;
  replicas: number;
  fftSizes: number[];
  activeBlocks: number;
  pipelinesCreated: number;
  buffersCreated: number;
  peakGpuBytes: number;
  compileMs: number;
  buildMs: number;
}

const STORAGE = BufferUsage.STORAGE | BufferUsage.COPY_DST | BufferUsage.COPY_SRC;
const UNIFORM = BufferUsage.UNIFORM | BufferUsage.COPY_DST;

/** A compiled kernel of the given family (its bindings by name). */
type Pipe<F extends (...a: never[]) => { bindingNames: readonly string[] }> = KernelPipeline<ReturnType<F>['bindingNames'][number]>;

/** Per FFT size: the FFT plan, the render pipelines, the reusable work buffer and the largest batch's derived values and phase tables. */
interface SizePipelines {
  fft: Fft2dPlan;
  setup: Pipe<typeof pairSetupKernel>;
  derived: GPUBuffer;
  phases: GPUBuffer;
  render: Pipe<typeof kspaceRenderKernel>;
  scatter: Pipe<typeof residScatterKernel>;
  adjoint: Pipe<typeof adjointReduceKernel>;
  accumulate: Pipe<typeof accumulateKernel>;
  work: GPUBuffer;
}

/** The PSF model of the scene, decided once per build. */
interface BuildPlan {
  /** Workgroup size of the per-frequency kernels. */
  wg: number;
  /** PSF samples per pixel, alias orders N, (2N+1)² spectra per pair, PSF stamp side. */
  q: number;
  aliasOrders: number;
  slots: number;
  P: number;
  recompute: boolean;
}

/** Per FFT size, during the build: the PSF pipelines and build-time buffers (freed after the build in keep mode). */
interface PsfBuild {
  place: KernelPipeline<PsfPlaceKernel['bindingNames'][number]>;
  combine: KernelPipeline<PsfCombineKernel['bindingNames'][number]>;
  table: GPUBuffer;
  scratch: GPUBuffer;
  stamps: GPUBuffer | null;
  /** Pairs per chunk: their q² component spectra fit one binding. */
  chunk: number;
}

/** Per quadrant, the buffers the batches' bind groups need. */
interface QuadrantBuffers {
  resid: GPUBuffer;
  blockIndex: GPUBuffer;
  blockXY: GPUBuffer;
}

/** A PSF chunk's uniform record. */
const chunkRecord = (count: number, outBase: number) => new Uint8Array(PSF_CHUNK.packAll([{ count, outBase }]));

/** Recompute mode: one chunk of a batch's PSF spectra (place → FFT → combine). */
interface PsfChunkGpu {
  count: number;
  bgPlace: GPUBindGroup;
  bgCombine: GPUBindGroup;
}

/** Recompute mode, per FFT size: the PSF pipelines and the buffers kept for the evaluations. */
interface PsfPipesGpu {
  place: PsfBuild['place'];
  combine: PsfBuild['combine'];
  scratch: GPUBuffer;
  /** One batch's spectra, shared by every batch of this size (rebuilt before each use). */
  spectra: GPUBuffer;
}

interface BatchGpu {
  m: number;
  quadrant: number;
  count: number;
  nTouched: number;
  psfSpec: GPUBuffer;
  /** Recompute mode: the chunks that rebuild `psfSpec` for this batch; null when kept. */
  psfChunks: PsfChunkGpu[] | null;
  bgSetup: GPUBindGroup;
  bgRender: GPUBindGroup;
  bgAccumulate: GPUBindGroup | null;
  bgScatter: GPUBindGroup;
  bgAdjoint: GPUBindGroup;
}

interface QuadrantGpu {
  nActive: number;
  model: GPUBuffer;
  partial: GPUBuffer;
  bgResidual: GPUBindGroup | null;
}

function dispatch2d(pass: GPUComputePassEncoder, n: number): void {
  if (n <= 65535) pass.dispatchWorkgroups(n);
  else pass.dispatchWorkgroups(65535, Math.ceil(n / 65535));
}

export class ShearEngine {
  /** The scene (one replica). */
  readonly set: ExposureSet;
  readonly options: EngineOptions;
  /** Layout of the replicated scene (the scene's own layout when replicas = 1). */
  readonly layout: SceneLayout;
  /** Quadrants, sources, rendered pairs and batches per replica. */
  private readonly perReplica: { quadrants: number; sources: number; pairs: number; batches: number };
  private readonly res: GpuResources;
  private readonly device: GPUDevice;
  private sizes = new Map<number, SizePipelines>();
  private psfRecompute = new Map<number, PsfPipesGpu>();
  private psfQ = 1;
  private psfSlots = 1;
  private batches: BatchGpu[] = [];
  private quads: QuadrantGpu[] = [];
  private residual!: Pipe<typeof residualKernel>;
  private srcBuf!: GPUBuffer;
  private gradBuf!: GPUBuffer;
  private readGrad!: GPUBuffer;
  private readPartial!: GPUBuffer;
  /** The model read-back of `render` (made by the build, like every buffer). */
  private readModel!: GPUBuffer;
  private readonly srcHost: Float32Array;
  /** GPU record sizes of the galaxy profile (source parameters, derived values, gradients per pair). */
  private readonly prof: ProfileLayout;
  private buildMs = 0;
  private partialOffsets: number[] = [];
  private totalActive = 0;
  private busy = false;
  /** GPU calls made (the `faults` test hook counts them). */
  private calls = 0;
  /** Re-plans after out-of-memory errors and rebuilds after a lost device, one message each (docs/plan.md). */
  private replanLog: string[] = [];
  /** New devices taken after losses so far. */
  private recoveries = 0;

  /** FFT plans made so far (destroyed with the engine, also when the build fails half-way). */
  private ffts: Fft2dPlan[] = [];

  private constructor(device: GPUDevice, set: ExposureSet, options: EngineOptions, layout: SceneLayout) {
    this.device = device;
    this.set = set;
    this.options = options;
    this.layout = layout;
    this.res = options.resources ?? new GpuResources(device);
    const k = options.replicas;
    this.perReplica = { quadrants: set.quadrants.length, sources: set.sources.length, pairs: layout.pairs.length / k, batches: layout.batches.length / k };
    if (!Number.isInteger(this.perReplica.pairs) || !Number.isInteger(this.perReplica.batches)) throw new Error('ShearEngine: replicated layout is not K identical copies');
    this.prof = profileLayout(options.profile);
    this.srcHost = new Float32Array(Math.max(1, k * set.sources.length) * 4 * this.prof.srcVecs);
  }

  /** Number of parameter sets `evaluateMany` takes at once. */
  get replicas(): number {
    return this.options.replicas;
  }

  /** The device the engine runs on now (a new one after a lost device). */
  get activeDevice(): GPUDevice {
    return this.device;
  }

  /** What the out-of-memory fallback did so far (one line per re-plan). */
  get replans(): readonly string[] {
    return this.replanLog;
  }

  /**
   * Validates the scene, then uploads it and builds every pipeline and buffer. A GPU
   * out-of-memory error during the build re-plans smaller (smallerChoice: smaller batches, then
   * recomputed PSF spectra — the same results bit for bit), says so through `onReplan`, and builds
   * again; when nothing smaller is left the error is reported.
   */
  static async create(deviceIn: GPUDevice, set: ExposureSet, opts: Partial<EngineOptions> = {}): Promise<ShearEngine> {
    let o = opts;
    let device = deviceIn;
    const log: string[] = [];
    let recoveries = 0;
    for (;;) {
      watchDevice(device);
      try {
        const eng = await ShearEngine.createOnce(device, set, o);
        // WebGPU queues the build's work without failing on a lost device: built on one, start again
        const lostInBuild = knownLoss(device);
        if (lostInBuild) {
          eng.destroy();
          device = await ShearEngine.replacementDevice(o, lostInBuild, recoveries++, 'building the engine', log);
          o.resources?.rebind(device);
          continue;
        }
        eng.replanLog = [...log, ...eng.replanLog];
        eng.recoveries = recoveries;
        return eng;
      } catch (e) {
        if (!(e instanceof GpuOutOfMemoryError)) {
          const lost = await lostDevice(device, e);
          if (!lost) throw e;
          device = await ShearEngine.replacementDevice(o, lost, recoveries++, 'building the engine', log);
          o.resources?.rebind(device);
          continue;
        }
        const msg = ShearEngine.replanMessage(device, set, o, e, 'building the engine');
        o.onReplan?.(msg.text);
        log.push(msg.text);
        o = { ...o, ...msg.next };
      }
    }
  }

  /**
   * A new device after `lost` (the `recoveries`-th so far), from the `recoverDevice` option; the
   * line that says so goes to `onReplan` and `log`. Throws a GpuDeviceLostError when there is no
   * `recoverDevice` or the device was already replaced `maxDeviceRecoveries` times.
   */
  private static async replacementDevice(o: Partial<EngineOptions>, lost: GPUDeviceLostInfo, recoveries: number, when: string, log: string[]): Promise<GPUDevice> {
    const why = `${describeLoss(lost)} while ${when}`;
    if (!o.recoverDevice) throw new GpuDeviceLostError(`${why}: no result was produced; run again (a re-run resumes)`);
    const max = o.maxDeviceRecoveries ?? 3;
    if (recoveries >= max) throw new GpuDeviceLostError(`${why}, after ${recoveries} new device(s) already: giving up (the GPU looks unreliable)`);
    const device = await o.recoverDevice(lost);
    watchDevice(device);
    const text = `${why}: rebuilt the engine on a new device (${recoveries + 1} of at most ${max}); the results do not change`;
    o.onReplan?.(text);
    log.push(text);
    return device;
  }

  /** The next smaller choice after an out-of-memory error, and the line that says so; throws when there is none. */
  private static replanMessage(device: GPUDevice, set: ExposureSet, o: Partial<EngineOptions>, e: GpuOutOfMemoryError, when: string): { text: string; next: Pick<EngineOptions, 'psfSpectra' | 'maxPairsPerBatch'> } {
    const failed = estimateEngineBytes(set, o, device.limits);
    const psf = o.psfSpectra ?? 'keep';
    const largest = (e as GpuOutOfMemoryError & { largestBatch?: number }).largestBatch ?? o.maxPairsPerBatch ?? 2;
    const next = smallerChoice(set, o, device.limits, { psfSpectra: psf, maxPairsPerBatch: o.maxPairsPerBatch, largestBatch: largest }, failed.peak);
    const what = (p: string, b: number | undefined) => `PSF spectra ${p === 'keep' ? 'kept' : 'recomputed'}, ${b ?? largest} pairs per batch at most`;
    if (!next) throw new GpuOutOfMemoryError(`GPU out of memory while ${when} (${e.message}) with the smallest plan (${what(psf, largest)}, ${formatBytes(failed.peak)}): nothing smaller to try`);
    return {
      text: `GPU out of memory while ${when} (${e.message}): re-planned from ${what(psf, largest)} (${formatBytes(failed.peak)}) to ${what(next.psfSpectra, next.maxPairsPerBatch)} (${formatBytes(next.peak)}); the results do not change`,
      next: { psfSpectra: next.psfSpectra, maxPairsPerBatch: next.maxPairsPerBatch },
    };
  }

  private static async createOnce(device: GPUDevice, set: ExposureSet, opts: Partial<EngineOptions> = {}): Promise<ShearEngine> {
    const t0 = performance.now();
    const render = resolveRenderOptions(opts);
    validateExposureSet(set, render);
    const replicas = opts.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1) throw new RangeError(`ShearEngine: replicas must be a positive integer, got ${replicas}`);
    const options: EngineOptions = {
      ...render,
      includeInvisible: opts.includeInvisible ?? false,
      maxPairsPerBatch: opts.maxPairsPerBatch,
      maxBatchBytes: opts.maxBatchBytes,
      replicas,
      maxGpuBytes: opts.maxGpuBytes,
      resources: opts.resources,
      onBuildStep: opts.onBuildStep,
      psfSpectra: opts.psfSpectra ?? 'keep',
      onReplan: opts.onReplan,
      recoverDevice: opts.recoverDevice,
      maxDeviceRecoveries: opts.maxDeviceRecoveries,
      faults: opts.faults,
    };
    if (options.psfSpectra !== 'keep' && options.psfSpectra !== 'recompute') throw new RangeError(`ShearEngine: psfSpectra must be 'keep' or 'recompute', got '${options.psfSpectra}'`);
    const maxBinding = maxBindingBytes(device.limits, options.maxBatchBytes);
    const rep = replicateSet(set, replicas);
    const layout = buildLayout(rep, render, { maxBindingBytes: maxBinding, maxPairsPerBatch: options.maxPairsPerBatch }, options.includeInvisible);
    // GPU memory planned before anything is allocated (issue 17 item 10)
    const need = layoutGpuBytes(layout, rep, options, { maxBindingBytes: maxBinding, offsetAlignment: device.limits.minStorageBufferOffsetAlignment });
    const budget = options.maxGpuBytes ?? defaultGpuBudget(device.limits);
    if (need.peak > budget) {
      const what = `the scene (${set.sources.length} sources, ${set.quadrants.length} quadrants, ${layout.pairs.length} rendered pairs${replicas > 1 ? ` over ${replicas} replicas` : ''})`;
      throw gpuMemoryError(need, budget, what);
    }
    const eng = new ShearEngine(device, set, options, layout);
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    let failure: { error: unknown } | null = null;
    try {
      await eng.build(rep);
    } catch (e) {
      failure = { error: e };
    }
    const oom = await device.popErrorScope().catch(() => null);
    const val = await device.popErrorScope().catch(() => null);
    if (failure || oom || val) {
      // every buffer made so far is destroyed; the error reported is the one that stopped the build
      try {
        eng.destroy();
      } catch {
        // the original error matters more than a failed clean-up
      }
      const largestBatch = Math.max(2, ...layout.batches.map((b) => b.count));
      if (failure) {
        if (failure.error instanceof GpuOutOfMemoryError) Object.assign(failure.error, { largestBatch });
        throw failure.error;
      }
      if (oom) throw Object.assign(new GpuOutOfMemoryError(`the GPU refused the engine's buffers: ${oom.message.split('\n')[0]}`), { largestBatch });
      throw new ShineError(`the GPU refused the engine's buffers or pipelines (validation error): ${val!.message.split('\n')[0]}`);
    }
    eng.buildMs = performance.now() - t0;
    return eng;
  }

  private workgroupSize(): number {
    return Math.min(256, this.device.limits.maxComputeInvocationsPerWorkgroup, this.device.limits.maxComputeWorkgroupSizeX) >= 256 ? 256 : 128;
  }

  /**
   * Builds everything, in the order the memory estimate (memory.ts) follows: the pair table and
   * per-source/per-pair buffers, the quadrants' compact images, the pipelines and work buffers of
   * each FFT size, the batches (PSF spectra, bind groups); then frees the build-time PSF buffers
   * and makes the model read-back, so that evaluate and render allocate nothing.
   */
  private async build(set: ExposureSet): Promise<void> {
    const step = (name: string) => this.options.onBuildStep?.(name);
    const plan = this.psfPlan(set);
    const pairs = this.buildPairTable(set);
    step('buffers');
    const quads = await this.buildQuadrants();
    step('images');
    const psf = await this.buildSizes(plan);
    step('pipelines');
    const chunkUniforms: GPUBuffer[] = [];
    this.layout.batches.forEach((b, bi) => this.buildBatch(set, plan, b, bi, pairs, quads, psf, chunkUniforms));
    await this.device.queue.onSubmittedWorkDone();
    step('spectra');
    // The stamps are in the spectra now; free the build-time buffers (recompute mode keeps them).
    if (!plan.recompute) {
      for (const pp of psf.values()) for (const buf of [pp.table, pp.scratch, pp.stamps!]) this.res.release(buf);
      for (const buf of chunkUniforms) this.res.release(buf);
    }
    // made last, after those are freed: the peak is max(build, build − PSF build buffers + read-back)
    const readBytes = this.quads.slice(0, this.perReplica.quadrants).reduce((s, q) => s + q.nActive, 0) * BLOCK_PIXELS * 4;
    this.readModel = this.res.buffer('read-model', Math.max(4, readBytes), BufferUsage.MAP_READ | BufferUsage.COPY_DST);
  }

  /** PSF model of the scene: oversampling q and alias orders N (docs/forward-model.md "Aliasing"). */
  private psfPlan(set: ExposureSet): BuildPlan {
    const q = psfOversamplingOf(set);
    const aliasOrders = aliasOrdersFor(set, this.options);
    // (2N+1)² spectra per visible pair, from q² polyphase FFTs (engine/gpu/psf/psf.wgsl.ts)
    const slots = (2 * aliasOrders + 1) ** 2;
    this.psfQ = q;
    this.psfSlots = slots;
    return { wg: this.workgroupSize(), q, aliasOrders, slots, P: set.psfSize, recompute: this.options.psfSpectra === 'recompute' };
  }

  /** The static pair table (one Pair record per rendered pair), the source parameters and the per-pair gradients. */
  private buildPairTable(set: ExposureSet): GPUBuffer {
    const { res, layout } = this;
    const P = set.psfSize;
    const records = layout.pairs.map((p, i) => {
      const g = set.pairs[p.pairIndex];
      const [a, b, c, d] = g.jacobian;
      const det = a * d - b * c;
      const pad = fftPad(p.n, p.m);
      // centre on the FFT grid, split into an integer part and a small fraction (f64 → exact)
      const ux = g.x - p.cx + pad;
      const uy = g.y - p.cy + pad;
      const bx = Math.floor(ux);
      const by = Math.floor(uy);
      return { source: p.source, quadrant: p.quadrant, cx: p.cx, cy: p.cy, bx, by, fx: ux - bx, fy: uy - by, jinv: [d / det, -b / det, -c / det, a / det], n: p.n, m: p.m, psfOffset: i * P * P };
    });
    const nPairs = layout.pairs.length;
    const pairBuf = res.bufferWithData('pairs', new Uint8Array(PAIR.packAll(records)), STORAGE);
    this.srcBuf = res.buffer('source-params', this.srcHost.byteLength, STORAGE);
    this.gradBuf = res.buffer('pair-gradients', Math.max(1, nPairs) * this.prof.grads * 4, STORAGE);
    this.readGrad = res.buffer('read-gradients', Math.max(1, nPairs) * this.prof.grads * 4, BufferUsage.MAP_READ | BufferUsage.COPY_DST);
    return pairBuf;
  }

  /** Per quadrant: the compact images (observed pixels and weights, model, residual, block tables) and the residual's bind group. */
  private async buildQuadrants(): Promise<QuadrantBuffers[]> {
    const { res, layout } = this;
    this.residual = await res.kernel(residualKernel({ workgroupSize: this.workgroupSize() }));
    const out: QuadrantBuffers[] = [];
    let off = 0;
    for (const ql of layout.quadrants) {
      const n = Math.max(1, ql.nActive) * BLOCK_PIXELS;
      const obsW = res.bufferWithData('obsW', ql.obsW.length ? ql.obsW : new Float32Array(2), STORAGE);
      const model = res.buffer('model', n * 4, STORAGE);
      const resid = res.buffer('resid', n * 4, STORAGE);
      const partial = res.buffer('partial', Math.max(1, ql.nActive) * 4, STORAGE);
      const info = res.bufferWithData('resid-info', new Uint8Array(RESID_INFO.packAll([{ nActive: ql.nActive }])), UNIFORM);
      const blockIndex = res.bufferWithData('block-index', ql.blockIndex, STORAGE);
      const blockXY = res.bufferWithData('block-xy', ql.blockXY.length ? ql.blockXY : new Uint32Array(2), STORAGE);
      out.push({ resid, blockIndex, blockXY });
      const bgResidual = ql.nActive ? this.residual.bind({ obsW, model, resid, partial, info }) : null;
      this.quads.push({ nActive: ql.nActive, model, partial, bgResidual });
      this.partialOffsets.push(off);
      off += ql.nActive;
    }
    // writeBuffer took its copies: the host ones are not needed again (8 bytes per active-block
    // pixel, 0.4 GiB on the realistic sub-tile: docs/plan.md); nActive keeps their size. Freed
    // after the loop: the replicas of a quadrant share one QuadrantLayout (layout.ts)
    for (const ql of layout.quadrants) ql.obsW = new Float32Array(0);
    this.totalActive = off;
    this.readPartial = res.buffer('read-partials', Math.max(1, off) * 4, BufferUsage.MAP_READ | BufferUsage.COPY_DST);
    return out;
  }

  /**
   * Per FFT size: the FFT plan, the render and PSF pipelines, one reusable work buffer (two pairs
   * per complex FFT slot, see kspaceRenderKernel) and the per-pair derived values and phase
   * tables of the largest batch; the build-time PSF buffers are returned.
   */
  private async buildSizes(plan: BuildPlan): Promise<Map<number, PsfBuild>> {
    const { device, res, layout } = this;
    const { wg, q, aliasOrders, slots, P, recompute } = plan;
    const maxCount = new Map<number, number>();
    for (const b of layout.batches) maxCount.set(b.m, Math.max(maxCount.get(b.m) ?? 0, b.count));
    // PSF spectra: pairs are processed in chunks whose q² component spectra fit one binding
    const maxBinding = maxBindingBytes(device.limits, this.options.maxBatchBytes);
    const psf = new Map<number, PsfBuild>();
    for (const m of layout.fftSizes) {
      const o = { m, workgroupSize: wg, aliasOrders, profile: this.options.profile };
      const po = { m, workgroupSize: wg, psfSize: P, q, orders: aliasOrders };
      // settled one by one: a plan made before another pipeline was rejected is still destroyed
      const fftMade = createFft2dAsync(device, m).then((f) => {
        this.ffts.push(f);
        return f;
      });
      const made = await Promise.allSettled([
        fftMade,
        res.kernel(pairSetupKernel(o)),
        res.kernel(kspaceRenderKernel(o)),
        res.kernel(residScatterKernel(o)),
        res.kernel(adjointReduceKernel(o)),
        res.kernel(accumulateKernel(o)),
        res.kernel(psfPolyPlaceKernel(po)),
        res.kernel(psfCombineKernel(po)),
      ] as const);
      const rejected = made.find((r) => r.status === 'rejected');
      if (rejected) throw (rejected as PromiseRejectedResult).reason;
      const value = <T>(r: PromiseSettledResult<T>) => (r as PromiseFulfilledResult<T>).value;
      const fft = value(made[0]);
      res.pipelinesCreated += fft.stats.pipelinesCreated;
      const cnt = maxCount.get(m)!;
      this.sizes.set(m, {
        fft,
        setup: value(made[1]),
        render: value(made[2]),
        scatter: value(made[3]),
        adjoint: value(made[4]),
        accumulate: value(made[5]),
        work: res.buffer(`work-${m}`, Math.ceil(cnt / 2) * m * m * 8, STORAGE),
        derived: res.buffer(`derived-${m}`, cnt * 16 * this.prof.derivedVecs, STORAGE),
        phases: res.buffer(`phases-${m}`, cnt * phaseEntries(m, aliasOrders) * 8, STORAGE),
      });
      const place = value(made[6]);
      const combine = value(made[7]);
      const chunk = Math.max(1, Math.min(cnt, Math.floor(maxBinding / (q * q * m * m * 8)), Math.floor(65535 / Math.max(q * q, slots))));
      const table = res.bufferWithData(`psf-table-${m}`, psfOrderTable(m, q, aliasOrders, this.options.pixelResponse), STORAGE);
      const scratch = res.buffer(`psf-components-${m}`, chunk * q * q * m * m * 8, STORAGE);
      psf.set(m, {
        place,
        combine,
        table,
        scratch,
        // recompute mode: every batch keeps its own stamps (buildBatch)
        stamps: recompute ? null : res.buffer(`psf-stamps-${m}`, chunk * P * P * 4, STORAGE),
        chunk,
      });
      if (recompute) this.psfRecompute.set(m, { place, combine, scratch, spectra: res.buffer(`psf-spectra-${m}`, cnt * slots * m * m * 8, STORAGE) });
    }
    return psf;
  }

  /** One batch: its uniform, its PSF spectra (computed now, kept; or their stamps, recompute mode) and its bind groups. */
  private buildBatch(set: ExposureSet, plan: BuildPlan, b: BatchLayout, bi: number, pairs: GPUBuffer, quads: QuadrantBuffers[], psf: Map<number, PsfBuild>, chunkUniforms: GPUBuffer[]): void {
    const { res, layout } = this;
    const sp = this.sizes.get(b.m)!;
    const ql = layout.quadrants[b.quadrant];
    const batch = res.bufferWithData('batch', new Uint8Array(BATCH.packAll([{ pairBase: b.pairBase, count: b.count, width: ql.width, height: ql.height, nbx: ql.nbx }])), UNIFORM);
    // replicas r > 0 have the same pairs and PSFs as replica 0's batch: share its spectra
    const twin = bi >= this.perReplica.batches ? this.batches[bi % this.perReplica.batches] : undefined;
    let psfSpec: GPUBuffer;
    let psfChunks: PsfChunkGpu[] | null = null;
    if (twin) {
      if (twin.m !== b.m || twin.count !== b.count) throw new Error('ShearEngine: replica batches differ from replica 0');
      psfSpec = twin.psfSpec;
      psfChunks = twin.psfChunks;
    } else if (plan.recompute) {
      psfSpec = this.psfRecompute.get(b.m)!.spectra;
      psfChunks = this.psfStampChunks(set, plan, b, psf.get(b.m)!);
    } else {
      psfSpec = res.buffer(`psf-spectra-${b.m}`, b.count * plan.slots * b.m * b.m * 8, STORAGE);
      this.computePsfSpectra(set, plan, b, psf.get(b.m)!, psfSpec, chunkUniforms);
    }
    const quad = quads[b.quadrant];
    let bgAccumulate: GPUBindGroup | null = null;
    if (b.touched.length) {
      const csr = new Uint32Array(b.touched.length + b.starts.length + b.entries.length);
      csr.set(b.touched, 0);
      csr.set(b.starts, b.touched.length);
      csr.set(b.entries, b.touched.length + b.starts.length);
      const csrBuf = res.bufferWithData('csr', csr, STORAGE);
      const csrInfo = res.bufferWithData('csr-info', new Uint8Array(CSR_INFO.packAll([{ nTouched: b.touched.length, startOffset: b.touched.length, entriesOffset: b.touched.length + b.starts.length }])), UNIFORM);
      bgAccumulate = sp.accumulate.bind({ pairs, work: sp.work, csr: csrBuf, blockXY: quad.blockXY, model: this.quads[b.quadrant].model, batch, csrInfo });
    }
    this.batches.push({
      m: b.m,
      quadrant: b.quadrant,
      count: b.count,
      nTouched: b.touched.length,
      psfSpec,
      psfChunks,
      bgSetup: sp.setup.bind({ pairs, src: this.srcBuf, derived: sp.derived, phases: sp.phases, batch }),
      bgRender: sp.render.bind({ derived: sp.derived, phases: sp.phases, psfSpec, work: sp.work, batch }),
      bgAccumulate,
      bgScatter: sp.scatter.bind({ pairs, blockIndex: quad.blockIndex, resid: quad.resid, work: sp.work, batch }),
      bgAdjoint: sp.adjoint.bind({ pairs, src: this.srcBuf, psfSpec, work: sp.work, grad: this.gradBuf, batch, phases: sp.phases }),
    });
  }

  /**
   * Keep mode: a batch's PSF spectra, computed now chunk by chunk (place → FFT → combine), one
   * submit per chunk since the stamps buffer is rewritten for the next one.
   */
  private computePsfSpectra(set: ExposureSet, plan: BuildPlan, b: BatchLayout, pp: PsfBuild, psfSpec: GPUBuffer, chunkUniforms: GPUBuffer[]): void {
    const { device, res, layout } = this;
    const { P, q, slots } = plan;
    const sp = this.sizes.get(b.m)!;
    const kGroups = Math.ceil((b.m * b.m) / plan.wg);
    const host = new Float32Array(pp.chunk * P * P);
    for (let l0 = 0; l0 < b.count; l0 += pp.chunk) {
      const c = Math.min(pp.chunk, b.count - l0);
      for (let l = 0; l < c; l++) {
        // an invisible pair rendered only to check the visibility filter may have no PSF: zeros
        const psf = set.pairs[layout.pairs[b.pairBase + l0 + l].pairIndex].psf;
        if (psf) host.set(psf, l * P * P);
        else host.fill(0, l * P * P, (l + 1) * P * P);
      }
      device.queue.writeBuffer(pp.stamps!, 0, host, 0, c * P * P);
      const chunk = res.bufferWithData('psf-chunk', chunkRecord(c, l0), UNIFORM);
      const enc = device.createCommandEncoder({ label: 'psf-spectra' });
      const pass = enc.beginComputePass();
      pass.setPipeline(pp.place.pipeline);
      pass.setBindGroup(0, pp.place.bind({ stamps: pp.stamps!, spec: pp.scratch, chunk }));
      pass.dispatchWorkgroups(kGroups, c * q * q);
      sp.fft.encode(pass, pp.scratch, 0, c * q * q, false);
      pass.setPipeline(pp.combine.pipeline);
      pass.setBindGroup(0, pp.combine.bind({ spec: pp.scratch, table: pp.table, out: psfSpec, chunk }));
      pass.dispatchWorkgroups(kGroups, c * slots);
      pass.end();
      device.queue.submit([enc.finish()]);
      chunkUniforms.push(chunk);
    }
  }

  /**
   * Recompute mode: the batch's PSF stamps stay on the GPU, chunk by chunk at aligned offsets;
   * its spectra are rebuilt into the size's shared buffer by encodePsf before each use.
   */
  private psfStampChunks(set: ExposureSet, plan: BuildPlan, b: BatchLayout, pp: PsfBuild): PsfChunkGpu[] {
    const { device, res, layout } = this;
    const { P } = plan;
    const rc = this.psfRecompute.get(b.m)!;
    const align = device.limits.minStorageBufferOffsetAlignment;
    const chunkBytes = Math.ceil((pp.chunk * P * P * 4) / align) * align;
    const nChunks = Math.ceil(b.count / pp.chunk);
    const host = new Float32Array((nChunks * chunkBytes) / 4);
    for (let l = 0; l < b.count; l++) {
      const psf = set.pairs[layout.pairs[b.pairBase + l].pairIndex].psf;
      if (psf) host.set(psf, (Math.floor(l / pp.chunk) * chunkBytes) / 4 + (l % pp.chunk) * P * P);
    }
    const stamps = res.bufferWithData(`psf-stamps-${b.m}`, host, STORAGE);
    const chunks: PsfChunkGpu[] = [];
    for (let l0 = 0, i = 0; l0 < b.count; l0 += pp.chunk, i++) {
      const c = Math.min(pp.chunk, b.count - l0);
      const chunk = res.bufferWithData('psf-chunk', chunkRecord(c, l0), UNIFORM);
      chunks.push({
        count: c,
        bgPlace: pp.place.bind({ stamps: { buffer: stamps, offset: i * chunkBytes, size: c * P * P * 4 }, spec: pp.scratch, chunk }),
        bgCombine: pp.combine.bind({ spec: pp.scratch, table: pp.table, out: rc.spectra, chunk }),
      });
    }
    return chunks;
  }

  /** Writes the parameters of replicas 0 … n−1 (n = list length) as SOURCE_RECORDS; shear per source. */
  private upload(list: readonly SceneParams[]): void {
    if (list.length < 1 || list.length > this.replicas) throw new RangeError(`ShearEngine: ${list.length} parameter sets for an engine of ${this.replicas} replica(s)`);
    const h = this.srcHost;
    const ns = this.set.sources.length;
    const kind = this.prof.kind;
    // the record's fields in words (SOURCE_RECORDS): written straight into the Float32Array, no object per source
    const sv = SOURCE_RECORDS[kind].size / 4;
    const w = SOURCE_RECORDS.fixed.words;
    const sf = SOURCE_RECORDS.spergel_free.words;
    const bd = SOURCE_RECORDS.bulge_disk.words;
    list.forEach((params, r) => {
      validateParams(this.set, params, this.options.profile);
      for (let s = 0; s < ns; s++) {
        const o = sv * (r * ns + s);
        const [sg1, sg2] = sourceShear(this.set.sources[s], params.g1, params.g2);
        h[o + w.flux] = params.flux[s];
        h[o + w.hlr] = params.hlr[s];
        h[o + w.e1] = params.e1[s];
        h[o + w.e2] = params.e2[s];
        h[o + w.dx] = params.dx[s];
        h[o + w.dy] = params.dy[s];
        h[o + w.g1] = sg1;
        h[o + w.g2] = sg2;
        if (kind === 'spergel_free') {
          // r0 = h / c_ν on the GPU; c_ν and dc/dν from the table (engine/model/spergel.ts)
          const nu = params.nu![s];
          const { c, dc } = spergelHlrOverR0Table(nu);
          h[o + sf.nu] = nu;
          h[o + sf.invC] = 1 / c;
          h[o + sf.dlogC] = dc / c;
          h[o + sf.pad] = 0;
        } else if (kind === 'bulge_disk') {
          h[o + bd.bulgeFrac] = params.bulgeFrac![s];
          h[o + bd.bulgeHlr] = params.bulgeHlr![s];
          h[o + bd.bulgeE1] = params.bulgeE1![s];
          h[o + bd.bulgeE2] = params.bulgeE2![s];
        }
      }
    });
    this.device.queue.writeBuffer(this.srcBuf, 0, h, 0, Math.max(1, list.length * ns) * sv);
  }

  /** Batches of the first n replicas (replica r's batches are a contiguous block). */
  private activeBatches(n: number): BatchGpu[] {
    return this.batches.slice(0, n * this.perReplica.batches);
  }

  private activeQuads(n: number): QuadrantGpu[] {
    return this.quads.slice(0, n * this.perReplica.quadrants);
  }

  /**
   * Recompute mode: rebuilds the batch's PSF spectra into its size's shared buffer (the same
   * place → FFT → combine passes as the build, hence the same values bit for bit).
   */
  private encodePsf(pass: GPUComputePassEncoder, b: BatchGpu): void {
    if (!b.psfChunks) return;
    const rc = this.psfRecompute.get(b.m)!;
    const sp = this.sizes.get(b.m)!;
    const q2 = this.psfQ * this.psfQ;
    const kGroups = Math.ceil((b.m * b.m) / this.workgroupSize());
    for (const c of b.psfChunks) {
      pass.setPipeline(rc.place.pipeline);
      pass.setBindGroup(0, c.bgPlace);
      pass.dispatchWorkgroups(kGroups, c.count * q2);
      sp.fft.encode(pass, rc.scratch, 0, c.count * q2, false);
      pass.setPipeline(rc.combine.pipeline);
      pass.setBindGroup(0, c.bgCombine);
      pass.dispatchWorkgroups(kGroups, c.count * this.psfSlots);
    }
  }

  /**
   * Records one batch's stamps: pair setup, k-space spectra (two pairs per slot), inverse FFT.
   * Kernels record into the passes `kp` gives (one shared pass, or one per kernel when timed:
   * engine/bench/gpu-timer.ts); `bi` names the batch there.
   */
  private encodeStamps(kp: KernelPasses, b: BatchGpu, bi: number): void {
    const sp = this.sizes.get(b.m)!;
    const info = { m: b.m, pairs: b.count };
    if (b.psfChunks) this.encodePsf(kp.pass('psf spectra', bi, info), b);
    const slots = Math.ceil(b.count / 2);
    let pass = kp.pass('setup', bi, info);
    pass.setPipeline(sp.setup.pipeline);
    pass.setBindGroup(0, b.bgSetup);
    pass.dispatchWorkgroups(b.count);
    pass = kp.pass('render', bi, info);
    pass.setPipeline(sp.render.pipeline);
    pass.setBindGroup(0, b.bgRender);
    pass.dispatchWorkgroups(Math.ceil((b.m * b.m) / this.workgroupSize()), slots);
    sp.fft.encode(kp.pass('fft inverse', bi, info), sp.work, 0, slots, true);
  }

  /** Records, for the first n replicas: clear models; per batch render → inverse FFT → gather into the model blocks. */
  private encodeForward(enc: GPUCommandEncoder, n: number, timed?: KernelPasses): void {
    for (const q of this.activeQuads(n)) enc.clearBuffer(q.model);
    const kp = timed ?? sharedPasses(enc, 'forward');
    const wg = this.workgroupSize();
    this.activeBatches(n).forEach((b, bi) => {
      const sp = this.sizes.get(b.m)!;
      this.encodeStamps(kp, b, bi);
      if (b.bgAccumulate) {
        const pass = kp.pass('accumulate', bi, { m: b.m, pairs: b.count, blocks: b.nTouched });
        pass.setPipeline(sp.accumulate.pipeline);
        pass.setBindGroup(0, b.bgAccumulate);
        dispatch2d(pass, b.nTouched);
      }
    });
    this.activeQuads(n).forEach((q, j) => {
      if (!q.bgResidual) return;
      const pass = kp.pass('residual', -1, { quadrant: j, blocks: q.nActive });
      pass.setPipeline(this.residual.pipeline);
      pass.setBindGroup(0, q.bgResidual);
      dispatch2d(pass, Math.ceil(q.nActive / wg));
    });
    kp.end();
  }

  private encodeAdjoint(enc: GPUCommandEncoder, n: number, timed?: KernelPasses): void {
    const kp = timed ?? sharedPasses(enc, 'adjoint');
    const wg = this.workgroupSize();
    this.activeBatches(n).forEach((b, bi) => {
      const sp = this.sizes.get(b.m)!;
      const info = { m: b.m, pairs: b.count };
      if (b.psfChunks) this.encodePsf(kp.pass('psf spectra', bi, info), b);
      let pass = kp.pass('setup', bi, info);
      pass.setPipeline(sp.setup.pipeline);
      pass.setBindGroup(0, b.bgSetup);
      pass.dispatchWorkgroups(b.count);
      const slots = Math.ceil(b.count / 2);
      pass = kp.pass('residual scatter', bi, info);
      pass.setPipeline(sp.scatter.pipeline);
      pass.setBindGroup(0, b.bgScatter);
      pass.dispatchWorkgroups(Math.ceil((b.m * b.m) / wg), slots);
      sp.fft.encode(kp.pass('fft forward', bi, info), sp.work, 0, slots, false);
      pass = kp.pass('adjoint', bi, info);
      pass.setPipeline(sp.adjoint.pipeline);
      pass.setBindGroup(0, b.bgAdjoint);
      pass.dispatchWorkgroups(b.count);
    });
    kp.end();
  }

  private encodeReadPartials(enc: GPUCommandEncoder, n: number): void {
    this.activeQuads(n).forEach((q, j) => {
      if (q.nActive) enc.copyBufferToBuffer(q.partial, 0, this.readPartial, this.partialOffsets[j] * 4, q.nActive * 4);
    });
  }

  /** −½χ² of each of the first n replicas, summed in float64 in a fixed order. */
  private async readLogL(n: number): Promise<number[]> {
    await this.readPartial.mapAsync(MapModeRead);
    const part = new Float32Array(this.readPartial.getMappedRange(), 0, this.totalActive);
    const out: number[] = [];
    const nq = this.perReplica.quadrants;
    for (let r = 0; r < n; r++) {
      const j0 = r * nq;
      const from = this.partialOffsets[j0] ?? 0;
      const to = j0 + nq < this.quads.length ? this.partialOffsets[j0 + nq] : this.totalActive;
      let chi2 = 0;
      for (let i = from; i < to; i++) chi2 += part[i];
      out.push(-0.5 * chi2);
    }
    this.readPartial.unmap();
    return out;
  }

  private nPixels(): number {
    let s = 0;
    for (let j = 0; j < this.perReplica.quadrants; j++) s += this.layout.quadrants[j].nPixels;
    return s;
  }

  /**
   * One GPU call at a time, inside an out-of-memory error scope: a call the GPU reports out of
   * memory (or the `faults` test hook) re-plans the engine smaller in place (replanInPlace) and
   * runs again — its results are discarded, the retry's are those of any plan (bit-identical).
   */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) throw new Error('ShearEngine: one call at a time (await the previous evaluate/render)');
    this.busy = true;
    try {
      for (;;) {
        if (this.options.faults?.loseDeviceAtCall?.(this.calls)) this.device.destroy();
        this.device.pushErrorScope('out-of-memory');
        let result: { value: T } | null = null;
        let error: unknown = null;
        try {
          result = { value: await fn() };
        } catch (e) {
          error = e;
        }
        const oom = await this.device.popErrorScope().catch(() => null);
        const injected = result !== null && (this.options.faults?.oomAfterCall?.(this.calls) ?? false);
        this.calls++;
        if (!oom && !injected && !(error instanceof GpuOutOfMemoryError)) {
          if (result) return result.value;
          const lost = await lostDevice(this.device, error);
          if (!lost) throw error;
          // a lost device: rebuilt on a new one (or a clear error), then the same call again
          await this.recoverInPlace(lost);
          this.busy = true;
          continue;
        }
        const why = oom ? oom.message.split('\n')[0] : injected ? 'reported by a test hook' : (error as Error).message;
        await this.replanInPlace(new GpuOutOfMemoryError(why));
        this.busy = true;
      }
    } finally {
      this.busy = false;
    }
  }

  /** Rebuilds this engine with the next smaller choice (same scene, options and replicas). */
  private async replanInPlace(e: GpuOutOfMemoryError): Promise<void> {
    const largestBatch = Math.max(2, ...this.layout.batches.map((b) => b.count));
    const msg = ShearEngine.replanMessage(this.device, this.set, this.options, Object.assign(e, { largestBatch }), 'evaluating');
    this.options.onReplan?.(msg.text);
    const log = [...this.replanLog, msg.text];
    const calls = this.calls;
    this.destroy();
    const fresh = await ShearEngine.create(this.device, this.set, { ...this.options, ...msg.next });
    // the fresh engine's state replaces this one's (callers keep their reference to this object)
    Object.assign(this, fresh);
    this.replanLog = [...log, ...fresh.replanLog];
    this.calls = calls;
  }

  /** Rebuilds this engine on a new device after `lost` (same scene, options, plan and replicas). */
  private async recoverInPlace(lost: GPUDeviceLostInfo): Promise<void> {
    const log = [...this.replanLog];
    const device = await ShearEngine.replacementDevice(this.options, lost, this.recoveries, 'evaluating', log);
    const calls = this.calls;
    const recoveries = this.recoveries + 1;
    this.destroy();
    this.options.resources?.rebind(device);
    const fresh = await ShearEngine.create(device, this.set, this.options);
    // the fresh engine's state replaces this one's (callers keep their reference to this object)
    Object.assign(this, fresh);
    this.replanLog = [...log, ...fresh.replanLog];
    this.calls = calls;
    this.recoveries = recoveries + fresh.recoveries;
  }

  /** log-likelihood and its exact gradient with respect to every parameter. */
  async evaluate(params: SceneParams): Promise<Evaluation> {
    return (await this.evaluateMany([params]))[0];
  }

  /**
   * log-likelihood and gradient of up to `replicas` parameter sets in one GPU pass (chains or
   * particles as a batch dimension). Each result is bit-identical to `evaluate` of that set.
   */
  evaluateMany(list: readonly SceneParams[]): Promise<Evaluation[]> {
    return this.evaluateWith(list);
  }

  /**
   * `evaluate` with every kernel of every batch in a pass of its own from `timer` (GPU spans,
   * docs/bench.md): the same dispatches in the same order, so the same result bit for bit.
   */
  async evaluateTimed(params: SceneParams, timer: KernelTimer): Promise<Evaluation> {
    return (await this.evaluateWith([params], timer))[0];
  }

  private evaluateWith(list: readonly SceneParams[], timer?: KernelTimer): Promise<Evaluation[]> {
    return this.exclusive(async () => {
      const n = list.length;
      this.upload(list);
      const enc = this.device.createCommandEncoder({ label: 'evaluate' });
      const kp = timer?.begin(enc);
      this.encodeForward(enc, n, kp);
      this.encodeAdjoint(enc, n, kp);
      timer?.resolve(enc);
      this.encodeReadPartials(enc, n);
      const nPairs = n * this.perReplica.pairs;
      const ng = this.prof.grads;
      if (nPairs) enc.copyBufferToBuffer(this.gradBuf, 0, this.readGrad, 0, nPairs * ng * 4);
      this.device.queue.submit([enc.finish()]);
      const [logL] = await Promise.all([this.readLogL(n), this.readGrad.mapAsync(MapModeRead)]);
      const g = new Float32Array(this.readGrad.getMappedRange(), 0, nPairs * ng);
      const kind = this.prof.kind;
      // gradient components in words (GRADIENT_RECORDS)
      const w = GRADIENT_RECORDS.fixed.words;
      const sf = GRADIENT_RECORDS.spergel_free.words;
      const bd = GRADIENT_RECORDS.bulge_disk.words;
      const ns = this.set.sources.length;
      const nPix = this.nPixels();
      const out: Evaluation[] = [];
      for (let r = 0; r < n; r++) {
        const grad = allocParams(ns);
        if (kind === 'spergel_free') grad.nu = new Float64Array(ns);
        if (kind === 'bulge_disk') {
          grad.bulgeFrac = new Float64Array(ns);
          grad.bulgeHlr = new Float64Array(ns);
          grad.bulgeE1 = new Float64Array(ns);
          grad.bulgeE2 = new Float64Array(ns);
        }
        let g1 = 0;
        let g2 = 0;
        // fixed order (pair table order) in float64: deterministic
        const i0 = r * this.perReplica.pairs;
        for (let i = i0; i < i0 + this.perReplica.pairs; i++) {
          const o = i * ng;
          const s = this.layout.pairs[i].source - r * ns;
          grad.flux[s] += g[o + w.flux];
          grad.hlr[s] += g[o + w.hlr];
          grad.e1[s] += g[o + w.e1];
          grad.e2[s] += g[o + w.e2];
          grad.dx[s] += g[o + w.dx];
          grad.dy[s] += g[o + w.dy];
          // a shear-blind source is rendered at g = 0: the shear has no share of its gradient
          if (!this.set.sources[s].shearBlind) {
            g1 += g[o + w.g1];
            g2 += g[o + w.g2];
          }
          if (kind === 'spergel_free') grad.nu![s] += g[o + sf.nu];
          else if (kind === 'bulge_disk') {
            grad.bulgeFrac![s] += g[o + bd.bulgeFrac];
            grad.bulgeHlr![s] += g[o + bd.bulgeHlr];
            grad.bulgeE1![s] += g[o + bd.bulgeE1];
            grad.bulgeE2![s] += g[o + bd.bulgeE2];
          }
        }
        grad.g1 = g1;
        grad.g2 = g2;
        out.push({ logL: logL[r], gradient: grad, nPixels: nPix });
      }
      this.readGrad.unmap();
      return out;
    });
  }

  /**
   * Renders every stamp (k-space + inverse FFT, no accumulation) and waits for the GPU: the
   * isolated stamp-rendering cost, for benchmarks.
   */
  renderStampsOnly(params: SceneParams): Promise<void> {
    return this.exclusive(async () => {
      this.upload([params]);
      const enc = this.device.createCommandEncoder({ label: 'stamps' });
      const kp = sharedPasses(enc, 'stamps');
      this.activeBatches(1).forEach((b, bi) => this.encodeStamps(kp, b, bi));
      kp.end();
      this.device.queue.submit([enc.finish()]);
      await this.device.queue.onSubmittedWorkDone();
    });
  }

  /** log-likelihood only (no adjoint pass). */
  logLikelihood(params: SceneParams): Promise<number> {
    return this.exclusive(async () => {
      this.upload([params]);
      const enc = this.device.createCommandEncoder({ label: 'logL' });
      this.encodeForward(enc, 1);
      this.encodeReadPartials(enc, 1);
      this.device.queue.submit([enc.finish()]);
      return (await this.readLogL(1))[0];
    });
  }

  /** Full-size model images (zeros where no visible stamp lands), one per quadrant. */
  async render(params: SceneParams): Promise<Float32Array[]> {
    const blocks = await this.renderBlocks(params);
    return blocks.map((all, j) => {
      const ql = this.layout.quadrants[j];
      const img = new Float32Array(ql.width * ql.height);
      for (let cb = 0; cb < ql.nActive; cb++) {
        const bx = ql.blockXY[2 * cb] * BLOCK_W;
        const by = ql.blockXY[2 * cb + 1] * BLOCK_H;
        for (let t = 0; t < BLOCK_PIXELS; t++) {
          const x = bx + (t % BLOCK_W);
          const y = by + Math.floor(t / BLOCK_W);
          if (x < ql.width && y < ql.height) img[y * ql.width + x] = all[cb * BLOCK_PIXELS + t];
        }
      }
      return img;
    });
  }

  /**
   * The model on each quadrant's active blocks only, block-major in the layout's numbering
   * (`layout.quadrants[j].blockXY`; 128 values per block, slots outside the image 0): what the
   * GPU holds, without the full-size expansion (docs/plan.md "Host memory").
   */
  renderBlocks(params: SceneParams): Promise<Float32Array[]> {
    return this.exclusive(async () => {
      this.upload([params]);
      const quads = this.activeQuads(1);
      const total = quads.reduce((s, q) => s + q.nActive, 0) * BLOCK_PIXELS * 4;
      const enc = this.device.createCommandEncoder({ label: 'render' });
      this.encodeForward(enc, 1);
      let off = 0;
      for (const q of quads) {
        if (q.nActive) enc.copyBufferToBuffer(q.model, 0, this.readModel, off, q.nActive * BLOCK_PIXELS * 4);
        off += q.nActive * BLOCK_PIXELS * 4;
      }
      this.device.queue.submit([enc.finish()]);
      await this.readModel.mapAsync(MapModeRead);
      const all = new Float32Array(this.readModel.getMappedRange(), 0, total / 4);
      const out: Float32Array[] = [];
      let base = 0;
      this.layout.quadrants.slice(0, quads.length).forEach((ql) => {
        const n = ql.nActive * BLOCK_PIXELS;
        const blk = all.slice(base, base + n);
        // slots of a block outside the image hold whatever the kernels left: zero them
        for (let cb = 0; cb < ql.nActive; cb++) {
          const bx = ql.blockXY[2 * cb] * BLOCK_W;
          const by = ql.blockXY[2 * cb + 1] * BLOCK_H;
          if (bx + BLOCK_W <= ql.width && by + BLOCK_H <= ql.height) continue;
          for (let t = 0; t < BLOCK_PIXELS; t++) {
            if (bx + (t % BLOCK_W) >= ql.width || by + Math.floor(t / BLOCK_W) >= ql.height) blk[cb * BLOCK_PIXELS + t] = 0;
          }
        }
        base += n;
        out.push(blk);
      });
      this.readModel.unmap();
      return out;
    });
  }

  get stats(): EngineStats {
    return {
      pairs: this.perReplica.pairs,
      batches: this.perReplica.batches,
      replicas: this.replicas,
      fftSizes: this.layout.fftSizes,
      activeBlocks: this.totalActive,
      pipelinesCreated: this.res.pipelinesCreated,
      buffersCreated: this.res.buffersCreated,
      peakGpuBytes: this.res.peakBytes,
      compileMs: this.res.compileMs,
      buildMs: this.buildMs,
    };
  }

  destroy(): void {
    for (const f of this.ffts.splice(0)) f.destroy();
    this.res.destroyAll();
  }
}
