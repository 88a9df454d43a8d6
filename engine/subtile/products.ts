/**
 * A sub-tile result → the four products of docs/outputs.md (bytes; the platform layer writes them
 * atomically). Runtime-agnostic: the creation time, versions and device are passed in.
 */
import {
  diagnosticsPng,
  metadataYaml,
  paramsTable,
  shearTable,
  subtileOutputNames,
  type Provenance,
  type SourceParamsColumns,
  type SubtileMetadata,
  type SubtileShear,
} from '../outputs/index.ts';
import { diagnosticsTitle } from '../outputs/diagnostics.ts';
import type { Manifest } from '../tiling/manifest.ts';
import type { CoreSourceResult, SubtileResult } from './result.ts';
import type { StagePerformance } from '../bench/probe.ts';

export interface ProductContext {
  manifestFile: string;
  configFile: string;
  configHash: string;
  /** Hash of the resolved fit settings (engine/config/fit-settings.ts): what a re-run compares. */
  fitSettingsHash?: string;
  created: string;
  softwareVersion: string;
  adapter: { label: string; backend: string; featureLevel: string };
  runtime: { name: string; version: string; platform?: string };
  saveDiagnostics: boolean;
  /** Time spent before the products (ms), for the metadata total. */
  totalMs: number;
}

export interface SubtileProductBytes {
  shear: Uint8Array;
  params: Uint8Array;
  diagnostics: Uint8Array;
  metadata: string;
}

/** The PARAMS columns of core (or margin) source rows. */
function sourceColumns(c: CoreSourceResult[]): SourceParamsColumns {
  return {
    objectId: c.map((s) => s.objectId),
    ...(c.length && c.every((s) => s.nQuadrants !== undefined) ? { nQuadrants: c.map((s) => s.nQuadrants!) } : {}),
    ra: c.map((s) => s.ra),
    dec: c.map((s) => s.dec),
    flux: c.map((s) => s.flux),
    hlr: c.map((s) => s.hlr),
    e1: c.map((s) => s.e1),
    e2: c.map((s) => s.e2),
    dx: c.map((s) => s.dx),
    dy: c.map((s) => s.dy),
    init: { flux: c.map((s) => s.initFlux), hlr: c.map((s) => s.initHlr) },
    // the profile's own parameters (free ν, bulge + disk): NU, BULGE_* columns
    ...(c.length && c[0].profile
      ? {
          profile: Object.fromEntries(
            Object.keys(c[0].profile).map((k) => {
              const key = k as keyof NonNullable<(typeof c)[0]['profile']>;
              const col = (f: (v: { value: number; init: number; err?: number }) => number | undefined) => c.map((s) => f(s.profile![key]!) ?? NaN);
              return [k, { value: col((v) => v.value), init: col((v) => v.init), err: col((v) => v.err) }];
            }),
          ),
        }
      : {}),
    ...(c.length && c[0].err
      ? { errors: { flux: c.map((s) => s.err!.flux), hlr: c.map((s) => s.err!.hlr), e1: c.map((s) => s.err!.e1), e2: c.map((s) => s.err!.e2), dx: c.map((s) => s.err!.dx), dy: c.map((s) => s.err!.dy) } }
      : {}),
  };
}

