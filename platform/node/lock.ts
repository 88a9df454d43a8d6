/**
 * Cross-process locks on files (issue 17 item 11): a lock is a file created with O_EXCL holding
 * `{pid, host, started, token, what}`. Only its owner removes it: a release reads the file back
 * and unlinks it only when it still holds the owner's token, so a slow holder whose lock was
 * broken as stale never deletes its successor's lock.
 *
 * - {@link acquireLock}: one run per folder / sub-tile. Held by a live process → a clear error
 *   naming the lock file and the holder; held by a dead pid on this host → stale: taken over with
 *   a warning; held by another host: taken over when the holder ran as a SLURM job that `squeue`
 *   says has ended (a node that died mid-task: `shine retry` reruns it elsewhere), else an error
 *   that says which file to delete if that run is gone. Released on exit, also on errors, SIGINT, SIGTERM
 *   and SIGHUP.
 * - {@link inspectLock}: whether a lock file's holder is alive, without taking it (Stage 3 looks at
 *   the sub-tile locks of its output folders; a sub-tile run at the folder's assembly lock).
 * - {@link waitLock}: a short critical section (the remote cache's index): waits for the lock;
 *   a lock older than `staleMs` (or of a dead pid on this host) is broken; after `maxWaitMs` the
 *   waiter fails — it never goes on without the lock.
 */
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { readFileSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { execFileSync } from 'node:child_process';
import { ShineError } from '../../engine/errors.ts';

export interface LockOwner {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** Random token: who owns this lock file. */
  token: string;
  /** What is locked (for messages). */
  what?: string;
  /** The SLURM job (`<job>` or `<array job>_<task>`) the holder ran in, when it ran under SLURM. */
  slurmJob?: string;
}

export interface HeldLock {
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock file if it is still ours; true when it was. */
  release(): Promise<boolean>;
}

/** The lock is held by another run. */
export class LockBusy extends ShineError {
  override name = 'LockBusy';
  constructor(
    message: string,
    readonly lockPath: string,
    readonly holder: LockOwner | null,
  ) {
    super(message);
  }
}

/** The lock file cannot be created because the folder is not writable (read-only, no permission). */
export class LockUnwritable extends ShineError {
  override name = 'LockUnwritable';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parseOwner(text: string): LockOwner | null {
  try {
    const j = JSON.parse(text) as LockOwner;
    if (Number.isSafeInteger(j.pid) && typeof j.host === 'string' && typeof j.token === 'string' && typeof j.started === 'string') return j;
  } catch {
    // fall through
  }
  return null;
}

async function readOwner(path: string): Promise<{ owner: LockOwner | null; mtimeMs: number } | null> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { owner: parseOwner(text), mtimeMs: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Whether `pid` is a live process on this host (EPERM: alive, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function newOwner(what?: string): LockOwner {
  const job = slurmJobOfThisProcess();
  return { pid: process.pid, host: hostname(), started: new Date().toISOString(), token: randomBytes(12).toString('hex'), ...(what ? { what } : {}), ...(job ? { slurmJob: job } : {}) };
}

/** Creates the lock file exclusively; false when it exists. */
async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, 'wx');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') throw new LockUnwritable(`cannot create the lock file: ${(e as Error).message}`, { file: path });
    throw new ShineError(`cannot create the lock file: ${(e as Error).message}`, { file: path });
  }
  try {
    await fh.writeFile(`${JSON.stringify(owner)}\n`);
    await fh.sync().catch(() => undefined);
  } finally {
    await fh.close();
  }
  return true;
}

/**
 * Removes a stale lock only if it is still the one judged stale: the file is first renamed aside
 * (one remover wins), then its token compared; a fresh lock moved by mistake is put back.
 */
async function breakLock(path: string, stale: LockOwner | null): Promise<void> {
  const aside = `${path}.broken.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // removed meanwhile
    throw e;
  }
  let moved: LockOwner | null = null;
  try {
    moved = parseOwner(await readFile(aside, 'utf8'));
  } catch {
    moved = null;
  }
  if (moved && stale && moved.token !== stale.token) await link(aside, path).catch(() => undefined); // not the stale one: put it back
  await unlink(aside).catch(() => undefined);
}

/** Unlinks `path` if it holds `token`. */
async function releaseIfOwner(path: string, token: string): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return false;
  }
  if (parseOwner(text)?.token !== token) return false; // broken as stale and taken by another: not ours to delete
  await unlink(path).catch(() => undefined);
  return true;
}

function releaseIfOwnerSync(path: string, token: string): void {
  try {
    if (parseOwner(readFileSync(path, 'utf8'))?.token === token) unlinkSync(path);
  } catch {
    // gone already
  }
}

// ---- release on exit and on signals

const held = new Map<string, HeldLock>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let hooked = false;

function releaseAllSync(): void {
  for (const l of held.values()) releaseIfOwnerSync(l.path, l.owner.token);
  held.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  releaseAllSync();
  unhook();
  // nobody else handles it: the default action (exit with 128 + n), as without the lock
  if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', releaseAllSync);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function unhook(): void {
  if (!hooked) return;
  hooked = false;
  process.removeListener('exit', releaseAllSync);
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

function describeHolder(o: LockOwner): string {
  return `pid ${o.pid} on ${o.host} since ${o.started}${o.slurmJob ? ` (SLURM job ${o.slurmJob})` : ''}`;
}

/** This process's SLURM job: `<array job>_<task>` for an array task, else `<job>`; undefined outside SLURM. */
function slurmJobOfThisProcess(): string | undefined {
  const e = process.env;
  if (e.SLURM_ARRAY_JOB_ID && e.SLURM_ARRAY_TASK_ID) return `${e.SLURM_ARRAY_JOB_ID}_${e.SLURM_ARRAY_TASK_ID}`;
  return e.SLURM_JOB_ID || undefined;
}

/**
 * Whether a SLURM job is over, asked of `squeue` (a job no longer in the queue, or one squeue
 * calls invalid, has ended). undefined when squeue cannot be asked (not installed, controller down):
 * then nothing is assumed. A node that died leaves its task's lock behind on the shared file
 * system; `shine retry` reruns the task elsewhere, and this is how the rerun knows the lock's
 * holder is gone.
 */
export function slurmJobEnded(job: string): boolean | undefined {
  if (!/^[0-9]+(_[0-9]+)?$/.test(job)) return undefined;
  try {
    const out = execFileSync('squeue', ['-h', '-j', job, '-o', '%T'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
    return out.trim() === '';
  } catch (e) {
    const err = e as { stderr?: string; code?: string };
    if (typeof err.stderr === 'string' && /invalid job id/i.test(err.stderr)) return true;
    return undefined;
  }
}

/** What {@link inspectLock} found: 'live' (a holder alive on this host, or a lock being written), 'stale' (its holder is gone), 'unknown' (another host's holder that cannot be checked). */
export type LockState = 'live' | 'stale' | 'unknown';

/** Describes a lock's holder for messages ("pid 4711 on node-3 since …"). */
export function describeLockHolder(o: LockOwner | null): string {
  return o ? describeHolder(o) : 'a holder not yet written';
}

/**
 * Looks at the lock `path` without taking it: null when there is none, else its holder and
 * whether that holder is alive (same rules as {@link acquireLock}: a dead pid on this host, or a
 * SLURM job squeue says has ended, is stale; an unreadable lock younger than 10 s is being written).
 */
export async function inspectLock(path: string): Promise<{ owner: LockOwner | null; state: LockState } | null> {
  const cur = await readOwner(path);
  if (!cur) return null;
  const o = cur.owner;
  if (!o) return { owner: null, state: Date.now() - cur.mtimeMs < 10_000 ? 'live' : 'stale' };
  if (o.host === hostname()) return { owner: o, state: o.pid === process.pid || pidAlive(o.pid) ? 'live' : 'stale' };
  if (o.slurmJob && o.slurmJob !== slurmJobOfThisProcess() && slurmJobEnded(o.slurmJob) === true) return { owner: o, state: 'stale' };
  return { owner: o, state: 'unknown' };
}

/**
 * Takes the lock `path` for `what` (e.g. "sub-tile (102018211, 1, 1)"), or throws LockBusy naming
 * the lock file and its holder. A lock of a dead process on this host is taken over, with
 * `warn` told.
 */
export async function acquireLock(path: string, opts: { what: string; warn?: (line: string) => void }): Promise<HeldLock> {
  const owner = newOwner(opts.what);
  const host = hostname();
  for (let attempt = 0; ; attempt++) {
    if (await tryCreate(path, owner)) break;
    const cur = await readOwner(path);
    if (!cur) continue; // released meanwhile
    const o = cur.owner;
    if (!o) {
      // being written (created, not yet filled), or left empty by a crash
      if (Date.now() - cur.mtimeMs < 10_000 && attempt < 40) {
        await sleep(50);
        continue;
      }
      opts.warn?.(`warning: ${opts.what}: the lock file ${path} is unreadable and ${Math.round((Date.now() - cur.mtimeMs) / 1000)} s old: taken over`);
      await breakLock(path, null);
      continue;
    }
    if (o.host === host && o.pid !== process.pid && !pidAlive(o.pid)) {
      opts.warn?.(`warning: ${opts.what}: stale lock ${path} of ${describeHolder(o)} (that process is gone): taken over`);
      await breakLock(path, o);
      continue;
    }
    if (o.host !== host && o.slurmJob && o.slurmJob !== slurmJobOfThisProcess() && slurmJobEnded(o.slurmJob) === true) {
      opts.warn?.(`warning: ${opts.what}: stale lock ${path} of ${describeHolder(o)} (squeue: that job has ended): taken over`);
      await breakLock(path, o);
      continue;
    }
    if (o.host === host) {
      throw new LockBusy(`${opts.what} is locked by another run: ${describeHolder(o)} holds ${path}; wait for it to finish (two runs must not write the same outputs)`, path, o);
    }
    throw new LockBusy(
      `${opts.what} is locked by a run on another host: ${describeHolder(o)} holds ${path}; its process cannot be checked from ${host}${o.slurmJob ? ' and squeue does not say its job has ended' : ''} — if that run is no longer running, delete ${path}`,
      path,
      o,
    );
  }
  const lock: HeldLock = {
    path,
    owner,
    async release() {
      if (held.get(path) === lock) held.delete(path);
      if (held.size === 0) unhook();
      return releaseIfOwner(path, owner.token);
    },
  };
  held.set(path, lock);
  hook();
  return lock;
}

/**
 * Waits for the lock `path` (a short critical section): breaks it when older than `staleMs` or
 * held by a dead pid on this host; throws after `maxWaitMs` rather than going on without it.
 */
export async function waitLock(path: string, opts: { staleMs?: number; maxWaitMs?: number; what?: string } = {}): Promise<HeldLock> {
  const staleMs = opts.staleMs ?? 30_000;
  const maxWaitMs = opts.maxWaitMs ?? 120_000;
  const owner = newOwner(opts.what);
  const host = hostname();
  const t0 = Date.now();
  for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
    if (await tryCreate(path, owner)) break;
    const cur = await readOwner(path);
    if (!cur) continue;
    const o = cur.owner;
    const dead = !!o && o.host === host && o.pid !== process.pid && !pidAlive(o.pid);
    if (dead || Date.now() - cur.mtimeMs > staleMs) {
      await breakLock(path, o);
      continue;
    }
    if (Date.now() - t0 > maxWaitMs) {
      throw new LockBusy(`waited ${Math.round((Date.now() - t0) / 1000)} s for the lock ${path}${o ? ` (held by ${describeHolder(o)})` : ''}: giving up`, path, o);
    }
    await sleep(wait);
  }
  return {
    path,
    owner,
    release: () => releaseIfOwner(path, owner.token),
  };
}
