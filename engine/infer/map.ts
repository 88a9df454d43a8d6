/**
 * MAP estimate of a sub-tile: minimise −log p(θ | data) over the free parameters, in the
 * unconstrained space z (so that every step stays inside the supports), with L-BFGS (default)
 * or Adam (SHINE's settings).
 *
 * By default the objective carries NO log-Jacobian (`jacobian: false`): its minimum is then the
 * mode of the posterior density of the physical parameters θ, as SHINE's NumPyro AutoDelta MAP,
 * and the point at which the constrained-space Laplace approximation (laplace.ts) is taken.
 * `jacobian: true` gives the mode of the density of z instead.
 */
import { ShineError } from '../errors.ts';
import type { ShearEngine } from '../gpu/render/engine.ts';
import type { ExposureSet, SceneParams } from '../scene/types.ts';
import { adam, type AdamOptions } from './adam.ts';
import { lbfgs, type IterationInfo, type LbfgsOptions, type OptimizeResult, type StopReason } from './lbfgs.ts';
import { Posterior, type CatalogCentres, type LikelihoodEvaluator } from './posterior.ts';
import { shearAlongShapes } from './shear-polish.ts';
import type { PriorConfig } from './priors.ts';
import { buildPreconditioner, DEFAULT_PRECONDITION, sourceGraph, type BlockStructure, type LossBatchFn, type PreconditionOptions } from './precondition.ts';

/** runMap's curvature preconditioner settings (L-BFGS only; see precondition.ts). */
export interface MapPreconditionOptions extends PreconditionOptions {
  /**
   * Rebuild the preconditioner at the current point every `refreshEvery` iterations while not
   * converged, at most `refreshes` times (0 for either: build it once, at the start).
   */
  refreshEvery: number;
  refreshes: number;
  /**
   * A 'precision-floor' stop is tested up to this many times by rebuilding the preconditioner at
   * the point L-BFGS stopped and going on (0: never). L-BFGS stops there when a full step of its
   * model predicts less decrease than the loss's rounding — which a stale preconditioner also
   * gives, when the curvature it was built from no longer holds and the steps shrink to nothing
   * in a valley it mis-scales. On the realistic sub-tile (3,112 sources) L-BFGS stopped so after
   * 346 iterations on the preconditioner of iteration 12; rebuilt there, the loss fell by a
   * further ~100 nats, with the shear moving by several σ̂ (docs/inference.md "When MAP stops at the
   * precision floor"). A restart is made only after a segment that gained more than 10× the stall
   * tolerance (a preconditioner that did work); the stop stands when the rebuilt one gains nothing.
   */
  floorRestarts: number;
  /**
   * …and only when the stretch since the preconditioner was built ran at least this many L-BFGS
   * iterations. Staleness is what a long crawl shows; a fit that converges within tens of
   * iterations of a build stops on a fresh curvature model, and a rebuild there found nothing
   * (noisy `ci` seeds 21–26: +24 % evaluations, Δm ≤ 10⁻⁴; docs/inference.md). 0: any length.
   */
  floorRestartAfter: number;
}

export const DEFAULT_MAP_PRECONDITION: MapPreconditionOptions = { ...DEFAULT_PRECONDITION, refreshEvery: 12, refreshes: 1, floorRestarts: 3, floorRestartAfter: 100 };

/**
 * Largest change of one source's parameters in one MAP step, in the unconstrained z (a factor e in
 * flux or hlr, 1″ in position, ~0.76 in |e|): each source block of the direction is scaled down to
 * it. Without it, at the realistic sub-tile's scale a few sources with a badly estimated curvature
 * gave directions whose largest component was 10²–10⁴ (log hlr −112, flux × e⁴¹), so that either
 * the whole step was scaled to nothing or it overflowed (docs/inference.md "When MAP stalls").
 */
export const MAP_SOURCE_STEP = 1;

