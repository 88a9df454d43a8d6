/**
 * The work of a survey run, independent of where it runs: tiles → sub-tile tasks, and tasks
 * batched into arrays of at most MaxArraySize elements (SLURM `--array`, AWS Batch array jobs).
 */
import { ShineError } from '../errors.ts';

export interface SubtileTask {
  tileId: number;
  row: number;
  col: number;
}

/** A sub-tile as listed by Stage 1 (prepare_<T>.yaml). */
export interface PreparedSubtile {
  row: number;
  col: number;
  n_sources_core: number;
  n_quadrants: number;
}

/** Empty sub-tile: no core source or no quadrant (Stage 2 has nothing to fit). */
export function isEmptySubtile(s: PreparedSubtile): boolean {
  return !(s.n_sources_core > 0 && s.n_quadrants > 0);
}

/** Parses a tile list: ids separated by commas, spaces or newlines; `#` starts a comment. */
export function parseTileList(text: string, where: string): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  for (const line of text.split(/\r?\n/)) {
    for (const tok of line.replace(/#.*/, '').split(/[\s,]+/)) {
      if (!tok) continue;
      if (!/^\d+$/.test(tok) || !Number.isSafeInteger(Number(tok))) throw new ShineError(`${where}: '${tok}' is not a tile id (a non-negative integer)`);
      const t = Number(tok);
      if (seen.has(t)) throw new ShineError(`${where}: tile ${t} is listed twice`);
      seen.add(t);
      out.push(t);
    }
  }
  if (!out.length) throw new ShineError(`${where}: no tile id`);
  return out;
}

/**
 * The Stage-2 tasks: for each tile (in order) its sub-tiles in row-major order — every cell of
 * the grid, since Stage 2 writes (cheap) products for an empty sub-tile too and Stage 3 expects one
 * row per sub-tile. With `skipEmpty`, a tile whose Stage-1 listing is known contributes only its
 * non-empty sub-tiles.
 */
export function planTasks(tiles: readonly number[], grid: readonly [number, number], prepared: ReadonlyMap<number, readonly PreparedSubtile[]> = new Map(), skipEmpty = false): SubtileTask[] {
  const [rows, cols] = grid;
  const tasks: SubtileTask[] = [];
  for (const tileId of tiles) {
    const known = prepared.get(tileId);
    if (known && skipEmpty) {
      const sorted = [...known].sort((a, b) => a.row - b.row || a.col - b.col);
      for (const s of sorted) if (!isEmptySubtile(s)) tasks.push({ tileId, row: s.row, col: s.col });
    } else {
      for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) tasks.push({ tileId, row, col });
    }
  }
  return tasks;
}

/** Splits `items` into consecutive batches of at most `maxSize` (array indices 0 … size−1). */
export function batch<T>(items: readonly T[], maxSize: number): T[][] {
  if (!Number.isSafeInteger(maxSize) || maxSize < 1) throw new ShineError(`invalid maximum array size ${maxSize} (expected a positive integer)`, { field: 'max-array-size' });
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += maxSize) out.push(items.slice(i, i + maxSize));
  return out;
}

/** The index file of a Stage-2 array: one `tile<TAB>row<TAB>col` line per task, task k on line k+1. */
export function taskIndexText(tasks: readonly SubtileTask[]): string {
  return tasks.map((t) => `${t.tileId}\t${t.row}\t${t.col}\n`).join('');
}

/** The index file of a Stage-1 array: one tile id per line. */
export function tileIndexText(tiles: readonly number[]): string {
  return tiles.map((t) => `${t}\n`).join('');
}
