/**
 * The intrinsic-ellipticity population of a sub-tile, inferred from its own sources (empirical
 * Bayes, docs/inference.md "An inferred ellipticity dispersion").
 *
 * The ba14 prior p(e | σ) ∝ (1 − |e|²)² exp(−|e|²/2σ²) on the unit disc has, with u = |e|² and
 * a = 1/2σ², the second moment
 *
 *   E|e|² = ∫₀¹ u (1 − u)² e^(−au) du / ∫₀¹ (1 − u)² e^(−au) du,
 *
 * increasing in σ from 0 (σ → 0) to 1/4 (σ → ∞, the (1 − u)² law alone). The EM update of σ for
 * sources whose posterior shapes have means ê_i and variances v_i (per component) matches that
 * moment to the posterior expectation of |e|² averaged over the sources:
 *
 *   E_σ|e|² = mean_i( |ê_i|² + v_i1 + v_i2 )
 *
 * exact for a Gaussian population and Gaussian posteriors, and the moment that sets the shape
 * prior's shrinkage here. Pure float64 code.
 */

/** E|e|² under ba14(σ) (composite Simpson in u on 4,000 intervals: the integrands are smooth). */
export function ba14SecondMoment(sigma: number): number {
  const a = 1 / (2 * sigma * sigma);
  const n = 4000;
  let num = 0;
  let den = 0;
  for (let i = 0; i <= n; i++) {
    const u = i / n;
    const w = i === 0 || i === n ? 1 : i % 2 ? 4 : 2;
    const f = (1 - u) * (1 - u) * Math.exp(-a * u);
    num += w * u * f;
    den += w * f;
  }
  return num / den;
}

/** σ with E_σ|e|² = m2, by bisection in log σ on [low, high]; the bound when m2 is outside. */
export function ba14SigmaForSecondMoment(m2: number, low: number, high: number): number {
  if (!(m2 > ba14SecondMoment(low))) return low;
  if (!(m2 < ba14SecondMoment(high))) return high;
  let lo = Math.log(low);
  let hi = Math.log(high);
  for (let k = 0; k < 60; k++) {
    const mid = 0.5 * (lo + hi);
    if (ba14SecondMoment(Math.exp(mid)) < m2) lo = mid;
    else hi = mid;
  }
  return Math.exp(0.5 * (lo + hi));
}

export interface SigmaEUpdate {
  sigma: number;
  /** The matched moment mean(|ê|² + v1 + v2) and the number of sources used. */
  secondMoment: number;
  sources: number;
}

/**
 * One EM step for σ_e from posterior means (e1, e2) and standard deviations (sd1, sd2) of the
 * sources' distortions. Sources with a non-finite mean or sd (left out of the error propagation)
 * are skipped; with none left, σ stays at `current`.
 */
export function sigmaEUpdate(
  e1: ArrayLike<number>,
  e2: ArrayLike<number>,
  sd1: ArrayLike<number>,
  sd2: ArrayLike<number>,
  range: [number, number],
  current: number,
): SigmaEUpdate {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < e1.length; i++) {
    const v = e1[i] * e1[i] + e2[i] * e2[i] + sd1[i] * sd1[i] + sd2[i] * sd2[i];
    if (!Number.isFinite(v)) continue;
    sum += v;
    n++;
  }
  if (n === 0) return { sigma: current, secondMoment: NaN, sources: 0 };
  const m2 = sum / n;
  return { sigma: ba14SigmaForSecondMoment(m2, range[0], range[1]), secondMoment: m2, sources: n };
}
