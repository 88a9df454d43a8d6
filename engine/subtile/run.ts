/**
 * Stage 2 — one sub-tile (docs/subtile.md): manifest → catalog rows and quadrants → ExposureSet →
 * GPU engine → MAP (L-BFGS or Adam) with shear errors from the Laplace approximation marginalised
 * over every source parameter. Runtime-agnostic: files come through `io.openFits`; the caller
 * writes the products (engine/outputs) and owns the device.
 */
import { ShineError, DataError } from '../errors.ts';
import type { FitsFile, HduInfo, OpenOptions } from '../data/fits/index.ts';
import { halfLightRadius, readMerCatalog } from '../data/catalog/index.ts';
import type { ShineConfig } from '../config/index.ts';
import type { Manifest } from '../tiling/manifest.ts';
import { buildExposureSet, type QuadrantInfo, type QuadrantRef, type SourceRef } from '../prepare/exposure-set.ts';
import { aliasOrdersFor, psfOversamplingOf } from '../model/validate.ts';
import { ShearEngine } from '../scene/engine.ts';
import { PROFILE_PARAM_NAMES, type ProfileParamName, type QuadrantData, type SceneParams } from '../scene/types.ts';
import { expandPixels, pixelIndex } from '../scene/pixels.ts';
import { newtonPolish, type NewtonPolish } from '../infer/laplace.ts';
import { coverageMasks } from '../model/geometry.ts';
import { sigmaEUpdate } from '../infer/population.ts';
import { runMap, laplaceShear, MAP_LBFGS_DEFAULTS, type LaplaceResult, type MapResult, type PriorConfig, type PriorSpec } from '../infer/index.ts';
import type { PosteriorPriors } from '../infer/posterior.ts';
import { ensureProfileParams, profileFromConfig } from '../model/profile-params.ts';
import type { ShearSamples } from '../outputs/shear.ts';
import { checkPosteriorConfig, replicasFor, runPosterior, type FitOutcome, type PosteriorDiagnostics } from './posterior-run.ts';
import { applyUnmodelledMask, UNMODELLED_FLAG_BIT, type UnmodelledMaskSummary } from '../prepare/masking.ts';
import { quadrantChi2, type QuadrantChi2 } from './quadrant-chi2.ts';
import { describePlan, makePlan, planRecord, type PlanDevice } from '../plan/plan.ts';
import { planSceneFromSet } from '../plan/scene.ts';
import { defaultGpuBudget } from '../scene/memory.ts';
import { countPipelines, gpuBytesByCategory, median, timeEvaluations, type StagePerformance } from '../bench/probe.ts';
import type { TraceSink } from '../bench/trace.ts';
import type { GpuKernelTimer } from '../bench/gpu-timer.ts';

export interface SubtileIo {
  /** Opens a FITS file; `options.needed` lists the HDUs that will be read (the scan may stop after them). */
  openFits(path: string, options?: OpenOptions): Promise<FitsFile>;
}

export interface SubtileRunOptions {
  method?: 'map' | 'vi' | 'nuts';
  /** Progress: stage name, done, total. */
  onProgress?: (stage: string, done: number, total: number, detail?: { loss?: number; gradNorm?: number; note?: string }) => void;
  log?: (line: string) => void;
  /** Render the model at the MAP for the diagnostics (default true). */
  images?: boolean;
  /**
   * Which pixels of each quadrant crop are held in memory (docs/plan.md "Host memory"):
   * 'active-blocks' (default) only the 16×8 blocks some visible stamp touches — all the fit reads;
   * 'crop' the whole crops (the app shows the observed pixels around the modelled area).
   */
  pixels?: 'active-blocks' | 'crop';
  /** GPU memory budget (bytes) when the configuration sets none (device.memory_budget_gb); default the engine's. */
  maxGpuBytes?: number;
  /** Device facts for the memory plan (engine/plan, docs/plan.md); default: the device's limits, the GPU budget above, no host limit. */
  planDevice?: Partial<PlanDevice>;
  /** Timeline spans of the stages, build steps, fit phases and evaluations (docs/bench.md "Trace"). */
  trace?: TraceSink;
  /** `shine bench --stages`: time this many gradient evaluations at the start point, after one warm-up call, before the fit. */
  gradientRepeats?: number;
  /** Peak resident set size of the process (bytes), from the runtime; for the performance figures. */
  peakRssBytes?: () => number | null;
  /** With `trace` and `gradientRepeats`: one more evaluation with a pass per kernel and batch, timed on the GPU (docs/bench.md "GPU spans"). */
  gpuTimer?: GpuKernelTimer;
}

