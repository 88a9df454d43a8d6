/**
 * A real SLURM (issue 5 item 6): a private one-node cluster on this machine (munged, slurmctld,
 * slurmd started by test/fixtures/slurm/start-slurm.sh, every file in a temporary folder) runs the
 * `minitile` simulation — a whole tile, 16 sub-tiles — through `shine run --executor slurm`, with
 * one sub-tile made to fail once (runner wrapper fail-once.sh) and retried inside its array task.
 * Checks: the assembled catalog (read by astropy) has the 16 sub-tiles and its shears agree with
 * the simulation truth; `shine status` reads the SLURM states (falling back when sacct has no
 * accounting storage); `shine retry` resubmits exactly a sub-tile whose products were removed; the
 * same tile through `--executor local` gives bit-identical G1/G2. The daemons are stopped by their
 * own PIDs in afterAll, also when a test fails (and by a watcher of start-slurm.sh if this process
 * is killed before afterAll runs).
 *
 * Needs slurm-wlm and munge (scripts/setup-debian.sh). Without them the test is skipped, except
 * when CI is set: then it fails.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { python } from '../fits/helpers.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIX = join(ROOT, 'test', 'fixtures', 'slurm');
const TILE = 102018211;
const FAIL = `${TILE}_1_2`;
const BINARIES = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'sinfo', 'scancel'];

function which(name: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${name}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).status === 0;
}
const missing = BINARIES.filter((b) => !which(b));

let base = '';
let slurmDir = '';
let env: NodeJS.ProcessEnv = {};

function shine(args: string[], extraEnv: NodeJS.ProcessEnv = {}, timeout = 300_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'shine.ts'), ...args], { cwd: ROOT, timeout, maxBuffer: 1 << 24, env: { ...env, ...extraEnv, NO_COLOR: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

/** Waits until the private controller has no job left (pending, running or completing). */
async function waitForJobs(limitS: number): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const r = spawnSync('squeue', ['--noheader', '--format=%i %T'], { env, encoding: 'utf8' });
    if (r.status === 0 && !r.stdout.trim()) return;
    if (Date.now() - t0 > limitS * 1000) throw new Error(`SLURM jobs still queued after ${limitS} s:\n${r.stdout}${r.stderr}`);
    await new Promise((res) => setTimeout(res, 2000));
  }
}

/** (tile, row, col) → [G1, G2, G1_ERR, G2_ERR, N_SOURCES, hex bytes of G1 and G2] of a catalog, read by astropy. */
function readCatalog(file: string): Map<string, { g: number[]; err: number[]; n: number; bytes: string }> {
  const py = `import sys, json
from astropy.io import fits
d = fits.open(sys.argv[1])[1].data
out = []
for r in d:
    out.append([int(r['TILE_ID']), int(r['SUBTILE_ROW']), int(r['SUBTILE_COL']), [float(r['G1']), float(r['G2'])], [float(r['G1_ERR']), float(r['G2_ERR'])], int(r['N_SOURCES']), r['G1'].tobytes().hex() + r['G2'].tobytes().hex()])
print(json.dumps(out).replace('NaN', 'null'))`;
  const rows = JSON.parse(execFileSync(python(), ['-c', py, file], { encoding: 'utf8' })) as Array<[number, number, number, Array<number | null>, Array<number | null>, number, string]>;
  const m = new Map<string, { g: number[]; err: number[]; n: number; bytes: string }>();
  for (const [t, r, c, g, e, n, bytes] of rows) {
    const key = `${t}_${r}_${c}`;
    if (m.has(key)) throw new Error(`${file}: sub-tile ${key} twice`);
    m.set(key, { g: g.map((x) => x ?? NaN), err: e.map((x) => x ?? NaN), n, bytes });
  }
  return m;
}

function truthShear(simDir: string): Map<string, [number, number]> {
  const py = `import sys, json
from astropy.io import fits
d = fits.open(sys.argv[1])[1].data
print(json.dumps([[int(r['TILE_ID']), int(r['SUBTILE_ROW']), int(r['SUBTILE_COL']), float(r['G1']), float(r['G2'])] for r in d]))`;
  const rows = JSON.parse(execFileSync(python(), ['-c', py, join(simDir, 'truth', 'shear.fits')], { encoding: 'utf8' })) as number[][];
  return new Map(rows.map(([t, r, c, g1, g2]) => [`${t}_${r}_${c}`, [g1, g2] as [number, number]]));
}

if (missing.length && process.env.CI) {
  describe('real SLURM', () => {
    it('has slurm-wlm and munge installed (CI installs them: scripts/setup-debian.sh)', () => {
      expect(missing, `missing: ${missing.join(', ')}`).toEqual([]);
    });
  });
}

