/**
 * `shine calibrate` bad input: one clear line and a non-zero exit code, nothing written.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.ts';
import calibrate from '../../cli/commands/calibrate.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('shine calibrate: bad input', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown preset', ['--preset', 'huge', '--seeds', '1'], /^shine: --preset must be one of ci, medium, subtile, tile, minitile, got 'huge'$/],
    ['empty --seeds', ['--preset', 'ci', '--seeds', ''], /^shine: --seeds is empty/],
    ['blank --seeds', ['--preset', 'ci', '--seeds', '  '], /^shine: --seeds is empty/],
    ['malformed --seeds', ['--preset', 'ci', '--seeds', '1-x'], /^shine: --seeds: '1-x' is not a seed or a range/],
    ['reversed range', ['--preset', 'ci', '--seeds', '5-2'], /^shine: --seeds: range '5-2' ends before it starts$/],
    ['negative seed', ['--preset', 'ci', '--seeds', '-3'], /^shine: --seeds: '-3' is not a seed/],
    ['repeated seed', ['--preset', 'ci', '--seeds', '1-3,2'], /^shine: --seeds: seed 2 is listed twice$/],
    ['--g 0', ['--preset', 'ci', '--seeds', '1', '--g', '0'], /^shine: --g must be a number with 0 < \|g\| < 1, got '0'$/],
    ['--g 1', ['--preset', 'ci', '--seeds', '1', '--g', '1'], /^shine: --g must be a number with 0 < \|g\| < 1, got '1'$/],
    ['--g -1.5', ['--preset', 'ci', '--seeds', '1', '--g=-1.5'], /^shine: --g must be a number with 0 < \|g\| < 1, got '-1.5'$/],
    ['--g abc', ['--preset', 'ci', '--seeds', '1', '--g', 'abc'], /^shine: --g must be a number with 0 < \|g\| < 1, got 'abc'$/],
    ['bad --sub-tiles', ['--preset', 'minitile', '--seeds', '1', '--sub-tiles', '4,0'], /^shine: --sub-tiles: \(4, 0\) is outside the 4×4 sub-tile grid$/],
    ['bad --priors', ['--preset', 'ci', '--seeds', '1', '--priors', 'flat'], /^shine: --priors must be default or shine, got 'flat'$/],
    ['bad --method', ['--preset', 'ci', '--seeds', '1', '--method', 'hmc'], /^shine: --method must be map, vi or nuts, got 'hmc'$/],
    ['bad --jobs', ['--preset', 'ci', '--seeds', '1', '--jobs', '0'], /^shine: --jobs must be an integer ≥ 1, got '0'$/],
    ['bad --executor', ['--preset', 'ci', '--seeds', '1', '--executor', 'aws-batch'], /^shine: --executor must be local or slurm, got 'aws-batch'$/],
    ['--rotations 3', ['--preset', 'ci', '--seeds', '1', '--rotations', '3'], /^shine: --rotations must be 2 or 4, got '3'$/],
    ['--rotations x', ['--preset', 'ci', '--seeds', '1', '--rotations', 'x'], /^shine: --rotations must be 2 or 4, got 'x'$/],
    ['bad --position-angle', ['--preset', 'ci', '--seeds', '1', '--position-angle', 'north'], /^shine: --position-angle must be an angle from -360 to 360 degrees, got 'north'$/],
  ];
  for (const [name, args, re] of cases) {
    it(name, async () => {
      const out = join(mkdtempSync(join(tmpdir(), 'shine-cal-bad-')), 'out');
      const r = await runCli(calibrate, [...args, '--out', out], {});
      expect(r.code).not.toBe(0);
      expect(r.out.split('\n')).toHaveLength(1);
      expect(r.out).toMatch(re);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('--report-only with nothing run, and settings that differ from the folder’s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shine-cal-bad-'));
    let r = await runCli(calibrate, ['--report-only', '--out', dir], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^shine: --report-only: .*calibrate_run\.json does not exist \(nothing was run in /);
    mkdirSync(dir, { recursive: true });
    const runRecord = { format: 'shine-calibrate-run', version: 1, preset: 'minitile', g: 0.02, method: 'map', priors: 'default', noise: false, overrides: null, seeds: [1], sub_tiles: 'all', bootstrap: 2000, bootstrap_seed: 1 };
    // a record without `preset_revision` holds revision-1 simulations: this software's minitile
    // is revision 2 (galaxies of hlr ≤ 0.5″), so simulating more into it is refused
    writeFileSync(join(dir, 'calibrate_run.json'), JSON.stringify(runRecord));
    r = await runCli(calibrate, ['--out', dir], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/other settings \(preset revision 1 → 2 \(this software simulates minitile differently: docs\/simulate\.md; --report-only still reads it\)\): use another --out/);
    writeFileSync(join(dir, 'calibrate_run.json'), JSON.stringify({ ...runRecord, preset_revision: 2 }));
    r = await runCli(calibrate, ['--g', '0.05', '--priors', 'shine', '--out', dir], {});
    expect(r.code).toBe(1);
    expect(r.out.split('\n')).toHaveLength(1);
    expect(r.out).toMatch(/holds a calibration with other settings \(g 0\.02 → 0\.05, priors default → shine\): use another --out/);
    // a run record without `rotations` predates the option: its simulations are the 2-ring
    r = await runCli(calibrate, ['--rotations', '4', '--out', dir], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/holds a calibration with other settings \(rotations 2 → 4\): use another --out/);
    // a run record without `position_angle` was simulated at the preset's (minitile: 7°)
    r = await runCli(calibrate, ['--rotations', '2', '--position-angle', '7', '--g', '0.05', '--out', dir], {});
    expect(r.out).toMatch(/other settings \(g 0\.02 → 0\.05\)/);
    r = await runCli(calibrate, ['--rotations', '2', '--position-angle', '52', '--out', dir], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/holds a calibration with other settings \(position angle 7° → 52°\): use another --out/);
  });

  it('a folder from before --rotations reports as the 2-ring (--report-only, nothing simulated yet)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shine-cal-old-'));
    writeFileSync(join(dir, 'calibrate_run.json'), JSON.stringify({ format: 'shine-calibrate-run', version: 1, preset: 'minitile', g: 0.02, method: 'map', priors: 'default', noise: false, overrides: null, seeds: [1], sub_tiles: [[0, 2]], bootstrap: 20, bootstrap_seed: 1 }));
    const r = await runCli(calibrate, ['--report-only', '--out', dir, '--json'], {});
    expect(r.code, r.out).toBe(0);
    const j = JSON.parse(readFileSync(join(dir, 'calibration.json'), 'utf8'));
    expect(j.inputs.rotations).toBe(2);
    expect(j.inputs.preset_revision).toBe(1);
    expect(j.design.members.map((m: { label: string }) => m.label)).toEqual(['g1p_r0', 'g1p_r1', 'g1m_r0', 'g1m_r1', 'g2p_r0', 'g2p_r1', 'g2m_r0', 'g2m_r1']);
    expect(j.design.members.map((m: { rotation_deg: number }) => m.rotation_deg)).toEqual([0, 90, 0, 90, 0, 90, 0, 90]);
    expect(j.fits).toHaveLength(8);
    expect(j.fits.every((f: { status: string }) => f.status === 'missing')).toBe(true);
  });

  it('through the shine entry point: exit code 1 and one line on stderr', async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
      execFile('npx', ['tsx', 'cli/shine.ts', 'calibrate', '--preset', 'minitile', '--seeds', '1', '--g', '0'], { cwd: REPO }, (err, stdout, stderr) =>
        res({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }),
      );
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toEqual(["shine: --g must be a number with 0 < |g| < 1, got '0'"]);
  });
});
