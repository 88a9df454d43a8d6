/**
 * Curvature preconditioner for the MAP optimisation in the unconstrained space z.
 *
 * Why: on a real sub-tile the curvatures of the loss differ by many orders of magnitude between
 * parameters — the offsets of a bright source (arcsec) ~10⁶–10⁸ nats per unit², the log-flux,
 * log-hlr and e of a faint one ~10²–10⁴ — and flux, hlr and e are correlated within a source.
 * Plain L-BFGS (initial inverse Hessian γI) then needs hundreds of iterations.
 *
 * What: an approximation M of the Hessian of the loss in z with an "arrow" structure:
 *   - one dense P×P block per source (its free parameters among flux, hlr, e1, e2, dx, dy),
 *   - the (g1, g2) block,
 *   - the full shear–source coupling column H_sg (the g's couple to every source, and in the
 *     likelihood g and the e's are nearly degenerate, so this coupling matters),
 * all other cross-source terms set to zero. M⁻¹v is applied exactly (block solves plus a 2×2
 * Schur complement), so L-BFGS starts from H₀ = M⁻¹ and only has to learn the blend couplings.
 *
 * How (cheap): forward differences of the exact z-gradient of the loss. Sources are coloured so
 * that no two sources of a colour share a pixel (distance-1 colouring of the stamp-overlap graph):
 * perturbing the parameter k of all sources of a colour at once, the change of source s's own
 * gradient is H[s,s] e_k h (its neighbours are not perturbed). The g columns are one evaluation
 * each. Cost: colours × P + (free g's) evaluations (plus the gradient at the point, which the
 * optimiser needs anyway). Each source block is symmetrised and its eigenvalues replaced by
 * max(|λ|, floorRel·λ_max, floorAbs), so M is positive definite even where the loss is not
 * convex (far from the optimum the chain-rule terms of the bijections can be negative).
 */
import type { SceneLayout } from '../scene/layout.ts';
import type { ExposureSet } from '../scene/types.ts';
import { overlapGraph } from './laplace.ts';
import { symEigen } from '../util/linalg.ts';
import { distance1Colouring } from '../util/graph.ts';

export interface PreconditionOptions {
  /** Forward-difference step in z (log-flux, log-hlr, e, arcsec, g) — default 1e-3. */
  step: number;
  /** Eigenvalue floor of each block relative to its largest |eigenvalue| (default 1e-8). */
  floorRel: number;
  /** Absolute eigenvalue floor (default 1e-6 nats per unit z²). */
  floorAbs: number;
  /** Keep the shear–source coupling column (default true). */
  shearCoupling: boolean;
}

export const DEFAULT_PRECONDITION: PreconditionOptions = { step: 1e-3, floorRel: 1e-8, floorAbs: 1e-6, shearCoupling: false };

/** Loss (−log density of z) and its gradient; a non-finite value means an invalid point. */
export type LossFn = (z: Float64Array) => Promise<{ value: number; grad: Float64Array }>;
/** The loss of several points, each as `LossFn` would give it (a replicated engine evaluates them together). */
export type LossBatchFn = (zs: Float64Array[]) => Promise<Array<{ value: number; grad: Float64Array }>>;

/** Which free indices form the shear block and each source's block. */
export interface BlockStructure {
  /** Free indices of (g1, g2) that are free (0–2 of them). */
  g: number[];
  /** Per source, its free indices (same count P for every source). */
  sources: number[][];
}


/** A symmetric positive-definite block stored as V diag(λ) Vᵀ (floored eigenvalues). */
class SpdBlock {
  readonly n: number;
  readonly values: Float64Array;
  readonly vectors: Float64Array;
  /** Number of eigenvalues that were raised by the floor (negative or tiny curvature). */
  readonly floored: number;
  constructor(a: Float64Array, n: number, floorRel: number, floorAbs: number) {
    this.n = n;
    const sym = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) sym[i * n + j] = 0.5 * (a[i * n + j] + a[j * n + i]);
    const { values, vectors } = symEigen(sym, n);
    let max = 0;
    for (const v of values) if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
    const floor = Math.max(floorRel * max, floorAbs);
    let floored = 0;
    for (let i = 0; i < n; i++) {
      const v = Number.isFinite(values[i]) ? Math.abs(values[i]) : floor;
      if (!(values[i] >= floor)) floored++;
      values[i] = Math.max(v, floor);
    }
    this.values = values;
    this.vectors = vectors;
    this.floored = floored;
  }
  /** out = f(M) x with f(λ) = λ^power (power −1: solve, 1: multiply). */
  apply(x: ArrayLike<number>, out: Float64Array, power: 1 | -1): void {
    const n = this.n;
    const V = this.vectors;
    const t = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += V[i * n + k] * x[i];
      t[k] = power === 1 ? s * this.values[k] : s / this.values[k];
    }
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += V[i * n + k] * t[k];
      out[i] = s;
    }
  }
}

