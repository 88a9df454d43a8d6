/**
 * `shine calibrate --include`: other folders' reports pooled into one (engine/calibrate/include.ts).
 * The fabricated fits have ĝ = (1 + m_s) g + c_s + n_{s,k}, with n shared by the ±g fits of a
 * rotation k and cancelling over the ring, so each seed's set has exactly m_s and c_s and the
 * pooled m and c are the plain means of the seeds' values (the estimator averages sets): the
 * oracle is that arithmetic, not the code under test.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.ts';
import calibrate from '../../cli/commands/calibrate.ts';
import { checkDisjointSeeds, parseIncludedReport, settingsDiff, type PooledSettings } from '../../engine/calibrate/include.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const G = 0.02;
const INPUTS = {
  preset: 'ci', tile_id: 102018211, g: G, rotations: 2, method: 'map', priors: 'default', noise: true, psf_oversampling: 1, position_angle: 7,
  sim_spergel_nu: null, sim_profile: null, config_overrides: null, sub_tiles: [[1, 1]],
};
const MINE: PooledSettings = {
  preset: 'ci', preset_revision: 1, g: G, rotations: 2, method: 'map', priors: 'default', noise: true, psf_oversampling: 1, position_angle: 7,
  sim_spergel_nu: null, sim_profile: null, sim_omit_undetected: false, overrides_hash: null, sub_tiles: [[1, 1]],
};

/** A calibration.json with one complete 2-ring set per seed: seed s has m_s and c_s on both components. */
function report(seeds: Array<{ seed: number; m: number; c: number }>, inputs: Record<string, unknown> = {}): string {
  const fits = seeds.flatMap(({ seed, m, c }) =>
    ([1, 2] as const).flatMap((component) =>
      ([1, -1] as const).flatMap((sign) =>
        [0, 1].map((rotation) => {
          const gt = [component === 1 ? sign * G : 0, component === 2 ? sign * G : 0];
          const n = 0.001 * (rotation - 0.5) * seed; // shared by +g and −g, cancels over the ring
          return {
            seed, component, sign, rotation, tile_id: 102018211, row: 1, col: 1, g_true1: gt[0], g_true2: gt[1],
            g1: (1 + m) * gt[0] + c + n, g2: (1 + m) * gt[1] + c - n, g1_err: 0.01, g2_err: 0.01, converged: true, n_sources: 30, status: 'ok',
            map_g1: gt[0], map_g2: gt[1],
          };
        }),
      ),
    ),
  );
  return JSON.stringify({
    format: 'shine-calibration', version: 1, created: '2026-12-07T00:00:00Z', software: { version: 'test' },
    inputs: { ...INPUTS, ...inputs }, config: { hash: '0123456789abcdef' }, results: { shear_estimators: { laplace_marginal: fits.length } }, fits,
  });
}

/** A folder whose own seed (9) was never simulated: its fits are `missing`, the included ones count. */
function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'shine-cal-inc-'));
  writeFileSync(join(dir, 'calibrate_run.json'), JSON.stringify({
    format: 'shine-calibrate-run', version: 1, preset: 'ci', g: G, rotations: 2, method: 'map', priors: 'default', noise: true, psf_oversampling: 1,
    position_angle: 7, overrides: null, seeds: [9], sub_tiles: [[1, 1]], bootstrap: 200, bootstrap_seed: 1,
  }));
  return dir;
}

