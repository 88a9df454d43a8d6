/**
 * SLURM / AWS Batch generation: shell quoting against hostile values (checked by bash itself),
 * `bash -n`, running the generated task scripts with a fake `npx`/`sbatch` on PATH that records
 * its argv, array batching within MaxArraySize.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { awsBatchPlan, batch, planTasks, shq, slurmPlan, type SlurmPlanOptions } from '../../engine/orchestrate/index.ts';

const HOSTILE = ["$(touch PWNED)", '`touch PWNED`', 'a; touch PWNED', "it's", 'two\nlines', '"dq" \\ back', ' spaces  here ', '$HOME ${x} %A', '-n', '*', "'; touch PWNED; '"];

function fakeBin(dir: string, name: string, body: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), `#!/bin/bash\n${body}\n`);
  chmodSync(join(dir, name), 0o755);
}

/** A fake npx recording its argv, NUL-separated, into $ARGV_LOG. */
const RECORDER = `for a in "$@"; do printf '%s\\0' "$a"; done > "$ARGV_LOG"`;
const readArgv = (f: string) => readFileSync(f, 'utf8').split('\0').slice(0, -1);

function noPwned(dirs: string[]): void {
  for (const d of dirs) for (const f of readdirSync(d, { recursive: true }) as string[]) expect(String(f).split('/').at(-1)).not.toBe('PWNED');
}

describe('shq', () => {
  it('bash reads every hostile value back exactly', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'shq-'));
    for (const v of [...HOSTILE, '', "''", HOSTILE.join('')]) {
      const out = execFileSync('bash', ['-c', `printf '%s' ${shq(v)}`], { cwd, encoding: 'utf8' });
      expect(out).toBe(v);
    }
    noPwned([cwd]);
  });
});

describe('batching', () => {
  it('covers every sub-tile exactly once in arrays of at most MaxArraySize', () => {
    const tiles = Array.from({ length: 70 }, (_, i) => 102000000 + 7 * i);
    const tasks = planTasks(tiles, [4, 4]);
    expect(tasks.length).toBe(70 * 16);
    const b = batch(tasks, 1001);
    expect(b.map((x) => x.length)).toEqual([1001, 1120 - 1001]);
    const seen = new Set(b.flat().map((t) => `${t.tileId}/${t.row}/${t.col}`));
    expect(seen.size).toBe(1120);
    for (const t of tiles) for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(seen.has(`${t}/${r}/${c}`)).toBe(true);
    expect(batch([1, 2, 3, 4, 5, 6], 3).map((x) => x.length)).toEqual([3, 3]);
    expect(() => batch([1], 0)).toThrow(/array size/);
    // skipEmpty drops the sub-tiles Stage 1 found empty
    const prepared = new Map([[1, [{ row: 0, col: 0, n_sources_core: 3, n_quadrants: 2 }, { row: 0, col: 1, n_sources_core: 0, n_quadrants: 2 }, { row: 1, col: 0, n_sources_core: 5, n_quadrants: 0 }, { row: 1, col: 1, n_sources_core: 1, n_quadrants: 1 }]]]);
    expect(planTasks([1], [2, 2], prepared, true)).toEqual([{ tileId: 1, row: 0, col: 0 }, { tileId: 1, row: 1, col: 1 }]);
    expect(planTasks([1], [2, 2], prepared).length).toBe(4);
  });
});

