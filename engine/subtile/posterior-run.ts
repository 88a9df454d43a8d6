/**
 * Posterior inference of a sub-tile (inference.method vi | nuts): the engine's posterior in the
 * unconstrained space (with the log-Jacobian), VI or NUTS started from the MAP and the Laplace
 * widths (or from the catalog values), draws mapped back to physical parameters, summaries and
 * diagnostics. Runtime-agnostic.
 */
import { ShineError } from '../errors.ts';
import type { ShineConfig } from '../config/index.ts';
import { cloneParams, type SceneParams } from '../scene/types.ts';
import type { ShearSamples } from '../outputs/shear.ts';
import {
  essBulk,
  essTail,
  laplaceZScales,
  Posterior,
  rhat,
  runNuts,
  runVi,
  type CatalogCentres,
  type LikelihoodEvaluator,
  type PriorConfig,
  type SparseHessian,
} from '../infer/index.ts';
import { Random } from '../util/rng.ts';

export interface PosteriorStart {
  /** Parameters to start from (the MAP, or the catalog values). */
  params: SceneParams;
  /** Sparse Hessian of −log p(θ) at `params` (from the Laplace step), or null. */
  hessian: SparseHessian | null;
}

export interface PosteriorDiagnostics {
  /** Split-R̂ of g1, g2 and the largest over every free parameter (NUTS; NaN for VI). */
  rhatG1: number;
  rhatG2: number;
  maxRhat: number;
  maxRhatParam: string;
  essBulkG1: number;
  essBulkG2: number;
  essTailG1: number;
  essTailG2: number;
  divergences: number;
  chains: number;
  draws: number;
  /** NUTS: adapted step size per chain; mean tree depth; draws at the maximum depth. */
  stepSizes: number[];
  meanTreeDepth: number;
  maxDepthHits: number;
  /** Wall time of the sampler (warm-up + sampling), and per bulk-effective sample of g1 (ms). */
  samplerMs: number;
  msPerEssG1: number;
  /** Parameters whose initial width fell back to 0.1 (no usable Hessian diagonal). */
  scaleFallbacks: number;
}

/** How a fit ended: shared by the sub-tile result (run.ts) and the posterior run. */
export interface FitOutcome {
  /** CONVERGENCE: the final loss (−log posterior) for MAP, the final −ELBO for VI, the max R̂ for NUTS. */
  convergence: number;
  converged: boolean;
  reason: string;
  iterations: number;
  evaluations: number;
  lossHistory: number[];
}

export interface PosteriorRun extends FitOutcome {
  method: 'vi' | 'nuts';
  /** Posterior mean and standard deviation of every parameter (fixed ones: value and 0). */
  mean: SceneParams;
  std: SceneParams;
  g1: number;
  g2: number;
  g1Err: number;
  g2Err: number;
  g1g2Cov: number;
  samples: ShearSamples;
  diagnostics: PosteriorDiagnostics;
}

export interface PosteriorRunOptions {
  catalog: CatalogCentres;
  onProgress?: (stage: string, done: number, total: number, detail?: { loss?: number }) => void;
}

/** Refuses configuration the samplers do not implement, naming the field. */
export function checkPosteriorConfig(cfg: ShineConfig): void {
  if (cfg.inference.method === 'nuts' && cfg.inference.nuts.dense_mass) {
    throw new ShineError('a dense mass matrix is not implemented (set dense_mass: false: diagonal, adapted in warm-up)', { field: 'inference.nuts.dense_mass' });
  }
}

/**
 * Parameter sets per engine call that a MAP run with Laplace errors asks for on a hardware GPU
 * (`device.laplace_replicas: auto`): the Laplace Hessian's finite-difference columns are
 * independent, so a replicated engine evaluates this many in one GPU pass (one submission and
 * read-back instead of this many; each result bit-identical to evaluating it alone). The plan
 * halves it until the scene fits. Not on a software adapter, where one set already uses every
 * core and batching measured slower (`shine bench --replicas 4`: 0.84× the throughput;
 * docs/performance.md).
 */