describe('shine calibrate --include', () => {
  it('pools two reports: m and c are the means of the seeds’ sets, the fits and seeds are listed', async () => {
    const dir = folder();
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    writeFileSync(a, report([{ seed: 1, m: 0.01, c: 0.001 }, { seed: 2, m: 0.03, c: -0.002 }]));
    writeFileSync(b, report([{ seed: 3, m: -0.01, c: 0.004 }]));
    const r = await runCli(calibrate, ['--report-only', '--out', dir, '--include', `${a},${b}`, '--json'], {});
    expect(r.code, r.out).toBe(0);
    const j = JSON.parse(readFileSync(join(dir, 'calibration.json'), 'utf8'));
    expect(j.inputs.seeds).toEqual([1, 2, 3, 9]);
    expect(j.inputs.folder_seeds).toEqual([9]);
    expect(j.inputs.included.map((x: { seeds: number[]; fits: number }) => [x.seeds, x.fits])).toEqual([[[1, 2], 16], [[3], 8]]);
    expect(j.fits).toHaveLength(32);
    expect(j.fits.filter((f: { status: string }) => f.status === 'missing')).toHaveLength(8);
    const e = j.results.estimates;
    expect(e.m1.n).toBe(3);
    expect(e.m1.mean).toBeCloseTo((0.01 + 0.03 - 0.01) / 3, 12);
    expect(e.m2.mean).toBeCloseTo((0.01 + 0.03 - 0.01) / 3, 12);
    expect(e.c1.mean).toBeCloseTo((0.001 - 0.002 + 0.004) / 3, 12);
    expect(e.c2.mean).toBeCloseTo((0.001 - 0.002 + 0.004) / 3, 12);
    expect(j.results.shear_estimators).toEqual({ laplace_marginal: 24 });
    // the MAP's shear came along (map_g = truth here: m = c = 0 exactly)
    expect(j.results.map_of_same_fits.estimates.m1.mean).toBeCloseTo(0, 12);
    expect(r.out).toContain('"seeds":"1-3,9"');
  });

  it('refuses a seed in two places, other settings, and files that are not reports — one line, nothing written', async () => {
    const dir = folder();
    const a = join(dir, 'a.json');
    writeFileSync(a, report([{ seed: 1, m: 0, c: 0 }, { seed: 2, m: 0, c: 0 }]));
    const cases: Array<[string, string, RegExp]> = [
      ['overlap', report([{ seed: 2, m: 0, c: 0 }]), /^shine: seed 2 is both in .*a\.json and in .*x\.json: a seed is one set of simulations and is counted once/],
      ['own seed', report([{ seed: 9, m: 0, c: 0 }]), /^shine: seed 9 is both in this folder \(.*\) and in .*x\.json/],
      ['other g', report([{ seed: 5, m: 0, c: 0 }], { g: 0.05 }), /x\.json is a calibration with other settings \(g 0\.02 here, 0\.05 there\): reports are pooled only with the same settings$/],
      ['other noise and PSF', report([{ seed: 5, m: 0, c: 0 }], { noise: false, psf_oversampling: 3 }), /other settings \(noise true here, false there; psf_oversampling 1 here, 3 there\)/],
      ['other preset revision', report([{ seed: 5, m: 0, c: 0 }], { preset_revision: 2 }), /other settings \(preset_revision 1 here, 2 there\)/],
      ['not JSON', '{"format": ', /x\.json: not JSON/],
      ['not a report', JSON.stringify({ format: 'shine-calibrate-run' }), /x\.json: not a shine calibrate report/],
      ['bad fit', report([{ seed: 5, m: 0, c: 0 }]).replace('"component":1', '"component":3'), /x\.json: fits\[0\]\.component is 3, not a valid value/],
    ];
    for (const [name, text, re] of cases) {
      const x = join(dir, 'x.json');
      writeFileSync(x, text);
      const r = await runCli(calibrate, ['--report-only', '--out', dir, '--include', `${a},${x}`], {});
      expect(r.code, name).toBe(1);
      expect(r.out.split('\n'), name).toHaveLength(1);
      expect(r.out, name).toMatch(re);
      expect(existsSync(join(dir, 'calibration.json')), name).toBe(false);
    }
    const r = await runCli(calibrate, ['--report-only', '--out', dir, '--include', join(dir, 'none.json')], {});
    expect(r.out).toMatch(/^shine: --include .*none\.json: cannot read it/);
  });

  it('the report kept in docs/results, pooled into an empty folder, gives back its own results', async () => {
    // that report's numbers were computed from the fits' products on disk; here from its fits list
    const file = join(REPO, 'docs', 'results', 'ci-noisy-seeds15-20.json');
    const own = JSON.parse(readFileSync(file, 'utf8'));
    const dir = mkdtempSync(join(tmpdir(), 'shine-cal-inc-'));
    writeFileSync(join(dir, 'calibrate_run.json'), JSON.stringify({
      format: 'shine-calibrate-run', version: 1, preset: 'ci', g: 0.02, rotations: 2, method: 'map', priors: 'default', noise: true, psf_oversampling: 1,
      position_angle: 7, overrides: null, seeds: [21], sub_tiles: [[1, 1]], bootstrap: own.inputs.bootstrap.replicates, bootstrap_seed: own.inputs.bootstrap.seed,
    }));
    const r = await runCli(calibrate, ['--report-only', '--out', dir, '--include', file, '--json'], {});
    expect(r.code, r.out).toBe(0);
    const j = JSON.parse(readFileSync(join(dir, 'calibration.json'), 'utf8'));
    for (const q of ['m1', 'm2', 'c1', 'c2', 'leak1to2', 'leak2to1']) {
      expect(j.results.estimates[q].mean, q).toBeCloseTo(own.results.estimates[q].mean, 12);
      expect(j.results.estimates[q].err, q).toBeCloseTo(own.results.estimates[q].err, 12);
    }
    expect(j.results.pulls_by_realisation.all.sd).toBeCloseTo(own.results.pulls_by_realisation.all.sd, 12);
    expect(j.results.map_of_same_fits.estimates.m1.mean).toBeCloseTo(own.results.map_of_same_fits.estimates.m1.mean, 12);
    expect(j.results.fits.byStatus).toEqual({ ...own.results.fits.byStatus, missing: 8 });
  });

  it('the minitile revision-2 report kept in docs/results, alone in a new folder: its own m, weighted m, pulls, and revision', async () => {
    const file = join(REPO, 'docs', 'results', 'minitile-r2-noisy-seeds1-4.json');
    const own = JSON.parse(readFileSync(file, 'utf8'));
    expect(own.inputs.preset_revision).toBe(2);
    const dir = join(mkdtempSync(join(tmpdir(), 'shine-cal-inc-')), 'new');
    const r = await runCli(calibrate, ['--report-only', '--out', dir, '--include', file, '--json'], {});
    expect(r.code, r.out).toBe(0);
    const j = JSON.parse(readFileSync(join(dir, 'calibration.json'), 'utf8'));
    expect(j.inputs.preset_revision).toBe(2);
    for (const q of ['m1', 'm2', 'c1', 'c2']) {
      expect(j.results.estimates[q].mean, q).toBeCloseTo(own.results.estimates[q].mean, 12);
      expect(j.results.estimates_weighted[q].mean, q).toBeCloseTo(own.results.estimates_weighted[q].mean, 12);
    }
    expect(j.results.pulls_by_realisation.all.sd).toBeCloseTo(own.results.pulls_by_realisation.all.sd, 12);
    expect(j.results.oversize_stamps).toEqual(own.results.oversize_stamps);
    expect(j.results.fits.fracErrFinite).toBe(1);
  });

  it('--report-only --include into a new folder: a report of the included fits alone, the first one’s settings', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shine-cal-inc-'));
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.json');
    writeFileSync(a, report([{ seed: 1, m: 0.02, c: 0.001 }]));
    writeFileSync(b, JSON.stringify({ ...JSON.parse(report([{ seed: 2, m: 0.04, c: 0.003 }])), config: { hash: 'fedcba9876543210' } }));
    const out = join(dir, 'pooled');
    let r = await runCli(calibrate, ['--report-only', '--out', out, '--include', `${a},${b}`, '--seeds', '3'], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^shine: --seeds: .*pooled ran nothing .*leave --seeds out$/);
    r = await runCli(calibrate, ['--report-only', '--out', out, '--include', `${a},${b}`], {});
    expect(r.code, r.out).toBe(0);
    const j = JSON.parse(readFileSync(join(out, 'calibration.json'), 'utf8'));
    expect(j.inputs.seeds).toEqual([1, 2]);
    expect(j.inputs.folder_seeds).toEqual([]);
    expect([j.inputs.preset, j.inputs.g, j.inputs.rotations, j.inputs.noise]).toEqual(['ci', G, 2, true]);
    expect(j.fits).toHaveLength(16);
    expect(j.results.estimates.m1.mean).toBeCloseTo(0.03, 12);
    expect(j.results.estimates.c2.mean).toBeCloseTo(0.002, 12);
    // b's configuration hash differs from a's: pooled, with a warning naming both
    expect(j.results.warnings.join('\n')).toMatch(/b\.json \(seeds 2\) was fitted with derived configuration fedcba9876543210, .*a\.json with 0123456789abcdef/);
    expect(r.out).toMatch(/WARNING: .*b\.json \(seeds 2\)/);
    expect(existsSync(join(out, 'calibrate_run.json'))).toBe(false);
    // the same text resolved with other software defaults (fit settings hash): pooled with a warning;
    // a report that does not record it (made before) is not compared
    const c = join(dir, 'c.json');
    const d = join(dir, 'd.json');
    const e = join(dir, 'e.json');
    const withFit = (seed: number, h?: string) => {
      const x = JSON.parse(report([{ seed, m: 0, c: 0 }]));
      if (h) x.config.fit_settings_hash = h;
      return JSON.stringify(x);
    };
    writeFileSync(c, withFit(4, '1111222233334444'));
    writeFileSync(d, withFit(5, '5555666677778888'));
    writeFileSync(e, withFit(6));
    const out2 = join(dir, 'pooled2');
    r = await runCli(calibrate, ['--report-only', '--out', out2, '--include', `${c},${d},${e}`], {});
    expect(r.code, r.out).toBe(0);
    const j2 = JSON.parse(readFileSync(join(out2, 'calibration.json'), 'utf8'));
    expect(j2.config.fit_settings_hash).toBe('1111222233334444');
    const w = j2.results.warnings.join('\n');
    expect(w).toMatch(/d\.json \(seeds 5\) was fitted with fit settings 5555666677778888, .*c\.json with 1111222233334444/);
    expect(w).not.toMatch(/e\.json \(seeds 6\) was fitted with fit settings/);
  });

  it('the pure parts: settings compared key by key, old reports read with their defaults', () => {
    expect(settingsDiff(MINE, MINE)).toEqual([]);
    expect(settingsDiff(MINE, { ...MINE, sub_tiles: 'all', overrides_hash: 'abc' })).toEqual(['overrides_hash none here, abc there', 'sub_tiles [[1,1]] here, all there']);
    // a report without `rotations`, `psf_oversampling` or `preset_revision` predates them: 2
    // rotations, native PSF, revision 1
    const old = JSON.parse(report([{ seed: 4, m: 0, c: 0 }]));
    delete old.inputs.rotations;
    delete old.inputs.psf_oversampling;
    expect(old.inputs.preset_revision).toBeUndefined();
    expect(() => parseIncludedReport(JSON.stringify(old), 'old.json', { ...MINE, preset_revision: 2 })).toThrow(/preset_revision 2 here, 1 there/);
    const got = parseIncludedReport(JSON.stringify(old), 'old.json', MINE);
    expect(got.seeds).toEqual([4]);
    expect(got.fits.every((f) => f.rotations === 2)).toBe(true);
    expect(got.configHash).toBe('0123456789abcdef');
    // null (JSON's NaN) comes back as NaN
    old.fits[0].g1_err = null;
    expect(parseIncludedReport(JSON.stringify(old), 'old.json', MINE).fits[0].g1Err).toBeNaN();
    expect(() => checkDisjointSeeds([{ what: 'A', seeds: [1, 2] }, { what: 'B', seeds: [3] }])).not.toThrow();
    expect(() => checkDisjointSeeds([{ what: 'A', seeds: [1, 2] }, { what: 'B', seeds: [2] }])).toThrow(/seed 2 is both in A and in B/);
  });
});
