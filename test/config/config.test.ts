import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, defaultConfig, ConfigError, minimumMarginArcsec } from '../../engine/config/index.ts';
import { loadConfig, expandGlob } from '../../platform/node/config.ts';
import { schemaFields } from './schema-fields.ts';
import { ConfigSchema } from '../../engine/config/schema.ts';
import { parse as parseYaml } from 'yaml';

const F = 'config.yaml';

function errorOf(text: string): ConfigError {
  try {
    parseConfig(text, { file: F });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`expected a ConfigError for:\n${text}`);
}

describe('config defaults (SHINE\'s, docs/config.md)', () => {
  it('an empty file gives the defaults everywhere (SHINE\'s, but for the shear estimator priors)', () => {
    const c = defaultConfig();
    // sources: SHINE selection (docs/architecture.md "Euclid file facts")
    expect(c.sources).toEqual({
      snr_min: 10, snr_max: null, vis_det: true, exclude_spurious: true, exclude_point_like: true, exclude_deblended: false,
      det_quality_mask: 0x78c, hlr_clip_arcsec: [0.05, 5], max_per_sub_tile: null,
    });
    expect(c.data.bad_pixel_mask).toBe(1);
    expect(c.data.pixel_scale).toBe(0.1);
    // priors: docs/config.md `gal.priors`
    expect(c.gal.priors).toEqual({
      // the project's estimator: flat shear, ba14 ellipticity (docs/inference.md)
      shear: { type: 'uniform', low: -0.5, high: 0.5 },
      flux: { type: 'lognormal', center: 'catalog', sigma: 0.5 },
      hlr: { type: 'lognormal', center: 'catalog', sigma: 0.3 },
      ellipticity: { type: 'ba14', sigma: 0.3 },
      // |e| < 0.99: never the float32 renderer's singular |e| → 1 (docs/inference.md)
      ellipticity_max: 0.99,
      offset: { type: 'normal', mean: 0, sigma: 0.05 },
    });
    expect(c.stamps).toEqual({ alias_orders: 'auto', alias_tolerance: 1e-7, tiers: [64, 128, 256], fft_factor: 1.5, psf_includes_pixel: true });
    expect(c.inference.method).toBe('map');
    expect(c.inference.map.optimizer).toBe('lbfgs');
    expect(c.inference.map.lr).toBe(0.01);
    expect(c.tile.core_arcmin).toBe(30);
    expect(c.tile.extended_arcmin).toBe(32);
    expect(c.distributed.sub_tile_grid).toEqual([4, 4]);
    expect(c.distributed.sub_tile_margin).toBe(1.0);
    expect(c.distributed.tile_source).toBe('mer_catalog');
    expect(c.distributed.output_format).toBe('fits');
    expect(c.distributed.save_diagnostics).toBe(true);
    expect(c.distributed.save_model_images).toBe(false);
    expect(c.device.adapter).toBe('auto');
    expect(c.output.overwrite).toBe(false);
    // half the largest stamp: 256 px × 0.1″ / 2
    expect(minimumMarginArcsec(c)).toBeCloseTo(12.8, 12);
  });

  it('partial sections keep the other defaults; hex masks as numbers or strings', () => {
    const c = parseConfig('sources: {snr_min: 20, det_quality_mask: "0x10"}\ndata: {bad_pixel_mask: 0x9b}\ngal: {priors: {flux: {type: normal, mean: 5, sigma: 1}}}', { file: F });
    expect(c.sources.snr_min).toBe(20);
    expect(c.sources.det_quality_mask).toBe(16);
    expect(c.sources.vis_det).toBe(true);
    expect(c.data.bad_pixel_mask).toBe(0x9b);
    expect(c.gal.priors.flux).toEqual({ type: 'normal', mean: 5, sigma: 1 });
    expect(c.gal.priors.hlr).toEqual({ type: 'lognormal', center: 'catalog', sigma: 0.3 });
  });

  it('relative paths resolve against the config folder; absolute paths and URLs are kept', () => {
    const c = parseConfig(
      'data: {exposures: [VIS/a.fits, "/abs/b.fits", "VIS/*.fits"], mer_catalog: ../cat.fits, tile_index: "https://x.org/t.fits"}\ndistributed: {scratch_dir: ./s}',
      { file: '/data/run/config.yaml' },
    );
    expect(c.data.exposures).toEqual(['/data/run/VIS/a.fits', '/abs/b.fits', '/data/run/VIS/*.fits']);
    expect(c.data.mer_catalog).toEqual(['/data/cat.fits']);
    expect(c.data.tile_index).toBe('https://x.org/t.fits');
    expect(c.distributed.scratch_dir).toBe('/data/run/s');
    expect(c.output.dir).toBe('/data/run/results/euclid');
    expect(c.distributed.output_dir).toBe(c.output.dir);
  });

  it("accepts the layout written by `shine simulate` (aliases)", () => {
    const text = `data:
  tile_index: tiles.fits
  mer_catalog: MER/cat.fits
  exposures: [VIS/d0.fits]
  backgrounds: [VIS/b0.fits]
  psf: [VIS/p0.fits]
  bad_pixel_mask: 155
  psf_includes_pixel: false
tile:
  tile_id: 102018211
  core_arcmin: 4
  sub_tile_grid: [4, 4]
  margin_arcmin: 0.2
  simulated_sub_tile: [1, 1]
sources: {snr_min: 10, vis_det: 1, exclude_spurious: true, exclude_point_like: true, det_quality_mask: 0x78C, hlr_clip_arcsec: [0.05, 5.0]}
stamps: {tiers: [64, 128], fft_factor: 2}
background: {method: bkg_file}
gal:
  priors:
    shear: { type: normal, mean: 0.0, sigma: 0.05 }
    flux: { type: lognormal, center: catalog, sigma: 0.5 }
    hlr: { type: lognormal, center: catalog, sigma: 0.3 }
    ellipticity: { type: normal, mean: 0.0, sigma: 0.3 }
    offset: { type: normal, mean: 0.0, sigma_arcsec: 0.07 }
inference:
  method: map
  methods:
    map: { optimizer: lbfgs, max_iterations: 500 }
    vi: { steps: 2000 }
    nuts: { warmup: 500, samples: 500 }
output: {dir: results}
truth: {sources: truth/sources.fits, shear: truth/shear.fits}
`;
    const c = parseConfig(text, { file: '/sim/config.yaml' });
    expect(c.distributed.tile_id).toBe(102018211);
    expect(c.distributed.sub_tile_margin).toBe(0.2);
    expect(c.tile.core_arcmin).toBe(4);
    expect(c.tile.extended_arcmin).toBe(6);
    expect(c.stamps.psf_includes_pixel).toBe(false);
    expect(c.inference.map.max_iterations).toBe(500);
    expect(c.inference.nuts.samples).toBe(500);
    expect(c.gal.priors.offset).toEqual({ type: 'normal', mean: 0, sigma: 0.07 });
    expect(c.background.method).toBe('bkg_file');
    expect(c.truth.shear).toBe('/sim/truth/shear.fits');
  });
});