export interface QuadrantImages {
  name: string;
  width: number;
  height: number;
  /** sci − background. */
  observed: Float32Array;
  model: Float32Array;
  rms: Float32Array;
  /** 1 where the pixel enters the likelihood (unmasked — flags and the unmodelled-object mask —, finite, rms > 0). */
  mask: Uint8Array;
  /** 1 under at least one visible modelled stamp: the modelled area, where χ²/N is summed (quadrant-chi2.ts). */
  modelled: Uint8Array;
}

/**
 * The diagnostics images of one quadrant. From a quadrant that keeps only its active blocks
 * (engine/scene/pixels.ts), `observed`, `rms` and `mask` are full-size arrays made on each read
 * (NaN, NaN, 0 where no pixel is kept), so that the diagnostics PNG holds one quadrant's at a time.
 */
export function quadrantImages(q: QuadrantData, model: Float32Array, modelled: Uint8Array, pixelMask: number): QuadrantImages {
  const observedAndMask = () => {
    const n = q.width * q.height;
    const observed = new Float32Array(n);
    const mask = new Uint8Array(n);
    const bk = q.background;
    for (let d = 0; d < n; d++) {
      const i = q.blocks ? pixelIndex(q, d % q.width, Math.floor(d / q.width)) : d;
      if (i < 0) {
        observed[d] = NaN;
        continue;
      }
      const b = bk === undefined ? 0 : typeof bk === 'number' ? bk : bk[i];
      observed[d] = q.sci[i] - b;
      mask[d] = Number.isFinite(observed[d]) && q.rms[i] > 0 && Number.isFinite(q.rms[i]) && ((q.flags[i] >>> 0) & pixelMask) === 0 ? 1 : 0;
    }
    return { observed, mask };
  };
  const base = { name: q.name, width: q.width, height: q.height, model, modelled };
  if (!q.blocks) return { ...base, ...observedAndMask(), rms: q.rms };
  return {
    ...base,
    get observed() {
      return observedAndMask().observed;
    },
    get mask() {
      return observedAndMask().mask;
    },
    get rms() {
      return expandPixels(q, q.rms as Float32Array, NaN);
    },
  };
}

export interface CoreSourceResult {
  objectId: string;
  ra: number;
  dec: number;
  flux: number;
  hlr: number;
  e1: number;
  e2: number;
  dx: number;
  dy: number;
  initFlux: number;
  initHlr: number;
  /** Marginal standard deviations: the posterior's (VI / NUTS) or the Laplace ones (MAP). */
  err?: { flux: number; hlr: number; e1: number; e2: number; dx: number; dy: number };
  /** Quadrants whose image the source's stamp reaches (pairs of the engine layout). */
  nQuadrants?: number;
  /** The profile's own parameters (free ν; bulge + disk): fitted value, start, posterior std (VI / NUTS). */
  profile?: Partial<Record<ProfileParamName, { value: number; init: number; err?: number }>>;
}

