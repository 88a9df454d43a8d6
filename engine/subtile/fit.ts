/**
 * Stage 2's fit of a built scene (docs/inference.md): the MAP from the catalog start, its Laplace
 * errors (and Newton polish), the inferred ellipticity dispersion when asked (EM steps), then VI
 * or NUTS when the method asks for them. The fit starts at the catalog values, or at an earlier
 * fit's (a warm start: start.ts). Inference sees the posterior density through the engine;
 * this module only sequences the steps and says what went wrong in `warnings`.
 */
import type { ShineConfig } from '../config/index.ts';
import type { BuiltExposureSet } from '../exposures/exposure-set.ts';
import type { ShearEngine } from '../gpu/render/engine.ts';
import type { SceneParams } from '../scene/types.ts';
import { newtonPolish, polishWarning, type NewtonPolish } from '../infer/laplace.ts';
import { laplaceMarginalShear, type LaplaceMarginalShear } from '../infer/laplace-marginal.ts';
import { sigmaEUpdate } from '../infer/population.ts';
import { runMap, laplaceShear, MAP_LBFGS_DEFAULTS, type LaplaceResult, type MapResult } from '../infer/index.ts';
import { ParamSpace, type PosteriorPriors } from '../infer/posterior.ts';
import type { TraceSink } from '../bench/trace.ts';
import type { LineSearchTrial } from '../infer/lbfgs.ts';
import { runPosterior } from './posterior-run.ts';
import { priorsFromConfig } from './priors.ts';
import type { SubtileResult } from './result.ts';
import { applyStart, type StartReport, type StartValues } from './start.ts';

export interface FitContext {
  progress: (stage: string, done: number, total: number, detail?: { loss?: number; gradNorm?: number; note?: string }) => void;
  log: (line: string) => void;
  /** Where the fit's warnings go (the sub-tile's). */
  warnings: string[];
  /** Where its timings go: mapMs, laplaceMs, posteriorMs. */
  timings: Record<string, number>;
  trace?: TraceSink;
  /** Every MAP line-search trial (engine/infer/lbfgs.ts). */
  onLineSearch?: (t: LineSearchTrial) => void;
  /** Parameter sets per engine call for the finite-difference columns of the Laplace Hessian and of the MAP's preconditioner (LaplaceOptions.batch, MapOptions.batch; default 1). */
  laplaceBatch?: number;
  /** A warm start (engine/subtile/start.ts): an earlier fit's values, and each source's OBJECT_ID and catalog position. */
  start?: { values: StartValues; sources: ReadonlyArray<{ objectId: string; ra: number; dec: number; pointSource?: boolean }> };
}

export interface SubtileFit {
  map: MapResult | null;
  lap: LaplaceResult | null;
  polish: NewtonPolish | null;
  /** The Laplace-marginal shear (inference.map.shear_estimator: laplace_marginal), when computed. */
  marginal: LaplaceMarginalShear | null;
  population: SubtileResult['population'];
  post: Awaited<ReturnType<typeof runPosterior>> | null;
  /** What the warm start used, when there was one. */
  start: StartReport | null;
}

