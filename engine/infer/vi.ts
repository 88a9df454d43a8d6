/**
 * Variational inference with a Gaussian guide over the unconstrained parameters z, fitted by
 * maximising ELBO = E_q[log p(z | data)] + H[q] with reparameterised gradients from the engine's
 * exact adjoint gradient of log p(z), `particles` draws per step evaluated together (GPU batch
 * dimension when the engine has replicas), and Adam. Two guides:
 *  - mean field (NumPyro's AutoNormal): q = Π N(μᵢ, σᵢ²), z = μ + σ ⊙ ε,
 *    H = Σ log σᵢ + d/2 (1 + log 2π);
 *  - low rank (NumPyro's AutoLowRankMultivariateNormal): covariance diag(σ²) + W Wᵀ, W of d × r,
 *    z = μ + σ ⊙ ε + W η (ε ~ N(0, I_d), η ~ N(0, I_r)); log det by the determinant lemma
 *    (2 Σ log σᵢ + log det A, A = I_r + Wᵀ diag(σ⁻²) W) and its gradients by Woodbury
 *    (∂/∂W ½ log det = Σ⁻¹W = D⁻¹ W A⁻¹; ∂/∂log σᵢ = 1 − (W A⁻¹ Wᵀ)ᵢᵢ / σᵢ²). It can carry the
 *    shear–ellipticity correlation that a mean-field guide cannot (docs/posterior.md).
 *
 * Whitened parameters: Adam moves u = (μ − μ₀)/s₀ and v = log(σ/s₀), where (μ₀, s₀) is the
 * initial guide (the MAP and the Laplace diagonal when given, else NumPyro's init scale 0.1).
 * Adam's steps are of size ~lr in its parameters, so without this a learning rate of 0.01
 * would be 10 posterior widths for a position offset and half of one for the shear; whitened,
 * it is 1 % of each parameter's own width. The reported guide is the Polyak average of the
 * iterates over the last quarter of the steps (the raw iterates jitter by ~lr).
 */
import { ShineError } from '../errors.ts';
import { Random } from '../util/rng.ts';
import { AdamMoments } from './adam.ts';
import type { DensityValue } from './posterior.ts';
import { cholesky, spdInverse } from '../util/linalg.ts';

export interface ViTarget {
  dim: number;
  /** log density of z and its gradient, for several points (evaluated together when possible). */
  logDensityBatch(zs: readonly Float64Array[]): Promise<DensityValue[]>;
}

export interface ViOptions {
  /** Adam steps (NumPyro SVI default in SHINE: 2000). */
  steps: number;
  /** Adam step size in the whitened parameters (default 0.01). */
  learningRate: number;
  /** Draws of ε per step (Monte-Carlo ELBO estimate; default 1, as NumPyro's Trace_ELBO). */
  particles: number;
  /** Draws of z from the fitted guide returned in `draws` (default 1000). */
  numSamples: number;
  seed: number;
  /** Initial μ (z); default zeros. */
  initLoc?: ArrayLike<number>;
  /** Initial σ: one value or one per parameter (default 0.1, NumPyro's AutoNormal init_scale). */
  initScale?: number | ArrayLike<number>;
  /** Fraction of the last steps averaged into the reported guide (default 0.25). */
  averageFraction: number;
  /** Called after every step with the −ELBO estimate; return false to stop. */
  onStep?: (step: number, loss: number) => void | boolean;
  /** 'mean_field' (default) or 'low_rank'. */
  guide: 'mean_field' | 'low_rank';
  /** Rank r of the low-rank guide (default round(√d), NumPyro's). */
  rank?: number | null;
  /** Adam moment decay rates and ε (NumPyro's defaults). */
  b1: number;
  b2: number;
  eps: number;
}

export const DEFAULT_VI: ViOptions = { steps: 2000, learningRate: 0.01, particles: 1, numSamples: 1000, seed: 0, averageFraction: 0.25, guide: 'mean_field', b1: 0.9, b2: 0.999, eps: 1e-8 };

export interface ViResult {
  /** Fitted guide: mean and (marginal) standard deviation of each zᵢ. */
  loc: Float64Array;
  scale: Float64Array;
  /** Low-rank guide: its rank and factor W in z units (d × r, row-major); mean field: 0 and empty. */
  rank: number;
  factor: Float64Array;
  /** −ELBO estimate at each step (up to the density's constant). */
  lossHistory: number[];
  /** Mean −ELBO over the averaging window: the reported final loss. */
  finalLoss: number;
  /** Draws of z from the fitted guide (numSamples × dim). */
  draws: Float64Array[];
  steps: number;
  /** log-density evaluations (points). */
  evaluations: number;
  /** Steps redrawn because a draw had a non-finite density. */
  rejectedSteps: number;
  stopped: boolean;
  timeMs: number;
}

