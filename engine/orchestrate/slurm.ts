/**
 * SLURM job scripts for a survey run (docs/run.md): Stage 1 arrays over tiles (CPU), Stage 2
 * arrays over sub-tiles (GPU, one task per sub-tile, batched within MaxArraySize), Stage 3 chained
 * with `--dependency=afterany`. Every generated value is either shell-quoted (`shq`) in an
 * assignment at the top of a script, or format-checked for `#SBATCH` lines; the script bodies
 * below the assignments are constant text. A task finds its (tile, row, col) by reading line
 * SLURM_ARRAY_TASK_ID+1 of a generated index file and checking every field is an integer.
 */
import { batch, taskIndexText, tileIndexText, type SubtileTask } from './plan.ts';
import { checkCount, checkMem, checkPartition, checkTime, safeJobName, shq } from './shell.ts';
import { ShineError } from '../errors.ts';

export interface StageResources {
  partition?: string | null;
  cpusPerTask: number;
  gpusPerTask: number;
  mem: string;
  time: string;
}

export interface SlurmPlanOptions {
  /** Folder the commands run in (the shine-webgpu checkout), absolute. */
  repoDir: string;
  /** Folder of the generated scripts, index files and logs, absolute. */
  runDir: string;
  configFile: string;
  /** Stage-2 output folder (distributed.output_dir). */
  outputDir: string;
  /** Stage-3 catalog path. */
  catalog: string;
  allowMissing: boolean;
  tiles: readonly number[];
  tasks: readonly SubtileTask[];
  maxArraySize: number;
  /** Command prefix running a TypeScript entry point, e.g. ['npx', 'tsx']. */
  runner: readonly string[];
  jobName: string;
  /** Attempts of a sub-tile inside its Stage-2 task after the first one (default 2). */
  retries?: number;
  /** Inference method passed to every sub-tile (`--method`); default: the config's inference.method. */
  method?: 'map' | 'vi' | 'nuts' | null;
  /** A folder of earlier products every sub-tile's fit starts from (`--start-from`); default none. */
  startFrom?: string | null;
  /**
   * File-name prefix of this submission: '' for `shine run`, `retry<n>_` for `shine retry` (its
   * submit script then appends to jobs.tsv instead of starting it afresh).
   */
  prefix?: string;
  /** Tiles that get a Stage-1 task (default: every tile); Stage 3 assembles every tile. */
  prepareTiles?: readonly number[];
  stage1: StageResources;
  stage2: StageResources;
  stage3: StageResources;
}

export interface GeneratedFile {
  name: string;
  text: string;
  executable?: boolean;
}

export interface SlurmPlan {
  files: GeneratedFile[];
  /** The sbatch submissions in order, with `<stage…>` placeholders for job ids (dry run). */
  submissions: string[];
  stage1Batches: number;
  stage2Batches: number;
}

function directives(jobName: string, res: StageResources, arraySize: number | null): string[] {
  const d = [`#SBATCH --job-name=${safeJobName(jobName)}`];
  if (arraySize !== null) d.push(`#SBATCH --array=0-${arraySize - 1}`);
  if (res.partition) d.push(`#SBATCH --partition=${checkPartition(res.partition)}`);
  if (checkCount(res.gpusPerTask, 'gpus-per-task') > 0) d.push(`#SBATCH --gpus-per-task=${res.gpusPerTask}`);
  d.push(`#SBATCH --cpus-per-task=${Math.max(1, checkCount(res.cpusPerTask, 'cpus-per-task'))}`);
  d.push(`#SBATCH --mem=${checkMem(res.mem)}`);
  d.push(`#SBATCH --time=${checkTime(res.time)}`);
  return d;
}

