/**
 * engine/model/spergel.ts against independent routes: Γ and K_ν against closed forms, tables,
 * Airy-function identities and an independent power series; the half-light radius relation
 * c_ν = h/r0 (closed-form cumulative flux with K_(ν+1), solved) against a tanh-sinh integration of
 * the real-space profile I(r) ∝ (r/r0)^ν K_ν(r/r0); the flux normalisation; the Fourier transform
 * (1 + k²r0²)^(−(1+ν)) against a numerical Hankel transform of I(r); GalSim's published numbers;
 * ν = ½ against the exponential.
 */
import { describe, expect, it } from 'vitest';
import { besselK, gamma, spergelEnclosedFlux, spergelFluxRadius, spergelHlrOverR0, spergelKValue, spergelMissingFlux, spergelXValue } from '../../engine/model/spergel.ts';
import { profileConstants } from '../../engine/model/profile.ts';
import { EXP_HLR_OVER_R0, exponentialKValue, exponentialXValue } from '../../engine/model/galsim.ts';

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

/** ∫_a^b f by tanh-sinh (double-exponential) quadrature: exact to ~1e-15 even with algebraic endpoint singularities. */
function tanhSinh(f: (x: number) => number, a: number, b: number, h = 1 / 32): number {
  const half = (b - a) / 2;
  let s = 0;
  for (let j = -Math.round(5 / h); j <= Math.round(5 / h); j++) {
    const t = j * h;
    const u = (Math.PI / 2) * Math.sinh(t);
    // distance of the node from the nearer endpoint in units of `half`: 1 − tanh|u| = 2/(1 + e^{2|u|})
    const d = 2 / (1 + Math.exp(2 * Math.abs(u)));
    const w = ((Math.PI / 2) * Math.cosh(t)) / Math.cosh(u) ** 2;
    if (d * half === 0 || w === 0) continue;
    const x = t < 0 ? a + half * d : b - half * d;
    s += w * f(x);
  }
  return s * h * half;
}

/** Unit-flux, unit-r0 Spergel surface brightness times 2πr: the radial flux density. */
function radialDensity(nu: number, r: number): number {
  if (nu > 0 && r < 1e-20) return 0; // ∝ r^(2ν+1)·… below 1e-40 (and K_ν would overflow)
  return (2 * Math.PI * r * Math.pow(r / 2, nu) * besselK(nu, r)) / (2 * Math.PI * gamma(nu + 1));
}

/** J0 by the trapezoidal rule on (1/π)∫_0^π cos(x sin θ) dθ (periodic analytic integrand: spectral accuracy). */
function besselJ0(x: number): number {
  const n = 64 + Math.ceil(Math.abs(x));
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.cos(x * Math.sin((Math.PI * (i + 0.5)) / n));
  return s / n;
}

/** K_ν for non-integer ν by the power series π/(2 sin νπ)·(I_−ν − I_ν) (independent of besselK; x ≲ 3). */
function besselKSeries(nu: number, x: number): number {
  const I = (mu: number) => {
    let term = Math.pow(x / 2, mu) / gamma(mu + 1);
    let s = term;
    for (let k = 1; k < 200; k++) {
      term = (term * (x / 2) ** 2) / (k * (k + mu));
      s += term;
      if (Math.abs(term) < 1e-18 * Math.abs(s)) break;
    }
    return s;
  };
  return (Math.PI / (2 * Math.sin(nu * Math.PI))) * (I(-nu) - I(nu));
}

