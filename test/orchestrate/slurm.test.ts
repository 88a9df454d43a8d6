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

/**
 * A fake npx appending its argv (NUL-separated, calls separated by \x01) to $ARGV_LOG. The
 * sub-tile command fails with exit 7 for its first $FAKE_FAIL calls (counted in $ARGV_LOG.n); the
 * completeness check (slurm-task.ts done) exits $FAKE_DONE (default 0).
 */
const RECORDER = `{ for a in "$@"; do printf '%s\\0' "$a"; done; printf '\\1'; } >> "$ARGV_LOG"
case "$2" in
  cli/subtile.ts) n=$(cat "$ARGV_LOG.n" 2>/dev/null || echo 0); echo $((n + 1)) > "$ARGV_LOG.n"; [ "$n" -lt "\${FAKE_FAIL:-0}" ] && exit 7; exit 0;;
  platform/node/slurm-task.ts) [ "$3" = done ] && exit "\${FAKE_DONE:-0}"; exit 0;;
esac
exit 0`;
/** The calls recorded since the last reset (each an argv). */
const readCalls = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').split('\x01').slice(0, -1).map((c) => c.split('\0').slice(0, -1)) : []);
const readArgv = (f: string) => readCalls(f).at(-1) ?? [];
const resetCalls = (f: string) => {
  writeFileSync(f, '');
  writeFileSync(`${f}.n`, '0');
};

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

  const subtileArgv = (t: { tileId: number; row: number; col: number }) => ['tsx', 'cli/subtile.ts', '--tile-id', String(t.tileId), '--sub-tile-row', String(t.row), '--sub-tile-col', String(t.col), '--config', opts.configFile, '--out', opts.outputDir, '--quiet'];
  const doneArgv = (t: { tileId: number; row: number; col: number }) => ['tsx', 'platform/node/slurm-task.ts', 'done', '--run', runDir, '--out', opts.outputDir, '--tile-id', String(t.tileId), '--sub-tile-row', String(t.row), '--sub-tile-col', String(t.col)];

  it('a Stage-2 task passes its (tile, row, col) and the hostile paths intact to the command', () => {
    for (const [k, j] of [[0, 0], [0, 4], [1, 2], [2, 1]]) {
      resetCalls(join(base, 'argv'));
      const r = spawnSync('bash', [join(runDir, `stage2_${k}.sh`)], { env: env({ SLURM_ARRAY_TASK_ID: String(j) }), encoding: 'utf8', cwd: base });
      expect(r.status, r.stderr).toBe(0);
      const t = tasks[k * 5 + j];
      // one attempt, then the completeness check
      expect(readCalls(join(base, 'argv'))).toEqual([subtileArgv(t), doneArgv(t)]);
    }
    const r1 = spawnSync('bash', [join(runDir, 'stage1_0.sh')], { env: env({ SLURM_ARRAY_TASK_ID: '2' }), encoding: 'utf8', cwd: base });
    expect(r1.status, r1.stderr).toBe(0);
    expect(readArgv(join(base, 'argv'))).toEqual(['tsx', 'cli/shine.ts', 'prepare', '--config', opts.configFile, '--tile-id', '33', '--quiet']);
    const r3 = spawnSync('bash', [join(runDir, 'stage3.sh')], { env: env({}), encoding: 'utf8', cwd: base });
    expect(r3.status, r3.stderr).toBe(0);
    expect(readArgv(join(base, 'argv'))).toEqual(['tsx', 'cli/shine.ts', 'assemble', '--config', opts.configFile, '--tiles-file', join(runDir, 'tiles.txt'), '--out', opts.catalog]);
    noPwned([base]);
  });

  it('--method reaches every sub-tile command; a method outside map|vi|nuts is refused at generation', () => {
    const pm = slurmPlan({ ...opts, method: 'nuts' });
    const f = join(base, 'stage2_method.sh');
    writeFileSync(f, pm.files.find((x) => x.name === 'stage2_0.sh')!.text);
    expect(spawnSync('bash', ['-n', f]).status).toBe(0);
    resetCalls(join(base, 'argv'));
    const r = spawnSync('bash', [f], { env: env({ SLURM_ARRAY_TASK_ID: '1' }), encoding: 'utf8', cwd: base });
    expect(r.status, r.stderr).toBe(0);
    expect(readCalls(join(base, 'argv'))[0]).toEqual([...subtileArgv(tasks[1]), '--method', 'nuts']);
    expect(() => slurmPlan({ ...opts, method: "nuts'; touch PWNED; '" as 'nuts' })).toThrow(/method must be map, vi or nuts/);
    noPwned([base]);
  });

  it('--start-from reaches every sub-tile command as one word, whatever its characters', () => {
    const dir = "/earlier run/it's $(touch PWNED) `x`";
    for (const [method, tail] of [[null, []], ['map', ['--method', 'map']]] as const) {
      const ps = slurmPlan({ ...opts, method, startFrom: dir });
      const f = join(base, 'stage2_start.sh');
      writeFileSync(f, ps.files.find((x) => x.name === 'stage2_0.sh')!.text);
      expect(spawnSync('bash', ['-n', f]).status).toBe(0);
      resetCalls(join(base, 'argv'));
      const r = spawnSync('bash', [f], { env: env({ SLURM_ARRAY_TASK_ID: '1' }), encoding: 'utf8', cwd: base });
      expect(r.status, r.stderr).toBe(0);
      expect(readCalls(join(base, 'argv'))[0]).toEqual([...subtileArgv(tasks[1]), ...tail, '--start-from', dir]);
    }
    noPwned([base]);
  });

  it('retries a failing sub-tile inside its task, logs each exit code, and writes a failure marker after the last attempt', () => {
    const argvLog = join(base, 'argv');
    const t = tasks[5 + 3]; // stage2_1, task 3
    // fails twice, succeeds on the 3rd (= 1 + retries) attempt
    resetCalls(argvLog);
    let r = spawnSync('bash', [join(runDir, 'stage2_1.sh')], { env: env({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_JOB_ID: '4242', FAKE_FAIL: '2' }), encoding: 'utf8', cwd: base });
    expect(r.status, r.stderr).toBe(0);
    expect(readCalls(argvLog)).toEqual([subtileArgv(t), subtileArgv(t), subtileArgv(t), doneArgv(t)]);
    expect(r.stderr).toContain(`tile ${t.tileId} sub-tile (${t.row}, ${t.col}): attempt 1/3 exit 7`);
    expect(r.stderr).toContain('attempt 2/3 exit 7');
    expect(r.stderr).toContain('attempt 3/3 exit 0, products complete');
    // fails on every attempt: exit with the command's code, failure marker with the log path
    resetCalls(argvLog);
    r = spawnSync('bash', [join(runDir, 'stage2_1.sh')], { env: env({ SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_JOB_ID: '4242', FAKE_FAIL: '99' }), encoding: 'utf8', cwd: base });
    expect(r.status).toBe(7);
    const calls = readCalls(argvLog);
    expect(calls.slice(0, 3)).toEqual([subtileArgv(t), subtileArgv(t), subtileArgv(t)]);
    expect(calls[3]).toEqual(['tsx', 'platform/node/slurm-task.ts', 'failed', '--run', runDir, '--tile-id', String(t.tileId), '--sub-tile-row', String(t.row), '--sub-tile-col', String(t.col), '--attempts', '3', '--exit-code', '7', '--log', `${runDir}/logs/stage2_1_4242_3.log`, '--job', '4242_3']);
    expect(r.stderr).toContain('FAILED after 3 attempt(s), last exit 7');
    // exits 0 without complete products: counts as a failure (code 3), retried
    resetCalls(argvLog);
    r = spawnSync('bash', [join(runDir, 'stage2_1.sh')], { env: env({ SLURM_ARRAY_TASK_ID: '3', FAKE_DONE: '3' }), encoding: 'utf8', cwd: base });
    expect(r.status).toBe(3);
    expect(readCalls(argvLog).map((c) => c[1] + (c[2] === 'done' || c[2] === 'failed' ? ` ${c[2]}` : ''))).toEqual(['cli/subtile.ts', 'platform/node/slurm-task.ts done', 'cli/subtile.ts', 'platform/node/slurm-task.ts done', 'cli/subtile.ts', 'platform/node/slurm-task.ts done', 'platform/node/slurm-task.ts failed']);
    expect(r.stderr).toContain('exit 0 but the products are incomplete or invalid');
    // --retries 0: a single attempt
    const p0 = slurmPlan({ ...opts, retries: 0 });
    const f0 = join(base, 'stage2_r0.sh');
    writeFileSync(f0, p0.files.find((f) => f.name === 'stage2_1.sh')!.text);
    resetCalls(argvLog);
    r = spawnSync('bash', [f0], { env: env({ SLURM_ARRAY_TASK_ID: '3', FAKE_FAIL: '99' }), encoding: 'utf8', cwd: base });
    expect(r.status).toBe(7);
    expect(readCalls(argvLog).filter((c) => c[1] === 'cli/subtile.ts').length).toBe(1);
    expect(() => slurmPlan({ ...opts, retries: -1 })).toThrow(/retries/);
    expect(() => slurmPlan({ ...opts, retries: 1.5 })).toThrow(/retries/);
    noPwned([base]);
  });

  it('a retry submission: only the listed sub-tiles, no Stage 1 when every tile is prepared, jobs appended to jobs.tsv', () => {
    const sub = [tasks[1], tasks[7]];
    const rp = slurmPlan({ ...opts, tasks: sub, prepareTiles: [], prefix: 'retry3_' });
    expect(rp.files.map((f) => f.name).sort()).toEqual(['retry3_stage2_0.sh', 'retry3_stage2_tasks_0.tsv', 'retry3_stage3.sh', 'retry3_submit.sh', 'retry3_tiles.txt']);
    expect(rp.files.find((f) => f.name === 'retry3_stage2_tasks_0.tsv')!.text).toBe(`${sub[0].tileId}\t${sub[0].row}\t${sub[0].col}\n${sub[1].tileId}\t${sub[1].row}\t${sub[1].col}\n`);
    for (const f of rp.files) writeFileSync(join(runDir, f.name), f.text);
    for (const f of rp.files.filter((f) => f.name.endsWith('.sh'))) expect(spawnSync('bash', ['-n', join(runDir, f.name)]).status).toBe(0);
    const log = join(base, 'sbatch-retry.log');
    writeFileSync(join(base, 'n'), '200');
    fakeBin(bin, 'sbatch', `n=$(cat "${join(base, 'n')}"); n=$((n + 1)); echo $n > "${join(base, 'n')}"\n{ for a in "$@"; do printf '%s\\0' "$a"; done; printf '\\1'; } >> "${log}"\necho "$n"`);
    writeFileSync(join(runDir, 'jobs.tsv'), 'stage1_0\t101\n');
    const r = spawnSync('bash', [join(runDir, 'retry3_submit.sh')], { env: env({}), encoding: 'utf8', cwd: base });
    expect(r.status, r.stderr).toBe(0);
    const calls = readFileSync(log, 'utf8').split('\x01').slice(0, -1).map((c) => c.split('\0').slice(0, -1));
    expect(calls).toEqual([
      ['--parsable', `--output=${runDir}/logs/retry3_stage2_0_%A_%a.log`, 'retry3_stage2_0.sh'],
      ['--parsable', '--dependency=afterany:201', `--output=${runDir}/logs/retry3_stage3_%j.log`, 'retry3_stage3.sh'],
    ]);
    expect(readFileSync(join(runDir, 'jobs.tsv'), 'utf8')).toBe('stage1_0\t101\nretry3_stage2_0\t201\nretry3_stage3\t202\n');
    // the retry task runs its own index file's sub-tile
    resetCalls(join(base, 'argv'));
    const t = spawnSync('bash', [join(runDir, 'retry3_stage2_0.sh')], { env: env({ SLURM_ARRAY_TASK_ID: '1' }), encoding: 'utf8', cwd: base });
    expect(t.status, t.stderr).toBe(0);
    expect(readCalls(join(base, 'argv'))[0]).toEqual(subtileArgv(sub[1]));
    expect(() => slurmPlan({ ...opts, prefix: 'x; touch PWNED' })).toThrow(/prefix/);
    noPwned([base]);
  });

  it('rejects a hostile task id or a tampered index line without running anything', () => {
    const argv = join(base, 'argv');
    resetCalls(argv);
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
    expect(readCalls(argv)).toEqual([]);
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
    // --method vi reaches the sub-tile command; a tampered method parameter is refused
    const argvVi = argv.map((a, i) => (i === argv.length - 1 ? 'vi' : a));
    const rv = spawnSync(argvVi[0], argvVi.slice(1), { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, ARGV_LOG: join(base, 'argv'), AWS_BATCH_JOB_ARRAY_INDEX: '1' }, encoding: 'utf8', cwd: base });
    expect(rv.status, rv.stderr).toBe(0);
    expect(readArgv(join(base, 'argv')).slice(-3)).toEqual(['--quiet', '--method', 'vi']);
    const bad = argv.map((a, i) => (i === argv.length - 1 ? '$(touch PWNED)' : a));
    expect(spawnSync(bad[0], bad.slice(1), { env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, ARGV_LOG: join(base, 'argv'), AWS_BATCH_JOB_ARRAY_INDEX: '1' }, encoding: 'utf8', cwd: base }).status).toBe(2);
    expect(sub.parameters.method).toBe('config');
    expect(existsSync(join(base, 'PWNED'))).toBe(false);
    noPwned([base]);
  });
});
