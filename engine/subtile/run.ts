/**
 * Stage 2 — one sub-tile (docs/subtile.md): manifest → catalog rows and quadrants → ExposureSet
 * (load.ts) → memory plan → GPU engine → fit (fit.ts: MAP with Laplace errors, VI or NUTS) →
 * the result (result.ts): shear, core sources, χ² per quadrant, diagnostics images, timings.
 * Runtime-agnostic: files come through `io.openFits`; the caller writes the products
 * (products.ts) and owns the device.
 */
import { ShineError } from '../errors.ts';
import type { LineSearchTrial } from '../infer/lbfgs.ts';
import type { FitsFile, OpenOptions } from '../data/fits/index.ts';
import type { ShineConfig } from '../config/index.ts';
import type { Manifest } from '../tiling/manifest.ts';
import { aliasOrdersFor, psfOversamplingOf } from '../model/validate.ts';
import { ShearEngine } from '../gpu/render/engine.ts';
import { PROFILE_PARAM_NAMES, type ActiveBlocks, type SceneParams } from '../scene/types.ts';
import { coverageMask, coveringPairs } from '../model/geometry.ts';
import { profileFromConfig } from '../model/profile-params.ts';
import { checkPosteriorConfig, replicasFor } from './posterior-run.ts';
import { UNMODELLED_FLAG_BIT } from '../exposures/masking.ts';
import { oversizeWarning } from '../exposures/exposure-set.ts';
import { quadrantChi2 } from './quadrant-chi2.ts';
import { describePlan, makePlan, planRecord, type PlanDevice } from '../plan/plan.ts';
import { planSceneFromSet } from '../plan/scene.ts';
import { defaultGpuBudget } from '../scene/memory.ts';
import { countPipelines, gpuBytesByCategory, median, timeEvaluations, type StagePerformance } from '../bench/probe.ts';
import type { TraceSink } from '../bench/trace.ts';
import type { GpuKernelTimer } from '../bench/gpu-timer.ts';
import { loadExposures, loadSources, pointSourceWarning, sourceNames } from './load.ts';
import { fitSubtile } from './fit.ts';
import type { StartValues } from './start.ts';
import { emptyResult, quadrantImages, type CoreSourceResult, type QuadrantImages, type SubtileResult } from './result.ts';

// the result's types, for callers that import the run
export type { CoreSourceResult, QuadrantImages, SubtileResult } from './result.ts';

export interface SubtileIo {
  /** Opens a FITS file; `options.needed` lists the HDUs that will be read (the scan may stop after them). */
  openFits(path: string, options?: OpenOptions): Promise<FitsFile>;
}

export interface SubtileRunOptions {
  method?: 'map' | 'vi' | 'nuts';
  /**
   * A new device when the GPU device is lost mid-run (the platform layer acquires it): the engine
   * rebuilds on it and carries on with the same results, and the metadata's plan records it.
   * Without it a lost device ends the run with a clear error (docs/plan.md "A lost device").
   */
  recoverDevice?: (lost: GPUDeviceLostInfo) => Promise<GPUDevice>;
  /** Progress: stage name, done, total. */
  onProgress?: (stage: string, done: number, total: number, detail?: { loss?: number; gradNorm?: number; note?: string }) => void;
  log?: (line: string) => void;
  /** Render the model at the MAP for the diagnostics (default true). */
  images?: boolean;
  /**
   * Which pixels of each quadrant crop are held in memory (docs/plan.md "Host memory"):
   * 'active-blocks' (default) only the 16×8 blocks some visible stamp touches — all the fit reads;
   * 'crop' the whole crops (test/plan/compact-pixels.test.ts compares the two; the app shows the crops from its own load).
   */
  pixels?: 'active-blocks' | 'crop';
  /** GPU memory budget (bytes) when the configuration sets none (device.memory_budget_gb); default the engine's. */
  maxGpuBytes?: number;
  /**
   * Device facts for the memory plan (engine/plan, docs/plan.md); default: the device's limits, the
   * GPU budget above, no host limit. Only `software: false` said here lets a MAP run batch its
   * Laplace columns (posterior-run.ts LAPLACE_REPLICAS).
   */
  planDevice?: Partial<PlanDevice>;
  /** Timeline spans of the stages, build steps, fit phases and evaluations (docs/bench.md "Trace"). */
  trace?: TraceSink;
  /** `shine bench --stages`: time this many gradient evaluations at the start point, after one warm-up call, before the fit. */
  gradientRepeats?: number;
  /** Peak resident set size of the process (bytes), from the runtime; for the performance figures. */
  peakRssBytes?: () => number | null;
  /** With `trace` and `gradientRepeats`: one more evaluation with a pass per kernel and batch, timed on the GPU (docs/bench.md "GPU spans"). */
  gpuTimer?: GpuKernelTimer;
  /** Every MAP line-search trial (a stall's diagnosis: docs/inference.md "When MAP stalls"). */
  onLineSearch?: (t: LineSearchTrial) => void;
  /**
   * A warm start: an earlier fit's values (engine/subtile/start.ts; the platform layer reads its
   * PARAMS and SHEAR tables). The fit starts there instead of at the catalog; priors unchanged.
   */
  start?: StartValues;
}

