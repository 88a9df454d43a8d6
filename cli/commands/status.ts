/**
 * `shine status --config C (--tiles … | --tiles-file F) [--out DIR] [--method M] [--json]`: per tile and
 * sub-tile — done (outputs complete, valid and fitted as this configuration fits), stale (complete
 * but fitted with other settings or another method: a run redoes them), running, failed (failure marker, or a failed SLURM
 * task: FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, CANCELLED …), pending, empty (Stage 1 found no
 * core source or no quadrant) — from the files on disk and, for the jobs recorded in
 * RUN_DIR/jobs.tsv, from squeue and sacct (docs/run.md).
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError, type Command } from '../command.ts';
import { parseTileCommand } from '../args.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { failureMarkerPath, readPrepared } from '../../platform/node/executor-local.ts';
import { subtileFitMismatch, subtileOutputsComplete, subtileQuality } from '../../platform/node/outputs.ts';
import type { FitQuality } from '../../engine/outputs/quality.ts';
import { methodOption } from '../survey-options.ts';
import type { ShineConfig } from '../../engine/config/schema.ts';
import type { FitMethod } from '../../engine/config/fit-settings.ts';
import { isEmptySubtile, parseTileList } from '../../engine/orchestrate/plan.ts';
import { subtileKey, type SubtileSlurmState } from '../../engine/orchestrate/slurm-state.ts';
import { querySlurm } from '../../platform/node/slurm-query.ts';

const USAGE = `usage: shine status --config C (--tiles T1,T2,… | --tiles-file F) [--out RUN_DIR] [--method map|vi|nuts] [--json]
  --method M   the method the run used (shine run --method): products of another method are
               stale (default: each product is judged under the method it records)`;

export type SubtileState = 'done' | 'stale' | 'running' | 'failed' | 'pending' | 'empty';

export interface SubtileStatus {
  tile_id: number;
  row: number;
  col: number;
  state: SubtileState;
  detail?: string;
  /** SLURM state name of the latest task that ran this sub-tile (squeue or sacct), when known. */
  slurm_state?: string;
  slurm_job?: string;
  /** For complete products (done or stale): what their metadata says of the fit (engine/outputs/quality.ts). */
  quality?: FitQuality;
}

