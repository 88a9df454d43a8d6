/**
 * The last step of scripts/gpu-check.sh: reads what each step left in the work folder (its stdout,
 * stderr and a line of steps.tsv), judges each step, writes into the out folder
 *
 *   doctor.json    `shine doctor --json` as printed (or {error, stderrTail} when it printed no JSON)
 *   bench.json     { steps: { <step>: `shine bench --json` result, or {error, stderrTail} } }
 *   summary.json   adapter, per step: status, pairs, gradient ms, build ms, peak GPU MiB, wall s, …
 *
 * and prints a one-screen table. Exit code 0 when every step that ran passed, 1 otherwise.
 * Bundled into the GPU pack as gpu-summary.mjs (scripts/gpu-bundle.ts); plain Node, no imports
 * from the engine, so that it works even when the engine bundle does not.
 *
 *   gpu-summary --work DIR --out DIR [--meta k=v …]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type StepStatus = 'pass' | 'fail' | 'timeout' | 'skipped' | 'todo';

export interface StepSummary {
  name: string;
  /** `shine` arguments (without the runtime). */
  args: string;
  status: StepStatus;
  /** Why it failed, was skipped or is a TODO. */
  reason: string | null;
  rc: number | null;
  wallS: number | null;
  timeoutS: number | null;
  pairs: number | null;
  gradientMs: number | null;
  gradientMsPerPair: number | null;
  forwardMs: number | null;
  renderMs: number | null;
  buildMs: number | null;
  compileMs: number | null;
  sceneBuildCpuMs: number | null;
  peakGpuMiB: number | null;
  pipelinesAfterWarmup: number | null;
  replicas: number | null;
  batchedGradientMs: number | null;
  batchedSpeedup: number | null;
  psfOversampling: number | null;
  aliasOrders: number | null;
  /** doctor only: kernel checks passed / run. */
  checksPassed: number | null;
  checksRun: number | null;
  /** bench --stages only (docs/bench.md): the five stages (ms), the fit's method and NUTS's time per effective sample of g1. */
  stagesMs: { dataLoad: number; sceneBuild: number; compile: number; gradientStep: number; fit: number } | null;
  method: string | null;
  msPerEssG1: number | null;
}

export interface StepLine {
  name: string;
  kind: 'ran' | 'skipped' | 'todo';
  rc: number | null;
  wallS: number | null;
  timeoutS: number | null;
  reason: string;
  args: string;
}

type Json = Record<string, unknown>;

function parseArgs(argv: string[]): { work: string; out: string; meta: Record<string, string> } {
  let work = '';
  let out = '';
  const meta: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--work') work = argv[++i] ?? '';
    else if (a === '--out') out = argv[++i] ?? '';
    else if (a === '--meta') {
      const kv = argv[++i] ?? '';
      const eq = kv.indexOf('=');
      if (eq > 0) meta[kv.slice(0, eq)] = kv.slice(eq + 1);
    } else throw new Error(`gpu-summary: unknown argument '${a}'`);
  }
  if (!work || !out) throw new Error('usage: gpu-summary --work DIR --out DIR [--meta k=v …]');
  return { work, out, meta };
}

function readText(path: string): string {
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
}

/** The last line of stdout that parses as a JSON object (commands print one JSON line). */
export function lastJsonObject(text: string): Json | null {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('{'));
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      const v = JSON.parse(lines[i]) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Json;
    } catch {
      /* not JSON */
    }
  }
  return null;
}

function tail(text: string, n: number): string[] {
  return text.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '').slice(-n);
}

