/**
 * The simulator's bulge + disk and per-galaxy-ν Spergel galaxies (engine/sim/galaxy-profile.ts):
 * a bulge + disk stamp's flux and second moments against the analytic flux-weighted sum of its
 * components' moments (2(1 + ν) r0² A Aᵀ each, + PSF + pixel), the per-galaxy draws in their
 * ranges and reproducible, and `simulate({ profile })` / `shine simulate --profile …`: same scene,
 * different pixels, truth columns and headers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addStamp, renderTruth, type Jacobian } from '../../engine/sim/truth-render.ts';
import { psfAt, psfMoments } from '../../engine/sim/psf-model.ts';
import { simComponents, simProfileParams, SIM_BULGE_FRAC_RANGE, SIM_NU_RANGE } from '../../engine/sim/galaxy-profile.ts';
import { detFileName, simulate } from '../../engine/sim/simulate.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import type { SkyObject } from '../../engine/sim/scene.ts';
import { nodeSimOutput, parseSimulateArgs } from '../../cli/commands/simulate.ts';
import { openFits } from '../../platform/node/files.ts';
import { spergelHlrOverR0 } from '../../engine/model/spergel.ts';

const BD = { type: 'bulge_disk' as const, bulgeNu: -0.6 };
const VAR = { type: 'spergel' as const, nu: 0.5, free: true };

function galaxy(id: number): SkyObject {
  return { id, u: 0, v: 0, ra: 0, dec: 0, isStar: false, mag: 22, fluxUJy: 1, fluxAdu: 1500, hlr: 0.35, e1: 0.3, e2: -0.2, g1: 0.02, g2: 0.03, subRow: 0, subCol: 0 };
}

describe('simulated bulge + disk galaxies', () => {
  it('flux and second moments: Σ_c f_c 2(1 + ν_c) r0_c² A_c A_cᵀ + PSF + pixel', () => {
    const o = galaxy(7);
    const comps = simComponents(o, BD, 3);
    expect(comps.map((c) => c.kind)).toEqual(['exp', 'spergel']);
    const pp = simProfileParams(o, BD, 3);
    expect(comps[0].flux + comps[1].flux).toBeCloseTo(o.fluxAdu, 10);
    expect(comps[1].flux / o.fluxAdu).toBeCloseTo(pp.bulgeFrac!, 12);
    expect(comps[1].r0).toBeCloseTo(pp.bulgeHlr! / spergelHlrOverR0(-0.6), 12);
    const jac: Jacobian = [0.1, 0, 0, 0.1];
    const psf = psfAt(0, 0);
    const [x, y] = [60.3, 59.6];
    const w = 120;
    const img = new Float64Array(w * w);
    for (const c of comps) addStamp(img, w, w, renderTruth({ flux: c.flux, kind: c.kind, nu: c.nu, r0: c.r0, A: c.A }, psf, x, y, jac, { fluxTol: 1e-9 }));
    let f = 0, mx = 0, my = 0;
    for (let j = 0; j < w; j++) for (let i = 0; i < w; i++) { const v = img[j * w + i]; f += v; mx += v * i; my += v * j; }
    mx /= f; my /= f;
    let qxx = 0, qxy = 0, qyy = 0;
    for (let j = 0; j < w; j++) for (let i = 0; i < w; i++) { const v = img[j * w + i]; qxx += v * (i - mx) ** 2; qxy += v * (i - mx) * (j - my); qyy += v * (j - my) ** 2; }
    // analytic: world covariance, then pixels (J = 0.1·I) + 1/12 pixel
    let cuu = 0, cuv = 0, cvv = 0;
    const pm = psfMoments(psf);
    for (const c of comps) {
      const s = (2 * (1 + c.nu) * c.r0 * c.r0 * c.flux) / o.fluxAdu;
      const A = c.A;
      cuu += s * (A[0] * A[0] + A[1] * A[1]);
      cuv += s * (A[0] * A[2] + A[1] * A[3]);
      cvv += s * (A[2] * A[2] + A[3] * A[3]);
    }
    const ex = [(cuu + pm[0]) / 0.01 + 1 / 12, (cuv + pm[1]) / 0.01, (cvv + pm[2]) / 0.01 + 1 / 12];
    const got = [qxx / f, qxy / f, qyy / f];
    const err = Math.max(Math.abs(got[0] / ex[0] - 1), Math.abs(got[2] / ex[2] - 1), Math.abs(got[1] - ex[1]) / ex[0]);
    console.log(`bulge+disk (B/T ${pp.bulgeFrac!.toFixed(3)}): flux ${(f / o.fluxAdu - 1).toExponential(2)}, moments rel. err ${err.toExponential(2)}`);
    expect(Math.abs(f / o.fluxAdu - 1)).toBeLessThan(1e-6);
    expect(err).toBeLessThan(1e-4);
  });

  it('per-galaxy draws: in range, reproducible, different between galaxies; none for stars and fixed profiles', () => {
    const nus = new Set<number>();
    for (let id = 0; id < 200; id++) {
      const v = simProfileParams(galaxy(id), VAR, 5);
      expect(v.nu!).toBeGreaterThanOrEqual(SIM_NU_RANGE[0]);
      expect(v.nu!).toBeLessThanOrEqual(SIM_NU_RANGE[1]);
      expect(simProfileParams(galaxy(id), VAR, 5)).toEqual(v);
      nus.add(v.nu!);
      const b = simProfileParams(galaxy(id), BD, 5);
      expect(b.bulgeFrac!).toBeGreaterThanOrEqual(SIM_BULGE_FRAC_RANGE[0]);
      expect(b.bulgeFrac!).toBeLessThanOrEqual(SIM_BULGE_FRAC_RANGE[1]);
      expect(b.bulgeHlr!).toBeLessThan(galaxy(id).hlr);
    }
    expect(nus.size).toBe(200);
    expect(simProfileParams({ ...galaxy(1), isStar: true }, BD, 5)).toEqual({});
    expect(simProfileParams(galaxy(1), { type: 'spergel', nu: 0.3 }, 5)).toEqual({});
    expect(simComponents(galaxy(1), VAR, 5)[0].nu).toBe(simProfileParams(galaxy(1), VAR, 5).nu);
  });
});

describe('simulate --profile bulge-disk / spergel-per-galaxy', () => {
  let root: string;
  const tiny: Preset = { ...PRESETS.ci, tileCore: 60, margin: 6, pad: 2 };
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'shine-sim-profiles-'));
    await simulate(nodeSimOutput(join(root, 'exp')), { preset: tiny, seed: 13, noise: false, defects: false });
    await simulate(nodeSimOutput(join(root, 'bd')), { preset: tiny, seed: 13, noise: false, defects: false, profile: BD });
    await simulate(nodeSimOutput(join(root, 'var')), { preset: tiny, seed: 13, noise: false, defects: false, profile: VAR });
  }, 300_000);
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('same scene, other pixels; the profile in the headers and its parameters in the truth table', async () => {
    const ta = await openFits(join(root, 'exp', 'truth', 'sources.fits'));
    const a = await ta.readTable(1);
    for (const [dir, prof, cols] of [['bd', 'BULGEDSK', ['BT', 'HLR_B', 'E1_B', 'E2_B']], ['var', 'SPERGVAR', ['NU']]] as const) {
      const tb = await openFits(join(root, dir, 'truth', 'sources.fits'));
      const b = await tb.readTable(1);
      for (const col of ['RA', 'DEC', 'FLUX_ADU', 'HLR', 'E1', 'E2', 'G1', 'G2']) expect(b.column(col).data).toEqual(a.column(col).data);
      expect(tb.header(1).get('GALPROF')).toBe(prof);
      const star = b.column('IS_STAR').data as ArrayLike<unknown>;
      for (const col of cols) {
        const v = b.column(col).data as Float64Array;
        for (let i = 0; i < v.length; i++) if (!star[i] && col !== 'E1_B' && col !== 'E2_B') expect(v[i], `${dir} ${col}[${i}]`).toBeGreaterThan(col === 'NU' ? -0.61 : 0);
      }
      let maxDiff = 0;
      let quadrants = 0;
      for (let d = 0; d < 4; d++) {
        const det = detFileName(tiny.obsId, d);
        const da = await openFits(join(root, 'exp', 'VIS', det));
        const db = await openFits(join(root, dir, 'VIS', det));
        expect(db.header(0).get('GALPROF')).toBe(prof);
        for (let h = 1; h < da.hdus.length; h++) {
          if (!da.hdus[h].name.endsWith('.SCI')) continue;
          quadrants++;
          const sa = (await da.readImageFloat32(h)).data;
          const sb = (await db.readImageFloat32(h)).data;
          for (let i = 0; i < sa.length; i++) maxDiff = Math.max(maxDiff, Math.abs(sa[i] - sb[i]));
        }
      }
      expect(quadrants).toBeGreaterThan(0);
      console.log(`${dir}: ${quadrants} quadrants, ${a.nRows} objects; max |SCI − SCI(exp)| = ${maxDiff.toFixed(2)} ADU`);
      expect(maxDiff).toBeGreaterThan(1);
    }
    expect(ta.header(1).get('GALPROF')).toBeUndefined();
  });

  it('command-line flags', () => {
    const base = ['--preset', 'ci', '--seed', '1', '--out', 'x'];
    expect(parseSimulateArgs([...base, '--profile', 'bulge-disk']).profile).toEqual({ type: 'bulge_disk', bulgeNu: -0.6 });
    expect(parseSimulateArgs([...base, '--profile', 'bulge-disk', '--bulge-nu', '-0.4']).profile).toEqual({ type: 'bulge_disk', bulgeNu: -0.4 });
    expect(parseSimulateArgs([...base, '--profile', 'spergel-per-galaxy']).profile).toEqual(VAR);
    expect(parseSimulateArgs([...base, '--profile', 'spergel', '--spergel-nu', '1']).profile).toEqual({ type: 'spergel', nu: 1 });
    expect(parseSimulateArgs(base).profile).toBeNull();
    expect(() => parseSimulateArgs([...base, '--bulge-nu', '-0.4'])).toThrow(/--bulge-nu needs --profile bulge-disk/);
    expect(() => parseSimulateArgs([...base, '--profile', 'bulge-disk', '--bulge-nu', '-2'])).toThrow(/--bulge-nu must be a number from -0.85 to 4/);
  });
});