async function exists(p: string): Promise<boolean> {
  try {
    await readFile(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * Per sub-tile state. Precedence: complete products → done, or stale when `fit` is given and they
 * were not fitted as its configuration (and method) would fit them; a queued or running SLURM task →
 * pending/running; a failure marker or a failed SLURM task (or one COMPLETED without complete
 * products) → failed; Stage 1 found it empty → empty; else pending.
 */
export async function collectStatus(o: { tiles: number[]; grid: [number, number]; scratchDir: string; outputDir: string; runDir: string; slurm?: ReadonlyMap<string, SubtileSlurmState>; fit?: { cfg: ShineConfig; method: FitMethod | 'recorded' } }): Promise<{ tiles: Array<{ tile_id: number; prepared: boolean; sub_tiles: SubtileStatus[] }> }> {
  const out = [];
  for (const tileId of o.tiles) {
    const prepared = await readPrepared(o.scratchDir, tileId);
    const emptyKey = new Set((prepared ?? []).filter(isEmptySubtile).map((s) => `${s.row},${s.col}`));
    const subs: SubtileStatus[] = [];
    for (let row = 0; row < o.grid[0]; row++) {
      for (let col = 0; col < o.grid[1]; col++) {
        const st = await subtileOutputsComplete(o.outputDir, tileId, row, col);
        const sl = o.slurm?.get(subtileKey(tileId, row, col));
        const slurm = sl ? { slurm_state: sl.slurmState, slurm_job: sl.job } : {};
        const markerFile = failureMarkerPath(o.runDir, { tileId, row, col });
        let state: SubtileState;
        let detail: string | undefined;
        const why = st.complete && o.fit ? await subtileFitMismatch(o.outputDir, tileId, row, col, o.fit.cfg, o.fit.method) : null;
        const quality = st.complete ? await subtileQuality(o.outputDir, tileId, row, col) : null;
        if (st.complete && why === null) {
          state = 'done';
          if (quality?.problems.length) detail = quality.problems.join('; ');
        } else if (st.complete) {
          // a live task may be redoing it right now
          if (sl && (sl.state === 'pending' || sl.state === 'running')) {
            state = sl.state;
            detail = `SLURM ${sl.slurmState} (job ${sl.job}); the products on disk ${why}`;
          } else {
            state = 'stale';
            detail = `products ${why}`;
          }
        }
        else if (sl && (sl.state === 'pending' || sl.state === 'running')) {
          state = sl.state;
          detail = `SLURM ${sl.slurmState} (job ${sl.job}${sl.info && sl.info !== 'None' ? `, ${sl.info}` : ''})`;
        } else if (await exists(markerFile)) {
          state = 'failed';
          try {
            const m = JSON.parse(await readFile(markerFile, 'utf8')) as { attempts?: number; exit_code?: number; log?: string };
            detail = `${m.attempts} attempt(s), exit ${m.exit_code}, log ${m.log}`;
          } catch {
            detail = 'unreadable failure marker';
          }
          if (sl) detail += `; SLURM ${sl.slurmState} (job ${sl.job})`;
        } else if (sl && (sl.state === 'failed' || sl.state === 'done')) {
          state = 'failed';
          detail = sl.state === 'failed' ? `SLURM ${sl.slurmState} (job ${sl.job}${sl.source === 'sacct' ? `, exit ${sl.info}` : ''})` : `SLURM COMPLETED (job ${sl.job}) but the products are not complete`;
          if (st.invalid.length) detail += `; invalid: ${st.invalid.join('; ')}`;
        } else if (emptyKey.has(`${row},${col}`)) state = 'empty';
        else {
          state = 'pending';
          if (st.invalid.length) detail = `invalid: ${st.invalid.join('; ')}`;
          else if (st.missing.length < 4) detail = `missing: ${st.missing.join(', ')}`;
        }
        subs.push({ tile_id: tileId, row, col, state, ...(detail ? { detail } : {}), ...slurm, ...(quality ? { quality } : {}) });
      }
    }
    out.push({ tile_id: tileId, prepared: prepared !== null, sub_tiles: subs });
  }
  return { tiles: out };
}

const command: Command = {
  summary: 'per tile and sub-tile: done, running, failed, pending or empty (outputs on disk, squeue, sacct)',
  async run(argv) {
    const opts = parseTileCommand(argv, { config: 'string', tiles: 'string', 'tiles-file': 'string', out: 'string', method: 'string', json: 'boolean', help: 'boolean' }, USAGE);
    if (!opts) return 0;
    const cfg = await loadConfig(String(opts.config));
    let tiles: number[];
    try {
      tiles = opts.tiles !== undefined ? parseTileList(String(opts.tiles), '--tiles') : parseTileList(await readFile(String(opts['tiles-file']), 'utf8'), String(opts['tiles-file']));
    } catch (e) {
      throw new UserError((e as Error).message);
    }
    const scratchDir = resolve(cfg.distributed.scratch_dir);
    const runDir = resolve(opts.out !== undefined ? String(opts.out) : join(scratchDir, 'run'));
    // SLURM: jobs of this run (ids recorded by submit.sh in RUN_DIR/jobs.tsv)
    const q = await querySlurm(runDir);
    const status = await collectStatus({ tiles, grid: cfg.distributed.sub_tile_grid as [number, number], scratchDir, outputDir: resolve(cfg.distributed.output_dir), runDir, slurm: q.subtiles, fit: { cfg, method: (methodOption(opts) as FitMethod | undefined) ?? 'recorded' } });
    const slurm = { squeue: q.squeue, sacct: q.sacct, notes: q.notes, jobs: q.jobs };

    if (opts.json) {
      console.log(JSON.stringify({ ...status, slurm }, null, 2));
      return 0;
    }
    const counts: Record<SubtileState, number> = { done: 0, stale: 0, running: 0, failed: 0, pending: 0, empty: 0 };
    const lines = ['tile        row col  state    detail'];
    const qc = { notConverged: 0, noErrors: 0, offMode: 0 };
    for (const t of status.tiles) {
      if (!t.prepared) lines.push(`${String(t.tile_id).padEnd(11)} (not prepared yet: Stage 1 has not run)`);
      for (const s of t.sub_tiles) {
        counts[s.state]++;
        if (s.state === 'done' && s.quality) {
          if (!s.quality.converged) qc.notConverged++;
          if (!s.quality.shear || !s.quality.errors) qc.noErrors++;
          if (s.quality.offMode) qc.offMode++;
        }
        lines.push(`${String(s.tile_id).padEnd(11)} ${String(s.row).padStart(3)} ${String(s.col).padStart(3)}  ${s.state.padEnd(8)} ${s.detail ?? ''}`.trimEnd());
      }
    }
    lines.push(`total: ${counts.done} done, ${counts.stale ? `${counts.stale} stale, ` : ''}${counts.running} running, ${counts.failed} failed, ${counts.pending} pending, ${counts.empty} empty`);
    if (counts.done) {
      const bad = [qc.notConverged ? `${qc.notConverged} not converged` : '', qc.noErrors ? `${qc.noErrors} without a finite shear and errors` : '', qc.offMode ? `${qc.offMode} whose MAP may be off its mode (their metadata warnings say by how much)` : ''].filter(Boolean);
      lines.push(`of the ${counts.done} done: ${bad.length ? bad.join(', ') : 'every one converged, with a finite shear and errors'}`);
    }
    for (const n of slurm.notes) lines.push(`slurm: ${n}`);
    for (const j of slurm.jobs) lines.push(`  ${j.stage} job ${j.jobId}: ${j.states.length ? j.states.join(', ') : 'not known to squeue/sacct (finished long ago, or another cluster)'}`);
    console.log(lines.join('\n'));
    return 0;
  },
};

export default command;