export function subtileProducts(r: SubtileResult, m: Manifest, ctx: ProductContext): SubtileProductBytes {
  const id = { tileId: r.tileId, row: r.row, col: r.col };
  const prov: Provenance = {
    softwareVersion: ctx.softwareVersion,
    created: ctx.created,
    configHash: ctx.configHash,
    configFile: ctx.configFile,
    manifestFile: ctx.manifestFile,
    device: ctx.adapter.label,
  };
  const shear: SubtileShear = {
    ...id,
    ra: r.center[0],
    dec: r.center[1],
    g1: r.g1,
    g2: r.g2,
    g1Err: r.g1Err,
    g2Err: r.g2Err,
    nSources: r.status === 'ok' ? r.nSourcesCore : 0,
    method: r.method,
    convergence: r.convergence,
    converged: r.converged,
    g1g2Cov: r.g1g2Cov,
    g1ErrConditional: r.g1ErrConditional,
    g2ErrConditional: r.g2ErrConditional,
    nQuadrants: r.nQuadrants,
    nSourcesExtended: r.nSourcesModelled,
    iterations: r.iterations,
  };
  const params = paramsTable(id, sourceColumns(r.core), prov, sourceColumns(r.margin));
  const title = diagnosticsTitle(shear);
  if (r.status === 'empty') title.push(`EMPTY: ${r.emptyReason ?? ''}`);
  const diagnostics = diagnosticsPng({
    title,
    quadrants: ctx.saveDiagnostics
      ? // one quadrant's full-size pixels at a time (a compact quadrant makes them on each read)
        r.images.map((q) => ({ name: q.name, width: q.width, height: q.height, pixels: () => ({ observed: q.observed, model: q.model, rms: q.rms, mask: q.mask.map((v) => 1 - v) }) }))
      : [],
  });
  const names = subtileOutputNames(r.tileId, r.row, r.col);
  const t = r.timings;
  const meta: SubtileMetadata = {
    format: 'shine-subtile-metadata',
    version: 1,
    tile_id: r.tileId,
    sub_tile_row: r.row,
    sub_tile_col: r.col,
    created: ctx.created,
    software: { name: 'shine-webgpu', version: ctx.softwareVersion },
    inputs: {
      manifest: ctx.manifestFile,
      config: ctx.configFile,
      config_hash: ctx.configHash,
      ...(ctx.fitSettingsHash ? { fit_settings_hash: ctx.fitSettingsHash } : {}),
      quadrants: m.quadrants.map((q) => ({ id: q.id, file: q.file, sci_hdu: q.sci_hdu, rms_hdu: q.rms_hdu, flg_hdu: q.flg_hdu, psf_file: q.psf_file, psf_hdu: q.psf_hdu, bkg_file: q.bkg_file, bkg_hdu: q.bkg_hdu })),
      catalogs: m.catalogs.map((k) => ({ file: k.file, hdu: k.hdu ?? 1 })),
    },
    adapter: { label: ctx.adapter.label, backend: ctx.adapter.backend, feature_level: ctx.adapter.featureLevel },
    runtime: ctx.runtime,
    method: r.method,
    optimizer: r.status !== 'ok' ? undefined : r.method === 'map' ? 'map' : r.method === 'vi' ? 'adam (mean-field ELBO)' : 'nuts (multinomial, diagonal mass)',
    timings_ms: {
      load: (t.catalogMs ?? 0) + (t.loadMs ?? 0),
      build: t.buildMs ?? 0,
      inference: t.inferenceMs ?? 0,
      laplace: t.laplaceMs ?? 0,
      write: 0,
      total: ctx.totalMs,
      ...(t.mapMs !== undefined ? { map: t.mapMs } : {}),
      ...(t.posteriorMs !== undefined ? { posterior: t.posteriorMs } : {}),
    },
    ...(r.performance ? { performance: performanceMetadata(r.performance) } : {}),
    inference: {
      iterations: r.iterations,
      evaluations: r.evaluations,
      final_loss: r.convergence,
      converged: r.converged,
      reason: r.reason,
      convergence: r.convergence,
      ...(r.mapFloorRestarts !== undefined ? { floor_restarts: r.mapFloorRestarts } : {}),
      ...(r.start ? { start: { files: r.start.files, shear_file: r.start.shearFile, sources: r.start.sources, of: r.start.of, moved: r.start.moved, outside_support: r.start.outsideSupport, shear: r.start.shear } } : {}),
    },
    shear: {
      ra: r.center[0],
      dec: r.center[1],
      g1: r.g1,
      g2: r.g2,
      g1_err: r.g1Err,
      g2_err: r.g2Err,
      g1_err_conditional: r.g1ErrConditional,
      g2_err_conditional: r.g2ErrConditional,
      covariance: [
        [r.g1Err * r.g1Err, r.g1g2Cov],
        [r.g1g2Cov, r.g2Err * r.g2Err],
      ],
      laplace_ok: r.laplaceOk,
      laplace_message: r.laplaceMessage,
      laplace_dropped_sources: r.laplaceDropped,
      ...(r.laplaceNewtonStepG ? { laplace_newton_step_g: r.laplaceNewtonStepG } : {}),
      ...(r.population ? { population: { sigma_e: r.population.sigmaE, sigma_e_history: r.population.history, settled: r.population.settled, sigma_range: r.population.range } } : {}),
      ...(r.shearAlongShapes ? { shear_along_shapes: { applied: r.shearAlongShapes.applied, step_g: r.shearAlongShapes.stepG, gain_log_prior: r.shearAlongShapes.gainLogPrior, message: r.shearAlongShapes.message } } : {}),
      ...(r.estimator ? { estimator: r.estimator } : {}),
      ...(r.laplaceMarginal
        ? { laplace_marginal: { applied: r.laplaceMarginal.applied, map_g: r.laplaceMarginal.mapG, step_g: r.laplaceMarginal.stepG, grad_c: r.laplaceMarginal.gradC, delta: r.laplaceMarginal.delta, evaluations: r.laplaceMarginal.evaluations, message: r.laplaceMarginal.message, largest: r.laplaceMarginal.largest.map((q) => ({ object_ids: q.objectIds, grad_c: q.gradC })) } }
        : {}),
      ...(r.newtonPolish ? { newton_polish: { applied: r.newtonPolish.applied, step_g: r.newtonPolish.stepG, next_step_g: r.newtonPolish.nextStepG, message: r.newtonPolish.message } } : {}),
    },
    ...(r.posterior
      ? {
          posterior: {
            chains: r.posterior.chains,
            draws: r.posterior.draws,
            rhat_g1: r.posterior.rhatG1,
            rhat_g2: r.posterior.rhatG2,
            max_rhat: r.posterior.maxRhat,
            max_rhat_param: r.posterior.maxRhatParam,
            ess_bulk_g1: r.posterior.essBulkG1,
            ess_bulk_g2: r.posterior.essBulkG2,
            ess_tail_g1: r.posterior.essTailG1,
            ess_tail_g2: r.posterior.essTailG2,
            divergences: r.posterior.divergences,
            step_sizes: r.posterior.stepSizes,
            mean_tree_depth: r.posterior.meanTreeDepth,
            max_depth_hits: r.posterior.maxDepthHits,
            sampler_ms: r.posterior.samplerMs,
            ms_per_ess_g1: r.posterior.msPerEssG1,
            init_scale_fallbacks: r.posterior.scaleFallbacks,
            ...(r.mapEstimate ? { map: { g1: r.mapEstimate.g1, g2: r.mapEstimate.g2, g1_err: r.mapEstimate.g1Err, g2_err: r.mapEstimate.g2Err } } : {}),
          },
        }
      : {}),
    sources: { core: r.nSourcesCore, extended: r.nSourcesExtended, dropped: Math.max(0, r.nSourcesExtended - r.nSourcesModelled) },
    ...(r.render ? { render: { psf_oversampling: r.render.psfOversampling, alias_orders: r.render.aliasOrders } } : {}),
    ...(r.plan ? { plan: r.plan } : {}),
    ...(r.quadrantChi2 ? { quadrant_chi2: r.quadrantChi2.map((q) => ({ ...q })) } : {}),
    ...(r.unmodelled
      ? {
          unmodelled: {
            mode: r.unmodelled.mode,
            flag_bit: r.unmodelled.bit,
            listed: r.unmodelled.listed,
            masked: r.unmodelled.masked,
            masked_by_cut: r.unmodelled.masked_by_cut,
            ...(r.unmodelled.mode === 'model' ? { modelled: r.unmodelled.modelled, modelled_by_cut: r.unmodelled.modelled_by_cut, modelled_point_like: r.unmodelled.modelled_point_like, covered_by_modelled: r.unmodelled.covered_by_modelled ?? 0 } : {}),
            covered_source_centres: r.unmodelled.covered_source_centres,
            ...(r.unmodelled.shear_blind ? { shear_blind: r.unmodelled.shear_blind } : {}),
          },
        }
      : {}),
    n_quadrants: r.nQuadrants,
    // sources larger than the largest stamp tier (also in `warnings`); read by shine calibrate
    ...(r.oversizeStamps ? { oversize_stamps: r.oversizeStamps.map((o) => ({ object_id: o.objectId, need_px: o.needPixels, stamp_px: o.stampSize })) } : {}),
    warnings: r.warnings,
    products: names,
  };
  return { shear: shearTable(shear, prov, r.samples), params, diagnostics, metadata: metadataYaml(meta) };
}

