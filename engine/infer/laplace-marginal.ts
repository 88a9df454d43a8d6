/**
 * The shear that maximises the Laplace approximation of its MARGINAL posterior, from the MAP.
 *
 * The MAP maximises the profile posterior of g, max_θ log p(g, θ): one nuisance shape, flux, size
 * and offset per galaxy, each estimated from a handful of pixels. Such a profile estimate is biased
 * at O(1/S/N²) whenever the likelihood is not invariant under the shear (Neyman–Scott; measured on
 * noise-free `ci` rings as m ≈ −1.5·10⁻³, ten times smaller at ten times the S/N: docs/calibrate.md).
 * Integrating the sources out instead, by Laplace's method around the conditional mode θ̂(g),
 *
 *   log p(g | data) ≈ max_θ log p(g, θ) + C(g),   C(g) = −½ log det H_θθ(g, θ̂(g)),
 *
 * (H_θθ the sources' block of the Hessian of −log p) removes that order. C's gradient at the MAP
 * ĝ is taken by central differences, ĝ ± δ on each free shear component, with θ̂(ĝ ± δ) from the
 * linear response of the conditional mode, dθ̂/dg = −H_θθ⁻¹ H_θg (the Laplace Hessian at the MAP;
 * its O(δ²) error is the same on both sides and cancels in the difference). H_θθ at each shifted
 * point is the sparse coloured finite-difference Hessian (laplace.ts). Since the profile's
 * gradient vanishes at ĝ and its Hessian is the inverse of the Laplace shear covariance Σ_g, one
 * Newton step on the marginal gives
 *
 *   ĝ_marg = ĝ + Σ_g ∇C(ĝ).
 *
 * The step is of order σ_g²·N·(prior curvature / likelihood curvature) — a few 10⁻⁵ on a `ci`
 * sub-tile — so one step is the maximum to far better than the step itself. C's change comes from
 * three places: the Jacobian of the intrinsic → observed shape map (what a change of variables
 * in the integral would give), the priors' curvature seen through it, and the likelihood's own
 * curvature at the slightly moved observed shapes (a third derivative: why the Hessian is
 * recomputed rather than transformed). docs/inference.md "The Laplace-marginal shear".
 *
 * Cost: 2 × (free shear components) sparse Hessians of the sources, each 2 × colours × P gradient
 * evaluations: about four times the Laplace errors' own cost.
 */
import { cloneParams, SOURCE_PARAM_NAMES, type SceneParams } from '../scene/types.ts';
import type { Posterior } from './posterior.ts';
import { sourceLogDet, sparseHessian, type LaplaceEngine, type LaplaceOptions, type LaplaceResult } from './laplace.ts';

export interface LaplaceMarginalOptions {
  /**
   * Shear step of the central differences per component; default: the component's Laplace marginal
   * error σ_g, clamped to [2·10⁻³, 0.05] (large enough that the change of C dwarfs the float32
   * noise of the finite-difference Hessians, small enough for the linear response of θ̂).
   */
  delta?: number;
  laplace?: Partial<LaplaceOptions>;
  onProgress?: (done: number, total: number) => void;
}

export interface LaplaceMarginalShear {
  applied: boolean;
  /** The shear estimate: the MAP's plus `stepG` (the MAP's when not applied). */
  g: [number, number];
  /** Σ_g ∇C (0 for a fixed component or when not applied). */
  stepG: [number, number];
  /** ∇_g C at the MAP (NaN for a fixed component or when not computed). */
  gradC: [number, number];
  /** The central-difference steps used (0 for a fixed component). */
  delta: [number, number];
  /** −½ log det H_θθ at ĝ − δ and ĝ + δ, per component (NaN where not computed). */
  c: { minus: [number, number]; plus: [number, number] };
  /** Sources in components too large for a dense log det (their blocks' log det used instead). */
  approximate: number;
  /**
   * The overlap components with the largest share of ∇C (at most LARGEST, by |∇C| of the
   * component): source indices and their ∇C. C is a sum over components, so these say which
   * galaxies move the shear — where a far-from-Gaussian posterior would show.
   */
  largest: Array<{ sources: number[]; gradC: [number, number] }>;
  evaluations: number;
  message: string;
}

const G_KEYS = ['g1', 'g2'] as const;
/** Components listed in `largest`. */
const LARGEST = 5;

