/**
 * The local executor through `shine run --executor local` and `shine status`, with Stage 1 and
 * Stage 2 replaced by stubs (SHINE_RUN_PREPARE_CMD / SHINE_RUN_SUBTILE_CMD): retries, failure
 * markers, resume, and the real Stage 3 (assemble) on the stub products, read back by astropy.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import { python } from '../fits/helpers.ts';
import runCmd from '../../cli/commands/run.ts';
import statusCmd from '../../cli/commands/status.ts';
import retryCmd from '../../cli/commands/retry.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIX = join(ROOT, 'test', 'orchestrate', 'fixtures');
const NODE_TSX = [process.execPath, '--import', 'tsx'];

const cli = runCli;

function setup() {
  const base = mkdtempSync(join(tmpdir(), 'run local '));
  const cfg = join(base, 'config.yaml');
  writeFileSync(cfg, 'distributed: {output_dir: out, scratch_dir: scratch, sub_tile_grid: [2, 2]}\n');
  const calls = join(base, 'calls.txt');
  writeFileSync(calls, '');
  const env = {
    SHINE_RUN_PREPARE_CMD: JSON.stringify([join(FIX, 'stub-prepare.sh')]),
    SHINE_RUN_SUBTILE_CMD: JSON.stringify([...NODE_TSX, join(FIX, 'stub-subtile.ts')]),
    SHINE_RUN_ASSEMBLE_CMD: JSON.stringify([...NODE_TSX, join(ROOT, 'cli', 'shine.ts'), 'assemble']),
    STUB_CALLS: calls,
  };
  const callList = () => readFileSync(calls, 'utf8').split('\n').filter(Boolean).sort();
  return { base, cfg, env, callList };
}

afterEach(() => vi.restoreAllMocks());

describe('shine run --executor local', () => {
  it('--method reaches every sub-tile; a bad method is refused', async () => {
    const { base, cfg, env, callList } = setup();
    const r = await cli(runCmd, ['--config', cfg, '--tiles', '7', '--executor', 'local', '--method', 'vi', '--catalog', join(base, 'c.fits')], env);
    expect(r.code, r.out).toBe(0);
    expect(callList().length).toBe(4);
    expect(readFileSync(join(base, 'calls.txt.method'), 'utf8').split('\n').filter(Boolean)).toEqual(['vi', 'vi', 'vi', 'vi']);
    const bad = await cli(runCmd, ['--config', cfg, '--tiles', '7', '--executor', 'local', '--method', 'mcmc'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/--method must be map, vi or nuts, got 'mcmc'/);
  });

  it('--start-from reaches every sub-tile as an absolute folder; a missing folder is refused before any work', async () => {
    const { base, cfg, env, callList } = setup();
    const earlier = join(base, 'earlier products');
    mkdirSync(earlier);
    const r = await cli(runCmd, ['--config', cfg, '--tiles', '7', '--executor', 'local', '--start-from', earlier, '--catalog', join(base, 'c.fits')], env);
    expect(r.code, r.out).toBe(0);
    expect(callList().length).toBe(4);
    expect(readFileSync(join(base, 'calls.txt.start'), 'utf8').split('\n').filter(Boolean)).toEqual([earlier, earlier, earlier, earlier]);
    const bad = await cli(runCmd, ['--config', cfg, '--tiles', '8', '--executor', 'local', '--start-from', join(base, 'nope')], env);
    expect(bad.code).not.toBe(0);
    expect(bad.out).toMatch(/--start-from .*nope: no such folder/);
    expect(callList().length).toBe(4);
  });

  it('runs every sub-tile, retries a failure once, assembles, and resumes without re-running', async () => {
    const { base, cfg, env, callList } = setup();
    const catalog = join(base, 'cat.fits');
    const args = ['--config', cfg, '--tiles', '101,202', '--executor', 'local', '--jobs', '3', '--catalog', catalog];
    const r1 = await cli(runCmd, args, { ...env, STUB_FAIL_ONCE: '202_0_1' });
    expect(r1.code, r1.out).toBe(0);
    // 8 sub-tiles (2 tiles × 2×2, the empty one included: it gets its N_SOURCES = 0 row) + 1 retry
    const expected = ['101 0 0', '101 0 1', '101 1 0', '101 1 1', '202 0 0', '202 0 1', '202 0 1', '202 1 0', '202 1 1'];
    expect(callList()).toEqual(expected);
    expect(r1.out).toMatch(/retry 1\/2/);
    expect(existsSync(join(base, 'scratch', 'tile_101', 'prepare_101.yaml'))).toBe(true);
    // the catalog, read by astropy: one row per sub-tile
    const py = 'import sys, json; from astropy.io import fits; d = fits.open(sys.argv[1])[1].data; print(json.dumps(sorted([int(r["TILE_ID"]), int(r["SUBTILE_ROW"]), int(r["SUBTILE_COL"]), float(r["G1"])] for r in d)))';
    const rows = JSON.parse(execFileSync(python(), ['-c', py, catalog], { encoding: 'utf8' })) as number[][];
    // oracle: the stub's g1 = 0.001 (10 row + col), one row per sub-tile
    const want = [101, 202].flatMap((t) => [[0, 0], [0, 1], [1, 0], [1, 1]].map(([r, c]) => [t, r, c, 0.001 * (10 * r + c)]));
    expect(rows.length).toBe(8);
    rows.forEach((row, i) => {
      expect(row.slice(0, 3)).toEqual(want[i].slice(0, 3));
      expect(row[3]).toBeCloseTo(want[i][3], 6);
    });
    // resume: nothing re-run
    const r2 = await cli(runCmd, args, env);
    expect(r2.code, r2.out).toBe(0);
    expect(callList()).toEqual(expected);
    expect(r2.out).toMatch(/8 already complete/);
  }, 40_000);

  it('resume redoes products of other resolved fit settings: a changed setting, a changed default, another method', async () => {
    const { base, cfg, env, callList } = setup();
    const args = ['--config', cfg, '--tiles', '7', '--executor', 'local', '--catalog', join(base, 'c.fits')];
    const metaFile = join(base, 'out', 'metadata_7_0_0.yaml');
    // products of an earlier version: no fit-settings hash, no shear.estimator (the MAP's shear)
    expect((await cli(runCmd, args, { ...env, STUB_NO_FIT_HASH: '1' })).code).toBe(0);
    expect(readFileSync(metaFile, 'utf8')).not.toMatch(/fit_settings_hash/);
    expect(callList().length).toBe(4);
    // the configuration's text is unchanged, but this version's default estimator is the
    // Laplace-marginal shear: none of them is this configuration's result
    const r2 = await cli(runCmd, args, env);
    expect(r2.code, r2.out).toBe(0);
    expect(r2.out).toMatch(/made by an earlier version with shear estimator 'map'; this configuration asks for 'laplace_marginal': running again/);
    expect(callList().length).toBe(8);
    expect(readFileSync(metaFile, 'utf8')).toMatch(/fit_settings_hash: [0-9a-f]{16}/);
    // same settings: all kept
    const r3 = await cli(runCmd, args, env);
    expect(r3.out).toMatch(/4 already complete/);
    expect(callList().length).toBe(8);
    // the default written out explicitly resolves to the same settings: still kept
    writeFileSync(cfg, `${readFileSync(cfg, 'utf8')}inference: {map: {shear_estimator: laplace_marginal}}\n`);
    expect((await cli(runCmd, args, env)).out).toMatch(/4 already complete/);
    const statusOf = async (extra: string[] = []) => {
      const s = await cli(statusCmd, ['--config', cfg, '--tiles', '7', '--json', ...extra], { PATH: '/nonexistent' });
      expect(s.code, s.out).toBe(0);
      return (JSON.parse(s.out.slice(s.out.indexOf('{'))) as { tiles: Array<{ sub_tiles: Array<{ state: string; detail?: string }> }> }).tiles[0].sub_tiles;
    };
    expect((await statusOf()).map((x) => x.state)).toEqual(['done', 'done', 'done', 'done']);
    // a setting that shapes the fit: status calls the products stale (and retry would redo them) …
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('laplace_marginal', 'map'));
    const st = await statusOf();
    expect(st.map((x) => x.state)).toEqual(['stale', 'stale', 'stale', 'stale']);
    expect(st[0].detail).toMatch(/^products made with other fit settings \(fit_settings_hash [0-9a-f]{16}, this configuration [0-9a-f]{16}\)$/);
    const table = await cli(statusCmd, ['--config', cfg, '--tiles', '7'], { PATH: '/nonexistent' });
    expect(table.out).toMatch(/total: 0 done, 4 stale, 0 running, 0 failed, 0 pending, 0 empty/);
    // … and a run redoes them, the hashes named
    const r5 = await cli(runCmd, args, env);
    expect(r5.out).toMatch(/made with other fit settings \(fit_settings_hash [0-9a-f]{16}, this configuration [0-9a-f]{16}\)/);
    expect(callList().length).toBe(12);
    // another method: redone
    const r6 = await cli(runCmd, [...args, '--method', 'vi'], env);
    expect(r6.out).toMatch(/made with method 'map', not 'vi'/);
    expect(callList().length).toBe(16);
    // status judges each product under the method it records, unless told the run's method
    expect((await statusOf()).map((x) => x.state)).toEqual(['done', 'done', 'done', 'done']);
    const other = await statusOf(['--method', 'map']);
    expect(other.map((x) => x.state)).toEqual(['stale', 'stale', 'stale', 'stale']);
    expect(other[0].detail).toBe("products made with method 'vi', not 'map'");
  }, 120_000);

  it('reports a sub-tile that keeps failing by name, writes a failure marker, does not assemble; status shows it', async () => {
    const { base, cfg, env, callList } = setup();
    const catalog = join(base, 'cat.fits');
    const r = await cli(runCmd, ['--config', cfg, '--tiles', '7', '--executor', 'local', '--jobs', '2', '--retries', '1', '--catalog', catalog], { ...env, STUB_FAIL_ALWAYS: '7_1_0' });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAILED tile 7 sub-tile \(1, 0\)/);
    expect(callList().filter((c) => c === '7 1 0').length).toBe(2); // 1 + 1 retry
    expect(existsSync(catalog)).toBe(false);
    const marker = JSON.parse(readFileSync(join(base, 'scratch', 'run', 'failed', '7_1_0.json'), 'utf8'));
    expect(marker).toMatchObject({ tile_id: 7, row: 1, col: 0, attempts: 2, exit_code: 3 });

    const s = await cli(statusCmd, ['--config', cfg, '--tiles', '7', '--json'], {});
    expect(s.code).toBe(0);
    const st = JSON.parse(s.out.slice(s.out.indexOf('{')));
    expect(st.tiles[0].sub_tiles.map((x: { state: string }) => x.state)).toEqual(['done', 'done', 'failed', 'done']);
    const table = await cli(statusCmd, ['--config', cfg, '--tiles', '7'], { PATH: '/nonexistent' });
    expect(table.out).toMatch(/total: 3 done, 0 running, 1 failed, 0 pending, 0 empty/);
    expect(table.out).toMatch(/no SLURM jobs recorded/);

    // the failure cleared, `shine retry --executor local` only runs that sub-tile, removes the marker and assembles
    const r2 = await cli(retryCmd, ['--config', cfg, '--tiles', '7', '--executor', 'local', '--catalog', catalog], env);
    expect(r2.code, r2.out).toBe(0);
    expect(callList().filter((c) => c === '7 1 0').length).toBe(3);
    expect(callList().length).toBe(6);
    expect(existsSync(join(base, 'scratch', 'run', 'failed', '7_1_0.json'))).toBe(false);
    expect(existsSync(catalog)).toBe(true);
  }, 40_000);

  it('status from disk: pending and empty before any Stage 2', async () => {
    const { base, cfg } = setup();
    execFileSync(join(FIX, 'stub-prepare.sh'), ['--tile-id', '9', '--out', join(base, 'scratch', 'tile_9')]);
    const s = await cli(statusCmd, ['--config', cfg, '--tiles', '9,10', '--json'], {});
    const st = JSON.parse(s.out.slice(s.out.indexOf('{')));
    expect(st.tiles[0].sub_tiles.map((x: { state: string }) => x.state)).toEqual(['pending', 'pending', 'pending', 'empty']);
    expect(st.tiles[1].prepared).toBe(false);
    expect(st.tiles[1].sub_tiles.map((x: { state: string }) => x.state)).toEqual(['pending', 'pending', 'pending', 'pending']);
  });

  it('slurm without sbatch is a clear error; bad tiles are rejected', async () => {
    const { cfg } = setup();
    const r = await cli(runCmd, ['--config', cfg, '--tiles', '1', '--executor', 'slurm'], { PATH: '/nonexistent' });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/sbatch is not on PATH/);
    const b = await cli(runCmd, ['--config', cfg, '--tiles', '1,x'], {});
    expect(b.code).toBe(1);
    expect(b.out).toMatch(/'x' is not a tile id/);
    const a = await cli(runCmd, ['--config', cfg, '--tiles', '1', '--executor', 'aws-batch'], {});
    expect(a.out).toMatch(/--dry-run/);
  });
});
