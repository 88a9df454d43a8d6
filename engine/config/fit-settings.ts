/**
 * What a sub-tile's products were fitted with, so that a re-run reuses them only when this
 * configuration, with this software's defaults, would fit the same way (docs/run.md, "Resume").
 *
 * The configuration file's text hash (`inputs.config_hash`) cannot tell: a default that changes
 * between versions (inference.map.shear_estimator became laplace_marginal on 2026-12-06) leaves
 * the text alone and changes the result. So the products also record
 * `inputs.fit_settings_hash`, a hash of the *resolved* settings that shape the fit — every section
 * with its defaults filled, minus file locations and execution knobs (device, remote, output,
 * distributed, truth) — and `shear.estimator`, the estimator that produced G1/G2.
 */
import { hash64 } from '../util/hash.ts';
import type { ShineConfig } from './schema.ts';

export type ShearEstimator = 'laplace_marginal' | 'map' | 'posterior_mean';
export type FitMethod = 'map' | 'vi' | 'nuts';

/** JSON with object keys sorted at every depth (the hash must not depend on the schema's key order). */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * Settings added after the hash was introduced whose value at this entry fits exactly as the
 * software did before the setting existed: left out of the hash at that value, so that adding a
 * setting does not make every earlier product stale. Any other value is hashed.
 */
const NEUTRAL_ADDITIONS: ReadonlyArray<{ section: 'masking' | 'inference.map'; key: string; value: unknown }> = [
  // 2026-12-07: stars as point sources (masking.point_like: model); 'mask' is the earlier behaviour
  { section: 'masking', key: 'point_like', value: 'mask' },
  // 2026-12-07: the box shear prior's precision in the Laplace errors; false is the earlier
  // behaviour (the default, true, is not: products made before it are stale)
  { section: 'inference.map', key: 'laplace_box_prior', value: false },
  // 2026-12-07: the Newton polish as a chord iteration of up to this many steps; 1 is the earlier
  // one-step rule (the default, 10, is not)
  { section: 'inference.map', key: 'newton_polish_steps', value: 1 },
  // 2026-12-07: a precision-floor stop tested by rebuilding the preconditioner; 0 is the earlier
  // behaviour (the default, 3, is not)
  { section: 'inference.map', key: 'floor_restarts', value: 0 },
  // 2026-12-07 (later): those restarts only after a stretch of this many iterations; 0 is the
  // first restart rule, any stretch (the default, 100, is not)
  { section: 'inference.map', key: 'floor_restart_after', value: 0 },
  // 2026-12-08: galaxies' discs widened to their wings (masking.wing_flux_mag); null is the earlier
  // footprint_scale rule alone
  { section: 'masking', key: 'wing_flux_mag', value: null },
];

/** Settings that change nothing while another one has this value (a refinement of a rule switched off). */
const INERT_WHEN: ReadonlyArray<{ section: 'inference.map'; key: string; when: { key: string; value: unknown } }> = [
  { section: 'inference.map', key: 'floor_restart_after', when: { key: 'floor_restarts', value: 0 } },
];

function withoutNeutral(section: string, o: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o };
  for (const n of INERT_WHEN) if (n.section === section && out[n.when.key] === n.when.value) delete out[n.key];
  for (const n of NEUTRAL_ADDITIONS) if (n.section === section && out[n.key] === n.value) delete out[n.key];
  return out;
}

/** The resolved settings that shape a fit: the model, the selection, the pixels' treatment and the inference (with `method` as run). */
export function fitSettings(cfg: ShineConfig, method: FitMethod = cfg.inference.method): Record<string, unknown> {
  const { exposures: _e, backgrounds: _b, psf: _p, mer_catalog: _m, tile_index: _t, ...data } = cfg.data;
  return {
    data,
    sources: cfg.sources,
    gal: cfg.gal,
    inference: { ...cfg.inference, map: withoutNeutral('inference.map', cfg.inference.map), method },
    stamps: cfg.stamps,
    background: cfg.background,
    masking: withoutNeutral('masking', cfg.masking),
  };
}

/** 16 hex digits: the hash of fitSettings (recorded as `inputs.fit_settings_hash`). */
export function fitSettingsHash(cfg: ShineConfig, method: FitMethod = cfg.inference.method): string {
  return hash64(canonicalJson(fitSettings(cfg, method)));
}

/**
 * The estimator a fit with this configuration reports: VI and NUTS their posterior mean; MAP the
 * Laplace-marginal shear when asked for and a Laplace covariance is computed, else the MAP's own.
 */
export function expectedEstimator(cfg: ShineConfig, method: FitMethod = cfg.inference.method): ShearEstimator {
  if (method !== 'map') return 'posterior_mean';
  return cfg.inference.map.laplace && cfg.inference.map.shear_estimator === 'laplace_marginal' ? 'laplace_marginal' : 'map';
}

/** The parts of a sub-tile's metadata.yaml that say how it was fitted. */
export interface FittedWith {
  method?: unknown;
  shear?: { estimator?: unknown } | null;
  inputs?: { fit_settings_hash?: unknown } | null;
}

/**
 * Null when complete products fitted as `meta` says are this configuration's result, else why
 * not. Products written before `fit_settings_hash` was recorded are judged by method and
 * estimator (absent: the MAP's, the only one there was); a failed Laplace-marginal step leaves
 * `estimator: map` but the hash still matches, so such products are not redone forever.
 */
export function fitMismatch(meta: FittedWith | null | undefined, cfg: ShineConfig, method: FitMethod = cfg.inference.method): string | null {
  const haveMethod = meta?.method;
  if (haveMethod !== method) return `made with method '${String(haveMethod)}', not '${method}'`;
  const have = meta?.inputs?.fit_settings_hash;
  if (typeof have === 'string') {
    const want = fitSettingsHash(cfg, method);
    return have === want ? null : `made with other fit settings (fit_settings_hash ${have}, this configuration ${want})`;
  }
  const est = meta?.shear?.estimator ?? (method === 'map' ? 'map' : 'posterior_mean');
  const wantEst = expectedEstimator(cfg, method);
  return est === wantEst ? null : `made by an earlier version with shear estimator '${String(est)}'; this configuration asks for '${wantEst}'`;
}
