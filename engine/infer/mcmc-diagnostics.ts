/**
 * MCMC convergence diagnostics (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021):
 * rank-normalised split-R̂, bulk-ESS, tail-ESS, and summaries. Input: chains × draws of one
 * scalar quantity (`ArrayLike<number>[]`, all chains the same length). Float64, no dependencies.
 */
import { ShineError } from '../errors.ts';

export type Chains = ArrayLike<number>[];

/** Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549671348283881, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  let x: number;
  if (p < pl) {
    const q = Math.sqrt(-2 * Math.log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - pl) {
    const q = p - 0.5, r = q * q;
    x = ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) /
      (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // Two Newton steps on Φ(x) = p with an accurate Φ (the rational start is good to ~1e-5 in the tails).
  for (let k = 0; k < 2; k++) {
    const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    if (!(pdf > 0)) break;
    x -= (normalCdf(x) - p) / pdf;
  }
  return x;
}

/** Standard normal CDF to ~1e-15 relative: erf series for |x| < 3, erfc continued fraction beyond. */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  let tail: number; // P(X > |x|) = erfc(z) / 2
  if (z < 2.1) {
    // erf(z) = 2/√π Σ (−1)^n z^(2n+1) / (n! (2n+1))
    let term = z, sum = z;
    for (let n = 1; n < 200; n++) {
      term *= (-z * z) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    tail = 0.5 * (1 - (2 / Math.sqrt(Math.PI)) * sum);
  } else {
    // erfc(z) = e^(−z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + …))))), evaluated backwards.
    let f = z;
    for (let k = 120; k >= 1; k--) f = z + k / 2 / f;
    tail = 0.5 * (Math.exp(-z * z) / Math.sqrt(Math.PI)) / f;
  }
  return x >= 0 ? 1 - tail : tail;
}

function validate(chains: Chains): { m: number; n: number } {
  const m = chains.length;
  if (m < 1) throw new ShineError('diagnostics: at least one chain is needed', { field: 'chains' });
  const n = chains[0].length;
  for (const c of chains) {
    if (c.length !== n) throw new ShineError(`diagnostics: chains have different lengths (${n} and ${c.length})`, { field: 'chains' });
  }
  return { m, n };
}

/** Split each chain into its first and second halves (the middle draw dropped when n is odd). */
export function splitChains(chains: Chains): Float64Array[] {
  const { n } = validate(chains);
  const h = Math.floor(n / 2);
  const out: Float64Array[] = [];
  for (const c of chains) {
    const a = Float64Array.from(c);
    out.push(a.slice(0, h), a.slice(n - h));
  }
  return out;
}

/** Rank-normalise pooled draws: z = Φ⁻¹((r − 3/8) / (S + 1/4)), average ranks for ties. */
export function rankNormalize(chains: Chains): Float64Array[] {
  const { m, n } = validate(chains);
  const S = m * n;
  const all = new Float64Array(S);
  chains.forEach((c, j) => { for (let i = 0; i < n; i++) all[j * n + i] = c[i]; });
  const idx = Array.from({ length: S }, (_, i) => i).sort((a, b) => all[a] - all[b]);
  const rank = new Float64Array(S);
  for (let i = 0; i < S;) {
    let k = i;
    while (k + 1 < S && all[idx[k + 1]] === all[idx[i]]) k++;
    const r = (i + k) / 2 + 1; // average of 1-based ranks i+1..k+1
    for (let q = i; q <= k; q++) rank[idx[q]] = r;
    i = k + 1;
  }
  return chains.map((_, j) => Float64Array.from({ length: n }, (_, i) => normalQuantile((rank[j * n + i] - 0.375) / (S + 0.25))));
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

function variance(a: ArrayLike<number>): number {
  const mu = mean(a);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - mu) ** 2;
  return s / (a.length - 1);
}

/** Classic R̂ of the given chains (no splitting, no ranking): √(((n−1)/n W + B/n) / W). */
export function basicRhat(chains: Chains): number {
  const { m, n } = validate(chains);
  if (m < 2 || n < 2) return NaN;
  const means = chains.map(mean);
  const B = n * variance(means);
  const W = mean(chains.map(variance));
  if (W === 0) return B === 0 ? 1 : Infinity;
  return Math.sqrt((((n - 1) / n) * W + B / n) / W);
}

/** Rank-normalised split-R̂: max of bulk R̂ and R̂ of the folded draws |x − median|. */
export function rhat(chains: Chains): number {
  const split = splitChains(chains);
  if (split[0].length < 2) return NaN;
  const bulk = basicRhat(rankNormalize(split));
  const med = quantile(split.flatMap((c) => Array.from(c)), 0.5);
  const tail = basicRhat(rankNormalize(split.map((c) => c.map((v) => Math.abs(v - med)))));
  return Math.max(bulk, tail);
}

