/**
 * Which per-source parameters a galaxy profile adds to (flux, hlr, e1, e2, dx, dy), and filling
 * them in: SceneParams.nu for a Spergel profile with a free index, the bulge arrays for bulge + disk
 * (engine/model/bulge-disk.ts). The exponential and a fixed-ν Spergel add none.
 */
import type { ProfileParamName, SceneParams } from '../scene/types.ts';
import { BULGE_PARAM_NAMES } from './bulge-disk.ts';
import type { GalaxyProfile } from './profile.ts';

/** The extra per-source parameters of a profile, in the order the GPU record and gradients use. */
export function profileParamNames(profile: GalaxyProfile | undefined): readonly ProfileParamName[] {
  if (!profile) return [];
  if (profile.type === 'spergel' && profile.free) return ['nu'];
  if (profile.type === 'bulge_disk') return BULGE_PARAM_NAMES;
  return [];
}

/** Starting values of the extra parameters for a source of disk half-light radius `hlr` and distortion (e1, e2). */
export interface ProfileParamStart {
  /** Free ν: the profile's `nu`. */
  nu?: number;
  /** Bulge + disk: B/T (default 0.3), bulge hlr as a fraction of the disk's (default 0.5), bulge distortion = disk's × (default 0.5). */
  bulgeFrac?: number;
  bulgeHlrRatio?: number;
  bulgeEllipticityRatio?: number;
}

/**
 * Adds the profile's extra arrays to `params` (in place; existing arrays of the right length are
 * kept), started from the profile and each source's own disk parameters. Returns `params`.
 */
export function ensureProfileParams(params: SceneParams, profile: GalaxyProfile | undefined, start: ProfileParamStart = {}): SceneParams {
  const n = params.flux.length;
  for (const name of profileParamNames(profile)) {
    if (params[name]?.length === n) continue;
    const a = new Float64Array(n);
    for (let s = 0; s < n; s++) {
      if (name === 'nu') a[s] = start.nu ?? (profile as { nu: number }).nu;
      else if (name === 'bulgeFrac') a[s] = start.bulgeFrac ?? 0.3;
      else if (name === 'bulgeHlr') a[s] = params.hlr[s] * (start.bulgeHlrRatio ?? 0.5);
      else if (name === 'bulgeE1') a[s] = params.e1[s] * (start.bulgeEllipticityRatio ?? 0.5);
      else a[s] = params.e2[s] * (start.bulgeEllipticityRatio ?? 0.5);
    }
    params[name] = a;
  }
  return params;
}

/** The configuration's `gal.profile` (engine/config/schema.ts, snake_case) as a RenderOptions profile. */
export function profileFromConfig(p: { type: string; nu?: number; free?: boolean; bulge_nu?: number } | undefined): GalaxyProfile | undefined {
  if (!p || p.type === 'exponential') return p ? { type: 'exponential' } : undefined;
  if (p.type === 'spergel') return p.free ? { type: 'spergel', nu: p.nu!, free: true } : { type: 'spergel', nu: p.nu! };
  if (p.type === 'bulge_disk') return { type: 'bulge_disk', bulgeNu: p.bulge_nu ?? -0.6 };
  throw new RangeError(`gal.profile.type ${p.type} is not exponential, spergel or bulge_disk`);
}