describe('config errors name the file and the field', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['unknown top-level section', 'foo: 1', /^config\.yaml: foo: unknown field \(expected one of: data, /],
    ['unknown nested field', 'distributed: {sub_tile_marginn: 1}', /^config\.yaml: distributed\.sub_tile_marginn: unknown field/],
    ['unknown prior field', 'gal: {priors: {flux: {type: lognormal, sigma: 1, mu: 2}}}', /^config\.yaml: gal\.priors\.flux\.mu: unknown field/],
    ['wrong type', 'distributed: {sub_tile_margin: "one"}', /^config\.yaml: distributed\.sub_tile_margin: expected number, got the string "one"/],
    ['section of the wrong type', 'data: 5', /^config\.yaml: data: expected a mapping, got number 5/],
    ['out of range', 'sources: {snr_min: -1}', /^config\.yaml: sources\.snr_min: expected number > 0, got number -1/],
    ['non-integer', 'inference: {map: {max_iterations: 2.5}}', /^config\.yaml: inference\.map\.max_iterations: expected an integer, got number 2\.5/],
    ['bad enum', 'inference: {method: hmc}', /^config\.yaml: inference\.method: expected one of "map", "vi", "nuts", got the string "hmc"/],
    ['bad optimizer', 'inference: {map: {optimizer: sgd}}', /^config\.yaml: inference\.map\.optimizer: expected one of "lbfgs", "adam"/],
    ['bad prior type', 'gal: {priors: {hlr: {type: gamma, sigma: 1}}}', /^config\.yaml: gal\.priors\.hlr\.type: expected prior type one of normal, lognormal, uniform, fixed, got "gamma"/],
    ['lognormal shear', 'gal: {priors: {shear: {type: lognormal, sigma: 1}}}', /^config\.yaml: gal\.priors\.shear\.type: expected prior type one of normal, uniform, fixed/],
    ['prior without sigma', 'gal: {priors: {ellipticity: {type: normal}}}', /^config\.yaml: gal\.priors\.ellipticity\.sigma: missing \(expected number\)/],
    ['uniform low ≥ high', 'gal: {priors: {shear: {type: uniform, low: 0.1, high: -0.1}}}', /^config\.yaml: gal\.priors\.shear\.high: expected low < high/],
    ['tuple length', 'distributed: {sub_tile_grid: [4]}', /^config\.yaml: distributed\.sub_tile_grid: expected at least 2 item/],
    ['descending tiers', 'stamps: {tiers: [128, 64]}', /^config\.yaml: stamps\.tiers: expected strictly ascending/],
    ['hlr clip order', 'sources: {hlr_clip_arcsec: [5, 0.05]}', /^config\.yaml: sources\.hlr_clip_arcsec: expected \[min, max\] with min < max/],
    ['hdf5 output', 'distributed: {output_format: hdf5}', /^config\.yaml: distributed\.output_format: expected "fits" \(hdf5 output is not supported\)/],
    ['bad tile id', 'distributed: {tile_id: -3}', /^config\.yaml: distributed\.tile_id: /],
    ['YAML syntax', 'data: [', /^config\.yaml: YAML syntax error at line \d+, column \d+/],
    ['duplicate key', 'data: {}\ndata: {}', /^config\.yaml: YAML syntax error at line 2, column 1: Map keys must be unique/],
    ['top level not a mapping', '- a\n- b', /^config\.yaml: expected a mapping of sections at the top level/],
    ['alias conflict', 'tile: {margin_arcmin: 0.5}\ndistributed: {sub_tile_margin: 1.0}', /^config\.yaml: tile\.margin_arcmin: conflicts with distributed\.sub_tile_margin/],
    ['alias value error names the alias', 'tile: {margin_arcmin: abc}', /^config\.yaml: tile\.margin_arcmin: expected number/],
    ['output conflict', 'output: {dir: a}\ndistributed: {output_dir: b}', /^config\.yaml: distributed\.output_dir: conflicts with output\.dir/],
    ['custom tiles need a centre', 'distributed: {tile_source: custom}', /^config\.yaml: tile\.center: missing/],
    ['extended smaller than core', 'tile: {core_arcmin: 30, extended_arcmin: 20}', /^config\.yaml: tile\.extended_arcmin: expected number ≥ tile\.core_arcmin/],
    ['snr band', 'sources: {snr_min: 20, snr_max: 10}', /^config\.yaml: sources\.snr_max: expected number > sources\.snr_min/],
  ];
  for (const [name, text, re] of cases) {
    it(name, () => {
      const e = errorOf(text);
      expect(e.message).toMatch(re);
      expect(e.issues.length).toBeGreaterThan(0);
    });
  }

  it('reports every problem, one line each', () => {
    const e = errorOf('foo: 1\ninference: {method: x}\nsources: {snr_min: "a"}');
    expect(e.issues.map((i) => i.path).sort()).toEqual(['foo', 'inference.method', 'sources.snr_min']);
    expect(e.message.split('\n')).toHaveLength(3);
  });
});