/** The Laplace-marginal shear from the MAP `at` and its Laplace result `lap` (laplaceShear at `at`). */
export async function laplaceMarginalShear(engine: LaplaceEngine, posterior: Posterior, at: SceneParams, lap: LaplaceResult, opts: LaplaceMarginalOptions = {}): Promise<LaplaceMarginalShear> {
  const out: LaplaceMarginalShear = {
    applied: false,
    g: [at.g1, at.g2],
    stepG: [0, 0],
    gradC: [NaN, NaN],
    delta: [0, 0],
    c: { minus: [NaN, NaN], plus: [NaN, NaN] },
    approximate: 0,
    largest: [],
    evaluations: 0,
    message: '',
  };
  const H = lap.hessian;
  const P = H.kinds.length;
  const space = posterior.space;
  if (posterior.jacobian) return { ...out, message: 'not applied: the objective has a log-Jacobian (not the constrained-space MAP)' };
  if (!H.gFree.length) return { ...out, message: 'not applied: the shear is fixed' };
  if (!lap.ok) return { ...out, message: `not applied: the Laplace errors are not available (${lap.message})` };
  const adj = H.neighbours.map((nb, s) => nb.filter((t) => t !== s));
  const exclude = new Set(lap.droppedSources);
  const base = sourceLogDet(H, adj, exclude, true, opts.laplace);
  if (!base.x) return { ...out, message: `not applied: the source block is not positive definite at the MAP (source ${base.failed.join(', ')})` };
  out.approximate = base.approximate;

  const sd = [Math.sqrt(lap.covariance[0]), Math.sqrt(lap.covariance[3])];
  const total = 2 * H.gFree.length;
  let done = 0;
  let evaluations = 0;
  const hOpts: Partial<LaplaceOptions> = {
    ...opts.laplace,
    sourceBlocksOnly: true,
    onProgress: (d, n) => opts.onProgress?.(done * n + d, total * n),
  };
  // per component (same partition at every point: the overlap graph is the MAP's): −½ log det at ĝ ∓ δ
  const parts = base.parts.map((q) => ({ sources: q.sources, minus: [NaN, NaN], plus: [NaN, NaN] }));
  for (const [ai, a] of H.gFree.entries()) {
    const delta = opts.delta ?? Math.min(0.05, Math.max(2e-3, sd[a]));
    out.delta[a] = delta;
    for (const sign of [-1, 1]) {
      // the conditional mode at ĝ + sign·δ, to first order: θ̂ − sign·δ·H_θθ⁻¹H_θg
      const p = cloneParams(at);
      p[G_KEYS[a]] += sign * delta;
      for (let s = 0; s < H.nSources; s++)
        H.kinds.forEach((k, kk) => {
          p[SOURCE_PARAM_NAMES[k]][s] -= sign * delta * base.x![ai][s * P + kk];
        });
      try {
        space.inverse(space.pack(p));
      } catch (e) {
        return { ...out, evaluations, message: `not applied: the point at g${a + 1} ${sign > 0 ? '+' : '−'} ${delta.toExponential(1)} leaves a prior's support (${(e as Error).message})` };
      }
      const r = await sparseHessian(engine, posterior, p, hOpts);
      evaluations += r.evaluations;
      done++;
      const ld = sourceLogDet(r.hessian, adj, exclude, false, opts.laplace);
      if (!Number.isFinite(ld.logDet)) {
        return { ...out, evaluations, message: `not applied: the source block is not positive definite at g${a + 1} ${sign > 0 ? '+' : '−'} ${delta.toExponential(1)} (source ${ld.failed.join(', ')})` };
      }
      (sign > 0 ? out.c.plus : out.c.minus)[a] = -0.5 * ld.logDet;
      ld.parts.forEach((q, i) => {
        if (parts[i]) (sign > 0 ? parts[i].plus : parts[i].minus)[a] = -0.5 * q.logDet;
      });
    }
    out.gradC[a] = (out.c.plus[a] - out.c.minus[a]) / (2 * delta);
  }
  const share = parts.map((q) => ({
    sources: q.sources,
    gradC: [0, 1].map((a) => (out.delta[a] ? (q.plus[a] - q.minus[a]) / (2 * out.delta[a]) : 0)) as [number, number],
  }));
  out.largest = share
    .filter((q) => q.gradC.every(Number.isFinite))
    .sort((x, y) => Math.hypot(...y.gradC) - Math.hypot(...x.gradC))
    .slice(0, LARGEST);
  // one Newton step on the marginal: the profile's Hessian at ĝ is Σ_g⁻¹
  for (const a of H.gFree) {
    let v = 0;
    for (const b of H.gFree) v += lap.covariance[a * 2 + b] * out.gradC[b];
    out.stepG[a] = v;
  }
  out.g = [at.g1 + out.stepG[0], at.g2 + out.stepG[1]];
  out.applied = true;
  out.evaluations = evaluations;
  const fmt = (v: number) => (v >= 0 ? '+' : '') + v.toExponential(2);
  out.message = `Laplace-marginal shear step (${fmt(out.stepG[0])}, ${fmt(out.stepG[1])}) from ∇C (${out.gradC.map((v) => (Number.isFinite(v) ? v.toFixed(3) : 'n/a')).join(', ')}) with δ (${out.delta.map((v) => v.toExponential(1)).join(', ')}), ${evaluations} evaluations${out.approximate ? `; ${out.approximate} source(s) in components too large for a dense log det` : ''}`;
  return out;
}
