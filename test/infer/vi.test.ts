/**
 * Mean-field VI against analytic results: for a Gaussian target N(m, Λ⁻¹) the optimal
 * mean-field guide is μ = m, σᵢ = 1/√Λᵢᵢ, and the optimal −ELBO is
 *   KL(q‖p) − log Z = ½ Σ log Λᵢᵢ − ½ log det Λ − (d/2 log 2π − ½ log det Λ) = ½ Σ log Λᵢᵢ − d/2 log 2π
 * for the unnormalised log p = −½ (z − m)ᵀ Λ (z − m). The guide's draws have the guide's moments.
 */
import { describe, expect, it } from 'vitest';
import { runVi } from '../../engine/infer/vi.ts';
import { mulberry32 } from '../../engine/util/rng.ts';

function det(A: number[][]): number {
  const n = A.length;
  const M = A.map((r) => r.slice());
  let d = 1;
  for (let i = 0; i < n; i++) {
    let p = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(M[r][i]) > Math.abs(M[p][i])) p = r;
    if (p !== i) {
      [M[p], M[i]] = [M[i], M[p]];
      d = -d;
    }
    d *= M[i][i];
    for (let r = i + 1; r < n; r++) {
      const f = M[r][i] / M[i][i];
      for (let c = i; c < n; c++) M[r][c] -= f * M[i][c];
    }
  }
  return d;
}

/** Unnormalised N(mean, P⁻¹): log p = −½ (z − m)ᵀ P (z − m) and its gradient, batched. */
function gaussianTarget(mean: number[], P: number[][]) {
  const d = mean.length;
  return {
    dim: d,
    async logDensityBatch(zs: readonly Float64Array[]) {
      return zs.map((z) => {
        const r = Array.from(z, (v, i) => v - mean[i]);
        const grad = new Float64Array(d);
        let q = 0;
        for (let i = 0; i < d; i++) {
          let s = 0;
          for (let j = 0; j < d; j++) s += P[i][j] * r[j];
          grad[i] = -s;
          q += r[i] * s;
        }
        return { value: -0.5 * q, grad };
      });
    },
  };
}

