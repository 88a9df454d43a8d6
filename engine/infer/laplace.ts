/**
 * Laplace approximation of the shear posterior, MARGINALISED over every source parameter.
 *
 * H is the Hessian of −log p(θ | data) in the constrained (physical) parameters at the MAP θ̂:
 *   Cov(g) ≈ (H_gg − H_gs H_ss⁻¹ H_sg)⁻¹            (marginal: sources free — the reported error)
 *   Cov(g | sources) ≈ H_gg⁻¹                        (conditional: sources held at θ̂, for comparison)
 * Why the constrained space: the answer is in g units directly; at a stationary point of the
 * posterior density of θ (runMap's default objective) the constrained-space Laplace equals the
 * unconstrained one pushed through the delta method, so nothing is lost; and the prior Hessian
 * is analytic and diagonal there.
 *
 * H_ss is sparse: sources interact only through pixels that both their stamps cover. Its columns
 * come from central finite differences of the engine's EXACT gradient, perturbing many sources at
 * once: a star colouring of the stamp-overlap graph (graph.ts: no two overlapping sources share a
 * colour, and no path of four sources uses only two colours) lets every block H[s, t] be read off
 * one of the two summed columns that hold it — the one in whose row the other source is the only
 * perturbed neighbour — and H is symmetric, so that suffices; where both columns hold it, the two
 * readings are averaged. Cost: 2 × (colours × free source parameters + 2) gradient evaluations,
 * independent of the number of sources for a given density (a distance-2 colouring, which reads
 * every block off both columns, needs up to twice the colours on the project's scenes).
 *
 * The Schur complement is solved per connected component of the overlap graph (H_ss is block
 * diagonal over them): dense Cholesky when the component is small enough (a definite proof of
 * positive definiteness), preconditioned conjugate gradients with a block-Jacobi preconditioner
 * (per-source blocks) for larger ones. A failed Cholesky or a non-positive curvature in CG is
 * reported (`sourceHessianPD: false`) and the errors are NaN rather than garbage.
 */
import type { SceneLayout } from '../scene/layout.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type ExposureSet, type SceneGradient, type SceneParams, type SourceParamName } from '../scene/types.ts';
import type { Posterior } from './posterior.ts';
import { shearJacobian, shearJacobianDerivatives } from './degeneracy.ts';
import { cholesky, choleskyPivot, choleskySolve, inverseDiagonal, spdInverse } from '../util/linalg.ts';
import { components, starColouring } from '../util/graph.ts';

export interface LaplaceEngine {
  readonly set: ExposureSet;
  readonly layout: SceneLayout;
  evaluate(params: SceneParams): Promise<{ logL: number; gradient: SceneGradient }>;
  /** Optional: up to `replicas` parameter sets in one call (ShearEngine with replicas > 1); the Hessian's columns are then batched. */
  evaluateMany?(list: readonly SceneParams[]): Promise<Array<{ logL: number; gradient: SceneGradient }>>;
  readonly replicas?: number;
}

