/**
 * Parsing squeue / sacct / jobs.tsv text (engine/orchestrate/slurm-state.ts) on sample outputs in
 * the formats SLURM documents (the squeue sample was printed by slurm-wlm 22.05 on this machine),
 * and the mapping of array tasks to sub-tiles, a retry overriding the first submission.
 */
import { describe, expect, it } from 'vitest';
import { classifySlurmState, expandArrayTasks, parseJobsTsv, parseSacct, parseSqueue, parseTaskIndex, stage2IndexName, stageJobStates, subtileKey, subtileSlurmStates } from '../../engine/orchestrate/slurm-state.ts';

// squeue --noheader --array --states=all --format=%i|%T|%r  (and one line without --array)
const SQUEUE = `1_2|PENDING|Resources
1_3|PENDING|Resources
1_0|RUNNING|None
1_1|RUNNING|None
7_[4-6,9]|PENDING|Dependency
8|COMPLETED|None
`;

// sacct --parsable2 --noheader --format=JobID,State,ExitCode
const SACCT = `1_0|COMPLETED|0:0
1_0.batch|COMPLETED|0:0
1_1|FAILED|1:0
1_1.batch|FAILED|1:0
1_2|OUT_OF_MEMORY|0:125
1_2.extern|COMPLETED|0:0
1_3|TIMEOUT|0:0
5_0|CANCELLED by 1000|0:0
5_1|NODE_FAIL|0:0
5_[2-6:2%1]|PENDING|0:0
9|COMPLETED|0:0
9.batch|COMPLETED|0:0
`;

describe('squeue / sacct text', () => {
  it('parses squeue records, expanding pending array ranges', () => {
    const r = parseSqueue(SQUEUE);
    expect(r).toEqual([
      { jobId: '1', tasks: [2], state: 'PENDING', info: 'Resources' },
      { jobId: '1', tasks: [3], state: 'PENDING', info: 'Resources' },
      { jobId: '1', tasks: [0], state: 'RUNNING', info: 'None' },
      { jobId: '1', tasks: [1], state: 'RUNNING', info: 'None' },
      { jobId: '7', tasks: [4, 5, 6, 9], state: 'PENDING', info: 'Dependency' },
      { jobId: '8', tasks: null, state: 'COMPLETED', info: 'None' },
    ]);
  });

  it('parses sacct records, ignoring job steps; ranges with step and throttle', () => {
    const r = parseSacct(SACCT);
    expect(r.map((x) => `${x.jobId}:${x.tasks?.join(',') ?? '-'}:${x.state}:${x.info}`)).toEqual([
      '1:0:COMPLETED:0:0', '1:1:FAILED:1:0', '1:2:OUT_OF_MEMORY:0:125', '1:3:TIMEOUT:0:0',
      '5:0:CANCELLED by 1000:0:0', '5:1:NODE_FAIL:0:0', '5:2,4,6:PENDING:0:0', '9:-:COMPLETED:0:0',
    ]);
    expect(expandArrayTasks('0-3,7,10-14:2%4')).toEqual([0, 1, 2, 3, 7, 10, 12, 14]);
    expect(() => expandArrayTasks('3-1')).toThrow(/array task list/);
    expect(() => parseSacct('no separators here')).toThrow(/sacct/);
    expect(parseSqueue('')).toEqual([]);
  });

  it('classifies SLURM state names', () => {
    const want: Record<string, string> = {
      PENDING: 'pending', REQUEUED: 'pending', SUSPENDED: 'pending', CONFIGURING: 'pending',
      RUNNING: 'running', COMPLETING: 'running',
      COMPLETED: 'done',
      FAILED: 'failed', TIMEOUT: 'failed', OUT_OF_MEMORY: 'failed', NODE_FAIL: 'failed', 'CANCELLED by 1000': 'failed', 'CANCELLED+': 'failed', BOOT_FAIL: 'failed', PREEMPTED: 'failed', DEADLINE: 'failed',
    };
    for (const [s, c] of Object.entries(want)) expect(classifySlurmState(s), s).toBe(c);
  });

  it('reads jobs.tsv and refuses a malformed line', () => {
    expect(parseJobsTsv('stage1_0\t10\nstage2_0\t11\n\nretry1_stage2_0\t20\n')).toEqual([
      { stage: 'stage1_0', jobId: '10' }, { stage: 'stage2_0', jobId: '11' }, { stage: 'retry1_stage2_0', jobId: '20' },
    ]);
    expect(() => parseJobsTsv('stage2_0\t$(x)\n', 'J')).toThrow(/J.*line 1/s);
    expect(stage2IndexName('stage2_3')).toBe('stage2_tasks_3.tsv');
    expect(stage2IndexName('retry2_stage2_0')).toBe('retry2_stage2_tasks_0.tsv');
    expect(stage2IndexName('stage3')).toBeNull();
    expect(stage2IndexName('stage1_0')).toBeNull();
    expect(() => parseTaskIndex('1\t2\n', 'idx')).toThrow(/idx/);
  });
});