/** The line of stderr that says what went wrong: the CLI's own `shine: …` line, else an Error, else the last non-warning line. */
export function errorLine(stderr: string): string {
  const lines = tail(stderr, 200).map((l) => l.trim());
  return (
    lines.find((l) => l.startsWith('shine:') && !/^shine: device /.test(l)) ??
    lines.find((l) => /\b\w*Error\b/.test(l)) ??
    lines.filter((l) => !/^Warning:/.test(l)).at(-1) ??
    ''
  );
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function parseSteps(tsv: string): StepLine[] {
  const out: StepLine[] = [];
  for (const line of tsv.split('\n')) {
    if (!line.trim()) continue;
    const [name, kind, rc, wall, limit, reason, ...args] = line.split('\t');
    const n = (s: string | undefined) => (s === undefined || s === '' || s === '-' ? null : Number(s));
    out.push({
      name,
      kind: kind === 'skipped' || kind === 'todo' ? kind : 'ran',
      rc: n(rc),
      wallS: n(wall),
      timeoutS: n(limit),
      reason: reason && reason !== '-' ? reason : '',
      args: args.join('\t'),
    });
  }
  return out;
}

function emptySummary(s: StepLine): StepSummary {
  return {
    name: s.name,
    args: s.args,
    status: 'fail',
    reason: null,
    rc: s.rc,
    wallS: s.wallS,
    timeoutS: s.timeoutS,
    pairs: null,
    gradientMs: null,
    gradientMsPerPair: null,
    forwardMs: null,
    renderMs: null,
    buildMs: null,
    compileMs: null,
    sceneBuildCpuMs: null,
    peakGpuMiB: null,
    pipelinesAfterWarmup: null,
    replicas: null,
    batchedGradientMs: null,
    batchedSpeedup: null,
    psfOversampling: null,
    aliasOrders: null,
    checksPassed: null,
    checksRun: null,
    stagesMs: null,
    method: null,
    msPerEssG1: null,
  };
}

/** Judges one step from its steps.tsv line, its parsed stdout JSON and its stderr. */
export function judgeStep(s: StepLine, json: Json | null, stderr: string): StepSummary {
  const r = emptySummary(s);
  if (s.kind !== 'ran') {
    r.status = s.kind;
    r.reason = s.reason || null;
    return r;
  }
  const errTail = errorLine(stderr);
  const failWith = (reason: string): StepSummary => {
    r.status = s.rc === 124 || s.rc === 137 ? 'timeout' : 'fail';
    r.reason = s.rc === 124 || s.rc === 137 ? `timed out after ${s.timeoutS} s` : reason;
    return r;
  };
  // set-up steps (simulate, prepare for the stages steps) print no JSON: their exit code decides
  if (s.name.startsWith('setup-')) {
    if (s.rc !== 0) return failWith(`exit ${s.rc}${errTail ? `: ${errTail.slice(0, 160)}` : ''}`);
    r.status = 'pass';
    return r;
  }
  if (!json) return failWith(`no JSON on stdout (exit ${s.rc})${errTail ? `: ${errTail.slice(0, 160)}` : ''}`);
  if (json.stagesMs && typeof json.stagesMs === 'object') {
    // shine bench --stages: the gradient step, build = scene build + compile, measured peak GPU bytes
    const st = json.stagesMs as Record<string, unknown>;
    const keys = ['dataLoad', 'sceneBuild', 'compile', 'gradientStep', 'fit'] as const;
    if (keys.every((k) => num(st[k]) !== null)) r.stagesMs = Object.fromEntries(keys.map((k) => [k, st[k] as number])) as StepSummary['stagesMs'];
    r.pairs = num(json.pairs);
    r.gradientMs = num(st.gradientStep);
    r.gradientMsPerPair = r.gradientMs !== null && r.pairs ? r.gradientMs / r.pairs : null;
    r.compileMs = num(st.compile);
    r.buildMs = r.stagesMs ? r.stagesMs.sceneBuild + r.stagesMs.compile : null;
    const gb = json.gpuBytes as Record<string, unknown> | undefined;
    const peak = num(gb?.measuredPeak);
    r.peakGpuMiB = peak === null ? null : peak / 2 ** 20;
    r.pipelinesAfterWarmup = num(json.pipelinesAfterWarmup);
    r.method = typeof json.method === 'string' ? json.method : null;
    r.msPerEssG1 = num((json.fit as Record<string, unknown> | undefined)?.msPerEssG1);
    if (s.rc !== 0) return failWith(`exit ${s.rc}${r.pipelinesAfterWarmup ? `: ${r.pipelinesAfterWarmup} pipelines created after warm-up` : ''}`);
    if (!r.stagesMs) return failWith('stagesMs incomplete');
    if (r.pipelinesAfterWarmup !== 0) return failWith(`${r.pipelinesAfterWarmup} pipelines created after warm-up`);
    if (!(r.gradientMs !== null && r.gradientMs > 0)) return failWith('no gradient timing');
    r.status = 'pass';
    return r;
  }
  if (s.name.startsWith('doctor') || Array.isArray(json.checks)) {
    const checks = (json.checks as Array<{ pass?: boolean; name?: string }>) ?? [];
    r.checksRun = checks.length;
    r.checksPassed = checks.filter((c) => c.pass === true).length;
    if (s.rc !== 0 || json.pass !== true || checks.length === 0) {
      const failed = checks.filter((c) => c.pass !== true).map((c) => c.name);
      return failWith(checks.length === 0 ? 'no kernel checks ran' : `failed: ${failed.join('; ') || `exit ${s.rc}`}`);
    }
    r.status = 'pass';
    return r;
  }
  r.pairs = num(json.pairs);
  r.gradientMs = num(json.gradientMs);
  r.gradientMsPerPair = num(json.gradientMsPerPair);
  r.forwardMs = num(json.forwardMs);
  r.renderMs = num(json.renderMs);
  r.buildMs = num(json.buildMs);
  r.compileMs = num(json.compileMs);
  r.sceneBuildCpuMs = num(json.sceneBuildCpuMs);
  const peak = num(json.peakGpuBytes);
  r.peakGpuMiB = peak === null ? null : peak / 2 ** 20;
  r.pipelinesAfterWarmup = num(json.pipelinesAfterWarmup);
  r.replicas = num(json.replicas);
  r.batchedGradientMs = num(json.batchedGradientMs);
  r.batchedSpeedup = num(json.batchedSpeedup);
  r.psfOversampling = num(json.psfOversampling);
  r.aliasOrders = num(json.aliasOrders);
  if (s.rc !== 0) return failWith(`exit ${s.rc}${r.pipelinesAfterWarmup ? `: ${r.pipelinesAfterWarmup} pipelines created after warm-up` : ''}`);
  if (r.pipelinesAfterWarmup !== 0) return failWith(`${r.pipelinesAfterWarmup} pipelines created after warm-up`);
  if (!(r.gradientMs !== null && r.gradientMs > 0)) return failWith('no gradient timing');
  r.status = 'pass';
  return r;
}

function fmt(x: number | null, digits = 3): string {
  if (x === null) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 10 ** digits) return x.toFixed(0);
  return x.toPrecision(digits);
}

