/**
 * engine/calibrate on synthetic numbers with known answers: m, c and leakage recovered exactly
 * when the rotated pairs cancel the shape noise; noise identical in the ±g simulations cancels in
 * m; incomplete, failed and empty fits are counted, listed and kept out of m and c; the bootstrap
 * over seeds agrees with the analytic standard error of the mean; pulls and their robust width;
 * the parsers, the derived configuration, the FITS table and the PNG.
 */
import { describe, expect, it } from 'vitest';
import { decode } from 'fast-png';
import { parse as parseYaml } from 'yaml';
import {
  MEMBERS, memberLabel, memberShear, parseSeeds, parseSubtiles, checkShearAmplitude, formatSeeds, type Member,
} from '../../engine/calibrate/design.ts';
import {
  summarize, setEstimate, bootstrapClusterMeans, robustSd, sd, mean, pullStats, type CalibrationFit, type FitStatus,
} from '../../engine/calibrate/stats.ts';
import { deriveConfig, deepMerge, SHINE_PRIORS } from '../../engine/calibrate/config.ts';
import { calibrationFits, FITS_EXTNAME, SUMMARY_EXTNAME } from '../../engine/calibrate/table.ts';
import { calibrationPng } from '../../engine/calibrate/plot.ts';
import { parseConfig } from '../../engine/config/parse.ts';
import { FitsFile } from '../../engine/data/fits/file.ts';
import { mulberry32 } from '../../engine/util/rng.ts';

