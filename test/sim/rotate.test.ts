/**
 * `--rotate-ellipticities` (SimulateOptions.rotateEllipticities): every galaxy's intrinsic shape
 * rotated by 90° — (e1, e2) → (−e1, −e2) — with everything else identical (objects, shear,
 * noise deviates, defects, catalog deviates), for shape-noise-cancelling calibration sets; and
 * `--rotate-ellipticities-deg D` (SimulateOptions.ellipticityRotationDeg), the same for any
 * position angle: (e1 + i e2)·exp(2iD) — 45° is exactly (−e2, e1), 135° (e2, −e1), 90° is the
 * boolean path bit for bit, other angles by cos/sin.
 *
 *  (a) the truth file holds exactly −E1, −E2 and every other column bit-identical; the catalog
 *      deviates are the same; the files say ROT90;
 *  (b) noise-free, zero shear: an isolated galaxy's unweighted pixel moments swap — the
 *      traceless part (Q11 − Q22, Q12) of the rotated image is minus the unrotated one, up to
 *      twice the PSF's own traceless part, which the oracle takes from the PSF product file
 *      (measured independently of the galaxy) — and each run's galaxy part matches the analytic
 *      moments of its own truth E1, E2 through the header WCS, so a rotation that is missing,
 *      partial, of the wrong sign, or that reaches the truth file but not the pixels, fails by
 *      orders of magnitude;
 *  (c) the noise realisation is the same: SCI = N + z·σ with the same deviate z for every pixel,
 *      so SCI(rot) − SCI(unrot) = N(rot) − N(unrot) + z·(σ(rot) − σ(unrot)) to float32 rounding.
 *  (d) 45° / 135° / 90°-by-angle: truth and catalog as for (a), the position angle of the
 *      catalog turned by the angle at zero shear, EROTDEG in every header, and the 90° run by
 *      angle byte-identical to the boolean one in every file.
 * A 30″ sub-tile of a 2′ version of the `ci` preset keeps the nine runs to a few seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeSimOutput, parseSimulateArgs } from '../../cli/commands/simulate.ts';
import { readdir, readFile } from 'node:fs/promises';
import { simulate, renderJob, ellipticityRotation, detFileName, bkgFileName, psfFileName, merFileName } from '../../engine/sim/simulate.ts';
import { normalizeRotationDeg, rotateEllipticity } from '../../engine/sim/scene.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import { openFits } from '../../platform/node/files.ts';
import { parseWcs } from '../../engine/data/wcs/index.ts';
import { readPsfGrid } from '../../engine/data/psf/index.ts';

type Fits = Awaited<ReturnType<typeof openFits>>;

const tiny: Preset = { ...PRESETS.ci, tileCore: 120, margin: 6, pad: 2 };
/** The same area with bright galaxies only (mag < 22.5): several isolated, well-resolved ones. */
const bright: Preset = { ...tiny, magMax: 22.5 };
const SHEAR: [number, number] = [0.05, -0.03];

let root = '';
const runs: Record<string, string> = {};
const open: Fits[] = [];
async function fits(path: string): Promise<Fits> {
  const f = await openFits(path);
  open.push(f);
  return f;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shine-rot-'));
  const plan: Array<[string, Preset, number, [number, number], boolean, boolean, boolean, number?]> = [
    // name, preset, seed, shear, rotate, noise, defects, ellipticityRotationDeg
    ['u', tiny, 11, SHEAR, false, true, true],
    ['r', tiny, 11, SHEAR, true, true, true],
    ['u0', tiny, 11, SHEAR, false, false, true],
    ['r0', tiny, 11, SHEAR, true, false, true],
    ['bu', bright, 2, [0, 0], false, false, false],
    ['br', bright, 2, [0, 0], true, false, false],
    ['r45', tiny, 11, SHEAR, false, true, true, 45],
    ['r90d', tiny, 11, SHEAR, false, true, true, 90],
    ['b135', bright, 2, [0, 0], false, false, false, 135],
  ];
  for (const [name, preset, seed, shear, rotate, noise, defects, deg] of plan) {
    runs[name] = join(root, name);
    await simulate(nodeSimOutput(runs[name]), { preset, seed, shear, rotateEllipticities: rotate, noise, defects, ...(deg !== undefined ? { ellipticityRotationDeg: deg } : {}) });
  }
}, 90_000);