function describe(s: StepSummary, json: Json | null): string {
  if (s.name.startsWith('doctor')) return s.checksRun !== null ? `${s.checksPassed}/${s.checksRun} kernel checks` : 'kernel checks';
  if (s.name.startsWith('setup-')) return (/--preset[ =](\S+)/.exec(s.args)?.[1] ?? s.args.split(' ')[0] ?? '-').slice(0, 30);
  if (json && json.stagesMs) return `${json.sources}×${json.quadrants} sub-tile ${s.method ?? ''}`.trim();
  const opt = (k: string) => new RegExp(`--${k}[ =](\\S+)`).exec(s.args)?.[1];
  if (!json && !opt('sources')) return s.args.slice(0, 30) || '-';
  let d = `${json?.sources ?? opt('sources')}×${json?.quadrants ?? opt('quadrants') ?? 500} tier ${json?.tier ?? opt('tier') ?? 64}`;
  const q = s.psfOversampling ?? Number(opt('psf-oversampling') ?? 1);
  if (q > 1) d += ` q=${q}${s.aliasOrders !== null ? ` N=${s.aliasOrders}` : ''}`;
  const k = s.replicas ?? Number(opt('replicas') ?? 1);
  if (k > 1) d += ` ×${k} repl.`;
  return d;
}