export const LAPLACE_REPLICAS = 8;

/**
 * How many parameter sets the engine should evaluate together for this configuration: the
 * chains or particles for NUTS and VI; for MAP with Laplace errors, `device.laplace_replicas`
 * ('auto': LAPLACE_REPLICAS on a hardware adapter, 1 on a software one); else one.
 */
export function replicasFor(cfg: ShineConfig, software = true): number {
  if (cfg.inference.method === 'nuts') return cfg.inference.nuts.chains;
  if (cfg.inference.method === 'vi') return cfg.inference.vi.particles;
  if (!cfg.inference.map.laplace) return 1;
  const r = cfg.device.laplace_replicas;
  return r === 'auto' ? (software ? 1 : LAPLACE_REPLICAS) : r;
}

function meanStd(values: ArrayLike<number>): [number, number] {
  let m = 0;
  for (let i = 0; i < values.length; i++) m += values[i];
  m /= values.length;
  let v = 0;
  for (let i = 0; i < values.length; i++) v += (values[i] - m) ** 2;
  return [m, Math.sqrt(v / Math.max(1, values.length - 1))];
}

/** VI convergence: the mean −ELBO of the last two quarters agree within 3 batch-means standard errors. */
function viConverged(loss: number[]): { ok: boolean; reason: string } {
  const q = Math.floor(loss.length / 4);
  if (q < 20) return { ok: false, reason: `too few steps (${loss.length}) to judge convergence` };
  const a = loss.slice(loss.length - 2 * q, loss.length - q);
  const b = loss.slice(loss.length - q);
  const se = (x: number[]) => {
    const nb = 10;
    const size = Math.floor(x.length / nb);
    const means = Array.from({ length: nb }, (_, k) => meanStd(x.slice(k * size, (k + 1) * size))[0]);
    return meanStd(means)[1] / Math.sqrt(nb);
  };
  const d = meanStd(b)[0] - meanStd(a)[0];
  const tol = 3 * Math.hypot(se(a), se(b));
  return Math.abs(d) <= tol
    ? { ok: true, reason: `mean −ELBO of the last two quarters differ by ${d.toFixed(3)} (≤ 3σ = ${tol.toFixed(3)})` }
    : { ok: false, reason: `mean −ELBO still changing: ${d.toFixed(3)} between the last two quarters (> 3σ = ${tol.toFixed(3)})` };
}