describe('slurm scripts', () => {
  const base = mkdtempSync(join(tmpdir(), 'slurm-'));
  const hostileDir = join(base, "rep'o $(touch PWNED) `touch PWNED`; x");
  mkdirSync(hostileDir, { recursive: true });
  const runDir = join(base, 'run "dir" $(touch PWNED)\nnl');
  const tiles = [11, 22, 33];
  const tasks = planTasks(tiles, [2, 2]);
  const opts: SlurmPlanOptions = {
    repoDir: hostileDir, runDir, configFile: join(base, 'c $(touch PWNED).yaml'), outputDir: join(base, "out'; touch PWNED; '\n`x`"), catalog: join(base, 'cat $HOME.fits'),
    allowMissing: false, tiles, tasks, maxArraySize: 5, runner: ['npx', 'tsx'], jobName: 'shine $(x)',
    stage1: { partition: 'cpu', cpusPerTask: 2, gpusPerTask: 0, mem: '8G', time: '01:00:00' },
    stage2: { partition: 'gpu,gpu2', cpusPerTask: 4, gpusPerTask: 1, mem: '32G', time: '1-02:00:00' },
    stage3: { partition: null, cpusPerTask: 1, gpusPerTask: 0, mem: '4000M', time: '30' },
  };
  const plan = slurmPlan(opts);
  mkdirSync(runDir, { recursive: true });
  for (const f of plan.files) writeFileSync(join(runDir, f.name), f.text);
  const bin = join(base, 'bin');
  fakeBin(bin, 'npx', RECORDER);
  const env = (extra: Record<string, string>) => ({ ...process.env, PATH: `${bin}:${process.env.PATH}`, ARGV_LOG: join(base, 'argv'), ...extra });

  it('writes syntactically valid bash, batched into arrays ≤ MaxArraySize', () => {
    for (const f of plan.files.filter((f) => f.name.endsWith('.sh'))) {
      const r = spawnSync('bash', ['-n', join(runDir, f.name)], { encoding: 'utf8' });
      expect(r.status, `${f.name}: ${r.stderr}`).toBe(0);
    }
    expect(plan.stage2Batches).toBe(3); // 12 tasks in arrays of ≤ 5
    const arrays = plan.files.filter((f) => /^stage2_\d+\.sh$/.test(f.name)).map((f) => /--array=0-(\d+)/.exec(f.text)![1]);
    expect(arrays).toEqual(['4', '4', '1']);
    const s2 = plan.files.find((f) => f.name === 'stage2_0.sh')!.text;
    expect(s2).toContain('#SBATCH --gpus-per-task=1');
    expect(s2).toContain('#SBATCH --partition=gpu,gpu2');
    expect(s2).toContain('#SBATCH --time=1-02:00:00');
    expect(s2).toContain('#SBATCH --job-name=shine___x_-s2-0');
    // every #SBATCH line holds only safe characters
    for (const f of plan.files) for (const l of f.text.split('\n').filter((l) => l.startsWith('#SBATCH'))) expect(l).toMatch(/^#SBATCH --[a-z-]+=[A-Za-z0-9_.,:-]+$/);
  });

  it('a Stage-2 task passes its (tile, row, col) and the hostile paths intact to the command', () => {
    for (const [k, j] of [[0, 0], [0, 4], [1, 2], [2, 1]]) {
      const r = spawnSync('bash', [join(runDir, `stage2_${k}.sh`)], { env: env({ SLURM_ARRAY_TASK_ID: String(j) }), encoding: 'utf8', cwd: base });
      expect(r.status, r.stderr).toBe(0);
      const t = tasks[k * 5 + j];
      expect(readArgv(join(base, 'argv'))).toEqual(['tsx', 'cli/subtile.ts', '--tile-id', String(t.tileId), '--sub-tile-row', String(t.row), '--sub-tile-col', String(t.col), '--config', opts.configFile, '--out', opts.outputDir, '--quiet']);
    }
    const r1 = spawnSync('bash', [join(runDir, 'stage1_0.sh')], { env: env({ SLURM_ARRAY_TASK_ID: '2' }), encoding: 'utf8', cwd: base });
    expect(r1.status, r1.stderr).toBe(0);
    expect(readArgv(join(base, 'argv'))).toEqual(['tsx', 'cli/shine.ts', 'prepare', '--config', opts.configFile, '--tile-id', '33', '--quiet']);
    const r3 = spawnSync('bash', [join(runDir, 'stage3.sh')], { env: env({}), encoding: 'utf8', cwd: base });
    expect(r3.status, r3.stderr).toBe(0);
    expect(readArgv(join(base, 'argv'))).toEqual(['tsx', 'cli/shine.ts', 'assemble', '--config', opts.configFile, '--tiles-file', join(runDir, 'tiles.txt'), '--out', opts.catalog]);
    noPwned([base]);
  });

  it('rejects a hostile task id or a tampered index line without running anything', () => {
    const argv = join(base, 'argv');
    writeFileSync(argv, 'untouched');
    for (const id of ['$(touch PWNED)', '1;touch PWNED', '', '99']) {
      const r = spawnSync('bash', [join(runDir, 'stage2_0.sh')], { env: env({ SLURM_ARRAY_TASK_ID: id }), encoding: 'utf8', cwd: base });
      expect(r.status).toBe(2);
    }
    const tampered = join(runDir, 'stage2_tasks_2.tsv');
    writeFileSync(tampered, '$(touch PWNED)\t0\t0\n1\t`touch PWNED`\t0\n');
    for (const id of ['0', '1']) {
      const r = spawnSync('bash', [join(runDir, 'stage2_2.sh')], { env: env({ SLURM_ARRAY_TASK_ID: id }), encoding: 'utf8', cwd: base });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/bad line/);
    }
    expect(readFileSync(argv, 'utf8')).toBe('untouched');
    noPwned([base]);
  });

  it('submit.sh chains Stage 2 after Stage 1 and Stage 3 after every Stage-2 array (fake sbatch)', () => {
    const log = join(base, 'sbatch.log');
    writeFileSync(join(base, 'n'), '100');
    fakeBin(bin, 'sbatch', `n=$(cat "${join(base, 'n')}"); n=$((n + 1)); echo $n > "${join(base, 'n')}"\n{ for a in "$@"; do printf '%s\\0' "$a"; done; printf '\\1'; } >> "${log}"\necho "$n;cluster"`);
    const r = spawnSync('bash', [join(runDir, 'submit.sh')], { env: env({}), encoding: 'utf8', cwd: base });
    expect(r.status, r.stderr).toBe(0);
    const calls = readFileSync(log, 'utf8').split('\x01').slice(0, -1).map((c) => c.split('\0').slice(0, -1));
    expect(calls.length).toBe(1 + 3 + 1);
    expect(calls[0]).toEqual(['--parsable', `--output=${runDir}/logs/stage1_0_%A_%a.log`, 'stage1_0.sh']);
    for (let k = 0; k < 3; k++) expect(calls[1 + k]).toEqual(['--parsable', '--dependency=afterany:101', `--output=${runDir}/logs/stage2_${k}_%A_%a.log`, `stage2_${k}.sh`]);
    expect(calls[4]).toEqual(['--parsable', '--dependency=afterany:102:103:104', `--output=${runDir}/logs/stage3_%j.log`, 'stage3.sh']);
    expect(readFileSync(join(runDir, 'jobs.tsv'), 'utf8')).toBe('stage1_0\t101\nstage2_0\t102\nstage2_1\t103\nstage2_2\t104\nstage3\t105\n');
    expect(plan.submissions.at(-1)).toContain('--dependency=afterany:<stage2_0>:<stage2_1>:<stage2_2>');
    noPwned([base]);
  });

  it('refuses malformed partition, time and memory', () => {
    const bad = (s: Partial<SlurmPlanOptions['stage2']>) => () => slurmPlan({ ...opts, stage2: { ...opts.stage2, ...s } });
    expect(bad({ partition: 'gpu;touch PWNED' })).toThrow(/partition/);
    expect(bad({ partition: 'gpu\n#SBATCH --x' })).toThrow(/partition/);
    expect(bad({ time: '01:00:00\n#SBATCH --x=y' })).toThrow(/time/);
    expect(bad({ time: '$(x)' })).toThrow(/time/);
    expect(bad({ mem: '32 G' })).toThrow(/mem/);
    expect(bad({ mem: '32G;x' })).toThrow(/mem/);
    expect(bad({ gpusPerTask: 1.5 })).toThrow(/gpus-per-task/);
  });
});

