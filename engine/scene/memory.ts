/**
 * GPU memory a scene needs, computed before anything is allocated (issue 17 item 10): the same
 * buffers, sizes and rounding as `ShearEngine.build` (engine.ts), so that a scene too large for
 * the budget is refused with its breakdown instead of growing until the device (or, on a software
 * adapter, the host) runs out.
 */
import { BATCH_UNIFORM_BYTES, BLOCK_PIXELS, PAIR_BYTES, phaseEntries, profileLayout } from '../gpu/render/render.wgsl.ts';
import { SceneError, ShineError } from '../errors.ts';
import { aliasOrdersFor, psfOversamplingOf, resolveRenderOptions } from '../model/validate.ts';
import { buildLayout, type SceneLayout } from './layout.ts';
import { replicateSet } from './replicate.ts';
import type { ExposureSet, RenderOptions } from './types.ts';

/** Bytes per kind of buffer; `peak` is what `stats.peakGpuBytes` reaches in `ShearEngine.create` (evaluations allocate nothing). */
export interface GpuBytes {
  /** (2N+1)² M² complex per visible pair (replicas share them). */
  psfSpectra: number;
  /** Build-time only (freed after the build): q² M² complex per pair of a chunk, the stamps, the order table. */
  psfBuild: number;
  /** FFT work buffers: ⌈pairs/2⌉ M² complex per FFT size (largest batch). */
  fftWork: number;
  /** Per-pair derived values and phase tables of the largest batch, per FFT size. */
  phases: number;
  /** Observed pixels and weights, model, residual, block tables, per-block χ² (per quadrant and replica). */
  images: number;
  /** Pair table, source parameters, per-pair gradients (and their read-back), batch uniforms, block lists. */
  pairs: number;
  /** The model read-back buffer, made last in the build (after the build-time PSF buffers are freed). */
  readback: number;
  /** Everything the build makes before it frees the build-time PSF buffers (the read-back apart). */
  build: number;
  /** What stays alive after the build, for the engine's life: build − psfBuild (kept spectra) + readback. */
  resident: number;
  /** The largest number of bytes alive at once: max(build, build − psfBuild + readback). */
  peak: number;
}

/** WebGPU's sizes: multiples of 4, at least 16 bytes (GpuResources.buffer). */
const sz = (bytes: number) => Math.max(16, Math.ceil(bytes / 4) * 4);

export interface MemoryLimits {
  /** min(maxStorageBufferBindingSize, maxBufferSize, maxBatchBytes): the largest binding. */
  maxBindingBytes: number;
  /** minStorageBufferOffsetAlignment (recompute mode binds each chunk's PSF stamps at an aligned offset); default 256, the largest WebGPU allows. */
  offsetAlignment?: number;
}

/**
 * Where the PSF spectra live (docs/plan.md): 'keep' computes every visible pair's (2N+1)² spectra
 * once at build time and keeps them; 'recompute' keeps only the PSF stamps and rebuilds each
 * batch's spectra (one batch-sized buffer per FFT size) before it is rendered, at every evaluation.
 */
export type PsfSpectraMode = 'keep' | 'recompute';