afterAll(async () => {
  await Promise.all(open.map((f) => f.close()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('--rotate-ellipticities: truth, catalog and headers', () => {
  it('(a) truth E1, E2 are exactly negated; every other truth column is identical', async () => {
    const a = await (await fits(join(runs.u, 'truth', 'sources.fits'))).readTable(1);
    const b = await (await fits(join(runs.r, 'truth', 'sources.fits'))).readTable(1);
    expect(b.nRows).toBe(a.nRows);
    expect(b.names).toEqual(a.names);
    const star = a.column('IS_STAR').data as boolean[];
    let galaxies = 0;
    for (const c of ['E1', 'E2']) {
      const ea = a.column(c).data as Float64Array, eb = b.column(c).data as Float64Array;
      for (let i = 0; i < a.nRows; i++) {
        if (star[i]) { expect(ea[i]).toBe(0); expect(eb[i]).toBe(0); continue; }
        expect(ea[i]).not.toBe(0);
        expect(eb[i]).toBe(-ea[i]);
        galaxies++;
      }
    }
    expect(galaxies).toBeGreaterThan(20);
    for (const c of a.names.filter((n) => n !== 'E1' && n !== 'E2')) expect(b.column(c).data, c).toEqual(a.column(c).data);
    // the shear is still applied (and the same)
    const g1 = b.column('G1').data as Float64Array;
    for (let i = 0; i < b.nRows; i++) if (!star[i]) expect(g1[i]).toBe(SHEAR[0]);
  });

  it('records ROT90 in the truth file and the DET/BKG/PSF primary headers', async () => {
    for (const [run, rot] of [[runs.u, false], [runs.r, true]] as const) {
      const t = await fits(join(run, 'truth', 'sources.fits'));
      expect(t.header(1).getBool('ROT90')).toBe(rot);
      expect(t.header(1).getBool('FLIPSHR')).toBe(false);
      for (const name of [detFileName(tiny.obsId, 1), bkgFileName(tiny.obsId, 1), psfFileName(tiny.obsId, 1)]) {
        const f = await fits(join(run, 'VIS', name));
        expect(f.header(0).getBool('ROT90')).toBe(rot);
        expect(f.header(0).getNumber('SIMSEED')).toBe(11);
      }
    }
  });

  it('the catalog is measured on the rotated galaxies with the same deviates', async () => {
    // with shear: every column that does not depend on the shape is bit-identical (same draws)
    {
      const a = await (await fits(join(runs.u, 'MER', merFileName(tiny.tileId)))).readTable(1);
      const b = await (await fits(join(runs.r, 'MER', merFileName(tiny.tileId)))).readTable(1);
      expect(b.nRows).toBe(a.nRows);
      for (const c of a.names.filter((n) => n !== 'ELLIPTICITY' && n !== 'POSITION_ANGLE')) expect(b.column(c).data, c).toEqual(a.column(c).data);
    }
    // zero shear: a 90° rotation keeps 1 − b/a (so the same noise draw gives the same value) and
    // turns the position angle by 90°
    const a = await (await fits(join(runs.bu, 'MER', merFileName(bright.tileId)))).readTable(1);
    const b = await (await fits(join(runs.br, 'MER', merFileName(bright.tileId)))).readTable(1);
    const truth = await (await fits(join(runs.bu, 'truth', 'sources.fits'))).readTable(1);
    expectTurnedBy(a, b, truth, 90);
  });
});

/** Unweighted moments about (cx, cy) inside a circle of radius R (the circle is rotation-invariant). */
type Table = Awaited<ReturnType<Fits['readTable']>>;

/**
 * Zero-shear catalogs of an unrotated (a) and a rotated (b) run: the same ELLIPTICITY (|e| is
 * unchanged, the same noise draw), every galaxy's POSITION_ANGLE turned by `deg` (mod 180),
 * stars and spurious detections untouched.
 */
function expectTurnedBy(a: Table, b: Table, truth: Table, deg: number): void {
  const isStar = new Map<bigint, boolean>();
  (truth.column('OBJECT_ID').data as BigInt64Array).forEach((id, i) => isStar.set(id, (truth.column('IS_STAR').data as boolean[])[i]));
  expect(b.column('ELLIPTICITY').data).toEqual(a.column('ELLIPTICITY').data);
  const ids = a.column('OBJECT_ID').data as BigInt64Array;
  const paA = a.column('POSITION_ANGLE').data as Float32Array;
  const paB = b.column('POSITION_ANGLE').data as Float32Array;
  const sp = a.column('SPURIOUS_FLAG').data as Int16Array;
  let turned = 0;
  for (let k = 0; k < a.nRows; k++) {
    if (sp[k] || isStar.get(ids[k]) !== false) {
      expect(paB[k]).toBe(paA[k]);
      continue;
    }
    const d = (((paB[k] - paA[k]) % 180) + 180) % 180;
    expect(Math.abs(d - deg)).toBeLessThan(1e-3);
    turned++;
  }
  expect(turned).toBeGreaterThanOrEqual(3);
}

function moments(img: ArrayLike<number>, sub: ArrayLike<number> | null, w: number, cx: number, cy: number, R: number) {
  let f = 0, qxx = 0, qxy = 0, qyy = 0;
  for (let j = Math.floor(cy - R); j <= Math.ceil(cy + R); j++) {
    for (let i = Math.floor(cx - R); i <= Math.ceil(cx + R); i++) {
      const x = i - cx, y = j - cy;
      if (x * x + y * y > R * R) continue;
      const v = img[j * w + i] - (sub ? sub[j * w + i] : 0);
      f += v; qxx += v * x * x; qxy += v * x * y; qyy += v * y * y;
    }
  }
  return { f, d: (qxx - qyy) / f, c: qxy / f, t: (qxx + qyy) / f };
}

describe('--rotate-ellipticities: pixels', () => {
  it('(b) noise-free, zero shear: an isolated galaxy\'s Q11 − Q22 and Q12 change sign (PSF part aside)', async () => {
    const truth = await (await fits(join(runs.bu, 'truth', 'sources.fits'))).readTable(1);
    const ra = truth.column('RA').data as Float64Array, dec = truth.column('DEC').data as Float64Array;
    const hlr = truth.column('HLR').data as Float64Array, star = truth.column('IS_STAR').data as boolean[];
    const truthR = await (await fits(join(runs.br, 'truth', 'sources.fits'))).readTable(1);
    const tu1 = truth.column('E1').data as Float64Array, tu2 = truth.column('E2').data as Float64Array;
    const tr1 = truthR.column('E1').data as Float64Array, tr2 = truthR.column('E2').data as Float64Array;
    let checked = 0;
    for (let d = 0; d < 4; d++) {
      const fu = await fits(join(runs.bu, 'VIS', detFileName(bright.obsId, d)));
      const fr = await fits(join(runs.br, 'VIS', detFileName(bright.obsId, d)));
      const fb = await fits(join(runs.bu, 'VIS', bkgFileName(bright.obsId, d)));
      const fp = await fits(join(runs.bu, 'VIS', psfFileName(bright.obsId, d)));
      for (const h of fu.hdus.filter((x) => x.name.endsWith('.SCI'))) {
        const q = h.name.slice(0, -4);
        const wcs = parseWcs(fu.header(h.name));
        const [su, sr, bk] = await Promise.all([fu.readImageFloat32(h.name), fr.readImageFloat32(h.name), fb.readImageFloat32(q)]);
        const w = su.width;
        const pos = Array.from({ length: truth.nRows }, (_, i) => wcs.skyToPixel(ra[i], dec[i]));
        for (let i = 0; i < truth.nRows; i++) {
          if (star[i]) continue;
          const [x, y] = pos[i];
          const R = Math.max(25, (10 * hlr[i]) / 0.1); // 10 half-light radii: ≳ 99.9 % of the flux
          if (x - R < 1 || y - R < 1 || x + R > w - 2 || y + R > su.height - 2) continue;
          let isolated = true;
          for (let k = 0; k < truth.nRows; k++) {
            const reach = star[k] ? 15 : (10 * hlr[k]) / 0.1 + 5;
            if (k !== i && Math.hypot(pos[k][0] - x, pos[k][1] - y) < R + reach) isolated = false;
          }
          if (!isolated) continue;
          const mu = moments(su.data, bk.data, w, x, y, R);
          const mr = moments(sr.data, bk.data, w, x, y, R);
          // the PSF (pixel response included) at this position, from the PSF product
          const psf = moments((await readPsfGrid(fp, q)).interpolate(x, y), null, 21, 10, 10, 10.5);
          const psfAniso = Math.hypot(psf.d, psf.c);
          // the galaxy's own traceless moments, predicted from each run's truth E1, E2 (distortion
          // e = (Q11 − Q22, 2 Q12)/(Q11 + Q22), det fixed: Q = 3 r0²/√(1 − e²) [[1+e1, e2], [e2, 1−e1]]
          // in world (u, v)), taken to pixels through the header WCS' local Jacobian
          const jac = wcs.localJacobian(x, y);
          const predict = (e1: number, e2: number) => {
            const r0 = hlr[i] / 1.6783469900166605;
            const k = (3 * r0 * r0) / Math.sqrt(1 - e1 * e1 - e2 * e2);
            const [a, b, c] = [k * (1 + e1), k * e2, k * (1 - e1)];
            const det = jac[0] * jac[3] - jac[1] * jac[2];
            const ji = [jac[3] / det, -jac[1] / det, -jac[2] / det, jac[0] / det];
            const p = ji[0] * a + ji[1] * b, pq = ji[0] * b + ji[1] * c, r = ji[2] * a + ji[3] * b, sq = ji[2] * b + ji[3] * c;
            const xx = p * ji[0] + pq * ji[1], xy = p * ji[2] + pq * ji[3], yy = r * ji[2] + sq * ji[3];
            return { d: xx - yy, c: xy };
          };
          const pu = predict(tu1[i], tu2[i]), pr = predict(tr1[i], tr2[i]);
          // measured − PSF agrees with each run's own truth to 1 % (window truncation, sampling):
          // the pixels were made with the E1, E2 the truth file holds (measured: ≤ 0.06 %)
          for (const [m, pq] of [[mu, pu], [mr, pr]] as const) {
            const scale = Math.hypot(pq.d, pq.c);
            expect(Math.abs(m.d - psf.d - pq.d)).toBeLessThan(0.01 * scale);
            expect(Math.abs(m.c - psf.c - pq.c)).toBeLessThan(0.01 * scale);
          }
          expect(psfAniso).toBeGreaterThan(0.01); // the PSF is anisotropic: the oracle must include it
          // Q(image) = Q(galaxy) + Q(PSF); the galaxy's traceless part flips, the PSF's does not:
          //   (D_u + D_r)/2 = D_psf, (C_u + C_r)/2 = C_psf; the size (trace) and flux are unchanged.
          const tol = 0.1 * psfAniso;
          expect(Math.abs((mu.d + mr.d) / 2 - psf.d)).toBeLessThan(tol);
          expect(Math.abs((mu.c + mr.c) / 2 - psf.c)).toBeLessThan(tol);
          expect(Math.abs(mr.t / mu.t - 1)).toBeLessThan(1e-5);
          expect(Math.abs(mr.f / mu.f - 1)).toBeLessThan(1e-5);
          // the galaxy's own anisotropy is far above that tolerance, so a missing or partial
          // rotation (or e2 → +e2) would fail
          expect(Math.hypot(mu.d - psf.d, mu.c - psf.c)).toBeGreaterThan(100 * tol);
          expect(Math.sign(mu.d - psf.d)).toBe(-Math.sign(mr.d - psf.d));
          expect(Math.sign(mu.c - psf.c)).toBe(-Math.sign(mr.c - psf.c));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(3);
  }, 30_000);

  it('(c) the noise realisation is identical: SCI(rot) − SCI(unrot) = N(rot) − N(unrot) + z·Δσ', async () => {
    let nPix = 0, maxZ = 0, maxExact = 0, maxClean = 0, zz = 0;
    let quadrants = 0;
    for (let d = 0; d < 4; d++) {
      const name = detFileName(tiny.obsId, d);
      const [fu, fr, fu0, fr0] = await Promise.all([runs.u, runs.r, runs.u0, runs.r0].map((r) => fits(join(r, 'VIS', name))));
      for (const h of fu.hdus.filter((x) => x.name.endsWith('.SCI'))) {
        const q = h.name.slice(0, -4);
        quadrants++;
        const [su, sr, nu, nr] = await Promise.all([fu, fr, fu0, fr0].map((f) => f.readImageFloat32(h.name)));
        const [ru, rr, rr0] = await Promise.all([fu, fr, fr0].map((f) => f.readImageFloat32(`${q}.RMS`)));
        const gu = (await fu.readImage(`${q}.FLG`)).data as Int32Array;
        const gr = (await fr.readImage(`${q}.FLG`)).data as Int32Array;
        let flagDiff = 0, rmsDiff = 0;
        for (let k = 0; k < gu.length; k++) { if (gr[k] !== gu[k]) flagDiff++; if (rr.data[k] !== rr0.data[k]) rmsDiff++; }
        expect(flagDiff).toBe(0); // the same defects
        expect(rmsDiff).toBe(0); // RMS does not depend on the noise switch
        for (let k = 0; k < su.data.length; k++) {
          if (gu[k] !== 0) continue;
          const zu = (su.data[k] - nu.data[k]) / ru.data[k]; // this pixel's unit deviate, unrotated
          const zr = (sr.data[k] - nr.data[k]) / rr.data[k]; // … and rotated
          maxZ = Math.max(maxZ, Math.abs(zr - zu));
          const exact = (sr.data[k] - su.data[k]) - (nr.data[k] - nu.data[k]) - zu * (rr.data[k] - ru.data[k]);
          maxExact = Math.max(maxExact, Math.abs(exact) / ru.data[k]);
          maxClean = Math.max(maxClean, Math.abs(nr.data[k] - nu.data[k]) / ru.data[k]);
          zz += zu * zu;
          nPix++;
        }
      }
    }
    expect(quadrants).toBeGreaterThanOrEqual(3);
    expect(nPix).toBeGreaterThan(100_000);
    expect(Math.sqrt(zz / nPix)).toBeGreaterThan(0.95); // there is unit noise …
    expect(Math.sqrt(zz / nPix)).toBeLessThan(1.05);
    expect(maxZ).toBeLessThan(1e-4); // … and it is the same deviate in both (float32 rounding only)
    expect(maxExact).toBeLessThan(1e-4);
    expect(maxClean).toBeGreaterThan(1); // while the rotation changes the signal by > 1 σ somewhere
  }, 30_000);

  it('renderJob (the worker path) honours the flag, and its context cache tells the two apart', async () => {
    const det = await fits(join(runs.r, 'VIS', detFileName(tiny.obsId, 1)));
    const detU = await fits(join(runs.u, 'VIS', detFileName(tiny.obsId, 1)));
    const name = det.hdus.find((x) => x.name.endsWith('.SCI'))!.name;
    const job = { preset: tiny, seed: 11, shear: SHEAR, flipShear: false, noise: true, defects: true, dither: 1, crop: 0 };
    for (const rot of [true, false, true]) {
      const r = renderJob({ ...job, rotateEllipticities: rot });
      const file = (await (rot ? det : detU).readImageFloat32(name)).data;
      expect(r.sci.length).toBe(file.length);
      let diff = 0;
      for (let k = 0; k < file.length; k++) if (r.sci[k] !== file[k]) diff++;
      expect(diff).toBe(0);
    }
  }, 30_000);
});

describe('--rotate-ellipticities-deg: any position angle', () => {
  it('rotateEllipticity: exact at multiples of 45°, e·exp(2iθ) otherwise, mod 180', () => {
    const e1 = 0.123456789, e2 = -0.0987654321;
    expect(rotateEllipticity(e1, e2, 0)).toEqual([e1, e2]);
    expect(rotateEllipticity(e1, e2, 45)).toEqual([-e2, e1]);
    expect(rotateEllipticity(e1, e2, 90)).toEqual([-e1, -e2]);
    expect(rotateEllipticity(e1, e2, 135)).toEqual([e2, -e1]);
    expect(rotateEllipticity(e1, e2, 180)).toEqual([e1, e2]);
    expect(rotateEllipticity(e1, e2, -45)).toEqual([e2, -e1]);
    expect(rotateEllipticity(e1, e2, 225)).toEqual([-e2, e1]);
    const [a, b] = rotateEllipticity(e1, e2, 30); // exp(60° i)
    expect(a).toBeCloseTo(e1 * 0.5 - e2 * Math.sqrt(3) / 2, 15);
    expect(b).toBeCloseTo(e1 * Math.sqrt(3) / 2 + e2 * 0.5, 15);
    expect(Math.hypot(a, b)).toBeCloseTo(Math.hypot(e1, e2), 15);
    expect(normalizeRotationDeg(-90)).toBe(90);
    expect(Object.is(normalizeRotationDeg(-180), 0)).toBe(true);
    expect(ellipticityRotation(true)).toBe(90);
    expect(ellipticityRotation(false)).toBe(0);
    expect(ellipticityRotation(undefined, 315)).toBe(135);
    expect(ellipticityRotation(true, -90)).toBe(90);
    expect(() => ellipticityRotation(true, 45)).toThrow(/contradicts/);
    expect(() => ellipticityRotation(false, NaN)).toThrow(/finite number of degrees/);
  });

  it('(d) 45° and 135°: truth is (−E2, E1) and (E2, −E1) of the unrotated truth exactly; all else identical', async () => {
    for (const [rot, base, map, preset] of [
      [runs.r45, runs.u, (x: number, y: number) => [-y, x], tiny],
      [runs.b135, runs.bu, (x: number, y: number) => [y, -x], bright],
    ] as const) {
      const a = await (await fits(join(base, 'truth', 'sources.fits'))).readTable(1);
      const b = await (await fits(join(rot, 'truth', 'sources.fits'))).readTable(1);
      expect(b.nRows).toBe(a.nRows);
      const star = a.column('IS_STAR').data as boolean[];
      const ea1 = a.column('E1').data as Float64Array, ea2 = a.column('E2').data as Float64Array;
      const eb1 = b.column('E1').data as Float64Array, eb2 = b.column('E2').data as Float64Array;
      let galaxies = 0;
      for (let i = 0; i < a.nRows; i++) {
        if (star[i]) { expect([eb1[i], eb2[i]]).toEqual([0, 0]); continue; }
        expect([eb1[i], eb2[i]]).toEqual(map(ea1[i], ea2[i]));
        galaxies++;
      }
      expect(galaxies).toBeGreaterThan(3);
      for (const c of a.names.filter((n) => n !== 'E1' && n !== 'E2')) expect(b.column(c).data, c).toEqual(a.column(c).data);
      // the catalog: every column that does not depend on the shape is bit-identical (same draws)
      const ca = await (await fits(join(base, 'MER', merFileName(preset.tileId)))).readTable(1);
      const cb = await (await fits(join(rot, 'MER', merFileName(preset.tileId)))).readTable(1);
      expect(cb.nRows).toBe(ca.nRows);
      for (const c of ca.names.filter((n) => n !== 'ELLIPTICITY' && n !== 'POSITION_ANGLE')) expect(cb.column(c).data, c).toEqual(ca.column(c).data);
    }
    // zero shear (bright runs): |e| unchanged, so the same ELLIPTICITY; the position angle turned by 135° (≡ −45°)
    const a = await (await fits(join(runs.bu, 'MER', merFileName(bright.tileId)))).readTable(1);
    const b = await (await fits(join(runs.b135, 'MER', merFileName(bright.tileId)))).readTable(1);
    const truth = await (await fits(join(runs.bu, 'truth', 'sources.fits'))).readTable(1);
    expectTurnedBy(a, b, truth, 135);
  });

  it('EROTDEG in the truth file and the DET/BKG/PSF primary headers; ROT90 only for 90°', async () => {
    for (const [run, deg, rot] of [[runs.u, 0, false], [runs.r, 90, true], [runs.r45, 45, false], [runs.r90d, 90, true]] as const) {
      const t = await fits(join(run, 'truth', 'sources.fits'));
      expect(t.header(1).getNumber('EROTDEG')).toBe(deg);
      expect(t.header(1).getBool('ROT90')).toBe(rot);
      for (const name of [detFileName(tiny.obsId, 0), bkgFileName(tiny.obsId, 0), psfFileName(tiny.obsId, 0)]) {
        const f = await fits(join(run, 'VIS', name));
        expect(f.header(0).getNumber('EROTDEG')).toBe(deg);
        expect(f.header(0).getBool('ROT90')).toBe(rot);
      }
    }
  });

  it('90° by angle is the boolean path bit for bit (every file)', async () => {
    const list = async (dir: string, rel = ''): Promise<string[]> => {
      const out: string[] = [];
      for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) out.push(...(await list(dir, r)));
        else out.push(r);
      }
      return out.sort();
    };
    const files = await list(runs.r);
    expect(await list(runs.r90d)).toEqual(files);
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) expect(Buffer.compare(await readFile(join(runs.r90d, f)), await readFile(join(runs.r, f))), f).toBe(0);
  });

  it('renderJob (the worker path) honours the angle, and its context cache tells the angles apart', async () => {
    const name = (await fits(join(runs.r45, 'VIS', detFileName(tiny.obsId, 1)))).hdus.find((x) => x.name.endsWith('.SCI'))!.name;
    const job = { preset: tiny, seed: 11, shear: SHEAR, flipShear: false, rotateEllipticities: false, noise: true, defects: true, dither: 1, crop: 0 };
    for (const [deg, run] of [[45, runs.r45], [0, runs.u], [45, runs.r45], [90, runs.r]] as const) {
      const r = renderJob({ ...job, ellipticityRotationDeg: deg });
      const file = (await (await fits(join(run, 'VIS', detFileName(tiny.obsId, 1)))).readImageFloat32(name)).data;
      let diff = 0;
      for (let k = 0; k < file.length; k++) if (r.sci[k] !== file[k]) diff++;
      expect(diff, `${deg}°`).toBe(0);
    }
  }, 30_000);
});

describe('shine simulate --rotate-ellipticities (CLI)', () => {
  it('parses the flag and documents it in --help', () => {
    expect(parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'd']).rotate).toBe(false);
    expect(parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'd', '--rotate-ellipticities', '--flip-shear']))
      .toMatchObject({ rotate: true, flip: true });
    expect(() => parseSimulateArgs(['--help'])).toThrow(/--rotate-ellipticities/);
  });

  it('--rotate-ellipticities-deg D', () => {
    const base = ['--preset', 'ci', '--seed', '1', '--out', 'd'];
    expect(parseSimulateArgs(base).rotateDeg).toBeNull();
    expect(parseSimulateArgs([...base, '--rotate-ellipticities-deg', '45']).rotateDeg).toBe(45);
    expect(parseSimulateArgs([...base, '--rotate-ellipticities-deg=-22.5']).rotateDeg).toBe(-22.5);
    expect(parseSimulateArgs([...base, '--rotate-ellipticities', '--rotate-ellipticities-deg', '270'])).toMatchObject({ rotate: true, rotateDeg: 270 });
    expect(() => parseSimulateArgs([...base, '--rotate-ellipticities', '--rotate-ellipticities-deg', '45'])).toThrow(/contradicts/);
    for (const bad of ['x', '', '1e', 'Infinity', '45deg']) expect(() => parseSimulateArgs([...base, `--rotate-ellipticities-deg=${bad}`]), bad).toThrow(/--rotate-ellipticities-deg must be a number/);
    expect(() => parseSimulateArgs(['--help'])).toThrow(/--rotate-ellipticities-deg D/);
  });
});
