/**
 * `shine prepare --config C --tile-id T [--out DIR] [--sub-tile R,C] [--quiet]`: Stage 1 — one
 * manifest YAML per sub-tile of the tile (docs/prepare.md), written atomically into DIR
 * (default: distributed.scratch_dir/tile_<T>), plus prepare_<T>.yaml listing them.
 */
import { basename, join } from 'node:path';
import { readFile, stat } from 'node:fs/promises';
import { stringify } from 'yaml';
import { UserError, type Command } from '../command.ts';
import { parseOptions } from '../args.ts';
import { loadConfig, expandPaths, findFiles } from '../../platform/node/config.ts';
import { openFits, writeFileAtomic } from '../../platform/node/files.ts';
import type { OpenOptions } from '../../engine/data/fits/file.ts';
import { isRemoteUrl, remoteIdentity, remoteSettings, type RemoteSettings } from '../../platform/node/remote-cache.ts';
import { urlPatternProblem } from '../../engine/config/paths.ts';
import { ShineError } from '../../engine/errors.ts';
import { prepareTile, scanExposures, type FileScan, type PrepareInputs, type ScanCache } from '../../engine/tiling/prepare.ts';
import { manifestFileName, manifestToYaml } from '../../engine/tiling/manifest.ts';
import { readTileIndex } from '../../engine/tiling/tiles.ts';
import type { ShineConfig } from '../../engine/config/schema.ts';
import { hash64 } from '../../engine/util/hash.ts';

const USAGE = 'usage: shine prepare --config C [--tile-id T|all] [--out DIR] [--sub-tile R,C] [--no-cache] [--quiet]';


/**
 * DET header scans cached in DIR, one JSON file per DET file, valid while the file's path, size
 * and modification time are unchanged (so a survey archive is scanned once, not once per tile).
 * For a URL the key is its size and ETag / Last-Modified (one HEAD request).
 */
function nodeScanCache(dir: string, remote: RemoteSettings): ScanCache {
  const entry = (file: string) => join(dir, `${basename(file.replace(/[?#].*$/, '')).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}.${hash64(file)}.json`);
  const key = async (file: string) => {
    if (isRemoteUrl(file)) {
      const id = await remoteIdentity(file, remote);
      return { path: file, size: id.size, mtimeMs: `${id.etag ?? ''}|${id.lastModified ?? ''}` };
    }
    const st = await stat(file);
    return { path: file, size: st.size, mtimeMs: st.mtimeMs };
  };
  return {
    async get(file) {
      try {
        const [k, text] = await Promise.all([key(file), readFile(entry(file), 'utf8')]);
        const j = JSON.parse(text) as { version: number; key: typeof k; scan: FileScan };
        if (j.version !== 1 || j.key.path !== k.path || j.key.size !== k.size || j.key.mtimeMs !== k.mtimeMs) return undefined;
        return j.scan;
      } catch {
        return undefined;
      }
    },
    async set(file, scan) {
      const k = await key(file);
      await writeFileAtomic(entry(file), new TextEncoder().encode(JSON.stringify({ version: 1, key: k, scan })));
    },
  };
}

async function resolveInputs(cfg: ShineConfig, tileId: number | null, log: (s: string) => void): Promise<PrepareInputs> {
  const d = cfg.data;
  // URLs are read as given: they cannot be glob patterns or archive folders (a web folder cannot be listed)
  for (const [field, list] of [['data.exposures', d.exposures], ['data.backgrounds', d.backgrounds], ['data.psf', d.psf], ['data.mer_catalog', d.mer_catalog], ['data.tile_index', d.tile_index ? [d.tile_index] : []]] as const) {
    for (const p of list) {
      const problem = urlPatternProblem(p);
      if (problem) throw new ShineError(problem, { field });
    }
  }
  for (const field of ['exposure_archive', 'catalog_archive'] as const) {
    const v = cfg.distributed[field];
    if (v && /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v)) {
      throw new ShineError(`'${v}' is a URL, but an archive must be a local folder (a URL folder cannot be listed): list the files' URLs in data.exposures, data.backgrounds, data.psf and data.mer_catalog instead`, { field: `distributed.${field}` });
    }
  }
  const arch = cfg.distributed.exposure_archive;
  const fromArchive = async (kind: string): Promise<string[]> => {
    if (!arch) return [];
    const files = await findFiles(arch, new RegExp(`SWL-${kind}-.*\\.fits(\\.gz)?$`, 'i'));
    log(`prepare: ${files.length} ${kind} file(s) under ${arch}`);
    return files;
  };
  const exposures = d.exposures.length ? await expandPaths(d.exposures, 'data.exposures') : await fromArchive('DET');
  const backgrounds = d.backgrounds.length ? await expandPaths(d.backgrounds, 'data.backgrounds') : await fromArchive('BKG');
  const psf = d.psf.length ? await expandPaths(d.psf, 'data.psf') : await fromArchive('PSF');
  let catalogs = d.mer_catalog.length ? await expandPaths(d.mer_catalog, 'data.mer_catalog') : [];
  if (!catalogs.length && cfg.distributed.catalog_archive && tileId !== null) {
    catalogs = await findFiles(cfg.distributed.catalog_archive, new RegExp(`MER.*TILE${tileId}\\D.*\\.fits(\\.gz)?$`, 'i'));
    if (!catalogs.length) throw new UserError(`no MER catalog of tile ${tileId} under ${cfg.distributed.catalog_archive} (expected a name containing TILE${tileId})`);
  }
  return { exposures, backgrounds, psf, catalogs, tileIndex: d.tile_index };
}

