/**
 * `shine status` and `shine retry --executor slurm --dry-run` on a run folder whose jobs are known
 * to a fake squeue/sacct on PATH (the real cluster is in slurm-real.test.ts): sacct states
 * (TIMEOUT, OUT_OF_MEMORY, COMPLETED without products) make sub-tiles failed, a RUNNING task in
 * squeue keeps its sub-tile out of the retry; without accounting (sacct errors) status says so.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli } from '../helpers/cli.ts';
import statusCmd from '../../cli/commands/status.ts';
import retryCmd from '../../cli/commands/retry.ts';

const cli = runCli;

function fakeBin(dir: string, name: string, body: string): void {
  writeFileSync(join(dir, name), `#!/bin/bash\n${body}\n`);
  chmodSync(join(dir, name), 0o755);
}

afterEach(() => vi.restoreAllMocks());

describe('status and retry with SLURM states', () => {
  const base = mkdtempSync(join(tmpdir(), 'status-slurm '));
  const cfg = join(base, 'config.yaml');
  writeFileSync(cfg, 'distributed: {output_dir: out, scratch_dir: scratch, sub_tile_grid: [2, 2]}\n');
  const run = join(base, 'scratch', 'run');
  mkdirSync(run, { recursive: true });
  writeFileSync(join(run, 'jobs.tsv'), 'stage1_0\t40\nstage2_0\t41\nstage3\t42\n');
  writeFileSync(join(run, 'stage2_tasks_0.tsv'), '7\t0\t0\n7\t0\t1\n7\t1\t0\n7\t1\t1\n');
  const bin = join(base, 'bin');
  mkdirSync(bin);
  // squeue: only task 3 still running; sacct: what accounting recorded
  fakeBin(bin, 'squeue', `case "$*" in *--jobs=40,41,42*) echo '41_3|RUNNING|None';; *) echo "unexpected squeue $*" >&2; exit 1;; esac`);
  fakeBin(bin, 'sacct', `[ -n "$NO_ACCOUNTING" ] && { echo 'Slurm accounting storage is disabled' >&2; exit 1; }
printf '%s\\n' '40_0|COMPLETED|0:0' '41_0|COMPLETED|0:0' '41_0.batch|COMPLETED|0:0' '41_1|TIMEOUT|0:0' '41_2|OUT_OF_MEMORY|0:125' '41_3|RUNNING|0:0' '42|CANCELLED by 0|0:0'`);
  const env = { PATH: `${bin}:${process.env.PATH}` };

  it('status: failed from sacct, running from squeue', async () => {
    const s = await cli(statusCmd, ['--config', cfg, '--tiles', '7', '--json'], env);
    expect(s.code, s.out).toBe(0);
    const st = JSON.parse(s.out.slice(s.out.indexOf('{')));
    expect(st.slurm).toMatchObject({ squeue: true, sacct: true });
    const subs = st.tiles[0].sub_tiles as Array<{ state: string; slurm_state?: string; slurm_job?: string; detail?: string }>;
    expect(subs.map((x) => [x.state, x.slurm_state, x.slurm_job])).toEqual([
      ['failed', 'COMPLETED', '41_0'], ['failed', 'TIMEOUT', '41_1'], ['failed', 'OUT_OF_MEMORY', '41_2'], ['running', 'RUNNING', '41_3'],
    ]);
    expect(subs[0].detail).toMatch(/COMPLETED.*products are not complete/);
    expect(subs[2].detail).toMatch(/OUT_OF_MEMORY.*exit 0:125/);
    expect(st.slurm.jobs.find((j: { stage: string }) => j.stage === 'stage3').states).toEqual(['CANCELLED']);
    const table = await cli(statusCmd, ['--config', cfg, '--tiles', '7'], env);
    expect(table.out).toMatch(/total: 0 done, 1 running, 3 failed, 0 pending, 0 empty/);
  });

  it('status without accounting falls back on squeue and the disk, and says so', async () => {
    const s = await cli(statusCmd, ['--config', cfg, '--tiles', '7', '--json'], { ...env, NO_ACCOUNTING: '1' });
    const st = JSON.parse(s.out.slice(s.out.indexOf('{')));
    expect(st.slurm).toMatchObject({ squeue: true, sacct: false });
    expect(st.slurm.notes.join('\n')).toMatch(/sacct unavailable \(Slurm accounting storage is disabled\): states from squeue .* and the files on disk/);
    expect(st.tiles[0].sub_tiles.map((x: { state: string }) => x.state)).toEqual(['pending', 'pending', 'pending', 'running']);
  });

  it('retry --dry-run resubmits the failed sub-tiles, not the running one', async () => {
    const r = await cli(retryCmd, ['--config', cfg, '--tiles', '7', '--executor', 'slurm', '--dry-run', '--retries', '1', '--gpus-per-task', '0'], env);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/1 sub-tile\(s\) still queued or running/);
    expect(r.out).toMatch(/3 sub-tile\(s\) in 1 Stage-2 array\(s\), 1 tile\(s\) to prepare, then Stage 3/);
    expect(readFileSync(join(run, 'retry1_stage2_tasks_0.tsv'), 'utf8')).toBe('7\t0\t0\n7\t0\t1\n7\t1\t0\n');
    expect(readFileSync(join(run, 'retry1_stage2_0.sh'), 'utf8')).toContain("SHINE_RETRIES='1'");
    expect(readFileSync(join(run, 'retry1_submit.sh'), 'utf8')).not.toContain(': > "$SHINE_RUN/jobs.tsv"');
    // the next retry takes the next number (the dry run wrote retry1_*)
    const r2 = await cli(retryCmd, ['--config', cfg, '--tiles', '7', '--executor', 'slurm', '--dry-run'], env);
    expect(r2.out).toContain(`bash ${join(run, 'retry2_submit.sh')}`);
  });
});

describe('slurm-task.ts (the helper of the Stage-2 task scripts)', () => {
  const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const task = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'platform', 'node', 'slurm-task.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
  it('done: exit 3 naming the missing products; failed: a marker holding hostile values intact; bad integers refused', () => {
    const base = mkdtempSync(join(tmpdir(), 'slurm-task '));
    const run = join(base, "run $(touch PWNED) '");
    const ids = ['--tile-id', '7', '--sub-tile-row', '1', '--sub-tile-col', '0'];
    const d = task(['done', '--run', run, '--out', join(base, 'out'), ...ids]);
    expect(d.status).toBe(3);
    expect(d.stderr).toContain('missing shear_7_1_0.fits');
    const log = `${run}/logs/stage2_0_12_3.log\n"x"`;
    const f = task(['failed', '--run', run, ...ids, '--attempts', '3', '--exit-code', '137', '--log', log, '--job', '12_3']);
    expect(f.status, f.stderr).toBe(0);
    const marker = JSON.parse(readFileSync(join(run, 'failed', '7_1_0.json'), 'utf8'));
    expect(marker).toMatchObject({ tile_id: 7, row: 1, col: 0, attempts: 3, exit_code: 137, log, slurm_job: '12_3' });
    expect(task(['failed', '--run', run, ...ids, '--attempts', 'x', '--exit-code', '1', '--log', 'l']).status).toBe(2);
    expect(existsSync(join(base, 'PWNED'))).toBe(false);
  }, 60_000);
});
