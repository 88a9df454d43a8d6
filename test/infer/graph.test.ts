/**
 * Overlap graph, colourings and the Schur solve at sub-tile scale, without a GPU:
 * the sweep-built overlap graph equals a brute-force O(N²) check on random stamps of mixed
 * tiers in several quadrants; the distance-2 colouring has its property; the star colouring
 * (the Laplace Hessian's) is proper with no two-coloured path on four vertices (brute force), and
 * the coloured finite-difference Hessian built with it from a float64 quadratic stand-in for the
 * likelihood returns that quadratic's every block; and on a synthetic
 * sparse SPD Hessian for 2500 sources × 6 parameters, the per-component Cholesky and the
 * block-Jacobi CG paths give the same shear covariance.
 */
import { describe, it, expect } from 'vitest';
import { makeRng } from '../../engine/reference/scene-builder.ts';
import { overlapGraph, schurShear, sourceLogDet, sparseHessian, type SparseHessian } from '../../engine/infer/laplace.ts';
import { Posterior } from '../../engine/infer/posterior.ts';
import { allocParams, SOURCE_PARAM_NAMES, type SceneParams } from '../../engine/scene/types.ts';
import { symEigen } from '../../engine/util/linalg.ts';
import { components, distance2Colouring, starColouring } from '../../engine/util/graph.ts';
import type { ExposureSet } from '../../engine/scene/types.ts';
import type { SceneLayout } from '../../engine/scene/layout.ts';

function randomLayout(n: number, seed: number) {
  const rng = makeRng(seed);
  const quads = [
    { width: 2048, height: 2066 },
    { width: 2048, height: 2066 },
    { width: 1500, height: 1800 },
  ];
  const pairs: SceneLayout['pairs'] = [];
  for (let s = 0; s < n; s++) {
    const size = [64, 64, 64, 128, 256][rng.int(5)];
    for (let q = 0; q < quads.length; q++) {
      if (rng.uniform() < 0.2) continue;
      const cx = Math.floor(rng.range(-size, quads[q].width));
      const cy = Math.floor(rng.range(-size, quads[q].height));
      pairs.push({ pairIndex: pairs.length, source: s, quadrant: q, n: size, m: 2 * size, cx, cy });
    }
  }
  const set = { quadrants: quads, sources: Array.from({ length: n }, (_, i) => ({ id: i, stampSize: 64 })), pairs: [], psfSize: 21 } as unknown as ExposureSet;
  return { set, layout: { pairs, batches: [], quadrants: [], fftSizes: [] } as SceneLayout };
}

/**
 * A symmetric block-sparse matrix on the overlap graph `adj`: diagonal blocks from `diag(l, k)`,
 * off-diagonal blocks uniform in [−1, 1], each mirrored into its transpose.
 */
function symmetricBlocks(adj: number[][], P: number, rng: ReturnType<typeof makeRng>, diag: (l: number, k: number) => number) {
  const neighbours = adj.map((a, s) => [...a, s].sort((x, y) => x - y));
  const blocks = neighbours.map((nb) => nb.map(() => new Float64Array(P * P)));
  for (let s = 0; s < adj.length; s++)
    neighbours[s].forEach((t, bi) => {
      if (t < s) return;
      const B = blocks[s][bi];
      for (let l = 0; l < P; l++) for (let k = 0; k < P; k++) B[l * P + k] = t === s ? diag(l, k) : rng.range(-1, 1);
      if (t === s) return;
      const T = blocks[t][neighbours[t].indexOf(s)];
      for (let l = 0; l < P; l++) for (let k = 0; k < P; k++) T[k * P + l] = B[l * P + k];
    });
  return { neighbours, blocks };
}

