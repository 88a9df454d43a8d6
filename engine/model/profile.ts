/**
 * A galaxy light profile and the few facts every renderer needs from it. Kept apart from the
 * profiles' own modules (spergel.ts, bulge-disk.ts) so that neither imports the other's types.
 */
import type { BulgeDiskProfile } from './bulge-disk.ts';
import { EXP_HLR_OVER_R0 } from './galsim.ts';
import { spergelHlrOverR0 } from './spergel.ts';

/**
 * A galaxy light profile (RenderOptions.profile; config `gal.profile`):
 * - exponential;
 * - Spergel of one fixed index ν for every source, or with `free: true` an index per source
 *   (SceneParams.nu; `nu` is then the value sources start from);
 * - bulge + disk (engine/model/bulge-disk.ts): an exponential disk plus a Spergel bulge of fixed
 *   index `bulgeNu`, with a shared centre and shear (SceneParams.bulgeFrac, bulgeHlr, bulgeE1, bulgeE2).
 */
export type GalaxyProfile = { type: 'exponential' } | { type: 'spergel'; nu: number; free?: boolean } | BulgeDiskProfile;

/**
 * The two numbers the renderers need from a profile: the exponent E of Ĝ = F (1 + r0²|q|²)^(−E)
 * and h / r0. Exponential: (1.5, EXP_HLR_OVER_R0); Spergel: (1 + ν, c_ν).
 */
export function profileConstants(profile: GalaxyProfile | undefined): { exponent: number; hlrOverR0: number } {
  // bulge + disk: the disk (an exponential); a free-ν Spergel: its starting index
  if (!profile || profile.type === 'exponential' || profile.type === 'bulge_disk') return { exponent: 1.5, hlrOverR0: EXP_HLR_OVER_R0 };
  return { exponent: 1 + profile.nu, hlrOverR0: spergelHlrOverR0(profile.nu) };
}

/** Short label: "exponential", "spergel(nu=…)", "spergel(nu free)" or "bulge_disk(bulge nu=…)". */
export function profileLabel(profile: GalaxyProfile | undefined): string {
  if (!profile || profile.type === 'exponential') return 'exponential';
  if (profile.type === 'bulge_disk') return `bulge_disk(bulge nu=${profile.bulgeNu})`;
  return profile.free ? 'spergel(nu free)' : `spergel(nu=${profile.nu})`;
}

/** Does this profile carry per-source parameters beyond (flux, hlr, e1, e2, dx, dy)? */
export function profileHasExtraParams(profile: GalaxyProfile | undefined): boolean {
  return !!profile && ((profile.type === 'spergel' && profile.free === true) || profile.type === 'bulge_disk');
}
