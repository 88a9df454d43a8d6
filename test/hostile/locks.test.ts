/**
 * One run per output folder (issue 17 item 11): `shine run` locks its run folder (a local run for
 * its whole length; a SLURM / AWS Batch submission and `shine retry` while they write and submit
 * their scripts), `cli/subtile.ts` each sub-tile's outputs, `shine assemble` (Stage 3) each output
 * folder, refusing while a sub-tile there is being written (and a sub-tile run refuses while the
 * folder is being assembled). A second run stops with one line naming the lock file and the
 * holder's pid; a lock of a dead process is taken over (or ignored by Stage 3) with a warning; a
 * lock of another host names the file to delete; the lock is released on exit, on errors and on
 * SIGINT / SIGTERM. Holders are real processes (test/fixtures/lock/hold.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import run from '../../cli/commands/run.ts';
import { RUN_LOCK } from '../../cli/survey-options.ts';
import retry from '../../cli/commands/retry.ts';
import assemble from '../../cli/commands/assemble.ts';
import subtile, { subtileLockName } from '../../cli/subtile.ts';
import { ASSEMBLE_LOCK } from '../../platform/node/output-locks.ts';
import { acquireLock } from '../../platform/node/lock.ts';
import { asCli, errorCase, expectClearError, record } from './harness.ts';

const G = 'locks';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOLD = join(ROOT, 'test', 'fixtures', 'lock', 'hold.ts');
let dir = '';
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'shine-hostile-lock-'));
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Starts a holder; resolves once it holds the lock (its pid), or with its 'busy' line. */
function holder(path: string, what: string, mode: 'hold' | 'try' = 'hold', startAt?: number): { child: ChildProcess; ready: Promise<{ pid?: number; busy?: string }>; exit: Promise<{ code: number | null; signal: string | null }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', HOLD, path, what, mode, ...(startAt ? [String(startAt)] : [])], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const ready = new Promise<{ pid?: number; busy?: string }>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = /locked (\d+)/.exec(out);
      if (m) resolve({ pid: Number(m[1]) });
      const b = /busy (.*)/.exec(out);
      if (b) resolve({ busy: b[1] });
    });
    child.on('exit', (code) => reject(new Error(`holder exited ${code}: ${out}`)));
  });
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  return { child, ready, exit };
}

function config(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const p = join(d, 'c.yaml');
  writeFileSync(p, `distributed:\n  output_dir: ${join(d, 'out')}\n  scratch_dir: ${join(d, 'scratch')}\n  sub_tile_grid: [2, 2]\n`);
  return p;
}

