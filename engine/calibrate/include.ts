/**
 * Reports pooled across calibration folders (`shine calibrate --include FILE`, docs/calibrate.md
 * "Pooling folders"): the fits of another folder's calibration.json are added to this folder's
 * report. A calibration of thousands of sub-tiles is run in pieces — on several clusters, in
 * several allocations, by machines that do not share a disk — and its m and c are those of all the
 * pieces together; each piece keeps only its small report.
 *
 * Pooling is refused when it would mix what a calibration is not allowed to mix: another preset,
 * shear amplitude, rotation ring, method, priors, noise, PSF sampling, position angle, simulated
 * profile, configuration overrides or sub-tile selection (the keys `shine calibrate` refuses to
 * resume a folder with), or a seed counted twice (the same seed in two pieces would be the same
 * simulations and noise, counted as two independent sets). A different derived-configuration hash
 * (e.g. a software default that changed between the pieces) is allowed but reported.
 */
import { ShineError } from '../errors.ts';
import { FIT_STATUSES, type CalibrationFit, type FitStatus } from './stats.ts';
import type { Rotations } from './design.ts';

/** The settings a pooled report must share (calibration.json `inputs`). */
export interface PooledSettings {
  preset: string;
  /** The preset's scene revision (engine/sim/presets.ts; reports made before it existed: 1). */
  preset_revision: number;
  g: number;
  rotations: Rotations;
  method: string;
  priors: string;
  noise: boolean;
  psf_oversampling: number;
  position_angle: number;
  sim_spergel_nu: number | null;
  sim_profile: string | null;
  /** Objects the catalog does not list left out of the pixels (`--sim-omit-undetected`); absent in older reports: false. */
  sim_omit_undetected: boolean;
  /** Hash of the configuration overrides file, null when none. */
  overrides_hash: string | null;
  sub_tiles: Array<[number, number]> | 'all';
}

/** One included report. */
export interface IncludedReport {
  file: string;
  seeds: number[];
  fits: CalibrationFit[];
  /** The derived configuration's hash (calibration.json `config.hash`). */
  configHash: string | null;
  /** What that text resolved to with the software's defaults (`config.fit_settings_hash`; null in reports made before it was recorded). */
  fitSettingsHash: string | null;
  created: string | null;
  softwareVersion: string | null;
  /** Fits per shear estimator (calibration.json `results.shear_estimators`). */
  estimators: Record<string, number>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** JSON writes NaN and ±Infinity as null. */
const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);

/** The settings of a report's `inputs`, with the defaults of folders made before an option existed. */
export function settingsOf(inputs: Obj): PooledSettings {
  const over = inputs.config_overrides;
  return {
    preset: String(inputs.preset),
    preset_revision: typeof inputs.preset_revision === 'number' ? inputs.preset_revision : 1,
    g: num(inputs.g),
    rotations: (inputs.rotations ?? 2) as Rotations,
    method: String(inputs.method),
    priors: String(inputs.priors),
    noise: inputs.noise as boolean,
    psf_oversampling: typeof inputs.psf_oversampling === 'number' ? inputs.psf_oversampling : 1,
    position_angle: num(inputs.position_angle),
    sim_spergel_nu: typeof inputs.sim_spergel_nu === 'number' ? inputs.sim_spergel_nu : null,
    sim_profile: typeof inputs.sim_profile === 'string' ? inputs.sim_profile : null,
    sim_omit_undetected: inputs.sim_omit_undetected === true,
    overrides_hash: isObj(over) && typeof over.hash === 'string' ? over.hash : null,
    sub_tiles: inputs.sub_tiles === 'all' || inputs.sub_tiles === undefined ? 'all' : (inputs.sub_tiles as Array<[number, number]>),
  };
}

/** The settings that differ, as `key this → included` phrases (empty when the reports may be pooled). */
export function settingsDiff(mine: PooledSettings, theirs: PooledSettings): string[] {
  const out: string[] = [];
  const show = (v: unknown) => (v === null ? 'none' : typeof v === 'object' ? JSON.stringify(v) : String(v));
  for (const k of Object.keys(mine) as Array<keyof PooledSettings>) {
    const a = mine[k];
    const b = theirs[k];
    const same = typeof a === 'object' || typeof b === 'object' ? JSON.stringify(a) === JSON.stringify(b) : a === b;
    if (!same) out.push(`${k} ${show(a)} here, ${show(b)} there`);
  }
  return out;
}

