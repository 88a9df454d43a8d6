/**
 * The profile parameters as fitted parameters: a noise-free scene drawn (float64 reference) with
 * a free-ν Spergel or a bulge + disk profile, fitted by MAP (engine gradients, ParamSpace with the
 * profile parameters and their default priors, PROFILE_DEFAULT_PRIORS) from a start away from the
 * truth in ν or in B/T and the bulge size: the fit recovers them, and the posterior's free vector
 * names them. Also a configuration's gal.profile / gal.priors turned into the run's profile and
 * priors.
 */
import { describe, expect, it } from 'vitest';
import { testDevice } from '../helpers/device.ts';
import { ShearEngine } from '../../engine/gpu/render/engine.ts';
import { makeTestScene } from '../../engine/reference/scene-builder.ts';
import { cloneParams, type RenderOptions } from '../../engine/scene/types.ts';
import { runMap } from '../../engine/infer/map.ts';
import { ParamSpace } from '../../engine/infer/posterior.ts';
import { PROFILE_DEFAULT_PRIORS } from '../../engine/infer/priors.ts';
import { profileFromConfig } from '../../engine/model/profile-params.ts';
import { parseConfig } from '../../engine/config/parse.ts';
import { priorsFromConfig } from '../../engine/subtile/priors.ts';
import { checkParamsTable, paramsTable, PARAMS_COLUMNS } from '../../engine/outputs/params.ts';
import { FitsFile } from '../../engine/data/fits/file.ts';
import { runPosterior } from '../../engine/subtile/posterior-run.ts';
import { memorySource } from '../../engine/data/fits/source.ts';

const FREE: RenderOptions['profile'] = { type: 'spergel', nu: 0.5, free: true };
const BD: RenderOptions['profile'] = { type: 'bulge_disk', bulgeNu: -0.6 };
// shear and shapes held at the truth: the test is about the profile parameters
const PRIORS = { g1: { type: 'fixed' }, g2: { type: 'fixed' }, e1: { type: 'fixed' }, e2: { type: 'fixed' } } as const;