describe('overlap graph and colouring', () => {
  it('sweep graph = brute force; colouring is distance-2', () => {
    const n = 600;
    const eng = randomLayout(n, 7);
    const t0 = performance.now();
    const adj = overlapGraph(eng);
    const { colour, count } = distance2Colouring(adj);
    const ms = performance.now() - t0;
    const brute: Set<number>[] = Array.from({ length: n }, () => new Set());
    const P = eng.layout.pairs;
    for (let i = 0; i < P.length; i++)
      for (let j = i + 1; j < P.length; j++) {
        const a = P[i];
        const b = P[j];
        if (a.quadrant !== b.quadrant || a.source === b.source) continue;
        const q = eng.set.quadrants[a.quadrant];
        const x0 = Math.max(a.cx, b.cx, 0);
        const x1 = Math.min(a.cx + a.n, b.cx + b.n, q.width);
        const y0 = Math.max(a.cy, b.cy, 0);
        const y1 = Math.min(a.cy + a.n, b.cy + b.n, q.height);
        if (x0 < x1 && y0 < y1) {
          brute[a.source].add(b.source);
          brute[b.source].add(a.source);
        }
      }
    let edges = 0;
    let mismatches = 0;
    for (let s = 0; s < n; s++) {
      if (JSON.stringify(adj[s]) !== JSON.stringify([...brute[s]].sort((a, b) => a - b))) mismatches++;
      edges += adj[s].length;
    }
    expect(mismatches).toBe(0);
    expect(edges).toBeGreaterThan(n);
    let clashes = 0;
    for (let s = 0; s < n; s++) {
      const near = new Set<number>();
      for (const t of adj[s]) {
        near.add(t);
        for (const u of adj[t]) if (u !== s) near.add(u);
      }
      for (const t of near) if (colour[t] === colour[s]) clashes++;
    }
    expect(clashes).toBe(0);
    console.log(`${n} sources, ${edges / 2} overlaps, ${count} colours, ${components(adj).length} components, ${ms.toFixed(1)} ms`);
    expect(count).toBeLessThan(n / 4);
  });

  it('star colouring: proper, no two-coloured path on four vertices (brute force), fewer colours than distance-2', () => {
    for (const [n, seed] of [
      [600, 7],
      [300, 11],
      [150, 13],
    ]) {
      const adj = overlapGraph(randomLayout(n, seed));
      const { colour, count } = starColouring(adj);
      for (let s = 0; s < n; s++) {
        expect(colour[s]).toBeGreaterThanOrEqual(0);
        expect(colour[s]).toBeLessThan(count);
      }
      let improper = 0;
      let bicoloured = 0;
      // every path a–b–c–d (distinct vertices): two colours only if colour(a) = colour(c) and colour(b) = colour(d)
      for (let b = 0; b < n; b++)
        for (const a of adj[b]) {
          if (colour[a] === colour[b]) improper++;
          for (const c of adj[b]) {
            if (c === a || colour[c] !== colour[a]) continue;
            for (const d of adj[c]) if (d !== b && d !== a && colour[d] === colour[b]) bicoloured++;
          }
        }
      const d2 = distance2Colouring(adj).count;
      console.log(`${n} sources: star colouring ${count} colours, distance-2 ${d2}`);
      expect(improper).toBe(0);
      expect(bicoloured).toBe(0);
      expect(count).toBeLessThan(d2);
    }
  });

  it('the star-coloured finite-difference Hessian of a float64 quadratic returns its every block', async () => {
    const n = 300;
    const P = 6;
    const eng = randomLayout(n, 11);
    const adj = overlapGraph(eng);
    const rng = makeRng(17);
    // −logL = ½ (θ − θ0)ᵀ H (θ − θ0) over (g1, g2, then per source the six kinds): H on the overlap graph
    const { neighbours, blocks } = symmetricBlocks(adj, P, rng, (l, k) => (l === k ? 50 + rng.uniform() : 0.1 * (l + k)));
    const gRow = [0, 1].map(() => Float64Array.from({ length: n * P }, () => rng.range(-1, 1)));
    const at = allocParams(n);
    for (let s = 0; s < n; s++) {
      at.flux[s] = 1000 + 100 * rng.uniform();
      at.hlr[s] = 0.2 + 0.1 * rng.uniform();
      at.e1[s] = rng.range(-0.3, 0.3);
      at.e2[s] = rng.range(-0.3, 0.3);
    }
    const vec = (p: SceneParams) => {
      const v = new Float64Array(n * P);
      for (let s = 0; s < n; s++) SOURCE_PARAM_NAMES.forEach((k, kk) => (v[s * P + kk] = Math.fround(p[k][s]) - at[k][s]));
      return v;
    };
    const stand = {
      set: eng.set,
      layout: eng.layout,
      async evaluate(p: SceneParams) {
        const d = vec(p);
        const dg = [Math.fround(p.g1) - at.g1, Math.fround(p.g2) - at.g2];
        const grad = allocParams(n);
        for (let s = 0; s < n; s++)
          neighbours[s].forEach((t, bi) => {
            for (let l = 0; l < P; l++) {
              let v = 0;
              for (let k = 0; k < P; k++) v += blocks[s][bi][l * P + k] * d[t * P + k];
              grad[SOURCE_PARAM_NAMES[l]][s] -= v;
            }
          });
        for (let i = 0; i < n * P; i++) {
          const s = Math.floor(i / P);
          const k = SOURCE_PARAM_NAMES[i % P];
          grad[k][s] -= gRow[0][i] * dg[0] + gRow[1][i] * dg[1];
          grad.g1 -= gRow[0][i] * d[i];
          grad.g2 -= gRow[1][i] * d[i];
        }
        grad.g1 -= 500 * dg[0];
        grad.g2 -= 500 * dg[1];
        return { logL: 0, gradient: grad };
      },
    };
    const post = new Posterior(stand, {}, at);
    const { hessian: H, colours, evaluations } = await sparseHessian(stand, post, at, { deriveShearRows: false });
    const d2 = distance2Colouring(adj).count;
    console.log(`${n} sources: ${colours} colours (distance-2 ${d2}), ${evaluations} evaluations`);
    expect(colours).toBe(starColouring(adj).count);
    expect(evaluations).toBe(2 * (colours * P + 2));
    const prior = post.space.logPrior(post.space.pack(at));
    let worst = 0;
    for (let s = 0; s < n; s++) {
      expect(H.neighbours[s]).toEqual(neighbours[s]);
      neighbours[s].forEach((t, bi) => {
        for (let l = 0; l < P; l++)
          for (let k = 0; k < P; k++) {
            const fi = post.space.sourceIndex[6 * s + l];
            const want = blocks[s][bi][l * P + k] - (s === t && l === k && fi >= 0 ? prior.hessDiag[fi] : 0);
            worst = Math.max(worst, Math.abs(H.blocks[s][bi][l * P + k] - want) / 50);
          }
      });
    }
    for (const a of [0, 1]) for (let i = 0; i < n * P; i++) worst = Math.max(worst, Math.abs(H.sg[a][i] - gRow[a][i]) / 50);
    console.log(`worst |ΔH| / H_ii: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-9);
    // every source parameter fixed (the app's "shear only" fits): no source column, the shear block alone
    const fixed = { type: 'fixed' as const };
    const shearOnly = new Posterior(stand, { flux: fixed, hlr: fixed, e1: fixed, e2: fixed, dx: fixed, dy: fixed }, at);
    const g = await sparseHessian(stand, shearOnly, at, { deriveShearRows: false });
    expect(g.hessian.kinds).toEqual([]);
    expect(g.evaluations).toBe(4);
    const pr = shearOnly.space.logPrior(shearOnly.space.pack(at));
    expect(g.hessian.gg[0]).toBeCloseTo(500 - pr.hessDiag[shearOnly.space.gIndex[0]], 9);
    expect(g.hessian.gg[3]).toBeCloseTo(500 - pr.hessDiag[shearOnly.space.gIndex[1]], 9);
    expect(Math.abs(g.hessian.gg[1]) + Math.abs(g.hessian.gg[2])).toBe(0);
  });

  it('Schur solve at 2500 sources × 6 parameters: Cholesky and block-Jacobi CG agree', () => {
    const n = 2500;
    const P = 6;
    const rng = makeRng(3);
    // a banded random overlap structure: each source overlaps a few near neighbours in index
    const adj: number[][] = Array.from({ length: n }, () => []);
    for (let s = 0; s < n; s++)
      for (let d = 1; d <= 3; d++) {
        const t = s + d;
        if (t < n && rng.uniform() < 0.5 && Math.floor(s / 50) === Math.floor(t / 50)) {
          adj[s].push(t);
          adj[t].push(s);
        }
      }
    adj.forEach((a) => a.sort((x, y) => x - y));
    const { neighbours, blocks } = symmetricBlocks(adj, P, rng, (l, k) => (l === k ? 40 + rng.uniform() : 0));
    const sg = [0, 1].map(() => Float64Array.from({ length: n * P }, () => rng.range(-1, 1)));
    const H: SparseHessian = { nSources: n, kinds: [0, 1, 2, 3, 4, 5], gFree: [0, 1], neighbours, blocks, sg, gg: Float64Array.from([2000, 30, 30, 1800]) };
    let t0 = performance.now();
    const a = schurShear(H, adj);
    const tChol = performance.now() - t0;
    t0 = performance.now();
    const b = schurShear(H, adj, { denseLimit: 0, cgTol: 1e-13 });
    const tCg = performance.now() - t0;
    console.log(`components ${a.components} (largest ${a.largestComponent}); Cholesky ${tChol.toFixed(0)} ms, CG ${tCg.toFixed(0)} ms; G1_ERR ${a.g1Err} vs ${b.g1Err}`);
    expect(a.ok && b.ok).toBe(true);
    for (let i = 0; i < 4; i++) expect(Math.abs(a.covariance[i] - b.covariance[i])).toBeLessThan(1e-9 * a.covariance[0]);
    expect(a.g1Err).toBeGreaterThan(a.g1ErrConditional);
  });

  it('sourceLogDet: log det H_ss and H_ss⁻¹H_sg against eigenvalues and a dense solve, with a source excluded', () => {
    const n = 24;
    const P = 3;
    const rng = makeRng(5);
    const adj: number[][] = Array.from({ length: n }, () => []);
    for (let s = 0; s + 1 < n; s++)
      if (s % 8 !== 7) {
        adj[s].push(s + 1);
        adj[s + 1].push(s);
      }
    const { neighbours, blocks } = symmetricBlocks(adj, P, rng, (l, k) => (l === k ? 5 + rng.uniform() : l + k === 1 ? 0.3 : 0));
    const sg = [0, 1].map(() => Float64Array.from({ length: n * P }, () => rng.range(-1, 1)));
    const H: SparseHessian = { nSources: n, kinds: [0, 1, 2], gFree: [0, 1], neighbours, blocks, sg, gg: Float64Array.from([100, 0, 0, 100]) };
    const excluded = 10;
    const keep = Array.from({ length: n }, (_, s) => s).filter((s) => s !== excluded);
    // the oracle: the dense matrix over the kept sources, its eigenvalues and a Gaussian elimination
    const D = keep.length * P;
    const A = new Float64Array(D * D);
    keep.forEach((s, i) =>
      neighbours[s].forEach((t, bi) => {
        const j = keep.indexOf(t);
        if (j < 0) return;
        for (let l = 0; l < P; l++) for (let k = 0; k < P; k++) A[(i * P + l) * D + j * P + k] = blocks[s][bi][l * P + k];
      }),
    );
    const logDet = symEigen(A.slice(), D).values.reduce((acc, v) => acc + Math.log(v), 0);
    const solve = (b: Float64Array) => {
      const M = A.slice();
      const x = b.slice();
      for (let c = 0; c < D; c++) {
        let p = c;
        for (let r = c + 1; r < D; r++) if (Math.abs(M[r * D + c]) > Math.abs(M[p * D + c])) p = r;
        for (let k = 0; k < D; k++) [M[c * D + k], M[p * D + k]] = [M[p * D + k], M[c * D + k]];
        [x[c], x[p]] = [x[p], x[c]];
        for (let r = c + 1; r < D; r++) {
          const f = M[r * D + c] / M[c * D + c];
          for (let k = c; k < D; k++) M[r * D + k] -= f * M[c * D + k];
          x[r] -= f * x[c];
        }
      }
      for (let r = D - 1; r >= 0; r--) {
        let v = x[r];
        for (let k = r + 1; k < D; k++) v -= M[r * D + k] * x[k];
        x[r] = v / M[r * D + r];
      }
      return x;
    };
    const r = sourceLogDet(H, adj, new Set([excluded]), true);
    expect(r.approximate).toBe(0);
    expect(Math.abs(r.logDet - logDet)).toBeLessThan(1e-9 * Math.abs(logDet));
    for (const a of [0, 1]) {
      const b = new Float64Array(D);
      keep.forEach((s, i) => b.set(sg[a].subarray(s * P, s * P + P), i * P));
      const x = solve(b);
      keep.forEach((s, i) => {
        for (let l = 0; l < P; l++) expect(r.x![a][s * P + l]).toBeCloseTo(x[i * P + l], 10);
      });
      for (let l = 0; l < P; l++) expect(r.x![a][excluded * P + l]).toBe(0);
    }
    // beyond the dense limit: each source's own block (coupling left out), and counted as approximate
    const blockSum = keep.reduce((acc, s) => acc + symEigen(blocks[s][neighbours[s].indexOf(s)].slice(), P).values.reduce((q, v) => q + Math.log(v), 0), 0);
    const ap = sourceLogDet(H, adj, new Set([excluded]), false, { denseLimit: 0 });
    expect(ap.approximate).toBe(n - 1);
    expect(Math.abs(ap.logDet - blockSum)).toBeLessThan(1e-9 * Math.abs(blockSum));
    // a block that is not positive definite is named
    const bad: SparseHessian = { ...H, blocks: H.blocks.map((row, s) => row.map((b, bi) => (s === 3 && H.neighbours[s][bi] === 3 ? b.map((v, i) => (i === 0 ? -v : v)) : b))) };
    const f = sourceLogDet(bad, adj, new Set(), false);
    expect(Number.isNaN(f.logDet)).toBe(true);
    expect(f.failed).toEqual([3]);
  });
});
