/**
 * SLURM job states of a survey run, from the text squeue and sacct print (runtime-agnostic: no
 * process spawning here; platform/node/slurm-query.ts runs the commands).
 *
 *   squeue --noheader --array --states=all --format=%i|%T|%r --jobs=ID,…
 *   sacct  --parsable2 --noheader --format=JobID,State,ExitCode --jobs=ID,…
 *
 * A job id is `123` (plain job), `123_4` (array task 4 of array job 123), `123_[5-9,12%2]`
 * (pending array tasks not yet split; `%2` is a throttle), or `123_4.batch` / `123.0` (steps,
 * ignored). `jobs.tsv` (written by submit.sh) maps each submitted job to its stage
 * (`stage2_<k>`, `retry<n>_stage2_<k>` …) and so to the index file listing its tasks' sub-tiles.
 */
import { ShineError } from '../errors.ts';
import type { SubtileTask } from './plan.ts';

/** Coarse state of a job or sub-tile. */
export type RunState = 'pending' | 'running' | 'done' | 'failed';

export interface SlurmJobRecord {
  /** The (array) job id, digits. */
  jobId: string;
  /** Array task ids the record covers; null for a job that is not an array task. */
  tasks: number[] | null;
  /** SLURM state name, e.g. PENDING, RUNNING, COMPLETED, FAILED, OUT_OF_MEMORY, CANCELLED. */
  state: string;
  /** squeue reason (e.g. Resources, Dependency) or sacct exit code (`1:0`). */
  info: string;
}

export interface SubmittedJob {
  stage: string;
  jobId: string;
}

const PENDING = new Set(['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'RESV_DEL_HOLD', 'SUSPENDED', 'STOPPED']);
const RUNNING = new Set(['RUNNING', 'COMPLETING', 'STAGE_OUT', 'SIGNALING', 'RESIZING', 'UPDATE_DB', 'POWER_UP_NODE']);
const FAILED = new Set(['FAILED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'CANCELLED', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED', 'REVOKED', 'SPECIAL_EXIT']);

/**
 * The coarse state of a SLURM state name (squeue %T or sacct State; sacct may write
 * `CANCELLED by 1234`). Unknown names count as pending (the job is still known to SLURM).
 */
export function classifySlurmState(state: string): RunState {
  const s = state.trim().split(/\s+/)[0].replace(/\+$/, '').toUpperCase();
  if (s === 'COMPLETED') return 'done';
  if (FAILED.has(s)) return 'failed';
  if (RUNNING.has(s)) return 'running';
  if (PENDING.has(s)) return 'pending';
  return 'pending';
}

/** The SLURM state name without `by <uid>` (sacct) or a trailing `+`. */
export function stateName(state: string): string {
  return state.trim().split(/\s+/)[0].replace(/\+$/, '').toUpperCase();
}

/** Expands an array-task list `5-9,12,20-30:2%4` (ranges, steps, throttle) to task ids. */
export function expandArrayTasks(spec: string): number[] {
  const out: number[] = [];
  const body = spec.replace(/%\d+$/, '');
  for (const part of body.split(',')) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part);
    if (!m) throw new ShineError(`cannot read the SLURM array task list '${spec}'`);
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    const step = m[3] !== undefined ? Number(m[3]) : 1;
    if (b < a || step < 1 || b - a > 10_000_000) throw new ShineError(`cannot read the SLURM array task list '${spec}'`);
    for (let t = a; t <= b; t += step) out.push(t);
  }
  return out;
}

/** Parses a job id field; null for a job step (`123.batch`, `123_4.0`) or a malformed id. */
function parseJobId(field: string): { jobId: string; tasks: number[] | null } | null {
  const f = field.trim();
  if (f.includes('.')) return null;
  let m = /^(\d+)$/.exec(f);
  if (m) return { jobId: m[1], tasks: null };
  m = /^(\d+)_(\d+)$/.exec(f);
  if (m) return { jobId: m[1], tasks: [Number(m[2])] };
  m = /^(\d+)_\[([0-9,:%-]+)\]$/.exec(f);
  if (m) return { jobId: m[1], tasks: expandArrayTasks(m[2]) };
  return null;
}

function parseRecords(text: string, fields: number, what: string): SlurmJobRecord[] {
  const out: SlurmJobRecord[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const parts = line.split('|');
    if (parts.length < fields) throw new ShineError(`${what}: cannot read the line '${line}' (expected ${fields} fields separated by '|')`);
    const id = parseJobId(parts[0]);
    if (!id) continue;
    out.push({ ...id, state: parts[1].trim(), info: parts.slice(2).join('|').trim() });
  }
  return out;
}

