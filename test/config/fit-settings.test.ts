/**
 * The resolved fit settings that decide whether complete products are reused
 * (engine/config/fit-settings.ts). The oracle is the YAML parser: texts that spell the same
 * settings differently (defaults written out, keys reordered, other paths) must hash alike, and a
 * changed setting that shapes the fit must not.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../engine/config/parse.ts';
import { expectedEstimator, fitMismatch, fitSettingsHash } from '../../engine/config/fit-settings.ts';

const cfg = (text: string) => parseConfig(text, { file: '/run/config.yaml' });
const BASE = 'distributed: {output_dir: out, scratch_dir: scratch, sub_tile_grid: [2, 2]}\n';

describe('fit settings hash', () => {
  const h0 = fitSettingsHash(cfg(BASE));

  it('is the same for the defaults written out, keys reordered, and other file locations or execution knobs', () => {
    expect(h0).toMatch(/^[0-9a-f]{16}$/);
    expect(fitSettingsHash(cfg(`${BASE}inference: {method: map, map: {shear_estimator: laplace_marginal, laplace: true}}\n`))).toBe(h0);
    expect(fitSettingsHash(cfg(`${BASE}masking: {footprint_scale: 3, unmodelled: mask}\n`))).toBe(fitSettingsHash(cfg(`masking: {unmodelled: mask, footprint_scale: 3}\n${BASE}`)));
    const elsewhere = 'distributed: {output_dir: /elsewhere/out, scratch_dir: /tmp/s, sub_tile_grid: [2, 2]}\ndata: {exposures: [/data/*.fits], mer_catalog: [/data/cat.fits]}\ndevice: {adapter: vulkan, memory_budget_gb: 3}\nremote: {retries: 1}\n';
    expect(fitSettingsHash(cfg(elsewhere))).toBe(h0);
  });

  it('is the hash the previous release recorded for the same settings: a setting added with its earlier behaviour as default makes nothing stale', () => {
    // fitSettingsHash of BASE (map, nuts) computed by commit 52b0234, before masking.point_like existed,
    // when stamps.fft_factor defaulted to 2. A deliberate change of a default that shapes the fit
    // changes these (and should: earlier products are then stale): the 2026-12-07 default 1.5 did,
    // and with fft_factor 2 written out the earlier hashes come back
    // The same for inference.map.laplace_box_prior (2026-12-07, default true): written out as
    // false, the earlier hashes come back
    // The same for inference.map.newton_polish_steps (2026-12-07, default 10): written out as 1,
    // and for inference.map.floor_restarts (2026-12-07, default 3): written out as 0 (its
    // refinement floor_restart_after, 2026-12-07, then changes nothing and is not hashed)
    const FFT2 = 'stamps: {fft_factor: 2}\ninference: {map: {laplace_box_prior: false, newton_polish_steps: 1, floor_restarts: 0}}\n';
    const NOBOX = 'inference: {map: {laplace_box_prior: false, newton_polish_steps: 1, floor_restarts: 0}}\n';
    expect(fitSettingsHash(cfg(`${BASE}${FFT2}`))).toBe('575ea3a938cc6d37');
    expect(fitSettingsHash(cfg(`${BASE}${FFT2}`), 'nuts')).toBe('0c666c3e93462035');
    expect(fitSettingsHash(cfg(`${BASE}${NOBOX}`))).toBe('3d105020078d39f7');
    expect(fitSettingsHash(cfg(`${BASE}${NOBOX}`), 'nuts')).toBe('12c761dec214ece5');
    expect(fitSettingsHash(cfg(`${BASE}inference: {map: {laplace_box_prior: false, newton_polish_steps: 1, floor_restarts: 0, floor_restart_after: 7}}\n`))).toBe('3d105020078d39f7');
    expect(h0).not.toBe('3d105020078d39f7');
    expect(fitSettingsHash(cfg(`${BASE}inference: {map: {laplace_box_prior: true}}\n`))).toBe(h0);
    expect(fitSettingsHash(cfg(`${BASE}masking: {point_like: mask}\n`))).toBe(h0);
    expect(fitSettingsHash(cfg(`${BASE}masking: {point_like: model}\n`))).not.toBe(h0);
  });

  it('changes with a setting that shapes the fit, in every section it covers, and with the method', () => {
    const changed = [
      'inference: {map: {shear_estimator: map}}',
      'inference: {map: {laplace: false}}',
      'inference: {map: {laplace_box_prior: false}}',
      'inference: {map: {newton_polish_steps: 1}}',
      'inference: {map: {floor_restarts: 0}}',
      'inference: {map: {floor_restart_after: 0}}',
      'gal: {profile: {type: spergel, nu: 0.3}}',
      'stamps: {fft_factor: 2}',
      'masking: {footprint_scale: 4}',
      'masking: {point_like: model}',
      'background: {sigma: 2.5}',
      'sources: {snr_min: 12}',
      'data: {pixel_scale: 0.2}',
    ];
    const hashes = new Set([h0]);
    for (const extra of changed) {
      let c;
      try {
        c = cfg(`${BASE}${extra}\n`);
      } catch (e) {
        throw new Error(`${extra}: ${(e as Error).message}`);
      }
      const h = fitSettingsHash(c);
      expect(h, extra).not.toBe(h0);
      hashes.add(h);
    }
    expect(hashes.size).toBe(changed.length + 1);
    expect(fitSettingsHash(cfg(BASE), 'vi')).not.toBe(h0);
    expect(fitSettingsHash(cfg(`${BASE}inference: {method: vi}\n`))).toBe(fitSettingsHash(cfg(BASE), 'vi'));
  });
});

describe('expected estimator and mismatch', () => {
  it('names the estimator each configuration reports', () => {
    expect(expectedEstimator(cfg(BASE))).toBe('laplace_marginal');
    expect(expectedEstimator(cfg(`${BASE}inference: {map: {shear_estimator: map}}\n`))).toBe('map');
    expect(expectedEstimator(cfg(`${BASE}inference: {map: {laplace: false}}\n`))).toBe('map');
    expect(expectedEstimator(cfg(BASE), 'nuts')).toBe('posterior_mean');
  });

  it('judges products by method, then by hash, and older products (no hash) by their estimator', () => {
    const c = cfg(BASE);
    const h = fitSettingsHash(c);
    expect(fitMismatch({ method: 'map', inputs: { fit_settings_hash: h } }, c)).toBeNull();
    // a failed Laplace-marginal step reports the MAP's shear; the settings still match
    expect(fitMismatch({ method: 'map', shear: { estimator: 'map' }, inputs: { fit_settings_hash: h } }, c)).toBeNull();
    expect(fitMismatch({ method: 'vi', inputs: { fit_settings_hash: h } }, c)).toMatch(/method 'vi', not 'map'/);
    expect(fitMismatch({ method: 'map', inputs: { fit_settings_hash: '0123456789abcdef' } }, c)).toMatch(/other fit settings \(fit_settings_hash 0123456789abcdef, this configuration [0-9a-f]{16}\)/);
    expect(fitMismatch({ method: 'map' }, c)).toMatch(/earlier version with shear estimator 'map'; this configuration asks for 'laplace_marginal'/);
    expect(fitMismatch({ method: 'map' }, cfg(`${BASE}inference: {map: {shear_estimator: map}}\n`))).toBeNull();
    expect(fitMismatch({ method: 'map', shear: { estimator: 'laplace_marginal' } }, c)).toBeNull();
    expect(fitMismatch({ method: 'nuts' }, c, 'nuts')).toBeNull();
    expect(fitMismatch(null, c)).toMatch(/method 'undefined'/);
  });
});
