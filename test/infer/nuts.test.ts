import { describe, expect, it } from 'vitest';
import { componentDraws, massAdaptationWindows, Rng, runNuts, type NutsDensity, type NutsResult } from '../../engine/infer/nuts.ts';
import { essBulk, essTail, normalCdf, normalQuantile, quantile, rhat, summarize } from '../../engine/infer/mcmc-diagnostics.ts';

// ---- helpers (independent float64 oracles) ----

/** Cholesky factor L (lower) of a symmetric positive-definite matrix. */
function cholesky(A: number[][]): number[][] {
  const n = A.length;
  const L = A.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i][j];
      for (let k = 0; k < j; k++) s -= L[i][k] * L[j][k];
      L[i][j] = i === j ? Math.sqrt(s) : s / L[j][j];
    }
  }
  return L;
}

/** Inverse of an SPD matrix via Cholesky. */
function spdInverse(A: number[][]): number[][] {
  const n = A.length;
  const L = cholesky(A);
  const inv = A.map(() => new Array<number>(n).fill(0));
  for (let c = 0; c < n; c++) {
    const y = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) {
      let s = i === c ? 1 : 0;
      for (let k = 0; k < i; k++) s -= L[i][k] * y[k];
      y[i] = s / L[i][i];
    }
    const x = new Array<number>(n).fill(0);
    for (let i = n - 1; i >= 0; i--) {
      let s = y[i];
      for (let k = i + 1; k < n; k++) s -= L[k][i] * x[k];
      x[i] = s / L[i][i];
    }
    for (let i = 0; i < n; i++) inv[i][c] = x[i];
  }
  return inv;
}

function gaussianTarget(mu: number[], cov: number[][]) {
  const P = spdInverse(cov);
  const dim = mu.length;
  return {
    dim,
    logDensity: async (z: Float64Array): Promise<NutsDensity> => {
      const d = Array.from(z, (v, i) => v - mu[i]);
      const grad = new Float64Array(dim);
      let q = 0;
      for (let i = 0; i < dim; i++) {
        let s = 0;
        for (let j = 0; j < dim; j++) s += P[i][j] * d[j];
        grad[i] = -s;
        q += d[i] * s;
      }
      return { value: -0.5 * q, grad };
    },
  };
}

/**
 * Monte-Carlo standard error of the mean of correlated chains by non-overlapping batch means
 * (batches of ⌊√n⌋ draws within each chain): independent of the ESS estimators under test, so a
 * wrong ESS cannot widen the tolerances below.
 */
function batchMeansSe(chains: ArrayLike<number>[]): number {
  const means: number[] = [];
  for (const c of chains) {
    const b = Math.floor(Math.sqrt(c.length));
    for (let k = 0; (k + 1) * b <= c.length; k++) {
      let s = 0;
      for (let t = 0; t < b; t++) s += c[k * b + t];
      means.push(s / b);
    }
  }
  const m = means.reduce((a, v) => a + v, 0) / means.length;
  const v = means.reduce((a, x) => a + (x - m) ** 2, 0) / (means.length - 1);
  return Math.sqrt(v / means.length);
}

/**
 * Check every mean and covariance entry against truth with Monte-Carlo tolerances from batch means
 * (k standard errors), and the bulk ESS of each component against the ESS the batch means imply
 * (sd² / se²) — the two agree within a factor 2 when both are right.
 */
