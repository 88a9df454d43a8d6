/**
 * A sub-tile lock left on the shared file system by a SLURM task whose node died: the rerun on
 * another node (shine retry) asks squeue whether the holder's job has ended and takes the lock
 * over only then (platform/node/lock.ts `slurmJobEnded`). squeue is a stand-in script on PATH that
 * answers as the real one does: nothing for a job that left the queue, its state for a queued or
 * running one, "Invalid job id specified" (exit 1) for one the controller forgot.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { acquireLock, LockBusy, slurmJobEnded } from '../../platform/node/lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'shine-lock-slurm-'));
const bin = join(dir, 'bin');
const PATH0 = process.env.PATH;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  process.env.PATH = PATH0;
});

function fakeSqueue(script: string): void {
  rmSync(bin, { recursive: true, force: true });
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'squeue'), `#!/bin/sh\n${script}\n`);
  chmodSync(join(bin, 'squeue'), 0o755);
  process.env.PATH = `${bin}:${PATH0}`;
}

function foreignLock(name: string, slurmJob?: string): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ pid: 4242, host: 'node-17.cluster', started: '2026-01-02T03:04:05.000Z', token: 'abc', ...(slurmJob ? { slurmJob } : {}) }));
  return path;
}

describe('locks of SLURM tasks on another node', () => {
  it('squeue prints nothing (the job left the queue): taken over with a warning', async () => {
    fakeSqueue('exit 0');
    const path = foreignLock('gone.lock', '777_3');
    const warnings: string[] = [];
    const lock = await acquireLock(path, { what: 'sub-tile (1, 0, 0)', warn: (l) => warnings.push(l) });
    expect(warnings).toEqual([expect.stringMatching(/stale lock .*gone\.lock of pid 4242 on node-17\.cluster since .* \(SLURM job 777_3\) \(squeue: that job has ended\): taken over$/)]);
    expect(JSON.parse(readFileSync(path, 'utf8')).pid).toBe(process.pid);
    expect(await lock.release()).toBe(true);
  });

  it('squeue says "Invalid job id specified": ended, taken over', async () => {
    fakeSqueue('echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1');
    expect(slurmJobEnded('778')).toBe(true);
    const lock = await acquireLock(foreignLock('invalid.lock', '778'), { what: 'sub-tile (1, 0, 1)' });
    expect(await lock.release()).toBe(true);
  });

  it('squeue says RUNNING: refused, naming the job; the lock stays', async () => {
    fakeSqueue('echo RUNNING');
    const path = foreignLock('running.lock', '779_0');
    await expect(acquireLock(path, { what: 'sub-tile (1, 1, 0)' })).rejects.toThrow(LockBusy);
    await expect(acquireLock(path, { what: 'sub-tile (1, 1, 0)' })).rejects.toThrow(/SLURM job 779_0.*squeue does not say its job has ended/);
    expect(existsSync(path)).toBe(true);
  });

  it('squeue cannot be asked (controller down) or the lock names no job: refused', async () => {
    fakeSqueue('echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1');
    expect(slurmJobEnded('780')).toBeUndefined();
    await expect(acquireLock(foreignLock('down.lock', '780'), { what: 'sub-tile (1, 1, 1)' })).rejects.toThrow(LockBusy);
    fakeSqueue('exit 0');
    await expect(acquireLock(foreignLock('nojob.lock'), { what: 'sub-tile (1, 2, 1)' })).rejects.toThrow(/delete .*nojob\.lock$/);
  });

  it('a holder running under SLURM records its job', async () => {
    process.env.SLURM_ARRAY_JOB_ID = '900';
    process.env.SLURM_ARRAY_TASK_ID = '12';
    try {
      const lock = await acquireLock(join(dir, 'mine.lock'), { what: 'sub-tile (2, 0, 0)' });
      expect(JSON.parse(readFileSync(lock.path, 'utf8')).slurmJob).toBe('900_12');
      await lock.release();
    } finally {
      delete process.env.SLURM_ARRAY_JOB_ID;
      delete process.env.SLURM_ARRAY_TASK_ID;
    }
  });
});
