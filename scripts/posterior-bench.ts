/**
 * Time per effective sample of g1 for NUTS (and VI's time) on one sub-tile of the `minitile`
 * simulation, through the same runSubtile as Stage 2. Prints a human summary and one JSON line.
 *
 *   npx tsx scripts/posterior-bench.ts [--method nuts|vi] [--chains 4] [--warmup 200] [--samples 200]
 *        [--depth 8] [--steps 1000] [--particles 4] [--row 1] [--col 2] [--seed 5] [--adapter X]
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDeviceCommand } from '../cli/args.ts';
import { acquireDevice } from '../platform/acquire.ts';
import { loadConfig } from '../platform/node/config.ts';
import { openFits } from '../platform/node/files.ts';
import { parseManifest, manifestFileName } from '../engine/tiling/manifest.ts';
import { runSubtile } from '../engine/subtile/run.ts';

const parsed = await parseDeviceCommand(
  process.argv.slice(2),
  { method: 'string', chains: 'number', warmup: 'number', samples: 'number', depth: 'number', steps: 'number', particles: 'number', row: 'number', col: 'number', seed: 'number' },
  'usage: posterior-bench [--method nuts|vi] [--chains N] [--warmup N] [--samples N] [--depth N] [--steps N] [--particles N] [--row R] [--col C] [--seed S]',
);
if (!parsed) process.exit(0);
const o = parsed.opts;
const method = ((o.method as string) ?? 'nuts') as 'nuts' | 'vi';
const dir = await mkdtemp(join(tmpdir(), 'shine-postbench-'));
const tile = 102018211;
const row = (o.row as number) ?? 1;
const col = (o.col as number) ?? 2;
const simulate = (await import('../cli/commands/simulate.ts')).default;
if ((await simulate.run(['--preset', 'minitile', '--seed', String((o.seed as number) ?? 5), '--out', dir, '--quiet'])) !== 0) process.exit(1);
const prepare = (await import('../cli/commands/prepare.ts')).default;
const scratch = join(dir, 'scratch');
if ((await prepare.run(['--config', join(dir, 'config.yaml'), '--tile-id', String(tile), '--sub-tile', `${row},${col}`, '--out', scratch, '--quiet'])) !== 0) process.exit(1);
const cfg = await loadConfig(join(dir, 'config.yaml'));
cfg.inference.method = method;
Object.assign(cfg.inference.nuts, { chains: (o.chains as number) ?? 4, warmup: (o.warmup as number) ?? 200, samples: (o.samples as number) ?? 200, max_tree_depth: (o.depth as number) ?? 8 });
Object.assign(cfg.inference.vi, { steps: (o.steps as number) ?? 1000, particles: (o.particles as number) ?? 4 });
const manifest = parseManifest(await readFile(join(scratch, manifestFileName(tile, row, col)), 'utf8'), 'manifest');
const acq = await acquireDevice({ adapter: parsed.adapter, limits: parsed.limits, quiet: true });
try {
  const t0 = performance.now();
  const r = await runSubtile(acq.device, manifest, cfg, { openFits: (p, o) => openFits(p, o) }, { method, images: false });
  const p = r.posterior!;
  const out = {
    adapter: acq.label, backend: acq.backend, method, subTile: [row, col], sources: r.nSourcesCore, modelled: r.nSourcesModelled, quadrants: r.nQuadrants, pairs: r.pairs,
    chains: p.chains, draws: p.draws, warmup: cfg.inference.nuts.warmup, maxTreeDepth: cfg.inference.nuts.max_tree_depth, steps: cfg.inference.vi.steps, particles: cfg.inference.vi.particles,
    g1: r.g1, g1Err: r.g1Err, g2: r.g2, g2Err: r.g2Err, map: r.mapEstimate, rhatG1: p.rhatG1, maxRhat: p.maxRhat, essBulkG1: p.essBulkG1, essTailG1: p.essTailG1,
    divergences: p.divergences, meanTreeDepth: p.meanTreeDepth, evaluations: r.evaluations, samplerMs: p.samplerMs, msPerEssG1: p.msPerEssG1, mapMs: r.timings.mapMs, laplaceMs: r.timings.laplaceMs, totalMs: performance.now() - t0,
  };
  console.log(`${method} on minitile sub-tile (${row}, ${col}): ${r.nSourcesCore} core / ${r.nSourcesModelled} modelled sources, ${r.nQuadrants} quadrants, ${r.pairs} pairs; ${acq.label}`);
  console.log(`  g1 ${r.g1.toFixed(5)} ± ${r.g1Err.toFixed(5)} (MAP ${r.mapEstimate?.g1.toFixed(5)} ± ${r.mapEstimate?.g1Err.toFixed(5)}); sampler ${(p.samplerMs / 1000).toFixed(1)} s`);
  if (method === 'nuts') console.log(`  R̂ g1 ${p.rhatG1.toFixed(4)} (max ${p.maxRhat.toFixed(4)}); bulk ESS g1 ${p.essBulkG1.toFixed(0)}; ${(p.msPerEssG1 / 1000).toFixed(3)} s per effective sample of g1; depth ${p.meanTreeDepth.toFixed(2)}; ${p.divergences} divergences`);
  console.log(JSON.stringify(out));
} finally {
  acq.release();
}
process.exit(0);
