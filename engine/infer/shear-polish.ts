/**
 * The MAP along the exact shear–shape degeneracy, solved on the CPU.
 *
 * A source's image depends on the shear g and its intrinsic distortion e only through the observed
 * distortion ε = observedShape(g, e) (degeneracy.ts: the profile is circular, so A·Aᵀ with
 * A = S(g)·S(e) fixes the image). Moving g while every source keeps its ε — each e (and a bulge's
 * e) set to intrinsicShape(g', ε) — leaves the likelihood exactly unchanged; only the priors move:
 *
 *   F(g') = log p(g') + Σ_s log p_e(intrinsicShape(g', ε_s)) + (the other priors, constant).
 *
 * Along this curve L-BFGS sees a loss change far below the float32 rounding of the pixel sum when
 * the pixels pin the shapes tightly (bright sources: the likelihood's curvature dwarfs the priors'),
 * so it stops ('precision-floor') with the shear wherever the degenerate direction was left — on a
 * `ci` sub-tile with the noise 10× lower, 0.014 from the mode, and the linear Newton step, which
 * also moves every shape, could not recover it (docs/inference.md "The shear along the
 * degeneracy"). Here the maximum of F is found in float64 by Newton's method on g with
 * central differences (F costs a prior evaluation: no GPU). Only when every source's ellipticity
 * (and bulge ellipticity) is free, the shear is free and the objective is the posterior without a
 * log-Jacobian (MAP); runMap then checks the new point with one engine evaluation.
 */
import type { ParamSpace } from './posterior.ts';
import { intrinsicShape, observedShape } from './degeneracy.ts';

/** Outcome of shearAlongShapes. */
export interface ShearAlongShapes {
  /** The constrained free vector at the maximum of F (the input when nothing moved or it does not apply). */
  theta: Float64Array;
  /** Shear step taken, and F(new) − F(old) (≥ 0). */
  stepG: [number, number];
  gain: number;
  iterations: number;
  /** Why it did not apply, or what it did. */
  message: string;
  applies: boolean;
}

type V2 = [number, number];

/**
 * The ellipticity pairs (free indices) the shear acts on: every source's (e1, e2) and, for bulge +
 * disk, (bulgeE1, bulgeE2) — except shear-blind sources', which the shear does not touch.
 */
function shapePairs(space: ParamSpace): { pairs: Array<[number, number]>; missing: string | null } {
  const pairs: Array<[number, number]> = [];
  const n = space.nSources;
  const e1k = 2;
  const e2k = 3;
  for (let s = 0; s < n; s++) {
    if (space.shearBlind[s]) continue;
    const i1 = space.sourceIndex[6 * s + e1k];
    const i2 = space.sourceIndex[6 * s + e2k];
    if (i1 < 0 || i2 < 0) return { pairs, missing: `the ellipticity of source ${s} is not free` };
    pairs.push([i1, i2]);
  }
  const nb = space.profileNames.length;
  const j1 = space.profileNames.indexOf('bulgeE1');
  const j2 = space.profileNames.indexOf('bulgeE2');
  if (j1 >= 0 || j2 >= 0) {
    for (let s = 0; s < n; s++) {
      if (space.shearBlind[s]) continue;
      const i1 = j1 >= 0 ? space.extraIndex[s * nb + j1] : -1;
      const i2 = j2 >= 0 ? space.extraIndex[s * nb + j2] : -1;
      if (i1 < 0 || i2 < 0) return { pairs, missing: `the bulge ellipticity of source ${s} is not free` };
      pairs.push([i1, i2]);
    }
  }
  return { pairs, missing: null };
}

/**
 * Maximises F(g') (above) from the constrained free vector `theta`. Newton steps on g with a
 * central-difference gradient and Hessian, halved until F rises; stops when a step is below
 * `tol` in g or after `maxIterations`.
 */
