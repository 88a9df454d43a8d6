/**
 * Stage 3 never reads a half-written sub-tile (issue 17 item 11). The protocol, per output folder:
 *
 * - a sub-tile run (cli/subtile.ts) creates `DIR/.lock_subtile_<T>_<R>_<C>`, *then* looks at
 *   `DIR/.lock_assemble`: held by a live Stage 3 → it stops (one line naming the lock) before
 *   computing or writing anything;
 * - Stage 3 (`shine assemble`) creates `DIR/.lock_assemble`, *then* lists the `.lock_subtile_*` of
 *   the tiles it assembles: one held by a live run (or by a run on another host that cannot be
 *   checked) → it stops (one line naming the lock and the holder) before reading anything; it holds
 *   its lock until the catalog and the params files are written.
 *
 * Each side creates its own lock before it looks for the other's, so whichever comes second sees
 * the first: a sub-tile is never rewritten while Stage 3 reads the folder. Stale locks (a dead pid
 * on this host, a SLURM job that has ended) are ignored with a warning. A folder Stage 3 cannot
 * write (read-only, no permission) gets no assembly lock: nobody can write a sub-tile there either
 * (a sub-tile run must create its lock there first), so only the sub-tile locks are looked at.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireLock, describeLockHolder, inspectLock, LockBusy, LockUnwritable, type HeldLock } from './lock.ts';

/** Stage 3's lock in an output folder (held while it reads the folder and writes the catalog). */
export const ASSEMBLE_LOCK = '.lock_assemble';

/** The lock file of one sub-tile in its output folder (held while it is computed and written). */
export function subtileLockName(tileId: number | bigint, row: number, col: number): string {
  return `.lock_subtile_${tileId}_${row}_${col}`;
}

const SUBTILE_LOCK_RE = /^\.lock_subtile_(\d+)_(\d+)_(\d+)$/;

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Stage 3's side: takes `.lock_assemble` in every output folder (that exists and is writable), then
 * throws LockBusy naming the first sub-tile lock of `tiles` held by a live run (and how many more).
 * Returns a release for the locks taken.
 */
export async function lockOutputsForAssembly(
  dirs: readonly string[],
  tiles: ReadonlyArray<number | bigint>,
  warn: (line: string) => void,
): Promise<{ release(): Promise<void> }> {
  const held: HeldLock[] = [];
  const release = async () => {
    for (const l of held.splice(0)) await l.release();
  };
  const wanted = new Set(tiles.map(String));
  try {
    for (const dir of dirs) {
      if (!(await isDir(dir))) continue; // nothing there to read (the sub-tiles are reported missing)
      try {
        held.push(await acquireLock(join(dir, ASSEMBLE_LOCK), { what: `output folder ${dir} (Stage 3)`, warn }));
      } catch (e) {
        if (!(e instanceof LockUnwritable)) throw e;
      }
      const busy: Array<{ path: string; id: string; holder: string; unknown: boolean }> = [];
      for (const name of (await readdir(dir)).sort()) {
        const m = SUBTILE_LOCK_RE.exec(name);
        if (!m || !wanted.has(m[1])) continue;
        const path = join(dir, name);
        const st = await inspectLock(path);
        if (!st) continue;
        if (st.state === 'stale') {
          warn(`warning: stale sub-tile lock ${path} of ${describeLockHolder(st.owner)} (that run is gone): ignored, the sub-tile's outputs are checked as usual`);
          continue;
        }
        busy.push({ path, id: `tile ${m[1]} sub-tile (${m[2]}, ${m[3]})`, holder: describeLockHolder(st.owner), unknown: st.state === 'unknown' });
      }
      if (busy.length) {
        const b = busy[0];
        const more = busy.length > 1 ? ` (and ${busy.length - 1} more sub-tile lock${busy.length > 2 ? 's' : ''})` : '';
        throw new LockBusy(
          `output folder ${dir}: ${b.id} is being computed or written: ${b.holder} holds ${b.path}${more}; assemble when ${busy.length > 1 ? 'they have' : 'it has'} finished (Stage 3 must not read a half-written sub-tile)${b.unknown ? ` — that holder runs on another host and cannot be checked: if it is no longer running, delete ${b.path}` : ''}`,
          b.path,
          null,
        );
      }
    }
  } catch (e) {
    await release();
    throw e;
  }
  return { release };
}

/**
 * A sub-tile run's side, called once it holds its own lock: throws LockBusy when Stage 3 (a live
 * holder of `.lock_assemble`) is reading the folder.
 */
export async function refuseWhileAssembling(dir: string, what: string, warn: (line: string) => void): Promise<void> {
  const path = join(dir, ASSEMBLE_LOCK);
  const st = await inspectLock(path);
  if (!st) return;
  if (st.state === 'stale') {
    warn(`warning: stale Stage-3 lock ${path} of ${describeLockHolder(st.owner)} (that process is gone): ignored`);
    return;
  }
  throw new LockBusy(
    `${what}: the output folder is being assembled (Stage 3): ${describeLockHolder(st.owner)} holds ${path}; run the sub-tile when the assembly has finished${st.state === 'unknown' ? ` — that holder runs on another host and cannot be checked: if it is no longer running, delete ${path}` : ''}`,
    path,
    st.owner,
  );
}