/** [ν, x, K_ν(x)] from mpmath 1.3 (mp.dps = 30). */
const MPMATH_K: Array<[number, number, number]> = [
  [-0.85, 0.001, 355.74017215257993], [-0.85, 0.2, 3.6819162075185395], [-0.85, 1.7, 0.1962428073520219],
  [-0.85, 6, 0.0013154453511004493], [-0.85, 40, 8.4680686391677457e-19],
  [-0.6, 0.001, 71.190352699403363], [-0.6, 0.2, 2.5714415785282121], [-0.6, 1.7, 0.18022546162955662],
  [-0.6, 6, 0.0012791185904165869], [-0.6, 40, 8.4302515546898249e-19],
  [0, 0.001, 7.0236888005623813], [0, 0.2, 1.7527038555281459], [0, 1.7, 0.16549631805699654],
  [0, 6, 0.0012439943280131231], [0, 40, 8.392861100099567e-19],
  [0.4, 0.001, 23.104951131747813], [0.4, 0.2, 2.0860820330595508], [0.4, 1.7, 0.17190296980560005],
  [0.4, 6, 0.0012594895480721873], [0.4, 40, 8.4094587253148666e-19],
  [1, 0.001, 999.99623815608557], [1, 0.2, 4.7759725432204722], [1, 1.7, 0.20936248820408247],
  [1, 6, 0.001343919717735509], [1, 40, 8.4971319548610387e-19],
  [2, 0.001, 1999999.5000009717], [2, 0.2, 49.512429287732868], [2, 1.7, 0.41180512770885827],
  [2, 6, 0.0016919675672582928], [2, 40, 8.817717697842619e-19],
  [3.3, 0.001, 104968842516.24678], [3.3, 0.2, 2665.4856381028398], [3.3, 1.7, 1.718977196963174],
  [3.3, 6, 0.0028485564987014979], [3.3, 40, 9.6001388177038908e-19],
  [5, 0.001, 3.83999976000001e17], [5, 0.2, 1197004.9916872606], [5, 1.7, 22.686864093434517],
  [5, 6, 0.0080237189801290334], [5, 40, 1.1423814375953183e-18],
];

/** c_ν = h/r0 from mpmath 1.3 findroot on the closed-form L(c) = ½ (mp.dps = 30). */
const MPMATH_HLR: Array<[number, number]> = [
  [-0.85, 0.11211765561989925849], [-0.6, 0.54771392975089869355], [0, 1.2571513906775704597],
  [0.2, 1.4371673322840119906], [0.5, 1.6783469900166606534], [2, 2.6017838101438682974], [4, 3.4944869314199300004],
];

describe('Γ and K_ν', () => {
  it('Γ matches known values to 1e-14', () => {
    const cases: Array<[number, number]> = [
      [1, 1],
      [5, 24],
      [0.5, Math.sqrt(Math.PI)],
      [1.5, Math.sqrt(Math.PI) / 2],
      [1 / 3, 2.678938534707747633],
      [0.15, 6.2202728740498776],
      [4.7, 15.431411600047432],
      [-0.5, -2 * Math.sqrt(Math.PI)],
    ];
    for (const [x, v] of cases) expect(rel(gamma(x), v), `Γ(${x})`).toBeLessThan(1e-14);
  });

  it('K_ν matches closed forms, tables and Airy identities', () => {
    let worst = 0;
    const chk = (v: number, ref: number) => (worst = Math.max(worst, rel(v, ref)));
    for (const x of [1e-4, 0.01, 0.3, 1, 2.5, 7, 30, 300]) {
      const e = Math.sqrt(Math.PI / (2 * x)) * Math.exp(-x);
      chk(besselK(0.5, x), e);
      chk(besselK(-0.5, x), e);
      chk(besselK(1.5, x), e * (1 + 1 / x));
      chk(besselK(2.5, x), e * (1 + 3 / x + 3 / (x * x)));
      chk(besselK(4.5, x), e * (1 + 10 / x + 45 / x ** 2 + 105 / x ** 3 + 105 / x ** 4));
    }
    // A&S table 9.8 / mpmath
    const tab: Array<[number, number, number]> = [
      [0, 0.5, 0.92441907122766587],
      [1, 0.5, 1.6564411200033008],
      [0, 1, 0.42102443824070834],
      [1, 1, 0.60190723019723457],
      [0, 2, 0.11389387274953344],
      [1, 2, 0.13986588181652243],
      [0, 5, 0.0036910983340425942],
      [1, 5, 0.0040446134454521655],
    ];
    for (const [nu, x, v] of tab) chk(besselK(nu, x), v);
    // mpmath 1.3 besselk at 30 digits (printed to 17), real orders over the profile's range
    for (const [nu, x, v] of MPMATH_K) chk(besselK(nu, x), v);
    // K_2 = K_0 + (2/x) K_1; Airy: Ai(1) = (1/π)√(1/3) K_⅓(⅔), Ai'(1) = −(1/(π√3)) K_⅔(⅔)
    chk(besselK(2, 1), 0.42102443824070834 + 2 * 0.60190723019723457);
    chk(besselK(1 / 3, 2 / 3), (Math.PI * 0.13529241631288141) / Math.sqrt(1 / 3));
    chk(besselK(2 / 3, 2 / 3), 0.15914744129679328 * Math.PI * Math.sqrt(3));
    console.log('K_ν worst relative error vs closed forms / tables', worst.toExponential(2));
    // ~x·1e-16: e^{−x cosh t} rounds its argument (2e-14 at x = 300)
    expect(worst).toBeLessThan(5e-14);
  });

  it('K_ν matches an independent power series for non-integer orders', () => {
    let worst = 0;
    for (const nu of [-0.85, -0.6, -0.2, 0.15, 0.2, 0.37, 1.3, 1.4, 2.7, 3.3, 4.4]) {
      for (const x of [0.01, 0.1, 0.5, 1, 2, 3]) worst = Math.max(worst, rel(besselK(nu, x), besselKSeries(nu, x)));
    }
    console.log('K_ν vs power series, worst relative difference', worst.toExponential(2));
    expect(worst).toBeLessThan(1e-11);
  });
});

