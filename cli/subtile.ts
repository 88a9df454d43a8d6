/**
 * One sub-tile end to end — the unit of work of a SLURM array task (docs/run.md):
 *
 *   deno run -A cli/subtile.ts --tile-id T --sub-tile-row R --sub-tile-col C --config F [--method map]
 *   npx tsx cli/subtile.ts …            (same under Node; also `shine subtile …`)
 *
 * Reads the sub-tile's manifest (running Stage 1 for this sub-tile first when it is missing),
 * builds the ExposureSet, runs the inference on the GPU and writes the four products of
 * docs/outputs.md atomically into the output folder. A sub-tile whose products are complete and valid is
 * skipped unless --force. Exit 0 on success (or skip), 1 with one clear line on bad input.
 */
import { join } from 'node:path';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import type { LineSearchTrial } from '../engine/infer/lbfgs.ts';
import { commandExitCode, UserError, type Command } from './command.ts';
import { parseOptions } from './args.ts';
import { loadConfig } from '../platform/node/config.ts';
import { openFits, remoteSettings } from '../platform/node/files.ts';
import type { OpenOptions } from '../engine/data/fits/file.ts';
import { gpuBudgetBytes, planDevice } from './gpu-budget.ts';
import { createProgress } from './progress.ts';
import { peakRssBytes } from './host-memory.ts';
import { acquireLock } from '../platform/node/lock.ts';
import { refuseWhileAssembling, subtileLockName } from '../platform/node/output-locks.ts';
import { subtileFitMismatch, subtileOutputsComplete, writeSubtileOutputs } from '../platform/node/outputs.ts';
import { acquireDevice, parseDeviceFlags, detectRuntime, runtimeVersion } from '../platform/acquire.ts';
import { manifestFileName, parseManifest } from '../engine/tiling/manifest.ts';
import { runSubtile } from '../engine/subtile/run.ts';
import { subtileProducts } from '../engine/subtile/products.ts';
import { hash64 } from '../engine/util/hash.ts';
import { fitSettingsHash, type FitMethod } from '../engine/config/fit-settings.ts';
import { SHINE_VERSION } from '../engine/version.ts';
import { subtileOutputNames } from '../engine/outputs/names.ts';
import { readStartValues } from './start-from.ts';

const USAGE = `usage: subtile --tile-id T --sub-tile-row R --sub-tile-col C --config F
               [--method map|vi|nuts] [--manifest M] [--out DIR] [--force] [--quiet] [--json]
               [--adapter X] [--limits adapter|default] [--line-search-log FILE]
               [--start-from PATH]
  --start-from PATH       start the fit at an earlier run's values instead of the catalog's: a
                          folder of products (its params_*.fits tables, this sub-tile's shear_*.fits)
                          or one PARAMS table; priors unchanged (docs/subtile.md "Starting from an
                          earlier fit"). Complete outputs in --out are still skipped without --force
  --line-search-log FILE  every MAP line-search trial (step, loss, directional derivative) as
                          JSON lines, to see why a fit stalls (docs/inference.md "When MAP stalls")`;

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Progress of every stage with the time left (cli/progress.ts): a rewritten line on a terminal, plain lines in a log. */
function progressReporter(quiet: boolean) {
  const tty = !!(globalThis as { process?: { stderr?: { isTTY?: boolean } } }).process?.stderr?.isTTY;
  return createProgress({ write: (t) => void process.stderr.write(t), tty, prefix: 'subtile', quiet, rss: () => process.memoryUsage().rss });
}

export { subtileLockName };

