/**
 * The inferred ellipticity dispersion (engine/infer/population.ts). Oracles:
 *  - the ba14 second moment against a direct 2-D sum over the unit disc (polar midpoint grid in r,
 *    written here), and its limits (σ → ∞: 1/4; small σ: the Gaussian 2σ²);
 *  - the EM update on a population drawn from ba14(σ) by rejection sampling here, observed with
 *    Gaussian errors of known sd: the recovered σ is within its sampling error of the truth;
 *  - the range bounds and skipped non-finite sources.
 */
import { describe, it, expect } from 'vitest';
import { mulberry32 } from '../../engine/util/rng.ts';
import { ba14SecondMoment, ba14SigmaForSecondMoment, sigmaEUpdate } from '../../engine/infer/population.ts';

function discMoment(sigma: number): number {
  // ∫∫ |e|² p(e) d²e / ∫∫ p(e) d²e over the unit disc, midpoint rule in r (the angle integrates out)
  const n = 20000;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    const r = (i + 0.5) / n;
    const p = (1 - r * r) ** 2 * Math.exp((-r * r) / (2 * sigma * sigma)) * r;
    num += r * r * p;
    den += p;
  }
  return num / den;
}

function rng(seed: number) {
  const u = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return { u, normal };
}

describe('inferred ellipticity dispersion', () => {
  it('ba14 second moment: a 2-D disc sum, and its limits', () => {
    for (const s of [0.05, 0.1, 0.2, 0.26, 0.3, 0.45, 0.6, 1, 3]) {
      const a = ba14SecondMoment(s);
      const b = discMoment(s);
      expect(Math.abs(a - b), `σ = ${s}: ${a} vs ${b}`).toBeLessThan(2e-8);
    }
    expect(Math.abs(ba14SecondMoment(50) - 0.25)).toBeLessThan(1e-4);
    // small σ: the (1 − u)² factor barely matters, E|e|² → 2σ²
    expect(Math.abs(ba14SecondMoment(0.03) / (2 * 0.03 * 0.03) - 1)).toBeLessThan(0.01);
    // the inverse
    for (const s of [0.07, 0.2, 0.3, 0.55]) expect(Math.abs(ba14SigmaForSecondMoment(ba14SecondMoment(s), 0.05, 0.6) - s)).toBeLessThan(1e-9);
    expect(ba14SigmaForSecondMoment(0.0001, 0.05, 0.6)).toBe(0.05);
    expect(ba14SigmaForSecondMoment(0.24, 0.05, 0.6)).toBe(0.6);
  });

  it('EM step recovers σ of a ba14 population seen through Gaussian errors', () => {
    const r = rng(11);
    for (const truth of [0.18, 0.3]) {
      const n = 20000;
      const e1 = new Float64Array(n);
      const e2 = new Float64Array(n);
      const sd = new Float64Array(n);
      let i = 0;
      // rejection sampling from ba14(truth): propose uniform on the disc, accept ∝ p
      while (i < n) {
        const x = 2 * r.u() - 1;
        const y = 2 * r.u() - 1;
        const q = x * x + y * y;
        if (q >= 1) continue;
        if (r.u() > (1 - q) ** 2 * Math.exp(-q / (2 * truth * truth))) continue;
        // a posterior mean with shrinkage-free Gaussian error of known sd (0.02 … 0.1)
        sd[i] = 0.02 + 0.08 * r.u();
        e1[i] = x + sd[i] * r.normal();
        e2[i] = y + sd[i] * r.normal();
        i++;
      }
      // E|y|² = E|e|² + 2 sd² for noisy values y: the debiased moment recovers σ
      const m2 = Array.from(e1, (v, k) => v * v + e2[k] * e2[k] - 2 * sd[k] * sd[k]).reduce((a, b) => a + b, 0) / n;
      const direct = ba14SigmaForSecondMoment(m2, 0.05, 0.6);
      expect(Math.abs(direct - truth), `σ from the debiased moment ${direct} vs ${truth}`).toBeLessThan(0.01);
      // the EM step on the noisy values with zero variances: their moment carries the noise, so σ
      // comes out larger — exactly ba14SigmaForSecondMoment of that moment
      const up = sigmaEUpdate(e1, e2, new Float64Array(n), new Float64Array(n), [0.05, 0.6], 0.3);
      expect(up.sources).toBe(n);
      expect(up.sigma).toBeGreaterThan(direct);
      expect(Math.abs(up.sigma - ba14SigmaForSecondMoment(up.secondMoment, 0.05, 0.6))).toBeLessThan(1e-12);
    }
  });

  it('a posterior with shrunk means and their variances gives back the population σ (Gaussian case)', () => {
    // Gaussian population N(0, τ²) per component (τ small: ba14 ≈ Gaussian, E|e|² ≈ 2τ²), observed
    // with noise s: the exact posterior is mean ê = y τ²/(τ² + s²), variance τ² s²/(τ² + s²);
    // E[|ê|² + 2v] = 2τ² — the EM fixed point at the truth
    const r = rng(5);
    const tau = 0.08;
    const n = 40000;
    const e1 = new Float64Array(n);
    const e2 = new Float64Array(n);
    const sd = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const s = 0.03 + 0.1 * r.u();
      const k1 = tau * tau / (tau * tau + s * s);
      e1[k] = (tau * r.normal() + s * r.normal()) * k1;
      e2[k] = (tau * r.normal() + s * r.normal()) * k1;
      sd[k] = Math.sqrt(tau * tau * s * s / (tau * tau + s * s));
    }
    const up = sigmaEUpdate(e1, e2, sd, sd, [0.01, 0.6], 0.3);
    const want = ba14SigmaForSecondMoment(2 * tau * tau, 0.01, 0.6);
    console.log(`E[|ê|² + 2v] = ${up.secondMoment.toFixed(5)} (2τ² = ${(2 * tau * tau).toFixed(5)}); σ ${up.sigma.toFixed(4)} vs ${want.toFixed(4)}`);
    expect(Math.abs(up.secondMoment / (2 * tau * tau) - 1)).toBeLessThan(0.02);
    expect(Math.abs(up.sigma - want)).toBeLessThan(0.002);
    // non-finite sources are skipped; none left: σ unchanged
    const nan = sigmaEUpdate([NaN], [0], [0.1], [0.1], [0.05, 0.6], 0.27);
    expect(nan.sources).toBe(0);
    expect(nan.sigma).toBe(0.27);
  });
});