describe('one run per folder', () => {
  it('run-folder-locked: a second shine run on a run folder in use', async () => {
    const cfg = config('run');
    const runDir = join(dir, 'run', 'rundir');
    mkdirSync(runDir, { recursive: true });
    const h = holder(join(runDir, RUN_LOCK), `run folder ${runDir}`);
    const { pid } = await h.ready;
    await errorCase(G, 'run-folder-locked', 'shine run on a run folder another shine run holds', () => run.run(['--config', cfg, '--tiles', '1', '--executor', 'local', '--out', runDir, '--quiet']),
      new RegExp(`run folder .*rundir is locked by another run: pid ${pid} on ${hostname()} since \\S+ holds .*rundir/\\.lock_run; wait for it to finish`));
    h.child.kill('SIGTERM');
    const e = await h.exit;
    expect(e.signal).toBe('SIGTERM'); // the default action, as without the lock
    expect(existsSync(join(runDir, RUN_LOCK))).toBe(false); // released on SIGTERM
  }, 30_000);

  it('subtile-locked: cli/subtile.ts on a sub-tile another run is computing', async () => {
    const cfg = config('sub');
    const out = join(dir, 'sub', 'out');
    mkdirSync(out, { recursive: true });
    const h = holder(join(out, subtileLockName(7, 1, 0)), 'sub-tile (7, 1, 0)');
    const { pid } = await h.ready;
    await errorCase(G, 'subtile-locked', 'cli/subtile.ts on a sub-tile another process holds', () => subtile.run(['--tile-id', '7', '--sub-tile-row', '1', '--sub-tile-col', '0', '--config', cfg, '--quiet']),
      new RegExp(`sub-tile \\(7, 1, 0\\) in .*out is locked by another run: pid ${pid} on \\S+ since \\S+ holds .*/\\.lock_subtile_7_1_0`));
    h.child.kill('SIGINT');
    const e = await h.exit;
    expect(e.signal).toBe('SIGINT');
    expect(existsSync(join(out, subtileLockName(7, 1, 0)))).toBe(false); // released on SIGINT
  }, 30_000);

  it('two processes race for one sub-tile: exactly one gets it, the other names the lock and the pid', async () => {
    const path = join(dir, 'race.lock');
    // both start, then try at the same moment
    const at = Date.now() + 4000;
    const a = holder(path, 'sub-tile (1, 0, 0)', 'try', at);
    const b = holder(path, 'sub-tile (1, 0, 0)', 'try', at);
    const [ra, rb] = await Promise.all([a.ready, b.ready]);
    const won = [ra, rb].filter((r) => r.pid !== undefined);
    const lost = [ra, rb].filter((r) => r.busy !== undefined);
    expect(won.length).toBe(1);
    expect(lost.length).toBe(1);
    expect(lost[0].busy).toMatch(new RegExp(`sub-tile \\(1, 0, 0\\) is locked by another run: pid ${won[0].pid} on .* holds .*race\\.lock`));
    const [ea, eb] = await Promise.all([a.exit, b.exit]);
    expect([ea.code, eb.code].sort()).toEqual([0, 3]);
    expect(existsSync(path)).toBe(false); // released on exit
  }, 30_000);

  it('subtile-stale-lock: a lock left by a killed process is taken over with a warning', async () => {
    record(G, 'subtile-stale-lock', 'a sub-tile lock left by a process killed with SIGKILL', 'cut');
    const path = join(dir, 'stale.lock');
    const h = holder(path, 'sub-tile (2, 0, 0)');
    const { pid } = await h.ready;
    h.child.kill('SIGKILL');
    await h.exit;
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(pid); // left behind
    const warnings: string[] = [];
    const lock = await acquireLock(path, { what: 'sub-tile (2, 0, 0)', warn: (l) => warnings.push(l) });
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^warning: sub-tile \\(2, 0, 0\\): stale lock .*stale\\.lock of pid ${pid} on \\S+ since \\S+ \\(that process is gone\\): taken over$`))]);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    expect(await lock.release()).toBe(true);
    expect(existsSync(path)).toBe(false);
  }, 30_000);

  it('lock-other-host: a lock of another host names the file to delete', async () => {
    const cfg = config('host');
    const out = join(dir, 'host', 'out');
    mkdirSync(out, { recursive: true });
    const path = join(out, subtileLockName(3, 0, 1));
    writeFileSync(path, JSON.stringify({ pid: 4242, host: 'node-17.cluster', started: '2026-01-02T03:04:05.000Z', token: 'abc' }));
    await errorCase(G, 'lock-other-host', 'a sub-tile lock written by a process on another host', () => subtile.run(['--tile-id', '3', '--sub-tile-row', '0', '--sub-tile-col', '1', '--config', cfg, '--quiet']),
      /is locked by a run on another host: pid 4242 on node-17\.cluster since 2026-01-02T03:04:05\.000Z holds .*\.lock_subtile_3_0_1; its process cannot be checked from .* — if that run is no longer running, delete .*\.lock_subtile_3_0_1$/);
    expect(existsSync(path)).toBe(true); // never deleted by the refused run
  });

  it('lock-released-on-error: a sub-tile run that fails leaves no lock', async () => {
    record(G, 'lock-released-on-error', 'a sub-tile run failing after it took its lock (no catalog to prepare from)', 'error');
    const cfg = config('err');
    const r = await asCli(() => subtile.run(['--tile-id', '5', '--sub-tile-row', '0', '--sub-tile-col', '0', '--config', cfg, '--quiet']));
    expectClearError(r, /field data\.tile_index: no tile index/);
    expect(existsSync(join(dir, 'err', 'out', subtileLockName(5, 0, 0)))).toBe(false);
  });

  it('lock-folder-is-file: an output folder that is a file', async () => {
    const d = join(dir, 'file');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'out'), 'x');
    const p = join(d, 'c.yaml');
    writeFileSync(p, `distributed:\n  output_dir: ${join(d, 'out')}\n  sub_tile_grid: [2, 2]\n`);
    await errorCase(G, 'lock-folder-is-file', 'an output folder that is a regular file', () => subtile.run(['--tile-id', '5', '--sub-tile-row', '0', '--sub-tile-col', '0', '--config', p, '--quiet']),
      /cannot create the output folder .*file\/out: /);
  });
});

describe('Stage 3 never reads a half-written sub-tile; submissions lock the run folder', () => {
  const esc = (p: string) => p.replace(/[.?*+^$[\]\\(){}|-]/g, '\\$&');
  const assembleArgs = (cfg: string, name: string) => ['--config', cfg, '--tiles', '7', '--out', join(dir, name, 'cat.fits'), '--allow-missing', '--quiet'];

  it('assemble-subtile-locked: shine assemble while a sub-tile is being written', async () => {
    const cfg = config('asm');
    const out = join(dir, 'asm', 'out');
    mkdirSync(out, { recursive: true });
    const lockPath = join(out, subtileLockName(7, 1, 0));
    const h = holder(lockPath, 'sub-tile (7, 1, 0)');
    const { pid } = await h.ready;
    await errorCase(G, 'assemble-subtile-locked', 'shine assemble on an output folder where a live run holds a sub-tile lock', () => assemble.run(assembleArgs(cfg, 'asm')),
      new RegExp(`output folder ${esc(out)}: tile 7 sub-tile \\(1, 0\\) is being computed or written: pid ${pid} on \\S+ since \\S+ holds ${esc(lockPath)}; assemble when it has finished`));
    expect(existsSync(join(dir, 'asm', 'cat.fits'))).toBe(false); // nothing read, nothing written
    expect(existsSync(join(out, ASSEMBLE_LOCK))).toBe(false); // its own lock released
    // a sub-tile of another tile does not stop it
    const other = await asCli(() => assemble.run(assembleArgs(cfg, 'asm').map((a) => (a === '7' ? '8' : a))));
    expect(other.code, other.stderr).toBe(0);
    h.child.kill('SIGTERM');
    await h.exit;
    // once the sub-tile run is over, Stage 3 goes on
    const r = await asCli(() => assemble.run(assembleArgs(cfg, 'asm')));
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(dir, 'asm', 'cat.fits'))).toBe(true);
  }, 30_000);

  it('assemble-subtile-other-host: a sub-tile lock of another host names the file to delete', async () => {
    const cfg = config('asmhost');
    const out = join(dir, 'asmhost', 'out');
    mkdirSync(out, { recursive: true });
    const path = join(out, subtileLockName(7, 0, 1));
    writeFileSync(path, JSON.stringify({ pid: 4242, host: 'node-17.cluster', started: '2026-01-02T03:04:05.000Z', token: 'abc' }));
    await errorCase(G, 'assemble-subtile-other-host', 'shine assemble beside a sub-tile lock written on another host', () => assemble.run(assembleArgs(cfg, 'asmhost')),
      new RegExp(`tile 7 sub-tile \\(0, 1\\) is being computed or written: pid 4242 on node-17\\.cluster since 2026-01-02T03:04:05\\.000Z holds ${esc(path)}; .* if it is no longer running, delete ${esc(path)}$`));
    expect(existsSync(path)).toBe(true);
  });

  it('assemble-stale-subtile-lock: a sub-tile lock of a killed run is ignored with a warning', async () => {
    record(G, 'assemble-stale-subtile-lock', 'shine assemble beside a sub-tile lock left by a run killed with SIGKILL', 'cut');
    const cfg = config('asmstale');
    const out = join(dir, 'asmstale', 'out');
    mkdirSync(out, { recursive: true });
    const path = join(out, subtileLockName(7, 1, 1));
    const h = holder(path, 'sub-tile (7, 1, 1)');
    const { pid } = await h.ready;
    h.child.kill('SIGKILL');
    await h.exit;
    const r = await asCli(() => assemble.run(assembleArgs(cfg, 'asmstale')));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`assemble: warning: stale sub-tile lock ${esc(path)} of pid ${pid} on \\S+ since \\S+ \\(that run is gone\\): ignored`));
  }, 30_000);

  it('assemble-twice: a second shine assemble on a folder being assembled', async () => {
    const cfg = config('asm2');
    const out = join(dir, 'asm2', 'out');
    mkdirSync(out, { recursive: true });
    const h = holder(join(out, ASSEMBLE_LOCK), `output folder ${out} (Stage 3)`);
    const { pid } = await h.ready;
    await errorCase(G, 'assemble-twice', 'shine assemble on an output folder another shine assemble holds', () => assemble.run(assembleArgs(cfg, 'asm2')),
      new RegExp(`output folder ${esc(out)} \\(Stage 3\\) is locked by another run: pid ${pid} on \\S+ since \\S+ holds ${esc(join(out, ASSEMBLE_LOCK))}`));
    h.child.kill('SIGTERM');
    await h.exit;
  }, 30_000);

  it('subtile-while-assembling: cli/subtile.ts on a folder Stage 3 is reading', async () => {
    const cfg = config('subasm');
    const out = join(dir, 'subasm', 'out');
    mkdirSync(out, { recursive: true });
    const h = holder(join(out, ASSEMBLE_LOCK), `output folder ${out} (Stage 3)`);
    const { pid } = await h.ready;
    await errorCase(G, 'subtile-while-assembling', 'cli/subtile.ts on an output folder a live shine assemble holds', () => subtile.run(['--tile-id', '7', '--sub-tile-row', '0', '--sub-tile-col', '0', '--config', cfg, '--quiet']),
      new RegExp(`sub-tile \\(7, 0, 0\\) in .*out: the output folder is being assembled \\(Stage 3\\): pid ${pid} on \\S+ since \\S+ holds ${esc(join(out, ASSEMBLE_LOCK))}; run the sub-tile when the assembly has finished`));
    expect(existsSync(join(out, subtileLockName(7, 0, 0)))).toBe(false); // its own lock released
    h.child.kill('SIGTERM');
    await h.exit;
  }, 30_000);

  const submissions: Array<[id: string, what: string, cmd: () => typeof run, args: (cfg: string, runDir: string) => string[], who: string]> = [
    ['slurm-submit-locked', 'shine run --executor slurm (--dry-run) on a run folder a local run holds', () => run, (cfg, runDir) => ['--config', cfg, '--tiles', '1', '--executor', 'slurm', '--dry-run', '--out', runDir], 'run'],
    ['awsbatch-submit-locked', 'shine run --executor aws-batch --dry-run on a run folder a local run holds', () => run, (cfg, runDir) => ['--config', cfg, '--tiles', '1', '--executor', 'aws-batch', '--dry-run', '--out', runDir], 'run'],
    ['retry-slurm-locked', 'shine retry --executor slurm (--dry-run) on a run folder a local run holds', () => retry, (cfg, runDir) => ['--config', cfg, '--tiles', '1', '--executor', 'slurm', '--dry-run', '--out', runDir], 'retry'],
  ];
  for (const [id, what, cmd, args] of submissions) {
    it(`${id}: ${what}`, async () => {
      const cfg = config(id);
      const runDir = join(dir, id, 'rundir');
      mkdirSync(runDir, { recursive: true });
      const h = holder(join(runDir, RUN_LOCK), `run folder ${runDir}`);
      const { pid } = await h.ready;
      await errorCase(G, id, what, () => cmd().run(args(cfg, runDir)),
        new RegExp(`run folder ${esc(runDir)} is locked by another run: pid ${pid} on \\S+ since \\S+ holds ${esc(join(runDir, RUN_LOCK))}; wait for it to finish`));
      expect(existsSync(join(runDir, 'submit.sh'))).toBe(false); // no script written
      h.child.kill('SIGTERM');
      await h.exit;
      // the folder free: the submission (dry run) writes its scripts and leaves no lock behind
      const r = await asCli(() => cmd().run(args(cfg, runDir)));
      expect(r.code, r.stderr).toBe(0);
      expect(existsSync(join(runDir, RUN_LOCK))).toBe(false);
    }, 30_000);
  }
});