/** A standard normal deviate from a uniform generator (Box–Muller). */
function gauss(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

interface Truth {
  g: number;
  m: [number, number];
  c: [number, number];
  /** leak[0]: response of ĝ2 to g1; leak[1]: of ĝ1 to g2. */
  leak: [number, number];
}

/**
 * Fits of seeds × sub-tiles sets: ĝ_j = (1 + m_j) g_j + c_j + leak·g_other + ε_j·(±1 rotated)
 * + n_j, where ε is the set's shape noise (opposite in the rotated simulation) and n noise
 * identical in all 8 simulations of the set.
 */
function synthetic(t: Truth, seeds: number[], subtiles: number, opts: { shape?: number; common?: number; rnd?: () => number; err?: number } = {}): CalibrationFit[] {
  const rnd = opts.rnd ?? mulberry32(7);
  const fits: CalibrationFit[] = [];
  for (const seed of seeds) {
    for (let k = 0; k < subtiles; k++) {
      const eps = [(opts.shape ?? 0.3) * gauss(rnd), (opts.shape ?? 0.3) * gauss(rnd)];
      const n = [(opts.common ?? 0) * gauss(rnd), (opts.common ?? 0) * gauss(rnd)];
      for (const m of MEMBERS) {
        const [g1, g2] = memberShear(m, t.g);
        const r = m.rotated ? -1 : 1;
        const h1 = (1 + t.m[0]) * g1 + t.c[0] + t.leak[1] * g2 + r * eps[0] + n[0];
        const h2 = (1 + t.m[1]) * g2 + t.c[1] + t.leak[0] * g1 + r * eps[1] + n[1];
        fits.push({
          ...m, seed, tileId: 7, row: Math.floor(k / 4), col: k % 4, gTrue1: g1, gTrue2: g2,
          g1: h1, g2: h2, g1Err: opts.err ?? 0.3, g2Err: opts.err ?? 0.3, converged: true, nSources: 5, status: 'ok',
        });
      }
    }
  }
  return fits;
}

const T: Truth = { g: 0.02, m: [0.013, -0.021], c: [7e-4, -4e-4], leak: [0.004, -0.006] };

describe('m, c, leakage', () => {
  it('are recovered exactly (to rounding) when the rotated pairs cancel the shape noise', () => {
    const fits = synthetic(T, [1, 2, 3], 4, { shape: 0.3 });
    const s = summarize(fits, { g: T.g, bootstrap: 200 });
    expect(s.nSets).toBe(12);
    expect(s.nSetsComplete).toBe(12);
    for (const set of s.sets) {
      expect(set.m1).toBeCloseTo(T.m[0], 12);
      expect(set.m2).toBeCloseTo(T.m[1], 12);
      expect(set.c1).toBeCloseTo(T.c[0], 14);
      expect(set.c2).toBeCloseTo(T.c[1], 14);
      expect(set.leak1to2).toBeCloseTo(T.leak[0], 12);
      expect(set.leak2to1).toBeCloseTo(T.leak[1], 12);
      expect(set.c1Cross).toBeCloseTo(T.c[0], 14);
      expect(set.c2Cross).toBeCloseTo(T.c[1], 14);
    }
    expect(s.estimates.m1.mean).toBeCloseTo(T.m[0], 12);
    expect(s.estimates.m2.mean).toBeCloseTo(T.m[1], 12);
    expect(s.estimates.c1.mean).toBeCloseTo(T.c[0], 14);
    expect(s.estimates.c2.mean).toBeCloseTo(T.c[1], 14);
    // no scatter between sets: zero errors
    expect(s.estimates.m1.err).toBeLessThan(1e-12);
    expect(s.estimates.m1.sem).toBeLessThan(1e-12);
    expect(s.perSeed.map((p) => p.nComplete)).toEqual([4, 4, 4]);
    for (const p of s.perSeed) expect(p.values.m1).toBeCloseTo(T.m[0], 12);
    expect(s.fits).toMatchObject({ total: 96, attempted: 96, converged: 96, errFinite: 96, fracConverged: 1, fracErrFinite: 1 });
    expect(s.problems).toEqual([]);
  });

  it('noise identical in the ±g simulations cancels in m and leakage, and stays in c', () => {
    const rnd = mulberry32(11);
    const fits = synthetic(T, [1, 2], 3, { shape: 0.3, common: 0.01, rnd });
    const s = summarize(fits, { g: T.g, bootstrap: 100 });
    for (const set of s.sets) {
      expect(set.m1).toBeCloseTo(T.m[0], 11);
      expect(set.m2).toBeCloseTo(T.m[1], 11);
      expect(set.leak1to2).toBeCloseTo(T.leak[0], 11);
    }
    // c = c_true + the set's common noise: recompute it from the fits of the set
    for (const set of s.sets) {
      const mine = fits.filter((f) => f.seed === set.seed && f.row === set.row && f.col === set.col && f.component === 1);
      const c1 = mean(mine.map((f) => f.g1));
      expect(set.c1).toBeCloseTo(c1, 14);
    }
    expect(Math.abs(s.estimates.c1.mean - T.c[0])).toBeGreaterThan(1e-6);
  });

  it('the formulas, on one hand-written set', () => {
    const g = 0.05;
    const vals: Record<string, [number, number]> = {
      g1p_r0: [0.07, 0.01], g1p_r1: [0.04, -0.002], g1m_r0: [-0.03, 0.004], g1m_r1: [-0.06, 0.0],
      g2p_r0: [0.003, 0.06], g2p_r1: [0.001, 0.05], g2m_r0: [-0.002, -0.045], g2m_r1: [0.0, -0.04],
    };
    const fits = MEMBERS.map((m) => {
      const [g1, g2] = vals[memberLabel(m)];
      const [t1, t2] = memberShear(m, g);
      return { ...m, seed: 1, tileId: 1, row: 0, col: 0, gTrue1: t1, gTrue2: t2, g1, g2, g1Err: 0.01, g2Err: 0.01, converged: true, nSources: 3, status: 'ok' as FitStatus };
    });
    const e = setEstimate(fits, g);
    const p1 = (0.07 + 0.04) / 2, m1_ = (-0.03 - 0.06) / 2;
    const p2 = (0.06 + 0.05) / 2, m2_ = (-0.045 - 0.04) / 2;
    expect(e.m1).toBeCloseTo((p1 - m1_) / (2 * g) - 1, 14);
    expect(e.c1).toBeCloseTo((p1 + m1_) / 2, 14);
    expect(e.m2).toBeCloseTo((p2 - m2_) / (2 * g) - 1, 14);
    expect(e.c2).toBeCloseTo((p2 + m2_) / 2, 14);
    expect(e.leak1to2).toBeCloseTo(((0.01 - 0.002) / 2 - (0.004 + 0) / 2) / (2 * g), 14);
    expect(e.leak2to1).toBeCloseTo(((0.003 + 0.001) / 2 - (-0.002 + 0) / 2) / (2 * g), 14);
  });
});

describe('bookkeeping', () => {
  it('failed, NaN, missing and stale fits are counted and listed; their sets are left out of m and c', () => {
    const fits = synthetic(T, [1, 2], 2, { shape: 0.3 });
    const mark = (seed: number, col: number, label: string, status: FitStatus, patch: Partial<CalibrationFit> = {}) => {
      const f = fits.find((x) => x.seed === seed && x.col === col && memberLabel(x) === label)!;
      Object.assign(f, { status, ...patch });
    };
    mark(1, 0, 'g1p_r1', 'failed', { g1: NaN, g2: NaN, g1Err: NaN, g2Err: NaN, converged: false, reason: 'exit 1' });
    mark(1, 1, 'g2m_r0', 'nan', { g1: NaN, g2: NaN, converged: false });
    mark(2, 0, 'g1m_r0', 'missing', { g1: NaN, g2: NaN, g1Err: NaN, g2Err: NaN, converged: false });
    mark(2, 1, 'g2p_r0', 'ok', { converged: false, g1Err: NaN });
    const s = summarize(fits, { g: T.g, bootstrap: 100 });
    expect(s.nSets).toBe(4);
    expect(s.nSetsComplete).toBe(1);
    expect(s.sets.filter((x) => !x.complete).map((x) => x.missing)).toEqual([['g1p_r1: failed'], ['g2m_r0: nan'], ['g1m_r0: missing']]);
    expect(s.estimates.m1.n).toBe(1);
    expect(s.estimates.m1.mean).toBeCloseTo(T.m[0], 12);
    expect(s.fits.byStatus).toEqual({ ok: 29, nan: 1, empty: 0, failed: 1, missing: 1, stale: 0 });
    expect(s.fits.attempted).toBe(32);
    expect(s.fits.converged).toBe(32 - 4);
    expect(s.fits.errFinite).toBe(32 - 2 - 1); // failed, missing, and one without G1_ERR
    expect(s.fits.fracConverged).toBeCloseTo(28 / 32, 15);
    expect(s.problems.map((p) => `${p.seed} ${p.member} ${p.status}`)).toEqual(['1 g1p_r1 failed', '1 g2m_r0 nan', '2 g1m_r0 missing']);
    expect(s.problems[0].reason).toBe('exit 1');
    // an ok fit without a finite error is in m and c, and listed
    expect(s.noErrors.map((p) => `${p.seed} ${p.member} ${p.status}`)).toEqual(['2 g2p_r0 ok']);
    // pulls: every ok fit with a finite error, per component
    expect(s.pulls.g1.n).toBe(28);
    expect(s.pulls.g2.n).toBe(29);
  });

  it('sets of only empty sub-tiles are not sets; empty fits are not attempted', () => {
    const fits = synthetic(T, [1], 2, { shape: 0.3 });
    for (const f of fits) if (f.col === 1) Object.assign(f, { status: 'empty', g1: NaN, g2: NaN, nSources: 0 });
    const s = summarize(fits, { g: T.g, bootstrap: 10 });
    expect(s.nSets).toBe(1);
    expect(s.nSetsEmpty).toBe(1);
    expect(s.nSetsComplete).toBe(1);
    expect(s.fits.attempted).toBe(8);
    expect(s.fits.byStatus.empty).toBe(8);
    expect(s.problems).toEqual([]);
  });

  it('N_SOURCES differing inside a set is flagged', () => {
    const fits = synthetic(T, [1], 1);
    fits[3].nSources = 4;
    expect(setEstimate(fits, T.g).nSourcesVaries).toBe(true);
    expect(setEstimate(fits, T.g).complete).toBe(true);
  });
});

describe('bootstrap over seeds', () => {
  it('agrees with the analytic standard error of the mean for many seeds', () => {
    const rnd = mulberry32(3);
    const n = 400;
    const groups = Array.from({ length: n }, () => [0.05 * gauss(rnd)]);
    const x = groups.map((v) => v[0]);
    const reps = bootstrapClusterMeans(groups, 4000, 5);
    const analytic = (sd(x) * Math.sqrt((n - 1) / n)) / Math.sqrt(n);
    expect(sd(Array.from(reps)) / analytic).toBeGreaterThan(0.95);
    expect(sd(Array.from(reps)) / analytic).toBeLessThan(1.05);
    expect(Math.abs(mean(Array.from(reps)) - mean(x))).toBeLessThan(0.2 * analytic);
  });

  it('resamples seeds, not sub-tiles: sub-tiles of one seed that move together are not independent', () => {
    const rnd = mulberry32(9);
    // 200 seeds × 4 sub-tiles sharing the seed's offset (plus a little own noise)
    const groups = Array.from({ length: 200 }, () => {
      const a = 0.05 * gauss(rnd);
      return [0, 1, 2, 3].map(() => a + 0.001 * gauss(rnd));
    });
    const seedMeans = groups.map((v) => mean(v));
    const analytic = sd(seedMeans) / Math.sqrt(groups.length);
    const b = sd(Array.from(bootstrapClusterMeans(groups, 4000, 1)));
    expect(b / analytic).toBeGreaterThan(0.93);
    expect(b / analytic).toBeLessThan(1.07);
    // the naive error over 800 "independent" sets is about half of it
    expect(sd(groups.flat()) / Math.sqrt(800) / b).toBeLessThan(0.6);
  });

  it('is reproducible (seeded) and needs two seeds', () => {
    const fits = synthetic(T, [1, 2, 3, 4, 5, 6], 2, { shape: 0.3, common: 0.01, rnd: mulberry32(1) });
    // break the exact cancellation so that m scatters between sets
    for (const f of fits) if (f.sign > 0 && !f.rotated) f.g1 += 0.002 * (f.seed % 3);
    const a = summarize(fits, { g: T.g, bootstrap: 500, bootstrapSeed: 4 });
    const b = summarize(fits, { g: T.g, bootstrap: 500, bootstrapSeed: 4 });
    const c = summarize(fits, { g: T.g, bootstrap: 500, bootstrapSeed: 5 });
    expect(a.estimates).toEqual(b.estimates);
    expect(a.estimates.m1.err).toBeGreaterThan(0);
    expect(c.estimates.m1.err).not.toBe(a.estimates.m1.err);
    expect(a.estimates.m1.lo).toBeLessThan(a.estimates.m1.mean);
    expect(a.estimates.m1.hi).toBeGreaterThan(a.estimates.m1.mean);
    const one = summarize(fits.filter((f) => f.seed === 1), { g: T.g, bootstrap: 500 });
    expect(one.estimates.m1.err).toBeNaN();
    expect(one.bootstrap.seeds).toBe(1);
    expect(one.estimates.m1.sem).toBeGreaterThanOrEqual(0);
  });
});

describe('pulls', () => {
  it('mean, sd and robust width', () => {
    expect(robustSd([1, 2, 3, 4, 100])).toBeCloseTo(1.4826, 12);
    const rnd = mulberry32(21);
    const x = Array.from({ length: 20000 }, () => 1 + 2 * gauss(rnd));
    const p = pullStats(x);
    expect(p.mean).toBeCloseTo(1, 1);
    expect(p.sd).toBeCloseTo(2, 1);
    expect(p.robustSd / 2).toBeGreaterThan(0.97);
    expect(p.robustSd / 2).toBeLessThan(1.03);
  });

  it('are (ĝ − g)/σ̂ of every usable fit', () => {
    const fits = synthetic(T, [1], 1, { shape: 0.01, err: 0.02 });
    const s = summarize(fits, { g: T.g, bootstrap: 10 });
    const expected = [...fits.map((f) => (f.g1 - f.gTrue1) / 0.02), ...fits.map((f) => (f.g2 - f.gTrue2) / 0.02)];
    expect(s.pulls.all.n).toBe(16);
    expect(s.pulls.all.mean).toBeCloseTo(mean(expected), 12);
    expect(s.pulls.all.sd).toBeCloseTo(sd(expected), 12);
  });
});

describe('parsers', () => {
  it('seeds', () => {
    expect(parseSeeds('1-3,7')).toEqual([1, 2, 3, 7]);
    expect(parseSeeds(' 5 , 2 ')).toEqual([2, 5]);
    expect(parseSeeds('0')).toEqual([0]);
    expect(formatSeeds([1, 2, 3, 7, 9, 10])).toBe('1-3,7,9-10');
    for (const bad of ['', ' ', '1-', 'a', '1,,2', '3-1', '-1', '1.5', '1-2-3', '2,2', '1-3,2']) expect(() => parseSeeds(bad), bad).toThrow(/--seeds/);
  });
  it('sub-tiles and g', () => {
    expect(parseSubtiles('all', [4, 4])).toBeNull();
    expect(parseSubtiles('2,0; 0,2', [4, 4])).toEqual([[0, 2], [2, 0]]);
    for (const bad of ['', '1', '1,2,3', '4,0', '0,4', '1,1;1,1', 'x']) expect(() => parseSubtiles(bad, [4, 4]), bad).toThrow(/--sub-tiles/);
    expect(checkShearAmplitude(0.02)).toBe(0.02);
    expect(checkShearAmplitude(-0.5)).toBe(-0.5);
    for (const bad of [0, 1, -1, 1.5, NaN, Infinity]) expect(() => checkShearAmplitude(bad)).toThrow(/--g must be/);
  });
});

describe('derived configuration', () => {
  const sim = `# simulator
data:
  tile_index: tiles.fits
gal:
  priors:
    shear: { type: normal, mean: 0.0, sigma: 0.05 }
    flux: { type: lognormal, center: catalog, sigma: 0.5 }
inference:
  method: map
`;
  it('default: gal.priors removed, so the schema defaults apply', () => {
    const d = deriveConfig({ simConfig: sim, priors: 'default', method: 'nuts' });
    const doc = parseYaml(d.text) as Record<string, Record<string, unknown>>;
    expect(doc.gal).toBeUndefined();
    expect(doc.inference.method).toBe('nuts');
    const cfg = parseConfig(d.text, { file: 'x.yaml', baseDir: '/sim' });
    expect(cfg.gal.priors).toEqual(parseConfig('', {}).gal.priors);
    expect(cfg.data.tile_index).toBe('/sim/tiles.fits');
    expect(d.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(deriveConfig({ simConfig: sim, priors: 'default', method: 'nuts' }).hash).toBe(d.hash);
  });
  it("shine: SHINE's priors written explicitly; overrides deep-merged last", () => {
    const d = deriveConfig({ simConfig: sim, priors: 'shine', overrides: { gal: { priors: { shear: { type: 'uniform', low: -0.5, high: 0.5 } } }, inference: { map: { max_iterations: 50 } } } });
    const cfg = parseConfig(d.text, {});
    expect(cfg.gal.priors.shear).toEqual({ type: 'uniform', low: -0.5, high: 0.5 });
    expect(cfg.gal.priors.flux).toEqual(SHINE_PRIORS.flux);
    expect(cfg.gal.priors.hlr).toEqual(SHINE_PRIORS.hlr);
    expect(cfg.gal.priors.ellipticity).toEqual(SHINE_PRIORS.ellipticity);
    expect(cfg.gal.priors.offset).toEqual({ type: 'normal', mean: 0, sigma: 0.05 });
    expect(cfg.inference.map.max_iterations).toBe(50);
    expect(cfg.inference.method).toBe('map');
    expect(deepMerge({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] } })).toEqual({ a: { b: 1, c: [3] } });
    // same prior type: merged key by key (only sigma changes); another type: replaced
    expect(deepMerge({ p: { type: 'normal', mean: 0, sigma: 1 } }, { p: { sigma: 2 } })).toEqual({ p: { type: 'normal', mean: 0, sigma: 2 } });
    expect(deepMerge({ p: { type: 'normal', mean: 0, sigma: 1 } }, { p: { type: 'fixed', value: 0 } })).toEqual({ p: { type: 'fixed', value: 0 } });
  });
});

