/**
 * `shine status --config C (--tiles … | --tiles-file F) [--out DIR] [--json]`: per tile and
 * sub-tile — done (outputs complete and valid), failed (failure marker of the local executor),
 * pending, empty (Stage 1 found no core source or no quadrant) — from the files on disk; SLURM job
 * states from squeue when it is on PATH (docs/run.md).
 */
import { readFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { UserError, type Command } from '../command.ts';
import { parseOptions } from '../args.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { failureMarkerPath, onPath, readPrepared } from '../../platform/node/executor-local.ts';
import { subtileOutputsComplete } from '../../platform/node/outputs.ts';
import { isEmptySubtile, parseTileList } from '../../engine/orchestrate/plan.ts';

const USAGE = 'usage: shine status --config C (--tiles T1,T2,… | --tiles-file F) [--out RUN_DIR] [--json]';

export type SubtileState = 'done' | 'failed' | 'pending' | 'empty';

export interface SubtileStatus {
  tile_id: number;
  row: number;
  col: number;
  state: SubtileState;
  detail?: string;
}

async function exists(p: string): Promise<boolean> {
  try {
    await readFile(p);
    return true;
  } catch {
    return false;
  }
}

export async function collectStatus(o: { tiles: number[]; grid: [number, number]; scratchDir: string; outputDir: string; runDir: string }): Promise<{ tiles: Array<{ tile_id: number; prepared: boolean; sub_tiles: SubtileStatus[] }> }> {
  const out = [];
  for (const tileId of o.tiles) {
    const prepared = await readPrepared(o.scratchDir, tileId);
    const emptyKey = new Set((prepared ?? []).filter(isEmptySubtile).map((s) => `${s.row},${s.col}`));
    const subs: SubtileStatus[] = [];
    for (let row = 0; row < o.grid[0]; row++) {
      for (let col = 0; col < o.grid[1]; col++) {
        const st = await subtileOutputsComplete(o.outputDir, tileId, row, col);
        let state: SubtileState;
        let detail: string | undefined;
        if (st.complete) state = 'done';
        else if (emptyKey.has(`${row},${col}`)) state = 'empty';
        else if (await exists(failureMarkerPath(o.runDir, { tileId, row, col }))) {
          state = 'failed';
          try {
            const m = JSON.parse(await readFile(failureMarkerPath(o.runDir, { tileId, row, col }), 'utf8')) as { attempts?: number; exit_code?: number; log?: string };
            detail = `${m.attempts} attempt(s), exit ${m.exit_code}, log ${m.log}`;
          } catch {
            detail = 'unreadable failure marker';
          }
        } else {
          state = 'pending';
          if (st.invalid.length) detail = `invalid: ${st.invalid.join('; ')}`;
          else if (st.missing.length < 4) detail = `missing: ${st.missing.join(', ')}`;
        }
        subs.push({ tile_id: tileId, row, col, state, ...(detail ? { detail } : {}) });
      }
    }
    out.push({ tile_id: tileId, prepared: prepared !== null, sub_tiles: subs });
  }
  return { tiles: out };
}

const command: Command = {
  summary: 'per tile and sub-tile: done, failed, pending or empty (from the outputs on disk and squeue)',
  async run(argv) {
    const { opts, positional } = parseOptions(argv, { config: 'string', tiles: 'string', 'tiles-file': 'string', out: 'string', json: 'boolean', help: 'boolean' }, USAGE);
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    if (positional.length) throw new UserError(`unexpected argument '${positional[0]}'\n${USAGE}`);
    if (!opts.config) throw new UserError(`--config is required\n${USAGE}`);
    if ((opts.tiles === undefined) === (opts['tiles-file'] === undefined)) throw new UserError(`give exactly one of --tiles or --tiles-file\n${USAGE}`);
    const cfg = await loadConfig(String(opts.config));
    let tiles: number[];
    try {
      tiles = opts.tiles !== undefined ? parseTileList(String(opts.tiles), '--tiles') : parseTileList(await readFile(String(opts['tiles-file']), 'utf8'), String(opts['tiles-file']));
    } catch (e) {
      throw new UserError((e as Error).message);
    }
    const scratchDir = resolve(cfg.distributed.scratch_dir);
    const runDir = resolve(opts.out !== undefined ? String(opts.out) : join(scratchDir, 'run'));
    const status = await collectStatus({ tiles, grid: cfg.distributed.sub_tile_grid as [number, number], scratchDir, outputDir: resolve(cfg.distributed.output_dir), runDir });

    // SLURM: jobs of this run (ids recorded by submit.sh in RUN_DIR/jobs.tsv)
    let slurm: { available: boolean; note: string; jobs: Array<{ stage: string; id: string; squeue: string[] }> };
    if (!(await onPath('squeue'))) slurm = { available: false, note: 'squeue is not on PATH: SLURM job states not shown', jobs: [] };
    else {
      let lines: string[] = [];
      try {
        lines = (await readFile(join(runDir, 'jobs.tsv'), 'utf8')).split('\n').filter(Boolean);
      } catch {
        // no submission recorded
      }
      const jobs = lines.map((l) => {
        const [stage, id] = l.split('\t');
        const ok = /^\d+$/.test(id ?? '');
        const r = ok ? spawnSync('squeue', ['-h', '-j', id, '-o', '%i %T %R'], { encoding: 'utf8' }) : null;
        return { stage, id, squeue: r && r.status === 0 ? r.stdout.split('\n').filter(Boolean) : [] };
      });
      slurm = { available: true, note: lines.length ? `${lines.length} job(s) recorded in ${join(runDir, 'jobs.tsv')}` : `no jobs recorded in ${join(runDir, 'jobs.tsv')}`, jobs };
    }

    if (opts.json) {
      console.log(JSON.stringify({ ...status, slurm }, null, 2));
      return 0;
    }
    const counts: Record<SubtileState, number> = { done: 0, failed: 0, pending: 0, empty: 0 };
    const lines = ['tile        row col  state    detail'];
    for (const t of status.tiles) {
      if (!t.prepared) lines.push(`${String(t.tile_id).padEnd(11)} (not prepared yet: Stage 1 has not run)`);
      for (const s of t.sub_tiles) {
        counts[s.state]++;
        lines.push(`${String(s.tile_id).padEnd(11)} ${String(s.row).padStart(3)} ${String(s.col).padStart(3)}  ${s.state.padEnd(8)} ${s.detail ?? ''}`.trimEnd());
      }
    }
    lines.push(`total: ${counts.done} done, ${counts.failed} failed, ${counts.pending} pending, ${counts.empty} empty`);
    lines.push(`slurm: ${slurm.note}`);
    for (const j of slurm.jobs) lines.push(`  ${j.stage} job ${j.id}: ${j.squeue.length ? j.squeue.join('; ') : 'not in squeue (finished or unknown)'}`);
    console.log(lines.join('\n'));
    return 0;
  },
};

export default command;
