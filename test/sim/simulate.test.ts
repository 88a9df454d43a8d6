/**
 * `shine simulate` end to end on the `ci` preset (and a smaller custom preset for the ±g pair):
 * the files read back with our FITS reader and with astropy (test/fixtures/sim/check_sim.py:
 * verify, HDU names, headers, TPV WCS through astropy.wcs landing on the flux peaks, PSF stamps,
 * noise, tables); byte-identical files for the same seed; `--flip-shear` keeps scene and noise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import simulateCommand, { nodeSimOutput, parseSimulateArgs as parseSimulateArgsSync } from '../../cli/commands/simulate.ts';
import { simulate, detFileName, bkgFileName, psfFileName, merFileName } from '../../engine/sim/simulate.ts';
import { PRESETS, type Preset } from '../../engine/sim/presets.ts';
import { aduPerMicroJy } from '../../engine/sim/scene.ts';
import { openFits } from '../../platform/node/files.ts';
import { parseWcs } from '../../engine/data/wcs/index.ts';
import { readPsfGrid } from '../../engine/data/psf/index.ts';
import { runPython, skipOracle } from '../wcs/python.ts';

const CHECK = fileURLToPath(new URL('../fixtures/sim/check_sim.py', import.meta.url));

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  }
  return out.sort();
}

async function hashes(dir: string): Promise<Record<string, string>> {
  const h: Record<string, string> = {};
  for (const f of await listFiles(dir)) h[f] = createHash('sha256').update(await readFile(join(dir, f))).digest('hex');
  return h;
}

let root = '';
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'shine-sim-'));
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('shine simulate --preset ci', () => {
  let dir = '';
  beforeAll(async () => {
    dir = join(root, 'ci');
    // through the CLI with 2 worker threads; the determinism test below re-runs it in one thread
    const code = await simulateCommand.run(['--preset', 'ci', '--seed', '7', '--out', dir, '--quiet', '--threads', '2']);
    expect(code).toBe(0);
  }, 120_000);

  it('writes the Euclid file layout', async () => {
    const files = await listFiles(dir);
    const p = PRESETS.ci;
    for (let d = 0; d < 4; d++) {
      expect(files).toContain(join('VIS', detFileName(p.obsId, d)));
      expect(files).toContain(join('VIS', bkgFileName(p.obsId, d)));
      expect(files).toContain(join('VIS', psfFileName(p.obsId, d)));
    }
    expect(files).toContain(join('MER', merFileName(p.tileId)));
    for (const f of ['tiles.fits', 'truth/sources.fits', 'truth/shear.fits', 'config.yaml']) expect(files).toContain(f);
    expect(files.some((f) => f.endsWith('.part'))).toBe(false);
    // config.yaml validates against the pipeline's schema and points at the files
    const { parseConfig } = await import('../../engine/config/index.ts');
    const cfg = parseConfig(await readFile(join(dir, 'config.yaml'), 'utf8'), { file: join(dir, 'config.yaml') });
    expect(cfg.distributed.tile_id).toBe(p.tileId);
    expect(cfg.distributed.sub_tile_grid).toEqual([4, 4]);
    expect(cfg.tile.core_arcmin).toBe(4);
    expect(cfg.data.exposures.length).toBe(4);
    expect(cfg.data.bad_pixel_mask).toBe(0x9b);
  });

  it('reads back with our FITS reader: HDUs, headers, WCS, PSF grids, catalog', async () => {
    const truth = await openFits(join(dir, 'truth', 'sources.fits'));
    const t = await truth.readTable(1);
    const ra = t.column('RA').data as Float64Array, dec = t.column('DEC').data as Float64Array;
    const isStar = t.column('IS_STAR').data as boolean[];
    const fluxAdu = t.column('FLUX_ADU').data as Float64Array;
    const fluxUJy = t.column('FLUX_UJY').data as Float64Array;
    const hlr = t.column('HLR').data as Float64Array;
    for (let i = 0; i < t.nRows; i++) expect(Math.abs(fluxAdu[i] / (fluxUJy[i] * aduPerMicroJy()) - 1)).toBeLessThan(1e-12);
    let starsChecked = 0, galaxiesChecked = 0;
    for (let d = 0; d < 4; d++) {
      const det = await openFits(join(dir, 'VIS', detFileName(PRESETS.ci.obsId, d)));
      const psfFile = await openFits(join(dir, 'VIS', psfFileName(PRESETS.ci.obsId, d)));
      const bkgFile = await openFits(join(dir, 'VIS', bkgFileName(PRESETS.ci.obsId, d)));
      const names = det.hdus.slice(1).map((h) => h.name);
      expect(names.length % 3).toBe(0);
      for (const n of names.filter((x) => x.endsWith('.SCI'))) {
        const q = n.slice(0, -4);
        expect(names).toContain(`${q}.RMS`);
        expect(names).toContain(`${q}.FLG`);
        const h = det.header(n);
        expect(h.getString('MAGZEROP')).toBe('24.57');
        expect(h.getNumber('GAIN')).toBeCloseTo(3.48, 10);
        expect(h.getNumber('EXPTIME')).toBeCloseTo(560.52, 10);
        expect(`${h.getString('CCDID')}.${h.getString('QUADID')}`).toBe(q);
        expect(det.hdu(`${q}.FLG`).bitpix).toBe(32);
        expect(det.hdu(n).bitpix).toBe(-32);
        const sci = await det.readImageFloat32(n);
        const flg = await det.readImage(`${q}.FLG`);
        const bkg = await bkgFile.readImageFloat32(q);
        const wcs = parseWcs(h);
        expect(wcs.kind).toBe('TPV');
        // flags mark corrupted pixels: SAT ⇔ SCI at SATURATE; HOT and COSMIC pixels carry extra charge
        {
          const rms = await det.readImageFloat32(`${q}.RMS`);
          const fl = flg.data as Int32Array;
          let flagged = 0, crLow = 0, crN = 0, satMismatch = 0, hotLow = 0;
          for (let k = 0; k < fl.length; k++) {
            const v = sci.data[k] - bkg.data[k];
            if (((fl[k] & 8) !== 0) !== (sci.data[k] >= 60000)) satMismatch++;
            if (fl[k] & 8) continue;
            if (fl[k] !== 0) flagged++;
            if ((fl[k] & 2) && !(fl[k] & 128) && v < 200 - 6 * rms.data[k]) hotLow++;
            if ((fl[k] & 16) && !(fl[k] & 128)) { crN++; if (v < 86 - 4 * rms.data[k]) crLow++; }
          }
          expect(satMismatch).toBe(0);
          expect(hotLow).toBe(0);
          expect(flagged / fl.length).toBeLessThan(0.05);
          expect(crLow).toBeLessThanOrEqual(Math.ceil(crN * 0.01));
        }
        // bright unsaturated stars and compact bright galaxies: the brightest pixel sits at the WCS position
        for (let i = 0; i < t.nRows; i++) {
          const star = isStar[i] && fluxAdu[i] > 1000 && fluxAdu[i] < 200000;
          const gal = !isStar[i] && fluxAdu[i] > 3000 && hlr[i] < 0.4;
          if (!star && !gal) continue;
          const [x, y] = wcs.skyToPixel(ra[i], dec[i]);
          const ix = Math.round(x), iy = Math.round(y);
          if (ix < 3 || iy < 3 || ix >= sci.width - 3 || iy >= sci.height - 3) continue;
          let best = -Infinity, bx = 0, by = 0, flagged = false;
          for (let b = -2; b <= 2; b++) for (let a = -2; a <= 2; a++) {
            const k = (iy + b) * sci.width + ix + a;
            if ((flg.data as Int32Array)[k] !== 0) flagged = true;
            const v = sci.data[k] - bkg.data[k];
            if (v > best) { best = v; bx = ix + a; by = iy + b; }
          }
          if (flagged) continue;
          expect(Math.max(Math.abs(bx - x), Math.abs(by - y))).toBeLessThanOrEqual(star ? 0.5 + 1e-9 : 1.5);
          if (star) starsChecked++; else galaxiesChecked++;
        }
        // the PSF grid of this quadrant interpolates to a unit-sum stamp peaked at its centre
        const grid = await readPsfGrid(psfFile, q);
        expect(grid.quadrantWidth).toBe(sci.width);
        expect(grid.quadrantHeight).toBe(sci.height);
        const st = grid.interpolate(sci.width / 3, sci.height / 2);
        let s = 0, am = 0;
        for (let k = 0; k < st.length; k++) { s += st[k]; if (st[k] > st[am]) am = k; }
        expect(Math.abs(s - 1)).toBeLessThan(1e-9);
        expect(am).toBe(10 * 21 + 10);
      }
      await Promise.all([det.close(), psfFile.close(), bkgFile.close()]);
    }
    expect(starsChecked + galaxiesChecked).toBeGreaterThanOrEqual(3);
    const mer = await openFits(join(dir, 'MER', merFileName(PRESETS.ci.tileId)));
    const cat = await mer.readTable(1);
    for (const c of ['OBJECT_ID', 'RIGHT_ASCENSION', 'DECLINATION', 'FLUX_DETECTION_TOTAL', 'FLUXERR_DETECTION_TOTAL', 'FLUX_VIS_PSF',
      'SEMIMAJOR_AXIS', 'ELLIPTICITY', 'POSITION_ANGLE', 'VIS_DET', 'SPURIOUS_FLAG', 'POINT_LIKE_FLAG', 'DET_QUALITY_FLAG', 'DEBLENDED_FLAG']) {
      expect(cat.names).toContain(c);
    }
    // SHINE's selection keeps a realistic density (≈ 30 / arcmin² at Euclid depth) — loose bounds
    const f = cat.column('FLUX_DETECTION_TOTAL').data as Float32Array, fe = cat.column('FLUXERR_DETECTION_TOTAL').data as Float32Array;
    const pl = cat.column('POINT_LIKE_FLAG').data as Int16Array, sp = cat.column('SPURIOUS_FLAG').data as Int16Array;
    const vd = cat.column('VIS_DET').data as Int16Array, dq = cat.column('DET_QUALITY_FLAG').data as Int32Array;
    let sel = 0;
    for (let i = 0; i < cat.nRows; i++) if (f[i] / fe[i] >= 10 && vd[i] === 1 && sp[i] === 0 && pl[i] === 0 && (dq[i] & 0x78c) === 0) sel++;
    const [u0, u1, v0, v1] = [-16, 76, -76, 16]; // ci populated area (arcsec)
    const density = sel / (((u1 - u0) * (v1 - v0)) / 3600);
    expect(density).toBeGreaterThan(15);
    expect(density).toBeLessThan(60);
    await Promise.all([truth.close(), mer.close()]);
  }, 60_000);

  it.skipIf(skipOracle())('passes the astropy checks (verify, headers, TPV WCS on the flux peaks, PSF, noise, tables)', () => {
    const r = JSON.parse(runPython(CHECK, [dir]));
    expect(r.errors).toEqual([]);
    expect(r.n_det).toBe(4);
    expect(r.n_bkg).toBe(4);
    expect(r.n_psf).toBe(4);
    expect(r.quadrants).toBeGreaterThanOrEqual(4);
    expect(r.magzerop_is_string).toBe(true);
    expect(r.shear_rows).toBe(16);
    expect(r.tiles).toEqual([[102018211, 57.9990741, -51.5]]);
    expect(r.mer_columns).toMatchObject({ OBJECT_ID: 'K', RIGHT_ASCENSION: 'D', DECLINATION: 'D', FLUX_DETECTION_TOTAL: 'E', DET_QUALITY_FLAG: 'J' });
    // catalog positions through astropy's all_world2pix land on the flux peaks
    const po = (r.peak_offsets as number[]).slice().sort((a, b) => a - b);
    expect(po.length).toBeGreaterThan(20);
    expect(po[Math.floor(po.length / 2)]).toBeLessThan(0.75);
    expect(po[Math.floor(po.length * 0.9)]).toBeLessThanOrEqual(1.25);
    // true star positions: centroid within 0.15 px
    expect((r.star_offsets as number[]).length).toBeGreaterThan(0);
    for (const s of r.star_offsets as number[]) expect(s).toBeLessThan(0.15);
    // (SCI − BKG)/RMS is unit-variance noise (robust σ; faint sources push it slightly above 1)
    for (const s of r.noise_sigmas as number[]) {
      expect(s).toBeGreaterThan(0.97);
      expect(s).toBeLessThan(1.06);
    }
  }, 60_000);

  it.skipIf(skipOracle())('--position-angle: the same sky through a focal plane turned by another angle (astropy reads the angle)', async () => {
    const turned = join(root, 'ci-pa52');
    expect(await simulateCommand.run(['--preset', 'ci', '--seed', '7', '--out', turned, '--quiet', '--position-angle', '52'])).toBe(0);
    const r = JSON.parse(runPython(CHECK, [turned]));
    expect(r.errors).toEqual([]);
    // the pixel +y axis at the image centre, east of north, from astropy's all_pix2world: the
    // preset's 7° and the new 52° (CCD columns ≥ 4 are turned by 180°); TPV distortion moves it ≤ 0.1°
    const axis = (x: { pixel_y_axis_pa: Array<[string, number]> }) => x.pixel_y_axis_pa.map(([q, a]) => [Number(q.split('-')[1][0]) >= 4, a] as const);
    const base = JSON.parse(runPython(CHECK, [dir])) as { pixel_y_axis_pa: Array<[string, number]> };
    for (const [rot, a] of axis(base)) expect(Math.abs(a - (rot ? -173 : 7))).toBeLessThan(0.1);
    expect(r.pixel_y_axis_pa.length).toBeGreaterThanOrEqual(4);
    for (const [rot, a] of axis(r)) expect(Math.abs(a - (rot ? -128 : 52))).toBeLessThan(0.1);
    // the pixels still land on the sky: catalog positions on the flux peaks
    const po = (r.peak_offsets as number[]).slice().sort((a, b) => a - b);
    expect(po.length).toBeGreaterThan(20);
    expect(po[Math.floor(po.length / 2)]).toBeLessThan(0.75);
    // the same sky: the truth table is the preset's, row for row
    const cols = ['RA', 'DEC', 'E1', 'E2', 'HLR', 'FLUX_ADU'];
    const read = async (d: string) => {
      const f = await openFits(join(d, 'truth', 'sources.fits'));
      const t = await f.readTable(1);
      const out = cols.map((c) => Array.from(t.column(c).data as Float64Array));
      await f.close();
      return out;
    };
    expect(await read(turned)).toEqual(await read(dir));
    const det = await openFits(join(turned, 'VIS', detFileName(PRESETS.ci.obsId, 0)));
    expect(det.header(0).getNumber('PA')).toBe(52);
    await det.close();
    expect(() => parseSimulateArgsSync(['--preset', 'ci', '--seed', '1', '--out', 'x', '--position-angle', '400'])).toThrow(/--position-angle must be an angle from -360 to 360 degrees, got '400'/);
  }, 120_000);

  it('is deterministic: the same seed gives byte-identical files (worker threads or not)', async () => {
    const dir2 = join(root, 'ci-again');
    await simulate(nodeSimOutput(dir2), { preset: 'ci', seed: 7 });
    expect(await hashes(dir2)).toEqual(await hashes(dir));
  }, 120_000);
});

describe('--flip-shear: same scene, same noise, opposite shear', () => {
  // A smaller area than ci (a 30″ sub-tile of a 2′ tile) keeps the four runs fast.
  const tiny: Preset = { ...PRESETS.ci, tileCore: 120, margin: 6, pad: 2 };
  const runs: Record<string, string> = {};
  beforeAll(async () => {
    for (const [name, flip, noise] of [['p', false, true], ['m', true, true], ['p0', false, false], ['m0', true, false]] as const) {
      runs[name] = join(root, `flip-${name}`);
      await simulate(nodeSimOutput(runs[name]), { preset: tiny, seed: 11, shear: [0.05, -0.03], flipShear: flip, noise });
    }
  }, 120_000);

  it('truth differs only by the sign of the shear', async () => {
    const a = await (await openFits(join(runs.p, 'truth', 'sources.fits'))).readTable(1);
    const b = await (await openFits(join(runs.m, 'truth', 'sources.fits'))).readTable(1);
    expect(b.nRows).toBe(a.nRows);
    for (const c of ['RA', 'DEC', 'FLUX_ADU', 'HLR', 'E1', 'E2']) expect(b.column(c).data).toEqual(a.column(c).data);
    const g1a = a.column('G1').data as Float64Array, g1b = b.column('G1').data as Float64Array;
    const star = a.column('IS_STAR').data as boolean[];
    for (let i = 0; i < a.nRows; i++) if (!star[i]) { expect(g1a[i]).toBe(0.05); expect(g1b[i]).toBe(-0.05); }
  });

  it('SCI(+g) − SCI(−g) is the noise-free signal difference, up to the Poisson amplitude change', async () => {
    const det = detFileName(tiny.obsId, 1);
    const [fp, fm, f0p, f0m] = await Promise.all([runs.p, runs.m, runs.p0, runs.m0].map((d) => openFits(join(d, 'VIS', det))));
    let maxExact = 0, maxSignal = 0, noiseVar = 0, nPix = 0;
    const resid: number[] = [];
    for (const h of fp.hdus.filter((x) => x.name.endsWith('.SCI'))) {
      const q = h.name.slice(0, -4);
      const [sp, sm, s0p, s0m] = await Promise.all([fp, fm, f0p, f0m].map((f) => f.readImageFloat32(h.name)));
      const rp = await fp.readImageFloat32(`${q}.RMS`);
      const rm = await fm.readImageFloat32(`${q}.RMS`);
      const flg = (await fp.readImage(`${q}.FLG`)).data as Int32Array;
      const flgm = (await fm.readImage(`${q}.FLG`)).data as Int32Array;
      expect(flgm).toEqual(flg); // defects do not depend on the shear (saturation aside: none here)
      for (let k = 0; k < sp.data.length; k++) {
        if (flg[k] !== 0) continue;
        const z = (sp.data[k] - s0p.data[k]) / rp.data[k]; // the unit noise deviate of this pixel
        const dNoisy = sp.data[k] - sm.data[k];
        const dClean = s0p.data[k] - s0m.data[k];
        // same deviate z in both: SCI± = N± + z·σ±  ⇒  ΔSCI − ΔN = z·(σ+ − σ−) exactly (float32 rounding aside)
        maxExact = Math.max(maxExact, Math.abs(dNoisy - dClean - z * (rp.data[k] - rm.data[k])) / rp.data[k]);
        resid.push(Math.abs(dNoisy - dClean) / rp.data[k]);
        maxSignal = Math.max(maxSignal, Math.abs(dClean) / rp.data[k]);
        noiseVar += z * z;
        nPix++;
      }
    }
    const noiseSigma = Math.sqrt(noiseVar / nPix);
    // the noisy images do carry unit noise …
    expect(noiseSigma).toBeGreaterThan(0.95);
    expect(noiseSigma).toBeLessThan(1.05);
    // … drawn from the same deviates for +g and −g
    expect(maxExact).toBeLessThan(1e-3);
    // so the ±g difference is (nearly) noise-free: the residual z·Δσ is ≪ 1 rms, the shear signal is not
    resid.sort((a, b) => a - b);
    expect(resid[Math.floor(resid.length * 0.99)]).toBeLessThan(0.01);
    expect(maxSignal).toBeGreaterThan(1);
    await Promise.all([fp, fm, f0p, f0m].map((f) => f.close()));
  }, 60_000);
});

describe('shine simulate: bad arguments give clear errors', async () => {
  const { parseSimulateArgs } = await import('../../cli/commands/simulate.ts');
  it('names the offending option', () => {
    expect(() => parseSimulateArgs(['--seed', '1', '--out', 'x'])).toThrow(/--preset is required/);
    expect(() => parseSimulateArgs(['--preset', 'huge', '--seed', '1', '--out', 'x'])).toThrow(/--preset must be one of ci, medium, subtile, tile/);
    expect(() => parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x', '--mag-max', '30'])).toThrow(/--mag-max must be a magnitude from 18 to 28, got '30'/);
    expect(() => parseSimulateArgs(['--preset', 'ci', '--seed', '-3', '--out', 'x'])).toThrow(/--seed must be a non-negative integer/);
    expect(() => parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x', '--shear', '0.9,0.9'])).toThrow(/--shear must be G1,G2 with \|g\| < 1/);
    expect(() => parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x', '--shear', '0.1'])).toThrow(/--shear must be G1,G2/);
    expect(() => parseSimulateArgs(['--preset', 'ci', '--seed', '1', '--out', 'x', '--bogus'])).toThrow(/unknown option '--bogus'/);
    expect(() => parseSimulateArgs(['--preset', 'ci', '--seed', '1'])).toThrow(/--out is required/);
    const ok = parseSimulateArgs(['--preset=ci', '--seed', '5', '--out', 'd', '--shear', '0.02,-0.01', '--flip-shear', '--threads', '1']);
    expect(ok).toMatchObject({ preset: 'ci', seed: 5, out: 'd', shear: [0.02, -0.01], flip: true, threads: 1 });
  });
  it('the engine API rejects a bad seed or shear with a ShineError', async () => {
    const sink = { async open() { return { async append() {}, async close() {} }; } };
    await expect(simulate(sink, { preset: 'ci', seed: -1 })).rejects.toThrow(/seed must be a non-negative integer/);
    await expect(simulate(sink, { preset: 'ci', seed: 1, shear: [1, 0.5] })).rejects.toThrow(/\|g\| < 1/);
  });
});

describe('the big presets (planned, not rendered)', async () => {
  const { planSimulation, N24 } = await import('../../engine/sim/simulate.ts');
  it('tile: full 2048 × 2066 quadrants covering the 32′ area; subtile: crops of it', () => {
    const tile = planSimulation('tile', 1);
    expect(tile.exposures.length).toBe(4);
    for (const e of tile.exposures) {
      expect(e.length).toBeGreaterThan(60);
      expect(e.length).toBeLessThanOrEqual(144);
      for (const c of e) expect([c.x0, c.y0, c.width, c.height]).toEqual([0, 0, 2048, 2066]);
      expect(new Set(e.map((c) => c.name)).size).toBe(e.length);
    }
    // ≈ 100 000 objects on 32′ × 32′ (N24·10^(0.6) galaxies + 4 stars per arcmin² to mag 26)
    const area = ((PRESETS.tile.tileCore + 2 * PRESETS.tile.margin + 2 * PRESETS.tile.pad) / 60) ** 2;
    const expected = area * (N24 * (10 ** (0.3 * 2) - 10 ** (0.3 * -6)) + 4);
    expect(Math.abs(tile.objects - expected)).toBeLessThan(5 * Math.sqrt(expected));
    const sub = planSimulation('subtile', 1);
    for (const e of sub.exposures) {
      expect(e.length).toBeGreaterThan(4);
      // 9.5′ = 5700 px: no crop is larger than the area (+ slack)
      for (const c of e) expect(Math.max(c.width, c.height)).toBeLessThanOrEqual(Math.min(2066, 5760));
    }
  }, 30_000);
});
