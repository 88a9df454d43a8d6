/**
 * `shine calibrate --preset P --seeds 1-20 [--g 0.02] [--rotations 4] …`: measures the
 * multiplicative and additive shear bias of the real pipeline (docs/calibrate.md). Per seed, 4·R
 * simulations with the identical scene and noise deviates — shear (±g, 0), (0, ±g), each with the
 * intrinsic ellipticities rotated by 180°·k/R, k = 0 … R−1 (R = 4: 0°, 45°, 90°, 135°; R = 2: 0°,
 * 90°) — are simulated in this process, prepared (Stage 1)
 * and fitted by Stage 2 (`cli/subtile.ts` child processes, `--jobs` at a time, or SLURM arrays
 * from engine/orchestrate/slurm.ts), then engine/calibrate turns the shear products into m, c,
 * leakage, pulls and bookkeeping: calibration.json, calibration.fits, calibration.png.
 *
 * Every simulation and every fit is a product on disk: a re-run skips what is complete (a
 * simulation is complete when its marker simulation.json exists, written last; a fit when its
 * four products are complete and made with the same derived configuration).
 */
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { UserError, type Command } from '../command.ts';
import { parseOptions } from '../args.ts';
import { commandFromEnv, int, slurmResources, slurmRunner, writeFiles, SLURM_OPTION_SPEC } from '../survey-options.ts';
import { nodeSimOutput, workerRenderer } from './simulate.ts';
import { checkGalaxyProfile, simulate, planSimulation, type SimulateOptions } from '../../engine/sim/simulate.ts';
import { simProfileFromFlags } from '../../engine/sim/galaxy-profile.ts';
import { profileLabel } from '../../engine/model/profile.ts';
import { PRESETS, presetRevision, type PresetName } from '../../engine/sim/presets.ts';
import { parseConfig } from '../../engine/config/parse.ts';
import { fitMismatch, fitSettingsHash, type FittedWith } from '../../engine/config/fit-settings.ts';
import type { ShineConfig } from '../../engine/config/schema.ts';
import { openFits, writeFileAtomic } from '../../platform/node/files.ts';
import { subtileOutputsComplete } from '../../platform/node/outputs.ts';
import { failureMarkerPath, readPrepared, runLogged, subtileLogPath, onPath } from '../../platform/node/executor-local.ts';
import { isEmptySubtile, type PreparedSubtile, type SubtileTask } from '../../engine/orchestrate/plan.ts';
import { slurmPlan } from '../../engine/orchestrate/slurm.ts';
import { fitQuality } from '../../engine/outputs/quality.ts';
import { readShearRow, SHEAR_EXTNAME } from '../../engine/outputs/shear.ts';
import { subtileOutputNames } from '../../engine/outputs/names.ts';
import { SHINE_VERSION } from '../../engine/version.ts';
import { hash64 } from '../../engine/util/hash.ts';
import {
  designMembers, memberLabel, memberShear, memberText, memberRotationDeg, memberRotated, parseSeeds, formatSeeds, parseSubtiles,
  checkShearAmplitude, checkRotations, DEFAULT_ROTATIONS, type Member, type Rotations,
} from '../../engine/calibrate/design.ts';
import { deriveConfig, parseYamlMapping, PRIORS_CHOICES, type PriorsChoice } from '../../engine/calibrate/config.ts';
import { mapShearFits, mapShearFromMetadata, offModeTally, oversizeTally, shearBlindTally, summarize, type CalibrationFit, type CalibrationSummary, type FitStatus, type Estimate } from '../../engine/calibrate/stats.ts';
import { calibrationFits } from '../../engine/calibrate/table.ts';
import { calibrationPng } from '../../engine/calibrate/plot.ts';
import { checkDisjointSeeds, parseIncludedReport, reportInputs, type IncludedReport } from '../../engine/calibrate/include.ts';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const USAGE = `usage: shine calibrate --preset ci|minitile|subtile|tile --seeds LIST [--g G] [--rotations 2|4]
                       [--method map|vi|nuts] [--priors default|shine] [--config-overrides FILE.yaml]
                       [--noise-free] [--psf-oversampling Q] [--position-angle DEG] [--sim-spergel-nu NU]
                       [--sim-profile exponential|spergel|spergel-per-galaxy|bulge-disk] [--sim-bulge-nu NU] [--sim-omit-undetected]
                       [--sub-tiles all|R,C;R,C…]
                       [--jobs N] [--retries N]
                       [--executor local|slurm] [--bootstrap B] [--bootstrap-seed S] [--out DIR]
                       [--include FILE[,FILE…]] [--json] [--report-only] [--quiet]
  --seeds LIST        seeds and ranges, e.g. 1-20 or 1,2,5 (4 × R simulations per seed)
  --g G               shear amplitude of the simulations, 0 < |g| < 1 (default 0.02)
  --rotations R       intrinsic shapes of each (component, sign) rotated by 180°·k/R, k = 0 … R−1:
                      4 (default): 0°, 45°, 90°, 135° (shape noise cancelled to O(e⁴));
                      2: 0°, 90° (to O(e²)); a folder made without this option has 2
  --priors P          default: Stage 2 with the schema's default priors (gal.priors removed);
                      shine: SHINE's priors written explicitly (default: default)
  --config-overrides F  YAML deep-merged into every derived Stage-2 config (last)
  --noise-free        simulations without pixel noise
  --psf-oversampling Q  PSF grids sampled Q times per pixel (shine simulate --psf-oversampling):
                      the renderer then folds the alias orders they reach (default 1: native)
  --position-angle DEG  instrument position angle of the simulations (shine simulate
                      --position-angle; default: the preset's, 7°): the same sky through a focal
                      plane turned by another angle, to tell biases fixed to the pixel grid or the
                      PSF from biases fixed to the sky
  --sim-spergel-nu NU simulated galaxies are Spergel profiles of index NU (shine simulate --profile
                      spergel); the fits keep the configuration's profile (exponential unless
                      --config-overrides sets gal.profile): m and c then measure the model bias
  --sim-profile P     simulated galaxy profile (shine simulate --profile): exponential, spergel
                      (with --sim-spergel-nu), spergel-per-galaxy (ν drawn per galaxy) or bulge-disk
                      (exponential disk + Spergel bulge of index --sim-bulge-nu, default -0.6)
  --sim-omit-undetected  objects the MER catalog does not list (catalog S/N < 3) are left out of
                      the pixels (shine simulate --omit-undetected): with --noise-free, the
                      estimator's and the renderer's bias alone; calibrate-compare against the
                      same seeds with them gives the undetected objects' share of m and c
  --sub-tiles S       sub-tiles to fit (default all; empty ones are listed, not fitted)
  --jobs N            Stage-2 processes at once (local executor; default 1)
  --executor E        local (default), or slurm: Stage-2 arrays submitted per simulation with
                      shine run's SLURM code; then collect with --report-only
  --report-only       no simulation, no fit: collect what is on disk and write the report
  --include FILES     pool the fits of other folders' calibration.json (comma-separated) into
                      this report: same settings, no seed in two places
  --out DIR           calibration folder (default ./calibration)
  slurm: [--dry-run] [--partition P] [--gpus-per-task N] [--cpus-per-task N] [--mem M] [--time T]
         [--cpu-partition P] [--cpu-mem M] [--cpu-time T] [--max-array-size N] [--job-name S]
  Options left out are taken from DIR/calibrate_run.json when it exists; preset, g, rotations,
  method, priors, noise and overrides must match it (use another --out to change them).`;

const RUN_FORMAT = 'shine-calibrate-run';

/** The off-mode warning of a fit's metadata (engine/outputs/quality.ts), as CalibrationFit.offModeSigma. */
function offModeOf(meta: unknown): { offModeSigma?: number } {
  const q = fitQuality(meta);
  return q.offMode ? { offModeSigma: q.offModeSigma } : {};
}
const SIM_MARKER = 'simulation.json';
const DERIVED_CONFIG = 'config.calibrate.yaml';

