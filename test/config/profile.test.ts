/** Config `gal.profile`: exponential (default, also as a bare string), {type: spergel, nu, free?} or {type: bulge_disk, bulge_nu}. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../engine/config/index.ts';

const F = { file: 'config.yaml' };

describe('gal.profile', () => {
  it('defaults to the exponential; accepts the bare string and Spergel with ν', () => {
    expect(parseConfig('{}', F).gal.profile).toEqual({ type: 'exponential' });
    expect(parseConfig('gal: {profile: exponential}', F).gal.profile).toEqual({ type: 'exponential' });
    expect(parseConfig('gal: {profile: {type: exponential}}', F).gal.profile).toEqual({ type: 'exponential' });
    expect(parseConfig('gal: {profile: {type: spergel, nu: -0.6}}', F).gal.profile).toEqual({ type: 'spergel', nu: -0.6 });
    expect(parseConfig('gal: {profile: {type: spergel, nu: 0.5, free: true}}', F).gal.profile).toEqual({ type: 'spergel', nu: 0.5, free: true });
    expect(parseConfig('gal: {profile: bulge_disk}', F).gal.profile).toEqual({ type: 'bulge_disk', bulge_nu: -0.6 });
    expect(parseConfig('gal: {profile: {type: bulge_disk, bulge_nu: -0.4}}', F).gal.profile).toEqual({ type: 'bulge_disk', bulge_nu: -0.4 });
  });

  it.each([
    ['ν above GalSim range', 'gal: {profile: {type: spergel, nu: 9}}', /^config\.yaml: gal\.profile\.nu: expected number ≤ 4, got number 9/],
    ['ν below GalSim range', 'gal: {profile: {type: spergel, nu: -0.9}}', /^config\.yaml: gal\.profile\.nu: expected number ≥ -0\.85/],
    ['Spergel without ν', 'gal: {profile: {type: spergel}}', /^config\.yaml: gal\.profile\.nu: missing \(expected number\)/],
    ['unknown profile', 'gal: {profile: {type: sersic, n: 4}}', /^config\.yaml: gal\.profile\.type: expected profile type exponential, spergel or bulge_disk, got "sersic"/],
    ['bulge ν out of range', 'gal: {profile: {type: bulge_disk, bulge_nu: -1}}', /^config\.yaml: gal\.profile\.bulge_nu: expected number ≥ -0\.85/],
    ['free not a boolean', 'gal: {profile: {type: spergel, nu: 0.5, free: 1}}', /^config\.yaml: gal\.profile\.free: /],
    ['ν on the exponential', 'gal: {profile: {type: exponential, nu: 1}}', /^config\.yaml: gal\.profile\.nu: unknown field/],
  ])('%s is a clear error', (_, yaml, re) => {
    expect(() => parseConfig(yaml, F)).toThrow(re);
  });
});