/** Parses `squeue --noheader --format=%i|%T|%r` output (with or without `--array`). */
export function parseSqueue(text: string): SlurmJobRecord[] {
  return parseRecords(text, 3, 'squeue');
}

/** Parses `sacct --parsable2 --noheader --format=JobID,State,ExitCode` output (steps ignored). */
export function parseSacct(text: string): SlurmJobRecord[] {
  return parseRecords(text, 3, 'sacct');
}

/** Parses jobs.tsv (`stage<TAB>jobid` per line, as submit.sh writes it). */
export function parseJobsTsv(text: string, file = 'jobs.tsv'): SubmittedJob[] {
  const out: SubmittedJob[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    const [stage, jobId, ...rest] = line.split('\t');
    if (rest.length || !/^[A-Za-z0-9_]+$/.test(stage ?? '') || !/^\d+$/.test(jobId ?? '')) throw new ShineError(`line ${i + 1}: expected 'stage<TAB>job id', got ${JSON.stringify(line)}`, { file });
    out.push({ stage, jobId });
  });
  return out;
}

/** The index file of a Stage-2 stage name (`stage2_3` → `stage2_tasks_3.tsv`), or null for other stages. */
export function stage2IndexName(stage: string): string | null {
  const m = /^((?:retry\d+_)?)stage2_(\d+)$/.exec(stage);
  return m ? `${m[1]}stage2_tasks_${m[2]}.tsv` : null;
}

/** Parses a Stage-2 index file (`tile<TAB>row<TAB>col` per line; task k on line k+1). */
export function parseTaskIndex(text: string, file: string): SubtileTask[] {
  return text.split('\n').filter((l) => l !== '').map((line, i) => {
    const m = /^(\d+)\t(\d+)\t(\d+)$/.exec(line);
    if (!m) throw new ShineError(`line ${i + 1}: expected 'tile<TAB>row<TAB>col', got ${JSON.stringify(line)}`, { file });
    return { tileId: Number(m[1]), row: Number(m[2]), col: Number(m[3]) };
  });
}

export interface SubtileSlurmState {
  state: RunState;
  /** SLURM state name. */
  slurmState: string;
  /** `123_4`. */
  job: string;
  /** Which command said so. */
  source: 'squeue' | 'sacct';
  info: string;
}

export const subtileKey = (tileId: number, row: number, col: number): string => `${tileId}/${row}/${col}`;

/**
 * Per sub-tile, the SLURM state of the latest Stage-2 task that ran it. Jobs are taken in
 * submission order (a later submission — a retry — overrides an earlier one); for one job, a
 * squeue record (live) overrides a sacct record.
 */
export function subtileSlurmStates(
  jobs: readonly SubmittedJob[],
  indexOf: (stage: string) => readonly SubtileTask[] | null,
  squeue: readonly SlurmJobRecord[],
  sacct: readonly SlurmJobRecord[],
): Map<string, SubtileSlurmState> {
  const out = new Map<string, SubtileSlurmState>();
  for (const j of jobs) {
    const tasks = indexOf(j.stage);
    if (!tasks) continue;
    for (const [source, recs] of [['sacct', sacct], ['squeue', squeue]] as const) {
      for (const r of recs) {
        if (r.jobId !== j.jobId) continue;
        // a non-array record of an array job (rare: sacct without array expansion) covers every task
        const ids = r.tasks ?? tasks.map((_, k) => k);
        for (const k of ids) {
          const t = tasks[k];
          if (!t) continue;
          out.set(subtileKey(t.tileId, t.row, t.col), { state: classifySlurmState(r.state), slurmState: stateName(r.state), job: r.tasks ? `${r.jobId}_${k}` : r.jobId, source, info: r.info });
        }
      }
    }
  }
  return out;
}

/** States of the non-Stage-2 jobs (Stage 1, Stage 3) by stage name: the latest record wins, squeue over sacct. */
export function stageJobStates(jobs: readonly SubmittedJob[], squeue: readonly SlurmJobRecord[], sacct: readonly SlurmJobRecord[]): Array<SubmittedJob & { states: string[] }> {
  return jobs.map((j) => {
    const live = squeue.filter((r) => r.jobId === j.jobId);
    const recs = live.length ? live : sacct.filter((r) => r.jobId === j.jobId);
    const counts = new Map<string, number>();
    for (const r of recs) counts.set(stateName(r.state), (counts.get(stateName(r.state)) ?? 0) + (r.tasks ? r.tasks.length : 1));
    return { ...j, states: [...counts].map(([s, n]) => (n > 1 ? `${s} ×${n}` : s)) };
  });
}
