/**
 * The local executor of `shine run` (docs/run.md): Stage 1 per tile, Stage 2 for every non-empty
 * sub-tile as child processes, `jobs` at a time, with bounded automatic retries, then Stage 3.
 * Resume: a tile already prepared (prepare_<T>.yaml present) is not prepared again and a sub-tile
 * whose outputs are complete and valid is skipped. A sub-tile that still fails after its retries
 * gets a failure marker `<runDir>/failed/<T>_<R>_<C>.json` (removed when it later succeeds); its
 * log is `<runDir>/logs/subtile_<T>_<R>_<C>.log`.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { isEmptySubtile, planTasks, type PreparedSubtile, type SubtileTask } from '../../engine/orchestrate/plan.ts';
import { ShineError } from '../../engine/errors.ts';
import { subtileOutputsComplete } from './outputs.ts';
import { writeFileAtomic } from './files.ts';

export interface LocalRunOptions {
  configFile: string;
  tiles: readonly number[];
  grid: readonly [number, number];
  scratchDir: string;
  outputDir: string;
  runDir: string;
  jobs: number;
  retries: number;
  /** Stage-1 command prefix; `--config C --tile-id T --out DIR --quiet` are appended. */
  prepareCommand: readonly string[];
  /** Stage-2 command prefix; `--tile-id T --sub-tile-row R --sub-tile-col C --config F --out DIR --quiet` are appended. */
  subtileCommand: readonly string[];
  /** Stage-3 command prefix; `--config C --tiles-file F --out CATALOG [--allow-missing]` appended; null: no Stage 3. */
  assembleCommand: readonly string[] | null;
  catalog: string;
  allowMissing: boolean;
  cwd: string;
  log: (line: string) => void;
  /**
   * For complete products: null when they are this run's result, else why not (then the sub-tile
   * runs, and cli/subtile.ts redoes it). Absent: complete products are always kept.
   */
  staleReason?: (t: SubtileTask) => Promise<string | null>;
  /** Progress line (done, failed, total); rewritten in place on a terminal. */
  progress?: (done: number, failed: number, skipped: number, total: number) => void;
}

export interface LocalRunResult {
  tasks: number;
  done: number;
  skipped: number;
  empty: number;
  failed: SubtileTask[];
  retried: number;
  assembled: boolean | null;
}

export function preparedListPath(scratchDir: string, tileId: number): string {
  return join(scratchDir, `tile_${tileId}`, `prepare_${tileId}.yaml`);
}

export function failureMarkerPath(runDir: string, t: SubtileTask): string {
  return join(runDir, 'failed', `${t.tileId}_${t.row}_${t.col}.json`);
}

export function subtileLogPath(runDir: string, t: SubtileTask): string {
  return join(runDir, 'logs', `subtile_${t.tileId}_${t.row}_${t.col}.log`);
}

/** The sub-tiles listed by Stage 1 for a tile, or null when it has not been prepared. */
export async function readPrepared(scratchDir: string, tileId: number): Promise<PreparedSubtile[] | null> {
  const file = preparedListPath(scratchDir, tileId);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ShineError(`cannot read: ${(e as Error).message}`, { file });
  }
  let doc: { tile_id?: unknown; sub_tiles?: unknown };
  try {
    doc = parse(text) as typeof doc;
  } catch (e) {
    throw new ShineError(`not valid YAML: ${(e as Error).message.split('\n')[0]}`, { file });
  }
  if (!doc || doc.tile_id !== tileId || !Array.isArray(doc.sub_tiles)) throw new ShineError(`not a Stage-1 listing of tile ${tileId} (tile_id, sub_tiles)`, { file });
  return (doc.sub_tiles as Array<Record<string, unknown>>).map((s, i) => {
    const n = (k: string) => {
      const v = s[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ShineError(`sub_tiles[${i}].${k}: expected a non-negative integer`, { file });
      return v;
    };
    return { row: n('row'), col: n('col'), n_sources_core: n('n_sources_core'), n_quadrants: n('n_quadrants') };
  });
}

/** Runs a command with its output appended to `logFile`; resolves to its exit code. */
export function runLogged(argv: readonly string[], cwd: string, logFile: string): Promise<number> {
  return new Promise((resolve) => {
    const out = createWriteStream(logFile, { flags: 'a' });
    out.write(`$ ${argv.map((a) => JSON.stringify(a)).join(' ')}\n`);
    const child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    const finish = (code: number) => out.end(`[exit ${code}]\n`, () => resolve(code));
    child.on('error', (e) => {
      out.write(`cannot start: ${e.message}\n`);
      finish(127);
    });
    child.on('close', (code, signal) => finish(code ?? (signal ? 128 : 1)));
  });
}

