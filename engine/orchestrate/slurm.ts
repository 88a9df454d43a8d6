/**
 * SLURM job scripts for a survey run (seed 000 §6.3): Stage 1 arrays over tiles (CPU), Stage 2
 * arrays over sub-tiles (GPU, one task per sub-tile, batched within MaxArraySize), Stage 3 chained
 * with `--dependency=afterany`. Every generated value is either shell-quoted (`shq`) in an
 * assignment at the top of a script, or format-checked for `#SBATCH` lines; the script bodies
 * below the assignments are constant text. A task finds its (tile, row, col) by reading line
 * SLURM_ARRAY_TASK_ID+1 of a generated index file and checking every field is an integer.
 */
import { batch, taskIndexText, tileIndexText, type SubtileTask } from './plan.ts';
import { checkCount, checkMem, checkPartition, checkTime, safeJobName, shq } from './shell.ts';

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

const STAGE2_BODY = `${READ_TASK}
IFS=$'\\t' read -r tile row col extra <<<"$line" || true
for v in "$tile" "$row" "$col"; do
  case "$v" in ''|*[!0-9]*) echo "shine: task $task: bad line in $SHINE_INDEX" >&2; exit 2;; esac
done
cd "$SHINE_REPO"
echo "shine: task $task: tile $tile sub-tile ($row, $col)" >&2
exec "\${SHINE_RUNNER[@]}" cli/subtile.ts --tile-id "$tile" --sub-tile-row "$row" --sub-tile-col "$col" --config "$SHINE_CONFIG" --out "$SHINE_OUT" --quiet
`;

const STAGE3_BODY = `# ---- constant part: no generated value below this line ----
cd "$SHINE_REPO"
extra=()
if [ "$SHINE_ALLOW_MISSING" = yes ]; then extra+=(--allow-missing); fi
exec "\${SHINE_RUNNER[@]}" cli/shine.ts assemble --config "$SHINE_CONFIG" --tiles-file "$SHINE_TILES" --out "$SHINE_CATALOG" "\${extra[@]}"
`;

/** Generates the scripts (names relative to runDir) and the submission plan. */
export function slurmPlan(o: SlurmPlanOptions): SlurmPlan {
  const files: GeneratedFile[] = [];
  const submissions: string[] = [];
  const join = (name: string) => `${o.runDir.replace(/\/+$/, '')}/${name}`;
  const header = '#!/bin/bash';
  const common = { SHINE_REPO: o.repoDir, SHINE_CONFIG: o.configFile };

  const tileBatches = batch(o.tiles, o.maxArraySize);
  tileBatches.forEach((tiles, k) => {
    files.push({ name: `stage1_tiles_${k}.txt`, text: tileIndexText(tiles) });
    const text = [header, ...directives(`${o.jobName}-s1-${k}`, o.stage1, tiles.length), 'set -euo pipefail', ...assignments({ ...common, SHINE_INDEX: join(`stage1_tiles_${k}.txt`) }, o.runner), STAGE1_BODY].join('\n');
    files.push({ name: `stage1_${k}.sh`, text, executable: true });
  });
  const taskBatches = batch(o.tasks, o.maxArraySize);
  taskBatches.forEach((tasks, k) => {
    files.push({ name: `stage2_tasks_${k}.tsv`, text: taskIndexText(tasks) });
    const text = [header, ...directives(`${o.jobName}-s2-${k}`, o.stage2, tasks.length), 'set -euo pipefail', ...assignments({ ...common, SHINE_OUT: o.outputDir, SHINE_INDEX: join(`stage2_tasks_${k}.tsv`) }, o.runner), STAGE2_BODY].join('\n');
    files.push({ name: `stage2_${k}.sh`, text, executable: true });
  });
  files.push({ name: 'tiles.txt', text: tileIndexText(o.tiles) });
  const s3 = [header, ...directives(`${o.jobName}-s3`, o.stage3, null), 'set -euo pipefail', ...assignments({ ...common, SHINE_TILES: join('tiles.txt'), SHINE_CATALOG: o.catalog, SHINE_ALLOW_MISSING: o.allowMissing ? 'yes' : 'no' }, o.runner), STAGE3_BODY].join('\n');
  files.push({ name: 'stage3.sh', text: s3, executable: true });

  // submit.sh: sbatch each script, chaining by the job ids sbatch prints (--parsable)
  const sub: string[] = [header, '# Submits the run: Stage 1 arrays, then Stage 2 arrays (afterany: Stage 2 prepares a', '# missing manifest itself), then Stage 3 (afterany: assemble reports what is missing).', 'set -euo pipefail', `SHINE_RUN=${shq(o.runDir)}`];
  sub.push(`# ---- constant part ----
cd "$SHINE_RUN"
mkdir -p "$SHINE_RUN/logs"
: > "$SHINE_RUN/jobs.tsv"
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
    sub.push(`s1_${k}=$(submit stage1_${k} --output="$SHINE_RUN/logs/stage1_${k}_%A_%a.log" stage1_${k}.sh)`);
    s1ids.push(`$s1_${k}`);
    submissions.push(`sbatch --parsable --output=${join(`logs/stage1_${k}_%A_%a.log`)} ${join(`stage1_${k}.sh`)}   → <stage1_${k}>`);
  });
  const s1dep = s1ids.join(':');
  const s2ids: string[] = [];
  taskBatches.forEach((tasks, k) => {
    sub.push(`s2_${k}=$(submit stage2_${k} --dependency="afterany:${s1dep}" --output="$SHINE_RUN/logs/stage2_${k}_%A_%a.log" stage2_${k}.sh)`);
    s2ids.push(`$s2_${k}`);
    submissions.push(`sbatch --parsable --dependency=afterany:${tileBatches.map((_, j) => `<stage1_${j}>`).join(':')} --array=0-${tasks.length - 1} ${join(`stage2_${k}.sh`)}   → <stage2_${k}>`);
  });
  const s2dep = s2ids.length ? `--dependency="afterany:${s2ids.join(':')}" ` : `--dependency="afterany:${s1dep}" `;
  sub.push(`s3=$(submit stage3 ${s2dep}--output="$SHINE_RUN/logs/stage3_%j.log" stage3.sh)`);
  submissions.push(`sbatch --parsable --dependency=afterany:${(taskBatches.length ? taskBatches.map((_, j) => `<stage2_${j}>`) : tileBatches.map((_, j) => `<stage1_${j}>`)).join(':')} ${join('stage3.sh')}   → <stage3>`);
  sub.push(`echo "shine: submitted $(wc -l < "$SHINE_RUN/jobs.tsv") job(s); ids in $SHINE_RUN/jobs.tsv; catalog job $s3"`, '');
  files.push({ name: 'submit.sh', text: sub.join('\n'), executable: true });
  return { files, submissions, stage1Batches: tileBatches.length, stage2Batches: taskBatches.length };
}
