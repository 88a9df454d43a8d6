/**
 * engine/calibrate on synthetic numbers with known answers: m, c and leakage recovered exactly
 * when the rotations cancel the shape noise (R = 4 and R = 2); for a galaxy whose shear estimate is
 * its own observed shape — the intrinsic one Möbius-composed with g — the 4-ring leaves |m| ≪ 1e-4
 * while the 2-ring leaves its O(e²) bias; noise identical in the ±g simulations cancels in
 * m; incomplete, failed and empty fits are counted, listed and kept out of m and c; the bootstrap
 * over seeds agrees with the analytic standard error of the mean; pulls and their robust width;
 * the parsers, the derived configuration, the FITS table and the PNG.
 */
import { describe, expect, it } from 'vitest';
import { decode } from 'fast-png';
import { parse as parseYaml } from 'yaml';
import {
  designMembers, memberLabel, memberShear, memberRotationDeg, memberRotated, memberText, parseSeeds, parseSubtiles, checkShearAmplitude,
  checkRotations, formatSeeds, type Member, type Rotations,
} from '../../engine/calibrate/design.ts';
import {
  summarize, mapShearFits, mapShearFromMetadata, offModeTally, oversizeTally, shearBlindTally, setEstimate, bootstrapClusterMeans, robustSd, sd, mean, pullStats, type CalibrationFit, type FitStatus,
} from '../../engine/calibrate/stats.ts';
import { deriveConfig, deepMerge, SHINE_PRIORS } from '../../engine/calibrate/config.ts';
import { calibrationFits, FITS_EXTNAME, SUMMARY_EXTNAME } from '../../engine/calibrate/table.ts';
import { calibrationPng } from '../../engine/calibrate/plot.ts';
import { parseConfig } from '../../engine/config/parse.ts';
import { FitsFile } from '../../engine/data/fits/file.ts';
import { mulberry32 } from '../../engine/util/rng.ts';
import { fitQuality } from '../../engine/outputs/quality.ts';
import { polishWarning } from '../../engine/infer/laplace.ts';

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

/** (e1, e2) turned by θ degrees in position angle: (e1 + i e2)·exp(2iθ), by cos/sin. */
function turn(e: readonly [number, number], deg: number): [number, number] {
  const a = (2 * deg * Math.PI) / 180;
  return [e[0] * Math.cos(a) - e[1] * Math.sin(a), e[0] * Math.sin(a) + e[1] * Math.cos(a)];
}

/**
 * Fits of seeds × sub-tiles sets: ĝ_j = (1 + m_j) g_j + c_j + leak·g_other + ε_j(θ) + n_j, where
 * ε is the set's shape noise, turned by the member's rotation θ = 180°·k/R (ε·exp(2iθ): its mean
 * over the R rotations is 0), and n noise identical in all 4·R simulations of the set.
 */