describe.skipIf(missing.length > 0)('real SLURM on this machine (one node)', () => {
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'shine-slurm-'));
    slurmDir = join(base, 'slurm');
    mkdirSync(slurmDir, { mode: 0o700 });
    env = { ...process.env, SLURM_CONF: join(slurmDir, 'slurm.conf') };
    const start = spawnSync('bash', [join(FIX, 'start-slurm.sh'), slurmDir, '2', '6000', String(process.pid)], { encoding: 'utf8', timeout: 90_000 });
    if (start.status !== 0) {
      const logs = ['slurmctld.log', 'slurmd.log', 'munged.log'].map((f) => (existsSync(join(slurmDir, f)) ? `--- ${f}\n${readFileSync(join(slurmDir, f), 'utf8').slice(-2000)}` : '')).join('\n');
      throw new Error(`start-slurm.sh failed (${start.status}): ${start.stderr}\n${logs}`);
    }
    const sim = await shine(['simulate', '--preset', 'minitile', '--seed', '3', '--out', join(base, 'sim'), '--quiet']);
    expect(sim.code, sim.out).toBe(0);
  }, 180_000);

  afterAll(() => {
    if (slurmDir) spawnSync('bash', [join(FIX, 'stop-slurm.sh'), slurmDir], { stdio: 'inherit', timeout: 60_000 });
    if (base && !process.env.SHINE_KEEP_TEST_DIR) rmSync(base, { recursive: true, force: true });
  }, 90_000);

  it('runs a whole tile through --executor slurm with a sub-tile failing once and retried; status, retry, and local agree', async () => {
    const cfg = join(base, 'sim', 'config.yaml');
    const runDir = join(base, 'run-slurm');
    const catalog = join(base, 'catalog-slurm.fits');
    const t0 = Date.now();
    const runner = JSON.stringify([join(FIX, 'fail-once.sh'), process.execPath, '--import', 'tsx']);
    const failEnv = { SHINE_RUNNER: runner, SHINE_FAIL_ONCE: FAIL, SHINE_FAIL_ONCE_MARKER: join(base, 'failed-once') };
    const slurmOpts = ['--gpus-per-task', '0', '--cpus-per-task', '1', '--mem', '2500M', '--time', '20', '--cpu-mem', '1000M', '--cpu-time', '20'];
    const r = await shine(['run', '--config', cfg, '--tiles', String(TILE), '--executor', 'slurm', '--out', runDir, '--catalog', catalog, '--retries', '2', ...slurmOpts], failEnv);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/submitted 3 job\(s\)/);
    const jobs = readFileSync(join(runDir, 'jobs.tsv'), 'utf8');
    expect(jobs).toMatch(/^stage1_0\t\d+\nstage2_0\t\d+\nstage3\t\d+\n$/);

    // while it runs, status reads squeue (states pending/running/done only)
    const live = await shine(['status', '--config', cfg, '--tiles', String(TILE), '--out', runDir, '--json']);
    expect(live.code, live.out).toBe(0);
    const liveSt = JSON.parse(live.out.slice(live.out.indexOf('{')));
    expect(liveSt.slurm.squeue).toBe(true);
    for (const s of liveSt.tiles[0].sub_tiles) expect(['pending', 'running', 'done', 'empty']).toContain(s.state);

    await waitForJobs(480);
    console.log(`slurm run: ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    // the sub-tile failed once on purpose and its task retried it
    expect(existsSync(join(base, 'failed-once'))).toBe(true);
    const logs = readdirSync(join(runDir, 'logs')).filter((f) => f.startsWith('stage2_0_'));
    expect(logs.length).toBe(16);
    const failLog = logs.map((f) => readFileSync(join(runDir, 'logs', f), 'utf8')).find((t) => t.includes('sub-tile (1, 2): attempt 1/3'))!;
    expect(failLog).toContain('sub-tile (1, 2): attempt 1/3 exit 1');
    expect(failLog).toContain('sub-tile (1, 2): attempt 2/3 exit 0, products complete');
    expect(existsSync(join(runDir, 'failed')) ? readdirSync(join(runDir, 'failed')) : []).toEqual([]);

    // the catalog: 16 sub-tiles, shear consistent with the truth
    expect(existsSync(catalog), readdirSync(join(runDir, 'logs')).filter((f) => f.startsWith('stage3')).map((f) => readFileSync(join(runDir, 'logs', f), 'utf8')).join('\n')).toBe(true);
    const cat = readCatalog(catalog);
    expect(cat.size).toBe(16);
    const truth = truthShear(join(base, 'sim'));
    let chi2 = 0;
    let k = 0;
    for (const [key, s] of cat) {
      const g = truth.get(key)!;
      expect(g, key).toBeDefined();
      if (s.n === 0) {
        expect(s.g.every(Number.isNaN), `${key}: an empty sub-tile has NaN shear`).toBe(true);
        continue;
      }
      for (let c = 0; c < 2; c++) {
        expect(Number.isFinite(s.g[c]) && s.err[c] > 0, `${key}: ${s.g} ± ${s.err}`).toBe(true);
        const z = (s.g[c] - g[c]) / s.err[c];
        expect(Math.abs(z), `${key} g${c + 1} = ${s.g[c]} ± ${s.err[c]}, truth ${g[c]}`).toBeLessThan(4);
        chi2 += z * z;
        k++;
      }
    }
    console.log(`slurm catalog: χ² = ${chi2.toFixed(1)} for ${k} shear components`);
    expect(k).toBeGreaterThanOrEqual(20);
    // χ²_k: mean k, sd √(2k); 4 sd is far beyond chance
    expect(chi2).toBeLessThan(k + 4 * Math.sqrt(2 * k));

    // status after the run: 16 done, SLURM states known (squeue within MinJobAge, or sacct)
    const st = await shine(['status', '--config', cfg, '--tiles', String(TILE), '--out', runDir, '--json']);
    const stj = JSON.parse(st.out.slice(st.out.indexOf('{')));
    expect(stj.tiles[0].sub_tiles.map((s: { state: string }) => s.state)).toEqual(Array(16).fill('done'));
    if (!stj.slurm.sacct) expect(stj.slurm.notes.join('\n')).toMatch(/sacct (unavailable|is not on PATH).*files on disk/);
    const table = await shine(['status', '--config', cfg, '--tiles', String(TILE), '--out', runDir]);
    expect(table.out).toMatch(/total: 16 done, 0 running, 0 failed, 0 pending, 0 empty/);

    // shine retry: nothing to do; then a sub-tile's products removed → exactly that one resubmitted
    const none = await shine(['retry', '--config', cfg, '--tiles', String(TILE), '--out', runDir, '--executor', 'slurm', ...slurmOpts]);
    expect(none.code, none.out).toBe(0);
    expect(none.out).toMatch(/nothing to retry/);
    const shear00 = join(base, 'sim', 'results', `shear_${TILE}_0_0.fits`);
    const before = readFileSync(shear00);
    rmSync(shear00);
    const rt = await shine(['retry', '--config', cfg, '--tiles', String(TILE), '--out', runDir, '--catalog', catalog, '--executor', 'slurm', ...slurmOpts], { SHINE_RUNNER: JSON.stringify([process.execPath, '--import', 'tsx']) });
    expect(rt.code, rt.out).toBe(0);
    expect(rt.out).toMatch(/1 sub-tile\(s\) in 1 Stage-2 array/);
    expect(readFileSync(join(runDir, 'retry1_stage2_tasks_0.tsv'), 'utf8')).toBe(`${TILE}\t0\t0\n`);
    expect(readFileSync(join(runDir, 'jobs.tsv'), 'utf8')).toMatch(/\nretry1_stage2_0\t\d+\nretry1_stage3\t\d+\n$/);
    await waitForJobs(300);
    expect(existsSync(shear00)).toBe(true);
    // re-fitted: the same bytes of G1/G2 as the first time
    expect(readCatalog(catalog).get(`${TILE}_0_0`)!.bytes).toBe(cat.get(`${TILE}_0_0`)!.bytes);
    expect(before.length).toBe(readFileSync(shear00).length);

    // the same tile through the local executor, into other folders: identical shear values
    const cfgLocal = join(base, 'sim', 'config-local.yaml');
    const text = readFileSync(cfg, 'utf8');
    expect(text).toMatch(/\n {2}dir: results\n/);
    writeFileSync(cfgLocal, text.replace(/\n {2}dir: results\n/, '\n  dir: results-local\n'));
    const localCat = join(base, 'catalog-local.fits');
    const t1 = Date.now();
    const loc = await shine(['run', '--config', cfgLocal, '--tiles', String(TILE), '--executor', 'local', '--jobs', '2', '--out', join(base, 'run-local'), '--catalog', localCat, '--quiet'], {}, 600_000);
    expect(loc.code, loc.out).toBe(0);
    console.log(`local run: ${((Date.now() - t1) / 1000).toFixed(0)} s`);
    const lc = readCatalog(localCat);
    expect([...lc.keys()].sort()).toEqual([...cat.keys()].sort());
    for (const [key, s] of cat) expect(lc.get(key)!.bytes, `${key}: G1/G2 bytes`).toBe(s.bytes);
  }, 1_200_000);
});