export interface LaplaceOptions {
  /**
   * Finite-difference steps in physical units: relative for flux and hlr (× value), absolute for
   * the others (e, g dimensionless; dx, dy arcsec). Defaults: flux 1e-3, hlr 1e-3, e 1e-3,
   * dx/dy 1e-3″, g 1e-3.
   */
  steps: { flux: number; hlr: number; e: number; offset: number; g: number };
  /**
   * Shear rows of the likelihood Hessian from its ellipticity rows and the shear–ellipticity
   * degeneracy (degeneracy.ts; default true), not from finite differences: exact cancellation in
   * the Schur complement. Only with both ellipticity components free.
   */
  deriveShearRows: boolean;
  /** Components with at most this many parameters are solved by dense Cholesky (default 1500). */
  denseLimit: number;
  /** PCG relative residual tolerance and iteration cap (large components only). */
  cgTol: number;
  cgMaxIterations: number;
  /**
   * Parameter sets per engine call for the finite-difference columns (default 1): with a
   * replicated engine (`evaluateMany`, `replicas` ≥ this), that many in one GPU pass, each
   * bit-identical to evaluating it alone. Capped at the engine's replicas. Leave 1 on a software
   * adapter, where batching measured slower.
   */
  batch?: number;
  /**
   * Only the source blocks H_ss (no shear columns, rows or prior): what the Laplace marginal of
   * the shear (laplace-marginal.ts) needs at its shifted points. Default false.
   */
  sourceBlocksOnly?: boolean;
  /**
   * A uniform shear prior U(low, high) enters H_gg as its moment-matched precision
   * 12/(high − low)² (the inverse of its variance) instead of its zero curvature. Default false
   * (the Laplace approximation of the posterior as it is). Why: on a sub-tile whose shear the
   * data barely constrain (one or two galaxies) the marginal precision is a difference of terms
   * 10³–10⁴ times larger and can come out ≤ 0; the posterior is then the box itself, whose width
   * this term supplies, and the errors exist (docs/inference.md "Shear errors on a sub-tile the
   * data barely constrain"). Where the data constrain the shear σ̂ falls by a fraction ≈ 6σ̂²/w².
   */
  boxShearPrior?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_LAPLACE: LaplaceOptions = {
  steps: { flux: 1e-3, hlr: 1e-3, e: 1e-3, offset: 1e-3, g: 1e-3 },
  deriveShearRows: true,
  denseLimit: 1500,
  cgTol: 1e-10,
  cgMaxIterations: 10000,
};

/** The sparse Hessian of −log posterior over the free parameters (constrained space). */
export interface SparseHessian {
  nSources: number;
  /** Free source-parameter kinds (indices into SOURCE_PARAM_NAMES), P of them per source. */
  kinds: number[];
  /** Free shear components (0 = g1, 1 = g2). */
  gFree: number[];
  /** Per source: sorted neighbour list (including itself) and the P×P blocks H[s, t], row-major. */
  neighbours: number[][];
  blocks: Float64Array[][];
  /** H[(s, l), g_a]: per g component a, a vector of length nSources·P. */
  sg: Float64Array[];
  /** H_gg (gFree.length²), row-major. */
  gg: Float64Array;
  /** How sg and gg's likelihood parts were obtained: derived from the ellipticity rows (degeneracy.ts) or finite differences. */
  shearRows?: 'derived' | 'finite-differences';
  /** The finite-difference shear rows of the likelihood alone, kept when `sg`/`gg` were derived (for checks). */
  measured?: { sg: Float64Array[]; gg: Float64Array } | null;
  /**
   * Per source and kind (nSources·P), 1 where that source holds the parameter fixed although the
   * kind is free for others (a point source's hlr, e1, e2): its row and column are the identity's,
   * so it adds nothing to log det H and its variance is not reported. Absent: none.
   */
  pinned?: Uint8Array;
}

/**
 * Rows and columns of the parameters that a source holds fixed while the kind is free for others
 * (ParamSpace.sourceIndex −1: a point source's size and shape) set to the identity's: zero
 * coupling to everything, 1 on the diagonal. Their finite differences measured a parameter that
 * is not in the posterior (a point source's hlr moves nothing: that row would be singular).
 */
function pinFixedRows(space: Posterior['space'], kinds: number[], neighbours: number[][], blocks: Float64Array[][], sg: Float64Array[]): Uint8Array | undefined {
  const n = neighbours.length;
  const P = kinds.length;
  const pinned = new Uint8Array(n * P);
  let any = false;
  for (let s = 0; s < n; s++)
    kinds.forEach((k, kk) => {
      if (space.sourceIndex[6 * s + k] < 0) {
        pinned[s * P + kk] = 1;
        any = true;
      }
    });
  if (!any) return undefined;
  for (let s = 0; s < n; s++)
    neighbours[s].forEach((t, bi) => {
      const b = blocks[s][bi];
      for (let l = 0; l < P; l++)
        for (let k = 0; k < P; k++) if (pinned[s * P + l] || pinned[t * P + k]) b[l * P + k] = t === s && l === k ? 1 : 0;
    });
  for (const col of sg) for (let i = 0; i < n * P; i++) if (pinned[i]) col[i] = 0;
  return pinned;
}

export interface LaplaceResult {
  /** Marginal shear errors (sources marginalised): G1_ERR, G2_ERR. NaN when not available. */
  g1Err: number;
  g2Err: number;
  /** Marginal covariance of (g1, g2) (2×2, row-major; NaN rows/cols for fixed components). */
  covariance: Float64Array;
  /** Conditional errors (sources held at the MAP): √(H_gg⁻¹)ᵢᵢ. */
  g1ErrConditional: number;
  g2ErrConditional: number;
  /** H_ss positive definite (every component's Cholesky, or CG curvature, succeeded). */
  sourceHessianPD: boolean;
  /** The Schur complement S is positive definite. */
  schurPD: boolean;
  ok: boolean;
  /** Human-readable explanation of any failure. */
  message: string;
  /** Sources in a component whose Hessian block is not positive definite (first 20). */
  badSources: number[];
  /** Sources left out of the error propagation (block not PD at the MAP): errors are conditional on them. */
  droppedSources: number[];
  /**
   * Marginal standard deviation of every source parameter (g and the other sources marginalised:
   * √[H⁻¹]ᵢᵢ), per SOURCE_PARAM_NAMES kind, one value per source; NaN for fixed parameters, for
   * dropped sources and when the shear covariance is not available. Exact for components solved
   * by Cholesky; for components solved by CG (more than `denseLimit` parameters) the within-
   * component part is the source's own block inverse — conditional on its blended neighbours, a
   * lower bound — and `sourceSdApproximate` counts those sources.
   */
  sourceSd: Record<SourceParamName, Float64Array>;
  sourceSdApproximate: number;
  /**
   * The Newton step −H⁻¹∇(−log p) at the point, shear part (g1, g2; 0 for a fixed component),
   * when the gradient was given: how far the quadratic model puts the mode from the point. A MAP
   * stopped at the loss's float32 rounding floor can sit off the mode along the soft
   * shear–ellipticity direction although the loss no longer decreases measurably; this says by
   * how much, in shear units. null without a gradient or when the solve failed.
   */
  newtonStepG: [number, number] | null;
  /** The whole Newton step: shear part as newtonStepG, sources in H's layout (s·P + kind; 0 for dropped sources). */
  newtonStep: { g: [number, number]; s: Float64Array } | null;
  colours: number;
  components: number;
  largestComponent: number;
  /** Gradient evaluations used. */
  evaluations: number;
  hessian: SparseHessian;
  timeMs: number;
}

// ---------------------------------------------------------------------------------------------
// Overlap graph and colouring

/** Per source, the sorted list of sources whose stamps overlap it (inside the image) in some quadrant. */
export function overlapGraph(engine: { set: ExposureSet; layout: SceneLayout }): number[][] {
  const n = engine.set.sources.length;
  const adj: Set<number>[] = Array.from({ length: n }, () => new Set<number>());
  const byQ = new Map<number, Array<{ s: number; x0: number; x1: number; y0: number; y1: number }>>();
  for (const p of engine.layout.pairs) {
    if (p.source >= n) continue; // pairs of other replicas (ShearEngine with replicas > 1)
    const q = engine.set.quadrants[p.quadrant];
    const x0 = Math.max(0, p.cx);
    const x1 = Math.min(q.width, p.cx + p.n);
    const y0 = Math.max(0, p.cy);
    const y1 = Math.min(q.height, p.cy + p.n);
    if (x0 >= x1 || y0 >= y1) continue;
    let a = byQ.get(p.quadrant);
    if (!a) byQ.set(p.quadrant, (a = []));
    a.push({ s: p.source, x0, x1, y0, y1 });
  }
  for (const rects of byQ.values()) {
    rects.sort((a, b) => a.x0 - b.x0);
    let maxW = 0;
    for (const r of rects) maxW = Math.max(maxW, r.x1 - r.x0);
    for (let i = 0; i < rects.length; i++) {
      const a = rects[i];
      for (let j = i + 1; j < rects.length && rects[j].x0 < a.x1; j++) {
        const b = rects[j];
        if (b.y0 < a.y1 && a.y0 < b.y1 && a.s !== b.s) {
          adj[a.s].add(b.s);
          adj[b.s].add(a.s);
        }
      }
      void maxW;
    }
  }
  return adj.map((s) => [...s].sort((a, b) => a - b));
}

// ---------------------------------------------------------------------------------------------
// Hessian by coloured finite differences

const G_KEYS = ['g1', 'g2'] as const;

function stepFor(kindIndex: number, value: number, o: LaplaceOptions, otherDisc: number): number {
  const name = SOURCE_PARAM_NAMES[kindIndex];
  if (name === 'flux') return o.steps.flux * Math.max(Math.abs(value), 1e-30);
  if (name === 'hlr') return o.steps.hlr * value;
  if (name === 'e1' || name === 'e2') {
    // stay well inside the unit disc
    const room = 1 - Math.hypot(value, otherDisc);
    return Math.min(o.steps.e, room / 4);
  }
  return o.steps.offset;
}

/** The sparse Hessian of −log posterior at the parameters `at` (all in physical units). */
export async function sparseHessian(engine: LaplaceEngine, posterior: Posterior, at: SceneParams, optsIn: Partial<LaplaceOptions> = {}): Promise<{ hessian: SparseHessian; colours: number; evaluations: number; adj: number[][] }> {
  const o: LaplaceOptions = { ...DEFAULT_LAPLACE, ...optsIn, steps: { ...DEFAULT_LAPLACE.steps, ...optsIn.steps } };
  const space = posterior.space;
  const n = engine.set.sources.length;
  const kinds = SOURCE_PARAM_NAMES.map((_, j) => j).filter((j) => space.priors[SOURCE_PARAM_NAMES[j]].type !== 'fixed');
  const P = kinds.length;
  const gFree = o.sourceBlocksOnly ? [] : [0, 1].filter((a) => space.gIndex[a] >= 0);
  const adj = overlapGraph(engine);
  const { colour, count } = starColouring(adj);
  const neighbours = adj.map((a, s) => [...a, s].sort((x, y) => x - y));
  const blocks = neighbours.map((nb) => nb.map(() => new Float64Array(P * P)));
  const blockIndex = (s: number, t: number) => neighbours[s].indexOf(t);
  const sg = gFree.map(() => new Float64Array(n * P));
  const gg = new Float64Array(gFree.length * gFree.length);
  const members: number[][] = Array.from({ length: count }, () => []);
  for (let s = 0; s < n; s++) members[colour[s]].push(s);
  // per colour and source: how many sources of that colour are it or its neighbours
  const perturbedNear = members.map(() => new Uint8Array(n));
  for (let s = 0; s < n; s++) for (const t of neighbours[s]) perturbedNear[colour[t]][s] = Math.min(255, perturbedNear[colour[t]][s] + 1);
  // which blocks H[s, t] were read off a column (the others are the transposes of H[t, s])
  const read = neighbours.map((nb) => new Uint8Array(nb.length));
  const total = 2 * (count * P + gFree.length);
  let evaluations = 0;
  // Parameter sets per engine call (`batch`): a replicated engine (ShearEngine with replicas > 1)
  // evaluates several in one GPU pass, each bit-identical to evaluating it alone — the columns
  // are independent, so they are batched; the Hessian is the same whatever the batch.
  const perCall = engine.evaluateMany ? Math.max(1, Math.min(o.batch ?? 1, engine.replicas ?? 1)) : 1;
  const gradients = async (list: SceneParams[]): Promise<SceneGradient[]> => {
    const out: SceneGradient[] = [];
    for (let i = 0; i < list.length; i += perCall) {
      const part = list.slice(i, i + perCall);
      const r = perCall > 1 ? await engine.evaluateMany!(part) : [await engine.evaluate(part[0])];
      for (const e of r) out.push(e.gradient);
      evaluations += part.length;
      o.onProgress?.(evaluations, total);
    }
    return out;
  };
  const name = (k: number) => SOURCE_PARAM_NAMES[k];
  const grad0 = async (p: SceneParams) => (await engine.evaluate(p)).gradient;
  let measured: { sg: Float64Array[]; gg: Float64Array } | null = null;

  // The columns: per (colour, kind) the sources of the colour moved together, then per free shear
  // component; each a central difference, so two parameter sets. Evaluated a batch of columns at a
  // time (as many as fill one engine call, at least one).
  type Column = { c: number; kk: number } | { a: number; ai: number };
  const columns: Column[] = [];
  for (let c = 0; c < count; c++) for (let kk = 0; kk < P; kk++) columns.push({ c, kk });
  gFree.forEach((a, ai) => columns.push({ a, ai }));
  const gCols: Float64Array[] = [];
  const perBatch = Math.max(1, Math.floor(perCall / 2));
  for (let b0 = 0; b0 < columns.length; b0 += perBatch) {
    const batch = columns.slice(b0, b0 + perBatch).map((col) => {
      const plus = cloneParams(at);
      const minus = cloneParams(at);
      const h = new Float64Array(n);
      if ('c' in col) {
        const key = name(kinds[col.kk]);
        for (const s of members[col.c]) {
          const other = key === 'e1' ? at.e2[s] : key === 'e2' ? at.e1[s] : 0;
          const step = stepFor(kinds[col.kk], at[key][s], o, other);
          plus[key][s] += step;
          minus[key][s] -= step;
          // the engine sees float32 parameters: divide by the step it actually applies
          h[s] = (Math.fround(plus[key][s]) - Math.fround(minus[key][s])) / 2;
        }
      } else {
        plus[G_KEYS[col.a]] += o.steps.g;
        minus[G_KEYS[col.a]] -= o.steps.g;
        h.fill((Math.fround(plus[G_KEYS[col.a]]) - Math.fround(minus[G_KEYS[col.a]])) / 2);
      }
      return { col, plus, minus, h };
    });
    const g = await gradients(batch.flatMap((x) => [x.plus, x.minus]));
    batch.forEach(({ col, h }, bi) => {
      const gp = g[2 * bi];
      const gm = g[2 * bi + 1];
      if ('c' in col) {
        const { c, kk } = col;
        for (const i of members[c]) {
          for (const j of neighbours[i]) {
            // row j's sum holds H[j, i] alone only when i is j's one neighbour of this colour
            if (perturbedNear[c][j] !== 1) continue;
            const bj = blockIndex(j, i);
            read[j][bj] = 1;
            const blk = blocks[j][bj];
            for (let ll = 0; ll < P; ll++) {
              const lkey = name(kinds[ll]);
              // −∂²logL/∂θ(j,l)∂θ(i,k)
              blk[ll * P + kk] = -(gp[lkey][j] - gm[lkey][j]) / (2 * h[i]);
            }
          }
        }
      } else {
        for (let s = 0; s < n; s++)
          for (let ll = 0; ll < P; ll++) {
            const lkey = name(kinds[ll]);
            sg[col.ai][s * P + ll] = -(gp[lkey][s] - gm[lkey][s]) / (2 * h[0]);
          }
        const cg = new Float64Array(gFree.length);
        gFree.forEach((b, bj) => (cg[bj] = -(gp[G_KEYS[b]] - gm[G_KEYS[b]]) / (2 * h[0])));
        gCols[col.ai] = cg;
      }
    });
  }
  const ng = gFree.length;
  for (let i = 0; i < ng; i++) for (let j = 0; j < ng; j++) gg[i * ng + j] = 0.5 * (gCols[j][i] + gCols[i][j]);

  // symmetrise the source blocks: H[s,t][l,k] and H[t,s][k,l], the mean of the two readings
  // where both columns held the block, else the one reading (the star colouring leaves none out)
  for (let s = 0; s < n; s++) {
    neighbours[s].forEach((t, bi) => {
      if (t < s) return;
      const ti = blockIndex(t, s);
      const A = blocks[s][bi];
      const B = blocks[t][ti];
      const [wa, wb] = read[s][bi] && read[t][ti] ? [0.5, 0.5] : read[s][bi] ? [1, 0] : read[t][ti] ? [0, 1] : [NaN, NaN];
      // (no free source parameter, P = 0: the blocks are empty and no column was read)
      if (Number.isNaN(wa) && P > 0) throw new Error(`Laplace: the Hessian block of sources ${s} and ${t} was read off no column (not a star colouring)`);
      for (let l = 0; l < P; l++)
        for (let k = 0; k < P; k++) {
          if (t === s && k < l) continue;
          const v = wa * A[l * P + k] + wb * B[k * P + l];
          A[l * P + k] = v;
          B[k * P + l] = v;
        }
    });
  }

  const pinned = pinFixedRows(space, kinds, neighbours, blocks, sg);

  // the shear rows from the ellipticity rows (degeneracy.ts): exact cancellation in float64 of
  // the likelihood's part of the Schur complement. Needs both ellipticity components free.
  const kE1 = kinds.indexOf(SOURCE_PARAM_NAMES.indexOf('e1'));
  const kE2 = kinds.indexOf(SOURCE_PARAM_NAMES.indexOf('e2'));
  let shearRows: 'derived' | 'finite-differences' = 'finite-differences';
  if (o.deriveShearRows && kE1 >= 0 && kE2 >= 0 && ng > 0) {
    const grad = await grad0(at); // ∂logL/∂θ at the point
    evaluations++;
    const kE = [kE1, kE2];
    const D: Array<[[number, number], [number, number]]> = [];
    const dD: Array<ReturnType<typeof shearJacobianDerivatives>> = [];
    const zero = (): [[number, number], [number, number]] => [
      [0, 0],
      [0, 0],
    ];
    for (let s = 0; s < n; s++) {
      // a shear-blind source's image does not depend on g: no share in the shear rows
      if (space.shearBlind[s]) {
        D.push(zero());
        dD.push({ dDde: [zero(), zero()], dDdg: [zero(), zero()] });
        continue;
      }
      const g: [number, number] = [at.g1, at.g2];
      const e: [number, number] = [at.e1[s], at.e2[s]];
      D.push(shearJacobian(g, e));
      dD.push(shearJacobianDerivatives(g, e));
    }
    const dl = (s: number, m: number) => -(m === 0 ? grad.e1[s] : grad.e2[s]); // ∇_e ℓ, ℓ = −logL
    const sgD = gFree.map(() => new Float64Array(n * P));
    gFree.forEach((a, ai) => {
      for (let s = 0; s < n; s++) {
        neighbours[s].forEach((t, bi) => {
          const b = blocks[s][bi];
          for (let l = 0; l < P; l++) sgD[ai][s * P + l] -= b[l * P + kE[0]] * D[t][0][a] + b[l * P + kE[1]] * D[t][1][a];
        });
        for (let k = 0; k < 2; k++) sgD[ai][s * P + kE[k]] -= dl(s, 0) * dD[s].dDde[k][0][a] + dl(s, 1) * dD[s].dDde[k][1][a];
      }
    });
    const ggD = new Float64Array(ng * ng);
    gFree.forEach((a, ai) =>
      gFree.forEach((b, bi) => {
        let v = 0;
        for (let s = 0; s < n; s++) {
          v -= sgD[bi][s * P + kE[0]] * D[s][0][a] + sgD[bi][s * P + kE[1]] * D[s][1][a];
          v -= dl(s, 0) * dD[s].dDdg[b][0][a] + dl(s, 1) * dD[s].dDdg[b][1][a];
        }
        ggD[ai * ng + bi] = v;
      }),
    );
    for (let i = 0; i < ng; i++) for (let j = 0; j < i; j++) ggD[i * ng + j] = ggD[j * ng + i] = 0.5 * (ggD[i * ng + j] + ggD[j * ng + i]);
    measured = { sg: sg.map((c) => c.slice()), gg: gg.slice() };
    sgD.forEach((c, ai) => sg[ai].set(c));
    gg.set(ggD);
    shearRows = 'derived';
  }

  // priors: the diagonal of −∇² log prior, at the constrained free values
  const theta = space.pack(at);
  const lp = space.logPrior(theta);
  gFree.forEach((a, ai) => (gg[ai * ng + ai] -= lp.hessDiag[space.gIndex[a]]));
  if (o.boxShearPrior) {
    gFree.forEach((a, ai) => {
      const p = space.priors[a === 0 ? 'g1' : 'g2'];
      if (p.type === 'uniform') gg[ai * ng + ai] += 12 / (p.high - p.low) ** 2;
    });
  }
  const cross = new Map(lp.hessPairs.map(([i, j, v]) => [`${i},${j}`, v]));
  for (let s = 0; s < n; s++) {
    const b = blocks[s][blockIndex(s, s)];
    kinds.forEach((k, kk) => {
      const fi = space.sourceIndex[6 * s + k];
      if (fi >= 0) b[kk * P + kk] -= lp.hessDiag[fi];
    });
    // non-separable pair priors (ba14 on e1, e2): the off-diagonal term, both triangles
    kinds.forEach((k, kk) =>
      kinds.forEach((l, ll) => {
        const fi = space.sourceIndex[6 * s + k];
        const fj = space.sourceIndex[6 * s + l];
        const v = fi >= 0 && fj >= 0 && fi !== fj ? cross.get(`${Math.min(fi, fj)},${Math.max(fi, fj)}`) : undefined;
        if (v !== undefined) b[ll * P + kk] -= v;
      }),
    );
  }
  return { hessian: { nSources: n, kinds, gFree, neighbours, blocks, sg, gg, shearRows, measured, ...(pinned ? { pinned } : {}) }, colours: count, evaluations, adj };
}

// ---------------------------------------------------------------------------------------------
// Schur complement

interface ComponentSolve {
  /** X = H_cc⁻¹ H_cg for each g column (length |members|·P each) or null if not PD. */
  x: Float64Array[] | null;
  /** The sources X is over: the component less `dropped`. */
  members: number[];
  /** Sources left out of the error propagation (their block is not positive definite). */
  dropped: number[];
  method: 'cholesky' | 'cg';
  message: string;
  /** diag(H_cc⁻¹) over `members` (length |members|·P): exact (Cholesky) or per-source blocks (CG). */
  diagInv: Float64Array | null;
}


/**
 * H_cc⁻¹ H_cg for one connected component of the stamp-overlap graph. A source whose curvature
 * block is not positive definite (a parameter the data and the priors do not pin down at this
 * point — a faint source at a stamp edge, a size at its bound) would void the whole shear error:
 * it is left out of the error propagation instead (its parameters held, so the shear errors are
 * conditional on them) and named in `dropped`. First the sources whose own P×P block is not PD,
 * then, while the component's Cholesky fails, the source owning the failing pivot.
 */
function solveComponent(H: SparseHessian, compIn: number[], o: LaplaceOptions): ComponentSolve {
  const P = H.kinds.length;
  const dropped: number[] = [];
  let comp = compIn.filter((s) => {
    const ok = spdInverse(H.blocks[s][H.neighbours[s].indexOf(s)], P) !== null;
    if (!ok) dropped.push(s);
    return ok;
  });
  for (;;) {
    const r = solveMembers(H, comp, o);
    if (r.x || r.pivot < 0) return { ...r, members: comp, dropped };
    const bad = comp[Math.floor(r.pivot / P)];
    dropped.push(bad);
    comp = comp.filter((s) => s !== bad);
  }
}

/** H_cc over `comp` (sources in that order, P parameters each) as a dense row-major matrix; sources outside `comp` are left out. */
function denseComponent(H: SparseHessian, comp: number[]): Float64Array {
  const P = H.kinds.length;
  const D = comp.length * P;
  const local = new Map<number, number>();
  comp.forEach((s, i) => local.set(s, i));
  const A = new Float64Array(D * D);
  comp.forEach((s, i) => {
    H.neighbours[s].forEach((t, bi) => {
      const j = local.get(t);
      if (j === undefined) return; // a dropped neighbour
      const b = H.blocks[s][bi];
      for (let l = 0; l < P; l++) for (let k = 0; k < P; k++) A[(i * P + l) * D + j * P + k] = b[l * P + k];
    });
  });
  return A;
}

/** Outcome of sourceLogDet. */
export interface SourceLogDet {
  /** log det H_ss over the sources not excluded (NaN when a block is not positive definite). */
  logDet: number;
  /** With `shear`: H_ss⁻¹ H_sg per free shear column (nSources·P; 0 for excluded sources). */
  x: Float64Array[] | null;
  /** Sources in components too large for a dense Cholesky: their log det is the sum of their own blocks' (neighbours' coupling left out). */
  approximate: number;
  /** Sources of the first component whose Cholesky failed (empty when all are PD). */
  failed: number[];
  /** log det of each component (its sources not excluded), in the order of `components(adj)`. */
  parts: Array<{ sources: number[]; logDet: number }>;
}

/**
 * log det H_ss, per connected component of the overlap graph (dense Cholesky up to `denseLimit`
 * parameters, the sum of the per-source blocks' log det beyond), over the sources not in
 * `exclude`; with `shear`, also H_ss⁻¹ H_sg (the conditional mode's response to the shear is
 * −H_ss⁻¹ H_sg). For the Laplace marginal of the shear (laplace-marginal.ts).
 */
export function sourceLogDet(H: SparseHessian, adj: number[][], exclude: ReadonlySet<number>, shear: boolean, optsIn: Partial<LaplaceOptions> = {}): SourceLogDet {
  const o: LaplaceOptions = { ...DEFAULT_LAPLACE, ...optsIn };
  const P = H.kinds.length;
  const n = H.nSources;
  const x = shear ? H.sg.map(() => new Float64Array(n * P)) : null;
  let logDet = 0;
  let approximate = 0;
  const parts: SourceLogDet['parts'] = [];
  for (const all of components(adj)) {
    const comp = all.filter((s) => !exclude.has(s));
    if (!comp.length || P === 0) continue;
    const D = comp.length * P;
    if (D <= o.denseLimit) {
      const A = denseComponent(H, comp);
      const pivot = choleskyPivot(A, D);
      if (pivot >= 0) return { logDet: NaN, x: null, approximate, failed: [comp[Math.floor(pivot / P)]], parts };
      let ld = 0;
      for (let i = 0; i < D; i++) ld += 2 * Math.log(A[i * D + i]);
      logDet += ld;
      parts.push({ sources: comp, logDet: ld });
      if (x)
        H.sg.forEach((col, a) => {
          const r = new Float64Array(D);
          comp.forEach((s, i) => r.set(col.subarray(s * P, s * P + P), i * P));
          choleskySolve(A, D, r);
          comp.forEach((s, i) => x[a].set(r.subarray(i * P, i * P + P), s * P));
        });
      continue;
    }
    approximate += comp.length;
    let ld = 0;
    for (const s of comp) {
      const b = H.blocks[s][H.neighbours[s].indexOf(s)].slice();
      const pivot = choleskyPivot(b, P);
      if (pivot >= 0) return { logDet: NaN, x: null, approximate, failed: [s], parts };
      for (let i = 0; i < P; i++) ld += 2 * Math.log(b[i * P + i]);
    }
    logDet += ld;
    parts.push({ sources: comp, logDet: ld });
    if (x) {
      const r = solveMembers(H, comp, o);
      if (!r.x) return { logDet: NaN, x: null, approximate, failed: comp.slice(0, 8), parts };
      r.x.forEach((xs, a) => comp.forEach((s, i) => x[a].set(xs.subarray(i * P, i * P + P), s * P)));
    }
  }
  return { logDet, x, approximate, failed: [], parts };
}

type MemberSolve = { x: Float64Array[] | null; method: 'cholesky' | 'cg'; message: string; pivot: number; diagInv: Float64Array | null };

function solveMembers(H: SparseHessian, comp: number[], o: LaplaceOptions): MemberSolve {
  const P = H.kinds.length;
  const D = comp.length * P;
  const local = new Map<number, number>();
  comp.forEach((s, i) => local.set(s, i));
  const rhs = H.sg.map((col) => {
    const r = new Float64Array(D);
    comp.forEach((s, i) => r.set(col.subarray(s * P, s * P + P), i * P));
    return r;
  });
  if (D <= o.denseLimit) {
    const A = denseComponent(H, comp);
    const pivot = choleskyPivot(A, D);
    if (pivot >= 0) return { x: null, method: 'cholesky', message: 'Cholesky failed', pivot, diagInv: null };
    for (const r of rhs) choleskySolve(A, D, r);
    return { x: rhs, method: 'cholesky', message: '', pivot: -1, diagInv: inverseDiagonal(A, D) };
  }
  // PCG with block-Jacobi preconditioner
  const diagInv: Float64Array[] = [];
  for (const s of comp) {
    const inv = spdInverse(H.blocks[s][H.neighbours[s].indexOf(s)], P);
    if (!inv) return { x: null, method: 'cg', message: `the diagonal block of source ${s} is not positive definite`, pivot: -1, diagInv: null };
    diagInv.push(inv);
  }
  const matvec = (v: Float64Array, out: Float64Array) => {
    out.fill(0);
    comp.forEach((s, i) => {
      H.neighbours[s].forEach((t, bi) => {
        const j = local.get(t);
        if (j === undefined) return; // a dropped neighbour
        const b = H.blocks[s][bi];
        for (let l = 0; l < P; l++) {
          let acc = 0;
          for (let k = 0; k < P; k++) acc += b[l * P + k] * v[j * P + k];
          out[i * P + l] += acc;
        }
      });
    });
  };
  const precond = (r: Float64Array, out: Float64Array) => {
    for (let i = 0; i < comp.length; i++) {
      const m = diagInv[i];
      for (let l = 0; l < P; l++) {
        let acc = 0;
        for (let k = 0; k < P; k++) acc += m[l * P + k] * r[i * P + k];
        out[i * P + l] = acc;
      }
    }
  };
  const xs: Float64Array[] = [];
  for (const b of rhs) {
    const x = new Float64Array(D);
    const r = b.slice();
    const z = new Float64Array(D);
    precond(r, z);
    const p = z.slice();
    const Ap = new Float64Array(D);
    let rz = r.reduce((s, v, i) => s + v * z[i], 0);
    const bn = Math.sqrt(b.reduce((s, v) => s + v * v, 0));
    let ok = bn === 0;
    for (let it = 0; it < o.cgMaxIterations && !ok; it++) {
      matvec(p, Ap);
      const pAp = p.reduce((s, v, i) => s + v * Ap[i], 0);
      if (!(pAp > 0)) return { x: null, method: 'cg', message: `non-positive curvature pᵀHp = ${pAp} in conjugate gradients`, pivot: -1, diagInv: null };
      const alpha = rz / pAp;
      let rn = 0;
      for (let i = 0; i < D; i++) {
        x[i] += alpha * p[i];
        r[i] -= alpha * Ap[i];
        rn += r[i] * r[i];
      }
      if (Math.sqrt(rn) <= o.cgTol * bn) {
        ok = true;
        break;
      }
      precond(r, z);
      const rzn = r.reduce((s, v, i) => s + v * z[i], 0);
      const beta = rzn / rz;
      rz = rzn;
      for (let i = 0; i < D; i++) p[i] = z[i] + beta * p[i];
    }
    if (!ok) return { x: null, method: 'cg', message: `conjugate gradients did not reach tolerance ${o.cgTol} in ${o.cgMaxIterations} iterations`, pivot: -1, diagInv: null };
    xs.push(x);
  }
  const diag = new Float64Array(D);
  diagInv.forEach((inv, i) => {
    for (let l = 0; l < P; l++) diag[i * P + l] = inv[l * P + l];
  });
  return { x: xs, method: 'cg', message: '', pivot: -1, diagInv: diag };
}

/**
 * Marginal variances of the source parameters from the component solves and the shear covariance
 * C = S⁻¹ (the block inverse of [[H_gg, H_gs], [H_sg, H_ss]]):
 *   [H⁻¹]_ss = H_ss⁻¹ + X C Xᵀ,   X = H_ss⁻¹ H_sg,
 * taken on the diagonal: diag(H_cc⁻¹) per component plus Σ_ab X_a C_ab X_b. Without a shear
 * covariance (shear fixed: nothing to add; not PD: unknown) only the first term, or NaN.
 */
function sourceStandardDeviations(H: SparseHessian, solutions: ComponentSolve[], cov: Float64Array | null): { sourceSd: Record<SourceParamName, Float64Array>; approximate: number } {
  const n = H.nSources;
  const P = H.kinds.length;
  const ng = H.gFree.length;
  const sourceSd = Object.fromEntries(SOURCE_PARAM_NAMES.map((k) => [k, new Float64Array(n).fill(NaN)])) as Record<SourceParamName, Float64Array>;
  let approximate = 0;
  if (ng > 0 && !cov) return { sourceSd, approximate };
  for (const sol of solutions) {
    if (!sol.x || !sol.diagInv) continue;
    if (sol.method === 'cg') approximate += sol.members.length;
    sol.members.forEach((s, i) => {
      for (let l = 0; l < P; l++) {
        let v = sol.diagInv![i * P + l];
        for (let a = 0; a < ng; a++)
          for (let b = 0; b < ng; b++) v += sol.x![a][i * P + l] * cov![H.gFree[a] * 2 + H.gFree[b]] * sol.x![b][i * P + l];
        sourceSd[SOURCE_PARAM_NAMES[H.kinds[l]]][s] = v > 0 && !H.pinned?.[s * P + l] ? Math.sqrt(v) : NaN;
      }
    });
  }
  return { sourceSd, approximate };
}

/** Marginal and conditional shear covariance from a sparse Hessian. */
export function schurShear(
  H: SparseHessian,
  adj: number[][],
  optsIn: Partial<LaplaceOptions> = {},
  /** ∇(−log p) at the point in H's layout (shear: per gFree entry; sources: s·P + kind), for the Newton step. */
  gradient?: { g: Float64Array; s: Float64Array },
): Omit<LaplaceResult, 'colours' | 'evaluations' | 'hessian' | 'timeMs'> {
  const o: LaplaceOptions = { ...DEFAULT_LAPLACE, ...optsIn };
  // the gradient's source part rides along as one more right-hand side of every component solve
  const Hx: SparseHessian = gradient ? { ...H, sg: [...H.sg, gradient.s] } : H;
  const ng = H.gFree.length;
  const P = H.kinds.length;
  const S = H.gg.slice();
  const comps = components(adj);
  let sourcePD = true;
  let solved = true;
  const bad: number[] = [];
  const dropped: number[] = [];
  const messages: string[] = [];
  const solutions: ComponentSolve[] = [];
  for (const comp of comps) {
    if (P === 0) break;
    const sol = solveComponent(Hx, comp, o);
    solutions.push(sol);
    if (sol.dropped.length) {
      sourcePD = false;
      dropped.push(...sol.dropped);
      if (bad.length < 20) bad.push(...sol.dropped.slice(0, 20 - bad.length));
    }
    if (!sol.x) {
      sourcePD = false;
      solved = false;
      if (bad.length < 20) bad.push(...sol.members.slice(0, 20 - bad.length));
      if (messages.length < 3) messages.push(`sources [${sol.members.slice(0, 8).join(', ')}${sol.members.length > 8 ? ', …' : ''}]: ${sol.message}`);
      continue;
    }
    // S −= H_gc X
    for (let a = 0; a < ng; a++)
      for (let b = 0; b < ng; b++) {
        let acc = 0;
        const col = H.sg[a];
        const x = sol.x[b];
        sol.members.forEach((s, i) => {
          for (let l = 0; l < P; l++) acc += col[s * P + l] * x[i * P + l];
        });
        S[a * ng + b] -= acc;
      }
  }
  for (let a = 0; a < ng; a++)
    for (let b = a + 1; b < ng; b++) {
      const v = 0.5 * (S[a * ng + b] + S[b * ng + a]);
      S[a * ng + b] = S[b * ng + a] = v;
    }
  const covariance = new Float64Array(4).fill(NaN);
  let schurPD = false;
  let g1Err = NaN;
  let g2Err = NaN;
  if (solved && ng > 0) {
    const inv = spdInverse(S, ng);
    if (inv) {
      schurPD = true;
      H.gFree.forEach((a, ai) => H.gFree.forEach((b, bi) => (covariance[a * 2 + b] = inv[ai * ng + bi])));
      g1Err = Math.sqrt(covariance[0]);
      g2Err = Math.sqrt(covariance[3]);
    } else messages.push('the Schur complement H_gg − H_gs H_ss⁻¹ H_sg is not positive definite');
  }
  const { sourceSd, approximate } = sourceStandardDeviations(H, solutions, schurPD ? covariance : null);
  // Newton step in g: δg = S⁻¹ (r_g − H_gs H_ss⁻¹ r_s), step = −δg (r = ∇(−log p))
  let newtonStepG: [number, number] | null = null;
  let newtonStep: { g: [number, number]; s: Float64Array } | null = null;
  if (gradient && solved && schurPD && ng > 0) {
    const rhs = Float64Array.from(gradient.g);
    for (const sol of solutions) {
      if (!sol.x) continue;
      const y = sol.x[ng];
      for (let a = 0; a < ng; a++) {
        let acc = 0;
        sol.members.forEach((src, i) => {
          for (let l = 0; l < P; l++) acc += H.sg[a][src * P + l] * y[i * P + l];
        });
        rhs[a] -= acc;
      }
    }
    const step: [number, number] = [0, 0];
    const u = new Float64Array(ng);
    H.gFree.forEach((a, ai) => {
      let v = 0;
      H.gFree.forEach((b, bi) => (v += covariance[a * 2 + b] * rhs[bi]));
      step[a] = -v;
      u[ai] = v;
    });
    newtonStepG = step;
    // source part: −(y − X u), y = H_cc⁻¹ r_c, X = H_cc⁻¹ H_cg
    const sStep = new Float64Array(H.nSources * P);
    for (const sol of solutions) {
      if (!sol.x) continue;
      sol.members.forEach((src, i) => {
        for (let l = 0; l < P; l++) {
          let v = sol.x![ng][i * P + l];
          for (let a = 0; a < ng; a++) v -= sol.x![a][i * P + l] * u[a];
          sStep[src * P + l] = -v;
        }
      });
    }
    newtonStep = { g: step, s: sStep };
  }
  const condInv = ng > 0 ? spdInverse(H.gg, ng) : null;
  const cond = [NaN, NaN];
  if (condInv) H.gFree.forEach((a, ai) => (cond[a] = Math.sqrt(condInv[ai * ng + ai])));
  if (dropped.length) {
    messages.unshift(
      `${dropped.length} source(s) [${dropped.slice(0, 12).join(', ')}${dropped.length > 12 ? ', …' : ''}] left out of the error propagation: their curvature block is not positive definite at the MAP (parameters the data and priors do not pin down); the shear errors are conditional on their parameters, and too small by as much as those sources' share of the shear information`,
    );
  }
  if (!solved) messages.unshift('the source block H_ss of the Hessian is not positive definite at this point (not a local maximum of the posterior, or parameters the data do not constrain under flat priors)');
  if (ng === 0) messages.push('g1 and g2 are both fixed: no shear error to report');
  return {
    g1Err,
    g2Err,
    covariance,
    g1ErrConditional: cond[0],
    g2ErrConditional: cond[1],
    sourceHessianPD: sourcePD,
    schurPD,
    ok: solved && schurPD,
    message: messages.join('; '),
    badSources: bad,
    droppedSources: dropped,
    sourceSd,
    sourceSdApproximate: approximate,
    newtonStepG,
    newtonStep,
    components: comps.length,
    largestComponent: comps.reduce((m, c) => Math.max(m, c.length), 0),
  };
}

/**
 * Shear errors from the Laplace approximation at `at` (normally the MAP), marginalised over
 * all source parameters, with the conditional errors for comparison.
 */
export async function laplaceShear(engine: LaplaceEngine, posterior: Posterior, at: SceneParams, opts: Partial<LaplaceOptions> = {}): Promise<LaplaceResult> {
  const t0 = performance.now();
  const { hessian, colours, evaluations, adj } = await sparseHessian(engine, posterior, at, opts);
  // ∇(−log p) at the point (one more evaluation) for the Newton-step diagnostic
  const space = posterior.space;
  const dens = await posterior.logDensityConstrained(space.pack(at));
  const P = hessian.kinds.length;
  const gradient = { g: new Float64Array(hessian.gFree.length), s: new Float64Array(hessian.nSources * P) };
  let finite = Number.isFinite(dens.value);
  hessian.gFree.forEach((a, ai) => (gradient.g[ai] = -dens.grad[space.gIndex[a]]));
  for (let src = 0; src < hessian.nSources; src++)
    hessian.kinds.forEach((k, kk) => {
      const fi = space.sourceIndex[6 * src + k];
      gradient.s[src * P + kk] = fi >= 0 ? -dens.grad[fi] : 0;
    });
  for (const v of gradient.g) if (!Number.isFinite(v)) finite = false;
  for (const v of gradient.s) if (!Number.isFinite(v)) finite = false;
  const r = schurShear(hessian, adj, opts, finite ? gradient : undefined);
  return { ...r, colours, evaluations: evaluations + 1, hessian, timeMs: performance.now() - t0 };
}

/** Outcome of newtonPolish. */
export interface NewtonPolish {
  /** The polished point (the input point when not applied). */
  params: SceneParams;
  applied: boolean;
  /** Shear part of the Newton step taken (or proposed), and of the next one at the new point. */
  stepG: [number, number];
  nextStepG: [number, number] | null;
  message: string;
  evaluations: number;
}

/** How the warning of polishWarning begins (`shine status` counts the sub-tiles that carry it). */
export const OFF_MODE_WARNING = "the MAP's shear may be";

/**
 * A warning when the MAP's shear may be off its mode by a sizeable fraction of its error: the
 * Newton step from the MAP (or, after the polish, the next one) is more than `threshold` (0.5) of
 * σ̂ in either component and was not taken. L-BFGS can stop short of the mode (on the realistic
 * sub-tile a stale preconditioner left a step of 5.7σ̂, which the one-step polish refused; docs/
 * inference.md "When MAP stops at the precision floor"); its `converged` says nothing about that,
 * so the sub-tile's warnings must. Null when the step is small or was taken.
 */
export function polishWarning(pol: NewtonPolish, g1Err: number, g2Err: number, threshold = 0.5): string | null {
  const inSigma = (v: [number, number]) => Math.max(Math.abs(v[0]) / g1Err, Math.abs(v[1]) / g2Err);
  const fmt = (v: [number, number]) => `(${v[0].toExponential(2)}, ${v[1].toExponential(2)})`;
  if (!(g1Err > 0 && g2Err > 0)) return null;
  const left: [number, number] | null = pol.applied ? pol.nextStepG : pol.stepG;
  if (!left) return null;
  const r = inSigma(left);
  if (!(r > threshold)) return null;
  return (
    `${OFF_MODE_WARNING} ${r.toFixed(2)}σ̂ off its mode: the ${pol.applied ? 'next ' : ''}Newton step in shear ${fmt(left)} was not taken ` +
    `(${pol.message}); refit from these products (shine subtile --start-from) to test it`
  );
}

/** Options of newtonPolish. */
export interface NewtonPolishOptions {
  /**
   * Most Newton steps (default 1). 1: one step, kept when the next is below a quarter of it (the
   * rule before 2026-12-07). More: a chord iteration with the same Hessian, each step kept while
   * it is at most 0.9 of the previous one, until the next is below 0.1 % of the smaller shear error.
   */
  polishSteps?: number;
}

/**
 * Newton steps with the Laplace Hessian from the MAP, kept only while they converge.
 *
 * L-BFGS stops when the loss, a float32 sum, no longer decreases measurably ('precision-floor'),
 * but along the soft shear–ellipticity direction (curvature ~1/σ_g², shape noise) a loss change
 * of 10⁻² nats is a shear offset of ~10⁻³, while the gradient — accurate to far better than the
 * loss — still points at the mode. The Hessian H computed for the errors gives the step
 * Δ = −H⁻¹∇(−log p) (LaplaceResult.newtonStep). A step is taken when the new point lies inside
 * every support, log p does not fall beyond its rounding, and the next step, from the gradient
 * there with the same H, is small enough: with `polishSteps` 1 below a quarter of this one (the
 * quadratic model holds); with more, at most 0.9 of it — the same H at every point is a chord
 * iteration, which converges at the rate of that ratio (on the realistic sub-tile 0.27: a shear
 * step of 1.5·10⁻² = 5.7σ̂ refused by the quarter rule; docs/plan.md). It stops when the next step
 * is below 0.1 % of the smaller shear error. Else the last point kept (the MAP when none) is
 * returned and the message says why. Costs one gradient evaluation per step plus one, and one
 * Schur solve per step.
 */
export async function newtonPolish(engine: LaplaceEngine, posterior: Posterior, at: SceneParams, lap: LaplaceResult, opts: Partial<LaplaceOptions> & NewtonPolishOptions = {}): Promise<NewtonPolish> {
  const none = (message: string, stepG: [number, number] = [0, 0], next: [number, number] | null = null, evaluations = 0): NewtonPolish => ({ params: at, applied: false, stepG, nextStepG: next, message, evaluations });
  if (!lap.newtonStep) return none('no Newton step (Laplace not available at this point)');
  const maxSteps = Math.max(1, Math.floor(opts.polishSteps ?? 1));
  const ratioMax = maxSteps === 1 ? 0.25 : 0.9;
  const H = lap.hessian;
  const P = H.kinds.length;
  const space = posterior.space;
  const adj = H.neighbours.map((nb, s) => nb.filter((t) => t !== s));
  const size = (v: [number, number]) => Math.max(Math.abs(v[0]), Math.abs(v[1]));
  const stopBelow = 1e-3 * Math.min(lap.g1Err, lap.g2Err);
  const d0 = await posterior.logDensityConstrained(space.pack(at));
  let evaluations = 1;
  let here = at;
  let dHere = d0.value;
  let step = lap.newtonStep;
  const firstG: [number, number] = [step.g[0], step.g[1]];
  const total: [number, number] = [0, 0];
  let kept = 0;
  let why = '';
  let lastNext: [number, number] | null = null;
  for (let k = 1; k <= maxSteps; k++) {
    const p1 = cloneParams(here);
    p1.g1 += step.g[0];
    p1.g2 += step.g[1];
    for (let s = 0; s < H.nSources; s++)
      H.kinds.forEach((kind, kk) => {
        p1[SOURCE_PARAM_NAMES[kind]][s] += step.s[s * P + kk];
      });
    const theta1 = space.pack(p1);
    try {
      space.inverse(theta1);
    } catch (e) {
      why = `the Newton step leaves a prior's support (${(e as Error).message})`;
      break;
    }
    const d1 = await posterior.logDensityConstrained(theta1);
    evaluations++;
    if (!Number.isFinite(d1.value)) {
      why = 'the log density is not finite after the Newton step';
      break;
    }
    const r1 = { g: new Float64Array(H.gFree.length), s: new Float64Array(H.nSources * P) };
    H.gFree.forEach((a, ai) => (r1.g[ai] = -d1.grad[space.gIndex[a]]));
    for (let s = 0; s < H.nSources; s++)
      H.kinds.forEach((kind, kk) => {
        const fi = space.sourceIndex[6 * s + kind];
        r1.s[s * P + kk] = fi >= 0 ? -d1.grad[fi] : 0;
      });
    const nextFull = schurShear(H, adj, opts, r1);
    const next = nextFull.newtonStepG;
    lastNext = next;
    // the loss may not fall measurably (that is why L-BFGS stopped), but it must not rise beyond its rounding
    const noise = 1e-8 * Math.max(1, Math.abs(dHere)) + 1e-3;
    if (d1.value < dHere - noise) {
      why = `log p fell by ${(dHere - d1.value).toExponential(2)} after Newton step ${k}`;
      break;
    }
    if (!next || !(size(next) <= ratioMax * size(step.g))) {
      why = `the next Newton step (shear ${next ? size(next).toExponential(2) : 'n/a'}) is not below ${maxSteps === 1 ? 'a quarter' : '0.9'} of step ${k} (${size(step.g).toExponential(2)}): ${maxSteps === 1 ? 'the quadratic model does not hold' : 'the iteration does not contract'}`;
      break;
    }
    kept = k;
    total[0] += step.g[0];
    total[1] += step.g[1];
    here = p1;
    dHere = d1.value;
    if (maxSteps === 1 || size(next) <= stopBelow || !nextFull.newtonStep) break;
    step = nextFull.newtonStep;
  }
  if (kept === 0) return none(`${why}; MAP kept`, firstG, lastNext, evaluations);
  const tail = why ? ` (then ${why})` : '';
  return {
    params: here,
    applied: true,
    stepG: total,
    nextStepG: lastNext,
    message: `${kept} Newton step(s) of ${size(total).toExponential(2)} in shear applied (next ${lastNext ? size(lastNext).toExponential(2) : 'n/a'}; log p ${dHere >= d0.value ? '+' : ''}${(dHere - d0.value).toExponential(2)})${tail}`,
    evaluations,
  };
}