/** Whether a quadrant's kept blocks are the engine layout's active blocks, in the same order. */
function sameBlocks(a: ActiveBlocks, b: { nActive: number; blockXY: Uint32Array }): boolean {
  if (a.nActive !== b.nActive || a.blockXY.length !== b.blockXY.length) return false;
  for (let i = 0; i < a.blockXY.length; i++) if (a.blockXY[i] !== b.blockXY[i]) return false;
  return true;
}

export async function runSubtile(device: GPUDevice, manifest: Manifest, cfg: ShineConfig, io: SubtileIo, opts: SubtileRunOptions = {}): Promise<SubtileResult> {
  const method = opts.method ?? cfg.inference.method;
  const log = opts.log ?? (() => {});
  const progress = opts.onProgress ?? (() => {});
  if (!['map', 'vi', 'nuts'].includes(method)) throw new ShineError(`unknown inference method '${method}' (map, vi or nuts)`, { field: 'inference.method' });
  // the configuration with the method actually run (opts.method overrides inference.method)
  const cfgM: ShineConfig = { ...cfg, inference: { ...cfg.inference, method } };
  checkPosteriorConfig(cfgM);
  if (manifest.n_sources_core === 0) return emptyResult(manifest, method, 'no source of the sub-tile core survived the selection');
  if (manifest.n_quadrants === 0) return emptyResult(manifest, method, 'no quadrant overlaps the sub-tile');
  const timings: Record<string, number> = {};
  const warnings: string[] = [];
  let t = performance.now();

  // ---- catalog rows → sources; quadrants → ExposureSet, masked (engine/subtile/load.ts)
  const srcRefs = await loadSources(manifest, cfg, io, progress);
  timings.catalogMs = performance.now() - t;
  opts.trace?.span({ name: 'catalog', cat: 'load', startMs: t, durMs: timings.catalogMs, track: 'cpu' });
  t = performance.now();
  const { built, masked } = await loadExposures(manifest, cfg, io, srcRefs, { progress, pixels: opts.pixels ?? 'active-blocks' });
  const pixelMask = masked.engineMask;
  const nameOf = sourceNames(manifest);
  warnings.push(...built.warnings, ...masked.warnings);
  const oversize = oversizeWarning(built.oversize, cfg.stamps.tiers, nameOf);
  if (oversize) warnings.push(oversize);
  const pointWarning = pointSourceWarning(built.set);
  if (pointWarning) warnings.push(pointWarning);
  timings.loadMs = performance.now() - t;
  opts.trace?.span({ name: 'quadrants (pixels, WCS, PSF, background, mask)', cat: 'load', startMs: t, durMs: timings.loadMs, track: 'cpu' });
  opts.trace?.span({ name: 'data load', cat: 'stage', startMs: t - timings.catalogMs, durMs: timings.catalogMs + timings.loadMs, track: 'cpu' });
  const coreIdx: number[] = [];
  built.sources.forEach((s, i) => s.core && coreIdx.push(i));
  if (coreIdx.length === 0) return { ...emptyResult(manifest, method, 'no core source falls on any quadrant'), warnings };

  // ---- the memory plan (docs/plan.md): batch sizes, PSF spectra kept or recomputed, parameter
  // sets per call — or a PlanError saying what is needed and what is there, before any allocation
  const renderOpts = {
    fftFactor: cfg.stamps.fft_factor,
    pixelResponse: !cfg.stamps.psf_includes_pixel,
    profile: profileFromConfig(cfg.gal.profile),
    aliasOrders: cfg.stamps.alias_orders,
    aliasTolerance: cfg.stamps.alias_tolerance,
    badPixelMask: pixelMask,
  };
  const gpuBudget = cfg.device.memory_budget_gb ? Math.floor(cfg.device.memory_budget_gb * 2 ** 30) : (opts.maxGpuBytes ?? defaultGpuBudget(device.limits));
  const planDev: PlanDevice = {
    maxBufferSize: device.limits.maxBufferSize,
    maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
    hostBudgetBytes: Number.MAX_SAFE_INTEGER,
    cores: (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1,
    software: false,
    ...opts.planDevice,
    gpuBudgetBytes: gpuBudget,
  };
  const plan = makePlan(planSceneFromSet(built.set, { ...renderOpts, method, replicasWanted: replicasFor(cfgM, opts.planDevice?.software !== false), diagnostics: opts.images ?? true }), planDev);
  for (const line of describePlan(plan)) log(`plan: ${line}`);

  // ---- engine
  t = performance.now();
  // every pipeline made on the device from here on is counted (docs/bench.md: none after warm-up)
  const pipelines = countPipelines(device);
  const buildSteps: Array<[string, number]> = [['start', t]];
  progress('build', 0, 4, { note: `${plan.batches} batches` });
  const engine = await ShearEngine.create(device, built.set, {
    onBuildStep: (name) => {
      buildSteps.push([name, performance.now()]);
      progress('build', Math.min(4, buildSteps.length - 1), 4, { note: name });
    },
    fftFactor: cfg.stamps.fft_factor,
    pixelResponse: !cfg.stamps.psf_includes_pixel,
    profile: profileFromConfig(cfg.gal.profile),
    aliasOrders: cfg.stamps.alias_orders,
    aliasTolerance: cfg.stamps.alias_tolerance,
    badPixelMask: pixelMask,
    replicas: plan.replicasPerCall,
    maxPairsPerBatch: plan.maxPairsPerBatch,
    psfSpectra: plan.psf,
    maxGpuBytes: gpuBudget,
    recoverDevice: opts.recoverDevice,
    // out of GPU memory, or a lost device: the engine re-plans (or rebuilds) and carries on (docs/plan.md); say so
    onReplan: (m) => {
      log(`plan: ${m}`);
      warnings.push(m);
    },
  }).catch((e) => {
    pipelines.restore();
    throw e;
  });
  timings.buildMs = performance.now() - t;
  // build steps → spans; the 'pipelines' step (every per-FFT-size kernel and FFT plan, compiled together) is the compile stage
  const stepNames: Record<string, string> = { buffers: 'pair table', images: 'quadrant images (+ residual pipeline)', pipelines: 'pipeline compile', spectra: 'PSF spectra' };
  let compileMs = 0;
  for (let i = 1; i < buildSteps.length; i++) {
    const [name, end] = buildSteps[i];
    const start = buildSteps[i - 1][1];
    if (name === 'pipelines') compileMs = end - start;
    opts.trace?.span({ name: stepNames[name] ?? name, cat: name === 'pipelines' ? 'stage' : 'build', startMs: start, durMs: end - start, track: 'cpu' });
  }
  // drawn around the whole engine build, the compile nested in it; its figure (stagesMs.sceneBuild) leaves the compile out
  opts.trace?.span({ name: 'scene build', cat: 'stage', startMs: t, durMs: timings.buildMs, track: 'cpu', args: { sceneBuildMs: timings.buildMs - compileMs, compileMs } });
  const evals = timeEvaluations(engine, opts.trace);
  let pipelinesAtWarm = -1;
  evals.onEvaluation = (i) => {
    if (i === 0) pipelinesAtWarm = pipelines.count;
  };
  let gradientFrom: 'repeats' | 'fit' = 'fit';
  let firstFitEval = 1;
  try {
    if (opts.gradientRepeats && opts.gradientRepeats > 0) {
      // benchmark discipline (docs/performance.md): one warm-up call, then the median of repeats
      const t0 = performance.now();
      for (let r = 0; r <= opts.gradientRepeats; r++) await engine.evaluate(built.init);
      opts.trace?.span({ name: 'gradient step', cat: 'stage', startMs: t0, durMs: performance.now() - t0, track: 'cpu', args: { repeats: opts.gradientRepeats, note: 'one warm-up call, then the timed repeats' } });
      gradientFrom = 'repeats';
      firstFitEval = evals.times.length;
      if (opts.gpuTimer && opts.trace) {
        const h0 = performance.now();
        await engine.evaluateTimed(built.init, opts.gpuTimer);
        const g = await opts.gpuTimer.spans(opts.trace, h0);
        opts.trace.span({ name: 'timed gradient (GPU spans)', cat: 'gpu-timing', startMs: h0, durMs: performance.now() - h0, track: 'cpu', args: g });
      }
    }
    const tFit = performance.now();
    const unmasked = engine.layout.quadrants.slice(0, built.set.quadrants.length).map((q) => q.nPixels);
    unmasked.forEach((n, j) => {
      if (n === 0) warnings.push(`quadrant ${built.set.quadrants[j].name}: every pixel under the modelled stamps is masked (flags, NaN or rms ≤ 0); it constrains nothing`);
    });
    if (unmasked.every((n) => n === 0)) {
      return { ...emptyResult(manifest, method, 'every pixel under the modelled sources is masked in every quadrant'), nQuadrants: built.set.quadrants.length, warnings };
    }
    // ---- the fit: MAP, Laplace, σ_e, VI / NUTS (engine/subtile/fit.ts)
    const startFrom = opts.start ? { values: opts.start, sources: built.sources.map((s, i) => ({ objectId: nameOf(s.id), ra: s.ra, dec: s.dec, pointSource: !!built.set.sources[i].pointSource })) } : undefined;
    const { map, lap, polish, marginal, population, post, start } = await fitSubtile(engine, built, cfgM, {
      progress, log, warnings, timings,
      laplaceBatch: opts.planDevice?.software === false ? engine.replicas : 1,
      ...(opts.trace ? { trace: opts.trace } : {}),
      ...(opts.onLineSearch ? { onLineSearch: opts.onLineSearch } : {}),
      ...(startFrom ? { start: startFrom } : {}),
    });
    timings.inferenceMs = (timings.mapMs ?? 0) + (timings.posteriorMs ?? 0);
    const fitMs = performance.now() - tFit;
    opts.trace?.span({ name: 'full fit', cat: 'stage', startMs: tFit, durMs: fitMs, track: 'cpu', args: { method } });
    // every evaluation since the fit began (with no timed repeats the first of them is also the warm-up)
    const fitEvals = evals.times.length - (gradientFrom === 'repeats' ? firstFitEval : 0);
    const estimate = post ? post.mean : map!.params;

    const images: QuadrantImages[] = [];
    t = performance.now();
    progress('render', 0, 1);
    // quadrants that keep only their active blocks get the model on those blocks (the engine's
    // numbering is theirs: checked), not full-size images (docs/plan.md "Host memory")
    const blockModels = built.set.quadrants.every((q, j) => q.blocks && sameBlocks(q.blocks, engine.layout.quadrants[j]));
    const models = blockModels ? await engine.renderBlocks(estimate) : await engine.render(estimate);
    const chi2 = quadrantChi2(built.set, models, pixelMask, masked.summary.mode === 'mask' ? UNMODELLED_FLAG_BIT : 0, blockModels);
    if (opts.images ?? true) {
      // each quadrant's modelled area made when read (compact quadrants), as their other images
      const by = coveringPairs(built.set);
      built.set.quadrants.forEach((q, j) => images.push(quadrantImages(q, models[j], () => coverageMask(built.set, j, by[j]), pixelMask, blockModels)));
    }
    timings.renderMs = performance.now() - t;
    progress('render', 1, 1);
    opts.trace?.span({ name: 'model images', cat: 'render', startMs: t, durMs: timings.renderMs, track: 'cpu' });
    // the fit's own evaluations stand for the gradient step when none were timed on purpose (the first is the warm-up)
    const gradSamples = gradientFrom === 'repeats' ? evals.times.slice(1, firstFitEval) : evals.times.slice(Math.min(1, evals.times.length - 1));
    const gradSets = gradientFrom === 'repeats' ? 1 : Math.max(1, ...evals.sets.slice(1));
    const st = engine.stats;
    const performanceFigures: StagePerformance = {
      stagesMs: { dataLoad: timings.catalogMs + timings.loadMs, sceneBuild: timings.buildMs - compileMs, compile: compileMs, gradientStep: median(gradSamples), fit: fitMs },
      gradient: { from: gradientFrom, samples: gradSamples.length, parameterSets: gradSets, samplesMs: gradSamples },
      fit: {
        method,
        ...(timings.mapMs !== undefined ? { mapMs: timings.mapMs } : {}),
        ...(lap ? { laplaceMs: timings.laplaceMs } : {}),
        ...(timings.posteriorMs !== undefined ? { posteriorMs: timings.posteriorMs } : {}),
        evaluations: fitEvals,
        setsPerCall: engine.replicas,
        ...(post && method === 'nuts' ? { msPerEssG1: post.diagnostics.msPerEssG1 } : {}),
      },
      peakHostRssBytes: opts.peakRssBytes?.() ?? null,
      gpuBytes: gpuBytesByCategory(engine, device),
      pipelinesTotal: pipelines.count,
      pipelinesAfterWarmup: pipelinesAtWarm < 0 ? 0 : pipelines.count - pipelinesAtWarm,
      pairs: st.pairs,
      batches: st.batches,
      fftSizes: st.fftSizes,
    };

    const p: SceneParams = estimate;
    const profileNames = PROFILE_PARAM_NAMES.filter((k) => p[k] !== undefined);
    // per source, the quadrants its stamp reaches inside the image (the engine's pairs)
    const quadrantsOf = Array.from({ length: built.sources.length }, () => new Set<number>());
    for (const pr of engine.layout.pairs) {
      if (pr.source >= built.sources.length) continue;
      const q = built.set.quadrants[pr.quadrant];
      if (pr.cx + pr.n > 0 && pr.cx < q.width && pr.cy + pr.n > 0 && pr.cy < q.height) quadrantsOf[pr.source].add(pr.quadrant);
    }
    const sourceRow = (i: number): CoreSourceResult => {
      const s = built.sources[i];
      return {
        objectId: nameOf(s.id),
        ra: s.ra,
        dec: s.dec,
        flux: p.flux[i],
        hlr: p.hlr[i],
        e1: p.e1[i],
        e2: p.e2[i],
        dx: p.dx[i],
        dy: p.dy[i],
        initFlux: built.init.flux[i],
        initHlr: built.init.hlr[i],
        nQuadrants: quadrantsOf[i].size,
        ...(post
          ? { err: { flux: post.std.flux[i], hlr: post.std.hlr[i], e1: post.std.e1[i], e2: post.std.e2[i], dx: post.std.dx[i], dy: post.std.dy[i] } }
          : lap
            ? // MAP: the Laplace marginal sd of each parameter (NaN for a source left out of the error propagation)
              { err: { flux: lap.sourceSd.flux[i], hlr: lap.sourceSd.hlr[i], e1: lap.sourceSd.e1[i], e2: lap.sourceSd.e2[i], dx: lap.sourceSd.dx[i], dy: lap.sourceSd.dy[i] } }
            : {}),
        ...(profileNames.length
          ? { profile: Object.fromEntries(profileNames.map((k) => [k, { value: p[k]![i], init: built.init[k]![i], ...(post?.std[k] ? { err: post.std[k]![i] } : {}) }])) }
          : {}),
      };
    };
    const core = coreIdx.map(sourceRow);
    // the other modelled sources (margin, nuisance): the params file's MARGIN table (warm starts)
    const isCore = new Uint8Array(built.sources.length);
    for (const i of coreIdx) isCore[i] = 1;
    const margin = built.sources.flatMap((_, i) => (isCore[i] ? [] : [sourceRow(i)]));
    return {
      status: 'ok',
      tileId: manifest.tile_id,
      row: manifest.sub_tile_row,
      col: manifest.sub_tile_col,
      center: [manifest.sub_tile.center[0], manifest.sub_tile.center[1]],
      method,
      // the reported shear: the Laplace-marginal one when asked for and applied (the sources, and
      // so the model images, stay at the MAP: the step is in g alone)
      g1: marginal?.applied ? marginal.g[0] : p.g1,
      g2: marginal?.applied ? marginal.g[1] : p.g2,
      g1Err: post ? post.g1Err : lap ? lap.g1Err : NaN,
      g2Err: post ? post.g2Err : lap ? lap.g2Err : NaN,
      g1g2Cov: post ? post.g1g2Cov : lap ? lap.covariance[1] : NaN,
      g1ErrConditional: lap ? lap.g1ErrConditional : NaN,
      g2ErrConditional: lap ? lap.g2ErrConditional : NaN,
      convergence: post ? post.convergence : map!.finalLoss,
      converged: post ? post.converged : map!.converged,
      reason: post ? post.reason : map!.reason,
      iterations: post ? post.iterations : map!.iterations,
      evaluations: (map?.evaluations ?? 0) + (lap?.evaluations ?? 0) + (post?.evaluations ?? 0),
      lossHistory: post ? post.lossHistory : map!.lossHistory,
      laplaceOk: lap?.ok ?? false,
      laplaceDropped: (lap?.droppedSources ?? []).map((i) => nameOf(built.sources[i].id)),
      laplaceMessage: lap?.message ?? (map ? 'not computed (inference.map.laplace: false)' : 'not computed (no MAP: init is catalog)'),
      laplaceNewtonStepG: lap?.newtonStepG ?? null,
      shearAlongShapes: map?.shearAlongShapes ?? null,
      estimator: post ? 'posterior_mean' : marginal?.applied ? 'laplace_marginal' : 'map',
      laplaceMarginal: marginal
        ? {
            applied: marginal.applied, mapG: [p.g1, p.g2], stepG: marginal.stepG, gradC: marginal.gradC, delta: marginal.delta, evaluations: marginal.evaluations, message: marginal.message,
            largest: marginal.largest.map((q) => ({ objectIds: q.sources.map((i) => nameOf(built.sources[i].id)), gradC: q.gradC })),
          }
        : null,
      start,
      ...(map ? { mapFloorRestarts: map.preconditioner.floorRestarts } : {}),
      newtonPolish: polish ? { applied: polish.applied, stepG: polish.stepG, nextStepG: polish.nextStepG, message: polish.message } : null,
      population,
      nSourcesCore: coreIdx.length,
      nSourcesExtended: manifest.n_sources_extended,
      nSourcesModelled: built.sources.filter((s) => !s.nuisance).length,
      nQuadrants: built.set.quadrants.length,
      pairs: engine.stats.pairs,
      core,
      margin,
      quadrants: built.quadrants,
      images,
      timings,
      warnings,
      oversizeStamps: built.oversize.map((o) => ({ objectId: nameOf(o.id), needPixels: o.needPixels, stampSize: o.stampSize })),
      ...(post ? { samples: post.samples, posterior: post.diagnostics } : {}),
      ...(post && map ? { mapEstimate: { g1: map.params.g1, g2: map.params.g2, g1Err: lap?.g1Err ?? NaN, g2Err: lap?.g2Err ?? NaN } } : {}),
      quadrantChi2: chi2,
      unmodelled: masked.summary,
      render: { psfOversampling: psfOversamplingOf(built.set), aliasOrders: aliasOrdersFor(built.set, engine.options) },
      plan: planRecord(plan, engine.replans.length ? { replans: [...engine.replans], final: { psf_spectra: engine.options.psfSpectra, max_pairs_per_batch: engine.options.maxPairsPerBatch ?? null } } : {}),
      performance: performanceFigures,
    };
  } finally {
    evals.restore();
    pipelines.restore();
    engine.destroy();
  }
}