export function shearAlongShapes(space: ParamSpace, theta: ArrayLike<number>, opts: { tol?: number; maxIterations?: number } = {}): ShearAlongShapes {
  const th0 = Float64Array.from(theta);
  const none = (message: string): ShearAlongShapes => ({ theta: th0, stepG: [0, 0], gain: 0, iterations: 0, message, applies: false });
  const [ig1, ig2] = space.gIndex;
  if (ig1 < 0 && ig2 < 0) return none('the shear is fixed');
  const { pairs, missing } = shapePairs(space);
  if (missing) return none(`${missing}: moving the shear would change the image`);
  const g0: V2 = [ig1 >= 0 ? th0[ig1] : space.base.g1, ig2 >= 0 ? th0[ig2] : space.base.g2];
  const eps = pairs.map(([i1, i2]) => observedShape(g0, [th0[i1], th0[i2]]));
  const eMax = space.ellipticityMax;
  const free = [ig1 >= 0, ig2 >= 0];
  const at = (g: V2): Float64Array | null => {
    const th = th0.slice();
    if (ig1 >= 0) th[ig1] = g[0];
    if (ig2 >= 0) th[ig2] = g[1];
    for (let k = 0; k < pairs.length; k++) {
      const e = intrinsicShape(g, eps[k]);
      if (!(Math.hypot(e[0], e[1]) < eMax)) return null;
      th[pairs[k][0]] = e[0];
      th[pairs[k][1]] = e[1];
    }
    return th;
  };
  const F = (g: V2): number => {
    const th = at(g);
    if (!th) return -Infinity;
    const v = space.logPrior(th).value;
    return Number.isFinite(v) ? v : -Infinity;
  };
  const f0 = F(g0);
  if (!Number.isFinite(f0)) return none('the log prior is not finite at the MAP');
  const tol = opts.tol ?? 1e-10;
  const maxIt = opts.maxIterations ?? 100;
  const h = 1e-5;
  let g: V2 = [g0[0], g0[1]];
  let f = f0;
  let it = 0;
  for (; it < maxIt; it++) {
    // gradient and Hessian of F in the free shear components (central differences, float64)
    const shift = (a: number, d: number): V2 => (a === 0 ? [g[0] + d, g[1]] : [g[0], g[1] + d]);
    const grad: V2 = [0, 0];
    const hess = [0, 0, 0]; // h00, h01, h11
    for (let a = 0; a < 2; a++) {
      if (!free[a]) continue;
      const fp = F(shift(a, h));
      const fm = F(shift(a, -h));
      grad[a] = (fp - fm) / (2 * h);
      hess[a === 0 ? 0 : 2] = (fp - 2 * f + fm) / (h * h);
    }
    if (free[0] && free[1]) {
      const fpp = F([g[0] + h, g[1] + h]);
      const fpm = F([g[0] + h, g[1] - h]);
      const fmp = F([g[0] - h, g[1] + h]);
      const fmm = F([g[0] - h, g[1] - h]);
      hess[1] = (fpp - fpm - fmp + fmm) / (4 * h * h);
    }
    if (![...grad, ...hess].every(Number.isFinite)) break;
    // Newton step on the free components when −H is positive definite, else steepest ascent
    let step: V2;
    const a00 = free[0] ? -hess[0] : 1;
    const a11 = free[1] ? -hess[2] : 1;
    const a01 = free[0] && free[1] ? -hess[1] : 0;
    const det = a00 * a11 - a01 * a01;
    if (a00 > 0 && det > 0) step = [(a11 * grad[0] - a01 * grad[1]) / det, (a00 * grad[1] - a01 * grad[0]) / det];
    else step = [grad[0] * 1e-3, grad[1] * 1e-3];
    if (!free[0]) step[0] = 0;
    if (!free[1]) step[1] = 0;
    let moved = false;
    for (let half = 0; half < 40; half++) {
      const gn: V2 = [g[0] + step[0], g[1] + step[1]];
      const fn = F(gn);
      if (fn > f) {
        g = gn;
        f = fn;
        moved = true;
        break;
      }
      step = [step[0] / 2, step[1] / 2];
      if (Math.max(Math.abs(step[0]), Math.abs(step[1])) < tol) break;
    }
    if (!moved || Math.max(Math.abs(step[0]), Math.abs(step[1])) < tol) {
      if (moved) it++;
      break;
    }
  }
  const stepG: V2 = [g[0] - g0[0], g[1] - g0[1]];
  if (f <= f0) return { ...none('the shear is already at the maximum along the degeneracy'), applies: true, iterations: it };
  return {
    theta: at(g)!,
    stepG,
    gain: f - f0,
    iterations: it,
    applies: true,
    message: `shear moved by (${stepG[0].toExponential(2)}, ${stepG[1].toExponential(2)}) along the shear–shape degeneracy (every observed shape kept; log prior +${(f - f0).toExponential(2)}, ${it} Newton steps)`,
  };
}