describe('sub-tile margin ≥ half the largest stamp (docs/config.md)', () => {
  // minimum margin (arcmin) = max tier × pixel scale / 2 / 60, computed here independently
  const minArcmin = (tier: number, scale: number) => (tier * scale) / 2 / 60;

  it('256-px tiers at 0.1″: 12.8″ = 0.21333′', () => {
    expect(() => parseConfig('distributed: {sub_tile_margin: 0.22}', { file: F })).not.toThrow();
    const e = errorOf('distributed: {sub_tile_margin: 0.21}');
    expect(e.message).toMatch(/^config\.yaml: distributed\.sub_tile_margin: expected number ≥ 0\.21333\d* arcmin \(half the largest stamp: 256 px × 0\.1″ \/ 2 = 12\.8″\), got 0\.21$/);
    expect(minArcmin(256, 0.1)).toBeGreaterThan(0.21);
    expect(minArcmin(256, 0.1)).toBeLessThan(0.22);
  });

  it('follows the tiers and the pixel scale', () => {
    // [64, 128] at 0.1″: 6.4″ = 0.10667′
    expect(() => parseConfig('stamps: {tiers: [64, 128]}\ndistributed: {sub_tile_margin: 0.11}', { file: F })).not.toThrow();
    expect(errorOf('stamps: {tiers: [64, 128]}\ndistributed: {sub_tile_margin: 0.1}').issues[0].path).toBe('distributed.sub_tile_margin');
    // 0.2″ pixels double it
    expect(errorOf('data: {pixel_scale: 0.2}\ndistributed: {sub_tile_margin: 0.4}').issues[0].path).toBe('distributed.sub_tile_margin');
    expect(() => parseConfig('data: {pixel_scale: 0.2}\ndistributed: {sub_tile_margin: 0.43}', { file: F })).not.toThrow();
    expect(minArcmin(256, 0.2)).toBeGreaterThan(0.4);
    expect(minArcmin(256, 0.2)).toBeLessThan(0.43);
  });
});

