/**
 * `shine run --config C (--tiles T1,T2,… | --tiles-file F) [--executor local|slurm|aws-batch] …`:
 * a survey run — Stage 1 per tile, Stage 2 per sub-tile, Stage 3 (docs/run.md).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError, type Command } from '../command.ts';
import { parseTileCommand } from '../args.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { onPath, readPrepared, runLocal } from '../../platform/node/executor-local.ts';
import { subtileFitMismatch } from '../../platform/node/outputs.ts';
import type { FitMethod } from '../../engine/config/fit-settings.ts';
import { planTasks, type PreparedSubtile } from '../../engine/orchestrate/plan.ts';
import { slurmPlan } from '../../engine/orchestrate/slurm.ts';
import { awsBatchPlan } from '../../engine/orchestrate/awsbatch.ts';
import { SLURM_OPTION_SPEC, withRunLock, commandFromEnv, int, memMiB, writeFiles, readTiles, methodOption, slurmResources, slurmRunner, startFromOption } from '../survey-options.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const USAGE = `usage: shine run --config C (--tiles T1,T2,… | --tiles-file F) [--executor local|slurm|aws-batch]
                 [--method map|vi|nuts] [--start-from DIR] [--out DIR] [--catalog FILE] [--allow-missing]
                 [--dry-run] [--quiet]
  local:     [--jobs N] [--retries N]
  slurm:     [--retries N] [--partition P] [--cpu-partition P] [--gpus-per-task N] [--cpus-per-task N]
             [--mem M] [--time T] [--cpu-mem M] [--cpu-time T] [--max-array-size N] [--job-name S]
  aws-batch: [--aws-image URI] [--aws-job-queue Q] [--aws-gpu-job-queue Q] [--vcpus N] [--mem M]
             [--max-array-size N]
  --out DIR         run folder: logs, failure markers, generated scripts (default scratch_dir/run)
  --catalog FILE    Stage-3 catalog (default output_dir/shine_catalog.fits)
  --retries N       extra attempts of a failing sub-tile (default 2; on SLURM inside its array task)
  --method M        inference method of every sub-tile (default: the config's inference.method)
  --start-from DIR  every sub-tile's fit starts at the products in DIR (e.g. an earlier run's
                    output folder, refitted with other settings) instead of the catalog: docs/subtile.md
  Default executor: slurm when sbatch is on PATH, else local. SHINE_RUNNER (a JSON array, default
  ["npx","tsx"]) is the command prefix the SLURM scripts run the TypeScript entry points with.`;

const command: Command = {
  summary: 'survey run: Stage 1, every sub-tile, Stage 3 — locally, on SLURM or as AWS Batch JSON',
  async run(argv) {
    const opts = parseTileCommand(
      argv,
      {
        config: 'string', tiles: 'string', 'tiles-file': 'string', executor: 'string', jobs: 'string', 'dry-run': 'boolean',
        out: 'string', catalog: 'string', 'allow-missing': 'boolean', quiet: 'boolean', help: 'boolean',
        ...SLURM_OPTION_SPEC,
        'start-from': 'string',
        'aws-image': 'string', 'aws-job-queue': 'string', 'aws-gpu-job-queue': 'string', vcpus: 'string',
      },
      USAGE,
    );
    if (!opts) return 0;
    const method = methodOption(opts);
    const startFrom = await startFromOption(opts);
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
          // complete products of another method or other resolved settings are redone (engine/config/fit-settings.ts)
          staleReason: (t) => subtileFitMismatch(outputDir, t.tileId, t.row, t.col, cfg, (method ?? cfg.inference.method) as FitMethod),
          subtileCommand: [...commandFromEnv('SHINE_RUN_SUBTILE_CMD', [...tsx, join(REPO, 'cli/subtile.ts')]), ...(method ? ['--method', method] : []), ...(startFrom ? ['--start-from', startFrom] : [])],
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
          repoDir: REPO, runDir, configFile, outputDir, catalog, allowMissing, tiles, tasks, maxArraySize: maxArray, runner: slurmRunner(), jobName, method, startFrom,
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
    if (startFrom) throw new UserError('--start-from is for --executor local or slurm (the AWS Batch job definition has no such parameter)');
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