export interface MapOptions {
  method: 'lbfgs' | 'adam';
  /** F_cat, h_cat: centres of the lognormal priors (default: the initial flux and hlr). */
  catalog?: CatalogCentres;
  /** Include log|dθ/dz| in the objective (default false: the mode in physical parameters). */
  jacobian: boolean;
  lbfgs: Partial<LbfgsOptions>;
  adam: Partial<AdamOptions>;
  onIteration?: (info: IterationInfo) => void | boolean;
  /**
   * L-BFGS with a block-curvature preconditioner as initial inverse Hessian (default true):
   * `false` for plain L-BFGS, or settings. Costs colours × (free source parameters) + 2 engine
   * evaluations per build (distance-1 colouring of the stamp-overlap graph).
   */
  precondition: boolean | Partial<MapPreconditionOptions>;
  /** Largest change of a source's block per step in z (default MAP_SOURCE_STEP; 0 or ∞: none). Preconditioned L-BFGS only. */
  sourceStep: number;
  /**
   * After the optimiser stops, move the shear to the maximum along the exact shear–shape
   * degeneracy (shear-polish.ts: every observed shape kept, the likelihood unchanged; CPU only),
   * checked with one engine evaluation (default true; only without the log-Jacobian).
   */
  shearAlongShapes: boolean;
  /**
   * Parameter sets per engine call for the preconditioner's columns (default 1). Above 1, with a
   * replicated engine (`evaluateMany`, `replicas` > 1), the columns go through
   * `Posterior.logDensityBatch`, `replicas` per GPU pass; each equals its one-at-a-time value, so
   * the fit is the same. Worth it on a hardware GPU only (as for the Laplace columns).
   */
  batch: number;
}

/** L-BFGS settings used by runMap unless overridden (gtol in nats per unit of z). */
export const MAP_LBFGS_DEFAULTS: Partial<LbfgsOptions> = { gtol: 1e-2, ftol: 1e-11, ftolWindow: 3, stallWindow: 10, stallAbs: 1e-3, stallRel: 1e-8, maxIterations: 500 };

export interface MapResult {
  method: 'lbfgs' | 'adam';
  /** MAP parameters (fixed ones at their held values). */
  params: SceneParams;
  /** Constrained free vector θ and unconstrained z at the MAP. */
  theta: Float64Array;
  z: Float64Array;
  /** log p(θ | data) up to a constant, its likelihood and prior parts. */
  logPosterior: number;
  logLikelihood: number;
  logPrior: number;
  /** The minimised loss (−log density of z, with or without log|J|) after each iteration. */
  lossHistory: number[];
  finalLoss: number;
  iterations: number;
  /** Engine evaluations (gradients) used. */
  evaluations: number;
  converged: boolean;
  reason: StopReason;
  message: string;
  /** max |∂loss/∂z| at the end. */
  gradNorm: number;
  timeMs: number;
  posterior: Posterior;
  /** Preconditioner builds (0 without), their engine evaluations and colours (of the first build). */
  preconditioner: { builds: number; evaluations: number; colours: number; floored: number; shearCoupling: boolean; floorRestarts: number };
  /** The step along the shear–shape degeneracy after the optimiser (null when not tried). */
  shearAlongShapes: { applied: boolean; stepG: [number, number]; gainLogPrior: number; message: string } | null;
}

/** Free indices of the shear block and of each source's block. */
export function blockStructure(posterior: Posterior): BlockStructure {
  const space = posterior.space;
  const g = [0, 1].map((a) => space.gIndex[a]).filter((i) => i >= 0);
  const sources: number[][] = [];
  for (let s = 0; s < space.nSources; s++) {
    const idx: number[] = [];
    for (let k = 0; k < 6; k++) if (space.sourceIndex[6 * s + k] >= 0) idx.push(space.sourceIndex[6 * s + k]);
    // the profile parameters (free ν, bulge) belong to their source's block
    const np = space.profileNames.length;
    for (let k = 0; k < np; k++) if (space.extraIndex[np * s + k] >= 0) idx.push(space.extraIndex[np * s + k]);
    sources.push(idx);
  }
  return { g, sources };
}