export interface Preconditioner {
  /** M⁻¹ v (an SPD linear map): L-BFGS's initial inverse Hessian. */
  solve(v: ArrayLike<number>): Float64Array;
  /** Engine evaluations spent building it. */
  evaluations: number;
  colours: number;
  /** Eigenvalues raised by the floor (all blocks together). */
  floored: number;
  /** Whether the shear–source coupling was kept (false if its Schur complement was not PD). */
  shearCoupling: boolean;
  /** Largest / smallest diagonal curvature seen, for the log. */
  curvatureRange: [number, number];
}

/** Stamp-overlap graph when the engine exposes its layout; otherwise every source touches every other. */
export function sourceGraph(engine: unknown, nSources: number): number[][] {
  const e = engine as { set?: ExposureSet; layout?: SceneLayout };
  if (e && e.set && e.layout && e.set.sources.length === nSources) return overlapGraph({ set: e.set, layout: e.layout });
  return Array.from({ length: nSources }, (_, s) => Array.from({ length: nSources }, (_, t) => t).filter((t) => t !== s));
}

/**
 * Builds the arrow preconditioner at z from forward differences of the loss gradient.
 * `at` is the loss at z (value and gradient, already computed); `adj` the source overlap graph.
 * With `lossBatch` every column's point is evaluated through it (a replicated engine: several
 * per GPU pass; each result equals `loss` of that point, so the preconditioner is the same).
 */
