/**
 * Profiles with per-source parameters beyond (flux, hlr, e1, e2, dx, dy) on the GPU: a Spergel
 * profile with ν free per source, and bulge + disk (exponential disk + Spergel bulge). Model
 * images and log-likelihood against the float64 reference (which solves c_ν exactly per source,
 * where the engine interpolates its table), on native PSFs and on the alias-complete path (PSF
 * q = 3); every gradient component, the new ones included, against central finite differences of
 * the float64 log-likelihood; the parameter validation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene, perturbParams, type TestSceneOptions } from '../../engine/reference/scene-builder.ts';
import { logLikelihood64, renderModel64, renderPairStamp64 } from '../../engine/gpu/render/model64.ts';
import { profileParamNames } from '../../engine/model/profile-params.ts';
import { cloneParams, SOURCE_PARAM_NAMES, type RenderOptions, type SceneParams } from '../../engine/scene/types.ts';
import { SceneError } from '../../engine/errors.ts';
import { estimateEngineBytes } from '../../engine/scene/memory.ts';

let device: GPUDevice;
beforeAll(async () => {
  device = await testDevice();
});

const FREE: RenderOptions['profile'] = { type: 'spergel', nu: 0.5, free: true };
const BD: RenderOptions['profile'] = { type: 'bulge_disk', bulgeNu: -0.6 };
const ALIAS_SCENE: TestSceneOptions = { seed: 24, nSources: 2, sourceTiers: [64, 64], psfOversampling: 3, psf: { sigma: 0.7 } };
const NATIVE_SCENE: TestSceneOptions = { seed: 31, nSources: 4, sourceTiers: [64, 128] };

async function compare(scene: TestSceneOptions, opts: Partial<RenderOptions>) {
  const { set, params } = makeTestScene({ ...scene, render: opts });
  const eng = await ShearEngine.create(device, set, opts);
  try {
    const imgs = await eng.render(params);
    const ref = renderModel64(set, params, opts);
    let peak = 0;
    set.pairs.forEach((p, i) => {
      if (!p.visible) return;
      for (const v of renderPairStamp64(set, i, params, opts).stamp) peak = Math.max(peak, Math.abs(v));
    });
    let err = 0;
    ref.forEach((r, j) => r.forEach((v, i) => (err = Math.max(err, Math.abs(v - imgs[j][i])))));
    const ll = await eng.logLikelihood(params);
    const ll64 = logLikelihood64(set, params, opts).logL;
    return { rel: err / peak, llRel: Math.abs(ll - ll64) / Math.abs(ll64) };
  } finally {
    eng.destroy();
  }
}

describe('free-ν Spergel and bulge + disk: GPU vs float64', () => {
  for (const [label, profile] of [['spergel ν free', FREE], ['bulge+disk', BD]] as const) {
    it(`${label}: model images ≤ 1e-5 of the peak, logL ≤ 1e-5 relative (native PSF and q = 3, N = 1)`, async () => {
      for (const scene of [NATIVE_SCENE, ALIAS_SCENE]) {
        const r = await compare(scene, { profile });
        console.log(`${label} ${scene === ALIAS_SCENE ? 'q=3 N=1' : 'native'}: max |gpu − f64| / peak ${r.rel.toExponential(2)}, logL rel ${r.llRel.toExponential(2)}`);
        expect(r.rel).toBeLessThan(1e-5);
        expect(r.llRel).toBeLessThan(1e-5);
      }
    });
  }

  it('a bulge + disk with B/T = 0 is its disk (the exponential), and free ν = ½ everywhere is the exponential, to float32 rounding', async () => {
    const { set, params } = makeTestScene({ seed: 31, nSources: 5 });
    const ref = renderModel64(set, params);
    let peak = 0;
    for (const r of ref) for (const v of r) peak = Math.max(peak, Math.abs(v));
    const withBd = cloneParams(params);
    withBd.bulgeFrac = new Float64Array(5);
    withBd.bulgeHlr = params.hlr.map((h) => 0.4 * h);
    withBd.bulgeE1 = new Float64Array(5).fill(0.2);
    withBd.bulgeE2 = new Float64Array(5).fill(-0.1);
    const withNu = cloneParams(params);
    withNu.nu = new Float64Array(5).fill(0.5);
    for (const [profile, p] of [[BD, withBd], [FREE, withNu]] as const) {
      const eng = await ShearEngine.create(device, set, { profile });
      try {
        const imgs = await eng.render(p);
        let err = 0;
        ref.forEach((r, j) => r.forEach((v, i) => (err = Math.max(err, Math.abs(v - imgs[j][i])))));
        expect(err / peak).toBeLessThan(1e-5);
      } finally {
        eng.destroy();
      }
    }
  });

  it('GPU memory planned for the larger source records and gradients equals what the engine allocates', async () => {
    for (const profile of [FREE, BD]) {
      const { set, params } = makeTestScene({ ...NATIVE_SCENE, render: { profile } });
      const est = estimateEngineBytes(set, { profile }, device.limits);
      const eng = await ShearEngine.create(device, set, { profile });
      try {
        const afterCreate = eng.stats.peakGpuBytes;
        await eng.render(params);
        expect(est.peak).toBe(afterCreate);
        expect(eng.stats.peakGpuBytes).toBe(afterCreate);
      } finally {
        eng.destroy();
      }
    }
  });

  it('replicas (evaluateMany): each parameter set of a free-ν / bulge + disk scene as evaluated alone', async () => {
    for (const profile of [FREE, BD]) {
      const { set, params } = makeTestScene({ seed: 5, nSources: 3, sourceTiers: [64], render: { profile } });
      const other = perturbParams(params, 9, 0.02);
      const one = await ShearEngine.create(device, set, { profile });
      const two = await ShearEngine.create(device, set, { profile, replicas: 2 });
      try {
        const [a, b] = await two.evaluateMany([params, other]);
        for (const [got, p] of [[a, params], [b, other]] as const) {
          const want = await one.evaluate(p);
          expect(got.logL).toBe(want.logL);
          for (const k of ['hlr', 'nu', 'bulgeFrac', 'bulgeE2'] as const) if (want.gradient[k]) expect(Array.from(got.gradient[k]!)).toEqual(Array.from(want.gradient[k]!));
        }
      } finally {
        one.destroy();
        two.destroy();
      }
    }
  });

  it('profile parameters are validated with clear SceneErrors', async () => {
    const { set, params } = makeTestScene({ seed: 2, nSources: 2, render: { profile: BD } });
    const cases: Array<[(p: SceneParams) => void, RegExp, RenderOptions['profile']]> = [
      [(p) => delete p.bulgeFrac, /params\.bulgeFrac has no values/, BD],
      [(p) => (p.bulgeFrac![1] = 1.2), /bulgeFrac = 1\.2 must be in \[0, 1\]/, BD],
      [(p) => (p.bulgeHlr![0] = 0), /bulgeHlr = 0 must be > 0/, BD],
      [(p) => (p.bulgeE1![0] = 0.9) && (p.bulgeE2![0] = 0.5), /bulge distortion \|e\|/, BD],
      [(p) => (p.nu = new Float64Array([0.3, 4.5])), /nu = 4\.5 must be in \[-0\.85, 4\]/, FREE],
      [(p) => (p.nu = new Float64Array([0.3])), /params\.nu has 1 values/, FREE],
    ];
    for (const [mutate, re, profile] of cases) {
      const p = cloneParams(params);
      if (profile === FREE) p.nu = new Float64Array([0.2, 1]);
      mutate(p);
      expect(() => renderModel64(set, p, { profile })).toThrow(SceneError);
      expect(() => renderModel64(set, p, { profile })).toThrow(re);
    }
    expect(() => renderModel64(set, params, { profile: { type: 'bulge_disk', bulgeNu: -1 } })).toThrow(/profile\.bulgeNu/);
    const eng = await ShearEngine.create(device, set, { profile: FREE });
    try {
      await expect(eng.evaluate(params)).rejects.toThrow(/params\.nu has no values/);
    } finally {
      eng.destroy();
    }
  });
});

const STEP: Record<string, number> = { flux: 1e-4, hlr: 1e-5, e1: 1e-5, e2: 1e-5, dx: 1e-5, dy: 1e-5, nu: 1e-5, bulgeFrac: 1e-5, bulgeHlr: 1e-5, bulgeE1: 1e-5, bulgeE2: 1e-5 };

/** Every gradient component against FD of the float64 logL: |gpu − fd| ≤ 1e-3 · max(|fd|, 1e-2 · largest |fd| of that kind). */
async function gradientCheck(scene: TestSceneOptions, opts: Partial<RenderOptions>, label: string): Promise<void> {
  const { set, params: truth } = makeTestScene({ ...scene, render: opts });
  const params = perturbParams(truth, 5, 0.04);
  const eng = await ShearEngine.create(device, set, opts);
  try {
    const { gradient } = await eng.evaluate(params);
    const L = (p: SceneParams) => logLikelihood64(set, p, opts).logL;
    const fd = (arr: (p: SceneParams) => Float64Array, s: number, h: number) => {
      const a = cloneParams(params);
      const b = cloneParams(params);
      arr(a)[s] += h;
      arr(b)[s] -= h;
      return (L(a) - L(b)) / (2 * h);
    };
    const rows: Array<[string, number, number]> = [];
    for (const name of [...SOURCE_PARAM_NAMES, ...profileParamNames(opts.profile)]) {
      expect(gradient[name], `gradient.${name}`).toBeDefined();
      for (let s = 0; s < set.sources.length; s++) {
        const h = name === 'flux' ? STEP.flux * params.flux[s] : STEP[name];
        rows.push([`${name}[${s}]`, gradient[name]![s], fd((p) => p[name]!, s, h)]);
      }
    }
    const g = (p: SceneParams, k: 'g1' | 'g2', h: number) => ({ ...cloneParams(p), [k]: p[k] + h });
    rows.push(['g1', gradient.g1, (L(g(params, 'g1', 1e-5)) - L(g(params, 'g1', -1e-5))) / 2e-5]);
    rows.push(['g2', gradient.g2, (L(g(params, 'g2', 1e-5)) - L(g(params, 'g2', -1e-5))) / 2e-5]);
    const scale = new Map<string, number>();
    for (const [n, , f] of rows) scale.set(n.replace(/\[.*$/, ''), Math.max(scale.get(n.replace(/\[.*$/, '')) ?? 0, Math.abs(f)));
    let worst = 0;
    let worstName = '';
    for (const [n, gv, f] of rows) {
      const tol = Math.max(Math.abs(f), 1e-2 * scale.get(n.replace(/\[.*$/, ''))!);
      const err = Math.abs(gv - f) / tol;
      if (err > worst) [worst, worstName] = [err, n];
      expect(Math.abs(gv - f), `${label} ${n}: gpu ${gv} fd ${f}`).toBeLessThanOrEqual(1e-3 * tol);
    }
    const extra = rows.filter((r) => profileParamNames(opts.profile).some((k) => r[0].startsWith(`${k}[`))).slice(0, 4);
    console.log(`${label}: ${rows.length} components, worst relative error ${worst.toExponential(2)} (${worstName}); ${extra.map((r) => `${r[0]} gpu ${r[1].toExponential(5)} fd ${r[2].toExponential(5)}`).join('; ')}`);
  } finally {
    eng.destroy();
  }
}

describe('free-ν Spergel and bulge + disk: adjoint gradient vs finite differences of the float64 logL', () => {
  it('spergel ν free: every component, ∂/∂ν included', async () => {
    await gradientCheck({ seed: 11, nSources: 4, sourceTiers: [64, 128] }, { profile: FREE }, 'spergel nu free');
  });
  it('bulge + disk: every component, ∂/∂(B/T, bulge hlr, bulge e1, bulge e2) included', async () => {
    await gradientCheck({ seed: 11, nSources: 4, sourceTiers: [64, 128] }, { profile: BD }, 'bulge+disk');
  });
  it('alias-complete path (PSF q = 3, N = 1): both profiles', async () => {
    await gradientCheck(ALIAS_SCENE, { profile: FREE }, 'spergel nu free q=3');
    await gradientCheck(ALIAS_SCENE, { profile: BD }, 'bulge+disk q=3');
  });
});