/** Scales each block of p down so that its largest |component| is at most cap. */
export function limitBlocks(p: Float64Array, blocks: readonly number[][], cap: number): void {
  for (const b of blocks) {
    let m = 0;
    for (const i of b) m = Math.max(m, Math.abs(p[i]));
    if (m > cap) for (const i of b) p[i] *= cap / m;
  }
}

export async function runMap(
  engine: ShearEngine | LikelihoodEvaluator,
  set: ExposureSet | null,
  priors: Partial<PriorConfig>,
  init: SceneParams,
  opts: Partial<MapOptions> = {},
): Promise<MapResult> {
  const t0 = performance.now();
  if (set && 'set' in engine && (engine as ShearEngine).set !== set) {
    throw new ShineError('runMap: the ExposureSet is not the one the engine was built from', { field: 'set' });
  }
  const method = opts.method ?? 'lbfgs';
  const posterior = new Posterior(engine, priors, init, { catalog: opts.catalog, jacobian: opts.jacobian ?? false });
  const space = posterior.space;
  const z0 = space.inverse(space.pack(space.base));
  // one-entry cache: the optimiser re-evaluates the point the preconditioner was built at
  let cache: { z: Float64Array; value: number; grad: Float64Array } | null = null;
  const objective = async (z: Float64Array) => {
    if (cache && cache.z.length === z.length && cache.z.every((v, i) => v === z[i])) return { value: cache.value, grad: cache.grad.slice() };
    const r = await posterior.logDensity(z);
    const grad = new Float64Array(r.grad.length);
    for (let i = 0; i < grad.length; i++) grad[i] = -r.grad[i];
    cache = { z: z.slice(), value: -r.value, grad: grad.slice() };
    return { value: -r.value, grad, ...(r.rejected ? { rejected: r.rejected } : {}) };
  };
  const pre = { builds: 0, evaluations: 0, colours: 0, floored: 0, shearCoupling: false, floorRestarts: 0 };
  // the preconditioner's columns several per engine call (MapOptions.batch), as the objective gives them
  const replicated = 'evaluateMany' in engine && !!engine.evaluateMany && (engine.replicas ?? 1) > 1;
  const lossBatch: LossBatchFn | undefined =
    (opts.batch ?? 1) > 1 && replicated
      ? async (zs) =>
          (await posterior.logDensityBatch(zs)).map((r) => ({
            value: -r.value,
            grad: Float64Array.from(r.grad, (v) => -v),
          }))
      : undefined;
  let res: OptimizeResult;
  const pOpts: MapPreconditionOptions | null =
    opts.precondition === false ? null : { ...DEFAULT_MAP_PRECONDITION, ...(typeof opts.precondition === 'object' ? opts.precondition : {}) };
  if (method === 'lbfgs' && pOpts && space.dim > 0) {
    const lo: Partial<LbfgsOptions> = { ...MAP_LBFGS_DEFAULTS, names: (i) => space.name(i), ...opts.lbfgs, onIteration: opts.onIteration ?? opts.lbfgs?.onIteration };
    const maxIt = lo.maxIterations ?? 500;
    const structure = blockStructure(posterior);
    const cap = opts.sourceStep ?? MAP_SOURCE_STEP;
    if (cap > 0 && Number.isFinite(cap)) lo.limitDirection = (p) => limitBlocks(p, structure.sources, cap);
    const adj = sourceGraph(engine, space.nSources);
    let z = z0;
    const history: number[] = [];
    let iterations = 0;
    let evaluations = 0;
    for (;;) {
      const at = await objective(z);
      if (!Number.isFinite(at.value)) {
        res = await lbfgs(objective, z, lo);
        break;
      }
      const before = posterior.evaluations;
      const P = await buildPreconditioner(objective, z, at, structure, adj, pOpts, lossBatch);
      pre.evaluations += posterior.evaluations - before;
      if (pre.builds === 0) {
        pre.colours = P.colours;
        pre.shearCoupling = P.shearCoupling;
      }
      pre.floored += P.floored;
      pre.builds++;
      const budget = maxIt - iterations;
      const seg = pOpts.refreshEvery > 0 && pre.builds <= pOpts.refreshes ? Math.min(pOpts.refreshEvery, budget) : budget;
      const r = await lbfgs(objective, z, { ...lo, maxIterations: seg, precondition: P.solve });
      history.push(...(history.length ? r.history.slice(1) : r.history));
      iterations += r.iterations;
      evaluations += r.evaluations;
      res = { ...r, iterations, evaluations, history };
      if (iterations >= maxIt) break;
      if (r.reason === 'precision-floor' || r.reason === 'line-search-failed') {
        // a floor met under a preconditioner that did work may be its staleness: rebuild and go on
        const gain = r.history[0] - r.value;
        const tol = Math.max(lo.stallAbs ?? 1e-3, (lo.stallRel ?? 1e-8) * Math.abs(r.value));
        if (pre.floorRestarts >= pOpts.floorRestarts || !(gain > 10 * tol) || r.iterations < pOpts.floorRestartAfter) break;
        pre.floorRestarts++;
      } else if (r.reason !== 'max-iterations') break;
      z = r.x;
    }
    if (res.reason === 'max-iterations') res.message = res.message.replace(/reached \d+ iterations/, `reached ${iterations} iterations`);
  } else if (method === 'lbfgs') res = await lbfgs(objective, z0, { ...MAP_LBFGS_DEFAULTS, names: (i) => space.name(i), ...opts.lbfgs, onIteration: opts.onIteration ?? opts.lbfgs?.onIteration });
  else if (method === 'adam') res = await adam(objective, z0, { ...opts.adam, onIteration: opts.onIteration ?? opts.adam?.onIteration });
  else throw new ShineError(`unknown MAP method ${String(method)} (lbfgs or adam)`, { field: 'inference.method' });
  let theta = space.forward(res.x);
  // final bookkeeping at the returned point (one more evaluation, exact parts)
  let fin = await posterior.logDensityConstrained(theta);
  let along: MapResult['shearAlongShapes'] = null;
  if ((opts.shearAlongShapes ?? true) && !posterior.jacobian && Number.isFinite(fin.value)) {
    const sa = shearAlongShapes(space, theta);
    along = { applied: false, stepG: sa.stepG, gainLogPrior: sa.gain, message: sa.message };
    if (sa.applies && sa.gain > 0) {
      let inside = true;
      try {
        space.inverse(sa.theta);
      } catch {
        inside = false;
      }
      const d1 = inside ? await posterior.logDensityConstrained(sa.theta) : null;
      // the likelihood is unchanged up to the float32 rounding of its pixel sum; the log prior rose
      const noise = 1e-8 * Math.max(1, Math.abs(fin.value)) + 1e-3;
      if (d1 && Number.isFinite(d1.value) && d1.value >= fin.value - noise) {
        theta = sa.theta;
        fin = d1;
        along.applied = true;
      } else along.message = `${sa.message} — not kept: ${d1 ? `log p ${fin.value} → ${d1.value}` : 'outside a support'}`;
    }
  }
  const params = space.unpack(theta);
  let gn = 0;
  for (let i = 0; i < res.grad.length; i++) gn = Math.max(gn, Math.abs(res.grad[i]));
  return {
    method,
    params,
    theta,
    z: along?.applied ? space.inverse(theta) : res.x,
    logPosterior: fin.value,
    logLikelihood: fin.logL,
    logPrior: fin.logPrior,
    lossHistory: res.history,
    finalLoss: res.value,
    iterations: res.iterations,
    evaluations: posterior.evaluations,
    converged: res.converged,
    reason: res.reason,
    message: res.message,
    gradNorm: gn,
    timeMs: performance.now() - t0,
    posterior,
    preconditioner: pre,
    shearAlongShapes: along,
  };
}
