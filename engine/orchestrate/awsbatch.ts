/**
 * AWS Batch JSON for a survey run (docs/run.md "AWS Batch"): three job definitions (Stage 1 and 3 on CPU,
 * Stage 2 with one GPU) for `aws batch register-job-definition --cli-input-json file://…`, and
 * the submissions for `aws batch submit-job --cli-input-json file://…`: Stage 1 arrays over
 * tiles, Stage 2 arrays over sub-tiles (each ≤ the array size limit, 10 000), Stage 3; `dependsOn`
 * holds placeholders `<stage…>` to be replaced with the job ids that submit-job returns.
 *
 * The container command is constant shell text; every value (paths, index file) reaches it as a
 * job parameter (`Ref::name`), i.e. as a separate argv word, never as shell text.
 */
import { batch, taskIndexText, tileIndexText, type SubtileTask } from './plan.ts';
import type { GeneratedFile } from './slurm.ts';
import { safeJobName } from './shell.ts';

export interface AwsResources {
  vcpus: number;
  memoryMiB: number;
  gpus: number;
}

export interface AwsBatchOptions {
  image: string;
  jobQueue: string;
  gpuJobQueue: string;
  /** Folder (as seen inside the container) of the repository checkout. */
  repoDir: string;
  /** Folder (inside the container, e.g. an EFS/FSx mount) of the index files and this plan. */
  runDir: string;
  configFile: string;
  outputDir: string;
  catalog: string;
  allowMissing: boolean;
  tiles: readonly number[];
  tasks: readonly SubtileTask[];
  /** AWS Batch array size limit (10 000). */
  maxArraySize: number;
  retries: number;
  /** Inference method for every sub-tile (`--method`); null/undefined: the config's. */
  method?: 'map' | 'vi' | 'nuts' | null;
  jobName: string;
  stage1: AwsResources;
  stage2: AwsResources;
  stage3: AwsResources;
}

const READ = `set -eu
idx=\${AWS_BATCH_JOB_ARRAY_INDEX:-0}
case "$idx" in ''|*[!0-9]*) echo "shine: bad array index '$idx'" >&2; exit 2;; esac
line=$(awk -v n="$idx" 'NR == n + 1 { print; exit }' "$1")
[ -n "$line" ] || { echo "shine: no line $((idx + 1)) in $1" >&2; exit 2; }
`;
/** $1 index file, $2 repo, $3 config. */
const STAGE1 = `${READ}case "$line" in *[!0-9]*) echo "shine: bad tile id in $1" >&2; exit 2;; esac
cd "$2"
exec npx tsx cli/shine.ts prepare --config "$3" --tile-id "$line" --quiet`;
/** $1 index file, $2 repo, $3 config, $4 output folder, $5 method ('config': the config's). */
const STAGE2 = `${READ}tile=$(printf '%s' "$line" | cut -f1); row=$(printf '%s' "$line" | cut -f2); col=$(printf '%s' "$line" | cut -f3)
for v in "$tile" "$row" "$col"; do case "$v" in ''|*[!0-9]*) echo "shine: bad line in $1" >&2; exit 2;; esac; done
cd "$2"
cfg=$3; out=$4; method=$5
case "$method" in config) set --;; map|vi|nuts) set -- --method "$method";; *) echo "shine: bad method '$method'" >&2; exit 2;; esac
exec npx tsx cli/subtile.ts --tile-id "$tile" --sub-tile-row "$row" --sub-tile-col "$col" --config "$cfg" --out "$out" --quiet "$@"`;
/** $1 tiles file, $2 repo, $3 config, $4 catalog, $5 yes|no (allow missing). */
const STAGE3 = `set -eu
cd "$2"
if [ "$5" = yes ]; then exec npx tsx cli/shine.ts assemble --config "$3" --tiles-file "$1" --out "$4" --allow-missing; fi
exec npx tsx cli/shine.ts assemble --config "$3" --tiles-file "$1" --out "$4"`;