/** `SHINE_SUBTILE_ARGS=(--method 'nuts' --start-from '/dir')`, each part only when given (empty: the config's method, the catalog start). */
function subtileArgs(method: SlurmPlanOptions['method'], startFrom: SlurmPlanOptions['startFrom']): string {
  const a: string[] = [];
  if (method !== undefined && method !== null) {
    if (!['map', 'vi', 'nuts'].includes(method)) throw new Error(`method must be map, vi or nuts, got '${String(method)}'`);
    a.push('--method', shq(method));
  }
  if (startFrom) a.push('--start-from', shq(startFrom));
  return `SHINE_SUBTILE_ARGS=(${a.join(' ')})`;
}

function assignments(vars: Record<string, string>, runner: readonly string[]): string[] {
  const lines = Object.entries(vars).map(([k, v]) => `${k}=${shq(v)}`);
  lines.push(`SHINE_RUNNER=(${runner.map(shq).join(' ')})`);
  return lines;
}

const READ_TASK = `# ---- constant part: no generated value below this line ----
task="\${SLURM_ARRAY_TASK_ID:-\${SHINE_TASK_ID:-}}"
case "$task" in ''|*[!0-9]*) echo "shine: bad array task id '$task'" >&2; exit 2;; esac
line=$(awk -v n="$task" 'NR == n + 1 { print; exit }' "$SHINE_INDEX")
if [ -z "$line" ]; then echo "shine: task $task: no line $((task + 1)) in $SHINE_INDEX" >&2; exit 2; fi`;

const STAGE1_BODY = `${READ_TASK}
tile=$line
case "$tile" in ''|*[!0-9]*) echo "shine: task $task: bad tile id in $SHINE_INDEX" >&2; exit 2;; esac
cd "$SHINE_REPO"
exec "\${SHINE_RUNNER[@]}" cli/shine.ts prepare --config "$SHINE_CONFIG" --tile-id "$tile" --quiet
`;

/*
 * Stage 2: up to SHINE_RETRIES + 1 attempts of the sub-tile; after an attempt that exits 0 the
 * products are checked (platform/node/slurm-task.ts done: complete and valid, and the failure
 * marker removed). When every attempt failed, a failure marker <run>/failed/<T>_<R>_<C>.json is
 * written and the task exits with the last exit code (SLURM state FAILED).
 */
const STAGE2_BODY = `${READ_TASK}
IFS=$'\\t' read -r tile row col extra <<<"$line" || true
for v in "$tile" "$row" "$col"; do
  case "$v" in ''|*[!0-9]*) echo "shine: task $task: bad line in $SHINE_INDEX" >&2; exit 2;; esac
done
case "$SHINE_RETRIES" in ''|*[!0-9]*) echo "shine: bad retry count '$SHINE_RETRIES'" >&2; exit 2;; esac
cd "$SHINE_REPO"
jobid="\${SLURM_ARRAY_JOB_ID:-\${SLURM_JOB_ID:-none}}"
log="$SHINE_RUN/logs/\${SHINE_STAGE}_\${jobid}_\${task}.log"
attempts=$((SHINE_RETRIES + 1))
n=0
rc=0
while [ "$n" -lt "$attempts" ]; do
  n=$((n + 1))
  echo "shine: task $task: tile $tile sub-tile ($row, $col): attempt $n/$attempts" >&2
  rc=0
  "\${SHINE_RUNNER[@]}" cli/subtile.ts --tile-id "$tile" --sub-tile-row "$row" --sub-tile-col "$col" --config "$SHINE_CONFIG" --out "$SHINE_OUT" --quiet \${SHINE_SUBTILE_ARGS[@]+"\${SHINE_SUBTILE_ARGS[@]}"} || rc=$?
  if [ "$rc" -eq 0 ]; then
    if "\${SHINE_RUNNER[@]}" platform/node/slurm-task.ts done --run "$SHINE_RUN" --out "$SHINE_OUT" --tile-id "$tile" --sub-tile-row "$row" --sub-tile-col "$col"; then
      echo "shine: task $task: tile $tile sub-tile ($row, $col): attempt $n/$attempts exit 0, products complete" >&2
      exit 0
    fi
    rc=3
    echo "shine: task $task: tile $tile sub-tile ($row, $col): attempt $n/$attempts exit 0 but the products are incomplete or invalid" >&2
  else
    echo "shine: task $task: tile $tile sub-tile ($row, $col): attempt $n/$attempts exit $rc" >&2
  fi
done
"\${SHINE_RUNNER[@]}" platform/node/slurm-task.ts failed --run "$SHINE_RUN" --tile-id "$tile" --sub-tile-row "$row" --sub-tile-col "$col" --attempts "$n" --exit-code "$rc" --log "$log" --job "\${jobid}_\${task}" || true
echo "shine: task $task: tile $tile sub-tile ($row, $col) FAILED after $n attempt(s), last exit $rc" >&2
exit "$rc"
`;