/** What fixes the simulations and the fits of a calibration folder. */
interface RunRecord {
  format: typeof RUN_FORMAT;
  version: 1;
  preset: PresetName;
  /** The preset's scene revision its simulations were made with (engine/sim/presets.ts); absent: 1. */
  preset_revision?: number;
  g: number;
  /** R; absent in folders made before `--rotations` existed: 2 (0°, 90°). */
  rotations?: Rotations;
  method: 'map' | 'vi' | 'nuts';
  priors: PriorsChoice;
  noise: boolean;
  /** PSF samples per pixel of the simulated PSF grids; absent in folders made before the option: 1. */
  psf_oversampling?: number;
  /** Instrument position angle of the simulations (deg); absent in folders made before the option: the preset's. */
  position_angle?: number;
  /** Spergel index of the simulated galaxies; absent or null: exponential. */
  sim_spergel_nu?: number | null;
  /** Simulated profile with per-galaxy parameters ('spergel-per-galaxy', 'bulge-disk'); absent or null: none. */
  sim_profile?: string | null;
  /** Bulge index of the 'bulge-disk' simulations. */
  sim_bulge_nu?: number | null;
  /** Objects the catalog does not list left out of the pixels (--sim-omit-undetected); absent: false. */
  sim_omit_undetected?: boolean;
  overrides: { file: string; hash: string; doc: Record<string, unknown> } | null;
  /** Of the last invocation (defaults for the next one). */
  seeds: number[];
  sub_tiles: Array<[number, number]> | 'all';
  bootstrap: number;
  bootstrap_seed: number;
  /**
   * The priors in effect at each invocation that simulated or fitted (with --priors default they
   * are the schema's defaults of the software that ran: a change between invocations is reported).
   */
  history?: Array<{ time: string; executor: string; software_version: string; effective_priors: unknown }>;
}

interface Sim {
  seed: number;
  member: Member;
  label: string;
  /** Rotation of the intrinsic shapes (degrees), 180·k/R. */
  rotationDeg: number;
  dir: string;
  shear: [number, number];
  /** Derived configuration file, scratch and output folders, run folder (logs, failure markers). */
  config: string;
  scratchDir: string;
  outputDir: string;
  runDir: string;
}

function fail(msg: string): never {
  throw new UserError(msg);
}

async function readJson<T>(path: string): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

const enc = (s: string) => new TextEncoder().encode(s);

/** The run record a report of included fits alone takes from the first included report (nothing of its own: no seeds). */
async function recordFromReport(file: string): Promise<RunRecord> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    fail(`--include ${file}: cannot read it (${(e as Error).message})`);
  }
  const r = reportInputs(text, file);
  const s = r.settings;
  return {
    format: RUN_FORMAT, version: 1, preset: s.preset as PresetName, preset_revision: s.preset_revision, g: s.g, rotations: s.rotations, method: s.method as RunRecord['method'], priors: s.priors as PriorsChoice,
    noise: s.noise, psf_oversampling: s.psf_oversampling, position_angle: s.position_angle, sim_spergel_nu: s.sim_spergel_nu, sim_profile: s.sim_profile, sim_omit_undetected: s.sim_omit_undetected,
    overrides: r.overrides, seeds: [], sub_tiles: s.sub_tiles, bootstrap: r.bootstrap?.replicates ?? 2000, bootstrap_seed: r.bootstrap?.seed ?? 1,
  };
}

/** What this invocation did, with snake_case keys (JSON outputs). */
function snakeCounts(c: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k.replace(/[A-Z]/g, (x) => `_${x.toLowerCase()}`), v]));
}

function f(v: number, d = 5): string {
  return Number.isFinite(v) ? (v >= 0 ? ' ' : '') + v.toFixed(d) : '   n/a';
}

function pct(v: number): string {
  return Number.isFinite(v) ? `${(100 * v).toFixed(1)} %` : 'n/a';
}

/** The summary table printed at the end. */
export function summaryText(s: CalibrationSummary, head: string): string {
  const E = s.estimates;
  const R = s.pullsByRealisation.all;
  const row = (name: string, e: Estimate) => `  ${name.padEnd(11)} ${f(e.mean)}   ± ${Number.isFinite(e.err) ? e.err.toFixed(5) : 'n/a    '} (bootstrap)   ± ${Number.isFinite(e.sem) ? e.sem.toFixed(5) : 'n/a'} (sets)`;
  const b = s.fits.byStatus;
  const lines = [
    head,
    `  sets: ${s.nSetsComplete} complete of ${s.nSets} (seeds × sub-tiles${s.nSetsEmpty ? `; ${s.nSetsEmpty} empty sub-tile set(s) not fitted` : ''}), ${s.bootstrap.seeds} seed(s) with a complete set`,
    `  fits: ${s.fits.total} planned, ${s.fits.attempted} with sources: ${b.ok} ok, ${b.nan} NaN shear, ${b.failed} failed, ${b.missing} missing, ${b.stale} stale; ${b.empty} empty`,
    row('m1', E.m1),
    row('m2', E.m2),
    row('c1', E.c1),
    row('c2', E.c2),
    row('g1 → ĝ2', E.leak1to2),
    row('g2 → ĝ1', E.leak2to1),
    ...(s.nSetsComplete > s.bootstrap.seeds ? [weightedLine(s)] : []),
    `  pull (ĝ−g)/σ̂: mean ${f(s.pulls.all.mean, 3)}, width (sd) ${f(s.pulls.all.sd, 3)}, robust width ${f(s.pulls.all.robustSd, 3)}  (${s.pulls.all.n} pulls)`,
    `  by realisation (seed, sub-tile, rotation: its ±g fits share noise and shapes): width ${f(R.sd, 3)} ± ${f(R.sdErr, 3)} (bootstrap over seeds), mean ${f(R.mean, 3)}  (${R.n} values of ${R.nFits} fits)`,
    `  converged ${pct(s.fits.fracConverged)}, G1_ERR and G2_ERR finite ${pct(s.fits.fracErrFinite)} (of ${s.fits.attempted} fits with sources)`,
  ];
  if (s.bootstrap.seeds < 2) lines.push('  (bootstrap errors need ≥ 2 seeds; "sets" errors treat every sub-tile set as independent)');
  const show = s.problems.slice(0, 10);
  for (const p of show) lines.push(`  ${p.status.toUpperCase()}: seed ${p.seed} ${p.member} sub-tile (${p.row}, ${p.col})${p.reason ? `: ${p.reason}` : ''}`);
  if (s.problems.length > show.length) lines.push(`  … ${s.problems.length - show.length} more listed in calibration.json`);
  for (const p of s.noErrors.slice(0, 5)) lines.push(`  NO ERRORS: seed ${p.seed} ${p.member} sub-tile (${p.row}, ${p.col})${p.reason ? `: ${p.reason}` : ''}`);
  if (s.noErrors.length > 5) lines.push(`  … ${s.noErrors.length - 5} more fits without errors listed in calibration.json`);
  return lines.join('\n');
}

/** One line: m and c with each set weighted by its fits' mean 1/σ̂² (shown when a seed has several sets). */
export function weightedLine(s: CalibrationSummary): string {
  const W = s.estimatesWeighted;
  const e = (x: Estimate) => `${f(x.mean)} ± ${Number.isFinite(x.err) ? x.err.toFixed(5) : 'n/a'}`;
  return `  weighted by 1/σ̂² per set: m1 ${e(W.m1)}, m2 ${e(W.m2)}, c1 ${e(W.c1)}, c2 ${e(W.c2)} (bootstrap)`;
}

/** One line: the MAP's m and c on the same fits (when G1/G2 are the Laplace marginal's or VI's / NUTS's posterior mean). */
export function mapLine(s: CalibrationSummary): string {
  const e = s.estimates;
  const q = (n: string, x: Estimate) => `${n} ${f(x.mean)} ± ${Number.isFinite(x.err) ? x.err.toFixed(5) : 'n/a'}`;
  return `  the MAP's shear of the same fits: ${q('m1', e.m1)}, ${q('m2', e.m2)}, ${q('c1', e.c1)}, ${q('c2', e.c2)} (bootstrap)`;
}

