/**
 * What `shine bench --stages` and every Stage 2 run measure (docs/bench.md): the five
 * stages — data load, scene build, pipeline compile, one gradient step, the full fit — plus peak
 * host memory, GPU bytes by category, pipelines created after warm-up and the adapter.
 *
 * Two thin instruments, both undone by `restore()`:
 *  - `countPipelines(device)` counts every createComputePipeline / createComputePipelineAsync
 *    call on the device (the engine's own kernels and the FFT plans alike), so "no pipeline after
 *    warm-up" is checked on the device itself, not on one tracker's bookkeeping;
 *  - `timeEvaluations(engine)` times each `evaluateMany` call (`evaluate` goes through it), and
 *    reports each as a span.
 */
import type { ShearEngine } from '../gpu/render/engine.ts';
import { estimateEngineBytes, maxBindingBytes } from '../scene/memory.ts';
import type { TraceSink } from './trace.ts';

export interface PipelineCounter {
  /** Pipelines created on the device since the counter was installed. */
  readonly count: number;
  restore(): void;
}

export function countPipelines(device: GPUDevice): PipelineCounter {
  const d = device as GPUDevice & Record<string, unknown>;
  const sync = device.createComputePipeline;
  const async_ = device.createComputePipelineAsync;
  const hadOwn = { sync: Object.prototype.hasOwnProperty.call(d, 'createComputePipeline'), async: Object.prototype.hasOwnProperty.call(d, 'createComputePipelineAsync') };
  let n = 0;
  d.createComputePipeline = function (desc: GPUComputePipelineDescriptor) {
    n++;
    return sync.call(device, desc);
  };
  d.createComputePipelineAsync = function (desc: GPUComputePipelineDescriptor) {
    n++;
    return async_.call(device, desc);
  };
  return {
    get count() {
      return n;
    },
    restore() {
      if (hadOwn.sync) d.createComputePipeline = sync;
      else Reflect.deleteProperty(d, 'createComputePipeline');
      if (hadOwn.async) d.createComputePipelineAsync = async_;
      else Reflect.deleteProperty(d, 'createComputePipelineAsync');
    },
  };
}

export interface EvaluationTimer {
  /** Wall time (ms) of every evaluateMany call, in order, and the parameter sets each held. */
  readonly times: number[];
  readonly sets: number[];
  /** Called after each call (the first one ends the warm-up). */
  onEvaluation?: (index: number) => void;
  restore(): void;
}

/** Times every `engine.evaluateMany` (and so `evaluate`) call; reports each as a CPU span 'gradient'. */
export function timeEvaluations(engine: ShearEngine, sink?: TraceSink): EvaluationTimer {
  const e = engine as ShearEngine & Record<string, unknown>;
  const orig = engine.evaluateMany;
  const timer: EvaluationTimer = {
    times: [],
    sets: [],
    restore() {
      Reflect.deleteProperty(e, 'evaluateMany');
    },
  };
  e.evaluateMany = async function (list: Parameters<ShearEngine['evaluateMany']>[0]) {
    const t0 = performance.now();
    const r = await orig.call(engine, list);
    const dt = performance.now() - t0;
    timer.times.push(dt);
    timer.sets.push(list.length);
    sink?.span({ name: 'gradient', cat: 'eval', startMs: t0, durMs: dt, track: 'cpu', args: { parameterSets: list.length } });
    timer.onEvaluation?.(timer.times.length - 1);
    return r;
  };
  return timer;
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** GPU bytes by category (planned with engine/scene/memory.ts, the engine's own accounting). */
export interface GpuBytesByCategory {
  /** PSF spectra of one replica (replicas share them). */
  psfSpectra: number;
  /** FFT work buffers of one replica. */
  fftWork: number;
  /** Observed, model, residual images and block tables of one replica. */
  images: number;
  /** Everything the replicas 2 … K add (0 for one replica). */
  replicas: number;
  /** Per-pair phase tables, pair/parameter/gradient tables, the model read-back, the build-time PSF scratch (one replica). */
  other: number;
  /** The planned peak with every replica (= stats.peakGpuBytes after a render). */
  plannedPeak: number;
  /** The peak the engine's buffer tracker saw. */
  measuredPeak: number;
}

export function gpuBytesByCategory(engine: ShearEngine, device: GPUDevice): GpuBytesByCategory {
  const k = engine.replicas;
  const o = engine.options;
  // the same options and limits the engine was built with (ShearEngine.create)
  const est = { ...o, maxPairsPerBatch: o.maxPairsPerBatch, maxBatchBytes: o.maxBatchBytes, includeInvisible: o.includeInvisible };
  const limits = device.limits;
  const one = estimateEngineBytes(engine.set, { ...est, replicas: 1 }, limits);
  const all = k > 1 ? estimateEngineBytes(engine.set, { ...est, replicas: k }, limits) : one;
  return {
    psfSpectra: one.psfSpectra,
    fftWork: one.fftWork,
    images: one.images,
    replicas: all.peak - one.peak,
    other: one.phases + one.pairs + one.readback + one.psfBuild,
    plannedPeak: all.peak,
    measuredPeak: engine.stats.peakGpuBytes,
  };
}

/** The figures of one Stage 2 run (also `shine bench --stages --json`, less the adapter and trace). */
export interface StagePerformance {
  stagesMs: {
    /** Catalog rows, quadrant pixels/WCS/PSF/background from the FITS files, the unmodelled-object mask. */
    dataLoad: number;
    /** ShearEngine.create less the pipeline compile: pair table, images, upload, PSF spectra. */
    sceneBuild: number;
    /** Wall time of creating every per-FFT-size pipeline and FFT plan (docs/bench.md). */
    compile: number;
    /** Median of the timed gradient evaluations (`gradient.samples` of them, after one warm-up call). */
    gradientStep: number;
    /** MAP + Laplace, or MAP (when it initialises) + Laplace + NUTS/VI. */
    fit: number;
  };
  gradient: {
    /** 'repeats': timed on purpose before the fit (bench); 'fit': the fit's own evaluations, the first left out. */
    from: 'repeats' | 'fit';
    samples: number;
    /** Parameter sets per evaluation (NUTS chains / VI particles evaluated together). */
    parameterSets: number;
    samplesMs: number[];
  };
  fit: { method: string; mapMs?: number; laplaceMs?: number; posteriorMs?: number; evaluations: number; msPerEssG1?: number; /** Parameter sets the engine evaluates in one call (chains, particles or Laplace columns; plan.replicasPerCall). */ setsPerCall?: number };
  /** Peak resident set size of the process (bytes), when the runtime says (null otherwise). */
  peakHostRssBytes: number | null;
  gpuBytes: GpuBytesByCategory;
  pipelinesTotal: number;
  /** Pipelines created after the warm-up (engine build and the first evaluation): must be 0. */
  pipelinesAfterWarmup: number;
  pairs: number;
  batches: number;
  fftSizes: number[];
}
