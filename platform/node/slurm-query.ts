/**
 * SLURM states of the jobs of a run folder (jobs.tsv written by submit.sh): runs squeue and sacct
 * (inheriting the environment, so SLURM_CONF and friends apply) and maps array tasks to sub-tiles
 * through the Stage-2 index files. When sacct fails (no accounting storage configured) or is not
 * installed, the states come from squeue (live and recently finished jobs, within MinJobAge) and
 * the caller falls back on the files on disk; `notes` says so.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseJobsTsv, parseSacct, parseSqueue, parseTaskIndex, stage2IndexName, stageJobStates, subtileSlurmStates, type SlurmJobRecord, type SubmittedJob, type SubtileSlurmState } from '../../engine/orchestrate/slurm-state.ts';
import type { SubtileTask } from '../../engine/orchestrate/plan.ts';
import { onPath } from './executor-local.ts';

export interface SlurmRunState {
  /** squeue answered (jobs.tsv present and squeue on PATH). */
  squeue: boolean;
  /** sacct answered. */
  sacct: boolean;
  jobs: Array<SubmittedJob & { states: string[] }>;
  subtiles: Map<string, SubtileSlurmState>;
  notes: string[];
}

function firstLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
}

/** Runs squeue/sacct for the jobs of `runDir`; never throws for an unavailable SLURM. */
export async function querySlurm(runDir: string): Promise<SlurmRunState> {
  const notes: string[] = [];
  const jobsFile = join(runDir, 'jobs.tsv');
  let jobs: SubmittedJob[] = [];
  try {
    jobs = parseJobsTsv(await readFile(jobsFile, 'utf8'), jobsFile);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const res: SlurmRunState = { squeue: false, sacct: false, jobs: [], subtiles: new Map(), notes };
  if (!jobs.length) {
    notes.push(`no SLURM jobs recorded in ${jobsFile}`);
    return res;
  }
  notes.push(`${jobs.length} SLURM job(s) recorded in ${jobsFile}`);
  const ids = [...new Set(jobs.map((j) => j.jobId))].join(',');
  let squeue: SlurmJobRecord[] = [];
  let sacct: SlurmJobRecord[] = [];
  if (await onPath('squeue')) {
    const r = spawnSync('squeue', ['--noheader', '--array', '--states=all', '--format=%i|%T|%r', `--jobs=${ids}`], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      squeue = parseSqueue(r.stdout);
      res.squeue = true;
    } else if (/invalid job id/i.test(r.stderr ?? '')) res.squeue = true; // none of the jobs is known any more
    else notes.push(`squeue failed: ${firstLine(r.stderr ?? '') || r.error?.message || `exit ${r.status}`}`);
  } else notes.push('squeue is not on PATH');
  if (await onPath('sacct')) {
    const r = spawnSync('sacct', ['--parsable2', '--noheader', '--format=JobID,State,ExitCode', `--jobs=${ids}`], { encoding: 'utf8', timeout: 60_000 });
    if (r.status === 0) {
      sacct = parseSacct(r.stdout);
      res.sacct = true;
    } else notes.push(`sacct unavailable (${firstLine(r.stderr ?? '') || r.error?.message || `exit ${r.status}`}): states from ${res.squeue ? 'squeue (jobs finished longer than MinJobAge ago are no longer listed) and ' : ''}the files on disk`);
  } else notes.push(`sacct is not on PATH: states from ${res.squeue ? 'squeue and ' : ''}the files on disk`);

  const index = new Map<string, SubtileTask[] | null>();
  for (const j of jobs) {
    const name = stage2IndexName(j.stage);
    if (!name || index.has(j.stage)) continue;
    try {
      index.set(j.stage, parseTaskIndex(await readFile(join(runDir, name), 'utf8'), join(runDir, name)));
    } catch (e) {
      notes.push(`cannot read ${join(runDir, name)}: ${(e as Error).message}`);
      index.set(j.stage, null);
    }
  }
  res.subtiles = subtileSlurmStates(jobs, (s) => index.get(s) ?? null, squeue, sacct);
  res.jobs = stageJobStates(jobs, squeue, sacct);
  return res;
}