describe('outputs', () => {
  it('calibration.fits holds every fit and the summary; calibration.png decodes', async () => {
    const fits = synthetic(T, [1, 2], 2, { shape: 0.3 });
    fits[0].status = 'failed';
    fits[0].g1 = NaN;
    const s = summarize(fits, { g: T.g, bootstrap: 50 });
    const bytes = calibrationFits(fits, s, { preset: 'minitile', g: T.g, method: 'map', priors: 'default', noise: false, configHash: 'abc', softwareVersion: '0.1.0', created: '2025-01-01T00:00:00Z' });
    const src = { name: 'mem', size: async () => bytes.length, read: async (o: number, l: number) => bytes.subarray(o, o + l), close: async () => undefined };
    const f = await FitsFile.open(src);
    const t = await f.readTable(FITS_EXTNAME);
    expect(t.nRows).toBe(32);
    expect(Array.from(t.column('G2').data as Float32Array)).toEqual(Array.from(Float32Array.from(fits, (x) => x.g2)));
    expect((t.column('STATUS').data as string[])[0]).toBe('failed');
    const sm = await f.readTable(SUMMARY_EXTNAME);
    expect((sm.column('M1').data as Float64Array)[0]).toBe(s.estimates.m1.mean);
    expect((sm.column('N_COMPLETE').data as Int32Array)[0]).toBe(3);
    const png = decode(calibrationPng({ fits, summary: s, title: ['TEST'] }));
    expect(png.width).toBeGreaterThan(1000);
    expect(png.channels).toBe(3);
    const px = png.data as Uint8Array;
    let nonWhite = 0;
    for (let i = 0; i < px.length; i += 3) if (px[i] !== 255 || px[i + 1] !== 255 || px[i + 2] !== 255) nonWhite++;
    expect(nonWhite).toBeGreaterThan(5000);
  });
});

// keep the Member type referenced (documentation of the synthetic model)
export type _M = Member;
