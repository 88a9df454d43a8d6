/**
 * `shine calibrate-compare`: two calibrations of the same simulations compared set by set
 * (engine/calibrate/compare.ts). The fabricated reports have, for seed s, rotation k and shear g
 * along i, ĝ_i = (1 + m + δ_s) g + c + ε_s + n_{s,k}: δ_s and ε_s are per-set deviations shared
 * by A and B (the same pixels), n cancels over the ring. So every set of A has m_A + δ_s, every
 * set of B m_B + δ_s, and their difference is m_B − m_A exactly, with no scatter: the oracle is
 * that arithmetic (means and sds computed here), not the code under test.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import compareCommand from '../../cli/commands/calibrate-compare.ts';
import { parseReport } from '../../engine/calibrate/include.ts';
import { compareReports } from '../../engine/calibrate/compare.ts';

const G = 0.02;
const INPUTS = {
  preset: 'ci', preset_revision: 1, tile_id: 102018211, g: G, rotations: 2, method: 'map', priors: 'default', noise: true, psf_oversampling: 1, position_angle: 7,
  sim_spergel_nu: null, sim_profile: null, config_overrides: null, sub_tiles: [[1, 1]],
};
/** Per-set deviations of the response and the additive term, shared by both folders. */
const delta = (s: number) => 0.01 * Math.sin(1.7 * s + 0.3);
const eps = (s: number) => 0.002 * Math.cos(2.3 * s);

interface Spec {
  m: number;
  c: number;
  /** Shear errors of every fit (g1, g2). */
  err?: [number, number];
  /** A member (seed, component, sign, rotation) reported failed. */
  failed?: [number, number, number, number];
}

function report(seeds: number[], o: Spec, inputs: Record<string, unknown> = {}): string {
  const [e1, e2] = o.err ?? [0.02, 0.02];
  const fits = seeds.flatMap((seed) =>
    ([1, 2] as const).flatMap((component) =>
      ([1, -1] as const).flatMap((sign) =>
        [0, 1].map((rotation) => {
          const gt = [component === 1 ? sign * G : 0, component === 2 ? sign * G : 0];
          const n = 0.03 * (rotation - 0.5) * (1 + seed / 10); // shape noise: cancels over the ring
          const resp = 1 + o.m + delta(seed);
          const bad = o.failed && o.failed.join() === [seed, component, sign, rotation].join();
          return {
            seed, component, sign, rotation, tile_id: 102018211, row: 1, col: 1, g_true1: gt[0], g_true2: gt[1],
            g1: bad ? null : resp * gt[0] + o.c + eps(seed) + n, g2: bad ? null : resp * gt[1] + o.c + eps(seed) - n,
            g1_err: e1, g2_err: e2, converged: !bad, n_sources: 30, status: bad ? 'failed' : 'ok',
          };
        }),
      ),
    ),
  );
  return JSON.stringify({
    format: 'shine-calibration', version: 1, created: '2026-12-07T00:00:00Z', software: { version: 'test' },
    inputs: { ...INPUTS, ...inputs }, config: { hash: '0123456789abcdef', fit_settings_hash: 'feedc0ffee000000' }, fits,
  });
}

const meanOf = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
const sdOf = (x: number[]) => Math.sqrt(x.reduce((a, b) => a + (b - meanOf(x)) ** 2, 0) / (x.length - 1));

