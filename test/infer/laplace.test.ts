/**
 * The coloured finite-difference Hessian and the Schur complement, on a tiny GPU scene whose
 * stamp-overlap graph is a chain plus a triangle (so the star colouring really perturbs several
 * sources per evaluation, and reads some blocks off one column only):
 *  - against a dense Hessian built one parameter at a time from the same engine gradients;
 *  - against second differences of the INDEPENDENT float64 reference log-likelihood (model64)
 *    plus the analytic prior Hessian, for the shear rows and the diagonal;
 *  - the Schur-complement covariance of (g1, g2) against the (g, g) block of a dense inverse
 *    (Gauss–Jordan written here), by Cholesky and by conjugate gradients;
 *  - a source block that is not positive definite is flagged, with NaN errors.
 */
import { describe, it, expect } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { countedEngine } from '../helpers/counted-engine.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { laplaceScene } from '../helpers/laplace-scene.ts';
import { logLikelihood64 } from '../../engine/gpu/render/model64.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type SceneParams } from '../../engine/scene/types.ts';
import { Posterior } from '../../engine/infer/posterior.ts';
import { overlapGraph, schurShear, sparseHessian, type SparseHessian } from '../../engine/infer/laplace.ts';
import { distance2Colouring, starColouring } from '../../engine/util/graph.ts';
import { gaussJordanInverse } from '../helpers/dense-inverse.ts';

/** Dense matrix of the sparse Hessian, free order: g's, then per source its P kinds. */
function toDense(H: SparseHessian): { A: Float64Array; D: number } {
  const P = H.kinds.length;
  const ng = H.gFree.length;
  const D = ng + H.nSources * P;
  const A = new Float64Array(D * D);
  for (let a = 0; a < ng; a++) for (let b = 0; b < ng; b++) A[a * D + b] = H.gg[a * ng + b];
  for (let a = 0; a < ng; a++)
    for (let i = 0; i < H.nSources * P; i++) {
      A[a * D + ng + i] = H.sg[a][i];
      A[(ng + i) * D + a] = H.sg[a][i];
    }
  for (let s = 0; s < H.nSources; s++)
    H.neighbours[s].forEach((t, bi) => {
      const b = H.blocks[s][bi];
      for (let l = 0; l < P; l++) for (let k = 0; k < P; k++) A[(ng + s * P + l) * D + ng + t * P + k] = b[l * P + k];
    });
  return { A, D };
}