const command: Command = {
  summary: 'shear calibration: ±g simulations with rotated intrinsic shapes (2- or 4-ring) through the real pipeline → m, c, pulls (calibration.json/.fits/.png)',
  async run(argv) {
    const t0 = performance.now();
    const { opts, positional } = parseOptions(
      argv,
      {
        preset: 'string', seeds: 'string', g: 'string', rotations: 'string', priors: 'string', 'config-overrides': 'string',
        'noise-free': 'boolean', 'psf-oversampling': 'string', 'position-angle': 'string', 'sim-spergel-nu': 'string', 'sim-profile': 'string', 'sim-bulge-nu': 'string', 'sim-omit-undetected': 'boolean', 'sub-tiles': 'string', jobs: 'string', executor: 'string', bootstrap: 'string', 'bootstrap-seed': 'string',
        ...SLURM_OPTION_SPEC,
        out: 'string', include: 'string', json: 'boolean', 'report-only': 'boolean', quiet: 'boolean', help: 'boolean', 'dry-run': 'boolean',
      },
      USAGE,
    );
    if (opts.help) {
      console.log(USAGE);
      return 0;
    }
    if (positional.length) fail(`unexpected argument '${positional[0]}'\n${USAGE}`);
    const quiet = !!opts.quiet || !!opts.json;
    const log = (s: string) => {
      if (!quiet) console.error(s);
    };
    const outDir = resolve(opts.out !== undefined ? String(opts.out) : 'calibration');
    const runFile = join(outDir, 'calibrate_run.json');
    let prev = await readJson<RunRecord>(runFile);
    if (prev && prev.format !== RUN_FORMAT) fail(`${runFile}: not a shine calibrate run record`);
    const reportOnly = !!opts['report-only'];
    const includeFiles = opts.include !== undefined ? String(opts.include).split(',').map((x) => x.trim()).filter((x) => x !== '') : null;
    if (includeFiles && !includeFiles.length) fail('--include is empty (expected FILE[,FILE…], other folders\' calibration.json)');
    // --report-only --include into a folder that ran nothing: a report of the included fits alone,
    // with the first included report's settings
    const pooledOnly = reportOnly && !prev && !!includeFiles;
    if (pooledOnly) {
      if (opts.seeds !== undefined) fail(`--seeds: ${outDir} ran nothing (no ${runFile}), so a report of the included fits alone has no seeds of its own; leave --seeds out`);
      prev = await recordFromReport(resolve(includeFiles![0]));
    }
    if (reportOnly && !prev) fail(`--report-only: ${runFile} does not exist (nothing was run in ${outDir})`);

    // ---- options (left out: from the run record, else defaults) ----
    const presetName = opts.preset !== undefined ? String(opts.preset) : (prev?.preset ?? fail(`--preset is required\n${USAGE}`));
    if (!(presetName in PRESETS)) fail(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got '${presetName}'`);
    const basePreset = PRESETS[presetName as PresetName];
    const grid: [number, number] = [basePreset.grid, basePreset.grid];
    let seeds: number[];
    if (opts.seeds !== undefined) seeds = parseSeeds(String(opts.seeds));
    else seeds = prev?.seeds ?? fail(`--seeds is required (e.g. --seeds 1-20)\n${USAGE}`);
    const g = opts.g !== undefined ? checkShearAmplitude(Number(String(opts.g).trim() === '' ? NaN : opts.g), String(opts.g)) : (prev?.g ?? 0.02);
    // a run record without `rotations` predates the option: its simulations are the 2-ring
    const prevRotations: Rotations | undefined = prev ? (prev.rotations ?? 2) : undefined;
    const rotations: Rotations = opts.rotations !== undefined
      ? checkRotations(String(opts.rotations).trim() === '' ? NaN : Number(opts.rotations), String(opts.rotations))
      : (prevRotations ?? DEFAULT_ROTATIONS);
    const method = (opts.method !== undefined ? String(opts.method) : (prev?.method ?? 'map')) as RunRecord['method'];
    if (!['map', 'vi', 'nuts'].includes(method)) fail(`--method must be map, vi or nuts, got '${method}'`);
    const priors = (opts.priors !== undefined ? String(opts.priors) : (prev?.priors ?? 'default')) as PriorsChoice;
    if (!PRIORS_CHOICES.includes(priors)) fail(`--priors must be default or shine, got '${priors}'`);
    const noise = opts['noise-free'] ? false : (prev?.noise ?? true);
    const omitUndetected = opts['sim-omit-undetected'] ? true : (prev?.sim_omit_undetected ?? false);
    const psfOversampling = int(opts['psf-oversampling'], 'psf-oversampling', prev?.psf_oversampling ?? 1, 1);
    let positionAngle = prev?.position_angle ?? basePreset.pa;
    if (opts['position-angle'] !== undefined) {
      const raw = String(opts['position-angle']).trim();
      positionAngle = raw === '' ? NaN : Number(raw);
      if (!(positionAngle >= -360 && positionAngle <= 360)) fail(`--position-angle must be an angle from -360 to 360 degrees, got '${opts['position-angle']}'`);
    }
    const preset = positionAngle === basePreset.pa ? basePreset : { ...basePreset, pa: positionAngle };
    let simNu: number | null = prev?.sim_spergel_nu ?? null;
    if (opts['sim-spergel-nu'] !== undefined) {
      const raw = String(opts['sim-spergel-nu']).trim();
      simNu = raw === '' ? NaN : Number(raw);
      if (!Number.isFinite(simNu)) fail(`--sim-spergel-nu must be a number, got '${opts['sim-spergel-nu']}'`);
    }
    let simProfileName: string | null = prev?.sim_profile ?? null;
    let simBulgeNu: number | null = prev?.sim_bulge_nu ?? null;
    if (opts['sim-profile'] !== undefined) {
      const n = String(opts['sim-profile']);
      if (!['exponential', 'spergel', 'spergel-per-galaxy', 'bulge-disk'].includes(n)) fail(`--sim-profile must be exponential, spergel, spergel-per-galaxy or bulge-disk, got '${n}'`);
      if (n === 'spergel' && simNu === null) fail('--sim-profile spergel needs --sim-spergel-nu NU');
      if (n !== 'spergel' && opts['sim-spergel-nu'] !== undefined) fail(`--sim-spergel-nu needs --sim-profile spergel (got --sim-profile ${n})`);
      if (n !== 'spergel') simNu = null;
      simProfileName = n === 'spergel-per-galaxy' || n === 'bulge-disk' ? n : null;
    }
    if (opts['sim-bulge-nu'] !== undefined) {
      const raw = String(opts['sim-bulge-nu']).trim();
      simBulgeNu = raw === '' ? NaN : Number(raw);
      if (simProfileName !== 'bulge-disk') fail('--sim-bulge-nu needs --sim-profile bulge-disk');
      if (!(simBulgeNu >= -0.85 && simBulgeNu <= 4)) fail(`--sim-bulge-nu must be a number from -0.85 to 4 (GalSim's Spergel range), got '${opts['sim-bulge-nu']}'`);
    }
    if (simProfileName !== 'bulge-disk') simBulgeNu = null;
    const simProfile = simProfileName
      ? simProfileFromFlags(simProfileName, undefined, simBulgeNu ?? undefined, '--sim-profile')
      : simNu === null
        ? undefined
        : checkGalaxyProfile({ type: 'spergel', nu: simNu });
    // recorded in markers only for the profiles with per-galaxy parameters (older folders stay valid)
    const simProfileKey = simProfileName ? profileLabel(simProfile) : null;
    let overrides: RunRecord['overrides'] = prev?.overrides ?? null;
    if (opts['config-overrides'] !== undefined) {
      const file = resolve(String(opts['config-overrides']));
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        fail(`cannot read --config-overrides ${file}: ${(e as Error).message}`);
      }
      overrides = { file, hash: hash64(text), doc: parseYamlMapping(text, file) };
    }
    const subSel = opts['sub-tiles'] !== undefined ? parseSubtiles(String(opts['sub-tiles']), grid) : prev ? (prev.sub_tiles === 'all' ? null : prev.sub_tiles) : null;
    const jobs = int(opts.jobs, 'jobs', 1, 1);
    const retries = int(opts.retries, 'retries', 2, 0);
    const bootstrap = int(opts.bootstrap, 'bootstrap', prev?.bootstrap ?? 2000, 1);
    const bootstrapSeed = int(opts['bootstrap-seed'], 'bootstrap-seed', prev?.bootstrap_seed ?? 1, 0);
    const executor = opts.executor !== undefined ? String(opts.executor) : 'local';
    if (executor !== 'local' && executor !== 'slurm') fail(`--executor must be local or slurm, got '${executor}'`);
    if (opts['dry-run'] && executor !== 'slurm') fail('--dry-run applies to --executor slurm only');

    // the scenes this software simulates for the preset, and those of this folder: a report of an
    // older folder reads its own; simulating more into it would mix two populations
    const simRevision = presetRevision(basePreset);
    const folderRevision = prev ? (prev.preset_revision ?? 1) : simRevision;
    if (prev) {
      const diff: string[] = [];
      if (prev.preset !== presetName) diff.push(`preset ${prev.preset} → ${presetName}`);
      if (!reportOnly && folderRevision !== simRevision) diff.push(`preset revision ${folderRevision} → ${simRevision} (this software simulates ${presetName} differently: docs/simulate.md; --report-only still reads it)`);
      if (prev.g !== g) diff.push(`g ${prev.g} → ${g}`);
      if (prevRotations !== rotations) diff.push(`rotations ${prevRotations} → ${rotations}`);
      if (prev.method !== method) diff.push(`method ${prev.method} → ${method}`);
      if (prev.priors !== priors) diff.push(`priors ${prev.priors} → ${priors}`);
      if (prev.noise !== noise) diff.push(`noise ${prev.noise ? 'on' : 'off'} → ${noise ? 'on' : 'off'}`);
      if ((prev.psf_oversampling ?? 1) !== psfOversampling) diff.push(`PSF oversampling ${prev.psf_oversampling ?? 1} → ${psfOversampling}`);
      if ((prev.position_angle ?? basePreset.pa) !== positionAngle) diff.push(`position angle ${prev.position_angle ?? basePreset.pa}° → ${positionAngle}°`);
      if ((prev.sim_profile ?? null) !== simProfileName || (prev.sim_bulge_nu ?? null) !== simBulgeNu) diff.push(`simulated profile ${prev.sim_profile ?? 'exponential/spergel'} → ${simProfileName ?? 'exponential/spergel'}`);
      if ((prev.sim_spergel_nu ?? null) !== simNu) diff.push(`simulated profile ${prev.sim_spergel_nu ?? 'exponential'} → ${simNu ?? 'exponential'}`);
      if ((prev.sim_omit_undetected ?? false) !== omitUndetected) diff.push(`undetected objects ${prev.sim_omit_undetected ? 'omitted' : 'in the pixels'} → ${omitUndetected ? 'omitted' : 'in the pixels'}`);
      if ((prev.overrides?.hash ?? null) !== (overrides?.hash ?? null)) diff.push('config overrides');
      if (diff.length) fail(`${outDir} holds a calibration with other settings (${diff.join(', ')}): use another --out, or the same settings to resume`);
    }
    // ---- other folders' reports pooled into this one (engine/calibrate/include.ts) ----
    const included: IncludedReport[] = [];
    if (includeFiles) {
      const files = includeFiles;
      const mine = {
        preset: presetName, preset_revision: folderRevision, g, rotations, method, priors, noise, psf_oversampling: psfOversampling, position_angle: positionAngle,
        sim_spergel_nu: simNu, sim_profile: simProfileName, sim_omit_undetected: omitUndetected, overrides_hash: overrides?.hash ?? null, sub_tiles: subSel ?? ('all' as const),
      };
      for (const f of files) {
        const file = resolve(f);
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (e) {
          fail(`--include ${file}: cannot read it (${(e as Error).message})`);
        }
        if (file === join(outDir, 'calibration.json')) fail(`--include ${file}: that is this folder's own report`);
        included.push(parseIncludedReport(text, file, mine));
      }
      checkDisjointSeeds([{ what: `this folder (${outDir})`, seeds: pooledOnly ? [] : seeds }, ...included.map((r) => ({ what: r.file, seeds: r.seeds }))]);
    }
    if (pooledOnly) seeds = [];
    const reportSeeds = [...new Set([...seeds, ...included.flatMap((r) => r.seeds)])].sort((a, b) => a - b);
    const record: RunRecord = {
      format: RUN_FORMAT, version: 1, preset: presetName as PresetName, preset_revision: folderRevision, g, rotations, method, priors, noise, psf_oversampling: psfOversampling, position_angle: positionAngle, sim_spergel_nu: simNu, sim_profile: simProfileName, sim_bulge_nu: simBulgeNu, ...(omitUndetected ? { sim_omit_undetected: true } : {}), overrides, seeds,
      sub_tiles: subSel ?? 'all', bootstrap, bootstrap_seed: bootstrapSeed, history: prev?.history ?? [],
    };
    if (!reportOnly) {
      await mkdir(outDir, { recursive: true });
      await writeFileAtomic(runFile, enc(`${JSON.stringify(record, null, 2)}\n`));
    }

    // ---- the simulations ----
    const members = designMembers(rotations);
    const sims: Sim[] = seeds.flatMap((seed) =>
      members.map((member) => {
        const label = memberLabel(member);
        const dir = join(outDir, 'sims', `seed_${seed}`, label);
        return {
          seed, member, label, dir, shear: memberShear(member, g), rotationDeg: memberRotationDeg(member),
          config: join(dir, DERIVED_CONFIG), scratchDir: join(dir, 'scratch'), outputDir: join(dir, 'results'), runDir: join(dir, 'run'),
        };
      }),
    );
    const derivedFor = (simConfigText: string) =>
      deriveConfig({
        simConfig: simConfigText, priors, method, overrides: overrides?.doc ?? null,
        header: [
          `Derived by \`shine calibrate\` from config.yaml: priors ${priors}, method ${method}${overrides ? `, overrides ${overrides.file} (${overrides.hash})` : ''}.`,
          'Paths are relative to this file\'s directory. Stage 2 of the calibration runs with this file.',
        ],
      });
    const tileId = preset.tileId;
    const timing = { simulate_s: 0, prepare_s: 0, stage2_s: 0 };
    const counts = { simulated: 0, simsReused: 0, prepared: 0, fitted: 0, fitsReused: 0, fitsFailed: 0, retried: 0 };

    /** Expected derived-config hash of a simulation (from its config.yaml), or null when not simulated. */
    const derivedHash = new Map<string, string>();
    /** …and the configuration it resolves to with this software's defaults (what the products' fit settings must match). */
    const derivedCfg = new Map<string, ShineConfig>();
    let configText: string | null = null;
    let configHash: string | null = null;

    // the priors the derived config resolves to with this software (the schema's defaults for --priors default)
    const priorsNow = (): unknown => (configText !== null ? parseConfig(configText, { file: DERIVED_CONFIG }).gal.priors : null);
    /** Appends this invocation's effective priors to the run record (it simulated, fitted or submitted). */
    const recordHistory = async () => {
      const p = priorsNow();
      if (p === null) return;
      record.history = [...(record.history ?? []), { time: new Date().toISOString(), executor, software_version: SHINE_VERSION, effective_priors: p }];
      await writeFileAtomic(runFile, enc(`${JSON.stringify(record, null, 2)}\n`));
    };

    const simDone = async (s: Sim) => {
      const m = await readJson<{ preset: string; preset_revision?: number; seed: number; shear: number[]; rotate_ellipticities: boolean; ellipticity_rotation_deg?: number; noise: boolean; psf_oversampling?: number; position_angle?: number; spergel_nu?: number | null; sim_profile?: string | null; omit_undetected?: boolean }>(join(s.dir, SIM_MARKER));
      if (!m) return false;
      // markers written before the rotation angle was recorded: rotate_ellipticities means 90°
      const deg = m.ellipticity_rotation_deg ?? (m.rotate_ellipticities ? 90 : 0);
      if (m.preset !== presetName || (m.preset_revision ?? 1) !== folderRevision || m.seed !== s.seed || m.shear[0] !== s.shear[0] || m.shear[1] !== s.shear[1] || deg !== s.rotationDeg || m.noise !== noise || (m.psf_oversampling ?? 1) !== psfOversampling || (m.position_angle ?? basePreset.pa) !== positionAngle || (m.spergel_nu ?? null) !== simNu || (m.sim_profile ?? null) !== simProfileKey || (m.omit_undetected ?? false) !== omitUndetected) {
        fail(`${join(s.dir, SIM_MARKER)} describes another simulation (preset ${m.preset} revision ${m.preset_revision ?? 1}, seed ${m.seed}, shear ${m.shear}, shapes rotated ${deg}°, noise ${m.noise}, PSF oversampling ${m.psf_oversampling ?? 1}, position angle ${m.position_angle ?? basePreset.pa}°, Spergel ν ${m.spergel_nu ?? 'none'}, profile ${m.sim_profile ?? 'exponential/spergel'}, undetected objects ${m.omit_undetected ? 'omitted' : 'in the pixels'}): remove ${s.dir} or use another --out`);
      }
      return true;
    };

    /** Writes the derived configuration when it changed; returns its hash. */
    const ensureDerived = async (s: Sim, write: boolean): Promise<string | null> => {
      let simText: string;
      try {
        simText = await readFile(join(s.dir, 'config.yaml'), 'utf8');
      } catch {
        return null;
      }
      const d = derivedFor(simText);
      if (write) {
        const old = await readFile(s.config, 'utf8').catch(() => null);
        if (old !== d.text) await writeFileAtomic(s.config, enc(d.text));
      }
      derivedHash.set(s.dir, d.hash);
      derivedCfg.set(s.dir, parseConfig(d.text, { file: s.config }));
      if (configText === null) {
        configText = d.text;
        configHash = d.hash;
      }
      return d.hash;
    };

    // ---- collecting one fit from disk ----
    const productState = async (s: Sim, row: number, col: number): Promise<{ complete: boolean; stale: boolean; hash?: string; why?: string; warnings?: string[]; estimator?: string; mapG?: [number, number]; nShearBlind?: number; nOversize?: number; offModeSigma?: number }> => {
      const st = await subtileOutputsComplete(s.outputDir, tileId, row, col);
      if (!st.complete) return { complete: false, stale: false };
      type Meta = FittedWith & { inputs?: { config_hash?: string; fit_settings_hash?: unknown }; shear?: { estimator?: unknown }; unmodelled?: { shear_blind?: unknown }; oversize_stamps?: unknown; warnings?: unknown };
      let meta: Meta | null = null;
      try {
        meta = parseYaml(await readFile(join(s.outputDir, subtileOutputNames(tileId, row, col).metadata), 'utf8')) as Meta;
      } catch {
        meta = null;
      }
      const have = meta?.inputs?.config_hash;
      const warnings = Array.isArray(meta?.warnings) ? meta.warnings.map(String) : [];
      const want = derivedHash.get(s.dir);
      const cfg = derivedCfg.get(s.dir);
      // the derived text can be unchanged while this software's defaults changed what it means
      // (engine/config/fit-settings.ts): both must match
      const why = want && have !== want ? `made with config hash ${have ?? '?'}, expected ${want}` : cfg ? fitMismatch(meta, cfg) : null;
      const est = typeof meta?.shear?.estimator === 'string' ? meta.shear.estimator : method === 'map' ? 'map' : 'posterior_mean';
      const mapG = mapShearFromMetadata(meta);
      const blind = meta?.unmodelled?.shear_blind;
      const oversize = meta?.oversize_stamps;
      return { complete: true, stale: why !== null, hash: have, ...(why ? { why } : {}), warnings, estimator: est, ...(mapG ? { mapG } : {}), nShearBlind: Array.isArray(blind) ? blind.length : 0, ...(Array.isArray(oversize) ? { nOversize: oversize.length } : {}), ...offModeOf(meta) };
    };

    const listings = new Map<string, PreparedSubtile[] | null>();
    const selected = (): Array<[number, number]> => subSel ?? Array.from({ length: grid[0] * grid[1] }, (_, k) => [Math.floor(k / grid[1]), k % grid[1]] as [number, number]);

    // ---- run: simulate, prepare, fit ----
    const problems: string[] = [];
    if (!reportOnly) {
      log(`calibrate: preset ${presetName}, seeds ${formatSeeds(seeds)} (${seeds.length}), g = ${g}, ${rotations} rotations (${members.length} simulations per seed), ${noise ? 'noisy' : 'noise-free'}, position angle ${positionAngle}°, method ${method}, priors ${priors}, ${subSel ? `${subSel.length} sub-tile(s)` : 'all sub-tiles'} → ${outDir}`);
      const prepareCmd = commandFromEnv('SHINE_RUN_PREPARE_CMD', ['npx', 'tsx', join(REPO, 'cli/shine.ts'), 'prepare']);
      const subtileCmd = commandFromEnv('SHINE_RUN_SUBTILE_CMD', ['npx', 'tsx', join(REPO, 'cli/subtile.ts')]);
      let pool: ReturnType<typeof workerRenderer> | null = null;
      let poolThreads = 0;

      const simulateOne = async (s: Sim) => {
        if (await simDone(s)) {
          counts.simsReused++;
          return;
        }
        // a half-written simulation, or products of an older one: start afresh
        for (const sub of ['scratch', 'results', 'run', DERIVED_CONFIG]) await rm(join(s.dir, sub), { recursive: true, force: true });
        await mkdir(s.dir, { recursive: true });
        const nQuad = planSimulation(preset, s.seed).exposures.reduce((a, e) => a + e.length, 0);
        const threads = Math.max(1, Math.min(availableParallelism(), Math.ceil(nQuad / 8)));
        if (threads > 1 && !pool) {
          pool = workerRenderer(threads);
          poolThreads = threads;
        }
        const ts = performance.now();
        const output = nodeSimOutput(s.dir);
        const options: SimulateOptions = {
          preset, seed: s.seed, shear: s.shear, noise, ellipticityRotationDeg: s.rotationDeg, psfOversampling, ...(simProfile ? { profile: simProfile } : {}),
          ...(omitUndetected ? { omitUndetected: true } : {}),
          ...(pool ? { render: pool.render, concurrency: poolThreads + 1 } : {}),
        };
        const summary = await simulate(output, options).catch(async (e) => {
          await output.abort();
          throw e;
        });
        const marker = {
          format: 'shine-calibrate-simulation', version: 1, preset: presetName, preset_revision: simRevision, seed: s.seed, member: s.label, shear: s.shear,
          rotate_ellipticities: s.rotationDeg === 90, ellipticity_rotation_deg: s.rotationDeg, noise, psf_oversampling: psfOversampling, position_angle: positionAngle, spergel_nu: simNu, ...(simProfileKey ? { sim_profile: simProfileKey } : {}), ...(omitUndetected ? { omit_undetected: true } : {}), software_version: SHINE_VERSION, created: new Date().toISOString(),
          galaxies: summary.galaxies, stars: summary.stars, catalog_rows: summary.catalogRows, quadrants: summary.quadrants, files: summary.files,
        };
        await writeFileAtomic(join(s.dir, SIM_MARKER), enc(`${JSON.stringify(marker, null, 2)}\n`));
        timing.simulate_s += (performance.now() - ts) / 1000;
        counts.simulated++;
        log(`calibrate: simulated seed ${s.seed} ${memberText(s.member)} (${s.shear[0]}, ${s.shear[1]}) in ${((performance.now() - ts) / 1000).toFixed(1)} s`);
      };

      const prepareOne = async (s: Sim) => {
        await ensureDerived(s, true);
        let list = await readPrepared(s.scratchDir, tileId);
        if (!list) {
          const tp = performance.now();
          await mkdir(join(s.runDir, 'logs'), { recursive: true });
          const logFile = join(s.runDir, 'logs', `prepare_${tileId}.log`);
          const rc = await runLogged([...prepareCmd, '--config', s.config, '--tile-id', String(tileId), '--out', join(s.scratchDir, `tile_${tileId}`), '--quiet'], REPO, logFile);
          if (rc !== 0) fail(`Stage 1 failed for seed ${s.seed} ${s.label} (exit ${rc}); see ${logFile}`);
          list = await readPrepared(s.scratchDir, tileId);
          if (!list) fail(`Stage 1 for seed ${s.seed} ${s.label} exited 0 but wrote no listing; see ${logFile}`);
          timing.prepare_s += (performance.now() - tp) / 1000;
          counts.prepared++;
        }
        listings.set(s.dir, list);
      };

      // the Stage-2 tasks, fed seed by seed while the next seed is simulated
      type Task = { sim: Sim; row: number; col: number };
      const queue: Task[] = [];
      let producing = true;
      let waiters: Array<() => void> = [];
      const wake = () => {
        const w = waiters;
        waiters = [];
        for (const r of w) r();
      };
      let finished = 0;
      let total = 0;
      let lastLine = 0;
      const tty = !quiet && !!process.stderr.isTTY;
      const progress = (force = false) => {
        if (quiet) return;
        const line = `calibrate: fits ${finished}/${total}${producing ? '+' : ''} done (${counts.fitsReused} already complete), ${counts.fitsFailed} failed`;
        if (tty) process.stderr.write(`\r${line}\x1b[K`);
        else if (force || performance.now() - lastLine > 10000) {
          lastLine = performance.now();
          console.error(line);
        }
      };

      const runTask = async ({ sim: s, row, col }: Task) => {
        const t: SubtileTask = { tileId, row, col };
        const st = await productState(s, row, col);
        if (st.complete && !st.stale) {
          counts.fitsReused++;
          await rm(failureMarkerPath(s.runDir, t), { force: true });
          return;
        }
        const tf = performance.now();
        await mkdir(join(s.runDir, 'logs'), { recursive: true });
        const logFile = subtileLogPath(s.runDir, t);
        let rc = 0;
        let attempt = 0;
        for (; attempt <= retries; attempt++) {
          if (attempt > 0) counts.retried++;
          // products of another configuration are redone (--force: cli/subtile.ts would skip them)
          rc = await runLogged([...subtileCmd, '--tile-id', String(tileId), '--sub-tile-row', String(row), '--sub-tile-col', String(col), '--config', s.config, '--out', s.outputDir, '--quiet', ...(st.stale ? ['--force'] : [])], REPO, logFile);
          if (rc === 0) {
            const after = await productState(s, row, col);
            if (after.complete && !after.stale) break;
            rc = -1;
          }
        }
        timing.stage2_s += (performance.now() - tf) / 1000;
        if (attempt <= retries) {
          counts.fitted++;
          await rm(failureMarkerPath(s.runDir, t), { force: true });
        } else {
          counts.fitsFailed++;
          const marker = { tile_id: tileId, row, col, attempts: retries + 1, exit_code: rc, log: logFile, time: new Date().toISOString() };
          await writeFileAtomic(failureMarkerPath(s.runDir, t), enc(`${JSON.stringify(marker, null, 2)}\n`));
          if (tty) process.stderr.write('\n');
          log(`calibrate: FAILED seed ${s.seed} ${s.label} sub-tile (${row}, ${col}) after ${retries + 1} attempt(s), exit ${rc}: see ${logFile}`);
        }
      };

      const worker = async () => {
        for (;;) {
          const t = queue.shift();
          if (t) {
            await runTask(t);
            finished++;
            progress();
            continue;
          }
          if (!producing) return;
          await new Promise<void>((r) => waiters.push(r));
        }
      };

      const slurmTasks = new Map<Sim, SubtileTask[]>();
      const enqueue = async (seedSims: Sim[]) => {
        for (const [row, col] of selected()) {
          for (const s of seedSims) {
            const entry = listings.get(s.dir)?.find((e) => e.row === row && e.col === col);
            if (!entry || isEmptySubtile(entry)) continue;
            if (executor === 'slurm') {
              const st = await productState(s, row, col);
              if (st.complete && !st.stale) {
                counts.fitsReused++;
                continue;
              }
              if (st.stale) fail(`seed ${s.seed} ${s.label} sub-tile (${row}, ${col}): products of another configuration (${st.why}); remove ${s.outputDir} or use --executor local (which redoes them)`);
              const l = slurmTasks.get(s) ?? [];
              l.push({ tileId, row, col });
              slurmTasks.set(s, l);
              continue;
            }
            queue.push({ sim: s, row, col });
            total++;
          }
        }
        wake();
      };

      const workers = executor === 'local' ? Array.from({ length: jobs }, worker) : [];
      let producerError: unknown = null;
      try {
        for (const seed of seeds) {
          const seedSims = sims.filter((s) => s.seed === seed);
          for (const s of seedSims) await simulateOne(s);
          await checkRotation(seedSims);
          // Stage 1 of the seed's 4·R simulations, up to --jobs at a time
          let k = 0;
          await Promise.all(Array.from({ length: Math.min(jobs, seedSims.length) }, async () => {
            while (k < seedSims.length) await prepareOne(seedSims[k++]);
          }));
          await enqueue(seedSims);
        }
      } catch (e) {
        producerError = e;
        queue.length = 0;
      } finally {
        producing = false;
        wake();
        await Promise.all(workers);
        if (tty) process.stderr.write('\n');
        if (pool) await (pool as { close: () => Promise<void> }).close();
      }
      if (producerError) throw producerError;
      if (executor === 'local') progress(true);
      await recordHistory();

      if (executor === 'slurm') {
        const res = slurmResources(opts);
        const maxArray = int(opts['max-array-size'], 'max-array-size', 1001, 1);
        const jobBase = opts['job-name'] !== undefined ? String(opts['job-name']) : 'shine-cal';
        if (!opts['dry-run'] && !(await onPath('sbatch'))) fail('--executor slurm: sbatch is not on PATH (run on a SLURM login node, or add --dry-run to only write the scripts)');
        let submitted = 0;
        let taskCount = 0;
        for (const [s, tasks] of slurmTasks) {
          let plan;
          try {
            plan = slurmPlan({
              repoDir: REPO, runDir: s.runDir, configFile: s.config, outputDir: s.outputDir, catalog: join(s.outputDir, `catalog_${tileId}.fits`),
              allowMissing: true, tiles: [tileId], tasks, prepareTiles: [], maxArraySize: maxArray, runner: slurmRunner(),
              jobName: `${jobBase}-s${s.seed}-${s.label}`, method: null, retries, ...res,
            });
          } catch (e) {
            fail(`--executor slurm: ${(e as Error).message}`);
          }
          await writeFiles(s.runDir, plan.files);
          taskCount += tasks.length;
          if (opts['dry-run']) {
            log(`calibrate (dry run): seed ${s.seed} ${s.label}: ${tasks.length} sub-tile task(s); submit with: bash ${join(s.runDir, 'submit.sh')}`);
            continue;
          }
          const r = spawnSync('bash', [join(s.runDir, 'submit.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
          if (r.stdout) log(r.stdout.trim());
          if (r.status !== 0) fail(`--executor slurm: submitting seed ${s.seed} ${s.label} failed (exit ${r.status}); scripts in ${s.runDir}`);
          submitted++;
        }
        const again = `shine calibrate --report-only --out ${outDir}`;
        const msg = opts['dry-run']
          ? `shine calibrate (dry run, slurm): ${taskCount} Stage-2 task(s) of ${slurmTasks.size} simulation(s) written (${counts.fitsReused} fit(s) already complete); after submitting and running them: ${again}`
          : `shine calibrate: ${taskCount} Stage-2 task(s) of ${submitted} simulation(s) submitted (${counts.fitsReused} fit(s) already complete); when they are done: ${again}`;
        if (opts.json) console.log(JSON.stringify({ format: 'shine-calibration-submitted', executor: 'slurm', dry_run: !!opts['dry-run'], tasks: taskCount, simulations: slurmTasks.size, already_complete: counts.fitsReused, out: outDir }));
        else console.log(msg);
        return 0;
      }
    }

    // ---- collect ----
    const fits: CalibrationFit[] = [];
    const estimators = new Map<string, number>();
    for (const s of sims) {
      const marker = existsSync(join(s.dir, SIM_MARKER));
      if (marker && !derivedHash.has(s.dir)) await ensureDerived(s, false);
      if (marker && !listings.has(s.dir)) listings.set(s.dir, await readPrepared(s.scratchDir, tileId));
      const list = marker ? listings.get(s.dir) : null;
      for (const [row, col] of selected()) {
        const base = {
          ...s.member, seed: s.seed, tileId, row, col, gTrue1: s.shear[0], gTrue2: s.shear[1],
          g1: NaN, g2: NaN, g1Err: NaN, g2Err: NaN, converged: false, nSources: -1,
        };
        const push = (status: FitStatus, extra: Partial<CalibrationFit> = {}) => fits.push({ ...base, status, ...extra });
        if (!marker) {
          push('missing', { reason: 'not simulated yet' });
          continue;
        }
        if (!list) {
          push('missing', { reason: 'Stage 1 not run yet' });
          continue;
        }
        const entry = list.find((e) => e.row === row && e.col === col);
        if (!entry || isEmptySubtile(entry)) {
          push('empty', { nSources: entry ? entry.n_sources_core : 0, reason: entry ? (entry.n_quadrants ? 'no core source' : 'no quadrant') : 'not in the Stage-1 listing' });
          continue;
        }
        const st = await productState(s, row, col);
        if (!st.complete) {
          const fm = await readJson<{ exit_code?: number; log?: string }>(failureMarkerPath(s.runDir, { tileId, row, col }));
          if (fm) push('failed', { reason: `exit ${fm.exit_code ?? '?'}; see ${fm.log ?? s.runDir}` });
          else push('missing', { reason: 'no complete products' });
          continue;
        }
        if (st.stale) {
          push('stale', { reason: st.why ?? 'products of another configuration' });
          continue;
        }
        let row_;
        try {
          const ff = await openFits(join(s.outputDir, subtileOutputNames(tileId, row, col).shear));
          try {
            row_ = readShearRow(await ff.readTable(SHEAR_EXTNAME));
          } finally {
            await ff.close();
          }
        } catch (e) {
          push('failed', { reason: `unreadable shear product: ${(e as Error).message}` });
          continue;
        }
        const vals = { g1: row_.g1, g2: row_.g2, g1Err: row_.g1Err, g2Err: row_.g2Err, converged: row_.converged, nSources: row_.nSources };
        if (row_.nSources > 0 && st.estimator) estimators.set(st.estimator, (estimators.get(st.estimator) ?? 0) + 1);
        // the MAP's shear of this fit: G1/G2 read back when the estimator was the MAP (FITS float32, as the shear product)
        const mapG = st.mapG ?? (st.estimator === 'map' ? ([row_.g1, row_.g2] as [number, number]) : undefined);
        Object.assign(vals, mapG ? { mapG } : {}, { nShearBlind: st.nShearBlind ?? 0 }, st.nOversize !== undefined ? { nOversize: st.nOversize } : {}, st.offModeSigma !== undefined ? { offModeSigma: st.offModeSigma } : {});
        if (row_.nSources === 0) push('empty', { ...vals, reason: 'no core source in Stage 2' });
        else if (!Number.isFinite(row_.g1) || !Number.isFinite(row_.g2)) push('nan', { ...vals, reason: 'NaN shear' });
        else if (!Number.isFinite(row_.g1Err) || !Number.isFinite(row_.g2Err)) {
          // in m and c; the metadata says why the errors are missing (e.g. the Laplace step)
          const why = (st.warnings ?? []).filter((w) => /laplace|hessian|schur|error|posterior/i.test(w));
          push('ok', { ...vals, reason: `G1_ERR/G2_ERR not finite${why.length ? `: ${why.join('; ')}` : ''}` });
        } else push('ok', vals);
      }
    }
    for (const r of included) {
      fits.push(...r.fits);
      for (const [k, n] of Object.entries(r.estimators)) estimators.set(k, (estimators.get(k) ?? 0) + n);
    }
    // which estimator gave G1/G2 (shear.estimator in each fit's metadata): one report, one estimator
    const estimatorText = [...estimators].map(([k, n]) => `${k} (${n})`).join(', ') || 'none';
    if (estimators.size > 1) problems.push(`the fits' shear estimators differ: ${estimatorText} (a failed Laplace-marginal step reports the MAP's shear; see the fits' metadata warnings)`);
    const hashes = [...new Set(derivedHash.values())];
    if (hashes.length > 1) problems.push(`the derived configurations differ between simulations (${hashes.join(', ')})`);
    // the derived configuration's hash: this folder's, or (a report of included fits alone) the first included report's
    const refHash = configHash ?? included[0]?.configHash ?? null;
    const refWhat = configHash !== null ? 'this folder' : included[0]?.file;
    for (const r of included) {
      if (refHash !== null && r.configHash !== null && r.configHash !== refHash) {
        problems.push(`${r.file} (seeds ${formatSeeds(r.seeds)}) was fitted with derived configuration ${r.configHash}, ${refWhat} with ${refHash} (a default or an override differs: compare their config.text)`);
      }
    }
    // the same text can mean another fit when this software's defaults changed (fit settings hash,
    // engine/config/fit-settings.ts): this folder's fits are all of the current one (others are stale)
    const firstCfg = derivedCfg.values().next().value as ShineConfig | undefined;
    const fitHash = firstCfg ? fitSettingsHash(firstCfg, method) : (included[0]?.fitSettingsHash ?? null);
    const fitWhat = firstCfg ? 'this folder' : included[0]?.file;
    for (const r of included) {
      if (fitHash !== null && r.fitSettingsHash !== null && r.fitSettingsHash !== fitHash) {
        problems.push(`${r.file} (seeds ${formatSeeds(r.seeds)}) was fitted with fit settings ${r.fitSettingsHash}, ${fitWhat} with ${fitHash} (the same configuration text resolved with other software defaults: docs/run.md "What resume reuses")`);
      }
    }

    const summary = summarize(fits, { g, bootstrap, bootstrapSeed });
    // the MAP's shear of the same fits, when G1/G2 are the Laplace marginal's or a posterior mean (docs/calibrate.md)
    const mapFits = estimators.has('laplace_marginal') || estimators.has('posterior_mean') ? mapShearFits(fits) : null;
    const mapSummary = mapFits ? summarize(mapFits, { g, bootstrap, bootstrapSeed }) : null;
    const blindTally = shearBlindTally(fits);
    const oversize = oversizeTally(fits);
    const offMode = offModeTally(fits);

    // ---- outputs ----
    const effectivePriors = priorsNow();
    const history = record.history ?? [];
    const priorSets = new Set(history.map((h) => JSON.stringify(h.effective_priors)));
    if (effectivePriors !== null) priorSets.add(JSON.stringify(effectivePriors));
    if (priorSets.size > 1) problems.push(`the effective priors differ between invocations (see config.effective_priors_history): fits made at different times may have used different priors`);
    const created = new Date().toISOString();
    const paths = { json: join(outDir, 'calibration.json'), fits: join(outDir, 'calibration.fits'), png: join(outDir, 'calibration.png') };
    const json = {
      format: 'shine-calibration',
      version: 1,
      created,
      software: { name: 'shine-webgpu', version: SHINE_VERSION },
      inputs: {
        preset: presetName, preset_revision: folderRevision, tile_id: tileId, sub_tile_grid: grid, seeds: reportSeeds, folder_seeds: seeds, g, rotations, method, priors, noise, psf_oversampling: psfOversampling, position_angle: positionAngle, sim_spergel_nu: simNu, sim_profile: simProfileName, sim_omit_undetected: omitUndetected, executor, report_only: reportOnly,
        sub_tiles: subSel ?? 'all', config_overrides: overrides ? { file: overrides.file, hash: overrides.hash, content: overrides.doc } : null,
        bootstrap: { replicates: bootstrap, seed: bootstrapSeed, unit: 'seed' },
        included: included.map((r) => ({ file: r.file, seeds: r.seeds, fits: r.fits.length, config_hash: r.configHash, created: r.created, software_version: r.softwareVersion })),
      },
      config: {
        hash: configHash, fit_settings_hash: fitHash, text: configText, file_name: DERIVED_CONFIG,
        effective_priors: effectivePriors, effective_priors_note: 'resolved from config.text by the software writing this report',
        effective_priors_history: history,
      },
      design: {
        rotations,
        members: members.map((m) => ({
          label: memberLabel(m), component: m.component, sign: m.sign, rotation: m.rotation, rotation_deg: memberRotationDeg(m), rotated: memberRotated(m), shear: memberShear(m, g),
        })),
        simulations: join(outDir, 'sims', 'seed_<seed>', '<label>'),
      },
      results: {
        n_sets: summary.nSets, n_sets_complete: summary.nSetsComplete, n_sets_empty: summary.nSetsEmpty,
        estimates: summary.estimates, estimates_weighted: summary.estimatesWeighted, pulls: summary.pulls, pulls_by_realisation: summary.pullsByRealisation, fits: summary.fits, per_seed: summary.perSeed, sets: summary.sets,
        problems: summary.problems, no_errors: summary.noErrors, warnings: problems, shear_estimators: Object.fromEntries(estimators),
        map_of_same_fits: mapSummary ? { estimates: mapSummary.estimates, estimates_weighted: mapSummary.estimatesWeighted, pulls: mapSummary.pulls, per_seed: mapSummary.perSeed } : null,
        shear_blind: blindTally,
        off_mode: offMode,
        oversize_stamps: oversize,
      },
      fits: fits.map((x) => ({
        seed: x.seed, sim: memberLabel(x), component: x.component, sign: x.sign, rotation: x.rotation, rotation_deg: memberRotationDeg(x), rotated: memberRotated(x), tile_id: x.tileId, row: x.row, col: x.col,
        g_true1: x.gTrue1, g_true2: x.gTrue2, g1: x.g1, g2: x.g2, g1_err: x.g1Err, g2_err: x.g2Err, converged: x.converged, n_sources: x.nSources,
        status: x.status, ...(x.reason ? { reason: x.reason } : {}), ...(x.mapG ? { map_g1: x.mapG[0], map_g2: x.mapG[1] } : {}), ...(x.nShearBlind !== undefined ? { n_shear_blind: x.nShearBlind } : {}), ...(x.nOversize !== undefined ? { n_oversize: x.nOversize } : {}), ...(x.offModeSigma !== undefined ? { off_mode_sigma: x.offModeSigma } : {}),
      })),
      this_run: { ...snakeCounts(counts), seconds: { ...timing, total_s: (performance.now() - t0) / 1000 } },
      outputs: paths,
    };
    // NaN and ±Infinity are not JSON: written as null
    const jsonText = `${JSON.stringify(json, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
    await mkdir(outDir, { recursive: true });
    await writeFileAtomic(paths.json, enc(jsonText));
    await writeFileAtomic(paths.fits, calibrationFits(fits, summary, { preset: presetName, g, method, priors, noise, rotations, configHash: configHash ?? '', softwareVersion: SHINE_VERSION, created }));
    const head = `shine calibrate: preset ${presetName}, ${noise ? 'noisy' : 'noise-free'}, PSF oversampling ${psfOversampling}, position angle ${positionAngle}°, ${simProfile ? profileLabel(simProfile) : 'exponential'} galaxies${omitUndetected ? ' (undetected objects omitted)' : ''}, ${method} (shear estimator ${estimatorText}), priors ${priors}, g = ${g}, ${rotations} rotations, seeds ${formatSeeds(reportSeeds)}${included.length ? ` (${included.length} included report(s))` : ''}, ${subSel ? `${subSel.length} sub-tile(s)` : `all ${grid[0] * grid[1]} sub-tiles`}`;
    await writeFileAtomic(paths.png, calibrationPng({
      fits, summary,
      title: [head.replace(/^shine calibrate: /, 'SHINE CALIBRATE: '), `${summary.nSetsComplete} COMPLETE SETS OF ${summary.nSets}, ${summary.fits.byStatus.ok} FITS OK OF ${summary.fits.attempted}, CONFIG ${configHash ?? '-'}`],
    }));

    const secs = ((performance.now() - t0) / 1000).toFixed(0);
    if (opts.json) {
      const e = summary.estimates;
      const est = (k: keyof typeof e) => ({ [k]: e[k].mean, [`${k}_err`]: e[k].err, [`${k}_sem`]: e[k].sem });
      const line = {
        format: 'shine-calibration-summary', preset: presetName, preset_revision: folderRevision, seeds: formatSeeds(reportSeeds), g, rotations, method, priors, noise, psf_oversampling: psfOversampling, position_angle: positionAngle, sim_spergel_nu: simNu, sim_profile: simProfileName, sim_omit_undetected: omitUndetected,
        shear_estimators: Object.fromEntries(estimators), n_sets: summary.nSets, n_sets_complete: summary.nSetsComplete, ...est('m1'), ...est('m2'), ...est('c1'), ...est('c2'), ...est('leak1to2'), ...est('leak2to1'),
        weighted: Object.fromEntries((['m1', 'm2', 'c1', 'c2'] as const).map((k) => [k, { mean: summary.estimatesWeighted[k].mean, err: summary.estimatesWeighted[k].err }])),
        ...(mapSummary ? { map_of_same_fits: Object.fromEntries((['m1', 'm2', 'c1', 'c2'] as const).map((k) => [k, { mean: mapSummary.estimates[k].mean, err: mapSummary.estimates[k].err }])) } : {}),
        shear_blind: blindTally, oversize_stamps: oversize, off_mode: offMode, pull_mean: summary.pulls.all.mean, pull_sd: summary.pulls.all.sd, pull_robust_sd: summary.pulls.all.robustSd, n_pulls: summary.pulls.all.n,
        pull_sd_by_realisation: summary.pullsByRealisation.all.sd, pull_sd_by_realisation_err: summary.pullsByRealisation.all.sdErr, n_realisation_pulls: summary.pullsByRealisation.all.n,
        frac_converged: summary.fits.fracConverged, frac_err_finite: summary.fits.fracErrFinite, fits: summary.fits.byStatus,
        this_run: snakeCounts(counts), seconds: Number(secs), out: paths,
      };
      console.log(JSON.stringify(line, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
    } else {
      console.log(summaryText(summary, head));
      if (mapSummary) console.log(mapLine(mapSummary));
      if (oversize.sources) console.log(`  WARNING: ${oversize.sources} source(s) in ${oversize.with_oversize} of ${oversize.fits} fits need a stamp larger than the largest tier (at most ${oversize.max_per_fit} in one): their light beyond it is in no model, a bias of m and c (the fits' metadata oversize_stamps)`);
      if (offMode.off_mode) console.log(`  WARNING: ${offMode.off_mode} of ${offMode.fits} fits warn that their MAP's shear may be off its mode (up to ${offMode.max_sigma.toFixed(2)}σ̂; docs/inference.md "How converged is the MAP"): refit them with shine subtile --start-from`);
      if (blindTally.sources) console.log(`  shear-blind sources (centre in an unmodelled object's mask; masking.covered_centres): ${blindTally.sources} in ${blindTally.with_shear_blind} of ${blindTally.fits} fits, at most ${blindTally.max_per_fit} in one`);
      if (!reportOnly) console.log(`  this run: ${counts.simulated} simulated (${counts.simsReused} reused), ${counts.prepared} prepared, ${counts.fitted} fitted (${counts.fitsReused} already complete), ${counts.fitsFailed} failed, ${counts.retried} retries — ${secs} s`);
      for (const p of problems) console.log(`  WARNING: ${p}`);
      console.log(`  outputs: ${paths.json}, ${paths.fits}, ${paths.png}`);
    }
    return counts.fitsFailed > 0 ? 1 : 0;
  },
};

/**
 * The scene of a seed's rotated simulations must be that of the unrotated one of the same shear
 * with every galaxy's intrinsic distortion turned by the member's angle θ = 180°·k/R in position
 * angle, (e1 + i·e2) → (e1 + i·e2)·exp(2iθ): checked on the truth tables, for each (component,
 * sign), of every rotated member against the unrotated one (same objects at the same positions,
 * stars untouched). The expectation is computed here with cos/sin (not the simulator's code).
 */
async function checkRotation(seedSims: Sim[]): Promise<void> {
  const read = async (s: Sim) => {
    const file = join(s.dir, 'truth', 'sources.fits');
    const ff = await openFits(file);
    try {
      const t = await ff.readTable('SOURCES');
      const col = (n: string) => Array.from(t.column(n).data as ArrayLike<number>, Number);
      return { file, ra: col('RA'), e1: col('E1'), e2: col('E2'), star: Array.from(t.column('IS_STAR').data as ArrayLike<unknown>, Boolean) };
    } finally {
      await ff.close();
    }
  };
  for (const s of seedSims) {
    if (s.member.rotation !== 0) continue;
    const a = await read(s);
    for (const r of seedSims) {
      if (r.member.rotation === 0 || r.member.component !== s.member.component || r.member.sign !== s.member.sign) continue;
      const b = await read(r);
      const bad = (msg: string) => fail(`seed ${s.seed}: ${r.label} is not ${s.label} with the intrinsic ellipticities rotated by ${r.rotationDeg}° (${msg}); does engine/sim support SimulateOptions.ellipticityRotationDeg? Remove ${r.dir} after fixing`);
      if (a.ra.length !== b.ra.length) bad(`${a.ra.length} vs ${b.ra.length} objects`);
      const t = (2 * r.rotationDeg * Math.PI) / 180;
      const c = Math.cos(t);
      const sn = Math.sin(t);
      let galaxies = 0;
      for (let i = 0; i < a.ra.length; i++) {
        if (a.ra[i] !== b.ra[i]) bad(`object ${i} moved`);
        if (a.star[i]) continue;
        galaxies++;
        const x1 = a.e1[i] * c - a.e2[i] * sn;
        const x2 = a.e1[i] * sn + a.e2[i] * c;
        if (Math.abs(b.e1[i] - x1) > 1e-12 || Math.abs(b.e2[i] - x2) > 1e-12) {
          bad(`galaxy ${i}: (e1, e2) = (${a.e1[i]}, ${a.e2[i]}) and (${b.e1[i]}, ${b.e2[i]}), expected (${x1}, ${x2})`);
        }
      }
      if (!galaxies) bad('no galaxy');
    }
  }
}

export default command;