export async function runPosterior(engine: LikelihoodEvaluator, cfg: ShineConfig, priors: Partial<PriorConfig>, start: PosteriorStart, opts: PosteriorRunOptions): Promise<PosteriorRun> {
  checkPosteriorConfig(cfg);
  const method = cfg.inference.method;
  if (method !== 'vi' && method !== 'nuts') throw new ShineError(`runPosterior: method '${method}' is not a posterior method`, { field: 'inference.method' });
  const progress = opts.onProgress ?? (() => {});
  const posterior = new Posterior(engine, priors, start.params, { catalog: opts.catalog, jacobian: true });
  const space = posterior.space;
  const d = space.dim;
  if (d === 0) throw new ShineError('every parameter is fixed: nothing to sample', { field: 'gal.priors' });
  const z0 = space.inverse(space.pack(start.params));
  const fromMap = (method === 'vi' ? cfg.inference.vi.init : cfg.inference.nuts.init) === 'map';
  let scales: Float64Array = new Float64Array(d).fill(0.1);
  let fallbacks = d;
  if (fromMap && start.hessian) ({ scales, fallbacks } = laplaceZScales(space, start.hessian, z0));
  const batch = (zs: readonly Float64Array[]) => posterior.logDensityBatch(zs);
  const seed = cfg.inference.seed;
  const t0 = performance.now();

  let chainsZ: Float64Array[][];
  let lossHistory: number[];
  let iterations: number;
  let convergence: number;
  let converged: boolean;
  let reason: string;
  const diag: PosteriorDiagnostics = {
    rhatG1: NaN, rhatG2: NaN, maxRhat: NaN, maxRhatParam: '', essBulkG1: NaN, essBulkG2: NaN, essTailG1: NaN, essTailG2: NaN,
    divergences: 0, chains: 1, draws: 0, stepSizes: [], meanTreeDepth: NaN, maxDepthHits: 0, samplerMs: 0, msPerEssG1: NaN, scaleFallbacks: fallbacks,
  };

  if (method === 'vi') {
    const v = cfg.inference.vi;
    const res = await runVi(
      { dim: d, logDensityBatch: batch },
      {
        steps: v.steps, learningRate: v.lr, particles: v.particles, numSamples: v.num_samples, seed, initLoc: z0, initScale: scales, guide: v.guide, rank: v.rank === null ? null : Math.min(v.rank, d),
        onStep: (s, loss) => progress('vi', s, v.steps, { loss }),
      },
    );
    chainsZ = [res.draws];
    lossHistory = res.lossHistory;
    iterations = res.steps;
    convergence = res.finalLoss;
    const c = viConverged(res.lossHistory);
    converged = c.ok;
    reason = c.reason;
  } else {
    const n = cfg.inference.nuts;
    const random = new Random((seed ^ 0x2545f491) >>> 0);
    // chains start one Laplace width (or 0.1 in z) apart: over-dispersed enough for R̂ to mean something
    const inits = Array.from({ length: n.chains }, () => Float64Array.from(z0, (v, i) => v + scales[i] * random.normal()));
    let done = 0;
    const total = n.chains * (n.warmup + n.samples);
    const res = await runNuts(
      { dim: d, logDensityBatch: (zs) => batch(zs) },
      {
        numWarmup: n.warmup, numSamples: n.samples, numChains: n.chains, seed, maxTreeDepth: n.max_tree_depth, targetAccept: n.target_accept,
        init: inits, invMassDiag: fromMap ? Float64Array.from(scales, (s) => s * s) : undefined,
        onIteration: () => progress('nuts', ++done, total),
      },
    );
    chainsZ = res.samples;
    lossHistory = res.chains[0] ? Array.from(res.chains[0].logDensity, (v) => -v) : [];
    iterations = n.warmup + n.samples;
    diag.divergences = res.divergences;
    diag.stepSizes = res.chains.map((c) => c.stepSize);
    const depths = res.chains.flatMap((c) => Array.from(c.treeDepths));
    diag.meanTreeDepth = depths.reduce((a, b) => a + b, 0) / Math.max(1, depths.length);
    diag.maxDepthHits = res.chains.reduce((a, c) => a + c.maxDepthHits, 0);
    convergence = NaN;
    converged = false;
    reason = '';
  }
  diag.samplerMs = performance.now() - t0;

  // draws → physical parameters; per-parameter chains (chains × draws)
  const nChains = chainsZ.length;
  const nDraws = chainsZ[0]?.length ?? 0;
  if (nDraws === 0) throw new ShineError(`${method}: no posterior draws (num_samples / samples must be ≥ 1)`, { field: `inference.${method}` });
  const theta: Float64Array[][] = Array.from({ length: d }, () => Array.from({ length: nChains }, () => new Float64Array(nDraws)));
  chainsZ.forEach((chain, c) =>
    chain.forEach((z, k) => {
      const th = space.forward(z);
      for (let i = 0; i < d; i++) theta[i][c][k] = th[i];
    }),
  );
  const meanTh = new Float64Array(d);
  const stdTh = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    const pooled = new Float64Array(nChains * nDraws);
    theta[i].forEach((ch, c) => pooled.set(ch, c * nDraws));
    [meanTh[i], stdTh[i]] = meanStd(pooled);
  }
  const mean = space.unpack(meanTh);
  const std = cloneParams(space.unpack(stdTh));
  // fixed parameters: zero width
  const isFree = new Set(space.entries.map((e) => `${e.kind}:${e.source}`));
  for (const k of ['g1', 'g2'] as const) if (!isFree.has(`${k}:-1`)) std[k] = 0;
  for (const k of ['flux', 'hlr', 'e1', 'e2', 'dx', 'dy'] as const) for (let s = 0; s < space.nSources; s++) if (!isFree.has(`${k}:${s}`)) std[k][s] = 0;
  // the profile's own parameters (free ν, bulge + disk) likewise
  for (const k of space.profileNames) for (let s = 0; s < space.nSources; s++) if (!isFree.has(`${k}:${s}`)) std[k]![s] = 0;

  const [i1, i2] = space.gIndex;
  const g1Draws = i1 >= 0 ? theta[i1] : null;
  const g2Draws = i2 >= 0 ? theta[i2] : null;
  let cov = NaN;
  if (g1Draws && g2Draws) {
    let s = 0;
    for (let c = 0; c < nChains; c++) for (let k = 0; k < nDraws; k++) s += (g1Draws[c][k] - meanTh[i1]) * (g2Draws[c][k] - meanTh[i2]);
    cov = s / Math.max(1, nChains * nDraws - 1);
  }
  const flat = (ch: Float64Array[] | null, fixed: number) => {
    const out = new Float64Array(nChains * nDraws);
    if (!ch) return out.fill(fixed);
    ch.forEach((a, c) => out.set(a, c * nDraws));
    return out;
  };
  const samples: ShearSamples = {
    chain: Int16Array.from({ length: nChains * nDraws }, (_, j) => Math.floor(j / nDraws)),
    draw: Int32Array.from({ length: nChains * nDraws }, (_, j) => j % nDraws),
    g1: flat(g1Draws, mean.g1),
    g2: flat(g2Draws, mean.g2),
  };
  diag.chains = nChains;
  diag.draws = nDraws;

  if (method === 'nuts') {
    // R̂ over every free parameter; ESS of the shear
    let worst = -Infinity;
    let worstName = '';
    for (let i = 0; i < d; i++) {
      const r = rhat(theta[i]);
      // a non-finite R̂ (e.g. a chain that never moved) is the worst possible
      if (!Number.isFinite(r) || r > worst) {
        worst = Number.isFinite(r) ? r : Infinity;
        worstName = space.name(i);
        if (!Number.isFinite(r)) break;
      }
    }
    diag.maxRhat = worst;
    diag.maxRhatParam = worstName;
    if (g1Draws) [diag.rhatG1, diag.essBulkG1, diag.essTailG1] = [rhat(g1Draws), essBulk(g1Draws), essTail(g1Draws)];
    if (g2Draws) [diag.rhatG2, diag.essBulkG2, diag.essTailG2] = [rhat(g2Draws), essBulk(g2Draws), essTail(g2Draws)];
    diag.msPerEssG1 = diag.samplerMs / diag.essBulkG1;
    convergence = worst;
    converged = worst <= 1.01 && diag.divergences === 0;
    reason = `max R̂ ${worst.toFixed(4)} (${worstName})${worst <= 1.01 ? ' ≤ 1.01' : ' > 1.01'}; ${diag.divergences} divergent transition(s) after warm-up; bulk ESS g1 ${diag.essBulkG1.toFixed(0)}, g2 ${diag.essBulkG2.toFixed(0)}`;
  }
  return {
    method,
    mean,
    std,
    g1: mean.g1,
    g2: mean.g2,
    g1Err: std.g1,
    g2Err: std.g2,
    g1g2Cov: cov,
    samples,
    convergence,
    converged,
    reason,
    iterations,
    evaluations: posterior.evaluations,
    lossHistory,
    diagnostics: diag,
  };
}