const STAGE3_BODY = `# ---- constant part: no generated value below this line ----
cd "$SHINE_REPO"
extra=()
if [ "$SHINE_ALLOW_MISSING" = yes ]; then extra+=(--allow-missing); fi
exec "\${SHINE_RUNNER[@]}" cli/shine.ts assemble --config "$SHINE_CONFIG" --tiles-file "$SHINE_TILES" --out "$SHINE_CATALOG" "\${extra[@]}"
`;

/** Generates the scripts (names relative to runDir) and the submission plan. */
export function slurmPlan(o: SlurmPlanOptions): SlurmPlan {
  const prefix = o.prefix ?? '';
  if (!/^(retry\d+_)?$/.test(prefix)) throw new ShineError(`invalid submission prefix ${JSON.stringify(prefix)} (expected '' or 'retry<n>_')`);
  const retries = checkCount(o.retries ?? 2, 'retries');
  const files: GeneratedFile[] = [];
  const submissions: string[] = [];
  const join = (name: string) => `${o.runDir.replace(/\/+$/, '')}/${name}`;
  const header = '#!/bin/bash';
  const common = { SHINE_REPO: o.repoDir, SHINE_CONFIG: o.configFile };
  const P = prefix;

  const tileBatches = batch(o.prepareTiles ?? o.tiles, o.maxArraySize);
  tileBatches.forEach((tiles, k) => {
    files.push({ name: `${P}stage1_tiles_${k}.txt`, text: tileIndexText(tiles) });
    const text = [header, ...directives(`${o.jobName}-${P}s1-${k}`, o.stage1, tiles.length), 'set -euo pipefail', ...assignments({ ...common, SHINE_INDEX: join(`${P}stage1_tiles_${k}.txt`) }, o.runner), STAGE1_BODY].join('\n');
    files.push({ name: `${P}stage1_${k}.sh`, text, executable: true });
  });
  const taskBatches = batch(o.tasks, o.maxArraySize);
  taskBatches.forEach((tasks, k) => {
    files.push({ name: `${P}stage2_tasks_${k}.tsv`, text: taskIndexText(tasks) });
    const vars = { ...common, SHINE_OUT: o.outputDir, SHINE_RUN: o.runDir, SHINE_STAGE: `${P}stage2_${k}`, SHINE_RETRIES: String(retries), SHINE_INDEX: join(`${P}stage2_tasks_${k}.tsv`) };
    const text = [header, ...directives(`${o.jobName}-${P}s2-${k}`, o.stage2, tasks.length), 'set -euo pipefail', ...assignments(vars, o.runner), subtileArgs(o.method, o.startFrom), STAGE2_BODY].join('\n');
    files.push({ name: `${P}stage2_${k}.sh`, text, executable: true });
  });
  files.push({ name: `${P}tiles.txt`, text: tileIndexText(o.tiles) });
  const s3 = [header, ...directives(`${o.jobName}-${P}s3`, o.stage3, null), 'set -euo pipefail', ...assignments({ ...common, SHINE_TILES: join(`${P}tiles.txt`), SHINE_CATALOG: o.catalog, SHINE_ALLOW_MISSING: o.allowMissing ? 'yes' : 'no' }, o.runner), STAGE3_BODY].join('\n');
  files.push({ name: `${P}stage3.sh`, text: s3, executable: true });

  // submit.sh: sbatch each script, chaining by the job ids sbatch prints (--parsable)
  const sub: string[] = [header, '# Submits the run: Stage 1 arrays, then Stage 2 arrays (afterany: Stage 2 prepares a', '# missing manifest itself), then Stage 3 (afterany: assemble reports what is missing).', 'set -euo pipefail', `SHINE_RUN=${shq(o.runDir)}`];
  sub.push(`# ---- constant part ----
cd "$SHINE_RUN"
mkdir -p "$SHINE_RUN/logs" "$SHINE_RUN/failed"
${P ? '# a retry: its jobs are added to those of the run\ntouch "$SHINE_RUN/jobs.tsv"' : ': > "$SHINE_RUN/jobs.tsv"'}
submit() { # stage name, sbatch arguments…
  local stage=$1 out id; shift
  out=$(sbatch --parsable "$@") || { echo "shine: sbatch failed for $stage" >&2; exit 1; }
  id=\${out%%;*}
  case "$id" in ''|*[!0-9]*) echo "shine: sbatch printed an unexpected job id '$out' for $stage" >&2; exit 1;; esac
  printf '%s\\t%s\\n' "$stage" "$id" >> "$SHINE_RUN/jobs.tsv"
  printf '%s\\n' "$id"
}`);
  const s1ids: string[] = [];
  tileBatches.forEach((_, k) => {
    sub.push(`s1_${k}=$(submit ${P}stage1_${k} --output="$SHINE_RUN/logs/${P}stage1_${k}_%A_%a.log" ${P}stage1_${k}.sh)`);
    s1ids.push(`$s1_${k}`);
    submissions.push(`sbatch --parsable --output=${join(`logs/${P}stage1_${k}_%A_%a.log`)} ${join(`${P}stage1_${k}.sh`)}   → <${P}stage1_${k}>`);
  });
  const dep = (ids: string[]) => (ids.length ? `--dependency="afterany:${ids.join(':')}" ` : '');
  const depText = (ids: string[]) => (ids.length ? `--dependency=afterany:${ids.join(':')} ` : '');
  const s1ph = tileBatches.map((_, j) => `<${P}stage1_${j}>`);
  const s2ids: string[] = [];
  taskBatches.forEach((tasks, k) => {
    sub.push(`s2_${k}=$(submit ${P}stage2_${k} ${dep(s1ids)}--output="$SHINE_RUN/logs/${P}stage2_${k}_%A_%a.log" ${P}stage2_${k}.sh)`);
    s2ids.push(`$s2_${k}`);
    submissions.push(`sbatch --parsable ${depText(s1ph)}--array=0-${tasks.length - 1} ${join(`${P}stage2_${k}.sh`)}   → <${P}stage2_${k}>`);
  });
  const s2ph = taskBatches.map((_, j) => `<${P}stage2_${j}>`);
  sub.push(`s3=$(submit ${P}stage3 ${dep(s2ids.length ? s2ids : s1ids)}--output="$SHINE_RUN/logs/${P}stage3_%j.log" ${P}stage3.sh)`);
  submissions.push(`sbatch --parsable ${depText(s2ph.length ? s2ph : s1ph)}${join(`${P}stage3.sh`)}   → <${P}stage3>`);
  sub.push(`echo "shine: submitted ${tileBatches.length + taskBatches.length + 1} job(s); ids in $SHINE_RUN/jobs.tsv; catalog job $s3"`, '');
  files.push({ name: `${P}submit.sh`, text: sub.join('\n'), executable: true });
  return { files, submissions, stage1Batches: tileBatches.length, stage2Batches: taskBatches.length };
}
