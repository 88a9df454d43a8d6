/**
 * `shine plan --config C --tile-id T [--sub-tile R,C] [--method M] [--json]
 *             [--adapter X] [--limits adapter|default]
 *             [--gpu-budget-gb G] [--max-buffer-mb B] [--host-gb H] [--cores N] [--software]`
 *
 * The memory plan of sub-tiles (engine/plan/plan.ts, docs/plan.md) before any of their pixels is
 * read: from each manifest (Stage 1's output), the catalog sizes (stamp tiers), the quadrants'
 * WCS headers (which source lands where) and one PSF grid (stamp side, oversampling); and from the
 * device — this machine's adapter, or a machine described by the flags (--max-buffer-mb plans
 * for another machine without opening an adapter). Prints what each sub-tile needs and how it
 * would run; a sub-tile whose smallest plan cannot fit is reported with what it needs (exit 1).
 */
import { join } from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { UserError, type Command } from '../command.ts';
import { parseOptions } from '../args.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { openFits, remoteSettings } from '../../platform/node/files.ts';
import { acquireDevice, parseDeviceFlags } from '../../platform/acquire.ts';
import { planDevice } from '../gpu-budget.ts';
import { manifestFileName, parseManifest, type Manifest } from '../../engine/tiling/manifest.ts';
import { halfLightRadius, readMerCatalog } from '../../engine/data/catalog/index.ts';
import type { HduInfo } from '../../engine/data/fits/index.ts';
import { readWcs } from '../../engine/data/wcs/read.ts';
import { readPsfGrid } from '../../engine/data/psf/read.ts';
import { chooseTier } from '../../engine/model/geometry.ts';
import { describePlan, makePlan, PlanError, planRecord, type PlanDevice, type PlanScene } from '../../engine/plan/plan.ts';
import { planSceneFromPositions } from '../../engine/plan/scene.ts';
import { replicasFor } from '../../engine/subtile/posterior-run.ts';
import type { ShineConfig } from '../../engine/config/index.ts';

const USAGE = `usage: shine plan --config C --tile-id T [--sub-tile R,C] [--method map|vi|nuts] [--json]
                  [--adapter X] [--limits adapter|default]
                  [--gpu-budget-gb G] [--max-buffer-mb B] [--host-gb H] [--cores N] [--software]`;

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The plan's scene of one sub-tile, from its manifest, catalogs, WCS headers and first PSF grid. */
export async function planSceneFromManifest(m: Manifest, cfg: ShineConfig, method: 'map' | 'vi' | 'nuts', software = true): Promise<PlanScene> {
  const remote = remoteSettings(cfg.remote, cfg.source.dir);
  const stamp = new Array<number>(m.sources.row.length).fill(cfg.stamps.tiers[cfg.stamps.tiers.length - 1]);
  for (let c = 0; c < m.catalogs.length; c++) {
    const entry = m.catalogs[c];
    const fits = await openFits(entry.file, { needed: [entry.hdu ?? ((h: HduInfo) => h.type === 'bintable')], remote });
    const cat = await readMerCatalog(fits, { hdu: entry.hdu ?? undefined }).finally(() => fits.close());
    const [lo, hi] = cfg.sources.hlr_clip_arcsec;
    const { hlr } = halfLightRadius(cat.semimajor, { scale: cfg.data.pixel_scale, min: lo, max: hi });
    m.sources.row.forEach((row, i) => {
      if (m.sources.catalog[i] === c && row < cat.nRows) stamp[i] = chooseTier(hlr[row] / cfg.data.pixel_scale, cfg.stamps.tiers);
    });
  }
  const at: Array<Array<{ quadrant: number; x: number; y: number }>> = m.sources.row.map(() => []);
  for (let j = 0; j < m.quadrants.length; j++) {
    const q = m.quadrants[j];
    const det = await openFits(q.file, { headersOnly: true, needed: [q.sci_hdu], remote });
    try {
      const wcs = readWcs(det, q.sci_hdu);
      for (let i = 0; i < at.length; i++) {
        const [x, y] = wcs.skyToPixel(m.sources.ra[i], m.sources.dec[i]);
        if (Number.isFinite(x) && Number.isFinite(y)) at[i].push({ quadrant: j, x, y });
      }
    } finally {
      await det.close();
    }
  }
  const q0 = m.quadrants.find((q) => q.psf_file && q.psf_hdu);
  if (!q0) throw new UserError(`${manifestFileName(m.tile_id, m.sub_tile_row, m.sub_tile_col)}: no quadrant has a PSF (psf_file/psf_hdu)`);
  const psfFits = await openFits(q0.psf_file!, { needed: [q0.psf_hdu!], remote });
  const grid = await readPsfGrid(psfFits, q0.psf_hdu!, cfg.data.psf_oversampling !== null ? { oversampling: cfg.data.psf_oversampling } : {}).finally(() => psfFits.close());
  const q = grid.oversampling;
  // 'auto' folds at most every order the PSF band reaches (docs/forward-model.md "Aliasing"): an upper bound
  const reach = Math.ceil((q - 1) / 2);
  const aliasOrders = cfg.stamps.alias_orders === 'auto' ? reach : Math.min(cfg.stamps.alias_orders, reach);
  const cfgM: ShineConfig = { ...cfg, inference: { ...cfg.inference, method } };
  return planSceneFromPositions({
    quadrants: m.quadrants.map((x) => ({ width: x.width, height: x.height })),
    sources: stamp.map((s, i) => ({ stampSize: s, at: at[i] })),
    fftFactor: cfg.stamps.fft_factor,
    psfSize: grid.stampSize,
    psfOversampling: q,
    aliasOrders,
    method,
    replicasWanted: replicasFor(cfgM, software),
    diagnostics: cfg.distributed.save_diagnostics,
  });
}