function checkMoments(res: NutsResult, mu: number[], cov: number[][], k = 4.5) {
  const dim = mu.length;
  const draws = res.samples.flat();
  const N = draws.length;
  const m = new Array<number>(dim).fill(0);
  for (const z of draws) for (let i = 0; i < dim; i++) m[i] += z[i] / N;
  let worstMean = 0, worstCov = 0;
  const essRatios: number[] = [];
  for (let i = 0; i < dim; i++) {
    const ch = componentDraws(res, i);
    const se = batchMeansSe(ch);
    const sd = Math.sqrt(cov[i][i]);
    worstMean = Math.max(worstMean, Math.abs(m[i] - mu[i]) / se);
    expect(Math.abs(m[i] - mu[i])).toBeLessThan(k * se);
    const essBm = (sd / se) ** 2;
    essRatios.push(essBulk(ch) / essBm);
    for (let j = 0; j <= i; j++) {
      // Covariance: its MC error from the batch means of the product series (x_i − μ_i)(x_j − μ_j).
      const prod = res.samples.map((c) => Float64Array.from(c, (z) => (z[i] - mu[i]) * (z[j] - mu[j])));
      const pooled = prod.flatMap((c) => Array.from(c));
      const pm = pooled.reduce((s, v) => s + v, 0) / pooled.length;
      const seP = batchMeansSe(prod);
      worstCov = Math.max(worstCov, Math.abs(pm - cov[i][j]) / seP);
      expect(Math.abs(pm - cov[i][j])).toBeLessThan(k * seP);
    }
  }
  for (const r of essRatios) {
    expect(r).toBeGreaterThan(0.5);
    expect(r).toBeLessThan(2);
  }
  return { worstMean, worstCov, essRatio: [Math.min(...essRatios), Math.max(...essRatios)] };
}

function maxRhatMinEss(res: NutsResult, dim: number) {
  let maxR = 0, minBulk = Infinity, minTail = Infinity;
  for (let i = 0; i < dim; i++) {
    const ch = componentDraws(res, i);
    maxR = Math.max(maxR, rhat(ch));
    minBulk = Math.min(minBulk, essBulk(ch));
    minTail = Math.min(minTail, essTail(ch));
  }
  return { maxR, minBulk, minTail };
}

// ---- diagnostics against analytic values ----

describe('diagnostics', () => {
  it('normalQuantile matches tabulated values', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 7);
    expect(normalQuantile(0.5)).toBeCloseTo(0, 12);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167814, 7);
    expect(normalQuantile(0.8413447460685429)).toBeCloseTo(1, 7);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 6);
    expect(normalCdf(-3)).toBeCloseTo(0.0013498980316301, 14);
    expect(normalCdf(1.5)).toBeCloseTo(0.9331927987311419, 14);
  });

  it('quantile uses linear interpolation (numpy default)', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10, 0, 20], 0.25)).toBe(5);
  });

  it('iid draws: R̂ ≈ 1 and ESS ≈ N; AR(1): ESS ≈ N(1−φ)/(1+φ)', () => {
    const rng = new Rng(7);
    const iid = Array.from({ length: 4 }, () => Float64Array.from({ length: 1000 }, () => rng.normal()));
    expect(rhat(iid)).toBeLessThan(1.01);
    const e = essBulk(iid);
    expect(e).toBeGreaterThan(3000);
    expect(e).toBeLessThan(5200);
    const phi = 0.8;
    const ar = Array.from({ length: 4 }, () => {
      const a = new Float64Array(5000);
      let x = rng.normal() / Math.sqrt(1 - phi * phi);
      for (let i = 0; i < a.length; i++) a[i] = x = phi * x + rng.normal();
      return a;
    });
    const expected = (20000 * (1 - phi)) / (1 + phi); // 2222
    const ea = essBulk(ar);
    expect(ea / expected).toBeGreaterThan(0.8);
    expect(ea / expected).toBeLessThan(1.25);
  });

  it('non-mixed chains give R̂ ≫ 1 (location and scale disagreements)', () => {
    const rng = new Rng(11);
    const shifted = Array.from({ length: 4 }, (_, c) => Float64Array.from({ length: 500 }, () => rng.normal() + c));
    expect(rhat(shifted)).toBeGreaterThan(1.5);
    // Same mean, different scales: bulk R̂ misses it, the folded (tail) R̂ catches it.
    const scaled = Array.from({ length: 4 }, (_, c) => Float64Array.from({ length: 500 }, () => rng.normal() * (c === 0 ? 10 : 1)));
    expect(rhat(scaled)).toBeGreaterThan(1.1);
    // A trending chain: split-R̂ detects within-chain drift.
    const trend = [Float64Array.from({ length: 1000 }, (_, i) => i / 100 + rng.normal())];
    expect(rhat(trend)).toBeGreaterThan(1.5);
  });

  it('summarize returns consistent quantities', () => {
    const rng = new Rng(3);
    const ch = Array.from({ length: 2 }, () => Float64Array.from({ length: 2000 }, () => 2 + 3 * rng.normal()));
    const s = summarize(ch);
    // recomputed here from the 4000 iid draws: the sample sd and numpy-style quantiles, exactly
    const all = ch.flatMap((c) => Array.from(c));
    const n = all.length;
    const mean = all.reduce((a, v) => a + v, 0) / n;
    const sd = Math.sqrt(all.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
    const sorted = [...all].sort((a, b) => a - b);
    const q = (p: number) => {
      const h = (n - 1) * p;
      const lo = Math.floor(h);
      return sorted[lo] + (h - lo) * (sorted[Math.min(lo + 1, n - 1)] - sorted[lo]);
    };
    expect(s.mean).toBeCloseTo(mean, 12);
    expect(s.sd).toBeCloseTo(sd, 10);
    expect(s.q05).toBeCloseTo(q(0.05), 10);
    expect(s.q95).toBeCloseTo(q(0.95), 10);
    // and against the true N(2, 3²) within 4 standard errors of iid estimates: the mean's 3/√n
    // (independent of the MCSE under test), the sd's 3/√(2(n − 1)), a quantile's
    // √(p(1 − p)/n) / density(x_p)
    expect(Math.abs(s.mean - 2)).toBeLessThan((4 * 3) / Math.sqrt(n));
    expect(s.mcseMean / (3 / Math.sqrt(n))).toBeGreaterThan(0.8);
    expect(s.mcseMean / (3 / Math.sqrt(n))).toBeLessThan(1.25);
    expect(Math.abs(s.sd - 3)).toBeLessThan((4 * 3) / Math.sqrt(2 * (n - 1)));
    const qSe = Math.sqrt((0.05 * 0.95) / n) / (Math.exp(-0.5 * 1.6448536269514722 ** 2) / Math.sqrt(2 * Math.PI) / 3);
    expect(Math.abs(s.q05 - (2 - 1.6448536269514722 * 3))).toBeLessThan(4 * qSe);
    expect(Math.abs(s.q95 - (2 + 1.6448536269514722 * 3))).toBeLessThan(4 * qSe);
    expect(s.rhat).toBeLessThan(1.01);
  });
});

