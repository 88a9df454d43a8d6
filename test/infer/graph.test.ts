/**
 * Overlap graph, distance-2 colouring and the Schur solve at sub-tile scale, without a GPU:
 * the sweep-built overlap graph equals a brute-force O(N²) check on random stamps of mixed
 * tiers in several quadrants; the colouring has the distance-2 property; and on a synthetic
 * sparse SPD Hessian for 2500 sources × 6 parameters, the per-component Cholesky and the
 * block-Jacobi CG paths give the same shear covariance.
 */
import { describe, it, expect } from 'vitest';
import { makeRng } from '../../engine/reference/scene-builder.ts';
import { overlapGraph, schurShear, sourceLogDet, type SparseHessian } from '../../engine/infer/laplace.ts';
import { symEigen } from '../../engine/util/linalg.ts';
import { components, distance2Colouring } from '../../engine/util/graph.ts';
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