describe('calibrate-compare: paired differences of two calibrations', () => {
  it('Δm and Δc are exact and their bootstrap error vanishes, while each folder’s own m scatters', () => {
    const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
    const a = parseReport(report(seeds, { m: 0.004, c: -0.001 }), 'a.json');
    const b = parseReport(report(seeds, { m: -0.0015, c: 0.0005, err: [0.021, 0.022] }, { config_overrides: { hash: 'abc', file: 'mask2x.yaml' } }), 'b.json');
    const c = compareReports(a, b, { bootstrap: 500 });
    expect(c.pairedSets).toBe(8);
    expect(c.seeds).toEqual(seeds);
    expect([c.onlyA, c.onlyB, c.incomplete]).toEqual([0, 0, 0]);
    const d = seeds.map(delta);
    for (const q of ['m1', 'm2'] as const) {
      const v = c.quantities[q];
      expect(v.a).toBeCloseTo(0.004 + meanOf(d), 12);
      expect(v.b).toBeCloseTo(-0.0015 + meanOf(d), 12);
      expect(v.delta).toBeCloseTo(-0.0055, 12);
      expect(v.aSdPerSet).toBeCloseTo(sdOf(d), 10);
      expect(v.deltaSdPerSet).toBeLessThan(1e-12);
      expect(v.deltaErr).toBeLessThan(1e-12);
      // each folder alone: the bootstrap error of a mean of 8 sets of scatter sd(δ), ≈ sd/√8
      expect(v.aErr).toBeGreaterThan(0.4 * sdOf(d) / Math.sqrt(8));
      expect(v.aErr).toBeLessThan(1.6 * sdOf(d) / Math.sqrt(8));
      expect(v.bErr).toBeCloseTo(v.aErr, 10); // the same draws, the same per-set scatter
    }
    const e = seeds.map(eps);
    expect(c.quantities.c1.delta).toBeCloseTo(0.0015, 12);
    expect(c.quantities.c2.a).toBeCloseTo(-0.001 + meanOf(e), 12);
    expect(c.errorRatio.g1).toEqual({ median: expect.closeTo(1.05, 12), n: 64 });
    expect(c.errorRatio.g2.median).toBeCloseTo(1.1, 12);
    expect(c.setsFactor).toBeCloseTo(1.075 ** 2, 12);
    expect(c.fits.b).toEqual({ attempted: 64, usable: 64, withErrors: 64 });
  });

  it('compares only the sets complete in both', () => {
    const a = parseReport(report([1, 2, 3, 4], { m: 0, c: 0 }), 'a.json');
    const b = parseReport(report([2, 3, 4, 5], { m: 0.01, c: 0, failed: [3, 2, -1, 1] }), 'b.json');
    const c = compareReports(a, b, { bootstrap: 100 });
    expect(c.seeds).toEqual([2, 4]);
    expect([c.pairedSets, c.onlyA, c.onlyB, c.incomplete]).toEqual([2, 1, 1, 1]);
    expect(c.quantities.m1.a).toBeCloseTo(meanOf([2, 4].map(delta)), 12);
    expect(c.quantities.m2.delta).toBeCloseTo(0.01, 12);
    expect(c.fits.b).toEqual({ attempted: 32, usable: 31, withErrors: 31 });
    expect(c.errorRatio.g1.n).toBe(16); // the fits of the paired sets only
  });

  it('refuses calibrations of different simulations and folders with no set in common', () => {
    const a = parseReport(report([1, 2], { m: 0, c: 0 }), 'a.json');
    expect(() => compareReports(a, parseReport(report([1, 2], { m: 0, c: 0 }, { noise: false }), 'nf.json'))).toThrow(/a\.json and nf\.json are calibrations of different simulations \(noise true in A, false in B\)/);
    expect(() => compareReports(a, parseReport(report([1, 2], { m: 0, c: 0 }, { psf_oversampling: 3 }), 'q3.json'))).toThrow(/psf_oversampling 1 in A, 3 in B/);
    expect(() => compareReports(a, parseReport(report([3], { m: 0, c: 0 }), 'b.json'))).toThrow(/no set \(seed, sub-tile\) complete in both.*seeds 1,2 and 3/);
    // the fit may differ in anything: method, priors, overrides
    expect(compareReports(a, parseReport(report([1, 2], { m: 0, c: 0 }, { priors: 'shine', method: 'nuts' }), 'b.json'), { bootstrap: 10 }).pairedSets).toBe(2);
  });

  it('the command prints the table, writes the JSON and names a bad argument', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shine-cal-cmp-'));
    writeFileSync(join(dir, 'a.json'), report([1, 2, 3], { m: 0.002, c: 0 }));
    writeFileSync(join(dir, 'b.json'), report([1, 2, 3], { m: 0.0005, c: 0, err: [0.03, 0.03] }));
    let r = await runCli(compareCommand, [join(dir, 'a.json'), join(dir, 'b.json'), '--out', join(dir, 'cmp.json'), '--bootstrap', '200'], {});
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/note: A and B were fitted with the same settings/);
    expect(r.out).toMatch(/paired: 3 set\(s\) complete in both \(seeds 1,2,3\)/);
    expect(r.out).toMatch(/^m1 +[+-]0\.\d{5} ± 0\.\d{5} +[+-]0\.\d{5} ± 0\.\d{5} +-0\.00150 ± 0\.00000/m);
    expect(r.out).toMatch(/g1 1\.5000 \(24\), g2 1\.5000 \(24\); B needs 2\.250× the sets of A/);
    const j = JSON.parse(readFileSync(join(dir, 'cmp.json'), 'utf8'));
    expect(j.format).toBe('shine-calibration-comparison');
    expect(j.comparison.quantities.m1.delta).toBeCloseTo(-0.0015, 12);
    expect(j.bootstrap).toBe(200);
    // one seed: no bootstrap error, printed as n/a (not a clipped "/a")
    writeFileSync(join(dir, 'a1.json'), report([1], { m: 0.002, c: 0 }));
    writeFileSync(join(dir, 'b1.json'), report([1], { m: 0.0005, c: 0 }));
    r = await runCli(compareCommand, [join(dir, 'a1.json'), join(dir, 'b1.json'), '--bootstrap', '200'], {});
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^m1 +[+-]0\.\d{5} ± n\/a +[+-]0\.\d{5} ± n\/a +-0\.00150 ± n\/a +n\/a, n\/a, n\/a$/m);
    // the same fit settings on pixels with and without the undetected objects: the note says which
    writeFileSync(join(dir, 'b1-omit.json'), report([1], { m: 0.0005, c: 0 }, { sim_omit_undetected: true }));
    r = await runCli(compareCommand, [join(dir, 'a1.json'), join(dir, 'b1-omit.json'), '--bootstrap', '200'], {});
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/note: the objects no catalog lists are in the pixels in A and omitted in B/);
    expect(r.out).not.toMatch(/fitted with the same settings/);
    r = await runCli(compareCommand, [join(dir, 'a.json')], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^shine: expected two calibration reports \(A B\), got 1/);
    r = await runCli(compareCommand, [join(dir, 'a.json'), join(dir, 'none')], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^shine: cannot read .*none\/calibration\.json/);
    writeFileSync(join(dir, 'bad.json'), '{"format": "other"}');
    r = await runCli(compareCommand, [join(dir, 'a.json'), join(dir, 'bad.json')], {});
    expect(r.out).toMatch(/^shine: .*bad\.json: not a shine calibrate report/);
  });
});