function main(): number {
  const { work, out, meta } = parseArgs(process.argv.slice(2));
  const steps = parseSteps(readText(join(work, 'steps.tsv')));
  const summaries: StepSummary[] = [];
  const descriptions: string[] = [];
  const bench: Record<string, unknown> = {};
  let doctor: Json | null = null;
  let adapter: Json | null = null;
  for (const s of steps) {
    const stdout = readText(join(work, `${s.name}.out`));
    const stderr = readText(join(work, `${s.name}.err`));
    const json = s.kind === 'ran' ? lastJsonObject(stdout) : null;
    const r = judgeStep(s, json, stderr);
    summaries.push(r);
    descriptions.push(describe(r, json));
    if (s.kind !== 'ran') continue;
    const failure = { error: r.reason, exitCode: s.rc, stderrTail: tail(stderr, 20) };
    if (s.name === 'doctor') doctor = json ?? failure;
    else if (s.name.startsWith('doctor')) {
      // A second doctor (gpu-check's OpenGL fallback) goes beside the first.
      doctor = doctor ?? {};
      doctor.fallback = { ...((doctor.fallback as Json | undefined) ?? {}), [s.name]: json ?? failure };
    } else if (!s.name.startsWith('setup-')) bench[s.name] = json ?? failure;
    if (json && !adapter && typeof json.adapter === 'string') {
      adapter = { label: json.adapter, backend: json.backend ?? null, featureLevel: json.featureLevel ?? null, software: json.software ?? null, info: json.info ?? null };
    }
  }
  const ran = summaries.filter((s) => s.status !== 'skipped' && s.status !== 'todo');
  const pass = ran.length > 0 && ran.every((s) => s.status === 'pass');
  const summary = {
    schema: 1,
    pass,
    adapter,
    meta,
    steps: summaries,
    files: { doctor: doctor ? 'doctor.json' : null, bench: Object.keys(bench).length ? 'bench.json' : null, log: 'gpu-check.log' },
  };
  if (doctor) writeFileSync(join(out, 'doctor.json'), JSON.stringify(doctor, null, 1) + '\n');
  if (Object.keys(bench).length) writeFileSync(join(out, 'bench.json'), JSON.stringify({ schema: 1, steps: bench }, null, 1) + '\n');
  writeFileSync(join(out, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');

  // One screen: the adapter, one row per step, the batched lines, the verdict.
  const L: string[] = [];
  const a = adapter as { label?: string; backend?: string; featureLevel?: string } | null;
  L.push(`gpu-check: ${a ? `${a.label} (${a.backend}, ${a.featureLevel})` : 'no adapter (no step printed JSON)'}`);
  L.push(`  ${Object.entries(meta).map(([k, v]) => `${k} ${v}`).join(' · ')}`);
  const head = ['step', 'scene', 'pairs', 'grad ms', 'build ms', 'peak MiB', 'wall s', 'result'];
  const rows = summaries.map((s, i) => [
    s.name,
    descriptions[i],
    s.pairs === null ? '-' : String(s.pairs),
    fmt(s.gradientMs),
    fmt(s.buildMs),
    fmt(s.peakGpuMiB),
    s.wallS === null ? '-' : String(s.wallS),
    s.status.toUpperCase(),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => cells.map((x, c) => (c >= 2 && c <= 6 ? x.padStart(widths[c]) : x.padEnd(widths[c]))).join('  ').trimEnd();
  L.push(line(head));
  for (const r of rows) L.push(line(r));
  for (const s of summaries) {
    if (s.batchedGradientMs !== null && s.replicas !== null && s.replicas > 1) {
      L.push(`${s.name}: ${s.replicas} gradients in one call ${fmt(s.batchedGradientMs)} ms (${fmt(s.batchedSpeedup)}× the throughput of ${s.replicas} separate calls)`);
    }
  }
  for (const s of summaries) {
    const st = s.stagesMs;
    if (!st) continue;
    const f = (x: number) => fmt(x);
    L.push(`${s.name}: load ${f(st.dataLoad)} · scene ${f(st.sceneBuild)} · compile ${f(st.compile)} · gradient ${f(st.gradientStep)} · fit ${f(st.fit)} ms${s.msPerEssG1 !== null ? ` · ${f(s.msPerEssG1)} ms per ESS(g1)` : ''}`);
  }
  for (const s of summaries) if (s.status !== 'pass' && s.reason) L.push(`${s.name}: ${s.status.toUpperCase()} — ${s.reason}`);
  const written = ['summary.json', summary.files.doctor, summary.files.bench, 'gpu-check.log'].filter(Boolean).join(', ');
  L.push(`${pass ? 'ALL PASSED' : 'FAILED'}: ${ran.filter((s) => s.status === 'pass').length}/${ran.length} steps passed; ${written} in ${out}`);
  console.log(L.join('\n'));
  return pass ? 0 : 1;
}

const isMain = process.argv[1] !== undefined && /gpu-summary\.(ts|mjs|js)$/.test(process.argv[1]);
if (isMain) {
  try {
    process.exitCode = main();
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 2;
  }
}