export async function runVi(target: ViTarget, options: Partial<ViOptions> = {}): Promise<ViResult> {
  const t0 = performance.now();
  const o: ViOptions = { ...DEFAULT_VI, ...options };
  const d = target.dim;
  const check = (ok: boolean, field: string, what: string) => {
    if (!ok) throw new ShineError(`vi: ${field} ${what}`, { field: `inference.vi.${field}` });
  };
  check(Number.isInteger(d) && d > 0, 'dim', 'must be a positive integer (nothing is free)');
  check(Number.isInteger(o.steps) && o.steps >= 1, 'steps', 'must be an integer ≥ 1');
  check(o.learningRate > 0, 'lr', 'must be > 0');
  check(Number.isInteger(o.particles) && o.particles >= 1, 'particles', 'must be an integer ≥ 1');
  check(Number.isInteger(o.numSamples) && o.numSamples >= 0, 'num_samples', 'must be an integer ≥ 0');
  const loc0 = o.initLoc ? Float64Array.from(o.initLoc) : new Float64Array(d);
  const s0 = typeof o.initScale === 'object' ? Float64Array.from(o.initScale) : new Float64Array(d).fill(o.initScale ?? 0.1);
  check(loc0.length === d && s0.length === d, 'init', `must have one value per free parameter (${d})`);
  check(s0.every((v) => v > 0 && Number.isFinite(v)), 'initScale', 'must be positive and finite');

  const r = o.guide === 'low_rank' ? (o.rank ?? Math.max(1, Math.round(Math.sqrt(d)))) : 0;
  check(o.guide === 'mean_field' || o.guide === 'low_rank', 'guide', `must be mean_field or low_rank, got '${String(o.guide)}'`);
  check(Number.isInteger(r) && r >= 0 && r <= d, 'rank', `must be an integer in 1..${d}`);
  // whitened parameters x = (u, v, W): μ = μ₀ + s₀ u, σ = s₀ exp(v), factor = s₀ ⊙ W
  const nx = 2 * d + d * r;
  const x = new Float64Array(nx);
  const moments = new AdamMoments(nx, o.b1, o.b2, o.eps);
  const avg = new Float64Array(nx);
  let nAvg = 0;
  const avgFrom = Math.max(1, Math.floor(o.steps * (1 - o.averageFraction)) + 1);
  const rand = new Random(o.seed);
  // a small random factor breaks the symmetry between its columns
  if (r > 0) {
    const w0 = new Random((o.seed ^ 0x68e31da4) >>> 0).normals(d * r);
    for (let k = 0; k < d * r; k++) x[2 * d + k] = 0.01 * w0[k];
  }
  const lossHistory: number[] = [];
  const entropyConst = 0.5 * d * (1 + Math.log(2 * Math.PI));
  let evaluations = 0;
  let rejected = 0;
  let stopped = false;
  let step = 0;
  while (step < o.steps) {
    const eps: Float64Array[] = [];
    const etas: Float64Array[] = [];
    const zs: Float64Array[] = [];
    const cur = guideOf(x, loc0, s0, r);
    for (let p = 0; p < o.particles; p++) {
      const e = rand.normals(d);
      const eta = rand.normals(r);
      const z = drawFrom(cur, e, eta);
      eps.push(e);
      etas.push(eta);
      zs.push(z);
    }
    const res = await target.logDensityBatch(zs);
    evaluations += zs.length;
    if (!res.every((r) => Number.isFinite(r.value) && r.grad.every(Number.isFinite))) {
      // a draw left the region where the model is defined: redraw (bounded)
      rejected++;
      if (rejected > 10 * o.steps + 100) throw new ShineError('vi: the log density is not finite at the guide\'s draws (check the initialisation and priors)', { field: 'inference.vi' });
      continue;
    }
    step++;
    // gradient of the loss L = −E[log p] − ½ log det Σ in (u, v, W)
    const g = new Float64Array(nx);
    let meanLogp = 0;
    for (let p = 0; p < o.particles; p++) {
      meanLogp += res[p].value / o.particles;
      const gr = res[p].grad;
      for (let i = 0; i < d; i++) {
        const gz = gr[i] / o.particles;
        g[i] -= gz * s0[i];
        g[d + i] -= gz * s0[i] * Math.exp(x[d + i]) * eps[p][i];
        for (let k = 0; k < r; k++) g[2 * d + i * r + k] -= gz * s0[i] * etas[p][k];
      }
    }
    const ent = halfLogDet(x, d, r, g);
    let sumLogS0 = 0;
    for (let i = 0; i < d; i++) sumLogS0 += Math.log(s0[i]);
    const loss = -(meanLogp + ent + sumLogS0 + entropyConst);
    lossHistory.push(loss);
    moments.step(x, g, o.learningRate, x); // Adam (adam.ts)
    if (step >= avgFrom) {
      nAvg++;
      for (let i = 0; i < nx; i++) avg[i] += (x[i] - avg[i]) / nAvg;
    }
    if (o.onStep?.(step, loss) === false) {
      stopped = true;
      break;
    }
  }
  const xf = nAvg > 0 ? avg : x;
  const fitted = guideOf(xf, loc0, s0, r);
  const { loc, factor } = fitted;
  const scale = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let w2 = 0;
    for (let k = 0; k < r; k++) w2 += factor[i * r + k] ** 2;
    scale[i] = Math.sqrt(fitted.sigma[i] ** 2 + w2);
  }
  const win = lossHistory.slice(Math.max(0, avgFrom - 1));
  const finalLoss = win.length ? win.reduce((a, b) => a + b, 0) / win.length : NaN;
  const draws: Float64Array[] = [];
  const drawRng = new Random((o.seed ^ 0x5bd1e995) >>> 0);
  for (let k = 0; k < o.numSamples; k++) {
    const e = drawRng.normals(d);
    draws.push(drawFrom(fitted, e, drawRng.normals(r)));
  }
  return { loc, scale, rank: r, factor, lossHistory, finalLoss, draws, steps: step, evaluations, rejectedSteps: rejected, stopped, timeMs: performance.now() - t0 };
}

