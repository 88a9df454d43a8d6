/**
 * `shine calibrate --sim-profile` / `--sim-bulge-nu` bad input: one clear line, a non-zero exit
 * code, nothing written (the simulated profiles themselves: test/sim/profiles.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.ts';
import calibrate from '../../cli/commands/calibrate.ts';

describe('shine calibrate: --sim-profile bad input', () => {
  const base = ['--preset', 'ci', '--seeds', '1'];
  const cases: Array<[string, string[], RegExp]> = [
    ['unknown profile', ['--sim-profile', 'sersic'], /^shine: --sim-profile must be exponential, spergel, spergel-per-galaxy or bulge-disk, got 'sersic'$/],
    ['spergel without ν', ['--sim-profile', 'spergel'], /^shine: --sim-profile spergel needs --sim-spergel-nu NU$/],
    ['ν with bulge-disk', ['--sim-profile', 'bulge-disk', '--sim-spergel-nu', '0.3'], /^shine: --sim-spergel-nu needs --sim-profile spergel \(got --sim-profile bulge-disk\)$/],
    ['bulge ν without bulge-disk', ['--sim-bulge-nu', '-0.5'], /^shine: --sim-bulge-nu needs --sim-profile bulge-disk$/],
    ['bulge ν out of range', ['--sim-profile', 'bulge-disk', '--sim-bulge-nu', '-1'], /^shine: --sim-bulge-nu must be a number from -0.85 to 4 \(GalSim's Spergel range\), got '-1'$/],
    ['bulge ν not a number', ['--sim-profile', 'bulge-disk', '--sim-bulge-nu', 'x'], /^shine: --sim-bulge-nu must be a number from -0.85 to 4/],
  ];
  for (const [name, args, re] of cases) {
    it(name, async () => {
      const out = join(mkdtempSync(join(tmpdir(), 'shine-cal-prof-')), 'out');
      const r = await runCli(calibrate, [...base, ...args, '--out', out], {});
      expect(r.code).not.toBe(0);
      expect(r.out.split('\n')).toHaveLength(1);
      expect(r.out).toMatch(re);
      expect(existsSync(out)).toBe(false);
    });
  }
});