function synthetic(t: Truth, seeds: number[], subtiles: number, opts: { shape?: number; common?: number; rnd?: () => number; err?: number; rotations?: Rotations } = {}): CalibrationFit[] {
  const rnd = opts.rnd ?? mulberry32(7);
  const fits: CalibrationFit[] = [];
  for (const seed of seeds) {
    for (let k = 0; k < subtiles; k++) {
      const eps: [number, number] = [(opts.shape ?? 0.3) * gauss(rnd), (opts.shape ?? 0.3) * gauss(rnd)];
      const n = [(opts.common ?? 0) * gauss(rnd), (opts.common ?? 0) * gauss(rnd)];
      for (const m of designMembers(opts.rotations ?? 4)) {
        const [g1, g2] = memberShear(m, t.g);
        const e = turn(eps, memberRotationDeg(m));
        const h1 = (1 + t.m[0]) * g1 + t.c[0] + t.leak[1] * g2 + e[0] + n[0];
        const h2 = (1 + t.m[1]) * g2 + t.c[1] + t.leak[0] * g1 + e[1] + n[1];
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

describe('the design', () => {
  it('4·R members: component × sign × rotation 180°·k/R, labelled by k', () => {
    const four = designMembers(4);
    expect(four).toHaveLength(16);
    expect(four.slice(0, 4).map(memberLabel)).toEqual(['g1p_r0', 'g1p_r1', 'g1p_r2', 'g1p_r3']);
    expect(four.slice(0, 4).map(memberRotationDeg)).toEqual([0, 45, 90, 135]);
    expect(four.slice(0, 4).map(memberRotated)).toEqual([false, true, true, true]);
    expect(four.map(memberLabel).slice(12)).toEqual(['g2m_r0', 'g2m_r1', 'g2m_r2', 'g2m_r3']);
    expect(memberText(four[13])).toBe('-g2 rot 45°');
    const two = designMembers(2);
    expect(two.map(memberLabel)).toEqual(['g1p_r0', 'g1p_r1', 'g1m_r0', 'g1m_r1', 'g2p_r0', 'g2p_r1', 'g2m_r0', 'g2m_r1']);
    expect(two.map(memberRotationDeg)).toEqual([0, 90, 0, 90, 0, 90, 0, 90]);
    expect(new Set(four.map(memberLabel)).size).toBe(16);
    expect(checkRotations(2)).toBe(2);
    for (const bad of [0, 1, 3, 8, NaN]) expect(() => checkRotations(bad)).toThrow(/--rotations must be 2 or 4/);
  });
});

describe('m, c, leakage', () => {
  for (const R of [4, 2] as const) {
    it(`are recovered exactly (to rounding) when the ${R} rotations cancel the shape noise (linear response)`, () => {
      const fits = synthetic(T, [1, 2], 2, { shape: 0.3, rotations: R });
      expect(fits).toHaveLength(2 * 2 * 4 * R);
      const s = summarize(fits, { g: T.g, bootstrap: 50 });
      expect(s.nSetsComplete).toBe(4);
      for (const set of s.sets) {
        expect(set.m1).toBeCloseTo(T.m[0], 12);
        expect(set.m2).toBeCloseTo(T.m[1], 12);
        expect(set.c1).toBeCloseTo(T.c[0], 14);
        expect(set.leak1to2).toBeCloseTo(T.leak[0], 12);
        expect(set.leak2to1).toBeCloseTo(T.leak[1], 12);
      }
    });
  }

  it("the MAP's shear from a fit's metadata: the Laplace-marginal step's start, or the MAP that initialised VI / NUTS", () => {
    // the shapes engine/subtile/products.ts writes (metadata YAML parsed)
    expect(mapShearFromMetadata({ shear: { estimator: 'laplace_marginal', laplace_marginal: { applied: true, map_g: [0.0123, -0.0045] } } })).toEqual([0.0123, -0.0045]);
    expect(mapShearFromMetadata({ shear: { estimator: 'posterior_mean' }, posterior: { chains: 4, map: { g1: 0.021, g2: -0.008, g1_err: 0.02, g2_err: 0.02 } } })).toEqual([0.021, -0.008]);
    expect(mapShearFromMetadata({ shear: { estimator: 'map' } })).toBeUndefined();
    expect(mapShearFromMetadata({ posterior: { map: { g1: 'x', g2: 0 } } })).toBeUndefined();
    expect(mapShearFromMetadata({ shear: { laplace_marginal: { map_g: [0.1] } } })).toBeUndefined();
    expect(mapShearFromMetadata(null)).toBeUndefined();
  });

  it("the MAP's shear of the same fits: another truth recovered from mapG; null when an ok fit lacks it", () => {
    const fits = synthetic(T, [1, 2], 1, { shape: 0.3, rotations: 4 });
    const T2: Truth = { g: T.g, m: [-0.004, 0.009], c: [2e-4, 1e-4], leak: [0, 0] };
    const other = synthetic(T2, [1, 2], 1, { shape: 0.3, rotations: 4 });
    const withMap: CalibrationFit[] = fits.map((f, i) => ({ ...f, mapG: [other[i].g1, other[i].g2] as [number, number] }));
    const s = summarize(mapShearFits(withMap)!, { g: T.g, bootstrap: 50 });
    expect(s.estimates.m1.mean).toBeCloseTo(T2.m[0], 12);
    expect(s.estimates.m2.mean).toBeCloseTo(T2.m[1], 12);
    expect(s.estimates.c1.mean).toBeCloseTo(T2.c[0], 14);
    expect(summarize(withMap, { g: T.g, bootstrap: 50 }).estimates.m1.mean).toBeCloseTo(T.m[0], 12);
    expect(mapShearFits(fits)).toBeNull();
    const { mapG: _dropped, ...without } = withMap[3];
    withMap[3] = without;
    expect(mapShearFits(withMap)).toBeNull();
  });

  it('the 4-ring cancels the e² term of a non-linear (Möbius) response that the 2-ring leaves in m', () => {
    // one galaxy per sub-tile whose MAP shear is its own observed shape: ĝ = (e + g)/(1 + ḡ e)
    // (complex reduced shear and ε-type ellipticity), e = e_int·exp(2iθ_k). Averaged over the
    // 2-ring {e, −e}: (g − ḡe²)/(1 − ḡ²e²) ≈ g(1 − e²) for e ∥ g — m ≈ ∓|e|²; over the 4-ring
    // {e, ie, −e, −ie} the e, e², e³ terms cancel (Σ i^(nk) = 0 for n = 1, 2, 3): what is left is
    // −(1 − |g|²) ḡ³ e⁴, i.e. m ~ g² e⁴.
    const g = 0.02;
    const mul = (a: [number, number], b: [number, number]): [number, number] => [a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]];
    const div = (a: [number, number], b: [number, number]): [number, number] => {
      const d = b[0] * b[0] + b[1] * b[1];
      return [(a[0] * b[0] + a[1] * b[1]) / d, (a[1] * b[0] - a[0] * b[1]) / d];
    };
    const mobius = (e: [number, number], gg: [number, number]): [number, number] => div([e[0] + gg[0], e[1] + gg[1]], [1 + mul([gg[0], -gg[1]], e)[0], mul([gg[0], -gg[1]], e)[1]]);
    // a few fixed intrinsic shapes: along g1, along g2, one at 15°, and a large one (|e| = 0.5) at −35°
    const shapes: Array<[number, number]> = [[0.3, 0], [0, 0.3], turn([0.25, 0], 15), turn([0.5, 0], -35)];
    const setsFor = (R: Rotations) => {
      const fits: CalibrationFit[] = [];
      shapes.forEach((e, col) => {
        for (const m of designMembers(R)) {
          const gt = memberShear(m, g);
          const [h1, h2] = mobius(turn(e, memberRotationDeg(m)), gt);
          fits.push({ ...m, seed: 1, tileId: 1, row: 0, col, gTrue1: gt[0], gTrue2: gt[1], g1: h1, g2: h2, g1Err: 0.3, g2Err: 0.3, converged: true, nSources: 1, status: 'ok' });
        }
      });
      return summarize(fits, { g, bootstrap: 10 }).sets;
    };
    const four = setsFor(4);
    const two = setsFor(2);
    expect(four.every((x) => x.complete)).toBe(true);
    shapes.forEach((e, k) => {
      const e2 = e[0] * e[0] + e[1] * e[1];
      // the 4-ring: m, leakage and c all at the O(g² e⁴) level
      for (const q of ['m1', 'm2', 'leak1to2', 'leak2to1'] as const) expect(Math.abs(four[k][q]), `${q} of e = ${e}`).toBeLessThan(1e-4);
      for (const q of ['c1', 'c2', 'c1Cross', 'c2Cross'] as const) expect(Math.abs(four[k][q]), `${q} of e = ${e}`).toBeLessThan(1e-6);
      // the 2-ring: m_1 ≈ −Re(e²), m_2 ≈ +Re(e²) (ḡ/g = −1 along g2) — of order e², as the
      // exact pair average (g − ḡe²)/(1 − ḡ²e²) says
      const re2 = e[0] * e[0] - e[1] * e[1];
      expect(two[k].m1).toBeCloseTo(-re2, 2);
      expect(two[k].m2).toBeCloseTo(re2, 2);
      const sq: [number, number] = mul(e, e);
      const pair = div([g - g * sq[0], -g * sq[1]], [1 - g * g * sq[0], -g * g * sq[1]]); // ĝ(+g along 1)
      const pairM = div([-g + g * sq[0], g * sq[1]], [1 - g * g * sq[0], -g * g * sq[1]]); // ĝ(−g along 1)
      expect(two[k].m1).toBeCloseTo((pair[0] - pairM[0]) / (2 * g) - 1, 12);
      if (Math.abs(re2) > 0.01) expect(Math.abs(two[k].m1)).toBeGreaterThan(0.5 * Math.abs(re2));
      expect(Math.abs(two[k].m1) + Math.abs(two[k].leak1to2)).toBeGreaterThan(0.5 * e2);
    });
    // on average over these shapes the 2-ring's bias is two orders of magnitude above the 4-ring's
    const worst = (sets: typeof four) => Math.max(...sets.map((x) => Math.max(Math.abs(x.m1), Math.abs(x.m2))));
    expect(worst(two)).toBeGreaterThan(0.05);
    expect(worst(four)).toBeLessThan(1e-4);
    expect(worst(two) / worst(four)).toBeGreaterThan(1000);
  });

  it('are recovered exactly (to rounding) when the rotations cancel the shape noise', () => {
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
    expect(s.fits).toMatchObject({ total: 192, attempted: 192, converged: 192, errFinite: 192, fracConverged: 1, fracErrFinite: 1 });
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

  it('the formulas, on one hand-written set (R = 2)', () => {
    const g = 0.05;
    const vals: Record<string, [number, number]> = {
      g1p_r0: [0.07, 0.01], g1p_r1: [0.04, -0.002], g1m_r0: [-0.03, 0.004], g1m_r1: [-0.06, 0.0],
      g2p_r0: [0.003, 0.06], g2p_r1: [0.001, 0.05], g2m_r0: [-0.002, -0.045], g2m_r1: [0.0, -0.04],
    };
    const fits = designMembers(2).map((m) => {
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

  it('the formulas, on one hand-written set (R = 4): every rotation of a (component, sign) is averaged', () => {
    const g = 0.05;
    // ĝ1 of the (±g, 0) members and ĝ2 of the (0, ±g) ones, rotation k = 0 … 3; the other component 0.001·k
    const main: Record<string, number[]> = {
      g1p: [0.07, 0.05, 0.04, 0.06], g1m: [-0.03, -0.05, -0.06, -0.04], g2p: [0.06, 0.045, 0.05, 0.055], g2m: [-0.045, -0.05, -0.04, -0.05],
    };
    const fits = designMembers(4).map((m) => {
      const v = main[memberLabel(m).slice(0, 3)][m.rotation];
      const o = 0.001 * m.rotation * m.sign;
      const [t1, t2] = memberShear(m, g);
      const [g1, g2] = m.component === 1 ? [v, o] : [o, v];
      return { ...m, seed: 1, tileId: 1, row: 0, col: 0, gTrue1: t1, gTrue2: t2, g1, g2, g1Err: 0.01, g2Err: 0.01, converged: true, nSources: 3, status: 'ok' as FitStatus };
    });
    const e = setEstimate(fits, g);
    const av = (x: number[]) => (x[0] + x[1] + x[2] + x[3]) / 4;
    expect(e.complete).toBe(true);
    expect(e.m1).toBeCloseTo((av(main.g1p) - av(main.g1m)) / (2 * g) - 1, 14);
    expect(e.c1).toBeCloseTo((av(main.g1p) + av(main.g1m)) / 2, 14);
    expect(e.m2).toBeCloseTo((av(main.g2p) - av(main.g2m)) / (2 * g) - 1, 14);
    expect(e.c2).toBeCloseTo((av(main.g2p) + av(main.g2m)) / 2, 14);
    // other component: mean 0.0015 (+g) and −0.0015 (−g)
    expect(e.leak1to2).toBeCloseTo(0.003 / (2 * g), 14);
    expect(e.leak2to1).toBeCloseTo(0.003 / (2 * g), 14);
    expect(e.c1Cross).toBeCloseTo(0, 14);
    // one rotation missing makes the set incomplete
    const e3 = setEstimate(fits.filter((f) => memberLabel(f) !== 'g2m_r3'), g);
    expect(e3.complete).toBe(false);
    expect(e3.missing).toEqual(['g2m_r3: not planned']);
    expect(Number.isNaN(e3.m1)).toBe(true);
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
    mark(2, 0, 'g1m_r3', 'missing', { g1: NaN, g2: NaN, g1Err: NaN, g2Err: NaN, converged: false });
    mark(2, 1, 'g2p_r2', 'ok', { converged: false, g1Err: NaN });
    const s = summarize(fits, { g: T.g, bootstrap: 100 });
    expect(s.nSets).toBe(4);
    expect(s.nSetsComplete).toBe(1);
    expect(s.sets.filter((x) => !x.complete).map((x) => x.missing)).toEqual([['g1p_r1: failed'], ['g2m_r0: nan'], ['g1m_r3: missing']]);
    expect(s.estimates.m1.n).toBe(1);
    expect(s.estimates.m1.mean).toBeCloseTo(T.m[0], 12);
    expect(s.fits.byStatus).toEqual({ ok: 61, nan: 1, empty: 0, failed: 1, missing: 1, stale: 0 });
    expect(s.fits.attempted).toBe(64);
    expect(s.fits.converged).toBe(64 - 4);
    expect(s.fits.errFinite).toBe(64 - 2 - 1); // failed, missing, and one without G1_ERR
    expect(s.fits.fracConverged).toBeCloseTo(60 / 64, 15);
    expect(s.problems.map((p) => `${p.seed} ${p.member} ${p.status}`)).toEqual(['1 g1p_r1 failed', '1 g2m_r0 nan', '2 g1m_r3 missing']);
    expect(s.problems[0].reason).toBe('exit 1');
    // an ok fit without a finite error is in m and c, and listed
    expect(s.noErrors.map((p) => `${p.seed} ${p.member} ${p.status}`)).toEqual(['2 g2p_r2 ok']);
    // pulls: every ok fit with a finite error, per component
    expect(s.pulls.g1.n).toBe(60);
    expect(s.pulls.g2.n).toBe(61);
  });

  it('sets of only empty sub-tiles are not sets; empty fits are not attempted', () => {
    const fits = synthetic(T, [1], 2, { shape: 0.3 });
    for (const f of fits) if (f.col === 1) Object.assign(f, { status: 'empty', g1: NaN, g2: NaN, nSources: 0 });
    const s = summarize(fits, { g: T.g, bootstrap: 10 });
    expect(s.nSets).toBe(1);
    expect(s.nSetsEmpty).toBe(1);
    expect(s.nSetsComplete).toBe(1);
    expect(s.fits.attempted).toBe(16);
    expect(s.fits.byStatus.empty).toBe(16);
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
    for (const f of fits) if (f.sign > 0 && f.rotation === 0) f.g1 += 0.002 * (f.seed % 3);
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
    expect(s.pulls.all.n).toBe(32);
    expect(s.pulls.all.mean).toBeCloseTo(mean(expected), 12);
    expect(s.pulls.all.sd).toBeCloseTo(sd(expected), 12);
  });
});

describe('pulls per realisation', () => {
  it('one value per (seed, sub-tile, rotation) and component: the mean of its fits\' pulls (brute force)', () => {
    const fits = synthetic(T, [1, 2], 3, { shape: 0.05, err: 0.02, common: 0.01, rnd: mulberry32(3) });
    fits[5].status = 'failed';
    fits[9].g2Err = NaN;
    const s = summarize(fits, { g: T.g, bootstrap: 50 });
    const want: Record<'g1' | 'g2', number[]> = { g1: [], g2: [] };
    for (const seed of [1, 2])
      for (let k = 0; k < 3; k++)
        for (let r = 0; r < 4; r++) {
          const mine = fits.filter((f) => f.seed === seed && f.col === k % 4 && f.row === Math.floor(k / 4) && f.rotation === r && f.status === 'ok');
          for (const c of ['g1', 'g2'] as const) {
            const p = mine.filter((f) => Number.isFinite(c === 'g1' ? f.g1Err : f.g2Err)).map((f) => (c === 'g1' ? (f.g1 - f.gTrue1) / f.g1Err : (f.g2 - f.gTrue2) / f.g2Err));
            if (p.length) want[c].push(p.reduce((a, b) => a + b, 0) / p.length);
          }
        }
    const all = [...want.g1, ...want.g2];
    expect(s.pullsByRealisation.g1.n).toBe(24);
    expect(s.pullsByRealisation.g2.n).toBe(24);
    expect(s.pullsByRealisation.all.nFits).toBe(s.pulls.all.n);
    expect(s.pullsByRealisation.all.mean).toBeCloseTo(mean(all), 12);
    expect(s.pullsByRealisation.all.sd).toBeCloseTo(sd(all), 12);
  });

  it('fits that share a realisation count once: the width\'s bootstrap error matches the analytic standard error of N independent values', () => {
    // 300 seeds × 2 rotations (R = 2), one sub-tile: each realisation's ±g fits carry one N(0, 1)
    // pull per component; the per-fit pulls repeat it 4 times
    const rnd = mulberry32(17);
    const fits: CalibrationFit[] = [];
    for (let seed = 1; seed <= 300; seed++)
      for (const r of [0, 1]) {
        const z = [gauss(rnd), gauss(rnd)];
        for (const m of designMembers(2).filter((x) => x.rotation === r)) {
          const [g1, g2] = memberShear(m, T.g);
          fits.push({ ...m, seed, tileId: 7, row: 0, col: 0, gTrue1: g1, gTrue2: g2, g1: g1 + 0.02 * z[0], g2: g2 + 0.02 * z[1], g1Err: 0.02, g2Err: 0.02, converged: true, nSources: 5, status: 'ok' });
        }
      }
    const s = summarize(fits, { g: T.g, bootstrap: 400 });
    const R = s.pullsByRealisation.all;
    const N = 300 * 2 * 2;
    expect(R.n).toBe(N);
    expect(s.pulls.all.n).toBe(4 * N);
    // SE of a sample sd: √(μ4 − σ⁴) / (2σ√N) (σ/√(2(N − 1)) for Gaussian kurtosis), from the N values
    const z = fits.filter((f) => f.component === 1 && f.sign === 1).flatMap((f) => [(f.g1 - f.gTrue1) / 0.02, (f.g2 - f.gTrue2) / 0.02]);
    const zm = mean(z);
    const mu2 = mean(z.map((v) => (v - zm) ** 2));
    const mu4 = mean(z.map((v) => (v - zm) ** 4));
    const analytic = Math.sqrt(mu4 - mu2 * mu2) / (2 * Math.sqrt(mu2) * Math.sqrt(N));
    console.log(`width ${R.sd.toFixed(4)} ± ${R.sdErr.toFixed(4)} (bootstrap over seeds), analytic ${analytic.toFixed(4)}; per-fit n ${s.pulls.all.n} would suggest ${(s.pulls.all.sd / Math.sqrt(2 * (4 * N - 1))).toFixed(4)}`);
    expect(Math.abs(R.sd - 1)).toBeLessThan(4 * analytic);
    expect(R.sdErr / analytic).toBeGreaterThan(0.8);
    expect(R.sdErr / analytic).toBeLessThan(1.25);
    // one seed: no bootstrap
    expect(summarize(fits.filter((f) => f.seed === 1), { g: T.g, bootstrap: 50 }).pullsByRealisation.all.sdErr).toBeNaN();
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
    const bytes = calibrationFits(fits, s, { preset: 'minitile', g: T.g, method: 'map', priors: 'default', noise: false, rotations: 4, configHash: 'abc', softwareVersion: '0.1.0', created: '2025-01-01T00:00:00Z' });
    const src = { name: 'mem', size: async () => bytes.length, read: async (o: number, l: number) => bytes.subarray(o, o + l), close: async () => undefined };
    const f = await FitsFile.open(src);
    const t = await f.readTable(FITS_EXTNAME);
    expect(t.nRows).toBe(64);
    expect(Array.from(t.column('ROTATION').data as Float64Array).slice(0, 4)).toEqual([0, 45, 90, 135]);
    expect((t.column('ROTATED').data as boolean[]).slice(0, 4)).toEqual([false, true, true, true]);
    expect((t.column('SIM').data as string[]).slice(0, 4)).toEqual(['g1p_r0', 'g1p_r1', 'g1p_r2', 'g1p_r3']);
    expect(f.header(1).getNumber('NROT')).toBe(4);
    expect(Array.from(t.column('G2').data as Float32Array)).toEqual(Array.from(Float32Array.from(fits, (x) => x.g2)));
    expect((t.column('STATUS').data as string[])[0]).toBe('failed');
    const sm = await f.readTable(SUMMARY_EXTNAME);
    expect((sm.column('M1').data as Float64Array)[0]).toBe(s.estimates.m1.mean);
    expect((sm.column('M2_W').data as Float64Array)[0]).toBe(s.estimatesWeighted.m2.mean);
    expect((sm.column('C1_W_ERR').data as Float64Array)[0]).toBe(s.estimatesWeighted.c1.err);
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

describe('shearBlindTally', () => {
  it('counts the shear-blind sources of ok fits with sources only', () => {
    const base = { component: 1 as const, sign: 1 as const, rotation: 0, rotations: 4 as const, seed: 1, tileId: 1, row: 0, col: 0, gTrue1: 0.02, gTrue2: 0, g1: 0.02, g2: 0, g1Err: 0.01, g2Err: 0.01, converged: true, nSources: 30 };
    const fits: CalibrationFit[] = [
      { ...base, status: 'ok', nShearBlind: 3 },
      { ...base, status: 'ok', nShearBlind: 0 },
      { ...base, status: 'ok' }, // not recorded: counted as none
      { ...base, status: 'ok', nShearBlind: 1 },
      { ...base, status: 'failed', nShearBlind: 9 },
      { ...base, status: 'empty', nSources: 0, nShearBlind: 5 },
    ];
    expect(shearBlindTally(fits)).toEqual({ fits: 4, with_shear_blind: 2, sources: 4, max_per_fit: 3 });
    expect(shearBlindTally([])).toEqual({ fits: 0, with_shear_blind: 0, sources: 0, max_per_fit: 0 });
  });

  it('oversizeTally counts the sources beyond the largest stamp tier the same way', () => {
    const base = { component: 1 as const, sign: 1 as const, rotation: 0, rotations: 2 as const, seed: 1, tileId: 1, row: 0, col: 0, gTrue1: 0.02, gTrue2: 0, g1: 0.02, g2: 0, g1Err: 0.01, g2Err: 0.01, converged: true, nSources: 3 };
    const fits: CalibrationFit[] = [
      { ...base, status: 'ok', nOversize: 2 },
      { ...base, status: 'ok' },
      { ...base, status: 'ok', nOversize: 1, nShearBlind: 4 },
      { ...base, status: 'nan', nOversize: 7 },
    ];
    expect(oversizeTally(fits)).toEqual({ fits: 3, with_oversize: 2, sources: 3, max_per_fit: 2 });
    expect(shearBlindTally(fits)).toEqual({ fits: 3, with_shear_blind: 1, sources: 4, max_per_fit: 4 });
  });

  it('offModeTally counts the fits whose metadata warns of a MAP off its mode, read from the warning text', () => {
    // the warning as engine/infer/laplace.ts polishWarning writes it, through engine/outputs/quality.ts
    const warn = (sigma: number) => fitQuality({ inference: { converged: true, reason: 'precision-floor' }, shear: { g1: 0.01, g2: 0, g1_err: 0.02, g2_err: 0.02 }, warnings: [polishWarning({ applied: false, stepG: [sigma * 0.02, 0], nextStepG: null, message: 'step refused' } as never, 0.02, 0.02)!] });
    expect(warn(0.8).offModeSigma).toBeCloseTo(0.8, 2);
    const base = { component: 1 as const, sign: 1 as const, rotation: 0, rotations: 2 as const, seed: 1, tileId: 1, row: 0, col: 0, gTrue1: 0.02, gTrue2: 0, g1: 0.02, g2: 0, g1Err: 0.01, g2Err: 0.01, converged: true, nSources: 3 };
    const fits: CalibrationFit[] = [
      { ...base, status: 'ok', offModeSigma: warn(0.8).offModeSigma },
      { ...base, status: 'ok', offModeSigma: warn(2.5).offModeSigma },
      { ...base, status: 'ok' },
      { ...base, status: 'failed', offModeSigma: 9 },
    ];
    const t = offModeTally(fits);
    expect(t.fits).toBe(3);
    expect(t.off_mode).toBe(2);
    expect(t.max_sigma).toBeCloseTo(2.5, 2);
    expect(offModeTally([])).toEqual({ fits: 0, off_mode: 0, max_sigma: 0 });
  });
});

describe('estimates weighted by 1/σ̂² per set', () => {
  // four sets (2 seeds × 2 sub-tiles), each with exact m_k and c_k (ring noise cancels) and its own
  // errors: the weighted mean is Σ w m / Σ w with w = 1/σ², by hand
  const sets = [
    { seed: 1, col: 0, m: 0.01, c: 0.001, err: 0.1 },
    { seed: 1, col: 1, m: 0.05, c: -0.002, err: 0.5 },
    { seed: 2, col: 0, m: -0.02, c: 0.003, err: 0.2 },
    { seed: 2, col: 1, m: 0.04, c: 0.0, err: 1.0 },
  ];
  const g = 0.02;
  const fits: CalibrationFit[] = sets.flatMap((t) =>
    designMembers(2).map((mb) => {
      const gt: [number, number] = [mb.component === 1 ? mb.sign * g : 0, mb.component === 2 ? mb.sign * g : 0];
      const n = 0.003 * (mb.rotation - 0.5);
      return {
        ...mb, seed: t.seed, tileId: 1, row: 0, col: t.col, gTrue1: gt[0], gTrue2: gt[1],
        g1: (1 + t.m) * gt[0] + t.c + n, g2: (1 + t.m) * gt[1] + t.c - n,
        // the g2 errors twice the g1 ones: the two components get their own weights
        g1Err: t.err, g2Err: 2 * t.err, converged: true, nSources: 5, status: 'ok' as const,
      };
    }),
  );
  it('m and c: Σ w v / Σ w; unweighted: the plain mean', () => {
    const s = summarize(fits, { g, bootstrap: 200, bootstrapSeed: 1 });
    const w = sets.map((t) => 1 / t.err ** 2);
    const W = w.reduce((a, b) => a + b, 0);
    const wm = sets.reduce((a, t, i) => a + w[i] * t.m, 0) / W;
    const wc = sets.reduce((a, t, i) => a + w[i] * t.c, 0) / W;
    expect(s.estimates.m1.mean).toBeCloseTo((0.01 + 0.05 - 0.02 + 0.04) / 4, 12);
    expect(s.estimatesWeighted.m1.mean).toBeCloseTo(wm, 12);
    // the g2 weights are all 4× smaller: the same relative weights
    expect(s.estimatesWeighted.m2.mean).toBeCloseTo(wm, 12);
    expect(s.estimatesWeighted.c1.mean).toBeCloseTo(wc, 12);
    expect(s.estimatesWeighted.c2.mean).toBeCloseTo(wc, 12);
    expect(s.estimatesWeighted.m1.n).toBe(4);
    expect(s.estimatesWeighted.m1.err).toBeGreaterThan(0);
  });
  it('a set without finite errors gets no weight', () => {
    const f2 = fits.map((f) => (f.seed === 2 && f.col === 1 ? { ...f, g1Err: NaN } : f));
    const s = summarize(f2, { g, bootstrap: 200, bootstrapSeed: 1 });
    const w = sets.slice(0, 3).map((t) => 1 / t.err ** 2);
    const wm = sets.slice(0, 3).reduce((a, t, i) => a + w[i] * t.m, 0) / w.reduce((a, b) => a + b, 0);
    expect(s.estimatesWeighted.m1.mean).toBeCloseTo(wm, 12);
    expect(s.estimatesWeighted.m1.n).toBe(3);
    expect(s.estimatesWeighted.m2.n).toBe(4);
  });
});