// ---- NUTS ----

describe('NUTS', () => {
  it('windowed adaptation follows Stan (75 / 25, 50, 100, … / 50)', () => {
    const w = massAdaptationWindows(1000);
    expect(w.start).toBe(75);
    expect(w.ends).toEqual([99, 149, 249, 449, 949]);
    const w5 = massAdaptationWindows(500);
    expect(w5.ends).toEqual([99, 149, 249, 449]);
    expect(massAdaptationWindows(100)).toEqual({ start: 15, ends: [89] });
  });

  it('2-D Gaussian, ρ = 0.9, scales 100× apart: moments, R̂, ESS', async () => {
    const mu = [1, -3];
    const s = [0.1, 10];
    const cov = [[s[0] * s[0], 0.9 * s[0] * s[1]], [0.9 * s[0] * s[1], s[1] * s[1]]];
    const res = await runNuts(gaussianTarget(mu, cov), { seed: 1 });
    const worst = checkMoments(res, mu, cov);
    const d = maxRhatMinEss(res, 2);
    console.log('2-D gaussian', worst, d, 'steps', res.chains.map((c) => c.stepSize), 'div', res.divergences);
    expect(d.maxR).toBeLessThan(1.01);
    expect(d.minBulk).toBeGreaterThan(400);
    expect(d.minTail).toBeGreaterThan(300);
    expect(res.divergences).toBe(0);
    // Adapted inverse mass ≈ marginal variances.
    for (const c of res.chains) {
      expect(c.invMassDiag[1] / c.invMassDiag[0]).toBeGreaterThan(3000);
      expect(c.invMassDiag[1] / c.invMassDiag[0]).toBeLessThan(30000);
    }
  });

  it('10-D correlated Gaussian (AR(1) ρ = 0.9, scales 0.1 … 10): moments, R̂, ESS', async () => {
    const dim = 10;
    const s = Array.from({ length: dim }, (_, i) => 0.1 * Math.pow(100, i / (dim - 1)));
    const mu = Array.from({ length: dim }, (_, i) => i - 4.5);
    const cov = s.map((si, i) => s.map((sj, j) => si * sj * Math.pow(0.9, Math.abs(i - j))));
    const res = await runNuts(gaussianTarget(mu, cov), { seed: 2 });
    const worst = checkMoments(res, mu, cov);
    const d = maxRhatMinEss(res, dim);
    console.log('10-D gaussian', worst, d, 'div', res.divergences, 'evals', res.evaluations);
    expect(d.maxR).toBeLessThan(1.01);
    expect(d.minBulk).toBeGreaterThan(300);
    expect(res.divergences).toBe(0);
  });

  it('banana (twisted Gaussian): known first two moments', async () => {
    // x1 ~ N(0, a²), x2 | x1 ~ N(b (x1² − a²), 1): E = (0, 0), Var x1 = a², Var x2 = 1 + 2 b² a⁴, Cov = 0.
    const a = 1, b = 0.5;
    const target = {
      dim: 2,
      logDensity: async (z: Float64Array): Promise<NutsDensity> => {
        const r = z[1] - b * (z[0] * z[0] - a * a);
        return { value: -0.5 * (z[0] * z[0]) / (a * a) - 0.5 * r * r, grad: new Float64Array([-z[0] / (a * a) + r * 2 * b * z[0], -r]) };
      },
    };
    const res = await runNuts(target, { seed: 3 });
    const cov = [[a * a, 0], [0, 1 + 2 * b * b * a ** 4]];
    const worst = checkMoments(res, [0, 0], cov);
    const d = maxRhatMinEss(res, 2);
    console.log('banana', worst, d, 'div', res.divergences);
    expect(d.maxR).toBeLessThan(1.01);
    expect(d.minBulk).toBeGreaterThan(400);
  });

  it('chains advance in lock-step through logDensityBatch; same draws as the per-chain path', async () => {
    const g = gaussianTarget([0, 0, 0], [[1, 0.5, 0], [0.5, 1, 0], [0, 0, 4]]);
    const sizes: number[] = [];
    const batched = await runNuts({
      dim: 3,
      logDensityBatch: async (zs) => {
        sizes.push(zs.length);
        return Promise.all(zs.map((z) => g.logDensity(z)));
      },
    }, { seed: 9, numWarmup: 100, numSamples: 100, numChains: 4 });
    const single = await runNuts(g, { seed: 9, numWarmup: 100, numSamples: 100, numChains: 4 });
    expect(batched.samples).toEqual(single.samples);
    expect(batched.calls).toBe(sizes.length);
    expect(sizes.reduce((s, v) => s + v, 0)).toBe(batched.evaluations);
    expect(single.calls).toBe(single.evaluations);
    expect(Math.max(...sizes)).toBe(4);
    // Far fewer batch calls than evaluations: the chains share rounds.
    expect(batched.calls).toBeLessThan(0.5 * batched.evaluations);
  });

  it('is deterministic: same seed → identical draws; another seed → different', async () => {
    const g = gaussianTarget([0, 1], [[1, 0.3], [0.3, 2]]);
    const o = { numWarmup: 60, numSamples: 50, numChains: 2 };
    const r1 = await runNuts(g, { ...o, seed: 5 });
    const r2 = await runNuts(g, { ...o, seed: 5 });
    const r3 = await runNuts(g, { ...o, seed: 6 });
    expect(r1.samples).toEqual(r2.samples);
    expect(r1.chains.map((c) => c.stepSize)).toEqual(r2.chains.map((c) => c.stepSize));
    expect(r1.samples[0][49]).not.toEqual(r3.samples[0][49]);
  });

  it('counts divergences where the energy error explodes (funnel neck)', async () => {
    // Neal's funnel in (v, x): v ~ N(0, 3²), x ~ N(0, e^v). Fixed large step, no adaptation.
    const target = {
      dim: 2,
      logDensity: async (z: Float64Array): Promise<NutsDensity> => {
        const [v, x] = z;
        return { value: -v * v / 18 - 0.5 * x * x * Math.exp(-v) - 0.5 * v, grad: new Float64Array([-v / 9 + 0.5 * x * x * Math.exp(-v) - 0.5, -x * Math.exp(-v)]) };
      },
    };
    const res = await runNuts(target, { seed: 4, numWarmup: 0, numSamples: 200, numChains: 1, initStepSize: 1, init: [-4, 0] });
    expect(res.divergences).toBeGreaterThan(0);
    expect(res.chains[0].divergent.reduce((s, v) => s + v, 0)).toBe(res.divergences);
  });

  it('R̂ ≫ 1 for NUTS chains stuck in separate modes of a bimodal target', async () => {
    // ½N(−8, 1) + ½N(8, 1): chains started in different modes never cross.
    const target = {
      dim: 1,
      logDensity: async (z: Float64Array): Promise<NutsDensity> => {
        const a = -0.5 * (z[0] + 8) ** 2, b = -0.5 * (z[0] - 8) ** 2;
        const m = Math.max(a, b), wa = Math.exp(a - m), wb = Math.exp(b - m);
        return { value: m + Math.log(wa + wb), grad: [(wa * -(z[0] + 8) + wb * -(z[0] - 8)) / (wa + wb)] };
      },
    };
    const res = await runNuts(target, { seed: 8, numWarmup: 200, numSamples: 300, init: [[-8], [8], [-8], [8]] });
    const ch = componentDraws(res, 0);
    expect(rhat(ch)).toBeGreaterThan(1.5); // rank-normalised R̂ saturates (≈ 1.73 for two perfectly separated groups)
    // Each chain alone is fine: its own split-R̂ is near 1.
    for (const c of ch) expect(rhat([c])).toBeLessThan(1.05);
  });

  it('rejects invalid options and inputs with the offending field named', async () => {
    const g = gaussianTarget([0], [[1]]);
    await expect(runNuts(g, { numChains: 0 })).rejects.toThrow(/field numChains/);
    await expect(runNuts(g, { targetAccept: 1 })).rejects.toThrow(/field targetAccept/);
    await expect(runNuts(g, { init: [0, 0] })).rejects.toThrow(/field init/);
    await expect(runNuts({ dim: 1, logDensity: async () => ({ value: -Infinity, grad: [NaN] }) }, { numSamples: 1 })).rejects.toThrow(/no finite log density/);
  });

  it('simulation-based calibration on a hierarchical normal toy: uniform ranks', async () => {
    // μ ~ N(0, 1); θ_j ~ N(μ, 0.5²), j = 1..3; y_j ~ N(θ_j, 1). Rank of μ_true among L thinned draws.
    const J = 3, tau = 0.5, reps = 100, L = 19;
    const rng = new Rng(1234);
    const ranks: number[] = [];
    for (let r = 0; r < reps; r++) {
      const muT = rng.normal();
      const y = Array.from({ length: J }, () => muT + tau * rng.normal() + rng.normal());
      const target = {
        dim: 1 + J,
        logDensity: async (z: Float64Array): Promise<NutsDensity> => {
          const mu = z[0];
          let v = -0.5 * mu * mu;
          const grad = new Float64Array(1 + J);
          grad[0] = -mu;
          for (let j = 0; j < J; j++) {
            const t = z[1 + j];
            v += -0.5 * ((t - mu) / tau) ** 2 - 0.5 * (y[j] - t) ** 2;
            grad[0] += (t - mu) / (tau * tau);
            grad[1 + j] = -(t - mu) / (tau * tau) + (y[j] - t);
          }
          return { value: v, grad };
        },
      };
      const res = await runNuts(target, { seed: 100 + r, numWarmup: 150, numSamples: L * 10, numChains: 1, thinning: 10 });
      const draws = res.samples[0].map((z) => z[0]);
      expect(draws.length).toBe(L);
      ranks.push(draws.filter((d) => d < muT).length); // 0..L
    }
    // 20 possible ranks in 5 bins of 4; χ² with 4 dof, reject at p < 0.001 (18.47).
    const bins = new Array<number>(5).fill(0);
    for (const k of ranks) bins[Math.floor(k / 4)]++;
    const chi2 = bins.reduce((s, o) => s + (o - reps / 5) ** 2 / (reps / 5), 0);
    console.log('SBC bins', bins, 'chi2', chi2);
    expect(chi2).toBeLessThan(18.47);
  });
});