/** Bytes of the buffers `ShearEngine.build` makes for this layout of the replicated set `set` (replicateSet). */
export function layoutGpuBytes(layout: SceneLayout, set: ExposureSet, options: RenderOptions & { replicas?: number; psfSpectra?: PsfSpectraMode }, limits: MemoryLimits): GpuBytes {
  const k = options.replicas ?? 1;
  const recompute = options.psfSpectra === 'recompute';
  const align = limits.offsetAlignment ?? 256;
  const q = psfOversamplingOf(set);
  const N = aliasOrdersFor(set, options);
  const slots = (2 * N + 1) ** 2;
  const P = set.psfSize;
  const nPairs = layout.pairs.length;
  const b: GpuBytes = { psfSpectra: 0, psfBuild: 0, fftWork: 0, phases: 0, images: 0, pairs: 0, readback: 0, build: 0, resident: 0, peak: 0 };
  b.pairs += sz(Math.max(1, nPairs) * PAIR_BYTES);
  // per-source parameters, per-pair gradients and derived values: sizes per galaxy profile
  const prof = profileLayout(options.profile);
  b.pairs += sz(Math.max(1, set.sources.length) * 4 * prof.srcVecs * 4);
  b.pairs += 2 * sz(Math.max(1, nPairs) * prof.grads * 4);
  let active = 0;
  layout.quadrants.forEach((ql, j) => {
    const n = Math.max(1, ql.nActive) * BLOCK_PIXELS;
    // obsW: (obs, w) per active-block pixel (the engine frees the host copy once uploaded)
    b.images += sz(ql.nActive ? ql.nActive * BLOCK_PIXELS * 8 : 8) + 2 * sz(n * 4) + sz(Math.max(1, ql.nActive) * 4) + sz(16);
    b.images += sz(ql.blockIndex.byteLength) + sz(ql.blockXY.length ? ql.blockXY.byteLength : 8);
    active += ql.nActive;
    if (j < layout.quadrants.length / k) b.readback += ql.nActive * BLOCK_PIXELS * 4;
  });
  b.images += sz(Math.max(1, active) * 4);
  b.readback = sz(Math.max(4, b.readback));
  const maxCount = new Map<number, number>();
  for (const bt of layout.batches) maxCount.set(bt.m, Math.max(maxCount.get(bt.m) ?? 0, bt.count));
  const chunks = new Map<number, number>();
  for (const m of layout.fftSizes) {
    const cnt = maxCount.get(m)!;
    b.fftWork += sz(Math.ceil(cnt / 2) * m * m * 8);
    b.phases += sz(cnt * 16 * prof.derivedVecs) + sz(cnt * phaseEntries(m, N) * 8);
    const chunk = Math.max(1, Math.min(cnt, Math.floor(limits.maxBindingBytes / (q * q * m * m * 8)), Math.floor(65535 / Math.max(q * q, slots))));
    chunks.set(m, chunk);
    b.psfBuild += sz((2 * N + 1) * q * m * 2 * 4) + sz(chunk * q * q * m * m * 8);
    if (recompute) b.psfSpectra += sz(cnt * slots * m * m * 8);
    else b.psfBuild += sz(chunk * P * P * 4);
  }
  const own = layout.batches.length / k; // replica 0's batches compute the spectra, the others share them
  layout.batches.forEach((bt, i) => {
    b.pairs += sz(BATCH_UNIFORM_BYTES);
    if (i < own) {
      const chunk = chunks.get(bt.m)!;
      const nChunks = Math.ceil(bt.count / chunk);
      if (recompute) b.psfBuild += sz(nChunks * Math.ceil((chunk * P * P * 4) / align) * align);
      else b.psfSpectra += sz(bt.count * slots * bt.m * bt.m * 8);
      b.psfBuild += nChunks * sz(16);
    }
    if (bt.touched.length) b.pairs += sz((bt.touched.length + bt.starts.length + bt.entries.length) * 4) + sz(16);
  });
  b.build = b.psfSpectra + b.psfBuild + b.fftWork + b.phases + b.images + b.pairs;
  // keep: the build-time PSF buffers are freed before the read-back is made; recompute keeps them
  b.resident = (recompute ? b.build : b.build - b.psfBuild) + b.readback;
  b.peak = Math.max(b.build, b.resident);
  return b;
}

/** The largest binding the engine uses on a device with these limits. */
export function maxBindingBytes(limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'>, maxBatchBytes?: number): number {
  return Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, maxBatchBytes ?? Infinity);
}

/**
 * GPU bytes `ShearEngine.create(device, set, options)` will allocate (its `stats.peakGpuBytes`
 * after a `render`), computed from the scene's layout without touching the device.
 */
export function estimateEngineBytes(
  set: ExposureSet,
  opts: Partial<RenderOptions> & { replicas?: number; includeInvisible?: boolean; maxPairsPerBatch?: number; maxBatchBytes?: number; psfSpectra?: PsfSpectraMode } = {},
  limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'> = { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 31 },
): GpuBytes {
  const render = resolveRenderOptions(opts);
  const replicas = opts.replicas ?? 1;
  const maxBinding = maxBindingBytes(limits, opts.maxBatchBytes);
  const rep = replicateSet(set, replicas);
  const layout = buildLayout(rep, render, { maxBindingBytes: maxBinding, maxPairsPerBatch: opts.maxPairsPerBatch }, opts.includeInvisible ?? false);
  return layoutGpuBytes(layout, rep, { ...render, replicas, psfSpectra: opts.psfSpectra }, { maxBindingBytes: maxBinding, offsetAlignment: (limits as Partial<GPUSupportedLimits>).minStorageBufferOffsetAlignment });
}