/** Fits the scene with the method of `cfg.inference.method` (map, vi, nuts). */
export async function fitSubtile(engine: ShearEngine, built: BuiltExposureSet, cfg: ShineConfig, o: FitContext): Promise<SubtileFit> {
  const { progress, log, warnings, timings } = o;
  const method = cfg.inference.method;
  const cfgM = cfg;
  const catalogCentres = { flux: built.init.flux.slice(), hlr: built.init.hlr.slice() };
  const { priors, catalog } = priorsFromConfig(cfg, catalogCentres);
  const mapCfg = cfg.inference.map;
  const posteriorMethod = method !== 'map';
  const fromMap = !posteriorMethod || (method === 'vi' ? cfg.inference.vi.init : cfg.inference.nuts.init) === 'map';
  let map: MapResult | null = null;
  // the start: the catalog's, or an earlier fit's where its values lie inside this run's priors
  let from = built.init;
  let start: StartReport | null = null;
  if (o.start) {
    const space = new ParamSpace(priors, built.init, catalog, built.set.sources.map((s) => !!s.shearBlind), built.set.sources.map((s) => !!s.pointSource));
    const a = applyStart(built.init, o.start.sources, o.start.values, (p) => space.outsideSupport(p));
    ({ params: from, report: start } = a);
    log(
      `start: ${start.sources} of ${start.of} sources from ${start.files.length} PARAMS table(s)${start.moved ? `, ${start.moved} moved in the catalog` : ''}${start.outsideSupport ? `, ${start.outsideSupport} outside this run's priors` : ''}; shear from ${start.shear === 'table' ? start.shearFile : 'the catalog start'}`,
    );
  }
  const fitMap = async (from: SceneParams, pri: PosteriorPriors): Promise<MapResult> => {
    const t0 = performance.now();
    let iter = 0;
    progress('map', 0, mapCfg.max_iterations);
    const m = await runMap(engine, built.set, pri, from, {
      method: mapCfg.optimizer,
      catalog,
      lbfgs: { ...MAP_LBFGS_DEFAULTS, maxIterations: mapCfg.max_iterations, history: mapCfg.lbfgs_history, ftol: mapCfg.tolerance, gtol: mapCfg.grad_tolerance, ...(o.onLineSearch ? { onTrial: o.onLineSearch } : {}) },
      adam: { maxIterations: mapCfg.max_iterations, learningRate: mapCfg.lr },
      batch: o.laplaceBatch ?? 1,
      precondition: { floorRestarts: mapCfg.floor_restarts, floorRestartAfter: mapCfg.floor_restart_after },
      onIteration: (info) => progress('map', ++iter, mapCfg.max_iterations, { loss: info.value, gradNorm: info.gradNorm }),
    });
    timings.mapMs = (timings.mapMs ?? 0) + performance.now() - t0;
    o.trace?.span({ name: 'MAP', cat: 'fit', startMs: t0, durMs: performance.now() - t0, track: 'cpu', args: { iterations: m.iterations, evaluations: m.evaluations } });
    const rebuilt = m.preconditioner.floorRestarts;
    log(`map: ${m.iterations} iterations, ${m.evaluations} evaluations, ${m.converged ? 'converged' : 'not converged'} (${m.reason})${rebuilt ? `; preconditioner rebuilt ${rebuilt}× after a precision-floor stop` : ''}`);
    if (m.shearAlongShapes) log(`map: ${m.shearAlongShapes.applied ? '' : 'not applied: '}${m.shearAlongShapes.message}`);
    return m;
  };
  if (fromMap) {
    map = await fitMap(from, priors);
    if (!map.converged) warnings.push(`MAP did not converge: ${map.message}`);
  }

  // Laplace: the MAP's errors, and the widths that start VI / NUTS
  let lap: LaplaceResult | null = null;
  let polish: NewtonPolish | null = null;
  let marginal: LaplaceMarginalShear | null = null;
  let population: SubtileResult['population'] = null;
  let t = performance.now();
  if (map && (posteriorMethod || mapCfg.laplace)) {
    const laplaceAndPolish = async (m: MapResult): Promise<{ m: MapResult; lap: LaplaceResult; polish: NewtonPolish | null }> => {
      progress('laplace', 0, 1);
      const l = await laplaceShear(engine, m.posterior, m.params, { batch: o.laplaceBatch ?? 1, boxShearPrior: mapCfg.laplace_box_prior, onProgress: (d, n) => progress('laplace', d, n, { note: 'evaluations' }) });
      let pol: NewtonPolish | null = null;
      if (mapCfg.newton_polish && l.newtonStep) {
        pol = await newtonPolish(engine, m.posterior, m.params, l, { polishSteps: mapCfg.newton_polish_steps });
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
    const offMode = polish && lap.ok ? polishWarning(polish, lap.g1Err, lap.g2Err) : null;
    if (offMode) warnings.push(offMode);
    if (mapCfg.shear_estimator === 'laplace_marginal' && !posteriorMethod) {
      const t0 = performance.now();
      progress('laplace-marginal', 0, 1);
      marginal = await laplaceMarginalShear(engine, map.posterior, map.params, lap, {
        ...(mapCfg.laplace_marginal_delta !== undefined ? { delta: mapCfg.laplace_marginal_delta } : {}),
        laplace: { batch: o.laplaceBatch ?? 1, boxShearPrior: mapCfg.laplace_box_prior },
        onProgress: (d, n) => progress('laplace-marginal', d, n, { note: 'evaluations' }),
      });
      timings.laplaceMarginalMs = performance.now() - t0;
      log(`map: ${marginal.message}`);
      if (!marginal.applied) warnings.push(`inference.map.shear_estimator laplace_marginal: ${marginal.message}; the MAP's shear is reported`);
    }
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
  if (lap) o.trace?.span({ name: 'Laplace', cat: 'fit', startMs: t, durMs: timings.laplaceMs, track: 'cpu' });

  let post = null;
  if (posteriorMethod) {
    t = performance.now();
    post = await runPosterior(engine, cfgM, priors, { params: map ? map.params : from, hessian: lap?.hessian ?? null }, { catalog, onProgress: progress });
    timings.posteriorMs = performance.now() - t;
    o.trace?.span({ name: method.toUpperCase(), cat: 'fit', startMs: t, durMs: timings.posteriorMs, track: 'cpu', args: { iterations: post.iterations, evaluations: post.evaluations } });
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
  // laplace_marginal (the default) is a step of method map after its Laplace Hessian: with VI or
  // NUTS their posterior mean is reported, with laplace: false the MAP's shear (no
  // shear.laplace_marginal in the metadata then) — neither is a fault worth a warning
  return { map, lap, polish, marginal, population, post, start };
}