describe('profile parameters fitted by MAP on noise-free scenes', () => {
  it('free ν: recovered from ν = 0.5 to ≤ 0.02', async () => {
    const device = await testDevice();
    const { set, params: truth } = makeTestScene({ seed: 41, nSources: 2, sourceTiers: [64], noiseFree: true, fluxRange: [4000, 8000], render: { profile: FREE } });
    const eng = await ShearEngine.create(device, set, { profile: FREE });
    try {
      const init = cloneParams(truth);
      init.nu!.fill(0.5);
      const m = await runMap(eng, set, PRIORS, init, { catalog: { flux: truth.flux, hlr: truth.hlr } });
      const names = Array.from({ length: m.posterior.space.dim }, (_, i) => m.posterior.space.name(i));
      console.log(`free ν: ${m.reason} after ${m.iterations} it; ν truth [${Array.from(truth.nu!).map((v) => v.toFixed(4))}] fit [${Array.from(m.params.nu!).map((v) => v.toFixed(4))}]; free: ${names.join(' ')}`);
      expect(names).toContain('nu[0]');
      expect(names).toContain('nu[1]');
      for (let s = 0; s < 2; s++) expect(Math.abs(m.params.nu![s] - truth.nu![s])).toBeLessThan(0.02);
    } finally {
      eng.destroy();
    }
  });

  it('bulge + disk: B/T and the bulge size recovered from B/T = 0.3 and ½ the disk size', async () => {
    const device = await testDevice();
    const { set, params: truth } = makeTestScene({ seed: 42, nSources: 2, sourceTiers: [64], noiseFree: true, fluxRange: [4000, 8000], render: { profile: BD } });
    const eng = await ShearEngine.create(device, set, { profile: BD });
    try {
      const init = cloneParams(truth);
      init.bulgeFrac!.fill(0.3);
      init.bulgeHlr = init.hlr.map((h) => 0.5 * h);
      const m = await runMap(eng, set, PRIORS, init, { catalog: { flux: truth.flux, hlr: truth.hlr } });
      const f = (a: Float64Array) => Array.from(a).map((v) => v.toFixed(4)).join(', ');
      console.log(`bulge+disk: ${m.reason} after ${m.iterations} it; B/T truth [${f(truth.bulgeFrac!)}] fit [${f(m.params.bulgeFrac!)}]; hlr_b truth [${f(truth.bulgeHlr!)}] fit [${f(m.params.bulgeHlr!)}]`);
      for (let s = 0; s < 2; s++) {
        expect(Math.abs(m.params.bulgeFrac![s] - truth.bulgeFrac![s])).toBeLessThan(0.02);
        expect(Math.abs(m.params.bulgeHlr![s] / truth.bulgeHlr![s] - 1)).toBeLessThan(0.05);
      }
    } finally {
      eng.destroy();
    }
  });

  it('ParamSpace: profile parameters after the six standard ones per source, their priors, fixed ones left out', () => {
    const { params } = makeTestScene({ seed: 43, nSources: 2, sourceTiers: [64], render: { profile: BD } });
    const sp = new ParamSpace({}, params);
    expect(sp.profileNames).toEqual(['bulgeFrac', 'bulgeHlr', 'bulgeE1', 'bulgeE2']);
    expect(sp.dim).toBe(2 + 2 * 10);
    expect(sp.name(sp.extraIndex[0])).toBe('bulgeFrac[0]');
    expect(sp.entries[sp.extraIndex[0]].prior).toEqual({ type: 'uniform', low: 0, high: 1 });
    expect(sp.entries[sp.extraIndex[1]].prior).toEqual({ type: 'lognormal', mu: Math.log(params.bulgeHlr![0]), sigma: PROFILE_DEFAULT_PRIORS.bulgeHlr.type === 'lognormal' ? PROFILE_DEFAULT_PRIORS.bulgeHlr.sigma : NaN });
    // θ ↔ z round trip through the bounded transforms
    const th = sp.pack(params);
    const back = sp.forward(sp.inverse(th));
    th.forEach((v, i) => expect(back[i]).toBeCloseTo(v, 10));
    const fixed = new ParamSpace({ profile: { bulgeFrac: { type: 'fixed', value: 0.2 } } }, params);
    expect(fixed.dim).toBe(2 + 2 * 9);
    expect(fixed.base.bulgeFrac![1]).toBe(0.2);
    expect(() => new ParamSpace({ profile: { nu: { type: 'normal', sigma: 1 } } }, { ...params, nu: new Float64Array(2) })).toThrow(/nu needs a bounded prior/);
    const free = new ParamSpace({}, { ...cloneParams(params), nu: new Float64Array([0.3, 1]) });
    expect(free.profileNames).toContain('nu');
    expect(() => free.inverse(free.pack({ ...cloneParams(params), nu: new Float64Array([0.3, 4.2]) }))).toThrow(/nu\[1\] = 4\.2 is outside the prior's support/);
  });

  it('configuration: gal.profile and the profile priors', () => {
    const cfg = parseConfig(JSON.stringify({ gal: { profile: { type: 'bulge_disk' }, priors: { bulge_fraction: { type: 'uniform', low: 0.05, high: 0.8 }, bulge_hlr: { type: 'lognormal', center: 0.2, sigma: 0.4 } } } }));
    expect(profileFromConfig(cfg.gal.profile)).toEqual({ type: 'bulge_disk', bulgeNu: -0.6 });
    const { priors } = priorsFromConfig(cfg, { flux: new Float64Array([1]), hlr: new Float64Array([0.3]) });
    expect(priors.profile).toEqual({ bulgeFrac: { type: 'uniform', low: 0.05, high: 0.8 }, bulgeHlr: { type: 'lognormal', mu: Math.log(0.2), sigma: 0.4 } });
    const c2 = parseConfig(JSON.stringify({ gal: { profile: { type: 'spergel', nu: 0.8, free: true } } }));
    expect(profileFromConfig(c2.gal.profile)).toEqual({ type: 'spergel', nu: 0.8, free: true });
    expect(() => parseConfig(JSON.stringify({ gal: { profile: { type: 'sersic' } } }))).toThrow(/exponential, spergel or bulge_disk/);
    expect(() => parseConfig(JSON.stringify({ gal: { profile: { type: 'bulge_disk', bulge_nu: -2 } } }))).toThrow();
  });

  it('params product: NU / BULGE_* columns (with _ERR and INIT_) after the standard ones, read back', async () => {
    const PROV = { softwareVersion: 'test', created: '2025-01-01T00:00:00.000Z', configHash: 'sha256:0', configFile: 'c.yaml' };
    const base = { objectId: [1, 2], ra: [1, 2], dec: [3, 4], flux: [10, 20], hlr: [0.3, 0.4], e1: [0, 0.1], e2: [0, -0.1], dx: [0, 0], dy: [0, 0] };
    const bytes = paramsTable({ tileId: 7, row: 0, col: 1 }, { ...base, profile: { bulgeFrac: { value: [0.25, 0.5], init: [0.3, 0.3] }, bulgeHlr: { value: [0.1, 0.2], init: [0.15, 0.2], err: [0.01, 0.02] } } }, PROV);
    const t = await (await FitsFile.open(memorySource(bytes))).readTable('PARAMS');
    expect(checkParamsTable(t, { tileId: 7, row: 0, col: 1 })).toEqual([]);
    expect(t.names.slice(PARAMS_COLUMNS.length)).toEqual(['BULGE_FRAC', 'BULGE_FRAC_ERR', 'INIT_BULGE_FRAC', 'BULGE_HLR', 'BULGE_HLR_ERR', 'INIT_BULGE_HLR']);
    expect(Array.from(t.column('BULGE_FRAC').data as Float64Array)).toEqual([0.25, 0.5]);
    expect(Array.from(t.column('INIT_BULGE_HLR').data as Float64Array)).toEqual([0.15, 0.2]);
    expect((t.column('BULGE_FRAC_ERR').data as Float32Array).every((v) => Number.isNaN(v))).toBe(true);
    expect(Array.from(t.column('BULGE_HLR_ERR').data as Float32Array)).toEqual([Math.fround(0.01), Math.fround(0.02)]);
    // without a profile: exactly the standard columns
    const plain = await (await FitsFile.open(memorySource(paramsTable({ tileId: 7, row: 0, col: 1 }, base, PROV)))).readTable('PARAMS');
    expect(plain.names.length).toBe(PARAMS_COLUMNS.length);
    expect(() => paramsTable({ tileId: 7, row: 0, col: 1 }, { ...base, profile: { nu: { value: [0.1] } } }, PROV)).toThrow(/profile\.nu has 1 entries/);
  });

  it('VI from the MAP with ν free: a posterior mean near the truth and a positive width for every ν', async () => {
    const device = await testDevice();
    const { set, params: truth } = makeTestScene({ seed: 41, nSources: 2, sourceTiers: [64], fluxRange: [4000, 8000], render: { profile: FREE } });
    const eng = await ShearEngine.create(device, set, { profile: FREE });
    try {
      const init = cloneParams(truth);
      init.nu!.fill(0.5);
      const catalog = { flux: truth.flux, hlr: truth.hlr };
      const m = await runMap(eng, set, PRIORS, init, { catalog });
      const cfg = parseConfig(JSON.stringify({ inference: { method: 'vi', vi: { steps: 150, num_samples: 200, init: 'catalog' } } }));
      const post = await runPosterior(eng, cfg, PRIORS, { params: m.params, hessian: null }, { catalog });
      console.log(`VI: ν truth [${Array.from(truth.nu!).map((v) => v.toFixed(3))}] mean [${Array.from(post.mean.nu!).map((v) => v.toFixed(3))}] std [${Array.from(post.std.nu!).map((v) => v.toExponential(2))}]`);
      for (let s = 0; s < 2; s++) {
        expect(post.std.nu![s]).toBeGreaterThan(0);
        expect(Math.abs(post.mean.nu![s] - truth.nu![s])).toBeLessThan(5 * post.std.nu![s] + 0.05);
      }
    } finally {
      eng.destroy();
    }
  });
});