describe('mean-field VI', () => {
  it('recovers the analytic mean-field optimum of a correlated 6-D Gaussian', async () => {
    const d = 6;
    const u = mulberry32(3);
    // Λ = B Bᵀ + diag: strongly correlated, scales from 0.05 to 5
    const B = Array.from({ length: d }, () => Array.from({ length: d }, () => u() - 0.5));
    const scales = [0.05, 0.2, 1, 5, 0.5, 2];
    const L = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => {
      let s = i === j ? 0.3 : 0;
      for (let k = 0; k < d; k++) s += B[i][k] * B[j][k];
      return s / (scales[i] * scales[j]);
    }));
    const mean = Array.from({ length: d }, (_, i) => (u() - 0.5) * 4 * scales[i]);
    let calls = 0;
    const gauss = gaussianTarget(mean, L);
    const target = {
      dim: d,
      logDensityBatch(zs: readonly Float64Array[]) {
        calls++;
        return gauss.logDensityBatch(zs);
      },
    };
    // initial scales off by factors of 3 in both directions, initial mean 2σ away
    const sigmaOpt = L.map((row, i) => 1 / Math.sqrt(row[i]));
    const res = await runVi(target, {
      steps: 3000, learningRate: 0.02, particles: 4, numSamples: 4000, seed: 7,
      initLoc: mean.map((m, i) => m + 2 * sigmaOpt[i]),
      initScale: sigmaOpt.map((s, i) => s * (i % 2 ? 3 : 1 / 3)),
    });
    expect(calls).toBe(3000);
    expect(res.evaluations).toBe(12000);
    for (let i = 0; i < d; i++) {
      console.log(`z${i}: μ ${res.loc[i].toFixed(5)} (exact ${mean[i].toFixed(5)}), σ ${res.scale[i].toExponential(4)} (exact ${sigmaOpt[i].toExponential(4)})`);
      expect(Math.abs(res.loc[i] - mean[i])).toBeLessThan(0.08 * sigmaOpt[i]);
      expect(Math.abs(res.scale[i] / sigmaOpt[i] - 1)).toBeLessThan(0.05);
    }
    const elboOpt = 0.5 * L.reduce((s, row, i) => s + Math.log(row[i]), 0) - (d / 2) * Math.log(2 * Math.PI);
    console.log(`final −ELBO ${res.finalLoss.toFixed(4)} (analytic optimum ${elboOpt.toFixed(4)}; log det Λ ${Math.log(det(L)).toFixed(3)})`);
    expect(Math.abs(res.finalLoss - elboOpt)).toBeLessThan(0.1);
    // draws from the guide have the guide's moments
    for (const i of [0, 3]) {
      const xs = res.draws.map((z) => z[i]);
      const mu = xs.reduce((a, b) => a + b, 0) / xs.length;
      const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mu) ** 2, 0) / (xs.length - 1));
      expect(Math.abs(mu - res.loc[i])).toBeLessThan(5 * res.scale[i] / Math.sqrt(xs.length));
      expect(Math.abs(sd / res.scale[i] - 1)).toBeLessThan(0.05);
    }
  });

  it('low-rank guide: recovers a Gaussian whose covariance is diagonal + rank 1 exactly (marginal sds, −ELBO = −log Z)', async () => {
    const d = 6;
    const a = [0.05, 0.2, 1, 0.5, 0.3, 2];
    const w = [0.2, -0.8, 3, 1, 0, -4]; // strong correlations: marginal sds up to ~4× the diagonal part
    const mean = [0.1, -0.2, 1, 0.5, 0, 3];
    const C = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? a[i] * a[i] : 0) + w[i] * w[j]));
    // precision by Gauss–Jordan (independent of the guide's Woodbury algebra)
    const M = C.map((row, i) => [...row, ...Array.from({ length: d }, (_, j) => (i === j ? 1 : 0))]);
    for (let c = 0; c < d; c++) {
      const piv = M[c][c];
      for (let k = 0; k < 2 * d; k++) M[c][k] /= piv;
      for (let r2 = 0; r2 < d; r2++) if (r2 !== c) {
        const f = M[r2][c];
        for (let k = 0; k < 2 * d; k++) M[r2][k] -= f * M[c][k];
      }
    }
    const P = M.map((row) => row.slice(d));
    const target = gaussianTarget(mean, P);
    const diagP = P.map((row, i) => 1 / Math.sqrt(row[i]));
    const res = await runVi(target, { guide: 'low_rank', rank: 1, steps: 4000, learningRate: 0.02, particles: 4, numSamples: 4000, seed: 5, initLoc: mean.map((m, i) => m + diagP[i]), initScale: diagP });
    expect(res.rank).toBe(1);
    for (let i = 0; i < d; i++) {
      const sd = Math.sqrt(C[i][i]);
      console.log(`z${i}: μ ${res.loc[i].toFixed(4)} (exact ${mean[i]}), sd ${res.scale[i].toFixed(4)} (exact ${sd.toFixed(4)}; mean-field would give ${diagP[i].toFixed(4)})`);
      expect(Math.abs(res.loc[i] - mean[i])).toBeLessThan(0.08 * sd);
      expect(Math.abs(res.scale[i] / sd - 1)).toBeLessThan(0.06);
    }
    const logZ = (d / 2) * Math.log(2 * Math.PI) + 0.5 * Math.log(det(C));
    console.log(`final −ELBO ${res.finalLoss.toFixed(4)} (exact −log Z ${(-logZ).toFixed(4)})`);
    expect(Math.abs(res.finalLoss + logZ)).toBeLessThan(0.1);
    // the draws carry the correlation: sample covariance of (z2, z5) ≈ w2·w5
    const xs = res.draws.map((z) => z[2]);
    const ys = res.draws.map((z) => z[5]);
    const mx = xs.reduce((p, q) => p + q, 0) / xs.length;
    const my = ys.reduce((p, q) => p + q, 0) / ys.length;
    const cxy = xs.reduce((p, q, k) => p + (q - mx) * (ys[k] - my), 0) / (xs.length - 1);
    expect(Math.abs(cxy / (w[2] * w[5]) - 1)).toBeLessThan(0.1);
  });

  it('redraws a step whose draw has a non-finite density, and names bad options', async () => {
    let first = true;
    const target = {
      dim: 1,
      async logDensityBatch(zs: readonly Float64Array[]) {
        return zs.map((z) => {
          if (first) {
            first = false;
            return { value: -Infinity, grad: new Float64Array(1).fill(NaN) };
          }
          return { value: -0.5 * z[0] * z[0], grad: Float64Array.of(-z[0]) };
        });
      },
    };
    const r = await runVi(target, { steps: 800, learningRate: 0.05, initScale: 0.3, seed: 1 });
    expect(r.rejectedSteps).toBe(1);
    expect(r.steps).toBe(800);
    expect(Math.abs(r.scale[0] - 1)).toBeLessThan(0.15);
    await expect(runVi(target, { steps: 0 })).rejects.toThrow(/inference\.vi\.steps/);
    await expect(runVi(target, { initScale: -1 })).rejects.toThrow(/initScale/);
  });
});