export async function buildPreconditioner(
  loss: LossFn,
  z: Float64Array,
  at: { value: number; grad: Float64Array },
  structure: BlockStructure,
  adj: number[][],
  optsIn: Partial<PreconditionOptions> = {},
  lossBatch?: LossBatchFn,
): Promise<Preconditioner> {
  const o: PreconditionOptions = { ...DEFAULT_PRECONDITION, ...optsIn };
  const d = z.length;
  const nS = structure.sources.length;
  // blocks may differ in size (a point source has flux, dx, dy only): source s occupies
  // [off[s], off[s] + size[s]) of the concatenated source vector
  const size = structure.sources.map((r) => r.length);
  const off = new Int32Array(nS + 1);
  for (let s = 0; s < nS; s++) off[s + 1] = off[s] + size[s];
  const total = off[nS];
  const P = size.reduce((a, b) => Math.max(a, b), 0);
  const ng = structure.g.length;
  const { colour, count } = P > 0 ? distance1Colouring(adj) : { colour: new Int32Array(nS), count: 0 };
  const members: number[][] = Array.from({ length: count }, () => []);
  // no free source parameter (P = 0): no source colour class (every source parameter is fixed)
  if (P > 0) for (let s = 0; s < nS; s++) members[colour[s]].push(s);
  let evaluations = 0;
  const h = o.step;
  // every column: the free indices perturbed together (a colour's k-th parameters, or one g)
  const srcCols: Array<{ mem: number[]; idx: number[]; k: number }> = [];
  for (let c = 0; c < count; c++) {
    for (let k = 0; k < P; k++) {
      // the sources of this colour that have a k-th free parameter
      const mem = members[c].filter((s) => k < size[s]);
      if (mem.length) srcCols.push({ mem, idx: mem.map((s) => structure.sources[s][k]), k });
    }
  }
  const allIdx = [...srcCols.map((c) => c.idx), ...structure.g.map((i) => [i])];
  const points = allIdx.map((idx) => {
    const zp = z.slice();
    for (const i of idx) zp[i] = z[i] + h;
    return zp;
  });
  /** gradient difference at z + h·(unit vector on `idx`), divided by the step actually taken. */
  const toColumn = (zp: Float64Array, idx: number[], r: { value: number; grad: Float64Array }): { dg: Float64Array; hs: Float64Array } | null => {
    if (!Number.isFinite(r.value) || !r.grad.every(Number.isFinite)) return null;
    const hs = Float64Array.from(idx, (i) => zp[i] - z[i]);
    const dg = new Float64Array(d);
    for (let i = 0; i < d; i++) dg[i] = r.grad[i] - at.grad[i];
    return { dg, hs };
  };
  let results: Array<{ value: number; grad: Float64Array }>;
  if (lossBatch && points.length > 1) {
    results = await lossBatch(points);
    evaluations += points.length;
  } else {
    results = [];
    for (const zp of points) {
      evaluations++;
      results.push(await loss(zp));
    }
  }
  const cols = results.map((r, n) => toColumn(points[n], allIdx[n], r));
  const raw = size.map((n) => new Float64Array(n * n));
  const sourceOk = new Uint8Array(nS).fill(1);
  srcCols.forEach(({ mem, k }, n) => {
    const col = cols[n];
    mem.forEach((s, m) => {
      if (!col) {
        sourceOk[s] = 0;
        return;
      }
      const rows = structure.sources[s];
      const ns = size[s];
      for (let l = 0; l < ns; l++) raw[s][l * ns + k] = col.dg[rows[l]] / col.hs[m];
    });
  });
  // shear block and the coupling column H_sg
  const gRaw = new Float64Array(ng * ng);
  const sg: Float64Array[] = [];
  let gOk = true;
  for (let a = 0; a < ng; a++) {
    const col = cols[srcCols.length + a];
    if (!col) {
      gOk = false;
      break;
    }
    for (let b = 0; b < ng; b++) gRaw[b * ng + a] = col.dg[structure.g[b]] / col.hs[0];
    const v = new Float64Array(total);
    for (let s = 0; s < nS; s++) for (let l = 0; l < size[s]; l++) v[off[s] + l] = col.dg[structure.sources[s][l]] / col.hs[0];
    sg.push(v);
  }
  // a failed column (invalid point; should not happen for a small step) falls back to the
  // diagonal of an identity-scaled block — L-BFGS still converges, only slower
  let floored = 0;
  let cmin = Infinity;
  let cmax = 0;
  const blocks = raw.map((b, s) => {
    const n = size[s];
    if (!sourceOk[s]) {
      const id = new Float64Array(n * n);
      for (let i = 0; i < n; i++) id[i * n + i] = 1;
      return new SpdBlock(id, n, 0, 1);
    }
    for (let i = 0; i < n; i++) {
      const v = b[i * n + i];
      if (v > 0) {
        cmin = Math.min(cmin, v);
        cmax = Math.max(cmax, v);
      }
    }
    const blk = new SpdBlock(b, n, o.floorRel, o.floorAbs);
    floored += blk.floored;
    return blk;
  });
  let gBlock: SpdBlock | null = null;
  if (ng > 0) {
    if (!gOk) {
      gRaw.fill(0);
      for (let i = 0; i < ng; i++) gRaw[i * ng + i] = 1;
    }
    gBlock = new SpdBlock(gRaw, ng, o.floorRel, o.floorAbs);
    floored += gBlock.floored;
  }
  const scatter = (v: ArrayLike<number>, rows: number[]) => Float64Array.from(rows, (i) => v[i]);
  const blockSolve = (v: Float64Array): Float64Array => {
    // Hss⁻¹ applied to a vector in the concatenated source layout
    const out = new Float64Array(total);
    for (let s = 0; s < nS; s++) {
      if (!size[s]) continue;
      const tmp = new Float64Array(size[s]);
      blocks[s].apply(v.subarray(off[s], off[s + 1]), tmp, -1);
      out.set(tmp, off[s]);
    }
    return out;
  };
  // Schur complement of the arrow: S = Hgg − Hgs Hss⁻¹ Hsg (must be PD to keep the coupling)
  let coupling = o.shearCoupling && gOk && ng > 0 && nS > 0 && P > 0;
  let schur: SpdBlock | null = null;
  let W: Float64Array[] = []; // Hss⁻¹ Hsg, one column per g
  if (coupling) {
    W = sg.map((col) => blockSolve(col));
    const S = new Float64Array(ng * ng);
    for (let a = 0; a < ng; a++)
      for (let b = 0; b < ng; b++) {
        let acc = 0;
        for (let i = 0; i < total; i++) acc += sg[a][i] * W[b][i];
        S[a * ng + b] = 0.5 * (gRaw[a * ng + b] + gRaw[b * ng + a]) - acc;
      }
    for (let a = 0; a < ng; a++)
      for (let b = a + 1; b < ng; b++) S[a * ng + b] = S[b * ng + a] = 0.5 * (S[a * ng + b] + S[b * ng + a]);
    // keep the coupling only if S is comfortably positive definite
    const e = symEigen(S, ng);
    const maxG = Math.max(...gBlock!.values);
    if (Math.min(...e.values) > 1e-6 * maxG) schur = new SpdBlock(S, ng, 0, 0);
    else coupling = false;
  }
  const srcRows = structure.sources;
  const solve = (v: ArrayLike<number>): Float64Array => {
    const out = new Float64Array(d);
    const vs = new Float64Array(total);
    for (let s = 0; s < nS; s++) for (let l = 0; l < size[s]; l++) vs[off[s] + l] = v[srcRows[s][l]];
    const vg = scatter(v, structure.g);
    let xs: Float64Array;
    const xg = new Float64Array(ng);
    if (coupling && schur) {
      // [Hgg Hgs; Hsg Hss] [xg; xs] = [vg; vs]:  S xg = vg − Hgs Hss⁻¹ vs,  xs = Hss⁻¹ (vs − Hsg xg)
      const u = blockSolve(vs);
      const rhs = new Float64Array(ng);
      for (let a = 0; a < ng; a++) {
        let acc = 0;
        for (let i = 0; i < total; i++) acc += sg[a][i] * u[i];
        rhs[a] = vg[a] - acc;
      }
      schur.apply(rhs, xg, -1);
      xs = u;
      for (let a = 0; a < ng; a++) for (let i = 0; i < total; i++) xs[i] -= W[a][i] * xg[a];
    } else {
      xs = blockSolve(vs);
      if (gBlock) gBlock.apply(vg, xg, -1);
    }
    for (let s = 0; s < nS; s++) for (let l = 0; l < size[s]; l++) out[srcRows[s][l]] = xs[off[s] + l];
    structure.g.forEach((i, a) => (out[i] = xg[a]));
    return out;
  };
  return { solve, evaluations, colours: count, floored, shearCoupling: coupling, curvatureRange: [cmin, cmax] };
}
