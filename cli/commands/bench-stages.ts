/**
 * `shine bench --stages --config C --tile-id T --sub-tile R,C [--method map|nuts|vi] [--json] [--trace out.json]`:
 * the stage benchmark of docs/bench.md on real prepared data. Runs Stage 2 on one prepared
 * sub-tile exactly as `shine subtile` does (engine/subtile/run.ts), with `--repeats` gradient
 * evaluations timed after one warm-up call before the fit, and reports the five stages (data load,
 * scene build, pipeline compile, gradient step, full fit), peak host RSS, GPU bytes by category,
 * pipelines created after warm-up (must be 0) and the adapter. No products are written.
 */
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { UserError } from '../command.ts';
import { parseDeviceCommand } from '../args.ts';
import { acquireDevice } from '../../platform/acquire.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { openFits, remoteSettings } from '../../platform/node/files.ts';
import type { OpenOptions } from '../../engine/data/fits/file.ts';
import { manifestFileName, parseManifest } from '../../engine/tiling/manifest.ts';
import { createProgress } from '../progress.ts';
import { runSubtile } from '../../engine/subtile/run.ts';
import { TraceRecorder } from '../../engine/bench/trace.ts';
import { GpuKernelTimer } from '../../engine/bench/gpu-timer.ts';
import { formatBytes } from '../../engine/scene/memory.ts';
import { gpuBudgetBytes } from '../gpu-budget.ts';
import { peakRssBytes } from '../host-memory.ts';
import { writeChromeTrace } from '../trace-writer.ts';

export const STAGES_USAGE = `usage: shine bench --stages --config C --tile-id T --sub-tile R,C [--method map|nuts|vi] [--repeats R=5]
                   [--manifest M] [--trace out.json] [--json] [--max-iterations I] [--no-laplace]
                   [--chains K] [--warmup W] [--samples S] [--max-tree-depth D] [--init map|catalog]
                   [--adapter X] [--limits adapter|default]
  runs Stage 2 on one prepared sub-tile (shine prepare first) and times the five stages of docs/bench.md;
  --chains/--warmup/--samples/--max-tree-depth/--init override inference.nuts, --max-iterations and
  --no-laplace inference.map (docs/bench.md)`;

/** The five stages in order, as they appear in the trace (cat 'stage') and in stagesMs. */
export const STAGE_NAMES = ['data load', 'scene build', 'pipeline compile', 'gradient step', 'full fit'] as const;