export interface SubtileResult extends FitOutcome {
  status: 'ok' | 'empty';
  /** Why the sub-tile is empty, when it is. */
  emptyReason?: string;
  tileId: number;
  row: number;
  col: number;
  center: [number, number];
  method: 'map' | 'vi' | 'nuts';
  g1: number;
  g2: number;
  g1Err: number;
  g2Err: number;
  g1g2Cov: number;
  g1ErrConditional: number;
  g2ErrConditional: number;
  laplaceOk: boolean;
  laplaceMessage: string;
  /** OBJECT_IDs of the sources left out of the Laplace error propagation (block not PD at the MAP). */
  laplaceDropped: string[];
  /** Shear part of the Newton step at the MAP (LaplaceResult.newtonStepG), when computed. */
  laplaceNewtonStepG?: [number, number] | null;
  /** The Newton polish after the Laplace Hessian (inference.map.newton_polish), when tried. */
  newtonPolish?: { applied: boolean; stepG: [number, number]; nextStepG: [number, number] | null; message: string } | null;
  /** The inferred ellipticity dispersion (ba14 with infer_sigma): final σ_e, the EM history, settled. */
  population?: { sigmaE: number; history: number[]; settled: boolean; range: [number, number] } | null;
  nSourcesCore: number;
  nSourcesExtended: number;
  nSourcesModelled: number;
  nQuadrants: number;
  pairs: number;
  core: CoreSourceResult[];
  quadrants: QuadrantInfo[];
  images: QuadrantImages[];
  timings: Record<string, number>;
  warnings: string[];
  /** VI / NUTS: posterior draws of (g1, g2) and sampler diagnostics. */
  samples?: ShearSamples;
  posterior?: PosteriorDiagnostics;
  /** VI / NUTS: the MAP + Laplace estimate when it was computed (initialisation), for comparison. */
  mapEstimate?: { g1: number; g2: number; g1Err: number; g2Err: number };
  /** χ² per quadrant over the modelled, unmasked pixels at the estimate (float64). */
  quadrantChi2?: QuadrantChi2[];
  /** Masking of the manifest's unmodelled objects (config `masking`). */
  unmodelled?: UnmodelledMaskSummary;
  /** The PSF model and aliasing the stamps were rendered with (docs/forward-model.md "Aliasing"). */
  render?: { psfOversampling: number; aliasOrders: number };
  /** The memory plan the run followed (docs/plan.md), as recorded in the metadata. */
  plan?: Record<string, unknown>;
  /** The stage timings (docs/bench.md), memory and pipeline counts of this run. */
  performance?: StagePerformance;
}

function emptyResult(m: Manifest, method: SubtileResult['method'], reason: string): SubtileResult {
  return {
    status: 'empty',
    emptyReason: reason,
    tileId: m.tile_id,
    row: m.sub_tile_row,
    col: m.sub_tile_col,
    center: [m.sub_tile.center[0], m.sub_tile.center[1]],
    method,
    g1: NaN,
    g2: NaN,
    g1Err: NaN,
    g2Err: NaN,
    g1g2Cov: NaN,
    g1ErrConditional: NaN,
    g2ErrConditional: NaN,
    convergence: NaN,
    converged: false,
    reason: 'empty',
    iterations: 0,
    evaluations: 0,
    lossHistory: [],
    laplaceOk: false,
    laplaceMessage: reason,
    laplaceDropped: [],
    nSourcesCore: m.n_sources_core,
    nSourcesExtended: m.n_sources_extended,
    nSourcesModelled: 0,
    nQuadrants: m.n_quadrants,
    pairs: 0,
    core: [],
    quadrants: [],
    images: [],
    timings: {},
    warnings: [reason],
  };
}

