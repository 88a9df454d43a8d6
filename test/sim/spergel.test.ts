/**
 * The simulator with Spergel galaxies: the truth renderer's kind 'spergel' against analytic
 * moments (per-axis second moment 2(1 + ν) r0², from Ĝ ≈ 1 − (1 + ν) r0² k²) and flux, ν = ½
 * against kind 'exp', the stamp radius from the Spergel cumulative profile, and
 * `simulate({ profile })` / `shine simulate --profile spergel --spergel-nu ν`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderTruth, type Jacobian } from '../../engine/sim/truth-render.ts';
import { distortionToShear, matMul, psfAt, psfMoments, shearMatrix } from '../../engine/sim/psf-model.ts';
import { spergelHlrOverR0 } from '../../engine/model/spergel.ts';
import { checkGalaxyProfile, detFileName, simulate } from '../../engine/sim/simulate.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import { nodeSimOutput, parseSimulateArgs } from '../../cli/commands/simulate.ts';
import { openFits } from '../../platform/node/files.ts';

function moments(s: { x0: number; y0: number; n: number; data: Float64Array }) {
  let f = 0, mx = 0, my = 0;
  for (let b = 0; b < s.n; b++) for (let a = 0; a < s.n; a++) {
    const v = s.data[b * s.n + a];
    f += v; mx += v * (s.x0 + a); my += v * (s.y0 + b);
  }
  mx /= f; my /= f;
  let qxx = 0, qxy = 0, qyy = 0;
  for (let b = 0; b < s.n; b++) for (let a = 0; a < s.n; a++) {
    const v = s.data[b * s.n + a];
    const x = s.x0 + a - mx, y = s.y0 + b - my;
    qxx += v * x * x; qxy += v * x * y; qyy += v * y * y;
  }
  return { f, mx, my, qxx: qxx / f, qxy: qxy / f, qyy: qyy / f };
}

/** Pixel covariance J⁻¹ C J⁻ᵀ + I/12 of a world covariance C = (cuu, cuv, cvv). */
function expected(jac: Jacobian, [a, b, c]: [number, number, number]) {
  const det = jac[0] * jac[3] - jac[1] * jac[2];
  const ji = [jac[3] / det, -jac[1] / det, -jac[2] / det, jac[0] / det];
  const p = ji[0] * a + ji[1] * b, q = ji[0] * b + ji[1] * c, r = ji[2] * a + ji[3] * b, s = ji[2] * b + ji[3] * c;
  return { qxx: p * ji[0] + q * ji[1] + 1 / 12, qxy: p * ji[2] + q * ji[3], qyy: r * ji[2] + s * ji[3] + 1 / 12 };
}

const CASES: Array<{ name: string; jac: Jacobian; hlr: number; e: [number, number]; g: [number, number]; x: number; y: number; fp: [number, number] }> = [
  { name: 'aligned CCD', jac: [0.1, 0, 0, 0.1], hlr: 0.3, e: [0.1, -0.05], g: [0.03, 0.02], x: 100.3, y: 57.8, fp: [0, 0] },
  { name: 'CCD rotated 180° + distortion', jac: [-0.1002, 0.0003, -0.0001, -0.0998], hlr: 0.25, e: [-0.4, 0.3], g: [-0.05, 0.04], x: 1012.61, y: 3.27, fp: [1200, -900] },
];

describe('truth renderer: Spergel profile', () => {
  for (const nu of [-0.6, 2]) {
    for (const c of CASES) {
      it(`ν = ${nu}, ${c.name}: flux, centroid and second moments 2(1+ν) r0² A Aᵀ + PSF + pixel`, () => {
        const r0 = c.hlr / spergelHlrOverR0(nu);
        const [ge1, ge2] = distortionToShear(c.e[0], c.e[1]);
        const A = matMul(shearMatrix(c.g[0], c.g[1]), shearMatrix(ge1, ge2));
        const psf = psfAt(c.fp[0], c.fp[1]);
        const flux = 1234.5;
        const s = renderTruth({ flux, kind: 'spergel', nu, r0, A }, psf, c.x, c.y, c.jac, { fluxTol: 1e-10 });
        const m = moments(s);
        const k = 2 * (1 + nu) * r0 * r0;
        const aat = [A[0] * A[0] + A[1] * A[1], A[0] * A[2] + A[1] * A[3], A[2] * A[2] + A[3] * A[3]];
        const pm = psfMoments(psf);
        const ex = expected(c.jac, [k * aat[0] + pm[0], k * aat[1] + pm[1], k * aat[2] + pm[2]]);
        const scale = Math.max(ex.qxx, ex.qyy);
        const err = Math.max(Math.abs(m.qxx / ex.qxx - 1), Math.abs(m.qyy / ex.qyy - 1), Math.abs(m.qxy - ex.qxy) / scale);
        console.log(`spergel nu=${nu} ${c.name}: stamp ${s.n}², FFT ${s.fftSize}; |flux − F|/F ${Math.abs(m.f / flux - 1).toExponential(2)}, moments rel. err ${err.toExponential(2)}`);
        expect(Math.abs(m.f / flux - 1)).toBeLessThan(1e-6);
        expect(Math.abs(m.mx - c.x)).toBeLessThan(1e-3);
        expect(Math.abs(m.my - c.y)).toBeLessThan(1e-3);
        expect(err).toBeLessThan(1e-3);
        // the default stamp (fluxTol 1e-5, radius from the Spergel cumulative profile) holds ≥ 1 − 1e-5
        const d = renderTruth({ flux, kind: 'spergel', nu, r0, A }, psf, c.x, c.y, c.jac);
        expect(moments(d).f / flux).toBeGreaterThan(1 - 1e-5);
      });
    }
  }

  it('ν = ½ is the exponential (same stamp, values to 1e-13 of the peak)', () => {
    const c = CASES[1];
    const r0 = c.hlr / 1.6783469900166605;
    const A = shearMatrix(0.1, -0.2);
    const psf = psfAt(300, 200);
    const a = renderTruth({ flux: 100, kind: 'exp', r0, A }, psf, c.x, c.y, c.jac);
    const b = renderTruth({ flux: 100, kind: 'spergel', nu: 0.5, r0, A }, psf, c.x, c.y, c.jac);
    expect([b.n, b.fftSize, b.x0, b.y0]).toEqual([a.n, a.fftSize, a.x0, a.y0]);
    let peak = 0, diff = 0;
    for (let i = 0; i < a.data.length; i++) { peak = Math.max(peak, a.data[i]); diff = Math.max(diff, Math.abs(a.data[i] - b.data[i])); }
    expect(diff / peak).toBeLessThan(1e-13);
  });

  it('a cuspier profile (smaller ν) needs a larger stamp at the same hlr', () => {
    const psf = psfAt(0, 0);
    const jac: Jacobian = [0.1, 0, 0, 0.1];
    const n = (nu: number) => renderTruth({ flux: 1, kind: 'spergel', nu, r0: 0.3 / spergelHlrOverR0(nu) }, psf, 0, 0, jac).n;
    expect(n(-0.6)).toBeGreaterThan(n(0.5));
    expect(n(0.5)).toBeGreaterThan(n(2));
  });
});

