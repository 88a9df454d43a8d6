/**
 * `shine plan` on the ci simulation (docs/plan.md) and the plan recorded by Stage 2:
 *  - the plan of the simulated sub-tile from its manifest (no pixels read) fits this machine, and
 *    bounds the bytes the engine really allocates for that sub-tile (GpuResources' count);
 *  - a described device too small for it: exit 1, the message says what is needed and what is there;
 *  - a short Stage 2 run (2 MAP iterations, no Laplace) records the plan in the sub-tile metadata.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../helpers/cli.ts';
import plan from '../../cli/commands/plan.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { openFits } from '../../platform/node/files.ts';
import { manifestFileName, parseManifest } from '../../engine/tiling/manifest.ts';
import { runSubtile } from '../../engine/subtile/run.ts';
import { subtileProducts } from '../../engine/subtile/products.ts';
import { testDevice } from '../helpers/device.ts';
import { preparedCiSimulation } from '../helpers/ci-sim.ts';
import { testProductContext } from '../helpers/products.ts';

const TILE = 102018211;
let cfgFile: string;
let row = 1;
let col = 1;

beforeAll(async () => {
  ({ cfgFile, row, col } = await preparedCiSimulation(5, 'shine-plan-'));
}, 300_000);

describe('shine plan', () => {
  it('plans the sub-tile from its manifest on this machine (JSON)', async () => {
    const r = await runCli(plan, ['--config', cfgFile, '--tile-id', String(TILE), '--sub-tile', `${row},${col}`, '--json'], {});
    expect(r.code, r.out).toBe(0);
    const j = JSON.parse(r.out.slice(r.out.indexOf('{')));
    expect(j.subtiles).toHaveLength(1);
    const s = j.subtiles[0];
    expect(s.status).toBe('fits');
    expect(s.pairs).toBeGreaterThan(s.core);
    expect(s.plan.gpu_bytes.peak).toBeLessThanOrEqual(j.device.gpuBudgetBytes);
    expect(s.plan.psf_spectra).toBe('keep');
  }, 120_000);

  it('a described device too small for the sub-tile: exit 1 naming the need and the budget', async () => {
    const r = await runCli(plan, ['--config', cfgFile, '--tile-id', String(TILE), '--sub-tile', `${row},${col}`, '--max-buffer-mb', '128', '--gpu-budget-gb', '0.001', '--host-gb', '16', '--cores', '4'], {});
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/DOES NOT FIT: the sub-tile \(\d+ sources, \d+ quadrants, \d+ rendered pairs\) needs at least [\d.]+ MiB of GPU memory .* the budget is 1\.0 MiB/);
    // bad flags are one-line errors
    const bad = await runCli(plan, ['--config', cfgFile, '--tile-id', String(TILE), '--sub-tile', '9,9'], {});
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/--sub-tile 9,9 is outside the 4×4 grid/);
  }, 120_000);

  it('Stage 2 records its plan in the metadata, within the manifest-based plan of shine plan', async () => {
    const device = await testDevice();
    const cfg = await loadConfig(cfgFile);
    const short = { ...cfg, inference: { ...cfg.inference, map: { ...cfg.inference.map, max_iterations: 2, laplace: false } } };
    const file = join(cfg.distributed.scratch_dir, `tile_${TILE}`, manifestFileName(TILE, row, col));
    const manifest = parseManifest(await readFile(file, 'utf8'), file);
    const lines: string[] = [];
    const result = await runSubtile(device, manifest, short, { openFits: (p, o) => openFits(p, o) }, { log: (l) => lines.push(l), images: false });
    expect(result.status).toBe('ok');
    expect(lines.some((l) => /^plan: GPU: /.test(l))).toBe(true);
    // every core source reaches at least one and at most every quadrant of the manifest (N_QUADRANTS
    // of the params product; the dithered ci exposures put some in several)
    for (const s of result.core) {
      expect(s.nQuadrants, s.objectId).toBeGreaterThanOrEqual(1);
      expect(s.nQuadrants, s.objectId).toBeLessThanOrEqual(manifest.n_quadrants);
    }
    expect(Math.max(...result.core.map((s) => s.nQuadrants!))).toBeGreaterThan(1);
    const products = subtileProducts(result, manifest, testProductContext(file, cfgFile, false));
    const meta = parseYaml(products.metadata);
    expect(meta.plan.psf_spectra).toBe('keep');
    expect(meta.plan.replicas_per_call).toBe(1);
    expect(meta.plan.gpu_bytes.peak).toBeGreaterThan(0);
    // shine plan (pairs from the WCS headers, alias orders and active blocks bounded) ≥ Stage 2's exact plan
    const r = await runCli(plan, ['--config', cfgFile, '--tile-id', String(TILE), '--sub-tile', `${row},${col}`, '--json'], {});
    const s = JSON.parse(r.out.slice(r.out.indexOf('{'))).subtiles[0];
    expect(s.pairs).toBe(result.pairs);
    expect(s.plan.gpu_bytes.peak).toBeGreaterThanOrEqual(meta.plan.gpu_bytes.peak);
    expect(s.plan.gpu_bytes.peak).toBeLessThan(1.5 * meta.plan.gpu_bytes.peak);
  }, 900_000);
});
