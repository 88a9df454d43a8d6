/**
 * Per-parameter widths in the unconstrained space z from the sparse Hessian of −log p(θ) at the
 * MAP (laplace.ts): σ_θ,i = 1/√H_ii — the conditional width, which is exactly the optimal
 * mean-field width for a Gaussian posterior — mapped to z by |dθ_i/dz_i| at the MAP. They set
 * the initial VI guide and the initial NUTS inverse mass matrix (σ²) and chain jitter.
 */
import { SOURCE_PARAM_NAMES } from '../scene/types.ts';
import type { SparseHessian } from './laplace.ts';
import type { ParamSpace } from './posterior.ts';
import { discPullback, scalarDerivative } from './transforms.ts';

export function laplaceZScales(space: ParamSpace, H: SparseHessian, z: ArrayLike<number>, fallback = 0.1): { scales: Float64Array; fallbacks: number } {
  const d = space.dim;
  const hDiag = new Float64Array(d).fill(NaN);
  const nG = H.gFree.length;
  H.gFree.forEach((a, k) => {
    const i = space.gIndex[a];
    if (i >= 0) hDiag[i] = H.gg[k * nG + k];
  });
  const P = H.kinds.length;
  for (let s = 0; s < H.nSources; s++) {
    const self = H.neighbours[s].indexOf(s);
    if (self < 0) continue;
    const block = H.blocks[s][self];
    H.kinds.forEach((kind, l) => {
      const i = space.sourceIndex[s * SOURCE_PARAM_NAMES.length + kind];
      if (i >= 0) hDiag[i] = block[l * P + l];
    });
  }
  // |dθ_i/dz_i| at z
  const jac = new Float64Array(d);
  for (const b of space.blocks) {
    if (b.kind === 'scalar') jac[b.index] = Math.abs(scalarDerivative(b.t, z[b.index]));
    else {
      jac[b.i1] = b.radius * Math.abs(discPullback(z[b.i1], z[b.i2], 1, 0)[0]);
      jac[b.i2] = b.radius * Math.abs(discPullback(z[b.i1], z[b.i2], 0, 1)[1]);
    }
  }
  const scales = new Float64Array(d);
  let fallbacks = 0;
  for (let i = 0; i < d; i++) {
    const s = 1 / (Math.sqrt(hDiag[i]) * jac[i]);
    if (Number.isFinite(s) && s > 0) scales[i] = s;
    else {
      scales[i] = fallback;
      fallbacks++;
    }
  }
  return { scales, fallbacks };
}