export const planCommand: Command = {
  summary: 'the memory plan of sub-tiles: what each needs (GPU, host) and how it runs on this or a described device',
  async run(argv) {
    const flags = parseDeviceFlags(argv);
    const { opts } = parseOptions(
      flags.rest,
      { config: 'string', 'tile-id': 'integer', 'sub-tile': 'string', method: 'string', json: 'boolean', help: 'boolean', 'gpu-budget-gb': 'number', 'max-buffer-mb': 'number', 'host-gb': 'number', cores: 'integer', software: 'boolean' },
      USAGE,
    );
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    for (const k of ['config', 'tile-id']) if (opts[k] === undefined) throw new UserError(`--${k} is required\n${USAGE}`);
    for (const k of ['gpu-budget-gb', 'max-buffer-mb', 'host-gb', 'cores']) if (opts[k] !== undefined && !((opts[k] as number) > 0)) throw new UserError(`--${k} must be positive, got ${opts[k]}`);
    const cfg = await loadConfig(opts.config as string);
    const tileId = opts['tile-id'] as number;
    const method = ((opts.method as string | undefined) ?? cfg.inference.method) as 'map' | 'vi' | 'nuts';
    if (!['map', 'vi', 'nuts'].includes(method)) throw new UserError(`--method must be map, vi or nuts, got '${method}'`);
    const [rows, cols] = cfg.distributed.sub_tile_grid;
    let cells: Array<[number, number]> = [];
    if (opts['sub-tile'] !== undefined) {
      const mt = String(opts['sub-tile']).match(/^(\d+),(\d+)$/);
      if (!mt) throw new UserError(`--sub-tile must be R,C (two non-negative integers), got '${opts['sub-tile']}'`);
      const [r, c] = [Number(mt[1]), Number(mt[2])];
      if (r >= rows || c >= cols) throw new UserError(`--sub-tile ${r},${c} is outside the ${rows}×${cols} grid (distributed.sub_tile_grid)`);
      cells = [[r, c]];
    } else for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) cells.push([r, c]);

    // the device: this machine's adapter, or one described by the flags
    let device: PlanDevice;
    if (opts['max-buffer-mb'] !== undefined) {
      const mb = Math.floor((opts['max-buffer-mb'] as number) * 2 ** 20);
      device = {
        maxBufferSize: mb,
        maxStorageBufferBindingSize: mb,
        gpuBudgetBytes: opts['gpu-budget-gb'] !== undefined ? Math.floor((opts['gpu-budget-gb'] as number) * 2 ** 30) : cfg.device.memory_budget_gb ? Math.floor(cfg.device.memory_budget_gb * 2 ** 30) : Math.max(4 * 2 ** 30, 8 * mb),
        hostBudgetBytes: opts['host-gb'] !== undefined ? Math.floor((opts['host-gb'] as number) * 2 ** 30) : totalmem(),
        cores: (opts.cores as number | undefined) ?? availableParallelism(),
        software: !!opts.software,
        label: 'the device described by the flags',
      };
    } else {
      const acq = await acquireDevice({ adapter: flags.adapter ?? (cfg.device.adapter === 'auto' ? undefined : cfg.device.adapter), limits: flags.limits, quiet: !!opts.json });
      try {
        device = planDevice(acq, opts['gpu-budget-gb'] !== undefined ? (opts['gpu-budget-gb'] as number) : cfg.device.memory_budget_gb);
      } finally {
        acq.release();
      }
      if (opts['host-gb'] !== undefined) device.hostBudgetBytes = Math.floor((opts['host-gb'] as number) * 2 ** 30);
      if (opts.cores !== undefined) device.cores = opts.cores as number;
      if (opts.software) device.software = true;
    }

    const dir = join(cfg.distributed.scratch_dir, `tile_${tileId}`);
    const out: Array<Record<string, unknown>> = [];
    let failed = 0;
    let missing = 0;
    for (const [r, c] of cells) {
      const file = join(dir, manifestFileName(tileId, r, c));
      if (!(await exists(file))) {
        missing++;
        if (cells.length === 1) throw new UserError(`no manifest ${file}: run \`shine prepare --config ${opts.config} --tile-id ${tileId} --sub-tile ${r},${c}\` first`);
        out.push({ tile_id: tileId, sub_tile_row: r, sub_tile_col: c, status: 'no manifest', manifest: file });
        continue;
      }
      const m = parseManifest(await readFile(file, 'utf8'), file);
      const head = { tile_id: tileId, sub_tile_row: r, sub_tile_col: c, manifest: file, sources: m.n_sources_extended, core: m.n_sources_core, quadrants: m.n_quadrants };
      if (m.n_sources_extended === 0 || m.n_quadrants === 0) {
        out.push({ ...head, status: 'empty' });
        continue;
      }
      const scene = await planSceneFromManifest(m, cfg, method, device.software);
      const pairs = scene.groups.reduce((s, g) => s + g.count, 0);
      try {
        const plan = makePlan(scene, device);
        out.push({ ...head, status: 'fits', pairs, plan: planRecord(plan), text: describePlan(plan) });
      } catch (e) {
        if (!(e instanceof PlanError)) throw e;
        failed++;
        out.push({ ...head, status: 'does not fit', pairs, error: e.message });
      }
    }
    if (opts.json) {
      console.log(JSON.stringify({ device, method, subtiles: out.map(({ text: _t, ...rest }) => rest) }, null, 1));
    } else {
      const gib = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
      console.log(`plan for tile ${tileId} (${method}) on ${device.label ?? 'the device'}: GPU budget ${gib(device.gpuBudgetBytes)}, largest buffer ${(Math.min(device.maxBufferSize, device.maxStorageBufferBindingSize) / 2 ** 20).toFixed(0)} MiB, host ${gib(device.hostBudgetBytes)}, ${device.cores} cores${device.software ? ', software adapter' : ''}`);
      for (const s of out) {
        const where = `sub-tile (${s.sub_tile_row}, ${s.sub_tile_col})`;
        if (s.status === 'no manifest') console.log(`${where}: no manifest (${s.manifest}); run shine prepare`);
        else if (s.status === 'empty') console.log(`${where}: empty (${s.sources} sources, ${s.quadrants} quadrants)`);
        else {
          console.log(`${where}: ${s.sources} sources (${s.core} core), ${s.quadrants} quadrants, ${s.pairs} rendered pairs`);
          if (s.status === 'fits') for (const l of s.text as string[]) console.log(`  ${l}`);
          else console.log(`  DOES NOT FIT: ${s.error}`);
        }
      }
      if (missing === cells.length) console.log(`no manifest in ${dir}: run shine prepare first`);
    }
    return failed ? 1 : 0;
  },
};

export default planCommand;