describe('sub-tile states from the jobs of a run', () => {
  it('maps array tasks to sub-tiles through the index files; a retry overrides; squeue over sacct', () => {
    // run: stage2_0 = job 1 over 4 sub-tiles of tile 50; retry1_stage2_0 = job 5 over two of them
    const idx: Record<string, string> = {
      stage2_0: '50\t0\t0\n50\t0\t1\n50\t1\t0\n50\t1\t1\n',
      retry1_stage2_0: '50\t0\t1\n50\t1\t0\n',
    };
    const jobs = parseJobsTsv('stage1_0\t0\nstage2_0\t1\nstage3\t2\nretry1_stage2_0\t5\nretry1_stage3\t6\n');
    const index = (s: string) => (idx[s] ? parseTaskIndex(idx[s], s) : null);
    const sacct = parseSacct(SACCT);
    const m = subtileSlurmStates(jobs, index, [], sacct);
    // (0,0): task 0 of job 1 COMPLETED; (0,1): job 1 task 1 FAILED, then retry job 5 task 0 CANCELLED
    expect(m.get(subtileKey(50, 0, 0))).toMatchObject({ state: 'done', slurmState: 'COMPLETED', job: '1_0', source: 'sacct' });
    expect(m.get(subtileKey(50, 0, 1))).toMatchObject({ state: 'failed', slurmState: 'CANCELLED', job: '5_0' });
    expect(m.get(subtileKey(50, 1, 0))).toMatchObject({ state: 'failed', slurmState: 'NODE_FAIL', job: '5_1' });
    expect(m.get(subtileKey(50, 1, 1))).toMatchObject({ state: 'failed', slurmState: 'TIMEOUT', job: '1_3', info: '0:0' });
    // live squeue records override sacct for the same job
    const live = subtileSlurmStates(jobs, index, parseSqueue('1_3|RUNNING|None\n'), sacct);
    expect(live.get(subtileKey(50, 1, 1))).toMatchObject({ state: 'running', source: 'squeue' });
    // squeue only (sacct unavailable)
    const q = subtileSlurmStates(jobs, index, parseSqueue(SQUEUE), []);
    expect([...q.keys()].sort()).toEqual([subtileKey(50, 0, 0), subtileKey(50, 0, 1), subtileKey(50, 1, 0), subtileKey(50, 1, 1)].sort());
    expect(q.get(subtileKey(50, 1, 0))).toMatchObject({ state: 'pending', slurmState: 'PENDING', info: 'Resources' });
    // non-stage-2 jobs: a summary of states
    const st = stageJobStates(jobs, parseSqueue(SQUEUE), sacct);
    expect(st.find((j) => j.stage === 'stage2_0')!.states.sort()).toEqual(['PENDING ×2', 'RUNNING ×2']);
    expect(st.find((j) => j.stage === 'retry1_stage2_0')!.states.sort()).toEqual(['CANCELLED', 'NODE_FAIL', 'PENDING ×3']);
    expect(st.find((j) => j.stage === 'stage3')!.states).toEqual([]);
  });
});
