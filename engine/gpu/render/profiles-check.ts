/**
 * `shine doctor` checks of the galaxy profiles with per-source parameters beyond the exponential's
 * (docs/forward-model.md "Spergel profile, ν free" and "Bulge + disk"): a Spergel profile with ν
 * free per source and a bulge + disk, each rendered by the engine and by the float64 reference
 * (stamps ≤ 1e-5 of the peak), and its gradient — the new parameters included — against central
 * finite differences of the float64 log-likelihood; the bulge + disk also on the alias-complete
 * path (PSF q = 3, one alias order).
 */
import type { KernelCheck } from '../check-types.ts';
import { perturbParams, type TestSceneOptions } from '../../reference/scene-builder.ts';
import type { RenderOptions } from '../../scene/types.ts';
import { adjointCheckOf, renderCheckOf } from './check.ts';

/** The truth with every parameter perturbed (seeded), so that no gradient component is near 0 by symmetry. */
const perturbed = (truth: Parameters<typeof perturbParams>[0]) => perturbParams(truth, 3, 0.04);
const adjointCheck = (name: string, scene: TestSceneOptions, opts: Partial<RenderOptions>) => adjointCheckOf(name, scene, opts, perturbed);

const SCENE: TestSceneOptions = { seed: 26, nSources: 3, sourceTiers: [64, 128] };
const ALIAS_SCENE: TestSceneOptions = { seed: 24, nSources: 2, sourceTiers: [64, 64], psfOversampling: 3, psf: { sigma: 0.7 } };
const FREE: RenderOptions['profile'] = { type: 'spergel', nu: 0.5, free: true };
const BD: RenderOptions['profile'] = { type: 'bulge_disk', bulgeNu: -0.6 };

export const checks: KernelCheck[] = [
  renderCheckOf('render, Spergel ν free per source (vs float64, rel. to peak)', SCENE, { profile: FREE }),
  adjointCheck('adjoint gradient, Spergel ν free, ∂/∂ν included (vs FD of float64)', SCENE, { profile: FREE }),
  renderCheckOf('render, bulge + disk (vs float64, rel. to peak)', SCENE, { profile: BD }),
  adjointCheck('adjoint gradient, bulge + disk, ∂/∂(B/T, hlr_b, e_b) included (vs FD of float64)', SCENE, { profile: BD }),
  adjointCheck('adjoint gradient, bulge + disk, alias orders N=1, PSF q=3 (vs FD of float64)', ALIAS_SCENE, { profile: BD }),
];
