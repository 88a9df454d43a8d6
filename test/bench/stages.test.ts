/**
 * `shine bench --stages` on real prepared data (issue 14 items 1–2): the `ci` simulation, Stage 1,
 * then the stage benchmark with MAP and with NUTS (short settings so that the test stays quick).
 * Checked: every field of the JSON, pipelinesAfterWarmup 0, the gradient-step figure against the
 * median of its own samples and against the trace's evaluation spans (two separate records of the
 * same calls), the GPU bytes the buffer tracker saw against the plan of engine/scene/memory.ts,
 * and the Chrome trace: valid JSON, every stage, events well formed, the GPU-timestamp record. No
 * timing is asserted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { simulate } from '../../engine/sim/simulate.ts';
import { nodeSimOutput } from '../../cli/commands/simulate.ts';
import prepareCommand from '../../cli/commands/prepare.ts';
import bench from '../../cli/commands/bench.ts';
import { STAGE_NAMES } from '../../cli/commands/bench-stages.ts';
import { commandExitCode } from '../../cli/command.ts';
import { runCli } from '../helpers/cli.ts';

const TILE = 102018211;
let dir: string;
let cfgFile: string;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shine-bench-stages-'));
  await simulate(nodeSimOutput(dir), { preset: 'ci', seed: 1 });
  // short fits: 3 L-BFGS iterations without Laplace; NUTS from the catalog values (no MAP), 2 chains
  const doc = parseYaml(readFileSync(join(dir, 'config.yaml'), 'utf8'));
  doc.inference.methods.map = { optimizer: 'lbfgs', max_iterations: 3, laplace: false };
  doc.inference.methods.nuts = { warmup: 2, samples: 4, chains: 2, init: 'catalog', max_tree_depth: 3 };
  cfgFile = join(dir, 'bench.yaml');
  writeFileSync(cfgFile, stringify(doc));
  const code = await commandExitCode(() => prepareCommand.run(['--config', cfgFile, '--sub-tile', '1,1', '--quiet']));
  expect(code).toBe(0);
}, 300_000);

function lastJson(out: string): Record<string, any> {
  const line = out.split('\n').filter((l) => l.startsWith('{')).pop();
  expect(line, out).toBeDefined();
  return JSON.parse(line!);
}

function checkFigures(r: Record<string, any>, repeats: number): void {
  for (const k of ['adapter', 'tileId', 'row', 'col', 'method', 'sources', 'quadrants', 'stagesMs', 'gradient', 'fit', 'peakHostRssBytes', 'gpuBytes', 'pipelinesTotal', 'pipelinesAfterWarmup', 'pairs', 'batches', 'fftSizes']) {
    expect(r, k).toHaveProperty(k);
  }
  expect(r.adapter.label).toMatch(/\S/);
  expect(typeof r.adapter.timestampQuery).toBe('boolean');
  expect(r.pipelinesAfterWarmup).toBe(0);
  expect(r.pipelinesTotal).toBeGreaterThan(0);
  for (const k of ['dataLoad', 'sceneBuild', 'compile', 'gradientStep', 'fit']) {
    expect(Number.isFinite(r.stagesMs[k]) && r.stagesMs[k] > 0, `stagesMs.${k} = ${r.stagesMs[k]}`).toBe(true);
  }
  expect(r.gradient.from).toBe('repeats');
  expect(r.gradient.samples).toBe(repeats);
  expect(r.gradient.samplesMs).toHaveLength(repeats);
  expect(r.stagesMs.gradientStep).toBeCloseTo(median(r.gradient.samplesMs), 9);
  expect(r.peakHostRssBytes).toBeGreaterThan(0);
  // the tracker's peak equals the plan computed from the layout (engine/scene/memory.ts)
  expect(r.gpuBytes.measuredPeak).toBe(r.gpuBytes.plannedPeak);
  for (const k of ['psfSpectra', 'fftWork', 'images', 'other']) expect(r.gpuBytes[k], k).toBeGreaterThan(0);
  expect(r.pairs).toBeGreaterThan(0);
}

describe('shine bench --stages on the ci simulation', () => {
  it('MAP: every field, no pipeline after warm-up, a trace with every stage', async () => {
    const trace = join(dir, 'trace-map.json');
    const repeats = 3;
    const { code, out } = await runCli(bench, ['--stages', '--config', cfgFile, '--tile-id', String(TILE), '--sub-tile', '1,1', '--repeats', String(repeats), '--json', '--trace', trace], {});
    expect(code, out).toBe(0);
    const r = lastJson(out);
    checkFigures(r, repeats);
    expect(r.method).toBe('map');
    expect(r.gpuBytes.replicas).toBe(0);
    expect(r.fit.setsPerCall).toBe(1); // a software adapter: one parameter set per call
    expect(r.fit.mapMs).toBeGreaterThan(0);
    expect(r.fit.laplaceMs).toBeUndefined();

    const t = JSON.parse(readFileSync(trace, 'utf8'));
    expect(Array.isArray(t.traceEvents)).toBe(true);
    const spans = t.traceEvents.filter((e: any) => e.ph === 'X');
    for (const e of spans) {
      expect(typeof e.name).toBe('string');
      expect(Number.isFinite(e.ts) && Number.isFinite(e.dur) && e.dur >= 0, JSON.stringify(e)).toBe(true);
      expect([1, 2]).toContain(e.tid);
    }
    const stages = spans.filter((e: any) => e.cat === 'stage');
    expect(stages.map((e: any) => e.name).sort()).toEqual([...STAGE_NAMES].sort());
    // the gradient stage holds 1 warm-up + `repeats` evaluation spans; their durations are the figure's samples
    const g = stages.find((e: any) => e.name === 'gradient step');
    const inside = spans.filter((e: any) => e.cat === 'eval' && e.ts >= g.ts && e.ts + e.dur <= g.ts + g.dur + 1e-3);
    expect(inside).toHaveLength(repeats + 1);
    const traced = inside.slice(1).map((e: any) => e.dur / 1000);
    traced.forEach((d: number, i: number) => expect(d).toBeCloseTo(r.gradient.samplesMs[i], 2));
    // the fit's evaluations are inside the fit stage
    const fit = stages.find((e: any) => e.name === 'full fit');
    const fitEvals = spans.filter((e: any) => e.cat === 'eval' && e.ts >= fit.ts && e.ts <= fit.ts + fit.dur);
    expect(fitEvals.length).toBe(r.fit.evaluations);
    // GPU timestamps: recorded as a metadata event whichever way it goes
    const gpuMeta = t.traceEvents.find((e: any) => e.ph === 'M' && e.name === 'gpu_timestamps');
    expect(gpuMeta).toBeDefined();
    expect(typeof gpuMeta.args.available).toBe('boolean');
    if (!gpuMeta.args.available) {
      expect(gpuMeta.args.reason).toMatch(/timestamp-query/);
      expect(spans.some((e: any) => e.tid === 2)).toBe(false);
    }
  }, 300_000);

  it('NUTS (2 chains, short): time per effective sample of g1 and the replicas in the GPU bytes', async () => {
    const repeats = 2;
    const { code, out } = await runCli(bench, ['--stages', '--config', cfgFile, '--tile-id', String(TILE), '--sub-tile', '1,1', '--method', 'nuts', '--repeats', String(repeats), '--json'], {});
    expect(code, out).toBe(0);
    const r = lastJson(out);
    checkFigures(r, repeats);
    expect(r.method).toBe('nuts');
    expect(r.fit.posteriorMs).toBeGreaterThan(0);
    expect(r.fit).toHaveProperty('msPerEssG1');
    // two chains: the second replica's buffers (its PSF spectra are shared) show as 'replicas'
    expect(r.gpuBytes.replicas).toBeGreaterThan(0);
    expect(r.fit.setsPerCall).toBe(2);
    expect(r.gpuBytes.replicas).toBeLessThan(r.gpuBytes.plannedPeak - r.gpuBytes.psfSpectra);
    expect(r.trace).toBeNull();
  }, 300_000);

  it('refuses a sub-tile without a manifest, naming the file and the fix', async () => {
    const { code, out } = await runCli(bench, ['--stages', '--config', cfgFile, '--tile-id', String(TILE), '--sub-tile', '0,0', '--json'], {});
    expect(code).not.toBe(0);
    expect(out).toMatch(/manifest .*tile_102018211.*shine prepare/s);
  });
});
