/**
 * `shine run --config C (--tiles T1,T2,… | --tiles-file F) [--executor local|slurm|aws-batch] …`:
 * a survey run — Stage 1 per tile, Stage 2 per sub-tile, Stage 3 (docs/run.md).
 */
import { readFile, mkdir, writeFile, chmod } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError, type Command } from '../command.ts';
import { parseTileCommand } from '../args.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { onPath, readPrepared, runLocal } from '../../platform/node/executor-local.ts';
import { parseTileList, planTasks, type PreparedSubtile } from '../../engine/orchestrate/plan.ts';
import { slurmPlan, type GeneratedFile, type StageResources } from '../../engine/orchestrate/slurm.ts';
import { awsBatchPlan } from '../../engine/orchestrate/awsbatch.ts';
import { checkMem } from '../../engine/orchestrate/shell.ts';
import { acquireLock } from '../../platform/node/lock.ts';

/** The lock file of a run folder: held for the whole of a local run, and by a SLURM / AWS Batch submission or a retry while it writes and submits its scripts. */
export const RUN_LOCK = '.lock_run';

/** Runs `fn` holding the run folder's lock (the folder made if needed); `who` prefixes the warnings ('shine run'). */
export async function withRunLock<T>(runDir: string, who: string, fn: () => Promise<T>): Promise<T> {
  await mkdir(runDir, { recursive: true }).catch((e) => {
    throw new UserError(`cannot create the run folder ${runDir}: ${(e as Error).message}`);
  });
  const lock = await acquireLock(join(runDir, RUN_LOCK), { what: `run folder ${runDir}`, warn: (l) => console.error(`${who}: ${l}`) });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const USAGE = `usage: shine run --config C (--tiles T1,T2,… | --tiles-file F) [--executor local|slurm|aws-batch]
                 [--method map|vi|nuts] [--out DIR] [--catalog FILE] [--allow-missing] [--dry-run] [--quiet]
  local:     [--jobs N] [--retries N]
  slurm:     [--retries N] [--partition P] [--cpu-partition P] [--gpus-per-task N] [--cpus-per-task N]
             [--mem M] [--time T] [--cpu-mem M] [--cpu-time T] [--max-array-size N] [--job-name S]
  aws-batch: [--aws-image URI] [--aws-job-queue Q] [--aws-gpu-job-queue Q] [--vcpus N] [--mem M]
             [--max-array-size N]
  --out DIR         run folder: logs, failure markers, generated scripts (default scratch_dir/run)
  --catalog FILE    Stage-3 catalog (default output_dir/shine_catalog.fits)
  --retries N       extra attempts of a failing sub-tile (default 2; on SLURM inside its array task)
  --method M        inference method of every sub-tile (default: the config's inference.method)
  Default executor: slurm when sbatch is on PATH, else local. SHINE_RUNNER (a JSON array, default
  ["npx","tsx"]) is the command prefix the SLURM scripts run the TypeScript entry points with.`;

/** A command prefix from an environment variable holding a JSON array of strings (tests, custom runners). */
export function commandFromEnv(name: string, fallback: string[]): string[] {
  const v = process.env[name];
  if (!v) return fallback;
  let a: unknown;
  try {
    a = JSON.parse(v);
  } catch {
    throw new UserError(`${name} must be a JSON array of strings, e.g. ["npx","tsx","cli/subtile.ts"]`);
  }
  if (!Array.isArray(a) || !a.length || !a.every((s) => typeof s === 'string')) throw new UserError(`${name} must be a non-empty JSON array of strings`);
  return a as string[];
}

export function int(v: unknown, name: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(String(v)) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UserError(`--${name} must be an integer ≥ ${min}, got '${v}'`);
  return n;
}

function memMiB(m: string): number {
  checkMem(m);
  const n = Number.parseInt(m, 10);
  const u = m.at(-1);
  return u === 'K' ? Math.ceil(n / 1024) : u === 'G' ? n * 1024 : u === 'T' ? n * 1024 * 1024 : n;
}

export async function writeFiles(dir: string, files: GeneratedFile[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of files) {
    const p = join(dir, f.name);
    await writeFile(p, f.text);
    if (f.executable) await chmod(p, 0o755);
  }
}

/** The tile list of --tiles or --tiles-file. */
export async function readTiles(opts: Record<string, unknown>): Promise<number[]> {
  try {
    if (opts.tiles !== undefined) return parseTileList(String(opts.tiles), '--tiles');
    const f = String(opts['tiles-file']);
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch (e) {
      throw new UserError(`cannot read --tiles-file ${f}: ${(e as Error).message}`);
    }
    return parseTileList(text, f);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}

/** The options shared by `shine run` and `shine retry` (parseOptions spec). */
export const SLURM_OPTION_SPEC = {
  partition: 'string', 'cpu-partition': 'string', 'gpus-per-task': 'string', 'cpus-per-task': 'string', mem: 'string', time: 'string',
  'cpu-mem': 'string', 'cpu-time': 'string', 'max-array-size': 'string', 'job-name': 'string', retries: 'string', method: 'string',
} as const;

/** `--method map|vi|nuts` (every sub-tile), or null: each sub-tile uses the config's inference.method. */
export function methodOption(opts: Record<string, unknown>): 'map' | 'vi' | 'nuts' | null {
  if (opts.method === undefined) return null;
  const m = String(opts.method);
  if (m !== 'map' && m !== 'vi' && m !== 'nuts') throw new UserError(`--method must be map, vi or nuts, got '${m}'`);
  return m;
}

/** SLURM resources of the three stages from the command-line options. */
export function slurmResources(opts: Record<string, unknown>): { stage1: StageResources; stage2: StageResources; stage3: StageResources } {
  const cpuTime = opts['cpu-time'] !== undefined ? String(opts['cpu-time']) : '01:00:00';
  const cpuMem = opts['cpu-mem'] !== undefined ? String(opts['cpu-mem']) : '8G';
  const cpuPart = opts['cpu-partition'] !== undefined ? String(opts['cpu-partition']) : opts.partition !== undefined ? String(opts.partition) : null;
  const cpuRes = { partition: cpuPart, cpusPerTask: 2, gpusPerTask: 0, mem: cpuMem, time: cpuTime };
  return {
    stage1: cpuRes,
    stage3: cpuRes,
    stage2: {
      partition: opts.partition !== undefined ? String(opts.partition) : null,
      gpusPerTask: int(opts['gpus-per-task'], 'gpus-per-task', 1),
      cpusPerTask: int(opts['cpus-per-task'], 'cpus-per-task', 4, 1),
      mem: opts.mem !== undefined ? String(opts.mem) : '32G',
      time: opts.time !== undefined ? String(opts.time) : '01:00:00',
    },
  };
}

/** The runner of the generated SLURM scripts: SHINE_RUNNER (JSON array) or `npx tsx`. */
export function slurmRunner(): string[] {
  return commandFromEnv('SHINE_RUNNER', ['npx', 'tsx']);
}

const command: Command = {
  summary: 'survey run: Stage 1, every sub-tile, Stage 3 — locally, on SLURM or as AWS Batch JSON',
  async run(argv) {
    const opts = parseTileCommand(
      argv,
      {
        config: 'string', tiles: 'string', 'tiles-file': 'string', executor: 'string', jobs: 'string', 'dry-run': 'boolean',
        out: 'string', catalog: 'string', 'allow-missing': 'boolean', quiet: 'boolean', help: 'boolean',
        ...SLURM_OPTION_SPEC,
        'aws-image': 'string', 'aws-job-queue': 'string', 'aws-gpu-job-queue': 'string', vcpus: 'string',
      },
      USAGE,
    );
    if (!opts) return 0;
    const method = methodOption(opts);
    const quiet = !!opts.quiet;
    const log = (s: string) => {
      if (!quiet) console.error(s);
    };
    const configFile = resolve(String(opts.config));
    const cfg = await loadConfig(configFile);
    const tiles = await readTiles(opts);
    let executor = opts.executor !== undefined ? String(opts.executor) : (await onPath('sbatch')) ? 'slurm' : 'local';
    if (!['local', 'slurm', 'aws-batch'].includes(executor)) throw new UserError(`--executor must be local, slurm or aws-batch, got '${executor}'`);
    const scratchDir = resolve(cfg.distributed.scratch_dir);
    const outputDir = resolve(cfg.distributed.output_dir);
    const runDir = resolve(opts.out !== undefined ? String(opts.out) : join(scratchDir, 'run'));
    const catalog = resolve(opts.catalog !== undefined ? String(opts.catalog) : join(outputDir, 'shine_catalog.fits'));
    const allowMissing = !!opts['allow-missing'];
    const grid = cfg.distributed.sub_tile_grid as [number, number];
    const maxArray = int(opts['max-array-size'], 'max-array-size', executor === 'aws-batch' ? 10000 : 1001, 1);
    const jobName = opts['job-name'] !== undefined ? String(opts['job-name']) : 'shine';

    if (executor === 'local') {
      if (opts['dry-run']) {
        const prepared = new Map<number, PreparedSubtile[]>();
        for (const t of tiles) {
          const l = await readPrepared(scratchDir, t);
          if (l) prepared.set(t, l);
        }
        const tasks = planTasks(tiles, grid, prepared);
        console.log(`shine run (dry run, local): ${tiles.length} tile(s), ${tiles.length - prepared.size} to prepare, ${tasks.length} sub-tile task(s) → ${outputDir}; catalog ${catalog}`);
        for (const t of tasks) console.log(`  tile ${t.tileId} sub-tile (${t.row}, ${t.col})`);
        return 0;
      }
      // one run per run folder: a second `shine run` on it stops here, naming the lock and its holder
      return withRunLock(runDir, 'shine run', async () => {
        const tsx = ['npx', 'tsx'];
        const tty = !quiet && !!process.stderr.isTTY;
        let last = 0;
        const res = await runLocal({
          configFile, tiles, grid, scratchDir, outputDir, runDir, catalog, allowMissing, cwd: REPO, log,
          jobs: int(opts.jobs, 'jobs', 1, 1),
          retries: int(opts.retries, 'retries', 2, 0),
          prepareCommand: commandFromEnv('SHINE_RUN_PREPARE_CMD', [...tsx, join(REPO, 'cli/shine.ts'), 'prepare']),
          subtileCommand: [...commandFromEnv('SHINE_RUN_SUBTILE_CMD', [...tsx, join(REPO, 'cli/subtile.ts')]), ...(method ? ['--method', method] : [])],
          assembleCommand: commandFromEnv('SHINE_RUN_ASSEMBLE_CMD', [...tsx, join(REPO, 'cli/shine.ts'), 'assemble']),
          progress: (d, f, s, n) => {
            if (quiet) return;
            const line = `run: sub-tiles ${d}/${n} done (${s} already complete), ${f} failed`;
            if (tty) process.stderr.write(`\r${line}\x1b[K${d + f >= n ? '\n' : ''}`);
            else if (performance.now() - last > 5000 || d + f >= n) {
              last = performance.now();
              console.error(line);
            }
          },
        });
        console.log(`shine run: ${res.tasks} sub-tile(s) (${res.empty} empty): ${res.done} done, ${res.skipped} already complete, ${res.failed.length} failed, ${res.retried} retr${res.retried === 1 ? 'y' : 'ies'}`);
        for (const t of res.failed) console.log(`  FAILED tile ${t.tileId} sub-tile (${t.row}, ${t.col}): see ${join(runDir, 'logs', `subtile_${t.tileId}_${t.row}_${t.col}.log`)}`);
        if (res.failed.length && !allowMissing) console.log(`shine run: catalog not assembled (${res.failed.length} failed sub-tile(s)); re-run to retry them, or pass --allow-missing`);
        if (res.assembled === true) console.log(`shine run: catalog ${catalog}`);
        return res.failed.length && !allowMissing ? 1 : res.assembled === false ? 1 : 0;
      });
    }

    // cluster executors: the task list from Stage-1 listings when they exist, else every grid cell
    const prepared = new Map<number, PreparedSubtile[]>();
    for (const t of tiles) {
      const l = await readPrepared(scratchDir, t);
      if (l) prepared.set(t, l);
    }
    const tasks = planTasks(tiles, grid, prepared);
    if (executor === 'slurm') {
      let plan;
      try {
        plan = slurmPlan({
          repoDir: REPO, runDir, configFile, outputDir, catalog, allowMissing, tiles, tasks, maxArraySize: maxArray, runner: slurmRunner(), jobName, method,
          retries: int(opts.retries, 'retries', 2, 0),
          ...slurmResources(opts),
        });
      } catch (e) {
        throw new UserError(`--executor slurm: ${(e as Error).message}`);
      }
      if (!opts['dry-run'] && !(await onPath('sbatch'))) throw new UserError('--executor slurm: sbatch is not on PATH (run on a SLURM login node, or use --dry-run to only write the scripts)');
      // the run folder is locked while its scripts are written and submitted (not while the jobs run)
      const slurm = plan;
      return withRunLock(runDir, 'shine run', async () => {
        await writeFiles(runDir, slurm.files);
        if (opts['dry-run']) {
          for (const f of slurm.files) if (f.name.endsWith('.sh')) console.log(`### ${join(runDir, f.name)}\n${f.text}`);
          console.log(`### submissions (job ids are placeholders)\n${slurm.submissions.join('\n')}`);
          console.log(`shine run (dry run, slurm): ${tiles.length} tile(s) in ${slurm.stage1Batches} Stage-1 array(s), ${tasks.length} sub-tile task(s) in ${slurm.stage2Batches} Stage-2 array(s) (≤ ${maxArray} each); scripts in ${runDir}; submit with: bash ${join(runDir, 'submit.sh')}`);
          return 0;
        }
        const r = spawnSync('bash', [join(runDir, 'submit.sh')], { stdio: 'inherit' });
        return r.status === 0 ? 0 : 1;
      });
    }

    // aws-batch
    if (!opts['dry-run']) throw new UserError('--executor aws-batch writes JSON for the AWS CLI/SDK only: add --dry-run (docs/run.md shows the aws commands)');
    const plan = awsBatchPlan({
      method,
      image: opts['aws-image'] !== undefined ? String(opts['aws-image']) : '<account>.dkr.ecr.us-east-1.amazonaws.com/shine-webgpu:latest',
      jobQueue: opts['aws-job-queue'] !== undefined ? String(opts['aws-job-queue']) : 'shine-cpu',
      gpuJobQueue: opts['aws-gpu-job-queue'] !== undefined ? String(opts['aws-gpu-job-queue']) : 'shine-gpu',
      repoDir: REPO, runDir, configFile, outputDir, catalog, allowMissing, tiles, tasks, maxArraySize: Math.min(maxArray, 10000),
      retries: int(opts.retries, 'retries', 2, 0), jobName,
      stage1: { vcpus: 4, memoryMiB: memMiB(opts['cpu-mem'] !== undefined ? String(opts['cpu-mem']) : '8G'), gpus: 0 },
      stage3: { vcpus: 4, memoryMiB: memMiB(opts['cpu-mem'] !== undefined ? String(opts['cpu-mem']) : '8G'), gpus: 0 },
      stage2: { vcpus: int(opts.vcpus, 'vcpus', 4, 1), memoryMiB: memMiB(opts.mem !== undefined ? String(opts.mem) : '15G'), gpus: int(opts['gpus-per-task'], 'gpus-per-task', 1) },
    });
    await withRunLock(runDir, 'shine run', () => writeFiles(runDir, plan.files));
    for (const f of plan.files) console.log(`  ${join(runDir, f.name)}`);
    console.log(`shine run (dry run, aws-batch): ${tiles.length} tile(s) in ${plan.stage1Batches} Stage-1 array(s), ${tasks.length} sub-tile task(s) in ${plan.stage2Batches} Stage-2 array(s); JSON in ${runDir}`);
    return 0;
  },
};

export default command;