/**
 * The default GPU memory budget: WebGPU does not say how much memory a device has, so take a
 * conservative multiple of its largest buffer — 8 × maxBufferSize, at least 4 GiB. Callers that
 * know better (a configured `device.memory_budget_gb`, host memory for a software adapter) pass
 * `EngineOptions.maxGpuBytes`.
 */
export function defaultGpuBudget(limits: Pick<GPUSupportedLimits, 'maxBufferSize'>): number {
  return Math.max(4 * 2 ** 30, 8 * limits.maxBufferSize);
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Labelled byte counts as one line, the zero ones left out: `PSF spectra 1.20 GiB, FFT work …`. */
export function describeByteParts(parts: ReadonlyArray<readonly [string, number]>): string {
  return parts.filter(([, v]) => v > 0).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ');
}

/** The engine's breakdown as one line. */
export function describeGpuBytes(b: GpuBytes): string {
  return describeByteParts([
    ['PSF spectra', b.psfSpectra],
    ['PSF build scratch', b.psfBuild],
    ['FFT work', b.fftWork],
    ['phases', b.phases],
    ['images', b.images],
    ['pair tables', b.pairs],
    ['model read-back', b.readback],
  ]);
}

/** A scene that does not fit the GPU memory budget: names the need, its breakdown and the limit. */
export function gpuMemoryError(need: GpuBytes, limit: number, what: string, hint = 'fewer sources or quadrants per run, fewer replicas, alias orders 0, or a larger device.memory_budget_gb / EngineOptions.maxGpuBytes if the device has the memory'): SceneError {
  return new SceneError(`${what} needs ${formatBytes(need.peak)} of GPU memory (${describeGpuBytes(need)}), more than the budget of ${formatBytes(limit)}: refused before allocating (${hint})`);
}

/**
 * The GPU ran out of memory (an 'out-of-memory' error scope reported it, or a test hook): the
 * engine re-plans smaller and carries on (ShearEngine.create and the evaluations, docs/plan.md).
 */
export class GpuOutOfMemoryError extends ShineError {}

/** A batching / PSF-spectra choice of the engine. */
export interface EngineMemoryChoice {
  maxPairsPerBatch?: number;
  psfSpectra: PsfSpectraMode;
}

/**
 * The next smaller choice after an out-of-memory error at `failedPeak` bytes: first smaller batches
 * (halved down to 2 pairs) with the same PSF mode, then recomputed PSF spectra (largest batches,
 * then halved). Each candidate's bytes are computed (estimateEngineBytes); the first that needs at
 * most ¾ of what failed is taken (a real shortfall is rarely a few bytes), else the smallest that
 * needs less; null when nothing needs less.
 */
export function smallerChoice(
  set: ExposureSet,
  opts: Partial<RenderOptions> & { replicas?: number; includeInvisible?: boolean; maxBatchBytes?: number },
  limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'maxBufferSize'> & Partial<GPUSupportedLimits>,
  current: EngineMemoryChoice & { largestBatch: number },
  failedPeak: number,
): (EngineMemoryChoice & { peak: number }) | null {
  const halvings = (from: number) => {
    const out: number[] = [];
    for (let c = Math.max(2, 2 * Math.floor(from / 4)); ; c = Math.max(2, 2 * Math.floor(c / 4))) {
      out.push(c);
      if (c === 2) break;
    }
    return out;
  };
  const cands: EngineMemoryChoice[] = [];
  if (current.largestBatch > 2) for (const c of halvings(current.largestBatch)) cands.push({ psfSpectra: current.psfSpectra, maxPairsPerBatch: c });
  if (current.psfSpectra === 'keep') {
    cands.push({ psfSpectra: 'recompute', maxPairsPerBatch: current.maxPairsPerBatch });
    const top = current.maxPairsPerBatch ?? current.largestBatch;
    if (top > 2) for (const c of halvings(top)) cands.push({ psfSpectra: 'recompute', maxPairsPerBatch: c });
  }
  let best: (EngineMemoryChoice & { peak: number }) | null = null;
  for (const c of cands) {
    const peak = estimateEngineBytes(set, { ...opts, ...c }, limits).peak;
    if (peak <= 0.75 * failedPeak) return { ...c, peak };
    if (peak < failedPeak && (!best || peak < best.peak)) best = { ...c, peak };
  }
  return best;
}