export const subtileCommand: Command = {
  summary: 'run one sub-tile: manifest → ExposureSet → MAP + Laplace → shear/params/diagnostics/metadata',
  async run(argv) {
    const t0 = performance.now();
    const flags = parseDeviceFlags(argv);
    const { opts } = parseOptions(
      flags.rest,
      { 'tile-id': 'integer', 'sub-tile-row': 'integer', 'sub-tile-col': 'integer', config: 'string', method: 'string', manifest: 'string', out: 'string', force: 'boolean', quiet: 'boolean', json: 'boolean', help: 'boolean', 'line-search-log': 'string', 'start-from': 'string' },
      USAGE,
    );
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    for (const k of ['tile-id', 'sub-tile-row', 'sub-tile-col', 'config']) if (opts[k] === undefined) throw new UserError(`--${k} is required\n${USAGE}`);
    const tileId = opts['tile-id'] as number;
    const row = opts['sub-tile-row'] as number;
    const col = opts['sub-tile-col'] as number;
    if (![tileId, row, col].every((v) => Number.isInteger(v) && v >= 0)) throw new UserError('--tile-id, --sub-tile-row and --sub-tile-col must be non-negative integers');
    const method = (opts.method as string | undefined) ?? undefined;
    if (method !== undefined && !['map', 'vi', 'nuts'].includes(method)) throw new UserError(`--method must be map, vi or nuts, got '${method}'`);
    const quiet = !!opts.quiet;
    const log = (s: string) => quiet || console.error(s);

    const configFile = opts.config as string;
    const cfg = await loadConfig(configFile);
    const [rows, cols] = cfg.distributed.sub_tile_grid;
    if (row >= rows || col >= cols) throw new UserError(`sub-tile (${row}, ${col}) is outside the ${rows}×${cols} grid (distributed.sub_tile_grid)`);
    const outDir = (opts.out as string | undefined) ?? cfg.distributed.output_dir;

    // one run per sub-tile: a second run on the same outputs stops here, naming the lock and its holder
    await mkdir(outDir, { recursive: true }).catch((e) => {
      throw new UserError(`cannot create the output folder ${outDir}: ${(e as Error).message}`);
    });
    const lock = await acquireLock(join(outDir, subtileLockName(tileId, row, col)), { what: `sub-tile (${tileId}, ${row}, ${col}) in ${outDir}`, warn: (l) => console.error(`subtile: ${l}`) });
    try {
      // …and not while Stage 3 reads the folder (its lock is looked at once ours is held: docs/run.md)
      await refuseWhileAssembling(outDir, `sub-tile (${tileId}, ${row}, ${col}) in ${outDir}`, (l) => console.error(`subtile: ${l}`));
      if (!opts.force) {
        const st = await subtileOutputsComplete(outDir, tileId, row, col);
        // complete outputs are this run's result only when fitted with the same method and resolved
        // settings: a changed default leaves the config text alone (engine/config/fit-settings.ts)
        const want = (method ?? cfg.inference.method) as FitMethod;
        if (st.complete) {
          const why = await subtileFitMismatch(outDir, tileId, row, col, cfg, want);
          if (why === null) {
            log(`subtile: (${tileId}, ${row}, ${col}) is complete in ${outDir}; skipped (use --force to redo)`);
            return 0;
          }
          log(`subtile: (${tileId}, ${row}, ${col}) has outputs ${why}: running again`);
        }
      }

      // manifest (Stage 1 for this sub-tile when missing)
      let manifestFile = opts.manifest as string | undefined;
      if (!manifestFile) {
        const dir = join(cfg.distributed.scratch_dir, `tile_${tileId}`);
        manifestFile = join(dir, manifestFileName(tileId, row, col));
        if (!(await exists(manifestFile))) {
          log(`subtile: no manifest ${manifestFile}: running Stage 1 for this sub-tile`);
          const prepare = (await import('./commands/prepare.ts')).default;
          const rc = await prepare.run(['--config', configFile, '--tile-id', String(tileId), '--sub-tile', `${row},${col}`, '--out', dir, ...(quiet ? ['--quiet'] : [])]);
          if (rc !== 0) return rc;
        }
      }
      let text: string;
      try {
        text = await readFile(manifestFile, 'utf8');
      } catch (e) {
        throw new UserError(`cannot read manifest ${manifestFile}: ${(e as Error).message}`);
      }
      const manifest = parseManifest(text, manifestFile);
      if (manifest.tile_id !== tileId || manifest.sub_tile_row !== row || manifest.sub_tile_col !== col) {
        throw new UserError(`${manifestFile}: is for (${manifest.tile_id}, ${manifest.sub_tile_row}, ${manifest.sub_tile_col}), not (${tileId}, ${row}, ${col})`);
      }

      // a warm start's tables, read (and refused with the file named) before any device is taken
      const startFrom = opts['start-from'] as string | undefined;
      const start = startFrom ? await readStartValues(startFrom, { tileId, row, col }) : undefined;

      const acquireOpts = { adapter: flags.adapter ?? (cfg.device.adapter === 'auto' ? undefined : cfg.device.adapter), limits: flags.limits, quiet };
      const acq = await acquireDevice(acquireOpts);
      // devices taken after a lost one (the engine rebuilds on them), released with the first
      const replacements: Array<{ release: () => void }> = [];
      const recoverDevice = async () => {
        const next = await acquireDevice({ ...acquireOpts, quiet: true });
        replacements.push(next);
        return next.device;
      };
      try {
        // http(s) inputs go through the configured cache, concurrency bound and retries (docs/remote-data.md)
        const remote = remoteSettings(cfg.remote, cfg.source.dir);
        const progress = progressReporter(quiet);
        const lsLog = opts['line-search-log'] as string | undefined;
        // written as they come (a stalled fit is the one to look at while it runs)
        const lsOut = lsLog ? createWriteStream(lsLog) : null;
        const result = await runSubtile(acq.device, manifest, cfg, { openFits: (p: string, o?: OpenOptions) => openFits(p, { ...o, remote }) }, {
          method: method as 'map' | 'vi' | 'nuts' | undefined,
          recoverDevice,
          onProgress: progress,
          log,
          maxGpuBytes: gpuBudgetBytes(acq, cfg.device.memory_budget_gb),
          planDevice: planDevice(acq, cfg.device.memory_budget_gb),
          // the full-size observed / mask images are kept only for the diagnostics PNG (host memory, docs/plan.md)
          images: cfg.distributed.save_diagnostics,
          peakRssBytes,
          ...(start ? { start } : {}),
          ...(lsOut ? { onLineSearch: (t: LineSearchTrial) => void lsOut.write(`${JSON.stringify(t)}\n`) } : {}),
        });
        if (lsOut) await new Promise<void>((res) => lsOut.end(res));
        const tWrite = performance.now();
        const configText = await readFile(configFile, 'utf8');
        const products = subtileProducts(result, manifest, {
          manifestFile,
          configFile: cfg.source.file || configFile,
          configHash: hash64(configText),
          fitSettingsHash: fitSettingsHash(cfg, (method ?? cfg.inference.method) as FitMethod),
          created: new Date().toISOString(),
          softwareVersion: SHINE_VERSION,
          adapter: { label: acq.label, backend: acq.backend, featureLevel: acq.featureLevel },
          runtime: { name: detectRuntime(), version: runtimeVersion() },
          saveDiagnostics: cfg.distributed.save_diagnostics,
          totalMs: performance.now() - t0,
        });
        progress('write', 0, 4);
        await writeSubtileOutputs(outDir, tileId, row, col, products);
        progress('write', 4, 4);
        progress.end();
        const writeMs = performance.now() - tWrite;
        const summary = {
          tileId,
          row,
          col,
          status: result.status,
          method: result.method,
          g1: result.g1,
          g2: result.g2,
          g1Err: result.g1Err,
          g2Err: result.g2Err,
          nSources: result.nSourcesCore,
          nQuadrants: result.nQuadrants,
          converged: result.converged,
          iterations: result.iterations,
          out: outDir,
          seconds: (performance.now() - t0) / 1000,
          writeMs,
          warnings: result.warnings,
          ...(result.posterior ? { posterior: result.posterior, map: result.mapEstimate } : {}),
        };
        if (opts.json) console.log(JSON.stringify(summary));
        else if (result.status === 'empty') console.log(`subtile (${tileId}, ${row}, ${col}): empty — ${result.emptyReason}; products written to ${outDir}`);
        else {
          console.log(`subtile (${tileId}, ${row}, ${col}): ${result.nSourcesCore} core sources, ${result.nQuadrants} quadrants, ${result.method} ${result.converged ? 'converged' : 'NOT converged'} in ${result.iterations} iterations`);
          console.log(`  g1 = ${result.g1.toFixed(5)} ± ${result.g1Err.toFixed(5)}   g2 = ${result.g2.toFixed(5)} ± ${result.g2Err.toFixed(5)}${result.method === 'map' ? '' : ' (posterior mean ± sd)'}`);
          const pd = result.posterior;
          if (pd && result.method === 'nuts') {
            console.log(`  NUTS: ${pd.chains} chain(s) × ${pd.draws} draws; R̂ g1 ${pd.rhatG1.toFixed(4)} g2 ${pd.rhatG2.toFixed(4)} (max ${pd.maxRhat.toFixed(4)}, ${pd.maxRhatParam}); bulk ESS g1 ${pd.essBulkG1.toFixed(0)} g2 ${pd.essBulkG2.toFixed(0)}; ${pd.divergences} divergences; ${(pd.msPerEssG1 / 1000).toFixed(3)} s per effective sample of g1`);
          }
          if (pd && result.method === 'vi') console.log(`  VI: final −ELBO ${result.convergence.toFixed(3)}; ${pd.draws} guide draws`);
          if (result.mapEstimate) console.log(`  (MAP + Laplace: g1 = ${result.mapEstimate.g1.toFixed(5)} ± ${result.mapEstimate.g1Err.toFixed(5)}   g2 = ${result.mapEstimate.g2.toFixed(5)} ± ${result.mapEstimate.g2Err.toFixed(5)})`);
          console.log(`  products in ${outDir} (${summary.seconds.toFixed(1)} s on ${acq.label})`);
          for (const w of result.warnings) console.error(`subtile: warning: ${w}`);
        }
        return 0;
      } finally {
        for (const r of replacements) r.release();
        acq.release();
      }
    } finally {
      await lock.release();
    }
  },
};

export default subtileCommand;

// Entry point when run directly (`deno run -A cli/subtile.ts …`, `npx tsx cli/subtile.ts …`).
const main = (import.meta as { main?: boolean }).main ?? (typeof process !== 'undefined' && process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href);
if (main) {
  const code = await commandExitCode(() => subtileCommand.run(process.argv.slice(2)));
  process.exit(code);
}
