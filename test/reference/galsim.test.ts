/**
 * GalSim conventions against published numbers (docs/forward-model.md "Oracle numbers measured") and independent numerical oracles
 * (quadrature of the real-space kernels, finite differences of the analytic derivatives).
 */
import { describe, expect, it } from 'vitest';
import {
  EXP_HLR_OVER_R0,
  distortionToShear,
  distortionToShearJacobian,
  exponentialKValue,
  exponentialKValueDr0,
  exponentialXValue,
  galaxyMatrix,
  galaxyMatrixDerivatives,
  hlrToR0,
  quinticUval,
  quinticXval,
  shearMatrix,
  shearToDistortion,
  type Mat2,
} from '../../engine/model/galsim.ts';

/** Composite Simpson rule on [a, b] with n (even) intervals. */
function simpson(f: (x: number) => number, a: number, b: number, n: number): number {
  const h = (b - a) / n;
  let s = f(a) + f(b);
  for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * f(a + i * h);
  return (s * h) / 3;
}

describe('exponential profile', () => {
  it('matches the published GalSim kValue / xValue numbers (flux 1, r0 1, k in 1/arcsec)', () => {
    expect(exponentialKValue(1, 1, 0.5 * 0.5)).toBeCloseTo(0.7155417527999327, 15);
    expect(exponentialKValue(1, 1, 1)).toBeCloseTo(0.3535533905932738, 15);
    expect(exponentialKValue(1, 1, 4)).toBeCloseTo(0.08944271909999159, 15);
    expect(exponentialXValue(1, 1, 0)).toBeCloseTo(0.15915494309189535, 15);
  });

  it('half-light radius factor solves (1 + x) e^{-x} = 1/2 and encloses half the flux', () => {
    const x = EXP_HLR_OVER_R0;
    expect(Math.abs((1 + x) * Math.exp(-x) - 0.5)).toBeLessThan(1e-15);
    // ∫_0^h I(r) 2πr dr with r0 = 0.7, h = hlr: half of the flux (independent quadrature)
    const r0 = 0.7;
    const h = r0 * EXP_HLR_OVER_R0;
    expect(hlrToR0(h)).toBeCloseTo(r0, 14);
    const enclosed = simpson((r) => exponentialXValue(3, r0, r * r) * 2 * Math.PI * r, 0, h, 2000);
    expect(enclosed / 3).toBeCloseTo(0.5, 10);
  });

  it('kValue is the 2-D Fourier transform of xValue (Hankel transform by quadrature)', () => {
    // Ĝ(k) = ∫ I(r) J0(kr) 2πr dr, J0(z) = (1/π) ∫_0^π cos(z sin t) dt
    const r0 = 0.4;
    const J0 = (z: number) => simpson((t) => Math.cos(z * Math.sin(t)), 0, Math.PI, 200) / Math.PI;
    for (const k of [0, 0.7, 2.5, 6]) {
      const ft = simpson((r) => exponentialXValue(2, r0, r * r) * J0(k * r) * 2 * Math.PI * r, 0, 40 * r0, 8000);
      expect(Math.abs(ft - exponentialKValue(2, r0, k * k))).toBeLessThan(1e-8);
    }
  });

  it('d kValue / d r0 matches central differences', () => {
    for (const [r0, k2] of [[0.3, 2], [1.1, 0.4], [0.05, 300]]) {
      const h = 1e-6 * r0;
      const fd = (exponentialKValue(5, r0 + h, k2) - exponentialKValue(5, r0 - h, k2)) / (2 * h);
      expect(Math.abs(exponentialKValueDr0(5, r0, k2) - fd)).toBeLessThan(1e-7 * Math.max(1, Math.abs(fd)));
    }
  });
});

describe('Quintic interpolant', () => {
  it('matches the published xval / uval numbers', () => {
    expect(quinticXval(0.5)).toBe(0.5859375);
    expect(quinticXval(1.5)).toBe(-0.09765625);
    expect(quinticXval(2.5)).toBe(0.01171875);
    expect(quinticUval(0.25)).toBeCloseTo(0.97847213, 8);
    expect(quinticUval(0.5)).toBeCloseTo(0.54050978, 8);
  });

  it('interpolates: xval(0) = 1, xval(±1, ±2, ±3) = 0, support |x| < 3', () => {
    expect(quinticXval(0)).toBe(1);
    for (const x of [1, 2, 3, -1, -2, -3, 3.5, -10]) expect(Math.abs(quinticXval(x))).toBeLessThan(1e-15);
  });

  it('uval is the Fourier transform of xval (quadrature), and the kernel has zero second moment', () => {
    for (const u of [0, 0.1, 0.25, 0.5, 0.8, 1, 1.3, 2.2]) {
      // K is even: ∫ K(x) cos(2πux) dx, integrated piecewise (the kernel is a polynomial on each unit interval)
      let ft = 0;
      for (let a = -3; a < 3; a++) ft += simpson((x) => quinticXval(x) * Math.cos(2 * Math.PI * u * x), a, a + 1, 1000);
      expect(Math.abs(ft - quinticUval(u))).toBeLessThan(1e-10);
    }
    let m2 = 0;
    let m0 = 0;
    for (let a = -3; a < 3; a++) {
      m2 += simpson((x) => x * x * quinticXval(x), a, a + 1, 200);
      m0 += simpson((x) => quinticXval(x), a, a + 1, 200);
    }
    expect(m0).toBeCloseTo(1, 12);
    expect(Math.abs(m2)).toBeLessThan(1e-12);
  });
});

