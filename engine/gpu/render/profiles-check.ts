/**
 * `shine doctor` checks of the galaxy profiles with per-source parameters beyond the exponential's
 * (docs/forward-model.md "Spergel profile, ν free" and "Bulge + disk"): a Spergel profile with ν
 * free per source and a bulge + disk, each rendered by the engine and by the float64 reference
 * (stamps ≤ 1e-5 of the peak), and its gradient — the new parameters included — against central
 * finite differences of the float64 log-likelihood; the bulge + disk also on the alias-complete
 * path (PSF q = 3, one alias order).
 */
import type { KernelCheck, KernelCheckResult } from '../check-types.ts';
import { ShearEngine } from './engine.ts';
import { makeTestScene, perturbParams, type TestSceneOptions } from '../../reference/scene-builder.ts';
import { logLikelihood64, renderModel64 } from './model64.ts';
import { profileParamNames } from '../../model/profile-params.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type RenderOptions, type SceneParams } from '../../scene/types.ts';

function result(name: string, maxError: number, tolerance: number, t0: number, detail?: string): KernelCheckResult {
  return { name, pass: maxError <= tolerance, maxError, tolerance, detail, ms: performance.now() - t0 };
}

function renderCheck(name: string, scene: TestSceneOptions, opts: Partial<RenderOptions>): KernelCheck {
  return {
    name,
    async run(device) {
      const t0 = performance.now();
      const { set, params } = makeTestScene({ ...scene, render: opts });
      const eng = await ShearEngine.create(device, set, opts);
      try {
        const imgs = await eng.render(params);
        const ref = renderModel64(set, params, opts);
        let peak = 0;
        let err = 0;
        ref.forEach((r, j) =>
          r.forEach((v, i) => {
            peak = Math.max(peak, Math.abs(v));
            err = Math.max(err, Math.abs(v - imgs[j][i]));
          }),
        );
        return result(this.name, err / peak, 1e-5, t0, `${eng.stats.pairs} pairs`);
      } finally {
        eng.destroy();
      }
    },
  };
}

/** Every parameter of source 0 and the shear: |gpu − fd| / max(|fd|, scale) (scale 1e-3, or 1e-2 |∂/∂g1| for g2). */
function adjointCheck(name: string, scene: TestSceneOptions, opts: Partial<RenderOptions>): KernelCheck {
  return {
    name,
    async run(device) {
      const t0 = performance.now();
      const { set, params: truth } = makeTestScene({ ...scene, render: opts });
      const params = perturbParams(truth, 3, 0.04);
      const eng = await ShearEngine.create(device, set, opts);
      try {
        const { gradient } = await eng.evaluate(params);
        const L = (p: SceneParams) => logLikelihood64(set, p, opts).logL;
        let worst = 0;
        const check = (g: number, setv: (p: SceneParams, d: number) => void, h: number, scale: number) => {
          const a = cloneParams(params);
          const b = cloneParams(params);
          setv(a, h);
          setv(b, -h);
          const fd = (L(a) - L(b)) / (2 * h);
          worst = Math.max(worst, Math.abs(g - fd) / Math.max(Math.abs(fd), scale));
          return fd;
        };
        const fdG1 = check(gradient.g1, (p, d) => (p.g1 += d), 1e-5, 1);
        check(gradient.g2, (p, d) => (p.g2 += d), 1e-5, Math.abs(fdG1) * 1e-2);
        for (const name of [...SOURCE_PARAM_NAMES, ...profileParamNames(opts.profile)]) {
          const h = name === 'flux' ? 1e-4 * params.flux[0] : 1e-5;
          const g = gradient[name];
          if (!g) return result(this.name, Infinity, 1e-3, t0, `no gradient for ${name}`);
          check(g[0], (p, d) => (p[name]![0] += d), h, 1e-3);
        }
        return result(this.name, worst, 1e-3, t0);
      } finally {
        eng.destroy();
      }
    },
  };
}

const SCENE: TestSceneOptions = { seed: 26, nSources: 3, sourceTiers: [64, 128] };
const ALIAS_SCENE: TestSceneOptions = { seed: 24, nSources: 2, sourceTiers: [64, 64], psfOversampling: 3, psf: { sigma: 0.7 } };
const FREE: RenderOptions['profile'] = { type: 'spergel', nu: 0.5, free: true };
const BD: RenderOptions['profile'] = { type: 'bulge_disk', bulgeNu: -0.6 };

export const checks: KernelCheck[] = [
  renderCheck('render, Spergel ν free per source (vs float64, rel. to peak)', SCENE, { profile: FREE }),
  adjointCheck('adjoint gradient, Spergel ν free, ∂/∂ν included (vs FD of float64)', SCENE, { profile: FREE }),
  renderCheck('render, bulge + disk (vs float64, rel. to peak)', SCENE, { profile: BD }),
  adjointCheck('adjoint gradient, bulge + disk, ∂/∂(B/T, hlr_b, e_b) included (vs FD of float64)', SCENE, { profile: BD }),
  adjointCheck('adjoint gradient, bulge + disk, alias orders N=1, PSF q=3 (vs FD of float64)', ALIAS_SCENE, { profile: BD }),
];