export async function runStages(argv: string[]): Promise<number> {
  const parsed = await parseDeviceCommand(
    argv.filter((a) => a !== '--stages'),
    { config: 'string', 'tile-id': 'integer', 'sub-tile': 'string', method: 'string', repeats: 'integer', manifest: 'string', trace: 'string', json: 'boolean', chains: 'integer', warmup: 'integer', samples: 'integer', 'max-iterations': 'integer', 'no-laplace': 'boolean', 'max-tree-depth': 'integer', init: 'string' },
    STAGES_USAGE,
  );
  if (!parsed) return 0;
  const { opts } = parsed;
  if (opts.config === undefined) throw new UserError(`bench --stages: --config is required\n${STAGES_USAGE}`);
  if (opts['sub-tile'] === undefined) throw new UserError(`bench --stages: --sub-tile R,C is required\n${STAGES_USAGE}`);
  const rc = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(opts['sub-tile'] as string);
  if (!rc) throw new UserError(`--sub-tile must be R,C (two non-negative integers), got '${opts['sub-tile']}'`);
  const [row, col] = [Number(rc[1]), Number(rc[2])];
  const method = (opts.method as string | undefined) ?? 'map';
  if (!['map', 'nuts', 'vi'].includes(method)) throw new UserError(`--method must be map, nuts or vi, got '${method}'`);
  const repeats = (opts.repeats as number | undefined) ?? 5;
  if (repeats < 1) throw new UserError(`--repeats must be ≥ 1, got ${repeats}`);
  const init = opts.init as string | undefined;
  if (init !== undefined && init !== 'map' && init !== 'catalog') throw new UserError(`--init must be map or catalog, got '${init}'`);
  for (const k of ['chains', 'warmup', 'samples', 'max-iterations', 'max-tree-depth'] as const) {
    const v = opts[k] as number | undefined;
    if (v !== undefined && (v < (k === 'warmup' ? 0 : 1))) throw new UserError(`--${k} must be ≥ ${k === 'warmup' ? 0 : 1}, got ${v}`);
  }
  const configFile = opts.config as string;
  const loaded = await loadConfig(configFile);
  const tileId = (opts['tile-id'] as number | undefined) ?? loaded.distributed.tile_id;
  if (typeof tileId !== 'number') throw new UserError(`bench --stages: --tile-id T is required (distributed.tile_id in ${configFile} is ${String(tileId)})`);
  const [rows, cols] = loaded.distributed.sub_tile_grid;
  if (row >= rows || col >= cols) throw new UserError(`sub-tile (${row}, ${col}) is outside the ${rows}×${cols} grid (distributed.sub_tile_grid)`);
  const inf = loaded.inference;
  const cfg = {
    ...loaded,
    inference: {
      ...inf,
      map: { ...inf.map, ...(opts['max-iterations'] !== undefined ? { max_iterations: opts['max-iterations'] as number } : {}), ...(opts['no-laplace'] ? { laplace: false } : {}) },
      nuts: {
        ...inf.nuts,
        ...(opts.chains !== undefined ? { chains: opts.chains as number } : {}),
        ...(opts.warmup !== undefined ? { warmup: opts.warmup as number } : {}),
        ...(opts.samples !== undefined ? { samples: opts.samples as number } : {}),
        ...(opts['max-tree-depth'] !== undefined ? { max_tree_depth: opts['max-tree-depth'] as number } : {}),
        ...(init !== undefined ? { init: init as 'map' | 'catalog' } : {}),
      },
    },
  };
  const manifestFile = (opts.manifest as string | undefined) ?? join(cfg.distributed.scratch_dir, `tile_${tileId}`, manifestFileName(tileId, row, col));
  let text: string;
  try {
    text = await readFile(manifestFile, 'utf8');
  } catch (e) {
    throw new UserError(`bench --stages: cannot read the manifest ${manifestFile} (${(e as Error).message.split('\n')[0]}); run 'shine prepare --config ${configFile} --sub-tile ${row},${col}' first`);
  }
  const manifest = parseManifest(text, manifestFile);
  const json = !!opts.json;
  const acq = await acquireDevice({ adapter: parsed.adapter ?? (cfg.device.adapter === 'auto' ? undefined : cfg.device.adapter), limits: parsed.limits, quiet: json });
  try {
    const rec = opts.trace ? new TraceRecorder() : undefined;
    const hasTimestamps = acq.device.features.has('timestamp-query');
    const remote = remoteSettings(cfg.remote, cfg.source.dir);
    // GPU spans per kernel per batch: one extra timed evaluation after the gradient repeats
    const gpuTimer = rec && hasTimestamps ? new GpuKernelTimer(acq.device) : undefined;
    const t0 = performance.now();
    // progress of every stage on stderr (a rewritten line on a terminal, plain lines in a log), as `shine subtile`
    const progress = createProgress({ write: (t) => void process.stderr.write(t), tty: !!process.stderr.isTTY, prefix: 'bench', quiet: json, rss: () => process.memoryUsage().rss });
    const r = await runSubtile(acq.device, manifest, cfg, { openFits: (p: string, o?: OpenOptions) => openFits(p, { ...o, remote }) }, {
      method: method as 'map' | 'nuts' | 'vi',
      onProgress: progress,
      images: false,
      gradientRepeats: repeats,
      trace: rec,
      peakRssBytes,
      ...(gpuTimer ? { gpuTimer } : {}),
      maxGpuBytes: gpuBudgetBytes(acq, cfg.device.memory_budget_gb),
      // as `shine subtile` decides: a hardware adapter batches the Laplace columns
      planDevice: { software: acq.software },
    });
    const wallMs = performance.now() - t0;
    progress.end();
    gpuTimer?.destroy();
    const p = r.performance;
    if (r.status !== 'ok' || !p) throw new UserError(`bench --stages: sub-tile (${tileId}, ${row}, ${col}) is empty (${r.emptyReason ?? r.warnings.join('; ')}): nothing to time`);
    const adapter = { label: acq.label, backend: acq.backend, featureLevel: acq.featureLevel, software: acq.software, timestampQuery: hasTimestamps };
    // GPU spans: recorded when the adapter has timestamp queries and a trace is written
    const gpuSpans = rec ? rec.spans.filter((sp) => sp.track === 'gpu').length : 0;
    const gpu = gpuSpans > 0
      ? { available: true, kernels: gpuSpans }
      : hasTimestamps
        ? { available: false, reason: "the adapter has 'timestamp-query' but no GPU span was recorded (no --trace, or no kernel ran)" }
      : { available: false, reason: `the adapter (${acq.label}) lacks 'timestamp-query'` };
    const result = {
      adapter,
      tileId,
      row,
      col,
      method: r.method,
      sources: r.nSourcesModelled,
      coreSources: r.nSourcesCore,
      quadrants: r.nQuadrants,
      repeats,
      ...p,
      converged: r.converged,
      iterations: r.iterations,
      evaluations: r.evaluations,
      g1: r.g1,
      g2: r.g2,
      wallMs,
      trace: (opts.trace as string | undefined) ?? null,
      gpuSpans: gpu.available,
    };
    if (rec && opts.trace) {
      rec.note('adapter', adapter);
      await writeChromeTrace(opts.trace as string, rec, gpu, { command: 'shine bench --stages', tileId, row, col, method: r.method, pairs: p.pairs, stagesMs: p.stagesMs });
    }
    if (json) console.log(JSON.stringify(result));
    else {
      const f = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : 'n/a');
      const s = p.stagesMs;
      console.log(`adapter          ${acq.label} (${acq.backend}, ${acq.featureLevel}${hasTimestamps ? ', timestamp-query' : ''})`);
      console.log(`sub-tile         (${tileId}, ${row}, ${col}): ${r.nSourcesModelled} sources (${r.nSourcesCore} core) × ${r.nQuadrants} quadrants: ${p.pairs} pairs in ${p.batches} batches, FFT ${p.fftSizes.join('/')}`);
      console.log(`data load        ${f(s.dataLoad)} ms`);
      console.log(`scene build      ${f(s.sceneBuild)} ms`);
      console.log(`pipeline compile ${f(s.compile)} ms (${p.pipelinesTotal} pipelines)`);
      console.log(`gradient step    ${f(s.gradientStep)} ms (median of ${p.gradient.samples}, after 1 warm-up)`);
      const fit = p.fit;
      const fitParts = [fit.mapMs !== undefined ? `MAP ${f(fit.mapMs)}` : '', fit.laplaceMs !== undefined ? `Laplace ${f(fit.laplaceMs)}` : '', fit.posteriorMs !== undefined ? `${r.method.toUpperCase()} ${f(fit.posteriorMs)}` : ''].filter(Boolean).join(' + ');
      console.log(`full fit         ${f(s.fit)} ms (${fitParts}; ${fit.evaluations} evaluations${(fit.setsPerCall ?? 1) > 1 ? `, up to ${fit.setsPerCall} per engine call` : ''}${fit.msPerEssG1 !== undefined ? `; ${f(fit.msPerEssG1)} ms per effective sample of g1` : ''})`);
      console.log(`peak host RSS    ${p.peakHostRssBytes === null ? 'n/a' : formatBytes(p.peakHostRssBytes)}`);
      const g = p.gpuBytes;
      console.log(`peak GPU bytes   ${formatBytes(g.measuredPeak)} (PSF spectra ${formatBytes(g.psfSpectra)}, FFT work ${formatBytes(g.fftWork)}, images ${formatBytes(g.images)}, replicas ${formatBytes(g.replicas)}, other ${formatBytes(g.other)})`);
      console.log(`after warm-up    ${p.pipelinesAfterWarmup} pipelines created`);
      if (opts.trace) console.log(`trace            ${opts.trace} (open in https://ui.perfetto.dev or chrome://tracing; ${gpu.available ? 'CPU and GPU spans' : `CPU spans only: ${gpu.reason}`})`);
    }
    return p.pipelinesAfterWarmup === 0 ? 0 : 1;
  } finally {
    acq.release();
  }
}