function parseTileId(v: unknown): number | 'all' {
  if (v === 'all') return 'all';
  const s = String(v);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new UserError(`--tile-id must be a non-negative integer or 'all', got '${s}'`);
  return Number(s);
}

const command: Command = {
  summary: 'Stage 1: tile footprint, sub-tiles, source partition, quadrant discovery → one manifest per sub-tile',
  async run(argv) {
    const { opts, positional } = parseOptions(argv, { config: 'string', 'tile-id': 'string', out: 'string', 'sub-tile': 'string', 'no-cache': 'boolean', quiet: 'boolean', help: 'boolean' }, USAGE);
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    if (positional.length) throw new UserError(`unexpected argument '${positional[0]}'\n${USAGE}`);
    if (!opts.config) throw new UserError(`--config is required\n${USAGE}`);
    const quiet = !!opts.quiet;
    const log = (s: string) => {
      if (!quiet) console.error(s);
    };
    const cfg = await loadConfig(String(opts.config));
    const tileArg = opts['tile-id'] !== undefined ? parseTileId(opts['tile-id']) : cfg.distributed.tile_id;
    if (tileArg === null) throw new UserError(`no tile: give --tile-id or set distributed.tile_id in ${opts.config}`);
    let only: Array<[number, number]> | undefined;
    if (opts['sub-tile'] !== undefined) {
      const m = /^(\d+),(\d+)$/.exec(String(opts['sub-tile']).trim());
      if (!m) throw new UserError(`--sub-tile must be ROW,COL (e.g. 1,2), got '${opts['sub-tile']}'`);
      only = [[Number(m[1]), Number(m[2])]];
    }
    const remote = remoteSettings(cfg.remote, cfg.source.dir);
    let tileIds: number[];
    if (tileArg === 'all') {
      if (!cfg.data.tile_index) throw new UserError("--tile-id all needs data.tile_index");
      const f = await openFits(cfg.data.tile_index, { remote });
      try {
        tileIds = (await readTileIndex(f)).map((t) => t.tileId);
      } finally {
        await f.close();
      }
      if (opts.out !== undefined && tileIds.length > 1) throw new UserError('--out cannot be used with --tile-id all (each tile gets scratch_dir/tile_<id>)');
    } else tileIds = [tileArg];

    const io = { openFits: (p: string, o?: OpenOptions) => openFits(p, { ...o, remote }), log, scanCache: opts['no-cache'] ? undefined : nodeScanCache(join(cfg.distributed.scratch_dir, 'scan_cache'), remote) };
    let shared: { key: string; scan: Awaited<ReturnType<typeof scanExposures>> } | null = null;
    for (const tileId of tileIds) {
      const t0 = performance.now();
      const inputs = await resolveInputs(cfg, tileId, log);
      // tiles sharing the same exposure list share one scan
      const key = [...inputs.exposures, '|', ...inputs.backgrounds, '|', ...inputs.psf].join('\n');
      if (!shared || shared.key !== key) shared = { key, scan: await scanExposures(inputs, io) };
      const res = await prepareTile(cfg, inputs, tileId, io, { only, scan: shared.scan });
      const outDir = opts.out !== undefined ? String(opts.out) : join(cfg.distributed.scratch_dir, `tile_${tileId}`);
      const entries = [];
      for (const m of res.manifests) {
        const name = manifestFileName(tileId, m.sub_tile_row, m.sub_tile_col);
        await writeFileAtomic(join(outDir, name), new TextEncoder().encode(manifestToYaml(m)));
        entries.push({ row: m.sub_tile_row, col: m.sub_tile_col, manifest: name, n_sources_core: m.n_sources_core, n_sources_extended: m.n_sources_extended, n_quadrants: m.n_quadrants });
      }
      const index = {
        tile_id: tileId,
        config: cfg.source.file,
        sub_tile_grid: [res.geometry.grid.rows, res.geometry.grid.cols],
        n_quadrants_scanned: res.nQuadrantsScanned,
        sub_tiles: entries,
      };
      await writeFileAtomic(join(outDir, `prepare_${tileId}.yaml`), new TextEncoder().encode(stringify(index, { lineWidth: 0 })));
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      const withData = entries.filter((e) => e.n_quadrants > 0 && e.n_sources_core > 0).length;
      console.log(`shine prepare: tile ${tileId}: ${entries.length} manifest(s) in ${outDir} (${withData} with core sources and quadrants) in ${s} s`);
    }
    return 0;
  },
};

export default command;