/**
 * ½ log det Σ of the whitened guide, Σ = diag(σ²) + W Wᵀ (σ = e^v), and its gradient subtracted
 * from g (the loss is −½ log det Σ): mean field ∂/∂vᵢ = 1; low rank by the determinant lemma and
 * Woodbury (see the header).
 */
function halfLogDet(x: Float64Array, d: number, r: number, g: Float64Array): number {
  let sumV = 0;
  for (let i = 0; i < d; i++) sumV += x[d + i];
  if (r === 0) {
    for (let i = 0; i < d; i++) g[d + i] -= 1;
    return sumV;
  }
  const W = x.subarray(2 * d);
  const inv2 = new Float64Array(d);
  for (let i = 0; i < d; i++) inv2[i] = Math.exp(-2 * x[d + i]);
  // A = I + Wᵀ D⁻¹ W (r × r)
  const A = new Float64Array(r * r);
  for (let a = 0; a < r; a++) {
    for (let b = a; b < r; b++) {
      let s = a === b ? 1 : 0;
      for (let i = 0; i < d; i++) s += W[i * r + a] * inv2[i] * W[i * r + b];
      A[a * r + b] = s;
      A[b * r + a] = s;
    }
  }
  const L = A.slice();
  if (!cholesky(L, r)) throw new ShineError('vi: the low-rank guide covariance is not positive definite', { field: 'inference.vi' });
  let logDetA = 0;
  for (let a = 0; a < r; a++) logDetA += 2 * Math.log(L[a * r + a]);
  const Ainv = spdInverse(A, r)!;
  for (let i = 0; i < d; i++) {
    // WA⁻¹ row i
    let q = 0;
    for (let b = 0; b < r; b++) {
      let wa = 0;
      for (let a = 0; a < r; a++) wa += W[i * r + a] * Ainv[a * r + b];
      g[2 * d + i * r + b] -= inv2[i] * wa; // ∂(½ log det)/∂W = D⁻¹ W A⁻¹
      q += wa * W[i * r + b];
    }
    g[d + i] -= 1 - q * inv2[i]; // ∂(½ log det)/∂vᵢ = 1 − (W A⁻¹ Wᵀ)ᵢᵢ / σᵢ²
  }
  return sumV + 0.5 * logDetA;
}

interface Guide {
  loc: Float64Array;
  sigma: Float64Array;
  /** d × r, row-major. */
  factor: Float64Array;
  rank: number;
}

/** The guide in z units from the whitened parameters x = (u, v, W). */
function guideOf(x: Float64Array, loc0: Float64Array, s0: Float64Array, r: number): Guide {
  const d = loc0.length;
  const loc = new Float64Array(d);
  const sigma = new Float64Array(d);
  const factor = new Float64Array(d * r);
  for (let i = 0; i < d; i++) {
    loc[i] = loc0[i] + s0[i] * x[i];
    sigma[i] = s0[i] * Math.exp(x[d + i]);
    for (let k = 0; k < r; k++) factor[i * r + k] = s0[i] * x[2 * d + i * r + k];
  }
  return { loc, sigma, factor, rank: r };
}

/** z = μ + σ ⊙ ε + W η. */
function drawFrom(g: Guide, e: Float64Array, eta: Float64Array): Float64Array {
  const d = g.loc.length;
  const r = g.rank;
  const z = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let w = 0;
    for (let k = 0; k < r; k++) w += g.factor[i * r + k] * eta[k];
    z[i] = g.loc[i] + g.sigma[i] * e[i] + w;
  }
  return z;
}
