/**
 * `shine doctor` checks of the forward model and adjoint kernels on this device: a small blended
 * scene (three quadrants, one rotated 180°, all three stamp tiers) rendered by the engine and by
 * the float64 reference (stamps ≤ 1e-5 of the peak, logL), a bit-identical repeat, and the
 * gradient against central finite differences of the float64 log-likelihood; and the same render
 * and gradient checks with oversampled PSF stamps and alias orders (docs/forward-model.md "Aliasing")
 * and with Spergel profiles (docs/forward-model.md "Spergel profile").
 */
import type { KernelCheck, KernelCheckResult } from '../check-types.ts';
import { ShearEngine } from './engine.ts';
import { makeTestScene, type TestSceneOptions } from '../../reference/scene-builder.ts';
import { logLikelihood64, renderModel64 } from './model64.ts';
import { profileParamNames } from '../../model/profile-params.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type RenderOptions, type SceneParams } from '../../scene/types.ts';

function result(name: string, maxError: number, tolerance: number, t0: number, detail?: string): KernelCheckResult {
  return { name, pass: maxError <= tolerance, maxError, tolerance, detail, ms: performance.now() - t0 };
}

export function renderCheckOf(name: string, scene: TestSceneOptions, opts: Partial<RenderOptions> = {}): KernelCheck {
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
      ref.forEach((r, j) => r.forEach((v, i) => {
        peak = Math.max(peak, Math.abs(v));
        err = Math.max(err, Math.abs(v - imgs[j][i]));
      }));
      return result(this.name, err / peak, 1e-5, t0, `${eng.stats.pairs} pairs`);
    } finally {
      eng.destroy();
    }
  },
  };
}

const renderCheck = renderCheckOf('render+accumulate (vs float64, rel. to peak)', { seed: 21, nSources: 4 });
/** Oversampled PSF stamps (q = 3) and one alias order: the (2N+1)² spectra path of render and adjoint. */
const ALIAS_SCENE: TestSceneOptions = { seed: 24, nSources: 3, sourceTiers: [64, 64, 128], psfOversampling: 3, psf: { sigma: 0.7 } };
const aliasRenderCheck = renderCheckOf('render, alias orders N=1, PSF q=3 (vs float64, rel. to peak)', ALIAS_SCENE);

const likelihoodCheck: KernelCheck = {
  name: 'likelihood + determinism (vs float64, relative)',
  async run(device) {
    const t0 = performance.now();
    const { set, params } = makeTestScene({ seed: 22, nSources: 4 });
    const eng = await ShearEngine.create(device, set);
    try {
      const a = await eng.evaluate(params);
      const b = await eng.evaluate(params);
      const ref = logLikelihood64(set, params).logL;
      const same = a.logL === b.logL && a.gradient.g1 === b.gradient.g1 && a.gradient.flux.every((v, i) => v === b.gradient.flux[i]);
      const err = same ? Math.abs(a.logL - ref) / Math.abs(ref) : Infinity;
      return result(this.name, err, 1e-5, t0, same ? 'two runs bit-identical' : 'two runs differ');
    } finally {
      eng.destroy();
    }
  },
};

/** The fixed perturbation of the scene's truth that check.ts's adjoint checks start from. */
function nudged(truth: SceneParams): SceneParams {
  const params = cloneParams(truth);
  params.g1 += 0.02;
  params.g2 -= 0.015;
  for (let s = 0; s < params.flux.length; s++) {
    params.flux[s] *= 1.1;
    params.hlr[s] *= 0.93;
    params.e1[s] += 0.05;
    params.dx[s] += 0.02;
  }
  return params;
}

/**
 * The shear and every parameter of source 0 (the profile's own included) from the adjoint
 * kernels against central finite differences of the float64 log-likelihood:
 * |gpu − fd| / max(|fd|, scale), scale 1e-3, or 1e-2 |∂/∂g1| for g2; tolerance 1e-3.
 */
export function adjointCheckOf(name: string, scene: TestSceneOptions, opts: Partial<RenderOptions> = {}, start: (truth: SceneParams) => SceneParams = nudged): KernelCheck {
  return {
    name,
    async run(device) {
      const t0 = performance.now();
      const { set, params: truth } = makeTestScene({ ...scene, render: opts });
      const params = start(truth);
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
        for (const pname of [...SOURCE_PARAM_NAMES, ...profileParamNames(opts.profile)]) {
          const h = pname === 'flux' ? 1e-4 * params.flux[0] : 1e-5;
          const g = gradient[pname];
          if (!g) return result(this.name, Infinity, 1e-3, t0, `no gradient for ${pname}`);
          check(g[0], (p, d) => (p[pname]![0] += d), h, 1e-3);
        }
        return result(this.name, worst, 1e-3, t0);
      } finally {
        eng.destroy();
      }
    },
  };
}

const adjointCheck = adjointCheckOf('adjoint gradient (vs finite differences of float64)', { seed: 23, nSources: 3, sourceTiers: [64, 128] });
const aliasAdjointCheck = adjointCheckOf('adjoint gradient, alias orders N=1, PSF q=3 (vs FD of float64)', ALIAS_SCENE);

/** Spergel profiles (RenderOptions.profile): a cuspy ν = −0.6 and a Gaussian-like ν = 2 (pow() in the shaders). */
const SPERGEL_SCENE: TestSceneOptions = { seed: 25, nSources: 3, sourceTiers: [64, 128] };
const spergelChecks = [-0.6, 2].flatMap((nu) => [
  renderCheckOf(`render, Spergel ν=${nu} (vs float64, rel. to peak)`, SPERGEL_SCENE, { profile: { type: 'spergel', nu } }),
  adjointCheckOf(`adjoint gradient, Spergel ν=${nu} (vs FD of float64)`, SPERGEL_SCENE, { profile: { type: 'spergel', nu } }),
]);

export const checks: KernelCheck[] = [renderCheck, likelihoodCheck, adjointCheck, aliasRenderCheck, aliasAdjointCheck, ...spergelChecks];