describe('simulate --profile spergel', () => {
  let root: string;
  const tiny: Preset = { ...PRESETS.ci, tileCore: 120, margin: 6, pad: 2 };
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'shine-sim-spergel-'));
    await simulate(nodeSimOutput(join(root, 'exp')), { preset: tiny, seed: 13, noise: false, defects: false });
    await simulate(nodeSimOutput(join(root, 'sp')), { preset: tiny, seed: 13, noise: false, defects: false, profile: { type: 'spergel', nu: -0.6 } });
  }, 300_000);
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('same scene, Spergel pixels, the profile recorded in the headers', async () => {
    const ta = await openFits(join(root, 'exp', 'truth', 'sources.fits'));
    const tb = await openFits(join(root, 'sp', 'truth', 'sources.fits'));
    const a = await ta.readTable(1);
    const b = await tb.readTable(1);
    for (const col of ['RA', 'DEC', 'FLUX_ADU', 'HLR', 'E1', 'E2', 'G1', 'G2']) expect(b.column(col).data).toEqual(a.column(col).data);
    expect(tb.header(1).get('GALPROF')).toBe('SPERGEL');
    expect(tb.header(1).get('SPERGNU')).toBe(-0.6);
    expect(ta.header(1).get('GALPROF')).toBeUndefined();
    let maxDiff = 0;
    let quadrants = 0;
    for (let d = 0; d < 4; d++) {
      const det = detFileName(tiny.obsId, d);
      const da = await openFits(join(root, 'exp', 'VIS', det));
      const db = await openFits(join(root, 'sp', 'VIS', det));
      expect(db.header(0).get('SPERGNU')).toBe(-0.6);
      for (let h = 1; h < da.hdus.length; h++) {
        if (!da.hdus[h].name.endsWith('.SCI')) continue;
        quadrants++;
        const sa = (await da.readImageFloat32(h)).data;
        const sb = (await db.readImageFloat32(h)).data;
        for (let i = 0; i < sa.length; i++) maxDiff = Math.max(maxDiff, Math.abs(sa[i] - sb[i]));
      }
    }
    console.log(`${quadrants} quadrants: max |SCI(spergel −0.6) − SCI(exp)| = ${maxDiff.toFixed(2)} ADU`);
    expect(quadrants).toBeGreaterThan(0);
    expect(maxDiff).toBeGreaterThan(1);
  });

  it('options are validated', async () => {
    expect(() => checkGalaxyProfile({ type: 'spergel', nu: 5 })).toThrow(/--spergel-nu must be a number from -0.85 to 4/);
    expect(checkGalaxyProfile({ type: 'exponential' })).toBeUndefined();
    const sink = { async open() { return { async append() {}, async close() {} }; } };
    await expect(simulate(sink, { preset: 'ci', seed: 1, profile: { type: 'spergel', nu: -1 } })).rejects.toThrow(/spergel-nu/);
    const base = ['--preset', 'ci', '--seed', '1', '--out', 'x'];
    expect(parseSimulateArgs([...base, '--profile', 'spergel', '--spergel-nu', '-0.6']).spergelNu).toBe(-0.6);
    expect(parseSimulateArgs([...base, '--profile', 'exponential']).spergelNu).toBeNull();
    expect(() => parseSimulateArgs([...base, '--profile', 'spergel'])).toThrow(/--profile spergel needs --spergel-nu/);
    expect(() => parseSimulateArgs([...base, '--spergel-nu', '1'])).toThrow(/--spergel-nu needs --profile spergel/);
    expect(() => parseSimulateArgs([...base, '--profile', 'spergel', '--spergel-nu', '4.5'])).toThrow(/-0.85 to 4/);
    expect(() => parseSimulateArgs([...base, '--profile', 'sersic'])).toThrow(/--profile must be exponential, spergel/);
  });
});