function jobDef(name: string, image: string, script: string, params: string[], res: AwsResources, retries: number): object {
  const req = [
    { type: 'VCPU', value: String(res.vcpus) },
    { type: 'MEMORY', value: String(res.memoryMiB) },
  ];
  if (res.gpus > 0) req.push({ type: 'GPU', value: String(res.gpus) });
  return {
    jobDefinitionName: name,
    type: 'container',
    containerProperties: {
      image,
      command: ['/bin/sh', '-c', script, name, ...params.map((p) => `Ref::${p}`)],
      resourceRequirements: req,
    },
    // Spot interruptions and failures: retried by AWS Batch
    retryStrategy: { attempts: Math.min(10, Math.max(1, retries + 1)) },
    platformCapabilities: ['EC2'],
  };
}

export function awsBatchPlan(o: AwsBatchOptions): { files: GeneratedFile[]; stage1Batches: number; stage2Batches: number } {
  const files: GeneratedFile[] = [];
  const name = safeJobName(o.jobName);
  const at = (f: string) => `${o.runDir.replace(/\/+$/, '')}/${f}`;
  const json = (f: string, v: object) => files.push({ name: f, text: `${JSON.stringify(v, null, 2)}\n` });
  json('jobdef-stage1.json', jobDef(`${name}-stage1`, o.image, STAGE1, ['index', 'repo', 'config'], o.stage1, o.retries));
  json('jobdef-stage2.json', jobDef(`${name}-stage2`, o.image, STAGE2, ['index', 'repo', 'config', 'output', 'method'], o.stage2, o.retries));
  json('jobdef-stage3.json', jobDef(`${name}-stage3`, o.image, STAGE3, ['tiles', 'repo', 'config', 'catalog', 'allow_missing'], o.stage3, o.retries));
  const array = (n: number) => (n >= 2 ? { arrayProperties: { size: n } } : {}); // AWS Batch arrays hold 2…10 000 jobs
  const tileBatches = batch(o.tiles, o.maxArraySize);
  tileBatches.forEach((tiles, k) => {
    files.push({ name: `stage1_tiles_${k}.txt`, text: tileIndexText(tiles) });
    json(`submit-stage1-${k}.json`, { jobName: `${name}-s1-${k}`, jobQueue: o.jobQueue, jobDefinition: `${name}-stage1`, ...array(tiles.length), parameters: { index: at(`stage1_tiles_${k}.txt`), repo: o.repoDir, config: o.configFile } });
  });
  const taskBatches = batch(o.tasks, o.maxArraySize);
  taskBatches.forEach((tasks, k) => {
    files.push({ name: `stage2_tasks_${k}.tsv`, text: taskIndexText(tasks) });
    json(`submit-stage2-${k}.json`, {
      jobName: `${name}-s2-${k}`, jobQueue: o.gpuJobQueue, jobDefinition: `${name}-stage2`, ...array(tasks.length),
      dependsOn: tileBatches.map((_, j) => ({ jobId: `<stage1_${j}>` })),
      parameters: { index: at(`stage2_tasks_${k}.tsv`), repo: o.repoDir, config: o.configFile, output: o.outputDir, method: o.method ?? 'config' },
    });
  });
  files.push({ name: 'tiles.txt', text: tileIndexText(o.tiles) });
  json('submit-stage3.json', {
    jobName: `${name}-s3`, jobQueue: o.jobQueue, jobDefinition: `${name}-stage3`,
    dependsOn: (taskBatches.length ? taskBatches.map((_, j) => `<stage2_${j}>`) : tileBatches.map((_, j) => `<stage1_${j}>`)).map((jobId) => ({ jobId })),
    parameters: { tiles: at('tiles.txt'), repo: o.repoDir, config: o.configFile, catalog: o.catalog, allow_missing: o.allowMissing ? 'yes' : 'no' },
  });
  return { files, stage1Batches: tileBatches.length, stage2Batches: taskBatches.length };
}
