/**
 * What `shine run`, `shine retry` and `shine calibrate` share: the run folder's lock, the tile
 * list, the SLURM options and resources, the runner of the generated scripts, option parsing
 * helpers. A module of its own so that no command is a library for another (docs/run.md).
 */
import { readFile, mkdir, writeFile, chmod, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from './command.ts';
import { parseTileList } from '../engine/orchestrate/plan.ts';
import type { GeneratedFile, StageResources } from '../engine/orchestrate/slurm.ts';
import { checkMem } from '../engine/orchestrate/shell.ts';
import { acquireLock } from '../platform/node/lock.ts';

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

export function memMiB(m: string): number {
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

/**
 * `--start-from DIR` (every sub-tile's fit starts at the products in DIR: docs/subtile.md
 * "Starting from an earlier fit"), as an absolute path, or null; a missing folder is refused here,
 * before any job starts.
 */
export async function startFromOption(opts: Record<string, unknown>): Promise<string | null> {
  if (opts['start-from'] === undefined) return null;
  const dir = resolve(String(opts['start-from']));
  const st = await stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new UserError(`--start-from ${dir}: no such folder (the products of an earlier run)`);
  return dir;
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
