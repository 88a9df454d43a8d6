/**
 * `shine calibrate` end to end on the real pipeline, small enough for CI (2 cores, < 3 min):
 * minitile, noise-free, seed 1, two one-source sub-tiles, 2 Stage-2 processes at once, with
 * `--rotations 2` (8 simulations, 16 fits: the default 4-ring doubles both and would not fit the
 * time on a loaded 2-core machine; the 4-ring's estimator is tested in stats.test.ts).
 * calibration.fits is read by astropy (with CI=true a missing astropy fails the test): one row per
 * fit whose G1/G2 are the sub-tile shear products' (also read by astropy); m, c and the pulls of
 * calibration.json are recomputed here from those rows; a second invocation refits nothing.
 */
import { describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode } from 'fast-png';
import { parse as parseYaml } from 'yaml';
import { designMembers, memberLabel, memberRotationDeg } from '../../engine/calibrate/design.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SUBTILES: Array<[number, number]> = [[0, 2], [2, 0]];
const TILE = 102018211;
const G = 0.02;
const MEMBERS = designMembers(2);

/** A python with astropy, or null (the FITS tests' convention: Debian's /usr/bin/python3 first). */
function astropyPython(): string | null {
  for (const p of [process.env.SHINE_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!p) continue;
    try {
      execFileSync(p, ['-c', 'import astropy'], { stdio: 'ignore' });
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function shine(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile('npx', ['tsx', 'cli/shine.ts', 'calibrate', ...args], { cwd: REPO, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const PY = `
import json, sys
from astropy.io import fits
out = {}
with fits.open(sys.argv[1]) as h:
    t = h['SHEARFITS'].data
    out['rows'] = [dict(seed=int(r['SEED']), sim=str(r['SIM']).strip(), component=int(r['COMPONENT']), sign=int(r['SIGN']),
                        rotated=bool(r['ROTATED']), rotation=float(r['ROTATION']), tile=int(r['TILE_ID']), row=int(r['SUBTILE_ROW']), col=int(r['SUBTILE_COL']),
                        gt1=float(r['G_TRUE1']), gt2=float(r['G_TRUE2']), g1=float(r['G1']), g2=float(r['G2']),
                        e1=float(r['G1_ERR']), e2=float(r['G2_ERR']), converged=bool(r['CONVERGED']), n=int(r['N_SOURCES']),
                        status=str(r['STATUS']).strip(), p1=float(r['PULL1']), p2=float(r['PULL2'])) for r in t]
    s = h['SUMMARY'].data[0]
    out['summary'] = {k: float(s[k]) for k in ['M1', 'M2', 'C1', 'C2', 'LEAK12', 'LEAK21', 'PULL_MEAN', 'PULL_SD', 'PULL_SD_REAL', 'N_PULLS_REAL', 'N_COMPLETE', 'N_SETS', 'M1_W', 'M2_W']}
    out['nrot'] = int(h['SHEARFITS'].header['NROT'])
    h.verify('exception')
shear = {}
for p in sys.argv[2:]:
    with fits.open(p) as h:
        r = h['SHEAR'].data[0]
        shear[p] = dict(g1=float(r['G1']), g2=float(r['G2']), e1=float(r['G1_ERR']), e2=float(r['G2_ERR']), n=int(r['N_SOURCES']), converged=bool(r['CONVERGED']))
out['shear'] = shear
print(json.dumps(out))
`;

const meanOf = (v: number[]) => v.reduce((acc, x) => acc + x, 0) / v.length;

describe('shine calibrate end to end (minitile, noise-free, 1 seed, 2 sub-tiles)', () => {
  it('simulates, fits, reports; astropy agrees; a re-run refits nothing', async () => {
    const py = astropyPython();
    if (!py && process.env.CI) throw new Error('python3 with astropy is required on CI (apt-get install python3-astropy, or set SHINE_PYTHON)');
    const out = join(mkdtempSync(join(tmpdir(), 'shine-cal-e2e-')), 'cal');
    const args = ['--preset', 'minitile', '--seeds', '1', '--noise-free', '--sub-tiles', SUBTILES.map((s) => s.join(',')).join(';'), '--jobs', '2', '--rotations', '2', '--out', out, '--json'];
    const t0 = performance.now();
    const r1 = await shine(args);
    const first = (performance.now() - t0) / 1000;
    expect(r1.code, r1.stderr).toBe(0);
    const line1 = JSON.parse(r1.stdout.trim());
    expect(r1.stdout.trim().split('\n')).toHaveLength(1);
    expect(line1.this_run).toMatchObject({ simulated: 8, fitted: 16, fits_reused: 0, fits_failed: 0 });
    // every fit's shear.estimator, tallied: today's default
    expect(line1.shear_estimators).toEqual({ laplace_marginal: 16 });

    // every output
    for (const f of ['calibrate_run.json', 'calibration.json', 'calibration.fits', 'calibration.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const png = decode(readFileSync(join(out, 'calibration.png')));
    expect(png.width).toBeGreaterThan(1000);
    const sims = MEMBERS.map((m) => join(out, 'sims', 'seed_1', memberLabel(m)));
    for (const d of sims) {
      expect(existsSync(join(d, 'simulation.json'))).toBe(true);
      expect(existsSync(join(d, 'config.calibrate.yaml'))).toBe(true);
    }
    const shearFiles = sims.flatMap((d) => SUBTILES.map(([r, c]) => join(d, 'results', `shear_${TILE}_${r}_${c}.fits`)));
    for (const f of shearFiles) expect(existsSync(f), f).toBe(true);
    const mtimes = shearFiles.map((f) => statSync(f).mtimeMs);

    const j = JSON.parse(readFileSync(join(out, 'calibration.json'), 'utf8'));
    expect(j.inputs).toMatchObject({ preset: 'minitile', seeds: [1], g: G, rotations: 2, method: 'map', priors: 'default', noise: false });
    expect(line1.rotations).toBe(2);
    expect(JSON.parse(readFileSync(join(out, 'calibrate_run.json'), 'utf8')).rotations).toBe(2);
    for (const m of MEMBERS) {
      const marker = JSON.parse(readFileSync(join(out, 'sims', 'seed_1', memberLabel(m), 'simulation.json'), 'utf8'));
      expect(marker.ellipticity_rotation_deg).toBe(memberRotationDeg(m));
    }
    expect(j.config.hash).toMatch(/^[0-9a-f]{16}$/);
    expect((parseYaml(j.config.text) as { gal?: { priors?: unknown } }).gal?.priors).toBeUndefined(); // --priors default
    expect(j.config.effective_priors.shear).toBeDefined();
    expect(j.fits).toHaveLength(16);
    expect(j.results.n_sets).toBe(2);

    if (!py) return; // astropy checks need it (never skipped on CI: see above)
    const a = JSON.parse(execFileSync(py, ['-c', PY, join(out, 'calibration.fits'), ...shearFiles], { encoding: 'utf8' }));
    const rows = a.rows as Array<Record<string, number | string | boolean>>;
    expect(rows).toHaveLength(8 * SUBTILES.length);
    // G1/G2 (and errors, counts) are those of the sub-tile shear products
    for (const row of rows) {
      const file = join(out, 'sims', `seed_${row.seed}`, String(row.sim), 'results', `shear_${TILE}_${row.row}_${row.col}.fits`);
      const s = a.shear[file];
      expect(s, file).toBeDefined();
      expect(row.g1).toBe(s.g1);
      expect(row.g2).toBe(s.g2);
      expect(row.e1).toBe(s.e1);
      expect(row.e2).toBe(s.e2);
      expect(row.n).toBe(s.n);
      expect(row.converged).toBe(s.converged);
      expect(row.status).toBe('ok');
      expect(row.tile).toBe(TILE);
      const m = MEMBERS.find((x) => memberLabel(x) === row.sim)!;
      expect([row.component, row.sign, row.rotated, row.rotation]).toEqual([m.component, m.sign, m.rotation > 0, memberRotationDeg(m)]);
      expect([row.gt1, row.gt2]).toEqual(m.component === 1 ? [m.sign * G, 0] : [0, m.sign * G]);
    }
    // m, c, leakage recomputed from the rows
    const sets = SUBTILES.map(([r, c]) => {
      const get = (sim: string, k: 'g1' | 'g2') => Number(rows.find((x) => x.sim === sim && x.row === r && x.col === c)![k]);
      const avg = (i: 1 | 2, s: 'p' | 'm', k: 'g1' | 'g2') => (get(`g${i}${s}_r0`, k) + get(`g${i}${s}_r1`, k)) / 2;
      return {
        m1: (avg(1, 'p', 'g1') - avg(1, 'm', 'g1')) / (2 * G) - 1,
        m2: (avg(2, 'p', 'g2') - avg(2, 'm', 'g2')) / (2 * G) - 1,
        c1: (avg(1, 'p', 'g1') + avg(1, 'm', 'g1')) / 2,
        c2: (avg(2, 'p', 'g2') + avg(2, 'm', 'g2')) / 2,
        l12: (avg(1, 'p', 'g2') - avg(1, 'm', 'g2')) / (2 * G),
        l21: (avg(2, 'p', 'g1') - avg(2, 'm', 'g1')) / (2 * G),
      };
    });
    const mean = (k: keyof (typeof sets)[0]) => sets.reduce((acc, s) => acc + s[k], 0) / sets.length;
    const E = j.results.estimates;
    for (const [k, q] of [['m1', 'm1'], ['m2', 'm2'], ['c1', 'c1'], ['c2', 'c2'], ['l12', 'leak1to2'], ['l21', 'leak2to1']] as const) {
      expect(E[q].mean, q).toBeCloseTo(mean(k), 12);
      expect(E[q].n).toBe(2);
      expect(E[q].err).toBeNull(); // one seed: no bootstrap error (NaN → null in JSON)
    }
    // the MAP's shear of the same fits (each fit's metadata shear.laplace_marginal.map_g): its m
    // and c recomputed here, and the two estimators not the same numbers
    const mapG = (sim: string, r: number, c: number) =>
      (parseYaml(readFileSync(join(out, 'sims', 'seed_1', sim, 'results', `metadata_${TILE}_${r}_${c}.yaml`), 'utf8')) as { shear: { laplace_marginal: { map_g: [number, number] } } }).shear.laplace_marginal.map_g;
    const mapSets = SUBTILES.map(([r, c]) => {
      const avg = (i: 1 | 2, s: 'p' | 'm', k: 0 | 1) => (mapG(`g${i}${s}_r0`, r, c)[k] + mapG(`g${i}${s}_r1`, r, c)[k]) / 2;
      return { m1: (avg(1, 'p', 0) - avg(1, 'm', 0)) / (2 * G) - 1, m2: (avg(2, 'p', 1) - avg(2, 'm', 1)) / (2 * G) - 1, c1: (avg(1, 'p', 0) + avg(1, 'm', 0)) / 2, c2: (avg(2, 'p', 1) + avg(2, 'm', 1)) / 2 };
    });
    for (const q of ['m1', 'm2', 'c1', 'c2'] as const) {
      const want = mapSets.reduce((acc, x) => acc + x[q], 0) / mapSets.length;
      expect(j.results.map_of_same_fits.estimates[q].mean, `MAP ${q}`).toBeCloseTo(want, 12);
      expect(line1.map_of_same_fits[q].mean, `MAP ${q}`).toBeCloseTo(want, 12);
    }
    expect(j.results.map_of_same_fits.estimates.m1.mean).not.toBe(E.m1.mean);
    expect(j.fits[0].map_g1).toEqual(expect.any(Number));
    // shear-blind sources (masking.covered_centres): the tally counts each fit's metadata list
    let blindSum = 0;
    let blindFits = 0;
    for (const m of MEMBERS)
      for (const [r, c] of SUBTILES) {
        const meta = parseYaml(readFileSync(join(out, 'sims', 'seed_1', memberLabel(m), 'results', `metadata_${TILE}_${r}_${c}.yaml`), 'utf8')) as { unmodelled?: { shear_blind?: string[] } };
        const n = meta.unmodelled?.shear_blind?.length ?? 0;
        blindSum += n;
        if (n) blindFits++;
        expect(j.fits.find((x: { sim: string; row: number; col: number }) => x.sim === memberLabel(m) && x.row === r && x.col === c).n_shear_blind).toBe(n);
      }
    expect(j.results.shear_blind).toMatchObject({ fits: 16, sources: blindSum, with_shear_blind: blindFits });
    expect(line1.shear_blind).toEqual(j.results.shear_blind);
    // minitile revision 2 keeps every galaxy inside its 64-px stamp: each fit's metadata lists none
    expect(j.results.oversize_stamps).toEqual({ fits: 16, with_oversize: 0, sources: 0, max_per_fit: 0 });
    // the report's fit settings hash is the one every fit recorded (Stage 2 writes it)
    const meta0 = parseYaml(readFileSync(join(out, 'sims', 'seed_1', memberLabel(MEMBERS[0]), 'results', `metadata_${TILE}_${SUBTILES[0][0]}_${SUBTILES[0][1]}.yaml`), 'utf8')) as { inputs: { fit_settings_hash: string } };
    expect(j.config.fit_settings_hash).toMatch(/^[0-9a-f]{16}$/);
    expect(j.config.fit_settings_hash).toBe(meta0.inputs.fit_settings_hash);
    for (const m of MEMBERS)
      for (const [r, c] of SUBTILES) {
        const meta = parseYaml(readFileSync(join(out, 'sims', 'seed_1', memberLabel(m), 'results', `metadata_${TILE}_${r}_${c}.yaml`), 'utf8')) as { oversize_stamps?: unknown[] };
        expect(meta.oversize_stamps).toEqual([]);
      }

    // the estimator itself (noise-free, shape noise cancelled): the default priors must not
    // shrink the shear — SHINE's N(0, 0.05) shear prior gives m ≈ −0.5 on these 1–2-source
    // sub-tiles; the bounds leave room for the 2-rotation ring's O(e²) residual
    for (const q of ['m1', 'm2'] as const) expect(Math.abs(E[q].mean), q).toBeLessThan(0.05);
    for (const q of ['c1', 'c2'] as const) expect(Math.abs(E[q].mean), q).toBeLessThan(0.005);
    expect(a.summary.M1).toBeCloseTo(E.m1.mean, 14);
    expect(a.summary.C2).toBeCloseTo(E.c2.mean, 14);
    // weighted m (M1_W, M2_W): each sub-tile's m from the rows astropy read, weighted by the mean
    // 1/σ̂² of its fits' component
    for (const [k, col] of [[1, 'M1_W'], [2, 'M2_W']] as const) {
      let num = 0;
      let den = 0;
      for (const [r, c] of SUBTILES) {
        const mine = rows.filter((x) => Number(x.row) === r && Number(x.col) === c);
        const ge = (x: (typeof mine)[number]) => Number(k === 1 ? x.g1 : x.g2);
        const avg = (sign: number) => meanOf(mine.filter((x) => Number(x.component) === k && Number(x.sign) === sign).map(ge));
        const mk = (avg(1) - avg(-1)) / (2 * G) - 1;
        const w = meanOf(mine.map((x) => 1 / Number(k === 1 ? x.e1 : x.e2) ** 2));
        num += w * mk;
        den += w;
      }
      expect(a.summary[col], col).toBeCloseTo(num / den, 6);
    }
    expect(a.summary.N_COMPLETE).toBe(2);
    expect(a.nrot).toBe(2);
    expect(line1.m1).toBeCloseTo(E.m1.mean, 14);
    // pulls from the rows
    const pulls = rows.flatMap((x) => [(Number(x.g1) - Number(x.gt1)) / Number(x.e1), (Number(x.g2) - Number(x.gt2)) / Number(x.e2)]);
    const pm = pulls.reduce((s, v) => s + v, 0) / pulls.length;
    const psd = Math.sqrt(pulls.reduce((s, v) => s + (v - pm) ** 2, 0) / (pulls.length - 1));
    expect(j.results.pulls.all.n).toBe(32);
    expect(j.results.pulls.all.mean).toBeCloseTo(pm, 10);
    expect(j.results.pulls.all.sd).toBeCloseTo(psd, 10);
    expect(a.summary.PULL_SD).toBeCloseTo(psd, 10);
    for (const x of rows) expect(x.p1).toBeCloseTo((Number(x.g1) - Number(x.gt1)) / Number(x.e1), 10);
    // one pull per realisation (seed, sub-tile, rotation) and component: the mean over its fits' rows
    const real = new Map<string, { p1: number[]; p2: number[] }>();
    for (const x of rows) {
      const key = `${x.seed} ${x.row} ${x.col} ${x.rotation}`;
      const r = real.get(key) ?? { p1: [], p2: [] };
      r.p1.push((Number(x.g1) - Number(x.gt1)) / Number(x.e1));
      r.p2.push((Number(x.g2) - Number(x.gt2)) / Number(x.e2));
      real.set(key, r);
    }
    const rp = [...real.values()].flatMap((r) => [r.p1.reduce((a, b) => a + b, 0) / r.p1.length, r.p2.reduce((a, b) => a + b, 0) / r.p2.length]);
    const rm = rp.reduce((a, b) => a + b, 0) / rp.length;
    const rsd = Math.sqrt(rp.reduce((a, b) => a + (b - rm) ** 2, 0) / (rp.length - 1));
    expect(j.results.pulls_by_realisation.all.n).toBe(2 * 2 * SUBTILES.length);
    expect(j.results.pulls_by_realisation.all.sd).toBeCloseTo(rsd, 10);
    expect(a.summary.PULL_SD_REAL).toBeCloseTo(rsd, 10);
    expect(a.summary.N_PULLS_REAL).toBe(rp.length);
    const conv = rows.filter((x) => x.converged).length / rows.length;
    expect(j.results.fits.fracConverged).toBeCloseTo(conv, 15);
    expect(j.results.fits.fracErrFinite).toBe(1);

    // resume: nothing simulated or refitted, the shear files untouched, the same numbers
    const t1 = performance.now();
    const r2 = await shine(args);
    const second = (performance.now() - t1) / 1000;
    expect(r2.code, r2.stderr).toBe(0);
    const line2 = JSON.parse(r2.stdout.trim());
    expect(line2.this_run).toMatchObject({ simulated: 0, sims_reused: 8, prepared: 0, fitted: 0, fits_reused: 16, fits_failed: 0 });
    expect(shearFiles.map((f) => statSync(f).mtimeMs)).toEqual(mtimes);
    expect(line2.m1).toBe(line1.m1);
    // --report-only with every option from the run record
    const r3 = await shine(['--report-only', '--out', out, '--json']);
    expect(r3.code, r3.stderr).toBe(0);
    expect(JSON.parse(r3.stdout.trim()).c2).toBe(line1.c2);

    // products of an earlier version (no fit-settings hash, no shear.estimator: the MAP's shear)
    // are not this software's default result: the report calls them stale, a re-run redoes them
    const [sr, sc] = SUBTILES[0];
    const metaFile = join(sims[0], 'results', `metadata_${TILE}_${sr}_${sc}.yaml`);
    const metaText = readFileSync(metaFile, 'utf8');
    expect(metaText).toMatch(/fit_settings_hash: [0-9a-f]{16}/);
    expect(metaText).toMatch(/estimator: laplace_marginal/);
    writeFileSync(metaFile, metaText.replace(/^\s*fit_settings_hash: .*\n/m, '').replace(/^\s*estimator: laplace_marginal\n/m, ''));
    const rs = await shine(['--report-only', '--out', out, '--json']);
    expect(JSON.parse(rs.stdout.trim())).toMatchObject({ fits: { ok: 15, stale: 1 } });
    const staleNote = (JSON.parse(readFileSync(join(out, 'calibration.json'), 'utf8')) as { results: { problems: Array<{ status: string; reason?: string }> } }).results.problems;
    expect(staleNote).toEqual([expect.objectContaining({ status: 'stale', reason: expect.stringMatching(/earlier version with shear estimator 'map'; this configuration asks for 'laplace_marginal'/) })]);
    const rr = await shine(args);
    expect(rr.code, rr.stderr).toBe(0);
    expect(JSON.parse(rr.stdout.trim()).this_run).toMatchObject({ fitted: 1, fits_reused: 15, fits_failed: 0 });
    expect(readFileSync(metaFile, 'utf8')).toMatch(/fit_settings_hash: [0-9a-f]{16}/);

    // SLURM (dry run): one more sub-tile → one Stage-2 task per simulation, scripts valid shell;
    // until they run, the report counts its 8 fits as missing and its set as incomplete
    const r4 = await shine(['--out', out, '--sub-tiles', '0,2;2,0;1,2', '--executor', 'slurm', '--dry-run', '--json']);
    expect(r4.code, r4.stderr).toBe(0);
    expect(JSON.parse(r4.stdout.trim())).toMatchObject({ format: 'shine-calibration-submitted', dry_run: true, tasks: 8, simulations: 8, already_complete: 16 });
    for (const d of sims) {
      expect(readFileSync(join(d, 'run', 'stage2_tasks_0.tsv'), 'utf8')).toBe(`${TILE}\t1\t2\n`);
      for (const f of ['stage2_0.sh', 'stage3.sh', 'submit.sh']) execFileSync('bash', ['-n', join(d, 'run', f)]);
      expect(readFileSync(join(d, 'run', 'stage2_0.sh'), 'utf8')).toContain(`SHINE_CONFIG='${join(d, 'config.calibrate.yaml')}'`);
    }
    const r5 = await shine(['--report-only', '--out', out, '--json']);
    const line5 = JSON.parse(r5.stdout.trim());
    expect(line5).toMatchObject({ n_sets: 3, n_sets_complete: 2, fits: { ok: 16, missing: 8, failed: 0 } });
    expect(line5.m1).toBe(line1.m1);
    console.log(`calibrate e2e: first run ${first.toFixed(0)} s, resume ${second.toFixed(1)} s`);
  }, 600_000);
});
