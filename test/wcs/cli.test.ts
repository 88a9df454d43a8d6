/**
 * `shine sky2xy` / `shine xy2sky` on a FITS file written by astropy, against astropy's own
 * all_pix2world / all_world2pix answers (FITS origin 1 by default, --origin 0).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import sky2xy from '../../cli/commands/sky2xy.ts';
import xy2sky from '../../cli/commands/xy2sky.ts';
import { angularSeparation } from '../../engine/data/wcs/index.ts';
import { runPython, skipOracle } from './python.ts';

const hasPython = !skipOracle(); // with CI=true a missing astropy fails these tests
let dir = '';
let file = '';
let cases: Array<{ name: string; pix: number[][]; sky: number[][]; inv_sky: number[][]; inv_pix: number[][] }> = [];

beforeAll(() => {
  if (!hasPython) return;
  dir = mkdtempSync(join(tmpdir(), 'shine-wcscli-'));
  runPython(join(import.meta.dirname, '../fixtures/wcs/astropy_wcs.py'), [dir]);
  file = join(dir, 'wcs_cases.fits');
  cases = JSON.parse(readFileSync(join(dir, 'wcs_cases.json'), 'utf8')).cases;
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function capture(cmd: { run(a: string[]): Promise<number> }, argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    lines.push(a.map(String).join(' '));
  });
  try {
    const code = await cmd.run(argv);
    return { code, out: lines.join('\n') };
  } finally {
    spy.mockRestore();
  }
}

describe.skipIf(!hasPython)('sky2xy / xy2sky CLI', () => {
  for (const name of ['tpv_vis', 'sip', 'tpv_ra0']) {
    it(`${name}: xy2sky (origin 1 and 0) matches astropy`, async () => {
      const c = cases.find((k) => k.name === name)!;
      const pts = c.pix.slice(0, 40);
      for (const origin of [1, 0]) {
        const args = [file, '--hdu', name.toUpperCase(), '--json', ...(origin === 0 ? ['--origin', '0'] : [])];
        for (const [x, y] of pts) args.push(String(x + origin), String(y + origin));
        const { code, out } = await capture(xy2sky, args);
        expect(code).toBe(0);
        const res = JSON.parse(out).results as Array<{ ra: number; dec: number }>;
        res.forEach((r, i) => expect(angularSeparation(r.ra, r.dec, c.sky[i][0], c.sky[i][1])).toBeLessThan(1e-8));
      }
    });

    it(`${name}: sky2xy matches astropy all_world2pix`, async () => {
      const c = cases.find((k) => k.name === name)!;
      const args = [file, '--hdu', name, '--json'];
      const pts = c.inv_sky.slice(0, 40);
      for (const [ra, dec] of pts) args.push(String(ra), String(dec));
      const { code, out } = await capture(sky2xy, args);
      expect(code).toBe(0);
      const res = JSON.parse(out).results as Array<{ x: number; y: number }>;
      res.forEach((r, i) => expect(Math.hypot(r.x - 1 - c.inv_pix[i][0], r.y - 1 - c.inv_pix[i][1])).toBeLessThan(1e-6));
    });
  }

  it('text output and sexagesimal input', async () => {
    const { code, out } = await capture(sky2xy, [file, '--hdu', 'TPV_VIS', '03:51:24', '-51:36:00', '57.85', '-51.6']);
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines.length).toBe(2);
    // 03:51:24 = 57.85 deg, -51:36:00 = -51.6 deg → same pixel on both lines
    expect(lines[0].split('->')[1]).toBe(lines[1].split('->')[1]);
  });

  it('errors name the file and HDU; the real CLI exits 1 with one line', () => {
    let err = '';
    let status = 0;
    try {
      execFileSync('npx', ['tsx', 'cli/shine.ts', 'xy2sky', file, '--hdu', 'NOPE', '1', '1'], {
        cwd: join(import.meta.dirname, '../..'),
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (e) {
      const ex = e as { status: number; stderr: string };
      status = ex.status;
      err = ex.stderr;
    }
    expect(status).toBe(1);
    expect(err).toMatch(/shine: .*wcs_cases\.fits.*NOPE/);
    expect(err).not.toMatch(/at .*\.ts:\d+/); // no stack trace
  });

  it('odd number of values is a usage error', async () => {
    await expect(xy2sky.run([file, '1', '2', '3'])).rejects.toThrow(/pairs/);
  });
});