export async function runLocal(o: LocalRunOptions): Promise<LocalRunResult> {
  if (!Number.isSafeInteger(o.jobs) || o.jobs < 1) throw new ShineError(`--jobs must be a positive integer, got ${o.jobs}`);
  if (!Number.isSafeInteger(o.retries) || o.retries < 0) throw new ShineError(`--retries must be a non-negative integer, got ${o.retries}`);
  await mkdir(join(o.runDir, 'logs'), { recursive: true });
  await mkdir(join(o.runDir, 'failed'), { recursive: true });

  // Stage 1
  const prepared = new Map<number, PreparedSubtile[]>();
  for (const tileId of o.tiles) {
    let list = await readPrepared(o.scratchDir, tileId);
    if (list) o.log(`run: tile ${tileId}: already prepared (${preparedListPath(o.scratchDir, tileId)})`);
    else {
      const logFile = join(o.runDir, 'logs', `prepare_${tileId}.log`);
      o.log(`run: tile ${tileId}: Stage 1 (prepare)`);
      const rc = await runLogged([...o.prepareCommand, '--config', o.configFile, '--tile-id', String(tileId), '--out', join(o.scratchDir, `tile_${tileId}`), '--quiet'], o.cwd, logFile);
      if (rc !== 0) throw new ShineError(`Stage 1 failed for tile ${tileId} (exit ${rc}); see ${logFile}`);
      list = await readPrepared(o.scratchDir, tileId);
      if (!list) throw new ShineError(`Stage 1 for tile ${tileId} exited 0 but wrote no ${preparedListPath(o.scratchDir, tileId)}`);
    }
    prepared.set(tileId, list);
  }
  const tasks = planTasks(o.tiles, o.grid, prepared);
  const empty = [...prepared.values()].reduce((s, l) => s + l.filter(isEmptySubtile).length, 0);

  // Stage 2
  let done = 0;
  let skipped = 0;
  let retried = 0;
  const failed: SubtileTask[] = [];
  const report = () => o.progress?.(done + skipped, failed.length, skipped, tasks.length);
  report();
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const t = tasks[next++];
      const why = (await subtileOutputsComplete(o.outputDir, t.tileId, t.row, t.col)).complete ? ((await o.staleReason?.(t)) ?? null) : undefined;
      if (why) o.log(`run: tile ${t.tileId} sub-tile (${t.row}, ${t.col}) has outputs ${why}: running again`);
      else if (why === null) {
        skipped++;
        await rm(failureMarkerPath(o.runDir, t), { force: true });
        report();
        continue;
      }
      const logFile = subtileLogPath(o.runDir, t);
      let rc = 0;
      let attempt = 0;
      for (; attempt <= o.retries; attempt++) {
        if (attempt > 0) {
          retried++;
          o.log(`run: tile ${t.tileId} sub-tile (${t.row}, ${t.col}) failed (exit ${rc}); retry ${attempt}/${o.retries}`);
        }
        rc = await runLogged([...o.subtileCommand, '--tile-id', String(t.tileId), '--sub-tile-row', String(t.row), '--sub-tile-col', String(t.col), '--config', o.configFile, '--out', o.outputDir, '--quiet'], o.cwd, logFile);
        if (rc === 0) {
          const st = await subtileOutputsComplete(o.outputDir, t.tileId, t.row, t.col);
          if (st.complete) break;
          rc = -1; // exited 0 without complete outputs
        }
      }
      if (attempt <= o.retries) {
        done++;
        await rm(failureMarkerPath(o.runDir, t), { force: true });
      } else {
        failed.push(t);
        const marker = { tile_id: t.tileId, row: t.row, col: t.col, attempts: o.retries + 1, exit_code: rc, log: logFile, time: new Date().toISOString() };
        await writeFileAtomic(failureMarkerPath(o.runDir, t), new TextEncoder().encode(`${JSON.stringify(marker, null, 2)}\n`));
      }
      report();
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.jobs, Math.max(1, tasks.length)) }, worker));
  failed.sort((a, b) => a.tileId - b.tileId || a.row - b.row || a.col - b.col);

  // Stage 3
  let assembled: boolean | null = null;
  if (o.assembleCommand && (failed.length === 0 || o.allowMissing)) {
    const tilesFile = join(o.runDir, 'tiles.txt');
    await writeFileAtomic(tilesFile, new TextEncoder().encode(o.tiles.map((t) => `${t}\n`).join('')));
    const logFile = join(o.runDir, 'logs', 'assemble.log');
    o.log(`run: Stage 3 (assemble) → ${o.catalog}`);
    const rc = await runLogged([...o.assembleCommand, '--config', o.configFile, '--tiles-file', tilesFile, '--out', o.catalog, ...(o.allowMissing ? ['--allow-missing'] : [])], o.cwd, logFile);
    assembled = rc === 0;
    if (rc !== 0) o.log(`run: Stage 3 failed (exit ${rc}); see ${logFile}`);
  }
  return { tasks: tasks.length, done, skipped, empty, failed, retried, assembled };
}

/** Whether an executable `name` is on PATH. */
export async function onPath(name: string): Promise<boolean> {
  const { access, constants } = await import('node:fs/promises');
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    try {
      await access(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // next
    }
  }
  return false;
}
