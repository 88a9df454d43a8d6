/**
 * `shine assemble --config C --tiles T1,T2,… | --tiles-file F --out catalog.fits`: Stage 3, every
 * sub-tile's shear row → the unified shear catalog (docs/assemble.md), plus
 * `params_{tile}.fits` per tile. See docs/assemble.md.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UserError, type Command } from '../command.ts';
import { parseOptions } from '../args.ts';
import { loadConfig } from '../../platform/node/config.ts';
import { writeFileAtomic } from '../../platform/node/files.ts';
import { lockOutputsForAssembly } from '../../platform/node/output-locks.ts';
import { collectSubtiles, shearCatalogFits, summarize, tileParamsFits, tileParamsName, type AssembleReader } from '../../engine/assemble/index.ts';
import { SHINE_VERSION } from '../../engine/version.ts';
import { ShineError } from '../../engine/errors.ts';

const USAGE = `usage: shine assemble --config C (--tiles T1,T2,… | --tiles-file F) --out catalog.fits
                      [--allow-missing] [--params-dir DIR] [--output-dir DIR[,DIR…]] [--quiet]
  --config C         configuration (distributed.output_dir, distributed.sub_tile_grid)
  --tiles T1,T2,…    MER tile ids (comma-separated)
  --tiles-file F     file of tile ids (one or more per line, comma/space separated, # comments)
  --out FILE         the unified shear catalog (FITS), written atomically
  --params-dir DIR   where params_{tile}.fits go (default: the folder of --out)
  --output-dir DIRS  folders holding the sub-tile outputs (default: distributed.output_dir)
  --allow-missing    leave out missing or corrupt sub-tiles (listed in the summary and in the
                     catalog's MISSING extension) instead of failing`;

function parseTileIds(text: string, where: string): Array<number | bigint> {
  const out: Array<number | bigint> = [];
  for (const line of text.split(/\r?\n/)) {
    for (const tok of line.replace(/#.*/, '').split(/[\s,]+/)) {
      if (!tok) continue;
      if (!/^\d+$/.test(tok)) throw new UserError(`${where}: '${tok}' is not a tile id (expected a non-negative integer)`);
      const b = BigInt(tok);
      if (b >= 2n ** 63n) throw new UserError(`${where}: tile id ${tok} does not fit in int64`);
      out.push(b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b);
    }
  }
  return out;
}

const nodeReader: AssembleReader = {
  async read(path) {
    try {
      return new Uint8Array(await readFile(path));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') return null;
      throw new Error(err.code === 'EISDIR' ? 'is a directory' : err.code === 'EACCES' ? 'permission denied' : err.message);
    }
  },
  join,
};

const command: Command = {
  summary: 'Stage 3: all sub-tile outputs → the unified shear catalog (+ params per tile)',
  async run(argv) {
    const { opts, positional } = parseOptions(
      argv,
      { config: 'string', tiles: 'string', 'tiles-file': 'string', out: 'string', 'allow-missing': 'boolean', 'params-dir': 'string', 'output-dir': 'string', quiet: 'boolean', help: 'boolean' },
      USAGE,
    );
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    if (positional.length) throw new UserError(`unexpected argument '${positional[0]}'\n${USAGE}`);
    if (!opts.config) throw new UserError(`--config is required\n${USAGE}`);
    if (!opts.out) throw new UserError(`--out is required\n${USAGE}`);
    if (!opts.tiles === !opts['tiles-file']) throw new UserError(`give exactly one of --tiles or --tiles-file\n${USAGE}`);
    let tiles: Array<number | bigint>;
    if (opts.tiles) tiles = parseTileIds(String(opts.tiles), '--tiles');
    else {
      const f = String(opts['tiles-file']);
      let text: string;
      try {
        text = await readFile(f, 'utf8');
      } catch (e) {
        throw new ShineError(`cannot read the tiles file: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { file: f });
      }
      tiles = parseTileIds(text, f);
    }
    if (!tiles.length) throw new UserError('no tile ids given');
    const quiet = !!opts.quiet;
    const cfg = await loadConfig(String(opts.config));
    const dirs = opts['output-dir'] ? String(opts['output-dir']).split(',').filter(Boolean).map((d) => resolve(d)) : [cfg.distributed.output_dir];
    const grid = cfg.distributed.sub_tile_grid;
    const out = resolve(String(opts.out));
    const paramsDir = opts['params-dir'] ? resolve(String(opts['params-dir'])) : dirname(out);
    const allowMissing = !!opts['allow-missing'];

    // no sub-tile of these tiles is being written while the folders are read (docs/run.md, "One run per folder")
    const locks = await lockOutputsForAssembly(dirs.map((d) => resolve(d)), tiles, (l) => console.error(`assemble: ${l}`));
    try {
      return await assemble();
    } finally {
      await locks.release();
    }

    async function assemble(): Promise<number> {
      const result = await collectSubtiles({ dirs, tiles, grid: [grid[0], grid[1]] }, nodeReader);
      const sum = summarize(result);
      const lines = [
        `assemble: ${tiles.length} tile${tiles.length === 1 ? '' : 's'} × ${grid[0]}×${grid[1]} sub-tiles = ${sum.expected} expected: ${sum.found} found, ${sum.missing} missing or invalid, ${sum.empty} empty (N_SOURCES = 0)`,
      ];
      for (const p of result.problems) lines.push(`  ${p.kind === 'missing' ? 'missing' : 'invalid'}: tile ${String(p.tileId)} sub-tile (${p.row}, ${p.col}): ${p.file}: ${p.reason}`);
      if (result.problems.length && !allowMissing) {
        console.error(lines.join('\n'));
        console.error(`shine: ${result.problems.length} sub-tile${result.problems.length === 1 ? '' : 's'} missing or invalid; nothing written (re-run them, or use --allow-missing to leave them out)`);
        return 1;
      }
      const prov = { softwareVersion: SHINE_VERSION, created: new Date().toISOString(), configFile: cfg.source.file || String(opts.config) };
      // build everything in memory first: a duplicate OBJECT_ID throws before any file is written
      const catalog = shearCatalogFits(result, prov);
      const paramFiles = tiles.map((t) => ({
        path: join(paramsDir, tileParamsName(t)),
        bytes: tileParamsFits(t, result.subtiles, prov, result.problems.filter((p) => String(p.tileId) === String(t)).length),
      }));
      for (const f of paramFiles) await writeFileAtomic(f.path, f.bytes);
      await writeFileAtomic(out, catalog);
      lines.push(`  catalog: ${out} (${sum.found} rows${sum.missing ? `; ${sum.missing} left out, listed in its MISSING extension` : ''})`);
      lines.push(`  params: ${paramFiles.length} file${paramFiles.length === 1 ? '' : 's'} in ${paramsDir}`);
      if (!quiet || result.problems.length) console.log(lines.join('\n'));
      return 0;
    }
  },
};

export default command;