/**
 * ESS of the given chains (Geyer's initial monotone sequence), no splitting or ranking: the
 * reference R code of Vehtari et al. 2021 (the `posterior` package's `.ess`), step for step. The
 * autocorrelations are summed in pairs (lags t, t+1, t even) while a pair's sum stays positive,
 * up to lag n − 4; the last even lag reached enters once (the "improved estimate").
 */
export function basicEss(chains: Chains): number {
  const { m, n } = validate(chains);
  if (n < 4) return NaN;
  const cs = chains.map((c) => {
    const mu = mean(c);
    return Float64Array.from(c, (v) => v - mu);
  });
  const means = chains.map(mean);
  // Autocovariance at lag t (divided by n) averaged over chains, computed lazily.
  const acovMean = (t: number): number => {
    let s = 0;
    for (const c of cs) {
      let a = 0;
      for (let i = 0; i + t < n; i++) a += c[i] * c[i + t];
      s += a / n;
    }
    return s / m;
  };
  const acov0 = acovMean(0);
  const meanVar = (acov0 * n) / (n - 1);
  let varPlus = (meanVar * (n - 1)) / n;
  if (m > 1) varPlus += variance(means);
  if (!(varPlus > 0)) return NaN;
  // rhoHat[t]: autocorrelation at lag t
  const rhoHat = new Float64Array(n + 1);
  rhoHat[0] = 1;
  let rhoEven = 1;
  let rhoOdd = 1 - (meanVar - acovMean(1)) / varPlus;
  rhoHat[1] = rhoOdd;
  // Geyer's initial positive sequence (t: the even lag of the pair last computed)
  let t = 0;
  while (t < n - 5 && !Number.isNaN(rhoEven + rhoOdd) && rhoEven + rhoOdd > 0) {
    t += 2;
    rhoEven = 1 - (meanVar - acovMean(t)) / varPlus;
    rhoOdd = 1 - (meanVar - acovMean(t + 1)) / varPlus;
    if (rhoEven + rhoOdd >= 0) {
      rhoHat[t] = rhoEven;
      rhoHat[t + 1] = rhoOdd;
    }
  }
  const maxT = t;
  // used in the improved estimate (reduces variance for antithetic chains)
  if (rhoEven > 0) rhoHat[maxT] = rhoEven;
  // Geyer's initial monotone sequence
  for (let k = 2; k <= maxT - 2; k += 2) {
    if (rhoHat[k] + rhoHat[k + 1] > rhoHat[k - 2] + rhoHat[k - 1]) {
      rhoHat[k] = (rhoHat[k - 2] + rhoHat[k - 1]) / 2;
      rhoHat[k + 1] = rhoHat[k];
    }
  }
  const S = m * n;
  // R: −1 + 2·sum(rho_hat_t[1:max_t]) + rho_hat_t[max_t + 1] (1-based; 1:0 is the first element)
  let sum = 0;
  if (maxT === 0) sum = rhoHat[0];
  for (let k = 0; k < maxT; k++) sum += rhoHat[k];
  let tau = -1 + 2 * sum + rhoHat[maxT];
  tau = Math.max(tau, 1 / Math.log10(S));
  return S / tau;
}

/** Bulk-ESS: ESS of the rank-normalised split chains. */
export function essBulk(chains: Chains): number {
  return basicEss(rankNormalize(splitChains(chains)));
}

/** Tail-ESS: min of the ESS of the indicators I(x ≤ q05) and I(x ≤ q95) over split chains. */
export function essTail(chains: Chains): number {
  const split = splitChains(chains);
  const pooled = split.flatMap((c) => Array.from(c));
  let best = Infinity;
  for (const p of [0.05, 0.95]) {
    const q = quantile(pooled, p);
    best = Math.min(best, basicEss(split.map((c) => c.map((v) => (v <= q ? 1 : 0)))));
  }
  return best;
}

/** Sample quantile with linear interpolation (R type 7 / numpy default). */
export function quantile(values: ArrayLike<number>, p: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return NaN;
  const h = (s.length - 1) * p;
  const lo = Math.floor(h), hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (h - lo) * (s[hi] - s[lo]);
}

export interface Summary {
  mean: number;
  sd: number;
  /** Monte-Carlo standard error of the mean: sd / √ESS (basic ESS of the split chains). */
  mcseMean: number;
  q05: number;
  q50: number;
  q95: number;
  rhat: number;
  essBulk: number;
  essTail: number;
}

/** Mean, sd, 5/50/95% quantiles, R̂, bulk and tail ESS of one scalar quantity. */
export function summarize(chains: Chains): Summary {
  validate(chains);
  const pooled = chains.flatMap((c) => Array.from(c));
  const mu = mean(pooled);
  const sd = Math.sqrt(variance(pooled));
  const essMean = basicEss(splitChains(chains));
  return {
    mean: mu, sd, mcseMean: sd / Math.sqrt(essMean),
    q05: quantile(pooled, 0.05), q50: quantile(pooled, 0.5), q95: quantile(pooled, 0.95),
    rhat: rhat(chains), essBulk: essBulk(chains), essTail: essTail(chains),
  };
}
