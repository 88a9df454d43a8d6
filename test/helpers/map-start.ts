/**
 * The start of a MAP in the Laplace tests: the scene's true source parameters with the shear set
 * to 0, priors centred on those catalog fluxes and sizes, a flat shear prior and ba14(σ = 0.3)
 * ellipticities — the pipeline's default estimator (docs/inference.md "The shear estimator").
 */
import { cloneParams, type SceneParams } from '../../engine/scene/types.ts';
import type { PriorConfig } from '../../engine/infer/priors.ts';

export function defaultMapStart(truth: SceneParams): { init: SceneParams; catalog: { flux: ArrayLike<number>; hlr: ArrayLike<number> }; priors: Partial<PriorConfig> } {
  const init = cloneParams(truth);
  init.g1 = 0;
  init.g2 = 0;
  const catalog = { flux: init.flux.slice(), hlr: init.hlr.slice() };
  const priors: Partial<PriorConfig> = { g1: { type: 'uniform', low: -0.5, high: 0.5 }, g2: { type: 'uniform', low: -0.5, high: 0.5 }, e1: { type: 'ba14', sigma: 0.3 }, e2: { type: 'ba14', sigma: 0.3 } };
  return { init, catalog, priors };
}