describe('loadConfig (Node)', () => {
  it('reads a file, resolves paths against its folder; a missing file is named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shine-cfg-'));
    writeFileSync(join(dir, 'a.fits'), '');
    writeFileSync(join(dir, 'b.fits'), '');
    writeFileSync(join(dir, 'config.yaml'), 'data: {exposures: ["*.fits"]}\n');
    const c = await loadConfig(join(dir, 'config.yaml'));
    expect(c.data.exposures).toEqual([join(dir, '*.fits')]);
    expect(await expandGlob(c.data.exposures[0])).toEqual([join(dir, 'a.fits'), join(dir, 'b.fits')]);
    await expect(loadConfig(join(dir, 'nope.yaml'))).rejects.toThrow(/nope\.yaml.*no such file/);
    writeFileSync(join(dir, 'bad.yaml'), 'distributed: {sub_tile_margin: 0.01}\n');
    await expect(loadConfig(join(dir, 'bad.yaml'))).rejects.toThrow(/bad\.yaml: distributed\.sub_tile_margin: expected number ≥/);
  });
});

describe('docs/config.md documents every configuration field', () => {
  // The field list comes from the zod schema itself (test/config/schema-fields.ts), independent of
  // the document: a field added to engine/config/schema.ts without a row fails here.
  const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'config.md'), 'utf8');
  const fields = schemaFields();
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\| `([a-z_]+(?:\.[a-z0-9_]+)+)` \|(.*)\|\s*$/.exec(line);
    if (m) rows.set(m[1], m[2].split(' | ').map((c) => c.trim()));
  }

  it('each schema field has a row with its type and a default and a meaning', () => {
    expect(fields.length).toBeGreaterThan(80);
    const missing = fields.filter((f) => !rows.has(f.path)).map((f) => f.path);
    expect(missing).toEqual([]);
    const wrongType = fields.filter((f) => rows.get(f.path)![0] !== f.type).map((f) => `${f.path}: doc '${rows.get(f.path)![0]}', schema '${f.type}'`);
    expect(wrongType).toEqual([]);
    const empty = fields.filter((f) => rows.get(f.path)!.length < 3 || rows.get(f.path)!.slice(1).some((c) => c === '')).map((f) => f.path);
    expect(empty).toEqual([]);
  });

  it('each row\'s default (the first `…` of its default cell, read as YAML) is the schema\'s default', () => {
    const raw = ConfigSchema.parse({}) as unknown as Record<string, unknown>;
    const wrong: string[] = [];
    for (const f of fields) {
      const cell = rows.get(f.path)![1];
      const m = /^`([^`]*)`/.exec(cell);
      const want = f.path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], raw);
      const got = m ? parseYaml(m[1]) : undefined;
      if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${f.path}: doc ${cell.split(' ')[0]}, schema ${JSON.stringify(want)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('no row documents a field the schema does not have', () => {
    const known = new Set(fields.map((f) => f.path));
    expect([...rows.keys()].filter((p) => !known.has(p))).toEqual([]);
  });

  it('the type descriptions read the schema (a nullable integer, an enum, a prior)', () => {
    const t = new Map(fields.map((f) => [f.path, f.type]));
    expect(t.get('sources.max_per_sub_tile')).toBe('integer > 0 or null');
    expect(t.get('inference.method')).toBe('"map" or "vi" or "nuts"');
    expect(t.get('inference.nuts.target_accept')).toBe('number in (0, 1)');
    expect(t.get('gal.priors.ellipticity')).toBe('{type: …} (type ∈ "ba14", "normal", "uniform", "fixed")');
  });
});
