/**
 * Helper run by the generated Stage-2 task scripts (engine/orchestrate/slurm.ts), so that the
 * scripts stay constant shell text and every check is the same as the local executor's:
 *
 *   slurm-task.ts done   --run RUN --out OUT --tile-id T --sub-tile-row R --sub-tile-col C
 *       exit 0 when the four products are complete and valid (and removes the failure marker);
 *       exit 3, naming the missing or invalid files, otherwise.
 *   slurm-task.ts failed --run RUN --tile-id T --sub-tile-row R --sub-tile-col C
 *                        --attempts N --exit-code X --log FILE [--job ID]
 *       writes the failure marker RUN/failed/<T>_<R>_<C>.json (as the local executor does).
 */
import { rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { subtileOutputsComplete } from './outputs.ts';
import { writeFileAtomic } from './files.ts';
import { failureMarkerPath } from './executor-local.ts';

function args(argv: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error(`slurm-task: bad arguments near '${argv[i]}'`);
    m.set(argv[i].slice(2), argv[i + 1]);
  }
  return m;
}

function int(m: Map<string, string>, k: string): number {
  const v = m.get(k);
  if (v === undefined || !/^-?\d+$/.test(v)) throw new Error(`slurm-task: --${k} must be an integer, got '${v ?? ''}'`);
  return Number(v);
}

function need(m: Map<string, string>, k: string): string {
  const v = m.get(k);
  if (v === undefined) throw new Error(`slurm-task: --${k} is required`);
  return v;
}

export async function slurmTask(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const a = args(rest);
  const t = { tileId: int(a, 'tile-id'), row: int(a, 'sub-tile-row'), col: int(a, 'sub-tile-col') };
  const marker = failureMarkerPath(need(a, 'run'), t);
  if (verb === 'done') {
    const st = await subtileOutputsComplete(need(a, 'out'), t.tileId, t.row, t.col);
    if (st.complete) {
      await rm(marker, { force: true });
      return 0;
    }
    console.error(`shine: tile ${t.tileId} sub-tile (${t.row}, ${t.col}): products not complete: ${[...st.missing.map((f) => `missing ${f}`), ...st.invalid].join('; ')}`);
    return 3;
  }
  if (verb === 'failed') {
    const m = { tile_id: t.tileId, row: t.row, col: t.col, attempts: int(a, 'attempts'), exit_code: int(a, 'exit-code'), log: need(a, 'log'), slurm_job: a.get('job') ?? null, time: new Date().toISOString() };
    await writeFileAtomic(marker, new TextEncoder().encode(`${JSON.stringify(m, null, 2)}\n`));
    return 0;
  }
  throw new Error(`slurm-task: unknown verb '${verb}' (done, failed)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  slurmTask(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error((e as Error).message);
      process.exit(2);
    },
  );
}
