/**
 * `shine retry --config C (--tiles … | --tiles-file F) [--out DIR] [--executor local|slurm]
 *  [--dry-run] [slurm options]`: finds the sub-tiles without complete and valid products — a
 * failure marker, a failed SLURM task (sacct/squeue: FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL,
 * CANCELLED …), or simply missing or invalid outputs — and runs only those again, then Stage 3.
 * On SLURM: a new Stage-2 array (`retry<n>_stage2_<k>.sh`), a Stage-1 array for tiles never
 * prepared, and a new Stage 3, submitted by `retry<n>_submit.sh`, whose job ids are appended to
 * jobs.tsv. Sub-tiles whose task is still queued or running are left alone. The run folder's lock
 * (.lock_run) is held from the status query to the submission. Locally: the same as
 * `shine run --executor local` (which runs only what is not complete). docs/run.md.
 */
import { readdir } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError, type Command } from '../command.ts';
import { parseTileCommand } from '../args.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { onPath, readPrepared } from '../../platform/node/executor-local.ts';
import { querySlurm } from '../../platform/node/slurm-query.ts';
import { slurmPlan } from '../../engine/orchestrate/slurm.ts';
import type { SubtileTask } from '../../engine/orchestrate/plan.ts';
import { collectStatus } from './status.ts';
import type { FitMethod } from '../../engine/config/fit-settings.ts';
import { SLURM_OPTION_SPEC, int, readTiles, slurmResources, slurmRunner, writeFiles, methodOption, withRunLock, startFromOption } from '../survey-options.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const USAGE = `usage: shine retry --config C (--tiles T1,T2,… | --tiles-file F) [--out RUN_DIR] [--executor local|slurm]
                   [--method map|vi|nuts] [--start-from DIR] [--catalog FILE] [--allow-missing] [--dry-run] [--quiet]
  local: [--jobs N] [--retries N]
  slurm: [--retries N] [--partition P] [--cpu-partition P] [--gpus-per-task N] [--cpus-per-task N]
         [--mem M] [--time T] [--cpu-mem M] [--cpu-time T] [--max-array-size N] [--job-name S]
  Runs again only the sub-tiles without complete and valid products (failure markers, failed SLURM
  tasks, missing outputs), then Stage 3. Default executor: slurm when sbatch is on PATH.`;

const command: Command = {
  summary: 'run again only the sub-tiles without complete products (failed, missing), then assemble',
  async run(argv) {
    const spec = {
      config: 'string', tiles: 'string', 'tiles-file': 'string', executor: 'string', jobs: 'string', 'dry-run': 'boolean',
      out: 'string', catalog: 'string', 'allow-missing': 'boolean', quiet: 'boolean', help: 'boolean', 'start-from': 'string', ...SLURM_OPTION_SPEC,
    } as const;
    const opts = parseTileCommand(argv, spec, USAGE);
    if (!opts) return 0;
    const executor = opts.executor !== undefined ? String(opts.executor) : (await onPath('sbatch')) ? 'slurm' : 'local';
    if (!['local', 'slurm'].includes(executor)) throw new UserError(`--executor must be local or slurm, got '${executor}'`);
    if (executor === 'local') {
      // the local executor runs only what is not complete and valid, retrying failures
      const rest: string[] = [];
      for (let i = 0; i < argv.length; i++) {
        if (argv[i] === '--executor') i++;
        else if (!argv[i].startsWith('--executor=')) rest.push(argv[i]);
      }
      // a local retry is a local run: it resumes, redoing only the sub-tiles without complete products
      return (await import('./run.ts')).default.run([...rest, '--executor', 'local']);
    }

    const configFile = resolve(String(opts.config));
    const cfg = await loadConfig(configFile);
    const tiles = await readTiles(opts);
    const scratchDir = resolve(cfg.distributed.scratch_dir);
    const outputDir = resolve(cfg.distributed.output_dir);
    const runDir = resolve(opts.out !== undefined ? String(opts.out) : join(scratchDir, 'run'));
    const catalog = resolve(opts.catalog !== undefined ? String(opts.catalog) : join(outputDir, 'shine_catalog.fits'));
    const grid = cfg.distributed.sub_tile_grid as [number, number];

    // the run folder is locked from the status query to the submission: two retries never pick the
    // same sub-tiles or the same retry number, nor run beside a local run on the folder
    return withRunLock(runDir, 'shine retry', async () => {
      const q = await querySlurm(runDir);
      for (const n of q.notes) console.error(`retry: slurm: ${n}`);
      // stale products (another method or other fit settings) are redone like missing ones
      const status = await collectStatus({ tiles, grid, scratchDir, outputDir, runDir, slurm: q.subtiles, fit: { cfg, method: (methodOption(opts) ?? cfg.inference.method) as FitMethod } });
      const todo: SubtileTask[] = [];
      let live = 0;
      for (const t of status.tiles) {
        for (const s of t.sub_tiles) {
          if (s.state === 'done') continue;
          if (s.state === 'pending' && s.slurm_state) live++;
          else if (s.state === 'running') live++;
          else {
            todo.push({ tileId: s.tile_id, row: s.row, col: s.col });
            console.error(`retry: tile ${s.tile_id} sub-tile (${s.row}, ${s.col}): ${s.state}${s.detail ? ` — ${s.detail}` : ''}`);
          }
        }
      }
      if (live) console.error(`retry: ${live} sub-tile(s) still queued or running in SLURM: left alone`);
      if (!todo.length) {
        console.log(`shine retry: nothing to retry (${live} sub-tile(s) still queued or running)`);
        return 0;
      }
      const prepareTiles: number[] = [];
      for (const t of tiles) if (!(await readPrepared(scratchDir, t))) prepareTiles.push(t);

      // the next free retry number
      let n = 1;
      try {
        for (const f of await readdir(runDir)) {
          const m = /^retry(\d+)_submit\.sh$/.exec(f);
          if (m) n = Math.max(n, Number(m[1]) + 1);
        }
      } catch {
        // no run folder yet
      }
      const prefix = `retry${n}_`;
      let plan;
      try {
        plan = slurmPlan({
          repoDir: REPO, runDir, configFile, outputDir, catalog, allowMissing: !!opts['allow-missing'], tiles, prepareTiles, tasks: todo,
          maxArraySize: int(opts['max-array-size'], 'max-array-size', 1001, 1), runner: slurmRunner(),
          jobName: opts['job-name'] !== undefined ? String(opts['job-name']) : 'shine', retries: int(opts.retries, 'retries', 2, 0), prefix, method: methodOption(opts), startFrom: await startFromOption(opts),
          ...slurmResources(opts),
        });
      } catch (e) {
        throw new UserError(`--executor slurm: ${(e as Error).message}`);
      }
      if (!opts['dry-run'] && !(await onPath('sbatch'))) throw new UserError('--executor slurm: sbatch is not on PATH (run on a SLURM login node, or use --dry-run to only write the scripts)');
      await writeFiles(runDir, plan.files);
      const what = `${todo.length} sub-tile(s) in ${plan.stage2Batches} Stage-2 array(s)${prepareTiles.length ? `, ${prepareTiles.length} tile(s) to prepare` : ''}, then Stage 3`;
      if (opts['dry-run']) {
        for (const f of plan.files) if (f.name.endsWith('.sh')) console.log(`### ${join(runDir, f.name)}\n${f.text}`);
        console.log(`### submissions (job ids are placeholders)\n${plan.submissions.join('\n')}`);
        console.log(`shine retry (dry run, slurm): ${what}; submit with: bash ${join(runDir, `${prefix}submit.sh`)}`);
        return 0;
      }
      console.log(`shine retry: ${what}`);
      const r = spawnSync('bash', [join(runDir, `${prefix}submit.sh`)], { stdio: 'inherit' });
      return r.status === 0 ? 0 : 1;
    });
  },
};

export default command;