describe('Spergel profile', () => {
  const NUS = [-0.85, -0.6, -0.2, 0, 0.2, 0.5, 1, 2, 3, 4];

  it('half-light radius: the closed form agrees with a numerical integration of I(r) to 1e-10', () => {
    const rows: string[] = [];
    for (const nu of NUS) {
      const c = spergelHlrOverR0(nu);
      const inside = tanhSinh((r) => radialDensity(nu, r), 0, c);
      // root of the numerically integrated enclosed flux: one Newton step from c (L' = radial density)
      const cNum = c - (inside - 0.5) / radialDensity(nu, c);
      rows.push(`nu=${nu}: c=${c.toPrecision(16)} ∫_0^c=${inside.toPrecision(15)} |Δc|/c=${rel(cNum, c).toExponential(2)}`);
      expect(Math.abs(inside - 0.5), `nu ${nu}`).toBeLessThan(1e-10);
      expect(rel(cNum, c), `nu ${nu}`).toBeLessThan(1e-10);
      expect(spergelEnclosedFlux(nu, c)).toBeCloseTo(0.5, 14);
    }
    console.log(rows.join('\n'));
  });

  it('flux normalisation: ∫ 2πr I(r) dr = F', () => {
    for (const nu of NUS) {
      const c = spergelHlrOverR0(nu);
      let total = tanhSinh((r) => radialDensity(nu, r), 0, c);
      for (let a = c; a < 80; a += 4) total += tanhSinh((r) => radialDensity(nu, r), a, a + 4);
      expect(Math.abs(total - 1), `nu ${nu}`).toBeLessThan(1e-12);
      // and spergelXValue is the same density
      expect(rel(spergelXValue(3, 0.7, nu, 0.49), (3 / 0.49) * radialDensity(nu, 1) / (2 * Math.PI))).toBeLessThan(1e-14);
    }
  });

  it('Fourier transform: the Hankel transform of I(r) is (1 + k²r0²)^(−(1+ν))', () => {
    let worst = 0;
    for (const nu of [-0.6, 0, 0.5, 2]) {
      for (const k of [0.3, 1, 2.5]) {
        const f = (r: number) => radialDensity(nu, r) * besselJ0(k * r);
        let s = tanhSinh(f, 0, 1);
        for (let a = 1; a < 80; a += 1) s += tanhSinh(f, a, a + 1, 1 / 16);
        const want = spergelKValue(1, 1, nu, k * k);
        worst = Math.max(worst, Math.abs(s - want));
      }
    }
    console.log('Hankel transform vs kValue, worst absolute difference', worst.toExponential(2));
    expect(worst).toBeLessThan(1e-10);
  });

  it('c_ν matches mpmath to 1e-14', () => {
    let worst = 0;
    for (const [nu, c] of MPMATH_HLR) worst = Math.max(worst, rel(spergelHlrOverR0(nu), c));
    console.log('c_ν vs mpmath, worst relative error', worst.toExponential(2));
    expect(worst).toBeLessThan(1e-14);
  });

  it('GalSim published numbers (tests/test_spergel.py)', () => {
    // Spergel(nu, half_light_radius=2.3).scale_radius
    expect(rel(2.3 / spergelHlrOverR0(0.2), 1.6003703593406464)).toBeLessThan(1e-12);
    expect(rel(2.3 / spergelHlrOverR0(-0.2), 2.1783499913527824)).toBeLessThan(1e-12);
    // xValue(0, 0) of Spergel(nu=0.2, half_light_radius=2.3, flux=17.9)
    expect(rel(spergelXValue(17.9, 1.6003703593406464, 0.2, 0), 2.7808154838921206)).toBeLessThan(1e-12);
    // Mathematica: enclosed flux inside r = 1e-5 r0 and the radius enclosing 1e-5 of the flux
    // (ν ≤ 0 only: for ν > 0 the enclosed flux at 1e-5 is < 1e-10 and 1 − (1 − L) cancels)
    const enclosed: Array<[number, number, number]> = [
      [-0.85, 3.06256e-2, 2.3973e-17],
      [-0.5, 9.99995e-6, 1.00001e-5],
      [0, 6.06443e-10, 1.69047e-3],
    ];
    for (const [nu, flux, radius] of enclosed) {
      expect(rel(spergelEnclosedFlux(nu, 1e-5), flux), `flux nu ${nu}`).toBeLessThan(1e-4);
      if (nu > -0.85) expect(rel(spergelFluxRadius(nu, 1 - 1e-5), radius), `radius nu ${nu}`).toBeLessThan(1e-4);
    }
  });

  it('ν = ½ is the exponential', () => {
    expect(spergelHlrOverR0(0.5)).toBe(EXP_HLR_OVER_R0);
    // the solver itself, not the special case
    const solved = spergelFluxRadius(0.5, 0.5);
    console.log('solved c_0.5', solved, 'vs', EXP_HLR_OVER_R0, 'rel', rel(solved, EXP_HLR_OVER_R0).toExponential(2));
    expect(rel(solved, EXP_HLR_OVER_R0)).toBeLessThan(1e-14);
    expect(profileConstants({ type: 'spergel', nu: 0.5 })).toEqual(profileConstants({ type: 'exponential' }));
    expect(profileConstants(undefined)).toEqual({ exponent: 1.5, hlrOverR0: EXP_HLR_OVER_R0 });
    for (const k2 of [0, 0.3, 4, 100]) expect(rel(spergelKValue(2, 0.4, 0.5, k2), exponentialKValue(2, 0.4, k2))).toBeLessThan(1e-14);
    for (const r2 of [0.01, 0.3, 4]) expect(rel(spergelXValue(2, 0.4, 0.5, r2), exponentialXValue(2, 0.4, r2))).toBeLessThan(1e-14);
    // the missing flux: (1 + u) e^{−u}
    for (const u of [0.1, 1, 10, 40]) expect(rel(spergelMissingFlux(0.5, u), (1 + u) * Math.exp(-u))).toBeLessThan(1e-14);
  });

  it('rejects ν outside GalSim range', () => {
    expect(() => spergelHlrOverR0(-0.9)).toThrow(/nu = -0.9/);
    expect(() => spergelHlrOverR0(4.1)).toThrow(RangeError);
    expect(() => spergelHlrOverR0(NaN)).toThrow(RangeError);
  });
});