/** The run's stage figures for the metadata (docs/bench.md), in the file's snake_case. */
function performanceMetadata(p: StagePerformance): Record<string, unknown> {
  const s = p.stagesMs;
  const g = p.gpuBytes;
  return {
    stages_ms: { data_load: s.dataLoad, scene_build: s.sceneBuild, compile: s.compile, gradient_step: s.gradientStep, fit: s.fit },
    gradient: { from: p.gradient.from, samples: p.gradient.samples, parameter_sets: p.gradient.parameterSets },
    fit: {
      method: p.fit.method,
      evaluations: p.fit.evaluations,
      ...(p.fit.mapMs !== undefined ? { map_ms: p.fit.mapMs } : {}),
      ...(p.fit.laplaceMs !== undefined ? { laplace_ms: p.fit.laplaceMs } : {}),
      ...(p.fit.posteriorMs !== undefined ? { posterior_ms: p.fit.posteriorMs } : {}),
      ...(p.fit.msPerEssG1 !== undefined ? { ms_per_ess_g1: p.fit.msPerEssG1 } : {}),
    },
    peak_host_rss_bytes: p.peakHostRssBytes,
    gpu_bytes: { psf_spectra: g.psfSpectra, fft_work: g.fftWork, images: g.images, replicas: g.replicas, other: g.other, planned_peak: g.plannedPeak, measured_peak: g.measuredPeak },
    pipelines_total: p.pipelinesTotal,
    pipelines_after_warmup: p.pipelinesAfterWarmup,
    pairs: p.pairs,
    batches: p.batches,
    fft_sizes: p.fftSizes,
  };
}