function fitOf(f: unknown, i: number, rotations: Rotations, file: string): CalibrationFit {
  const where = `${file}: fits[${i}]`;
  if (!isObj(f)) throw new ShineError(`${where} is not an object`);
  const int = (k: string, ok: (v: number) => boolean): number => {
    const v = f[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || !ok(v)) throw new ShineError(`${where}.${k} is ${JSON.stringify(v)}, not a valid value`);
    return v;
  };
  const status = f.status as FitStatus;
  if (!FIT_STATUSES.includes(status)) throw new ShineError(`${where}.status is ${JSON.stringify(f.status)}, not one of ${FIT_STATUSES.join(', ')}`);
  const fit: CalibrationFit = {
    component: int('component', (v) => v === 1 || v === 2) as 1 | 2,
    sign: int('sign', (v) => v === 1 || v === -1) as 1 | -1,
    rotation: int('rotation', (v) => v >= 0 && v < rotations),
    rotations,
    seed: int('seed', (v) => v >= 0),
    tileId: int('tile_id', (v) => v >= 0),
    row: int('row', (v) => v >= 0),
    col: int('col', (v) => v >= 0),
    gTrue1: num(f.g_true1),
    gTrue2: num(f.g_true2),
    g1: num(f.g1),
    g2: num(f.g2),
    g1Err: num(f.g1_err),
    g2Err: num(f.g2_err),
    converged: f.converged === true,
    nSources: typeof f.n_sources === 'number' ? f.n_sources : -1,
    status,
  };
  if (!Number.isFinite(fit.gTrue1) || !Number.isFinite(fit.gTrue2)) throw new ShineError(`${where}: g_true1/g_true2 missing`);
  if (typeof f.reason === 'string') fit.reason = `${f.reason} (in ${file})`;
  if (typeof f.map_g1 === 'number' && typeof f.map_g2 === 'number') fit.mapG = [f.map_g1, f.map_g2];
  if (typeof f.n_shear_blind === 'number') fit.nShearBlind = f.n_shear_blind;
  if (typeof f.n_oversize === 'number') fit.nOversize = f.n_oversize;
  if (typeof f.off_mode_sigma === 'number') fit.offModeSigma = f.off_mode_sigma;
  return fit;
}

/**
 * What a pooled report made from included reports alone (no folder of its own) takes from the
 * first of them: its settings, its overrides (file, hash, content) and its bootstrap settings.
 */
export function reportInputs(text: string, file: string): { settings: PooledSettings; overrides: { file: string; hash: string; doc: Record<string, unknown> } | null; bootstrap: { replicates: number; seed: number } | null } {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new ShineError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (!isObj(j) || j.format !== 'shine-calibration' || !isObj(j.inputs)) throw new ShineError(`${file}: not a shine calibrate report (calibration.json, format 'shine-calibration')`);
  const inputs = j.inputs;
  const over = inputs.config_overrides;
  const boot = inputs.bootstrap;
  return {
    settings: settingsOf(inputs),
    overrides: isObj(over) && typeof over.hash === 'string' ? { file: String(over.file), hash: over.hash, doc: isObj(over.content) ? over.content : {} } : null,
    bootstrap: isObj(boot) && typeof boot.replicates === 'number' && typeof boot.seed === 'number' ? { replicates: boot.replicates, seed: boot.seed } : null,
  };
}

/** A calibration.json read: its settings and fits (what pooling and comparing both need). */
export interface ParsedReport extends IncludedReport {
  settings: PooledSettings;
}

/** Parses a calibration.json (`text`, read from `file`); throws a ShineError naming the file. */
export function parseReport(text: string, file: string): ParsedReport {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new ShineError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (!isObj(j) || j.format !== 'shine-calibration') throw new ShineError(`${file}: not a shine calibrate report (calibration.json, format 'shine-calibration')`);
  if (j.version !== 1) throw new ShineError(`${file}: report version ${JSON.stringify(j.version)}, this software reads version 1`);
  if (!isObj(j.inputs) || !Array.isArray(j.fits)) throw new ShineError(`${file}: no 'inputs' or 'fits' (a shine calibrate report has both)`);
  const settings = settingsOf(j.inputs);
  const fits = j.fits.map((f, i) => fitOf(f, i, settings.rotations, file));
  const config = isObj(j.config) ? j.config : {};
  const software = isObj(j.software) ? j.software : {};
  const results = isObj(j.results) ? j.results : {};
  const estimators: Record<string, number> = {};
  if (isObj(results.shear_estimators)) for (const [k, v] of Object.entries(results.shear_estimators)) if (typeof v === 'number') estimators[k] = v;
  return {
    file,
    settings,
    seeds: [...new Set(fits.map((f) => f.seed))].sort((a, b) => a - b),
    fits,
    configHash: typeof config.hash === 'string' ? config.hash : null,
    fitSettingsHash: typeof config.fit_settings_hash === 'string' ? config.fit_settings_hash : null,
    created: typeof j.created === 'string' ? j.created : null,
    softwareVersion: typeof software.version === 'string' ? software.version : null,
    estimators,
  };
}

/**
 * Parses another folder's calibration.json (`text`, read from `file`) for pooling into a report
 * made with `mine`; throws a ShineError naming the file and what differs.
 */
export function parseIncludedReport(text: string, file: string, mine: PooledSettings): IncludedReport {
  const { settings, ...report } = parseReport(text, file);
  const diff = settingsDiff(mine, settings);
  if (diff.length) throw new ShineError(`${file} is a calibration with other settings (${diff.join('; ')}): reports are pooled only with the same settings`);
  return report;
}

/**
 * Refuses a seed that two pieces both hold: the same seed is the same simulations and noise, so
 * counting it twice would count one set as two independent ones. `pieces` name where each seed
 * list comes from (this folder, an included file).
 */
export function checkDisjointSeeds(pieces: ReadonlyArray<{ what: string; seeds: readonly number[] }>): void {
  const owner = new Map<number, string>();
  for (const p of pieces) {
    for (const s of p.seeds) {
      const o = owner.get(s);
      if (o !== undefined) throw new ShineError(`seed ${s} is both in ${o} and in ${p.what}: a seed is one set of simulations and is counted once (leave one of them out)`);
      owner.set(s, p.what);
    }
  }
}