describe('Laplace: coloured Hessian and Schur complement', () => {
  it('matches a dense finite-difference Hessian, the float64 reference, and a dense inverse', async () => {
    const device = await testDevice();
    const sc = laplaceScene();
    const eng = await ShearEngine.create(device, sc.set);
    const adj = overlapGraph(eng);
    const { count } = starColouring(adj);
    console.log('overlap graph', JSON.stringify(adj), 'colours', count, 'distance-2 colours', distance2Colouring(adj).count);
    expect(count).toBeLessThan(sc.set.sources.length); // several sources share a colour
    const at = cloneParams(sc.params);
    const catalog = { flux: sc.params.flux.map((f) => f * 1.05), hlr: sc.params.hlr.map((h) => h * 0.97) };
    const post = new Posterior(eng, {}, at, { catalog });
    const t0 = performance.now();
    const { hessian: H, evaluations } = await sparseHessian(eng, post, at);
    console.log(`coloured Hessian: ${evaluations} gradient evaluations, ${(performance.now() - t0).toFixed(0)} ms`);
    // + 1: the likelihood gradient at the point, for the derived shear rows
    expect(evaluations).toBe(2 * (count * 6 + 2) + 1);
    expect(H.shearRows).toBe('derived');
    const { A, D } = toDense(H);
    const P = 6;
    const n = sc.set.sources.length;
    expect(D).toBe(2 + n * P);

    // (1) dense FD of the same engine gradients, one parameter at a time (+ prior diagonal)
    const space = post.space;
    const theta = space.pack(at);
    const prior = space.logPrior(theta);
    const steps = (k: string, v: number) => (k === 'flux' || k === 'hlr' ? 1e-3 * v : 1e-3);
    const names: Array<[string, number]> = [['g1', -1], ['g2', -1]];
    for (let s = 0; s < n; s++) for (const k of SOURCE_PARAM_NAMES) names.push([k, s]);
    const get = (p: SceneParams, k: string, s: number) => (s < 0 ? p[k as 'g1'] : p[k as 'flux'][s]);
    const set1 = (p: SceneParams, k: string, s: number, v: number) => {
      if (s < 0) p[k as 'g1'] = v;
      else p[k as 'flux'][s] = v;
    };
    const gradVec = (g: SceneParams) => names.map(([k, s]) => get(g, k, s));
    const dense = new Float64Array(D * D);
    for (let j = 0; j < D; j++) {
      const [k, s] = names[j];
      const h = steps(k, get(at, k, s));
      const pp = cloneParams(at);
      const pm = cloneParams(at);
      set1(pp, k, s, get(at, k, s) + h);
      set1(pm, k, s, get(at, k, s) - h);
      const gp = gradVec((await eng.evaluate(pp)).gradient);
      const gm = gradVec((await eng.evaluate(pm)).gradient);
      for (let i = 0; i < D; i++) dense[i * D + j] = -(gp[i] - gm[i]) / (2 * h);
    }
    for (let i = 0; i < D; i++)
      for (let j = 0; j < i; j++) {
        const v = 0.5 * (dense[i * D + j] + dense[j * D + i]);
        dense[i * D + j] = dense[j * D + i] = v;
      }
    for (let i = 0; i < D; i++) dense[i * D + i] -= prior.hessDiag[i]; // same free order
    let worst = 0;
    const scale = (i: number, j: number) => Math.sqrt(Math.abs(dense[i * D + i] * dense[j * D + j]));
    for (let i = 0; i < D; i++)
      for (let j = 0; j < D; j++) {
        const e = Math.abs(A[i * D + j] - dense[i * D + j]) / scale(i, j);
        worst = Math.max(worst, e);
      }
    console.log('coloured vs dense (same gradients): worst |ΔH_ij|/√(H_ii H_jj) =', worst.toExponential(2));
    expect(worst).toBeLessThan(1e-4);
    // entries for non-overlapping sources are exactly zero in the sparse structure
    for (let s = 0; s < n; s++)
      for (let t = 0; t < n; t++) {
        if (s === t || adj[s].includes(t)) continue;
        for (let l = 0; l < P; l++) for (let k = 0; k < P; k++) expect(Math.abs(dense[(2 + s * P + l) * D + 2 + t * P + k]) / scale(2 + s * P + l, 2 + t * P + k)).toBeLessThan(1e-4);
      }

    // (2) float64 reference: second differences of −logL64 (+ prior) for the g rows and the diagonal
    const L64 = (p: SceneParams) => logLikelihood64(sc.set, p).logL;
    const second = (i: number, j: number) => {
      const [ki, si] = names[i];
      const [kj, sj] = names[j];
      const hi = steps(ki, get(at, ki, si));
      const hj = steps(kj, get(at, kj, sj));
      const f = (a: number, b: number) => {
        const p = cloneParams(at);
        set1(p, ki, si, get(p, ki, si) + a * hi);
        set1(p, kj, sj, get(p, kj, sj) + b * hj);
        return L64(p);
      };
      const v = i === j ? (f(1, 0) - 2 * L64(at) + f(-1, 0)) / (hi * hi) : (f(1, 1) - f(1, -1) - f(-1, 1) + f(-1, -1)) / (4 * hi * hj);
      return -v - (i === j ? prior.hessDiag[i] : 0);
    };
    let worst64 = 0;
    const checked: Array<[number, number]> = [];
    for (let j = 0; j < D; j++) checked.push([0, j], [1, j]);
    for (let i = 2; i < D; i++) checked.push([i, i]);
    // and the cross terms between overlapping sources (first kind pair of each edge)
    for (let s = 0; s < n; s++) for (const t of adj[s]) if (t > s) checked.push([2 + s * P + 2, 2 + t * P + 0], [2 + s * P + 4, 2 + t * P + 5]);
    for (const [i, j] of checked) {
      const ref = second(i, j);
      const e = Math.abs(A[i * D + j] - ref) / scale(i, j);
      worst64 = Math.max(worst64, e);
      expect(e, `H[${names[i]}, ${names[j]}] ${A[i * D + j]} vs float64 ${ref}`).toBeLessThan(2e-3);
    }
    console.log(`coloured vs float64 reference (${checked.length} entries): worst relative`, worst64.toExponential(2));

    // (3) Schur complement vs the (g, g) block of a dense inverse, Cholesky and CG paths
    const inv = gaussJordanInverse(A, D);
    for (const denseLimit of [1500, 0]) {
      const r = schurShear(H, adj, { denseLimit, cgTol: 1e-13 });
      expect(r.ok).toBe(true);
      for (let a = 0; a < 2; a++)
        for (let b = 0; b < 2; b++) expect(Math.abs(r.covariance[a * 2 + b] - inv[a * D + b])).toBeLessThan(1e-8 * Math.abs(inv[a * D + a]));
      expect(Math.abs(r.g1Err - Math.sqrt(inv[0])) / Math.sqrt(inv[0])).toBeLessThan(1e-8);
      // conditional: inverse of the 2×2 (g, g) block alone
      const det = A[0] * A[D + 1] - A[1] * A[D];
      expect(Math.abs(r.g1ErrConditional - Math.sqrt(A[D + 1] / det)) / r.g1ErrConditional).toBeLessThan(1e-10);
      expect(r.g1Err).toBeGreaterThan(r.g1ErrConditional);
      // every source parameter's marginal sd: √ of the dense inverse's diagonal (exact on the
      // Cholesky path; on the CG path the within-component part is the source's own block, a
      // lower bound that is exact for sources without blended neighbours)
      let worstSd = 0;
      for (let sIdx = 0; sIdx < n; sIdx++)
        SOURCE_PARAM_NAMES.forEach((k, l) => {
          const ref = Math.sqrt(inv[(2 + sIdx * P + l) * D + 2 + sIdx * P + l]);
          const got = r.sourceSd[k][sIdx];
          expect(Number.isFinite(got), `${k}[${sIdx}]`).toBe(true);
          if (denseLimit > 0 || adj[sIdx].length === 0) {
            worstSd = Math.max(worstSd, Math.abs(got - ref) / ref);
            expect(Math.abs(got - ref) / ref, `${k}[${sIdx}] sd ${got} vs dense ${ref}`).toBeLessThan(1e-7);
          } else expect(got, `${k}[${sIdx}]`).toBeLessThanOrEqual(ref * (1 + 1e-9));
        });
      expect(r.sourceSdApproximate).toBe(denseLimit > 0 ? 0 : n);
      // the Newton step's shear part −(H⁻¹ r)_g for a gradient r: the dense inverse's rows
      const rVec = Float64Array.from({ length: D }, (_, i) => Math.sin(1.7 * i + 0.3) * (i < 2 ? 50 : 3));
      const rn = schurShear(H, adj, { denseLimit, cgTol: 1e-13 }, { g: rVec.slice(0, 2), s: rVec.slice(2) });
      for (let a = 0; a < 2; a++) {
        let ref = 0;
        for (let j = 0; j < D; j++) ref -= inv[a * D + j] * rVec[j];
        expect(Math.abs(rn.newtonStepG![a] - ref), `Newton step g${a + 1}: ${rn.newtonStepG![a]} vs dense ${ref}`).toBeLessThan(1e-8 * Math.abs(ref) + 1e-14);
      }
      expect(rn.covariance).toEqual(r.covariance); // the extra right-hand side changes nothing else
      console.log(`denseLimit ${denseLimit}: source sd vs dense inverse, worst relative ${worstSd.toExponential(2)}`);
      console.log(`denseLimit ${denseLimit}: G1_ERR ${r.g1Err.toExponential(4)} G2_ERR ${r.g2Err.toExponential(4)} (conditional ${r.g1ErrConditional.toExponential(4)}, ${r.g2ErrConditional.toExponential(4)}); dense inverse ${Math.sqrt(inv[0]).toExponential(4)}, ${Math.sqrt(inv[D + 1]).toExponential(4)}`);
    }

    // (4) a source whose block is not positive definite does not void the shear errors: it is
    // left out of the error propagation (named), and the errors equal the (g, g) block of the
    // dense inverse of the Hessian with that source's rows and columns removed
    const broken: SparseHessian = { ...H, blocks: H.blocks.map((row) => row.map((b) => b.slice())) };
    const self = broken.neighbours[1].indexOf(1);
    broken.blocks[1][self][2 * P + 2] = -Math.abs(broken.blocks[1][self][2 * P + 2]);
    const keep = Array.from({ length: D }, (_, i) => i).filter((i) => i < 2 || Math.floor((i - 2) / P) !== 1);
    const Dk = keep.length;
    const Ak = new Float64Array(Dk * Dk);
    keep.forEach((i, a) => keep.forEach((j, b) => (Ak[a * Dk + b] = A[i * D + j])));
    const invK = gaussJordanInverse(Ak, Dk);
    for (const denseLimit of [1500, 0]) {
      const r = schurShear(broken, adj, { denseLimit, cgTol: 1e-13 });
      expect(r.sourceHessianPD).toBe(false);
      expect(r.ok).toBe(true);
      expect(r.droppedSources).toEqual([1]);
      expect(r.message).toMatch(/1 source\(s\) \[1\] left out of the error propagation/);
      expect(Math.abs(r.g1Err - Math.sqrt(invK[0])) / Math.sqrt(invK[0])).toBeLessThan(1e-8);
      expect(Math.abs(r.g2Err - Math.sqrt(invK[Dk + 1])) / Math.sqrt(invK[Dk + 1])).toBeLessThan(1e-8);
    }
    // a coupling that makes the component indefinite although every own block is PD: the source
    // owning the failing pivot is dropped (dense path)
    const coupled: SparseHessian = { ...H, blocks: H.blocks.map((row) => row.map((b) => b.slice())) };
    const edge = adj.findIndex((a) => a.length > 0);
    expect(edge).toBeGreaterThanOrEqual(0); // the scene has overlapping stamps
    {
      const t = adj[edge][0];
      const d1 = coupled.blocks[edge][coupled.neighbours[edge].indexOf(edge)];
      const d2 = coupled.blocks[t][coupled.neighbours[t].indexOf(t)];
      const big = 2 * Math.sqrt(d1[0] * d2[0]);
      coupled.blocks[edge][coupled.neighbours[edge].indexOf(t)][0] = big;
      coupled.blocks[t][coupled.neighbours[t].indexOf(edge)][0] = big;
      const r = schurShear(coupled, adj, { denseLimit: 1500 });
      expect(r.ok).toBe(true);
      expect(r.droppedSources.length).toBe(1);
      expect([edge, t]).toContain(r.droppedSources[0]);
      expect(Number.isFinite(r.g1Err) && Number.isFinite(r.g2Err)).toBe(true);
    }
    eng.destroy();
  });

  it('a replicated engine batches the columns: the same Hessian bit for bit, in fewer engine calls', async () => {
    const device = await testDevice();
    const sc = laplaceScene();
    const single = await ShearEngine.create(device, sc.set);
    const many = await ShearEngine.create(device, sc.set, { replicas: 4 });
    const { engine: counted, count } = countedEngine(many);
    const at = cloneParams(sc.params);
    const a = await sparseHessian(single, new Posterior(single, {}, at), at);
    // without asking, one set per call (a software adapter's choice)
    const plain = await sparseHessian(counted, new Posterior(counted, {}, at), at);
    expect(count.calls).toBe(plain.evaluations);
    count.calls = 0;
    count.sets = 0;
    const b = await sparseHessian(counted, new Posterior(counted, {}, at), at, { batch: 4 });
    const columns = a.colours * 6 + 2;
    console.log(`${columns} columns: ${a.evaluations} evaluations one at a time; replicated engine (4): ${count.calls} calls for ${count.sets} parameter sets`);
    expect(b.evaluations).toBe(a.evaluations);
    expect(count.sets).toBe(a.evaluations);
    // two columns (four sets) per call, plus the derived shear rows' gradient at the point
    expect(count.calls).toBe(Math.ceil(columns / 2) + 1);
    expect(b.hessian.gg).toEqual(a.hessian.gg);
    b.hessian.sg.forEach((col, i) => expect(col).toEqual(a.hessian.sg[i]));
    b.hessian.blocks.forEach((row, s) => row.forEach((blk, i) => expect(blk).toEqual(a.hessian.blocks[s][i])));
    single.destroy();
    many.destroy();
  });
});