describe('aws batch JSON', () => {
  it('job definitions, array sizes, dependsOn; the container command gets values as argv', () => {
    const base = mkdtempSync(join(tmpdir(), 'aws-'));
    const tiles = [7, 8, 9];
    const tasks = planTasks(tiles, [2, 2]);
    const runDir = join(base, 'r $(touch PWNED)');
    const p = awsBatchPlan({
      image: 'img', jobQueue: 'q', gpuJobQueue: 'gq', repoDir: join(base, "repo ' `x`"), runDir, configFile: '/c; touch PWNED.yaml', outputDir: '/o $(x)', catalog: '/cat.fits',
      allowMissing: true, tiles, tasks, maxArraySize: 10, retries: 2, jobName: 'shine',
      stage1: { vcpus: 4, memoryMiB: 8192, gpus: 0 }, stage2: { vcpus: 4, memoryMiB: 15360, gpus: 1 }, stage3: { vcpus: 4, memoryMiB: 8192, gpus: 0 },
    });
    const get = (n: string) => JSON.parse(p.files.find((f) => f.name === n)!.text);
    const d2 = get('jobdef-stage2.json');
    expect(d2.containerProperties.resourceRequirements).toContainEqual({ type: 'GPU', value: '1' });
    expect(get('jobdef-stage1.json').containerProperties.resourceRequirements.find((r: { type: string }) => r.type === 'GPU')).toBeUndefined();
    expect(get('submit-stage1-0.json').arrayProperties.size).toBe(3);
    expect([get('submit-stage2-0.json').arrayProperties.size, get('submit-stage2-1.json').arrayProperties.size]).toEqual([10, 2]);
    expect(get('submit-stage2-1.json').dependsOn).toEqual([{ jobId: '<stage1_0>' }]);
    expect(get('submit-stage3.json').dependsOn).toEqual([{ jobId: '<stage2_0>' }, { jobId: '<stage2_1>' }]);
    // run the stage-2 container command as AWS Batch would: Ref::x replaced by the parameters
    mkdirSync(runDir, { recursive: true });
    mkdirSync(join(base, "repo ' `x`"));
    for (const f of p.files) writeFileSync(join(runDir, f.name), f.text);
    const bin = join(base, 'bin');
    fakeBin(bin, 'npx', RECORDER);
    const sub = get('submit-stage2-1.json');
    const argv = (d2.containerProperties.command as string[]).map((a) => (a.startsWith('Ref::') ? sub.parameters[a.slice(5)] : a));
    const r = spawnSync(argv[0], argv.slice(1), { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, ARGV_LOG: join(base, 'argv'), AWS_BATCH_JOB_ARRAY_INDEX: '1' }, encoding: 'utf8', cwd: base });
    expect(r.status, r.stderr).toBe(0);
    const t = tasks[11];
    expect(readArgv(join(base, 'argv'))).toEqual(['tsx', 'cli/subtile.ts', '--tile-id', String(t.tileId), '--sub-tile-row', String(t.row), '--sub-tile-col', String(t.col), '--config', '/c; touch PWNED.yaml', '--out', '/o $(x)', '--quiet']);
    expect(existsSync(join(base, 'PWNED'))).toBe(false);
    noPwned([base]);
  });
});