describe('shears and distortions', () => {
  it('e = 0.3 ↔ g = 0.153536 (published), in any direction, and round trips', () => {
    const [g1] = distortionToShear(0.3, 0);
    expect(g1).toBeCloseTo(0.153536, 6);
    for (const ang of [0, 0.3, 1.2, 2.9]) {
      const [a, b] = distortionToShear(0.3 * Math.cos(ang), 0.3 * Math.sin(ang));
      expect(Math.hypot(a, b)).toBeCloseTo(0.15353597, 7);
      expect(Math.atan2(b, a)).toBeCloseTo(Math.atan2(Math.sin(ang), Math.cos(ang)), 12);
      const [e1, e2] = shearToDistortion(a, b);
      expect(e1).toBeCloseTo(0.3 * Math.cos(ang), 14);
      expect(e2).toBeCloseTo(0.3 * Math.sin(ang), 14);
    }
  });

  it('S(g_e) turns a circle into an ellipse of distortion e = (a² − b²)/(a² + b²), area kept', () => {
    for (const [e1, e2] of [[0.3, 0], [0.1, -0.5], [-0.7, 0.2]]) {
      const [ge1, ge2] = distortionToShear(e1, e2);
      const S = shearMatrix(ge1, ge2);
      // S Sᵀ eigenvalues are a², b² (semi-axes of the image of the unit circle)
      const c: Mat2 = [S[0] * S[0] + S[1] * S[1], S[0] * S[2] + S[1] * S[3], 0, S[2] * S[2] + S[3] * S[3]];
      const tr = c[0] + c[3];
      const det = c[0] * c[3] - c[1] * c[1];
      const disc = Math.sqrt(tr * tr / 4 - det);
      const a2 = tr / 2 + disc;
      const b2 = tr / 2 - disc;
      expect((a2 - b2) / (a2 + b2)).toBeCloseTo(Math.hypot(e1, e2), 13);
      expect(S[0] * S[3] - S[1] * S[2]).toBeCloseTo(1, 14);
      // the major axis lies at angle ½ atan2(e2, e1) (e1 > 0: along u)
      const vx = c[1];
      const vy = a2 - c[0];
      const ang = Math.abs(vx) + Math.abs(vy) < 1e-14 ? 0 : Math.atan2(vy, vx);
      const want = 0.5 * Math.atan2(e2, e1);
      const d = Math.abs(Math.sin(ang - want));
      expect(d).toBeLessThan(1e-10);
    }
  });

  it('analytic derivatives of g(e) and of A = S(g)·S(g_e) match central differences', () => {
    const e1 = 0.21;
    const e2 = -0.37;
    const g1 = 0.04;
    const g2 = 0.025;
    const h = 1e-6;
    const J = distortionToShearJacobian(e1, e2);
    const dg = (i: number) => {
      const p = distortionToShear(e1 + (i === 0 ? h : 0), e2 + (i === 1 ? h : 0));
      const m = distortionToShear(e1 - (i === 0 ? h : 0), e2 - (i === 1 ? h : 0));
      return [(p[0] - m[0]) / (2 * h), (p[1] - m[1]) / (2 * h)];
    };
    const [c0, c1] = [dg(0), dg(1)];
    expect(J[0]).toBeCloseTo(c0[0], 8);
    expect(J[2]).toBeCloseTo(c0[1], 8);
    expect(J[1]).toBeCloseTo(c1[0], 8);
    expect(J[3]).toBeCloseTo(c1[1], 8);
    const D = galaxyMatrixDerivatives(e1, e2, g1, g2);
    const args = [e1, e2, g1, g2];
    for (let i = 0; i < 4; i++) {
      const ap = args.slice();
      const am = args.slice();
      ap[i] += h;
      am[i] -= h;
      const Ap = galaxyMatrix(ap[0], ap[1], ap[2], ap[3]);
      const Am = galaxyMatrix(am[0], am[1], am[2], am[3]);
      for (let k = 0; k < 4; k++) expect(D[i][k]).toBeCloseTo((Ap[k] - Am[k]) / (2 * h), 8);
    }
  });
});