/** Config priors (docs/config.md) → the inference's per-parameter PriorSpec. */
export function priorsFromConfig(cfg: ShineConfig, catalog: { flux: Float64Array; hlr: Float64Array }): { priors: PosteriorPriors; catalog: { flux: Float64Array; hlr: Float64Array } } {
  const p = cfg.gal.priors as Record<string, Record<string, unknown>>;
  const signed = (s: Record<string, unknown>): PriorSpec => {
    if (s.type === 'normal') return { type: 'normal', mean: s.mean as number, sigma: s.sigma as number };
    if (s.type === 'uniform') return { type: 'uniform', low: s.low as number, high: s.high as number };
    if (s.type === 'ba14') return { type: 'ba14', sigma: s.sigma as number };
    return { type: 'fixed', value: s.value as number };
  };
  const cat = { flux: catalog.flux.slice(), hlr: catalog.hlr.slice() };
  const positive = (s: Record<string, unknown>, key: 'flux' | 'hlr'): PriorSpec => {
    if (s.type === 'lognormal') {
      // a numeric centre overrides the catalog value for every source
      if (typeof s.center === 'number') cat[key].fill(s.center);
      return { type: 'lognormal', sigma: s.sigma as number };
    }
    if (s.type === 'fixed') return s.value === 'catalog' || s.value === undefined ? { type: 'fixed' } : { type: 'fixed', value: s.value as number };
    return signed(s);
  };
  return {
    priors: {
      g1: signed(p.shear),
      g2: signed(p.shear),
      flux: positive(p.flux, 'flux'),
      hlr: positive(p.hlr, 'hlr'),
      e1: signed(p.ellipticity),
      e2: signed(p.ellipticity),
      dx: signed(p.offset),
      dy: signed(p.offset),
      // the profile parameters' priors (absent: PROFILE_DEFAULT_PRIORS); the bulge hlr's lognormal
      // is centred on its starting value unless a numeric centre is given
      profile: {
        ...(p.nu ? { nu: signed(p.nu) } : {}),
        ...(p.bulge_fraction ? { bulgeFrac: signed(p.bulge_fraction) } : {}),
        ...(p.bulge_hlr
          ? { bulgeHlr: p.bulge_hlr.type === 'lognormal' ? { type: 'lognormal' as const, sigma: p.bulge_hlr.sigma as number, ...(typeof p.bulge_hlr.center === 'number' ? { mu: Math.log(p.bulge_hlr.center) } : {}) } : signed(p.bulge_hlr) }
          : {}),
        ...(p.bulge_ellipticity ? { bulgeE1: signed(p.bulge_ellipticity), bulgeE2: signed(p.bulge_ellipticity) } : {}),
      },
    },
    catalog: cat,
  };
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

  // ---- catalog rows → sources
  progress('catalog', 0, manifest.catalogs.length);
  const srcRefs: SourceRef[] = new Array(manifest.sources.row.length);
  const objectIds = manifest.sources.object_id;
  for (let c = 0; c < manifest.catalogs.length; c++) {
    const entry = manifest.catalogs[c];
    const fits = await io.openFits(entry.file, { needed: [entry.hdu ?? ((h: HduInfo) => h.type === 'bintable')] });
    const cat = await readMerCatalog(fits, { hdu: entry.hdu ?? undefined }).finally(() => fits.close());
    const [lo, hi] = cfg.sources.hlr_clip_arcsec;
    const { hlr } = halfLightRadius(cat.semimajor, { scale: cfg.data.pixel_scale, min: lo, max: hi });
    manifest.sources.row.forEach((row, i) => {
      if (manifest.sources.catalog[i] !== c) return;
      if (row >= cat.nRows) throw new DataError(`manifest row ${row} is beyond the catalog's ${cat.nRows} rows`, { file: entry.file, hdu: entry.hdu ?? undefined });
      if (cat.objectId[row].toString() !== objectIds[i]) {
        throw new DataError(`row ${row} has OBJECT_ID ${cat.objectId[row]}, the manifest says ${objectIds[i]} (catalog changed since prepare?)`, { file: entry.file, key: 'OBJECT_ID' });
      }
      // SHINE starts every source round (e = 0), at the catalog flux and size
      srcRefs[i] = { id: i, ra: cat.ra[row], dec: cat.dec[row], fluxUJy: cat.flux[row], hlr: hlr[row], e1: 0, e2: 0, core: manifest.sources.core[i] };
    });
    progress('catalog', c + 1, manifest.catalogs.length);
  }
  timings.catalogMs = performance.now() - t;
  opts.trace?.span({ name: 'catalog', cat: 'load', startMs: t, durMs: timings.catalogMs, track: 'cpu' });

  // ---- quadrants → ExposureSet
  t = performance.now();
  const bkgFromFile = cfg.background.method === 'bkg_file';
  const qRefs: QuadrantRef[] = manifest.quadrants.map((q) => {
    if (!q.psf_file || !q.psf_hdu) throw new DataError(`quadrant ${q.id} has no PSF (psf_file/psf_hdu)`, { file: q.file, hdu: q.sci_hdu });
    if (bkgFromFile && (!q.bkg_file || !q.bkg_hdu)) throw new DataError(`quadrant ${q.id} has no BKG map and background.method is bkg_file`, { file: q.file, hdu: q.sci_hdu });
    return {
      id: q.id,
      file: q.file,
      sci: q.sci_hdu,
      rms: q.rms_hdu,
      flg: q.flg_hdu,
      bkg: bkgFromFile ? { file: q.bkg_file!, hdu: q.bkg_hdu! } : undefined,
      psf: { file: q.psf_file, hdu: q.psf_hdu },
    };
  });
  const built = await buildExposureSet(
    qRefs,
    srcRefs,
    {
      tiers: cfg.stamps.tiers,
      badPixelMask: cfg.data.bad_pixel_mask,
      pixelScale: cfg.data.pixel_scale,
      compact: (opts.pixels ?? 'active-blocks') === 'active-blocks',
      ...(cfg.data.psf_oversampling !== null ? { psfOversampling: cfg.data.psf_oversampling } : {}),
    },
    io.openFits,
    (d, n, what) => progress('load', d, n, { note: what }),
  );
  progress('load', qRefs.length, qRefs.length);
  warnings.push(...built.warnings);
  // the profile's own parameters (free ν, bulge) start from the profile: ν as configured, B/T 0.3,
  // the bulge half the disk's catalog size and round like the disk (engine/model/profile-params.ts)
  ensureProfileParams(built.init, profileFromConfig(cfg.gal.profile));
  // unmodelled objects (removed by the selection, beyond the extended area, over the cap): mask their footprint
  const masked = applyUnmodelledMask(
    { quadrants: built.set.quadrants, wcs: built.wcs, pairs: built.set.pairs, sourceName: (k) => objectIds[built.sources[k].id] },
    manifest.unmodelled,
    cfg.masking,
    cfg.data.bad_pixel_mask,
  );
  const pixelMask = masked.engineMask;
  warnings.push(...masked.warnings);
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
  const plan = makePlan(planSceneFromSet(built.set, { ...renderOpts, method, replicasWanted: replicasFor(cfgM), diagnostics: opts.images ?? true }), planDev);
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
    // out of GPU memory: the engine re-plans smaller and carries on (docs/plan.md); say so
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
    const catalogCentres = { flux: built.init.flux.slice(), hlr: built.init.hlr.slice() };
    const { priors, catalog } = priorsFromConfig(cfg, catalogCentres);
    const mapCfg = cfg.inference.map;
    const posteriorMethod = method !== 'map';
    const fromMap = !posteriorMethod || (method === 'vi' ? cfg.inference.vi.init : cfg.inference.nuts.init) === 'map';
    let map: MapResult | null = null;
    const fitMap = async (from: SceneParams, pri: PosteriorPriors): Promise<MapResult> => {
      const t0 = performance.now();
      let iter = 0;
      progress('map', 0, mapCfg.max_iterations);
      const m = await runMap(engine, built.set, pri, from, {
        method: mapCfg.optimizer,
        catalog,
        lbfgs: { ...MAP_LBFGS_DEFAULTS, maxIterations: mapCfg.max_iterations, history: mapCfg.lbfgs_history, ftol: mapCfg.tolerance, gtol: mapCfg.grad_tolerance },
        adam: { maxIterations: mapCfg.max_iterations, learningRate: mapCfg.lr },
        onIteration: (info) => progress('map', ++iter, mapCfg.max_iterations, { loss: info.value, gradNorm: info.gradNorm }),
      });
      timings.mapMs = (timings.mapMs ?? 0) + performance.now() - t0;
      opts.trace?.span({ name: 'MAP', cat: 'fit', startMs: t0, durMs: performance.now() - t0, track: 'cpu', args: { iterations: m.iterations, evaluations: m.evaluations } });
      log(`map: ${m.iterations} iterations, ${m.evaluations} evaluations, ${m.converged ? 'converged' : 'not converged'} (${m.reason})`);
      return m;
    };
    if (fromMap) {
      map = await fitMap(built.init, priors);
      if (!map.converged) warnings.push(`MAP did not converge: ${map.message}`);
    }

    // Laplace: the MAP's errors, and the widths that start VI / NUTS
    let lap: LaplaceResult | null = null;
    let polish: NewtonPolish | null = null;
    let population: SubtileResult['population'] = null;
    t = performance.now();
    if (map && (posteriorMethod || mapCfg.laplace)) {
      const laplaceAndPolish = async (m: MapResult): Promise<{ m: MapResult; lap: LaplaceResult; polish: NewtonPolish | null }> => {
        progress('laplace', 0, 1);
        const l = await laplaceShear(engine, m.posterior, m.params, { onProgress: (d, n) => progress('laplace', d, n, { note: 'evaluations' }) });
        let pol: NewtonPolish | null = null;
        if (mapCfg.newton_polish && l.newtonStep) {
          pol = await newtonPolish(engine, m.posterior, m.params, l);
          log(`map: ${pol.message}`);
          if (pol.applied) m = { ...m, params: pol.params };
        }
        return { m, lap: l, polish: pol };
      };
      ({ m: map, lap, polish } = await laplaceAndPolish(map));
      // an inferred ellipticity dispersion (ba14 with infer_sigma): EM steps of σ_e from the
      // sources' MAP shapes and Laplace variances, refitting from the last MAP until σ_e settles
      const ell = cfg.gal.priors.ellipticity;
      if (ell.type === 'ba14' && ell.infer_sigma) {
        const range = (ell.sigma_range ?? [0.05, 0.6]) as [number, number];
        let sigma = ell.sigma;
        const history = [sigma];
        let settled = false;
        for (let it = 0; it < 6 && !settled; it++) {
          const up = sigmaEUpdate(map.params.e1, map.params.e2, lap.sourceSd.e1, lap.sourceSd.e2, range, sigma);
          settled = Math.abs(up.sigma - sigma) < 1e-3;
          history.push(up.sigma);
          sigma = up.sigma;
          log(`population: σ_e ${history[history.length - 2].toFixed(4)} → ${sigma.toFixed(4)} (E|e|² ${up.secondMoment.toFixed(4)} over ${up.sources} sources)`);
          if (settled) break;
          const pri: PosteriorPriors = { ...priors, e1: { type: 'ba14', sigma }, e2: { type: 'ba14', sigma } };
          map = await fitMap(map.params, pri);
          ({ m: map, lap, polish } = await laplaceAndPolish(map));
        }
        population = { sigmaE: sigma, history, settled, range };
        if (!settled) warnings.push(`the inferred ellipticity dispersion did not settle in 6 EM steps (σ_e history ${history.map((v) => v.toFixed(4)).join(', ')})`);
        if (!map.converged) warnings.push(`MAP did not converge: ${map.message}`);
      }
      if (!lap.ok || lap.droppedSources.length) warnings.push(`Laplace approximation: ${lap.message}`);
      // the Laplace Hessian covers the six standard parameters of each source (laplace.ts): with
      // the profile's own parameters free, its errors are conditional on them — say so
      const sp = map.posterior.space;
      const freeProfile = sp.profileNames.filter((_, j) => Array.from({ length: sp.nSources }, (_, s) => sp.extraIndex[s * sp.profileNames.length + j]).some((i) => i >= 0));
      if (freeProfile.length) {
        warnings.push(
          `Laplace errors (G1_ERR, G2_ERR, *_ERR) are conditional on the profile parameters ${freeProfile.join(', ')} (held at the MAP; the Laplace Hessian covers flux, hlr, e1, e2, dx, dy): use inference.method nuts for errors marginalised over them`,
        );
      }
    }
    {
      const ell = cfg.gal.priors.ellipticity;
      if (ell.type === 'ba14' && ell.infer_sigma && !population) warnings.push(`gal.priors.ellipticity.infer_sigma needs the MAP's Laplace errors (inference.map.laplace: true, a MAP run): σ_e kept at ${ell.sigma}`);
    }
    timings.laplaceMs = performance.now() - t;
    if (lap) opts.trace?.span({ name: 'Laplace', cat: 'fit', startMs: t, durMs: timings.laplaceMs, track: 'cpu' });

    let post = null;
    if (posteriorMethod) {
      t = performance.now();
      post = await runPosterior(engine, cfgM, priors, { params: map ? map.params : built.init, hessian: lap?.hessian ?? null }, { catalog, onProgress: progress });
      timings.posteriorMs = performance.now() - t;
      opts.trace?.span({ name: method.toUpperCase(), cat: 'fit', startMs: t, durMs: timings.posteriorMs, track: 'cpu', args: { iterations: post.iterations, evaluations: post.evaluations } });
      log(`${method}: ${post.iterations} ${method === 'vi' ? 'steps' : 'iterations per chain'}, ${post.evaluations} evaluations; ${post.reason}`);
      if (!post.converged) warnings.push(`${method.toUpperCase()} did not converge: ${post.reason}`);
      if (post.diagnostics.divergences > 0) warnings.push(`NUTS: ${post.diagnostics.divergences} divergent transition(s) after warm-up`);
      if (method === 'vi' && lap?.ok && (post.g1Err < 0.5 * lap.g1Err || post.g2Err < 0.5 * lap.g2Err)) {
        // mean-field VI cannot represent the shear–ellipticity correlation: its widths are conditional
        const why = cfgM.inference.vi.guide === 'mean_field' ? "are the mean-field guide's conditional widths" : 'are less than half';
        warnings.push(
          `VI (${cfgM.inference.vi.guide}): G1_ERR/G2_ERR ${post.g1Err.toExponential(2)}/${post.g2Err.toExponential(2)} ${why}, far below the Laplace marginal errors ${lap.g1Err.toExponential(2)}/${lap.g2Err.toExponential(2)} (metadata posterior.map); use vi.guide: low_rank, nuts or map for shear errors`,
        );
      }
    }
    timings.inferenceMs = (timings.mapMs ?? 0) + (timings.posteriorMs ?? 0);
    const fitMs = performance.now() - tFit;
    opts.trace?.span({ name: 'full fit', cat: 'stage', startMs: tFit, durMs: fitMs, track: 'cpu', args: { method } });
    // every evaluation since the fit began (with no timed repeats the first of them is also the warm-up)
    const fitEvals = evals.times.length - (gradientFrom === 'repeats' ? firstFitEval : 0);
    const estimate = post ? post.mean : map!.params;

    const images: QuadrantImages[] = [];
    t = performance.now();
    progress('render', 0, 1);
    const models = await engine.render(estimate);
    const chi2 = quadrantChi2(built.set, models, pixelMask, masked.summary.mode === 'mask' ? UNMODELLED_FLAG_BIT : 0);
    if (opts.images ?? true) {
      const modelled = coverageMasks(built.set);
      built.set.quadrants.forEach((q, j) => images.push(quadrantImages(q, models[j], modelled[j], pixelMask)));
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
    const core: CoreSourceResult[] = coreIdx.map((i) => {
      const s = built.sources[i];
      return {
        objectId: objectIds[s.id],
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
    });
    return {
      status: 'ok',
      tileId: manifest.tile_id,
      row: manifest.sub_tile_row,
      col: manifest.sub_tile_col,
      center: [manifest.sub_tile.center[0], manifest.sub_tile.center[1]],
      method,
      g1: p.g1,
      g2: p.g2,
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
      laplaceDropped: (lap?.droppedSources ?? []).map((i) => objectIds[built.sources[i].id]),
      laplaceMessage: lap?.message ?? (map ? 'not computed (inference.map.laplace: false)' : 'not computed (no MAP: init is catalog)'),
      laplaceNewtonStepG: lap?.newtonStepG ?? null,
      newtonPolish: polish ? { applied: polish.applied, stepG: polish.stepG, nextStepG: polish.nextStepG, message: polish.message } : null,
      population,
      nSourcesCore: coreIdx.length,
      nSourcesExtended: manifest.n_sources_extended,
      nSourcesModelled: built.sources.length,
      nQuadrants: built.set.quadrants.length,
      pairs: engine.stats.pairs,
      core,
      quadrants: built.quadrants,
      images,
      timings,
      warnings,
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
